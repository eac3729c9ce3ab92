//! `sshkeep exec TARGET CMD...`: streams output, forwards standard input, exits with the remote
//! status. Ctrl-C stops the command's whole process group on the server and exits 130.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clap::Args;
use interprocess::local_socket::tokio::Stream;
use tokio::sync::mpsc;

use super::Ctx;
use crate::client::{ExecFrame, expect};
use crate::frame::{read_frame, write_frame};
use crate::protocol::{OutputStream, Request, Response};
use crate::system::{RawMode, terminal_size};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A saved connection, user@host[:port], or a Host of ~/.ssh/config.
    target: String,
    /// Log in with this key instead of the linked one.
    #[arg(long)]
    key: Option<String>,
    /// Give the command a terminal, as `ssh -t` does (full-screen programs, prompts). Keys are
    /// sent as typed: ctrl-c then goes to the remote program.
    #[arg(short = 't', long = "tty")]
    tty: bool,
    /// Do not forward standard input, as `ssh -n` does (by default it is forwarded when it is
    /// not a terminal: `echo hi | sshkeep exec web1 cat`).
    #[arg(short = 'n', long = "no-stdin")]
    no_stdin: bool,
    /// The command, run by the remote user's shell as with ssh; its words are joined with
    /// spaces: `sshkeep exec web1 uptime`, or after `--` when it starts with a dash.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

/// How long a stop may take to be confirmed before the CLI gives up waiting (the broker's own
/// kill is bounded well below this).
const STOP_WAIT: Duration = Duration::from_secs(40);

pub async fn run(ctx: &Ctx, a: ExecArgs) -> Result<u8> {
    // Watch for ctrl-c before anything starts on the server: from here on it stops the command.
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot watch for ctrl-c")?;
    let stdin_is_tty = std::io::stdin().is_terminal();
    let forward = !a.no_stdin && (a.tty || !stdin_is_tty);
    let pty = a.tty.then(|| {
        terminal_size(1)
            .or_else(|| terminal_size(0))
            .unwrap_or((80, 24))
    });
    // A person at this terminal answers the server's login questions (a one-time code) here;
    // not while the terminal's keys go to the command.
    let person = !forward && super::prompt::person_here();
    let mut c = ctx.client().await?;
    c.send(&Request::Exec {
        target: a.target,
        key: a.key,
        command: a.command.join(" "),
        stdin: forward,
        pty,
        person,
    })
    .await?;
    // A person typing into a terminal: keys go through as typed, ctrl-c included.
    let raw = if a.tty && stdin_is_tty {
        Some(RawMode::enable(0).context("cannot put the terminal into raw mode")?)
    } else {
        None
    };
    let code = stream_exec(c.stream(), forward, interrupt).await;
    drop(raw);
    code
}

