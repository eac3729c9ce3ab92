//! `sshkeep secret ...` (stored login passwords) and `sshkeep key cert ...` (OpenSSH user
//! certificates on vault keys).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::{Ctx, output, prompt};
use crate::client::Client;
use crate::protocol::{CertInfo, CertStatus, KeyInfo, Request, SecretInfo, SecretString};

#[derive(Subcommand, Debug)]
pub enum SecretCmd {
    /// Store a login password in the vault (asked on the terminal, or --password-stdin), to be
    /// sent only to the servers named with --host or linked with `conn save --password-secret`.
    Add {
        name: String,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        /// A server it may be sent to: host[:port] (repeatable).
        #[arg(long = "host", value_name = "HOST[:PORT]")]
        hosts: Vec<String>,
    },
    /// List stored passwords: names, servers, connections (never values).
    List,
    /// Remove a stored password (connections using it lose it).
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
pub enum CertCmd {
    /// Attach an OpenSSH user certificate (id-cert.pub) to a vault key.
    Add {
        name: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Take a key's certificate away.
    Remove { name: String },
    /// Sign a short-lived certificate for a vault key with a CA key in the vault, and attach it.
    Sign {
        /// The CA key (in the vault).
        ca: String,
        /// The key to certify.
        #[arg(long)]
        key: String,
        /// A user it may log in as (repeatable).
        #[arg(long = "principal", required = true)]
        principals: Vec<String>,
        /// How long it is valid (e.g. 1h, 8h, 7d).
        #[arg(long, default_value = "1h")]
        validity: humantime::Duration,
    },
}

/// Reads a password: one line of standard input, or asked twice on the terminal.
pub fn read_password(stdin: bool, what: &str) -> Result<SecretString> {
    if stdin {
        let mut buf = zeroize::Zeroizing::new(Vec::new());
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read the password from standard input")?;
        let mut text = zeroize::Zeroizing::new(
            String::from_utf8(buf.to_vec()).context("the password is not text")?,
        );
        while text.ends_with('\n') || text.ends_with('\r') {
            text.pop();
        }
        return Ok(SecretString::new(text.to_string()));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for the password on: pass --password-stdin");
    }
    let hint = "pass --password-stdin";
    let a = prompt::ask(&format!("Password for {what}: "), hint)?;
    let b = prompt::ask("Repeat it: ", hint)?;
    if a.expose() != b.expose() {
        bail!("the two passwords differ; nothing was stored");
    }
    Ok(a)
}

/// Stores `password` as `name` for `hosts`.
pub async fn store(
    c: &mut Client,
    name: &str,
    password: SecretString,
    hosts: Vec<String>,
) -> Result<SecretInfo> {
    c.call(&Request::SecretAdd {
        name: name.to_string(),
        password,
        hosts,
    })
    .await
}

pub async fn run(ctx: &Ctx, cmd: SecretCmd) -> Result<u8> {
    let mut c = ctx.client().await?;
    match cmd {
        SecretCmd::Add {
            name,
            password_stdin,
            hosts,
        } => {
            let pw = read_password(password_stdin, &format!("secret {name}"))?;
            let s = store(&mut c, &name, pw, hosts).await?;
            if ctx.json {
                output::json(&s)?;
            } else {
                println!(
                    "stored password '{}' (sent only to: {})",
                    s.name,
                    if s.hosts.is_empty() {
                        "servers of connections you save with --password-secret".to_string()
                    } else {
                        s.hosts.join(", ")
                    }
                );
            }
        }
        SecretCmd::List => {
            let list: Vec<SecretInfo> = c.call(&Request::SecretList).await?;
            if ctx.json {
                return output::json(&list).map(|()| 0);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.hosts.join(","),
                        s.connections.join(","),
                        output::time(s.created),
                    ]
                })
                .collect();
            output::table(&["NAME", "SERVERS", "CONNECTIONS", "CREATED"], &rows);
        }
        SecretCmd::Remove { name } => {
            output::done(ctx.json, c.call(&Request::SecretRemove { name }).await?)?
        }
    }
    Ok(0)
}

/// `key cert ...`: replies with the key, shown by the caller.
pub async fn cert(ctx: &Ctx, cmd: CertCmd) -> Result<KeyInfo> {
    let mut c = ctx.client().await?;
    let req = match cmd {
        CertCmd::Add { name, file } => {
            let certificate = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            Request::KeyCertAdd { name, certificate }
        }
        CertCmd::Remove { name } => Request::KeyCertRemove { name },
        CertCmd::Sign {
            ca,
            key,
            principals,
            validity,
        } => Request::KeyCertSign {
            ca,
            key,
            principals,
            validity_secs: validity.as_secs(),
        },
    };
    c.call(&req).await
}

/// Lines for `key show`: principals, validity, CA, and a warning when it is (nearly) expired.
pub fn show_cert(c: &CertInfo) {
    let principals = if c.principals.is_empty() {
        "any user".to_string()
    } else {
        c.principals.join(", ")
    };
    let until = if c.valid_before == u64::MAX {
        "forever".to_string()
    } else {
        output::time(c.valid_before.min(i64::MAX as u64) as i64)
    };
    println!("certificate  {} (serial {})", c.key_id, c.serial);
    println!("  principals {principals}");
    println!(
        "  valid      {} to {until}",
        output::time(c.valid_after.min(i64::MAX as u64) as i64)
    );
    println!("  CA         {}", c.ca_fingerprint);
    match c.status {
        CertStatus::Valid => {}
        CertStatus::Expiring => {
            eprintln!("warning: the certificate expires within 7 days ({until})")
        }
        CertStatus::Expired => {
            eprintln!("warning: the certificate EXPIRED at {until}; logins with it are refused")
        }
        CertStatus::NotYetValid => eprintln!("warning: the certificate is not valid yet"),
    }
}
