//! Turning a target (a saved connection or `user@host[:port]`) into an authenticated SSH login.

use std::sync::Arc;
use std::time::Duration;

use russh::client::Handle;

use super::fail::Fail;
use super::{Broker, Peer};
use crate::db::{ConnRow, Pin, now};
use crate::protocol::{ErrorCode, HostKeyPolicy};
use crate::ssh::{self, Endpoint, HostKeyStatus, SeenHostKey};
use crate::target::{parse_address, validate_name};

/// A resolved target.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub endpoint: Endpoint,
    pub key: Option<String>,
    pub idle: Duration,
}

/// Resolves `target`; `key` overrides the linked key. A retired key is refused here, before a
/// pooled session logged in with it could be reused.
pub fn resolve(broker: &Broker, target: &str, key: Option<&str>) -> Result<Resolved, Fail> {
    let r = resolve_any(broker, target, key)?;
    if let Some(k) = &r.key
        && broker
            .db()?
            .key(k)
            .map_err(Fail::internal)?
            .is_some_and(|row| row.retired.is_some())
    {
        return Err(Fail::new(
            ErrorCode::NoKey,
            format!(
                "key '{k}' was retired by a rotation and is disabled: use the key that replaced it (see `sshkeep key list`), or destroy it with `sshkeep key remove {k}`"
            ),
        ));
    }
    Ok(r)
}

fn resolve_any(broker: &Broker, target: &str, key: Option<&str>) -> Result<Resolved, Fail> {
    let from_row = |c: ConnRow| Resolved {
        key: key.map(Into::into).or(c.spec.key.clone()),
        idle: Duration::from_secs(u64::from(c.spec.idle_timeout)),
        endpoint: Endpoint {
            host: c.spec.host,
            port: c.spec.port,
            user: c.spec.user,
            policy: c.spec.host_key_policy,
            keepalive_interval: c.spec.keepalive_interval,
            keepalive_max: c.spec.keepalive_max,
            conn_name: Some(c.spec.name),
        },
    };
    match parse_address(target) {
        Some(addr) => {
            let a = addr.map_err(|e| Fail::new(ErrorCode::InvalidArgument, e))?;
            if let Some(c) = broker
                .db()?
                .conn_by_address(&a.user, &a.host, a.port)
                .map_err(Fail::internal)?
            {
                return Ok(from_row(c));
            }
            // Ad-hoc targets take the broker's settings (defaults: OpenSSH's ServerAliveInterval 30,
            // ServerAliveCountMax 3, and a ControlPersist-like 10 minutes).
            let settings = broker.settings();
            Ok(Resolved {
                key: key.map(Into::into),
                idle: Duration::from_secs(settings.get("idle_timeout")),
                endpoint: Endpoint {
                    host: a.host,
                    port: a.port,
                    user: a.user,
                    policy: HostKeyPolicy::AcceptNew,
                    keepalive_interval: settings.get("keepalive_interval").min(u32::MAX as u64)
                        as u32,
                    keepalive_max: settings.get("keepalive_max").min(u32::MAX as u64) as u32,
                    conn_name: None,
                },
            })
        }
        None => {
            validate_name("connection", target)
                .map_err(|e| Fail::new(ErrorCode::InvalidArgument, e))?;
            Ok(from_row(super::conn_ops::find(broker, target)?))
        }
    }
}

/// `r` with its connection's linked key when the key it names is gone or retired (a key
/// rotation renamed or retired it since `r` was resolved).
pub fn refreshed(broker: &Broker, r: &Resolved) -> Resolved {
    let mut out = r.clone();
    let (Some(conn), Some(key)) = (&r.endpoint.conn_name, &r.key) else {
        return out;
    };
    let Ok(db) = broker.db() else {
        return out;
    };
    let usable = db
        .key(key)
        .ok()
        .flatten()
        .is_some_and(|k| k.retired.is_none());
    if !usable && let Ok(Some(c)) = db.conn_by_ref(conn) {
        out.key = c.spec.key;
    }
    out
}

/// `~/.ssh/known_hosts`, read to accept keys the user already trusts. Never written.
pub fn known_hosts() -> Option<std::path::PathBuf> {
    std::env::home_dir().map(|h| h.join(".ssh").join("known_hosts"))
}

fn no_key(ep: &Endpoint) -> Fail {
    let msg = match &ep.conn_name {
        Some(n) => format!("connection '{n}' has no key linked: run `sshkeep key link KEY {n}`"),
        None => format!(
            "no key for {}@{}:{}: pass --key KEY, or save a connection with `sshkeep conn save NAME --host {} --user {} --key KEY`",
            ep.user, ep.host, ep.port, ep.host, ep.user
        ),
    };
    Fail::new(ErrorCode::NoKey, msg)
}

