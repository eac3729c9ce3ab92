//! Session and settings requests (commands live in [`super::commands`]).

use std::sync::Arc;

use super::fail::Fail;
use super::login::resolve;
use super::sessions::Sessions;
use super::{Broker, Peer};
use crate::protocol::Response;

/// `session open`: a new session (SSH connection) to the target.
pub async fn session_open(
    broker: &Arc<Broker>,
    peer: &Peer,
    target: &str,
    key: Option<&str>,
) -> Result<Response, Fail> {
    let r = resolve(broker, target, key)?;
    let s = Sessions::open(broker, peer, &r, "session open").await?;
    Ok(Response::Session(s.info()))
}

/// `session list`.
pub fn session_list(broker: &Broker) -> Response {
    Response::Sessions {
        sessions: broker.sessions.list(),
    }
}

/// `session close`.
pub async fn session_close(broker: &Broker, id: &str) -> Result<Response, Fail> {
    broker.sessions.close(id, "closed on request").await?;
    Ok(Response::Ok {
        message: format!("session {id} closed"),
    })
}

/// `config`.
pub fn settings(broker: &Broker) -> Response {
    Response::Settings {
        settings: broker.settings().describe(),
    }
}

/// `config set`.
pub fn set_setting(broker: &Broker, peer: &Peer, key: &str, value: &str) -> Result<Response, Fail> {
    broker.set_setting(key, value)?;
    broker.audit(peer, "setting_set", None, None, format!("{key} = {value}"))?;
    Ok(settings(broker))
}
