//! The broker: the one process that holds decrypted keys and owns every SSH session.

mod agent;
mod commands;
mod core;
mod daemon;
mod fleet;
mod forwards;
mod manage;
mod requests;
mod rotation;
mod sftp;
mod shells;

pub use self::core::presence;
pub use self::core::{Core, Peer};
pub use daemon::{RunOptions, run};
