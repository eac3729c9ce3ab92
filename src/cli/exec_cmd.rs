//! `sshkeep exec TARGET -- CMD...`: streams output, exits with the remote status.

use std::io::Write;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clap::Args;

use super::Ctx;
use crate::protocol::{OutputStream, Request, Response};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A saved connection or user@host[:port].
    target: String,
    /// Log in with this key instead of the linked one.
    #[arg(long)]
    key: Option<String>,
    /// The command; its words are joined with spaces and run by the remote user's shell, as with ssh.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub async fn run(ctx: &Ctx, a: ExecArgs) -> Result<u8> {
    let mut c = ctx.client().await?;
    c.send(&Request::Exec {
        target: a.target,
        key: a.key,
        command: a.command.join(" "),
    })
    .await?;
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    loop {
        match c.recv().await? {
            Response::Output { stream, data } => {
                let bytes = B64
                    .decode(data)
                    .context("the broker sent undecodable output")?;
                let sink: &mut dyn Write = match stream {
                    OutputStream::Stdout => &mut stdout,
                    OutputStream::Stderr => &mut stderr,
                };
                sink.write_all(&bytes)
                    .and_then(|_| sink.flush())
                    .context("cannot write the output")?;
            }
            Response::Exit { status, .. } => return Ok(status.clamp(0, 255) as u8),
            Response::Error { message, .. } => bail!("{message}"),
            other => bail!("unexpected reply to exec: {other:?}"),
        }
    }
}
