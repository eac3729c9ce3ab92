//! Downloads: a remote file or tree to this machine, each file streamed into a new local
//! temporary file (never through a symlink) and renamed into place.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{ChunkReader, Opts, Progress, count_file, finish, hex};
use crate::broker::core::fail::Fail;
use crate::broker::core::sessions::Session;
use crate::broker::sftp::client::{Sftp, base_name, is_dir, is_file, join, temp_file_name};
use crate::broker::sftp::roots::{Roots, local_fail};
use crate::protocol::{EntryKind, ErrorCode, TransferReport};

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
                match e.kind {
                    EntryKind::Dir => {
                        items.push(RemoteItem::Dir(child.clone()));
                        stack.push(child);
                    }
                    EntryKind::File => items.push(RemoteItem::File {
                        rel: child,
                        size: e.size,
                        mode: e.mode,
                    }),
                    EntryKind::Symlink => report
                        .skipped
                        .push(format!("{child}: a symbolic link (not followed)")),
                    EntryKind::Other => report.skipped.push(format!("{child}: not a regular file")),
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
                progress.check()?;
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
    let temp = dir.join(temp_file_name(&base));
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
            progress.add(chunk.len() as u64)?;
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
