//! The broker as an ssh-agent: OpenSSH's `ssh`, `git` and `scp` list and use the keys the user
//! chose to offer (`sshkeep key agent NAME --offer`) without the keys leaving the broker. The
//! socket is owner-only with a peer-uid check, like the broker's own. Each signature is decrypted
//! for the moment of signing and audited with the client's pid and executable; keys marked
//! `confirm` need a yes from the user first (no prompt possible: refused, loudly).
//!
//! OpenSSH's `ssh-add` may add keys on the socket (`added`): they stay in the broker's memory
//! only, with ssh-agent's constraints (`-t`, `-c`, `-h`). `ssh-add -d`/`-D` remove only those;
//! keys of the vault are never removed through the socket. Locking stays refused, and no key is
//! added or removed on an agent channel a server opened back (a remote host plants nothing).
//!
//! The same conversation is served on agent channels that servers open back on sessions saved
//! with `--forward-agent` (only keys marked `--forward`), and keys with destination constraints
//! sign only for sessions bound to the hosts they allow (`constraint`). Keys that stay in
//! another ssh-agent are signed for by that agent.

mod added;
mod constraint;
mod ssh_add;
mod wire;

pub use added::AddedKeys;
pub use ssh_add::vault_took;

use std::path::PathBuf;
use std::sync::Arc;

use interprocess::local_socket::tokio::Stream;
use russh::keys::ssh_encoding::Encode;
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use self::constraint::Bind;
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
    tokio::spawn(ssh_add::reap(broker.clone()));
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

/// Checks that each destination-constraint entry names a host key sshkeep knows.
pub fn check_only_to(broker: &Core, hosts: &[String]) -> Result<(), Fail> {
    constraint::hops(broker, hosts).map(|_| ())
}

/// `agent status`: the socket and the keys offered on it now.
pub fn status(broker: &Core) -> Result<Response, Fail> {
    Ok(Response::AgentStatus {
        socket: broker.paths().agent_socket().display().to_string(),
        offered: broker
            .db()?
            .keys()?
            .into_iter()
            .filter(|k| live(&k.agent, k.retired) && k.agent.offer)
            .map(|k| k.name)
            .collect(),
        added: broker.agent_added().info(),
    })
}

/// Who talks on one agent connection, and the sessions its clients bound to it.
struct Client {
    peer: Peer,
    /// Set on an agent channel a server opened back (sshkeep forwarded its agent there).
    hop: Option<Hop>,
    binds: Vec<Bind>,
    /// A session-bind failed: constrained keys sign nothing on this connection any more.
    bind_failed: bool,
}

/// The server an agent channel was forwarded to.
#[derive(Clone)]
pub struct Hop {
    pub conn: Option<String>,
    /// `user@host:port`.
    pub label: String,
    /// The server's host key (SHA256 fingerprint), as verified at login.
    pub host_key: String,
}

async fn connection(broker: Arc<Core>, stream: Stream, peer: Peer) {
    let client = Client {
        peer,
        hop: None,
        binds: Vec::new(),
        bind_failed: false,
    };
    converse(broker, &stream, &stream, client).await;
}

/// Serves agent channels the server of one session opens (the session was saved with
/// `--forward-agent`), until the session ends.
pub fn forward_to(broker: &Arc<Core>, peer: &Peer, link: &crate::ssh::Link, hop: Hop) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    link.forward_agent(tx);
    let (broker, peer) = (broker.clone(), peer.clone());
    tokio::spawn(async move {
        while let Some(channel) = rx.recv().await {
            let client = Client {
                peer: peer.clone(),
                hop: Some(hop.clone()),
                // sshkeep knows the first hop first hand: the server it logged in to.
                binds: vec![Bind {
                    host_key: hop.host_key.clone(),
                    session_id: Vec::new(),
                    forwarding: true,
                }],
                bind_failed: false,
            };
            let broker = broker.clone();
            tokio::spawn(async move {
                let (rx, tx) = tokio::io::split(channel.into_stream());
                converse(broker, rx, tx, client).await;
            });
        }
    });
}

async fn converse<R, W>(broker: Arc<Core>, mut rx: R, mut tx: W, mut client: Client)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let mut len = [0u8; 4];
        if rx.read_exact(&mut len).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > wire::MAX_MESSAGE {
            tracing::warn!(pid = ?client.peer.pid, len, "agent client sent an oversized message; closing");
            return;
        }
        // An added key's private part may come in this buffer: wiped when dropped, also when
        // the client stops half way.
        let mut body = zeroize::Zeroizing::new(vec![0u8; len]);
        if rx.read_exact(&mut body).await.is_err() {
            return;
        }
        let reply = answer(&broker, &mut client, &body).await;
        drop(body);
        if tx.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// Whether a key's agent options are in force now.
