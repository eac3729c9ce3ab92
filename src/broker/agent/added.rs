//! Keys added through the agent socket with OpenSSH's `ssh-add`, the way ssh-agent keeps them:
//! in the broker's memory only (never the vault, the database or a log), wiped when removed,
//! when their lifetime (`ssh-add -t`) ends or when the broker stops. `sshkeep key add --file`
//! is the way to keep a key. Their constraints are ssh-agent's: a lifetime, a confirmation
//! before each signature (`-c`) and destination constraints (`-h`); a constraint sshkeep cannot
//! enforce refuses the add, the key is never taken looser.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use russh::keys::ssh_encoding::Decode;
use russh::keys::ssh_key::private::KeypairData;
use russh::keys::{HashAlg, PrivateKey};

use super::constraint::{self, Hop};
use super::wire::{shown, string, take, u32_of};
use crate::broker::core::Peer;
use crate::protocol::AgentAddedKey;

/// Key constraints (PROTOCOL.agent).
const CONSTRAIN_LIFETIME: u8 = 1;
const CONSTRAIN_CONFIRM: u8 = 2;
const CONSTRAIN_EXTENSION: u8 = 255;
const RESTRICT_DESTINATION: &[u8] = b"restrict-destination-v00@openssh.com";

/// At most this many keys added at once (more is refused).
pub const MAX_ADDED: usize = 64;

/// RSA keys taken, in bits (OpenSSH's own minimum up to a size that still signs in reasonable time).
const RSA_BITS: std::ops::RangeInclusive<u32> = 1024..=16384;

/// One key `ssh-add` gave the socket. Its private part is wiped when dropped.
pub struct Added {
    private: PrivateKey,
    pub blob: Vec<u8>,
    /// The comment `ssh-add` sent, or the fingerprint when it sent none.
    pub name: String,
    pub fingerprint: String,
    pub confirm: bool,
    /// The end of its lifetime by the monotonic clock and by the wall clock: it ends at whichever
    /// comes first (the monotonic clock stops while the machine sleeps, the wall one does not).
    expires: Option<(Instant, SystemTime)>,
    pub hops: Vec<Hop>,
    /// The destinations as `ssh-add -h` named them.
    pub only_to: Vec<String>,
    /// Who added it (the expiry's audit row names them).
    pub by: Peer,
}

impl Added {
    fn expired(&self, now: Instant, wall: SystemTime) -> bool {
        self.expires
            .is_some_and(|(at, end)| at <= now || end <= wall)
    }

    /// What `agent status` shows (no key material).
    pub fn info(&self) -> AgentAddedKey {
        AgentAddedKey {
            name: self.name.clone(),
            fingerprint: self.fingerprint.clone(),
            confirm: self.confirm,
            expires: self.expires.map(|(_, end)| unix(end)),
            only_to: self.only_to.clone(),
        }
    }

