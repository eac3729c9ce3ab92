//! The protocol between clients (CLI, MCP adapter) and the broker, in one place, with no I/O.
//!
//! Framing ([`crate::frame`]): a 4-byte big-endian length, then one JSON document of at most
//! [`MAX_FRAME`] bytes. A connection starts with [`Request::Hello`]; the broker answers with its
//! own version or with [`ErrorCode::ProtocolMismatch`]. Every request gets exactly one reply,
//! except [`Request::Exec`], whose replies are any number of [`Response::Output`] frames closed by
//! one [`Response::Exit`] or [`Response::Error`].
//!
//! Bump [`PROTOCOL_VERSION`] by hand on any change that an older peer would misread.

use serde::{Deserialize, Serialize};
use sshkeep_vault::{BackendChoice, SecretString};

/// The version both sides must agree on.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame either side accepts (16 MiB): far above any key, far below memory trouble.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// A client's request. Fields that carry secrets use [`SecretString`], whose `Debug` is redacted
/// and whose memory is wiped on drop.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// First frame on every connection.
    Hello { version: u32, client: String },
    /// Broker and vault status.
    Status,
    /// Stop the broker.
    Shutdown,
    /// Create the vault.
    VaultInit {
        backend: BackendChoice,
        passphrase: Option<SecretString>,
    },
    /// Unlock the vault (keyring backend: no passphrase).
    Unlock { passphrase: Option<SecretString> },
    /// Drop every decrypted secret from the broker's memory.
    Lock,
    /// Import a private key (OpenSSH or PEM text); `passphrase` decrypts a protected key file.
    KeyAdd {
        name: String,
        private_key: SecretString,
        passphrase: Option<SecretString>,
    },
    /// Generate a key in the vault.
    KeyGenerate { name: String, key_type: KeyType },
    /// All keys.
    KeyList,
    /// One key, with its links.
    KeyShow { name: String },
    /// Delete a key (refused while connections are linked to it, unless `force`).
    KeyRemove { name: String, force: bool },
    /// Link a key to a connection (a connection has at most one key).
    KeyLink { key: String, conn: String },
    /// Remove that link.
    KeyUnlink { key: String, conn: String },
    /// Create or update a saved connection.
    ConnSave(ConnSpec),
    /// All saved connections.
    ConnList,
    /// One connection.
    ConnShow { name: String },
    /// Delete a saved connection.
    ConnRemove { name: String },
    /// Diagnose a connection (saved name or `user@host[:port]`).
    ConnTest { target: String, key: Option<String> },
    /// Pin a host key: the given fingerprint, or the one the server presents now.
    ConnTrust {
        name: String,
        fingerprint: Option<String>,
    },
    /// Run a command and stream its output.
    Exec {
        target: String,
        key: Option<String>,
        command: String,
    },
    /// Audit records, newest last.
    AuditList(AuditFilter),
    /// Check the audit hash chain.
    AuditVerify,
    /// Open a persistent session on a target (a new SSH connection).
    SessionOpen { target: String, key: Option<String> },
    /// All sessions.
    SessionList,
    /// Close a session (its attached commands fail; detached ones keep running on the server).
    SessionClose { session_id: String },
    /// Start a command; the reply comes at once with its id.
    Run(RunSpec),
    /// A command's state.
    CommandStatus { command_id: String },
    /// A command's output, filtered.
    CommandLogs(LogQuery),
    /// Stop a command and everything it started.
    CommandCancel { command_id: String },
    /// Commands, newest first.
    CommandList {
        state: Option<String>,
        conn: Option<String>,
        limit: Option<u32>,
    },
    /// All settings with their values in force.
    Settings,
    /// Change a setting.
    SettingSet { key: String, value: String },
    /// Client (customer) groups with their connections.
    ClientList,
    /// Put connections in a client group (a connection is in at most one).
    ClientAssign { client: String, conns: Vec<String> },
    /// Take connections out of their client group.
    ClientRemove { conns: Vec<String> },
}

/// What to run, where, and how.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RunSpec {
    /// A connection name or `user@host[:port]`; its reusable session is used or opened.
    pub target: Option<String>,
    /// Or an open session.
    pub session_id: Option<String>,
    /// Log in with this key instead of the linked one.
    pub key: Option<String>,
    /// One command, or several run in order that stop at the first failure.
    pub commands: Vec<String>,
    /// Run on the server independently of the SSH connection (survives reconnects and broker restarts).
    pub detach: bool,
    /// Text fed to the command's standard input (then end of file). Kept out of logs and the database.
    pub stdin: Option<SecretString>,
    pub options: RunOptions,
}

/// Options of a run that are kept with the command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Working directory on the server.
    pub cwd: Option<String>,
    /// Environment variables set for the command.
    pub env: std::collections::BTreeMap<String, String>,
    /// Allocate a terminal (stderr is then merged into stdout).
    pub pty: bool,
    /// Seconds before the command is killed and marked `timed_out`.
    pub timeout_secs: Option<u64>,
}

