//! Opening an SSH connection and logging in with one key.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{AuthResult, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg};

use super::SshError;
use super::hostkey::{HostKeyRules, HostKeyStatus, SeenHostKey, Verifier};
use super::link::Link;
use crate::db::Pin;
use crate::protocol::{ErrorCode, HostKeyPolicy, NextStep};

const TCP_TIMEOUT: Duration = Duration::from_secs(15);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where to connect and how.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub policy: HostKeyPolicy,
    pub keepalive_interval: u32,
    pub keepalive_max: u32,
    /// Seconds for the TCP connect and for the handshake, each (ConnectTimeout).
    pub connect_timeout: Option<u32>,
    /// The saved connection's name, if any (used in messages and `conn trust` hints).
    pub conn_name: Option<String>,
}

impl Endpoint {
    /// How long the TCP connect and the SSH handshake may take.
    fn timeouts(&self) -> (Duration, Duration) {
        match self.connect_timeout {
            Some(s) => {
                let d = Duration::from_secs(u64::from(s.max(1)));
                (d, d)
            }
            None => (TCP_TIMEOUT, HANDSHAKE_TIMEOUT),
        }
    }

    pub fn label(&self) -> String {
        match &self.conn_name {
            Some(n) => format!(
                "connection '{n}' ({}@{}:{})",
                self.user, self.host, self.port
            ),
            None => format!("{}@{}:{}", self.user, self.host, self.port),
        }
    }

    fn trust_hint(&self) -> String {
        self.conn_name
            .clone()
            .unwrap_or_else(|| format!("{}@{}:{}", self.user, self.host, self.port))
    }
}

/// The progress of a connection attempt, kept even when a step fails (for `conn test`).
pub struct Login {
    pub handle: Option<Handle<Verifier>>,
    /// Says why the connection ended, and routes channels the server opens.
    pub link: Arc<Link>,
    pub connect_ms: Option<f64>,
    pub seen: Option<SeenHostKey>,
    pub login_ms: Option<f64>,
}

/// A byte stream to the server through a jump host (a `direct-tcpip` channel on the hop's
/// session), used instead of a TCP connection.
pub type Tunnel = russh::ChannelStream<russh::client::Msg>;

fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// Connects over TCP, or through `via` (a jump host's tunnel), and runs the SSH handshake,
/// verifying the host key.
pub async fn connect(
    ep: &Endpoint,
    pin: Option<Pin>,
    known_hosts: Option<PathBuf>,
    via: Option<Tunnel>,
) -> (Login, Result<(), SshError>) {
    let mut login = Login {
        handle: None,
        link: Arc::default(),
        connect_ms: None,
        seen: None,
        login_ms: None,
    };
    let started = Instant::now();
    if let Some(tunnel) = via {
        login.connect_ms = Some(ms(started));
        return handshake(ep, pin, known_hosts, tunnel, login).await;
    }
    let addr = (ep.host.as_str(), ep.port);
    let (tcp_timeout, _) = ep.timeouts();
    let tcp = match tokio::time::timeout(tcp_timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let msg = format!(
                "cannot reach {}: {e}; check the host and port, and that sshd runs there",
                ep.label()
            );
            return (
                login,
                Err(SshError::then(
                    ErrorCode::Unreachable,
                    msg,
                    NextStep::TestConn,
                )),
            );
        }
        Err(_) => {
            let msg = format!(
                "cannot reach {}: no answer within {}s",
                ep.label(),
                tcp_timeout.as_secs()
            );
            return (login, Err(SshError::new(ErrorCode::Unreachable, msg)));
        }
    };
    login.connect_ms = Some(ms(started));
    let _ = tcp.set_nodelay(true);
    handshake(ep, pin, known_hosts, tcp, login).await
}

