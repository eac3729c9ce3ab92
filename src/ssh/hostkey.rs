//! Host-key verification, decided inside russh's `check_server_key` before authentication.
//!
//! Order: the broker's pin for `host:port` decides when present (a mismatch is always refused);
//! without a pin, `~/.ssh/known_hosts` is consulted (read only; a mismatch there is refused too);
//! a key found nowhere is accepted only under the `accept-new` policy and pinned after a
//! successful login.
//!
//! The same handler reports the connection's end and hands `forwarded-tcpip` channels (remote
//! forwards) to the forward that asked for them, through the connection's [`Link`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};

use super::link::{Forwarded, Link};
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
    /// Why the connection ended, once it has, and where forwarded channels go.
    pub link: Arc<Link>,
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
        self.link.set_lost(why);
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<russh::client::Msg>,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut russh::client::Session,
    ) -> Result<(), Self::Error> {
        // Only a connection that forwards the agent serves it: a server cannot ask for it.
        let Some(to) = self.link.agent_route().filter(|to| !to.is_closed()) else {
            tracing::info!(
                "refused an agent channel: the agent is not forwarded on this connection"
            );
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        reply.accept().await;
        if let Err(back) = to.send(channel) {
            drop(back.0.into_stream());
        }
        Ok(())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<russh::client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut russh::client::Session,
    ) -> Result<(), Self::Error> {
        let Some(to) = self
            .link
            .route(connected_address, connected_port)
            .filter(|to| !to.is_closed())
        else {
            tracing::info!(
                "refused a forwarded connection to {connected_address}:{connected_port}: no remote forward listens there"
            );
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        reply.accept().await;
        let fwd = Forwarded {
            channel,
            originator: format!("{originator_address}:{originator_port}"),
        };
        if let Err(back) = to.send(fwd) {
            // The forward closed in between: a dropped stream closes the channel (a dropped
            // Channel would not, and would hold the slot).
            drop(back.0.channel.into_stream());
        }
        Ok(())
    }
}
