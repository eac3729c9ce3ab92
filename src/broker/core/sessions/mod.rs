//! Persistent sessions: one SSH connection each, owned by the broker and shared by all of the
//! user's clients.
//!
//! A supervisor task per session notices a dropped connection (keepalive or reset), marks the
//! session `reconnecting` and logs in again with exponential backoff (1 s doubling to 30 s); the
//! same session id becomes `open` again, and detached commands are re-attached. After the
//! configured number of attempts the session is `failed`, with the reason. A session unused for
//! its idle timeout is closed.

pub mod gate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::Handle;
use tokio::sync::watch;

use self::gate::{ChannelGate, Permit};
use crate::broker::core::backoff::Backoff;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::{LostSlot, Resolved, key_fingerprint, login};
use crate::broker::core::{Core, Peer};
use crate::db::now;
use crate::protocol::{ErrorCode, NextStep, SessionInfo};
use crate::ssh::Verifier;

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    Open,
    Reconnecting,
    Failed,
    Closed,
}

impl SessionState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Reconnecting => "reconnecting",
            Self::Failed => "failed",
            Self::Closed => "closed",
        }
    }
}

struct Inner {
    state: SessionState,
    handle: Option<Arc<Handle<Verifier>>>,
    lost: Option<LostSlot>,
    last_used: i64,
    reconnects: u32,
    reason: Option<String>,
    running: u32,
    queued: u32,
    /// Holds the jump host's session open while this one is tunnelled through it.
    via: Option<Occupancy>,
}

/// One session.
pub struct Session {
    pub id: String,
    pub label: String,
    pub resolved: Resolved,
    pub key_fingerprint: String,
    pub opened: i64,
    pub gate: Arc<ChannelGate>,
    /// Opened for a bulk run: closed when its last user is done.
    transient: std::sync::atomic::AtomicBool,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

/// A command's place in a session's counts; dropping it takes the command out.
pub struct Occupancy {
    session: Arc<Session>,
    running: bool,
}

impl Occupancy {
    /// The command got its channel.
    pub fn running(&mut self) {
        if !self.running {
            self.session.with(|i| {
                i.queued -= 1;
                i.running += 1;
            });
            self.running = true;
        }
    }
}

impl Drop for Occupancy {
    fn drop(&mut self) {
        let running = self.running;
        self.session.with(|i| {
            if running {
                i.running -= 1;
            } else {
                i.queued -= 1;
            }
            i.last_used = now();
        });
    }
}

impl Session {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        match self.inner.lock() {
            Ok(mut i) => f(&mut i),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// The state now.
    pub fn state(&self) -> SessionState {
        self.with(|i| i.state)
    }

