//! Management requests: saved connections, keys, the vault, sessions, settings and the audit
//! log.

pub mod audit;
pub mod certs;
pub mod conns;
pub mod keys;
pub mod profiles;
pub mod secrets;
pub mod sessions;
pub mod settings;
pub mod tokens;
pub mod vault;
