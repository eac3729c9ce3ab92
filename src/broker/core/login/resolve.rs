//! Turning a target (a saved connection, `user@host[:port]`, or a `Host` alias of
//! `~/.ssh/config`) into what a login needs: the endpoint, the key, the idle timeout and the jump
//! hosts.

use std::time::Duration;

use crate::broker::core::Core;
use crate::broker::core::fail::Fail;
use crate::db::ConnRow;
use crate::protocol::{ErrorCode, HostKeyPolicy, NextStep};
use crate::ssh::Endpoint;
use crate::target::{parse_address, validate_name};

/// A resolved target.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub endpoint: Endpoint,
    pub key: Option<String>,
    pub idle: Duration,
    /// Saved connections (or aliases, or `user@host[:port]`) to hop through, first hop first.
    pub jump: Vec<String>,
    /// The `~/.ssh/config` alias this target was found as, when it is no saved connection.
    pub via: Option<String>,
    /// The saved connection forwards the agent (`conn save --forward-agent`).
    pub forward_agent: bool,
}

/// Resolves `target`; `key` overrides the linked key. A retired key is refused here, before a
/// pooled session logged in with it could be reused.
pub fn resolve(broker: &Core, target: &str, key: Option<&str>) -> Result<Resolved, Fail> {
    let r = resolve_any(broker, target, key)?;
    if let Some(k) = &r.key
        && broker
            .db()?
            .key(k)?
            .is_some_and(|row| row.retired.is_some())
    {
        return Err(Fail::then(
            ErrorCode::NoKey,
            format!("key '{k}' was retired by a rotation and is disabled"),
            NextStep::RetiredKey { key: k.to_string() },
        ));
    }
    Ok(r)
}

fn resolve_any(broker: &Core, target: &str, key: Option<&str>) -> Result<Resolved, Fail> {
    let from_row = |c: ConnRow| Resolved {
        forward_agent: c.spec.forward_agent,
        jump: c.spec.jump.clone(),
        via: None,
        key: key.map(Into::into).or(c.spec.key.clone()),
        idle: Duration::from_secs(u64::from(c.spec.idle_timeout)),
        endpoint: Endpoint {
            host: c.spec.host,
            port: c.spec.port,
            user: c.spec.user,
            policy: c.spec.host_key_policy,
            keepalive_interval: c.spec.keepalive_interval,
            keepalive_max: c.spec.keepalive_max,
            connect_timeout: c.spec.connect_timeout,
            conn_name: Some(c.spec.name),
        },
    };
    match parse_address(target) {
        Some(addr) => {
            let a = addr.map_err(|e| Fail::new(ErrorCode::InvalidArgument, e))?;
            if let Some(c) = broker.db()?.conn_by_address(&a.user, &a.host, a.port)? {
                return Ok(from_row(c));
            }
            // Ad-hoc targets take the broker's settings (defaults: OpenSSH's ServerAliveInterval 30,
            // ServerAliveCountMax 3, and a ControlPersist-like 10 minutes).
            let settings = broker.settings();
            Ok(Resolved {
                forward_agent: false,
                jump: Vec::new(),
                via: None,
                key: key.map(Into::into),
                idle: Duration::from_secs(settings.get(crate::settings::Key::IdleTimeout)),
                endpoint: Endpoint {
                    host: a.host,
                    port: a.port,
                    user: a.user,
                    policy: HostKeyPolicy::AcceptNew,
                    keepalive_interval: settings
                        .get(crate::settings::Key::KeepaliveInterval)
                        .min(u32::MAX as u64) as u32,
                    keepalive_max: settings
                        .get(crate::settings::Key::KeepaliveMax)
                        .min(u32::MAX as u64) as u32,
                    connect_timeout: None,
                    conn_name: None,
                },
            })
        }
        None => {
            validate_name("connection", target)
                .map_err(|e| Fail::new(ErrorCode::InvalidArgument, e))?;
            if let Some(c) = broker.db()?.conn_by_ref(target)? {
                return Ok(from_row(c));
            }
            // Not saved: a Host of ~/.ssh/config works ad hoc, as `ssh ALIAS` does.
            match super::alias::from_ssh_config(broker, target, key)? {
                Some(r) => Ok(r),
                None => Err(Fail::unknown("connection", target, NextStep::ListConns)),
            }
        }
    }
}

/// `r` with its connection's linked key when the key it names is gone or retired (a key
/// rotation renamed or retired it since `r` was resolved).
pub fn refreshed(broker: &Core, r: &Resolved) -> Resolved {
    let mut out = r.clone();
    let (Some(conn), Some(key)) = (&r.endpoint.conn_name, &r.key) else {
        return out;
    };
    let Ok(db) = broker.db() else {
        return out;
    };
    let usable = db
        .key(key)
        .ok()
        .flatten()
        .is_some_and(|k| k.retired.is_none());
    if !usable && let Ok(Some(c)) = db.conn_by_ref(conn) {
        out.key = c.spec.key;
    }
    out
}

/// A saved connection by name or id.
pub fn find_conn(broker: &Core, name: &str) -> Result<ConnRow, Fail> {
    broker
        .db()?
        .conn_by_ref(name)?
        .ok_or_else(|| Fail::unknown("connection", name, NextStep::ListConns))
}
