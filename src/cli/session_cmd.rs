//! `sshkeep session open|list|close`.

use anyhow::Result;
use clap::Subcommand;

use super::{Ctx, output};
use crate::client::Done;
use crate::protocol::{Request, SessionInfo};

#[derive(Subcommand, Debug)]
pub enum SessionCmd {
    /// Open a persistent session (prints its id).
    Open {
        /// A saved connection, user@host[:port], or a Host of ~/.ssh/config.
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
            open(ctx, &mut c, target, key).await?;
        }
        SessionCmd::List => {
            let sessions: Vec<SessionInfo> = c.call(&Request::SessionList).await?;
            if ctx.json {
                output::json(&sessions)?;
            } else {
                table(&sessions);
            }
        }
        SessionCmd::Close { session_id } => {
            let done: Done = c.call(&Request::SessionClose { session_id }).await?;
            println!("{}", done.message);
        }
    }
    Ok(0)
}

/// Opens a session; a server's login questions (a one-time code) are asked at this terminal
/// when a person is at it. Prints the session's id.
pub async fn open(
    ctx: &Ctx,
    c: &mut crate::client::Client,
    target: String,
    key: Option<String>,
) -> Result<()> {
    let person = super::prompt::person_here();
    let req = Request::SessionOpen {
        target,
        key,
        person,
    };
    // Questions come only for a request with a person: without one this is `call`.
    let s: SessionInfo = c
        .call_at_terminal(&req, super::prompt::login_answers)
        .await?;
    if ctx.json {
        output::json(&s)
    } else {
        println!("{}", s.session_id);
        Ok(())
    }
}

fn table(sessions: &[SessionInfo]) {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.session_id.clone(),
                s.target.clone(),
                s.state.to_string(),
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
