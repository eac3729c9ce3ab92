//! Key rotation across every connection a key is linked to, as a resumable state machine in the
//! database (`rotations`, `rotation_hosts`). Each host moves through
//! `pending → appended → verified → switched → cleaned`:
//!
//! 1. the new key is generated in the vault (under `NAME.next` while the rotation runs);
//! 2. `appended`: its public half is added to the host's authorized_keys (atomically, other lines
//!    untouched), logging in with the old key;
//! 3. `verified`: a fresh login with the new key succeeds;
//! 4. `switched`: the connection's link moves to the new key;
//! 5. `cleaned`: the old public key is removed from the host, logging in with the new key;
//! 6. when every host is clean, the old key is retired (renamed `NAME.retired-TIME`, kept
//!    encrypted, never used again, destroyed with `sshkeep key remove`) and the new key takes the
//!    name `NAME`.
//!
//! Every step is idempotent and recorded after it happened, so re-running a step after a crash
//! is harmless; the old key leaves a host only after the new key has logged in there and the
//! link has moved. At every moment each host accepts a key the vault holds. A host that fails
//! keeps working with the old key and the rotation stays `partial` until `--resume` finishes it.

pub mod authorized_keys;

use std::sync::Arc;

use crate::broker::core::fail::Fail;
use crate::broker::core::keystore;
use crate::broker::core::login::{login, resolve};
use crate::broker::core::sessions::{Reuse, session_for};
use crate::broker::core::{Core, Peer};
use crate::broker::sftp::client::{Sftp, is_dir};
use crate::broker::sftp::write_atomic;
use crate::db::{RotationRow, now};
use crate::protocol::{
    ErrorCode, KeyType, NextStep, Response, RotationHost, RotationReport, RotationState,
    RotationStep,
};

fn next_action(step: RotationStep) -> Option<&'static str> {
    match step {
        RotationStep::Pending => {
            Some("add the new public key to authorized_keys (logging in with the old key)")
        }
        RotationStep::Appended => Some("log in with the new key to prove it works"),
        RotationStep::Verified => Some("switch the connection to the new key"),
        RotationStep::Switched => Some("remove the old public key from authorized_keys"),
        RotationStep::Cleaned | RotationStep::Dropped => None,
    }
}

fn key_type_name(t: KeyType) -> &'static str {
    match t {
        KeyType::Ed25519 => "ed25519",
        KeyType::Rsa => "rsa",
        KeyType::Ecdsa => "ecdsa",
    }
}

/// Reads the key type a rotation stored; an unknown word is an error rather than a guess, so a
/// rotation never generates a key of a type nobody asked for.
fn key_type_parse(s: &str) -> Result<KeyType, Fail> {
    match s {
        "ed25519" => Ok(KeyType::Ed25519),
        "rsa" => Ok(KeyType::Rsa),
        "ecdsa" => Ok(KeyType::Ecdsa),
        other => Err(Fail::internal(format!(
            "the rotation stores an unknown key type {other:?} (known: ed25519, rsa, ecdsa)"
        ))),
    }
}

fn report(broker: &Core, r: &RotationRow) -> Result<RotationReport, Fail> {
    let db = broker.db()?;
    let hosts = db
        .rotation_hosts(&r.id)?
        .into_iter()
        .map(|h| RotationHost {
            next: next_action(h.step).map(Into::into),
            conn: h.conn,
            step: h.step,
            error: h.error,
        })
        .collect();
    let new_name = if r.state == RotationState::Done {
        &r.key_name
    } else {
        &r.new_key
    };
    Ok(RotationReport {
        rotation_id: r.id.clone(),
        key: r.key_name.clone(),
        new_key: r.new_key.clone(),
        new_fingerprint: db.key(new_name).ok().flatten().map(|k| k.fingerprint),
        state: r.state,
        retired_as: r.retired_as.clone(),
        hosts,
    })
}

