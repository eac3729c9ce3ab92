//! `vault init`, `unlock`, `lock`, `status`.

use anyhow::{Result, bail};
use clap::Subcommand;

use super::choices::Backend;
use super::{Ctx, output, prompt};
use crate::client::{BrokerError, Done};
use crate::protocol::{BackendChoice, ErrorCode, Request, SecretString, StatusInfo};

#[derive(Subcommand, Debug)]
pub enum VaultCmd {
    /// Create the vault: a new master identity kept in the OS keyring or wrapped by a passphrase.
    Init {
        /// auto: the OS keyring when reachable, else a passphrase (said out loud; never plaintext).
        #[arg(long, value_enum, default_value = "auto")]
        backend: Backend,
    },
}

const NO_TTY: &str = "set SSHKEEP_PASSPHRASE_FILE to a file that holds it";

pub async fn run(ctx: &Ctx, cmd: VaultCmd) -> Result<u8> {
    let VaultCmd::Init { backend } = cmd;
    let choice = BackendChoice::from(backend);
    let mut c = ctx.client().await?;
    let mut passphrase = match choice {
        BackendChoice::Passphrase => Some(new_passphrase()?),
        _ => None,
    };
    loop {
        match c
            .call::<Done>(&Request::VaultInit {
                backend: choice,
                passphrase: passphrase.take(),
            })
            .await
        {
            Ok(done) => {
                println!("{}", done.message);
                return Ok(0);
            }
            Err(e) => match e.downcast_ref::<BrokerError>() {
                Some(be)
                    if be.code == ErrorCode::PassphraseRequired
                        && choice == BackendChoice::Auto
                        && passphrase.is_none() =>
                {
                    eprintln!(
                        "The OS keyring cannot keep the vault key: the vault will be protected by a passphrase."
                    );
                    passphrase = Some(new_passphrase()?);
                }
                _ => return Err(e),
            },
        }
    }
}

fn new_passphrase() -> Result<SecretString> {
    match prompt::from_env()? {
        Some(p) if p.is_empty() => bail!("SSHKEEP_PASSPHRASE_FILE holds an empty passphrase"),
        Some(p) => Ok(p),
        None => prompt::ask_new("vault passphrase", NO_TTY),
    }
}

pub async fn unlock(ctx: &Ctx) -> Result<u8> {
    let mut c = ctx.client().await?;
    // The keyring backend needs nothing from us; try that first.
    match c.call::<Done>(&Request::Unlock { passphrase: None }).await {
        Ok(done) => {
            println!("{}", done.message);
            return Ok(0);
        }
        Err(e) => match e.downcast_ref::<BrokerError>() {
            Some(be) if be.code == ErrorCode::PassphraseRequired => {}
            _ => return Err(e),
        },
    }
    let pass = match prompt::from_env()? {
        Some(p) => p,
        None => prompt::ask("Vault passphrase: ", NO_TTY)?,
    };
    let done: Done = c
        .call(&Request::Unlock {
            passphrase: Some(pass),
        })
        .await?;
    println!("{}", done.message);
    Ok(0)
}

pub async fn lock(ctx: &Ctx) -> Result<u8> {
    let done: Done = ctx.client().await?.call(&Request::Lock).await?;
    println!("{}", done.message);
    Ok(0)
}

pub async fn status(ctx: &Ctx) -> Result<u8> {
    let s: StatusInfo = ctx.client().await?.call(&Request::Status).await?;
    if ctx.json {
        output::json(&s)?;
        return Ok(0);
    }
    println!(
        "broker     running, pid {}, version {}, up {}s",
        s.pid, s.broker_version, s.uptime_secs
    );
    let vault = match (&s.vault.backend, s.vault.unlocked) {
        (None, _) => "not created".to_string(),
        (Some(b), true) => format!("unlocked (backend: {b})"),
        (Some(b), false) => format!("locked (backend: {b})"),
    };
    println!("vault      {vault}");
    println!("sessions   {} open", s.sessions_open);
    println!("state      {}", s.state_dir);
    println!("socket     {}", s.socket);
    if let Some(h) = s.vault.hint {
        println!("\n{h}");
    }
    Ok(0)
}
