//! OpenSSH user certificates on vault keys: attached from a file, or signed here with a CA key
//! the user keeps in the vault. A certificate is public; the CA key never leaves the vault.

use std::sync::Arc;

use russh::keys::ssh_key::PublicKey;

use crate::broker::core::fail::Fail;
use crate::broker::core::login::unseal_key;
use crate::broker::core::{Core, Peer};
use crate::certs::{self, CertError};
use crate::db::{KeyRow, now};
use crate::protocol::{CertInfo, ErrorCode, NextStep, Response};

fn key_row(broker: &Core, name: &str) -> Result<KeyRow, Fail> {
    broker
        .db()?
        .key(name)?
        .ok_or_else(|| Fail::unknown("key", name, NextStep::ListKeys))
}

fn refused(e: CertError) -> Fail {
    Fail::new(ErrorCode::InvalidKey, format!("certificate refused: {e}"))
}

/// What the certificate attached to `key` says, if it has one (a damaged one says nothing).
pub fn info(broker: &Core, key: &str) -> Result<Option<CertInfo>, Fail> {
    let Some(line) = broker.db()?.key_cert(key)? else {
        return Ok(None);
    };
    Ok(russh::keys::ssh_key::Certificate::from_openssh(line.trim())
        .ok()
        .map(|c| certs::describe(&c, now().max(0) as u64)))
}

/// `key cert add`.
pub fn add(broker: &Core, peer: &Peer, name: &str, text: &str) -> Result<Response, Fail> {
    if text.len() > 64 * 1024 {
        return Err(Fail::new(
            ErrorCode::TooLarge,
            "a certificate is a few kilobytes at most",
        ));
    }
    let k = key_row(broker, name)?;
    let cert = certs::parse_for(text, &k.public_key).map_err(refused)?;
    let line = cert.to_openssh().map_err(Fail::internal)?;
    broker.db()?.set_key_cert(name, &line, now())?;
    let i = certs::describe(&cert, now().max(0) as u64);
    broker.audit(
        peer,
        "key_cert_add",
        Some(name),
        None,
        format!(
            "CA {} principals {} serial {}",
            i.ca_fingerprint,
            i.principals.join(","),
            i.serial
        ),
    )?;
    crate::broker::manage::keys::show(broker, name)
}

/// `key cert remove`.
pub fn remove(broker: &Core, peer: &Peer, name: &str) -> Result<Response, Fail> {
    key_row(broker, name)?;
    if !broker.db()?.delete_key_cert(name)? {
        return Err(Fail::new(
            ErrorCode::NotFound,
            format!("key '{name}' has no certificate"),
        ));
    }
    broker.audit(peer, "key_cert_remove", Some(name), None, "")?;
    crate::broker::manage::keys::show(broker, name)
}

/// `key cert sign`: a certificate for `key` signed by the vault key `ca`, attached to `key`.
pub async fn sign(
    broker: &Arc<Core>,
    peer: &Peer,
    ca: &str,
    key: &str,
    principals: &[String],
    validity_secs: u64,
) -> Result<Response, Fail> {
    if principals.is_empty() {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            "name at least one principal (the user the certificate logs in as)",
        ));
    }
    if validity_secs == 0 || validity_secs > 366 * 24 * 3600 {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            "the validity must be between 1 second and a year",
        ));
    }
    if ca == key {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            "a key cannot certify itself: name a separate CA key",
        ));
    }
    let k = key_row(broker, key)?;
    let public = PublicKey::from_openssh(&k.public_key).map_err(Fail::internal)?;
    let (ca_key, ca_fp) = unseal_key(broker, ca)?;
    let at = now().max(0) as u64;
    let key_id = format!("sshkeep:{key}");
    let principals_owned = principals.to_vec();
    let cert = tokio::task::spawn_blocking(move || {
        let c = certs::sign(
            &ca_key,
            &public,
            &key_id,
            &principals_owned,
            at,
            validity_secs,
        );
        drop(ca_key);
        crate::system::wipe::scrub_stack();
        c
    })
    .await
    .map_err(Fail::internal)?
    .map_err(refused)?;
    let line = cert.to_openssh().map_err(Fail::internal)?;
    broker.db()?.set_key_cert(key, &line, now())?;
    broker.audit(
        peer,
        "key_cert_sign",
        Some(key),
        None,
        format!(
            "CA key '{ca}' ({ca_fp}) principals {} for {validity_secs}s serial {}",
            principals.join(","),
            cert.serial()
        ),
    )?;
    crate::broker::manage::keys::show(broker, key)
}
