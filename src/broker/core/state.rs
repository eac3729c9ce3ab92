//! The broker's shared state.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use anyhow::Result;

use sshkeep_vault::Vault;
use tokio::sync::Notify;

use crate::broker::core::fail::Fail;
use crate::broker::core::handshakes::HandshakeLimits;
use crate::broker::core::jobs::Jobs;
use crate::broker::core::listener::Peer;
use crate::broker::core::sessions::Sessions;
use crate::db::{AuditEntry, AuditKey, ChainCheck, Db, now};
use crate::logs::LogWriter;
use crate::paths::Paths;
use crate::protocol::ErrorCode;
use crate::settings::Settings;

/// Everything the broker's core holds. Fields are private: features reach the state through
/// the methods below, so what they may do with it is said in one place.
pub struct Core {
    paths: Paths,
    db: Mutex<Db>,
    /// `None` until `vault init`.
    vault: Mutex<Option<Vault>>,
    sessions: Sessions,
    jobs: Jobs,
    /// Per-server handshake limits for fleet runs.
    handshakes: HandshakeLimits,
    log_writer: LogWriter,
    /// A connection of its own for reading logs (long reads never hold the main one).
    log_reader: Mutex<rusqlite::Connection>,
    settings: RwLock<Settings>,
    /// The per-command output cap, shared with the log writer thread.
    log_cap: Arc<AtomicU64>,
    started: Instant,
    shutdown: Notify,
    /// Unix seconds of the last key decryption or unlock (for the idle auto-lock).
    last_key_use: AtomicI64,
    /// Set when the broker is shutting down (work in flight must not record itself as ended:
    /// tmux shells are re-adopted by the next broker).
    stopping: AtomicBool,
    /// Why the vault was locked by the broker itself (shown with "vault is locked" errors).
    lock_reason: Mutex<Option<String>>,
    /// The audit chain's HMAC key, from the first unlock on (see `audit_key`).
    audit_key: Mutex<Option<AuditKey>>,
    /// Keys OpenSSH's `ssh-add` gave the agent socket (memory only).
    agent_added: crate::broker::agent::AddedKeys,
}

impl Core {
    /// Builds the state around an open database and vault, with the settings stored in it.
    pub fn new(paths: Paths, db: Db, vault: Option<Vault>) -> Result<Arc<Self>> {
        let mut settings = Settings::default();
        for s in settings.describe() {
            if let Some(v) = db.setting(&s.key)?
                && let Err(e) = settings.set(&s.key, &v)
            {
                tracing::warn!("ignoring stored setting: {e}");
            }
        }
        let log_cap = Arc::new(AtomicU64::new(
            settings.get(crate::settings::Key::LogMaxCommandBytes),
        ));
        let log_writer = LogWriter::start(
            &paths.database(),
            paths.state.join("output-spill.bin"),
            log_cap.clone(),
        )?;
        let log_reader = Mutex::new(Db::open_extra(&paths.database())?);
        Ok(Arc::new(Self {
            paths,
            db: Mutex::new(db),
            vault: Mutex::new(vault),
            sessions: Sessions::default(),
            jobs: Jobs::default(),
            handshakes: HandshakeLimits::default(),
            log_writer,
            log_reader,
            settings: RwLock::new(settings),
            log_cap,
            started: Instant::now(),
            shutdown: Notify::new(),
            last_key_use: AtomicI64::new(crate::db::now()),
            lock_reason: Mutex::new(None),
            audit_key: Mutex::new(None),
            stopping: AtomicBool::new(false),
            agent_added: Default::default(),
        }))
    }

    /// Keys `ssh-add` gave the agent socket, held in memory only.
    pub fn agent_added(&self) -> &crate::broker::agent::AddedKeys {
        &self.agent_added
    }

    /// Where the broker keeps its files.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The open SSH sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The jobs (commands, fleet targets) running now.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Per-server handshake limits.
    pub fn handshakes(&self) -> &HandshakeLimits {
        &self.handshakes
    }

    /// Where jobs' output goes (into the log store).
    pub fn log_writer(&self) -> &LogWriter {
        &self.log_writer
    }

