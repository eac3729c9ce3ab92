//! Key requests. Private material arrives only in `add`, is sealed into the vault at once, and
//! is never sent back.

use std::sync::Arc;

use crate::protocol::SecretString;

use crate::broker::core::fail::Fail;
use crate::broker::core::keystore;
use crate::broker::core::{Core, Peer};
use crate::db::{KeyRow, now};
use crate::keys::{self, KeyError};
use crate::protocol::{ErrorCode, KeyInfo, KeyType, NextStep, Response};

fn info(broker: &Core, row: KeyRow) -> Result<KeyInfo, Fail> {
    let connections = broker.db()?.key_links(&row.name)?;
    let certificate = crate::broker::manage::certs::info(broker, &row.name)?;
    Ok(KeyInfo {
        certificate,
        name: row.name,
        algorithm: row.algorithm,
        fingerprint: row.fingerprint,
        comment: row.comment,
        public_key: row.public_key,
        connections,
        created: row.created,
        retired: row.retired,
        agent: row.agent,
        held_by: row.held_by,
    })
}

/// `key add`: works while the vault is locked (sealing needs only the public recipient).
pub fn add(
    broker: &Core,
    peer: &Peer,
    name: &str,
    text: &SecretString,
    passphrase: Option<&SecretString>,
) -> Result<Response, Fail> {
    keystore::precheck(broker, name)?;
    let new = keys::import(text, passphrase).map_err(|e| match e {
        KeyError::PassphraseRequired => Fail::new(
            ErrorCode::KeyPassphraseRequired,
            "the key is protected by a passphrase: give it (the CLI prompts, or use --passphrase-file)",
        ),
        KeyError::WrongPassphrase => {
            Fail::new(ErrorCode::KeyPassphraseWrong, "the passphrase does not decrypt this key; nothing was stored")
        }
        KeyError::Invalid(why) => Fail::new(ErrorCode::InvalidKey, format!("cannot import key '{name}': {}", KeyError::Invalid(why))),
    })?;
    let row = keystore::store(broker, peer, name, new, "key_add")?;
    Ok(Response::Key(info(broker, row)?))
}

/// `key add --from-agent`: records the public half of a key that stays in the ssh-agent at
/// `socket` (the one with `fingerprint`, or its only key). Nothing is sealed: there is nothing
/// secret to seal.
pub async fn add_from_agent(
    broker: &Core,
    peer: &Peer,
    name: &str,
    socket: &str,
    fingerprint: Option<&str>,
) -> Result<Response, Fail> {
    keystore::precheck(broker, name)?;
    if !std::path::Path::new(socket).is_absolute() {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("the agent socket must be an absolute path, not {socket:?}"),
        ));
    }
    if socket == broker.paths().agent_socket().to_string_lossy() {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            "that is sshkeep's own agent socket: its keys are in the vault already",
        ));
    }
    let held = crate::ssh::other_agent::identities(socket)
        .await
        .map_err(|e| Fail::new(ErrorCode::NoKey, e.to_string()))?;
    let fp = |k: &russh::keys::PublicKey| k.fingerprint(russh::keys::HashAlg::Sha256).to_string();
    let listed = || held.iter().map(fp).collect::<Vec<_>>().join(", ");
    let public = match fingerprint {
        Some(want) => held.iter().find(|k| fp(k) == want).ok_or_else(|| {
            Fail::new(
                ErrorCode::NoKey,
                format!(
                    "the ssh-agent at {socket} holds no key {want} (it holds: {})",
                    listed()
                ),
            )
        })?,
        None => match held.as_slice() {
            [one] => one,
            [] => {
                return Err(Fail::new(
                    ErrorCode::NoKey,
                    format!(
                        "the ssh-agent at {socket} holds no keys; add one there first (ssh-add)"
                    ),
                ));
            }
            _ => {
                return Err(Fail::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "the ssh-agent at {socket} holds several keys: choose one with --fingerprint ({})",
                        listed()
                    ),
                ));
            }
        },
    };
    let public_line = public
        .to_openssh()
        .map_err(|e| Fail::new(ErrorCode::InvalidKey, e.to_string()))?;
    let row = KeyRow {
        name: name.into(),
        algorithm: public.algorithm().to_string(),
        fingerprint: fp(public),
        comment: public.comment().to_string(),
        public_key: public_line,
        sealed: Vec::new(),
        created: now(),
        retired: None,
        agent: Default::default(),
        held_by: Some(socket.to_string()),
    };
    broker.db()?.insert_key(&row)?;
    broker.audit(
        peer,
        "key_add",
        Some(name),
        None,
        format!("{} held by the ssh-agent at {socket}", row.fingerprint),
    )?;
    crate::broker::agent::vault_took(broker, peer, &row.public_key);
    Ok(Response::Key(info(broker, row)?))
}

