//! Requests that wait for the user: a run or a bulk run that a client's profile says to ask
//! about is held here (in memory only: its standard input never reaches the disk), recorded as a
//! pending approval, and started under the id the client was given once the user, present,
//! approves it. A request nobody decides expires; a broker restart expires every pending one
//! (what it held is gone), so nothing approved later can start something other than what was
//! asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::App;
use super::door::Caller;
use crate::authority::{Class, Profile};
use crate::broker::commands;
use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer, presence};
use crate::broker::fleet::bulk;
use crate::clock::{now, now_ms};
use crate::db::ApprovalRow;
use crate::protocol::{
    ApprovalInfo, ApprovalKind, ApprovalState, BulkInfo, BulkSpec, BulkState, CommandInfo,
    CommandState, ErrorCode, NextStep, Presence, Response, RunSpec, StreamStats,
};

/// How long a request waits for the user before it expires.
pub const WAIT: Duration = Duration::from_secs(30 * 60);

/// The longest "this exact command for N minutes" grant.
const MAX_GRANT_MINUTES: u32 = 24 * 60;

/// What a held request starts once approved.
pub enum Held {
    Run(RunSpec),
    Bulk(BulkSpec),
}

struct Waiting {
    held: Held,
    /// The client that asked: the command runs as its request, audited as such.
    peer: Peer,
}

/// The requests held in this broker's memory, by id.
#[derive(Default)]
pub struct Holds {
    held: Mutex<HashMap<String, Waiting>>,
}

/// Why a request waits: the profile, the part and its class, and where.
pub struct Ask<'a> {
    pub profile: &'a Profile,
    pub kind: ApprovalKind,
    pub target: String,
    pub command: String,
    pub class: Class,
    pub reason: String,
}

impl Holds {
    fn take(&self, id: &str) -> Option<Waiting> {
        self.held.lock().ok()?.remove(id)
    }

    fn has(&self, id: &str) -> bool {
        self.held.lock().is_ok_and(|h| h.contains_key(id))
    }
}

/// Holds `held` until the user decides; returns the id the client is given.
pub fn hold(app: &App, peer: &Peer, ask: Ask<'_>, held: Held) -> Result<String, Fail> {
    let id = uuid::Uuid::new_v4().to_string();
    let created = now();
    let row = ApprovalRow {
        id: id.clone(),
        kind: ask.kind,
        profile: ask.profile.name.clone(),
        target: ask.target.clone(),
        command: ask.command.clone(),
        // What it would start is held in memory, never stored (it may carry standard input).
        request: String::new(),
        class: ask.class,
        reason: ask.reason.clone(),
        state: ApprovalState::Pending,
        decided_by: None,
        decided_at: None,
        deny_reason: None,
        requested_by: requester(peer),
        created,
        expires: created + WAIT.as_secs() as i64,
    };
    app.core.db()?.insert_approval(&row)?;
    app.waiting
        .held
        .lock()
        .map_err(|_| Fail::new(ErrorCode::Internal, "the approval table is poisoned"))?
        .insert(
            id.clone(),
            Waiting {
                held,
                peer: peer.clone(),
            },
        );
    app.core.audit(
        peer,
        "approval_request",
        None,
        (ask.kind == ApprovalKind::Command).then_some(ask.target.as_str()),
        format!(
            "{} {id} under profile {} on {}: {}",
            ask.kind, ask.profile.name, ask.target, ask.reason
        ),
    )?;
    Ok(id)
}

fn requester(peer: &Peer) -> String {
    let pid = peer.pid.map(|p| format!("pid {p}")).unwrap_or_default();
    match &peer.exe {
        Some(exe) => format!("{exe} ({pid})"),
        None => pid,
    }
}

/// As clients see it.
pub fn info(a: ApprovalRow) -> ApprovalInfo {
    ApprovalInfo {
        id: a.id,
        kind: a.kind,
        profile: a.profile,
        target: a.target,
        command: a.command,
        class: a.class.as_str().into(),
        reason: a.reason,
        state: a.state,
        decided_by: a.decided_by,
        deny_reason: a.deny_reason,
        requested_by: a.requested_by,
        created: a.created,
        expires: a.expires,
    }
}

