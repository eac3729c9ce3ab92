//! The broker's core: its state, sessions, logins and the pieces every feature stands on.

pub mod audit_key;
pub mod auto_lock;
pub mod backoff;
pub mod confirm;
pub mod fail;
pub mod handshakes;
pub mod jobs;
pub mod keystore;
pub mod listener;
pub mod login;
pub mod output;
pub mod presence;
pub mod remote_script;
pub mod sessions;
pub mod state;

pub use listener::Peer;
pub use state::Core;
