//! `vault init`, `unlock`, `lock`, `status`.

use anyhow::{Result, bail};
use clap::Subcommand;
use sshkeep_vault::BackendChoice;

use super::{Ctx, output, prompt};
use crate::client::BrokerError;
use crate::protocol::{ErrorCode, Request, Response};

#[derive(Subcommand, Debug)]
pub enum VaultCmd {
    /// Create the vault: a new master identity kept in the OS keyring or wrapped by a passphrase.
    Init {
        /// auto: the OS keyring when reachable, else a passphrase (said out loud; never plaintext).
        #[arg(long, value_enum, default_value = "auto")]
        backend: Backend,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Backend {
    Auto,
    Keyring,
    Passphrase,
}

const NO_TTY: &str = "set SSHKEEP_PASSPHRASE_FILE to a file that holds it";

fn message(r: Response) -> String {
    match r {
        Response::Ok { message } => message,
        other => format!("{other:?}"),
    }
}

pub async fn run(ctx: &Ctx, cmd: VaultCmd) -> Result<u8> {
    let VaultCmd::Init { backend } = cmd;
    let choice = match backend {
        Backend::Auto => BackendChoice::Auto,
        Backend::Keyring => BackendChoice::Keyring,
        Backend::Passphrase => BackendChoice::Passphrase,
    };
    let mut c = ctx.client().await?;
    let mut passphrase = match choice {
        BackendChoice::Passphrase => Some(new_passphrase()?),
        _ => None,
    };
    loop {
        match c
            .request(&Request::VaultInit {
                backend: choice,
                passphrase: passphrase.take(),
            })
            .await
        {
            Ok(r) => {
                println!("{}", message(r));
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

fn new_passphrase() -> Result<sshkeep_vault::SecretString> {
    match prompt::from_env()? {
        Some(p) if p.is_empty() => bail!("SSHKEEP_PASSPHRASE_FILE holds an empty passphrase"),
        Some(p) => Ok(p),
        None => prompt::ask_new("vault passphrase", NO_TTY),
    }
}

pub async fn unlock(ctx: &Ctx) -> Result<u8> {
    let mut c = ctx.client().await?;
    // The keyring backend needs nothing from us; try that first.
    match c.request(&Request::Unlock { passphrase: None }).await {
        Ok(r) => {
            println!("{}", message(r));
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
    let r = c
        .request(&Request::Unlock {
            passphrase: Some(pass),
        })
        .await?;
    println!("{}", message(r));
    Ok(0)
}

pub async fn lock(ctx: &Ctx) -> Result<u8> {
    let r = ctx.client().await?.request(&Request::Lock).await?;
    println!("{}", message(r));
    Ok(0)
}

pub async fn status(ctx: &Ctx) -> Result<u8> {
    let Response::Status(s) = ctx.client().await?.request(&Request::Status).await? else {
        bail!("unexpected reply to status");
    };
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
