//! The passphrase backend: the master identity, age-encrypted with scrypt.

use std::io::{Read, Write};

use age::secrecy::SecretString as AgeSecret;
use zeroize::Zeroizing;

use crate::{SecretString, VaultError};

fn age_secret(p: &SecretString) -> AgeSecret {
    AgeSecret::from(p.expose().to_owned())
}

/// Encrypts the identity text with the passphrase. age tunes the scrypt work factor to about a
/// second on this machine.
pub(crate) fn wrap(
    identity: &SecretString,
    passphrase: &SecretString,
) -> Result<Vec<u8>, VaultError> {
    if passphrase.is_empty() {
        return Err(VaultError::EmptyPassphrase);
    }
    let recipient = age::scrypt::Recipient::new(age_secret(passphrase));
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|e| VaultError::Encrypt(e.to_string()))?;
    let mut out = Vec::new();
    let mut w = encryptor
        .wrap_output(&mut out)
        .map_err(|e| VaultError::Encrypt(e.to_string()))?;
    w.write_all(identity.expose().as_bytes())
        .and_then(|_| w.finish().map(|_| ()))
        .map_err(|e| VaultError::Encrypt(e.to_string()))?;
    Ok(out)
}

/// Decrypts the identity text. A wrong passphrase is reported as such, not as damage.
pub(crate) fn unwrap(
    ciphertext: &[u8],
    passphrase: &SecretString,
) -> Result<SecretString, VaultError> {
    let decryptor = age::Decryptor::new_buffered(ciphertext)
        .map_err(|e| damaged(format!("its age header cannot be read ({e})")))?;
    let identity = age::scrypt::Identity::new(age_secret(passphrase));
    let mut r = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| match e {
            // The passphrase opens the file key or it does not: the only failure a wrong
            // passphrase can cause. Everything else is damage.
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                VaultError::WrongPassphrase
            }
            other => damaged(other.to_string()),
        })?;
    let mut buf = Zeroizing::new(Vec::new());
    // The header (and so the passphrase) checked out: a failure from here on is a damaged or
    // truncated body, not a wrong passphrase.
    r.read_to_end(&mut buf)
        .map_err(|_| damaged("its encrypted body is truncated or altered".into()))?;
    let text =
        std::str::from_utf8(&buf).map_err(|_| damaged("the identity in it is not text".into()))?;
    Ok(SecretString::new(text.to_owned()))
}

/// Damage to the wrapped identity; the caller names the file.
fn damaged(why: String) -> VaultError {
    VaultError::Damaged(why)
}