    /// Marks the session as opened for a bulk run (closed when its last user is done).
    pub fn mark_transient(&self) {
        self.transient
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the session was opened for a bulk run.
    pub fn is_transient(&self) -> bool {
        self.transient.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Open with a connection that has not dropped (a dropped one is marked lost here).
    pub fn is_live(&self) -> bool {
        let (state, handle) = self.with(|i| (i.state, i.handle.clone()));
        match (state, handle) {
            (SessionState::Open, Some(h)) if !h.is_closed() => true,
            (SessionState::Open, _) => {
                self.mark_lost();
                false
            }
            _ => false,
        }
    }

    /// Marks use now (keeps the idle timer off).
    pub fn touch(&self) {
        self.with(|i| i.last_used = now());
    }

    /// Counts a command as queued on this session until the returned guard drops.
    pub fn occupy(self: &Arc<Self>) -> Occupancy {
        self.with(|i| i.queued += 1);
        Occupancy {
            session: self.clone(),
            running: false,
        }
    }

    /// Counts a command on this session if it is still open; `None` once it was closed.
    /// Checked and counted under one lock, so a concurrent [`Sessions::close_if_unused`] either
    /// sees this user or this call sees the close.
    pub fn try_occupy(self: &Arc<Self>) -> Option<Occupancy> {
        let ok = self.with(|i| {
            let open = matches!(i.state, SessionState::Open | SessionState::Reconnecting);
            if open {
                i.queued += 1;
            }
            open
        });
        ok.then(|| Occupancy {
            session: self.clone(),
            running: false,
        })
    }

    /// The live connection, waiting through a reconnect. Fails if the session failed or closed.
    pub async fn wait_open(&self) -> Result<Arc<Handle<Verifier>>, Fail> {
        let mut rx = self.changed.subscribe();
        loop {
            let (state, handle, reason) =
                self.with(|i| (i.state, i.handle.clone(), i.reason.clone()));
            match (state, handle) {
                (SessionState::Open, Some(h)) if !h.is_closed() => return Ok(h),
                (SessionState::Open, _) => self.mark_lost(),
                (SessionState::Failed, _) => {
                    return Err(Fail::new(
                        ErrorCode::Unreachable,
                        format!(
                            "session {} to {} failed: {}; open a new one",
                            self.id,
                            self.label,
                            reason.unwrap_or_default()
                        ),
                    ));
                }
                (SessionState::Closed, _) => {
                    return Err(Fail::new(
                        ErrorCode::NotFound,
                        format!("session {} was closed", self.id),
                    ));
                }
                (SessionState::Reconnecting, _) => {
                    if rx.changed().await.is_err() {
                        return Err(Fail::new(ErrorCode::Internal, "session supervisor is gone"));
                    }
                }
            }
        }
    }

    /// The connection dropped: go to `reconnecting` (the supervisor takes it from there).
    pub fn mark_lost(&self) {
        let changed = self.with(|i| {
            if i.state != SessionState::Open {
                return false;
            }
            let why = i
                .lost
                .as_ref()
                .and_then(|l| l.lock().ok().and_then(|g| g.clone()));
            i.state = SessionState::Reconnecting;
            i.reason = Some(why.unwrap_or_else(|| "the connection dropped".into()));
            i.handle = None;
            i.via = None;
            true
        });
        if changed {
            tracing::warn!(session = %self.id, target = %self.label, "session lost its connection; reconnecting");
            self.bump();
        }
    }

    /// Opens a channel through the gate, waiting in the queue while the server's channel limit
    /// is reached, and through a reconnect.
    pub async fn open_channel(
        self: &Arc<Self>,
    ) -> Result<(russh::Channel<russh::client::Msg>, Permit), Fail> {
        // Pauses between refused opens that did not lower the limit: 50 ms doubling to 1 s.
        let mut refusals = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            let mut permit = self.gate.acquire().await;
            let handle = self.wait_open().await?;
            match handle.channel_open_session().await {
                Ok(ch) => {
                    permit.opened();
                    self.touch();
                    return Ok((ch, permit));
                }
                Err(russh::Error::ChannelOpenFailure(_)) if !handle.is_closed() => {
                    let lowered = self.gate.refused();
                    drop(permit);
                    if lowered {
                        refusals.reset();
                    } else {
                        if refusals.failures() >= 40 {
                            return Err(Fail::new(
                                ErrorCode::Ssh,
                                format!(
                                    "{} keeps refusing new channels (its MaxSessions limit); try again later",
                                    self.label
                                ),
                            ));
                        }
                        refusals.wait().await;
                    }
                    tracing::debug!(session = %self.id, lowered, "server refused a channel; waiting for a free one");
                }
                Err(e) if handle.is_closed() => {
                    tracing::debug!("channel open failed on a closed connection: {e}");
                    self.mark_lost();
                }
                Err(e) => {
                    return Err(Fail::new(
                        ErrorCode::Ssh,
                        format!("cannot open a channel on {}: {e}", self.label),
                    ));
                }
            }
        }
    }

    /// What clients see.
    pub fn info(&self) -> SessionInfo {
        let (open, limit) = self.gate.usage();
        let ep = &self.resolved.endpoint;
        self.with(|i| SessionInfo {
            session_id: self.id.clone(),
            target: self.label.clone(),
            conn_name: ep.conn_name.clone(),
            user: ep.user.clone(),
            host: ep.host.clone(),
            port: ep.port,
            state: i.state.as_str().into(),
            opened: self.opened,
            last_used: i.last_used,
            channels_in_use: open,
            channel_limit: limit,
            commands_running: i.running,
            commands_queued: i.queued,
            reconnects: i.reconnects,
            reason: i.reason.clone(),
        })
    }

    fn same_login(&self, r: &Resolved, fingerprint: &str) -> bool {
        let (a, b) = (&self.resolved.endpoint, &r.endpoint);
        a.user == b.user
            && a.host == b.host
            && a.port == b.port
            && self.key_fingerprint == fingerprint
    }
}

/// All sessions of the broker.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    /// One lock per login being opened by `for_target`, so that callers arriving together (a
    /// fleet behind one bastion) share one login instead of racing to open one each.
    opening: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Sessions {
    fn all(&self) -> Vec<Arc<Session>> {
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
        let (handle, lost, via) = login(broker, peer, r, purpose).await?;
        let label = r.endpoint.conn_name.clone().unwrap_or_else(|| {
            format!(
                "{}@{}:{}",
                r.endpoint.user, r.endpoint.host, r.endpoint.port
            )
        });
        let limit = broker.settings().get("channel_limit").min(u32::MAX as u64) as u32;
        let session = Arc::new(Session {
            id: uuid::Uuid::new_v4().to_string(),
            label,
            resolved: r.clone(),
            key_fingerprint: fingerprint,
            opened: now(),
            gate: ChannelGate::new(limit),
            transient: std::sync::atomic::AtomicBool::new(false),
            inner: Mutex::new(Inner {
                state: SessionState::Open,
                handle: Some(Arc::new(handle)),
                lost: Some(lost),
                last_used: now(),
                reconnects: 0,
                reason: None,
                running: 0,
                queued: 0,
                via,
            }),
            changed: watch::channel(0).0,
        });
        if let Ok(mut m) = broker.sessions().map.lock() {
            m.insert(session.id.clone(), session.clone());
        }
        tokio::spawn(supervise(broker.clone(), session.clone()));
        Ok(session)
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

    /// A session for `r`: an open one with the same login, or a new one. A session that is
    /// reconnecting is not waited for: a new login answers at once, with its error if it fails.
    pub async fn for_target(
        broker: &Arc<Core>,
        peer: &Peer,
        r: &Resolved,
        purpose: &str,
    ) -> Result<Arc<Session>, Fail> {
        if let Some(s) = Self::find_open(broker, r)? {
            s.touch();
            return Ok(s);
        }
        // The path is part of the login: a connection that jumps through a bastion with the
        // same address as itself must not wait on the bastion's own opening.
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
            let _turn = gate.lock().await;
            match Self::find_open(broker, r)? {
                Some(s) => {
                    s.touch();
                    Ok(s)
                }
                None => Self::open(broker, peer, r, purpose).await,
            }
        };
        if let Ok(mut m) = broker.sessions().opening.lock()
            && m.get(&login_key).is_some_and(|g| Arc::strong_count(g) <= 2)
        {
            m.remove(&login_key);
        }
        opened
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

/// Watches one session: reconnects it when its connection drops, closes it when idle.
async fn supervise(broker: Arc<Core>, session: Arc<Session>) {
    let mut rx = session.changed.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            r = rx.changed() => if r.is_err() { return },
        }
        let (state, handle, busy, last_used) =
            session.with(|i| (i.state, i.handle.clone(), i.running + i.queued, i.last_used));
        match state {
            SessionState::Closed | SessionState::Failed => return,
            SessionState::Open => {
                if handle.as_ref().is_none_or(|h| h.is_closed()) {
                    session.mark_lost();
                } else if busy == 0 && now() - last_used >= session.resolved.idle.as_secs() as i64 {
                    tracing::info!(session = %session.id, target = %session.label, "closing idle session");
                    let _ = broker.sessions().close(&session.id, "idle timeout").await;
                    return;
                }
            }
            SessionState::Reconnecting => reconnect(&broker, &session).await,
        }
    }
}

/// Failures no retry can mend: the server's key changed or is untrusted, the login is refused,
/// the key or connection is gone.
fn permanent(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::HostKeyChanged
            | ErrorCode::HostKeyUnknown
            | ErrorCode::AuthFailed
            | ErrorCode::NoKey
            | ErrorCode::NotFound
            | ErrorCode::InvalidKey
    )
}

async fn reconnect(broker: &Arc<Core>, session: &Arc<Session>) {
    let attempts = broker.settings().get("reconnect_attempts");
    let peer = Peer::default();
    // 1 s doubling to 30 s between attempts.
    let mut pause = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    for attempt in 0..attempts {
        pause.wait().await;
        if session.state() != SessionState::Reconnecting {
            return;
        }
        // A rotation may have replaced the key this session logged in with.
        let resolved = crate::broker::core::login::refreshed(broker, &session.resolved);
        match login(broker, &peer, &resolved, "reconnect").await {
            Ok((handle, lost, via)) => {
                session.with(|i| {
                    i.state = SessionState::Open;
                    i.handle = Some(Arc::new(handle));
                    i.lost = Some(lost);
                    i.via = via;
                    i.reconnects += 1;
                    i.reason = None;
                    i.last_used = now();
                });
                tracing::info!(session = %session.id, target = %session.label, "session reconnected");
                // Detached commands' followers wait on this and re-attach by themselves.
                session.bump();
                return;
            }
            Err(f) if permanent(f.code) => {
                // Retrying cannot help (and must not hammer a server whose key changed).
                tracing::warn!(session = %session.id, "reconnect refused: {}", f.message);
                session.with(|i| {
                    i.state = SessionState::Failed;
                    i.via = None;
                    i.via = None;
                    i.reason = Some(f.message.clone());
                });
                session.bump();
                return;
            }
            Err(f) => {
                tracing::warn!(session = %session.id, attempt = attempt + 1, "reconnect failed: {}", f.message);
                session.with(|i| {
                    i.reason = Some(format!(
                        "reconnect attempt {} of {attempts} failed: {}",
                        attempt + 1,
                        f.message
                    ))
                });
            }
        }
    }
    session.with(|i| {
        i.state = SessionState::Failed;
        i.via = None;
        let last = i.reason.take().unwrap_or_default();
        i.reason = Some(format!(
            "gave up after {attempts} reconnect attempts; last: {last}"
        ));
    });
    session.bump();
}