    /// How long until its lifetime ends, if it has one.
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires.map(|(at, end)| {
            at.saturating_duration_since(Instant::now())
                .min(end.duration_since(SystemTime::now()).unwrap_or_default())
        })
    }

    /// The audit's words for the key and its constraints.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.private.algorithm().as_str(), self.fingerprint);
        if let Some(left) = self.lifetime() {
            s.push_str(&format!(", lifetime {} s", left.as_secs()));
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

/// A key whose lifetime ended and that was wiped, for the audit.
pub struct Expired {
    pub name: String,
    pub by: Peer,
}

/// The keys, each boxed so that dropping one from the list moves no private part (each is
/// wiped where it lives), and those whose lifetime ended, not audited yet.
#[derive(Default)]
struct Store {
    // Boxed on purpose: `retain` and `remove` shift the list, and would move (copy, unwiped)
    // the private parts were they stored inline.
    #[allow(clippy::vec_box)]
    keys: Vec<Box<Added>>,
    expired: Vec<Expired>,
}

/// The keys added through the socket, in memory only.
#[derive(Default)]
pub struct AddedKeys {
    store: Mutex<Store>,
    /// Wakes the reaper (`ssh_add::reap`): a key with a lifetime came, or keys expired.
    pub wake: tokio::sync::Notify,
}

/// Seconds since the Unix epoch.
fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl AddedKeys {
    /// The keys, those whose lifetime ended dropped (and wiped) first and queued for the audit.
    fn live(&self) -> MutexGuard<'_, Store> {
        self.live_at(Instant::now(), SystemTime::now())
    }

    fn live_at(&self, now: Instant, wall: SystemTime) -> MutexGuard<'_, Store> {
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        if store.keys.capacity() < MAX_ADDED {
            let more = MAX_ADDED - store.keys.len();
            store.keys.reserve_exact(more);
        }
        if store.keys.iter().any(|k| k.expired(now, wall)) {
            let Store { keys, expired } = &mut *store;
            keys.retain(|k| {
                let gone = k.expired(now, wall);
                if gone {
                    expired.push(Expired {
                        name: k.name.clone(),
                        by: k.by.clone(),
                    });
                }
                !gone
            });
            self.wake.notify_one();
        }
        store
    }

    /// Drops the keys whose lifetime ended; returns those not audited yet.
    pub fn expire(&self) -> Vec<Expired> {
        std::mem::take(&mut self.live().expired)
    }

    /// How long until the first lifetime ends, if a key has one.
    pub fn next_expiry(&self) -> Option<Duration> {
        self.live().keys.iter().filter_map(|k| k.lifetime()).min()
    }

    /// Adds a key, replacing one with the same public key (as ssh-agent does).
    pub fn add(&self, key: Box<Added>) -> Result<(), &'static str> {
        let timed = key.expires.is_some();
        let mut store = self.live();
        store.keys.retain(|k| k.blob != key.blob);
        if store.keys.len() >= MAX_ADDED {
            return Err("too many keys added through the socket");
        }
        store.keys.push(key);
        drop(store);
        if timed {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Removes the key with this public key blob; its name when there was one.
    pub fn remove(&self, blob: &[u8]) -> Option<String> {
        let mut store = self.live();
        let at = store.keys.iter().position(|k| k.blob == blob)?;
        Some(store.keys.remove(at).name.clone())
    }

    /// Removes every added key; their names.
    pub fn remove_all(&self) -> Vec<String> {
        self.live().keys.drain(..).map(|k| k.name.clone()).collect()
    }

    /// (public key blob, comment) of each key, for `ssh-add -l`.
    pub fn identities(&self) -> Vec<(Vec<u8>, String)> {
        self.live()
            .keys
            .iter()
            .map(|k| (k.blob.clone(), k.name.clone()))
            .collect()
    }

    pub fn info(&self) -> Vec<AgentAddedKey> {
        self.live().keys.iter().map(|k| k.info()).collect()
    }

    pub fn meta(&self, blob: &[u8]) -> Option<Meta> {
        self.live()
            .keys
            .iter()
            .find(|k| k.blob == blob)
            .map(|k| Meta {
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
        let store = self.live();
        let key = store.keys.iter().find(|k| k.blob == blob)?;
        Some(super::sign_with(&key.private, hash, data))
    }
}

/// Parses an `SSH_AGENTC_ADD_IDENTITY` / `SSH_AGENTC_ADD_ID_CONSTRAINED` body (after the
/// message number) into a key ready to keep, or says why it is refused.
pub fn parse_add(mut body: &[u8]) -> Result<Box<Added>, String> {
    let kind = {
        let mut peek = body;
        string(&mut peek).ok_or("truncated key")?.to_vec()
    };
    let kind = shown(&String::from_utf8_lossy(&kind), 64);
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
    match &data {
        KeypairData::Ed25519(_) | KeypairData::Ecdsa(_) => {}
        KeypairData::Rsa(rsa) if RSA_BITS.contains(&rsa.key_size()) => {}
        KeypairData::Rsa(rsa) => {
            return Err(format!(
                "a {}-bit RSA key: sshkeep's agent takes {} to {} bits",
                rsa.key_size(),
                RSA_BITS.start(),
                RSA_BITS.end()
            ));
        }
        _ => return Err(format!("{kind} keys are not supported by sshkeep's agent")),
    }
    let private = PrivateKey::new(data, "").map_err(|_| "the key does not parse".to_string())?;
    probe(&private).map_err(|why| format!("this {kind} key is refused: {why}"))?;
    let comment = string(&mut body).ok_or("truncated comment")?;
    // Shown in `agent status` and the audit: no control characters reach a terminal.
    let comment = shown(&String::from_utf8_lossy(comment), 256);
    let public = private.public_key();
    let blob = public
        .to_bytes()
        .map_err(|_| "the public key does not encode".to_string())?;
    let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
    let mut key = Box::new(Added {
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
        by: Peer::default(),
    });
    let mut lifetime = None;
    while let Some(&[t]) = take(&mut body, 1) {
        match t {
            CONSTRAIN_LIFETIME if lifetime.is_none() => {
                let secs = u32_of(&mut body).ok_or("truncated lifetime")?;
                lifetime = Some(secs);
                let secs = Duration::from_secs(secs.into());
                key.expires = Some((Instant::now() + secs, SystemTime::now() + secs));
            }
            CONSTRAIN_CONFIRM if !key.confirm => key.confirm = true,
            CONSTRAIN_EXTENSION => {
                let name = string(&mut body).ok_or("truncated constraint")?;
                if name != RESTRICT_DESTINATION || !key.hops.is_empty() {
                    return Err(format!(
                        "the key constraint {} is not supported by sshkeep's agent",
                        shown(&String::from_utf8_lossy(name), 64)
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

/// A key that cannot sign, or whose signature does not verify under the public key it would be
/// listed with (a key pair whose halves do not match), is refused now, not listed and then failing.
fn probe(private: &PrivateKey) -> Result<(), &'static str> {
    use russh::keys::ssh_key::Signature;
    const PROBE: &[u8] = b"sshkeep agent probe";
    let sig = super::sign_with(private, Some(HashAlg::Sha512), PROBE)
        .map_err(|_| "sshkeep cannot sign with it")?;
    let sig = Signature::decode(&mut sig.as_slice()).map_err(|_| "sshkeep cannot sign with it")?;
    russh::keys::signature::Verifier::verify(private.public_key(), PROBE, &sig)
        .map_err(|_| "its private part does not match its public key")
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
        assert!(a.lifetime().is_some_and(|l| l <= Duration::from_secs(30)));
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

    #[test]
    fn a_lifetime_ends_by_the_wall_clock_too_and_the_expiry_is_queued_for_the_audit() {
        let store = AddedKeys::default();
        let (mut m, _) = key_msg();
        m.extend_from_slice(&[CONSTRAIN_LIFETIME, 0, 0, 0, 60]);
        let key = parse_add(&m).expect("parses");
        let blob = key.blob.clone();
        store.add(key).expect("added");
        let (m, _) = key_msg();
        store.add(parse_add(&m).expect("parses")).expect("added");
        let left = store.next_expiry().expect("a lifetime");
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50));
        // The monotonic clock says 0 s went by (it stops while the machine sleeps), the wall
        // clock says 2 minutes: the key is gone.
        let now = Instant::now();
        assert_eq!(
            store
                .live_at(now, SystemTime::now() + Duration::from_secs(120))
                .keys
                .len(),
            1
        );
        assert!(store.sign(&blob, None, b"x").is_none());
        let gone = store.expire();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].name, "me@laptop");
        assert!(store.expire().is_empty(), "audited once");
        assert_eq!(store.next_expiry(), None);
    }

    #[test]
    fn a_key_whose_halves_do_not_match_is_refused() {
        use russh::keys::ssh_key::private::{EcdsaKeypair, KeypairData};
        let p256 = || {
            let k = PrivateKey::random(
                &mut rand::rng(),
                russh::keys::Algorithm::Ecdsa {
                    curve: russh::keys::EcdsaCurve::NistP256,
                },
            )
            .expect("key");
            match k.key_data() {
                KeypairData::Ecdsa(EcdsaKeypair::NistP256 { public, private }) => {
                    (*public, private.clone())
                }
                _ => unreachable!("a P-256 key"),
            }
        };
        let (public_a, private_a) = p256();
        let (public_b, _) = p256();
        let msg = |public| {
            let data = KeypairData::Ecdsa(EcdsaKeypair::NistP256 {
                public,
                private: private_a.clone(),
            });
            let mut m = data.encode_vec().expect("encode");
            put(&mut m, b"mixed");
            m
        };
        assert!(parse_add(&msg(public_a)).is_ok(), "matching halves");
        let why = parse_add(&msg(public_b)).err().expect("mismatched halves");
        assert!(why.contains("does not match"), "{why}");
    }
}
