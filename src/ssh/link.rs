//! What the russh handler of one connection hands back to the rest of the broker: why the
//! connection ended, and the `forwarded-tcpip` channels the server opens for remote forwards
//! (`ssh -R`). A channel is routed to whoever asked this connection's server to listen on the
//! address and port it names; one nobody asked for is refused, so a server cannot make the
//! broker connect anywhere on its own.

use std::collections::HashMap;
use std::sync::Mutex;

use russh::Channel;
use russh::client::Msg;
use tokio::sync::mpsc::UnboundedSender;

/// A channel the server opened for a remote forward, and who connected to the server's port.
pub struct Forwarded {
    pub channel: Channel<Msg>,
    pub originator: String,
}

/// One connection's link back from its handler.
#[derive(Default)]
pub struct Link {
    lost: Mutex<Option<String>>,
    /// (listen address as requested, port the server listens on) -> the forward's queue.
    routes: Mutex<HashMap<(String, u32), UnboundedSender<Forwarded>>>,
    /// Where agent channels the server opens go (`auth-agent@openssh.com`), when the agent is
    /// forwarded on this connection; refused otherwise.
    agent: Mutex<Option<UnboundedSender<Channel<Msg>>>>,
}

impl Link {
    /// Why the connection ended, once it has.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|g| g.clone())
    }

    pub(super) fn set_lost(&self, why: String) {
        if let Ok(mut slot) = self.lost.lock() {
            *slot = Some(why);
        }
    }

    /// Channels the server opens for `address:port` go to `to` from now on.
    pub fn listen(&self, address: &str, port: u32, to: UnboundedSender<Forwarded>) {
        if let Ok(mut m) = self.routes.lock() {
            m.insert((address.to_string(), port), to);
        }
    }

    /// Agent channels the server opens go to `to` from now on, and sessions on this connection
    /// ask for agent forwarding.
    pub fn forward_agent(&self, to: UnboundedSender<Channel<Msg>>) {
        if let Ok(mut a) = self.agent.lock() {
            *a = Some(to);
        }
    }

    /// Whether this connection forwards the agent.
    pub fn forwards_agent(&self) -> bool {
        self.agent.lock().is_ok_and(|a| a.is_some())
    }

    pub(super) fn agent_route(&self) -> Option<UnboundedSender<Channel<Msg>>> {
        self.agent.lock().ok()?.clone()
    }

    /// Channels for `address:port` are refused from now on.
    pub fn unlisten(&self, address: &str, port: u32) {
        if let Ok(mut m) = self.routes.lock() {
            m.remove(&(address.to_string(), port));
        }
    }

    /// Where a channel for `address:port` goes. The server names the address as it was
    /// requested; a server that spells it differently is matched by the port alone when only
    /// one forward listens on that port.
    pub(super) fn route(&self, address: &str, port: u32) -> Option<UnboundedSender<Forwarded>> {
        let m = self.routes.lock().ok()?;
        if let Some(tx) = m.get(&(address.to_string(), port)) {
            return Some(tx.clone());
        }
        let mut same_port = m.iter().filter(|((_, p), _)| *p == port);
        match (same_port.next(), same_port.next()) {
            (Some((_, tx)), None) => Some(tx.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_go_only_to_a_port_someone_listens_on() {
        let link = Link::default();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        link.listen("localhost", 4000, tx.clone());
        assert!(link.route("localhost", 4000).is_some());
        assert!(
            link.route("127.0.0.1", 4000).is_some(),
            "one forward on the port"
        );
        assert!(link.route("localhost", 4001).is_none());
        link.listen("::1", 4000, tx);
        assert!(
            link.route("127.0.0.1", 4000).is_none(),
            "ambiguous: refused"
        );
        link.unlisten("localhost", 4000);
        link.unlisten("::1", 4000);
        assert!(link.route("localhost", 4000).is_none());
    }
}
