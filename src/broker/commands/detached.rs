//! Detached commands: the job runs on the server in its own session with its output spooled to
//! files there. The broker follows the spool from the byte offsets it has committed, so after a
//! dropped connection or a broker restart it re-attaches and goes on with no line lost and none
//! twice.

use std::sync::Arc;
use std::time::Duration;

use russh::ChannelMsg;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Killed, kill, kill_remote_group, wrap};
use crate::broker::core::backoff::Backoff;
use crate::broker::core::jobs::{Ending, Stop, stopped, until};
use crate::broker::core::login::resolve;
use crate::broker::core::remote_script::{self, Lane, Script};
use crate::broker::core::sessions::{Reuse, Session, session_for};
use crate::broker::core::{Core, Peer};
use crate::db::now_ms;
use crate::logs::{STREAM_STDERR, STREAM_STDOUT};
use crate::protocol::SecretString;
use crate::protocol::{CommandState, ErrorCode, RunOptions, SessionState};

pub struct Job {
    pub broker: Arc<Core>,
    pub id: Arc<str>,
    pub target: String,
    pub key: Option<String>,
    pub session: Option<Arc<Session>>,
    pub commands: Vec<String>,
    pub options: RunOptions,
    pub stdin: Option<SecretString>,
    pub stop: watch::Receiver<Option<Stop>>,
    pub deadline: Option<Instant>,
    /// Set when re-attaching to a job that already runs.
    pub pgid: Option<i64>,
}

/// Runs one step of launching or cleaning up the job with `input` on its stdin; returns (exit
/// status, stdout) when it exits 0. The job already counts itself on the session.
async fn script(
    session: &Arc<Session>,
    script: &str,
    input: Option<&[u8]>,
) -> Result<(u32, Vec<u8>), String> {
    let ran = remote_script::run(
        session,
        Script {
            text: script,
            stdin: input,
            cap: 1024 * 1024,
            quiet: None,
            lane: Lane::Gated,
        },
    )
    .await?;
    match ran.status {
        Some(0) => Ok((0, ran.stdout)),
        Some(c) => Err(format!(
            "exit status {c}: {}",
            String::from_utf8_lossy(&ran.stderr).trim()
        )),
        None => Err("the connection dropped".into()),
    }
}

/// A usable session for the job, opening one (with growing pauses) when there is none.
async fn reach(job: &mut Job) -> Result<Arc<Session>, Stop> {
    // 2 s doubling to a minute; every 10 minutes once only the user can mend the failure.
    let mut pause = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
    let mut slow = false;
    let mut told = false;
    loop {
        if let Some(s) = &job.session
            && matches!(s.state(), SessionState::Open | SessionState::Reconnecting)
        {
            return Ok(s.clone());
        }
        let attempt = match resolve(&job.broker, &job.target, job.key.as_deref()) {
            // The follower below counts itself on the session.
            Ok(r) => session_for(
                &job.broker,
                &Peer::default(),
                &r,
                "re-attach to a detached command",
                Reuse::Shared,
            )
            .await
            .map(|(s, _)| s),
            Err(f) => Err(f),
        };
        match attempt {
            Ok(s) => {
                job.session = Some(s.clone());
                return Ok(s);
            }
            Err(f) => {
                tracing::warn!(command = %job.id, "cannot reach {} to follow the detached command: {}", job.target, f.message);
                if f.code == ErrorCode::NotFound {
                    // The connection was removed: nothing will ever reach the job again.
                    return Err(Stop::Cancel);
                }
                if matches!(
                    f.code,
                    ErrorCode::HostKeyChanged | ErrorCode::HostKeyUnknown | ErrorCode::AuthFailed
                ) {
                    // Only the user can mend these (and each refusal is audited): try rarely,
                    // and say so once in the command's log.
                    if !told {
                        job.broker.log_writer().marker(
                            &job.id,
                            format!(
                                "[sshkeep] cannot reach {} to follow this command: {}; retrying every 10 minutes (the command keeps running on the server)",
                                job.target, f.message
                            ),
                        );
                        told = true;
                    }
                    slow = true;
                }
            }
        }
        let delay = if slow {
            Duration::from_secs(600)
        } else {
            pause.next_delay()
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            s = stopped(&mut job.stop, job.deadline) => return Err(s),
        }
    }
}

fn spool(job: &Job) -> String {
    wrap::spool(&job.id)
}

