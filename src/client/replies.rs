//! Replies, typed. Each request expects one kind of reply; [`FromReply`] takes that reply's
//! payload out of a [`Response`], so the CLI and the MCP adapter ask for the type they expect
//! (`client.call::<Vec<ConnInfo>>(&Request::ConnList)`) and never match replies by hand. A reply
//! of another kind is an [`UnexpectedReply`], said here once for every client.

use crate::protocol::{
    AgentAddedKey, ApprovalInfo, AuditRecord, BulkConnResult, BulkInfo, BulkLogLine, ClientGroup,
    CommandInfo, CommandState, ConnInfo, FileChange, FileText, FleetAuditReport, ForwardInfo,
    KeyInfo, LogPage, McpTokenInfo, OutputStream, ProfileInfo, RemoteEntry, Response,
    RotationReport, SecretInfo, SecretString, SessionInfo, Setting, ShellInfo, ShellOutput,
    StatusInfo, TestReport, TransferReport,
};

use super::BrokerError;

/// A payload that one kind of reply carries.
pub trait FromReply: Sized {
    /// The reply's `type` on the wire, for the error when another kind comes.
    const EXPECTED: &'static str;

    /// The payload, or the reply itself when it is of another kind (boxed: that is the rare
    /// path, and replies are large).
    fn from_reply(r: Response) -> Result<Self, Box<Response>>;
}

/// The broker answered with a reply of the wrong kind: a client and broker out of step, never
/// the user's doing. Only the reply's kind is kept, not its content.
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply from the broker: `{got}` where `{expected}` was expected")]
pub struct UnexpectedReply {
    pub expected: &'static str,
    pub got: String,
}

/// `r` as the reply an `R` comes in. An error reply becomes a [`BrokerError`] (callers branch
/// on its code), a reply of any other kind an [`UnexpectedReply`].
pub fn expect<R: FromReply>(r: Response) -> anyhow::Result<R> {
    match r {
        Response::Error {
            code,
            message,
            next,
        } => Err(BrokerError {
            code,
            message,
            next,
        }
        .into()),
        r => R::from_reply(r).map_err(|other| {
            UnexpectedReply {
                expected: R::EXPECTED,
                got: kind(&other),
            }
            .into()
        }),
    }
}

/// A reply's `type` on the wire.
fn kind(r: &Response) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `ok`: the broker did it, and says what it did.
#[derive(Clone, Debug)]
pub struct Done {
    pub message: String,
}

/// `hello`: the broker's side of the handshake.
#[derive(Clone, Debug)]
pub struct Hello {
    pub version: u32,
    pub broker_version: String,
    pub pid: u32,
}

/// `audit_verified`: the audit chain checked.
#[derive(Clone, Debug)]
pub struct AuditCheck {
    pub records: u64,
    pub first_broken: Option<u64>,
    pub reason: Option<String>,
}

/// `command_started`: a command's id, at once.
#[derive(Clone, Debug)]
pub struct Started {
    pub command_id: String,
    pub session_id: Option<String>,
    pub state: CommandState,
    /// Why it waits for the user's approval (state `awaiting_approval`).
    pub approval: Option<String>,
}

/// `bulk_started`: a bulk run's id and its targets, at once.
#[derive(Clone, Debug)]
pub struct BulkStarted {
    pub bulk_id: String,
    pub targets: Vec<String>,
    /// Why the whole run waits for the user's approval.
    pub approval: Option<String>,
}

/// `bulk_logs`: a bulk run's output, each line labelled with its target.
#[derive(Clone, Debug)]
pub struct BulkLogs {
    pub bulk_id: String,
    pub lines: Vec<BulkLogLine>,
    pub truncated: bool,
}

/// `entries`: a remote directory's listing.
#[derive(Clone, Debug)]
pub struct Entries {
    pub path: String,
    pub entries: Vec<RemoteEntry>,
}

/// `agent_status`: the ssh-agent socket and the keys it offers.
#[derive(Clone, Debug)]
pub struct AgentStatus {
    pub socket: String,
    pub offered: Vec<String>,
    pub added: Vec<AgentAddedKey>,
}

/// `mcp_token_created`: a new token and its text, to show the user once.
pub struct McpTokenCreated {
    pub info: McpTokenInfo,
    pub token: SecretString,
}

/// `mcp_token_valid`: the token a request carried, and the profile it works under.
#[derive(Clone, Debug)]
pub struct McpTokenValid {
    pub name: String,
    pub profile: String,
}

/// A frame of a running `exec`, up to its end.
#[derive(Clone, Debug)]
pub enum ExecFrame {
    /// Output, base64.
    Output { stream: OutputStream, data: String },
    /// The command ended; `note` is the broker's word on how, for stderr.
    Exit { status: i32, note: Option<String> },
}

/// A frame to an attached terminal.
#[derive(Clone, Debug)]
pub enum AttachFrame {
    /// Output, base64.
    Output { data: String },
    /// The shell ended.
    Exit { status: i32 },
    /// This client was detached; the shell goes on.
    Detached { shell_id: String },
}

/// Implements [`FromReply`] for payloads that one `Response` variant carries.
macro_rules! replies {
    ($( $ty:ty = $kind:literal, $pat:pat => $payload:expr; )+) => {
        $(
            impl FromReply for $ty {
                const EXPECTED: &'static str = $kind;

                fn from_reply(r: Response) -> Result<Self, Box<Response>> {
                    match r {
                        $pat => Ok($payload),
                        other => Err(Box::new(other)),
                    }
                }
            }
        )+
    };
}

