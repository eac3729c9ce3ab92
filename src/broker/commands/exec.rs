//! One-shot `exec`: run a command on the target's reusable session and stream its output to the
//! client as it arrives (nothing is stored: `run` is the stored, asynchronous form).
//!
//! The client may forward its standard input, and stop the command (ctrl-c). Like `run`, the
//! command reports its process group first, so a stop, or a client that hangs up, kills
//! everything it started on the server rather than leaving it running unobserved.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use interprocess::local_socket::tokio::Stream;
use russh::{ChannelMsg, Sig};
use tokio::sync::mpsc;

use crate::broker::commands::marker::MarkerFilter;
use crate::broker::commands::{Killed, kill_remote_group, wrap};
use crate::broker::core::fail::Fail;
use crate::broker::core::jobs::until;
use crate::broker::core::login::resolve;
use crate::broker::core::sessions::{Reuse, session_for};
use crate::broker::core::{Core, Peer};
use crate::frame::{read_frame, write_frame};
use crate::logs::{STREAM_STDERR, STREAM_STDOUT};
use crate::protocol::{ErrorCode, OutputStream, Request, Response, RunOptions};

/// The conventional number of a signal, for the shell-style `128 + N` status.
fn signal_number(sig: &Sig) -> i32 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => 127,
    }
}

