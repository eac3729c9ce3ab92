//! Keys entering the vault: made here or imported, sealed at once, recorded with their public
//! half, and audited. Private material never leaves the vault again.

use std::sync::Arc;

use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer};
use crate::db::{KeyRow, now};
use crate::keys::{self, NewKey};
use crate::protocol::{ErrorCode, KeyType};
use crate::target::validate_name;

/// Seals `new` into the vault under `name`, records it and audits it as `op`.
pub fn store(
    broker: &Core,
    peer: &Peer,
    name: &str,
    new: NewKey,
    op: &str,
) -> Result<KeyRow, Fail> {
    let sealed = {
        let slot = broker.vault()?;
        let vault = slot.as_ref().ok_or_else(|| broker.no_vault())?;
        vault.seal(new.openssh.as_bytes())?
    };
    let row = KeyRow {
        name: name.into(),
        algorithm: new.algorithm,
        fingerprint: new.fingerprint.clone(),
        comment: new.comment,
        public_key: new.public_line,
        sealed,
        created: now(),
        retired: None,
        agent: Default::default(),
        held_by: None,
    };
    {
        let db = broker.db()?;
        if db.key(name)?.is_some() {
            return Err(Fail::new(
                ErrorCode::AlreadyExists,
                format!("a key named '{name}' already exists"),
            ));
        }
        db.insert_key(&row)?;
    }
    broker.audit(peer, op, Some(name), None, new.fingerprint)?;
    crate::broker::agent::vault_took(broker, peer, &row.public_key);
    Ok(row)
}

/// Checks that `name` is a valid, free key name and that there is a vault to seal into.
pub fn precheck(broker: &Core, name: &str) -> Result<(), Fail> {
    validate_name("key", name).map_err(|e| Fail::new(ErrorCode::InvalidArgument, e))?;
    if broker.vault()?.is_none() {
        return Err(broker.no_vault());
    }
    if broker.db()?.key(name)?.is_some() {
        return Err(Fail::new(
            ErrorCode::AlreadyExists,
            format!("a key named '{name}' already exists"),
        ));
    }
    Ok(())
}

/// Generates a key with a given comment (a rotation's new key carries the final name's).
pub async fn generate(
    broker: &Arc<Core>,
    peer: &Peer,
    name: &str,
    kind: KeyType,
    comment: &str,
) -> Result<KeyRow, Fail> {
    precheck(broker, name)?;
    let comment = comment.to_string();
    let new = tokio::task::spawn_blocking(move || {
        let new = keys::generate(kind, &comment);
        crate::system::wipe::scrub_stack();
        new
    })
    .await
    .map_err(Fail::internal)?
    .map_err(|e| Fail::new(ErrorCode::Internal, format!("key generation failed: {e}")))?;
    store(broker, peer, name, new, "key_generate")
}
