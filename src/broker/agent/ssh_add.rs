//! `ssh-add`, `ssh-add -d` and `ssh-add -D` on the agent socket: each change is audited (the
//! key's name and fingerprint, never its bytes). Refused on agent channels a server opened back.

use std::sync::Arc;

use russh::keys::PublicKey;

use super::constraint::Bind;
use super::{Client, Hop, added, wire};
use crate::broker::core::{Core, Peer};

/// Audits a refusal and answers `SSH_AGENT_FAILURE`.
pub(super) fn refuse(broker: &Core, client: &Client, name: Option<&str>, why: &str) -> Vec<u8> {
    let peer = &client.peer;
    tracing::warn!(pid = ?peer.pid, exe = ?peer.exe, "agent socket: {why}");
    let _ = broker.audit(
        peer,
        "agent_refused",
        name,
        client.hop.as_ref().and_then(|h| h.conn.as_deref()),
        why,
    );
    wire::failure()
}

/// Why keys may not be added or removed on this connection, if they may not: a remote host must
/// not plant or drop keys. Refused on a channel a server of sshkeep's opened back, and on any
/// connection whose client bound a session (session-bind@openssh.com), whether as forwarded or
/// not, or tried to and failed (OpenSSH's `ssh -A` binds with a host certificate for hosts that
/// use one, which sshkeep cannot check): a real local `ssh-add` never binds. A client that
/// forwards without binding (PuTTY, old OpenSSH) cannot be told from a local one.
fn not_local(hop: Option<&Hop>, binds: &[Bind], bind_failed: bool) -> Option<String> {
    if let Some(hop) = hop {
        return Some(format!("the agent forwarded to {}", hop.label));
    }
    if let Some(b) = binds.iter().find(|b| b.forwarding) {
        return Some(format!(
            "the agent forwarded to the host with key {}",
            b.host_key
        ));
    }
    if let Some(b) = binds.first() {
        return Some(format!(
            "a connection bound to a session with the host with key {} (a local ssh-add binds none)",
            b.host_key
        ));
    }
    bind_failed.then(|| {
        "a connection whose session-bind failed (it may come from a forwarded agent)".to_string()
    })
}

/// Audits and refuses `what` when the connection is not a local `ssh-add`'s (`not_local`).
fn forwarded(broker: &Core, client: &Client, what: &str) -> Option<Vec<u8>> {
    let to = not_local(client.hop.as_ref(), &client.binds, client.bind_failed)?;
    Some(refuse(
        broker,
        client,
        None,
        &format!("{what} through {to} is refused"),
    ))
}

/// The vault key with this public key blob, if any.
pub(super) fn vault_key(broker: &Core, blob: &[u8]) -> Option<String> {
    broker.db().ok()?.keys().ok()?.into_iter().find_map(|k| {
        let b = PublicKey::from_openssh(&k.public_key)
            .ok()?
            .to_bytes()
            .ok()?;
        (b == blob).then_some(k.name)
    })
}

/// `SSH_AGENTC_ADD_IDENTITY` / `SSH_AGENTC_ADD_ID_CONSTRAINED`.
pub fn add(broker: &Arc<Core>, client: &Client, body: &[u8]) -> Vec<u8> {
    if let Some(no) = forwarded(broker, client, "adding a key") {
        return no;
    }
    let mut key = match added::parse_add(body) {
        Ok(k) => k,
        Err(why) => return refuse(broker, client, None, &format!("ssh-add refused: {why}")),
    };
    if let Some(name) = vault_key(broker, &key.blob) {
        return refuse(
            broker,
            client,
            Some(&name),
            &format!(
                "ssh-add refused: the key is sshkeep's '{name}' already (`sshkeep key agent {name} --offer` offers it)"
            ),
        );
    }
    key.by = client.peer.clone();
    let (name, what) = (key.name.clone(), key.describe());
    if let Err(why) = broker.agent_added().add(key) {
        return refuse(
            broker,
            client,
            Some(&name),
            &format!("ssh-add refused: {why}"),
        );
    }
    tracing::info!(key = %name, pid = ?client.peer.pid, "ssh-add added a key to the agent socket");
    let _ = broker.audit(
        &client.peer,
        "agent_add",
        Some(&name),
        None,
        format!("added by ssh-add, held in memory only: {what}"),
    );
    wire::success()
}

