//! Turning a target (a saved connection, `user@host[:port]` or a `~/.ssh/config` alias) into an
//! authenticated SSH login.

mod alias;
pub mod creds;
mod resolve;
pub mod test;

use std::sync::Arc;

use russh::client::Handle;

use crate::broker::core::fail::Fail;
use crate::broker::core::sessions::{Occupancy, Reuse, session_for};
use crate::broker::core::{Core, Peer};
use crate::db::{Pin, now};
use crate::protocol::{ErrorCode, NextStep};
use crate::ssh::{self, Endpoint, HostKeyStatus, SeenHostKey};

pub use resolve::{Resolved, find_conn, refreshed, resolve};

/// `~/.ssh/known_hosts`, read to accept keys the user already trusts. Never written.
pub fn known_hosts() -> Option<std::path::PathBuf> {
    std::env::home_dir().map(|h| h.join(".ssh").join("known_hosts"))
}

fn no_key(ep: &Endpoint) -> Fail {
    match &ep.conn_name {
        Some(n) => Fail::then(
            ErrorCode::NoKey,
            format!("connection '{n}' has no key linked"),
            NextStep::LinkKey { conn: n.clone() },
        ),
        None => Fail::then(
            ErrorCode::NoKey,
            format!("no key for {}@{}:{}", ep.user, ep.host, ep.port),
            NextStep::SaveConnWithKey {
                user: ep.user.clone(),
                host: ep.host.clone(),
                port: ep.port,
            },
        ),
    }
}

/// Decrypts a secret sealed to the vault (a key, a stored password), counting it as a use for
/// the idle lock; a locked vault says so, with why it locked.
pub fn open_sealed(broker: &Core, sealed: &[u8]) -> Result<sshkeep_vault::SecretBytes, Fail> {
    let slot = broker.vault()?;
    let Some(vault) = slot.as_ref() else {
        drop(slot);
        return Err(broker.no_vault());
    };
    let plain = vault.open_sealed(sealed).map_err(|e| match e {
        sshkeep_vault::VaultError::Locked => {
            let why = broker.lock_note();
            Fail::then(
                ErrorCode::VaultLocked,
                format!("the vault is locked{why}: open sessions stay open"),
                NextStep::Unlock,
            )
        }
        e => Fail::from(e),
    })?;
    broker.key_used();
    Ok(plain)
}

/// Decrypts a key from the vault for one login. The returned key zeroizes itself when its last
/// holder drops it.
pub fn unseal_key(
    broker: &Core,
    name: &str,
) -> Result<(std::sync::Arc<russh::keys::PrivateKey>, String), Fail> {
    let row = broker
        .db()?
        .key(name)?
        .ok_or_else(|| Fail::unknown("key", name, NextStep::ListKeys))?;
    if let Some(socket) = &row.held_by {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "key '{name}' stays in the ssh-agent at {socket}: sshkeep holds only its public half"
            ),
        ));
    }
    if row.retired.is_some() {
        return Err(Fail::then(
            ErrorCode::NoKey,
            format!("key '{name}' was retired by a rotation and is disabled"),
            NextStep::RetiredKey {
                key: name.to_string(),
            },
        ));
    }
    let plain = open_sealed(broker, &row.sealed)?;
    let key = crate::keys::load(plain.expose()).map_err(|_| {
        Fail::new(
            ErrorCode::InvalidKey,
            format!("key '{name}' in the vault is damaged"),
        )
    })?;
    Ok((key, row.fingerprint))
}

/// What a login with key `name` signs with: the key unsealed from the vault, or, for a key that
/// stays in another ssh-agent, that agent's socket and the public half.
pub fn credential(broker: &Core, name: &str) -> Result<ssh::Credential, Fail> {
    let row = broker
        .db()?
        .key(name)?
        .ok_or_else(|| Fail::unknown("key", name, NextStep::ListKeys))?;
    match row.held_by {
        Some(socket) if row.retired.is_none() => {
            let public = russh::keys::PublicKey::from_openssh(&row.public_key).map_err(|_| {
                Fail::new(
                    ErrorCode::InvalidKey,
                    format!("key '{name}' has a damaged public half"),
                )
            })?;
            broker.key_used();
            Ok(ssh::Credential::Agent { socket, public })
        }
        _ => Ok(ssh::Credential::Vault(unseal_key(broker, name)?.0)),
    }
}

/// Pins a key seen under `accept-new` after a successful login.
pub fn pin_if_new(
    broker: &Core,
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
    broker.db()?.set_pin(&ep.host, ep.port, &pin, now())?;
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
    broker: &Core,
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

/// A connection's link back from its handler: why it ended, and the channels its server opens.
pub type LostSlot = Arc<ssh::Link>;

/// A way to `r` through its last jump host: a `direct-tcpip` channel on the hop's session (the
/// hop reached the same way, through the hops before it), and the hold that keeps the hop's
/// session open while the tunnel is in use. `None` for a connection without jump hosts.
pub fn tunnel_for<'a>(broker: &'a Arc<Core>, peer: &'a Peer, r: &'a Resolved) -> TunnelFuture<'a> {
    // Boxed, with its type spelled out: the hop's login may come back through this function,
    // and a recursive async fn has no nameable (or provably Send) future otherwise.
    Box::pin(async move {
        let Some((last, before)) = r.jump.split_last() else {
            return Ok(None);
        };
        let mut hop = resolve(broker, last, None)?;
        hop.jump = before.to_vec();
        // A bastion's session is shared by everything behind it: one login, many channels.
        let (session, mut hold) = session_for(broker, peer, &hop, "jump", Reuse::Shared).await?;
        hold.running();
        let handle = session.wait_open().await?;
        let ep = &r.endpoint;
        let channel = handle
            .channel_open_direct_tcpip(ep.host.clone(), u32::from(ep.port), "127.0.0.1", 0)
            .await
            .map_err(|e| {
                Fail::new(
                    ErrorCode::Unreachable,
                    format!(
                        "jump host {} could not reach {}:{}: {e} (the bastion's AllowTcpForwarding, or the address as the bastion sees it)",
                        session.label, ep.host, ep.port
                    ),
                )
            })?;
        Ok(Some((channel.into_stream(), hold)))
    })
}

