//! `sshkeep forward CONN -L [bind:]port:host:hostport | -D [bind:]port | -R [bind:]port:host:hostport`,
//! `forward list`, `forward close ID`: port forwards held by the broker (they outlive this
//! command and the broker: a restarted broker opens them again).

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::{Ctx, output};
use crate::protocol::{ForwardInfo, ForwardKind, ForwardSpec, ForwardState, Request};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ForwardArgs {
    #[command(subcommand)]
    action: Option<ForwardAction>,
    /// A saved connection or user@host[:port].
    target: Option<String>,
    /// Local forward, as `ssh -L`: [bind_address:]port:host:hostport.
    #[arg(short = 'L', value_name = "SPEC", conflicts_with_all = ["dynamic", "remote"])]
    local: Option<String>,
    /// SOCKS5 proxy, as `ssh -D`: [bind_address:]port.
    #[arg(short = 'D', value_name = "SPEC", conflicts_with = "remote")]
    dynamic: Option<String>,
    /// Remote forward, as `ssh -R`: the server listens on [bind_address:]port (its localhost by
    /// default; port 0 lets it pick) and connections go to host:hostport as reached from here.
    #[arg(short = 'R', value_name = "SPEC")]
    remote: Option<String>,
    /// Log in with this key instead of the linked one.
    #[arg(long)]
    key: Option<String>,
    /// Allow a bind address other machines can reach (0.0.0.0, a LAN address; for -R on the
    /// server, which its sshd must allow with GatewayPorts).
    #[arg(long)]
    allow_public: bool,
}

#[derive(Subcommand, Debug)]
enum ForwardAction {
    /// The forwards the broker holds.
    List,
    /// Stop a forward.
    Close { forward_id: String },
}

/// Splits `[bind:]f1:f2...` into the bind address (default 127.0.0.1) and `fields` fields;
/// any part may be a bracketed IPv6 address, as with ssh.
fn split_bind(spec: &str, fields: usize) -> Result<(String, Vec<String>)> {
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
fn split_remote_bind(spec: &str) -> Result<(String, Vec<String>)> {
    let (bind, f) = split_raw(spec, 3)?;
    let bind = match bind.as_deref() {
        None => "localhost".to_string(),
        Some("" | "*") => String::new(),
        Some(b) => b.to_string(),
    };
    Ok((bind, f))
}

fn split_raw(spec: &str, fields: usize) -> Result<(Option<String>, Vec<String>)> {
    let mut parts = Vec::new();
    let mut rest = spec;
    loop {
        let (part, tail) = match rest.strip_prefix('[') {
            Some(r) => {
                let (h, tail) = r
                    .split_once(']')
                    .with_context(|| format!("{spec:?}: unclosed ["))?;
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
            None => bail!("{spec:?}: expected `:` after {part:?}"),
        }
    }
    if parts.len() == fields + 1 {
        let bind = parts.remove(0);
        Ok((Some(bind), parts))
    } else if parts.len() == fields {
        Ok((None, parts))
    } else {
        bail!("{spec:?} does not have the form the option takes");
    }
}

fn port(s: &str) -> Result<u16> {
    s.parse()
        .with_context(|| format!("{s:?} is not a port number"))
}

pub async fn run(ctx: &Ctx, a: ForwardArgs) -> Result<u8> {
    let mut c = ctx.client().await?;
    let spec = match (a.action, a.target) {
        (Some(ForwardAction::List), _) => {
            let forwards: Vec<ForwardInfo> = c.call(&Request::ForwardList).await?;
            return list(ctx, &forwards);
        }
        (Some(ForwardAction::Close { forward_id }), _) => {
            let f: ForwardInfo = c.call(&Request::ForwardClose { forward_id }).await?;
            return one(ctx, &f);
        }
        (None, None) => bail!("give a connection and -L, -D or -R, or `forward list`"),
        (None, Some(target)) => match (a.local, a.dynamic, a.remote) {
            (Some(l), None, None) => {
                let (bind, f) = split_bind(&l, 3)?;
                ForwardSpec {
                    target,
                    key: a.key,
                    kind: ForwardKind::Local,
                    bind_address: bind,
                    bind_port: port(&f[0])?,
                    host: Some(f[1].clone()),
                    host_port: Some(port(&f[2])?),
                    allow_public: a.allow_public,
                }
            }
            (None, Some(d), None) => {
                let (bind, f) = split_bind(&d, 1)?;
                ForwardSpec {
                    target,
                    key: a.key,
                    kind: ForwardKind::Dynamic,
                    bind_address: bind,
                    bind_port: port(&f[0])?,
                    host: None,
                    host_port: None,
                    allow_public: a.allow_public,
                }
            }
            (None, None, Some(r)) => {
                let (bind, f) = split_remote_bind(&r)?;
                ForwardSpec {
                    target,
                    key: a.key,
                    kind: ForwardKind::Remote,
                    bind_address: bind,
                    bind_port: port(&f[0])?,
                    host: Some(f[1].clone()),
                    host_port: Some(port(&f[2])?),
                    allow_public: a.allow_public,
                }
            }
            _ => bail!(
                "give -L [bind:]port:host:hostport, -D [bind:]port or -R [bind:]port:host:hostport"
            ),
        },
    };
    let f: ForwardInfo = c.call(&Request::ForwardOpen(spec)).await?;
    one(ctx, &f)
}

fn one(ctx: &Ctx, f: &ForwardInfo) -> Result<u8> {
    if ctx.json {
        output::json(f)?;
    } else {
        println!("{} {}", f.forward_id, describe(f));
    }
    Ok(0)
}

fn list(ctx: &Ctx, forwards: &[ForwardInfo]) -> Result<u8> {
    if ctx.json {
        output::json(&forwards)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = forwards
        .iter()
        .map(|f| {
            vec![
                f.forward_id.clone(),
                describe(f),
                format!("{} now, {} in all", f.active, f.total),
                state(f),
            ]
        })
        .collect();
    output::table(&["FORWARD", "WHAT", "CONNECTIONS", "STATE"], &rows);
    Ok(0)
}

fn state(f: &ForwardInfo) -> String {
    let word = match f.state {
        ForwardState::Open => "open",
        ForwardState::Retrying => "retrying",
    };
    match &f.error {
        Some(e) => format!("{word}: {e}"),
        None => word.to_string(),
    }
}

fn describe(f: &ForwardInfo) -> String {
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
}
