//! Port forwarding held by the broker, as `ssh -L`, `ssh -D` and `ssh -R` do, but outliving the
//! CLI that asked for it and the broker itself: every forward is stored when opened, opened again
//! when the broker starts, and forgotten only by `forward close`.
//!
//! - `-L`/`-D` ([`listen`]): the broker listens, and each accepted connection becomes a
//!   `direct-tcpip` channel on the connection's session (opened again after a drop).
//! - `-R` ([`remote`]): the server listens on its side, and each `forwarded-tcpip` channel it
//!   opens is carried to a destination reached from the broker's machine. A supervising task
//!   asks the server again whenever the session comes back after a drop.
//!
//! Listeners bind to loopback (on the server: `localhost`) unless the user asks for another
//! address: a forward on 0.0.0.0 would hand every machine on the network a way through.

mod listen;
mod remote;
mod socks;
mod store;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use tokio::sync::watch;

use crate::broker::core::backoff::Backoff;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::resolve;
use crate::broker::core::{Core, Peer};
use crate::protocol::{ErrorCode, ForwardInfo, ForwardKind, ForwardSpec, ForwardState, Response};

pub use store::restore;

/// The broker's forwards.
#[derive(Default)]
pub struct Forwards {
    map: Mutex<HashMap<String, Arc<Forward>>>,
}

/// What changes over a forward's life.
struct Status {
    state: ForwardState,
    error: Option<String>,
    /// The port listened on (for `-R`, the one the server gave).
    port: u16,
}

struct Forward {
    id: String,
    spec: ForwardSpec,
    created_ms: i64,
    active: AtomicU64,
    total: AtomicU64,
    status: Mutex<Status>,
    /// The listening or supervising task; taken when the forward is closed.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set by `forward close`: a remote forward asks the server to stop listening, then ends.
    stop: watch::Sender<bool>,
}

impl Forward {
    fn new(id: String, spec: ForwardSpec, created_ms: i64) -> Arc<Self> {
        Arc::new(Forward {
            id,
            created_ms,
            active: AtomicU64::new(0),
            total: AtomicU64::new(0),
            status: Mutex::new(Status {
                state: ForwardState::Retrying,
                error: None,
                port: spec.bind_port,
            }),
            spec,
            task: Mutex::new(None),
            stop: watch::channel(false).0,
        })
    }

    fn info(&self) -> ForwardInfo {
        let (state, error, port) = self
            .status
            .lock()
            .map(|s| (s.state, s.error.clone(), s.port))
            .unwrap_or((ForwardState::Retrying, None, self.spec.bind_port));
        ForwardInfo {
            forward_id: self.id.clone(),
            target: self.spec.target.clone(),
            kind: self.spec.kind,
            bind_address: self.spec.bind_address.clone(),
            bind_port: port,
            host: self.spec.host.clone(),
            host_port: self.spec.host_port,
            created_ms: self.created_ms,
            active: self.active.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            state,
            error,
        }
    }

    /// The port to listen on: the one bound or given before, so a reopened forward keeps it.
    fn port(&self) -> u16 {
        self.status
            .lock()
            .map(|s| s.port)
            .unwrap_or(self.spec.bind_port)
    }

    fn set_open(&self, port: u16) {
        if let Ok(mut s) = self.status.lock() {
            *s = Status {
                state: ForwardState::Open,
                error: None,
                port,
            };
        }
    }

    fn set_retrying(&self, why: String) {
        if let Ok(mut s) = self.status.lock() {
            if s.error.as_deref() != Some(why.as_str()) {
                tracing::warn!(forward = %self.id, "forward not open: {why}");
            }
            s.state = ForwardState::Retrying;
            s.error = Some(why);
        }
    }

    /// The spec as stored: with the port bound, so the broker reopens the same one.
    fn stored_spec(&self) -> ForwardSpec {
        let mut s = self.spec.clone();
        s.bind_port = self.port();
        s
    }

    fn set_task(&self, t: tokio::task::JoinHandle<()>) {
        if let Ok(mut slot) = self.task.lock() {
            *slot = Some(t);
        }
    }

    /// Stops the forward: a remote one cancels its listen request first (bounded wait), then the
    /// task is aborted, which drops any local listener.
    async fn shut(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(mut t) = task {
            if self.spec.kind == ForwardKind::Remote
                && tokio::time::timeout(std::time::Duration::from_secs(10), &mut t)
                    .await
                    .is_ok()
            {
                return;
            }
            t.abort();
            let _ = t.await;
        }
    }
}

impl Forwards {
    /// Every forward, oldest first.
    pub fn list(&self) -> Vec<ForwardInfo> {
        let Ok(m) = self.map.lock() else {
            return Vec::new();
        };
        let mut v: Vec<ForwardInfo> = m.values().map(|f| f.info()).collect();
        v.sort_by_key(|f| f.created_ms);
        v
    }

    /// Stops every forward (the broker is stopping). Their records stay: the next broker opens
    /// them again.
    pub fn close_all(&self) {
        if let Ok(mut m) = self.map.lock() {
            for (_, f) in m.drain() {
                if let Some(t) = f.task.lock().ok().and_then(|mut t| t.take()) {
                    t.abort();
                }
            }
        }
    }

