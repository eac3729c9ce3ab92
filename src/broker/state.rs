//! The broker's shared state.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use sshkeep_vault::Vault;
use tokio::sync::Notify;

use super::fail::Fail;
use super::listener::Peer;
use crate::db::{AuditEntry, Db, now};
use crate::paths::Paths;
use crate::protocol::ErrorCode;
use crate::ssh::Pool;

/// Everything the broker holds.
pub struct Broker {
    pub paths: Paths,
    pub db: Mutex<Db>,
    /// `None` until `vault init`.
    pub vault: Mutex<Option<Vault>>,
    pub pool: Pool,
    pub started: Instant,
    pub shutdown: Notify,
}

impl Broker {
    /// Builds the state around an open database and vault.
    pub fn new(paths: Paths, db: Db, vault: Option<Vault>) -> Arc<Self> {
        Arc::new(Self {
            paths,
            db: Mutex::new(db),
            vault: Mutex::new(vault),
            pool: Pool::default(),
            started: Instant::now(),
            shutdown: Notify::new(),
        })
    }

    /// The database, or an internal error if a panic poisoned its lock.
    pub fn db(&self) -> Result<MutexGuard<'_, Db>, Fail> {
        self.db.lock().map_err(|_| {
            Fail::new(
                ErrorCode::Internal,
                "database lock poisoned; restart the broker",
            )
        })
    }

    /// The vault slot.
    pub fn vault(&self) -> Result<MutexGuard<'_, Option<Vault>>, Fail> {
        self.vault.lock().map_err(|_| {
            Fail::new(
                ErrorCode::Internal,
                "vault lock poisoned; restart the broker",
            )
        })
    }

    /// Appends an audit record attributed to `peer`. Failing to audit fails the operation.
    pub fn audit(
        &self,
        peer: &Peer,
        op: &str,
        key: Option<&str>,
        conn: Option<&str>,
        detail: impl Into<String>,
    ) -> Result<(), Fail> {
        let entry = AuditEntry {
            op: op.into(),
            key: key.map(Into::into),
            conn: conn.map(Into::into),
            detail: detail.into(),
            client_pid: peer.pid,
            client_uid: peer.uid,
            client_exe: peer.exe.clone(),
        };
        self.db()?.audit(&entry, now()).map_err(Fail::internal)
    }
}