/// Expires what nobody decided in time, and forgets what it held.
pub fn sweep(app: &App) {
    let Ok(expired) = app.core.db().and_then(|db| Ok(db.expire_approvals(now())?)) else {
        return;
    };
    for id in expired {
        if let Some(w) = app.waiting.take(&id) {
            let _ = app.core.audit(
                &w.peer,
                "approval_expire",
                None,
                None,
                format!("{id}: nobody decided in time; nothing ran"),
            );
        }
    }
}

/// At broker start: what earlier brokers held is gone, so their pending requests expire.
pub fn expire_after_restart(core: &Core) {
    if let Ok(db) = core.db() {
        match db.expire_approvals(i64::MAX) {
            Ok(ids) if !ids.is_empty() => tracing::info!(
                "{} request(s) waiting for approval expired: the broker restarted",
                ids.len()
            ),
            _ => {}
        }
    }
}

/// Sweeps every few seconds while the broker runs.
pub async fn sweeper(app: Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        sweep(&app);
    }
}

/// `approvals`: pending requests (recent ones of every state with `all`), newest first.
pub fn list(app: &App, all: bool) -> Result<Response, Fail> {
    sweep(app);
    let rows = app.core.db()?.approvals(all, 200)?;
    Ok(Response::Approvals {
        approvals: rows.into_iter().map(info).collect(),
    })
}

/// The approval behind `id`, if any.
pub fn find(core: &Core, id: &str) -> Option<ApprovalRow> {
    core.db().ok()?.approval(id).ok()?
}

/// `approve` / `deny`: the user, present, decides; an approved request starts under its id.
pub async fn decide(
    app: &App,
    peer: &Peer,
    id: &str,
    approve: bool,
    for_minutes: Option<u32>,
    reason: Option<String>,
    presence_proof: Presence,
) -> Result<Response, Fail> {
    sweep(app);
    let row = find(&app.core, id).ok_or_else(|| {
        Fail::new(
            ErrorCode::NotFound,
            format!("no request waiting for approval has id {id}: see `sshkeep approvals`"),
        )
    })?;
    if row.state != ApprovalState::Pending {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("request {id} is {} already; nothing to decide", row.state),
        ));
    }
    if approve && !app.waiting.has(id) {
        let _ = app.core.db()?.decide_approval(
            id,
            ApprovalState::Expired,
            "sshkeep (the broker that held it stopped)",
            None,
            now(),
        );
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "request {id} was held by an earlier broker and expired; nothing ran (the client must ask again)"
            ),
        ));
    }
    if for_minutes.is_some_and(|m| m == 0 || m > MAX_GRANT_MINUTES) {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("--for-minutes must be between 1 and {MAX_GRANT_MINUTES}"),
        ));
    }
    let what = format!(
        "{} profile {}'s request to run `{}` on {}",
        if approve { "Approve" } else { "Deny" },
        row.profile,
        row.command,
        row.target
    );
    let by = presence::present(&app.core, peer, presence_proof.passphrase, what).await?;
    let state = if approve {
        ApprovalState::Approved
    } else {
        ApprovalState::Denied
    };
    if !app
        .core
        .db()?
        .decide_approval(id, state, &by, reason.as_deref(), now())?
    {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("request {id} was decided or expired meanwhile; nothing changed"),
        ));
    }
    let waiting = app.waiting.take(id);
    let conn = (row.kind == ApprovalKind::Command).then_some(row.target.as_str());
    if !approve {
        app.core.audit(
            peer,
            "approval_deny",
            None,
            conn,
            format!(
                "{id} ({} on {}) denied by {by}{}",
                row.command,
                row.target,
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ),
        )?;
        return answer(&app.core, id);
    }
    let granted = match for_minutes {
        Some(m) => {
            let until = now() + i64::from(m) * 60;
            app.core
                .db()?
                .insert_grant(&row.profile, &row.target, &row.command, until, id)?;
            format!("; the same command may run there for {m} minutes without asking")
        }
        None => String::new(),
    };
    app.core.audit(
        peer,
        "approval_grant",
        None,
        conn,
        format!(
            "{id} ({} on {}) approved by {by}{granted}",
            row.command, row.target
        ),
    )?;
    let Some(w) = waiting else {
        return answer(&app.core, id);
    };
    let _ = app.core.db()?.record_profile_use(&row.profile, now_ms());
    let started = match w.held {
        Held::Run(spec) => commands::start_as(&app.core, &w.peer, spec, Some(id.into())).await,
        Held::Bulk(spec) => bulk::start_as(&app.core, &w.peer, spec, Some(id.into())).await,
    };
    if let Err(f) = started {
        // Approved, but it could not start (the connection was removed meanwhile, say).
        return Err(Fail::new(
            f.code,
            format!(
                "request {id} was approved but could not start: {}",
                f.message
            ),
        ));
    }
    answer(&app.core, id)
}