/// The states of an asynchronous command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    /// Waiting for a session or a free channel.
    Queued,
    Running,
    /// Ended with exit status 0.
    Completed,
    /// Ended non-zero or by a signal, or could not run.
    Failed,
    Cancelled,
    TimedOut,
    /// The broker stopped while an attached command ran.
    Interrupted,
}

impl CommandState {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
            Self::Interrupted => "interrupted",
        }
    }

    /// Parses [`CommandState::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Completed,
            Self::Failed,
            Self::Cancelled,
            Self::TimedOut,
            Self::Interrupted,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether the command has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

/// Which lines `logs` returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StreamFilter {
    Stdout,
    Stderr,
    #[default]
    Both,
}

/// A filtered read of a command's output. Filters apply in this order: stream, line range,
/// grep, then head or tail.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LogQuery {
    pub command_id: String,
    pub stream: Option<StreamFilter>,
    /// A regular expression (a plain substring works too).
    pub grep: Option<String>,
    pub head: Option<u64>,
    pub tail: Option<u64>,
    pub from_line: Option<u64>,
    pub to_line: Option<u64>,
    /// Reply size cap in bytes (the broker also has its own ceiling).
    pub max_bytes: Option<u64>,
}

/// Key algorithms `key generate` can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// Ed25519 (default).
    Ed25519,
    /// RSA, 4096 bits.
    Rsa,
    /// ECDSA on NIST P-256.
    Ecdsa,
}

/// What to do with a host key that is not pinned yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Pin the key seen on the first successful login (OpenSSH's `accept-new`).
    #[default]
    AcceptNew,
    /// Refuse unless pinned (`conn trust`) or listed in `~/.ssh/known_hosts`.
    Strict,
}

impl HostKeyPolicy {
    /// The name used in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyPolicy::AcceptNew => "accept-new",
            HostKeyPolicy::Strict => "strict",
        }
    }

    /// Parses [`HostKeyPolicy::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "accept-new" => Some(Self::AcceptNew),
            "strict" => Some(Self::Strict),
            _ => None,
        }
    }
}

/// A connection to save.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnSpec {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key: Option<String>,
    pub client: Option<String>,
    pub host_key_policy: HostKeyPolicy,
    /// Seconds between keepalives (OpenSSH's ServerAliveInterval).
    pub keepalive_interval: u32,
    /// Unanswered keepalives before the connection is dropped (ServerAliveCountMax).
    pub keepalive_max: u32,
    /// Seconds an unused session stays open (like ControlPersist).
    pub idle_timeout: u32,
}

/// Filters for `audit`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditFilter {
    pub key: Option<String>,
    pub conn: Option<String>,
    pub op: Option<String>,
    /// Unix seconds.
    pub since: Option<i64>,
    pub limit: Option<u32>,
}

/// A broker reply.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Hello {
        version: u32,
        broker_version: String,
        pid: u32,
    },
    Ok {
        message: String,
    },
    Status(StatusInfo),
    Key(KeyInfo),
    Keys {
        keys: Vec<KeyInfo>,
    },
    Conn(ConnInfo),
    Conns {
        conns: Vec<ConnInfo>,
    },
    TestReport(TestReport),
    /// A chunk of a running command's output, base64-encoded (output may be binary).
    Output {
        stream: OutputStream,
        data: String,
    },
    /// The command ended: `status` is the exit code, or 128+N for signal N (shells' convention).
    Exit {
        status: i32,
        exit_code: Option<u32>,
        signal: Option<String>,
    },
    Audit {
        records: Vec<AuditRecord>,
    },
    AuditVerified {
        records: u64,
        first_broken: Option<u64>,
        reason: Option<String>,
    },
    Session(SessionInfo),
    Sessions {
        sessions: Vec<SessionInfo>,
    },
    CommandStarted {
        command_id: String,
        session_id: Option<String>,
        state: CommandState,
    },
    Command(CommandInfo),
    Commands {
        commands: Vec<CommandInfo>,
    },
    Logs(LogPage),
    Settings {
        settings: Vec<Setting>,
    },
    Clients {
        clients: Vec<ClientGroup>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Machine-readable error classes; the message says what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ProtocolMismatch,
    BadRequest,
    TooLarge,
    NotFound,
    AlreadyExists,
    InvalidArgument,
    VaultMissing,
    VaultLocked,
    PassphraseRequired,
    WrongPassphrase,
    KeyringUnavailable,
    KeyPassphraseRequired,
    KeyPassphraseWrong,
    InvalidKey,
    NoKey,
    HostKeyChanged,
    HostKeyUnknown,
    AuthFailed,
    Unreachable,
    Ssh,
    Internal,
}

