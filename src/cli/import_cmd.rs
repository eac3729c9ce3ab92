//! `sshkeep conn import`: one saved connection per concrete `Host` of `~/.ssh/config`, its key
//! imported into the vault (never read again at login time), its host key pinned from
//! known_hosts where known_hosts has it. A table (or `--json`) says what was imported, skipped
//! and why.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::{Ctx, output, prompt};
use crate::client::{BrokerError, Client, Done};
use crate::protocol::{
    ConnInfo, ConnSpec, ErrorCode, HostKeyPolicy, KeyInfo, Request, SecretString,
};
use crate::ssh_config::{Config, HostOptions, expand_home, local_user, wildcard};

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The OpenSSH client configuration to read.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Show what would be imported; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace saved connections of the same name (they are skipped otherwise).
    #[arg(long)]
    replace: bool,
    /// Do not import IdentityFiles into the vault (connections are saved without a key).
    #[arg(long)]
    no_keys: bool,
    /// A file holding the passphrase of encrypted IdentityFiles (asked once otherwise).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Only these Host aliases (wildcards `*` and `?` allowed); all concrete ones by default.
    patterns: Vec<String>,
}

/// One row of the report.
#[derive(Serialize, Debug)]
struct Row {
    alias: String,
    /// `imported`, `replaced`, `would import`, `skipped`.
    result: String,
    address: Option<String>,
    key: Option<String>,
    /// Where the host key pin came from (`known_hosts`), when it did.
    pin: Option<String>,
    /// Why it was skipped, and what was not carried over.
    notes: Vec<String>,
}

pub async fn run(ctx: &Ctx, c: &mut Client, a: ImportArgs) -> Result<u8> {
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?);
    let ssh_dir = home.join(".ssh");
    let from = a.from.clone().unwrap_or_else(|| ssh_dir.join("config"));
    let config = Config::read(&from, &ssh_dir).map_err(anyhow::Error::msg)?;
    let aliases: Vec<String> = config
        .aliases()
        .into_iter()
        .filter(|h| a.patterns.is_empty() || a.patterns.iter().any(|p| wildcard(p, h)))
        .collect();
    if aliases.is_empty() {
        bail!(
            "no concrete Host in {}{} to import",
            from.display(),
            if a.patterns.is_empty() {
                String::new()
            } else {
                format!(" matches {}", a.patterns.join(" "))
            }
        );
    }
    let conns: Vec<ConnInfo> = c.call(&Request::ConnList).await?;
    let saved: Vec<String> = conns.into_iter().map(|c| c.spec.name).collect();
    let mut keys = KeyImporter {
        passphrase: a
            .passphrase_file
            .as_deref()
            .map(prompt::from_file)
            .transpose()?,
        imported: Vec::new(),
    };
    // Jump hosts first: a connection can name only saved connections as its hops.
    let mut hosts: Vec<HostOptions> = aliases.iter().map(|h| config.options_for(h)).collect();
    hosts.sort_by_key(|o| o.proxy_jump.as_deref().is_some_and(|j| j != "none"));
    let mut saved = saved;
    let mut rows = Vec::new();
    for o in hosts {
        let row = import_one(c, &a, &o, &saved, &home, &mut keys).await?;
        if matches!(row.result.as_str(), "imported" | "replaced") {
            saved.push(o.alias.clone());
        }
        rows.push(row);
    }
    if ctx.json {
        output::json(&serde_json::json!({
            "from": from.display().to_string(),
            "hosts": rows,
            "problems": config.problems,
        }))?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.alias.clone(),
                    r.result.clone(),
                    output::opt(&r.address),
                    output::opt(&r.key),
                    output::opt(&r.pin),
                    r.notes.join("; "),
                ]
            })
            .collect();
        output::table(
            &["HOST", "RESULT", "ADDRESS", "KEY", "PIN", "NOTES"],
            &table,
        );
        for p in &config.problems {
            eprintln!("warning: {p}");
        }
    }
    Ok(if rows.iter().any(|r| r.result == "skipped") {
        1
    } else {
        0
    })
}

