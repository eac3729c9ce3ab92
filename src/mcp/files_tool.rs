//! `ssh_sftp` and `ssh_file`.

use rmcp::model::CallToolResult;
use serde_json::json;

use super::Adapter;
use super::args::{FileArgs, FileOp, SftpArgs, SftpOp};
use super::progress::{OnCancel, Tick, Watch, Watched, bytes, call_watched};
use super::reply::{answer, bad_arg, ok};
use crate::client::{Done, Entries};
use crate::protocol::{
    FileAction, FileChange, FileRequest, FileText, LineEdit, RemoteEntry, Request, SftpAction,
    SftpRequest, TransferReport,
};

pub async fn sftp(a: &Adapter, x: SftpArgs, w: &mut Watch) -> CallToolResult {
    let remote = x.remote_path.clone().or(x.path.clone());
    let need_remote = || {
        remote.clone().ok_or_else(|| {
            bad_arg(format!("op={:?} needs remotePath (or path)", x.op).to_lowercase())
        })
    };
    let local = match (&x.op, &x.local_path) {
        (SftpOp::Upload | SftpOp::Download, Some(p)) => match a.local_path(p) {
            Ok(p) => Some(p),
            Err(e) => return bad_arg(e),
        },
        (SftpOp::Upload | SftpOp::Download, None) => {
            return bad_arg("upload and download need localPath");
        }
        _ => None,
    };
    let recursive = x.recursive.unwrap_or(false);
    let verify = x.verify.unwrap_or(false);
    let action = match x.op {
        SftpOp::Upload => match need_remote() {
            Ok(remote) => SftpAction::Upload {
                local: local.unwrap_or_default(),
                remote,
                recursive,
                verify,
            },
            Err(e) => return e,
        },
        SftpOp::Download => match need_remote() {
            Ok(remote) => SftpAction::Download {
                remote,
                local: local.unwrap_or_default(),
                recursive,
                verify,
            },
            Err(e) => return e,
        },
        SftpOp::List => SftpAction::List {
            path: remote.unwrap_or_else(|| ".".into()),
        },
        SftpOp::Stat => match need_remote() {
            Ok(path) => SftpAction::Stat { path },
            Err(e) => return e,
        },
        SftpOp::Mkdir => match need_remote() {
            Ok(path) => SftpAction::Mkdir {
                path,
                parents: true,
            },
            Err(e) => return e,
        },
        SftpOp::Remove => match need_remote() {
            Ok(path) => SftpAction::Remove { path, recursive },
            Err(e) => return e,
        },
        SftpOp::Rename => match (need_remote(), x.new_path.clone()) {
            (Ok(from), Some(to)) => SftpAction::Rename { from, to },
            (Err(e), _) => return e,
            (_, None) => return bad_arg("op=rename needs newPath"),
        },
        SftpOp::Chmod => {
            let mode = x
                .mode
                .as_deref()
                .and_then(|m| u32::from_str_radix(m, 8).ok())
                .filter(|m| *m <= 0o7777);
            match (need_remote(), mode) {
                (Ok(path), Some(mode)) => SftpAction::Chmod { path, mode },
                (Err(e), _) => return e,
                (_, None) => return bad_arg("op=chmod needs mode as octal text, e.g. \"640\""),
            }
        }
    };
    let kind = match &action {
        SftpAction::Upload { .. } | SftpAction::Download { .. } => Sftp::Transfer,
        SftpAction::List { .. } => Sftp::Entries,
        SftpAction::Stat { .. } => Sftp::Entry,
        _ => Sftp::Done,
    };
    let req = Request::Sftp(SftpRequest {
        target: x.connection_id,
        key: None,
        action,
        local_roots: Some(a.roots()),
        // Always for a transfer: the same frames carry the stop when the call is cancelled.
        progress: matches!(kind, Sftp::Transfer),
    });
    match kind {
        Sftp::Transfer => answer(transfer(a, &req, w).await, |t| {
            ok(
                format!(
                    "{} file(s), {} dir(s), {} bytes in {} ms{}{}",
                    t.files,
                    t.dirs,
                    t.bytes,
                    t.elapsed_ms,
                    match t.verified {
                        Some(true) => "; verified (size and SHA-256 match)",
                        Some(false) => "; VERIFICATION FAILED: the copies differ",
                        None => "",
                    },
                    if t.skipped.is_empty() {
                        String::new()
                    } else {
                        format!("; skipped {}", t.skipped.len())
                    }
                ),
                json!(t),
            )
        }),
        Sftp::Entries => answer(a.call::<Entries>(req).await, |Entries { path, entries }| {
            ok(
                format!("{} entries in {path}", entries.len()),
                json!({ "path": path, "entries": entries }),
            )
        }),
        Sftp::Entry => answer(a.call::<RemoteEntry>(req).await, |e| {
            ok(
                format!(
                    "{}: {} of {} bytes, mode {:o}",
                    e.name, e.kind, e.size, e.mode
                ),
                json!(e),
            )
        }),
        Sftp::Done => answer(a.call::<Done>(req).await, |Done { message }| {
            ok(message.clone(), json!({ "message": message }))
        }),
    }
}

