//! `ssh_bulk_exec`, `ssh_bulk_conn`, and `ssh_exec` with a `bulkExecId`.

use rmcp::model::CallToolResult;
use serde_json::json;

use super::Adapter;
use super::args::{
    AuditToolOp, BulkAuditArgs, BulkConnArgs, BulkConnToolOp, BulkExecArgs, ExecArgs, ExecOp,
};
use super::exec_tool::parse_stream;
use super::progress::{OnCancel, Tick, Watch, Watched, call_watched};
use super::reply::{agent_error, answer, bad_arg, ok, problem_then};
use super::vocab::Vocab;
use crate::client::{BulkLogs, BulkStarted};
use crate::protocol::{
    BulkConnOp, BulkConnResult, BulkInfo, BulkSpec, BulkState, CommandState, FindingStatus,
    FleetAuditOp, FleetAuditReport, Request, RunOptions, TargetError, Targets,
};

fn targets(ids: Option<Vec<String>>, client: Option<String>, all: bool) -> Option<Targets> {
    let t = Targets {
        conns: ids.unwrap_or_default(),
        client,
        all,
    };
    (!t.conns.is_empty() || t.client.is_some() || t.all).then_some(t)
}

fn bulk_summary(b: &BulkInfo) -> String {
    let counts: Vec<String> = b.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let failed: Vec<String> = b
        .targets
        .iter()
        .filter(|t| t.state.is_final() && t.state != CommandState::Completed)
        .map(|t| {
            format!(
                "{} ({})",
                t.name,
                t.error_code
                    .map_or_else(|| t.state.as_str().to_string(), TargetError::as_str)
            )
        })
        .collect();
    let mut s = format!("Bulk {} is {}: {}", b.bulk_id, b.state, counts.join(", "));
    if !failed.is_empty() {
        s.push_str(&format!("; failed: {}", failed.join(", ")));
    }
    s
}

pub async fn bulk_exec(a: &Adapter, x: BulkExecArgs) -> CallToolResult {
    let Some(t) = targets(x.connection_ids, x.client, x.all.unwrap_or(false)) else {
        return bad_arg("give connectionIds, client or all=true");
    };
    if x.commands.is_empty() {
        return bad_arg("commands needs at least one command");
    }
    let spec = BulkSpec {
        targets: t,
        commands: x.commands,
        concurrency: x.concurrency,
        options: RunOptions {
            timeout_secs: x.timeout,
            ..Default::default()
        },
    };
    answer(
        a.call(Request::BulkExec(spec)).await,
        |BulkStarted {
             bulk_id,
             targets,
             approval,
         }| {
            if let Some(why) = approval {
                let (next, _) =
                    crate::mcp::reply::next_for_agents(&crate::protocol::NextStep::AwaitApproval {
                        id: bulk_id.clone(),
                    });
                return ok(
                    format!("bulkExecId: {bulk_id} waits for the user's approval: {why}. {next}"),
                    json!({ "bulkExecId": bulk_id, "state": BulkState::AwaitingApproval, "targets": targets, "reason": why }),
                );
            }
            ok(
                format!(
                    "bulkExecId: {bulk_id} (running on {} targets). Follow with ssh_exec op=status bulkExecId={bulk_id}",
                    targets.len()
                ),
                json!({ "bulkExecId": bulk_id, "state": BulkState::Running, "targets": targets }),
            )
        },
    )
}

pub async fn bulk_conn(a: &Adapter, x: BulkConnArgs) -> CallToolResult {
    let Some(t) = targets(x.connection_ids, x.client, false) else {
        return bad_arg("give connectionIds or client");
    };
    let op = match x.op {
        BulkConnToolOp::Test => BulkConnOp::Test,
        BulkConnToolOp::Open => BulkConnOp::Open,
        BulkConnToolOp::Close => BulkConnOp::Close,
    };
    let req = Request::BulkConn {
        op,
        targets: t,
        concurrency: x.concurrency,
    };
    answer(a.call::<Vec<BulkConnResult>>(req).await, |results| {
        let good = results.iter().filter(|r| r.ok).count();
        let bad: Vec<String> = results
            .iter()
            .filter(|r| !r.ok)
            .map(|r| match &r.next {
                Some(n) => format!("{}: {}", r.name, problem_then(&n.problem, &n.step).0),
                None => format!("{}: {}", r.name, r.error.as_deref().unwrap_or("failed")),
            })
            .collect();
        let mut s = format!("{good} of {} ok", results.len());
        if !bad.is_empty() {
            s.push_str(&format!("; {}", bad.join("; ")));
        }
        // Errors in the agent's words, with the next call as data.
        let results: Vec<_> = results
            .iter()
            .map(|r| {
                let mut v = r.to_mcp();
                agent_error(&mut v, r.next.as_ref());
                if let (Some(t), Some(report)) = (&r.report, v.get_mut("report")) {
                    agent_error(report, t.next.as_ref());
                }
                v
            })
            .collect();
        ok(s, json!({ "results": results }))
    })
}

