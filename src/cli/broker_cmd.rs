//! `sshkeep broker` and `sshkeep broker stop`.
//!
//! This is the one place the command line reaches into the broker itself: the binary is both
//! client and broker, and `sshkeep broker` runs the broker in this process through its public
//! entry point, [`crate::broker::run`]. Every other command, `broker stop` included, is a client
//! that speaks the protocol over the socket.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::Ctx;
use crate::broker::{self, RunOptions};
use crate::client::{Client, Done};
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
    /// Stop the running broker (open sessions are closed; port forwards are kept and opened
    /// again by the next broker: `forward close` forgets one).
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
            let Some(mut c) = Client::connect_existing(&ctx.paths, ctx.profile.as_deref()).await?
            else {
                println!("no broker is running");
                return Ok(0);
            };
            let _: Done = c.call(&Request::Shutdown).await?;
            // The broker closes every connection as it exits: wait for ours to close.
            let _ = c.recv().await;
            println!("broker stopped");
            Ok(0)
        }
    }
}
