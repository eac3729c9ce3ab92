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
            host: host.into(),
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
    fn names() {
        assert!(validate_name("connection", "web-1.prod_eu").is_ok());
        for bad in ["", "-x", "a b", "a@b", "a;b", &"x".repeat(65)] {
            assert!(validate_name("connection", bad).is_err(), "{bad}");
        }
    }
}