/// `key rotate`: starts, resumes or plans a rotation.
pub async fn rotate(
    broker: &Arc<Core>,
    peer: &Peer,
    name: &str,
    key_type: KeyType,
    resume: bool,
    dry_run: bool,
) -> Result<Response, Fail> {
    let (old, links, active) = {
        let db = broker.db()?;
        let old = db
            .key(name)?
            .ok_or_else(|| Fail::unknown("key", name, NextStep::ListKeys))?;
        let links = db.key_links(name)?;
        let active = db.active_rotation(name)?;
        (old, links, active)
    };
    if old.retired.is_some() {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("key '{name}' is retired; rotate the key that replaced it"),
        ));
    }
    if dry_run {
        let (rotation_id, new_key, state, hosts) = match &active {
            Some(r) => {
                let rep = report(broker, r)?;
                (
                    r.id.clone(),
                    r.new_key.clone(),
                    RotationState::Planned,
                    rep.hosts,
                )
            }
            None => (
                String::new(),
                format!("{name}.next"),
                RotationState::Planned,
                links
                    .iter()
                    .map(|c| RotationHost {
                        conn: c.clone(),
                        step: RotationStep::Pending,
                        error: None,
                        next: Some(
                            "add the new key, log in with it, switch the link, remove the old key"
                                .into(),
                        ),
                    })
                    .collect(),
            ),
        };
        return Ok(Response::Rotation(RotationReport {
            rotation_id,
            key: name.into(),
            new_key,
            new_fingerprint: None,
            state,
            retired_as: None,
            hosts,
        }));
    }
    let rotation = match (active, resume) {
        (Some(r), true) => r,
        (Some(r), false) => {
            return Err(Fail::then(
                ErrorCode::AlreadyExists,
                format!(
                    "a rotation of key '{name}' is already {} ({})",
                    r.state, r.id
                ),
                NextStep::ResumeRotation { key: name.into() },
            ));
        }
        (None, true) => {
            return Err(Fail::then(
                ErrorCode::NotFound,
                format!("no rotation of key '{name}' to resume"),
                NextStep::StartRotation { key: name.into() },
            ));
        }
        (None, false) => {
            if links.is_empty() {
                return Err(Fail::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "key '{name}' is linked to no connection, so there is nothing to rotate: generate a new key instead"
                    ),
                ));
            }
            let r = RotationRow {
                id: uuid::Uuid::new_v4().to_string(),
                key_name: name.into(),
                new_key: format!("{name}.next"),
                key_type: key_type_name(key_type).into(),
                state: RotationState::Running,
                retired_as: None,
            };
            if broker.db()?.key(&r.new_key)?.is_some() {
                return Err(Fail::new(
                    ErrorCode::AlreadyExists,
                    format!(
                        "a key named '{}' already exists: remove or rename it before rotating '{name}'",
                        r.new_key
                    ),
                ));
            }
            broker.db()?.insert_rotation(&r, &links, now())?;
            broker.audit(
                peer,
                "key_rotate_start",
                Some(name),
                None,
                format!("rotation {} across {} connection(s)", r.id, links.len()),
            )?;
            r
        }
    };
    run(broker, peer, rotation).await
}

