//! Fleet runs: the same commands on many connections at once.
//!
//! Each target is an ordinary command record (with the run's `bulk_id`), so its status and output
//! are kept and read like any other. Per target, a session already open to that connection is
//! reused and left open; otherwise a transient session is opened and closed when the target is
//! done. The queue heals itself: a server that refuses channels (MaxSessions) makes its commands
//! wait for a free channel; a server that drops connections during the handshake (MaxStartups)
//! gets fewer handshakes at once and retries with exponential backoff and jitter. One target's
//! failure (unreachable, refused host key or login, failing command) is recorded on that target
//! with an error code, and the others carry on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::broker::commands::{MAX_COMMAND_BYTES, attached, wrap};
use crate::broker::core::fail::Fail;
use crate::broker::core::jobs::{Ending, Stop, spawn_tracked};
use crate::broker::core::login::resolve;
use crate::broker::core::sessions::{Reuse, session_for};
use crate::broker::core::{Core, Peer};
use crate::db::{CommandRow, ConnRow, NewCommand, now_ms};
use crate::protocol::{
    BulkInfo, BulkLogLine, BulkSpec, BulkState, BulkTarget, CommandState, EndingCode, ErrorCode,
    LogQuery, NextStep, Response, TargetError, Targets,
};

fn invalid(m: impl Into<String>) -> Fail {
    Fail::new(ErrorCode::InvalidArgument, m)
}

/// Names given for a fleet operation that match no saved connection, each with its failure.
pub type Unknown = Vec<(String, Fail)>;

/// The connections a fleet operation covers, in the order given, without repeats; and the
/// names that match none. An unknown name fails that target alone: the others go on. Only a
/// request that names nothing that exists fails as a whole.
pub fn resolve_targets(broker: &Core, t: &Targets) -> Result<(Vec<ConnRow>, Unknown), Fail> {
    let all = broker.db()?.conns()?;
    let mut out: Vec<ConnRow> = Vec::new();
    let mut unknown: Unknown = Vec::new();
    let mut push = |c: ConnRow| {
        if !out.iter().any(|o| o.id == c.id) {
            out.push(c);
        }
    };
    for name in &t.conns {
        match crate::broker::core::login::find_conn(broker, name) {
            Ok(c) => push(c),
            Err(f) if f.code == ErrorCode::NotFound => {
                if !unknown.iter().any(|(n, _)| n == name) {
                    unknown.push((name.clone(), f));
                }
            }
            Err(f) => return Err(f),
        }
    }
    if let Some(client) = &t.client {
        let members: Vec<ConnRow> = all
            .iter()
            .filter(|c| c.spec.client.as_deref() == Some(client))
            .cloned()
            .collect();
        if members.is_empty() {
            return Err(Fail::then(
                ErrorCode::NotFound,
                format!("client '{client}' has no connections"),
                NextStep::ListClients,
            ));
        }
        members.into_iter().for_each(&mut push);
    }
    if t.all {
        all.into_iter().for_each(&mut push);
    }
    if out.is_empty() {
        return Err(match unknown.into_iter().next() {
            Some((_, f)) => f,
            None => invalid("no targets: name connections, a client, or all"),
        });
    }
    Ok((out, unknown))
}

fn error_code(e: &Ending) -> Option<TargetError> {
    let code = match (e.state, e.exit_code, &e.signal, &e.error) {
        (CommandState::Completed, ..) | (CommandState::Cancelled, ..) => return None,
        (CommandState::TimedOut, ..) => EndingCode::TimedOut,
        (_, Some(_), ..) => EndingCode::ExitStatus,
        (_, None, Some(_), _) => EndingCode::Signal,
        (_, None, None, Some(_)) => EndingCode::ConnectionLost,
        _ => EndingCode::Failed,
    };
    Some(TargetError::Ending(code))
}

/// `bulk exec`: records the run and its targets, starts it, and replies at once.
pub async fn start(broker: &Arc<Core>, peer: &Peer, spec: BulkSpec) -> Result<Response, Fail> {
    start_as(broker, peer, spec, None).await
}

/// Checks what a bulk run asks for, before it is started or held for approval.
pub fn check(spec: &BulkSpec) -> Result<(), Fail> {
    if spec.commands.is_empty() || spec.commands.iter().any(|c| c.trim().is_empty()) {
        return Err(invalid("commands is empty: give at least one command"));
    }
    if spec.commands.iter().map(String::len).sum::<usize>() > MAX_COMMAND_BYTES {
        return Err(invalid(
            "the commands are too long; upload a script instead",
        ));
    }
    wrap::check_commands(&spec.commands).map_err(invalid)?;
    wrap::prelude(&spec.options).map_err(invalid)?;
    if !(1..=256).contains(&spec.concurrency.unwrap_or(10)) {
        return Err(invalid("concurrency must be between 1 and 256"));
    }
    Ok(())
}

