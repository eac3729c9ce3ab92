//! Commands on servers. `run` is asynchronous: start (the reply comes at once), status, filtered
//! logs, cancel, list, and recovery when the broker starts; it runs [`attached`] on a session's
//! channel or [`detached`] in a job of its own on the server. `exec` ([`exec`]) streams instead.

pub(crate) mod attached;
mod detached;
pub mod exec;
mod kill;
pub(crate) mod marker;
pub mod wrap;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::broker::core::fail::Fail;
use crate::broker::core::jobs::{Ending, Stop, spawn_tracked};
use crate::broker::core::login::{Resolved, resolve};
use crate::broker::core::output::read_logs;
use crate::broker::core::sessions::{Reuse, Session, session_for};

use crate::broker::core::{Core, Peer};
use crate::db::{CommandRow, NewCommand, now_ms};
use crate::protocol::{
    CommandInfo, CommandState, ErrorCode, LogQuery, NextStep, Response, RunSpec, StreamStats,
};
pub use kill::{Killed, kill_remote_group};

pub(crate) const MAX_COMMAND_BYTES: usize = 256 * 1024;

fn invalid(m: impl Into<String>) -> Fail {
    Fail::new(ErrorCode::InvalidArgument, m)
}

/// `run`: records the command and starts it; replies at once.
pub async fn start(broker: &Arc<Core>, peer: &Peer, spec: RunSpec) -> Result<Response, Fail> {
    start_as(broker, peer, spec, None).await
}

/// Checks what a run asks for, before it is started or held for approval.
pub fn check(spec: &RunSpec) -> Result<(), Fail> {
    if spec.commands.is_empty() || spec.commands.iter().any(|c| c.trim().is_empty()) {
        return Err(invalid("command is empty: give the command to run"));
    }
    if spec.commands.iter().map(String::len).sum::<usize>() > MAX_COMMAND_BYTES {
        return Err(invalid(format!(
            "the command is longer than {MAX_COMMAND_BYTES} bytes; upload a script instead"
        )));
    }
    wrap::check_commands(&spec.commands).map_err(invalid)?;
    wrap::prelude(&spec.options).map_err(invalid)?;
    if spec.options.pty && spec.detach {
        return Err(invalid(
            "pty and detach do not go together: a detached command has no terminal",
        ));
    }
    Ok(())
}

/// `run` under a given command id (one the user approved), or a new one.
pub async fn start_as(
    broker: &Arc<Core>,
    peer: &Peer,
    spec: RunSpec,
    id: Option<String>,
) -> Result<Response, Fail> {
    check(&spec)?;
    let (session, resolved, target) = place(broker, &spec)?;
    let key = resolved.key.clone();
    let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let conn_name = resolved.endpoint.conn_name.clone();
    broker.db()?.insert_command(
        &NewCommand {
            id: id.clone(),
            session_id: session.as_ref().map(|s| s.id.clone()),
            target: target.clone(),
            conn_name,
            key_name: key.clone(),
            commands: spec.commands.clone(),
            options: spec.options.clone(),
            detached: spec.detach,
            bulk_id: None,
        },
        now_ms(),
    )?;
    let session_id = session.as_ref().map(|s| s.id.clone());
    let deadline = spec
        .options
        .timeout_secs
        .and_then(|s| Instant::now().checked_add(Duration::from_secs(s)));
    let cmd: Arc<str> = id.clone().into();
    let b = broker.clone();
    let peer = peer.clone();
    spawn_tracked(broker, &id, move |stop| async move {
        if spec.detach {
            detached::run(detached::Job {
                broker: b.clone(),
                id: cmd.clone(),
                target,
                key,
                session,
                commands: spec.commands,
                options: spec.options,
                stdin: spec.stdin,
                stop,
                deadline,
                pgid: None,
            })
            .await
        } else {
            let session = match session {
                Some(s) => Ok(s),
                // Each step of the command counts itself on the session.
                None => session_for(&b, &peer, &resolved, "run", Reuse::Shared)
                    .await
                    .map(|(s, _)| s),
            };
            match session {
                Ok(session) => {
                    attached::run(attached::Job {
                        broker: b.clone(),
                        id: cmd.clone(),
                        session,
                        commands: spec.commands,
                        options: spec.options,
                        stdin: spec.stdin,
                        stop,
                        deadline,
                    })
                    .await
                }
                Err(f) => attached::not_started(f),
            }
        }
    });
    Ok(Response::CommandStarted {
        command_id: id,
        session_id,
        state: CommandState::Queued,
        approval: None,
    })
}

/// Where a run goes, resolved once: the session it names (with that session's login), or the
/// target's login; and the target as recorded.
fn place(broker: &Core, spec: &RunSpec) -> Result<(Option<Arc<Session>>, Resolved, String), Fail> {
    match (&spec.session_id, &spec.target) {
        (Some(_), Some(_)) => Err(invalid("give a session or a target, not both")),
        (None, None) => Err(invalid(
            "give a session (sessionId) or a target (connection name or user@host[:port])",
        )),
        (Some(id), None) => {
            let s = broker.sessions().get(id)?;
            let t = s
                .resolved
                .endpoint
                .conn_name
                .clone()
                .unwrap_or_else(|| s.label.clone());
            Ok((Some(s.clone()), s.resolved.clone(), t))
        }
        // Resolved now so a bad name fails the request, not the command.
        (None, Some(t)) => Ok((None, resolve(broker, t, spec.key.as_deref())?, t.clone())),
    }
}

