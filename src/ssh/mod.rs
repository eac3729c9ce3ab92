//! SSH client side of the broker: connecting with host-key verification, authenticating with a
//! key from the vault, and keeping sessions open for reuse.

mod connect;
mod error;
mod hostkey;
mod link;
pub mod other_agent;

pub use connect::{Endpoint, Login, Tunnel, connect, login};
pub use error::SshError;
pub use hostkey::{HostKeyStatus, SeenHostKey, Verifier};
pub use link::{Forwarded, Link};
pub use other_agent::{Credential, login_with};
