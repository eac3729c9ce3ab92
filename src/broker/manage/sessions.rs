//! Session requests: open a new session, list them, close one (commands on a session are the
//! commands feature's).

use std::sync::Arc;

use crate::broker::core::fail::Fail;
use crate::broker::core::login::resolve;
use crate::broker::core::sessions::Sessions;
use crate::broker::core::{Core, Peer};
use crate::protocol::Response;

/// `session open`: a new session (SSH connection) to the target.
pub async fn session_open(
    broker: &Arc<Core>,
    peer: &Peer,
    target: &str,
    key: Option<&str>,
) -> Result<Response, Fail> {
    let r = resolve(broker, target, key)?;
    let s = Sessions::open(broker, peer, &r, "session open").await?;
    Ok(Response::Session(s.info()))
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