/// Decrypts a key from the vault for one login. The returned key zeroizes itself on drop.
pub fn unseal_key(broker: &Broker, name: &str) -> Result<(russh::keys::PrivateKey, String), Fail> {
    let row = broker
        .db()?
        .key(name)
        .map_err(Fail::internal)?
        .ok_or_else(|| Fail::not_found("key", name, "see `sshkeep key list`"))?;
    let slot = broker.vault()?;
    let Some(vault) = slot.as_ref() else {
        drop(slot);
        return Err(broker.no_vault());
    };
    if row.retired.is_some() {
        return Err(Fail::new(
            ErrorCode::NoKey,
            format!(
                "key '{name}' was retired by a rotation and is disabled: use the key that replaced it (see `sshkeep key list`), or destroy it with `sshkeep key remove {name}`"
            ),
        ));
    }
    let plain = vault.open_sealed(&row.sealed).map_err(|e| match e {
        sshkeep_vault::VaultError::Locked => {
            let why = broker.lock_note();
            Fail::new(
                ErrorCode::VaultLocked,
                format!("the vault is locked{why}: open sessions stay open, but new logins need `sshkeep unlock`"),
            )
        }
        e => Fail::from(e),
    })?;
    broker.key_used();
    let key = crate::keys::load(plain.expose()).map_err(|_| {
        Fail::new(
            ErrorCode::InvalidKey,
            format!("key '{name}' in the vault is damaged"),
        )
    })?;
    Ok((key, row.fingerprint))
}

/// Pins a key seen under `accept-new` after a successful login.
pub fn pin_if_new(
    broker: &Broker,
    peer: &Peer,
    ep: &Endpoint,
    seen: &SeenHostKey,
) -> Result<bool, Fail> {
    if seen.status != HostKeyStatus::New {
        return Ok(false);
    }
    let pin = Pin {
        algorithm: seen.algorithm.clone(),
        fingerprint: seen.fingerprint.clone(),
        source: "first-use".into(),
    };
    broker
        .db()?
        .set_pin(&ep.host, ep.port, &pin, now())
        .map_err(Fail::internal)?;
    broker.audit(
        peer,
        "host_key_pin",
        None,
        ep.conn_name.as_deref(),
        format!(
            "{}:{} {} {} (first use)",
            ep.host, ep.port, seen.algorithm, seen.fingerprint
        ),
    )?;
    Ok(true)
}

/// Records a refused host key in the audit log.
pub fn audit_refusal(
    broker: &Broker,
    peer: &Peer,
    ep: &Endpoint,
    seen: Option<&SeenHostKey>,
) -> Result<(), Fail> {
    if let Some(s) = seen
        && matches!(
            s.status,
            HostKeyStatus::Changed { .. } | HostKeyStatus::Unknown
        )
    {
        broker.audit(
            peer,
            "host_key_refused",
            None,
            ep.conn_name.as_deref(),
            format!(
                "{}:{} presented {} {} ({})",
                ep.host,
                ep.port,
                s.algorithm,
                s.fingerprint,
                s.status_word()
            ),
        )?;
    }
    Ok(())
}

/// The reason slot filled when a connection ends.
pub type LostSlot = Arc<std::sync::Mutex<Option<String>>>;

/// Connects and logs in to `r` with its key: host-key verification, pinning on first use, and
/// an audit record of the key's use.
pub async fn login(
    broker: &Arc<Broker>,
    peer: &Peer,
    r: &Resolved,
    purpose: &str,
) -> Result<(Handle<ssh::Verifier>, LostSlot), Fail> {
    let key_name = r.key.as_deref().ok_or_else(|| no_key(&r.endpoint))?;
    let ep = &r.endpoint;
    // Decrypt before connecting so a locked vault fails fast, without network traffic.
    let (key, _) = unseal_key(broker, key_name)?;
    let pin = broker
        .db()?
        .pin(&ep.host, ep.port)
        .map_err(Fail::internal)?;
    let (login, connected) = ssh::connect(ep, pin, known_hosts()).await;
    if let Err(e) = connected {
        audit_refusal(broker, peer, ep, login.seen.as_ref())?;
        return Err(e.into());
    }
    let mut handle = login
        .handle
        .ok_or_else(|| Fail::new(ErrorCode::Internal, "handshake returned no session"))?;
    broker.audit(
        peer,
        "key_use",
        Some(key_name),
        ep.conn_name.as_deref(),
        format!("login {}@{}:{} for {purpose}", ep.user, ep.host, ep.port),
    )?;
    ssh::login(ep, &mut handle, key, key_name).await?;
    if let Some(seen) = &login.seen {
        pin_if_new(broker, peer, ep, seen)?;
    }
    Ok((handle, login.lost))
}

/// The fingerprint of the key `r` logs in with.
pub fn key_fingerprint(broker: &Broker, r: &Resolved) -> Result<String, Fail> {
    let key_name = r.key.as_deref().ok_or_else(|| no_key(&r.endpoint))?;
    Ok(broker
        .db()?
        .key(key_name)
        .map_err(Fail::internal)?
        .ok_or_else(|| Fail::not_found("key", key_name, "see `sshkeep key list`"))?
        .fingerprint)
}