/// `status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusInfo {
    pub broker_version: String,
    pub protocol_version: u32,
    pub pid: u32,
    pub uptime_secs: u64,
    pub vault: VaultStatus,
    pub sessions_open: u32,
    pub commands_running: u32,
    /// The database file's size.
    pub database_bytes: u64,
    pub state_dir: String,
    pub socket: String,
    /// The settings in force.
    pub settings: Vec<Setting>,
}

/// A client (customer) group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientGroup {
    pub name: String,
    pub connections: Vec<String>,
}

/// The vault part of `status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VaultStatus {
    pub initialized: bool,
    /// `keyring` or `passphrase`.
    pub backend: Option<String>,
    pub unlocked: bool,
    /// Why the vault is locked or unusable, and what to run.
    pub hint: Option<String>,
}

/// A key as clients see it: never any private material.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyInfo {
    pub name: String,
    pub algorithm: String,
    pub fingerprint: String,
    pub comment: String,
    /// The `authorized_keys` line.
    pub public_key: String,
    pub connections: Vec<String>,
    pub created: i64,
}

/// A saved connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnInfo {
    pub id: String,
    #[serde(flatten)]
    pub spec: ConnSpec,
    /// The pinned host key fingerprint for this host and port, if any.
    pub pinned_host_key: Option<String>,
    pub created: i64,
}

/// `conn test`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestReport {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Whether a TCP connection was made.
    pub reachable: bool,
    /// TCP connect time (a network round trip), milliseconds.
    pub connect_ms: Option<f64>,
    pub host_key: Option<HostKeyReport>,
    /// The key offered, if any.
    pub key: Option<String>,
    pub authenticated: bool,
    /// SSH handshake plus authentication, milliseconds.
    pub login_ms: Option<f64>,
    /// What failed, and what to do.
    pub error: Option<String>,
    pub error_code: Option<ErrorCode>,
}

/// The host key part of a test report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostKeyReport {
    pub algorithm: String,
    pub fingerprint: String,
    /// `pinned` (matches the pin), `known_hosts`, `pinned_now`, `new` (not pinned), `changed`, `refused`.
    pub status: String,
}

/// One audit record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    /// Unix seconds.
    pub ts: i64,
    pub op: String,
    pub key: Option<String>,
    pub conn: Option<String>,
    pub detail: String,
    pub client_pid: Option<u32>,
    pub client_uid: Option<u32>,
    pub client_exe: Option<String>,
    /// Hex SHA-256 of this record and the previous record's hash.
    pub hash: String,
}

/// A session as clients see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub target: String,
    pub conn_name: Option<String>,
    pub user: String,
    pub host: String,
    pub port: u16,
    /// `open`, `reconnecting`, `failed` or `closed`.
    pub state: String,
    /// Unix seconds.
    pub opened: i64,
    pub last_used: i64,
    pub channels_in_use: u32,
    /// The channel limit learned from the server (MaxSessions), or the configured ceiling.
    pub channel_limit: u32,
    pub commands_running: u32,
    pub commands_queued: u32,
    pub reconnects: u32,
    /// Why the session failed or is reconnecting.
    pub reason: Option<String>,
}

/// Bytes and lines received on one stream.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StreamStats {
    pub bytes: u64,
    pub lines: u64,
}

/// A command as clients see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommandInfo {
    pub command_id: String,
    pub session_id: Option<String>,
    pub target: String,
    pub conn_name: Option<String>,
    pub commands: Vec<String>,
    pub detached: bool,
    pub state: CommandState,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    pub error: Option<String>,
    /// Unix milliseconds.
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub stdout: StreamStats,
    pub stderr: StreamStats,
    /// Lines stored so far (both streams and markers); poll logs from `total_lines + 1`.
    pub total_lines: u64,
    pub bulk_id: Option<String>,
}

/// One stored output line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogLine {
    pub n: u64,
    /// `stdout`, `stderr` or `sshkeep` (a marker the broker wrote).
    pub stream: String,
    pub text: String,
}

/// A page of output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogPage {
    pub command_id: String,
    pub lines: Vec<LogLine>,
    /// Lines stored for the command so far.
    pub total_lines: u64,
    /// The reply hit its size cap; more matching lines follow.
    pub truncated: bool,
    /// Where to continue (`from_line`) to read the rest.
    pub next_from_line: Option<u64>,
    pub state: CommandState,
}

/// A setting.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub default: String,
    pub description: String,
}

impl Response {
    /// An error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Response::Error {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_and_secrets_redacted_in_debug() {
        let r = Request::KeyAdd {
            name: "k".into(),
            private_key: SecretString::new("-----BEGIN OPENSSH PRIVATE KEY-----".into()),
            passphrase: None,
        };
        let json = serde_json::to_string(&r).expect("serialize");
        assert!(json.starts_with(r#"{"type":"key_add""#));
        assert!(!format!("{r:?}").contains("BEGIN"));
    }

    #[test]
    fn unknown_request_types_fail_to_parse() {
        assert!(serde_json::from_str::<Request>(r#"{"type":"rm_rf"}"#).is_err());
    }
}
