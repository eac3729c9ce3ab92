//! `sshkeep mcp`: the MCP adapter on stdio (the default) or over Streamable HTTP (`--http`), and
//! `sshkeep mcp token`, the bearer tokens HTTP clients must carry. Making and revoking a token is
//! the user's, present at a terminal (the vault passphrase), like changing a profile.

use std::net::SocketAddr;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::approval_cmd::with_presence;
use super::{Ctx, output};
use crate::client::{Client, Done, McpTokenCreated};
use crate::protocol::{McpTokenInfo, Request};

#[derive(Args, Debug)]
pub struct McpArgs {
    #[command(subcommand)]
    action: Option<McpCmd>,
    /// List only the search tool and the core tools (or set SSHKEEP_MCP_MINIMAL=1).
    #[arg(long, env = "SSHKEEP_MCP_MINIMAL", value_parser = clap::builder::FalseyValueParser::new())]
    minimal: bool,
    /// A local directory ssh_sftp may read and write (repeatable; default: the working
    /// directory, unless that is `/` or the home directory or above it: then none). sshkeep's
    /// state, its passphrase file and ~/.ssh are never open to transfers. Also
    /// SSHKEEP_MCP_ROOTS, colon-separated.
    #[arg(long = "root", env = "SSHKEEP_MCP_ROOTS", value_delimiter = ':')]
    roots: Vec<std::path::PathBuf>,
    /// Serve MCP's Streamable HTTP transport at ADDRESS:PORT (path /mcp) instead of stdio. Every
    /// request needs `Authorization: Bearer TOKEN` (see `sshkeep mcp token`) and works under the
    /// token's profile. Port 0 picks a free port; the URL is printed on stdout.
    #[arg(long, value_name = "ADDRESS:PORT")]
    http: Option<SocketAddr>,
    /// Let --http listen on an address other than loopback (127.0.0.1, ::1).
    #[arg(long, requires = "http")]
    allow_public: bool,
}

#[derive(Subcommand, Debug)]
enum McpCmd {
    /// Bearer tokens for `sshkeep mcp --http`.
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(Subcommand, Debug)]
enum TokenCmd {
    /// A new token whose HTTP sessions work under the profile given with `--profile` (you, at
    /// your terminal, with the vault passphrase). Its text is printed once: sshkeep keeps only
    /// its hash.
    Create { name: String },
    /// Every token: name, profile, when made, when last used.
    List,
    /// Revoke a token: requests carrying it are refused from then on (you, in person).
    Revoke { name: String },
}

/// `profile` is the global `--profile`: the adapter's (stdio), or the new token's (`token create`).
pub async fn run(ctx: &Ctx, args: McpArgs, profile: Option<String>) -> Result<u8> {
    match args.action {
        Some(McpCmd::Token(cmd)) => token(ctx, cmd, profile).await,
        None => match args.http {
            Some(addr) => {
                if let Some(p) = profile {
                    tracing::warn!(
                        "--profile {p} does not apply to --http: each request works under its token's profile"
                    );
                }
                crate::mcp::serve_http(
                    ctx.paths.clone(),
                    args.minimal,
                    args.roots,
                    addr,
                    args.allow_public,
                )
                .await
                .map(|_| 0)
            }
            None => {
                // An agent's adapter works under `agent` unless told otherwise.
                let profile = profile.unwrap_or_else(|| "agent".to_string());
                crate::mcp::serve(ctx.paths.clone(), args.minimal, args.roots, Some(profile))
                    .await
                    .map(|_| 0)
            }
        },
    }
}

async fn token(ctx: &Ctx, cmd: TokenCmd, profile: Option<String>) -> Result<u8> {
    match cmd {
        TokenCmd::Create { name } => {
            let Some(profile) = profile else {
                bail!(
                    "name the profile the token's sessions work under: `sshkeep mcp token create {name} --profile P` (see `sshkeep profile list`)"
                );
            };
            // `--profile` names the token's profile here; the request itself is the user's own.
            let mut c = Client::connect(&ctx.paths, None).await?;
            let made: McpTokenCreated = with_presence(&mut c, |presence| Request::McpTokenCreate {
                name: name.clone(),
                profile: profile.clone(),
                presence,
            })
            .await?;
            if ctx.json {
                output::json(&serde_json::json!({
                    "name": made.info.name,
                    "profile": made.info.profile,
                    "created": made.info.created,
                    "token": made.token.expose(),
                }))?;
            } else {
                println!(
                    "token '{}' for profile '{}' (shown this once; sshkeep keeps only its hash):\n{}\nHTTP clients send it as `Authorization: Bearer TOKEN`.",
                    made.info.name,
                    made.info.profile,
                    made.token.expose()
                );
            }
        }
        TokenCmd::List => {
            let all: Vec<McpTokenInfo> = ctx.client().await?.call(&Request::McpTokenList).await?;
            if ctx.json {
                output::json(&all)?;
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.profile.clone(),
                        output::time(t.created),
                        t.last_used
                            .map(output::time)
                            .unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect();
            output::table(&["NAME", "PROFILE", "CREATED", "LAST USED"], &rows);
        }
        TokenCmd::Revoke { name } => {
            let mut c = ctx.client().await?;
            let done: Done = with_presence(&mut c, |presence| Request::McpTokenRevoke {
                name: name.clone(),
                presence,
            })
            .await?;
            output::done(ctx.json, done)?;
        }
    }
    Ok(0)
}
