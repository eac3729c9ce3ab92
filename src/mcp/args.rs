//! The MCP tools' arguments, named as in the public tool contract (camelCase: `connectionId`,
//! `sessionId`, `commandId`, `keyName`, `tail`, `grep`, ...). Field doc comments become the JSON
//! Schema descriptions agents read, and are the one place arguments are documented; the tools and
//! their ops are documented in [`super::catalog`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::protocol::{LogQuery, StreamFilter};

/// No arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct NoArgs {}

/// `ssh_tool_search`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// e.g. "logs grep", "host key".
    pub query: String,
}

/// `ssh_conn` operations; what each does is said in [`super::catalog`].
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConnOp {
    List,
    Test,
    Save,
    Show,
    Remove,
    Trust,
    Forward,
    Forwards,
    Unforward,
}

/// `ssh_conn`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnArgs {
    pub op: ConnOp,
    /// Id or name (or user@host[:port] for test).
    pub connection_id: Option<String>,
    /// New connection's name (save).
    pub name: Option<String>,
    pub host: Option<String>,
    /// Default 22.
    pub port: Option<u16>,
    pub username: Option<String>,
    /// Client (customer) group.
    pub client: Option<String>,
    /// Key to log in with.
    pub key_name: Option<String>,
    /// accept-new (default: pin on first login) or strict.
    pub host_key_policy: Option<String>,
    /// SHA256:... (trust).
    pub fingerprint: Option<String>,
    /// Seconds (default 30).
    pub keepalive_interval: Option<u32>,
    /// Missed keepalives allowed (default 3).
    pub keepalive_max: Option<u32>,
    /// Seconds idle before closing (default 600).
    pub idle_timeout: Option<u32>,
    /// authorized_keys path on the server.
    pub authorized_keys: Option<String>,
    /// Bastions, first hop first.
    pub jump: Option<Vec<String>>,
    /// Seconds (ConnectTimeout).
    pub connect_timeout: Option<u32>,
    /// Stored password's name.
    pub password_secret: Option<String>,
    /// [bind:]port:host:hostport
    pub local: Option<String>,
    /// [bind:]port:host:hostport
    pub remote: Option<String>,
    /// [bind:]port
    pub dynamic: Option<String>,
    pub forward_id: Option<String>,
}

/// `ssh_key` operations; what each does is said in [`super::catalog`].
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeyOp {
    Add,
    Generate,
    List,
    Show,
    Pub,
    Link,
    Unlink,
    Remove,
    Rotate,
    Deploy,
}

/// `ssh_key`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyArgs {
    pub op: KeyOp,
    pub key_name: Option<String>,
    /// OpenSSH or PEM text (add); never returned.
    pub private_key: Option<String>,
    /// Of a protected privateKey (add).
    pub passphrase: Option<String>,
    /// ed25519 (default), rsa or ecdsa.
    pub key_type: Option<String>,
    /// Id or name (link, unlink, deploy).
    pub connection_id: Option<String>,
    /// Remove even if linked.
    pub force: Option<bool>,
    /// Continue an unfinished rotation.
    pub resume: Option<bool>,
    /// Only show the rotation's plan.
    pub dry_run: Option<bool>,
}

/// `ssh_exec` operations; what each does is said in [`super::catalog`].
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExecOp {
    Open,
    Run,
    Status,
    Logs,
    List,
    Close,
    Cancel,
    Wait,
}

/// A command, or several run in order that stop at the first failure.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CommandArg {
    One(String),
    Many(Vec<String>),
}

/// `ssh_exec`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecArgs {
    pub op: ExecOp,
    /// Id or name (open; run without sessionId uses its session).
    pub connection_id: Option<String>,
    pub session_id: Option<String>,
    /// From op=run.
    pub command_id: Option<String>,
    /// From ssh_bulk_exec (status, logs, cancel); connectionId, name or host pick one target.
    pub bulk_exec_id: Option<String>,
    /// A bulk target's connection name.
    pub name: Option<String>,
    /// A bulk target's host.
    pub host: Option<String>,
    /// A shell command, or a list run in order until one fails.
    pub command: Option<CommandArg>,
    /// Survive dropped connections and broker restarts.
    pub detach: Option<bool>,
    /// Seconds: run kills after; wait gives up after (default 30).
    pub timeout: Option<u64>,
    pub cwd: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
    /// Standard input text (e.g. for sudo -S); never stored.
    pub stdin: Option<String>,
    /// A terminal (stderr merges into stdout).
    pub pty: Option<bool>,
    /// stdout, stderr or both (default).
    pub stream: Option<String>,
    #[serde(flatten)]
    pub log: LogArgs,
}

/// Filters on stored output, shared by `ssh_exec` (logs) and `ssh_shell` (read): they become
/// the protocol's [`LogQuery`].
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogArgs {
    /// Regex or substring.
    pub grep: Option<String>,
    pub ignore_case: Option<bool>,
    pub head: Option<u64>,
    pub tail: Option<u64>,
    /// From 1, across both streams.
    pub from_line: Option<u64>,
    pub to_line: Option<u64>,
    /// Reply cap (default 65536).
    pub max_bytes: Option<u64>,
}

/// Replies are kept small for agents' contexts unless asked otherwise.
const DEFAULT_LOG_BYTES: u64 = 64 * 1024;

impl LogArgs {
    /// Whether a line filter is given (for ssh_shell: read the stored log, not the terminal).
    pub fn filters_lines(&self) -> bool {
        self.grep.is_some()
            || self.head.is_some()
            || self.tail.is_some()
            || self.from_line.is_some()
            || self.to_line.is_some()
    }

