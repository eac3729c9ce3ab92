//! Keys added through the agent socket with OpenSSH's `ssh-add`, the way ssh-agent keeps them:
//! in the broker's memory only (never the vault, the database or a log), wiped when removed,
//! when their lifetime (`ssh-add -t`) ends or when the broker stops. `sshkeep key add --file`
//! is the way to keep a key. Their constraints are ssh-agent's: a lifetime, a confirmation
//! before each signature (`-c`) and destination constraints (`-h`); a constraint sshkeep cannot
//! enforce refuses the add, the key is never taken looser.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use russh::keys::ssh_encoding::Decode;
use russh::keys::ssh_key::private::KeypairData;
use russh::keys::{HashAlg, PrivateKey};

use super::constraint::{self, Hop};
use super::wire::{string, take, u32_of};
use crate::protocol::AgentAddedKey;

/// Key constraints (PROTOCOL.agent).
const CONSTRAIN_LIFETIME: u8 = 1;
const CONSTRAIN_CONFIRM: u8 = 2;
const CONSTRAIN_EXTENSION: u8 = 255;
const RESTRICT_DESTINATION: &[u8] = b"restrict-destination-v00@openssh.com";

/// At most this many keys added at once (more is refused).
pub const MAX_ADDED: usize = 64;

/// One key `ssh-add` gave the socket. Its private part is wiped when dropped.
pub struct Added {
    private: PrivateKey,
    pub blob: Vec<u8>,
    /// The comment `ssh-add` sent, or the fingerprint when it sent none.
    pub name: String,
    pub fingerprint: String,
    pub confirm: bool,
    expires: Option<(Instant, i64)>,
    pub hops: Vec<Hop>,
    /// The destinations as `ssh-add -h` named them.
    pub only_to: Vec<String>,
}

impl Added {
    fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|(at, _)| at <= now)
    }

    /// What `agent status` shows (no key material).
    pub fn info(&self) -> AgentAddedKey {
        AgentAddedKey {
            name: self.name.clone(),
            fingerprint: self.fingerprint.clone(),
            confirm: self.confirm,
            expires: self.expires.map(|(_, unix)| unix),
            only_to: self.only_to.clone(),
        }
    }

    /// How long until its lifetime ends, if it has one.
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires
            .map(|(at, _)| at.saturating_duration_since(Instant::now()))
    }

    /// The audit's words for the key and its constraints.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.private.algorithm().as_str(), self.fingerprint);
        if let Some((at, _)) = self.expires {
            let left = at.saturating_duration_since(Instant::now()).as_secs();
            s.push_str(&format!(", lifetime {left} s"));
        }
        if self.confirm {
            s.push_str(", confirm each use");
        }
        if !self.only_to.is_empty() {
            s.push_str(&format!(", only to {}", self.only_to.join(", ")));
        }
        s
    }
}

/// The constraints of one key, without its private part.
pub struct Meta {
    pub name: String,
    pub fingerprint: String,
    pub confirm: bool,
    pub hops: Vec<Hop>,
}

/// The keys added through the socket, in memory only.
#[derive(Default)]
pub struct AddedKeys {
    keys: Mutex<Vec<Added>>,
}

impl AddedKeys {
    /// The keys, those whose lifetime ended dropped (and wiped) first.
    fn live(&self) -> MutexGuard<'_, Vec<Added>> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        keys.retain(|k| !k.expired(now));
        keys
    }

    /// Drops the keys whose lifetime ended; returns their names.
    pub fn expire(&self) -> Vec<String> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let gone = keys
            .iter()
            .filter(|k| k.expired(now))
            .map(|k| k.name.clone())
            .collect();
        keys.retain(|k| !k.expired(now));
        gone
    }

    /// Adds a key, replacing one with the same public key (as ssh-agent does).
    pub fn add(&self, key: Added) -> Result<(), &'static str> {
        let mut keys = self.live();
        keys.retain(|k| k.blob != key.blob);
        if keys.len() >= MAX_ADDED {
            return Err("too many keys added through the socket");
        }
        keys.push(key);
        Ok(())
    }

    /// Removes the key with this public key blob; its name when there was one.
    pub fn remove(&self, blob: &[u8]) -> Option<String> {
        let mut keys = self.live();
        let at = keys.iter().position(|k| k.blob == blob)?;
        Some(keys.remove(at).name)
    }

    /// Removes every added key; their names.
    pub fn remove_all(&self) -> Vec<String> {
        self.live().drain(..).map(|k| k.name).collect()
    }

    /// (public key blob, comment) of each key, for `ssh-add -l`.
    pub fn identities(&self) -> Vec<(Vec<u8>, String)> {
        self.live()
            .iter()
            .map(|k| (k.blob.clone(), k.name.clone()))
            .collect()
    }

    pub fn info(&self) -> Vec<AgentAddedKey> {
        self.live().iter().map(Added::info).collect()
    }

    pub fn meta(&self, blob: &[u8]) -> Option<Meta> {
        self.live().iter().find(|k| k.blob == blob).map(|k| Meta {
            name: k.name.clone(),
            fingerprint: k.fingerprint.clone(),
            confirm: k.confirm,
            hops: k.hops.clone(),
        })
    }

    /// Signs with the key (if it is still there) without copying its private part.
    pub fn sign(
        &self,
        blob: &[u8],
        hash: Option<HashAlg>,
        data: &[u8],
    ) -> Option<Result<Vec<u8>, String>> {
        let keys = self.live();
        let key = keys.iter().find(|k| k.blob == blob)?;
        Some(super::sign_with(&key.private, hash, data))
    }
}

