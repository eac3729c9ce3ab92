//! How many channels a session opens at once.
//!
//! A server refuses channels beyond its MaxSessions (OpenSSH default 10). The gate starts at the
//! configured ceiling; when the server refuses a channel, the gate's limit drops to the most
//! channels the server has accepted at once, and further commands wait in the queue for a channel
//! to close instead of failing. (A refusal can also be a race with a close the server has not
//! processed yet; the high-water mark keeps such a race from lowering the limit further.)

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug)]
struct State {
    limit: u32,
    permits: u32,
    open: u32,
    /// The most channels the server has accepted at once: it allows at least that many.
    high: u32,
}

/// The gate of one session.
#[derive(Debug)]
pub struct ChannelGate {
    st: Mutex<State>,
    released: Notify,
}

/// The right to open (and then hold) one channel. Dropping it frees the slot.
pub struct Permit {
    gate: Arc<ChannelGate>,
    open: bool,
}

impl ChannelGate {
    /// A gate that allows `limit` channels at once.
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self {
            st: Mutex::new(State {
                limit: limit.max(1),
                permits: 0,
                open: 0,
                high: 0,
            }),
            released: Notify::new(),
        })
    }

    /// Waits for a free slot.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Ok(mut s) = self.st.lock()
                && s.permits < s.limit
            {
                s.permits += 1;
                return Permit {
                    gate: self.clone(),
                    open: false,
                };
            }
            released.await;
        }
    }

    /// The server refused a channel: the limit becomes the most channels it has accepted at
    /// once. Returns whether the limit went down (if not, the caller should pause before
    /// trying again: the refusal was a race, or the server refuses everything).
    pub fn refused(&self) -> bool {
        match self.st.lock() {
            Ok(mut s) => {
                let new = s.high.max(1);
                let lowered = new < s.limit;
                s.limit = new;
                lowered
            }
            Err(_) => false,
        }
    }

    /// (channels open, current limit)
    pub fn usage(&self) -> (u32, u32) {
        self.st.lock().map(|s| (s.open, s.limit)).unwrap_or((0, 0))
    }
}

impl Permit {
    /// The channel was opened: it counts against the server's limit until the permit drops.
    pub fn opened(&mut self) {
        if !self.open
            && let Ok(mut s) = self.gate.st.lock()
        {
            s.open += 1;
            s.high = s.high.max(s.open);
            self.open = true;
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut s) = self.gate.st.lock() {
            s.permits -= 1;
            if self.open {
                s.open -= 1;
            }
        }
        self.gate.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusal_lowers_the_limit_and_waiters_proceed_on_release() {
        let gate = ChannelGate::new(4);
        let mut a = gate.acquire().await;
        a.opened();
        let mut b = gate.acquire().await;
        b.opened();
        let c = gate.acquire().await;
        assert!(
            gate.refused(),
            "the limit drops to the two the server accepted"
        );
        drop(c);
        assert_eq!(gate.usage(), (2, 2));
        let g2 = gate.clone();
        let waiter = tokio::spawn(async move { g2.acquire().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        let p = waiter.await.expect("join");
        drop(p);
        drop(b);
        assert_eq!(gate.usage(), (0, 2));
        // A refusal with fewer open than the high-water mark is a race: the limit stays.
        assert!(!gate.refused());
        assert_eq!(gate.usage(), (0, 2));
    }
}