/// A bulk run under a given id (one the user approved), or a new one.
pub async fn start_as(
    broker: &Arc<Core>,
    peer: &Peer,
    spec: BulkSpec,
    bulk_id: Option<String>,
) -> Result<Response, Fail> {
    check(&spec)?;
    let concurrency = spec.concurrency.unwrap_or(10);
    let (targets, unknown) = resolve_targets(broker, &spec.targets)?;
    let bulk_id = bulk_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut jobs = Vec::new();
    {
        let db = broker.db()?;
        db.insert_bulk(&bulk_id, &spec.commands, concurrency, now_ms())?;
        for c in &targets {
            let id = uuid::Uuid::new_v4().to_string();
            let cmd = NewCommand {
                id: id.clone(),
                session_id: None,
                target: c.spec.name.clone(),
                conn_name: Some(c.spec.name.clone()),
                key_name: c.spec.key.clone(),
                commands: spec.commands.clone(),
                options: spec.options.clone(),
                detached: false,
                bulk_id: Some(bulk_id.clone()),
            };
            db.insert_command(&cmd, now_ms())?;
            jobs.push((id, c.spec.name.clone(), None));
        }
        for (name, fail) in unknown {
            let id = uuid::Uuid::new_v4().to_string();
            let cmd = NewCommand {
                id: id.clone(),
                session_id: None,
                target: name.clone(),
                conn_name: None,
                key_name: None,
                commands: spec.commands.clone(),
                options: spec.options.clone(),
                detached: false,
                bulk_id: Some(bulk_id.clone()),
            };
            db.insert_command(&cmd, now_ms())?;
            jobs.push((id, name, Some(fail)));
        }
    }
    broker.audit(
        peer,
        "bulk_exec",
        None,
        None,
        format!("bulk {bulk_id} on {} targets", jobs.len()),
    )?;
    let names = jobs.iter().map(|(_, n, _)| n.clone()).collect();
    let sem = Arc::new(Semaphore::new(concurrency as usize));
    for (id, name, unknown) in jobs {
        if let Some(f) = unknown {
            spawn_tracked(broker, &id.clone(), move |_stop| {
                let b = broker.clone();
                async move {
                    if let Ok(db) = b.db() {
                        let _ = db.command_error_code(&id, TargetError::Broker(f.code));
                    }
                    attached::not_started(f)
                }
            });
            continue;
        }
        let (b, peer, sem, commands, options) = (
            broker.clone(),
            peer.clone(),
            sem.clone(),
            spec.commands.clone(),
            spec.options.clone(),
        );
        spawn_tracked(broker, &id.clone(), move |stop| async move {
            let cmd: Arc<str> = id.clone().into();
            match sem.acquire_owned().await {
                Ok(_slot) => match resolve(&b, &name, None) {
                    Ok(r) => match session_for(&b, &peer, &r, "bulk run", Reuse::Fleet).await {
                        Ok((session, occupancy)) => {
                            // Each target's own time limit, from when it starts.
                            let deadline = options
                                .timeout_secs
                                .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
                            let job = attached::Job {
                                broker: b.clone(),
                                id: cmd.clone(),
                                session: session.clone(),
                                commands,
                                options,
                                stdin: None,
                                stop,
                                deadline,
                            };
                            let e = attached::run(job).await;
                            drop(occupancy);
                            if session.is_transient() {
                                b.sessions()
                                    .close_if_unused(&session.id, "bulk run done")
                                    .await;
                            }
                            if let (Some(code), Ok(db)) = (error_code(&e), b.db()) {
                                let _ = db.command_error_code(&id, code);
                            }
                            e
                        }
                        Err(f) => {
                            if let Ok(db) = b.db() {
                                let _ = db.command_error_code(&id, TargetError::Broker(f.code));
                            }
                            attached::not_started(f)
                        }
                    },
                    Err(f) => attached::not_started(f),
                },
                Err(_) => Ending::failed("the bulk run's queue closed"),
            }
        });
    }
    Ok(Response::BulkStarted {
        bulk_id,
        targets: names,
        approval: None,
    })
}

fn matches(c: &CommandRow, conn: Option<&ConnRow>, want: &str) -> bool {
    c.target == want
        || conn.is_some_and(|k| k.id == want || k.spec.host == want || k.spec.name == want)
}

/// A bulk run's commands, creation time, and its targets' command rows with their connections.
type RunRows = (Vec<String>, i64, Vec<(CommandRow, Option<ConnRow>)>);

fn rows(broker: &Core, bulk_id: &str, target: Option<&str>) -> Result<RunRows, Fail> {
    let db = broker.db()?;
    let (commands, created) = db
        .bulk(bulk_id)?
        .ok_or_else(|| Fail::unknown("bulk run", bulk_id, NextStep::BulkRunId))?;
    let mut out = Vec::new();
    for c in db.bulk_commands(bulk_id)? {
        let conn = db.conn_by_ref(&c.target)?;
        if target.is_none_or(|t| matches(&c, conn.as_ref(), t)) {
            out.push((c, conn));
        }
    }
    if let (Some(t), true) = (target, out.is_empty()) {
        return Err(Fail::not_found(
            "target",
            t,
            "name a target of this run by connection id, name or host",
        ));
    }
    Ok((commands, created, out))
}

