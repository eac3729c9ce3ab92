//! Port forward specifications in OpenSSH's forms (`-L [bind:]port:host:hostport`,
//! `-D [bind:]port`, `-R [bind:]port:host:hostport`), read the same way for the CLI and for the
//! MCP adapter, and forwards described in those words.

use crate::protocol::{ForwardInfo, ForwardKind, ForwardSpec};

/// The three forms, for messages.
pub const FORMS: &str =
    "-L [bind:]port:host:hostport, -D [bind:]port or -R [bind:]port:host:hostport";

/// A forward of `kind` to `target`, from its `ssh` option text.
pub fn parse(
    kind: ForwardKind,
    text: &str,
    target: String,
    key: Option<String>,
    allow_public: bool,
) -> Result<ForwardSpec, String> {
    let (bind, f) = match kind {
        ForwardKind::Local => split_bind(text, 3)?,
        ForwardKind::Dynamic => split_bind(text, 1)?,
        ForwardKind::Remote => split_remote_bind(text)?,
    };
    let (host, host_port) = match kind {
        ForwardKind::Dynamic => (None, None),
        ForwardKind::Local | ForwardKind::Remote => (Some(f[1].clone()), Some(port(&f[2])?)),
    };
    Ok(ForwardSpec {
        target,
        key,
        kind,
        bind_address: bind,
        bind_port: port(&f[0])?,
        host,
        host_port,
        allow_public,
    })
}

/// Splits `[bind:]f1:f2...` into the bind address (default 127.0.0.1) and `fields` fields;
/// any part may be a bracketed IPv6 address, as with ssh.
fn split_bind(spec: &str, fields: usize) -> Result<(String, Vec<String>), String> {
    let (bind, f) = split_raw(spec, fields)?;
    let bind = match bind.as_deref() {
        None | Some("" | "localhost") => "127.0.0.1".to_string(),
        Some("*") => "0.0.0.0".to_string(),
        Some(b) => b.to_string(),
    };
    Ok((bind, f))
}

/// The same for `-R`, where the address is the server's and is passed as `ssh -R` passes it:
/// `localhost` by default, the empty string (every address) for `*` or an empty one.
fn split_remote_bind(spec: &str) -> Result<(String, Vec<String>), String> {
    let (bind, f) = split_raw(spec, 3)?;
    let bind = match bind.as_deref() {
        None => "localhost".to_string(),
        Some("" | "*") => String::new(),
        Some(b) => b.to_string(),
    };
    Ok((bind, f))
}

fn split_raw(spec: &str, fields: usize) -> Result<(Option<String>, Vec<String>), String> {
    let mut parts = Vec::new();
    let mut rest = spec;
    loop {
        let (part, tail) = match rest.strip_prefix('[') {
            Some(r) => {
                let (h, tail) = r
                    .split_once(']')
                    .ok_or_else(|| format!("{spec:?}: unclosed ["))?;
                (h, tail)
            }
            None => match rest.find(':') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            },
        };
        parts.push(part.to_string());
        match tail.strip_prefix(':') {
            Some(t) => rest = t,
            None if tail.is_empty() => break,
            None => return Err(format!("{spec:?}: expected `:` after {part:?}")),
        }
    }
    if parts.len() == fields + 1 {
        let bind = parts.remove(0);
        Ok((Some(bind), parts))
    } else if parts.len() == fields {
        Ok((None, parts))
    } else {
        Err(format!("{spec:?} does not have the form the option takes"))
    }
}

fn port(s: &str) -> Result<u16, String> {
    s.parse().map_err(|_| format!("{s:?} is not a port number"))
}

/// A forward in `ssh`'s words: `-L 127.0.0.1:8080 -> db:5432 via web1`.
pub fn describe(f: &ForwardInfo) -> String {
    let bind = if f.bind_address.contains(':') {
        format!("[{}]:{}", f.bind_address, f.bind_port)
    } else if f.bind_address.is_empty() {
        format!("*:{}", f.bind_port)
    } else {
        format!("{}:{}", f.bind_address, f.bind_port)
    };
    match f.kind {
        ForwardKind::Local => format!(
            "-L {bind} -> {}:{} via {}",
            f.host.as_deref().unwrap_or_default(),
            f.host_port.unwrap_or(0),
            f.target
        ),
        ForwardKind::Dynamic => format!("-D {bind} (SOCKS5) via {}", f.target),
        ForwardKind::Remote => format!(
            "-R {bind} on {} -> {}:{} from here",
            f.target,
            f.host.as_deref().unwrap_or_default(),
            f.host_port.unwrap_or(0)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_specs_parse_like_ssh() {
        let (b, f) = split_bind("8080:db.internal:5432", 3).expect("parse");
        assert_eq!(
            (b.as_str(), f.as_slice()),
            (
                "127.0.0.1",
                &["8080".to_string(), "db.internal".into(), "5432".into()][..]
            )
        );
        let (b, f) = split_bind("0.0.0.0:8080:[::1]:80", 3).expect("parse");
        assert_eq!(b, "0.0.0.0");
        assert_eq!(f[1], "::1");
        let (b, f) = split_bind("[::1]:1080", 1).expect("parse");
        assert_eq!((b.as_str(), f[0].as_str()), ("::1", "1080"));
        let (b, _) = split_bind("*:1080", 1).expect("parse");
        assert_eq!(b, "0.0.0.0");
        assert!(split_bind("1:2", 3).is_err());
        let (b, f) = split_remote_bind("0:127.0.0.1:7000").expect("parse");
        assert_eq!((b.as_str(), f[0].as_str()), ("localhost", "0"));
        let (b, _) = split_remote_bind("*:8080:localhost:80").expect("parse");
        assert_eq!(b, "");
        let (b, _) = split_remote_bind("[::1]:8080:localhost:80").expect("parse");
        assert_eq!(b, "::1");
    }

    #[test]
    fn a_spec_becomes_a_forward() {
        let s = parse(
            ForwardKind::Remote,
            "0:127.0.0.1:7000",
            "srv".into(),
            None,
            false,
        )
        .expect("parse");
        assert_eq!(
            (
                s.bind_address.as_str(),
                s.bind_port,
                s.host.as_deref(),
                s.host_port
            ),
            ("localhost", 0, Some("127.0.0.1"), Some(7000))
        );
        let s = parse(ForwardKind::Dynamic, "1080", "srv".into(), None, false).expect("parse");
        assert_eq!((s.bind_port, s.host), (1080, None));
        assert!(parse(ForwardKind::Local, "80:x:http", "srv".into(), None, false).is_err());
    }
}
