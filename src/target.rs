//! Names and addresses: validation of connection and key names, and ad-hoc `user@host[:port]`.

/// Checks a connection, key or client name: 1-64 of `A-Z a-z 0-9 . _ -`, not starting with `-`.
/// Such names can never be mistaken for an ad-hoc address or a command-line flag.
pub fn validate_name(kind: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {kind} name {name:?}: use 1-64 letters, digits, '.', '_' or '-', not starting with '-'"
        ))
    }
}

/// Checks a host name or address: no spaces, no shell or option characters.
pub fn validate_host(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid host {host:?}"))
    }
}

/// The form of a host under which its pin is kept, so that one server is not several hosts
/// (an agent re-pointing a connection to `127.1` must not get a fresh pin). As OpenSSH and the
/// resolver read them: an IPv4 literal in any form `inet_aton` takes (`127.1`, `0x7f000001`,
/// `127.0.0.01` with its octal part) becomes dotted decimal; an IPv6 literal becomes its
/// canonical text, and an IPv4-mapped one its IPv4 address; a name is lowercased, without a
/// trailing dot.
pub fn canonical_host(host: &str) -> String {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Some(v4) = loose_ipv4(bare) {
        return v4.to_string();
    }
    if let Ok(v6) = bare.parse::<std::net::Ipv6Addr>() {
        return match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        };
    }
    let name = bare.to_ascii_lowercase();
    match name.strip_suffix('.') {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => name,
    }
}

/// An IPv4 address as `inet_aton` reads it: one to four parts, each decimal, octal (leading
/// `0`) or hex (`0x`); the last part fills the bytes left.
fn loose_ipv4(s: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(parts.len());
    for p in &parts {
        let n = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            if h.is_empty() {
                0
            } else if h.chars().all(|c| c.is_ascii_hexdigit()) {
                u32::from_str_radix(h, 16).ok()?
            } else {
                return None;
            }
        } else if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
            if p.len() > 1 && p.starts_with('0') {
                u32::from_str_radix(&p[1..], 8).ok()?
            } else {
                p.parse::<u32>().ok()?
            }
        } else {
            return None;
        };
        nums.push(n);
    }
    let (last, head) = nums.split_last()?;
    if head.iter().any(|n| *n > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - head.len() as u32);
    if rest_bits < 32 && *last >= (1u32 << rest_bits) {
        return None;
    }
    let mut v = *last;
    for (i, n) in head.iter().enumerate() {
        v |= n << (24 - 8 * i as u32);
    }
    Some(std::net::Ipv4Addr::from(v))
}

/// Checks a remote user name.
pub fn validate_user(user: &str) -> Result<(), String> {
    let ok = !user.is_empty()
        && user.len() <= 64
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '$'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid user name {user:?}"))
    }
}

/// An ad-hoc address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub user: String,
    pub host: String,
    pub port: u16,
}

/// Parses `user@host`, `user@host:port` or `user@[v6addr]:port`. Returns `None` for anything
/// without `@` (that is a saved connection's name).
pub fn parse_address(s: &str) -> Option<Result<Address, String>> {
    let (user, rest) = s.split_once('@')?;
    Some((|| {
        validate_user(user)?;
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("unclosed '[' in {s:?}"))?;
            (h, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                _ => (rest, None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid port in {s:?}"))?,
            None => 22,
        };
        validate_host(host)?;
        Ok(Address {
            user: user.into(),
            host: canonical_host(host),
            port,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a = parse_address("root@127.0.0.1:2222")
            .expect("some")
            .expect("ok");
        assert_eq!(
            (a.user.as_str(), a.host.as_str(), a.port),
            ("root", "127.0.0.1", 2222)
        );
        let a = parse_address("u@h").expect("some").expect("ok");
        assert_eq!(a.port, 22);
        let a = parse_address("u@[::1]:2200").expect("some").expect("ok");
        assert_eq!((a.host.as_str(), a.port), ("::1", 2200));
        assert!(parse_address("web1").is_none());
        assert!(parse_address("u@h;rm -rf /").expect("some").is_err());
        assert!(parse_address("u@h:0").expect("some").is_err());
        assert!(parse_address("-oProxyCommand=x@h").expect("some").is_err());
    }

    #[test]
    fn one_server_is_one_host() {
        for same in [
            "127.0.0.1",
            "127.0.0.01",
            "127.1",
            "0x7f000001",
            "2130706433",
            "0x7f.0.0.1",
            "::ffff:127.0.0.1",
            "[::ffff:127.0.0.1]",
        ] {
            assert_eq!(canonical_host(same), "127.0.0.1", "{same}");
        }
        assert_eq!(canonical_host("LOCALHOST"), "localhost");
        assert_eq!(canonical_host("Web1.Example.COM."), "web1.example.com");
        assert_eq!(canonical_host("0:0:0:0:0:0:0:1"), "::1");
        assert_eq!(canonical_host("256.1.1.1"), "256.1.1.1");
        assert_eq!(canonical_host("1.2.3.4.5"), "1.2.3.4.5");
        assert_eq!(canonical_host("web-01"), "web-01");
    }

    #[test]
    fn names() {
        assert!(validate_name("connection", "web-1.prod_eu").is_ok());
        for bad in ["", "-x", "a b", "a@b", "a;b", &"x".repeat(65)] {
            assert!(validate_name("connection", bad).is_err(), "{bad}");
        }
    }
}
