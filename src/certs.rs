//! OpenSSH user certificates: reading one attached to a vault key, describing it (principals,
//! validity, CA) and signing a short-lived one with a CA key from the vault.

use russh::keys::HashAlg;
use russh::keys::ssh_key::certificate::{Builder, CertType, Certificate};
use russh::keys::ssh_key::{PrivateKey, PublicKey};

use crate::protocol::{CertInfo, CertStatus};

/// A certificate that expires within this many seconds is flagged.
pub const EXPIRING_SOON: u64 = 7 * 24 * 3600;

/// Why a certificate is refused. Messages carry no key material.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Not an OpenSSH certificate line.
    #[error("not an OpenSSH certificate ({0})")]
    Invalid(String),
    /// A host certificate, not a user certificate.
    #[error("this is a host certificate; a login needs a user certificate")]
    NotUser,
    /// The certified key is not this key.
    #[error("the certificate is for another key ({0})")]
    OtherKey(String),
    /// The CA's signature does not verify.
    #[error("the certificate's signature does not verify")]
    BadSignature,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Parses a certificate line and checks that it is a user certificate for `public_line`'s key,
/// signed as it says.
pub fn parse_for(text: &str, public_line: &str) -> Result<Certificate, CertError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| CertError::Invalid("empty".into()))?;
    let cert = Certificate::from_openssh(line).map_err(|e| CertError::Invalid(e.to_string()))?;
    if cert.cert_type() != CertType::User {
        return Err(CertError::NotUser);
    }
    let key =
        PublicKey::from_openssh(public_line).map_err(|e| CertError::Invalid(e.to_string()))?;
    if cert.public_key() != key.key_data() {
        return Err(CertError::OtherKey(
            cert.public_key().fingerprint(HashAlg::Sha256).to_string(),
        ));
    }
    cert.verify_signature()
        .map_err(|_| CertError::BadSignature)?;
    Ok(cert)
}

/// What a certificate says, and whether it logs in at `now` (Unix seconds).
pub fn describe(cert: &Certificate, now: u64) -> CertInfo {
    let status = if now < cert.valid_after() {
        CertStatus::NotYetValid
    } else if now >= cert.valid_before() {
        CertStatus::Expired
    } else if cert.valid_before() - now < EXPIRING_SOON {
        CertStatus::Expiring
    } else {
        CertStatus::Valid
    };
    CertInfo {
        key_id: cert.key_id().to_string(),
        serial: cert.serial(),
        principals: cert.valid_principals().to_vec(),
        valid_after: cert.valid_after(),
        valid_before: cert.valid_before(),
        ca_fingerprint: cert
            .signature_key()
            .fingerprint(HashAlg::Sha256)
            .to_string(),
        status,
    }
}

/// A user certificate for `key` signed by `ca`, valid from a minute ago (clock skew) for
/// `validity_secs`, with OpenSSH's default extensions.
pub fn sign(
    ca: &PrivateKey,
    key: &PublicKey,
    key_id: &str,
    principals: &[String],
    now: u64,
    validity_secs: u64,
) -> Result<Certificate, CertError> {
    let err = |e: russh::keys::ssh_key::Error| CertError::Sign(e.to_string());
    let nonce: [u8; 32] = rand::random();
    let mut b = Builder::new(
        nonce.to_vec(),
        key.key_data().clone(),
        now.saturating_sub(60),
        now.saturating_add(validity_secs),
    )
    .map_err(err)?;
    b.serial(rand::random()).map_err(err)?;
    b.cert_type(CertType::User).map_err(err)?;
    b.key_id(key_id).map_err(err)?;
    for p in principals {
        b.valid_principal(p.clone()).map_err(err)?;
    }
    for ext in [
        "permit-X11-forwarding",
        "permit-agent-forwarding",
        "permit-port-forwarding",
        "permit-pty",
        "permit-user-rc",
    ] {
        b.extension(ext, "").map_err(err)?;
    }
    b.sign(ca).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::KeyType;

    #[test]
    fn signed_certificates_describe_and_check_their_key() {
        let ca = crate::keys::generate(KeyType::Ed25519, "ca").expect("ca");
        let user = crate::keys::generate(KeyType::Ed25519, "user").expect("user");
        let other = crate::keys::generate(KeyType::Ed25519, "other").expect("other");
        let ca_key = crate::keys::load(ca.openssh.as_bytes()).expect("load");
        let pubkey = PublicKey::from_openssh(&user.public_line).expect("pub");
        let cert = sign(&ca_key, &pubkey, "k", &["alice".into()], 1_000_000, 3600).expect("sign");
        let line = cert.to_openssh().expect("text");
        let back = parse_for(&line, &user.public_line).expect("parse");
        let info = describe(&back, 1_000_000);
        assert_eq!(info.principals, vec!["alice".to_string()]);
        assert_eq!(info.status, CertStatus::Expiring);
        assert_eq!(info.ca_fingerprint, ca.fingerprint);
        assert_eq!(
            describe(&back, 1_000_000 + 3600).status,
            CertStatus::Expired
        );
        assert!(matches!(
            parse_for(&line, &other.public_line),
            Err(CertError::OtherKey(_))
        ));
    }
}
