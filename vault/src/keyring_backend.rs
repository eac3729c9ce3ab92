//! The OS keyring backend, through keyring-core and its Secret Service store.
//!
//! These calls block (D-Bus round trips); async callers run them on a blocking thread.
//! keyring-core errors can carry the secret's bytes (`BadEncoding`), so they are turned into
//! messages here and never formatted whole.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error as KError};

use crate::{SecretString, VaultError};

const SERVICE: &str = "sshkeep";

fn store() -> Result<Arc<CredentialStore>, VaultError> {
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    {
        let s = dbus_secret_service_keyring_store::Store::new().map_err(describe)?;
        Ok(s)
    }
    #[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
    {
        Err(VaultError::Keyring(
            "no OS keyring store is built for this platform".into(),
        ))
    }
}

fn entry(user: &str) -> Result<Entry, VaultError> {
    store()?.build(SERVICE, user, None).map_err(describe)
}

fn describe(e: KError) -> VaultError {
    let msg = match e {
        KError::NoEntry => return VaultError::KeyringEntryMissing,
        KError::PlatformFailure(p) | KError::NoStorageAccess(p) => plain_words(&p.to_string()),
        KError::BadEncoding(_) | KError::BadDataFormat(_, _) => {
            "the keyring entry is not in the expected format".to_string()
        }
        KError::BadStoreFormat(s) => s,
        KError::TooLong(what, max) => format!("{what} is longer than the keyring allows ({max})"),
        KError::Invalid(what, why) => format!("{what}: {why}"),
        KError::Ambiguous(_) => "several keyring entries match this vault".to_string(),
        _ => "the keyring refused the request".to_string(),
    };
    VaultError::Keyring(msg)
}

/// Says what a Secret Service / D-Bus failure means, in words a user can act on, instead of
/// passing D-Bus's own error text on.
fn plain_words(raw: &str) -> String {
    let r = raw.to_ascii_lowercase();
    if r.contains("no result found") || r.contains("nosuchobject") || r.contains("no such object") {
        "the Secret Service has no default keyring (collection) to store in; \
         create one in your keyring manager (Seahorse: File > New > Password Keyring, set as default)"
            .into()
    } else if r.contains("/bus")
        || r.contains("dbus_session_bus_address")
        || r.contains("noserver")
        || r.contains("no such file")
        || r.contains("connection refused")
    {
        "no D-Bus session bus is reachable, so no Secret Service can answer".into()
    } else if r.contains("serviceunknown") || r.contains("not provided by any") {
        "no Secret Service (gnome-keyring, KeePassXC, ...) runs on the session bus".into()
    } else if r.contains("locked") || r.contains("dismissed") || r.contains("prompt") {
        "the keyring is locked and could not be unlocked (the prompt was dismissed or cannot show)"
            .into()
    } else {
        "the Secret Service refused the request".into()
    }
}

/// Whether an OS keyring answers right now. Never hangs on a machine with no session bus.
pub fn keyring_available() -> Result<(), VaultError> {
    let e = entry("sshkeep-probe")?;
    match e.get_secret() {
        Ok(_) | Err(KError::NoEntry) => Ok(()),
        Err(other) => Err(describe(other)),
    }
}

pub(crate) fn put(user: &str, identity: &SecretString) -> Result<(), VaultError> {
    entry(user)?
        .set_secret(identity.expose().as_bytes())
        .map_err(describe)
}

pub(crate) fn get(user: &str) -> Result<SecretString, VaultError> {
    let bytes = zeroize::Zeroizing::new(entry(user)?.get_secret().map_err(describe)?);
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        VaultError::Keyring("the keyring entry is not in the expected format".into())
    })?;
    Ok(SecretString::new(text.to_owned()))
}

pub(crate) fn delete(user: &str) -> Result<(), VaultError> {
    match entry(user)?.delete_credential() {
        Ok(()) | Err(KError::NoEntry) => Ok(()),
        Err(e) => Err(describe(e)),
    }
}
