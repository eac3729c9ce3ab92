//! Port forwards on the wire: what to forward, and the forwards the broker holds.

use serde::{Deserialize, Serialize};

/// What a port forward carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardKind {
    /// `-L`: connections to the local port go to `host:host_port` as seen from the server.
    Local,
    /// `-D`: a SOCKS5 proxy; each connection names its own destination.
    Dynamic,
    /// `-R`: the server listens on `bind_address:bind_port` on its side, and each connection
    /// to it goes to `host:host_port` as reached from the broker's machine.
    Remote,
}

/// Whether a forward carries connections now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardState {
    /// Listening (for `-R`: the server listens) and the login works.
    Open,
    /// Not fully working (the port cannot be bound, the login fails, the session is away): the
    /// broker tries again by itself; `error` says why.
    Retrying,
}

/// A port forward to start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardSpec {
    /// A saved connection or `user@host[:port]`.
    pub target: String,
    pub key: Option<String>,
    pub kind: ForwardKind,
    /// The address to listen on (loopback unless `allow_public`): a local address, or for a
    /// remote forward the server's (`localhost` there by default).
    pub bind_address: String,
    /// 0 picks a free port.
    pub bind_port: u16,
    /// The destination: for a local forward as seen from the server, for a remote forward as
    /// seen from the broker's machine.
    pub host: Option<String>,
    pub host_port: Option<u16>,
    /// Listen on an address other machines can reach.
    #[serde(default)]
    pub allow_public: bool,
}

/// A forward the broker holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardInfo {
    pub forward_id: String,
    pub target: String,
    pub kind: ForwardKind,
    pub bind_address: String,
    pub bind_port: u16,
    pub host: Option<String>,
    pub host_port: Option<u16>,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// Connections being carried now, and since the start.
    pub active: u64,
    pub total: u64,
    pub state: ForwardState,
    /// Why the forward is not open, or what last went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
