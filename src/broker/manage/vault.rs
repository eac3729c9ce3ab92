//! Vault requests: status, init, unlock, lock, and unlocking at start.

use std::sync::Arc;

use sshkeep_vault::{Backend, BackendChoice, SecretString, Vault, VaultError};

use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer};
use crate::protocol::{self, ErrorCode, PROTOCOL_VERSION, Response, StatusInfo, VaultStatus};

// The protocol's secret text and backend choice become the vault's here, where the broker hands
// them to the vault: the buffer moves, no copy of the secret is made.
impl From<protocol::SecretString> for SecretString {
    fn from(s: protocol::SecretString) -> Self {
        let mut text = s.into_zeroizing();
        SecretString::new(std::mem::take(&mut *text))
    }
}

impl From<protocol::BackendChoice> for BackendChoice {
    fn from(c: protocol::BackendChoice) -> Self {
        match c {
            protocol::BackendChoice::Auto => BackendChoice::Auto,
            protocol::BackendChoice::Keyring => BackendChoice::Keyring,
            protocol::BackendChoice::Passphrase => BackendChoice::Passphrase,
        }
    }
}

/// Runs blocking vault work (D-Bus calls, scrypt) off the async threads, and wipes the stack it
/// used.
async fn blocking<T: Send + 'static>(
    broker: &Arc<Core>,
    f: impl FnOnce(&Core) -> Result<T, Fail> + Send + 'static,
) -> Result<T, Fail> {
    let b = broker.clone();
    tokio::task::spawn_blocking(move || {
        let result = f(&b);
        // Passphrases and the master identity passed through this thread's stack.
        crate::system::wipe::scrub_stack();
        result
    })
    .await
    .map_err(Fail::internal)?
}

/// What follows every unlock: the audit key is loaded, and the master identity's page is kept
/// out of swap where the memory-lock limit allows (said once in the log where it does not).
fn unlocked(b: &Core, vault: &Vault) {
    b.load_audit_key(vault);
    if let Some((addr, len)) = vault.identity_memory()
        && let Err(e) = crate::system::keep_in_ram(addr, len)
    {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                "cannot keep the master identity out of swap ({e}); raise RLIMIT_MEMLOCK \
                 (LimitMEMLOCK= in the systemd unit) or use encrypted swap"
            )
        });
    }
}

/// Tries to unlock at start: the keyring backend needs nothing from the user; the passphrase
/// backend unlocks when `SSHKEEP_PASSPHRASE_FILE` names a readable file.
pub async fn auto_unlock(broker: &Arc<Core>) {
    let result = blocking(broker, |b| {
        let mut slot = b.vault()?;
        let Some(vault) = slot.as_mut() else {
            return Ok(None);
        };
        let how = match vault.backend() {
            Backend::Keyring => vault
                .unlock_keyring()
                .map(|_| Some("keyring"))
                .map_err(Fail::from),
            Backend::Passphrase => match passphrase_from_env() {
                Some(p) => vault
                    .unlock_passphrase(&p?)
                    .map(|_| Some("passphrase file"))
                    .map_err(Fail::from),
                None => Ok(None),
            },
        };
        if vault.is_unlocked() {
            unlocked(b, vault);
        }
        how
    })
    .await;
    match result {
        Ok(Some(how)) => tracing::info!("vault unlocked at start ({how})"),
        Ok(None) => {}
        Err(f) => {
            tracing::warn!("vault stays locked: {}", f.message);
            // A damaged vault file or an unreadable passphrase file is named with every
            // "vault is locked" error, not only in the broker's log.
            broker.set_lock_reason(format!("unlocking at start failed: {}", f.message));
        }
    }
}

/// The passphrase from the file named by `SSHKEEP_PASSPHRASE_FILE`, trailing newline removed.
pub fn passphrase_from_env() -> Option<Result<SecretString, Fail>> {
    let path = std::env::var_os("SSHKEEP_PASSPHRASE_FILE").filter(|p| !p.is_empty())?;
    Some(
        std::fs::read_to_string(&path)
            .map(|mut s| {
                while s.ends_with('\n') || s.ends_with('\r') {
                    s.pop();
                }
                SecretString::new(s)
            })
            .map_err(|e| {
                Fail::new(
                    ErrorCode::PassphraseRequired,
                    format!(
                        "cannot read SSHKEEP_PASSPHRASE_FILE {}: {e}",
                        std::path::Path::new(&path).display()
                    ),
                )
            }),
    )
}

