//! Host-key verification, decided inside russh's `check_server_key` before authentication.
//!
//! Order: the broker's pin for `host:port` decides when present (a mismatch is always refused);
//! without a pin, `~/.ssh/known_hosts` is consulted (read only; a mismatch there is refused too);
//! a key found nowhere is accepted only under the `accept-new` policy and pinned after a
//! successful login.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};

use crate::db::Pin;
use crate::protocol::HostKeyPolicy;

/// What was decided about the presented key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// Matches the broker's pin.
    Pinned,
    /// Matches `~/.ssh/known_hosts`.
    KnownHosts,
    /// Not known anywhere; accepted under `accept-new`, to be pinned after login.
    New,
    /// Not known and the policy is `strict`: refused.
    Unknown,
    /// Differs from the pin (or from known_hosts): refused.
    Changed { expected: String, source: String },
}

/// The key the server presented and the verdict.
#[derive(Clone, Debug)]
pub struct SeenHostKey {
    pub algorithm: String,
    pub fingerprint: String,
    pub status: HostKeyStatus,
}

impl SeenHostKey {
    /// The verdict in the words `conn test` reports.
    pub fn status_word(&self) -> &'static str {
        match self.status {
            HostKeyStatus::Pinned => "pinned",
            HostKeyStatus::KnownHosts => "known_hosts",
            HostKeyStatus::New => "new",
            HostKeyStatus::Unknown => "refused",
            HostKeyStatus::Changed { .. } => "changed",
        }
    }
}

/// What the handler needs to decide.
#[derive(Clone, Debug)]
pub struct HostKeyRules {
    pub host: String,
    pub port: u16,
    pub policy: HostKeyPolicy,
    pub pin: Option<Pin>,
    pub known_hosts: Option<PathBuf>,
}

/// The russh client handler: verifies the host key and records what it saw.
pub struct Verifier {
    pub rules: HostKeyRules,
    pub seen: Arc<Mutex<Option<SeenHostKey>>>,
    /// Why the connection ended, once it has.
    pub lost: Arc<Mutex<Option<String>>>,
}

impl Verifier {
    fn decide(&self, key: &PublicKey) -> SeenHostKey {
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let algorithm = key.algorithm().to_string();
        let r = &self.rules;
        let status = if let Some(pin) = &r.pin {
            if pin.fingerprint == fingerprint {
                HostKeyStatus::Pinned
            } else {
                HostKeyStatus::Changed {
                    expected: pin.fingerprint.clone(),
                    source: "sshkeep's pin".into(),
                }
            }
        } else {
            let known = r
                .known_hosts
                .as_ref()
                .filter(|p| p.exists())
                .map(|p| russh::keys::check_known_hosts_path(&r.host, r.port, key, p));
            match known {
                Some(Ok(true)) => HostKeyStatus::KnownHosts,
                Some(Err(russh::keys::Error::KeyChanged { line })) => HostKeyStatus::Changed {
                    expected: "the key recorded".into(),
                    source: format!(
                        "{} line {line}",
                        r.known_hosts
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    ),
                },
                _ if r.policy == HostKeyPolicy::AcceptNew => HostKeyStatus::New,
                _ => HostKeyStatus::Unknown,
            }
        };
        SeenHostKey {
            algorithm,
            fingerprint,
            status,
        }
    }
}

impl russh::client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates are not trusted as such (no @cert-authority support): the
        // certificate's own key is checked like a plain key.
        let public = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(c) => PublicKey::from(c.public_key().clone()),
        };
        let seen = self.decide(&public);
        let accept = matches!(
            seen.status,
            HostKeyStatus::Pinned | HostKeyStatus::KnownHosts | HostKeyStatus::New
        );
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(seen);
        }
        Ok(accept)
    }

    async fn disconnected(
        &mut self,
        reason: russh::client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let why = match reason {
            russh::client::DisconnectReason::ReceivedDisconnect(_) => {
                "the server closed the connection".to_string()
            }
            russh::client::DisconnectReason::Error(russh::Error::KeepaliveTimeout) => {
                "keepalives went unanswered (server frozen or network down)".to_string()
            }
            russh::client::DisconnectReason::Error(e) => format!("connection lost: {e}"),
        };
        if let Ok(mut slot) = self.lost.lock() {
            *slot = Some(why);
        }
        Ok(())
    }
}
