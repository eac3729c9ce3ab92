//! Admission of a request from a client that works under a profile: every request is named, so
//! a new one cannot slip past without a decision. Reads of sshkeep's own state pass; owner
//! actions are refused (they are the user's, in person); everything that touches a server is
//! checked against the profile's reach and its tool decisions; commands are classified by
//! parsing them (`authority::classify`) and run, wait for the user's approval, or are refused.
//! The user's own CLI (no profile) is admitted to everything; owner actions still check that
//! the user is present where they are carried out.

use super::App;
use super::approvals::{self, Ask, Held};
use super::door::Caller;
use super::reach::{
    Place, bulk_conns, command_conn, fleet, key_in_reach, place, reach, session_conn, shell_conn,
    targets, tool,
};
use crate::authority::verdict::{check_command, check_quota, check_tool};
use crate::authority::{Profile, Tool, Verdict};
use crate::broker::commands;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::find_conn;
use crate::broker::fleet::bulk;
use crate::clock::now_ms;
use crate::protocol::{
    ApprovalKind, CommandState, ErrorCode, FileAction, NextStep, Request, Response, SftpAction,
};

/// What admission made of a request.
// One per request, moved once: boxing the request would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Admitted {
    /// It goes on to its route.
    Route(Request),
    /// It was answered here (held for the user's approval).
    Answer(Box<Response>),
}

