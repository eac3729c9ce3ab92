//! Encrypted key storage and unlock for sshkeep.
//!
//! The vault is an age X25519 *master identity*. Private SSH keys are only ever stored as age
//! ciphertext to that identity's recipient, so adding a key needs nothing secret, while reading
//! one back needs the vault unlocked.
//!
//! The master identity itself is kept by one of two backends, chosen when the vault is created:
//! - [`Backend::Keyring`]: the OS keyring (Secret Service on Linux) holds the identity;
//! - [`Backend::Passphrase`]: the identity is age-encrypted with a passphrase (scrypt) in a file.
//!
//! There is no plaintext backend, and none is ever chosen silently.

mod error;
mod keyring_backend;
mod meta;
mod passphrase;
mod secret;
mod vault;

pub use error::VaultError;
pub use keyring_backend::keyring_available;
pub use meta::{Backend, BackendChoice};
pub use secret::{SecretBytes, SecretString};
pub use vault::Vault;
