//! The data carried by requests and replies.

use super::{
    ApprovalInfo, ErrorCode, LineStream, ProfileInfo, RotationState, RotationStep, SecretString,
    SessionState,
};
use serde::{Deserialize, Serialize};

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
    /// Held until the user approves it; nothing has started.
    AwaitingApproval,
    /// The user refused it; nothing ran.
    Denied,
    /// Nobody approved it in time (or the broker restarted); nothing ran.
    Expired,
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
            Self::AwaitingApproval => "awaiting_approval",
            Self::Denied => "denied",
            Self::Expired => "expired",
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
            Self::AwaitingApproval,
            Self::Denied,
            Self::Expired,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether the command has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running | Self::AwaitingApproval)
    }
}

/// Which lines `logs` returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// `grep` matches regardless of case.
    #[serde(default)]
    pub ignore_case: bool,
    pub head: Option<u64>,
    pub tail: Option<u64>,
    pub from_line: Option<u64>,
    pub to_line: Option<u64>,
    /// Reply size cap in bytes (the broker also has its own ceiling).
    pub max_bytes: Option<u64>,
    /// Each line with the time it arrived.
    #[serde(default)]
    pub timestamps: bool,
}

/// Key algorithms `key generate` can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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
    /// The server's authorized_keys file that key rotation and deploy edit (relative to the
    /// login's home directory unless absolute).
    #[serde(default = "default_authorized_keys")]
    pub authorized_keys: String,
    /// Saved connections to hop through, first to last (OpenSSH's ProxyJump): each hop is its
    /// own login with its own host key, the next one tunnelled through it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jump: Vec<String>,
    /// Seconds allowed for the TCP connect and for the SSH handshake, each (OpenSSH's
    /// ConnectTimeout); sshkeep's defaults (15 s and 30 s) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<u32>,
    /// Forward sshkeep's agent to the server (OpenSSH's ForwardAgent): only keys marked
    /// `key agent NAME --forward` are served on it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forward_agent: bool,
    /// The stored password (a secret's name, never its value) this connection logs in with,
    /// by `password` or `keyboard-interactive`, besides or instead of its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// OpenSSH's default `AuthorizedKeysFile`.
pub fn default_authorized_keys() -> String {
    ".ssh/authorized_keys".into()
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

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    Stdout,
    Stderr,
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
    /// The profile this client works under (none: the user's own CLI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileInfo>,
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

/// Where `vault init` keeps the master identity, as the user chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The OS keyring when one is reachable, else a passphrase (said out loud, never plaintext).
    Auto,
    /// The OS keyring or nothing.
    Keyring,
    /// A passphrase.
    Passphrase,
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
    /// Unix seconds when a rotation retired it: kept encrypted, never used to log in.
    #[serde(default)]
    pub retired: Option<i64>,
    #[serde(default)]
    pub agent: AgentOptions,
    /// For a key that stays in another ssh-agent: that agent's socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// The OpenSSH user certificate a login offers with this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<super::CertInfo>,
}

/// How the ssh-agent socket treats a key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOptions {
    /// Listed and usable on the agent socket.
    pub offer: bool,
    /// Ask for confirmation before each signature (refused when no prompt can be shown).
    pub confirm: bool,
    /// Unix seconds after which it is no longer offered.
    pub until: Option<i64>,
    /// Served on the agent that sshkeep forwards to servers (connections saved with
    /// `--forward-agent`).
    #[serde(default)]
    pub forward: bool,
    /// Destination constraints: when set, signatures only for sessions bound
    /// (session-bind@openssh.com) to these hosts' keys, reached directly from here or through
    /// a listed `FROM>TO` hop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_to: Vec<String>,
}

/// A key OpenSSH's `ssh-add` gave the agent socket (held in the broker's memory only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAddedKey {
    /// Its comment, or its fingerprint when it has none.
    pub name: String,
    pub fingerprint: String,
    pub confirm: bool,
    /// Unix seconds at which it is dropped (`ssh-add -t`).
    pub expires: Option<i64>,
    /// Destination constraints, as `ssh-add -h` named them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_to: Vec<String>,
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
    /// What to do, as data (see [`super::ErrorNext`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<super::ErrorNext>,
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
    pub state: SessionState,
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
    /// Output bytes that could not be stored (a full disk, say); the logs hold a marker line
    /// where they went missing once storage works again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_lost_bytes: u64,
    /// The storage error that lost them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<String>,
    pub stdout: StreamStats,
    pub stderr: StreamStats,
    /// Lines stored so far (both streams and markers); poll logs from `total_lines + 1`.
    pub total_lines: u64,
    pub bulk_id: Option<String>,
    /// What the broker noticed while the command ran (a re-attach after a dropped connection,
    /// output past the cap, a server it could not reach), oldest first. Never part of the
    /// command's own stdout or stderr.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// For a command that waited for the user: why, and how it was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Box<ApprovalInfo>>,
}

/// One stored output line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogLine {
    pub n: u64,
    pub stream: LineStream,
    pub text: String,
    /// When the line's first byte arrived (Unix milliseconds), when the query asked for it and
    /// it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<i64>,
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

/// A key rotation: where each linked host stands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RotationReport {
    pub rotation_id: String,
    pub key: String,
    /// The replacement's name while the rotation runs (it takes `key`'s name when done).
    pub new_key: String,
    pub new_fingerprint: Option<String>,
    pub state: RotationState,
    /// The old key's name once retired.
    pub retired_as: Option<String>,
    pub hosts: Vec<RotationHost>,
}

/// One host of a rotation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RotationHost {
    pub conn: String,
    pub step: RotationStep,
    pub error: Option<String>,
    /// What the next run does on this host (dry run and partial rotations).
    pub next: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
