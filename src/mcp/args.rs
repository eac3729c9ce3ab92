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
    /// Keywords to look for in tool names, operations and descriptions (e.g. "logs grep", "host key").
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
    /// A saved connection's id or name (or `user@host[:port]` for test and trust).
    pub connection_id: Option<String>,
    /// Name for a new connection (save).
    pub name: Option<String>,
    /// Host name or IP address (save, test).
    pub host: Option<String>,
    /// SSH port, default 22 (save, test).
    pub port: Option<u16>,
    /// Remote user name (save, test).
    pub username: Option<String>,
    /// Client (customer) group (save).
    pub client: Option<String>,
    /// Key to log in with (save; test without a saved connection).
    pub key_name: Option<String>,
    /// `accept-new` (default: pin the key seen on first login) or `strict` (refuse until trusted).
    pub host_key_policy: Option<String>,
    /// SHA256 host key fingerprint to pin (trust), as `ssh-keygen -lf` prints it.
    pub fingerprint: Option<String>,
    /// Seconds between keepalives (save; default 30).
    pub keepalive_interval: Option<u32>,
    /// Missed keepalives before the connection counts as dead (save; default 3).
    pub keepalive_max: Option<u32>,
    /// Seconds an unused session stays open (save; default 600).
    pub idle_timeout: Option<u32>,
    /// The server's authorized_keys file used by key rotation (save; default .ssh/authorized_keys).
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
    /// The key's name in the vault.
    pub key_name: Option<String>,
    /// Private key text in OpenSSH or PEM format (add). Accepted, encrypted, never returned.
    pub private_key: Option<String>,
    /// Passphrase of a protected private key (add).
    pub passphrase: Option<String>,
    /// `ed25519` (default), `rsa` or `ecdsa` (generate).
    pub key_type: Option<String>,
    /// Connection id or name (link, unlink).
    pub connection_id: Option<String>,
    /// Remove even if connections are linked (remove).
    pub force: Option<bool>,
    /// Continue an unfinished rotation (rotate).
    pub resume: Option<bool>,
    /// Only show what a rotation would do (rotate).
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
    /// Connection id or name (open; run without a session uses or opens the connection's session).
    pub connection_id: Option<String>,
    /// Session id (run, close).
    pub session_id: Option<String>,
    /// Command id (status, logs, cancel).
    pub command_id: Option<String>,
    /// Bulk run id from ssh_bulk_exec (status, logs, cancel); narrow to one target with
    /// connectionId, name or host.
    pub bulk_exec_id: Option<String>,
    /// A bulk target's connection name (status, logs, cancel with bulkExecId).
    pub name: Option<String>,
    /// A bulk target's host (status, logs, cancel with bulkExecId).
    pub host: Option<String>,
    /// The shell command to run, or a list run in order that stops at the first failure (run).
    pub command: Option<CommandArg>,
    /// Run on the server independently of the SSH connection: survives reconnects and broker restarts (run).
    pub detach: Option<bool>,
    /// Seconds before the command is killed and marked timed_out (run).
    pub timeout: Option<u64>,
    /// Working directory on the server (run).
    pub cwd: Option<String>,
    /// Environment variables for the command (run).
    pub env: Option<BTreeMap<String, String>>,
    /// Text for the command's standard input, e.g. a sudo password for `sudo -S` (run). Never stored.
    pub stdin: Option<String>,
    /// Allocate a terminal; stderr is merged into stdout (run).
    pub pty: Option<bool>,
    /// `stdout`, `stderr` or `both` (logs; default both).
    pub stream: Option<String>,
    /// Only lines matching this regular expression or substring (logs).
    pub grep: Option<String>,
    /// The first N matching lines (logs).
    pub head: Option<u64>,
    /// The last N matching lines (logs).
    pub tail: Option<u64>,
    /// First line number to read (logs; lines are numbered from 1 across both streams).
    pub from_line: Option<u64>,
    /// Last line number to read (logs).
    pub to_line: Option<u64>,
    /// Reply size cap in bytes (logs; default 65536).
    pub max_bytes: Option<u64>,
}

