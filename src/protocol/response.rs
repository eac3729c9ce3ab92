//! The broker's replies, and the error codes and next steps they carry.

use serde::{Deserialize, Serialize};

// A reply can carry any part of the vocabulary.
use super::*;

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
        /// The broker's word on how it ended (an interrupt and what became of the process
        /// group) or how the target was reached (a `~/.ssh/config` alias that is not saved), for
        /// the client's own stderr; never part of the command's output.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
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
        /// Why it waits, with state `awaiting_approval`: which part, which class, which rule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approval: Option<String>,
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
    BulkStarted {
        bulk_id: String,
        targets: Vec<String>,
        /// Why the whole run waits for the user's approval; nothing started yet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approval: Option<String>,
    },
    Bulk(BulkInfo),
    BulkLogs {
        bulk_id: String,
        lines: Vec<BulkLogLine>,
        truncated: bool,
    },
    BulkConn {
        results: Vec<BulkConnResult>,
    },
    FleetAudit(FleetAuditReport),
    /// Progress: bytes done of the total (a transfer), or targets done of all (a fleet audit).
    Progress {
        done: u64,
        total: u64,
    },
    Transfer(TransferReport),
    Entries {
        path: String,
        entries: Vec<RemoteEntry>,
    },
    Entry(RemoteEntry),
    FileText(FileText),
    FileChange(FileChange),
    Shell(ShellInfo),
    Shells {
        shells: Vec<ShellInfo>,
    },
    Forward(ForwardInfo),
    Forwards {
        forwards: Vec<ForwardInfo>,
    },
    ShellOutput(ShellOutput),
    /// An attached client left; the shell goes on.
    Detached {
        shell_id: String,
    },
    AgentStatus {
        socket: String,
        offered: Vec<String>,
        /// Keys added with `ssh-add` (memory only).
        #[serde(default)]
        added: Vec<AgentAddedKey>,
    },
    Rotation(RotationReport),
    Profiles {
        profiles: Vec<ProfileInfo>,
    },
    Profile(ProfileInfo),
    Approvals {
        approvals: Vec<ApprovalInfo>,
    },
    Approval(ApprovalInfo),
    /// A new token: its text, shown to the user once.
    McpTokenCreated {
        info: McpTokenInfo,
        token: SecretString,
    },
    McpTokens {
        tokens: Vec<McpTokenInfo>,
    },
    /// A token checked: the profile its request works under.
    McpTokenValid {
        name: String,
        profile: String,
    },
    /// A server's login questions for the person at the client's terminal; the request's
    /// reply comes after the answers.
    LoginPrompt(LoginPrompt),
    Secret(SecretInfo),
    Secrets {
        secrets: Vec<SecretInfo>,
    },
    /// `message` is the whole text for people; `next`, when the failure has a next step,
    /// carries it as data (with the problem alone) for clients that word it their own way.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<ErrorNext>,
    },
}

/// A failure's problem and its next step, apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorNext {
    /// What went wrong, without the advice.
    pub problem: String,
    pub step: NextStep,
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
    /// The server or the local system refused access to a path.
    PermissionDenied,
    /// A local path outside the roots the client may use.
    OutsideRoots,
    /// An edit whose expected matches were not found: nothing was changed.
    Mismatch,
    /// The client stopped the request before it finished.
    Cancelled,
    /// The login asks something only a person at a terminal can answer (a one-time code); the
    /// next step is the command that person runs.
    NeedsPerson,
    Internal,
}

impl ErrorCode {
    /// Failures that trying again cannot mend, only the user: the server's key changed or is not
    /// trusted, the login is refused, the key or the connection is gone.
    pub fn needs_user(self) -> bool {
        matches!(
            self,
            ErrorCode::HostKeyChanged
                | ErrorCode::HostKeyUnknown
                | ErrorCode::AuthFailed
                | ErrorCode::NoKey
                | ErrorCode::NotFound
                | ErrorCode::InvalidKey
                | ErrorCode::NeedsPerson
        )
    }
}

impl Response {
    /// An error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Response::Error {
            code,
            message: message.into(),
            next: None,
        }
    }
}
