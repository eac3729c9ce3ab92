//! Keys that stay in another ssh-agent (a FIDO key's, Secretive, 1Password, gpg-agent, OpenSSH's
//! own): sshkeep keeps only the public half and the agent's socket, and every signature is made
//! by that agent. The private key never exists in sshkeep's memory; the other agent decides
//! (touch, PIN, its own confirmation) and sshkeep records each use.

use std::path::Path;
use std::sync::Arc;

use russh::client::{AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::ssh_encoding::Encode;
use russh::keys::{HashAlg, PrivateKey, PublicKey};

use super::SshError;
use super::connect::Endpoint;
use super::hostkey::Verifier;
use crate::protocol::{ErrorCode, NextStep};

/// What a login signs with: a key unsealed from the vault, or a key another agent holds.
pub enum Credential {
    Vault(Arc<PrivateKey>),
    Agent { socket: String, public: PublicKey },
}

/// Why another agent could not be used. Messages name the socket and the key, never data.
#[derive(Debug, thiserror::Error)]
pub enum OtherAgentError {
    /// Nothing answers on the socket.
    #[error("the ssh-agent at {socket} is not running ({why}); start it and add the key again")]
    Gone { socket: String, why: String },
    /// The agent answers but no longer holds the key.
    #[error(
        "the ssh-agent at {socket} no longer holds key {fingerprint}; add it there again (ssh-add)"
    )]
    KeyMissing { socket: String, fingerprint: String },
    /// The agent refused or failed to sign (declined touch, locked agent, ...).
    #[error("the ssh-agent at {socket} did not sign with key {fingerprint}: {why}")]
    Refused {
        socket: String,
        fingerprint: String,
        why: String,
    },
}

async fn client(socket: &str) -> Result<AgentClient<tokio::net::UnixStream>, OtherAgentError> {
    AgentClient::connect_uds(Path::new(socket))
        .await
        .map_err(|e| OtherAgentError::Gone {
            socket: socket.to_string(),
            why: e.to_string(),
        })
}

/// The plain public keys the agent at `socket` holds.
pub async fn identities(socket: &str) -> Result<Vec<PublicKey>, OtherAgentError> {
    let mut c = client(socket).await?;
    let ids = c
        .request_identities()
        .await
        .map_err(|e| OtherAgentError::Gone {
            socket: socket.to_string(),
            why: format!("it did not list its keys: {e}"),
        })?;
    Ok(ids
        .into_iter()
        .filter_map(|id| match id {
            russh::keys::agent::AgentIdentity::PublicKey { key, .. } => Some(key),
            russh::keys::agent::AgentIdentity::Certificate { .. } => None,
        })
        .collect())
}

fn fingerprint(public: &PublicKey) -> String {
    public.fingerprint(HashAlg::Sha256).to_string()
}

/// A client of the agent at `socket`, checked to hold `public`.
async fn holding(
    socket: &str,
    public: &PublicKey,
) -> Result<AgentClient<tokio::net::UnixStream>, OtherAgentError> {
    let mut c = client(socket).await?;
    let held = c
        .request_identities()
        .await
        .map_err(|e| OtherAgentError::Gone {
            socket: socket.to_string(),
            why: format!("it did not list its keys: {e}"),
        })?
        .iter()
        .any(|id| id.public_key().key_data() == public.key_data());
    if !held {
        return Err(OtherAgentError::KeyMissing {
            socket: socket.to_string(),
            fingerprint: fingerprint(public),
        });
    }
    Ok(c)
}

/// An SSH signature blob over `data`, made by the agent at `socket` (RSA with the hash the
/// sign-request `flags` ask for).
pub async fn sign(
    socket: &str,
    public: &PublicKey,
    data: &[u8],
    flags: u32,
) -> Result<Vec<u8>, OtherAgentError> {
    let mut c = holding(socket, public).await?;
    let hash = match flags {
        f if f & 4 != 0 => Some(HashAlg::Sha512),
        f if f & 2 != 0 => Some(HashAlg::Sha256),
        _ => None,
    };
    let refused = |why: String| OtherAgentError::Refused {
        socket: socket.to_string(),
        fingerprint: fingerprint(public),
        why,
    };
    let sig = c
        .sign_request_signature(public, hash, data)
        .await
        .map_err(|e| refused(e.to_string()))?;
    sig.encode_vec().map_err(|e| refused(e.to_string()))
}

/// Authenticates with the key the agent at `socket` holds: russh asks the agent for the one
/// signature the login needs.
pub async fn login(
    ep: &Endpoint,
    handle: &mut Handle<Verifier>,
    socket: &str,
    public: PublicKey,
    key_name: &str,
) -> Result<(), SshError> {
    let fp = fingerprint(&public);
    let mut agent = holding(socket, &public)
        .await
        .map_err(|e| SshError::new(ErrorCode::NoKey, e.to_string()))?;
    let rsa_hash = super::connect::rsa_hash(handle, public.algorithm().is_rsa()).await;
    let auth = handle
        .authenticate_publickey_with(ep.user.clone(), public, rsa_hash, &mut agent)
        .await
        .map_err(|e| {
            SshError::new(
                ErrorCode::AuthFailed,
                format!(
                    "authentication with {}@{}:{} failed: the ssh-agent at {socket} did not sign with key '{key_name}' ({fp}): {e}",
                    ep.user, ep.host, ep.port
                ),
            )
        })?;
    match auth {
        AuthResult::Success => Ok(()),
        AuthResult::Failure { .. } => Err(SshError::then(
            ErrorCode::AuthFailed,
            format!(
                "{}@{}:{} refused key '{key_name}' ({fp}, held by the ssh-agent at {socket}) for user {}",
                ep.user, ep.host, ep.port, ep.user
            ),
            NextStep::AuthorizeKey {
                key: key_name.to_string(),
            },
        )),
    }
}

/// Logs in with either kind of key.
pub async fn login_with(
    ep: &Endpoint,
    handle: &mut Handle<Verifier>,
    cred: Credential,
    key_name: &str,
) -> Result<(), SshError> {
    match cred {
        Credential::Vault(key) => super::connect::login(ep, handle, key, key_name).await,
        Credential::Agent { socket, public } => login(ep, handle, &socket, public, key_name).await,
    }
}
