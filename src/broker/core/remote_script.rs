//! The one runner for sshkeep's own short scripts on a channel of their own: shell probes (is
//! tmux there? signal the foreground job), remote hashes, the steps that launch and clean up a
//! detached command, and the kill of a process group. Only sshkeep's own script text is run;
//! any data (a path, a job body) goes on stdin.

use std::sync::Arc;
use std::time::Duration;

use russh::ChannelMsg;

use super::sessions::Session;

/// How the script's channel is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Through the session's channel gate, and counted on the session like a command.
    Counted,
    /// Through the gate, not counted again: the caller already counts its work on the session.
    Gated,
    /// Around the gate and its queue: a cancel must not wait behind the commands it stops.
    Outside,
}

/// A script to run.
pub struct Script<'a> {
    pub text: &'a str,
    /// Sent, then end of file (end of file alone without it).
    pub stdin: Option<&'a [u8]>,
    /// About how many bytes of stdout, and of stderr, are kept.
    pub cap: usize,
    /// Silence longer than this ends the script as failed (none: it may take its time).
    pub quiet: Option<Duration>,
    pub lane: Lane,
}

/// What a script did.
pub struct Ran {
    /// `None` when the channel closed without a status (a dropped connection).
    pub status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `script` on a fresh channel of `session` and closes the channel. Fails, with the
/// reason, when no channel opens, the script cannot be started or fed, or it stays silent past
/// its limit.
pub async fn run(session: &Arc<Session>, script: Script<'_>) -> Result<Ran, String> {
    let mut occupancy = (script.lane == Lane::Counted).then(|| session.occupy());
    let (mut ch, _permit) = match script.lane {
        Lane::Counted | Lane::Gated => {
            let (ch, permit) = session.open_channel().await.map_err(|f| f.message)?;
            (ch, Some(permit))
        }
        Lane::Outside => {
            let handle = session.wait_open().await.map_err(|f| f.message)?;
            let ch = handle
                .channel_open_session()
                .await
                .map_err(|e| e.to_string())?;
            (ch, None)
        }
    };
    if let Some(o) = occupancy.as_mut() {
        o.running();
    }
    let ran = async {
        ch.exec(true, script.text.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        if let Some(data) = script.stdin {
            ch.data(data).await.map_err(|e| e.to_string())?;
        }
        // A failed end of file means the channel is gone: the wait below sees that.
        let _ = ch.eof().await;
        let mut ran = Ran {
            status: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        loop {
            let msg = match script.quiet {
                Some(d) => tokio::time::timeout(d, ch.wait())
                    .await
                    .map_err(|_| format!("the server was silent for {} s", d.as_secs()))?,
                None => ch.wait().await,
            };
            match msg {
                Some(ChannelMsg::Data { data }) if ran.stdout.len() < script.cap => {
                    ran.stdout.extend_from_slice(&data)
                }
                Some(ChannelMsg::ExtendedData { data, .. }) if ran.stderr.len() < script.cap => {
                    ran.stderr.extend_from_slice(&data)
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => ran.status = Some(exit_status),
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            }
        }
        Ok(ran)
    }
    .await;
    // Dropping a channel does not close it; an unclosed channel holds one of the server's
    // MaxSessions slots until the connection ends.
    let _ = ch.close().await;
    ran
}

/// A probe: a script without input that answers quickly (20 s of silence ends it), counted on
/// the session; its exit status and stdout as text, or `None` when it did not report one.
pub async fn probe(session: &Arc<Session>, script: &str) -> Option<(u32, String)> {
    let ran = run(
        session,
        Script {
            text: script,
            stdin: None,
            cap: 64 * 1024,
            quiet: Some(Duration::from_secs(20)),
            lane: Lane::Counted,
        },
    )
    .await
    .ok()?;
    Some((
        ran.status?,
        String::from_utf8_lossy(&ran.stdout).into_owned(),
    ))
}
