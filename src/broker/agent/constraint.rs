//! Destination constraints, as OpenSSH's `ssh-add -h` makes them (PROTOCOL.agent,
//! `restrict-destination-v00@openssh.com`): a constrained key signs only a user
//! authentication for a session that its client bound to the agent connection with
//! `session-bind@openssh.com`, and only when every hop recorded there (the host forwarded to,
//! then the host logged in to) is one the key allows.
//!
//! sshkeep is stricter than OpenSSH in one way: a constrained key is never used on a
//! connection that bound no session (OpenSSH takes that for local use), so a socket reached by
//! a client that does not bind, or by a stolen socket, signs nothing with it.

use russh::keys::ssh_encoding::Decode;
use russh::keys::ssh_key::Signature;
use russh::keys::{HashAlg, PublicKey};

use super::wire::shown;
use crate::broker::core::Core;
use crate::broker::core::fail::Fail;
use crate::protocol::ErrorCode;

/// At most this many bound sessions per agent connection (OpenSSH's limit).
pub const MAX_BINDS: usize = 16;

/// A login's user name longer than this (bytes) gets no signature from a constrained key: real
/// names are short, and the name comes from the data to be signed, which the client chooses.
pub const MAX_USER: usize = 256;

/// One `session-bind@openssh.com`: a host key (by fingerprint) proven by its signature over
/// the session identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub host_key: String,
    /// Empty for the hop sshkeep itself forwards its agent to (it knows the host key first hand).
    pub session_id: Vec<u8>,
    pub forwarding: bool,
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (a, b) = buf.split_at(n);
    *buf = b;
    Some(a)
}

fn string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = take(buf, 4)?;
    let n = u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize;
    take(buf, n)
}

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Parses and checks the body of a `session-bind@openssh.com` extension (after its name): the
/// host key's signature over the session identifier must verify.
pub fn session_bind(mut body: &[u8]) -> Result<Bind, &'static str> {
    let key = string(&mut body).ok_or("truncated")?;
    let sid = string(&mut body).ok_or("truncated")?;
    let sig = string(&mut body).ok_or("truncated")?;
    let fwd = take(&mut body, 1).ok_or("truncated")?[0] != 0;
    if !body.is_empty() {
        return Err("trailing data");
    }
    // An empty identifier stands for sshkeep's own first hop (`Bind::session_id`), never a
    // client's: it would let an authentication for any session pass as the bound one.
    if sid.is_empty() {
        return Err("an empty session identifier");
    }
    let key = PublicKey::from_bytes(key).map_err(|_| "not a host key")?;
    let sig = Signature::decode(&mut &sig[..]).map_err(|_| "not a signature")?;
    russh::keys::signature::Verifier::verify(&key, sid, &sig)
        .map_err(|_| "the host key's signature does not verify")?;
    Ok(Bind {
        host_key: fingerprint(&key),
        session_id: sid.to_vec(),
        forwarding: fwd,
    })
}

/// What a user-authentication request to be signed names.
#[derive(Debug, PartialEq, Eq)]
pub struct Userauth {
    pub session_id: Vec<u8>,
    pub user: String,
    pub key_blob: Vec<u8>,
    /// For `publickey-hostbound-v00@openssh.com`: the host key the client saw (fingerprint).
    pub host_key: Option<String>,
}

/// Parses data to be signed as an SSH user-authentication request (RFC 4252 section 7), the
/// only thing a constrained key signs.
pub fn userauth(mut data: &[u8]) -> Option<Userauth> {
    let session_id = string(&mut data)?.to_vec();
    if take(&mut data, 1)? != [50] {
        return None;
    }
    let user = String::from_utf8(string(&mut data)?.to_vec()).ok()?;
    if string(&mut data)? != b"ssh-connection" {
        return None;
    }
    let method = string(&mut data)?;
    let hostbound = match method {
        b"publickey" => false,
        b"publickey-hostbound-v00@openssh.com" => true,
        _ => return None,
    };
    if take(&mut data, 1)? != [1] {
        return None;
    }
    let _alg = string(&mut data)?;
    let key_blob = string(&mut data)?.to_vec();
    let host_key = if hostbound {
        Some(fingerprint(
            &PublicKey::from_bytes(string(&mut data)?).ok()?,
        ))
    } else {
        None
    };
    data.is_empty().then_some(Userauth {
        session_id,
        user,
        key_blob,
        host_key,
    })
}

