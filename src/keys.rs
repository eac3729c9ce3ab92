//! SSH private key material inside the broker: import, generation, and loading from the vault.
//!
//! Plaintext key text only ever lives in zeroizing buffers; `ssh_key::PrivateKey` zeroizes its
//! own secret parts on drop.

use std::sync::Arc;

use russh::keys::ssh_key::{self, LineEnding, PrivateKey};
use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
use zeroize::Zeroizing;

use crate::protocol::{KeyType, SecretString};

/// A key ready to be sealed into the vault.
pub struct NewKey {
    pub algorithm: String,
    pub fingerprint: String,
    pub comment: String,
    /// The `authorized_keys` line.
    pub public_line: String,
    /// The private key in unencrypted OpenSSH format (sealed into the vault, then dropped).
    pub openssh: Zeroizing<String>,
}

/// Why a key could not be imported. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file is passphrase-protected and no passphrase was given.
    #[error("the key is protected by a passphrase")]
    PassphraseRequired,
    /// The passphrase did not decrypt the key.
    #[error("the passphrase does not decrypt this key")]
    WrongPassphrase,
    /// Not a private key sshkeep can read.
    #[error("not a private key in OpenSSH or PEM format ({0})")]
    Invalid(String),
}

fn looks_encrypted(text: &str) -> bool {
    text.contains("ENCRYPTED") || text.contains("Proc-Type: 4,ENCRYPTED")
}

/// Parses an OpenSSH or PEM private key, decrypting it with `passphrase` if it is protected.
pub fn import(text: &SecretString, passphrase: Option<&SecretString>) -> Result<NewKey, KeyError> {
    let text = text.expose();
    if !text.contains("PRIVATE KEY") {
        return Err(KeyError::Invalid("no PRIVATE KEY block found".into()));
    }
    let key = match russh::keys::decode_secret_key(text, None) {
        Ok(k) => k,
        Err(russh::keys::Error::KeyIsEncrypted) => decrypt(text, passphrase)?,
        Err(_) if looks_encrypted(text) => decrypt(text, passphrase)?,
        Err(e) => return Err(KeyError::Invalid(e.to_string())),
    };
    describe(key)
}

fn decrypt(text: &str, passphrase: Option<&SecretString>) -> Result<PrivateKey, KeyError> {
    let pass = passphrase.ok_or(KeyError::PassphraseRequired)?;
    russh::keys::decode_secret_key(text, Some(pass.expose())).map_err(|_| KeyError::WrongPassphrase)
}

/// Generates a new key of `kind` with `comment`.
pub fn generate(kind: KeyType, comment: &str) -> Result<NewKey, KeyError> {
    let algorithm = match kind {
        KeyType::Ed25519 => Algorithm::Ed25519,
        KeyType::Rsa => Algorithm::Rsa { hash: None },
        KeyType::Ecdsa => Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
    };
    let mut key = PrivateKey::random(&mut rand::rng(), algorithm)
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    key.set_comment(comment);
    describe(key)
}

fn describe(key: PrivateKey) -> Result<NewKey, KeyError> {
    let public_line = key
        .public_key()
        .to_openssh()
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    let openssh = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    Ok(NewKey {
        algorithm: key.algorithm().to_string(),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        comment: key.comment().to_string(),
        public_line,
        openssh,
    })
}

/// Loads a key unsealed from the vault, straight onto the heap: it is then passed around by
/// pointer, so no async function's state (freed only when its task ends) keeps a copy of it.
pub fn load(openssh: &[u8]) -> Result<Arc<PrivateKey>, ssh_key::Error> {
    let key = PrivateKey::from_openssh(openssh).map(Arc::new);
    crate::system::wipe::secrets_touched();
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_openssh_text() {
        let k = generate(KeyType::Ed25519, "test@sshkeep").expect("generate");
        assert!(k.public_line.starts_with("ssh-ed25519 "));
        assert!(k.public_line.ends_with("test@sshkeep"));
        assert!(k.fingerprint.starts_with("SHA256:"));
        let back = load(k.openssh.as_bytes()).expect("load");
        assert_eq!(back.fingerprint(HashAlg::Sha256).to_string(), k.fingerprint);
    }

    #[test]
    fn garbage_is_refused_without_echo() {
        let err = import(&SecretString::new("hello world".into()), None)
            .err()
            .expect("invalid");
        assert!(matches!(err, KeyError::Invalid(_)));
        assert!(!err.to_string().contains("hello"));
    }
}