/// Parses an `SSH_AGENTC_ADD_IDENTITY` / `SSH_AGENTC_ADD_ID_CONSTRAINED` body (after the
/// message number) into a key ready to keep, or says why it is refused.
pub fn parse_add(mut body: &[u8]) -> Result<Added, String> {
    let kind = {
        let mut peek = body;
        string(&mut peek).ok_or("truncated key")?.to_vec()
    };
    let kind = String::from_utf8_lossy(&kind).into_owned();
    if kind.ends_with("-cert-v01@openssh.com") {
        return Err(format!(
            "certificates ({kind}) are not taken through sshkeep's agent socket: `sshkeep key cert add`"
        ));
    }
    if kind.starts_with("sk-") {
        return Err(format!(
            "security-key ({kind}) keys sign on the authenticator, which sshkeep's agent cannot do"
        ));
    }
    let data =
        KeypairData::decode(&mut body).map_err(|_| format!("a {kind} key that does not parse"))?;
    if !matches!(
        data,
        KeypairData::Ed25519(_) | KeypairData::Ecdsa(_) | KeypairData::Rsa(_)
    ) {
        return Err(format!("{kind} keys are not supported by sshkeep's agent"));
    }
    let private = PrivateKey::new(data, "").map_err(|_| "the key does not parse".to_string())?;
    // A key that cannot sign is refused now, not listed and then failing.
    super::sign_with(&private, Some(HashAlg::Sha512), b"sshkeep agent probe")
        .map_err(|_| format!("sshkeep cannot sign with this {kind} key"))?;
    let comment = string(&mut body).ok_or("truncated comment")?;
    // Shown in `agent status` and the audit: no control characters reach a terminal.
    let comment: String = String::from_utf8_lossy(comment)
        .trim()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let public = private.public_key();
    let blob = public
        .to_bytes()
        .map_err(|_| "the public key does not encode".to_string())?;
    let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
    let mut key = Added {
        name: if comment.is_empty() {
            fingerprint.clone()
        } else {
            comment
        },
        private,
        blob,
        fingerprint,
        confirm: false,
        expires: None,
        hops: Vec::new(),
        only_to: Vec::new(),
    };
    let mut lifetime = None;
    while let Some(&[t]) = take(&mut body, 1) {
        match t {
            CONSTRAIN_LIFETIME if lifetime.is_none() => {
                let secs = u32_of(&mut body).ok_or("truncated lifetime")?;
                lifetime = Some(secs);
                let unix = crate::db::now().saturating_add(i64::from(secs));
                key.expires = Some((Instant::now() + Duration::from_secs(secs.into()), unix));
            }
            CONSTRAIN_CONFIRM if !key.confirm => key.confirm = true,
            CONSTRAIN_EXTENSION => {
                let name = string(&mut body).ok_or("truncated constraint")?;
                if name != RESTRICT_DESTINATION || !key.hops.is_empty() {
                    return Err(format!(
                        "the key constraint {} is not supported by sshkeep's agent",
                        String::from_utf8_lossy(name)
                    ));
                }
                let inner = string(&mut body).ok_or("truncated destination constraint")?;
                let (hops, labels) = constraint::restrict_destination(inner)?;
                key.hops = hops;
                key.only_to = labels;
            }
            other => {
                return Err(format!(
                    "key constraint {other} is not supported by sshkeep's agent (or given twice)"
                ));
            }
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::ssh_encoding::Encode;

    fn put(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }

    fn key_msg() -> (Vec<u8>, PrivateKey) {
        let k = PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).expect("key");
        let mut m = k.key_data().encode_vec().expect("encode");
        put(&mut m, b"me@laptop");
        (m, k)
    }

    fn hop(user: &[u8], host: &[u8], keys: &[(&PrivateKey, bool)]) -> Vec<u8> {
        let mut h = Vec::new();
        put(&mut h, user);
        put(&mut h, host);
        put(&mut h, b"");
        for (k, ca) in keys {
            put(&mut h, &k.public_key().to_bytes().expect("blob"));
            h.push(u8::from(*ca));
        }
        h
    }

    fn destination(from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut c = Vec::new();
        put(&mut c, from);
        put(&mut c, to);
        put(&mut c, b"");
        let mut all = Vec::new();
        put(&mut all, &c);
        let mut m = vec![CONSTRAIN_EXTENSION];
        put(&mut m, RESTRICT_DESTINATION);
        put(&mut m, &all);
        m
    }

    #[test]
    fn an_add_with_its_constraints_parses_and_unknown_ones_refuse() {
        let host =
            PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).expect("host");
        let (mut m, k) = key_msg();
        m.extend_from_slice(&[CONSTRAIN_LIFETIME, 0, 0, 0, 30, CONSTRAIN_CONFIRM]);
        m.extend(destination(
            &hop(b"", b"", &[]),
            &hop(b"deploy", b"hosta", &[(&host, false)]),
        ));
        let a = parse_add(&m).expect("parses");
        assert_eq!(a.name, "me@laptop");
        assert!(a.confirm);
        assert!(a.expires.is_some());
        assert_eq!(a.only_to, vec!["deploy@hosta"]);
        assert_eq!(a.hops[0].user.as_deref(), Some("deploy"));
        assert_eq!(a.hops[0].from, None);
        assert_eq!(
            a.hops[0].to,
            vec![host.public_key().fingerprint(HashAlg::Sha256).to_string()]
        );
        assert_eq!(a.blob, k.public_key().to_bytes().expect("blob"));

        // A CA key in a hop, an unknown extension, an unknown constraint, a doubled one: refused.
        let (base, _) = key_msg();
        let with = |extra: &[u8]| [base.as_slice(), extra].concat();
        let ca = destination(&hop(b"", b"", &[]), &hop(b"", b"hosta", &[(&host, true)]));
        assert!(
            parse_add(&with(&ca))
                .err()
                .expect("ca")
                .contains("certificate authority")
        );
        let mut ext = vec![CONSTRAIN_EXTENSION];
        put(&mut ext, b"sk-provider@openssh.com");
        put(&mut ext, b"/lib/x.so");
        assert!(parse_add(&with(&ext)).is_err());
        assert!(
            parse_add(&with(&[3, 0, 0, 0, 1])).is_err(),
            "max-signatures"
        );
        assert!(parse_add(&with(&[CONSTRAIN_CONFIRM, CONSTRAIN_CONFIRM])).is_err());
        assert!(
            parse_add(&with(&[CONSTRAIN_LIFETIME, 0, 0])).is_err(),
            "truncated"
        );
        let no_keys = destination(&hop(b"", b"", &[]), &hop(b"", b"hosta", &[]));
        assert!(parse_add(&with(&no_keys)).is_err());
        assert!(
            parse_add(&base[..base.len() - 3]).is_err(),
            "truncated comment"
        );
    }

    #[test]
    fn expired_and_removed_keys_are_gone() {
        let store = AddedKeys::default();
        let (mut m, k) = key_msg();
        m.extend_from_slice(&[CONSTRAIN_LIFETIME, 0, 0, 0, 0]);
        store.add(parse_add(&m).expect("parses")).expect("added");
        assert!(store.identities().is_empty(), "a lifetime of 0 s has ended");
        let (m, _) = key_msg();
        let key = parse_add(&m).expect("parses");
        let blob = key.blob.clone();
        store.add(key).expect("added");
        assert_eq!(store.identities().len(), 1);
        assert!(store.sign(&blob, None, b"x").is_some_and(|r| r.is_ok()));
        assert!(
            store
                .remove(&k.public_key().to_bytes().expect("blob"))
                .is_none()
        );
        assert_eq!(store.remove(&blob).as_deref(), Some("me@laptop"));
        assert!(store.sign(&blob, None, b"x").is_none());
    }
}