async fn import_one(
    c: &mut Client,
    a: &ImportArgs,
    o: &HostOptions,
    saved: &[String],
    home: &Path,
    keys: &mut KeyImporter,
) -> Result<Row> {
    let mut row = Row {
        alias: o.alias.clone(),
        result: "skipped".into(),
        address: None,
        key: None,
        pin: None,
        notes: Vec::new(),
    };
    if let Some(pc) = &o.proxy_command {
        row.notes.push(format!(
            "ProxyCommand is not supported ({pc}); reach it with ssh or a tunnel"
        ));
        return Ok(row);
    }
    // ProxyJump names hops; each must be a Host alias saved as a connection (now or before).
    let jump: Vec<String> = match o.proxy_jump.as_deref() {
        None | Some("none") => Vec::new(),
        Some(j) => {
            let hops: Vec<String> = j.split(',').map(|h| h.trim().to_string()).collect();
            if let Some(bad) = hops.iter().find(|h| !saved.contains(h)) {
                row.notes.push(format!(
                    "ProxyJump {j}: {bad:?} is not a saved connection or imported Host alias; save it first (`sshkeep conn save`), then import again"
                ));
                return Ok(row);
            }
            hops
        }
    };
    if !valid_name(&o.alias) {
        row.notes.push(
            "not a valid connection name (letters, digits, . _ - only): save it by hand".into(),
        );
        return Ok(row);
    }
    let host = o.host_name.clone().unwrap_or_else(|| o.alias.clone());
    let user = match o.user.clone().or_else(local_user) {
        Some(u) => u,
        None => {
            row.notes
                .push("no User set and the local user is unknown".into());
            return Ok(row);
        }
    };
    let port = o.port.unwrap_or(22);
    row.address = Some(format!("{user}@{host}:{port}"));
    let exists = saved.iter().any(|s| s == &o.alias);
    if exists && !a.replace {
        row.notes
            .push("a saved connection has this name (--replace to overwrite)".into());
        return Ok(row);
    }
    let host_key_policy = match o.strict_host_key_checking.as_deref() {
        Some("yes") => HostKeyPolicy::Strict,
        Some("no" | "off") => {
            row.notes.push(
                "StrictHostKeyChecking no is not carried over: sshkeep pins the first key it sees and refuses a changed one"
                    .into(),
            );
            HostKeyPolicy::AcceptNew
        }
        _ => HostKeyPolicy::AcceptNew,
    };
    if o.server_alive_interval == Some(0) {
        row.notes.push(
            "ServerAliveInterval 0 (off) not carried over: sshkeep keeps keepalives on".into(),
        );
    }
    for (k, v) in &o.ignored {
        if NOTED.contains(&k.as_str()) {
            row.notes.push(format!("{k} {v} not carried over"));
        }
    }
    if o.match_blocks > 0 {
        row.notes
            .push("Match blocks in the file were not applied".into());
    }
    // The key: the first IdentityFile that exists, imported into the vault once.
    let identity = o
        .identity_files
        .iter()
        .map(|f| expand_home(f, home))
        .find(|p| p.exists());
    if let Some(path) = identity.as_ref().filter(|_| !a.no_keys) {
        match keys.import(c, path, a.dry_run).await {
            Ok(name) => row.key = Some(name),
            Err(e) => {
                row.notes.push(format!("{e:#}"));
                return Ok(row);
            }
        }
    } else if identity.is_none() && !o.identity_files.is_empty() {
        row.notes.push(format!(
            "IdentityFile {} not found",
            o.identity_files.join(", ")
        ));
    }
    // The pin: what known_hosts holds for this host, if anything.
    let known_hosts = o
        .user_known_hosts_file
        .as_deref()
        .map(|f| expand_home(f, home))
        .unwrap_or_else(|| home.join(".ssh/known_hosts"));
    let pin = russh::keys::known_hosts::known_host_keys_path(&host, port, &known_hosts)
        .ok()
        .and_then(|v| v.into_iter().next())
        .map(|(_, k)| k.fingerprint(russh::keys::HashAlg::Sha256).to_string());
    if a.dry_run {
        row.result = "would import".into();
        row.pin = pin.map(|_| "known_hosts".into());
        return Ok(row);
    }
    let spec = ConnSpec {
        name: o.alias.clone(),
        host,
        port,
        user,
        key: row.key.clone(),
        client: None,
        host_key_policy,
        keepalive_interval: o.server_alive_interval.filter(|i| *i > 0).unwrap_or(30),
        keepalive_max: o.server_alive_count_max.unwrap_or(3),
        idle_timeout: 600,
        authorized_keys: ".ssh/authorized_keys".into(),
        jump,
        connect_timeout: o.connect_timeout.filter(|t| *t > 0),
        forward_agent: false,
        password: None,
    };
    let _: ConnInfo = c.call(&Request::ConnSave(spec)).await?;
    if let Some(fp) = pin {
        match c
            .call::<Done>(&Request::ConnTrust {
                name: o.alias.clone(),
                fingerprint: Some(fp),
                replace: false,
            })
            .await
        {
            Ok(_) => row.pin = Some("known_hosts".into()),
            Err(e) => row.notes.push(format!("not pinned: {e:#}")),
        }
    }
    row.result = if exists { "replaced" } else { "imported" }.into();
    Ok(row)
}

