//! The task that owns a shell's channel: feeds output to the shell's views and the log store,
//! applies input, and after a dropped connection re-attaches a tmux-backed shell.

use std::sync::Arc;

use russh::ChannelMsg;
use tokio::sync::{mpsc, oneshot};

use super::output::Out;
use super::{Input, Shell, probe, tmux_name};
use crate::broker::core::Core;
use crate::broker::core::fail::Fail;
use crate::db::now_ms;
use crate::logs::STREAM_STDOUT;
use crate::protocol::{CommandState, ErrorCode, ShellState};

enum Ended {
    /// The shell exited (or the tmux session ended).
    Exited(Option<u32>),
    /// Closed on request.
    Closed,
    /// The connection dropped.
    Lost,
    /// Someone detached tmux's client (`C-b d`): the tmux session goes on.
    Detached,
}

pub async fn run(
    broker: Arc<Core>,
    shell: Arc<Shell>,
    mut rx: mpsc::UnboundedReceiver<Input>,
    ready: oneshot::Sender<Result<(), Fail>>,
) {
    let mut ready = Some(ready);
    let writer = broker.log_writer().clone();
    let mut error = None;
    let exit = loop {
        let mut occupancy = shell.session.occupy();
        let opened = shell.session.open_channel().await;
        let (mut ch, _permit) = match opened {
            Ok(c) => c,
            Err(f) => {
                error = Some(f.message.clone());
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(f));
                }
                break None;
            }
        };
        occupancy.running();
        let (cols, rows) = shell.facts(|f| (f.cols, f.rows));
        let started = async {
            ch.request_pty(true, &shell.term, cols as u32, rows as u32, 0, 0, &[])
                .await?;
            if shell.persistent {
                let name = tmux_name(&shell.id);
                // -A: attach when the session exists (after a reconnect), create it otherwise.
                let cmd = format!(
                    "exec tmux new-session -A -s {name} \\; set-option -t {name} status off"
                );
                ch.exec(true, cmd.as_bytes()).await
            } else {
                ch.request_shell(true).await
            }
        }
        .await;
        if let Err(e) = started {
            let _ = ch.close().await;
            let f = Fail::new(
                ErrorCode::Ssh,
                format!("{} refused a terminal or shell: {e}", shell.session.label),
            );
            error = Some(f.message.clone());
            if let Some(r) = ready.take() {
                let _ = r.send(Err(f));
            }
            break None;
        }
        shell.facts(|f| f.state = ShellState::Open);
        shell.bump();
        if let Some(r) = ready.take() {
            if let Ok(db) = broker.db() {
                let _ = db.command_started(&shell.id, &shell.session.id, now_ms());
            }
            let _ = r.send(Ok(()));
        }
        let mut exit_code = None;
        let ended = loop {
            tokio::select! {
                msg = ch.wait() => match msg {
                    Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                        let text = shell.out(|o| o.feed(&data));
                        if !text.is_empty() {
                            writer.data(&shell.log_id, STREAM_STDOUT, text);
                        }
                        shell.session.touch();
                        shell.bump();
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => exit_code = Some(exit_status),
                    Some(ChannelMsg::Close) | None => {
                        break if exit_code.is_some() || !shell.persistent || shell.session.is_live() {
                            Ended::Exited(exit_code)
                        } else {
                            Ended::Lost
                        };
                    }
                    Some(_) => {}
                },
                input = rx.recv() => match input {
                    Some(Input::Data(bytes)) => {
                        let _ = ch.data(&bytes[..]).await;
                        shell.session.touch();
                    }
                    Some(Input::Resize(c, r)) => {
                        let _ = ch.window_change(c as u32, r as u32, 0, 0).await;
                    }
                    Some(Input::Signal(s)) => {
                        let _ = ch.signal(s).await;
                    }
                    Some(Input::Close) | None => {
                        if shell.persistent {
                            let _ = probe(&shell.session, &format!("tmux kill-session -t {}", tmux_name(&shell.id))).await;
                        }
                        break Ended::Closed;
                    }
                },
            }
        };
        let _ = ch.close().await;
        // tmux's own detach key ends its client with status 0 while the session lives on: the
        // shell is still there, so it must stay attachable rather than count as exited.
        let ended = match ended {
            Ended::Exited(Some(0)) if shell.persistent && tmux_lives(&shell).await => {
                Ended::Detached
            }
            other => other,
        };
        match ended {
            Ended::Detached => {
                let _ = shell.out(|o| o.raw.send(Out::Detached));
                shell.bump();
                writer.marker(
                    &shell.log_id,
                    "[sshkeep] tmux was detached; the shell goes on (re-attach with `sshkeep shell --attach`)",
                );
                // The broker's own view re-attaches (so reads and agents go on); a pause keeps a
                // session that refuses clients from spinning.
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Ended::Exited(code) => {
                shell.facts(|f| {
                    f.state = ShellState::Exited;
                    f.exit_code = code;
                });
                break Some(code);
            }
            Ended::Closed => {
                shell.facts(|f| f.state = ShellState::Closed);
                break Some(None);
            }
            Ended::Lost => {
                shell.session.mark_lost();
                shell.facts(|f| {
                    f.state = ShellState::Reconnecting;
                    f.reconnects += 1;
                });
                shell.bump();
                writer.marker(
                    &shell.log_id,
                    "[sshkeep] the connection dropped; re-attaching the tmux session",
                );
                tracing::info!(shell = %shell.id, "connection lost; re-attaching the shell's tmux session");
            }
        }
    };
    if shell.persistent && broker.is_stopping() {
        // The broker is stopping: the tmux session goes on and the next broker re-adopts it.
        return;
    }
    if exit.is_none() {
        shell.facts(|f| f.state = ShellState::Exited);
    }
    let code = exit.flatten();
    let _ = shell.out(|o| o.raw.send(Out::End(code)));
    shell.bump();
    writer.finish(&shell.log_id).await;
    let (state, closed) = shell.facts(|f| (f.state, f.state == ShellState::Closed));
    if let Ok(db) = broker.db() {
        let st = match (code, error.is_some(), closed) {
            (_, _, true) => CommandState::Cancelled,
            (_, true, _) => CommandState::Failed,
            (Some(0) | None, false, _) => CommandState::Completed,
            (Some(_), false, _) => CommandState::Failed,
        };
        let _ = db.command_ended(
            &shell.id,
            st,
            code.map(i64::from),
            None,
            error.as_deref(),
            now_ms(),
        );
    }
    tracing::debug!(shell = %shell.id, state = %state, "shell ended");
}

/// Whether the shell's tmux session still exists on the server.
async fn tmux_lives(shell: &Shell) -> bool {
    let check = format!("tmux has-session -t {}", tmux_name(&shell.id));
    matches!(probe(&shell.session, &check).await, Some((0, _)))
}
