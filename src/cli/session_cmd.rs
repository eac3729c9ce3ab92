//! `sshkeep session open|list|close`.

use anyhow::{Result, bail};
use clap::Subcommand;

use super::{Ctx, output};
use crate::protocol::{Request, Response, SessionInfo};

#[derive(Subcommand, Debug)]
pub enum SessionCmd {
    /// Open a persistent session (prints its id).
    Open {
        /// A saved connection or user@host[:port].
        target: String,
        #[arg(long)]
        key: Option<String>,
    },
    /// List sessions.
    List,
    /// Close a session.
    Close { session_id: String },
}

pub async fn run(ctx: &Ctx, cmd: SessionCmd) -> Result<u8> {
    let mut c = ctx.client().await?;
    match cmd {
        SessionCmd::Open { target, key } => {
            let Response::Session(s) = c.request(&Request::SessionOpen { target, key }).await?
            else {
                bail!("unexpected reply to session open")
            };
            if ctx.json {
                output::json(&s)?;
            } else {
                println!("{}", s.session_id);
            }
        }
        SessionCmd::List => {
            let Response::Sessions { sessions } = c.request(&Request::SessionList).await? else {
                bail!("unexpected reply to session list")
            };
            if ctx.json {
                output::json(&sessions)?;
            } else {
                table(&sessions);
            }
        }
        SessionCmd::Close { session_id } => {
            let r = c.request(&Request::SessionClose { session_id }).await?;
            if let Response::Ok { message } = r {
                println!("{message}");
            }
        }
    }
    Ok(0)
}

fn table(sessions: &[SessionInfo]) {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.session_id.clone(),
                s.target.clone(),
                s.state.clone(),
                output::time(s.opened),
                output::time(s.last_used),
                format!("{}/{}", s.channels_in_use, s.channel_limit),
                format!("{} (+{} queued)", s.commands_running, s.commands_queued),
                s.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "SESSION",
            "TARGET",
            "STATE",
            "OPENED",
            "LAST USED",
            "CHANNELS",
            "COMMANDS",
            "REASON",
        ],
        &rows,
    );
}
