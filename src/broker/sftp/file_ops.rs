//! `file read|write|replace|edit`: text edits done entirely over SFTP (the content is never
//! part of a command line or heredoc, so no byte of it can be misread as shell syntax). Writes
//! are atomic: a temporary file in the same directory, renamed over the original, which keeps
//! its mode and, where the server allows, its owner. A backup is a hard link to the previous
//! content (a copy where links are not supported).

use std::sync::Arc;

use super::client::{Sftp, base_name, check_remote_path, is_dir, is_link, parent, temp_file_name};
use super::edit;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::resolve;
use crate::broker::core::sessions::{Reuse, session_for};
use crate::broker::core::{Core, Peer};
use crate::protocol::{ErrorCode, FileAction, FileChange, FileRequest, FileText, Response};

/// The largest file `file` edits (edits hold the file in memory; transfers stream).
const EDIT_CAP: u64 = 64 * 1024 * 1024;
/// Default cap of a `read` reply.
const READ_CAP: u64 = 1024 * 1024;

/// Runs one file request.
pub async fn run(broker: &Arc<Core>, peer: &Peer, req: FileRequest) -> Result<Response, Fail> {
    let path = match &req.action {
        FileAction::Read { path, .. }
        | FileAction::Write { path, .. }
        | FileAction::Replace { path, .. }
        | FileAction::EditLine { path, .. } => path.clone(),
    };
    check_remote_path(&path)?;
    let r = resolve(broker, &req.target, req.key.as_deref())?;
    let (session, _) = session_for(broker, peer, &r, "file", Reuse::Shared).await?;
    let conn = session.resolved.endpoint.conn_name.clone();
    let sftp = Sftp::open(&session).await?;
    let reply = match req.action {
        FileAction::Read {
            from_line,
            to_line,
            max_bytes,
            ..
        } => {
            let text = read_text(&sftp, &path).await?;
            let (content, total, from, to) = edit::line_range(&text, from_line, to_line);
            let cap = max_bytes.unwrap_or(READ_CAP).min(8 * 1024 * 1024);
            if content.len() as u64 > cap {
                return Err(Fail::new(
                    ErrorCode::TooLarge,
                    format!(
                        "lines {from}-{to} of {path} are {} bytes, more than the {cap}-byte cap: read a smaller range (fromLine/toLine; the file has {total} lines) or raise maxBytes",
                        content.len()
                    ),
                ));
            }
            Response::FileText(FileText {
                path,
                size: text.len() as u64,
                content,
                total_lines: total,
                from_line: from,
                to_line: to,
            })
        }
        FileAction::Write {
            content,
            backup,
            mode,
            ..
        } => {
            let change = write_atomic(&sftp, &path, content.as_bytes(), backup, mode, 1).await?;
            broker.audit(peer, "file_write", None, conn.as_deref(), describe(&change))?;
            Response::FileChange(change)
        }
        FileAction::Replace {
            old,
            new,
            expected_count,
            backup,
            ..
        } => {
            let text = read_text(&sftp, &path).await?;
            let out = edit::replace(&text, &old, &new, expected_count).map_err(|m| {
                Fail::new(
                    ErrorCode::Mismatch,
                    format!("{path} on {}: {m}", sftp.label),
                )
            })?;
            let change =
                write_atomic(&sftp, &path, out.as_bytes(), backup, None, expected_count).await?;
            broker.audit(
                peer,
                "file_replace",
                None,
                conn.as_deref(),
                describe(&change),
            )?;
            Response::FileChange(change)
        }
        FileAction::EditLine {
            edit: how,
            line,
            pattern,
            content,
            expected_count,
            backup,
            ..
        } => {
            let text = read_text(&sftp, &path).await?;
            let (out, n) = edit::edit_line(
                &text,
                how,
                line,
                pattern.as_deref(),
                content.as_deref(),
                expected_count,
            )
            .map_err(|m| {
                Fail::new(
                    ErrorCode::Mismatch,
                    format!("{path} on {}: {m}", sftp.label),
                )
            })?;
            let change = write_atomic(&sftp, &path, out.as_bytes(), backup, None, n).await?;
            broker.audit(peer, "file_edit", None, conn.as_deref(), describe(&change))?;
            Response::FileChange(change)
        }
    };
    session.touch();
    Ok(reply)
}

