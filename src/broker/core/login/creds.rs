//! What a login uses, taken out of the vault just before it: the connection's key with its
//! certificate (an expired one is refused before any network traffic), and its stored password,
//! which is only ever sent to the servers the user allowed it for.

use russh::keys::ssh_key::Certificate;

use super::{Resolved, credential, no_key, open_sealed};
use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer};
use crate::protocol::{CertStatus, ErrorCode, NextStep, SecretString};
use crate::ssh::{Credential, Creds, Endpoint};

/// `host:port`, as stored passwords name the servers they may go to.
pub fn server(ep: &Endpoint) -> String {
    if ep.host.contains(':') {
        format!("[{}]:{}", ep.host, ep.port)
    } else {
        format!("{}:{}", ep.host, ep.port)
    }
}

/// The name of the stored password `r` logs in with, if it is a saved connection that has one.
pub fn password_name(broker: &Core, r: &Resolved) -> Result<Option<String>, Fail> {
    let Some(conn) = &r.endpoint.conn_name else {
        return Ok(None);
    };
    Ok(broker
        .db()?
        .conn_by_ref(conn)?
        .and_then(|c| c.spec.password))
}

/// A key's certificate, refused when it cannot log in now.
pub fn usable_cert(broker: &Core, key: &str) -> Result<Option<Certificate>, Fail> {
    let Some(line) = broker.db()?.key_cert(key)? else {
        return Ok(None);
    };
    let cert = Certificate::from_openssh(line.trim()).map_err(|_| {
        Fail::new(
            ErrorCode::InvalidKey,
            format!("the certificate attached to key '{key}' is damaged"),
        )
    })?;
    let info = crate::certs::describe(&cert, crate::clock::now().max(0) as u64);
    let when = |t: u64| {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.min(i64::MAX as u64 / 2)),
        )
        .to_string()
    };
    let refuse = |why: String| {
        Fail::then(
            ErrorCode::AuthFailed,
            format!("the certificate of key '{key}' {why}: not logging in with it"),
            NextStep::UserOnly {
                command: format!("sshkeep key cert add {key} --file NEW-cert.pub"),
            },
        )
    };
    match info.status {
        CertStatus::Expired => Err(refuse(format!("expired at {}", when(info.valid_before)))),
        CertStatus::NotYetValid => Err(refuse(format!(
            "is not valid before {}",
            when(info.valid_after)
        ))),
        CertStatus::Valid | CertStatus::Expiring => Ok(Some(cert)),
    }
}

/// Decrypts what `r` logs in with. Fails as a missing key does when it has neither key nor
/// password, and before any traffic when the vault is locked or a certificate has expired.
pub fn unseal(broker: &Core, r: &Resolved) -> Result<Creds, Fail> {
    let secret = password_name(broker, r)?;
    if r.key.is_none() && secret.is_none() {
        return Err(no_key(&r.endpoint));
    }
    let mut creds = Creds {
        key: None,
        cert: None,
        password: None,
        agent_key: None,
    };
    if let Some(name) = &r.key {
        match credential(broker, name)? {
            Credential::Vault(key) => {
                creds.cert = usable_cert(broker, name)?;
                creds.key = Some((key, name.clone()));
            }
            other => creds.agent_key = Some((other, name.clone())),
        }
    }
    if let Some(name) = secret {
        creds.password = Some((unseal_password(broker, &r.endpoint, &name)?, name));
    }
    Ok(creds)
}

/// A stored password, for a login to `ep` only if the user allowed that server.
fn unseal_password(broker: &Core, ep: &Endpoint, name: &str) -> Result<SecretString, Fail> {
    let row = broker.db()?.secret(name)?.ok_or_else(|| {
        Fail::not_found(
            "stored password",
            name,
            "store it with `sshkeep secret add NAME` (see `sshkeep secret list`)",
        )
    })?;
    let to = server(ep);
    if !row.hosts.contains(&to) {
        return Err(Fail::then(
            ErrorCode::PermissionDenied,
            format!(
                "stored password '{name}' may be sent only to {}, not to {to}",
                if row.hosts.is_empty() {
                    "servers the user names".to_string()
                } else {
                    row.hosts.join(", ")
                }
            ),
            NextStep::UserOnly {
                command: format!(
                    "sshkeep conn save {} ... --password-secret {name}",
                    ep.conn_name.as_deref().unwrap_or("NAME")
                ),
            },
        ));
    }
    let plain = open_sealed(broker, &row.sealed)?;
    let text = plain.as_str().ok_or_else(|| {
        Fail::new(
            ErrorCode::InvalidKey,
            format!("stored password '{name}' is damaged"),
        )
    })?;
    Ok(SecretString::new(text.to_string()))
}

/// Audits the use of each credential a login is about to make.
pub fn audit_use(
    broker: &Core,
    peer: &Peer,
    ep: &Endpoint,
    creds: &Creds,
    purpose: &str,
) -> Result<(), Fail> {
    let what = format!("login {}@{}:{} for {purpose}", ep.user, ep.host, ep.port);
    if let Some(key) = creds
        .key
        .as_ref()
        .map(|k| &k.1)
        .or(creds.agent_key.as_ref().map(|k| &k.1))
    {
        let detail = if creds.cert.is_some() {
            format!("{what} (with its certificate)")
        } else {
            what.clone()
        };
        broker.audit(peer, "key_use", Some(key), ep.conn_name.as_deref(), detail)?;
    }
    if let Some((_, secret)) = &creds.password {
        broker.audit(
            peer,
            "password_use",
            None,
            ep.conn_name.as_deref(),
            format!("{what} (stored password '{secret}')"),
        )?;
    }
    Ok(())
}
