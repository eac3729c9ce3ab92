//! Short fixed scripts run on a channel of their own, counted on the session like a command:
//! shell probes (is tmux there? signal the foreground job) and remote hashes. Only sshkeep's own
//! script text is run; any data (a path) goes on stdin.

use std::sync::Arc;
use std::time::Duration;

use russh::ChannelMsg;

use crate::broker::core::sessions::Session;

/// Runs `script` with `stdin` (then end of file) and returns its exit status and up to about
/// `cap` bytes of stdout. `None` when it cannot run, reports no status, or is silent for longer
/// than `quiet` (when given).
pub async fn run(
    session: &Arc<Session>,
    script: &str,
    stdin: Option<&[u8]>,
    cap: usize,
    quiet: Option<Duration>,
) -> Option<(u32, Vec<u8>)> {
    let mut occupancy = session.occupy();
    let (mut ch, _permit) = session.open_channel().await.ok()?;
    occupancy.running();
    let r = async {
        ch.exec(true, script.as_bytes()).await.ok()?;
        if let Some(data) = stdin {
            ch.data(data).await.ok()?;
        }
        ch.eof().await.ok()?;
        let mut out = Vec::new();
        let mut code = None;
        loop {
            let msg = match quiet {
                Some(d) => tokio::time::timeout(d, ch.wait()).await.ok()?,
                None => ch.wait().await,
            };
            match msg {
                Some(ChannelMsg::Data { data }) if out.len() < cap => out.extend_from_slice(&data),
                Some(ChannelMsg::ExitStatus { exit_status }) => code = Some(exit_status),
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            }
        }
        Some((code?, out))
    }
    .await;
    let _ = ch.close().await;
    r
}

/// A probe: a script without input that answers quickly (20 s of silence ends it); its exit
/// status and stdout as text.
pub async fn probe(session: &Arc<Session>, script: &str) -> Option<(u32, String)> {
    run(
        session,
        script,
        None,
        64 * 1024,
        Some(Duration::from_secs(20)),
    )
    .await
    .map(|(code, out)| (code, String::from_utf8_lossy(&out).into_owned()))
}
