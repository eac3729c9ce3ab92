//! `-R`: the server listens on its side (`tcpip-forward`), and each `forwarded-tcpip` channel it
//! opens is carried to the destination as reached from the broker's machine.
//!
//! A supervising task per forward holds the session (so it is never closed as idle), and when
//! the session's connection drops it waits for the reconnect (or logs in anew if the session
//! failed) and asks the server to listen again, on the port the server gave the first time.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use russh::client::Handle;
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

use super::{Forward, retry_delay};
use crate::broker::core::backoff::Backoff;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::{LostSlot, resolve};
use crate::broker::core::sessions::{Occupancy, Reuse, Session, session_for};
use crate::broker::core::{Core, Peer};
use crate::protocol::{ErrorCode, SessionState};
use crate::ssh::{Forwarded, Verifier};

/// How long connecting to the destination may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A session held for the forward.
type Held = (Arc<Session>, Occupancy);

/// The server listening for the forward on one connection.
struct Listening {
    held: Held,
    handle: Arc<Handle<Verifier>>,
    link: LostSlot,
    port: u32,
    incoming: UnboundedReceiver<Forwarded>,
}

impl Listening {
    /// Whether the connection the server listens on is still the session's live one.
    fn current(&self) -> bool {
        !self.handle.is_closed() && self.held.0.state() == SessionState::Open
    }

    /// Asks the server to stop listening and refuses channels for the port from now on.
    /// Channels the handler queued meanwhile are closed, not dropped (a dropped Channel would
    /// hold a MaxSessions slot).
    async fn cancel(mut self, address: &str) {
        self.link.unlisten(address, self.port);
        self.incoming.close();
        while let Ok(f) = self.incoming.try_recv() {
            drop(f.channel.into_stream());
        }
        if !self.handle.is_closed() {
            let _ = self.handle.cancel_tcpip_forward(address, self.port).await;
        }
    }
}

/// Asks the server to listen, on `held`'s session if it is still usable (waiting through a
/// reconnect), else on a session found or opened for the forward.
async fn listen(
    broker: &Arc<Core>,
    peer: &Peer,
    fwd: &Forward,
    held: Option<Held>,
) -> Result<Listening, (Fail, Option<Held>)> {
    let held = match held
        .filter(|(s, _)| matches!(s.state(), SessionState::Open | SessionState::Reconnecting))
    {
        Some(h) => h,
        None => {
            let r = resolve(broker, &fwd.spec.target, fwd.spec.key.as_deref())
                .map_err(|f| (f, None))?;
            let (s, mut hold) = session_for(broker, peer, &r, "forward", Reuse::Shared)
                .await
                .map_err(|f| (f, None))?;
            // Counted as running: the session stays open for as long as the server listens.
            hold.running();
            (s, hold)
        }
    };
    let (handle, link) = match held.0.wait_open_link().await {
        Ok(x) => x,
        Err(f) => return Err((f, None)),
    };
    let address = fwd.spec.bind_address.clone();
    let asked = u32::from(fwd.port());
    let port = match handle.tcpip_forward(address.clone(), asked).await {
        // A requested port comes back as 0 (the reply carries no port).
        Ok(0) => asked,
        Ok(p) => p,
        Err(e) => {
            let label = held.0.label.clone();
            let shown = if address.is_empty() { "*" } else { &address };
            let f = Fail::new(
                ErrorCode::Ssh,
                format!(
                    "{label} refused to listen on {shown}:{asked} ({e}): the port may be taken there, or its sshd has AllowTcpForwarding no"
                ),
            );
            return Err((f, Some(held)));
        }
    };
    let (tx, incoming) = tokio::sync::mpsc::unbounded_channel();
    link.listen(&address, port, tx);
    Ok(Listening {
        held,
        handle,
        link,
        port,
        incoming,
    })
}

fn given_port(l: &Listening, fwd: &Forward) -> u16 {
    u16::try_from(l.port).unwrap_or(fwd.port())
}

