//! `sshkeep approvals`, `approve` and `deny`: the user, present at a terminal, decides what a
//! client working under a profile asked to run. The vault passphrase is typed at the terminal
//! each time (never read from SSHKEEP_PASSPHRASE_FILE, which a process of the user could read);
//! keyring vaults confirm on the desktop instead.

use anyhow::Result;
use clap::Args;

use super::{Ctx, output, prompt};
use crate::client::{BrokerError, Client};
use crate::protocol::{ApprovalInfo, ErrorCode, Presence, Request};

#[derive(Args, Debug)]
pub struct ApprovalsArgs {
    /// Recent requests of every state, not only those waiting.
    #[arg(long)]
    all: bool,
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The request's id (the command id or bulk run id the client was given).
    id: String,
    /// Also let the same command run on the same target under the same profile, without
    /// asking, for this many minutes.
    #[arg(long, value_name = "N")]
    for_minutes: Option<u32>,
}

#[derive(Args, Debug)]
pub struct DenyArgs {
    id: String,
    /// Why, for the client and the audit log.
    #[arg(long)]
    reason: Option<String>,
}

/// `approvals`.
pub async fn list(ctx: &Ctx, a: ApprovalsArgs) -> Result<u8> {
    let rows: Vec<ApprovalInfo> = ctx
        .client()
        .await?
        .call(&Request::Approvals { all: a.all })
        .await?;
    if ctx.json {
        output::json(&rows)?;
        return Ok(0);
    }
    if rows.is_empty() {
        println!("nothing waits for approval");
        return Ok(0);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.state.to_string(),
                r.profile.clone(),
                r.target.clone(),
                r.class.clone(),
                r.command.replace('\n', "; "),
                output::time(r.expires),
            ]
        })
        .collect();
    output::table(
        &[
            "ID", "STATE", "PROFILE", "TARGET", "CLASS", "COMMAND", "EXPIRES",
        ],
        &table,
    );
    for r in rows.iter().filter(|r| r.state.as_str() == "pending") {
        println!("\n{}: {}", r.id, r.reason);
    }
    Ok(0)
}

/// `approve`.
pub async fn approve(ctx: &Ctx, a: ApproveArgs) -> Result<u8> {
    decide(ctx, a.id, true, a.for_minutes, None).await
}

/// `deny`.
pub async fn deny(ctx: &Ctx, a: DenyArgs) -> Result<u8> {
    decide(ctx, a.id, false, None, a.reason).await
}

async fn decide(
    ctx: &Ctx,
    id: String,
    approve: bool,
    for_minutes: Option<u32>,
    reason: Option<String>,
) -> Result<u8> {
    let mut c = ctx.client().await?;
    let request = |presence| Request::ApprovalDecide {
        id: id.clone(),
        approve,
        for_minutes,
        reason: reason.clone(),
        presence,
    };
    let info: ApprovalInfo = with_presence(&mut c, request).await?;
    if ctx.json {
        output::json(&info)?;
        return Ok(0);
    }
    let verb = if approve { "approved" } else { "denied" };
    println!(
        "{verb}: `{}` on {} (profile {})",
        info.command.replace('\n', "; "),
        info.target,
        info.profile
    );
    if approve {
        println!("follow it with `sshkeep status {}`", info.id);
    }
    Ok(0)
}

/// Sends an owner request; when the broker wants the vault passphrase, asks for it on the
/// terminal and sends it again.
pub async fn with_presence<R: crate::client::FromReply>(
    c: &mut Client,
    request: impl Fn(Presence) -> Request,
) -> Result<R> {
    match c.call::<R>(&request(Presence::default())).await {
        Err(e)
            if e.downcast_ref::<BrokerError>()
                .is_some_and(|b| b.code == ErrorCode::PassphraseRequired) =>
        {
            let pass = prompt::ask(
                "Vault passphrase (to prove you are here): ",
                "run this yourself, in your own terminal",
            )?;
            c.call::<R>(&request(Presence {
                passphrase: Some(pass),
            }))
            .await
        }
        other => other,
    }
}
