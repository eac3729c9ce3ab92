//! `sshkeep bulk exec|status|logs|cancel|conn`: fleet work.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::choices::{BulkConnOp, FleetAuditOp};
use super::run_cmd::LogFilterArgs;
use super::{Ctx, output};
use crate::client::{BulkLogs, BulkStarted};
use crate::protocol::{
    self, BulkConnResult, BulkInfo, BulkSpec, BulkState, CommandState, FleetAuditReport, Request,
    RunOptions, TargetError, Targets,
};

/// How often a waiting `bulk exec` redraws its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Connections by name or id (comma-separated or repeated).
    #[arg(long = "conn", value_delimiter = ',')]
    conns: Vec<String>,
    /// Every connection of this client group.
    #[arg(long)]
    client: Option<String>,
    /// Every saved connection.
    #[arg(long)]
    all: bool,
}

impl From<TargetArgs> for Targets {
    fn from(t: TargetArgs) -> Self {
        Targets {
            conns: t.conns,
            client: t.client,
            all: t.all,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum BulkCmd {
    /// Run commands on many connections at once; shows progress, then a summary.
    Exec {
        #[command(flatten)]
        targets: TargetArgs,
        /// Targets worked on at once.
        #[arg(long, default_value_t = 10)]
        concurrency: u32,
        /// Kill each target's command after this many seconds.
        #[arg(long)]
        timeout: Option<u64>,
        /// More commands, run in order after the first (each target stops at its first failure).
        #[arg(long = "then", value_name = "CMD")]
        then: Vec<String>,
        /// Print the run's id and return at once.
        #[arg(long)]
        no_wait: bool,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// A bulk run's state, per target.
    Status {
        bulk_id: String,
        /// One target (connection id, name or host).
        #[arg(long)]
        target: Option<String>,
    },
    /// A bulk run's output, each line labelled with its target.
    Logs {
        bulk_id: String,
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        filter: LogFilterArgs,
    },
    /// Cancel a bulk run, or one target of it.
    Cancel {
        bulk_id: String,
        #[arg(long)]
        target: Option<String>,
    },
    /// Run the fixed read-only security checks, or the inventory, on many connections.
    Audit {
        #[arg(value_enum, default_value = "security")]
        op: FleetAuditOp,
        #[command(flatten)]
        targets: TargetArgs,
        #[arg(long, default_value_t = 10)]
        concurrency: u32,
        /// Show a stored audit by its id instead of running one.
        #[arg(long)]
        show: Option<String>,
    },
    /// Test, open or close sessions to many connections at once.
    Conn {
        #[arg(value_enum)]
        op: BulkConnOp,
        #[command(flatten)]
        targets: TargetArgs,
        #[arg(long, default_value_t = 10)]
        concurrency: u32,
    },
}

fn progress(info: &BulkInfo) {
    let total = info.targets.len().max(1);
    let done = info.targets.iter().filter(|t| t.state.is_final()).count();
    let failed = info
        .targets
        .iter()
        .filter(|t| t.state.is_final() && t.state != CommandState::Completed)
        .count();
    let width = 30;
    let filled = done * width / total;
    eprint!(
        "\r[{}{}] {done}/{total} targets done, {failed} failed ",
        "#".repeat(filled),
        " ".repeat(width - filled)
    );
    let _ = std::io::stderr().flush();
}

fn summary(ctx: &Ctx, info: &BulkInfo) -> Result<u8> {
    let failed = info.state != BulkState::Completed;
    if ctx.json {
        output::json(info)?;
    } else {
        let rows: Vec<Vec<String>> = info
            .targets
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    format!("{}:{}", t.host, t.port),
                    t.state.as_str().into(),
                    t.exit_code
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "-".into()),
                    t.error_code.map_or_else(|| "-".into(), TargetError::as_str),
                    t.error
                        .clone()
                        .unwrap_or_default()
                        .chars()
                        .take(100)
                        .collect(),
                ]
            })
            .collect();
        output::table(
            &["TARGET", "ADDRESS", "STATE", "EXIT", "ERROR", "DETAIL"],
            &rows,
        );
        let counts: Vec<String> = info
            .counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        println!(
            "\nbulk {}: {} ({})",
            info.bulk_id,
            info.state,
            counts.join(", ")
        );
    }
    Ok(if failed { 1 } else { 0 })
}

