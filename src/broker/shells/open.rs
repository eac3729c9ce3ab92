//! Opening a shell, and re-adopting at broker start the tmux-backed shells that outlived the
//! previous broker.

use std::sync::Arc;
use std::time::Duration;

use super::recording::Recording;
use super::{Shell, Shells, check_size, driver, probe, tmux_name};
use crate::broker::core::backoff::Backoff;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::resolve;
use crate::broker::core::sessions::{Reuse, session_for};
use crate::broker::core::{Core, Peer};
use crate::db::{NewCommand, now_ms};
use crate::protocol::{ErrorCode, Response, RunOptions, ShellSpec, ShellState};

/// Opens a shell.
pub async fn open(
    broker: &Arc<Core>,
    shells: &Shells,
    peer: &Peer,
    spec: ShellSpec,
) -> Result<Response, Fail> {
    check_size(spec.cols, spec.rows)?;
    if spec.term.is_empty()
        || spec.term.len() > 64
        || !spec
            .term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "terminal type {:?} is not valid (e.g. xterm-256color)",
                spec.term
            ),
        ));
    }
    shells.prune();
    let r = resolve(broker, &spec.target, spec.key.as_deref())?;
    // The shell's driver counts each channel it opens on the session.
    let (session, _) = session_for(broker, peer, &r, "shell", Reuse::Shared).await?;
    let (persistent, persistence) = match spec.persist {
        Some(false) => (
            false,
            "not asked for: the shell ends if the connection drops".to_string(),
        ),
        wanted => match probe(&session, "command -v tmux >/dev/null 2>&1").await {
            Some((0, _)) => (
                true,
                "runs in tmux on the server: re-attached after a reconnect".to_string(),
            ),
            _ if wanted == Some(true) => {
                return Err(Fail::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "a persistent shell needs tmux on {}, which was not found: install it there, or open the shell without persist",
                        session.label
                    ),
                ));
            }
            _ => (
                false,
                "tmux not found on the server: the shell ends if the connection drops".to_string(),
            ),
        },
    };
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let conn_name = session.resolved.endpoint.conn_name.clone();
    {
        let db = broker.db()?;
        db.insert_command(
            &NewCommand {
                id: id.clone(),
                session_id: Some(session.id.clone()),
                target: spec.target.clone(),
                conn_name: conn_name.clone(),
                key_name: session.resolved.key.clone(),
                commands: vec![format!(
                    "interactive shell ({} {}x{}{})",
                    spec.term,
                    spec.cols,
                    spec.rows,
                    if persistent { ", tmux" } else { "" }
                )],
                options: RunOptions {
                    pty: true,
                    ..Default::default()
                },
                detached: false,
                bulk_id: None,
            },
            now_ms(),
        )?;
        let terminal = serde_json::json!({
            "term": spec.term,
            "cols": spec.cols,
            "rows": spec.rows,
            "persistent": persistent,
        });
        db.mark_shell(&id, &terminal.to_string())?;
    }
    let cast = broker.paths().recording(&id);
    broker.audit(
        peer,
        "shell_open",
        session.resolved.key.as_deref(),
        conn_name.as_deref(),
        format!(
            "shell {id} on {}; recording {}",
            session.label,
            cast.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into())
        ),
    )?;
    let recording = Recording::of(
        cast,
        (spec.cols, spec.rows),
        &spec.term,
        &format!("sshkeep shell {id} on {}", session.label),
    );
    let (shell, rx) = Shell::new(
        id,
        spec.target,
        session,
        spec.term,
        (spec.cols, spec.rows),
        (persistent, persistence),
        ShellState::Opening,
    );
    shell.record_to(recording);
    shells.insert(shell.clone());
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(driver::run(broker.clone(), shell.clone(), rx, ready_tx));
    match ready_rx.await {
        Ok(Ok(())) => Ok(Response::Shell(shell.info())),
        Ok(Err(f)) => Err(f),
        Err(_) => Err(Fail::internal("the shell's task ended before it started")),
    }
}

/// The terminal a shell was opened with, as stored.
#[derive(serde::Deserialize)]
struct Terminal {
    term: String,
    cols: u16,
    rows: u16,
}

/// At broker start: re-adopts the tmux-backed shells that were open when the broker stopped (their
/// tmux sessions kept running on the servers).
pub fn recover(broker: &Arc<Core>, shells: &Arc<Shells>) {
    let rows = match broker.db() {
        Ok(db) => db.persistent_shells().unwrap_or_default(),
        Err(_) => return,
    };
    for (row, terminal) in rows {
        tokio::spawn(adopt(broker.clone(), shells.clone(), row, terminal));
    }
}

async fn adopt(
    broker: Arc<Core>,
    shells: Arc<Shells>,
    row: crate::db::CommandRow,
    terminal: String,
) {
    let end = |why: String| {
        tracing::warn!(shell = %row.id, "{why}");
        if let Ok(db) = broker.db() {
            let _ = db.command_ended(
                &row.id,
                crate::protocol::CommandState::Failed,
                None,
                None,
                Some(&why),
                now_ms(),
            );
        }
    };
    let Ok(t) = serde_json::from_str::<Terminal>(&terminal) else {
        return end("the shell's stored terminal is unreadable".into());
    };
    let peer = Peer::default();
    // 2 s doubling to a minute, eight times.
    let mut pause = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
    let session = loop {
        let found = match resolve(&broker, &row.target, row.key_name.as_deref()) {
            Ok(r) => session_for(&broker, &peer, &r, "re-adopt a shell", Reuse::Shared).await,
            Err(f) => Err(f),
        };
        match found {
            Ok((s, _)) => break s,
            Err(f) if pause.failures() < 8 => {
                tracing::info!(shell = %row.id, "cannot reach {} yet to re-adopt the shell: {}", row.target, f.message);
                pause.wait().await;
            }
            Err(f) => {
                return end(format!(
                    "could not re-adopt the shell after the broker restarted: {}",
                    f.message
                ));
            }
        }
    };
    match probe(
        &session,
        &format!("tmux has-session -t {}", tmux_name(&row.id)),
    )
    .await
    {
        Some((0, _)) => {}
        _ => return end("the shell's tmux session ended while the broker was away".into()),
    }
    let recording = Recording::of(
        broker.paths().recording(&row.id),
        (t.cols, t.rows),
        &t.term,
        &format!("sshkeep shell {} on {}", row.id, session.label),
    );
    let (shell, rx) = Shell::new(
        row.id.clone(),
        row.target.clone(),
        session,
        t.term,
        (t.cols, t.rows),
        (
            true,
            "runs in tmux on the server: re-attached after a reconnect".into(),
        ),
        ShellState::Reconnecting,
    );
    shell.record_to(recording);
    shell.facts(|f| f.reconnects = 1);
    broker.log_writer().marker(
        &shell.log_id,
        "[sshkeep] the broker restarted; re-attaching the tmux session",
    );
    shells.insert(shell.clone());
    tracing::info!(shell = %shell.id, target = %shell.target, "re-adopting a tmux-backed shell");
    let (ready, _) = tokio::sync::oneshot::channel();
    driver::run(broker, shell, rx, ready).await;
}