/// Whether `caller` may make `req`, and what becomes of it.
pub async fn admit(app: &App, caller: &Caller, mut req: Request) -> Result<Admitted, Fail> {
    let Some(profile) = caller.profile.as_deref() else {
        return Ok(Admitted::Route(req));
    };
    // Only the user's own CLI puts a server's login questions to a person: a client working
    // under a profile never has one at its terminal, whatever it says.
    no_person(&mut req);
    let pass = |req| Ok(Admitted::Route(req));
    let verdict = match &req {
        // The conversation, and reads of sshkeep's own state.
        Request::Hello { .. }
        | Request::Status
        | Request::ExecInput { .. }
        | Request::ExecStop
        | Request::SftpStop
        | Request::LoginAnswer { .. }
        | Request::LoginCancel
        | Request::AttachInput { .. }
        | Request::AttachResize { .. }
        | Request::AttachDetach
        | Request::KeyList
        | Request::KeyShow { .. }
        | Request::AgentStatus
        | Request::ConnList
        | Request::ConnShow { .. }
        | Request::ClientList
        | Request::Settings
        | Request::AuditList(_)
        | Request::AuditVerify
        | Request::SessionList
        | Request::CommandList { .. }
        | Request::ShellList
        | Request::ForwardList
        | Request::FleetAuditShow { .. }
        | Request::ProfileList
        | Request::ProfileShow { .. }
        | Request::Approvals { .. }
        | Request::McpTokenList
        // Which profile a token works under: it grants this connection nothing.
        | Request::McpTokenCheck { .. }
        // Locking only takes power away.
        | Request::Lock => return pass(req),
        // Owner actions: never a profile's.
        Request::Shutdown => return Err(owner(profile, "stopping the broker", "sshkeep broker stop")),
        Request::VaultInit { .. } => return Err(owner(profile, "creating the vault", "sshkeep vault init")),
        Request::Unlock { .. } => return Err(owner(profile, "unlocking the vault", "sshkeep unlock")),
        Request::KeyRemove { name, .. } => {
            return Err(owner(profile, "removing a key", &format!("sshkeep key remove {name}")));
        }
        Request::KeyRotate { dry_run: true, .. } => return pass(req),
        Request::KeyRotate { name, .. } => {
            return Err(owner(profile, "rotating a key", &format!("sshkeep key rotate {name}")));
        }
        Request::KeyAgent { name, .. } => {
            return Err(owner(profile, "offering a key on the agent socket", &format!("sshkeep key agent {name}")));
        }
        // The broker would connect to a socket the caller names and sign logins through it.
        Request::KeyAddFromAgent { name, .. } => {
            return Err(owner(profile, "recording a key held by another ssh-agent", &format!("sshkeep key add {name} --from-agent")));
        }
        Request::ConnRemove { name } => {
            return Err(owner(profile, "removing a saved connection", &format!("sshkeep conn remove {name}")));
        }
        Request::ConnTrust {
            name,
            replace: true,
            ..
        } => {
            return Err(owner(profile, "replacing a pinned host key", &format!("sshkeep conn trust {name}")));
        }
        Request::ClientAssign { client, .. } => {
            return Err(owner(profile, "changing client groups", &format!("sshkeep client assign {client} CONN...")));
        }
        Request::ClientRemove { .. } => {
            return Err(owner(profile, "changing client groups", "sshkeep client remove CONN..."));
        }
        Request::SettingSet { key, .. } => {
            return Err(owner(profile, "changing settings", &format!("sshkeep config set {key} VALUE")));
        }
        Request::ProfileChange { .. } => {
            return Err(owner(profile, "changing profiles", "sshkeep profile set NAME ..."));
        }
        Request::McpTokenCreate { name, .. } => {
            return Err(owner(profile, "creating MCP tokens", &format!("sshkeep mcp token create {name} --profile P")));
        }
        Request::McpTokenRevoke { name, .. } => {
            return Err(owner(profile, "revoking MCP tokens", &format!("sshkeep mcp token revoke {name}")));
        }
        // Passwords are the user's to set and remove; a CA key signs only at the user's hand.
        Request::SecretAdd { name, .. } => {
            return Err(owner(profile, "storing a password", &format!("sshkeep secret add {name}")));
        }
        Request::SecretRemove { name } => {
            return Err(owner(profile, "removing a stored password", &format!("sshkeep secret remove {name}")));
        }
        Request::KeyCertSign { ca, key, .. } => {
            return Err(owner(profile, "signing certificates", &format!("sshkeep key cert sign {ca} --key {key} --principal P")));
        }
        Request::SecretList => return pass(req),
        Request::KeyCertAdd { name, .. } | Request::KeyCertRemove { name } => {
            key_in_reach(app, profile, Some(name))?;
            tool(app, profile, Tool::KeyOps, &[])?
        }
        Request::ApprovalDecide { id, .. } => {
            return Err(owner(profile, "approving or denying requests", &format!("sshkeep approve {id}")));
        }
        // Sshkeep's own records.
        Request::ConnTrust { name, .. } => tool(app, profile, Tool::ConnEdit, &[name])?,
        Request::ConnSave(spec) => {
            // Changing a saved connection is the user's: pointed at another host it would carry
            // the user's own later commands, uploads and approvals there, and its client group
            // decides which profiles reach it. A profile may only add connections.
            if find_conn(&app.core, &spec.name).is_ok() {
                return Err(owner(profile, "changing a saved connection", &format!("sshkeep conn save {} ...", spec.name)));
            }
            // A forwarded agent lets the server sign with the user's keys: the user's choice.
            if spec.forward_agent {
                return Err(owner(profile, "forwarding the agent to a server", &format!("sshkeep conn save {} ... --forward-agent", spec.name)));
            }
            key_in_reach(app, profile, spec.key.as_deref())?;
            // A stored password only to a server the user allowed it for (checked again on the route).
            crate::broker::manage::secrets::check_for_profile(&app.core, spec)?;
            // Jump hosts carry their own keys: a new connection may hop only through ones in reach.
            let hops: Vec<&String> = spec.jump.iter().collect();
            let v = reach(app, profile, &hops)?.stricter(check_tool(profile, Tool::ConnEdit, &[]));
            if v == Verdict::Run {
                return land_in_scope(app, caller, profile, req);
            }
            v
        }
        Request::KeyAdd { .. } | Request::KeyGenerate { .. } => tool(app, profile, Tool::KeyOps, &[])?,
        Request::KeyLink { key, conn } | Request::KeyUnlink { key, conn } | Request::KeyDeploy { name: key, conn } => {
            key_in_reach(app, profile, Some(key))?;
            tool(app, profile, Tool::KeyOps, &[conn])?
        }
        // Work on servers.
        Request::ConnTest { target, key, .. } | Request::SessionOpen { target, key, .. } => {
            key_in_reach(app, profile, key.as_deref())?;
            reach(app, profile, &[target])?
        }
        Request::SessionClose { session_id } => match session_conn(app, session_id) {
            Some(conn) => reach(app, profile, &[&conn])?,
            None => Verdict::Run,
        },
        Request::CommandStatus { command_id }
        | Request::CommandCancel { command_id }
        | Request::CommandLogs(crate::protocol::LogQuery { command_id, .. }) => {
            match command_conn(app, command_id) {
                Some(conn) => reach(app, profile, &[&conn])?,
                None => Verdict::Run,
            }
        }
        Request::BulkStatus { bulk_id, .. }
        | Request::BulkLogs { bulk_id, .. }
        | Request::BulkCancel { bulk_id, .. } => {
            let conns = bulk_conns(app, bulk_id);
            let refs: Vec<&String> = conns.iter().collect();
            reach(app, profile, &refs)?
        }
        Request::BulkConn { targets: t, .. } | Request::FleetAudit { targets: t, .. } => {
            let places = fleet(app, t)?;
            crate::authority::verdict::check_scope(profile, &targets(&places))
        }
        Request::Sftp(r) => {
            key_in_reach(app, profile, r.key.as_deref())?;
            let t = match r.action {
                SftpAction::Upload { .. } => Some(Tool::Upload),
                SftpAction::Download { .. } => Some(Tool::Download),
                SftpAction::List { .. } | SftpAction::Stat { .. } => None,
                _ => Some(Tool::FilesWrite),
            };
            match t {
                Some(t) => tool(app, profile, t, &[&r.target])?,
                None => reach(app, profile, &[&r.target])?,
            }
        }
        Request::File(r) => {
            key_in_reach(app, profile, r.key.as_deref())?;
            match r.action {
                FileAction::Read { .. } => reach(app, profile, &[&r.target])?,
                _ => tool(app, profile, Tool::FilesWrite, &[&r.target])?,
            }
        }
        Request::ShellOpen(spec) => {
            key_in_reach(app, profile, spec.key.as_deref())?;
            tool(app, profile, Tool::Shells, &[&spec.target])?
        }
        Request::ShellKey { shell_id, .. }
        | Request::ShellSignal { shell_id, .. }
        | Request::ShellAttach { shell_id, .. } => {
            let conn = shell_conn(app, shell_id);
            tool(app, profile, Tool::ShellKeys, &conn.iter().collect::<Vec<_>>())?
        }
        Request::ShellRead { shell_id, .. }
        | Request::ShellWait { shell_id, .. }
        | Request::ShellResize { shell_id, .. }
        | Request::ShellStatus { shell_id }
        | Request::ShellClose { shell_id } => match shell_conn(app, shell_id) {
            Some(conn) => reach(app, profile, &[&conn])?,
            None => Verdict::Run,
        },
        Request::ShellSend {
            shell_id,
            text,
            enter,
        } => {
            let conn = shell_conn(app, shell_id);
            let conns: Vec<&String> = conn.iter().collect();
            // Text typed without Enter, or with control characters, is keystrokes: what it
            // becomes depends on what is already on the line, which no parser sees.
            if !enter || text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                tool(app, profile, Tool::ShellKeys, &conns)?
            } else {
                let places: Vec<Place> = conns.iter().map(|c| place(app, c)).collect();
                let (_, v) = check_command(profile, &targets(&places), text);
                quota(app, profile, 1)?.stricter(v)
            }
        }
        Request::ForwardOpen(spec) if spec.kind == crate::protocol::ForwardKind::Remote => {
            // The server would reach this machine and its network: the user's to open.
            return Err(owner(profile, "opening a port on a server that reaches this machine (-R)", &format!("sshkeep forward {} -R ...", spec.target)));
        }
        Request::ForwardOpen(spec) => {
            key_in_reach(app, profile, spec.key.as_deref())?;
            tool(app, profile, Tool::Forwards, &[&spec.target])?
        }
        Request::ForwardClose { forward_id } => {
            let target = app.forwards.list().into_iter().find(|f| &f.forward_id == forward_id).map(|f| f.target);
            tool(app, profile, Tool::Forwards, &target.iter().collect::<Vec<_>>())?
        }
        Request::Exec { target, key, command, .. } => {
            key_in_reach(app, profile, key.as_deref())?;
            let places = [place(app, target)];
            let (_, v) = check_command(profile, &targets(&places), command);
            quota(app, profile, 1)?.stricter(v)
        }
        Request::Run(spec) => {
            key_in_reach(app, profile, spec.key.as_deref())?;
            let conn = match (&spec.session_id, &spec.target) {
                (Some(s), _) => session_conn(app, s).unwrap_or_else(|| s.clone()),
                (None, Some(t)) => t.clone(),
                (None, None) => return pass(req),
            };
            let places = [place(app, &conn)];
            let text = spec.commands.join("\n");
            let (c, v) = check_command(profile, &targets(&places), &text);
            let v = quota(app, profile, 1)?.stricter(v);
            if let Verdict::Ask { reason } = &v {
                if granted(app, profile, &places[0].conn, &text) {
                    Verdict::Run
                } else {
                    let Request::Run(spec) = req else { unreachable!() };
                    commands::check(&spec)?;
                    let ask = Ask {
                        profile,
                        kind: ApprovalKind::Command,
                        target: places[0].conn.clone(),
                        command: text,
                        class: c.class(),
                        reason: reason.clone(),
                    };
                    let why = ask.reason.clone();
                    let id = approvals::hold(app, &caller.peer, ask, Held::Run(spec))?;
                    let next = NextStep::AwaitApproval { id: id.clone() }.cli();
                    return Ok(Admitted::Answer(Box::new(Response::CommandStarted {
                        command_id: id,
                        session_id: None,
                        state: CommandState::AwaitingApproval,
                        approval: Some(format!("{why}; {next}")),
                    })));
                }
            } else {
                v
            }
        }
        Request::BulkExec(spec) => {
            let places = fleet(app, &spec.targets)?;
            let text = spec.commands.join("\n");
            let (c, v) = check_command(profile, &targets(&places), &text);
            let v = check_tool(profile, Tool::Bulk, &[])
                .stricter(quota(app, profile, places.len() as u32)?)
                .stricter(v);
            let names: Vec<&str> = places.iter().map(|p| p.conn.as_str()).collect();
            let joined = names.join(",");
            if let Verdict::Ask { reason } = &v {
                if granted(app, profile, &joined, &text) {
                    Verdict::Run
                } else {
                    let Request::BulkExec(spec) = req else { unreachable!() };
                    bulk::check(&spec)?;
                    let ask = Ask {
                        profile,
                        kind: ApprovalKind::Bulk,
                        target: joined,
                        command: text,
                        class: c.class(),
                        reason: reason.clone(),
                    };
                    let why = ask.reason.clone();
                    let targets: Vec<String> = names.iter().map(|s| s.to_string()).collect();
                    let id = approvals::hold(app, &caller.peer, ask, Held::Bulk(spec))?;
                    let next = NextStep::AwaitApproval { id: id.clone() }.cli();
                    return Ok(Admitted::Answer(Box::new(Response::BulkStarted {
                        bulk_id: id,
                        targets,
                        approval: Some(format!("{why}; {next}")),
                    })));
                }
            } else {
                v
            }
        }
    };
    match verdict {
        Verdict::Run => {
            if counts_toward_quota(&req) {
                let n = match &req {
                    Request::BulkExec(spec) => fleet(app, &spec.targets)?.len(),
                    _ => 1,
                };
                if let Ok(db) = app.core.db() {
                    for _ in 0..n {
                        let _ = db.record_profile_use(&profile.name, now_ms());
                    }
                }
            }
            pass(req)
        }
        Verdict::Ask { reason } => {
            // Only runs can wait; anything else that needs the user is refused with a way on.
            let step = if matches!(
                req,
                Request::Exec { .. } | Request::ShellSend { enter: true, .. }
            ) {
                NextStep::RunToWait
            } else {
                NextStep::UserOnly {
                    command: "sshkeep ... (the same operation, from your own terminal)".into(),
                }
            };
            Err(refused(
                app,
                caller,
                profile,
                &format!("{reason}; it needs the user's approval, which only a run can wait for"),
                Some(step),
            ))
        }
        Verdict::Refuse { reason } => Err(refused(app, caller, profile, &reason, None)),
    }
}

