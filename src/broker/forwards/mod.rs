//! Port forwarding held by the broker, as `ssh -L` and `ssh -D` do, but outliving the CLI that
//! asked for it: the broker listens, and each accepted connection becomes a `direct-tcpip`
//! channel on the connection's session (opened again after a drop, like any session).
//!
//! Listeners bind to loopback unless the user asks for another address: a forward on 0.0.0.0
//! would hand every machine on the network a way into the server's side.

mod socks;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::broker::core::fail::Fail;
use crate::broker::core::login::resolve;
use crate::broker::core::sessions::{Reuse, session_for};
use crate::broker::core::{Core, Peer};
use crate::protocol::{ErrorCode, ForwardInfo, ForwardKind, ForwardSpec, Response};

/// The broker's forwards.
#[derive(Default)]
pub struct Forwards {
    map: Mutex<HashMap<String, Arc<Forward>>>,
}

struct Forward {
    info: ForwardInfo,
    active: AtomicU64,
    total: AtomicU64,
    /// The listening task; taken when the forward is closed.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Forward {
    fn info(&self) -> ForwardInfo {
        let mut i = self.info.clone();
        i.active = self.active.load(Ordering::Relaxed);
        i.total = self.total.load(Ordering::Relaxed);
        i
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

    /// Stops every listener (the broker is stopping).
    pub fn close_all(&self) {
        if let Ok(mut m) = self.map.lock() {
            for (_, f) in m.drain() {
                if let Some(t) = f.task.lock().ok().and_then(|mut t| t.take()) {
                    t.abort();
                }
            }
        }
    }
}

fn invalid(m: impl Into<String>) -> Fail {
    Fail::new(ErrorCode::InvalidArgument, m)
}

/// `forward`: starts listening and returns the forward.
pub async fn open(
    broker: &Arc<Core>,
    forwards: &Forwards,
    peer: &Peer,
    spec: ForwardSpec,
) -> Result<Response, Fail> {
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
    if spec.kind == ForwardKind::Local
        && (spec.host.as_deref().unwrap_or_default().is_empty() || spec.host_port.unwrap_or(0) == 0)
    {
        return Err(invalid(
            "a local forward needs the destination host and port: -L [bind:]port:host:hostport",
        ));
    }
    let r = resolve(broker, &spec.target, spec.key.as_deref())?;
    // Log in now, so a refused host key or login is said here and not on the first connection.
    session_for(broker, peer, &r, "forward", Reuse::Shared).await?;
    let listener = TcpListener::bind(SocketAddr::new(bind, spec.bind_port))
        .await
        .map_err(|e| {
            Fail::new(
                ErrorCode::InvalidArgument,
                format!("cannot listen on {bind}:{}: {e}", spec.bind_port),
            )
        })?;
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(spec.bind_port);
    let id = uuid::Uuid::new_v4().to_string();
    let info = ForwardInfo {
        forward_id: id.clone(),
        target: spec.target.clone(),
        kind: spec.kind,
        bind_address: bind.to_string(),
        bind_port: port,
        host: spec.host.clone(),
        host_port: spec.host_port,
        created_ms: crate::db::now_ms(),
        active: 0,
        total: 0,
    };
    broker.audit(
        peer,
        "forward_open",
        r.key.as_deref(),
        r.endpoint.conn_name.as_deref(),
        format!("forward {id}: {}", describe(&info)),
    )?;
    let fwd = Arc::new_cyclic(|weak: &std::sync::Weak<Forward>| {
        let weak = weak.clone();
        let broker = broker.clone();
        let peer = peer.clone();
        let spec = spec.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, from)) = listener.accept().await else {
                    // Out of file descriptors, say: wait and go on rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                };
                let Some(f) = weak.upgrade() else { return };
                let (broker, peer, spec) = (broker.clone(), peer.clone(), spec.clone());
                tokio::spawn(async move {
                    f.active.fetch_add(1, Ordering::Relaxed);
                    f.total.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = carry(&broker, &peer, &spec, tcp, from).await {
                        tracing::info!(forward = %f.info.forward_id, "forwarded connection from {from} ended: {e}");
                    }
                    f.active.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        Forward {
            info,
            active: AtomicU64::new(0),
            total: AtomicU64::new(0),
            task: Mutex::new(Some(task)),
        }
    });
    let out = fwd.info();
    if let Ok(mut m) = forwards.map.lock() {
        m.insert(id, fwd);
    }
    Ok(Response::Forward(out))
}

/// `forward close`: replies once the port is no longer listened on.
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
    let task = f.task.lock().ok().and_then(|mut t| t.take());
    if let Some(t) = task {
        t.abort();
        // The listener is dropped when the aborted task is: wait for that.
        let _ = t.await;
    }
    broker.audit(
        peer,
        "forward_close",
        None,
        None,
        format!("forward {id}: {}", describe(&f.info)),
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
    }
}

/// Carries one accepted connection through a `direct-tcpip` channel.
async fn carry(
    broker: &Arc<Core>,
    peer: &Peer,
    spec: &ForwardSpec,
    mut tcp: TcpStream,
    from: SocketAddr,
) -> Result<(), String> {
    let _ = tcp.set_nodelay(true);
    let (host, port) = match spec.kind {
        ForwardKind::Local => (
            spec.host.clone().unwrap_or_default(),
            spec.host_port.unwrap_or(0),
        ),
        ForwardKind::Dynamic => socks::request(&mut tcp).await?,
    };
    let r = resolve(broker, &spec.target, spec.key.as_deref()).map_err(|f| f.message)?;
    // Forwarded connections are not counted on the session: only its own use keeps it open.
    let (session, _) = session_for(broker, peer, &r, "forward", Reuse::Shared)
        .await
        .map_err(|f| f.message)?;
    let handle = session.wait_open().await.map_err(|f| f.message)?;
    let opened = handle
        .channel_open_direct_tcpip(
            host.clone(),
            u32::from(port),
            from.ip().to_string(),
            u32::from(from.port()),
        )
        .await;
    if spec.kind == ForwardKind::Dynamic {
        // SOCKS5 reply: succeeded (0) or general failure (1), bound address unspecified.
        let code = if opened.is_ok() { 0 } else { 1 };
        tcp.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0])
            .await
            .map_err(|e| e.to_string())?;
    }
    let channel = opened.map_err(|e| format!("{} refused {host}:{port}: {e}", session.label))?;
    session.touch();
    // into_stream closes the channel when dropped (a dropped Channel would hold a MaxSessions slot).
    let mut remote = channel.into_stream();
    tokio::io::copy_bidirectional(&mut tcp, &mut remote)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
