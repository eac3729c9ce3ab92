use std::path::PathBuf;

/// Everything that can go wrong in the vault. Messages name files and next steps, never secrets.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No vault has been created in this home yet.
    #[error("no vault at {0}: run `sshkeep vault init`")]
    NotInitialized(PathBuf),
    /// `init` was asked for where a vault already exists.
    #[error("a vault already exists at {0}")]
    AlreadyInitialized(PathBuf),
    /// The operation needs the master identity, which is not in memory.
    #[error("vault is locked: run `sshkeep unlock`")]
    Locked,
    /// The passphrase did not decrypt the master identity.
    #[error("wrong passphrase for the vault")]
    WrongPassphrase,
    /// A passphrase was needed and none was given.
    #[error(
        "the vault needs its passphrase: run `sshkeep unlock` on a terminal, or set SSHKEEP_PASSPHRASE_FILE to a file holding it"
    )]
    PassphraseRequired,
    /// An empty passphrase was offered for a new vault.
    #[error("the passphrase must not be empty")]
    EmptyPassphrase,
    /// The OS keyring could not be reached or refused the request.
    #[error("OS keyring unavailable: {0}")]
    Keyring(String),
    /// The keyring answered but holds no identity for this vault.
    #[error(
        "the OS keyring holds no master identity for this vault (was it deleted from the keyring?)"
    )]
    KeyringEntryMissing,
    /// A file of the vault could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A vault file is damaged.
    #[error("vault file {0} is damaged: {1}; restore it from a backup")]
    Corrupt(PathBuf, String),
    /// The wrapped master identity is damaged (named as a file by [`VaultError::Corrupt`] once
    /// the vault knows which file it read).
    #[error("the wrapped master identity is damaged: {0}")]
    Damaged(String),
    /// The vault's metadata is missing but the master identity or sealed keys are still there:
    /// a new vault would make them unreadable for good.
    #[error(
        "{0} is missing, but {1} still exist: `sshkeep vault init` would make a new master identity and every stored key would be lost for good, so it is refused; restore {0} from a backup (the vault needs its vault.json and, for the passphrase backend, master.age)"
    )]
    Orphaned(PathBuf, String),
    /// Ciphertext did not decrypt with the master identity.
    #[error("stored ciphertext does not decrypt with this vault's identity: {0}")]
    Decrypt(String),
    /// Encryption failed (should not happen).
    #[error("encryption failed: {0}")]
    Encrypt(String),
}
