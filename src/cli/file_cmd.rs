//! `sshkeep file read|write|replace|edit`: remote text edits over SFTP.

use std::io::Read;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::choices::LineEdit;
use super::{Ctx, output};
use crate::protocol::{FileAction, FileChange, FileRequest, FileText, Request};

#[derive(Subcommand, Debug)]
pub enum FileCmd {
    /// Print a remote text file, or a range of its lines.
    Read {
        target: String,
        path: String,
        #[arg(long)]
        from_line: Option<u64>,
        #[arg(long)]
        to_line: Option<u64>,
        /// Refuse to print more than this many bytes.
        #[arg(long)]
        max_bytes: Option<u64>,
    },
    /// Replace a remote file atomically with the content of a local file or of stdin.
    Write {
        target: String,
        path: String,
        /// Read the content from this local file (default: stdin).
        #[arg(long)]
        from: Option<String>,
        /// Keep the previous content as PATH.sshkeep-bak-TIME.
        #[arg(long)]
        backup: bool,
        /// Octal mode for a new file (an existing file keeps its own).
        #[arg(long)]
        mode: Option<String>,
    },
    /// Replace exact text; nothing changes unless it occurs exactly --count times.
    Replace {
        target: String,
        path: String,
        #[arg(long)]
        old: String,
        #[arg(long)]
        new: String,
        #[arg(long, default_value_t = 1)]
        count: u64,
        #[arg(long)]
        backup: bool,
    },
    /// Insert, replace or delete a line, by number or by a pattern.
    Edit {
        target: String,
        path: String,
        /// What to do.
        edit: LineEdit,
        /// The line number (1-based).
        #[arg(long, conflicts_with = "pattern")]
        line: Option<u64>,
        /// A regular expression; it must match exactly --count lines.
        #[arg(long)]
        pattern: Option<String>,
        /// The new line (insert and replace).
        #[arg(long)]
        content: Option<String>,
        #[arg(long, default_value_t = 1)]
        count: u64,
        #[arg(long)]
        backup: bool,
    },
}

pub async fn run(ctx: &Ctx, cmd: FileCmd) -> Result<u8> {
    let (target, action) = match cmd {
        FileCmd::Read {
            target,
            path,
            from_line,
            to_line,
            max_bytes,
        } => (
            target,
            FileAction::Read {
                path,
                from_line,
                to_line,
                max_bytes,
            },
        ),
        FileCmd::Write {
            target,
            path,
            from,
            backup,
            mode,
        } => {
            let mut bytes = Vec::new();
            match from {
                Some(f) => bytes = std::fs::read(&f).with_context(|| format!("cannot read {f}"))?,
                None => {
                    std::io::stdin()
                        .read_to_end(&mut bytes)
                        .context("cannot read stdin")?;
                }
            }
            let content = String::from_utf8(bytes)
                .context("the content is not UTF-8 text: copy binary files with `sshkeep cp`")?;
            let mode = match mode {
                Some(m) => Some(
                    u32::from_str_radix(&m, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .with_context(|| format!("mode {m:?} is not octal permission bits"))?,
                ),
                None => None,
            };
            (
                target,
                FileAction::Write {
                    path,
                    content,
                    backup,
                    mode,
                },
            )
        }
        FileCmd::Replace {
            target,
            path,
            old,
            new,
            count,
            backup,
        } => (
            target,
            FileAction::Replace {
                path,
                old,
                new,
                expected_count: count,
                backup,
            },
        ),
        FileCmd::Edit {
            target,
            path,
            edit,
            line,
            pattern,
            content,
            count,
            backup,
        } => {
            if line.is_none() && pattern.is_none() {
                bail!("give --line N or --pattern REGEX");
            }
            (
                target,
                FileAction::EditLine {
                    path,
                    edit: edit.into(),
                    line,
                    pattern,
                    content,
                    expected_count: count,
                    backup,
                },
            )
        }
    };
    let read = matches!(action, FileAction::Read { .. });
    let mut c = ctx.client().await?;
    let req = Request::File(FileRequest {
        target,
        key: None,
        action,
    });
    if read {
        let t: FileText = c.call(&req).await?;
        if ctx.json {
            output::json(&t)?;
        } else {
            print!("{}", t.content);
        }
        return Ok(0);
    }
    let ch: FileChange = c.call(&req).await?;
    if ctx.json {
        output::json(&ch)?;
    } else {
        println!(
            "{} {} ({} bytes, {} change(s)){}",
            if ch.created { "created" } else { "updated" },
            ch.path,
            ch.size,
            ch.changed,
            ch.backup
                .map(|b| format!("; previous content in {b}"))
                .unwrap_or_default()
        );
    }
    Ok(0)
}
