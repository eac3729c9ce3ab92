//! The MCP tools' arguments, named as in the public tool contract (camelCase: `connectionId`,
//! `sessionId`, `commandId`, `keyName`, `tail`, `grep`, ...). Field doc comments become the JSON
//! Schema descriptions agents read.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// No arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct NoArgs {}

/// `ssh_tool_search`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// e.g. "logs grep", "host key".
    pub query: String,
}

/// `ssh_conn` operations.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConnOp {
    /// All saved connections.
    List,
    /// Check reachability, host key, login and round-trip time (saved or given by host/username).
    Test,
    /// Save or update a connection (name, host, port, username, client, keyName).
    Save,
    /// One connection's details.
    Show,
    /// Delete a saved connection.
    Remove,
    /// Pin the server's host key (give the fingerprint you verified; without it, the key shown now).
    Trust,
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
    /// SHA256:... as ssh-keygen -lf prints it (trust).
    pub fingerprint: Option<String>,
    /// Seconds (default 30).
    pub keepalive_interval: Option<u32>,
    /// Missed keepalives before it counts as dead (default 3).
    pub keepalive_max: Option<u32>,
    /// Seconds an unused session stays open (default 600).
    pub idle_timeout: Option<u32>,
    /// The server's authorized_keys path (default .ssh/authorized_keys).
    pub authorized_keys: Option<String>,
}

/// `ssh_key` operations.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeyOp {
    /// Import a private key (privateKey); it is encrypted into the vault and never returned.
    Add,
    /// Generate a new key in the vault (keyType: ed25519, rsa, ecdsa).
    Generate,
    /// All keys (public data only).
    List,
    /// One key: type, fingerprint, comment, linked connections.
    Show,
    /// The public key as an authorized_keys line.
    Pub,
    /// Link a key to a connection (the only key offered to that server).
    Link,
    /// Remove a key's link to a connection.
    Unlink,
    /// Delete a key from the vault.
    Remove,
    /// Replace the key on every connection linked to it (keyType; resume to continue after a failure; dryRun for the plan).
    Rotate,
    /// Install the key's public half on connectionId's server (logging in with its current key) and prove it logs in.
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

/// `ssh_exec` operations.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExecOp {
    /// Open a persistent session on connectionId; returns sessionId.
    Open,
    /// Start a command on sessionId or connectionId; returns commandId at once.
    Run,
    /// A command's state, exit code, timings and output counts.
    Status,
    /// A command's output lines, filtered (stream, grep, head, tail, fromLine, toLine).
    Logs,
    /// Sessions and running commands.
    List,
    /// Close a session.
    Close,
    /// Stop a command and everything it started on the server.
    Cancel,
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
    /// Seconds before it is killed.
    pub timeout: Option<u64>,
    pub cwd: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
    /// Standard input text (e.g. for sudo -S); never stored.
    pub stdin: Option<String>,
    /// A terminal (stderr merges into stdout).
    pub pty: Option<bool>,
    /// stdout, stderr or both (default).
    pub stream: Option<String>,
    /// Regex or substring.
    pub grep: Option<String>,
    pub ignore_case: Option<bool>,
    pub head: Option<u64>,
    pub tail: Option<u64>,
    /// Lines are numbered from 1 across both streams.
    pub from_line: Option<u64>,
    pub to_line: Option<u64>,
    /// Reply cap (default 65536).
    pub max_bytes: Option<u64>,
}

/// `ssh_stream_info`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamInfoArgs {
    pub command_id: String,
}

/// `ssh_client` operations.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientOp {
    /// Client groups with their connections.
    List,
    /// Put connections in a client group.
    Assign,
    /// Take connections out of their client group.
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

/// `ssh_bulk_conn` operations.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BulkConnToolOp {
    /// Reachability, host key, login and round-trip time of each target.
    Test,
    /// Open a persistent session to each target (warm a fleet before work).
    Open,
    /// Close the sessions to each target.
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

/// `ssh_bulk_audit` operations.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuditToolOp {
    /// Read-only security checks with findings (check, status, severity, evidence, fix).
    Security,
    /// OS, kernel, uptime, CPUs, memory, disks.
    Inventory,
    /// A stored audit again, by auditId.
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

/// `ssh_shell` operations.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ShellOp {
    /// Open a PTY shell on connectionId (cols, rows, term) -> shellId.
    Open,
    /// Type text (enter=true presses Enter after it).
    Send,
    /// Press a key: enter, tab, escape, backspace, up/down/left/right, home, end, pageup, pagedown, delete, f1-f12, ctrl-c, ctrl-d, ctrl-z, ...
    Key,
    /// Output since cursor (terminal codes removed); screen=true adds the screen as a terminal shows it. With grep/tail/head/fromLine/toLine: the stored output log.
    Read,
    /// Wait until pattern (regex) appears after cursor (default: since the last input), or on the screen with screen=true, or timeout seconds pass.
    Wait,
    /// Change the terminal size (cols, rows).
    Resize,
    /// Send a signal (INT, TERM, KILL, HUP, QUIT): to the foreground job in tmux-backed shells.
    Signal,
    /// State, size, whether it survives reconnects (tmux), cursor.
    Status,
    /// All shells.
    List,
    /// End the shell.
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
    /// Read the stored log instead (with head, tail, fromLine, toLine).
    pub grep: Option<String>,
    pub ignore_case: Option<bool>,
    pub head: Option<u64>,
    pub tail: Option<u64>,
    pub from_line: Option<u64>,
    pub to_line: Option<u64>,
    pub max_bytes: Option<u64>,
}

/// `ssh_sftp` operations.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SftpOp {
    /// Copy localPath to remotePath (recursive for directories; verify checks size and SHA-256).
    Upload,
    /// Copy remotePath to localPath (recursive for directories; verify checks size and SHA-256).
    Download,
    /// A remote directory's entries (path or remotePath).
    List,
    /// A remote path's type, size, mode, owner.
    Stat,
    /// Create a remote directory with its parents.
    Mkdir,
    /// Remove a remote file, or a directory with recursive=true.
    Remove,
    /// Rename remotePath (or path) to newPath, replacing an existing file atomically.
    Rename,
    /// Set permission bits (mode, octal string like "640").
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

/// `ssh_file` operations.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FileOp {
    /// A text file, or lines fromLine..toLine (maxBytes caps the reply).
    Read,
    /// Replace the whole file with content, atomically (mode and owner kept); backup=true keeps the old content.
    Write,
    /// Replace exact text old with new; fails and changes nothing unless old occurs exactly expectedCount times (default 1).
    Replace,
    /// Edit one line: edit = insert_before | insert_after | replace | delete, at line (number) or pattern (regex matching exactly expectedCount lines), with content.
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