/// Longest the reaper sleeps while a key has a lifetime: the wall clock may jump (a resume from
/// sleep), which no timer sees.
const REAP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The one task that ends lifetimes (`ssh-add -t`): it wakes at the first end (at the latest
/// every `REAP_EVERY` while a key has a lifetime, and when keys come or expire), wipes the keys
/// whose lifetime ended and audits each, including those dropped on access meanwhile.
pub async fn reap(broker: Arc<Core>) {
    let keys = broker.agent_added();
    loop {
        match keys.next_expiry() {
            Some(left) => {
                tokio::select! {
                    () = tokio::time::sleep(left.min(REAP_EVERY)) => {}
                    () = keys.wake.notified() => {}
                }
            }
            None => keys.wake.notified().await,
        }
        for gone in keys.expire() {
            let _ = broker.audit(
                &gone.by,
                "agent_remove",
                Some(&gone.name),
                None,
                "a key added by ssh-add reached the end of its lifetime and was wiped",
            );
        }
    }
}

/// A key the vault took (`key add`): the copy `ssh-add` gave the socket goes, so the vault's
/// rules (offer, confirm, destinations) are the only ones for it.
pub fn vault_took(broker: &Core, peer: &Peer, public_line: &str) {
    let Some(blob) = russh::keys::PublicKey::from_openssh(public_line)
        .ok()
        .and_then(|k| k.to_bytes().ok())
    else {
        return;
    };
    if let Some(name) = broker.agent_added().remove(&blob) {
        let _ = broker.audit(
            peer,
            "agent_remove",
            Some(&name),
            None,
            "the key added by ssh-add is in the vault now: the added copy was wiped, the vault's agent options apply",
        );
    }
}

/// `SSH_AGENTC_REMOVE_IDENTITY` (`blob`) or `SSH_AGENTC_REMOVE_ALL_IDENTITIES` (`None`): only
/// keys added through the socket go; the vault's keys are never removed here.
pub fn remove(broker: &Core, client: &Client, blob: Option<&[u8]>) -> Vec<u8> {
    if let Some(no) = forwarded(broker, client, "removing keys") {
        return no;
    }
    let audit = |name: &str, detail: &str| {
        let _ = broker.audit(&client.peer, "agent_remove", Some(name), None, detail);
    };
    match blob {
        Some(blob) => match broker.agent_added().remove(blob) {
            Some(name) => {
                audit(&name, "removed by ssh-add -d and wiped");
                wire::success()
            }
            None => match vault_key(broker, blob) {
                Some(name) => refuse(
                    broker,
                    client,
                    Some(&name),
                    &format!(
                        "ssh-add -d of sshkeep's key '{name}' is refused: `sshkeep key agent {name} --no-offer` stops offering it"
                    ),
                ),
                None => wire::failure(),
            },
        },
        None => {
            for name in broker.agent_added().remove_all() {
                audit(
                    &name,
                    "removed by ssh-add -D and wiped (vault keys stay offered)",
                );
            }
            wire::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(fwd: bool) -> Bind {
        Bind {
            host_key: "SHA256:h".into(),
            session_id: b"s".to_vec(),
            forwarding: fwd,
        }
    }

    #[test]
    fn only_a_connection_that_never_bound_may_add_or_remove() {
        assert_eq!(not_local(None, &[], false), None, "a local ssh-add");
        let hop = Hop {
            conn: None,
            label: "me@web1:22".into(),
            host_key: "SHA256:h".into(),
        };
        assert!(not_local(Some(&hop), &[], false).is_some_and(|w| w.contains("web1")));
        assert!(not_local(None, &[bind(true)], false).is_some());
        assert!(not_local(None, &[bind(false)], false).is_some());
        // `ssh -A` to a host with a host certificate: its bind fails and nothing is recorded.
        assert!(not_local(None, &[], true).is_some_and(|w| w.contains("session-bind failed")));
    }
}
