//! Secret text on the wire (passphrases, private key text, a command's stdin), held so that it
//! is wiped from memory when dropped and never printed. The protocol has its own type rather than
//! the vault's: clients speak the protocol without linking the vault, and the broker turns it into
//! the vault's type at the one place it hands a secret to the vault.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A secret text. Zeroized on drop; `Debug` prints `<redacted>`. It serializes as a plain JSON
/// string so it can cross the owner-only broker socket, and nowhere else.
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

    /// The zeroizing buffer itself, for handing the text on without a copy.
    pub fn into_zeroizing(self) -> Zeroizing<String> {
        self.0
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_json_is_a_plain_string() {
        let s = SecretString::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(
            serde_json::to_string(&s).ok().as_deref(),
            Some("\"hunter2\"")
        );
        let back: Option<SecretString> = serde_json::from_str("\"pw\"").ok();
        assert_eq!(back.as_ref().map(SecretString::expose), Some("pw"));
    }
}