/// Pumps stdin and ctrl-c to the broker and output to this terminal until the command ends.
///
/// Reading the broker's frames and writing ours are two futures polled side by side, and the
/// loop below never waits on the socket itself: a command that echoes its input (`cat`) fills
/// the socket both ways at once, and a client that stopped reading while it waited to write
/// would hold the broker, the server and itself in a circle.
async fn stream_exec(
    stream: &Stream,
    forward: bool,
    mut interrupt: tokio::signal::unix::Signal,
) -> Result<u8> {
    let (input_tx, mut input) = mpsc::channel::<Option<Vec<u8>>>(16);
    if forward {
        // Blocking stdin reads live on a thread of their own: the runtime never waits for it.
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = input_tx.blocking_send(None);
                        break;
                    }
                    Ok(n) => {
                        if input_tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    } else {
        drop(input_tx);
    }
    let mut tx = stream;
    let mut rx = stream;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut stop_deadline: Option<tokio::time::Instant> = None;
    // Frames of our own (a stop, a login answer) go through the writer, in order with input.
    let (control_tx, mut control) = mpsc::unbounded_channel::<Request>();
    let writer = async move {
        let mut stdin_open = forward;
        loop {
            let frame = tokio::select! {
                biased;
                req = control.recv() => match req {
                    Some(req) => {
                        // After a stop, input is no longer sent.
                        if matches!(req, Request::ExecStop) {
                            stdin_open = false;
                        }
                        req
                    }
                    None => return Ok(()),
                },
                chunk = input.recv(), if stdin_open => match chunk {
                    Some(Some(bytes)) => Request::ExecInput { data: B64.encode(bytes), eof: false },
                    Some(None) | None => {
                        stdin_open = false;
                        Request::ExecInput { data: String::new(), eof: true }
                    }
                },
            };
            write_frame(&mut tx, &frame).await?;
        }
    };
    tokio::pin!(writer);
    let mut writing = true;
    // Replies are read by one task-local future that lives across the loop, so a frame is
    // never cut in half by the select below.
    let (replies_tx, mut replies) = mpsc::channel::<Result<Response, crate::frame::FrameError>>(64);
    let reader = async move {
        loop {
            let r = read_frame::<Response, _>(&mut rx).await;
            let end = r.is_err();
            if replies_tx.send(r).await.is_err() || end {
                return;
            }
        }
    };
    tokio::pin!(reader);
    let send = |req: Request| {
        control_tx
            .send(req)
            .map_err(|_| anyhow::anyhow!("lost the broker connection"))
    };
    loop {
        tokio::select! {
            _ = &mut reader => {}
            w = &mut writer, if writing => {
                writing = false;
                let r: Result<(), crate::frame::FrameError> = w;
                r.context("lost the broker connection")?;
            }
            _ = interrupt.recv() => {
                if stop_deadline.is_some() {
                    eprintln!("sshkeep: left without confirmation that the command stopped\r");
                    return Ok(130);
                }
                eprintln!("\r\nsshkeep: stopping the command (ctrl-c again to leave it)\r");
                send(Request::ExecStop)?;
                stop_deadline = Some(tokio::time::Instant::now() + STOP_WAIT);
            }
            _ = tokio::time::sleep_until(stop_deadline.unwrap_or_else(tokio::time::Instant::now)), if stop_deadline.is_some() => {
                eprintln!("sshkeep: the broker did not confirm the stop in time\r");
                return Ok(130);
            }
            r = replies.recv() => {
                let r = match r {
                    Some(Ok(Response::LoginPrompt(p))) => {
                        let answer = crate::client::answer_prompt(p, super::prompt::login_answers);
                        // Ctrl-c at the question declines it (the login then fails); a reply
                        // from the broker meanwhile withdraws it (no answer in time). Either
                        // way the terminal is put back as it was.
                        let reply = tokio::select! {
                            r = answer => r,
                            _ = interrupt.recv() => Request::LoginCancel,
                            r = replies.recv() => {
                                eprintln!("\nsshkeep: the login question was withdrawn (no answer in time, or the login ended)\r");
                                let r = r
                                    .unwrap_or(Err(crate::frame::FrameError::Closed))
                                    .map_err(|e| anyhow::anyhow!("lost the broker connection: {e}"))?;
                                if let Some(code) = on_reply(r, &mut stdout, &mut stderr)? {
                                    return Ok(code);
                                }
                                continue;
                            }
                        };
                        send(reply)?;
                        continue;
                    }
                    Some(Ok(r)) => r,
                    Some(Err(e)) => bail!("lost the broker connection: {e}"),
                    None => bail!("lost the broker connection"),
                };
                if let Some(code) = on_reply(r, &mut stdout, &mut stderr)? {
                    return Ok(code);
                }
            }
        }
    }
}

/// Output written where it belongs; the command's exit status once it ended.
fn on_reply<'a>(
    r: Response,
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
) -> Result<Option<u8>> {
    match expect::<ExecFrame>(r)? {
        ExecFrame::Output { stream, data } => {
            let bytes = B64
                .decode(data)
                .context("the broker sent undecodable output")?;
            let sink = match stream {
                OutputStream::Stdout => stdout,
                OutputStream::Stderr => stderr,
            };
            sink.write_all(&bytes)
                .and_then(|_| sink.flush())
                .context("cannot write the output")?;
            Ok(None)
        }
        ExecFrame::Exit { status, note } => {
            if let Some(n) = note {
                eprintln!("sshkeep: {n}\r");
            }
            Ok(Some(status.clamp(0, 255) as u8))
        }
    }
}
