//! `sshkeep cp` (upload or download, files or trees, with a progress bar) and `sshkeep sftp`
//! (list, stat, mkdir, rm, mv, chmod on a server).

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::{Ctx, output};
use crate::client::{Done, Entries};
use crate::protocol::{RemoteEntry, Request, SftpAction, SftpRequest, TransferReport};

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Source: a local path, or TARGET:PATH (a saved connection or user@host, then the remote path).
    source: String,
    /// Destination, in the same forms (exactly one side is remote).
    dest: String,
    /// Copy directories and everything in them.
    #[arg(short, long)]
    recursive: bool,
    /// Compare size and SHA-256 of every file on both ends afterwards.
    #[arg(long)]
    verify: bool,
    /// Log in with this key instead of the linked one.
    #[arg(long)]
    key: Option<String>,
}

/// `TARGET:PATH` (scp's form): a colon before any slash.
fn remote_spec(s: &str) -> Option<(String, String)> {
    let (t, p) = s.split_once(':')?;
    if t.is_empty() || t.contains('/') {
        return None;
    }
    Some((
        t.to_string(),
        if p.is_empty() {
            ".".into()
        } else {
            p.to_string()
        },
    ))
}

fn absolute(p: &str) -> Result<String> {
    Ok(std::path::absolute(Path::new(p))
        .with_context(|| format!("cannot resolve the local path {p}"))?
        .display()
        .to_string())
}

pub async fn cp(ctx: &Ctx, a: CpArgs) -> Result<u8> {
    let (target, action) = match (remote_spec(&a.source), remote_spec(&a.dest)) {
        (Some(_), Some(_)) => bail!(
            "both sides are remote: copy to this machine first, or run cp on one server with `sshkeep exec`"
        ),
        (None, None) => {
            bail!("neither side is remote: write one as TARGET:PATH (e.g. web1:/srv/app)")
        }
        (Some((t, remote)), None) => (
            t,
            SftpAction::Download {
                remote,
                local: absolute(&a.dest)?,
                recursive: a.recursive,
                verify: a.verify,
            },
        ),
        (None, Some((t, remote))) => (
            t,
            SftpAction::Upload {
                local: absolute(&a.source)?,
                remote,
                recursive: a.recursive,
                verify: a.verify,
            },
        ),
    };
    let bar = std::io::stderr().is_terminal() && !ctx.json;
    let mut c = ctx.client().await?;
    let req = Request::Sftp(SftpRequest {
        target,
        key: a.key,
        action,
        local_roots: None,
        progress: bar,
    });
    let t: TransferReport = match c.call_with_progress(&req, draw).await {
        Ok(t) => t,
        Err(e) => {
            if bar {
                eprintln!();
            }
            return Err(e);
        }
    };
    if bar {
        draw(t.bytes, t.bytes);
        eprintln!();
    }
    report(ctx, &t)
}

fn draw(done: u64, total: u64) {
    let width = 30u64;
    let filled = (done.saturating_mul(width))
        .checked_div(total)
        .unwrap_or(width)
        .min(width) as usize;
    eprint!(
        "\r[{}{}] {} / {} ",
        "#".repeat(filled),
        " ".repeat(width as usize - filled),
        human(done),
        human(total)
    );
}

