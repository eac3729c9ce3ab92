//! `ssh_shell`.

use rmcp::model::CallToolResult;
use serde_json::json;

use super::Adapter;
use super::args::{ShellArgs, ShellOp};
use super::progress::{OnCancel, Tick, Watch, Watched, call_watched};
use super::reply::{answer, bad_arg, ok};
use crate::protocol::{LogPage, Request, ShellInfo, ShellOutput, ShellSpec};

fn summary(o: &ShellOutput) -> String {
    let mut s = match o.matched {
        Some(true) => format!("matched {:?}. ", o.matched_text.clone().unwrap_or_default()),
        Some(false) => "pattern not seen before the timeout. ".into(),
        None => String::new(),
    };
    s.push_str(&format!(
        "shell {} is {}; cursor {}{}",
        o.shell_id,
        o.state,
        o.cursor,
        if o.more {
            " (more output follows: read again from cursor)"
        } else {
            ""
        }
    ));
    if let Some(screen) = &o.screen {
        s.push_str("\n--- screen ---\n");
        s.push_str(screen);
    } else if !o.text.is_empty() {
        s.push_str("\n--- output ---\n");
        s.push_str(&o.text);
    }
    s
}

/// A read, or a wait that reports the seconds it has waited and, when the call is cancelled,
/// hangs up (the broker's wait ends at its own timeout; the shell is untouched).
async fn output(a: &Adapter, req: Request, w: &mut Watch) -> anyhow::Result<ShellOutput> {
    let limit = match &req {
        Request::ShellWait { timeout_secs, .. } => *timeout_secs as f64,
        _ => return a.call::<ShellOutput>(req).await,
    };
    let r = call_watched(a, &req, w, OnCancel::Abandon, |tick| match tick {
        Tick::Waited(t) => Some((
            t.as_secs_f64(),
            Some(limit),
            format!("waiting for the pattern for {}s", t.as_secs()),
        )),
        Tick::Frame(..) => None,
    })
    .await;
    match r {
        Watched::Reply(r) => r,
        Watched::Abandoned => Err(anyhow::anyhow!(
            "stopped waiting (cancelled); the shell is untouched"
        )),
    }
}

/// Which reply a shell op gets.
enum Reply {
    Shell,
    Shells,
    Output,
    Log,
}

pub async fn shell(a: &Adapter, x: ShellArgs, w: &mut Watch) -> CallToolResult {
    let (req, reply) = match (x.op, x.shell_id.clone()) {
        (ShellOp::Open, _) => match x.connection_id.clone() {
            Some(target) => (
                Request::ShellOpen(ShellSpec {
                    target,
                    key: None,
                    cols: x.cols.unwrap_or(120),
                    rows: x.rows.unwrap_or(40),
                    term: x.term.clone().unwrap_or_else(|| "xterm-256color".into()),
                    persist: x.persist,
                }),
                Reply::Shell,
            ),
            None => return bad_arg("op=open needs connectionId (see ssh_conn op=list)"),
        },
        (ShellOp::List, _) => (Request::ShellList, Reply::Shells),
        (_, None) => return bad_arg("this op needs shellId (from op=open, or op=list)"),
        (ShellOp::Send, Some(shell_id)) => match x.text.clone() {
            Some(text) => (
                Request::ShellSend {
                    shell_id,
                    text,
                    enter: x.enter.unwrap_or(false),
                },
                Reply::Shell,
            ),
            None => return bad_arg("op=send needs text"),
        },
        (ShellOp::Key, Some(shell_id)) => match x.key.clone() {
            Some(key) => (Request::ShellKey { shell_id, key }, Reply::Shell),
            None => return bad_arg("op=key needs key (e.g. enter, ctrl-c, up, f1)"),
        },
        (ShellOp::Read, Some(shell_id)) if x.log.filters_lines() => (
            Request::CommandLogs(x.log.query(shell_id, None)),
            Reply::Log,
        ),
        (ShellOp::Read, Some(shell_id)) => (
            Request::ShellRead {
                shell_id,
                cursor: x.cursor,
                screen: x.screen.unwrap_or(false),
                max_bytes: x.log.max_bytes,
            },
            Reply::Output,
        ),
        (ShellOp::Wait, Some(shell_id)) => match x.pattern.clone() {
            Some(pattern) => (
                Request::ShellWait {
                    shell_id,
                    pattern,
                    timeout_secs: x.timeout.unwrap_or(30).min(600),
                    cursor: x.cursor,
                    screen: x.screen.unwrap_or(false),
                },
                Reply::Output,
            ),
            None => return bad_arg("op=wait needs pattern (a regular expression)"),
        },
        (ShellOp::Resize, Some(shell_id)) => match (x.cols, x.rows) {
            (Some(cols), Some(rows)) => (
                Request::ShellResize {
                    shell_id,
                    cols,
                    rows,
                },
                Reply::Shell,
            ),
            _ => return bad_arg("op=resize needs cols and rows"),
        },
        (ShellOp::Signal, Some(shell_id)) => (
            Request::ShellSignal {
                shell_id,
                signal: x.signal.clone().unwrap_or_else(|| "INT".into()),
            },
            Reply::Shell,
        ),
        (ShellOp::Status, Some(shell_id)) => (Request::ShellStatus { shell_id }, Reply::Shell),
        (ShellOp::Close, Some(shell_id)) => (Request::ShellClose { shell_id }, Reply::Shell),
    };
    match reply {
        Reply::Shell => answer(a.call::<ShellInfo>(req).await, |s| {
            ok(
                format!(
                    "shell {} on {} is {} ({}x{}); {}; cursor {}",
                    s.shell_id, s.target, s.state, s.cols, s.rows, s.persistence, s.cursor
                ),
                json!(s),
            )
        }),
        Reply::Shells => answer(a.call::<Vec<ShellInfo>>(req).await, |shells| {
            ok(
                format!("{} shell(s)", shells.len()),
                json!({ "shells": shells }),
            )
        }),
        Reply::Output => answer(output(a, req, w).await, |mut o| {
            let marked = &a.marked;
            o.text = crate::authority::redact::redact(&o.text, marked);
            o.screen = o
                .screen
                .map(|t| crate::authority::redact::redact(&t, marked));
            o.matched_text = o
                .matched_text
                .map(|t| crate::authority::redact::redact(&t, marked));
            ok(summary(&o), json!(o))
        }),
        Reply::Log => answer(a.call::<LogPage>(req).await, |page| {
            let mut r = a.redactor();
            let text = page
                .lines
                .iter()
                .map(|l| format!("{}: {}", l.n, r.line(l.stream.as_str(), &l.text)))
                .collect::<Vec<_>>()
                .join("\n");
            ok(
                format!(
                    "{} stored line(s) of {}{}\n{text}",
                    page.lines.len(),
                    page.total_lines,
                    if page.truncated { " (truncated)" } else { "" }
                ),
                super::exec_tool::page_facts(&page),
            )
        }),
    }
}
