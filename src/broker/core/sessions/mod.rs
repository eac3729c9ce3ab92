//! Persistent sessions: one SSH connection each, owned by the broker and shared by all of the
//! user's clients.
//!
//! A supervisor task per session notices a dropped connection (keepalive or reset), marks the
//! session `reconnecting` and logs in again with exponential backoff (1 s doubling to 30 s); the
//! same session id becomes `open` again, and detached commands are re-attached. After the
//! configured number of attempts the session is `failed`, with the reason. A session unused for
//! its idle timeout is closed.
//!
//! Features get their sessions from [`session_for`], the one way to find or open one.

mod acquire;
pub mod gate;
mod session;
mod supervise;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use acquire::{Reuse, find_open, session_for};
pub use session::{Occupancy, Session};

use crate::broker::core::fail::Fail;
use crate::broker::core::login::{Resolved, key_fingerprint, login_counted};
use crate::broker::core::{Core, Peer};
use crate::protocol::{NextStep, SessionInfo, SessionState};

/// All sessions of the broker.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    /// One lock per login being opened by [`session_for`], so that callers arriving together (a
    /// fleet behind one bastion) share one login instead of racing to open one each.
    pub(super) opening: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The person at a terminal whose login holds the opening lock of a login, if one does:
    /// while they are asked, callers without a person do not wait behind them.
    pub(super) asking: Mutex<HashMap<String, crate::ssh::Person>>,
}

impl Sessions {
    pub(super) fn all(&self) -> Vec<Arc<Session>> {
        self.map
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Opens a new session (a new SSH connection) to `r`.
    pub async fn open(
        broker: &Arc<Core>,
        peer: &Peer,
        r: &Resolved,
        purpose: &str,
    ) -> Result<Arc<Session>, Fail> {
        let fingerprint = key_fingerprint(broker, r)?;
        let (handle, link, hold, by_person) = login_counted(broker, peer, r, purpose).await?;
        let login = (handle, link, hold);
        let limit = broker
            .settings()
            .get(crate::settings::Key::ChannelLimit)
            .min(u32::MAX as u64) as u32;
        let session = Session::new(r, fingerprint, limit, login);
        if by_person {
            session.mark_by_person();
        }
        if let Ok(mut m) = broker.sessions().map.lock() {
            m.insert(session.id.clone(), session.clone());
        }
        tokio::spawn(supervise::supervise(broker.clone(), session.clone()));
        Ok(session)
    }

    /// Closes a session unless commands still use it (a transient bulk session that another
    /// target or client is using stays open). The check and the close happen under one lock.
    pub async fn close_if_unused(&self, id: &str, why: &str) {
        let Ok(session) = self.get(id) else { return };
        let handle = session.with(|i| {
            if i.running + i.queued > 0 || i.state == SessionState::Closed {
                return None;
            }
            i.state = SessionState::Closed;
            i.via = None;
            i.reason = Some(why.into());
            Some(i.handle.take())
        });
        let Some(handle) = handle else { return };
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
        session.bump();
        if let Some(h) = handle {
            let _ = h
                .disconnect(russh::Disconnect::ByApplication, why, "en")
                .await;
        }
    }

    /// A session by id.
    pub fn get(&self, id: &str) -> Result<Arc<Session>, Fail> {
        self.map
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .ok_or_else(|| Fail::unknown("session", id, NextStep::ListSessions))
    }

    /// Every session, oldest first.
    pub fn list(&self) -> Vec<SessionInfo> {
        let mut v: Vec<SessionInfo> = self.all().iter().map(|s| s.info()).collect();
        v.sort_by_key(|s| s.opened);
        v
    }

    /// Sessions that are open now.
    pub fn open_count(&self) -> usize {
        self.all()
            .iter()
            .filter(|s| s.state() == SessionState::Open)
            .count()
    }

    /// Closes a session and disconnects it.
    pub async fn close(&self, id: &str, why: &str) -> Result<(), Fail> {
        let session = self.get(id)?;
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
        let handle = session.with(|i| {
            i.state = SessionState::Closed;
            i.via = None;
            i.reason = Some(why.into());
            i.handle.take()
        });
        session.bump();
        if let Some(h) = handle {
            let _ = h
                .disconnect(russh::Disconnect::ByApplication, why, "en")
                .await;
        }
        Ok(())
    }

    /// Closes every session (broker shutdown).
    pub async fn close_all(&self) {
        for s in self.all() {
            let _ = self.close(&s.id, "sshkeep broker stopping").await;
        }
    }
}
