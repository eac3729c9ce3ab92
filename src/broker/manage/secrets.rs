//! Stored login passwords. A value arrives only in `add` from the user's own CLI, is sealed
//! into the vault at once and is never sent back. Each password names the servers it may be
//! sent to: the user's own `conn save --password-secret` adds that connection's server, while a
//! profile may link a password only to a server it is already allowed for.

use crate::broker::core::fail::Fail;
use crate::broker::core::login::creds::server;
use crate::broker::core::{Core, Peer};
use crate::db::{SecretRow, now};
use crate::protocol::{ConnSpec, ErrorCode, Response, SecretInfo, SecretString};
use crate::ssh::Endpoint;
use crate::target::{canonical_host, validate_name};

fn invalid(e: impl Into<String>) -> Fail {
    Fail::new(ErrorCode::InvalidArgument, e)
}

fn info(broker: &Core, row: SecretRow) -> Result<SecretInfo, Fail> {
    let connections = broker.db()?.secret_links(&row.name)?;
    Ok(SecretInfo {
        name: row.name,
        hosts: row.hosts,
        connections,
        created: row.created,
    })
}

fn unknown(name: &str) -> Fail {
    Fail::not_found(
        "stored password",
        name,
        "the user stores one with `sshkeep secret add NAME` (see `sshkeep secret list`)",
    )
}

/// `host[:port]` as stored: the canonical host and the port (22 when none is given).
fn parse_server(text: &str) -> Result<String, Fail> {
    let (host, port) = match crate::target::parse_address(&format!("x@{text}")) {
        Some(Ok(a)) => (a.host, a.port),
        _ => return Err(invalid(format!("{text:?} is not host[:port]"))),
    };
    Ok(server(&endpoint(&canonical_host(&host), port)))
}

fn endpoint(host: &str, port: u16) -> Endpoint {
    Endpoint {
        host: host.to_string(),
        port,
        user: String::new(),
        policy: crate::protocol::HostKeyPolicy::Strict,
        keepalive_interval: 0,
        keepalive_max: 0,
        connect_timeout: None,
        conn_name: None,
    }
}

/// The server a connection spec logs in to, as stored passwords name it.
pub fn server_of(spec: &ConnSpec) -> String {
    server(&endpoint(&canonical_host(&spec.host), spec.port))
}

/// `secret add`: works while the vault is locked (sealing needs only the public recipient).
pub fn add(
    broker: &Core,
    peer: &Peer,
    name: &str,
    password: &SecretString,
    hosts: &[String],
) -> Result<Response, Fail> {
    validate_name("secret", name).map_err(invalid)?;
    if password.is_empty() || password.expose().contains(['\n', '\0']) {
        return Err(invalid(
            "the password must not be empty or hold a newline or NUL",
        ));
    }
    let mut allowed = broker
        .db()?
        .secret(name)?
        .map(|r| r.hosts)
        .unwrap_or_default();
    for h in hosts {
        let s = parse_server(h)?;
        if !allowed.contains(&s) {
            allowed.push(s);
        }
    }
    let sealed = {
        let slot = broker.vault()?;
        let vault = slot.as_ref().ok_or_else(|| broker.no_vault())?;
        vault.seal(password.expose().as_bytes())?
    };
    let row = SecretRow {
        name: name.to_string(),
        sealed,
        hosts: allowed,
        created: now(),
    };
    broker.db()?.put_secret(&row)?;
    broker.audit(
        peer,
        "secret_add",
        None,
        None,
        format!("stored password '{name}' for {}", row.hosts.join(", ")),
    )?;
    Ok(Response::Secret(info(broker, row)?))
}

/// `secret list`.
pub fn list(broker: &Core) -> Result<Response, Fail> {
    let rows = broker.db()?.secrets()?;
    let secrets = rows
        .into_iter()
        .map(|r| info(broker, r))
        .collect::<Result<_, _>>()?;
    Ok(Response::Secrets { secrets })
}

/// `secret remove`: connections that used it lose it.
pub fn remove(broker: &Core, peer: &Peer, name: &str) -> Result<Response, Fail> {
    let links = broker.db()?.secret_links(name)?;
    if !broker.db()?.delete_secret(name)? {
        return Err(unknown(name));
    }
    broker.audit(
        peer,
        "secret_remove",
        None,
        None,
        format!("stored password '{name}'"),
    )?;
    let lost = if links.is_empty() {
        String::new()
    } else {
        format!("; {} no longer log in with it", links.join(", "))
    };
    Ok(Response::Ok {
        message: format!("stored password '{name}' removed{lost}"),
    })
}

/// A connection the user saves with a stored password: the password may from now on be sent
/// to that connection's server.
pub fn allow_for_user(broker: &Core, spec: &ConnSpec) -> Result<(), Fail> {
    let Some(name) = &spec.password else {
        return Ok(());
    };
    let row = broker.db()?.secret(name)?.ok_or_else(|| unknown(name))?;
    let to = server_of(spec);
    if !row.hosts.contains(&to) {
        let mut hosts = row.hosts;
        hosts.push(to);
        broker.db()?.set_secret_hosts(name, &hosts)?;
    }
    Ok(())
}

/// Whether a profile may link stored password `name` to `spec`: it must exist and already be
/// allowed for that server (a new connection elsewhere would carry it to another machine).
pub fn check_for_profile(broker: &Core, spec: &ConnSpec) -> Result<(), Fail> {
    let Some(name) = &spec.password else {
        return Ok(());
    };
    let row = broker.db()?.secret(name)?.ok_or_else(|| unknown(name))?;
    let to = server_of(spec);
    if row.hosts.contains(&to) {
        return Ok(());
    }
    Err(Fail::then(
        ErrorCode::PermissionDenied,
        format!(
            "refused: stored password '{name}' may be sent only to {}, not to {to}",
            row.hosts.join(", ")
        ),
        crate::protocol::NextStep::UserOnly {
            command: format!(
                "sshkeep conn save {} --host {} --port {} --user {} --password-secret {name}",
                spec.name, spec.host, spec.port, spec.user
            ),
        },
    ))
}