pub async fn run(ctx: &Ctx, cmd: BulkCmd) -> Result<u8> {
    let mut c = ctx.client().await?;
    match cmd {
        BulkCmd::Exec {
            targets,
            concurrency,
            timeout,
            then,
            no_wait,
            command,
        } => {
            let mut commands = Vec::new();
            if !command.is_empty() {
                commands.push(command.join(" "));
            }
            commands.extend(then);
            if commands.is_empty() {
                bail!("give the command after --");
            }
            let spec = BulkSpec {
                targets: targets.into(),
                commands,
                concurrency: Some(concurrency),
                options: RunOptions {
                    timeout_secs: timeout,
                    ..Default::default()
                },
            };
            let BulkStarted {
                bulk_id,
                targets,
                approval,
            } = c.call(&Request::BulkExec(spec)).await?;
            if let Some(why) = approval {
                eprintln!("waiting for approval: {why}");
                if ctx.json {
                    output::json(
                        &serde_json::json!({ "bulk_id": bulk_id, "targets": targets, "state": "awaiting_approval" }),
                    )?;
                } else {
                    println!("{bulk_id}");
                }
                return Ok(0);
            }
            if no_wait {
                if ctx.json {
                    output::json(&serde_json::json!({ "bulk_id": bulk_id, "targets": targets }))?;
                } else {
                    println!("{bulk_id}");
                }
                return Ok(0);
            }
            let live = std::io::stderr().is_terminal() && !ctx.json;
            loop {
                let info: BulkInfo = c
                    .call(&Request::BulkStatus {
                        bulk_id: bulk_id.clone(),
                        target: None,
                        // The reply comes when the run ends, or in time to redraw the bar.
                        wait_ms: Some(PROGRESS_EVERY.as_millis() as u64),
                    })
                    .await?;
                if live {
                    progress(&info);
                }
                if info.state != BulkState::Running {
                    if live {
                        eprintln!();
                    }
                    return summary(ctx, &info);
                }
            }
        }
        BulkCmd::Status { bulk_id, target } => {
            let info: BulkInfo = c
                .call(&Request::BulkStatus {
                    bulk_id,
                    target,
                    wait_ms: None,
                })
                .await?;
            summary(ctx, &info).map(|_| 0)
        }
        BulkCmd::Logs {
            bulk_id,
            target,
            filter,
        } => {
            let query = filter.query(String::new());
            let BulkLogs {
                lines, truncated, ..
            } = c
                .call(&Request::BulkLogs {
                    bulk_id,
                    target,
                    query,
                })
                .await?;
            if ctx.json {
                output::json(&lines)?;
            } else {
                for l in &lines {
                    println!("[{}] {}", l.target, l.text);
                }
                if truncated {
                    eprintln!(
                        "(cut at the reply size cap: narrow with --target, --grep or --tail)"
                    );
                }
            }
            Ok(0)
        }
        BulkCmd::Cancel { bulk_id, target } => {
            let info: BulkInfo = c.call(&Request::BulkCancel { bulk_id, target }).await?;
            summary(ctx, &info).map(|_| 0)
        }
        BulkCmd::Audit {
            op,
            targets,
            concurrency,
            show,
        } => {
            let req = match show {
                Some(audit_id) => Request::FleetAuditShow { audit_id },
                None => Request::FleetAudit {
                    op: op.into(),
                    targets: targets.into(),
                    concurrency: Some(concurrency),
                    progress: false,
                },
            };
            let report: FleetAuditReport = c.call(&req).await?;
            audit_report(ctx, &report)
        }
        BulkCmd::Conn {
            op,
            targets,
            concurrency,
        } => {
            let req = Request::BulkConn {
                op: op.into(),
                targets: targets.into(),
                concurrency: Some(concurrency),
            };
            let results: Vec<BulkConnResult> = c.call(&req).await?;
            let failed = results.iter().any(|r| !r.ok);
            if ctx.json {
                output::json(&results)?;
            } else {
                let rows: Vec<Vec<String>> = results
                    .iter()
                    .map(|r| {
                        let detail = match (&r.report, &r.session_id) {
                            (Some(t), _) => t
                                .host_key
                                .as_ref()
                                .map(|h| {
                                    format!(
                                        "{} ({}), rtt {:.1} ms",
                                        h.fingerprint,
                                        h.status,
                                        t.connect_ms.unwrap_or(0.0)
                                    )
                                })
                                .unwrap_or_default(),
                            (None, Some(s)) => format!("session {s}"),
                            _ => String::new(),
                        };
                        vec![
                            r.name.clone(),
                            if r.ok { "ok".into() } else { "failed".into() },
                            detail,
                            r.error
                                .clone()
                                .unwrap_or_default()
                                .chars()
                                .take(90)
                                .collect(),
                        ]
                    })
                    .collect();
                output::table(&["CONNECTION", "RESULT", "DETAIL", "ERROR"], &rows);
            }
            Ok(if failed { 1 } else { 0 })
        }
    }
}

/// Prints an audit. Exits 1 when a target could not be audited or any check failed: a script
/// running `sshkeep bulk audit security` learns of a failure from the status alone.
fn audit_report(ctx: &Ctx, r: &FleetAuditReport) -> Result<u8> {
    let unreachable = r.targets.iter().any(|t| t.state != CommandState::Completed);
    let failed = r
        .targets
        .iter()
        .flat_map(|t| &t.findings)
        .any(|f| f.status == crate::protocol::FindingStatus::Fail);
    let code = if unreachable || failed { 1 } else { 0 };
    if ctx.json {
        output::json(r)?;
        return Ok(code);
    }
    for t in &r.targets {
        println!("== {} ({}:{}) {}", t.name, t.host, t.port, t.state.as_str());
        if let Some(e) = &t.error {
            println!(
                "   {}: {e}",
                t.error_code
                    .map_or_else(|| "error".into(), TargetError::as_str)
            );
        }
        let rows: Vec<Vec<String>> = t
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.check.clone(),
                    f.status.to_string(),
                    f.severity.to_string(),
                    f.evidence.chars().take(110).collect(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            output::table(&["CHECK", "STATUS", "SEVERITY", "EVIDENCE"], &rows);
        }
        for f in t.findings.iter().filter(|f| f.fix.is_some()) {
            println!(
                "   fix {}: {}",
                f.check,
                f.fix.as_deref().unwrap_or_default()
            );
        }
        for i in &t.inventory {
            println!("   {:<15} {}", i.key, i.value);
        }
    }
    println!(
        "
audit {} ({})",
        r.audit_id,
        if r.op == protocol::FleetAuditOp::Security {
            "security"
        } else {
            "inventory"
        }
    );
    Ok(code)
}
