//! File transfer and remote file-system operations over SFTP (`sshkeep cp`, MCP `ssh_sftp`),
//! and text-file edits built on them (`sshkeep file`, MCP `ssh_file`).

pub mod client;
mod edit;
pub mod file_ops;
mod remote_hash;
mod roots;
mod transfer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::mpsc::UnboundedSender;

pub use file_ops::{run as file, write_atomic};

use self::client::{Sftp, check_remote_path, entry};
use self::roots::Roots;
use self::transfer::Progress;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::resolve;
use crate::broker::core::sessions::{Reuse, session_for};
use crate::broker::core::{Core, Peer};
use crate::protocol::{Response, SftpAction, SftpRequest};

/// What a transfer tells its client, and hears from it.
pub struct Feedback {
    /// (bytes done, bytes in all), after every chunk.
    pub progress: UnboundedSender<(u64, u64)>,
    /// Set by the client to stop the transfer at the next chunk.
    pub stop: Arc<AtomicBool>,
}

/// Runs one SFTP request; with `feedback`, a transfer reports its bytes and may be stopped.
pub async fn run(
    broker: &Arc<Core>,
    peer: &Peer,
    req: SftpRequest,
    feedback: Option<Feedback>,
) -> Result<Response, Fail> {
    let roots = Roots::new(req.local_roots, roots::protected(broker.paths()))?;
    for p in remote_paths(&req.action) {
        check_remote_path(p)?;
    }
    let r = resolve(broker, &req.target, req.key.as_deref())?;
    // The SFTP channel counts itself on the session (see [`Sftp::open`]).
    let (session, _) = session_for(broker, peer, &r, "sftp", Reuse::Shared).await?;
    let conn = session.resolved.endpoint.conn_name.clone();
    let conn = conn.as_deref();
    let sftp = Sftp::open(&session).await?;
    let mut progress = Progress::new(feedback);
    let reply = match req.action {
        SftpAction::Upload {
            local,
            remote,
            recursive,
            verify,
        } => {
            let r = transfer::upload(
                &sftp,
                &session,
                &roots,
                Path::new(&local),
                &remote,
                transfer::Opts { recursive, verify },
                &mut progress,
            )
            .await;
            broker.audit(
                peer,
                "sftp_upload",
                None,
                conn,
                match &r {
                    Ok(t) => format!("{local} -> {remote}: {} files, {} bytes", t.files, t.bytes),
                    Err(f) => format!("{local} -> {remote}: failed: {}", f.message),
                },
            )?;
            Response::Transfer(r?)
        }
        SftpAction::Download {
            remote,
            local,
            recursive,
            verify,
        } => {
            let r = transfer::download(
                &sftp,
                &session,
                &roots,
                &remote,
                Path::new(&local),
                transfer::Opts { recursive, verify },
                &mut progress,
            )
            .await;
            broker.audit(
                peer,
                "sftp_download",
                None,
                conn,
                match &r {
                    Ok(t) => format!("{remote} -> {local}: {} files, {} bytes", t.files, t.bytes),
                    Err(f) => format!("{remote} -> {local}: failed: {}", f.message),
                },
            )?;
            Response::Transfer(r?)
        }
        SftpAction::List { path } => Response::Entries {
            entries: sftp.list(&path).await?,
            path,
        },
        SftpAction::Stat { path } => {
            let a = sftp.stat(&path).await?;
            Response::Entry(entry(path, &a))
        }
        SftpAction::Mkdir { path, parents } => {
            sftp.mkdir(&path, parents).await?;
            broker.audit(peer, "sftp_mkdir", None, conn, path.clone())?;
            Response::Ok {
                message: format!("created {path} on {}", sftp.label),
            }
        }
        SftpAction::Remove { path, recursive } => {
            let n = sftp.remove(&path, recursive).await?;
            broker.audit(
                peer,
                "sftp_remove",
                None,
                conn,
                format!("{path} ({n} entries)"),
            )?;
            Response::Ok {
                message: format!("removed {path} on {} ({n} entries)", sftp.label),
            }
        }
        SftpAction::Rename { from, to } => {
            sftp.rename(&from, &to).await?;
            broker.audit(peer, "sftp_rename", None, conn, format!("{from} -> {to}"))?;
            Response::Ok {
                message: format!("renamed {from} to {to} on {}", sftp.label),
            }
        }
        SftpAction::Chmod { path, mode } => {
            sftp.set_attrs(&path, Some(mode), None).await?;
            broker.audit(peer, "sftp_chmod", None, conn, format!("{path} {mode:o}"))?;
            Response::Ok {
                message: format!("{path} on {} is now mode {:o}", sftp.label, mode & 0o7777),
            }
        }
    };
    session.touch();
    Ok(reply)
}

fn remote_paths(a: &SftpAction) -> Vec<&str> {
    match a {
        SftpAction::Upload { remote, .. } | SftpAction::Download { remote, .. } => vec![remote],
        SftpAction::List { path }
        | SftpAction::Stat { path }
        | SftpAction::Mkdir { path, .. }
        | SftpAction::Remove { path, .. }
        | SftpAction::Chmod { path, .. } => vec![path],
        SftpAction::Rename { from, to } => vec![from, to],
    }
}