/// One allowed hop: to a host key, directly from here (`from` none) or from a host key; `user`
/// (a pattern, `*` and `?` as in OpenSSH) limits the account a login on that hop may be for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    pub from: Option<Vec<String>>,
    pub to: Vec<String>,
    pub user: Option<String>,
}

/// The host keys (fingerprints) one name stands for: a `SHA256:` fingerprint as given, a saved
/// connection's pinned key, or the pinned key of `host[:port]`.
pub fn host_keys(broker: &Core, name: &str) -> Result<Vec<String>, Fail> {
    if name.starts_with("SHA256:") {
        return Ok(vec![name.to_string()]);
    }
    let (host, port) = match crate::broker::core::login::find_conn(broker, name) {
        Ok(c) => (c.spec.host, c.spec.port),
        Err(_) => match name.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.parse().unwrap_or(22)),
            _ => (name.to_string(), 22),
        },
    };
    match broker.db()?.pin(&host, port)? {
        Some(pin) => Ok(vec![pin.fingerprint]),
        None => Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "no host key is pinned for '{name}' ({host}:{port}): log in once (or `sshkeep conn trust`), or give its SHA256: fingerprint"
            ),
        )),
    }
}

/// The hops a key's `only_to` entries allow (`TO` or `FROM>TO`).
pub fn hops(broker: &Core, only_to: &[String]) -> Result<Vec<Hop>, Fail> {
    only_to
        .iter()
        .map(|e| match e.split_once('>') {
            Some((from, to)) => Ok(Hop {
                from: Some(host_keys(broker, from.trim())?),
                to: host_keys(broker, to.trim())?,
                user: None,
            }),
            None => Ok(Hop {
                from: None,
                to: host_keys(broker, e.trim())?,
                user: None,
            }),
        })
        .collect()
}

/// The most hops one `restrict-destination-v00@openssh.com` constraint may list, and host keys
/// one hop may name (OpenSSH's own agent takes fewer in practice).
const MAX_HOPS: usize = 64;
const MAX_HOP_KEYS: usize = 64;

/// One side of a destination hop on the wire: the user, the host's name (as `ssh-add -h` was
/// given it, for display) and its keys' fingerprints.
struct WireHop {
    user: Option<String>,
    host: Option<String>,
    keys: Vec<String>,
}

fn wire_text(buf: &mut &[u8]) -> Result<Option<String>, String> {
    let s = string(buf).ok_or("truncated destination constraint")?;
    let s = std::str::from_utf8(s).map_err(|_| "a destination name is not UTF-8")?;
    Ok((!s.is_empty()).then(|| s.to_string()))
}

fn wire_hop(mut b: &[u8]) -> Result<WireHop, String> {
    let user = wire_text(&mut b)?;
    let host = wire_text(&mut b)?;
    string(&mut b).ok_or("truncated destination constraint")?;
    let mut keys = Vec::new();
    while !b.is_empty() {
        if keys.len() >= MAX_HOP_KEYS {
            return Err("too many host keys in one destination hop".into());
        }
        let blob = string(&mut b).ok_or("truncated destination host key")?;
        let is_ca = take(&mut b, 1).ok_or("truncated destination host key")?[0] != 0;
        if is_ca {
            return Err(format!(
                "host '{}' is given by a certificate authority; sshkeep's agent takes destination constraints by host key only",
                shown(host.as_deref().unwrap_or("?"), 64)
            ));
        }
        let key =
            PublicKey::from_bytes(blob).map_err(|_| "a destination host key does not parse")?;
        keys.push(fingerprint(&key));
    }
    Ok(WireHop { user, host, keys })
}

