//! The broker as an ssh-agent: OpenSSH's `ssh`, `git` and `scp` list and use the keys the user
//! chose to offer (`sshkeep key agent NAME --offer`) without the keys leaving the broker. The
//! socket is owner-only with a peer-uid check, like the broker's own. Each signature is decrypted
//! for the moment of signing and audited with the client's pid and executable; keys marked
//! `confirm` need a yes from the user first (no prompt possible: refused, loudly). Adding,
//! removing and locking through the socket are refused.

mod wire;

use std::path::PathBuf;
use std::sync::Arc;

use interprocess::local_socket::tokio::Stream;
use russh::keys::ssh_encoding::Encode;
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use self::wire::AgentRequest;
use crate::broker::core::confirm;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::unseal_key;
use crate::broker::core::{Core, Peer, listener};
use crate::protocol::Response;

/// Serves the agent socket until the broker stops.
pub async fn serve(broker: Arc<Core>, path: PathBuf) {
    let listener = match listener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("the ssh-agent socket is not available: {e:#}");
            return;
        }
    };
    let own = crate::system::current_uid();
    let mut backoff = listener::AcceptBackoff::default();
    loop {
        match listener::accept(&listener, own, false).await {
            Ok((stream, peer)) => {
                backoff.ok();
                tokio::spawn(connection(broker.clone(), stream, peer));
            }
            Err(e) => backoff.failed("agent socket", &e).await,
        }
    }
}

/// `agent status`: the socket and the keys offered on it now.
pub fn status(broker: &Core) -> Result<Response, Fail> {
    Ok(Response::AgentStatus {
        socket: broker.paths().agent_socket().display().to_string(),
        offered: broker
            .db()?
            .keys()?
            .into_iter()
            .filter(|k| {
                k.agent.offer
                    && k.retired.is_none()
                    && k.agent.until.is_none_or(|u| u > crate::db::now())
            })
            .map(|k| k.name)
            .collect(),
    })
}

async fn connection(broker: Arc<Core>, stream: Stream, peer: Peer) {
    let mut rx = &stream;
    let mut tx = &stream;
    loop {
        let mut len = [0u8; 4];
        if rx.read_exact(&mut len).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > wire::MAX_MESSAGE {
            tracing::warn!(pid = ?peer.pid, len, "agent client sent an oversized message; closing");
            return;
        }
        let mut body = vec![0u8; len];
        if rx.read_exact(&mut body).await.is_err() {
            return;
        }
        let reply = answer(&broker, &peer, &body).await;
        if tx.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// One offered key.
struct Offered {
    name: String,
    blob: Vec<u8>,
    confirm: bool,
}

/// The keys offered now (not retired, within their lifetime).
fn offered(broker: &Core) -> Vec<Offered> {
    let Ok(db) = broker.db() else {
        return Vec::new();
    };
    let now = crate::db::now();
    db.keys()
        .unwrap_or_default()
        .into_iter()
        .filter(|k| k.agent.offer && k.retired.is_none() && k.agent.until.is_none_or(|u| u > now))
        .filter_map(|k| {
            let blob = PublicKey::from_openssh(&k.public_key)
                .ok()?
                .to_bytes()
                .ok()?;
            Some(Offered {
                name: k.name,
                blob,
                confirm: k.agent.confirm,
            })
        })
        .collect()
}

async fn answer(broker: &Arc<Core>, peer: &Peer, body: &[u8]) -> Vec<u8> {
    match wire::parse(body) {
        Some(AgentRequest::Identities) => {
            let keys: Vec<_> = offered(broker)
                .into_iter()
                .map(|k| (k.blob, format!("sshkeep:{}", k.name)))
                .collect();
            wire::identities(&keys)
        }
        Some(AgentRequest::Sign {
            key_blob,
            data,
            flags,
        }) => match sign(broker, peer, &key_blob, &data, flags).await {
            Ok(sig) => wire::signature(&sig),
            Err(()) => wire::failure(),
        },
        Some(AgentRequest::Refused(what)) => {
            tracing::warn!(pid = ?peer.pid, exe = ?peer.exe, "agent socket: {what} is refused");
            let _ = broker.audit(
                peer,
                "agent_refused",
                None,
                None,
                format!("{what} through the agent socket is refused: keys are managed with `sshkeep key`"),
            );
            wire::failure()
        }
        Some(AgentRequest::Unsupported(_)) | None => wire::failure(),
    }
}

async fn sign(
    broker: &Arc<Core>,
    peer: &Peer,
    blob: &[u8],
    data: &[u8],
    flags: u32,
) -> Result<Vec<u8>, ()> {
    let Some(key) = offered(broker).into_iter().find(|k| k.blob == blob) else {
        return Err(());
    };
    if key.confirm {
        let (name, p) = (key.name.clone(), peer.clone());
        let verdict = tokio::task::spawn_blocking(move || confirm::ask(&name, &p))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match verdict {
            Ok(true) => {}
            Ok(false) => {
                let _ = broker.audit(
                    peer,
                    "agent_sign_refused",
                    Some(&key.name),
                    None,
                    "the user declined",
                );
                return Err(());
            }
            Err(why) => {
                tracing::error!(key = %key.name, pid = ?peer.pid, "refused a signature that needs confirmation: {why}");
                let _ = broker.audit(
                    peer,
                    "agent_sign_refused",
                    Some(&key.name),
                    None,
                    format!("confirmation needed and no prompt could be shown: {why}"),
                );
                return Err(());
            }
        }
    }
    let private = match unseal_key(broker, &key.name) {
        Ok((k, _)) => k,
        Err(f) => {
            tracing::warn!(key = %key.name, "agent cannot sign: {}", f.message);
            let _ = broker.audit(peer, "agent_sign_refused", Some(&key.name), None, f.message);
            return Err(());
        }
    };
    let hash = if flags & wire::RSA_SHA2_512 != 0 {
        Some(HashAlg::Sha512)
    } else if flags & wire::RSA_SHA2_256 != 0 {
        Some(HashAlg::Sha256)
    } else {
        None
    };
    let sig = sign_with(&private, hash, data);
    drop(private);
    crate::system::wipe::secrets_touched();
    let sig = sig.map_err(|e| {
        tracing::warn!(key = %key.name, "agent signature failed: {e}");
    })?;
    let _ = broker.audit(
        peer,
        "agent_sign",
        Some(&key.name),
        None,
        format!("{} bytes signed", data.len()),
    );
    Ok(sig)
}

/// An SSH signature blob; RSA uses the hash the client asked for (SHA-1 is not offered).
fn sign_with(key: &PrivateKey, hash: Option<HashAlg>, data: &[u8]) -> Result<Vec<u8>, String> {
    use russh::keys::signature::Signer;
    use russh::keys::ssh_key::Signature;
    use russh::keys::ssh_key::private::KeypairData;
    let sig: Signature = match key.key_data() {
        KeypairData::Rsa(rsa) => {
            let hash = hash.ok_or(
                "the client asked for an ssh-rsa (SHA-1) signature, which sshkeep does not make",
            )?;
            Signer::try_sign(&(rsa, Some(hash)), data).map_err(|e| e.to_string())?
        }
        _ => Signer::try_sign(key, data).map_err(|e| e.to_string())?,
    };
    sig.encode_vec().map_err(|e| e.to_string())
}
