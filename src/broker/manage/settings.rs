//! Settings requests: the broker's settings, and changing one (stored, and audited).

use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer};
use crate::protocol::Response;

/// `config`.
pub fn settings(broker: &Core) -> Response {
    Response::Settings {
        settings: broker.settings().describe(),
    }
}

/// `config set`.
pub fn set_setting(broker: &Core, peer: &Peer, key: &str, value: &str) -> Result<Response, Fail> {
    broker.set_setting(key, value)?;
    broker.audit(peer, "setting_set", None, None, format!("{key} = {value}"))?;
    Ok(settings(broker))
}