/// Parses a `restrict-destination-v00@openssh.com` key constraint (the string after its name,
/// as OpenSSH's `ssh-add -h` sends it): the hops it allows and a label for each (`ssh-add -h`'s
/// words). Anything sshkeep cannot enforce fully is an error, never a looser constraint.
pub fn restrict_destination(mut all: &[u8]) -> Result<(Vec<Hop>, Vec<String>), String> {
    let (mut hops, mut labels) = (Vec::new(), Vec::new());
    while !all.is_empty() {
        if hops.len() >= MAX_HOPS {
            return Err("too many destination hops".into());
        }
        let mut c = string(&mut all).ok_or("truncated destination constraint")?;
        let from = wire_hop(string(&mut c).ok_or("truncated destination constraint")?)?;
        let to = wire_hop(string(&mut c).ok_or("truncated destination constraint")?)?;
        string(&mut c).ok_or("truncated destination constraint")?;
        if from.user.is_some() {
            return Err("a destination hop names a user on its origin".into());
        }
        if from.host.is_none() != from.keys.is_empty() || to.host.is_none() || to.keys.is_empty() {
            return Err("a destination hop without host keys".into());
        }
        // Labels are shown (status, audit): short and without control characters.
        let to_name = shown(to.host.as_deref().unwrap_or_default(), 128);
        let to_name = match &to.user {
            Some(u) => format!("{}@{to_name}", shown(u, 64)),
            None => to_name,
        };
        labels.push(match &from.host {
            Some(f) => format!("{}>{to_name}", shown(f, 128)),
            None => to_name,
        });
        hops.push(Hop {
            from: from.host.map(|_| from.keys),
            to: to.keys,
            user: to.user,
        });
    }
    if hops.is_empty() {
        return Err("a destination constraint that lists no hop".into());
    }
    Ok((hops, labels))
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters and `?` for one.
/// Iterative (the last `*` is retried one character further on a mismatch): time grows with
/// pattern length times text length at worst, never exponentially, and no recursion.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // After the last `*` seen: the pattern position past it, and the text position it resumes.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// `user` is the account of the login on this hop (the last one), `None` on hops passed through.
fn allowed(hops: &[Hop], from: Option<&str>, to: &str, user: Option<&str>) -> bool {
    hops.iter().any(|h| {
        h.to.iter().any(|t| t == to)
            && match (&h.user, user) {
                (Some(want), Some(user)) => glob(want.as_bytes(), user.as_bytes()),
                _ => true,
            }
            && match (&h.from, from) {
                (None, None) => true,
                (Some(f), Some(from)) => f.iter().any(|f| f == from),
                _ => false,
            }
    })
}

/// Whether a constrained key (`key_blob`, allowed `hops`) may sign `data` on a connection whose
/// bound sessions are `binds`; the reason when not.
pub fn permitted(hops: &[Hop], binds: &[Bind], key_blob: &[u8], data: &[u8]) -> Result<(), String> {
    let Some(last) = binds.last() else {
        return Err("the client bound no session to this agent connection (session-bind@openssh.com), and the key is destination-constrained".into());
    };
    let Some(req) = userauth(data) else {
        return Err("a destination-constrained key signs only user authentications".into());
    };
    if req.key_blob != key_blob {
        return Err("the authentication names another key".into());
    }
    if req.user.len() > MAX_USER {
        return Err(format!(
            "the login's user name is longer than {MAX_USER} bytes"
        ));
    }
    if last.forwarding {
        return Err("the last bound session is a forwarding hop, not a login".into());
    }
    if !last.session_id.is_empty() && req.session_id != last.session_id {
        return Err("the authentication is for another session than the one bound".into());
    }
    if let Some(hk) = &req.host_key
        && hk != &last.host_key
    {
        return Err("the authentication names another host key than the one bound".into());
    }
    for (i, b) in binds.iter().enumerate() {
        if i + 1 < binds.len() && !b.forwarding {
            return Err("a login-bound session was used to forward".into());
        }
        let from = i.checked_sub(1).map(|p| binds[p].host_key.as_str());
        let user = (i + 1 == binds.len()).then_some(req.user.as_str());
        if !allowed(hops, from, &b.host_key, user) {
            return Err(match from {
                None => format!(
                    "host key {} (user {}) is not one the key may be used to",
                    b.host_key,
                    shown(&req.user, 64)
                ),
                Some(f) => format!(
                    "the hop from host key {f} to host key {} is not one the key may be used on",
                    b.host_key
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }

    fn auth(sid: &[u8], key: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        put(&mut d, sid);
        d.push(50);
        put(&mut d, b"me");
        put(&mut d, b"ssh-connection");
        put(&mut d, b"publickey");
        d.push(1);
        put(&mut d, b"ssh-ed25519");
        put(&mut d, key);
        d
    }

    fn bind(hk: &str, sid: &[u8], fwd: bool) -> Bind {
        Bind {
            host_key: hk.into(),
            session_id: sid.to_vec(),
            forwarding: fwd,
        }
    }

    #[test]
    fn only_listed_hops_sign() {
        let hops = vec![Hop {
            from: None,
            to: vec!["A".into()],
            user: None,
        }];
        let data = auth(b"s1", b"K");
        assert!(permitted(&hops, &[bind("A", b"s1", false)], b"K", &data).is_ok());
        assert!(permitted(&hops, &[], b"K", &data).is_err(), "unbound");
        assert!(permitted(&hops, &[bind("B", b"s1", false)], b"K", &data).is_err());
        assert!(permitted(&hops, &[bind("A", b"s2", false)], b"K", &data).is_err());
        assert!(permitted(&hops, &[bind("A", b"s1", false)], b"X", &data).is_err());
        assert!(permitted(&hops, &[bind("A", b"s1", false)], b"K", b"not auth").is_err());
        // Forwarded to A, then on to B: refused unless A>B is listed.
        let on = [bind("A", b"s0", true), bind("B", b"s1", false)];
        assert!(permitted(&hops, &on, b"K", &data).is_err());
        let mut more = hops.clone();
        more.push(Hop {
            from: Some(vec!["A".into()]),
            to: vec!["B".into()],
            user: None,
        });
        assert!(permitted(&more, &on, b"K", &data).is_ok());
        assert!(permitted(&more, &[bind("A", b"s1", true)], b"K", &data).is_err());
        // A user on the hop limits the account of the login (`auth` signs for "me").
        let only = |u: &str| {
            vec![Hop {
                from: None,
                to: vec!["A".into()],
                user: Some(u.into()),
            }]
        };
        let a = [bind("A", b"s1", false)];
        assert!(permitted(&only("me"), &a, b"K", &data).is_ok());
        assert!(permitted(&only("m*"), &a, b"K", &data).is_ok());
        assert!(permitted(&only("?e"), &a, b"K", &data).is_ok());
        assert!(permitted(&only("root"), &a, b"K", &data).is_err());
        assert!(permitted(&only("mee*x"), &a, b"K", &data).is_err());
    }

    #[test]
    fn globs_match_without_blowing_up() {
        for (p, t, want) in [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbb", false),
            ("?e", "me", true),
            ("?e", "mee", false),
            ("*e*e", "xexxe", true),
            ("m*e*x", "meex", true),
            ("mee*x", "me", false),
            ("de*", "deploy", true),
            ("**", "x", true),
        ] {
            assert_eq!(glob(p.as_bytes(), t.as_bytes()), want, "{p} ~ {t}");
        }
        // The recursive matcher took exponential time on this; the iterative one is quadratic.
        let pattern = "*a".repeat(20) + "b";
        let text = "a".repeat(256);
        let start = std::time::Instant::now();
        assert!(!glob(pattern.as_bytes(), text.as_bytes()));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn long_user_names_get_no_signature() {
        let hops = vec![Hop {
            from: None,
            to: vec!["A".into()],
            user: Some("*a*a*a*a*a*a*a*a*a*a*b".into()),
        }];
        let long = |n: usize| {
            let mut d = Vec::new();
            put(&mut d, b"s1");
            d.push(50);
            put(&mut d, "a".repeat(n).as_bytes());
            put(&mut d, b"ssh-connection");
            put(&mut d, b"publickey");
            d.push(1);
            put(&mut d, b"ssh-ed25519");
            put(&mut d, b"K");
            d
        };
        let a = [bind("A", b"s1", false)];
        let start = std::time::Instant::now();
        let why = permitted(&hops, &a, b"K", &long(200 * 1024)).expect_err("too long");
        assert!(why.contains("longer than 256"), "{why}");
        let why = permitted(&hops, &a, b"K", &long(MAX_USER)).expect_err("not matched");
        assert!(why.contains("is not one") && why.len() < 200, "{why}");
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_bind_whose_signature_does_not_verify_is_refused() {
        use russh::keys::ssh_encoding::Encode;
        let host =
            russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
                .expect("key");
        let sig: Signature =
            russh::keys::signature::Signer::try_sign(&host, b"session").expect("sign");
        let mut body = Vec::new();
        put(&mut body, &host.public_key().to_bytes().expect("blob"));
        put(&mut body, b"session");
        put(&mut body, &sig.encode_vec().expect("sig"));
        body.push(1);
        let b = session_bind(&body).expect("valid bind");
        assert!(b.forwarding);
        assert_eq!(b.host_key, fingerprint(host.public_key()));
        let mut forged = body.clone();
        let at = 4 + host.public_key().to_bytes().expect("blob").len() + 4;
        forged[at] ^= 1;
        assert!(session_bind(&forged).is_err());

        // A verifying bind for an empty session identifier: refused.
        let sig: Signature = russh::keys::signature::Signer::try_sign(&host, b"").expect("sign");
        let mut empty = Vec::new();
        put(&mut empty, &host.public_key().to_bytes().expect("blob"));
        put(&mut empty, b"");
        put(&mut empty, &sig.encode_vec().expect("sig"));
        empty.push(0);
        assert_eq!(session_bind(&empty), Err("an empty session identifier"));
    }
}
