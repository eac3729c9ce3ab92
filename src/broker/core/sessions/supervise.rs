//! The supervisor of each session: it reconnects a session whose connection dropped and closes
//! one left idle for its timeout.

use std::sync::Arc;
use std::time::Duration;

use super::Session;
use crate::broker::core::backoff::Backoff;
use crate::broker::core::login::{login, refreshed};
use crate::broker::core::{Core, Peer};
use crate::db::now;
use crate::protocol::SessionState;

/// Watches one session: reconnects it when its connection drops, closes it when idle.
pub(super) async fn supervise(broker: Arc<Core>, session: Arc<Session>) {
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

async fn reconnect(broker: &Arc<Core>, session: &Arc<Session>) {
    let attempts = broker
        .settings()
        .get(crate::settings::Key::ReconnectAttempts);
    let peer = Peer::default();
    // 1 s doubling to 30 s between attempts.
    let mut pause = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    for attempt in 0..attempts {
        pause.wait().await;
        if session.state() != SessionState::Reconnecting {
            return;
        }
        // A rotation may have replaced the key this session logged in with.
        let resolved = refreshed(broker, &session.resolved);
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
            Err(f) if f.code.needs_user() => {
                // Retrying cannot help (and must not hammer a server whose key changed).
                tracing::warn!(session = %session.id, "reconnect refused: {}", f.message);
                session.with(|i| {
                    i.state = SessionState::Failed;
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