/// Requests that start commands on servers, which a quota counts.
fn counts_toward_quota(req: &Request) -> bool {
    matches!(
        req,
        Request::Run(_)
            | Request::Exec { .. }
            | Request::BulkExec(_)
            | Request::ShellSend { enter: true, .. }
    )
}

fn owner(profile: &Profile, what: &str, command: &str) -> Fail {
    Fail::then(
        ErrorCode::PermissionDenied,
        format!(
            "{what} is the user's own to do, in person: a client working under profile '{}' never does it",
            profile.name
        ),
        NextStep::UserOnly {
            command: command.into(),
        },
    )
}

fn refused(
    app: &App,
    caller: &Caller,
    profile: &Profile,
    reason: &str,
    step: Option<NextStep>,
) -> Fail {
    let _ = app.core.audit(
        &caller.peer,
        "authority_refuse",
        None,
        None,
        format!("profile {}: {reason}", profile.name),
    );
    let problem = format!("refused: {reason}");
    match step {
        Some(step) => Fail::then(ErrorCode::PermissionDenied, problem, step),
        None => Fail::new(ErrorCode::PermissionDenied, problem),
    }
}

/// The verdict on starting `n` more commands.
fn quota(app: &App, profile: &Profile, n: u32) -> Result<Verdict, Fail> {
    if profile.quota.per_hour.is_none() && profile.quota.per_day.is_none() {
        return Ok(Verdict::Run);
    }
    let db = app.core.db()?;
    let now = now_ms();
    let hour = db.profile_uses_since(&profile.name, now - 3_600_000)? as u32;
    let day = db.profile_uses_since(&profile.name, now - 86_400_000)? as u32;
    // `n` commands pass only if the last of them would.
    Ok(check_quota(
        profile,
        hour + n.saturating_sub(1),
        day + n.saturating_sub(1),
    ))
}