/// Drives every host as far as it goes, then finishes the rotation if all are clean.
async fn run(broker: &Arc<Core>, peer: &Peer, r: RotationRow) -> Result<Response, Fail> {
    // Step 1: the new key (again after a crash between recording the rotation and storing it).
    if broker.db()?.key(&r.new_key)?.is_none() {
        keystore::generate(
            broker,
            peer,
            &r.new_key,
            key_type_parse(&r.key_type)?,
            &format!("sshkeep:{}", r.key_name),
        )
        .await?;
    }
    broker
        .db()?
        .set_rotation_state(&r.id, RotationState::Running, now())?;
    // Connections linked to the old key since the rotation started join it.
    let linked = broker.db()?.key_links(&r.key_name)?;
    for c in linked {
        broker.db()?.add_rotation_host(&r.id, &c, now())?;
    }
    // Hosts move independently, a few at a time; each one's failure stays its own.
    let hosts = broker.db()?.rotation_hosts(&r.id)?;
    let limit = Arc::new(tokio::sync::Semaphore::new(HOSTS_AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    for h in hosts
        .into_iter()
        .filter(|h| !matches!(h.step, RotationStep::Cleaned | RotationStep::Dropped))
    {
        // A connection removed, or linked to another key, since the rotation began is no
        // longer the rotation's business.
        let current = broker.db()?.conn_by_ref(&h.conn)?.map(|c| c.spec.key);
        let ours = matches!(&current, Some(Some(k)) if *k == r.key_name || *k == r.new_key);
        if !ours {
            broker.db()?.set_rotation_step(
                &r.id,
                &h.conn,
                RotationStep::Dropped,
                Some("no longer linked to the key"),
                now(),
            )?;
            broker.audit(
                peer,
                "key_rotate_dropped",
                Some(&r.key_name),
                Some(&h.conn),
                "no longer linked to the key: left out of the rotation",
            )?;
            continue;
        }
        let (b, p, r, limit) = (broker.clone(), peer.clone(), r.clone(), limit.clone());
        tasks.spawn(async move {
            let _slot = limit.acquire_owned().await;
            drive_host(&b, &p, &r, &h.conn, h.step).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(Fail::internal)??;
    }
    let hosts = broker.db()?.rotation_hosts(&r.id)?;
    let still_linked = !broker.db()?.key_links(&r.key_name)?.is_empty();
    let r = if hosts
        .iter()
        .all(|h| matches!(h.step, RotationStep::Cleaned | RotationStep::Dropped))
        && !still_linked
    {
        let retired_as = format!("{}.retired-{}", r.key_name, crate::db::name_stamp());
        broker.db()?.finish_rotation(&r, &retired_as, now())?;
        broker.audit(
            peer,
            "key_rotate_done",
            Some(&r.key_name),
            None,
            format!("rotation {}: old key retired as '{retired_as}'", r.id),
        )?;
        RotationRow {
            state: RotationState::Done,
            retired_as: Some(retired_as),
            ..r
        }
    } else {
        broker
            .db()?
            .set_rotation_state(&r.id, RotationState::Partial, now())?;
        RotationRow {
            state: RotationState::Partial,
            ..r
        }
    };
    let rep = report(broker, &r)?;
    Ok(Response::Rotation(rep))
}

/// Hosts worked on at once.
const HOSTS_AT_ONCE: usize = 8;

/// Moves one host through its remaining steps; a failure is recorded on the host (which keeps
/// its working key) and ends its part of this run.
async fn drive_host(
    broker: &Arc<Core>,
    peer: &Peer,
    r: &RotationRow,
    conn: &str,
    mut step: RotationStep,
) -> Result<(), Fail> {
    while step != RotationStep::Cleaned {
        match advance(broker, peer, r, conn, step).await {
            Ok(next) => step = next,
            Err(f) => {
                tracing::warn!(conn = %conn, step = %step, "rotation step failed: {}", f.message);
                broker
                    .db()?
                    .set_rotation_step(&r.id, conn, step, Some(&f.message), now())?;
                let _ = broker.audit(
                    peer,
                    "key_rotate_failed",
                    Some(&r.key_name),
                    Some(conn),
                    format!("at {step}: {}", f.message),
                );
                break;
            }
        }
    }
    Ok(())
}

/// Does the work of one step on one host and records it; returns the step reached.
async fn advance(
    broker: &Arc<Core>,
    peer: &Peer,
    r: &RotationRow,
    conn: &str,
    step: RotationStep,
) -> Result<RotationStep, Fail> {
    let record = |s: RotationStep| -> Result<(), Fail> {
        broker
            .db()?
            .set_rotation_step(&r.id, conn, s, None, now())
            .map_err(Fail::internal)
    };
    match step {
        RotationStep::Pending => {
            let public = broker
                .db()?
                .key(&r.new_key)?
                .map(|k| k.public_key)
                .ok_or_else(|| Fail::internal("the new key vanished"))?;
            let n = edit_authorized_keys(broker, peer, conn, Some(&r.key_name), |text| {
                authorized_keys::with_key(text, &public).map(|t| (t, 1))
            })
            .await?;
            broker.audit(
                peer,
                "key_rotate_append",
                Some(&r.new_key),
                Some(conn),
                if n == 0 {
                    "already present".to_string()
                } else {
                    "added to authorized_keys".into()
                },
            )?;
            record(RotationStep::Appended)?;
            Ok(RotationStep::Appended)
        }
        RotationStep::Appended => {
            check_login(broker, peer, conn, &r.new_key).await?;
            record(RotationStep::Verified)?;
            Ok(RotationStep::Verified)
        }
        RotationStep::Verified => {
            broker
                .db()?
                .switch_rotation_link(&r.id, conn, &r.new_key, now())?;
            broker.audit(
                peer,
                "key_link",
                Some(&r.new_key),
                Some(conn),
                format!("rotation {} replaces key '{}'", r.id, r.key_name),
            )?;
            Ok(RotationStep::Switched)
        }
        RotationStep::Switched => {
            let old_line = broker
                .db()?
                .key(&r.key_name)?
                .map(|k| k.public_key)
                .ok_or_else(|| Fail::internal("the old key vanished"))?;
            let old_blob = authorized_keys::key_of(&old_line)
                .unwrap_or_default()
                .to_string();
            let n = edit_authorized_keys(broker, peer, conn, Some(&r.new_key), |text| {
                let (out, n) = authorized_keys::without_key(text, &old_blob);
                (n > 0).then_some((out, n as u64))
            })
            .await?;
            broker.audit(
                peer,
                "key_rotate_remove_old",
                Some(&r.key_name),
                Some(conn),
                format!("{n} line(s) removed from authorized_keys"),
            )?;
            record(RotationStep::Cleaned)?;
            Ok(RotationStep::Cleaned)
        }
        RotationStep::Cleaned | RotationStep::Dropped => Err(Fail::internal(format!(
            "rotation step {step} has nothing left to do"
        ))),
    }
}

/// Reads the connection's authorized_keys over SFTP (logging in with `key`), applies `edit`
/// (which returns `None` for "nothing to change") and writes it back atomically. Returns the
/// number of changes.
async fn edit_authorized_keys(
    broker: &Arc<Core>,
    peer: &Peer,
    conn: &str,
    key: Option<&str>,
    edit: impl FnOnce(&str) -> Option<(String, u64)>,
) -> Result<u64, Fail> {
    let path = crate::broker::core::login::find_conn(broker, conn)?
        .spec
        .authorized_keys;
    let r = resolve(broker, conn, key)?;
    let (session, _) = session_for(broker, peer, &r, "key rotation", Reuse::Shared).await?;
    let sftp = Sftp::open(&session).await?;
    let text = match sftp.lstat_opt(&path).await? {
        Some(_) => {
            String::from_utf8(sftp.read_all(&path, 4 * 1024 * 1024).await?).map_err(|_| {
                Fail::new(
                    ErrorCode::InvalidArgument,
                    format!("{path} on {} is not text", sftp.label),
                )
            })?
        }
        None => {
            let dir = crate::broker::sftp::client::parent(&path).to_string();
            if dir != "." && !sftp.lstat_opt(&dir).await?.is_some_and(|a| is_dir(&a)) {
                sftp.mkdir(&dir, true).await?;
                let _ = sftp.set_attrs(&dir, Some(0o700), None).await;
            }
            String::new()
        }
    };
    match edit(&text) {
        None => Ok(0),
        Some((out, n)) => {
            write_atomic(&sftp, &path, out.as_bytes(), false, Some(0o600), n).await?;
            Ok(n)
        }
    }
}

/// A fresh login to `conn` with `key` (not a pooled session), closed at once.
async fn check_login(broker: &Arc<Core>, peer: &Peer, conn: &str, key: &str) -> Result<(), Fail> {
    let r = resolve(broker, conn, Some(key))?;
    let (handle, _, _hop) = login(broker, peer, &r, "key rotation check").await?;
    let _ = handle
        .disconnect(
            russh::Disconnect::ByApplication,
            "rotation check done",
            "en",
        )
        .await;
    Ok(())
}

/// `key deploy NAME CONN`: installs a key's public half on a connection's server, logging in
/// with the key that works there now, then proves the new key logs in.
pub async fn deploy(
    broker: &Arc<Core>,
    peer: &Peer,
    name: &str,
    conn: &str,
) -> Result<Response, Fail> {
    let key = broker
        .db()?
        .key(name)?
        .ok_or_else(|| Fail::unknown("key", name, NextStep::ListKeys))?;
    if key.retired.is_some() {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("key '{name}' is retired"),
        ));
    }
    let n = edit_authorized_keys(broker, peer, conn, None, |text| {
        authorized_keys::with_key(text, &key.public_key).map(|t| (t, 1))
    })
    .await?;
    broker.audit(
        peer,
        "key_deploy",
        Some(name),
        Some(conn),
        if n == 0 {
            "already present".to_string()
        } else {
            "added to authorized_keys".into()
        },
    )?;
    check_login(broker, peer, conn, name).await?;
    Ok(Response::Ok {
        message: format!(
            "key '{name}' {} on {conn} and logs in; link it to {conn} to log in with it from now on",
            if n == 0 {
                "was already installed"
            } else {
                "is installed"
            }
        ),
    })
}
