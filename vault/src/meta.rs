//! The vault's public metadata file (`vault.json`): which backend holds the master identity and
//! its public recipient. Nothing secret is in it.

use serde::{Deserialize, Serialize};

/// Where the master identity is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The OS keyring (Secret Service on Linux).
    Keyring,
    /// A passphrase-wrapped identity file (age scrypt).
    Passphrase,
}

impl Backend {
    /// The name shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Keyring => "keyring",
            Backend::Passphrase => "passphrase",
        }
    }
}

/// What the user asked for at `vault init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The keyring when one is reachable, else the passphrase (said out loud, never plaintext).
    Auto,
    /// The keyring or nothing.
    Keyring,
    /// The passphrase.
    Passphrase,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub version: u32,
    pub backend: Backend,
    /// The age recipient (`age1...`) private keys are encrypted to.
    pub recipient: String,
    /// The keyring entry's user name; unique per vault so side-by-side homes do not collide.
    pub keyring_user: String,
}

pub(crate) const META_VERSION: u32 = 1;
