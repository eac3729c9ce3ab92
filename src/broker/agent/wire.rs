//! The ssh-agent protocol's messages (draft-miller-ssh-agent), as pure functions: a request in,
//! a reply out. Listing identities, signing, binding sessions (session-bind@openssh.com), adding
//! and removing keys (`ssh-add`) are served; locking, smartcards and anything else get
//! `SSH_AGENT_FAILURE`.

/// Message numbers.
pub const FAILURE: u8 = 5;
pub const SUCCESS: u8 = 6;
pub const REQUEST_IDENTITIES: u8 = 11;
pub const IDENTITIES_ANSWER: u8 = 12;
pub const SIGN_REQUEST: u8 = 13;
pub const SIGN_RESPONSE: u8 = 14;
pub const ADD_IDENTITY: u8 = 17;
pub const REMOVE_IDENTITY: u8 = 18;
pub const REMOVE_ALL: u8 = 19;
pub const ADD_SMARTCARD_KEY: u8 = 20;
pub const LOCK: u8 = 22;
pub const UNLOCK: u8 = 23;
pub const ADD_ID_CONSTRAINED: u8 = 25;
pub const ADD_SMARTCARD_KEY_CONSTRAINED: u8 = 26;
pub const EXTENSION: u8 = 27;

/// Sign-request flags.
pub const RSA_SHA2_256: u32 = 2;
pub const RSA_SHA2_512: u32 = 4;

/// The largest message accepted (OpenSSH's agent uses 256 KiB).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// A parsed request.
#[derive(Debug, PartialEq, Eq)]
pub enum AgentRequest {
    Identities,
    Sign {
        key_blob: Vec<u8>,
        data: Vec<u8>,
        flags: u32,
    },
    /// `ssh-add`: a key and its constraints follow the message number (parsed by `added`).
    Add,
    /// `ssh-add -d`: the key's public blob.
    Remove {
        key_blob: Vec<u8>,
    },
    /// `ssh-add -D`.
    RemoveAll,
    /// Smartcards, locking: refused.
    Refused(&'static str),
    /// An extension: its name and the rest of the message.
    Extension {
        name: Vec<u8>,
        body: Vec<u8>,
    },
    /// Unknown messages.
    Unsupported(u8),
}

pub(super) fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (a, b) = buf.split_at(n);
    *buf = b;
    Some(a)
}

pub(super) fn u32_of(buf: &mut &[u8]) -> Option<u32> {
    take(buf, 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

pub(super) fn string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = u32_of(buf)? as usize;
    take(buf, n)
}

/// Text from a client (a comment, a user or host name, a key type) as it may be shown in the
/// audit, a log or `agent status`: control characters as `?`, at most `max` characters.
pub(super) fn shown(text: &str, max: usize) -> String {
    let mut out: String = text
        .trim()
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.trim().chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

/// Parses one message body (without its length prefix).
pub fn parse(msg: &[u8]) -> Option<AgentRequest> {
    let (&kind, mut rest) = msg.split_first()?;
    Some(match kind {
        REQUEST_IDENTITIES => AgentRequest::Identities,
        SIGN_REQUEST => {
            let key_blob = string(&mut rest)?.to_vec();
            let data = string(&mut rest)?.to_vec();
            let flags = u32_of(&mut rest).unwrap_or(0);
            AgentRequest::Sign {
                key_blob,
                data,
                flags,
            }
        }
        ADD_IDENTITY | ADD_ID_CONSTRAINED => AgentRequest::Add,
        ADD_SMARTCARD_KEY | ADD_SMARTCARD_KEY_CONSTRAINED => {
            AgentRequest::Refused("adding smartcard keys")
        }
        REMOVE_IDENTITY => {
            let key_blob = string(&mut rest)?.to_vec();
            if !rest.is_empty() {
                return None;
            }
            AgentRequest::Remove { key_blob }
        }
        REMOVE_ALL => AgentRequest::RemoveAll,
        LOCK | UNLOCK => AgentRequest::Refused("locking the agent"),
        EXTENSION => match string(&mut rest) {
            Some(name) => AgentRequest::Extension {
                name: name.to_vec(),
                body: rest.to_vec(),
            },
            None => AgentRequest::Unsupported(EXTENSION),
        },
        other => AgentRequest::Unsupported(other),
    })
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Frames a message body with its length.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    put_string(&mut out, body);
    out
}

/// `SSH_AGENT_IDENTITIES_ANSWER` for (public key blob, comment) pairs.
pub fn identities(keys: &[(Vec<u8>, String)]) -> Vec<u8> {
    let mut b = vec![IDENTITIES_ANSWER];
    b.extend_from_slice(&(keys.len() as u32).to_be_bytes());
    for (blob, comment) in keys {
        put_string(&mut b, blob);
        put_string(&mut b, comment.as_bytes());
    }
    frame(&b)
}

/// `SSH_AGENT_SIGN_RESPONSE` around an encoded signature.
pub fn signature(sig: &[u8]) -> Vec<u8> {
    let mut b = vec![SIGN_RESPONSE];
    put_string(&mut b, sig);
    frame(&b)
}

/// `SSH_AGENT_SUCCESS`.
pub fn success() -> Vec<u8> {
    frame(&[SUCCESS])
}

/// `SSH_AGENT_FAILURE`.
pub fn failure() -> Vec<u8> {
    frame(&[FAILURE])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_replies_frame() {
        assert_eq!(parse(&[REQUEST_IDENTITIES]), Some(AgentRequest::Identities));
        let mut sign = vec![SIGN_REQUEST];
        put_string(&mut sign, b"blob");
        put_string(&mut sign, b"data");
        sign.extend_from_slice(&4u32.to_be_bytes());
        assert_eq!(
            parse(&sign),
            Some(AgentRequest::Sign {
                key_blob: b"blob".to_vec(),
                data: b"data".to_vec(),
                flags: 4
            })
        );
        assert_eq!(parse(&[SIGN_REQUEST, 0, 0, 0, 9, 1]), None, "truncated");
        assert_eq!(parse(&[ADD_IDENTITY, 1, 2]), Some(AgentRequest::Add));
        assert_eq!(parse(&[REMOVE_ALL]), Some(AgentRequest::RemoveAll));
        assert_eq!(
            parse(&[REMOVE_IDENTITY, 0, 0, 0, 1, b'k']),
            Some(AgentRequest::Remove {
                key_blob: b"k".to_vec()
            })
        );
        assert_eq!(parse(&[REMOVE_IDENTITY, 0, 0, 0, 2, b'k']), None);
        assert_eq!(
            parse(&[LOCK, 0, 0, 0, 0]),
            Some(AgentRequest::Refused("locking the agent"))
        );
        assert_eq!(
            parse(&[EXTENSION]),
            Some(AgentRequest::Unsupported(EXTENSION))
        );
        assert_eq!(parse(&[]), None);
        assert_eq!(shown(" a\x1b[2Jb\n ", 10), "a?[2Jb");
        assert_eq!(shown(&"x".repeat(300), 4), "xxxx...");
        assert_eq!(failure(), vec![0, 0, 0, 1, FAILURE]);
        let ids = identities(&[(b"k".to_vec(), "c".into())]);
        assert_eq!(
            ids,
            vec![
                0,
                0,
                0,
                15,
                IDENTITIES_ANSWER,
                0,
                0,
                0,
                1,
                0,
                0,
                0,
                1,
                b'k',
                0,
                0,
                0,
                1,
                b'c'
            ]
        );
    }
}