async fn launch(job: &mut Job, session: &Arc<Session>) -> Result<i64, String> {
    let d = spool(job);
    let body = wrap::detached_job(&job.commands, &job.options)?;
    script(session, &wrap::detached_prepare(&d), Some(body.as_bytes())).await?;
    if let Some(text) = &job.stdin {
        script(
            session,
            &wrap::detached_stdin(&d),
            Some(text.expose().as_bytes()),
        )
        .await?;
    }
    let (_, out) = script(session, &wrap::detached_launch(&d), None).await?;
    let pgid: i64 = String::from_utf8_lossy(&out).trim().parse().map_err(|_| {
        format!(
            "the server did not report the job's process group ({:?})",
            String::from_utf8_lossy(&out)
        )
    })?;
    if let Ok(db) = job.broker.db() {
        let _ = db.command_remote(&job.id, Some(pgid), Some(&d));
        let _ = db.command_started(&job.id, &session.id, now_ms());
    }
    Ok(pgid)
}

/// Starts the job (unless it already runs) and follows it to its end.
pub async fn run(mut job: Job) -> Ending {
    let writer = job.broker.log_writer().clone();
    let mut attached_before = job.pgid.is_some();
    loop {
        let session = match reach(&mut job).await {
            Ok(s) => s,
            Err(stop) => {
                let mut e = kill::stopped(stop, job.pgid.map(|p| (p, Killed::Unreachable)));
                e.error = Some(format!(
                    "stopped while {} could not be reached: the job may still run there (spool ~/{})",
                    job.target,
                    spool(&job)
                ));
                return e;
            }
        };
        let mut occupancy = session.occupy();
        let pgid = match job.pgid {
            Some(p) => p,
            None => match launch(&mut job, &session).await {
                Ok(p) => {
                    job.pgid = Some(p);
                    p
                }
                Err(e) => {
                    return Ending::failed(format!(
                        "cannot start the detached command on {}: {e}",
                        session.label
                    ));
                }
            },
        };
        occupancy.running();
        // Forget partial lines held in memory: they come again from the committed offsets.
        writer.reset(&job.id).await;
        let (out_off, err_off) = job
            .broker
            .db()
            .ok()
            .and_then(|db| db.command(&job.id).ok().flatten())
            .map(|c| (c.stdout_bytes, c.stderr_bytes))
            .unwrap_or((0, 0));
        if attached_before {
            writer
                .marker(&job.id, format!("[sshkeep] re-attached; output goes on from byte {out_off} (stdout) and {err_off} (stderr)"));
        }
        attached_before = true;
        let opened = tokio::select! {
            r = session.open_channel() => r,
            s = stopped(&mut job.stop, job.deadline) => {
                let k = kill_remote_group(&session, pgid).await;
                return kill::stopped(s, Some((pgid, k)));
            }
        };
        let (mut ch, _permit) = match opened {
            Ok(c) => c,
            Err(_) => continue,
        };
        if ch
            .exec(
                true,
                wrap::follower(&spool(&job), out_off, err_off).as_bytes(),
            )
            .await
            .is_err()
        {
            let _ = ch.close().await;
            continue;
        }
        let _ = ch.eof().await;
        let mut code = None;
        let mut stop = None;
        let mut killed = Killed::Unreachable;
        let mut drain_until: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = until(drain_until), if drain_until.is_some() => break,
                msg = ch.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => writer.data(&job.id, STREAM_STDOUT, data.to_vec()),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => writer.data(&job.id, STREAM_STDERR, data.to_vec()),
                    Some(ChannelMsg::ExitStatus { exit_status }) => code = Some(exit_status),
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
                s = stopped(&mut job.stop, job.deadline), if stop.is_none() => {
                    stop = Some(s);
                    killed = kill_remote_group(&session, pgid).await;
                    // The follower ends once the group is gone; it gets a few seconds for that.
                    drain_until = Some(Instant::now() + std::time::Duration::from_secs(5));
                }
            }
        }
        let _ = ch.close().await;
        if let Some(s) = stop {
            return kill::stopped(s, Some((pgid, killed)));
        }
        match code {
            Some(wrap::VANISHED) => {
                return Ending::failed(format!(
                    "the detached job on {} vanished without recording an exit status (killed, or the server rebooted)",
                    session.label
                ));
            }
            Some(c) => {
                let _ = script(&session, &wrap::detached_cleanup(&spool(&job)), None).await;
                return if c == 0 {
                    Ending {
                        state: CommandState::Completed,
                        exit_code: Some(0),
                        ..Default::default()
                    }
                } else {
                    Ending {
                        state: CommandState::Failed,
                        exit_code: Some(i64::from(c)),
                        ..Default::default()
                    }
                };
            }
            None => {
                // The connection dropped: the job runs on; follow it again once we can.
                session.mark_lost();
                writer.marker(&job.id, "[sshkeep] connection lost; the detached command runs on and is re-attached when the server is back");
            }
        }
    }
}
