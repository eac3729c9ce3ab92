//! Uploads and downloads of files and directory trees. Data streams through in 32 KiB requests
//! with many in flight (never the whole file in memory); each file lands under a temporary name
//! in its target directory and is renamed into place only when complete, so a broken transfer
//! never leaves a half-written file where the real one was. `verify` compares size and SHA-256
//! of both ends.
//!
//! `upload` and `download` each live in a file of their own; what both use is here: options,
//! progress, the report, verification, and the in-order pipelined reader.

mod download;
mod upload;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;

pub use download::download;
pub use upload::upload;

use super::Feedback;
use super::client::{CHUNK, Sftp, WINDOW};
use super::remote_hash::remote_sha256;
use crate::broker::core::fail::Fail;
use crate::broker::core::sessions::Session;
use crate::protocol::{ErrorCode, TransferReport};

/// How to copy.
#[derive(Clone, Copy)]
pub struct Opts {
    /// Directories and everything in them.
    pub recursive: bool,
    /// Compare size and SHA-256 of both ends afterwards.
    pub verify: bool,
}

/// Counts bytes, tells the client, and hears whether it wants the transfer stopped.
pub struct Progress {
    feedback: Option<Feedback>,
    done: u64,
    total: u64,
}

impl Progress {
    pub fn new(feedback: Option<Feedback>) -> Self {
        Self {
            feedback,
            done: 0,
            total: 0,
        }
    }

    /// Counts `n` bytes more; fails once the client asked to stop, so the transfer ends through
    /// its error path and removes the file it was writing.
    fn add(&mut self, n: u64) -> Result<(), Fail> {
        self.done += n;
        if let Some(f) = &self.feedback {
            let _ = f.progress.send((self.done, self.total));
        }
        self.check()
    }

    /// Fails once the client asked to stop.
    fn check(&self) -> Result<(), Fail> {
        match &self.feedback {
            Some(f) if f.stop.load(Ordering::Relaxed) => Err(Fail::new(
                ErrorCode::Cancelled,
                format!(
                    "the transfer was stopped after {} of {} bytes; the file in flight was removed",
                    self.done, self.total
                ),
            )),
            _ => Ok(()),
        }
    }
}

fn hex(d: Sha256) -> String {
    d.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Adds a copied file to the report; with `check` (the remote side), verifies it. Returns
/// whether it verified (true when not asked).
async fn count_file(
    report: &mut TransferReport,
    check: Option<(&Sftp, &Arc<Session>, &str)>,
    single: bool,
    (bytes, sha): (u64, String),
) -> Result<bool, Fail> {
    report.files += 1;
    report.bytes += bytes;
    let ok = match check {
        Some((sftp, session, remote)) => verify_remote(sftp, session, remote, bytes, &sha).await?,
        None => true,
    };
    if single {
        report.sha256 = Some(sha);
    }
    Ok(ok)
}

fn finish(
    mut report: TransferReport,
    verify: bool,
    all_verified: bool,
    started: Instant,
) -> TransferReport {
    if verify {
        report.verified = Some(all_verified);
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report
}

/// Size and SHA-256 of a remote file against what was sent.
async fn verify_remote(
    sftp: &Sftp,
    session: &Arc<Session>,
    path: &str,
    bytes: u64,
    sha: &str,
) -> Result<bool, Fail> {
    let size = sftp.stat(path).await?.size.unwrap_or(0);
    if size != bytes {
        return Ok(false);
    }
    let remote = match remote_sha256(session, path).await {
        Some(h) => h,
        None => read_back_sha256(sftp, path).await?,
    };
    Ok(remote == sha)
}

/// SHA-256 of a remote file by reading it over SFTP (when the server cannot run sha256sum).
async fn read_back_sha256(sftp: &Sftp, path: &str) -> Result<String, Fail> {
    let handle = sftp.open_read(path).await?;
    let mut hasher = Sha256::new();
    let mut reader = ChunkReader::new(sftp, &handle, path);
    let r = async {
        while let Some(chunk) = reader.next().await? {
            hasher.update(&chunk);
        }
        Ok::<(), Fail>(())
    }
    .await;
    let _ = sftp.raw.close(handle).await;
    r?;
    Ok(hex(hasher))
}

type ReadTask = tokio::task::JoinHandle<Result<Vec<u8>, SftpError>>;

/// Reads a remote file from offset 0 to its end with `WINDOW` reads in flight, yielding the
/// chunks in order.
struct ChunkReader<'a> {
    sftp: &'a Sftp,
    handle: &'a str,
    path: &'a str,
    next: u64,
    eof: bool,
    inflight: VecDeque<ReadTask>,
}

impl<'a> ChunkReader<'a> {
    fn new(sftp: &'a Sftp, handle: &'a str, path: &'a str) -> Self {
        Self {
            sftp,
            handle,
            path,
            next: 0,
            eof: false,
            inflight: VecDeque::new(),
        }
    }

    async fn next(&mut self) -> Result<Option<Vec<u8>>, Fail> {
        loop {
            while !self.eof && self.inflight.len() < WINDOW {
                let raw = self.sftp.raw.clone();
                let h = self.handle.to_string();
                let at = self.next;
                self.next += CHUNK as u64;
                self.inflight
                    .push_back(tokio::spawn(async move { read_full(&raw, &h, at).await }));
            }
            let Some(task) = self.inflight.pop_front() else {
                return Ok(None);
            };
            let data = task
                .await
                .map_err(Fail::internal)?
                .map_err(|e| self.sftp.fail("read", self.path, e))?;
            if self.eof {
                // Reads sent past the end come back empty.
                continue;
            }
            if data.len() < CHUNK as usize {
                self.eof = true;
            }
            if !data.is_empty() {
                return Ok(Some(data));
            }
        }
    }
}

/// Reads `CHUNK` bytes at `at`, short only at end of file.
async fn read_full(
    raw: &russh_sftp::client::RawSftpSession,
    handle: &str,
    at: u64,
) -> Result<Vec<u8>, SftpError> {
    let mut out = Vec::with_capacity(CHUNK as usize);
    while out.len() < CHUNK as usize {
        match raw
            .read(handle, at + out.len() as u64, CHUNK - out.len() as u32)
            .await
        {
            Ok(d) if d.data.is_empty() => break,
            Ok(d) => out.extend_from_slice(&d.data),
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
