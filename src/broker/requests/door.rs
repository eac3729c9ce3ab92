//! The one door every request comes through: the hello first (which names the profile the
//! client works under), then admission ([`super::admission`]: what the profile allows), then
//! the route to the feature that answers it. The socket already refused every other user.

use std::sync::Arc;

use interprocess::local_socket::tokio::Stream;

use super::admission::{Admitted, admit};
use super::{App, routes};
use crate::authority::Profile;
use crate::broker::core::Peer;
use crate::broker::core::fail::Fail;
use crate::broker::manage::profiles;
use crate::protocol::{ErrorCode, PROTOCOL_VERSION, Request, Response};

/// Who is on the other end of one connection, and how far its conversation has got.
pub struct Caller {
    pub peer: Peer,
    /// The profile the client works under, read once at its hello; `None` is the user's own CLI.
    pub profile: Option<Arc<Profile>>,
    /// A hello with the right protocol version was answered.
    greeted: bool,
}

impl Caller {
    /// A caller that has not said hello yet.
    pub fn new(peer: Peer) -> Self {
        Self {
            peer,
            profile: None,
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
        return Outcome::Reply(Box::new(greet(app, caller, req)));
    }
    match admit(app, caller, req).await {
        Ok(Admitted::Route(req)) => routes::route(app, caller, req, stream).await,
        Ok(Admitted::Answer(r)) => Outcome::Reply(r),
        Err(f) => Outcome::Reply(Box::new(f.into_response())),
    }
}

/// The first request must be a hello in this broker's protocol version.
fn greet(app: &App, caller: &mut Caller, req: Request) -> Response {
    match req {
        Request::Hello {
            version, profile, ..
        } if version == PROTOCOL_VERSION => {
            if let Some(name) = profile {
                match profiles::lookup(&app.core, &name) {
                    Ok(p) => caller.profile = Some(Arc::new(p)),
                    Err(f) => return f.into_response(),
                }
            }
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