/// What [`tunnel_for`] returns.
pub type TunnelFuture<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<Option<(ssh::Tunnel, Occupancy)>, Fail>>
            + Send
            + 'a,
    >,
>;

/// Connects (through the jump hosts, when the connection has some) and logs in to `r` with its
/// key: host-key verification, pinning on first use, and an audit record of the key's use. The
/// hold keeps the last jump host's session open for as long as this login's session lives.
pub async fn login(
    broker: &Arc<Core>,
    peer: &Peer,
    r: &Resolved,
    purpose: &str,
) -> Result<(Handle<ssh::Verifier>, LostSlot, Option<Occupancy>), Fail> {
    login_counted(broker, peer, r, purpose)
        .await
        .map(|(handle, link, hold, _)| (handle, link, hold))
}

/// Like [`login`], also saying whether the person at the terminal answered questions of this
/// target's own login (a jump host's login, made on the way, does not count).
pub async fn login_counted(
    broker: &Arc<Core>,
    peer: &Peer,
    r: &Resolved,
    purpose: &str,
) -> Result<(Handle<ssh::Verifier>, LostSlot, Option<Occupancy>, bool), Fail> {
    let ep = &r.endpoint;
    // Decrypt before connecting so a locked vault fails fast, without network traffic.
    let creds = creds::unseal(broker, r)?;
    let pin = broker.db()?.pin(&ep.host, ep.port)?;
    let (via, hold) = match tunnel_for(broker, peer, r).await? {
        Some((t, h)) => (Some(t), Some(h)),
        None => (None, None),
    };
    let (login, connected) = ssh::connect(ep, pin, known_hosts(), via).await;
    if let Err(e) = connected {
        audit_refusal(broker, peer, ep, login.seen.as_ref())?;
        return Err(e.into());
    }
    let mut handle = login
        .handle
        .ok_or_else(|| Fail::new(ErrorCode::Internal, "handshake returned no session"))?;
    creds::audit_use(broker, peer, ep, &creds, purpose)?;
    let asked_before = peer.person.as_ref().map_or(0, |p| p.answered());
    let result = ssh::authenticate(ep, &mut handle, creds, peer.person.as_ref()).await;
    let by_person = peer.person.as_ref().map_or(0, |p| p.answered()) > asked_before;
    audit_person(broker, peer, ep, asked_before, result.is_ok())?;
    result?;
    if let Some(seen) = &login.seen {
        pin_if_new(broker, peer, ep, seen)?;
    }
    if let (true, Some(seen)) = (r.forward_agent, &login.seen) {
        // The one place the core reaches into a feature: the forwarded agent is served by the
        // agent socket's code, with only the keys marked for forwarding.
        crate::broker::agent::forward_to(
            broker,
            peer,
            &login.link,
            crate::broker::agent::Hop {
                conn: ep.conn_name.clone(),
                label: format!("{}@{}:{}", ep.user, ep.host, ep.port),
                host_key: seen.fingerprint.clone(),
            },
        );
    }
    Ok((handle, login.link, hold, by_person))
}

/// Records that the person at the terminal answered a login's questions: how many, never what.
pub fn audit_person(
    broker: &Core,
    peer: &Peer,
    ep: &Endpoint,
    before: usize,
    accepted: bool,
) -> Result<(), Fail> {
    let n = peer.person.as_ref().map_or(0, |p| p.answered()) - before;
    if n == 0 {
        return Ok(());
    }
    broker.audit(
        peer,
        "login_answered",
        None,
        ep.conn_name.as_deref(),
        format!(
            "login {}@{}:{}: the person at the terminal answered {n} question{} ({})",
            ep.user,
            ep.host,
            ep.port,
            if n == 1 { "" } else { "s" },
            if accepted { "logged in" } else { "refused" }
        ),
    )?;
    Ok(())
}

/// The fingerprint of the key `r` logs in with.
pub fn key_fingerprint(broker: &Core, r: &Resolved) -> Result<String, Fail> {
    let Some(key_name) = r.key.as_deref() else {
        // A login by stored password alone: its sessions are told apart by the secret's name.
        return match creds::password_name(broker, r)? {
            Some(s) => Ok(format!("password:{s}")),
            None => Err(no_key(&r.endpoint)),
        };
    };
    Ok(broker
        .db()?
        .key(key_name)?
        .ok_or_else(|| Fail::unknown("key", key_name, NextStep::ListKeys))?
        .fingerprint)
}