/// Everything about a command a client may see.
pub fn info(c: CommandRow) -> CommandInfo {
    let total_lines = c.stdout_lines + c.stderr_lines;
    CommandInfo {
        duration_ms: c.started_ms.map(|s| c.ended_ms.unwrap_or_else(now_ms) - s),
        output_lost_bytes: 0,
        storage_error: None,
        command_id: c.id,
        session_id: c.session_id,
        target: c.target,
        conn_name: c.conn_name,
        commands: c.commands,
        detached: c.detached,
        state: c.state,
        exit_code: c.exit_code,
        signal: c.signal,
        error: c.error,
        created_ms: c.created_ms,
        started_ms: c.started_ms,
        ended_ms: c.ended_ms,
        stdout: StreamStats {
            bytes: c.stdout_bytes,
            lines: c.stdout_lines,
        },
        stderr: StreamStats {
            bytes: c.stderr_bytes,
            lines: c.stderr_lines,
        },
        total_lines,
        bulk_id: c.bulk_id,
        events: Vec::new(),
        approval: None,
    }
}

fn row(broker: &Core, id: &str) -> Result<CommandRow, Fail> {
    broker
        .db()?
        .command(id)?
        .ok_or_else(|| Fail::unknown("command", id, NextStep::ListCommands))
}

/// `status`.
pub fn status(broker: &Core, id: &str) -> Result<Response, Fail> {
    let mut i = info(row(broker, id)?);
    i.total_lines = total_lines(broker, id).unwrap_or(i.total_lines);
    i.events = events(broker, id);
    // Output lost to a storage error: what is recorded, plus what is not recorded yet.
    let (lost, error) = broker.db()?.output_loss(id)?;
    let unrecorded = broker.log_writer().unrecorded_loss(id).unwrap_or_default();
    i.output_lost_bytes = lost + unrecorded.bytes;
    i.storage_error = error.or((!unrecorded.error.is_empty()).then_some(unrecorded.error));
    Ok(Response::Command(i))
}

/// The broker's own notes on a command (its marker lines), oldest first, at most the last 50.
fn events(broker: &Core, id: &str) -> Vec<String> {
    let Ok(conn) = broker.log_reader() else {
        return Vec::new();
    };
    crate::logs::markers(&conn, id, 50).unwrap_or_default()
}

fn total_lines(broker: &Core, id: &str) -> Option<u64> {
    let conn = broker.log_reader().ok()?;
    crate::logs::total_lines(&conn, id).ok().map(|n| n as u64)
}

/// `logs`.
pub async fn logs(broker: &Arc<Core>, q: LogQuery) -> Result<Response, Fail> {
    let c = row(broker, &q.command_id)?;
    let cap = broker
        .settings()
        .get(crate::settings::Key::LogsReplyMaxBytes)
        .min(q.max_bytes.unwrap_or(u64::MAX));
    read_logs(broker, move |read| read(&q, c.state, cap))
        .await
        .map(Response::Logs)
}

/// `cancel`: stops the command and everything it started; replies once it has ended.
pub async fn cancel(broker: &Arc<Core>, peer: &Peer, id: &str) -> Result<Response, Fail> {
    let c = row(broker, id)?;
    if c.state.is_final() {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "command {id} already ended ({}); nothing to cancel",
                c.state.as_str()
            ),
        ));
    }
    let Some(mut done) = broker.jobs().signal(id, Stop::Cancel) else {
        return Err(Fail::new(
            ErrorCode::Internal,
            format!(
                "command {id} is {} but not running in this broker",
                c.state.as_str()
            ),
        ));
    };
    broker.audit(
        peer,
        "command_cancel",
        c.key_name.as_deref(),
        c.conn_name.as_deref(),
        format!("command {id}"),
    )?;
    let _ = tokio::time::timeout(Duration::from_secs(30), done.wait_for(|d| *d)).await;
    status(broker, id)
}

/// `ps`.
pub fn list(
    broker: &Core,
    state: Option<&str>,
    conn: Option<&str>,
    limit: Option<u32>,
) -> Result<Response, Fail> {
    if let Some(s) = state
        && CommandState::parse(s).is_none()
    {
        return Err(invalid(format!(
            "unknown state {s:?}: use queued, running, completed, failed, cancelled, timed_out or interrupted"
        )));
    }
    let rows = broker
        .db()?
        .commands(state, conn, None, limit.unwrap_or(50).min(1000))?;
    Ok(Response::Commands {
        commands: rows.into_iter().map(info).collect(),
    })
}

/// At broker start: attached commands that were running are `interrupted`; detached ones are
/// followed again (re-attached as soon as their server can be reached).
pub fn recover(broker: &Arc<Core>) {
    let (interrupted, detached) = match broker.db() {
        Ok(db) => (
            db.interrupt_orphans(now_ms()).unwrap_or(0),
            db.running_detached().unwrap_or_default(),
        ),
        Err(_) => return,
    };
    if interrupted > 0 {
        tracing::warn!(
            "{interrupted} command(s) were running when the broker stopped; marked interrupted"
        );
    }
    for c in detached {
        let cmd: Arc<str> = c.id.clone().into();
        let b = broker.clone();
        tracing::info!(command = %c.id, target = %c.target, "re-attaching to a detached command");
        spawn_tracked(broker, &c.id.clone(), move |stop| async move {
            match c.remote_pgid {
                Some(pgid) => {
                    detached::run(detached::Job {
                        broker: b.clone(),
                        id: cmd.clone(),
                        target: c.target,
                        key: c.key_name,
                        session: None,
                        commands: c.commands,
                        options: c.options,
                        stdin: None,
                        stop,
                        deadline: None,
                        pgid: Some(pgid),
                    })
                    .await
                }
                None => Ending::failed(
                    "the broker stopped before the detached command was started on the server",
                ),
            }
        });
    }
}
