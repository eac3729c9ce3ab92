//! `sshkeep key ...`.

use std::io::Read;
use std::path::PathBuf;

use super::choices::KeyType;
use super::{Ctx, output, prompt};
use crate::client::BrokerError;
use crate::protocol::{ErrorCode, KeyInfo, Request, RotationReport, RotationState, SecretString};
use anyhow::{Context, Result, bail};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Import a private key (OpenSSH or PEM) into the vault, or record a key that stays in
    /// another ssh-agent (--from-agent).
    Add {
        name: String,
        /// The key file.
        #[arg(long, conflicts_with_all = ["stdin", "from_agent"], required_unless_present_any = ["stdin", "from_agent"])]
        file: Option<PathBuf>,
        /// Record a key held by another ssh-agent (FIDO/sk keys, Secretive, 1Password,
        /// gpg-agent...): only its public half and the socket are stored, and logins sign
        /// through that agent. The socket defaults to $SSH_AUTH_SOCK.
        #[arg(long, value_name = "SSH_AUTH_SOCK", num_args = 0..=1, default_missing_value = "", conflicts_with = "stdin")]
        from_agent: Option<String>,
        /// With --from-agent: which of the agent's keys (SHA256:...), when it holds several.
        #[arg(long, requires = "from_agent")]
        fingerprint: Option<String>,
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
    /// Replace a key on every connection linked to it: add the new key to each server's
    /// authorized_keys, prove it logs in, switch the link, remove the old key, retire it.
    Rotate {
        name: String,
        #[arg(long = "type", value_enum, default_value = "ed25519")]
        key_type: KeyType,
        /// Continue an unfinished rotation (after a host was down or the broker stopped).
        #[arg(long, conflicts_with = "dry_run")]
        resume: bool,
        /// Show the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Install a key's public half on a connection's server, logging in with the key that
    /// works there now, and prove it logs in.
    Deploy { name: String, conn: String },
    /// OpenSSH user certificates: attach one, remove it, or sign one with a CA key.
    #[command(subcommand)]
    Cert(super::secret_cmd::CertCmd),
    /// Choose how the ssh-agent socket (`sshkeep agent env`) treats a key.
    Agent {
        name: String,
        /// Offer the key on the agent socket.
        #[arg(long, conflicts_with = "no_offer")]
        offer: bool,
        /// Stop offering it.
        #[arg(long)]
        no_offer: bool,
        /// Ask before each signature (refused when no prompt can be shown).
        #[arg(long, conflicts_with = "no_confirm")]
        confirm: bool,
        #[arg(long)]
        no_confirm: bool,
        /// Offer it for this long from now (e.g. 8h); 0 for no limit.
        #[arg(long)]
        lifetime: Option<humantime::Duration>,
        /// Serve the key on agents forwarded to servers (connections saved with --forward-agent).
        #[arg(long, conflicts_with = "no_forward")]
        forward: bool,
        #[arg(long)]
        no_forward: bool,
        /// Sign only for sessions bound to these hosts (like `ssh-add -h`): saved connections,
        /// host[:port] or SHA256: host key fingerprints, and FROM>TO for a hop beyond a host.
        /// An empty value removes the constraint.
        #[arg(long, value_name = "HOST[,HOST]")]
        only_to: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, cmd: KeyCmd) -> Result<u8> {
    if let KeyCmd::Cert(cmd) = cmd {
        let k = super::secret_cmd::cert(ctx, cmd).await?;
        print_key(ctx, &k)?;
        return Ok(0);
    }
    let mut c = ctx.client().await?;
    match cmd {
        KeyCmd::Add {
            name,
            file,
            stdin,
            passphrase_file,
            from_agent,
            fingerprint,
        } => {
            if let Some(sock) = from_agent {
                let socket = match sock.is_empty() {
                    false => sock,
                    true => std::env::var("SSH_AUTH_SOCK")
                        .ok()
                        .filter(|s| !s.is_empty())
                        .context(
                            "SSH_AUTH_SOCK is not set: give the agent's socket after --from-agent",
                        )?,
                };
                let socket = std::path::absolute(&socket)
                    .with_context(|| format!("cannot use the socket path {socket}"))?
                    .display()
                    .to_string();
                let req = Request::KeyAddFromAgent {
                    name,
                    socket,
                    fingerprint,
                };
                print_key(ctx, &c.call(&req).await?)?;
                return Ok(0);
            }
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
                match c.call::<KeyInfo>(&req).await {
                    Ok(k) => break print_key(ctx, &k)?,
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
            let req = Request::KeyGenerate {
                name,
                key_type: key_type.into(),
            };
            print_key(ctx, &c.call(&req).await?)?
        }
        KeyCmd::List => print_keys(ctx, c.call(&Request::KeyList).await?)?,
        KeyCmd::Show { name } => print_key(ctx, &c.call(&Request::KeyShow { name }).await?)?,
        KeyCmd::Pub { name } => {
            let k: KeyInfo = c.call(&Request::KeyShow { name }).await?;
            if ctx.json {
                output::json(&serde_json::json!({ "name": k.name, "public_key": k.public_key }))?;
            } else {
                println!("{}", k.public_key);
            }
        }
        KeyCmd::Remove { name, force } => {
            output::done(ctx.json, c.call(&Request::KeyRemove { name, force }).await?)?
        }
        KeyCmd::Link { name, conn } => output::done(
            ctx.json,
            c.call(&Request::KeyLink { key: name, conn }).await?,
        )?,
        KeyCmd::Unlink { name, conn } => output::done(
            ctx.json,
            c.call(&Request::KeyUnlink { key: name, conn }).await?,
        )?,
        KeyCmd::Rotate {
            name,
            key_type,
            resume,
            dry_run,
        } => {
            let r: RotationReport = c
                .call(&Request::KeyRotate {
                    name,
                    key_type: key_type.into(),
                    resume,
                    dry_run,
                })
                .await?;
            print_rotation(ctx, &r)?;
            return Ok(if r.state == RotationState::Partial {
                1
            } else {
                0
            });
        }
        KeyCmd::Deploy { name, conn } => {
            output::done(ctx.json, c.call(&Request::KeyDeploy { name, conn }).await?)?
        }
        KeyCmd::Agent {
            name,
            offer,
            no_offer,
            confirm,
            no_confirm,
            lifetime,
            forward,
            no_forward,
            only_to,
        } => {
            let req = Request::KeyAgent {
                name,
                offer: (offer || no_offer).then_some(offer),
                confirm: (confirm || no_confirm).then_some(confirm),
                lifetime_secs: lifetime.map(|d| d.as_secs()),
                forward: (forward || no_forward).then_some(forward),
                only_to: only_to.map(|l| {
                    l.split(',')
                        .map(|h| h.trim().to_string())
                        .filter(|h| !h.is_empty())
                        .collect()
                }),
            };
            print_key(ctx, &c.call(&req).await?)?
        }
        KeyCmd::Cert(_) => {}
    }
    Ok(0)
}

fn print_rotation(ctx: &Ctx, r: &RotationReport) -> Result<()> {
    if ctx.json {
        return output::json(r);
    }
    println!("rotation of key '{}': {}", r.key, r.state);
    // A plan that carries a rotation id plans the rest of a rotation already under way.
    if r.state == RotationState::Planned && !r.rotation_id.is_empty() {
        println!(
            "rotation {} is already under way: finish it with `sshkeep key rotate {} --resume`",
            r.rotation_id, r.key
        );
    }
    if let Some(f) = &r.new_fingerprint {
        println!(
            "new key {} ({f})",
            if r.state == RotationState::Done {
                &r.key
            } else {
                &r.new_key
            }
        );
    }
    if let Some(old) = &r.retired_as {
        println!("old key retired as '{old}' (destroy it with `sshkeep key remove {old}`)");
    }
    let rows: Vec<Vec<String>> = r
        .hosts
        .iter()
        .map(|h| {
            vec![
                h.conn.clone(),
                h.step.to_string(),
                h.error.clone().or(h.next.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["CONNECTION", "STEP", "ERROR / NEXT"], &rows);
    if r.state == RotationState::Partial {
        println!(
            "hosts that failed still use the old key; fix them and run `sshkeep key rotate {} --resume`",
            r.key
        );
    }
    Ok(())
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

fn print_key(ctx: &Ctx, k: &KeyInfo) -> Result<()> {
    if ctx.json {
        output::json(k)
    } else {
        show(k);
        Ok(())
    }
}

fn print_keys(ctx: &Ctx, keys: Vec<KeyInfo>) -> Result<()> {
    if ctx.json {
        return output::json(&keys);
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            let state = match (k.retired.is_some(), k.agent.offer) {
                (true, _) => "retired",
                (false, true) => "agent",
                (false, false) => "-",
            };
            vec![
                k.name.clone(),
                k.algorithm.clone(),
                k.fingerprint.clone(),
                state.to_string(),
                k.connections.join(","),
            ]
        })
        .collect();
    output::table(
        &["NAME", "TYPE", "FINGERPRINT", "STATE", "CONNECTIONS"],
        &rows,
    );
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
    if let Some(t) = k.retired {
        println!(
            "retired      {} (never used to log in; `sshkeep key remove {}` destroys it)",
            output::time(t),
            k.name
        );
    }
    println!(
        "agent        {}{}{}",
        if k.agent.offer {
            "offered"
        } else {
            "not offered"
        },
        if k.agent.confirm {
            ", confirm each use"
        } else {
            ""
        },
        k.agent
            .until
            .map(|u| format!(", until {}", output::time(u)))
            .unwrap_or_default()
    );
    if k.agent.forward {
        println!("forwarded    yes (on connections saved with --forward-agent)");
    }
    if !k.agent.only_to.is_empty() {
        println!("only to      {}", k.agent.only_to.join(", "));
    }
    if let Some(s) = &k.held_by {
        println!("held by      the ssh-agent at {s} (not in the vault)");
    }
    println!("public key   {}", k.public_key);
    if let Some(c) = &k.certificate {
        super::secret_cmd::show_cert(c);
    }
}