/// `status`.
pub fn status(broker: &Core) -> Result<Response, Fail> {
    let slot = broker.vault()?;
    let vault = match slot.as_ref() {
        None => VaultStatus {
            initialized: false,
            backend: None,
            unlocked: false,
            hint: Some(broker.no_vault().message),
        },
        Some(v) => VaultStatus {
            initialized: true,
            backend: Some(v.backend().as_str().into()),
            unlocked: v.is_unlocked(),
            hint: (!v.is_unlocked()).then(|| {
                let why = broker.lock_note();
                format!("vault is locked{why}: run `sshkeep unlock`")
            }),
        },
    };
    Ok(Response::Status(StatusInfo {
        broker_version: env!("CARGO_PKG_VERSION").into(),
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
        uptime_secs: broker.uptime().as_secs(),
        vault,
        sessions_open: broker.sessions().open_count() as u32,
        commands_running: broker.jobs().len() as u32,
        database_bytes: ["", "-wal"]
            .iter()
            .filter_map(|suffix| {
                std::fs::metadata(format!("{}{suffix}", broker.paths().database().display())).ok()
            })
            .map(|m| m.len())
            .sum(),
        settings: broker.settings().describe(),
        state_dir: broker.paths().state.display().to_string(),
        socket: broker.paths().socket().display().to_string(),
        profile: None,
    }))
}

/// `vault init`.
pub async fn init(
    broker: &Arc<Core>,
    peer: &Peer,
    choice: protocol::BackendChoice,
    passphrase: Option<protocol::SecretString>,
) -> Result<Response, Fail> {
    let (choice, passphrase) = (
        BackendChoice::from(choice),
        passphrase.map(SecretString::from),
    );
    let (backend, notice) = blocking(broker, move |b| {
        let mut slot = b.vault()?;
        if slot.is_some() {
            return Err(VaultError::AlreadyInitialized(b.paths().vault_dir()).into());
        }
        if let Some(orphaned) = b.orphaned_vault() {
            return Err(orphaned);
        }
        let (vault, notice) = Vault::create(&b.paths().vault_dir(), choice, passphrase.as_ref())?;
        unlocked(b, &vault);
        let backend = vault.backend();
        *slot = Some(vault);
        Ok((backend, notice))
    })
    .await?;
    broker.audit(
        peer,
        "vault_init",
        None,
        None,
        format!("backend {}", backend.as_str()),
    )?;
    let mut message = format!("vault created (backend: {}) and unlocked", backend.as_str());
    if let Some(n) = notice {
        message = format!("{n}\n{message}");
    }
    Ok(Response::Ok { message })
}

/// `unlock`.
pub async fn unlock(
    broker: &Arc<Core>,
    peer: &Peer,
    passphrase: Option<protocol::SecretString>,
) -> Result<Response, Fail> {
    let passphrase = passphrase.map(SecretString::from);
    let result = blocking(broker, move |b| {
        let mut slot = b.vault()?;
        let vault = slot.as_mut().ok_or_else(|| b.no_vault())?;
        if vault.is_unlocked() {
            return Ok(false);
        }
        match (vault.backend(), passphrase) {
            (Backend::Keyring, _) => vault.unlock_keyring()?,
            (Backend::Passphrase, Some(p)) => vault.unlock_passphrase(&p)?,
            (Backend::Passphrase, None) => return Err(VaultError::PassphraseRequired.into()),
        }
        unlocked(b, vault);
        // Under the vault's guard: the idle auto-lock sees the fresh clock with the unlock.
        b.key_used();
        Ok(true)
    })
    .await;
    match result {
        Ok(true) => {
            broker.audit(peer, "vault_unlock", None, None, "unlocked")?;
            Ok(Response::Ok {
                message: "vault unlocked".into(),
            })
        }
        Ok(false) => Ok(Response::Ok {
            message: "vault is already unlocked".into(),
        }),
        Err(f) => {
            if f.code == ErrorCode::WrongPassphrase {
                broker.audit(peer, "vault_unlock_failed", None, None, "wrong passphrase")?;
            }
            Err(f)
        }
    }
}

/// `lock`: drops the master identity. Keys are only ever decrypted for the moment of a login,
/// so after this no decrypted key material is left in the broker.
pub fn lock(broker: &Core, peer: &Peer) -> Result<Response, Fail> {
    let mut slot = broker.vault()?;
    let vault = slot.as_mut().ok_or_else(|| broker.no_vault())?;
    vault.lock();
    drop(slot);
    broker.audit(peer, "vault_lock", None, None, "locked")?;
    Ok(Response::Ok {
        message: "vault locked; open sessions stay open, new logins need `sshkeep unlock`".into(),
    })
}
