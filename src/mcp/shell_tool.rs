//! `ssh_shell`.

use rmcp::model::CallToolResult;
use serde_json::json;

use super::Adapter;
use super::args::{ShellArgs, ShellOp};
use super::reply::{bad_arg, from_error, ok};
use crate::protocol::{LogQuery, Request, Response, ShellOutput, ShellSpec};

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

pub async fn shell(a: &Adapter, x: ShellArgs) -> CallToolResult {
    let need_id = || {
        x.shell_id
            .clone()
            .ok_or_else(|| bad_arg("this op needs shellId (from op=open, or op=list)"))
    };
    let req = match x.op {
        ShellOp::Open => match x.connection_id.clone() {
            Some(target) => Request::ShellOpen(ShellSpec {
                target,
                key: None,
                cols: x.cols.unwrap_or(120),
                rows: x.rows.unwrap_or(40),
                term: x.term.clone().unwrap_or_else(|| "xterm-256color".into()),
                persist: x.persist,
            }),
            None => return bad_arg("op=open needs connectionId (see ssh_conn op=list)"),
        },
        ShellOp::List => Request::ShellList,
        op => {
            let shell_id = match need_id() {
                Ok(id) => id,
                Err(e) => return e,
            };
            match op {
                ShellOp::Send => match x.text.clone() {
                    Some(text) => Request::ShellSend {
                        shell_id,
                        text,
                        enter: x.enter.unwrap_or(false),
                    },
                    None => return bad_arg("op=send needs text"),
                },
                ShellOp::Key => match x.key.clone() {
                    Some(key) => Request::ShellKey { shell_id, key },
                    None => return bad_arg("op=key needs key (e.g. enter, ctrl-c, up, f1)"),
                },
                ShellOp::Read
                    if x.grep.is_some()
                        || x.head.is_some()
                        || x.tail.is_some()
                        || x.from_line.is_some()
                        || x.to_line.is_some() =>
                {
                    Request::CommandLogs(LogQuery {
                        command_id: shell_id,
                        stream: None,
                        grep: x.grep.clone(),
                        ignore_case: x.ignore_case.unwrap_or(false),
                        head: x.head,
                        tail: x.tail,
                        from_line: x.from_line,
                        to_line: x.to_line,
                        max_bytes: x.max_bytes.or(Some(64 * 1024)),
                    })
                }
                ShellOp::Read => Request::ShellRead {
                    shell_id,
                    cursor: x.cursor,
                    screen: x.screen.unwrap_or(false),
                    max_bytes: x.max_bytes,
                },
                ShellOp::Wait => match x.pattern.clone() {
                    Some(pattern) => Request::ShellWait {
                        shell_id,
                        pattern,
                        timeout_secs: x.timeout.unwrap_or(30).min(600),
                        cursor: x.cursor,
                        screen: x.screen.unwrap_or(false),
                    },
                    None => return bad_arg("op=wait needs pattern (a regular expression)"),
                },
                ShellOp::Resize => match (x.cols, x.rows) {
                    (Some(cols), Some(rows)) => Request::ShellResize {
                        shell_id,
                        cols,
                        rows,
                    },
                    _ => return bad_arg("op=resize needs cols and rows"),
                },
                ShellOp::Signal => Request::ShellSignal {
                    shell_id,
                    signal: x.signal.clone().unwrap_or_else(|| "INT".into()),
                },
                ShellOp::Status => Request::ShellStatus { shell_id },
                ShellOp::Close => Request::ShellClose { shell_id },
                ShellOp::Open | ShellOp::List => unreachable!("handled above"),
            }
        }
    };
    match a.call(req).await {
        Ok(Response::Shell(s)) => ok(
            format!(
                "shell {} on {} is {} ({}x{}); {}; cursor {}",
                s.shell_id, s.target, s.state, s.cols, s.rows, s.persistence, s.cursor
            ),
            json!(s),
        ),
        Ok(Response::Shells { shells }) => ok(
            format!("{} shell(s)", shells.len()),
            json!({ "shells": shells }),
        ),
        Ok(Response::ShellOutput(o)) => ok(summary(&o), json!(o)),
        Ok(Response::Logs(page)) => {
            let text = page
                .lines
                .iter()
                .map(|l| format!("{}: {}", l.n, l.text))
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
        }
        Ok(other) => a.unexpected(other),
        Err(e) => from_error(e),
    }
}
