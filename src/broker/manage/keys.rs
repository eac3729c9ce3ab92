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

/// `key agent`: how the ssh-agent socket treats a key.
pub fn agent_options(
    broker: &Core,
    peer: &Peer,
    name: &str,
    offer: Option<bool>,
    confirm: Option<bool>,
    lifetime_secs: Option<u64>,
) -> Result<Response, Fail> {
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
            "offer {} confirm {} until {:?}",
            o.offer, o.confirm, o.until
        ),
    )?;
    show(broker, name)
}