/// `ssh_stream_info`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamInfoArgs {
    /// The command id from ssh_exec op=run.
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
    /// The client (customer) group name (assign).
    pub client: Option<String>,
    /// One connection id or name.
    pub connection_id: Option<String>,
    /// Several connection ids or names.
    pub connection_ids: Option<Vec<String>>,
}

/// `ssh_bulk_exec`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkExecArgs {
    /// Commands run in order on every target (each target stops at its first failure).
    pub commands: Vec<String>,
    /// Target connections by id or name.
    pub connection_ids: Option<Vec<String>>,
    /// Or every connection of this client group.
    pub client: Option<String>,
    /// Or every saved connection.
    pub all: Option<bool>,
    /// Targets worked on at once (default 10).
    pub concurrency: Option<u32>,
    /// Seconds before each target's command is killed.
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
    /// Target connections by id or name.
    pub connection_ids: Option<Vec<String>>,
    /// Or every connection of this client group.
    pub client: Option<String>,
    /// Targets worked on at once (default 10).
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
    /// Target connections by id or name.
    pub connection_ids: Option<Vec<String>>,
    /// Or every connection of this client group.
    pub client: Option<String>,
    /// Targets worked on at once (default 10).
    pub concurrency: Option<u32>,
    /// A stored audit's id (show).
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
    /// Connection to open the shell on (open).
    pub connection_id: Option<String>,
    /// The shell (every op but open and list).
    pub shell_id: Option<String>,
    /// Terminal columns (open, resize; default 120).
    pub cols: Option<u16>,
    /// Terminal rows (open, resize; default 40).
    pub rows: Option<u16>,
    /// Terminal type (open; default xterm-256color).
    pub term: Option<String>,
    /// Run in tmux on the server so the shell survives reconnects (open; default: when tmux is there).
    pub persist: Option<bool>,
    /// Text to type (send).
    pub text: Option<String>,
    /// Press Enter after the text (send; default false).
    pub enter: Option<bool>,
    /// Key name (key).
    pub key: Option<String>,
    /// Regular expression to wait for (wait).
    pub pattern: Option<String>,
    /// Seconds to wait (wait; default 30, at most 600).
    pub timeout: Option<u64>,
    /// Output offset to read or wait from (from a previous reply's `cursor`).
    pub cursor: Option<u64>,
    /// Include / match the rendered screen (read, wait).
    pub screen: Option<bool>,
    /// Signal name (signal).
    pub signal: Option<String>,
    /// Stored-log filters (read): regex.
    pub grep: Option<String>,
    pub head: Option<u64>,
    pub tail: Option<u64>,
    pub from_line: Option<u64>,
    pub to_line: Option<u64>,
    /// Reply size cap in bytes (read).
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
    /// The connection.
    pub connection_id: String,
    /// Local file or directory (upload, download). Relative paths are under the adapter's working directory; only paths under the allowed roots are accepted.
    pub local_path: Option<String>,
    /// Remote file or directory.
    pub remote_path: Option<String>,
    /// Same as remotePath (list, stat, mkdir, remove, chmod).
    pub path: Option<String>,
    /// Destination of rename.
    pub new_path: Option<String>,
    /// Directories and everything in them (upload, download, remove).
    pub recursive: Option<bool>,
    /// Compare size and SHA-256 of both ends after a transfer.
    pub verify: Option<bool>,
    /// Permission bits in octal, e.g. "640" (chmod).
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
    /// Remote file path.
    pub path: String,
    /// New content (write) or the new line text (edit_line insert/replace).
    pub content: Option<String>,
    /// Exact text to find (replace).
    pub old: Option<String>,
    /// Replacement text (replace).
    pub new: Option<String>,
    /// How many matches must be found (replace, edit_line with pattern; default 1).
    pub expected_count: Option<u64>,
    /// edit_line: insert_before, insert_after, replace or delete.
    pub edit: Option<String>,
    /// Line number, 1-based (edit_line).
    pub line: Option<u64>,
    /// Regular expression selecting lines (edit_line).
    pub pattern: Option<String>,
    /// First line to read (read).
    pub from_line: Option<u64>,
    /// Last line to read (read).
    pub to_line: Option<u64>,
    /// Reply size cap (read).
    pub max_bytes: Option<u64>,
    /// Keep the previous content as PATH.sshkeep-bak-TIME (write, replace, edit_line).
    pub backup: Option<bool>,
}