    /// The log-reading connection (a long read holds it, never the main one).
    pub fn log_reader(&self) -> Result<MutexGuard<'_, rusqlite::Connection>, Fail> {
        self.log_reader
            .lock()
            .map_err(|_| Fail::internal("log reader lock poisoned"))
    }

    /// How long the broker has run.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Asks the broker to stop (the daemon's accept loop ends).
    pub fn request_shutdown(&self) {
        self.shutdown.notify_one();
    }

    /// Returns once a stop was asked for.
    pub async fn shutdown_requested(&self) {
        self.shutdown.notified().await
    }

    /// The broker is stopping: work in flight must not record itself as ended.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether the broker is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Seconds since a key was last decrypted or the vault unlocked.
    pub fn secs_since_key_use(&self) -> i64 {
        crate::db::now() - self.last_key_use.load(Ordering::Relaxed)
    }

    /// Says why the broker locked the vault by itself (shown with "vault is locked" errors).
    pub fn set_lock_reason(&self, why: String) {
        if let Ok(mut r) = self.lock_reason.lock() {
            *r = Some(why);
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> Settings {
        self.settings.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Changes a setting and stores it.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), Fail> {
        let mut s = self
            .settings
            .write()
            .map_err(|_| Fail::internal("settings lock poisoned"))?;
        let v = s
            .set(key, value)
            .map_err(|e| Fail::new(ErrorCode::InvalidArgument, e))?;
        self.db()?.set_setting(key, &v.to_string())?;
        if key == "log_max_command_bytes" {
            self.log_cap.store(v, Ordering::Relaxed);
        }
        Ok(())
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

    /// The error for a request that needs a vault when there is none.
    pub fn no_vault(&self) -> Fail {
        self.orphaned_vault().unwrap_or_else(|| {
            sshkeep_vault::VaultError::NotInitialized(self.paths.vault_dir()).into()
        })
    }

    /// With no vault: an error when the vault's metadata is gone but the master identity or
    /// sealed keys are still there. It says to restore the vault instead of making a new one,
    /// which would lose every stored key for good.
    pub fn orphaned_vault(&self) -> Option<Fail> {
        let (meta, wrapped) = Vault::files(&self.paths.vault_dir());
        let mut left = Vec::new();
        if wrapped.exists() {
            left.push(wrapped.display().to_string());
        }
        // Through the reader's own connection: callers may hold the vault's lock, and the main
        // connection's lock is taken before the vault's elsewhere.
        let sealed: i64 = self
            .log_reader
            .lock()
            .ok()
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM keys", [], |r| r.get(0))
                    .ok()
            })
            .unwrap_or(0);
        if sealed > 0 {
            left.push(format!(
                "{sealed} sealed key(s) in {}",
                self.paths.database().display()
            ));
        }
        (!left.is_empty())
            .then(|| sshkeep_vault::VaultError::Orphaned(meta, left.join(" and ")).into())
    }

    /// Records a use of the vault (a key decrypted, an unlock): the idle auto-lock restarts.
    pub fn key_used(&self) {
        self.last_key_use.store(crate::db::now(), Ordering::Relaxed);
        if let Ok(mut r) = self.lock_reason.lock() {
            *r = None;
        }
    }

    /// " (why)" when the broker locked the vault by itself, for "vault is locked" messages.
    pub fn lock_note(&self) -> String {
        self.lock_reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
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
        let key = self.audit_key.lock().ok().and_then(|k| k.clone());
        let head = self.db()?.audit(&entry, now(), key.as_ref())?;
        if let Err(e) = crate::broker::core::audit_key::write_head(&self.paths, &head) {
            tracing::warn!(
                "cannot write the audit head (truncation of the audit log would not show): {e}"
            );
        }
        Ok(())
    }

    /// Loads (or makes) the audit key with the vault unlocked; later records are keyed.
    pub fn load_audit_key(&self, vault: &Vault) {
        if self.audit_key.lock().is_ok_and(|k| k.is_some()) {
            return;
        }
        match crate::broker::core::audit_key::load_or_create(&self.paths, vault) {
            Ok(key) => {
                if let Ok(mut slot) = self.audit_key.lock() {
                    *slot = Some(key);
                }
            }
            Err(f) => tracing::warn!("audit records stay unkeyed: {}", f.message),
        }
    }

    /// Checks the audit chain with the key and the head written outside the database.
    pub fn verify_audit(&self) -> Result<ChainCheck, Fail> {
        let key = self.audit_key.lock().ok().and_then(|k| k.clone());
        let head = crate::broker::core::audit_key::read_head(&self.paths);
        let check = self.db()?.verify_audit(key.as_ref(), head.as_ref())?;
        if check.needs_key && check.first_broken.is_none() {
            return Err(Fail::new(
                ErrorCode::VaultLocked,
                "the audit log is keyed with a key kept in the vault, and this broker has not seen the vault unlocked: run `sshkeep unlock`, then verify again",
            ));
        }
        Ok(check)
    }
}
