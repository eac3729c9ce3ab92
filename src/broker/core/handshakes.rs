//! How many SSH handshakes run at once to one server. OpenSSH's MaxStartups drops
//! unauthenticated connections beyond a few in flight, so fleet work opens its sessions through
//! a per-server gate, lowered each time the server drops a handshake.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

/// Handshakes in flight to one server at first (OpenSSH's MaxStartups begins dropping at 10).
const HANDSHAKES_PER_SERVER: usize = 4;

/// One server's handshake gate and its current limit.
type ServerGate = (Arc<Semaphore>, usize);

/// Per-server handshake limits, lowered when a server drops handshakes.
#[derive(Default)]
pub struct HandshakeLimits {
    map: Mutex<HashMap<(String, u16), ServerGate>>,
}

impl HandshakeLimits {
    /// The handshake gate of one server.
    pub fn gate(&self, host: &str, port: u16) -> Arc<Semaphore> {
        let mut m = match self.map.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry((host.to_string(), port))
            .or_insert_with(|| {
                (
                    Arc::new(Semaphore::new(HANDSHAKES_PER_SERVER)),
                    HANDSHAKES_PER_SERVER,
                )
            })
            .0
            .clone()
    }

    /// The server dropped a handshake: allow one fewer at once (never below one).
    pub fn lower(&self, host: &str, port: u16) {
        if let Ok(mut m) = self.map.lock()
            && let Some((sem, limit)) = m.get_mut(&(host.to_string(), port))
            && *limit > 1
        {
            *limit -= 1;
            sem.forget_permits(1);
        }
    }
}