/// Options that change how a login behaves and that a user should know sshkeep leaves out.
const NOTED: &[&str] = &[
    "forwardagent",
    "localforward",
    "remoteforward",
    "dynamicforward",
    "certificatefile",
    "pkcs11provider",
    "securitykeyprovider",
    "identityagent",
    "hostkeyalias",
    "controlmaster",
];

/// Connection names sshkeep accepts for imports (no spaces or shell characters).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Imports IdentityFiles into the vault, each once, asking for a passphrase at most once.
struct KeyImporter {
    passphrase: Option<SecretString>,
    /// (file, vault key name) already handled in this run.
    imported: Vec<(PathBuf, String)>,
}

impl KeyImporter {
    async fn import(&mut self, c: &mut Client, path: &Path, dry_run: bool) -> Result<String> {
        if let Some((_, name)) = self.imported.iter().find(|(p, _)| p == path) {
            return Ok(name.clone());
        }
        let stem = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "imported".into());
        let name: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // A key of that name already in the vault is used when it is the same key.
        if let Some(existing) = self.same_key_in_vault(c, &name, path).await? {
            self.imported.push((path.to_path_buf(), existing.clone()));
            return Ok(existing);
        }
        if dry_run {
            return Ok(format!("{name} (to import)"));
        }
        let text = SecretString::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read IdentityFile {}", path.display()))?,
        );
        let mut asked = false;
        loop {
            let req = Request::KeyAdd {
                name: name.clone(),
                private_key: text.clone(),
                passphrase: self.passphrase.clone(),
            };
            match c.call::<KeyInfo>(&req).await {
                Ok(_) => break,
                Err(e) => match e.downcast_ref::<BrokerError>() {
                    Some(be) if be.code == ErrorCode::KeyPassphraseRequired && !asked => {
                        asked = true;
                        self.passphrase = Some(prompt::ask(
                            &format!("Passphrase for {}: ", path.display()),
                            "pass --passphrase-file FILE",
                        )?);
                    }
                    _ => return Err(e),
                },
            }
        }
        self.imported.push((path.to_path_buf(), name.clone()));
        Ok(name)
    }

    /// `name` when the vault already holds a key of that name whose public half is the one
    /// next to `path` (`path.pub`); an error when it holds a different key of that name.
    async fn same_key_in_vault(
        &self,
        c: &mut Client,
        name: &str,
        path: &Path,
    ) -> Result<Option<String>> {
        let Ok(k) = c
            .call::<KeyInfo>(&Request::KeyShow {
                name: name.to_string(),
            })
            .await
        else {
            return Ok(None);
        };
        let public = std::fs::read_to_string(
            path.with_extension(
                path.extension()
                    .map(|e| format!("{}.pub", e.to_string_lossy()))
                    .unwrap_or_else(|| "pub".into()),
            ),
        )
        .unwrap_or_default();
        let body = |l: &str| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        if !public.is_empty() && body(&public) == body(&k.public_key) {
            Ok(Some(name.to_string()))
        } else {
            bail!(
                "the vault already has a different key named {name:?}: import {} by hand with `sshkeep key add NAME --file {}`",
                path.display(),
                path.display()
            )
        }
    }
}
