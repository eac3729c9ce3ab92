//! `ssh_exec` and `ssh_stream_info`.

use rmcp::model::CallToolResult;
use serde_json::json;

use std::time::Duration;

use super::Adapter;
use super::args::{CommandArg, ExecArgs, ExecOp, StreamInfoArgs};
use super::progress::Watch;
use super::reply::{bad_arg, from_error, ok};
use super::vocab::{Vocab, all};
use crate::client::{Done, Started};
use crate::protocol::{
    CommandInfo, LogPage, Request, RunOptions, RunSpec, SecretString, SessionInfo, StreamFilter,
};

/// The `stream` argument of logs.
pub fn parse_stream(stream: Option<&str>) -> Result<StreamFilter, CallToolResult> {
    match stream {
        None | Some("both") => Ok(StreamFilter::Both),
        Some("stdout") => Ok(StreamFilter::Stdout),
        Some("stderr") => Ok(StreamFilter::Stderr),
        Some(other) => Err(bad_arg(format!(
            "stream must be stdout, stderr or both, not {other:?}"
        ))),
    }
}

pub async fn exec(a: &Adapter, x: ExecArgs, w: &mut Watch) -> CallToolResult {
    if let Some(bulk_id) = x.bulk_exec_id.clone() {
        return super::bulk_tool::exec_on_bulk(a, bulk_id, x).await;
    }
    match x.op {
        ExecOp::Open => {
            let Some(target) = x.connection_id else {
                return bad_arg("op=open needs connectionId (see ssh_conn op=list)");
            };
            match a
                .call::<SessionInfo>(Request::SessionOpen {
                    target,
                    key: None,
                    person: false,
                })
                .await
            {
                Ok(s) => ok(
                    format!("Session ID: {} (open on {})", s.session_id, s.target),
                    s.to_mcp(),
                ),
                Err(e) => from_error(e),
            }
        }
        ExecOp::Run => run(a, x).await,
        ExecOp::Status => {
            let Some(id) = x.command_id else {
                return bad_arg("op=status needs commandId (from op=run)");
            };
            match a
                .call::<CommandInfo>(Request::CommandStatus { command_id: id })
                .await
            {
                Ok(c) => ok(status_summary(&c), c.to_mcp()),
                Err(e) => from_error(e),
            }
        }
        ExecOp::Wait => wait(a, x, w).await,
        ExecOp::Logs => logs(a, x).await,
        ExecOp::List => {
            let sessions = match a.call::<Vec<SessionInfo>>(Request::SessionList).await {
                Ok(sessions) => sessions,
                Err(e) => return from_error(e),
            };
            let running = Request::CommandList {
                state: Some("running".into()),
                conn: None,
                limit: Some(100),
            };
            let commands = match a.call::<Vec<CommandInfo>>(running).await {
                Ok(commands) => commands,
                Err(e) => return from_error(e),
            };
            ok(
                format!(
                    "{} sessions, {} commands running",
                    sessions.len(),
                    commands.len()
                ),
                json!({ "sessions": all(&sessions), "commands": all(&commands) }),
            )
        }
        ExecOp::Close => {
            let Some(id) = x.session_id else {
                return bad_arg("op=close needs sessionId (see op=list)");
            };
            match a
                .call::<Done>(Request::SessionClose {
                    session_id: id.clone(),
                })
                .await
            {
                Ok(_) => ok(
                    format!("Session {id} closed"),
                    json!({ "sessionId": id, "closed": true }),
                ),
                Err(e) => from_error(e),
            }
        }
        ExecOp::Cancel => {
            let Some(id) = x.command_id else {
                return bad_arg("op=cancel needs commandId");
            };
            match a
                .call::<CommandInfo>(Request::CommandCancel { command_id: id })
                .await
            {
                Ok(c) => ok(
                    format!("Command {} is {}", c.command_id, c.state.as_str()),
                    c.to_mcp(),
                ),
                Err(e) => from_error(e),
            }
        }
    }
}

/// A command's state in a sentence.
fn status_summary(c: &CommandInfo) -> String {
    let exit = c
        .exit_code
        .map(|e| format!(", exit code {e}"))
        .unwrap_or_default();
    format!(
        "Command {} is {}{exit}; {} stdout and {} stderr lines so far{}",
        c.command_id,
        c.state.as_str(),
        c.stdout.lines,
        c.stderr.lines,
        c.error
            .as_ref()
            .map(|e| format!(". {e}"))
            .unwrap_or_default()
    )
}

/// How often a wait asks the broker about the command.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// `op=wait`: polls the command until it ends, `timeout` seconds pass (default 30, at most
/// 600) or the client cancels the call; reports progress (seconds waited) meanwhile. Neither a
/// timeout nor a cancellation touches the command.
async fn wait(a: &Adapter, x: ExecArgs, w: &mut Watch) -> CallToolResult {
    let Some(id) = x.command_id else {
        return bad_arg("op=wait needs commandId (from op=run)");
    };
    let limit = Duration::from_secs(x.timeout.unwrap_or(30).min(600));
    let started = tokio::time::Instant::now();
    loop {
        let c = match a
            .call::<CommandInfo>(Request::CommandStatus {
                command_id: id.clone(),
            })
            .await
        {
            Ok(c) => c,
            Err(e) => return from_error(e),
        };
        let waited = started.elapsed();
        let mut facts = c.to_mcp();
        facts["waitedMs"] = json!(waited.as_millis() as u64);
        if c.state.is_final() {
            return ok(status_summary(&c), facts);
        }
        if waited >= limit {
            facts["timedOut"] = json!(true);
            return ok(
                format!(
                    "{}; still {} after waiting {}s: wait again, or read op=logs commandId={id}",
                    status_summary(&c),
                    c.state.as_str(),
                    waited.as_secs()
                ),
                facts,
            );
        }
        w.report(
            waited.as_secs_f64(),
            Some(limit.as_secs_f64()),
            format!(
                "{} for {}s, {} lines so far",
                c.state.as_str(),
                waited.as_secs(),
                c.total_lines
            ),
        )
        .await;
        tokio::select! {
            () = tokio::time::sleep(WAIT_POLL) => {}
            () = w.cancelled() => {
                facts["cancelled"] = json!(true);
                return ok(
                    format!(
                        "stopped waiting (cancelled); command {id} is still {} and keeps running: op=status, op=logs or op=cancel commandId={id}",
                        c.state.as_str()
                    ),
                    facts,
                );
            }
        }
    }
}