    /// The query for `command_id`'s output (empty for a bulk run: the broker fills in each
    /// target's command).
    pub fn query(self, command_id: String, stream: Option<StreamFilter>) -> LogQuery {
        LogQuery {
            command_id,
            stream,
            grep: self.grep,
            ignore_case: self.ignore_case.unwrap_or(false),
            head: self.head,
            tail: self.tail,
            from_line: self.from_line,
            to_line: self.to_line,
            max_bytes: Some(self.max_bytes.unwrap_or(DEFAULT_LOG_BYTES)),
            timestamps: false,
        }
    }
}

/// `ssh_stream_info`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamInfoArgs {
    pub command_id: String,
}

/// `ssh_client` operations; what each does is said in [`super::catalog`].
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientOp {
    List,
    Assign,
    Remove,
}

/// `ssh_client`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientArgs {
    pub op: ClientOp,
    pub client: Option<String>,
    pub connection_id: Option<String>,
    pub connection_ids: Option<Vec<String>>,
}

/// `ssh_bulk_exec`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkExecArgs {
    /// Run in order on each target, until one fails there.
    pub commands: Vec<String>,
    /// Ids or names.
    pub connection_ids: Option<Vec<String>>,
    /// Or a client group's connections.
    pub client: Option<String>,
    pub all: Option<bool>,
    /// Targets at once (default 10).
    pub concurrency: Option<u32>,
    /// Seconds before a target's command is killed.
    pub timeout: Option<u64>,
}

/// `ssh_bulk_conn` operations; what each does is said in [`super::catalog`].
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BulkConnToolOp {
    Test,
    Open,
    Close,
}

/// `ssh_bulk_conn`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkConnArgs {
    pub op: BulkConnToolOp,
    /// Ids or names.
    pub connection_ids: Option<Vec<String>>,
    /// Or a client group's connections.
    pub client: Option<String>,
    /// Targets at once (default 10).
    pub concurrency: Option<u32>,
}

/// `ssh_bulk_audit` operations; what each does is said in [`super::catalog`].
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuditToolOp {
    Security,
    Inventory,
    Show,
}

/// `ssh_bulk_audit`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkAuditArgs {
    pub op: AuditToolOp,
    /// Ids or names.
    pub connection_ids: Option<Vec<String>>,
    /// Or a client group's connections.
    pub client: Option<String>,
    /// Targets at once (default 10).
    pub concurrency: Option<u32>,
    pub audit_id: Option<String>,
}

/// `ssh_shell` operations; what each does is said in [`super::catalog`].
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ShellOp {
    Open,
    Send,
    Key,
    Read,
    Wait,
    Resize,
    Signal,
    Status,
    List,
    Close,
}

/// `ssh_shell`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShellArgs {
    pub op: ShellOp,
    pub connection_id: Option<String>,
    pub shell_id: Option<String>,
    /// Default 120.
    pub cols: Option<u16>,
    /// Default 40.
    pub rows: Option<u16>,
    /// Default xterm-256color.
    pub term: Option<String>,
    /// Run in tmux (default: when the server has it).
    pub persist: Option<bool>,
    pub text: Option<String>,
    pub enter: Option<bool>,
    pub key: Option<String>,
    /// Regex (wait).
    pub pattern: Option<String>,
    /// Seconds (default 30, at most 600).
    pub timeout: Option<u64>,
    /// From a previous reply's cursor.
    pub cursor: Option<u64>,
    /// The rendered screen (read, wait).
    pub screen: Option<bool>,
    /// INT, TERM, KILL, HUP, QUIT.
    pub signal: Option<String>,
    #[serde(flatten)]
    pub log: LogArgs,
}

/// `ssh_sftp` operations; what each does is said in [`super::catalog`].
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SftpOp {
    Upload,
    Download,
    List,
    Stat,
    Mkdir,
    Remove,
    Rename,
    Chmod,
}

/// `ssh_sftp`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SftpArgs {
    pub op: SftpOp,
    pub connection_id: String,
    /// Under the adapter's allowed roots (relative: under its working directory).
    pub local_path: Option<String>,
    pub remote_path: Option<String>,
    /// Same as remotePath.
    pub path: Option<String>,
    pub new_path: Option<String>,
    pub recursive: Option<bool>,
    /// Compare size and SHA-256 after a transfer.
    pub verify: Option<bool>,
    /// Octal, e.g. "640".
    pub mode: Option<String>,
}

/// `ssh_file` operations; what each does is said in [`super::catalog`].
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FileOp {
    Read,
    Write,
    Replace,
    EditLine,
}

/// `ssh_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileArgs {
    pub op: FileOp,
    pub connection_id: String,
    pub path: String,
    /// The file (write) or the line (edit_line).
    pub content: Option<String>,
    /// Exact text to find.
    pub old: Option<String>,
    pub new: Option<String>,
    /// Matches there must be (default 1).
    pub expected_count: Option<u64>,
    /// insert_before, insert_after, replace or delete.
    pub edit: Option<String>,
    /// 1-based.
    pub line: Option<u64>,
    /// Regex selecting lines.
    pub pattern: Option<String>,
    pub from_line: Option<u64>,
    pub to_line: Option<u64>,
    pub max_bytes: Option<u64>,
    /// Keep the old content as PATH.sshkeep-bak-TIME.
    pub backup: Option<bool>,
}