/// `key generate`.
pub async fn generate(
    broker: &Arc<Core>,
    peer: &Peer,
    name: &str,
    kind: KeyType,
) -> Result<Response, Fail> {
    let row = keystore::generate(broker, peer, name, kind, &format!("sshkeep:{name}")).await?;
    Ok(Response::Key(info(broker, row)?))
}

fn row(broker: &Core, name: &str) -> Result<KeyRow, Fail> {
    broker
        .db()?
        .key(name)?
        .ok_or_else(|| Fail::unknown("key", name, NextStep::ListKeys))
}

/// `key list`.
pub fn list(broker: &Core) -> Result<Response, Fail> {
    let rows = broker.db()?.keys()?;
    let keys = rows
        .into_iter()
        .map(|r| info(broker, r))
        .collect::<Result<_, _>>()?;
    Ok(Response::Keys { keys })
}

/// `key show` / `key pub`.
pub fn show(broker: &Core, name: &str) -> Result<Response, Fail> {
    Ok(Response::Key(info(broker, row(broker, name)?)?))
}

/// `key remove`.
pub fn remove(broker: &Core, peer: &Peer, name: &str, force: bool) -> Result<Response, Fail> {
    let k = row(broker, name)?;
    let links = broker.db()?.key_links(name)?;
    if !links.is_empty() && !force {
        return Err(Fail::then(
            ErrorCode::InvalidArgument,
            format!("key '{name}' is linked to {}", links.join(", ")),
            NextStep::UnlinkOrForce { key: name.into() },
        ));
    }
    broker.db()?.delete_key(name)?;
    broker.audit(peer, "key_remove", Some(name), None, k.fingerprint)?;
    Ok(Response::Ok {
        message: format!("key '{name}' removed from the vault"),
    })
}

/// `key link`.
pub fn link(broker: &Core, peer: &Peer, key: &str, conn: &str) -> Result<Response, Fail> {
    if row(broker, key)?.retired.is_some() {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("key '{key}' was retired by a rotation and cannot be linked"),
        ));
    }
    let c = crate::broker::core::login::find_conn(broker, conn)?;
    broker.db()?.set_conn_key(&c.id, Some(key))?;
    let detail = match &c.spec.key {
        Some(old) if old != key => format!("replaces key '{old}'"),
        _ => String::new(),
    };
    broker.audit(peer, "key_link", Some(key), Some(&c.spec.name), detail)?;
    Ok(Response::Ok {
        message: format!("key '{key}' linked to connection '{}'", c.spec.name),
    })
}

/// `key unlink`.
pub fn unlink(broker: &Core, peer: &Peer, key: &str, conn: &str) -> Result<Response, Fail> {
    let c = crate::broker::core::login::find_conn(broker, conn)?;
    if c.spec.key.as_deref() != Some(key) {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("key '{key}' is not linked to connection '{}'", c.spec.name),
        ));
    }
    broker.db()?.set_conn_key(&c.id, None)?;
    broker.audit(peer, "key_unlink", Some(key), Some(&c.spec.name), "")?;
    Ok(Response::Ok {
        message: format!("key '{key}' unlinked from connection '{}'", c.spec.name),
    })
}

/// What `key agent` changes (`None` keeps a value).
pub struct AgentChange {
    pub offer: Option<bool>,
    pub confirm: Option<bool>,
    pub lifetime_secs: Option<u64>,
    pub forward: Option<bool>,
    pub only_to: Option<Vec<String>>,
}

/// `key agent`: how the ssh-agent socket treats a key.
pub fn agent_options(
    broker: &Core,
    peer: &Peer,
    name: &str,
    change: AgentChange,
) -> Result<Response, Fail> {
    let AgentChange {
        offer,
        confirm,
        lifetime_secs,
        forward,
        only_to,
    } = change;
    let k = row(broker, name)?;
    if k.retired.is_some() && offer == Some(true) {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("key '{name}' is retired and cannot be offered"),
        ));
    }
    let mut o = k.agent.clone();
    if let Some(v) = offer {
        o.offer = v;
    }
    if let Some(v) = confirm {
        o.confirm = v;
    }
    if let Some(v) = forward {
        o.forward = v;
    }
    if let Some(hosts) = only_to {
        let hosts: Vec<String> = hosts
            .iter()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect();
        // Each name must stand for a host key now, so a typo is not a key that signs nothing.
        crate::broker::agent::check_only_to(broker, &hosts)?;
        o.only_to = hosts;
    }
    match lifetime_secs {
        Some(0) => o.until = None,
        Some(s) => o.until = Some(now() + s.min(i64::MAX as u64 / 2) as i64),
        None => {}
    }
    broker.db()?.set_agent_options(name, &o)?;
    broker.audit(
        peer,
        "key_agent",
        Some(name),
        None,
        format!(
            "offer {} confirm {} until {:?} forward {} only-to [{}]",
            o.offer,
            o.confirm,
            o.until,
            o.forward,
            o.only_to.join(",")
        ),
    )?;
    show(broker, name)
}