async fn run(a: &Adapter, x: ExecArgs) -> CallToolResult {
    let commands = match x.command {
        Some(CommandArg::One(c)) => vec![c],
        Some(CommandArg::Many(list)) => list,
        None => return bad_arg("op=run needs command (a string, or a list run in order)"),
    };
    if x.session_id.is_none() && x.connection_id.is_none() {
        return bad_arg(
            "op=run needs sessionId (from op=open) or connectionId (see ssh_conn op=list)",
        );
    }
    let spec = RunSpec {
        target: if x.session_id.is_some() {
            None
        } else {
            x.connection_id
        },
        session_id: x.session_id,
        key: None,
        commands,
        detach: x.detach.unwrap_or(false),
        stdin: x.stdin.map(SecretString::new),
        options: RunOptions {
            cwd: x.cwd,
            env: x.env.unwrap_or_default(),
            pty: x.pty.unwrap_or(false),
            timeout_secs: x.timeout,
        },
    };
    match a.call::<Started>(Request::Run(spec)).await {
        Ok(Started {
            command_id,
            approval: Some(why),
            ..
        }) => {
            let (next, _) =
                crate::mcp::reply::next_for_agents(&crate::protocol::NextStep::AwaitApproval {
                    id: command_id.clone(),
                });
            ok(
                format!(
                    "Command ID: {command_id} waits for the user's approval and has not started: {why}. {next}"
                ),
                json!({ "commandId": command_id, "state": "awaiting_approval", "reason": why }),
            )
        }
        Ok(Started {
            command_id,
            session_id,
            state,
            ..
        }) => ok(
            format!(
                "Command ID: {command_id} ({}). Poll ssh_exec op=status commandId={command_id}; read output with op=logs",
                state.as_str()
            ),
            json!({ "commandId": command_id, "sessionId": session_id, "state": state }),
        ),
        Err(e) => from_error(e),
    }
}

async fn logs(a: &Adapter, x: ExecArgs) -> CallToolResult {
    let Some(id) = x.command_id else {
        return bad_arg("op=logs needs commandId (from op=run)");
    };
    let stream = match parse_stream(x.stream.as_deref()) {
        Ok(s) => s,
        Err(e) => return e,
    };
    if x.log.head.is_some() && x.log.tail.is_some() {
        return bad_arg("give head or tail, not both");
    }
    let q = x.log.query(id, Some(stream));
    match a.call::<LogPage>(Request::CommandLogs(q)).await {
        Ok(page) => {
            let mut r = a.redactor();
            let mut text: String = page
                .lines
                .iter()
                .map(|l| {
                    format!(
                        "[{} {}] {}\n",
                        l.n,
                        l.stream,
                        r.line(l.stream.as_str(), &l.text)
                    )
                })
                .collect();
            if let Some(next) = page.next_from_line {
                text.push_str(&format!(
                    "(cut at the reply size cap: call again with fromLine={next} for the rest)\n"
                ));
            } else if page.truncated {
                text.push_str(
                    "(cut at the reply size cap: narrow with grep, or page with fromLine/toLine)\n",
                );
            }
            text.push_str(&format!(
                "({} lines shown of {} stored; command {})",
                page.lines.len(),
                page.total_lines,
                page.state.as_str()
            ));
            ok(text, page_facts(&page))
        }
        Err(e) => from_error(e),
    }
}

/// What a page of output holds, without its lines: those are in the text, once.
pub fn page_facts(page: &LogPage) -> serde_json::Value {
    json!({
        "commandId": page.command_id,
        "state": page.state,
        "lines": page.lines.len(),
        "firstLine": page.lines.first().map(|l| l.n),
        "lastLine": page.lines.last().map(|l| l.n),
        "totalLines": page.total_lines,
        "truncated": page.truncated,
        "nextFromLine": page.next_from_line,
    })
}

pub async fn stream_info(a: &Adapter, x: StreamInfoArgs) -> CallToolResult {
    match a
        .call::<CommandInfo>(Request::CommandStatus {
            command_id: x.command_id,
        })
        .await
    {
        Ok(c) => {
            let open = !c.state.is_final();
            let next = c.total_lines + 1;
            let v = json!({
                "commandId": c.command_id,
                "state": c.state,
                "open": open,
                "stdout": { "bytes": c.stdout.bytes, "lines": c.stdout.lines, "open": open },
                "stderr": { "bytes": c.stderr.bytes, "lines": c.stderr.lines, "open": open },
                "totalLines": c.total_lines,
                "nextFromLine": next,
            });
            ok(
                format!(
                    "stdout {} bytes / {} lines, stderr {} bytes / {} lines; {}; poll logs from line {next}",
                    c.stdout.bytes,
                    c.stdout.lines,
                    c.stderr.bytes,
                    c.stderr.lines,
                    if open { "still running" } else { "ended" }
                ),
                v,
            )
        }
        Err(e) => from_error(e),
    }
}