/// Whether the user granted this exact command on this target to this profile for a while.
fn granted(app: &App, profile: &Profile, target: &str, command: &str) -> bool {
    app.core
        .db()
        .ok()
        .and_then(|db| {
            db.grant_for(&profile.name, target, command, crate::clock::now())
                .ok()
                .flatten()
        })
        .is_some()
}

/// A new connection saved under a profile that reaches only some connections lands in its
/// reach: in its first client group, or (a profile scoped by names) among its names, added to
/// the stored profile as it is now once the connection is saved.
fn land_in_scope(
    app: &App,
    caller: &Caller,
    profile: &Profile,
    req: Request,
) -> Result<Admitted, Fail> {
    let Request::ConnSave(mut spec) = req else {
        return Ok(Admitted::Route(req));
    };
    if let Some(first) = profile.clients.first() {
        match &spec.client {
            None => spec.client = Some(first.clone()),
            Some(c) if profile.clients.contains(c) => {}
            Some(c) => {
                return Err(Fail::new(
                    ErrorCode::PermissionDenied,
                    format!(
                        "refused: client group '{c}' is outside what profile '{}' reaches ({})",
                        profile.name,
                        profile.clients.join(", ")
                    ),
                ));
            }
        }
    } else if !profile.conns.is_empty() && !profile.conns.contains(&spec.name) {
        let name = spec.name.clone();
        let saved = crate::broker::manage::conns::save(&app.core, &caller.peer, spec)?;
        let mut p = crate::broker::manage::profiles::lookup(&app.core, &profile.name)?;
        if !p.conns.contains(&name) {
            p.conns.push(name);
            let text = serde_json::to_string(&p).unwrap_or_default();
            app.core
                .db()?
                .put_profile(&p.name, &text, crate::clock::now())?;
        }
        return Ok(Admitted::Answer(Box::new(saved)));
    }
    Ok(Admitted::Route(Request::ConnSave(spec)))
}

/// Clears the "a person is at this terminal" flag of a request.
fn no_person(req: &mut Request) {
    if let Request::SessionOpen { person, .. }
    | Request::ConnTest { person, .. }
    | Request::Exec { person, .. } = req
    {
        *person = false;
    }
}

#[cfg(test)]
mod tests {
    use super::no_person;
    use crate::protocol::Request;

    #[test]
    fn a_profile_never_brings_a_person() {
        let mut exec = Request::Exec {
            target: "web".into(),
            key: None,
            command: "id".into(),
            stdin: false,
            pty: None,
            person: true,
        };
        no_person(&mut exec);
        assert!(matches!(exec, Request::Exec { person: false, .. }));
        for mut req in [
            Request::SessionOpen {
                target: "web".into(),
                key: None,
                person: true,
            },
            Request::ConnTest {
                target: "web".into(),
                key: None,
                person: true,
            },
        ] {
            no_person(&mut req);
            assert!(matches!(
                req,
                Request::SessionOpen { person: false, .. }
                    | Request::ConnTest { person: false, .. }
            ));
        }
    }
}
