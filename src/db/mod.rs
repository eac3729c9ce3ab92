//! The broker's SQLite database: keys (as vault ciphertext), connections, pinned host keys and
//! the audit log. Only the broker opens it.

mod audit;
mod authority;
mod commands;
mod conns;
mod error;
mod forwards;
mod hostkeys;
mod keys;
pub mod log_chunks;
pub mod log_files;
mod retention;
mod rotations;
mod secrets;
mod tokens;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rusqlite::Connection;

/// The clock rows are stamped with, re-exported where the broker has always found it.
pub use crate::clock::{now, now_ms};
pub use audit::{AuditEntry, AuditHead, AuditKey, ChainCheck};
pub use authority::ApprovalRow;
pub use commands::{CommandRow, NewCommand, record_output_loss};
pub use conns::ConnRow;
pub use error::{DbError, Result, UnknownWord};
pub use forwards::ForwardRow;
pub use hostkeys::Pin;
pub use keys::KeyRow;
pub use retention::Swept;
pub use rotations::{RotationHostRow, RotationRow};
pub use secrets::SecretRow;
pub use tokens::McpTokenRow;

/// The database handle. Calls are short and synchronous; the broker serialises them with a mutex.
pub struct Db {
    conn: Connection,
}

const SCHEMA: &[&str] = &[
    r#"
CREATE TABLE keys (
    name        TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    comment     TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    sealed      BLOB NOT NULL,  -- age ciphertext of the OpenSSH private key, to the vault
    created     INTEGER NOT NULL
);
CREATE TABLE connections (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    host               TEXT NOT NULL,
    port               INTEGER NOT NULL,
    user               TEXT NOT NULL,
    key_name           TEXT REFERENCES keys(name) ON DELETE SET NULL,
    client             TEXT,
    host_key_policy    TEXT NOT NULL,
    keepalive_interval INTEGER NOT NULL,
    keepalive_max      INTEGER NOT NULL,
    idle_timeout       INTEGER NOT NULL,
    created            INTEGER NOT NULL
);
CREATE TABLE host_keys (
    host        TEXT NOT NULL,
    port        INTEGER NOT NULL,
    algorithm   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    source      TEXT NOT NULL,
    pinned_at   INTEGER NOT NULL,
    PRIMARY KEY (host, port)
);
CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY,
    ts         INTEGER NOT NULL,
    op         TEXT NOT NULL,
    key_name   TEXT,
    conn       TEXT,
    detail     TEXT NOT NULL,
    client_pid INTEGER,
    client_uid INTEGER,
    client_exe TEXT,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE commands (
    id            TEXT PRIMARY KEY,
    session_id    TEXT,
    target        TEXT NOT NULL,   -- as given: a connection name or user@host[:port]
    conn_name     TEXT,
    key_name      TEXT,
    commands      TEXT NOT NULL,   -- JSON array of command strings, run in order
    options       TEXT NOT NULL,   -- JSON: cwd, env, pty, timeout (never stdin text)
    detached      INTEGER NOT NULL,
    state         TEXT NOT NULL,
    exit_code     INTEGER,
    signal        TEXT,
    error         TEXT,
    created_ms    INTEGER NOT NULL,
    started_ms    INTEGER,
    ended_ms      INTEGER,
    stdout_bytes  INTEGER NOT NULL DEFAULT 0,  -- bytes received and committed, per stream
    stderr_bytes  INTEGER NOT NULL DEFAULT 0,
    stdout_lines  INTEGER NOT NULL DEFAULT 0,
    stderr_lines  INTEGER NOT NULL DEFAULT 0,
    stored_bytes  INTEGER NOT NULL DEFAULT 0,  -- bytes kept (the per-command cap applies)
    remote_pgid   INTEGER,
    spool         TEXT,                        -- detached: the spool directory on the server
    bulk_id       TEXT
);
CREATE INDEX commands_state ON commands(state);
CREATE INDEX commands_bulk ON commands(bulk_id);
CREATE TABLE log_lines (
    command_id TEXT NOT NULL,
    n          INTEGER NOT NULL,   -- 1-based, across both streams, in arrival order
    stream     INTEGER NOT NULL,   -- 1 stdout, 2 stderr, 3 sshkeep's own marker lines
    text       TEXT NOT NULL,
    PRIMARY KEY (command_id, n)
) WITHOUT ROWID;
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    r#"
ALTER TABLE commands ADD COLUMN error_code TEXT;
CREATE TABLE bulk_runs (
    id          TEXT PRIMARY KEY,
    commands    TEXT NOT NULL,   -- JSON array, run in order on every target
    concurrency INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE fleet_audits (
    id         TEXT PRIMARY KEY,  -- the bulk run's id
    op         TEXT NOT NULL,     -- security or inventory
    created_ms INTEGER NOT NULL,
    report     TEXT NOT NULL      -- JSON: per target, findings or inventory
);
"#,
    r#"
-- Interactive shells keep their output in the same log store as commands.
ALTER TABLE commands ADD COLUMN kind TEXT NOT NULL DEFAULT 'command';
"#,
    r#"
-- Key lifecycle: retired keys, the agent socket's per-key options, rotations.
ALTER TABLE keys ADD COLUMN retired INTEGER;                     -- unix seconds; never used again
ALTER TABLE keys ADD COLUMN agent_offer INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN agent_confirm INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN agent_until INTEGER;                 -- unix seconds: offered until then
ALTER TABLE connections ADD COLUMN authorized_keys TEXT NOT NULL DEFAULT '.ssh/authorized_keys';
CREATE TABLE rotations (
    id         TEXT PRIMARY KEY,
    key_name   TEXT NOT NULL,     -- the key being replaced (keeps its name once done)
    new_key    TEXT NOT NULL,     -- the replacement, under a temporary name until done
    key_type   TEXT NOT NULL,
    state      TEXT NOT NULL,     -- running, partial, done
    retired_as TEXT,
    created    INTEGER NOT NULL,
    updated    INTEGER NOT NULL
);
CREATE TABLE rotation_hosts (
    rotation_id TEXT NOT NULL REFERENCES rotations(id) ON DELETE CASCADE,
    conn        TEXT NOT NULL,
    step        TEXT NOT NULL,    -- pending, appended, verified, switched, cleaned
    error       TEXT,
    updated     INTEGER NOT NULL,
    PRIMARY KEY (rotation_id, conn)
);
"#,
    r#"
-- A shell's terminal (JSON: term, cols, rows, persistent), to re-adopt tmux shells at start.
ALTER TABLE commands ADD COLUMN shell TEXT;
"#,
    r#"
-- Jump hosts: saved connection names, comma-separated, first hop first.
ALTER TABLE connections ADD COLUMN jump TEXT NOT NULL DEFAULT '';
"#,
    r#"
-- Output that could not be stored (a full disk): bytes lost and the storage error.
ALTER TABLE commands ADD COLUMN lost_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE commands ADD COLUMN storage_error TEXT;
"#,
    r#"
-- Pins are kept under canonical host names (lowercase); IP literals in other forms never
-- matched a connection's saved address before either.
UPDATE OR IGNORE host_keys SET host = lower(host);
UPDATE OR IGNORE connections SET host = lower(host);
"#,
    r#"
-- Audit records whose hash is an HMAC under the audit key sealed in the vault.
ALTER TABLE audit ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- Authority: the user's own profiles, requests waiting for approval, time-limited grants of an
-- exact command, and the commands each profile started (for quotas).
CREATE TABLE profiles (
    name    TEXT PRIMARY KEY,
    body    TEXT NOT NULL,      -- JSON
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE approvals (
    id           TEXT PRIMARY KEY,   -- the command id or bulk run id the client was given
    kind         TEXT NOT NULL,      -- command, bulk, shell
    profile      TEXT NOT NULL,
    target       TEXT NOT NULL,
    command      TEXT NOT NULL,      -- the exact text approved
    request      TEXT NOT NULL,      -- JSON: what runs once approved
    class        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    state        TEXT NOT NULL,      -- pending, approved, denied, expired
    decided_by   TEXT,
    decided_at   INTEGER,
    deny_reason  TEXT,
    requested_by TEXT NOT NULL,
    created      INTEGER NOT NULL,
    expires      INTEGER NOT NULL
);
CREATE INDEX approvals_state ON approvals(state);
CREATE TABLE grants (
    id       INTEGER PRIMARY KEY,
    profile  TEXT NOT NULL,
    target   TEXT NOT NULL,
    command  TEXT NOT NULL,
    until    INTEGER NOT NULL,
    approval TEXT NOT NULL
);
CREATE TABLE profile_uses (
    profile TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
);
CREATE INDEX profile_uses_at ON profile_uses(profile, at_ms);
"#,
    r#"
-- Port forwards the broker holds, opened again when it starts; removed by `forward close`.
CREATE TABLE forwards (
    id           TEXT PRIMARY KEY,
    target       TEXT NOT NULL,     -- as given: a connection name or user@host[:port]
    key_name     TEXT,              -- the key asked for, if not the linked one
    kind         TEXT NOT NULL,     -- local, dynamic, remote
    bind_address TEXT NOT NULL,
    bind_port    INTEGER NOT NULL,  -- the port bound (or given by the server), never 0 once open
    host         TEXT,
    host_port    INTEGER,
    allow_public INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL
);
"#,
    r#"
-- OpenSSH's ConnectTimeout: seconds for the TCP connect and the SSH handshake (NULL: sshkeep's).
ALTER TABLE connections ADD COLUMN connect_timeout INTEGER;
"#,
    r#"
-- When each output line's first byte arrived (Unix milliseconds; NULL for older lines).
ALTER TABLE log_lines ADD COLUMN at_ms INTEGER;
"#,
    r#"
-- Bearer tokens for `sshkeep mcp --http`: the SHA-256 of each, never its text.
CREATE TABLE mcp_tokens (
    name      TEXT PRIMARY KEY,
    hash      BLOB NOT NULL,
    profile   TEXT NOT NULL,
    created   INTEGER NOT NULL,
    last_used INTEGER
);
"#,
    r#"
-- A key that stays in another ssh-agent: that agent's socket (`sealed` is then empty: the vault
-- never holds it). Which keys the agent socket may forward, and to which hosts it signs.
ALTER TABLE keys ADD COLUMN held_by TEXT;
ALTER TABLE keys ADD COLUMN agent_forward INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN agent_only_to TEXT NOT NULL DEFAULT '';  -- comma-separated hosts
ALTER TABLE connections ADD COLUMN forward_agent INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- Login passwords, sealed into the vault like keys, with the servers (host:port, comma-separated)
-- each may be sent to; the password linked to a connection; a key's OpenSSH user certificate.
CREATE TABLE secrets (
    name    TEXT PRIMARY KEY,
    sealed  BLOB NOT NULL,  -- age ciphertext of the password, to the vault
    hosts   TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL
);
ALTER TABLE connections ADD COLUMN password_secret TEXT REFERENCES secrets(name) ON DELETE SET NULL;
CREATE TABLE key_certs (
    key_name    TEXT PRIMARY KEY REFERENCES keys(name) ON DELETE CASCADE,
    certificate TEXT NOT NULL,  -- the public `...-cert-v01@openssh.com` line
    added       INTEGER NOT NULL
);
"#,
    r#"
-- Output in chunks of whole lines with a line index (see src/db/log_chunks.rs). Lines stored
-- before stay in log_lines and are read from there.
CREATE TABLE log_chunks (
    id         INTEGER PRIMARY KEY,
    command_id TEXT NOT NULL,
    first_n    INTEGER NOT NULL,   -- the number of the chunk's first line
    lines      INTEGER NOT NULL,
    markers    INTEGER NOT NULL,   -- how many of its lines are sshkeep's own markers
    runs       BLOB NOT NULL,      -- stream and arrival time of each stretch of lines
    idx        BLOB NOT NULL,      -- byte offset of every 64th line
    data       BLOB NOT NULL       -- the lines, each ending in \n
);
CREATE UNIQUE INDEX log_chunks_n ON log_chunks(command_id, first_n);
CREATE INDEX log_chunks_markers ON log_chunks(command_id, first_n) WHERE markers > 0;
"#,
    r#"
-- A chunk's bytes in the command's output file (src/db/log_files.rs) instead of `data`, which
-- is then empty: output written once, not through the write-ahead log and again at checkpoints.
ALTER TABLE log_chunks ADD COLUMN file_off INTEGER;
ALTER TABLE log_chunks ADD COLUMN file_len INTEGER;
"#,
];

