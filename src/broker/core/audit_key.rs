//! The audit chain's HMAC key and its head outside the database.
//!
//! The key is 32 random bytes sealed to the vault in `vault/audit-key.age`: a process of the same
//! user that can write the database cannot read it, so it cannot re-hash an edited chain. The
//! broker holds it from the first unlock on; `lock` keeps it (it opens no server), so records
//! written while the vault is locked stay keyed. Records written before the first unlock of a
//! broker's life are plain SHA-256 and marked unkeyed.
//!
//! After every append the broker writes the newest record's number and hash, with their HMAC, to
//! `state/audit-head`: deleting the newest records from the database then shows as truncation.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use sshkeep_vault::{Vault, VaultError};

use crate::broker::core::fail::Fail;
use crate::db::{AuditHead, AuditKey};
use crate::paths::Paths;

fn key_path(paths: &Paths) -> PathBuf {
    paths.vault_dir().join("audit-key.age")
}

/// Where the head is written.
pub fn head_path(paths: &Paths) -> PathBuf {
    paths.state.join("audit-head")
}

/// Reads the audit key, or makes and seals one the first time. The vault must be unlocked.
pub fn load_or_create(paths: &Paths, vault: &Vault) -> Result<AuditKey, Fail> {
    let path = key_path(paths);
    match std::fs::read(&path) {
        Ok(ct) => {
            let plain = vault.open_sealed(&ct)?;
            let bytes = plain.expose();
            if bytes.len() != 32 {
                return Err(
                    VaultError::Corrupt(path, "the audit key is not 32 bytes".into()).into(),
                );
            }
            let mut key = AuditKey::default();
            key.copy_from_slice(bytes);
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = AuditKey::default();
            rand::fill(&mut key[..]);
            let sealed = vault.seal(&key[..])?;
            write_new(&path, &sealed)?;
            Ok(key)
        }
        Err(source) => Err(VaultError::Io {
            action: "cannot read",
            path,
            source,
        }
        .into()),
    }
}

fn write_new(path: &std::path::Path, bytes: &[u8]) -> Result<(), Fail> {
    let io = |source| {
        Fail::from(VaultError::Io {
            action: "cannot write",
            path: path.to_path_buf(),
            source,
        })
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(io)
}

/// The head as last written, if any.
pub fn read_head(paths: &Paths) -> Option<AuditHead> {
    std::fs::read_to_string(head_path(paths))
        .ok()
        .and_then(|t| AuditHead::parse(&t))
}

/// Writes the head (a temporary file renamed over the old one).
pub fn write_head(paths: &Paths, head: &AuditHead) -> std::io::Result<()> {
    let path = head_path(paths);
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(head.to_line().as_bytes())?;
    std::fs::rename(&tmp, &path)
}
