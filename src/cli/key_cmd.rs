//! `sshkeep key ...`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use sshkeep_vault::SecretString;

use super::{Ctx, output, prompt};
use crate::client::BrokerError;
use crate::protocol::{ErrorCode, KeyInfo, KeyType, Request, Response};

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Import a private key (OpenSSH or PEM) into the vault.
    Add {
        name: String,
        /// The key file.
        #[arg(long, conflicts_with = "stdin", required_unless_present = "stdin")]
        file: Option<PathBuf>,
        /// Read the key from standard input.
        #[arg(long)]
        stdin: bool,
        /// A file holding the key file's passphrase (otherwise you are asked when needed).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Generate a new key in the vault.
    Generate {
        name: String,
        #[arg(long = "type", value_enum, default_value = "ed25519")]
        key_type: KeyType,
    },
    /// List keys.
    List,
    /// Show a key: type, fingerprint, comment, linked connections.
    Show { name: String },
    /// Print a key's public half as an authorized_keys line.
    Pub { name: String },
    /// Remove a key from the vault.
    Remove {
        name: String,
        /// Remove even if connections are linked to it (their links are cleared).
        #[arg(long)]
        force: bool,
    },
    /// Link a key to a connection (the only key offered to that server).
    Link { name: String, conn: String },
    /// Remove a key's link to a connection.
    Unlink { name: String, conn: String },
}

pub async fn run(ctx: &Ctx, cmd: KeyCmd) -> Result<u8> {
    let mut c = ctx.client().await?;
    let reply = match cmd {
        KeyCmd::Add {
            name,
            file,
            stdin,
            passphrase_file,
        } => {
            let text = read_key(file.as_ref(), stdin)?;
            let mut passphrase = passphrase_file
                .as_deref()
                .map(prompt::from_file)
                .transpose()?;
            let source = file
                .as_ref()
                .map(|f| f.display().to_string())
                .unwrap_or_else(|| "standard input".into());
            loop {
                let req = Request::KeyAdd {
                    name: name.clone(),
                    private_key: text.clone(),
                    passphrase: passphrase.take(),
                };
                match c.request(&req).await {
                    Ok(r) => break r,
                    Err(e) => match e.downcast_ref::<BrokerError>() {
                        Some(be) if be.code == ErrorCode::KeyPassphraseRequired => {
                            passphrase = Some(prompt::ask(
                                &format!("Passphrase for {source}: "),
                                "pass --passphrase-file FILE",
                            )?);
                        }
                        _ => return Err(e),
                    },
                }
            }
        }
        KeyCmd::Generate { name, key_type } => {
            c.request(&Request::KeyGenerate { name, key_type }).await?
        }
        KeyCmd::List => c.request(&Request::KeyList).await?,
        KeyCmd::Show { name } => c.request(&Request::KeyShow { name }).await?,
        KeyCmd::Pub { name } => {
            let Response::Key(k) = c.request(&Request::KeyShow { name }).await? else {
                bail!("unexpected reply")
            };
            if ctx.json {
                output::json(&serde_json::json!({ "name": k.name, "public_key": k.public_key }))?;
            } else {
                println!("{}", k.public_key);
            }
            return Ok(0);
        }
        KeyCmd::Remove { name, force } => c.request(&Request::KeyRemove { name, force }).await?,
        KeyCmd::Link { name, conn } => c.request(&Request::KeyLink { key: name, conn }).await?,
        KeyCmd::Unlink { name, conn } => c.request(&Request::KeyUnlink { key: name, conn }).await?,
    };
    print(ctx, reply)?;
    Ok(0)
}

fn read_key(file: Option<&PathBuf>, stdin: bool) -> Result<SecretString> {
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    match (file, stdin) {
        (Some(f), _) => {
            std::fs::File::open(f)
                .and_then(|mut h| h.read_to_end(&mut buf))
                .with_context(|| format!("cannot read the key file {}", f.display()))?;
        }
        (None, true) => {
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read the key from standard input")?;
        }
        (None, false) => bail!("give --file PATH or --stdin"),
    }
    let text = std::str::from_utf8(&buf)
        .context("the key is not text (OpenSSH or PEM format expected)")?;
    Ok(SecretString::new(text.to_owned()))
}

fn print(ctx: &Ctx, reply: Response) -> Result<()> {
    match reply {
        Response::Key(k) if ctx.json => output::json(&k)?,
        Response::Key(k) => show(&k),
        Response::Keys { keys } if ctx.json => output::json(&keys)?,
        Response::Keys { keys } => {
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.name.clone(),
                        k.algorithm.clone(),
                        k.fingerprint.clone(),
                        k.connections.join(","),
                    ]
                })
                .collect();
            output::table(&["NAME", "TYPE", "FINGERPRINT", "CONNECTIONS"], &rows);
        }
        Response::Ok { message } if ctx.json => {
            output::json(&serde_json::json!({ "ok": true, "message": message }))?
        }
        Response::Ok { message } => println!("{message}"),
        other => bail!("unexpected reply: {other:?}"),
    }
    Ok(())
}

fn show(k: &KeyInfo) {
    println!("name         {}", k.name);
    println!("type         {}", k.algorithm);
    println!("fingerprint  {}", k.fingerprint);
    println!("comment      {}", k.comment);
    println!("created      {}", output::time(k.created));
    let links = if k.connections.is_empty() {
        "-".to_string()
    } else {
        k.connections.join(", ")
    };
    println!("connections  {links}");
    println!("public key   {}", k.public_key);
}
