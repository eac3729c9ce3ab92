//! The protocol between clients (CLI, MCP adapter) and the broker, in one place, with no I/O.
//!
//! Framing ([`crate::frame`]): a 4-byte big-endian length, then one JSON document of at most
//! [`MAX_FRAME`] bytes. A connection starts with [`Request::Hello`]; the broker answers with its
//! own version or with [`ErrorCode::ProtocolMismatch`]. Every request gets exactly one reply,
//! except:
//! - [`Request::Exec`]: any number of [`Response::Output`] frames closed by one [`Response::Exit`]
//!   or [`Response::Error`]; meanwhile the client may send [`Request::ExecInput`] (standard
//!   input, when `stdin` was set) and [`Request::ExecStop`] (ctrl-c: the command's process group
//!   is killed and the `Exit` says so). A client that hangs up stops the command the same way;
//! - [`Request::Sftp`] with `progress`: any number of [`Response::Progress`] frames before the reply;
//!   meanwhile the client may send [`Request::SftpStop`] (the transfer stops, the file in flight
//!   is removed, and the reply is an error with [`ErrorCode::Cancelled`]). A client that hangs up
//!   does not stop it;
//! - [`Request::FleetAudit`] with `progress`: [`Response::Progress`] frames (targets done of all)
//!   before the reply;
//! - [`Request::SessionOpen`], [`Request::ConnTest`] and [`Request::Exec`] with `person` set (the
//!   CLI, with a person at its terminal): when the server asks a login question sshkeep cannot
//!   answer from the vault (a one-time code), a [`Response::LoginPrompt`] comes before the
//!   reply, and the client answers it with [`Request::LoginAnswer`] or [`Request::LoginCancel`];
//! - [`Request::ShellAttach`]: the connection becomes a terminal. The broker sends
//!   [`Response::Output`] frames (and a final [`Response::Exit`] or [`Response::Detached`]); the
//!   client sends [`Request::AttachInput`], [`Request::AttachResize`] and [`Request::AttachDetach`].
//!
//! Bump [`PROTOCOL_VERSION`] by hand on any change that an older peer would misread.

mod auth;
mod authority;
mod files;
mod fleet;
mod forward;
mod next;
mod person;
mod response;
mod secret;
mod shell;
mod states;
mod tokens;
mod types;

use serde::{Deserialize, Serialize};

pub use auth::*;
pub use authority::*;
pub use files::*;
pub use fleet::*;
pub use forward::*;
pub use next::*;
pub use person::*;
pub use response::*;
pub use secret::SecretString;
pub use shell::*;
pub use states::*;
pub use tokens::*;
pub use types::*;

/// The version both sides must agree on.
pub const PROTOCOL_VERSION: u32 = 6;