/// Waits until every target of the run (or the one named) has ended, or `ms` milliseconds
/// (at most 10 s) have passed. A target still queued has no job yet: it is looked at again
/// shortly.
pub async fn wait(broker: &Core, bulk_id: &str, target: Option<&str>, ms: u64) -> Result<(), Fail> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms.min(10_000));
    loop {
        let (_, _, rows) = rows(broker, bulk_id, target)?;
        let open: Vec<_> = rows.iter().filter(|(c, _)| !c.state.is_final()).collect();
        if open.is_empty() {
            return Ok(());
        }
        let done: Vec<_> = open
            .iter()
            .filter_map(|(c, _)| broker.jobs().done(&c.id))
            .collect();
        let all_running = done.len() == open.len();
        let ended = async move {
            for mut d in done {
                let _ = d.wait_for(|v| *v).await;
            }
            if !all_running {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout_at(deadline, ended).await.is_err() {
            return Ok(());
        }
    }
}

/// `bulk status`.
pub fn status(broker: &Core, bulk_id: &str, target: Option<&str>) -> Result<Response, Fail> {
    let (commands, created_ms, rows) = rows(broker, bulk_id, target)?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let targets: Vec<BulkTarget> = rows
        .into_iter()
        .map(|(c, conn)| {
            *counts.entry(c.state.as_str().to_string()).or_default() += 1;
            BulkTarget {
                connection_id: conn.as_ref().map(|k| k.id.clone()).unwrap_or_default(),
                name: c.target.clone(),
                host: conn
                    .as_ref()
                    .map(|k| k.spec.host.clone())
                    .unwrap_or_default(),
                port: conn.as_ref().map(|k| k.spec.port).unwrap_or_default(),
                command_id: c.id,
                state: c.state,
                exit_code: c.exit_code,
                error_code: c.error_code,
                error: c.error,
            }
        })
        .collect();
    let state = if targets.iter().any(|t| !t.state.is_final()) {
        BulkState::Running
    } else if targets.iter().all(|t| t.state == CommandState::Completed) {
        BulkState::Completed
    } else {
        BulkState::Failed
    };
    Ok(Response::Bulk(BulkInfo {
        bulk_id: bulk_id.into(),
        commands,
        state,
        counts,
        targets,
        created_ms,
    }))
}

/// `bulk logs`: each target's lines (filtered as asked), labelled with the target.
pub async fn logs(
    broker: &Arc<Core>,
    bulk_id: &str,
    target: Option<&str>,
    q: LogQuery,
) -> Result<Response, Fail> {
    let (_, _, rows) = rows(broker, bulk_id, target)?;
    let cap = broker
        .settings()
        .get(crate::settings::Key::LogsReplyMaxBytes)
        .min(q.max_bytes.unwrap_or(u64::MAX));
    let bulk = bulk_id.to_string();
    crate::broker::core::output::read_logs(broker, move |read| {
        let mut lines = Vec::new();
        let mut size = 0u64;
        let mut truncated = false;
        for (c, _) in rows {
            let query = LogQuery {
                command_id: c.id.clone(),
                ..q.clone()
            };
            let page = read(&query, c.state, cap.saturating_sub(size))?;
            truncated |= page.truncated;
            for l in page.lines {
                size += l.text.len() as u64 + 32;
                lines.push(BulkLogLine {
                    target: c.target.clone(),
                    n: l.n,
                    stream: l.stream,
                    text: l.text,
                });
            }
            if size >= cap {
                truncated = true;
                break;
            }
        }
        Ok(Response::BulkLogs {
            bulk_id: bulk,
            lines,
            truncated,
        })
    })
    .await
}

/// `bulk cancel`: the whole run or one target; replies when they have ended.
pub async fn cancel(
    broker: &Arc<Core>,
    peer: &Peer,
    bulk_id: &str,
    target: Option<&str>,
) -> Result<Response, Fail> {
    let (_, _, rows) = rows(broker, bulk_id, target)?;
    let mut waits = Vec::new();
    for (c, _) in rows.iter().filter(|(c, _)| !c.state.is_final()) {
        if let Some(done) = broker.jobs().signal(&c.id, Stop::Cancel) {
            waits.push(done);
        }
    }
    broker.audit(
        peer,
        "bulk_cancel",
        None,
        target,
        format!("bulk {bulk_id}: {} targets", waits.len()),
    )?;
    for mut d in waits {
        let _ = tokio::time::timeout(Duration::from_secs(30), d.wait_for(|v| *v)).await;
    }
    status(broker, bulk_id, target)
}
