//! A target that is no saved connection but a `Host` of `~/.ssh/config`, reached the way
//! `ssh ALIAS` reaches it: HostName, User, Port, ProxyJump, ServerAlive*, ConnectTimeout,
//! StrictHostKeyChecking yes. The key is the vault key whose public half is an IdentityFile's `.pub` (or a default
//! identity's): private key files are never read at login time. Host keys are checked as for
//! any ad-hoc target (the broker's pin, then known_hosts, else pinned on first use).

use std::path::Path;
use std::time::Duration;

use super::resolve::Resolved;
use crate::broker::core::Core;
use crate::broker::core::fail::Fail;
use crate::protocol::{ErrorCode, HostKeyPolicy, NextStep};
use crate::settings::Key;
use crate::ssh::Endpoint;
use crate::ssh_config::{Config, HostOptions, expand_home, local_user};

/// The identities `ssh` tries when a host names none.
const DEFAULT_IDENTITIES: &[&str] = &[
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_rsa",
];

/// `alias` resolved through `~/.ssh/config`, or `None` when the configuration does not name it.
pub fn from_ssh_config(
    broker: &Core,
    alias: &str,
    key: Option<&str>,
) -> Result<Option<Resolved>, Fail> {
    let Some(home) = std::env::home_dir() else {
        return Ok(None);
    };
    let ssh_dir = home.join(".ssh");
    let path = ssh_dir.join("config");
    if !path.exists() {
        return Ok(None);
    }
    let config = match Config::read(&path, &ssh_dir) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("{e}");
            return Ok(None);
        }
    };
    if !config.names(alias) {
        return Ok(None);
    }
    let o = config.options_for(alias);
    let refuse = |why: String| {
        Fail::new(
            ErrorCode::InvalidArgument,
            format!("'{alias}' is a Host in ~/.ssh/config, but {why}"),
        )
    };
    // The command's text is not repeated: it may carry a token.
    if o.proxy_command.is_some() {
        return Err(refuse(
            "it uses ProxyCommand, which sshkeep does not run: use ProxyJump, or a saved connection with --jump".into(),
        ));
    }
    let user = o
        .user
        .clone()
        .or_else(local_user)
        .ok_or_else(|| refuse("it sets no User and the local user is unknown".into()))?;
    let host = o.host_name.clone().unwrap_or_else(|| alias.to_string());
    let port = o.port.unwrap_or(22);
    let key = match key {
        Some(k) => k.to_string(),
        None => vault_key_for(broker, &o, &home)?.ok_or_else(|| {
            let files = if o.identity_files.is_empty() {
                "the default identities (~/.ssh/id_ed25519, ...)".to_string()
            } else {
                o.identity_files.join(", ")
            };
            Fail::then(
                ErrorCode::NoKey,
                format!(
                    "'{alias}' is a Host in ~/.ssh/config ({user}@{host}:{port}), but none of its keys ({files}) is in sshkeep's vault: import it, or pass a key"
                ),
                NextStep::UserOnly {
                    command: format!("sshkeep conn import {alias}"),
                },
            )
        })?,
    };
    let jump = match o.proxy_jump.as_deref() {
        None | Some("none") => Vec::new(),
        Some(j) => j.split(',').map(|h| h.trim().to_string()).collect(),
    };
    let settings = broker.settings();
    let setting = |k: Key| settings.get(k).min(u64::from(u32::MAX)) as u32;
    Ok(Some(Resolved {
        forward_agent: false,
        jump,
        key: Some(key),
        idle: Duration::from_secs(settings.get(Key::IdleTimeout)),
        endpoint: Endpoint {
            host,
            port,
            user,
            policy: match o.strict_host_key_checking.as_deref() {
                Some("yes") => HostKeyPolicy::Strict,
                _ => HostKeyPolicy::AcceptNew,
            },
            keepalive_interval: o
                .server_alive_interval
                .unwrap_or_else(|| setting(Key::KeepaliveInterval)),
            keepalive_max: o
                .server_alive_count_max
                .unwrap_or_else(|| setting(Key::KeepaliveMax)),
            connect_timeout: o.connect_timeout.filter(|s| *s > 0),
            conn_name: None,
        },
        via: Some(alias.to_string()),
    }))
}

/// The vault key whose public half is the `.pub` next to one of the host's identity files (or
/// the default identities when it names none), first file first.
fn vault_key_for(broker: &Core, o: &HostOptions, home: &Path) -> Result<Option<String>, Fail> {
    let files: Vec<String> = if o.identity_files.is_empty() {
        DEFAULT_IDENTITIES.iter().map(|s| s.to_string()).collect()
    } else {
        o.identity_files.clone()
    };
    let keys = broker.db()?.keys()?;
    let body = |l: &str| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    for f in files {
        let mut public = expand_home(&f, home).into_os_string();
        public.push(".pub");
        let Ok(text) = std::fs::read_to_string(&public) else {
            continue;
        };
        let wanted = body(&text);
        if let Some(k) = keys
            .iter()
            .find(|k| k.retired.is_none() && body(&k.public_key) == wanted)
        {
            return Ok(Some(k.name.clone()));
        }
    }
    Ok(None)
}