replies! {
    Done = "ok", Response::Ok { message } => Done { message };
    Hello = "hello", Response::Hello { version, broker_version, pid } => Hello { version, broker_version, pid };
    StatusInfo = "status", Response::Status(s) => s;
    KeyInfo = "key", Response::Key(k) => k;
    Vec<KeyInfo> = "keys", Response::Keys { keys } => keys;
    SecretInfo = "secret", Response::Secret(s) => s;
    Vec<SecretInfo> = "secrets", Response::Secrets { secrets } => secrets;
    ConnInfo = "conn", Response::Conn(c) => c;
    Vec<ConnInfo> = "conns", Response::Conns { conns } => conns;
    TestReport = "test_report", Response::TestReport(t) => t;
    Vec<AuditRecord> = "audit", Response::Audit { records } => records;
    AuditCheck = "audit_verified", Response::AuditVerified { records, first_broken, reason } => AuditCheck { records, first_broken, reason };
    SessionInfo = "session", Response::Session(s) => s;
    Vec<SessionInfo> = "sessions", Response::Sessions { sessions } => sessions;
    Started = "command_started", Response::CommandStarted { command_id, session_id, state, approval } => Started { command_id, session_id, state, approval };
    CommandInfo = "command", Response::Command(c) => c;
    Vec<CommandInfo> = "commands", Response::Commands { commands } => commands;
    LogPage = "logs", Response::Logs(p) => p;
    Vec<Setting> = "settings", Response::Settings { settings } => settings;
    Vec<ClientGroup> = "clients", Response::Clients { clients } => clients;
    BulkStarted = "bulk_started", Response::BulkStarted { bulk_id, targets, approval } => BulkStarted { bulk_id, targets, approval };
    BulkInfo = "bulk", Response::Bulk(b) => b;
    BulkLogs = "bulk_logs", Response::BulkLogs { bulk_id, lines, truncated } => BulkLogs { bulk_id, lines, truncated };
    Vec<BulkConnResult> = "bulk_conn", Response::BulkConn { results } => results;
    FleetAuditReport = "fleet_audit", Response::FleetAudit(r) => r;
    TransferReport = "transfer", Response::Transfer(t) => t;
    Entries = "entries", Response::Entries { path, entries } => Entries { path, entries };
    RemoteEntry = "entry", Response::Entry(e) => e;
    FileText = "file_text", Response::FileText(t) => t;
    FileChange = "file_change", Response::FileChange(c) => c;
    ShellInfo = "shell", Response::Shell(s) => s;
    Vec<ShellInfo> = "shells", Response::Shells { shells } => shells;
    ShellOutput = "shell_output", Response::ShellOutput(o) => o;
    ForwardInfo = "forward", Response::Forward(f) => f;
    Vec<ForwardInfo> = "forwards", Response::Forwards { forwards } => forwards;
    AgentStatus = "agent_status", Response::AgentStatus { socket, offered, added } => AgentStatus { socket, offered, added };
    RotationReport = "rotation", Response::Rotation(r) => r;
    Vec<ProfileInfo> = "profiles", Response::Profiles { profiles } => profiles;
    ProfileInfo = "profile", Response::Profile(p) => p;
    Vec<ApprovalInfo> = "approvals", Response::Approvals { approvals } => approvals;
    ApprovalInfo = "approval", Response::Approval(a) => a;
    McpTokenCreated = "mcp_token_created", Response::McpTokenCreated { info, token } => McpTokenCreated { info, token };
    Vec<McpTokenInfo> = "mcp_tokens", Response::McpTokens { tokens } => tokens;
    McpTokenValid = "mcp_token_valid", Response::McpTokenValid { name, profile } => McpTokenValid { name, profile };
}

impl FromReply for ExecFrame {
    const EXPECTED: &'static str = "output or exit";

    fn from_reply(r: Response) -> Result<Self, Box<Response>> {
        match r {
            Response::Output { stream, data } => Ok(Self::Output { stream, data }),
            Response::Exit { status, note, .. } => Ok(Self::Exit { status, note }),
            other => Err(Box::new(other)),
        }
    }
}

impl FromReply for AttachFrame {
    const EXPECTED: &'static str = "output, exit or detached";

    fn from_reply(r: Response) -> Result<Self, Box<Response>> {
        match r {
            Response::Output { data, .. } => Ok(Self::Output { data }),
            Response::Exit { status, .. } => Ok(Self::Exit { status }),
            Response::Detached { shell_id } => Ok(Self::Detached { shell_id }),
            other => Err(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    #[test]
    fn the_expected_kind_is_taken_out_and_others_are_named() {
        let ok = expect::<Done>(Response::Ok {
            message: "done".into(),
        });
        assert_eq!(ok.ok().map(|d| d.message).as_deref(), Some("done"));

        let wrong = expect::<Vec<ConnInfo>>(Response::Ok {
            message: "x".into(),
        });
        let e = wrong.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("`ok` where `conns`"), "{e}");

        let refused = expect::<Done>(Response::error(ErrorCode::NotFound, "no such thing"));
        let code = refused
            .err()
            .and_then(|e| e.downcast_ref::<BrokerError>().map(|b| b.code));
        assert_eq!(code, Some(ErrorCode::NotFound));
    }

    /// The names the errors use are the wire's own.
    #[test]
    fn expected_kinds_are_wire_names() {
        let samples = [
            (
                Done::EXPECTED,
                Response::Ok {
                    message: String::new(),
                },
            ),
            (
                <Vec<KeyInfo>>::EXPECTED,
                Response::Keys { keys: Vec::new() },
            ),
            (
                AuditCheck::EXPECTED,
                Response::AuditVerified {
                    records: 0,
                    first_broken: None,
                    reason: None,
                },
            ),
            (
                <Vec<BulkConnResult>>::EXPECTED,
                Response::BulkConn {
                    results: Vec::new(),
                },
            ),
        ];
        for (name, r) in samples {
            assert_eq!(kind(&r), name);
        }
    }
}
