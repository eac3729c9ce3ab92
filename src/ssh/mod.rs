//! SSH client side of the broker: connecting with host-key verification, authenticating with a
//! key from the vault, and keeping sessions open for reuse.

mod auth;
mod connect;
mod error;
mod hostkey;
mod link;
pub mod other_agent;
mod person;

pub use auth::{Creds, asks_for_password, authenticate, open_command};
pub use connect::{Endpoint, Login, Tunnel, connect, login};
pub use error::SshError;
pub use hostkey::{HostKeyStatus, SeenHostKey, Verifier};
pub use link::{Forwarded, Link};
pub use other_agent::{Credential, login_with};
pub use person::{Ask, Person};
