//! SHA-256 of a remote file computed on the server (`sha256sum`), so that verifying a transfer
//! does not move the file twice. The path goes to the command on its standard input, never into
//! the command text.

use std::sync::Arc;

use crate::broker::core::remote_script::{self, Lane, Script};
use crate::broker::core::sessions::Session;

/// Reads a path from stdin (keeping trailing newlines that are part of the name) and hashes it.
const SCRIPT: &str = r#"p=$(cat; printf x); p=${p%x}; exec sha256sum < "$p""#;

/// The file's SHA-256 in lowercase hex, or `None` when the server cannot compute it (no POSIX
/// shell, no sha256sum, no exec allowed): the caller then reads the file back instead.
pub async fn remote_sha256(session: &Arc<Session>, path: &str) -> Option<String> {
    // No silence limit: hashing a large file prints nothing until it is done.
    let ran = remote_script::run(
        session,
        Script {
            text: SCRIPT,
            stdin: Some(path.as_bytes()),
            cap: 4096,
            quiet: None,
            lane: Lane::Counted,
        },
    )
    .await
    .ok()?;
    if ran.status != Some(0) {
        return None;
    }
    let text = String::from_utf8(ran.stdout).ok()?;
    // Login scripts may print before the command; the hash line is the last one.
    let line = text.lines().last()?;
    let hash = line.split_whitespace().next()?;
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hash.to_ascii_lowercase())
}