/// A transfer, reporting bytes as they go and stopped in the broker when the call is
/// cancelled (the reply then is the broker's `cancelled` error).
async fn transfer(a: &Adapter, req: &Request, w: &mut Watch) -> anyhow::Result<TransferReport> {
    let r = call_watched(a, req, w, OnCancel::Stop, |tick| match tick {
        Tick::Frame(done, total) => Some((
            done as f64,
            (total > 0).then_some(total as f64),
            format!("{} of {}", bytes(done), bytes(total)),
        )),
        Tick::Waited(_) => None,
    })
    .await;
    match r {
        Watched::Reply(r) => r,
        // A transfer is never abandoned: the broker is asked to stop and answers.
        Watched::Abandoned => Err(anyhow::anyhow!("the transfer was cancelled")),
    }
}

/// Which reply an SFTP operation gets.
enum Sftp {
    Transfer,
    Entries,
    Entry,
    Done,
}

fn parse_edit(s: Option<&str>) -> Result<LineEdit, CallToolResult> {
    match s {
        Some("insert_before") => Ok(LineEdit::InsertBefore),
        Some("insert_after") => Ok(LineEdit::InsertAfter),
        Some("replace") => Ok(LineEdit::Replace),
        Some("delete") => Ok(LineEdit::Delete),
        other => Err(bad_arg(format!(
            "op=edit_line needs edit = insert_before, insert_after, replace or delete (got {other:?})"
        ))),
    }
}

pub async fn file(a: &Adapter, x: FileArgs) -> CallToolResult {
    let backup = x.backup.unwrap_or(false);
    let expected_count = x.expected_count.unwrap_or(1);
    let action = match x.op {
        FileOp::Read => FileAction::Read {
            path: x.path,
            from_line: x.from_line,
            to_line: x.to_line,
            max_bytes: x.max_bytes,
        },
        FileOp::Write => match x.content {
            Some(content) => FileAction::Write {
                path: x.path,
                content,
                backup,
                mode: None,
            },
            None => return bad_arg("op=write needs content"),
        },
        FileOp::Replace => match (x.old, x.new) {
            (Some(old), Some(new)) => FileAction::Replace {
                path: x.path,
                old,
                new,
                expected_count,
                backup,
            },
            _ => return bad_arg("op=replace needs old and new"),
        },
        FileOp::EditLine => {
            let edit = match parse_edit(x.edit.as_deref()) {
                Ok(e) => e,
                Err(e) => return e,
            };
            if x.line.is_some() == x.pattern.is_some() {
                return bad_arg("op=edit_line needs exactly one of line and pattern");
            }
            FileAction::EditLine {
                path: x.path,
                edit,
                line: x.line,
                pattern: x.pattern,
                content: x.content,
                expected_count,
                backup,
            }
        }
    };
    let read = matches!(action, FileAction::Read { .. });
    let req = Request::File(FileRequest {
        target: x.connection_id,
        key: None,
        action,
    });
    if read {
        return answer(a.call::<FileText>(req).await, |t| {
            ok(
                format!(
                    "{} lines {}-{} of {} ({} bytes in all):\n{}",
                    t.path, t.from_line, t.to_line, t.total_lines, t.size, t.content
                ),
                json!(t),
            )
        });
    }
    answer(a.call::<FileChange>(req).await, |c| {
        ok(
            format!(
                "{} {} ({} bytes, {} change(s)){}",
                if c.created { "created" } else { "updated" },
                c.path,
                c.size,
                c.changed,
                c.backup
                    .as_ref()
                    .map(|b| format!("; previous content kept in {b}"))
                    .unwrap_or_default()
            ),
            json!(c),
        )
    })
}
