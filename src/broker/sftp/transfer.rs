//! Uploads and downloads of files and directory trees. Data streams through in 32 KiB requests
//! with many in flight (never the whole file in memory); each file lands under a temporary name
//! in its target directory and is renamed into place only when complete, so a broken transfer
//! never leaves a half-written file where the real one was. `verify` compares size and SHA-256
//! of both ends.

use std::collections::VecDeque;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedSender;

use super::client::{CHUNK, Sftp, WINDOW, base_name, is_dir, is_file, join, parent};
use super::remote_hash::remote_sha256;
use super::roots::{Roots, local_fail};
use crate::broker::fail::Fail;
use crate::broker::sessions::Session;
use crate::protocol::{ErrorCode, TransferReport};

/// How to copy.
#[derive(Clone, Copy)]
pub struct Opts {
    /// Directories and everything in them.
    pub recursive: bool,
    /// Compare size and SHA-256 of both ends afterwards.
    pub verify: bool,
}

/// Counts bytes and tells the client.
pub struct Progress {
    tx: Option<UnboundedSender<(u64, u64)>>,
    done: u64,
    total: u64,
}

impl Progress {
    pub fn new(tx: Option<UnboundedSender<(u64, u64)>>) -> Self {
        Self {
            tx,
            done: 0,
            total: 0,
        }
    }

    fn add(&mut self, n: u64) {
        self.done += n;
        if let Some(tx) = &self.tx {
            let _ = tx.send((self.done, self.total));
        }
    }
}

fn temp_name(dir: &str, base: &str) -> String {
    join(
        dir,
        &format!(
            ".{base}.sshkeep-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ),
    )
}

fn hex(d: Sha256) -> String {
    d.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One local entry of an upload.
enum LocalItem {
    Dir(String),
    File {
        rel: String,
        path: PathBuf,
        size: u64,
        mode: u32,
    },
}

/// Uploads `local` to `remote`. A file goes to `remote` (or into it, when `remote` is a
/// directory); a directory's contents go to `remote`, which is created if missing.
pub async fn upload(
    sftp: &Sftp,
    session: &Arc<Session>,
    roots: &Roots,
    local: &Path,
    remote: &str,
    Opts { recursive, verify }: Opts,
    progress: &mut Progress,
) -> Result<TransferReport, Fail> {
    let started = Instant::now();
    let real = roots.check_read(local)?;
    let meta = std::fs::metadata(&real).map_err(|e| local_fail("read", &real, e))?;
    let mut report = TransferReport::default();
    let mut items = Vec::new();
    let remote_root: String;
    if meta.is_dir() {
        if !recursive {
            return Err(Fail::new(
                ErrorCode::InvalidArgument,
                format!(
                    "{} is a directory: copy it with recursive (-r)",
                    local.display()
                ),
            ));
        }
        remote_root = remote.to_string();
        let real2 = real.clone();
        let (walked, skipped) = tokio::task::spawn_blocking(move || walk_local(&real2))
            .await
            .map_err(Fail::internal)??;
        items = walked;
        report.skipped = skipped;
        items.insert(0, LocalItem::Dir(String::new()));
    } else if meta.is_file() {
        remote_root = match sftp.lstat_opt(remote).await? {
            Some(a) if is_dir(&a) => join(
                remote,
                &real
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            _ => remote.to_string(),
        };
        items.push(LocalItem::File {
            rel: String::new(),
            path: real.clone(),
            size: meta.len(),
            mode: meta.permissions().mode(),
        });
    } else {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("{} is not a regular file or directory", local.display()),
        ));
    }
    progress.total = items
        .iter()
        .map(|i| match i {
            LocalItem::File { size, .. } => *size,
            LocalItem::Dir(_) => 0,
        })
        .sum();
    let mut all_verified = true;
    for item in &items {
        match item {
            LocalItem::Dir(rel) => {
                let target = if rel.is_empty() {
                    remote_root.clone()
                } else {
                    join(&remote_root, rel)
                };
                sftp.mkdir(&target, true).await?;
                report.dirs += 1;
            }
            LocalItem::File {
                rel, path, mode, ..
            } => {
                let target = if rel.is_empty() {
                    remote_root.clone()
                } else {
                    join(&remote_root, rel)
                };
                let copied = upload_file(sftp, path, &target, *mode, progress).await?;
                let check = verify.then_some((sftp, session, target.as_str()));
                all_verified &= count_file(&mut report, check, items.len() == 1, copied).await?;
            }
        }
    }
    Ok(finish(report, verify, all_verified, started))
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

fn walk_local(root: &Path) -> Result<(Vec<LocalItem>, Vec<String>), Fail> {
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| local_fail("list", &dir, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| local_fail("list", &dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let path = e.path();
            let m = std::fs::symlink_metadata(&path).map_err(|e| local_fail("read", &path, e))?;
            if m.file_type().is_symlink() {
                skipped.push(format!("{child_rel}: a symbolic link (not followed)"));
            } else if m.is_dir() {
                items.push(LocalItem::Dir(child_rel.clone()));
                stack.push((path, child_rel));
            } else if m.is_file() {
                items.push(LocalItem::File {
                    rel: child_rel,
                    path,
                    size: m.len(),
                    mode: m.mode(),
                });
            } else {
                skipped.push(format!("{child_rel}: not a regular file"));
            }
        }
    }
    Ok((items, skipped))
}

/// Streams one local file to a temporary remote file, then renames it over `target`. An
/// existing target keeps its mode (and owner, where the server lets us).
async fn upload_file(
    sftp: &Sftp,
    local: &Path,
    target: &str,
    local_mode: u32,
    progress: &mut Progress,
) -> Result<(u64, String), Fail> {
    let existing = sftp.lstat_opt(target).await?;
    if let Some(a) = &existing
        && is_dir(a)
    {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("{target} on {} is a directory", sftp.label),
        ));
    }
    let mode = existing
        .as_ref()
        .filter(|a| is_file(a))
        .and_then(|a| a.permissions)
        .unwrap_or(local_mode)
        & 0o7777;
    let temp = temp_name(parent(target), base_name(target));
    let handle = sftp.create_new(&temp, mode).await?;
    let result = stream_up(sftp, &handle, local, &temp, progress).await;
    let closed = sftp.close(handle, &temp).await;
    let (bytes, sha) = match result.and_then(|r| closed.map(|_| r)) {
        Ok(r) => r,
        Err(f) => {
            let _ = sftp.raw.remove(temp.as_str()).await;
            return Err(f);
        }
    };
    // mode again: the server's umask applies at create.
    let owner = existing.as_ref().and_then(|a| a.uid.zip(a.gid));
    if sftp.set_attrs(&temp, Some(mode), owner).await.is_err() && owner.is_some() {
        let _ = sftp.set_attrs(&temp, Some(mode), None).await;
    }
    if let Err(f) = sftp.rename(&temp, target).await {
        let _ = sftp.raw.remove(temp.as_str()).await;
        return Err(f);
    }
    Ok((bytes, sha))
}

