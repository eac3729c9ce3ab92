//! Session requests: open a new session, list them, close one (commands on a session are the
//! commands feature's).

use std::sync::Arc;

use crate::broker::core::fail::Fail;
use crate::broker::core::login::resolve;
use crate::broker::core::sessions::{Sessions, find_open};
use crate::broker::core::{Core, Peer};
use crate::protocol::{ErrorCode, Response};

/// `session open`: a new session (SSH connection) to the target; when only a person can log in
/// there (a one-time code) and is not the caller, the open session a person logged into.
pub async fn session_open(
    broker: &Arc<Core>,
    peer: &Peer,
    target: &str,
    key: Option<&str>,
) -> Result<Response, Fail> {
    let r = resolve(broker, target, key)?;
    // A session a person logged into with a one-time code: a caller without a person uses it
    // (a new login would only send the password for nothing and fail at the code).
    if peer.person.is_none()
        && let Some(s) = find_open(broker, &r)?
        && s.is_by_person()
    {
        s.touch();
        return Ok(Response::Session(s.info()));
    }
    match Sessions::open(broker, peer, &r, "session open").await {
        Ok(s) => Ok(Response::Session(s.info())),
        // A login only a person can finish (a one-time code): the session a person opened at
        // their terminal is the one to use.
        Err(f) if f.code == ErrorCode::NeedsPerson => match find_open(broker, &r)? {
            Some(s) => {
                s.touch();
                Ok(Response::Session(s.info()))
            }
            None => Err(f),
        },
        Err(f) => Err(f),
    }
}

/// `session list`.
pub fn session_list(broker: &Core) -> Response {
    Response::Sessions {
        sessions: broker.sessions().list(),
    }
}

/// `session close`.
pub async fn session_close(broker: &Core, id: &str) -> Result<Response, Fail> {
    broker.sessions().close(id, "closed on request").await?;
    Ok(Response::Ok {
        message: format!("session {id} closed"),
    })
}
