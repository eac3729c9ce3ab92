//! SHA-256 of a remote file computed on the server (`sha256sum`), so that verifying a transfer
//! does not move the file twice. The path goes to the command on its standard input, never into
//! the command text.

use std::sync::Arc;

use russh::ChannelMsg;

use crate::broker::sessions::Session;

/// Reads a path from stdin (keeping trailing newlines that are part of the name) and hashes it.
const SCRIPT: &str = r#"p=$(cat; printf x); p=${p%x}; exec sha256sum < "$p""#;

/// The file's SHA-256 in lowercase hex, or `None` when the server cannot compute it (no POSIX
/// shell, no sha256sum, no exec allowed): the caller then reads the file back instead.
pub async fn remote_sha256(session: &Arc<Session>, path: &str) -> Option<String> {
    let mut occupancy = session.occupy();
    let (mut channel, _permit) = session.open_channel().await.ok()?;
    occupancy.running();
    let out = async {
        channel.exec(true, SCRIPT.as_bytes()).await.ok()?;
        channel.data(path.as_bytes()).await.ok()?;
        channel.eof().await.ok()?;
        let mut stdout = Vec::new();
        let mut status = None;
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } if stdout.len() < 4096 => stdout.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        (status == Some(0)).then_some(stdout)
    }
    .await;
    let _ = channel.close().await;
    let text = String::from_utf8(out?).ok()?;
    // Login scripts may print before the command; the hash line is the last one.
    let line = text.lines().last()?;
    let hash = line.split_whitespace().next()?;
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hash.to_ascii_lowercase())
}
