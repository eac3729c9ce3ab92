//! `ssh-add`, `ssh-add -d` and `ssh-add -D` on the agent socket: each change is audited (the
//! key's name and fingerprint, never its bytes). Refused on agent channels a server opened back.

use std::sync::Arc;

use russh::keys::PublicKey;

use super::{Client, added, wire};
use crate::broker::core::Core;

/// Audits a refusal and answers `SSH_AGENT_FAILURE`.
fn refuse(broker: &Core, client: &Client, name: Option<&str>, why: &str) -> Vec<u8> {
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

/// Refused on a forwarded agent, a remote host must not plant or drop keys: on a channel a
/// server of sshkeep's opened back, and on a connection OpenSSH's `ssh -A` bound as forwarded
/// (session-bind@openssh.com with its forwarding flag: the client is on the far host).
fn forwarded(broker: &Core, client: &Client, what: &str) -> Option<Vec<u8>> {
    let to = match (&client.hop, client.binds.iter().find(|b| b.forwarding)) {
        (Some(hop), _) => hop.label.clone(),
        (None, Some(b)) => format!("the host with key {}", b.host_key),
        (None, None) => return None,
    };
    Some(refuse(
        broker,
        client,
        None,
        &format!("{what} through the agent forwarded to {to} is refused"),
    ))
}

/// The vault key with this public key blob, if any.
fn vault_key(broker: &Core, blob: &[u8]) -> Option<String> {
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
    let key = match added::parse_add(body) {
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
    let (name, what, lifetime) = (key.name.clone(), key.describe(), key.lifetime());
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
    if let Some(after) = lifetime {
        let (broker, peer) = (broker.clone(), client.peer.clone());
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            for name in broker.agent_added().expire() {
                let _ = broker.audit(
                    &peer,
                    "agent_remove",
                    Some(&name),
                    None,
                    "a key added by ssh-add reached the end of its lifetime and was wiped",
                );
            }
        });
    }
    wire::success()
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
