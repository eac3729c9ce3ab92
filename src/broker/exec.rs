//! One-shot `exec`: run a command on the target's reusable session and stream its output to the
//! client as it arrives (nothing is stored: `run` is the stored, asynchronous form).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use russh::{ChannelMsg, Sig};
use tokio::io::AsyncWrite;

use super::client_conn::send;
use super::fail::Fail;
use super::login::resolve;
use super::sessions::Sessions;
use super::{Broker, Peer};
use crate::protocol::{ErrorCode, OutputStream, Response};

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

/// Runs `command` on `target` and streams `Output` frames, then one `Exit`. A session whose
/// connection dropped while idle is reconnected first; a server at its channel limit makes the
/// command wait in the session's queue.
pub async fn run<W: AsyncWrite + Unpin>(
    broker: &Arc<Broker>,
    peer: &Peer,
    target: &str,
    key: Option<&str>,
    command: &str,
    tx: &mut W,
) -> Result<(), Fail> {
    if command.trim().is_empty() {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            "the command is empty",
        ));
    }
    super::commands::wrap::check_text("the command", command)
        .map_err(|m| Fail::new(ErrorCode::InvalidArgument, m))?;
    let r = resolve(broker, target, key)?;
    let session = Sessions::for_target(broker, peer, &r, "exec").await?;
    let mut occupancy = session.occupy();
    let (mut channel, _permit) = session.open_channel().await?;
    occupancy.running();
    channel.exec(true, command.as_bytes()).await.map_err(|e| {
        Fail::new(
            ErrorCode::Ssh,
            format!("cannot start the command on {}: {e}", session.label),
        )
    })?;
    let _ = channel.eof().await;

    let mut exit_code = None;
    let mut signal = None;
    let mut client_gone = false;
    while let Some(msg) = channel.wait().await {
        let frame = match msg {
            ChannelMsg::Data { data } => Some((OutputStream::Stdout, data)),
            ChannelMsg::ExtendedData { data, ext: 1 } => Some((OutputStream::Stderr, data)),
            ChannelMsg::ExitStatus { exit_status } => {
                exit_code = Some(exit_status);
                None
            }
            ChannelMsg::ExitSignal { signal_name: s, .. } => {
                signal = Some(s);
                None
            }
            ChannelMsg::Close => break,
            _ => None,
        };
        if let Some((stream, data)) = frame
            && !send(
                tx,
                &Response::Output {
                    stream,
                    data: B64.encode(&data),
                },
            )
            .await
        {
            // The client hung up: stop the remote command rather than let it run unobserved.
            client_gone = true;
            let _ = channel.signal(Sig::TERM).await;
            break;
        }
    }
    // Dropping a channel does not close it; an unclosed channel holds one of the server's
    // MaxSessions slots until the connection ends.
    let _ = channel.close().await;
    session.touch();
    if client_gone {
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
        tx,
        &Response::Exit {
            status,
            exit_code,
            signal: signal.as_ref().map(signal_name),
        },
    )
    .await;
    Ok(())
}
