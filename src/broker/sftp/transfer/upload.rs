//! Uploads: a local file or tree to the server, each file streamed to a temporary name beside
//! its target and renamed into place.

use std::collections::VecDeque;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::{Opts, Progress, count_file, finish, hex};
use crate::broker::core::fail::Fail;
use crate::broker::core::sessions::Session;
use crate::broker::sftp::client::{
    CHUNK, Sftp, WINDOW, base_name, is_dir, is_file, join, parent, temp_file_name,
};
use crate::broker::sftp::roots::{Roots, local_fail};
use crate::protocol::{ErrorCode, TransferReport};

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
                progress.check()?;
                let copied = upload_file(sftp, path, &target, *mode, progress).await?;
                let check = verify.then_some((sftp, session, target.as_str()));
                all_verified &= count_file(&mut report, check, items.len() == 1, copied).await?;
            }
        }
    }
    Ok(finish(report, verify, all_verified, started))
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
    let temp = join(parent(target), &temp_file_name(base_name(target)));
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
            progress.add(n)?;
        }
    }
    Ok((off, hex(hasher)))
}
