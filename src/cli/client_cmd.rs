//! `sshkeep client list|assign|remove`: client (customer) groups of connections.

use anyhow::Result;
use clap::Subcommand;

use super::{Ctx, output};
use crate::protocol::{ClientGroup, Request};

#[derive(Subcommand, Debug)]
pub enum ClientCmd {
    /// Client groups with their connections.
    List,
    /// Put connections in a client group.
    Assign {
        client: String,
        #[arg(required = true)]
        conns: Vec<String>,
    },
    /// Take connections out of their client group.
    Remove {
        #[arg(required = true)]
        conns: Vec<String>,
    },
}

pub async fn run(ctx: &Ctx, cmd: ClientCmd) -> Result<u8> {
    let req = match cmd {
        ClientCmd::List => Request::ClientList,
        ClientCmd::Assign { client, conns } => Request::ClientAssign { client, conns },
        ClientCmd::Remove { conns } => Request::ClientRemove { conns },
    };
    let clients: Vec<ClientGroup> = ctx.client().await?.call(&req).await?;
    if ctx.json {
        output::json(&clients)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = clients
        .iter()
        .map(|c| vec![c.name.clone(), c.connections.join(", ")])
        .collect();
    output::table(&["CLIENT", "CONNECTIONS"], &rows);
    Ok(0)
}