/// `ssh_exec` status, logs or cancel for a bulk run (or one of its targets).
pub async fn exec_on_bulk(a: &Adapter, bulk_id: String, x: ExecArgs) -> CallToolResult {
    let target = x.connection_id.or(x.name).or(x.host);
    let req = match x.op {
        ExecOp::Status => Request::BulkStatus {
            bulk_id,
            target,
            wait_ms: None,
        },
        ExecOp::Cancel => Request::BulkCancel { bulk_id, target },
        ExecOp::Logs => {
            let stream = match parse_stream(x.stream.as_deref()) {
                Ok(s) => s,
                Err(e) => return e,
            };
            let query = x.log.query(String::new(), Some(stream));
            Request::BulkLogs {
                bulk_id,
                target,
                query,
            }
        }
        other => {
            return bad_arg(format!(
                "bulkExecId goes with op=status, logs or cancel, not {other:?}"
            ));
        }
    };
    if x.op != ExecOp::Logs {
        return answer(a.call::<BulkInfo>(req).await, |b| {
            ok(bulk_summary(&b), b.to_mcp())
        });
    }
    answer(
        a.call(req).await,
        |BulkLogs {
             bulk_id,
             lines,
             truncated,
         }| {
            let mut r = a.redactor();
            let mut text: String = lines
                .iter()
                .map(|l| format!("[{}] {}\n", l.target, r.line(&l.target, &l.text)))
                .collect();
            if truncated {
                text.push_str(
                    "(cut at the reply size cap: narrow with connectionId, grep or tail)\n",
                );
            }
            text.push_str(&format!("({} lines)", lines.len()));
            // The lines are in the text, once.
            ok(
                text,
                json!({ "bulkExecId": bulk_id, "lines": lines.len(), "truncated": truncated }),
            )
        },
    )
}

pub async fn bulk_audit(a: &Adapter, x: BulkAuditArgs, w: &mut Watch) -> CallToolResult {
    let req = match x.op {
        AuditToolOp::Show => match x.audit_id {
            Some(audit_id) => Request::FleetAuditShow { audit_id },
            None => return bad_arg("op=show needs auditId"),
        },
        op => {
            let Some(t) = targets(x.connection_ids, x.client, false) else {
                return bad_arg("give connectionIds or client");
            };
            let op = if op == AuditToolOp::Security {
                FleetAuditOp::Security
            } else {
                FleetAuditOp::Inventory
            };
            Request::FleetAudit {
                op,
                targets: t,
                concurrency: x.concurrency,
                progress: true,
            }
        }
    };
    let reply = call_watched(a, &req, w, OnCancel::Abandon, |tick| match tick {
        Tick::Frame(done, total) => Some((
            done as f64,
            Some(total as f64),
            format!("{done} of {total} hosts"),
        )),
        Tick::Waited(_) => None,
    })
    .await;
    let Watched::Reply(reply) = reply else {
        return ok(
            "stopped waiting for the audit (cancelled); it finishes in sshkeep and is stored: ssh_bulk_audit op=show needs its auditId, which this call did not get",
            json!({ "cancelled": true }),
        );
    };
    answer(reply, |r: FleetAuditReport| {
        let mut lines = vec![format!("auditId: {}", r.audit_id)];
        for t in &r.targets {
            let bad: Vec<String> = t
                .findings
                .iter()
                .filter(|f| matches!(f.status, FindingStatus::Fail | FindingStatus::Warn))
                .map(|f| format!("{} {} ({})", f.check, f.status, f.severity))
                .collect();
            let skipped = t
                .findings
                .iter()
                .filter(|f| f.status == FindingStatus::Skipped)
                .count();
            let line = match (&t.error, r.op) {
                (Some(e), _) => format!("{}: not audited: {e}", t.name),
                (None, FleetAuditOp::Inventory) => format!(
                    "{}: {}",
                    t.name,
                    t.inventory
                        .iter()
                        .map(|i| format!("{}={}", i.key, i.value))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (None, FleetAuditOp::Security) => format!(
                    "{}: {} ({} skipped for lack of privileges or tools)",
                    t.name,
                    if bad.is_empty() {
                        "no failures".to_string()
                    } else {
                        bad.join(", ")
                    },
                    skipped
                ),
            };
            lines.push(line);
        }
        ok(lines.join("\n"), json!(r))
    })
}