fn signal_name(sig: &Sig) -> String {
    match sig {
        Sig::Custom(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// One `exec` request.
pub struct ExecSpec<'a> {
    pub target: &'a str,
    pub key: Option<&'a str>,
    pub command: &'a str,
    /// The client forwards standard input ([`Request::ExecInput`]).
    pub stdin: bool,
    /// A terminal of (columns, rows).
    pub pty: Option<(u16, u16)>,
}

/// How the command's channel loop ended.
struct Finish {
    exit_code: Option<u32>,
    signal: Option<Sig>,
    /// Set when the client asked for a stop or hung up: what became of the process group.
    stopped: Option<Option<(i64, Killed)>>,
    client_open: bool,
}

/// Why the client wants the command stopped.
enum FromClient {
    /// It asked (ctrl-c).
    Stop,
    /// It hung up.
    Gone,
}

/// Runs the command on the target and streams `Output` frames, then one `Exit`. A session whose
/// connection dropped while idle is reconnected first; a server at its channel limit makes the
/// command wait in the session's queue.
pub async fn run(
    broker: &Arc<Core>,
    peer: &Peer,
    spec: ExecSpec<'_>,
    stream: &Stream,
) -> Result<(), Fail> {
    if spec.command.trim().is_empty() {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            "the command is empty",
        ));
    }
    crate::broker::commands::wrap::check_text("the command", spec.command)
        .map_err(|m| Fail::new(ErrorCode::InvalidArgument, m))?;
    let r = resolve(broker, spec.target, spec.key)?;
    let (session, mut occupancy) = session_for(broker, peer, &r, "exec", Reuse::Shared).await?;
    let (channel, _permit) = session.open_channel().await?;
    occupancy.running();
    if let Some((cols, rows)) = spec.pty
        && let Err(e) = channel
            .request_pty(
                false,
                "xterm-256color",
                u32::from(cols),
                u32::from(rows),
                0,
                0,
                &[],
            )
            .await
    {
        let _ = channel.close().await;
        return Err(Fail::new(
            ErrorCode::Ssh,
            format!("{} refused a terminal: {e}", session.label),
        ));
    }
    let script = wrap::attached(spec.command, &RunOptions::default())
        .map_err(|e| Fail::new(ErrorCode::InvalidArgument, e))?;
    if let Err(e) = channel.exec(true, script.as_bytes()).await {
        let _ = channel.close().await;
        return Err(Fail::new(
            ErrorCode::Ssh,
            format!("cannot start the command on {}: {e}", session.label),
        ));
    }
    if !spec.stdin {
        let _ = channel.eof().await;
    }
    let (mut reader, writer) = channel.split();
    // With a terminal, stderr is merged into stdout, the process-group line included.
    let mut marker = MarkerFilter::new(if spec.pty.is_some() {
        STREAM_STDOUT
    } else {
        STREAM_STDERR
    });

    let (from_client, mut events) = mpsc::channel::<FromClient>(2);
    // Reads the client's frames for as long as the command runs, and writes its input to the
    // channel itself: a command that stops reading its stdin holds back only this future (and
    // through the socket, the client), never the output below, so `cat` of a large input
    // cannot deadlock. Never ends on its own.
    let input = async {
        let mut rx = stream;
        let mut stdin_open = spec.stdin;
        loop {
            let ev = match read_frame::<Request, _>(&mut rx).await {
                Ok(Request::ExecInput { data, eof }) => {
                    if stdin_open {
                        if let Ok(bytes) = B64.decode(data)
                            && !bytes.is_empty()
                        {
                            let _ = writer.data(&bytes[..]).await;
                        }
                        if eof {
                            stdin_open = false;
                            let _ = writer.eof().await;
                        }
                    }
                    continue;
                }
                Ok(Request::ExecStop) => FromClient::Stop,
                Ok(_) => continue,
                Err(_) => FromClient::Gone,
            };
            let gone = matches!(ev, FromClient::Gone);
            if from_client.send(ev).await.is_err() || gone {
                break;
            }
        }
        std::future::pending::<Finish>().await
    };

    let output = async {
        let mut tx = stream;
        let mut exit_code = None;
        let mut signal = None;
        let mut stopped: Option<Option<(i64, Killed)>> = None;
        let mut client_open = true;
        let mut drain_until: Option<tokio::time::Instant> = None;
        loop {
            let stop_now = tokio::select! {
                _ = until(drain_until), if drain_until.is_some() => break,
                ev = events.recv(), if client_open && stopped.is_none() => match ev {
                    Some(FromClient::Stop) => Some(()),
                    Some(FromClient::Gone) | None => {
                        client_open = false;
                        Some(())
                    }
                },
                msg = reader.wait() => {
                    let (stream_no, data) = match msg {
                        Some(ChannelMsg::Data { data }) => (STREAM_STDOUT, data),
                        Some(ChannelMsg::ExtendedData { data, ext: 1 }) => (STREAM_STDERR, data),
                        Some(ChannelMsg::ExitStatus { exit_status }) => {
                            exit_code = Some(exit_status);
                            continue;
                        }
                        Some(ChannelMsg::ExitSignal { signal_name: s, .. }) => {
                            signal = Some(s);
                            continue;
                        }
                        Some(ChannelMsg::Close) | None => break,
                        Some(_) => continue,
                    };
                    let out = marker.feed(stream_no, &data);
                    if out.is_empty() || !client_open {
                        continue;
                    }
                    let stream = if stream_no == STREAM_STDOUT {
                        OutputStream::Stdout
                    } else {
                        OutputStream::Stderr
                    };
                    if send(&mut tx, &Response::Output { stream, data: B64.encode(&out) }).await {
                        continue;
                    }
                    // The client hung up: stop the command rather than let it run unobserved.
                    client_open = false;
                    Some(())
                }
            };
            if stop_now.is_some() && stopped.is_none() {
                let killed = match marker.pgid {
                    Some(pgid) => Some((pgid, kill_remote_group(&session, pgid).await)),
                    None => {
                        let _ = writer.signal(Sig::TERM).await;
                        None
                    }
                };
                stopped = Some(killed);
                let _ = writer.close().await;
                drain_until = Some(tokio::time::Instant::now() + std::time::Duration::from_secs(5));
            }
        }
        let rest = marker.rest();
        if !rest.is_empty() && client_open {
            let stream = if spec.pty.is_some() {
                OutputStream::Stdout
            } else {
                OutputStream::Stderr
            };
            send(
                &mut tx,
                &Response::Output {
                    stream,
                    data: B64.encode(&rest),
                },
            )
            .await;
        }
        // Dropping a channel does not close it; an unclosed channel holds one of the server's
        // MaxSessions slots until the connection ends.
        let _ = writer.close().await;
        Finish {
            exit_code,
            signal,
            stopped,
            client_open,
        }
    };

    let Finish {
        exit_code,
        signal,
        stopped,
        client_open,
    } = tokio::select! {
        r = output => r,
        r = input => r,
    };
    session.touch();
    if !client_open {
        return Ok(());
    }
    let mut tx = stream;
    if let Some(killed) = stopped {
        let note = match killed {
            Some((p, Killed::Gone)) => format!(
                "interrupted; process group {p} on {} was killed",
                session.label
            ),
            Some((p, Killed::Survived)) => format!(
                "interrupted; process group {p} on {} survived TERM and KILL (look with `ps -g {p}` there)",
                session.label
            ),
            Some((p, Killed::Unreachable)) => format!(
                "interrupted; {} could not be reached to kill process group {p}: it may still run there",
                session.label
            ),
            None => format!(
                "interrupted before the command reported its process group; sent TERM to it on {}",
                session.label
            ),
        };
        send(
            &mut tx,
            &Response::Exit {
                status: 130,
                exit_code: None,
                signal: Some("INT".into()),
                note: Some(note),
            },
        )
        .await;
        return Ok(());
    }
    let status = match (exit_code, &signal) {
        (Some(c), _) => c as i32,
        (None, Some(s)) => 128 + signal_number(s),
        (None, None) => {
            session.mark_lost();
            return Err(Fail::new(
                ErrorCode::Unreachable,
                format!(
                    "the connection to {} ({}:{}) was lost while the command ran; its exit status is unknown",
                    session.label, r.endpoint.host, r.endpoint.port
                ),
            ));
        }
    };
    send(
        &mut tx,
        &Response::Exit {
            status,
            exit_code,
            signal: signal.as_ref().map(signal_name),
            note: r.via.as_ref().map(|alias| {
                format!(
                    "{alias} is not a saved connection: it was reached through ~/.ssh/config; `sshkeep conn import {alias}` saves it"
                )
            }),
        },
    )
    .await;
    Ok(())
}

/// Writes one frame; a failure means the client hung up.
async fn send<W: tokio::io::AsyncWrite + Unpin>(tx: &mut W, r: &Response) -> bool {
    write_frame(tx, r).await.is_ok()
}