fn answer(core: &Core, id: &str) -> Result<Response, Fail> {
    let row = find(core, id)
        .ok_or_else(|| Fail::new(ErrorCode::Internal, format!("request {id} vanished")))?;
    Ok(Response::Approval(info(row)))
}

/// The state a command or bulk run is in while (or because) it waited for the user.
fn state_of(a: &ApprovalRow) -> CommandState {
    match a.state {
        ApprovalState::Pending => CommandState::AwaitingApproval,
        ApprovalState::Denied => CommandState::Denied,
        // Approved but not started: it could not start (the error said why).
        ApprovalState::Expired | ApprovalState::Approved => CommandState::Expired,
    }
}

/// `status` of a command that has no record because it never started: it waits, or it was
/// denied or expired.
pub fn command_status(a: ApprovalRow) -> Response {
    let state = state_of(&a);
    let next = (state == CommandState::AwaitingApproval)
        .then(|| NextStep::AwaitApproval { id: a.id.clone() }.cli());
    Response::Command(CommandInfo {
        command_id: a.id.clone(),
        session_id: None,
        target: a.target.clone(),
        conn_name: Some(a.target.clone()),
        commands: a.command.lines().map(String::from).collect(),
        detached: false,
        state,
        exit_code: None,
        signal: None,
        error: match state {
            CommandState::Denied => Some(format!(
                "denied by {}{}",
                a.decided_by.as_deref().unwrap_or("the user"),
                a.deny_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
            CommandState::Expired => Some("nobody approved it in time; nothing ran".into()),
            _ => next,
        },
        created_ms: a.created * 1000,
        started_ms: None,
        ended_ms: a.decided_at.map(|t| t * 1000),
        duration_ms: None,
        output_lost_bytes: 0,
        storage_error: None,
        stdout: StreamStats::default(),
        stderr: StreamStats::default(),
        total_lines: 0,
        bulk_id: None,
        events: Vec::new(),
        approval: Some(Box::new(info(a))),
    })
}

/// `bulk status` of a run that never started.
pub fn bulk_status(a: ApprovalRow) -> Response {
    let state = match state_of(&a) {
        CommandState::AwaitingApproval => BulkState::AwaitingApproval,
        CommandState::Denied => BulkState::Denied,
        _ => BulkState::Expired,
    };
    Response::Bulk(BulkInfo {
        bulk_id: a.id.clone(),
        commands: a.command.lines().map(String::from).collect(),
        state,
        counts: Default::default(),
        targets: Vec::new(),
        created_ms: a.created * 1000,
    })
}

/// A waiting request is withdrawn (`cancel` on its id) by a client of the profile that asked,
/// or by the user's own CLI: it ends denied.
pub fn withdraw(app: &App, caller: &Caller, id: &str) -> Result<Response, Fail> {
    let peer = &caller.peer;
    if let (Some(p), Some(row)) = (&caller.profile, find(&app.core, id))
        && p.name != row.profile
    {
        return Err(Fail::new(
            ErrorCode::PermissionDenied,
            format!(
                "refused: request {id} was made under profile '{}', not '{}'",
                row.profile, p.name
            ),
        ));
    }
    let by = format!("the client that asked ({})", requester(peer));
    let withdrawn = app.core.db()?.decide_approval(
        id,
        ApprovalState::Denied,
        &by,
        Some("withdrawn before anyone decided"),
        now(),
    )?;
    if !withdrawn {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("request {id} was decided meanwhile; nothing was withdrawn"),
        ));
    }
    app.waiting.take(id);
    app.core
        .audit(peer, "approval_withdraw", None, None, id.to_string())?;
    Ok(match find(&app.core, id) {
        Some(a) if a.kind == ApprovalKind::Bulk => bulk_status(a),
        Some(a) => command_status(a),
        None => return Err(Fail::new(ErrorCode::NotFound, format!("no request {id}"))),
    })
}
