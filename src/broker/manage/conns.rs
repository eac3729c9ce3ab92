//! Saved connections, `conn test` and `conn trust`.

use std::sync::Arc;

use crate::broker::core::fail::Fail;
use crate::broker::core::login::{self, find_conn, known_hosts, resolve};
use crate::broker::core::{Core, Peer};
use crate::db::{ConnRow, Pin, now};
use crate::protocol::{
    ClientGroup, ConnInfo, ConnSpec, ErrorCode, HostKeyPolicy, NextStep, Response,
};
use crate::ssh;
use crate::target::{canonical_host, validate_host, validate_name, validate_user};

fn invalid(e: String) -> Fail {
    Fail::new(ErrorCode::InvalidArgument, e)
}

fn info(broker: &Core, c: ConnRow) -> Result<ConnInfo, Fail> {
    let pinned_host_key = broker
        .db()?
        .pin(&c.spec.host, c.spec.port)?
        .map(|p| p.fingerprint);
    Ok(ConnInfo {
        id: c.id,
        spec: c.spec,
        pinned_host_key,
        created: c.created,
    })
}

/// `conn save`: creates, or updates the connection of that name.
pub fn save(broker: &Core, peer: &Peer, mut spec: ConnSpec) -> Result<Response, Fail> {
    validate_name("connection", &spec.name).map_err(invalid)?;
    validate_host(&spec.host).map_err(invalid)?;
    spec.host = canonical_host(&spec.host);
    validate_user(&spec.user).map_err(invalid)?;
    if let Some(c) = &spec.client {
        validate_name("client", c).map_err(invalid)?;
    }
    if spec.authorized_keys.is_empty()
        || spec.authorized_keys.len() > 1024
        || spec.authorized_keys.contains(['\0', '\n'])
    {
        return Err(invalid(
            "the authorized_keys path must be 1-1024 characters without NUL or newlines".into(),
        ));
    }
    if spec.port == 0
        || spec.keepalive_interval == 0
        || spec.keepalive_max == 0
        || spec.idle_timeout == 0
    {
        return Err(invalid(
            "port, keepalive interval, keepalive count and idle timeout must be above 0".into(),
        ));
    }
    let db = broker.db()?;
    if let Some(k) = &spec.key
        && db.key(k)?.is_none()
    {
        return Err(Fail::unknown("key", k, NextStep::AddKey));
    }
    // Every hop must be a saved connection, not the connection itself, and named once.
    if spec.jump.len() > 8 {
        return Err(invalid("at most 8 jump hosts".into()));
    }
    for (i, hop) in spec.jump.iter().enumerate() {
        if hop == &spec.name || spec.jump[..i].contains(hop) {
            return Err(invalid(format!(
                "jump host {hop:?} is named twice, or is the connection itself"
            )));
        }
        if db.conn_by_ref(hop)?.is_none_or(|c| &c.spec.name != hop) {
            return Err(Fail::not_found(
                "connection",
                hop,
                "save each jump host as a connection of its own first",
            ));
        }
    }
    let existing = db
        .conn_by_ref(&spec.name)?
        .filter(|c| c.spec.name == spec.name);
    let id = existing
        .as_ref()
        .map(|c| c.id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // A connection moved to another address keeps the host key it had: the new address gets
    // the old pin unless it has its own, so the move never pins a new key by itself (a changed
    // key there is refused until the user trusts it).
    let mut carried = None;
    if let Some(old) = &existing
        && (old.spec.host != spec.host || old.spec.port != spec.port)
        && let Some(pin) = db.pin(&old.spec.host, old.spec.port)?
        && db.pin(&spec.host, spec.port)?.is_none()
    {
        let pin = Pin {
            source: format!("carried from {}:{}", old.spec.host, old.spec.port),
            ..pin
        };
        db.set_pin(&spec.host, spec.port, &pin, now())?;
        carried = Some(pin.fingerprint);
    }
    let row = db.save_conn(&id, &spec, now())?;
    drop(db);
    if let Some(fp) = carried {
        broker.audit(
            peer,
            "host_key_carried",
            None,
            Some(&spec.name),
            format!("{}:{} keeps the pinned key {fp}", spec.host, spec.port),
        )?;
    }
    let op = if existing.is_some() {
        "conn_update"
    } else {
        "conn_save"
    };
    broker.audit(
        peer,
        op,
        spec.key.as_deref(),
        Some(&spec.name),
        format!(
            "{}@{}:{} policy {}",
            spec.user,
            spec.host,
            spec.port,
            spec.host_key_policy.as_str()
        ),
    )?;
    Ok(Response::Conn(info(broker, row)?))
}

/// `conn list`.
pub fn list(broker: &Core) -> Result<Response, Fail> {
    let rows = broker.db()?.conns()?;
    let conns = rows
        .into_iter()
        .map(|c| info(broker, c))
        .collect::<Result<_, _>>()?;
    Ok(Response::Conns { conns })
}

/// `conn show`.
pub fn show(broker: &Core, name: &str) -> Result<Response, Fail> {
    Ok(Response::Conn(info(broker, find_conn(broker, name)?)?))
}

/// `conn remove`.
pub fn remove(broker: &Core, peer: &Peer, name: &str) -> Result<Response, Fail> {
    let c = find_conn(broker, name)?;
    broker.db()?.delete_conn(&c.id)?;
    broker.audit(
        peer,
        "conn_remove",
        None,
        Some(&c.spec.name),
        format!("{}@{}:{}", c.spec.user, c.spec.host, c.spec.port),
    )?;
    Ok(Response::Ok {
        message: format!("connection '{}' removed", c.spec.name),
    })
}

/// `conn test`: reachability, host key, login with the linked key, timings (see
/// [`login::test`]).
pub async fn test(
    broker: &Arc<Core>,
    peer: &Peer,
    target: &str,
    key: Option<&str>,
) -> Result<Response, Fail> {
    login::test::run(broker, peer, target, key)
        .await
        .map(Response::TestReport)
}

fn valid_fingerprint(fp: &str) -> bool {
    fp.strip_prefix("SHA256:").is_some_and(|b| {
        b.len() == 43
            && b.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
    })
}

/// What vouches for a key other than `fingerprint` at `host:port`: sshkeep's pin, or
/// `~/.ssh/known_hosts` (an entry that cannot be read counts: it may vouch for another key).
fn vouched_otherwise(
    old: Option<&Pin>,
    host: &str,
    port: u16,
    fingerprint: &str,
) -> Option<(String, String)> {
    if let Some(p) = old.filter(|p| p.fingerprint != fingerprint) {
        return Some(("sshkeep's pin".into(), p.fingerprint.clone()));
    }
    let path = known_hosts()?;
    let known: Vec<String> = match russh::keys::known_hosts::known_host_keys_path(host, port, &path)
    {
        Ok(keys) => keys
            .iter()
            .map(|(_, k)| k.fingerprint(russh::keys::HashAlg::Sha256).to_string())
            .collect(),
        Err(_) => vec!["an entry sshkeep cannot read".into()],
    };
    if known.is_empty() || known.iter().any(|k| k == fingerprint) {
        return None;
    }
    Some((path.display().to_string(), known.join(", ")))
}

/// `conn trust`: pins the given fingerprint, or the key the server presents now. Without
/// `replace` (clients other than a person's CLI), a key that a pin or known_hosts vouches for
/// is never replaced.
pub async fn trust(
    broker: &Arc<Core>,
    peer: &Peer,
    target: &str,
    fingerprint: Option<String>,
    replace: bool,
) -> Result<Response, Fail> {
    let r = resolve(broker, target, None)?;
    let ep = &r.endpoint;
    let old = broker.db()?.pin(&ep.host, ep.port)?;
    let pin = match fingerprint {
        Some(fp) => {
            if !valid_fingerprint(&fp) {
                return Err(invalid(format!(
                    "{fp:?} is not a SHA256 fingerprint like SHA256:AbC...(43 characters); `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server prints it"
                )));
            }
            Pin {
                algorithm: String::new(),
                fingerprint: fp,
                source: "trust-fingerprint".into(),
            }
        }
        None => {
            // Look at the key without trusting anything: no pin, no known_hosts, accept-new.
            let mut probe = ep.clone();
            probe.policy = HostKeyPolicy::AcceptNew;
            let (via, _hop) = match crate::broker::core::login::tunnel_for(broker, peer, &r).await?
            {
                Some((t, h)) => (Some(t), Some(h)),
                None => (None, None),
            };
            let (login, connected) = ssh::connect(&probe, None, None, via).await;
            connected.map_err(Fail::from)?;
            if let Some(h) = login.handle {
                let _ = h
                    .disconnect(russh::Disconnect::ByApplication, "trust done", "en")
                    .await;
            }
            let seen = login
                .seen
                .ok_or_else(|| Fail::new(ErrorCode::Ssh, "the server presented no host key"))?;
            Pin {
                algorithm: seen.algorithm,
                fingerprint: seen.fingerprint,
                source: "trust".into(),
            }
        }
    };
    if !replace
        && let Some((source, vouched)) =
            vouched_otherwise(old.as_ref(), &ep.host, ep.port, &pin.fingerprint)
    {
        let name = ep.conn_name.as_deref().unwrap_or(target);
        broker.audit(
            peer,
            "host_key_trust_refused",
            None,
            ep.conn_name.as_deref(),
            format!(
                "{}:{} {} vouched for by {source}; replacing it was refused",
                ep.host, ep.port, vouched
            ),
        )?;
        return Err(Fail::new(
            ErrorCode::HostKeyChanged,
            format!(
                "{}:{} already has a host key that {source} vouches for ({vouched}); replacing it is the user's decision: they verify the server's key out of band and run `sshkeep conn trust {name} --fingerprint SHA256:...` in a terminal",
                ep.host, ep.port
            ),
        ));
    }
    broker.db()?.set_pin(&ep.host, ep.port, &pin, now())?;
    let was = old
        .as_ref()
        .map(|p| p.fingerprint.as_str())
        .unwrap_or("nothing");
    broker.audit(
        peer,
        "host_key_trust",
        None,
        ep.conn_name.as_deref(),
        format!(
            "{}:{} pinned {} (was {was})",
            ep.host, ep.port, pin.fingerprint
        ),
    )?;
    Ok(Response::Ok {
        message: format!(
            "{}:{} host key pinned: {} (was {was})",
            ep.host, ep.port, pin.fingerprint
        ),
    })
}

/// `client list`: every client group with its connections.
pub fn clients(broker: &Core) -> Result<Response, Fail> {
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for c in broker.db()?.conns()? {
        if let Some(client) = c.spec.client {
            groups.entry(client).or_default().push(c.spec.name);
        }
    }
    let clients = groups
        .into_iter()
        .map(|(name, connections)| ClientGroup { name, connections })
        .collect();
    Ok(Response::Clients { clients })
}

/// `client assign` / `client remove`.
pub fn set_client(
    broker: &Core,
    peer: &Peer,
    client: Option<&str>,
    conns: &[String],
) -> Result<Response, Fail> {
    if let Some(c) = client {
        validate_name("client", c).map_err(invalid)?;
    }
    if conns.is_empty() {
        return Err(invalid("name at least one connection".into()));
    }
    // Resolve all first, so a bad name changes nothing.
    let rows = conns
        .iter()
        .map(|c| find_conn(broker, c))
        .collect::<Result<Vec<_>, _>>()?;
    for row in &rows {
        broker.db()?.set_conn_client(&row.id, client)?;
        let detail = match (client, &row.spec.client) {
            (Some(new), _) => format!("client {new}"),
            (None, Some(old)) => format!("removed from client {old}"),
            (None, None) => "had no client".into(),
        };
        broker.audit(peer, "conn_client", None, Some(&row.spec.name), detail)?;
    }
    clients(broker)
}
