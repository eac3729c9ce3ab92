//! The one door every request comes through: the hello first, then admission, then the route
//! to the feature that answers it. Admission is where a client's authority over a request is
//! decided; today the broker's own user is admitted to everything (the socket already refused
//! every other user).

use interprocess::local_socket::tokio::Stream;

use super::{App, routes};
use crate::broker::core::Peer;
use crate::broker::core::fail::Fail;
use crate::protocol::{ErrorCode, PROTOCOL_VERSION, Request, Response};

/// Who is on the other end of one connection, and how far its conversation has got.
pub struct Caller {
    pub peer: Peer,
    /// A hello with the right protocol version was answered.
    greeted: bool,
}

impl Caller {
    /// A caller that has not said hello yet.
    pub fn new(peer: Peer) -> Self {
        Self {
            peer,
            greeted: false,
        }
    }
}

/// What became of a request.
pub enum Outcome {
    /// One reply frame to send.
    Reply(Box<Response>),
    /// The handler wrote its own frames; the next request may follow.
    Streamed,
    /// The connection is done (it served a terminal, or the broker is stopping).
    Close,
}

impl Outcome {
    /// The reply for a plain request: its answer or its failure.
    pub fn of(r: Result<Response, Fail>) -> Self {
        Self::Reply(Box::new(r.unwrap_or_else(Fail::into_response)))
    }
}

/// Handles one request of `caller`'s connection.
pub async fn handle(app: &App, caller: &mut Caller, req: Request, stream: &Stream) -> Outcome {
    if !caller.greeted {
        return Outcome::Reply(Box::new(greet(caller, req)));
    }
    if let Err(f) = admit(caller, &req) {
        return Outcome::Reply(Box::new(f.into_response()));
    }
    routes::route(app, &caller.peer, req, stream).await
}

/// The first request must be a hello in this broker's protocol version.
fn greet(caller: &mut Caller, req: Request) -> Response {
    match req {
        Request::Hello { version, .. } if version == PROTOCOL_VERSION => {
            caller.greeted = true;
            Response::Hello {
                version: PROTOCOL_VERSION,
                broker_version: env!("CARGO_PKG_VERSION").into(),
                pid: std::process::id(),
            }
        }
        Request::Hello { version, .. } => Response::error(
            ErrorCode::ProtocolMismatch,
            format!(
                "this broker speaks protocol {PROTOCOL_VERSION} and the client speaks {version}: \
                 stop the old broker with `sshkeep broker stop` (the next command starts the matching one)"
            ),
        ),
        _ => Response::error(ErrorCode::BadRequest, "the first request must be a hello"),
    }
}

/// Whether `caller` may make `req`. Every request is named, grouped by what it touches, so a
/// new request cannot slip past without a decision. Today all are admitted.
fn admit(_caller: &Caller, req: &Request) -> Result<(), Fail> {
    match req {
        // The conversation itself.
        Request::Hello { .. }
        | Request::Status
        | Request::Shutdown
        | Request::ExecInput { .. }
        | Request::ExecStop
        | Request::AttachInput { .. }
        | Request::AttachResize { .. }
        | Request::AttachDetach => Ok(()),
        // The vault and its keys.
        Request::VaultInit { .. }
        | Request::Unlock { .. }
        | Request::Lock
        | Request::KeyAdd { .. }
        | Request::KeyGenerate { .. }
        | Request::KeyList
        | Request::KeyShow { .. }
        | Request::KeyRemove { .. }
        | Request::KeyLink { .. }
        | Request::KeyUnlink { .. }
        | Request::KeyAgent { .. }
        | Request::AgentStatus
        | Request::KeyRotate { .. }
        | Request::KeyDeploy { .. } => Ok(()),
        // Saved connections, host keys, client groups, settings and the audit log.
        Request::ConnSave(_)
        | Request::ConnList
        | Request::ConnShow { .. }
        | Request::ConnRemove { .. }
        | Request::ConnTest { .. }
        | Request::ConnTrust { .. }
        | Request::ClientList
        | Request::ClientAssign { .. }
        | Request::ClientRemove { .. }
        | Request::Settings
        | Request::SettingSet { .. }
        | Request::AuditList(_)
        | Request::AuditVerify => Ok(()),
        // Work on servers: sessions, commands, fleets, files, shells, forwards.
        Request::SessionOpen { .. }
        | Request::SessionList
        | Request::SessionClose { .. }
        | Request::Exec { .. }
        | Request::Run(_)
        | Request::CommandStatus { .. }
        | Request::CommandLogs(_)
        | Request::CommandCancel { .. }
        | Request::CommandList { .. }
        | Request::BulkExec(_)
        | Request::BulkStatus { .. }
        | Request::BulkLogs { .. }
        | Request::BulkCancel { .. }
        | Request::BulkConn { .. }
        | Request::FleetAudit { .. }
        | Request::FleetAuditShow { .. }
        | Request::Sftp(_)
        | Request::File(_)
        | Request::ShellOpen(_)
        | Request::ShellSend { .. }
        | Request::ShellKey { .. }
        | Request::ShellRead { .. }
        | Request::ShellWait { .. }
        | Request::ShellResize { .. }
        | Request::ShellSignal { .. }
        | Request::ShellStatus { .. }
        | Request::ShellList
        | Request::ShellClose { .. }
        | Request::ShellAttach { .. }
        | Request::ForwardOpen(_)
        | Request::ForwardList
        | Request::ForwardClose { .. } => Ok(()),
    }
}