/// The SSH handshake over `stream`.
async fn handshake<S>(
    ep: &Endpoint,
    pin: Option<Pin>,
    known_hosts: Option<PathBuf>,
    stream: S,
    mut login: Login,
) -> (Login, Result<(), SshError>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let link = login.link.clone();
    let config = Arc::new(russh::client::Config {
        keepalive_interval: Some(Duration::from_secs(u64::from(ep.keepalive_interval.max(1)))),
        keepalive_max: ep.keepalive_max.max(1) as usize,
        nodelay: true,
        ..Default::default()
    });
    let seen = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        rules: HostKeyRules {
            host: ep.host.clone(),
            port: ep.port,
            policy: ep.policy,
            pin,
            known_hosts,
        },
        seen: seen.clone(),
        link,
    };
    let (_, handshake_timeout) = ep.timeouts();
    let result = tokio::time::timeout(
        handshake_timeout,
        russh::client::connect_stream(config, stream, verifier),
    )
    .await;
    login.seen = seen.lock().ok().and_then(|s| s.clone());
    match result {
        Ok(Ok(handle)) => {
            login.handle = Some(handle);
            (login, Ok(()))
        }
        Ok(Err(e)) => {
            let err = handshake_error(ep, login.seen.as_ref(), &e);
            (login, Err(err))
        }
        Err(_) => {
            let msg = format!(
                "SSH handshake with {} timed out after {}s",
                ep.label(),
                handshake_timeout.as_secs()
            );
            (login, Err(SshError::new(ErrorCode::Unreachable, msg)))
        }
    }
}

fn handshake_error(ep: &Endpoint, seen: Option<&SeenHostKey>, e: &russh::Error) -> SshError {
    match seen.map(|s| (&s.status, s)) {
        Some((HostKeyStatus::Changed { expected, source }, s)) => SshError::then(
            ErrorCode::HostKeyChanged,
            format!(
                "HOST KEY CHANGED for {}:{} ({}): the server presents {} {}, but {source} has {expected}. \
                 This can be an attack",
                ep.host,
                ep.port,
                ep.label(),
                s.algorithm,
                s.fingerprint,
            ),
            NextStep::RepinHostKey {
                conn: ep.trust_hint(),
                fingerprint: s.fingerprint.clone(),
            },
        ),
        Some((HostKeyStatus::Unknown, s)) => SshError::then(
            ErrorCode::HostKeyUnknown,
            format!(
                "the host key of {}:{} is not trusted yet and {} uses the strict policy: the server presents {} {}",
                ep.host,
                ep.port,
                ep.label(),
                s.algorithm,
                s.fingerprint,
            ),
            NextStep::TrustHostKey {
                conn: ep.trust_hint(),
                fingerprint: s.fingerprint.clone(),
            },
        ),
        _ => SshError::new(
            ErrorCode::Ssh,
            format!("SSH handshake with {} failed: {e}", ep.label()),
        ),
    }
}

/// The signature hash an RSA key should use with this server (the best it announced), or
/// `None` for other keys.
pub async fn rsa_hash(handle: &Handle<Verifier>, is_rsa: bool) -> Option<HashAlg> {
    if !is_rsa {
        return None;
    }
    handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten()
}

/// Authenticates with `key` (the only key offered: offering several trips MaxAuthTries).
pub async fn login(
    ep: &Endpoint,
    handle: &mut Handle<Verifier>,
    key: Arc<PrivateKey>,
    key_name: &str,
) -> Result<(), SshError> {
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let rsa_hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
    let auth = handle
        .authenticate_publickey(ep.user.clone(), PrivateKeyWithHashAlg::new(key, rsa_hash))
        .await;
    // russh has signed with the key and dropped it (on success and failure alike).
    crate::system::wipe::secrets_touched();
    let auth = auth.map_err(|e| {
        SshError::new(
            ErrorCode::Ssh,
            format!("authentication with {} failed: {e}", ep.label()),
        )
    })?;
    match auth {
        AuthResult::Success => Ok(()),
        AuthResult::Failure { .. } => Err(SshError::then(
            ErrorCode::AuthFailed,
            format!(
                "{} refused key '{key_name}' ({fingerprint}) for user {}",
                ep.label(),
                ep.user
            ),
            NextStep::AuthorizeKey {
                key: key_name.to_string(),
            },
        )),
    }
}
