//! Attached commands: run on a channel of a session; their output streams into the log store.
//! A dropped connection ends them (`failed`); cancel and timeout kill their process group.

use std::sync::Arc;

use russh::ChannelMsg;
use tokio::sync::watch;
use tokio::time::Instant;

use super::marker::MarkerFilter;
use super::{Killed, kill, kill_remote_group, wrap};
use crate::broker::core::jobs::{Ending, Stop, stopped, until};
use crate::broker::core::sessions::Session;
use crate::broker::core::{Core, fail::Fail};
use crate::db::now_ms;
use crate::logs::{STREAM_STDERR, STREAM_STDOUT};
use crate::protocol::SecretString;
use crate::protocol::{CommandState, RunOptions};

pub struct Job {
    pub broker: Arc<Core>,
    pub id: Arc<str>,
    pub session: Arc<Session>,
    pub commands: Vec<String>,
    pub options: RunOptions,
    pub stdin: Option<SecretString>,
    pub stop: watch::Receiver<Option<Stop>>,
    pub deadline: Option<Instant>,
}

/// Runs the job's commands in order and returns how it ended.
pub async fn run(mut job: Job) -> Ending {
    let writer = job.broker.log_writer().clone();
    for (i, command) in job.commands.iter().enumerate() {
        let mut occupancy = job.session.occupy();
        let opened = tokio::select! {
            r = job.session.open_channel() => r,
            s = stopped(&mut job.stop, job.deadline) => return kill::stopped(s, None),
        };
        let (mut channel, _permit) = match opened {
            Ok(c) => c,
            Err(f) => return Ending::failed(f.message),
        };
        occupancy.running();
        if i == 0
            && let Ok(db) = job.broker.db()
        {
            let _ = db.command_started(&job.id, &job.session.id, now_ms());
        }
        let script = match wrap::attached(command, &job.options) {
            Ok(s) => s,
            Err(e) => return Ending::failed(e),
        };
        if job.options.pty
            && let Err(e) = channel
                .request_pty(false, "xterm-256color", 200, 50, 0, 0, &[])
                .await
        {
            let _ = channel.close().await;
            return Ending::failed(format!("the server refused a terminal: {e}"));
        }
        if let Err(e) = channel.exec(true, script.as_bytes()).await {
            let _ = channel.close().await;
            return Ending::failed(format!(
                "cannot start the command on {}: {e}",
                job.session.label
            ));
        }
        match (&job.stdin, i) {
            (Some(text), 0) => {
                let _ = channel.data(text.expose().as_bytes()).await;
                let _ = channel.eof().await;
            }
            _ => {
                let _ = channel.eof().await;
            }
        }
        let mut marker = MarkerFilter::new(if job.options.pty {
            STREAM_STDOUT
        } else {
            STREAM_STDERR
        });
        let mut exit_code = None;
        let mut signal = None;
        let mut stop = None;
        let mut killed: Option<(i64, Killed)> = None;
        // Once a stop was asked, the channel gets a few seconds to close; a server that stopped
        // answering must not keep the command `running` (and its cancel waiting) for ever.
        let mut drain_until: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = until(drain_until), if drain_until.is_some() => break,
                msg = channel.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        let out = marker.feed(STREAM_STDOUT, &data);
                        if !out.is_empty() { writer.data(&job.id, STREAM_STDOUT, out); }
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        let out = marker.feed(STREAM_STDERR, &data);
                        if !out.is_empty() { writer.data(&job.id, STREAM_STDERR, out); }
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => exit_code = Some(exit_status),
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => signal = Some(format!("{signal_name:?}")),
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
                s = stopped(&mut job.stop, job.deadline), if stop.is_none() => {
                    stop = Some(s);
                    // The process group is known from the first line the command printed; that
                    // line may still be waiting in the channel, so read up to it first.
                    let wait_marker = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
                    while marker.pgid.is_none() {
                        match tokio::time::timeout_at(wait_marker, channel.wait()).await {
                            Ok(Some(ChannelMsg::Data { data })) => {
                                let out = marker.feed(STREAM_STDOUT, &data);
                                if !out.is_empty() { writer.data(&job.id, STREAM_STDOUT, out); }
                            }
                            Ok(Some(ChannelMsg::ExtendedData { data, ext: 1 })) => {
                                let out = marker.feed(STREAM_STDERR, &data);
                                if !out.is_empty() { writer.data(&job.id, STREAM_STDERR, out); }
                            }
                            Ok(Some(ChannelMsg::ExitStatus { .. } | ChannelMsg::ExitSignal { .. } | ChannelMsg::Eof)) => {}
                            Ok(Some(ChannelMsg::Close) | None) | Err(_) => break,
                            Ok(Some(_)) => {}
                        }
                    }
                    match marker.pgid {
                        Some(pgid) => {
                            if let Ok(db) = job.broker.db() { let _ = db.command_remote(&job.id, Some(pgid), None); }
                            killed = Some((pgid, kill_remote_group(&job.session, pgid).await));
                        }
                        None => tracing::warn!(command = %job.id, "no process group reported; closing the channel only"),
                    }
                    let _ = channel.close().await;
                    drain_until = Some(Instant::now() + std::time::Duration::from_secs(5));
                }
            }
        }
        let rest = marker.rest();
        if !rest.is_empty() {
            let stream = if job.options.pty {
                STREAM_STDOUT
            } else {
                STREAM_STDERR
            };
            writer.data(&job.id, stream, rest);
        }
        // Dropping a channel does not close it; an unclosed channel holds one of the server's
        // MaxSessions slots until the connection ends.
        let _ = channel.close().await;
        if let Some(s) = stop {
            return kill::stopped(s, killed);
        }
        // With a list of commands, which one failed (the later ones did not run).
        let step = |how: String| {
            (job.commands.len() > 1).then(|| {
                format!(
                    "step {} of {} ({command}) {how}; the steps after it did not run",
                    i + 1,
                    job.commands.len()
                )
            })
        };
        match (exit_code, signal) {
            (Some(0), _) => continue,
            (Some(code), _) => {
                return Ending {
                    state: CommandState::Failed,
                    exit_code: Some(i64::from(code)),
                    error: step(format!("exited {code}")),
                    ..Default::default()
                };
            }
            (None, Some(sig)) => {
                return Ending {
                    state: CommandState::Failed,
                    error: step(format!("was killed by signal {sig}")),
                    signal: Some(sig),
                    ..Default::default()
                };
            }
            (None, None) => {
                job.session.mark_lost();
                let why = job
                    .session
                    .info()
                    .reason
                    .unwrap_or_else(|| "the connection dropped".into());
                return Ending::failed(format!(
                    "the connection to {} was lost while the command ran ({why}); its exit status is unknown. \
                     The session reconnects by itself; use detach for work that must survive this",
                    job.session.label
                ));
            }
        }
    }
    Ending {
        state: CommandState::Completed,
        exit_code: Some(0),
        ..Default::default()
    }
}

/// The failure of a job that never started.
pub fn not_started(f: Fail) -> Ending {
    Ending::failed(f.message)
}
