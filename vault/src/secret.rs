//! Secret holders that wipe their memory on drop and never print their contents.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A secret text (a passphrase, a private key in OpenSSH text form). Zeroized on drop;
/// `Debug` prints `<redacted>`. It serializes transparently so it can cross the owner-only
/// broker socket, and nowhere else.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Takes ownership of `s`; the caller's copy is moved, not duplicated.
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The secret text. Callers must not copy it into anything that is not zeroized.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// Secret bytes (decrypted key material). Zeroized on drop; `Debug` prints `<redacted>`.
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `v`.
    pub fn new(v: Vec<u8>) -> Self {
        Self(Zeroizing::new(v))
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as UTF-8 text, without copying.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = SecretString::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "<redacted>");
        let b = SecretBytes::new(b"hunter2".to_vec());
        assert_eq!(format!("{b:?}"), "<redacted>");
    }

    #[test]
    fn serializes_transparently() {
        let s = SecretString::new("pw".into());
        assert_eq!(serde_json::to_string(&s).ok().as_deref(), Some("\"pw\""));
    }
}