fn live(o: &crate::protocol::AgentOptions, retired: Option<i64>) -> bool {
    retired.is_none() && o.until.is_none_or(|u| u > crate::db::now())
}

/// The public key blobs of all the vault's keys (offered or not).
fn vault_blobs(broker: &Core) -> Vec<Vec<u8>> {
    let Ok(db) = broker.db() else {
        return Vec::new();
    };
    db.keys()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|k| PublicKey::from_openssh(&k.public_key).ok()?.to_bytes().ok())
        .collect()
}

/// One offered key.
struct Offered {
    name: String,
    blob: Vec<u8>,
    confirm: bool,
    only_to: Vec<String>,
    held_by: Option<(String, PublicKey)>,
}

/// The keys offered now (not retired, within their lifetime): on the socket those marked
/// `offer`, on a forwarded channel those marked `forward`.
fn offered(broker: &Core, forwarded: bool) -> Vec<Offered> {
    let Ok(db) = broker.db() else {
        return Vec::new();
    };
    db.keys()
        .unwrap_or_default()
        .into_iter()
        .filter(|k| live(&k.agent, k.retired))
        .filter(|k| {
            if forwarded {
                k.agent.forward
            } else {
                k.agent.offer
            }
        })
        .filter_map(|k| {
            let public = PublicKey::from_openssh(&k.public_key).ok()?;
            let blob = public.to_bytes().ok()?;
            Some(Offered {
                name: k.name,
                blob,
                confirm: k.agent.confirm,
                only_to: k.agent.only_to,
                held_by: k.held_by.map(|s| (s, public)),
            })
        })
        .collect()
}

async fn answer(broker: &Arc<Core>, client: &mut Client, body: &[u8]) -> Vec<u8> {
    match wire::parse(body) {
        Some(AgentRequest::Identities) => {
            let mut keys: Vec<_> = offered(broker, client.hop.is_some())
                .into_iter()
                .map(|k| (k.blob, format!("sshkeep:{}", k.name)))
                .collect();
            if client.hop.is_none() {
                // A key the vault holds follows the vault's options, even if ssh-add gave it too.
                let added = broker.agent_added().identities();
                let vault = vault_blobs(broker);
                let fresh: Vec<_> = added
                    .into_iter()
                    .filter(|(b, _)| !vault.contains(b))
                    .collect();
                keys.extend(fresh);
            }
            wire::identities(&keys)
        }
        Some(AgentRequest::Sign {
            key_blob,
            data,
            flags,
        }) => match sign(broker, client, &key_blob, &data, flags).await {
            Ok(sig) => wire::signature(&sig),
            Err(()) => wire::failure(),
        },
        Some(AgentRequest::Extension { name, body }) if name == b"session-bind@openssh.com" => {
            bind(client, &body)
        }
        Some(AgentRequest::Add) => ssh_add::add(broker, client, &body[1..]),
        Some(AgentRequest::Remove { key_blob }) => ssh_add::remove(broker, client, Some(&key_blob)),
        Some(AgentRequest::RemoveAll) => ssh_add::remove(broker, client, None),
        Some(AgentRequest::Refused(what)) => ssh_add::refuse(
            broker,
            client,
            None,
            &format!(
                "{what} through the agent socket is refused: keys are managed with `sshkeep key`"
            ),
        ),
        Some(AgentRequest::Extension { .. } | AgentRequest::Unsupported(_)) | None => {
            wire::failure()
        }
    }
}

/// `session-bind@openssh.com`: records the session a client binds, once its host key's
/// signature verifies.
fn bind(client: &mut Client, body: &[u8]) -> Vec<u8> {
    let bound = constraint::session_bind(body).and_then(|b| {
        match client.binds.iter().find(|o| o.session_id == b.session_id) {
            Some(o) if *o == b => Ok(None),
            Some(_) => Err("the session was bound before to another host key"),
            None if client.binds.len() >= constraint::MAX_BINDS => Err("too many bound sessions"),
            None => Ok(Some(b)),
        }
    });
    match bound {
        Ok(Some(b)) => {
            tracing::debug!(host_key = %b.host_key, forwarding = b.forwarding, "agent session bound");
            client.binds.push(b);
            wire::success()
        }
        Ok(None) => wire::success(),
        Err(why) => {
            tracing::warn!(pid = ?client.peer.pid, "agent session-bind refused: {why}");
            client.bind_failed = true;
            wire::failure()
        }
    }
}