    fn insert(&self, f: Arc<Forward>) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(f.id.clone(), f);
        }
    }
}

/// How long to wait before trying a failed forward again: the backoff's next delay, or five
/// minutes after a failure only the user can mend (a changed host key, a refused key), so a
/// forward left open does not fill the audit log with refusals, yet recovers once it is mended.
fn retry_delay(f: &Fail, retry: &mut Backoff) -> Duration {
    let next = retry.next_delay();
    if f.code.needs_user() {
        Duration::from_secs(300)
    } else {
        next
    }
}

fn invalid(m: impl Into<String>) -> Fail {
    Fail::new(ErrorCode::InvalidArgument, m)
}

/// Whether a server-side bind address stays on the server's loopback.
fn remote_loopback(a: &str) -> bool {
    a == "localhost" || a.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks a spec and returns it with its bind address in the form it is stored.
fn check(mut spec: ForwardSpec) -> Result<ForwardSpec, Fail> {
    if spec.kind == ForwardKind::Remote {
        if !remote_loopback(&spec.bind_address) && !spec.allow_public {
            let shown = if spec.bind_address.is_empty() {
                "every address"
            } else {
                spec.bind_address.as_str()
            };
            return Err(invalid(format!(
                "{shown} on the server is reachable from other machines: remote forwards listen on the server's loopback unless you pass --allow-public (and its sshd allows GatewayPorts)"
            )));
        }
    } else {
        let bind: IpAddr = spec.bind_address.parse().map_err(|_| {
            invalid(format!(
                "{:?} is not an IP address to listen on (127.0.0.1 or ::1, say)",
                spec.bind_address
            ))
        })?;
        if !bind.is_loopback() && !spec.allow_public {
            return Err(invalid(format!(
                "{bind} is reachable from other machines: forwards listen on loopback unless you pass --allow-public"
            )));
        }
        spec.bind_address = bind.to_string();
    }
    let has_dest =
        !spec.host.as_deref().unwrap_or_default().is_empty() && spec.host_port.unwrap_or(0) != 0;
    match spec.kind {
        ForwardKind::Local if !has_dest => Err(invalid(
            "a local forward needs the destination host and port: -L [bind:]port:host:hostport",
        )),
        ForwardKind::Remote if !has_dest => Err(invalid(
            "a remote forward needs the destination host and port: -R [bind:]port:host:hostport",
        )),
        _ => Ok(spec),
    }
}

/// `forward`: starts the forward, stores it, and returns it (with the port bound or given).
pub async fn open(
    broker: &Arc<Core>,
    forwards: &Forwards,
    peer: &Peer,
    spec: ForwardSpec,
) -> Result<Response, Fail> {
    let spec = check(spec)?;
    let r = resolve(broker, &spec.target, spec.key.as_deref())?;
    let fwd = Forward::new(uuid::Uuid::new_v4().to_string(), spec, crate::db::now_ms());
    match fwd.spec.kind {
        ForwardKind::Local | ForwardKind::Dynamic => listen::open(broker, peer, &fwd).await?,
        ForwardKind::Remote => remote::open(broker, peer, &fwd).await?,
    }
    let audited = broker.audit(
        peer,
        "forward_open",
        r.key.as_deref(),
        r.endpoint.conn_name.as_deref(),
        format!("forward {}: {}", fwd.id, describe(&fwd.info())),
    );
    if let Err(f) = audited.and_then(|_| store::save(broker, &fwd)) {
        fwd.shut().await;
        return Err(f);
    }
    forwards.insert(fwd.clone());
    Ok(Response::Forward(fwd.info()))
}

/// `forward close`: replies once the port is no longer listened on, and forgets the forward.
pub async fn close(
    broker: &Core,
    forwards: &Forwards,
    peer: &Peer,
    id: &str,
) -> Result<Response, Fail> {
    let f = forwards
        .map
        .lock()
        .ok()
        .and_then(|mut m| m.remove(id))
        .ok_or_else(|| Fail::not_found("forward", id, "see `sshkeep forward list`"))?;
    f.shut().await;
    store::forget(broker, id)?;
    broker.audit(
        peer,
        "forward_close",
        None,
        None,
        format!("forward {id}: {}", describe(&f.info())),
    )?;
    Ok(Response::Forward(f.info()))
}

fn describe(i: &ForwardInfo) -> String {
    match i.kind {
        ForwardKind::Local => format!(
            "{}:{} -> {}:{} via {}",
            i.bind_address,
            i.bind_port,
            i.host.as_deref().unwrap_or_default(),
            i.host_port.unwrap_or(0),
            i.target
        ),
        ForwardKind::Dynamic => format!(
            "SOCKS5 on {}:{} via {}",
            i.bind_address, i.bind_port, i.target
        ),
        ForwardKind::Remote => format!(
            "{}:{} on {} -> {}:{} from here",
            i.bind_address,
            i.bind_port,
            i.target,
            i.host.as_deref().unwrap_or_default(),
            i.host_port.unwrap_or(0)
        ),
    }
}