impl Db {
    /// Opens (creating with mode 0600) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|e| DbError::File {
                    action: "create",
                    path: path.to_path_buf(),
                    source: Box::new(e),
                })?;
        }
        let conn = Connection::open(path).map_err(DbError::file("open", path))?;
        conn.execute_batch(
            "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(DbError::file("configure", path))?;
        let mut db = Self { conn };
        db.migrate().map_err(DbError::file("migrate", path))?;
        Ok(db)
    }

    fn migrate(&mut self) -> rusqlite::Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for (i, step) in SCHEMA.iter().enumerate().skip(version.max(0) as usize) {
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Refuses a database that is missing or has never been set up (an empty file): called
    /// when a vault exists, because then the database held its keys, pins and audit log, and
    /// making a new one would hide their loss.
    pub fn check_present(path: &Path, vault_dir: &Path) -> Result<()> {
        let version = match std::fs::metadata(path) {
            Ok(m) if m.len() > 0 => Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)))
            .map_err(DbError::file("read", path))?,
            _ => 0,
        };
        if version == 0 {
            return Err(DbError::Missing {
                db: path.to_path_buf(),
                vault: vault_dir.to_path_buf(),
            });
        }
        Ok(())
    }

    /// Moves everything in the write-ahead log into the database file and empties the log, so
    /// that a copy of the database file alone is a complete backup. Called on a clean stop.
    pub fn checkpoint(&self) -> Result<()> {
        let (busy, _, _): (i64, i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        if busy != 0 {
            return Err(DbError::Busy);
        }
        Ok(())
    }

    /// Opens a second connection to the same database (the log writer and readers use their
    /// own, so long reads never wait for the broker's main connection).
    pub fn open_extra(path: &Path) -> Result<Connection> {
        let conn = Connection::open(path).map_err(DbError::file("open", path))?;
        conn.execute_batch(
            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;",
        )?;
        Ok(conn)
    }

    /// Raw access for tests that tamper with the database on purpose.
    pub fn raw(&self) -> &Connection {
        &self.conn
    }
}

/// The UTC time now as `20261122T223716Z`, for names of files and keys (backups, retired keys).
pub fn name_stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "")
}
