//! One session: its SSH connection, its state, the commands counted on it, and the channels
//! opened on it through its gate.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::Handle;
use tokio::sync::watch;

use super::gate::{ChannelGate, Permit};
use crate::broker::core::backoff::Backoff;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::{LostSlot, Resolved};
use crate::db::now;
use crate::protocol::{ErrorCode, SessionInfo, SessionState};
use crate::ssh::Verifier;

/// What changes over a session's life, under one lock.
pub(super) struct Inner {
    pub(super) state: SessionState,
    pub(super) handle: Option<Arc<Handle<Verifier>>>,
    pub(super) lost: Option<LostSlot>,
    pub(super) last_used: i64,
    pub(super) reconnects: u32,
    pub(super) reason: Option<String>,
    pub(super) running: u32,
    pub(super) queued: u32,
    /// Holds the jump host's session open while this one is tunnelled through it.
    pub(super) via: Option<Occupancy>,
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
    /// Its login took answers from the person at a terminal (a one-time code): a new login
    /// would need them again, so callers without a person use this one.
    by_person: std::sync::atomic::AtomicBool,
    inner: Mutex<Inner>,
    pub(super) changed: watch::Sender<u64>,
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
    /// A session on a fresh login, open and unused.
    pub(super) fn new(
        r: &Resolved,
        key_fingerprint: String,
        channel_limit: u32,
        (handle, lost, via): (Handle<Verifier>, LostSlot, Option<Occupancy>),
    ) -> Arc<Self> {
        let label = r.endpoint.conn_name.clone().unwrap_or_else(|| {
            format!(
                "{}@{}:{}",
                r.endpoint.user, r.endpoint.host, r.endpoint.port
            )
        });
        Arc::new(Session {
            id: uuid::Uuid::new_v4().to_string(),
            label,
            resolved: r.clone(),
            key_fingerprint,
            opened: now(),
            gate: ChannelGate::new(channel_limit),
            transient: std::sync::atomic::AtomicBool::new(false),
            by_person: std::sync::atomic::AtomicBool::new(false),
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
        })
    }

    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        match self.inner.lock() {
            Ok(mut i) => f(&mut i),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    pub(super) fn bump(&self) {
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

    /// Records that a person answered questions for this session's login.
    pub fn mark_by_person(&self) {
        self.by_person
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a person answered questions for this session's login.
    pub fn is_by_person(&self) -> bool {
        self.by_person.load(std::sync::atomic::Ordering::Relaxed)
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
    /// Checked and counted under one lock, so a concurrent
    /// [`super::Sessions::close_if_unused`] either sees this user or this call sees the close.
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

    /// Like [`Session::wait_open`], with the link of the same connection (where channels its
    /// server opens are routed).
    pub async fn wait_open_link(&self) -> Result<(Arc<Handle<Verifier>>, LostSlot), Fail> {
        loop {
            let handle = self.wait_open().await?;
            let (now, link) = self.with(|i| (i.handle.clone(), i.lost.clone()));
            if let (Some(now), Some(link)) = (now, link)
                && Arc::ptr_eq(&now, &handle)
            {
                return Ok((handle, link));
            }
        }
    }

    /// A receiver that sees every change of state (lost, reconnected, closed).
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The connection dropped: go to `reconnecting` (the supervisor takes it from there).
    pub fn mark_lost(&self) {
        let changed = self.with(|i| {
            if i.state != SessionState::Open {
                return false;
            }
            let why = i.lost.as_ref().and_then(|l| l.lost());
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
                    // OpenSSH's ForwardAgent: asked on each session channel, as ssh does.
                    let forwards =
                        self.with(|i| i.lost.as_ref().is_some_and(|l| l.forwards_agent()));
                    if forwards && let Err(e) = ch.agent_forward(false).await {
                        tracing::warn!(session = %self.id, "agent forwarding was not requested: {e}");
                    }
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
            state: i.state,
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

    pub(super) fn same_login(&self, r: &Resolved, fingerprint: &str) -> bool {
        same_login(&self.resolved, &self.key_fingerprint, r, fingerprint)
    }
}

/// Whether a session logged in as `a` (with the key `fa`) serves a request for `b` (key `fb`):
/// the same user, address, key and jump path (a session opened directly, or through another
/// bastion, is another login).
fn same_login(a: &Resolved, fa: &str, b: &Resolved, fb: &str) -> bool {
    let (ea, eb) = (&a.endpoint, &b.endpoint);
    ea.user == eb.user
        && ea.host == eb.host
        && ea.port == eb.port
        && fa == fb
        && a.jump == b.jump
        // A session that forwards the agent serves only its own connection.
        && a.forward_agent == b.forward_agent
        && (!b.forward_agent || ea.conn_name == eb.conn_name)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::same_login;
    use crate::broker::core::login::Resolved;
    use crate::protocol::HostKeyPolicy;
    use crate::ssh::Endpoint;

    fn resolved(jump: &[&str]) -> Resolved {
        Resolved {
            endpoint: Endpoint {
                host: "10.0.0.5".into(),
                port: 22,
                user: "deploy".into(),
                policy: HostKeyPolicy::Strict,
                keepalive_interval: 15,
                keepalive_max: 3,
                connect_timeout: None,
                conn_name: Some("db".into()),
            },
            key: Some("k".into()),
            idle: Duration::from_secs(60),
            jump: jump.iter().map(|s| s.to_string()).collect(),
            via: None,
            forward_agent: false,
        }
    }

    #[test]
    fn a_session_through_another_jump_path_is_another_login() {
        let direct = resolved(&[]);
        let via_a = resolved(&["bastion-a"]);
        let via_b = resolved(&["bastion-b"]);
        assert!(same_login(&via_b, "fp", &via_b, "fp"));
        assert!(!same_login(&direct, "fp", &via_b, "fp"));
        assert!(!same_login(&via_a, "fp", &via_b, "fp"));
        assert!(!same_login(&via_b, "fp", &direct, "fp"));
        assert!(!same_login(&via_b, "fp", &via_b, "other"));
    }
}