async fn stream_up(
    sftp: &Sftp,
    handle: &str,
    local: &Path,
    remote: &str,
    progress: &mut Progress,
) -> Result<(u64, String), Fail> {
    let mut file = tokio::fs::File::open(local)
        .await
        .map_err(|e| local_fail("read", local, e))?;
    let mut hasher = Sha256::new();
    let mut off = 0u64;
    let mut eof = false;
    let mut inflight = VecDeque::new();
    while !eof || !inflight.is_empty() {
        while !eof && inflight.len() < WINDOW {
            let mut buf = vec![0u8; CHUNK as usize];
            let mut n = 0;
            while n < buf.len() {
                let r = file
                    .read(&mut buf[n..])
                    .await
                    .map_err(|e| local_fail("read", local, e))?;
                if r == 0 {
                    eof = true;
                    break;
                }
                n += r;
            }
            if n == 0 {
                break;
            }
            buf.truncate(n);
            hasher.update(&buf);
            let raw = sftp.raw.clone();
            let h = handle.to_string();
            let at = off;
            off += n as u64;
            inflight.push_back((
                n as u64,
                tokio::spawn(async move { raw.write(h, at, buf).await }),
            ));
        }
        if let Some((n, task)) = inflight.pop_front() {
            task.await
                .map_err(Fail::internal)?
                .map_err(|e| sftp.fail("write", remote, e))?;
            progress.add(n);
        }
    }
    Ok((off, hex(hasher)))
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

/// One remote entry of a download.
enum RemoteItem {
    Dir(String),
    File { rel: String, size: u64, mode: u32 },
}

/// Downloads `remote` to `local`. A file goes to `local` (or into it, when `local` is a
/// directory); a directory's contents go to `local`, which is created if missing.
pub async fn download(
    sftp: &Sftp,
    session: &Arc<Session>,
    roots: &Roots,
    remote: &str,
    local: &Path,
    Opts { recursive, verify }: Opts,
    progress: &mut Progress,
) -> Result<TransferReport, Fail> {
    let started = Instant::now();
    let attrs = sftp.stat(remote).await?;
    let mut report = TransferReport::default();
    let mut items = Vec::new();
    let local_root: PathBuf;
    if is_dir(&attrs) {
        if !recursive {
            return Err(Fail::new(
                ErrorCode::InvalidArgument,
                format!(
                    "{remote} on {} is a directory: copy it with recursive (-r)",
                    sftp.label
                ),
            ));
        }
        local_root = roots.check_write(local)?;
        items.push(RemoteItem::Dir(String::new()));
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let dir = if rel.is_empty() {
                remote.to_string()
            } else {
                join(remote, &rel)
            };
            for e in sftp.list(&dir).await? {
                let child = if rel.is_empty() {
                    e.name.clone()
                } else {
                    format!("{rel}/{}", e.name)
                };
                if e.name.contains('/') || e.name == ".." || e.name == "." {
                    report
                        .skipped
                        .push(format!("{child}: a name that is not a plain file name"));
                    continue;
                }
                match e.kind.as_str() {
                    "dir" => {
                        items.push(RemoteItem::Dir(child.clone()));
                        stack.push(child);
                    }
                    "file" => items.push(RemoteItem::File {
                        rel: child,
                        size: e.size,
                        mode: e.mode,
                    }),
                    "symlink" => report
                        .skipped
                        .push(format!("{child}: a symbolic link (not followed)")),
                    _ => report.skipped.push(format!("{child}: not a regular file")),
                }
            }
        }
    } else if is_file(&attrs) {
        let wanted = roots.check_write(local)?;
        local_root = if wanted.is_dir() {
            wanted.join(base_name(remote))
        } else {
            wanted
        };
        items.push(RemoteItem::File {
            rel: String::new(),
            size: attrs.size.unwrap_or(0),
            mode: attrs.permissions.unwrap_or(0o644),
        });
    } else {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "{remote} on {} is not a regular file or directory",
                sftp.label
            ),
        ));
    }
    progress.total = items
        .iter()
        .map(|i| match i {
            RemoteItem::File { size, .. } => *size,
            RemoteItem::Dir(_) => 0,
        })
        .sum();
    let mut all_verified = true;
    for item in &items {
        match item {
            RemoteItem::Dir(rel) => {
                let dir = if rel.is_empty() {
                    local_root.clone()
                } else {
                    local_root.join(rel)
                };
                let dir = roots.check_write(&dir)?;
                match std::fs::symlink_metadata(&dir) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(Fail::new(
                            ErrorCode::InvalidArgument,
                            format!(
                                "the local path {} exists and is not a directory",
                                dir.display()
                            ),
                        ));
                    }
                    Err(_) => {
                        std::fs::create_dir_all(&dir).map_err(|e| local_fail("create", &dir, e))?
                    }
                }
                report.dirs += 1;
            }
            RemoteItem::File { rel, mode, .. } => {
                let source = if rel.is_empty() {
                    remote.to_string()
                } else {
                    join(remote, rel)
                };
                let target = if rel.is_empty() {
                    local_root.clone()
                } else {
                    local_root.join(rel)
                };
                let target = roots.check_write(&target)?;
                let copied = download_file(sftp, &source, &target, *mode, progress).await?;
                let check = verify.then_some((sftp, session, source.as_str()));
                all_verified &= count_file(&mut report, check, items.len() == 1, copied).await?;
            }
        }
    }
    Ok(finish(report, verify, all_verified, started))
}

