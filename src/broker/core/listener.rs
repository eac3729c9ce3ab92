//! The broker's owner-only local socket.
//!
//! The runtime directory is 0700 and the socket is created 0600 (mode set before bind, no umask
//! race). On top of that every connection's peer uid is read with SO_PEERCRED before a byte of
//! it is read, and any uid other than the broker's own is refused and logged.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::traits::StreamCommon as _;
use interprocess::local_socket::traits::tokio::Listener as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;

use super::backoff::Backoff;
use crate::frame::write_frame;
use crate::protocol::{ErrorCode, Response};

/// Who is on the other end of a connection.
#[derive(Clone, Debug, Default)]
pub struct Peer {
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    /// `/proc/PID/exe`, when readable.
    pub exe: Option<String>,
    /// The person at the client's terminal, for the one request that said one is there (a
    /// login's questions go to them); `None` everywhere else, reconnects and background work
    /// included.
    pub person: Option<crate::ssh::Person>,
}

/// Binds the socket at `path`, replacing a stale one (the caller holds the broker lock, so any
/// socket file present belongs to a broker that is gone).
pub fn bind(path: &Path) -> Result<Listener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot remove the stale socket {}", path.display()));
        }
    }
    let name = path
        .to_fs_name::<GenericFilePath>()
        .context("socket path")?;
    ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .create_tokio()
        .with_context(|| format!("cannot listen on {}", path.display()))
}

/// Pauses after failed accepts, so a full descriptor table (EMFILE) is not retried in a busy
/// loop that also floods the log: 10 ms doubling to 1 s, one log line per streak of failures
/// (and one per hundred after it).
pub struct AcceptBackoff(Backoff);

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self(Backoff::new(
            Duration::from_millis(10),
            Duration::from_secs(1),
        ))
    }
}

impl AcceptBackoff {
    /// Records a failure and waits before the next accept.
    pub async fn failed(&mut self, what: &str, e: &std::io::Error) {
        let failures = self.0.failures();
        if failures.is_multiple_of(100) {
            tracing::warn!(
                failures = failures + 1,
                "{what} accept failed: {e}; backing off"
            );
        }
        self.0.wait().await;
    }

    /// An accept worked: the next failure starts over.
    pub fn ok(&mut self) {
        if self.0.failures() > 0 {
            tracing::info!(failures = self.0.failures(), "accepting connections again");
        }
        self.0.reset();
    }
}

/// Accepts the next connection from the broker's own user. Others are answered with an error
/// frame (when `answer` is set: the broker's own protocol), dropped and logged.
pub async fn accept(
    listener: &Listener,
    own_uid: u32,
    answer: bool,
) -> std::io::Result<(Stream, Peer)> {
    loop {
        let stream = listener.accept().await?;
        let creds = match stream.peer_creds() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("refused a connection whose peer credentials cannot be read: {e}");
                continue;
            }
        };
        let peer = Peer {
            pid: creds.pid().and_then(|p| u32::try_from(p).ok()),
            uid: creds.euid(),
            exe: creds
                .pid()
                .and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok())
                .map(|p| p.display().to_string()),
            person: None,
        };
        if peer.uid == Some(own_uid) {
            return Ok((stream, peer));
        }
        tracing::warn!(
            uid = ?peer.uid,
            pid = ?peer.pid,
            exe = ?peer.exe,
            "refused a connection from another user: only uid {own_uid} may use this broker"
        );
        if !answer {
            continue;
        }
        let mut tx = &stream;
        let refusal = Response::error(
            ErrorCode::BadRequest,
            format!("refused: this broker serves uid {own_uid} only"),
        );
        let _ = write_frame(&mut tx, &refusal).await;
    }
}
