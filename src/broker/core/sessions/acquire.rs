//! The one way features get a session: [`session_for`]. It reuses an open session with the same
//! login (same user, address, key and jump path) or logs in anew, and hands the session back
//! with the caller already counted as one of its users, so a concurrent close of an unused
//! session can never take it away between the finding and the use.

use std::sync::Arc;
use std::time::Duration;

use super::{Occupancy, Session, Sessions};
use crate::broker::core::backoff::Backoff;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::{Resolved, key_fingerprint};
use crate::broker::core::{Core, Peer};
use crate::protocol::{ErrorCode, NextStep};
use crate::ssh::{Person, open_command};

/// Handshake attempts per fleet target before it is failed.
const HANDSHAKE_ATTEMPTS: u32 = 7;

/// How a session is found or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// An open session with the same login, or a new one; callers arriving together for the
    /// same login (a fleet behind one bastion) share one login instead of racing to open one
    /// each. A session that is reconnecting is not waited for: a new login answers at once,
    /// with its error if it fails.
    Shared,
    /// A target of a fleet run: an open session is reused (one that was open before stays
    /// open); otherwise each target opens its own, through the server's handshake limit,
    /// retrying handshakes the server dropped. Such a session is transient: closed when its
    /// last user is done.
    Fleet,
}

/// A session for `r`, with the caller counted on it until the returned occupancy drops.
pub async fn session_for(
    broker: &Arc<Core>,
    peer: &Peer,
    r: &Resolved,
    purpose: &str,
    reuse: Reuse,
) -> Result<(Arc<Session>, Occupancy), Fail> {
    match reuse {
        Reuse::Shared => loop {
            let s = shared(broker, peer, r, purpose).await?;
            // Closed between the finding and now: find or open another.
            if let Some(o) = s.try_occupy() {
                return Ok((s, o));
            }
        },
        Reuse::Fleet => fleet(broker, peer, r, purpose).await,
    }
}

/// An open session with the same login as `r`, if there is one.
pub fn find_open(broker: &Core, r: &Resolved) -> Result<Option<Arc<Session>>, Fail> {
    let fingerprint = key_fingerprint(broker, r)?;
    Ok(broker
        .sessions()
        .all()
        .into_iter()
        .filter(|s| s.same_login(r, &fingerprint) && s.is_live())
        .max_by_key(|s| s.with(|i| i.last_used)))
}

async fn shared(
    broker: &Arc<Core>,
    peer: &Peer,
    r: &Resolved,
    purpose: &str,
) -> Result<Arc<Session>, Fail> {
    if let Some(s) = find_open(broker, r)? {
        s.touch();
        return Ok(s);
    }
    // The path is part of the login: a connection that jumps through a bastion with the same
    // address as itself must not wait on the bastion's own opening.
    let login_key = format!(
        "{}@{}:{}/{}/via:{}",
        r.endpoint.user,
        r.endpoint.host,
        r.endpoint.port,
        r.key.as_deref().unwrap_or_default(),
        r.jump.join(",")
    );
    let gate = broker
        .sessions()
        .opening
        .lock()
        .map(|mut m| m.entry(login_key.clone()).or_default().clone())
        .map_err(|_| Fail::internal("session table lock poisoned"))?;
    let opened = {
        let turn = match gate.try_lock() {
            Ok(turn) => Ok(turn),
            Err(_) => take_turn(broker, peer, r, &gate, &login_key).await,
        };
        match turn.and_then(|_turn| Ok((_turn, find_open(broker, r)?))) {
            Err(f) => Err(f),
            Ok((_turn, Some(s))) => {
                s.touch();
                Ok(s)
            }
            Ok((_turn, None)) => {
                let _asking = peer
                    .person
                    .as_ref()
                    .map(|p| Asking::register(broker, &login_key, p));
                Sessions::open(broker, peer, r, purpose).await
            }
        }
    };
    if let Ok(mut m) = broker.sessions().opening.lock()
        && m.get(&login_key).is_some_and(|g| Arc::strong_count(g) <= 2)
    {
        m.remove(&login_key);
    }
    opened
}

/// Waits for the opening lock of a login another caller holds. A caller without a person
/// does not wait behind a login whose questions a person is answering (up to minutes): it
/// fails at once, as it would at the question itself.
async fn take_turn<'a>(
    broker: &Core,
    peer: &Peer,
    r: &Resolved,
    gate: &'a tokio::sync::Mutex<()>,
    login_key: &str,
) -> Result<tokio::sync::MutexGuard<'a, ()>, Fail> {
    if peer.person.is_some() {
        return Ok(gate.lock().await);
    }
    loop {
        let holder = broker
            .sessions()
            .asking
            .lock()
            .ok()
            .and_then(|m| m.get(login_key).cloned());
        // Nobody asked yet: look again shortly (a person's login may take the lock next).
        let Some(holder) = holder else {
            tokio::select! {
                turn = gate.lock() => return Ok(turn),
                () = tokio::time::sleep(Duration::from_millis(250)) => continue,
            }
        };
        tokio::select! {
            turn = gate.lock() => return Ok(turn),
            () = holder.asked() => {
                return Err(Fail::then(
                    ErrorCode::NeedsPerson,
                    format!(
                        "{} asks a question at login that only the user can answer at a terminal, and is asking it now",
                        r.endpoint.label()
                    ),
                    NextStep::LogInAtTerminal {
                        command: open_command(&r.endpoint),
                    },
                ));
            }
        }
    }
}

/// Marks a login's opening lock as held by a person's login until dropped.
struct Asking<'a> {
    broker: &'a Core,
    key: &'a str,
}

impl<'a> Asking<'a> {
    fn register(broker: &'a Core, key: &'a str, person: &Person) -> Self {
        if let Ok(mut m) = broker.sessions().asking.lock() {
            m.insert(key.to_string(), person.clone());
        }
        Self { broker, key }
    }
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.broker.sessions().asking.lock() {
            m.remove(self.key);
        }
    }
}

async fn fleet(
    broker: &Arc<Core>,
    peer: &Peer,
    r: &Resolved,
    purpose: &str,
) -> Result<(Arc<Session>, Occupancy), Fail> {
    let (host, port) = (r.endpoint.host.clone(), r.endpoint.port);
    // 200 ms doubling to 6.4 s, with jitter: targets behind one server must not retry in step.
    let mut retry =
        Backoff::new(Duration::from_millis(200), Duration::from_millis(6400)).jittered();
    loop {
        if let Some(s) = find_open(broker, r)?
            && let Some(o) = s.try_occupy()
        {
            return Ok((s, o));
        }
        let gate = broker.handshakes().gate(&host, port);
        let permit = gate.acquire_owned().await.map_err(Fail::internal)?;
        let opened = Sessions::open(broker, peer, r, purpose).await;
        drop(permit);
        match opened {
            Ok(s) => {
                s.mark_transient();
                if let Some(o) = s.try_occupy() {
                    return Ok((s, o));
                }
            }
            // Dropped during the handshake: the server's MaxStartups, or a flaky network.
            Err(f) if f.code == ErrorCode::Ssh && retry.failures() + 1 < HANDSHAKE_ATTEMPTS => {
                broker.handshakes().lower(&host, port);
                let delay = retry.next_delay();
                tracing::debug!(
                    host,
                    port,
                    attempt = retry.failures(),
                    "handshake dropped; retrying in {} ms",
                    delay.as_millis()
                );
                tokio::time::sleep(delay).await;
            }
            Err(f) => return Err(f),
        }
    }
}
