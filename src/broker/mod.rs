//! The broker: the one process that holds decrypted keys and owns every SSH session.
//!
//! Its modules are layers, and imports point down only:
//!
//! - `daemon` starts the process: lock, database, vault, background tasks, the socket.
//! - `requests` is the top: the connection loop, the one door every request comes through
//!   (hello, then admission, where a client's authority is decided), and the routes.
//! - The features answer requests: `commands` (run, exec), `shells`, `sftp`, `forwards`,
//!   `rotation`, `agent`, `fleet` (bulk runs, fleet connection checks, fleet audits), and
//!   `manage` (connections, keys, the vault, sessions, settings, the audit log). A feature never
//!   imports `requests`, and imports another feature only where the work is the other's:
//!   `fleet` runs each target as an attached command of `commands` (one command runner, not
//!   two), and `rotation` edits authorized_keys with the SFTP client and atomic write of `sftp`.
//! - `core` is what every feature stands on and never names a feature: the state (`Core`, with
//!   private fields), sessions and the one way to get one, logins, jobs, the one backoff, the
//!   one runner for sshkeep's own scripts, the socket listener, presence.
//! - Below the broker: `db`, `ssh`, `logs`, `protocol` and the other crate modules.

pub(crate) mod agent;
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
