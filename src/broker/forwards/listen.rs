//! `-L` and `-D`: the broker listens on a local port, and each accepted connection goes through
//! a `direct-tcpip` channel on the connection's session. A forward reopened at broker start binds
//! its port again (retrying while it is taken) and then checks that its login works.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::{Forward, retry_delay, socks};
use crate::broker::core::backoff::Backoff;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::resolve;
use crate::broker::core::sessions::{Reuse, session_for};
use crate::broker::core::{Core, Peer};
use crate::protocol::{ErrorCode, ForwardKind};

async fn bind(fwd: &Forward) -> Result<TcpListener, String> {
    let port = fwd.port();
    let ip: IpAddr = fwd
        .spec
        .bind_address
        .parse()
        .map_err(|_| format!("{:?} is not an IP address", fwd.spec.bind_address))?;
    TcpListener::bind(SocketAddr::new(ip, port))
        .await
        .map_err(|e| format!("cannot listen on {ip}:{port}: {e}"))
}

fn bound_port(l: &TcpListener, asked: u16) -> u16 {
    l.local_addr().map(|a| a.port()).unwrap_or(asked)
}

/// Logs in (so a refused host key or login is said now, not on the first connection), listens,
/// and starts accepting.
pub(super) async fn open(broker: &Arc<Core>, peer: &Peer, fwd: &Arc<Forward>) -> Result<(), Fail> {
    let r = resolve(broker, &fwd.spec.target, fwd.spec.key.as_deref())?;
    session_for(broker, peer, &r, "forward", Reuse::Shared).await?;
    let listener = bind(fwd)
        .await
        .map_err(|m| Fail::new(ErrorCode::InvalidArgument, m))?;
    fwd.set_open(bound_port(&listener, fwd.port()));
    let task = tokio::spawn(accept(
        broker.clone(),
        peer.clone(),
        Arc::downgrade(fwd),
        listener,
    ));
    fwd.set_task(task);
    Ok(())
}

/// At broker start: listens on the stored port again, retrying while it cannot, then checks
/// the login (retrying too) while connections are already accepted.
pub(super) fn reopen(broker: &Arc<Core>, fwd: &Arc<Forward>) {
    let (broker, weak) = (broker.clone(), Arc::downgrade(fwd));
    let task = tokio::spawn(async move {
        let mut retry = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let listener = loop {
            let Some(f) = weak.upgrade() else { return };
            match bind(&f).await {
                Ok(l) => break l,
                Err(why) => f.set_retrying(why),
            }
            drop(f);
            retry.wait().await;
        };
        let port = weak
            .upgrade()
            .map(|f| bound_port(&listener, f.port()))
            .unwrap_or(0);
        let peer = Peer::default();
        tokio::join!(
            accept(broker.clone(), peer.clone(), weak.clone(), listener),
            check_login(broker, peer, weak, port)
        );
    });
    fwd.set_task(task);
}

async fn check_login(broker: Arc<Core>, peer: Peer, weak: Weak<Forward>, port: u16) {
    let mut retry = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let Some(f) = weak.upgrade() else { return };
        let logged_in = match resolve(&broker, &f.spec.target, f.spec.key.as_deref()) {
            Ok(r) => session_for(&broker, &peer, &r, "forward", Reuse::Shared)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        match logged_in {
            Ok(()) => {
                f.set_open(port);
                return;
            }
            Err(e) => {
                f.set_retrying(format!(
                    "listening on {}:{port}, but the login to {} fails: {}",
                    f.spec.bind_address, f.spec.target, e.message
                ));
                drop(f);
                tokio::time::sleep(retry_delay(&e, &mut retry)).await;
            }
        }
    }
}

async fn accept(broker: Arc<Core>, peer: Peer, weak: Weak<Forward>, listener: TcpListener) {
    loop {
        let Ok((tcp, from)) = listener.accept().await else {
            // Out of file descriptors, say: wait and go on rather than spin.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Some(f) = weak.upgrade() else { return };
        let (broker, peer) = (broker.clone(), peer.clone());
        tokio::spawn(async move {
            f.active.fetch_add(1, Ordering::Relaxed);
            f.total.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = carry(&broker, &peer, &f, tcp, from).await {
                tracing::info!(forward = %f.id, "forwarded connection from {from} ended: {e}");
            }
            f.active.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Carries one accepted connection through a `direct-tcpip` channel.
async fn carry(
    broker: &Arc<Core>,
    peer: &Peer,
    fwd: &Forward,
    mut tcp: TcpStream,
    from: SocketAddr,
) -> Result<(), String> {
    let spec = &fwd.spec;
    let _ = tcp.set_nodelay(true);
    let (host, port) = match spec.kind {
        ForwardKind::Dynamic => socks::request(&mut tcp).await?,
        _ => (
            spec.host.clone().unwrap_or_default(),
            spec.host_port.unwrap_or(0),
        ),
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
        .await
        // into_stream closes the channel when dropped, on every way out of here (a dropped
        // Channel would hold a MaxSessions slot).
        .map(|c| c.into_stream());
    if spec.kind == ForwardKind::Dynamic {
        // SOCKS5 reply: succeeded (0) or general failure (1), bound address unspecified.
        let code = if opened.is_ok() { 0 } else { 1 };
        tcp.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0])
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut remote = opened.map_err(|e| format!("{} refused {host}:{port}: {e}", session.label))?;
    session.touch();
    tokio::io::copy_bidirectional(&mut tcp, &mut remote)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
