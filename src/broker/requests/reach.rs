//! Which connections a request touches, as a profile sees them (the saved connection a target
//! resolves to, its client groups; sessions, commands, bulk runs and shells traced back to
//! theirs), and whether the profile reaches them.

use super::App;
use super::approvals;
use crate::authority::verdict::{check_scope, check_tool};
use crate::authority::{Profile, Target, Tool, Verdict};
use crate::broker::core::fail::Fail;
use crate::broker::core::login::find_conn;
use crate::broker::fleet::bulk;
use crate::protocol::{ErrorCode, Targets};

/// A connection a request touches, as a profile sees it: its name and its client groups.
pub(super) struct Place {
    pub(super) conn: String,
    pub(super) groups: Vec<String>,
}

impl Place {
    pub(super) fn target(&self) -> Target<'_> {
        Target {
            conn: &self.conn,
            groups: &self.groups,
        }
    }
}

pub(super) fn targets(places: &[Place]) -> Vec<Target<'_>> {
    places.iter().map(Place::target).collect()
}

/// The saved connection a target names, as the broker will resolve it: by name or id, or a
/// `user@host[:port]` that is a saved connection's address (it logs in with that connection's
/// key, so it is judged as that connection). Anything else (an address of no saved connection,
/// a `~/.ssh/config` alias) is no saved connection: it is named so that no profile's list of
/// connection names can match it, and only a profile that reaches everything reaches it.
pub(super) fn place(app: &App, target: &str) -> Place {
    let saved = match crate::target::parse_address(target) {
        Some(Ok(a)) => app
            .core
            .db()
            .ok()
            .and_then(|db| db.conn_by_address(&a.user, &a.host, a.port).ok().flatten()),
        Some(Err(_)) => None,
        None => find_conn(&app.core, target).ok(),
    };
    match saved {
        Some(row) => Place {
            conn: row.spec.name,
            groups: row.spec.client.into_iter().collect(),
        },
        None => Place {
            conn: format!("{target} (not a saved connection)"),
            groups: Vec::new(),
        },
    }
}

/// The verdict on reaching `conns`.
pub(super) fn reach(app: &App, profile: &Profile, conns: &[&String]) -> Result<Verdict, Fail> {
    let places: Vec<Place> = conns.iter().map(|c| place(app, c)).collect();
    Ok(check_scope(profile, &targets(&places)))
}

/// The verdict on using `tool` on `conns`.
pub(super) fn tool(
    app: &App,
    profile: &Profile,
    tool: Tool,
    conns: &[&String],
) -> Result<Verdict, Fail> {
    let places: Vec<Place> = conns.iter().map(|c| place(app, c)).collect();
    Ok(check_tool(profile, tool, &targets(&places)))
}

/// A key named in a request of a profile that reaches only some connections must be linked only
/// to connections it reaches: otherwise saving a new connection (which lands in scope) with
/// another group's key would carry that key's reach with it.
pub(super) fn key_in_reach(app: &App, profile: &Profile, key: Option<&str>) -> Result<(), Fail> {
    let Some(key) = key else { return Ok(()) };
    if profile.conns.is_empty() && profile.clients.is_empty() {
        return Ok(());
    }
    let links = app.core.db()?.key_links(key)?;
    for conn in links {
        let p = place(app, &conn);
        if !profile.reaches(&p.conn, &p.groups) {
            return Err(Fail::new(
                ErrorCode::PermissionDenied,
                format!(
                    "refused: key '{key}' is linked to connection '{conn}', which profile '{}' does not reach",
                    profile.name
                ),
            ));
        }
    }
    Ok(())
}

/// The targets of a fleet request, as places (unknown names included, so they are judged too).
pub(super) fn fleet(app: &App, t: &Targets) -> Result<Vec<Place>, Fail> {
    let (rows, unknown) = bulk::resolve_targets(&app.core, t)?;
    let mut places: Vec<Place> = rows
        .into_iter()
        .map(|r| Place {
            conn: r.spec.name,
            groups: r.spec.client.into_iter().collect(),
        })
        .collect();
    places.extend(unknown.into_iter().map(|(name, _)| Place {
        conn: name,
        groups: Vec::new(),
    }));
    Ok(places)
}

pub(super) fn session_conn(app: &App, id: &str) -> Option<String> {
    let s = app.core.sessions().get(id).ok()?;
    Some(
        s.resolved
            .endpoint
            .conn_name
            .clone()
            .unwrap_or_else(|| s.label.clone()),
    )
}

pub(super) fn command_conn(app: &App, id: &str) -> Option<String> {
    if let Some(c) = app.core.db().ok()?.command(id).ok()? {
        return Some(c.conn_name.unwrap_or(c.target));
    }
    approvals::find(&app.core, id).map(|a| a.target)
}

pub(super) fn bulk_conns(app: &App, id: &str) -> Vec<String> {
    let rows = app
        .core
        .db()
        .ok()
        .and_then(|db| db.bulk_commands(id).ok())
        .unwrap_or_default();
    if !rows.is_empty() {
        return rows
            .into_iter()
            .map(|c| c.conn_name.unwrap_or(c.target))
            .collect();
    }
    approvals::find(&app.core, id)
        .map(|a| a.target.split(',').map(String::from).collect())
        .unwrap_or_default()
}

pub(super) fn shell_conn(app: &App, id: &str) -> Option<String> {
    app.shells.get(id).ok().map(|s| s.target.clone())
}
