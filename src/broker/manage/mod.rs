//! Management requests: saved connections, keys, the vault, sessions and settings.

pub mod conns;
pub mod keys;
pub mod sessions;
pub mod vault;
