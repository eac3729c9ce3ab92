//! `sshkeep agent env|status`: the broker's ssh-agent socket.

use anyhow::{Result, bail};
use clap::Subcommand;

use super::{Ctx, output};
use crate::client::AgentStatus;
use crate::protocol::Request;

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Print `SSH_AUTH_SOCK=...; export SSH_AUTH_SOCK;` like `ssh-agent -s` (use with eval).
    Env,
    /// The socket, the keys it offers (`sshkeep key agent NAME --offer` to add one) and the keys
    /// `ssh-add` gave it (kept in memory only).
    Status,
}

pub async fn run(ctx: &Ctx, cmd: AgentCmd) -> Result<u8> {
    let mut c = ctx.client().await?;
    let AgentStatus {
        socket,
        offered,
        added,
    } = c.call(&Request::AgentStatus).await?;
    match cmd {
        AgentCmd::Env => {
            if socket.contains(['\'', '"', ';', ' ', '$', '`', '\\']) {
                bail!(
                    "the agent socket path {socket:?} has characters a shell would misread; set SSHKEEP_HOME to a plain path"
                );
            }
            println!("SSH_AUTH_SOCK={socket}; export SSH_AUTH_SOCK;");
            if offered.is_empty() {
                eprintln!("# no key is offered yet: `sshkeep key agent NAME --offer`");
            }
        }
        AgentCmd::Status if ctx.json => output::json(
            &serde_json::json!({ "socket": socket, "offered": offered, "added": added }),
        )?,
        AgentCmd::Status => {
            println!("socket   {socket}");
            println!(
                "offered  {}",
                if offered.is_empty() {
                    "-".to_string()
                } else {
                    offered.join(", ")
                }
            );
            for k in &added {
                let mut notes = vec!["added by ssh-add, memory only".to_string()];
                if let Some(t) = k.expires {
                    let left = t - crate::db::now();
                    notes.push(format!("expires in {}s", left.max(0)));
                }
                if k.confirm {
                    notes.push("confirm".into());
                }
                if !k.only_to.is_empty() {
                    notes.push(format!("only to {}", k.only_to.join(", ")));
                }
                println!(
                    "added    {} {} ({})",
                    k.name,
                    k.fingerprint,
                    notes.join("; ")
                );
            }
        }
    }
    Ok(0)
}