/// The audit's words for where a signature went.
fn route(client: &Client) -> String {
    let mut s = match &client.hop {
        Some(h) => format!(" for a client on {} (forwarded agent)", h.label),
        None => String::new(),
    };
    let hosts: Vec<&str> = client
        .binds
        .iter()
        .filter(|b| !b.session_id.is_empty())
        .map(|b| b.host_key.as_str())
        .collect();
    if !hosts.is_empty() {
        s.push_str(&format!(", bound to host key {}", hosts.join(" -> ")));
    }
    s
}

/// The hash an RSA signature uses, from the request's flags.
fn rsa_hash(flags: u32) -> Option<HashAlg> {
    if flags & wire::RSA_SHA2_512 != 0 {
        Some(HashAlg::Sha512)
    } else if flags & wire::RSA_SHA2_256 != 0 {
        Some(HashAlg::Sha256)
    } else {
        None
    }
}

async fn sign(
    broker: &Arc<Core>,
    client: &Client,
    blob: &[u8],
    data: &[u8],
    flags: u32,
) -> Result<Vec<u8>, ()> {
    let peer = &client.peer;
    let conn = client.hop.as_ref().and_then(|h| h.conn.as_deref());
    // Keys ssh-add gave the socket are served on it alone, not on forwarded channels; a key the
    // vault holds too follows the vault's options only (offered or not, confirm, destinations).
    let vault = offered(broker, client.hop.is_some())
        .into_iter()
        .find(|k| k.blob == blob);
    let added = match (&client.hop, &vault) {
        (None, None) if !vault_blobs(broker).iter().any(|b| b == blob) => {
            broker.agent_added().meta(blob)
        }
        _ => None,
    };
    let (name, confirm, hops, how, fingerprint) = match (&added, &vault) {
        (Some(a), _) => (
            a.name.clone(),
            a.confirm,
            (!a.hops.is_empty()).then(|| Ok(a.hops.clone())),
            format!(" (key added by ssh-add, {})", a.fingerprint),
            Some(a.fingerprint.clone()),
        ),
        (None, Some(k)) => (
            k.name.clone(),
            k.confirm,
            (!k.only_to.is_empty())
                .then(|| constraint::hops(broker, &k.only_to).map_err(|f| f.message)),
            String::new(),
            None,
        ),
        (None, None) => return Err(()),
    };
    let refuse = |why: String| {
        tracing::warn!(key = %name, pid = ?peer.pid, "agent refused a signature: {why}");
        let _ = broker.audit(
            peer,
            "agent_sign_refused",
            Some(&name),
            conn,
            format!("{why}{how}{}", route(client)),
        );
    };
    if let Some(hops) = hops {
        let verdict = if client.bind_failed {
            Err("a session-bind on this connection failed".to_string())
        } else {
            hops.and_then(|hops| constraint::permitted(&hops, &client.binds, blob, data))
        };
        if let Err(why) = verdict {
            refuse(format!("destination constraint: {why}"));
            return Err(());
        }
    }
    if confirm {
        let (n, p) = (name.clone(), peer.clone());
        let verdict =
            tokio::task::spawn_blocking(move || confirm::ask(&n, fingerprint.as_deref(), &p))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
        match verdict {
            Ok(true) => {}
            Ok(false) => {
                refuse("the user declined".into());
                return Err(());
            }
            Err(why) => {
                tracing::error!(key = %name, pid = ?peer.pid, "refused a signature that needs confirmation: {why}");
                refuse(format!(
                    "confirmation needed and no prompt could be shown: {why}"
                ));
                return Err(());
            }
        }
    }
    let sig = match (&added, vault.and_then(|k| k.held_by)) {
        // Off the async workers: an RSA signature may take a while.
        (Some(_), _) => {
            let (b, blob, data) = (broker.clone(), blob.to_vec(), data.to_vec());
            tokio::task::spawn_blocking(move || {
                b.agent_added()
                    .sign(&blob, rsa_hash(flags), &data)
                    .unwrap_or_else(|| Err("the key was removed meanwhile".into()))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
        }
        (None, Some((socket, public))) => {
            broker.key_used();
            crate::ssh::other_agent::sign(&socket, &public, data, flags)
                .await
                .map_err(|e| e.to_string())
        }
        (None, None) => {
            let private = match unseal_key(broker, &name) {
                Ok((k, _)) => k,
                Err(f) => {
                    refuse(f.message);
                    return Err(());
                }
            };
            let sig = sign_with(&private, rsa_hash(flags), data);
            drop(private);
            crate::system::wipe::secrets_touched();
            sig
        }
    };
    let sig = sig.map_err(|e| refuse(format!("the signature failed: {e}")))?;
    let _ = broker.audit(
        peer,
        "agent_sign",
        Some(&name),
        conn,
        format!("{} bytes signed{how}{}", data.len(), route(client)),
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