/// Streams one remote file into a new local temporary file (never through a symlink), then
/// renames it over `target`.
async fn download_file(
    sftp: &Sftp,
    remote: &str,
    target: &Path,
    remote_mode: u32,
    progress: &mut Progress,
) -> Result<(u64, String), Fail> {
    if let Ok(m) = std::fs::symlink_metadata(target)
        && !m.is_file()
    {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "the local path {} exists and is not a regular file (a symlink or directory is never written through)",
                target.display()
            ),
        ));
    }
    let dir = target.parent().unwrap_or(Path::new("/"));
    // Missing parent directories are created (the caller checked they are within the roots).
    std::fs::create_dir_all(dir).map_err(|e| local_fail("create", dir, e))?;
    let base = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{base}.sshkeep-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)
        .map_err(|e| local_fail("create", &temp, e))?;
    // Large buffered writes: one blocking-pool hop per MiB, not per 32 KiB chunk.
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
    let handle = match sftp.open_read(remote).await {
        Ok(h) => h,
        Err(f) => {
            let _ = std::fs::remove_file(&temp);
            return Err(f);
        }
    };
    let mut hasher = Sha256::new();
    let mut reader = ChunkReader::new(sftp, &handle, remote);
    let result = async {
        let mut total = 0u64;
        while let Some(chunk) = reader.next().await? {
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| local_fail("write", &temp, e))?;
            total += chunk.len() as u64;
            progress.add(chunk.len() as u64);
        }
        file.flush()
            .await
            .map_err(|e| local_fail("write", &temp, e))?;
        file.get_ref()
            .sync_all()
            .await
            .map_err(|e| local_fail("write", &temp, e))?;
        Ok::<u64, Fail>(total)
    }
    .await;
    let _ = sftp.raw.close(handle).await;
    let bytes = match result {
        Ok(n) => n,
        Err(f) => {
            let _ = std::fs::remove_file(&temp);
            return Err(f);
        }
    };
    let mode = remote_mode & 0o777;
    let _ = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode));
    std::fs::rename(&temp, target).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        local_fail("rename into", target, e)
    })?;
    Ok((bytes, hex(hasher)))
}
