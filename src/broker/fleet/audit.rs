//! Fleet audits: the fixed read-only checks (or the inventory) on many connections, through the
//! bulk machinery (same queueing, same failure isolation), with the parsed results stored under
//! the audit's id.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer};
use crate::broker::fleet::bulk;
use crate::broker::fleet::checks::{
    INVENTORY_SCRIPT, SECURITY_SCRIPT, parse_findings, parse_inventory,
};
use crate::db::now_ms;
use crate::protocol::{
    AuditTarget, BulkSpec, BulkState, FleetAuditOp, FleetAuditReport, LineStream, LogQuery,
    NextStep, Response, StreamFilter, Targets,
};

/// Runs the audit and replies when every target is done; `progress` hears (targets done,
/// targets in all) whenever that changes.
pub async fn run(
    broker: &Arc<Core>,
    peer: &Peer,
    op: FleetAuditOp,
    targets: Targets,
    concurrency: Option<u32>,
    progress: Option<UnboundedSender<(u64, u64)>>,
) -> Result<Response, Fail> {
    let script = match op {
        FleetAuditOp::Security => SECURITY_SCRIPT,
        FleetAuditOp::Inventory => INVENTORY_SCRIPT,
    };
    let spec = BulkSpec {
        targets,
        commands: vec![script.trim().to_string()],
        concurrency,
        options: Default::default(),
    };
    let Response::BulkStarted { bulk_id, .. } = bulk::start(broker, peer, spec).await? else {
        return Err(Fail::internal("bulk start gave no id"));
    };
    let mut reported = None;
    let info = loop {
        if let Response::Bulk(info) = bulk::status(broker, &bulk_id, None)? {
            let done = info.targets.iter().filter(|t| t.state.is_final()).count();
            let now = Some((done as u64, info.targets.len() as u64));
            if let (Some(tx), Some(p)) = (&progress, now)
                && reported != now
            {
                reported = now;
                let _ = tx.send(p);
            }
            if info.state != BulkState::Running {
                break info;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut out = Vec::new();
    for t in info.targets {
        let lines = stdout_lines(broker, &t.command_id).await?;
        let ran = t.exit_code == Some(0);
        out.push(AuditTarget {
            findings: if ran && op == FleetAuditOp::Security {
                parse_findings(&lines)
            } else {
                Vec::new()
            },
            inventory: if ran && op == FleetAuditOp::Inventory {
                parse_inventory(&lines)
            } else {
                Vec::new()
            },
            name: t.name,
            host: t.host,
            port: t.port,
            state: t.state,
            error_code: t.error_code,
            error: t.error,
        });
    }
    let report = FleetAuditReport {
        audit_id: bulk_id.clone(),
        op,
        created_ms: info.created_ms,
        targets: out,
    };
    let json = serde_json::to_string(&report).map_err(Fail::internal)?;
    let op_name = match op {
        FleetAuditOp::Security => "security",
        FleetAuditOp::Inventory => "inventory",
    };
    broker
        .db()?
        .insert_fleet_audit(&bulk_id, op_name, now_ms(), &json)?;
    Ok(Response::FleetAudit(report))
}

async fn stdout_lines(broker: &Arc<Core>, command_id: &str) -> Result<Vec<String>, Fail> {
    let q = LogQuery {
        command_id: command_id.into(),
        stream: Some(StreamFilter::Stdout),
        ..Default::default()
    };
    crate::broker::core::output::read_logs(broker, move |read| {
        let page = read(&q, crate::protocol::CommandState::Completed, 4 << 20)?;
        Ok(page
            .lines
            .into_iter()
            .filter(|l| l.stream == LineStream::Stdout)
            .map(|l| l.text)
            .collect())
    })
    .await
}

/// A stored audit.
pub fn show(broker: &Core, audit_id: &str) -> Result<Response, Fail> {
    let json = broker
        .db()?
        .fleet_audit(audit_id)?
        .ok_or_else(|| Fail::unknown("fleet audit", audit_id, NextStep::AuditId))?;
    let report: FleetAuditReport = serde_json::from_str(&json).map_err(Fail::internal)?;
    Ok(Response::FleetAudit(report))
}
