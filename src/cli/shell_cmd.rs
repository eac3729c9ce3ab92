//! `sshkeep shell CONN`: a real interactive terminal through the broker (raw mode, resize,
//! the remote exit status), or attach to / list / close the broker's shells.

use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clap::Args;

use super::{Ctx, output};
use crate::client::{AttachFrame, expect};
use crate::frame::{read_frame, write_frame};
use crate::protocol::{Request, Response, ShellInfo, ShellSpec};
use crate::system::{RawMode, terminal_size};

#[derive(Args, Debug)]
pub struct ShellArgs {
    /// A saved connection, user@host[:port] or a Host of ~/.ssh/config to open a shell on.
    target: Option<String>,
    /// Log in with this key instead of the linked one.
    #[arg(long)]
    key: Option<String>,
    /// Terminal type (default: $TERM, else xterm-256color).
    #[arg(long)]
    term: Option<String>,
    /// Run the shell in tmux on the server: it survives dropped connections and this terminal
    /// closing (attach again with --attach).
    #[arg(long)]
    persist: bool,
    /// Attach to a shell the broker holds (opened by you or an agent).
    #[arg(long, value_name = "SHELL_ID", conflicts_with_all = ["target", "list", "close"])]
    attach: Option<String>,
    /// List the broker's shells.
    #[arg(long, conflicts_with_all = ["target", "close"])]
    list: bool,
    /// End a shell.
    #[arg(long, value_name = "SHELL_ID", conflicts_with = "target")]
    close: Option<String>,
    /// Print a shell's recording (asciicast v2: `sshkeep shell --export ID > s.cast`, then
    /// `asciinema play s.cast`). Typed input is in `i` events, each change of typist (agent or
    /// person) an `m` marker.
    #[arg(long, value_name = "SHELL_ID", conflicts_with_all = ["target", "list", "close", "attach"])]
    export: Option<String>,
}

pub async fn run(ctx: &Ctx, a: ShellArgs) -> Result<u8> {
    if let Some(id) = a.export {
        let path = ctx
            .paths
            .recording(&id)
            .with_context(|| format!("{id:?} is not a shell id (see `sshkeep shell --list`)"))?;
        let mut f = std::fs::File::open(&path).with_context(|| {
            format!(
                "no recording of shell {id} at {} (see `sshkeep shell --list`)",
                path.display()
            )
        })?;
        std::io::copy(&mut f, &mut std::io::stdout().lock())
            .context("cannot write the recording")?;
        return Ok(0);
    }
    let mut c = ctx.client().await?;
    if a.list {
        let shells: Vec<ShellInfo> = c.call(&Request::ShellList).await?;
        if ctx.json {
            output::json(&shells)?;
        } else {
            let rows = shells
                .iter()
                .map(|s| {
                    vec![
                        s.shell_id.clone(),
                        s.target.clone(),
                        s.state.to_string(),
                        format!("{}x{}", s.cols, s.rows),
                        if s.persistent { "tmux" } else { "-" }.into(),
                        s.clients_attached.to_string(),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(
                &["SHELL", "TARGET", "STATE", "SIZE", "PERSIST", "ATTACHED"],
                &rows,
            );
        }
        return Ok(0);
    }
    if let Some(id) = a.close {
        let s: ShellInfo = c.call(&Request::ShellClose { shell_id: id }).await?;
        println!("shell {} is {}", s.shell_id, s.state);
        return Ok(0);
    }
    let (cols, rows) = terminal_size(0).unwrap_or((80, 24));
    let (shell_id, close_on_detach) = match (a.attach, a.target) {
        (Some(id), _) => (id, false),
        (None, Some(target)) => {
            let term = a
                .term
                .or_else(|| {
                    std::env::var("TERM")
                        .ok()
                        .filter(|t| !t.is_empty() && t != "dumb")
                })
                .unwrap_or_else(|| "xterm-256color".into());
            let s: ShellInfo = c
                .call(&Request::ShellOpen(ShellSpec {
                    target,
                    key: a.key,
                    cols,
                    rows,
                    term,
                    persist: Some(a.persist),
                }))
                .await?;
            if a.persist {
                eprintln!(
                    "[sshkeep] shell {} (in tmux; re-attach with `sshkeep shell --attach {}`)\r",
                    s.shell_id, s.shell_id
                );
            }
            (s.shell_id, !a.persist)
        }
        (None, None) => bail!("give a connection to open a shell on, or --attach ID, or --list"),
    };
    // From its first reply on, this connection is the shell's terminal.
    let _: ShellInfo = c
        .call(&Request::ShellAttach {
            shell_id: shell_id.clone(),
            close_on_detach,
        })
        .await?;
    if let Some(size) = terminal_size(0)
        && size != (cols, rows)
    {
        c.send(&Request::AttachResize {
            cols: size.0,
            rows: size.1,
        })
        .await?;
    }
    let raw = if std::io::stdin().is_terminal() {
        Some(RawMode::enable(0).context("cannot put the terminal into raw mode")?)
    } else {
        None
    };
    let code = terminal(c.stream()).await;
    drop(raw);
    code
}

/// Copies keystrokes and window sizes to the broker and output to the screen until the shell
/// ends.
async fn terminal(stream: &interprocess::local_socket::tokio::Stream) -> Result<u8> {
    // Blocking stdin reads live on a thread of their own: a runtime never waits for it.
    let (keys_tx, keys) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if keys_tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        .context("cannot watch for terminal resizes")?;
    let mut rx = stream;
    let input = pump(stream, keys, winch);
    let output = async {
        let mut out = std::io::stdout();
        loop {
            let frame = match read_frame::<Response, _>(&mut rx).await {
                Ok(r) => expect::<AttachFrame>(r)?,
                Err(e) => bail!("lost the broker connection: {e}"),
            };
            match frame {
                AttachFrame::Output { data } => {
                    let bytes = B64.decode(data).unwrap_or_default();
                    let _ = out.write_all(&bytes).and_then(|_| out.flush());
                }
                AttachFrame::Exit { status } => return Ok(status.clamp(0, 255) as u8),
                AttachFrame::Detached { shell_id } => {
                    eprintln!(
                        "\r\n[sshkeep] detached; shell {shell_id} goes on (re-attach with `sshkeep shell --attach {shell_id}`)\r"
                    );
                    return Ok(0);
                }
            }
        }
    };
    tokio::select! {
        r = output => r,
        r = input => {
            r.context("lost the broker connection")?;
            Ok(1)
        }
    }
}

/// Sends keystrokes and resizes until the broker connection fails.
async fn pump(
    mut tx: &interprocess::local_socket::tokio::Stream,
    mut keys: tokio::sync::mpsc::Receiver<Vec<u8>>,
    mut winch: tokio::signal::unix::Signal,
) -> Result<(), crate::frame::FrameError> {
    let mut stdin_open = true;
    loop {
        tokio::select! {
            k = keys.recv(), if stdin_open => match k {
                Some(bytes) => {
                    write_frame(&mut tx, &Request::AttachInput { data: B64.encode(bytes) }).await?;
                }
                None => stdin_open = false,
            },
            _ = winch.recv() => {
                if let Some((cols, rows)) = terminal_size(0) {
                    write_frame(&mut tx, &Request::AttachResize { cols, rows }).await?;
                }
            }
        }
    }
}