/// Asks the server to listen now (so a refusal is said to the user), then supervises.
pub(super) async fn open(broker: &Arc<Core>, peer: &Peer, fwd: &Arc<Forward>) -> Result<(), Fail> {
    let first = listen(broker, peer, fwd, None).await.map_err(|(f, _)| f)?;
    fwd.set_open(given_port(&first, fwd));
    start(broker, peer, fwd, Some(first));
    Ok(())
}

/// At broker start: supervises a stored forward, which asks the server to listen again.
pub(super) fn reopen(broker: &Arc<Core>, peer: &Peer, fwd: &Arc<Forward>) {
    start(broker, peer, fwd, None);
}

fn start(broker: &Arc<Core>, peer: &Peer, fwd: &Arc<Forward>, first: Option<Listening>) {
    let task = tokio::spawn(supervise(
        broker.clone(),
        peer.clone(),
        fwd.clone(),
        first,
        fwd.stop.subscribe(),
    ));
    fwd.set_task(task);
}

async fn supervise(
    broker: Arc<Core>,
    peer: Peer,
    fwd: Arc<Forward>,
    mut first: Option<Listening>,
    mut stop: watch::Receiver<bool>,
) {
    let mut retry = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut held = None;
    loop {
        let listening = match first.take() {
            Some(l) => l,
            None => {
                let attempt = tokio::select! {
                    a = listen(&broker, &peer, &fwd, held.take()) => a,
                    _ = stop.changed() => return,
                };
                match attempt {
                    Ok(l) => {
                        retry.reset();
                        let port = given_port(&l, &fwd);
                        let moved = port != fwd.port();
                        fwd.set_open(port);
                        if moved {
                            super::store::update_port(&broker, &fwd);
                        }
                        tracing::info!(forward = %fwd.id, "the server listens for the remote forward again");
                        l
                    }
                    Err((f, keep)) => {
                        held = keep;
                        let pause = retry_delay(&f, &mut retry);
                        fwd.set_retrying(f.message);
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            _ = stop.changed() => return,
                        }
                        continue;
                    }
                }
            }
        };
        match serve(&fwd, listening, &mut stop).await {
            Some(back) => {
                fwd.set_retrying(format!(
                    "the connection to {} dropped; the server will be asked to listen again once it is back",
                    back.0.label
                ));
                held = Some(back);
            }
            None => return,
        }
    }
}

/// Carries the server's connections until the connection drops (returns the session held) or
/// the forward is closed (cancels the listen request, returns `None`).
async fn serve(
    fwd: &Arc<Forward>,
    mut l: Listening,
    stop: &mut watch::Receiver<bool>,
) -> Option<Held> {
    let mut changes = l.held.0.watch();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            got = l.incoming.recv() => match got {
                Some(ch) => {
                    tokio::spawn(carry_back(fwd.clone(), ch));
                }
                // The route was taken away: listen again.
                None => return Some(l.held),
            },
            _ = changes.changed() => {}
            _ = tick.tick() => {}
            _ = stop.changed() => {
                let address = fwd.spec.bind_address.clone();
                l.cancel(&address).await;
                return None;
            }
        }
        if !l.current() {
            l.link.unlisten(&fwd.spec.bind_address, l.port);
            return Some(l.held);
        }
    }
}

/// Carries one connection the server accepted to the destination, both ways.
async fn carry_back(fwd: Arc<Forward>, ch: Forwarded) {
    fwd.active.fetch_add(1, Ordering::Relaxed);
    fwd.total.fetch_add(1, Ordering::Relaxed);
    // into_stream closes the channel when dropped, whatever happens below.
    let mut remote = ch.channel.into_stream();
    let host = fwd.spec.host.clone().unwrap_or_default();
    let port = fwd.spec.host_port.unwrap_or(0);
    let ended = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(mut tcp)) => {
            let _ = tcp.set_nodelay(true);
            tokio::io::copy_bidirectional(&mut tcp, &mut remote)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Ok(Err(e)) => Err(format!("cannot connect to {host}:{port}: {e}")),
        Err(_) => Err(format!("no answer from {host}:{port}")),
    };
    if let Err(e) = ended {
        tracing::info!(forward = %fwd.id, "connection from {} on the server ended: {e}", ch.originator);
    }
    fwd.active.fetch_sub(1, Ordering::Relaxed);
}
