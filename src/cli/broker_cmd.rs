//! `sshkeep broker` and `sshkeep broker stop`.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::Ctx;
use crate::broker::{self, RunOptions};
use crate::client::Client;
use crate::protocol::Request;

#[derive(Args, Debug)]
pub struct BrokerArgs {
    #[command(subcommand)]
    pub action: Option<BrokerAction>,
    /// Print `ready` on stdout once the socket answers (used when a client starts the broker).
    #[arg(long, hide = true)]
    notify_ready: bool,
}

#[derive(Subcommand, Debug)]
pub enum BrokerAction {
    /// Stop the running broker (open sessions are closed).
    Stop,
}

pub async fn run(ctx: &Ctx, a: BrokerArgs) -> Result<u8> {
    match a.action {
        None => {
            broker::run(
                ctx.paths.clone(),
                RunOptions {
                    notify_ready: a.notify_ready,
                },
            )
            .await?;
            Ok(0)
        }
        Some(BrokerAction::Stop) => {
            let Some(mut c) = Client::connect_existing(&ctx.paths).await? else {
                println!("no broker is running");
                return Ok(0);
            };
            c.request(&Request::Shutdown).await?;
            // The broker closes every connection as it exits: wait for ours to close.
            let _ = c.recv().await;
            println!("broker stopped");
            Ok(0)
        }
    }
}