fn describe(c: &FileChange) -> String {
    format!(
        "{} ({} bytes{}{})",
        c.path,
        c.size,
        if c.created { ", created" } else { "" },
        c.backup
            .as_ref()
            .map(|b| format!(", backup {b}"))
            .unwrap_or_default()
    )
}

async fn read_text(sftp: &Sftp, path: &str) -> Result<String, Fail> {
    let bytes = sftp.read_all(path, EDIT_CAP).await?;
    String::from_utf8(bytes).map_err(|_| {
        Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "{path} on {} is not UTF-8 text: transfer it with ssh_sftp (sshkeep cp) instead",
                sftp.label
            ),
        )
    })
}

/// Replaces `path` with `data` atomically. A symlink is followed (its target is written, the
/// link stays).
pub async fn write_atomic(
    sftp: &Sftp,
    path: &str,
    data: &[u8],
    backup: bool,
    mode: Option<u32>,
    changed: u64,
) -> Result<FileChange, Fail> {
    let mut target = path.to_string();
    let mut existing = sftp.lstat_opt(path).await?;
    if let Some(a) = &existing
        && is_link(a)
    {
        target = sftp
            .raw
            .realpath(path)
            .await
            .ok()
            .and_then(|n| n.files.into_iter().next())
            .map(|f| f.filename)
            .ok_or_else(|| {
                Fail::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "{path} on {} is a symlink that cannot be resolved",
                        sftp.label
                    ),
                )
            })?;
        existing = sftp.lstat_opt(&target).await?;
    }
    if let Some(a) = &existing
        && is_dir(a)
    {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("{target} on {} is a directory", sftp.label),
        ));
    }
    let keep_mode = existing
        .as_ref()
        .and_then(|a| a.permissions)
        .map(|m| m & 0o7777);
    let new_mode = keep_mode.or(mode).unwrap_or(0o644);
    let owner = existing.as_ref().and_then(|a| a.uid.zip(a.gid));
    let dir = parent(&target);
    let temp = super::client::join(dir, &temp_file_name(base_name(&target)));
    let handle = sftp.create_new(&temp, new_mode).await?;
    let written = sftp.write_handle(&handle, &temp, data).await;
    let closed = sftp.close(handle, &temp).await;
    if let Err(f) = written.and(closed) {
        let _ = sftp.raw.remove(temp.as_str()).await;
        return Err(f);
    }
    // The server's umask applied at create; owner only where the server lets us.
    if sftp.set_attrs(&temp, Some(new_mode), owner).await.is_err() {
        let _ = sftp.set_attrs(&temp, Some(new_mode), None).await;
    }
    let backup_path = match (&existing, backup) {
        (Some(_), true) => match make_backup(sftp, &target).await {
            Ok(b) => Some(b),
            Err(f) => {
                let _ = sftp.raw.remove(temp.as_str()).await;
                return Err(f);
            }
        },
        _ => None,
    };
    if let Err(f) = sftp.rename(&temp, &target).await {
        let _ = sftp.raw.remove(temp.as_str()).await;
        return Err(f);
    }
    Ok(FileChange {
        path: target,
        size: data.len() as u64,
        changed,
        backup: backup_path,
        created: existing.is_none(),
    })
}

/// Keeps the current content of `path` under `path.sshkeep-bak-<UTC time>`.
async fn make_backup(sftp: &Sftp, path: &str) -> Result<String, Fail> {
    let stamp = crate::db::name_stamp();
    let mut name = format!("{path}.sshkeep-bak-{stamp}");
    let mut n = 1;
    while sftp.lstat_opt(&name).await?.is_some() {
        n += 1;
        name = format!("{path}.sshkeep-bak-{stamp}-{n}");
    }
    if sftp.raw.hardlink(path, name.as_str()).await.is_ok() {
        return Ok(name);
    }
    let bytes = sftp.read_all(path, EDIT_CAP).await?;
    let mode = sftp
        .stat(path)
        .await?
        .permissions
        .map(|m| m & 0o7777)
        .unwrap_or(0o600);
    let handle = sftp.create_new(&name, mode).await?;
    let written = sftp.write_handle(&handle, &name, &bytes).await;
    sftp.close(handle, &name).await?;
    written?;
    Ok(name)
}