fn human(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

fn report(ctx: &Ctx, t: &TransferReport) -> Result<u8> {
    if ctx.json {
        output::json(t)?;
    } else {
        let secs = t.elapsed_ms.max(1) as f64 / 1000.0;
        println!(
            "{} file(s), {} dir(s), {} in {secs:.1} s ({}/s){}",
            t.files,
            t.dirs,
            human(t.bytes),
            human((t.bytes as f64 / secs) as u64),
            match t.verified {
                Some(true) => ", verified (size and SHA-256)",
                Some(false) => ", VERIFICATION FAILED",
                None => "",
            }
        );
        if let Some(h) = &t.sha256 {
            println!("sha256 {h}");
        }
        for s in &t.skipped {
            println!("skipped {s}");
        }
    }
    Ok(if t.verified == Some(false) { 1 } else { 0 })
}

#[derive(Subcommand, Debug)]
pub enum SftpCmd {
    /// List a remote directory.
    Ls { target: String, path: String },
    /// A remote path's type, size, mode and owner.
    Stat { target: String, path: String },
    /// Create a remote directory.
    Mkdir {
        target: String,
        path: String,
        /// Create missing parents too (an existing directory is fine).
        #[arg(short, long)]
        parents: bool,
    },
    /// Remove a remote file, or a directory.
    Rm {
        target: String,
        path: String,
        /// Remove a directory and everything in it.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Rename (move) a remote path; an existing destination file is replaced atomically.
    Mv {
        target: String,
        from: String,
        to: String,
    },
    /// Change permission bits, in octal (e.g. 640).
    Chmod {
        target: String,
        mode: String,
        path: String,
    },
}

pub async fn sftp(ctx: &Ctx, cmd: SftpCmd) -> Result<u8> {
    let (target, action) = match cmd {
        SftpCmd::Ls { target, path } => (target, SftpAction::List { path }),
        SftpCmd::Stat { target, path } => (target, SftpAction::Stat { path }),
        SftpCmd::Mkdir {
            target,
            path,
            parents,
        } => (target, SftpAction::Mkdir { path, parents }),
        SftpCmd::Rm {
            target,
            path,
            recursive,
        } => (target, SftpAction::Remove { path, recursive }),
        SftpCmd::Mv { target, from, to } => (target, SftpAction::Rename { from, to }),
        SftpCmd::Chmod { target, mode, path } => {
            let mode = u32::from_str_radix(&mode, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .with_context(|| format!("mode {mode:?} is not octal permission bits like 640"))?;
            (target, SftpAction::Chmod { path, mode })
        }
    };
    let mut c = ctx.client().await?;
    let req = |action| {
        Request::Sftp(SftpRequest {
            target,
            key: None,
            action,
            local_roots: None,
            progress: false,
        })
    };
    match action {
        action @ SftpAction::List { .. } => {
            let Entries { entries, .. } = c.call(&req(action)).await?;
            list(ctx, &entries)
        }
        action @ SftpAction::Stat { .. } => {
            let e: RemoteEntry = c.call(&req(action)).await?;
            stat(ctx, &e)
        }
        action => {
            let done: Done = c.call(&req(action)).await?;
            println!("{}", done.message);
            Ok(0)
        }
    }
}

fn list(ctx: &Ctx, entries: &[RemoteEntry]) -> Result<u8> {
    if ctx.json {
        output::json(&entries)?;
    } else {
        let rows = entries
            .iter()
            .map(|e| {
                vec![
                    format!("{:o}", e.mode),
                    e.kind.to_string(),
                    e.size.to_string(),
                    e.name.clone(),
                ]
            })
            .collect::<Vec<_>>();
        output::table(&["MODE", "TYPE", "SIZE", "NAME"], &rows);
    }
    Ok(0)
}

fn stat(ctx: &Ctx, e: &RemoteEntry) -> Result<u8> {
    if ctx.json {
        output::json(e)?;
    } else {
        println!(
            "{}: {} {} bytes mode {:o} uid {} gid {}",
            e.name,
            e.kind,
            e.size,
            e.mode,
            e.uid.map(|u| u.to_string()).unwrap_or("-".into()),
            e.gid.map(|g| g.to_string()).unwrap_or("-".into())
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_specs_are_told_from_local_paths() {
        assert_eq!(
            remote_spec("web1:/srv"),
            Some(("web1".into(), "/srv".into()))
        );
        assert_eq!(remote_spec("root@h:x"), Some(("root@h".into(), "x".into())));
        assert_eq!(remote_spec("./a:b"), None);
        assert_eq!(remote_spec("/tmp/a"), None);
        assert_eq!(remote_spec("web1:"), Some(("web1".into(), ".".into())));
    }
}
