//! `sshkeep forward CONN -L [bind:]port:host:hostport | -D [bind:]port | -R [bind:]port:host:hostport`,
//! `forward list`, `forward close ID`: port forwards held by the broker (they outlive this
//! command and the broker: a restarted broker opens them again).

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::{Ctx, output};
use crate::forward_spec;
use crate::protocol::{ForwardInfo, ForwardKind, ForwardState, Request};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ForwardArgs {
    #[command(subcommand)]
    action: Option<ForwardAction>,
    /// A saved connection, user@host[:port], or a Host of ~/.ssh/config.
    target: Option<String>,
    /// Local forward, as `ssh -L`: [bind_address:]port:host:hostport.
    #[arg(short = 'L', value_name = "SPEC", conflicts_with_all = ["dynamic", "remote"])]
    local: Option<String>,
    /// SOCKS5 proxy, as `ssh -D`: [bind_address:]port.
    #[arg(short = 'D', value_name = "SPEC", conflicts_with = "remote")]
    dynamic: Option<String>,
    /// Remote forward, as `ssh -R`: the server listens on [bind_address:]port (its localhost by
    /// default; port 0 lets it pick) and connections go to host:hostport as reached from here.
    #[arg(short = 'R', value_name = "SPEC")]
    remote: Option<String>,
    /// Log in with this key instead of the linked one.
    #[arg(long)]
    key: Option<String>,
    /// Allow a bind address other machines can reach (0.0.0.0, a LAN address; for -R on the
    /// server, which its sshd must allow with GatewayPorts).
    #[arg(long)]
    allow_public: bool,
}

#[derive(Subcommand, Debug)]
enum ForwardAction {
    /// The forwards the broker holds.
    List,
    /// Stop a forward.
    Close { forward_id: String },
}

pub async fn run(ctx: &Ctx, a: ForwardArgs) -> Result<u8> {
    let mut c = ctx.client().await?;
    let spec = match (a.action, a.target) {
        (Some(ForwardAction::List), _) => {
            let forwards: Vec<ForwardInfo> = c.call(&Request::ForwardList).await?;
            return list(ctx, &forwards);
        }
        (Some(ForwardAction::Close { forward_id }), _) => {
            let f: ForwardInfo = c.call(&Request::ForwardClose { forward_id }).await?;
            return one(ctx, &f);
        }
        (None, None) => bail!("give a connection and -L, -D or -R, or `forward list`"),
        (None, Some(target)) => {
            let (kind, text) = match (a.local, a.dynamic, a.remote) {
                (Some(l), None, None) => (ForwardKind::Local, l),
                (None, Some(d), None) => (ForwardKind::Dynamic, d),
                (None, None, Some(r)) => (ForwardKind::Remote, r),
                _ => bail!("give one of {}", forward_spec::FORMS),
            };
            forward_spec::parse(kind, &text, target, a.key, a.allow_public)
                .map_err(anyhow::Error::msg)?
        }
    };
    let f: ForwardInfo = c.call(&Request::ForwardOpen(spec)).await?;
    one(ctx, &f)
}

fn one(ctx: &Ctx, f: &ForwardInfo) -> Result<u8> {
    if ctx.json {
        output::json(f)?;
    } else {
        println!("{} {}", f.forward_id, forward_spec::describe(f));
    }
    Ok(0)
}

fn list(ctx: &Ctx, forwards: &[ForwardInfo]) -> Result<u8> {
    if ctx.json {
        output::json(&forwards)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = forwards
        .iter()
        .map(|f| {
            vec![
                f.forward_id.clone(),
                forward_spec::describe(f),
                format!("{} now, {} in all", f.active, f.total),
                state(f),
            ]
        })
        .collect();
    output::table(&["FORWARD", "WHAT", "CONNECTIONS", "STATE"], &rows);
    Ok(0)
}

fn state(f: &ForwardInfo) -> String {
    let word = match f.state {
        ForwardState::Open => "open",
        ForwardState::Retrying => "retrying",
    };
    match &f.error {
        Some(e) => format!("{word}: {e}"),
        None => word.to_string(),
    }
}
