//! `ssh_key`. Private key text goes in (add) and is never sent back.

use rmcp::model::CallToolResult;
use serde_json::json;

use super::Adapter;
use super::args::{KeyArgs, KeyOp};
use super::reply::{answer, bad_arg, done, ok};
use super::vocab::{Vocab, all};
use crate::protocol::{KeyInfo, KeyType, Request, RotationReport, RotationState, SecretString};

pub async fn key(a: &Adapter, x: KeyArgs) -> CallToolResult {
    let need_name = || bad_arg("this op needs keyName (see op=list)");
    let req = match x.op {
        KeyOp::List => Request::KeyList,
        KeyOp::Show | KeyOp::Pub => match x.key_name {
            Some(name) => Request::KeyShow { name },
            None => return need_name(),
        },
        KeyOp::Remove => match x.key_name {
            Some(name) => Request::KeyRemove {
                name,
                force: x.force.unwrap_or(false),
            },
            None => return need_name(),
        },
        KeyOp::Add => {
            let (Some(name), Some(text)) = (x.key_name, x.private_key) else {
                return bad_arg("op=add needs keyName and privateKey (OpenSSH or PEM text)");
            };
            Request::KeyAdd {
                name,
                private_key: SecretString::new(text),
                passphrase: x.passphrase.map(SecretString::new),
            }
        }
        KeyOp::Generate | KeyOp::Rotate => {
            let Some(name) = x.key_name else {
                return need_name();
            };
            let key_type = match x.key_type.as_deref() {
                None | Some("ed25519") => KeyType::Ed25519,
                Some("rsa") => KeyType::Rsa,
                Some("ecdsa") => KeyType::Ecdsa,
                Some(other) => {
                    return bad_arg(format!(
                        "keyType must be ed25519, rsa or ecdsa, not {other:?}"
                    ));
                }
            };
            if x.op == KeyOp::Rotate {
                Request::KeyRotate {
                    name,
                    key_type,
                    resume: x.resume.unwrap_or(false),
                    dry_run: x.dry_run.unwrap_or(false),
                }
            } else {
                Request::KeyGenerate { name, key_type }
            }
        }
        KeyOp::Deploy => {
            let (Some(name), Some(conn)) = (x.key_name, x.connection_id) else {
                return bad_arg("op=deploy needs keyName and connectionId");
            };
            Request::KeyDeploy { name, conn }
        }
        KeyOp::Link | KeyOp::Unlink => {
            let (Some(key), Some(conn)) = (x.key_name, x.connection_id) else {
                return bad_arg("this op needs keyName and connectionId");
            };
            if x.op == KeyOp::Link {
                Request::KeyLink { key, conn }
            } else {
                Request::KeyUnlink { key, conn }
            }
        }
    };
    match x.op {
        KeyOp::Pub => answer(a.call::<KeyInfo>(req).await, |k| {
            ok(
                k.public_key.clone(),
                json!({ "keyName": k.name, "publicKey": k.public_key }),
            )
        }),
        KeyOp::Show | KeyOp::Add | KeyOp::Generate => answer(a.call::<KeyInfo>(req).await, |k| {
            ok(
                format!(
                    "Key {} ({} {}); public key: {}",
                    k.name, k.algorithm, k.fingerprint, k.public_key
                ),
                k.to_mcp(),
            )
        }),
        KeyOp::Rotate => answer(a.call::<RotationReport>(req).await, |r| {
            let failed: Vec<_> = r
                .hosts
                .iter()
                .filter(|h| h.error.is_some())
                .map(|h| format!("{}: {}", h.conn, h.error.clone().unwrap_or_default()))
                .collect();
            // A plan that carries a rotation id plans the rest of a rotation already under way.
            let under_way = if r.state == RotationState::Planned && !r.rotation_id.is_empty() {
                format!(
                    "; rotation {} is already under way: call op=rotate resume=true to finish it",
                    r.rotation_id
                )
            } else {
                String::new()
            };
            ok(
                format!(
                    "rotation of {} is {} on {} connection(s){under_way}{}",
                    r.key,
                    r.state,
                    r.hosts.len(),
                    if failed.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; failed (they keep the old key; fix and call op=rotate resume=true): {}",
                            failed.join("; ")
                        )
                    }
                ),
                r.to_mcp(),
            )
        }),
        KeyOp::List => answer(a.call::<Vec<KeyInfo>>(req).await, |keys| {
            ok(
                format!("{} keys", keys.len()),
                json!({ "keys": all(&keys) }),
            )
        }),
        KeyOp::Remove | KeyOp::Link | KeyOp::Unlink | KeyOp::Deploy => {
            answer(a.call(req).await, done)
        }
    }
}
