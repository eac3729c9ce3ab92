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
    /// The socket and the keys it offers (`sshkeep key agent NAME --offer` to add one).
    Status,
}

pub async fn run(ctx: &Ctx, cmd: AgentCmd) -> Result<u8> {
    let mut c = ctx.client().await?;
    let AgentStatus { socket, offered } = c.call(&Request::AgentStatus).await?;
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
        AgentCmd::Status if ctx.json => {
            output::json(&serde_json::json!({ "socket": socket, "offered": offered }))?
        }
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
        }
    }
    Ok(0)
}