/// The largest frame either side accepts (16 MiB): far above any key, far below memory trouble.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// A client's request. Fields that carry secrets use [`SecretString`], whose `Debug` is redacted
/// and whose memory is wiped on drop.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// First frame on every connection.
    Hello {
        version: u32,
        client: String,
        /// The profile this connection works under; none is the user's own CLI, which may do
        /// everything (owner actions still need the user present).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
    },
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
    Unlock {
        passphrase: Option<SecretString>,
    },
    /// Drop every decrypted secret from the broker's memory.
    Lock,
    /// Import a private key (OpenSSH or PEM text); `passphrase` decrypts a protected key file.
    KeyAdd {
        name: String,
        private_key: SecretString,
        passphrase: Option<SecretString>,
    },
    /// Generate a key in the vault.
    KeyGenerate {
        name: String,
        key_type: KeyType,
    },
    /// All keys.
    KeyList,
    /// One key, with its links.
    KeyShow {
        name: String,
    },
    /// Delete a key (refused while connections are linked to it, unless `force`).
    KeyRemove {
        name: String,
        force: bool,
    },
    /// Link a key to a connection (a connection has at most one key).
    KeyLink {
        key: String,
        conn: String,
    },
    /// Remove that link.
    KeyUnlink {
        key: String,
        conn: String,
    },
    /// Create or update a saved connection.
    ConnSave(ConnSpec),
    /// All saved connections.
    ConnList,
    /// One connection.
    ConnShow {
        name: String,
    },
    /// Delete a saved connection.
    ConnRemove {
        name: String,
    },
    /// Diagnose a connection (saved name or `user@host[:port]`).
    ConnTest {
        target: String,
        key: Option<String>,
        /// A person is at this client's terminal: login questions go to it (see the top).
        #[serde(default)]
        person: bool,
    },
    /// Pin a host key: the given fingerprint, or the one the server presents now.
    ConnTrust {
        name: String,
        fingerprint: Option<String>,
        /// Allow replacing a key that sshkeep's pin or `~/.ssh/known_hosts` vouches for. Only
        /// the CLI, used by a person, sets it; without it only a first pin (or the same key)
        /// is accepted.
        #[serde(default)]
        replace: bool,
    },
    /// Run a command and stream its output.
    Exec {
        target: String,
        key: Option<String>,
        command: String,
        /// The client forwards its standard input with [`Request::ExecInput`]; without it the
        /// command's stdin is closed at once.
        #[serde(default)]
        stdin: bool,
        /// A terminal of this size (columns, rows) for the command, as `ssh -t` gives.
        #[serde(default)]
        pty: Option<(u16, u16)>,
        /// A person is at this client's terminal: login questions go to it (see the top).
        #[serde(default)]
        person: bool,
    },
    /// Standard input for the running [`Request::Exec`]: base64 `data`, then `eof`.
    ExecInput {
        #[serde(default)]
        data: String,
        #[serde(default)]
        eof: bool,
    },
    /// Stop the running [`Request::Exec`] (the user pressed ctrl-c): its process group is killed.
    ExecStop,
    /// Stop the running [`Request::Sftp`] transfer (sent with `progress`): nothing half-written
    /// is left in place.
    SftpStop,
    /// Audit records, newest last.
    AuditList(AuditFilter),
    /// Check the audit hash chain.
    AuditVerify,
    /// Open a persistent session on a target (a new SSH connection).
    SessionOpen {
        target: String,
        key: Option<String>,
        /// A person is at this client's terminal: login questions go to it (see the top).
        #[serde(default)]
        person: bool,
    },
    /// The person's answers to a [`Response::LoginPrompt`], one per question, in order.
    LoginAnswer {
        answers: Vec<SecretString>,
    },
    /// The person declined to answer a [`Response::LoginPrompt`]: the login fails.
    LoginCancel,
    /// All sessions.
    SessionList,
    /// Close a session (its attached commands fail; detached ones keep running on the server).
    SessionClose {
        session_id: String,
    },
    /// Start a command; the reply comes at once with its id.
    Run(RunSpec),
    /// A command's state.
    CommandStatus {
        command_id: String,
    },
    /// A command's output, filtered.
    CommandLogs(LogQuery),
    /// Stop a command and everything it started.
    CommandCancel {
        command_id: String,
    },
    /// Commands, newest first.
    CommandList {
        state: Option<String>,
        conn: Option<String>,
        limit: Option<u32>,
    },
    /// All settings with their values in force.
    Settings,
    /// Change a setting.
    SettingSet {
        key: String,
        value: String,
    },
    /// Client (customer) groups with their connections.
    ClientList,
    /// Put connections in a client group (a connection is in at most one).
    ClientAssign {
        client: String,
        conns: Vec<String>,
    },
    /// Take connections out of their client group.
    ClientRemove {
        conns: Vec<String>,
    },
    /// Run commands across many connections; the reply comes at once with the run's id.
    BulkExec(BulkSpec),
    /// A bulk run: overall state, counts, and each target (or one target).
    BulkStatus {
        bulk_id: String,
        target: Option<String>,
        /// Reply once the run has ended, or after this many milliseconds (at most 10 s),
        /// whichever comes first; absent: at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wait_ms: Option<u64>,
    },
    /// A bulk run's output, each line labelled with its target.
    BulkLogs {
        bulk_id: String,
        target: Option<String>,
        query: LogQuery,
    },
    /// Cancel a whole bulk run, or one target of it.
    BulkCancel {
        bulk_id: String,
        target: Option<String>,
    },
    /// Test, open or close sessions to many connections at once.
    BulkConn {
        op: BulkConnOp,
        targets: Targets,
        concurrency: Option<u32>,
    },
    /// Run the fixed read-only security checks (or the inventory) on many connections; replies
    /// when every target is done.
    FleetAudit {
        op: FleetAuditOp,
        targets: Targets,
        concurrency: Option<u32>,
        /// Send [`Response::Progress`] frames (targets done, targets in all) while it runs.
        #[serde(default)]
        progress: bool,
    },
    /// A stored fleet audit, by its id.
    FleetAuditShow {
        audit_id: String,
    },
    /// A file transfer or remote file-system operation over SFTP.
    Sftp(SftpRequest),
    /// Read or edit a remote text file over SFTP.
    File(FileRequest),
    /// Open an interactive shell (a PTY) that the broker holds.
    ShellOpen(ShellSpec),
    /// Type text into a shell, optionally followed by Enter.
    ShellSend {
        shell_id: String,
        text: String,
        enter: bool,
    },
    /// Press a named key (enter, tab, escape, up, ctrl-c, f1, ...).
    ShellKey {
        shell_id: String,
        key: String,
    },
    /// Output since `cursor` (default: the oldest kept in memory), and the screen if asked.
    ShellRead {
        shell_id: String,
        cursor: Option<u64>,
        screen: bool,
        max_bytes: Option<u64>,
    },
    /// Wait until `pattern` (a regular expression) appears in the output after `cursor`
    /// (default: the last input), or on the screen, or until `timeout_secs`.
    ShellWait {
        shell_id: String,
        pattern: String,
        timeout_secs: u64,
        cursor: Option<u64>,
        screen: bool,
    },
    ShellResize {
        shell_id: String,
        cols: u16,
        rows: u16,
    },
    /// Send a signal (INT, TERM, KILL, HUP, QUIT, USR1, USR2) to the shell's process.
    ShellSignal {
        shell_id: String,
        signal: String,
    },
    ShellStatus {
        shell_id: String,
    },
    ShellList,
    ShellClose {
        shell_id: String,
    },
    /// Start a port forward held by the broker.
    ForwardOpen(ForwardSpec),
    ForwardList,
    ForwardClose {
        forward_id: String,
    },
    /// Every profile, sshkeep's own first.
    ProfileList,
    ProfileShow {
        name: String,
    },
    /// Creates, replaces or removes one of the user's profiles (the user, present, only).
    ProfileChange {
        change: ProfileChange,
        #[serde(default)]
        presence: Presence,
    },
    /// Requests waiting for approval (all recent ones with `all`).
    Approvals {
        #[serde(default)]
        all: bool,
    },
    /// Approves (and starts) or denies a waiting request (the user, present, only).
    /// `for_minutes` also lets the same command run on the same target under the same profile
    /// without asking for that long.
    ApprovalDecide {
        id: String,
        approve: bool,
        #[serde(default)]
        for_minutes: Option<u32>,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        presence: Presence,
    },
    /// Attach this connection to a shell as its terminal; `close_on_detach` ends the shell when
    /// this client goes away.
    ShellAttach {
        shell_id: String,
        close_on_detach: bool,
    },
    /// Keystrokes from an attached client (base64).
    AttachInput {
        data: String,
    },
    /// The attached client's terminal changed size.
    AttachResize {
        cols: u16,
        rows: u16,
    },
    /// The attached client leaves; the shell goes on.
    AttachDetach,
    /// Change how the ssh-agent socket treats a key (`None` keeps a value; a lifetime of 0
    /// clears it).
    KeyAgent {
        name: String,
        offer: Option<bool>,
        confirm: Option<bool>,
        lifetime_secs: Option<u64>,
        /// Served on agents forwarded to servers.
        #[serde(default)]
        forward: Option<bool>,
        /// Destination constraints (connection names, `host[:port]`, `SHA256:` fingerprints,
        /// or `FROM>TO` hops); an empty list clears them.
        #[serde(default)]
        only_to: Option<Vec<String>>,
    },
    /// Record a key that stays in another ssh-agent: its public half (the one with
    /// `fingerprint`, or the agent's only key) and the agent's socket.
    KeyAddFromAgent {
        name: String,
        socket: String,
        #[serde(default)]
        fingerprint: Option<String>,
    },
    /// The ssh-agent socket's path and the keys it offers.
    AgentStatus,
    /// Replace a key on every connection linked to it (a new rotation), continue one
    /// (`resume`), or only show the plan (`dry_run`).
    KeyRotate {
        name: String,
        key_type: KeyType,
        resume: bool,
        dry_run: bool,
    },
    /// Install a key's public half on a connection's server, logging in with the key that works
    /// there now.
    KeyDeploy {
        name: String,
        conn: String,
    },
    /// A new bearer token for `sshkeep mcp --http` whose sessions work under `profile` (the
    /// user, present, only). The reply carries its text, which the broker does not keep.
    McpTokenCreate {
        name: String,
        profile: String,
        #[serde(default)]
        presence: Presence,
    },
    /// The tokens: names, profiles and dates.
    McpTokenList,
    /// Revokes a token (the user, present, only).
    McpTokenRevoke {
        name: String,
        #[serde(default)]
        presence: Presence,
    },
    /// The HTTP adapter asks which profile a token it was given works under (an empty token
    /// is a request that carried none, refused and audited all the same).
    McpTokenCheck {
        token: SecretString,
    },
    /// Store a login password under `name` (the user only), sendable to `hosts` (`host:port`);
    /// one of that name is replaced, its hosts kept and widened.
    SecretAdd {
        name: String,
        password: SecretString,
        #[serde(default)]
        hosts: Vec<String>,
    },
    /// The stored passwords: names, hosts and links, never values.
    SecretList,
    /// Delete a stored password (the user only); connections using it lose it.
    SecretRemove {
        name: String,
    },
    /// Attach an OpenSSH user certificate (its public line) to a key.
    KeyCertAdd {
        name: String,
        certificate: String,
    },
    /// Take a key's certificate away.
    KeyCertRemove {
        name: String,
    },
    /// Sign a certificate for key `key` with the CA key `ca` (both in the vault; the user only)
    /// and attach it.
    KeyCertSign {
        ca: String,
        key: String,
        principals: Vec<String>,
        validity_secs: u64,
    },
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
    fn login_answers_are_redacted_and_the_person_flag_defaults_to_absent() {
        let r = Request::LoginAnswer {
            answers: vec![SecretString::new("482913".into())],
        };
        assert!(!format!("{r:?}").contains("482913"));
        let old: Request =
            serde_json::from_str(r#"{"type":"session_open","target":"t","key":null}"#)
                .expect("parse");
        assert!(matches!(old, Request::SessionOpen { person: false, .. }));
    }

    #[test]
    fn unknown_request_types_fail_to_parse() {
        assert!(serde_json::from_str::<Request>(r#"{"type":"rm_rf"}"#).is_err());
    }
}
