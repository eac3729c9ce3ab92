//! MCP resources: a command's stored output as `sshkeep://commands/ID/log` and a shell's
//! rendered screen as `sshkeep://shells/ID/screen`, both `text/plain` and redacted as the tool
//! replies are. `resources/list` pages through shells and the newest commands, newest first;
//! the two URI templates let a client read any id it learnt from a tool reply.

use rmcp::ErrorData;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};
use serde_json::json;

use super::Adapter;
use crate::authority::redact::redact;
use crate::client::BrokerError;
use crate::protocol::{
    CommandInfo, ErrorCode, LogPage, LogQuery, Request, ShellInfo, ShellOutput, StreamFilter,
};

/// Resources a page of `resources/list` holds.
const PAGE: usize = 50;
/// The most commands `resources/list` reaches back to (the broker's list limit).
const MOST_COMMANDS: usize = 1000;
/// A log resource holds at most this much output; the rest is paged with `ssh_exec op=logs`.
const LOG_BYTES: u64 = 1 << 20;

const LOG_TEMPLATE: &str = "sshkeep://commands/{commandId}/log";
const SCREEN_TEMPLATE: &str = "sshkeep://shells/{shellId}/screen";

fn log_uri(id: &str) -> String {
    format!("sshkeep://commands/{id}/log")
}

fn screen_uri(id: &str) -> String {
    format!("sshkeep://shells/{id}/screen")
}

/// What a URI names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Log(&'a str),
    Screen(&'a str),
}

fn parse(uri: &str) -> Option<Target<'_>> {
    let rest = uri.strip_prefix("sshkeep://")?;
    let valid = |id: &str| {
        !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if let Some(id) = rest
        .strip_prefix("commands/")
        .and_then(|r| r.strip_suffix("/log"))
        .filter(|id| valid(id))
    {
        return Some(Target::Log(id));
    }
    rest.strip_prefix("shells/")
        .and_then(|r| r.strip_suffix("/screen"))
        .filter(|id| valid(id))
        .map(Target::Screen)
}

/// The two templates.
pub fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new(LOG_TEMPLATE, "command log")
            .with_description(
                "A command's stored output (stdout and stderr in order, secrets redacted); commandId from ssh_exec op=run",
            )
            .with_mime_type("text/plain"),
        ResourceTemplate::new(SCREEN_TEMPLATE, "shell screen")
            .with_description(
                "A shell's screen as rendered now (secrets redacted); shellId from ssh_shell op=open",
            )
            .with_mime_type("text/plain"),
    ])
}

/// One page of shells and commands, newest first; the cursor is where the next page starts.
pub async fn list(a: &Adapter, cursor: Option<&str>) -> Result<ListResourcesResult, ErrorData> {
    let from = match cursor {
        None => 0,
        Some(c) => c.parse::<usize>().map_err(|_| {
            ErrorData::invalid_params(
                format!("cursor {c:?} is not one sshkeep gave: list again without a cursor"),
                None,
            )
        })?,
    };
    let shells = a
        .call::<Vec<ShellInfo>>(Request::ShellList)
        .await
        .map_err(broker_failed)?;
    let want = (from + PAGE + 1).min(MOST_COMMANDS);
    let commands = a
        .call::<Vec<CommandInfo>>(Request::CommandList {
            state: None,
            conn: None,
            limit: Some(want as u32),
        })
        .await
        .map_err(broker_failed)?;
    let mut all: Vec<(i64, Resource)> = shells
        .iter()
        .map(|s| {
            let r = Resource::new(screen_uri(&s.shell_id), format!("shell {}", s.shell_id))
                .with_description(format!("screen of the shell on {} ({})", s.target, s.state))
                .with_mime_type("text/plain");
            (s.created_ms, r)
        })
        .chain(commands.iter().map(|c| {
            let r = Resource::new(log_uri(&c.command_id), format!("command {}", c.command_id))
                .with_description(redact(
                    &format!(
                        "output of `{}` on {} ({})",
                        short(&c.commands.join("; ")),
                        c.target,
                        c.state.as_str()
                    ),
                    &a.marked,
                ))
                .with_mime_type("text/plain");
            (c.created_ms, r)
        }))
        .collect();
    all.sort_by_key(|(created, _)| std::cmp::Reverse(*created));
    let more = all.len() > from + PAGE;
    let page: Vec<Resource> = all
        .into_iter()
        .skip(from)
        .take(PAGE)
        .map(|(_, r)| r)
        .collect();
    let mut result = ListResourcesResult::with_all_items(page);
    if more {
        result.next_cursor = Some((from + PAGE).to_string());
    }
    Ok(result)
}

/// A command line cut for a description.
fn short(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let cut: String = s.chars().take(MAX).collect();
    format!("{cut}...")
}

/// The text of a log or a screen.
pub async fn read(a: &Adapter, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let text = match parse(uri) {
        Some(Target::Log(id)) => log_text(a, id).await?,
        Some(Target::Screen(id)) => screen_text(a, id).await?,
        None => {
            return Err(ErrorData::resource_not_found(
                format!(
                    "sshkeep has no resource {uri:?}: its resources are {LOG_TEMPLATE} and {SCREEN_TEMPLATE}"
                ),
                Some(json!({ "uri": uri })),
            ));
        }
    };
    Ok(ReadResourceResult::new(vec![ResourceContents::text(
        text, uri,
    )]))
}

async fn log_text(a: &Adapter, id: &str) -> Result<String, ErrorData> {
    let q = LogQuery {
        command_id: id.into(),
        stream: Some(StreamFilter::Both),
        grep: None,
        ignore_case: false,
        head: None,
        tail: None,
        from_line: None,
        to_line: None,
        max_bytes: Some(LOG_BYTES),
        timestamps: false,
    };
    let page = a
        .call::<LogPage>(Request::CommandLogs(q))
        .await
        .map_err(|e| not_found_or_failed(e, "command", id, &log_uri(id)))?;
    let mut r = a.redactor();
    let mut text: String = page
        .lines
        .iter()
        .map(|l| format!("{}\n", r.line(l.stream.as_str(), &l.text)))
        .collect();
    if let Some(next) = page.next_from_line.filter(|_| page.truncated) {
        text.push_str(&format!(
            "[cut at {} KiB: read on with ssh_exec op=logs commandId={id} fromLine={next}]\n",
            LOG_BYTES / 1024
        ));
    }
    Ok(text)
}

async fn screen_text(a: &Adapter, id: &str) -> Result<String, ErrorData> {
    let out = a
        .call::<ShellOutput>(Request::ShellRead {
            shell_id: id.into(),
            cursor: None,
            screen: true,
            max_bytes: None,
        })
        .await
        .map_err(|e| not_found_or_failed(e, "shell", id, &screen_uri(id)))?;
    Ok(redact(&out.screen.unwrap_or_default(), &a.marked))
}

/// A broker error as an MCP error; an unknown id names the id.
fn not_found_or_failed(e: anyhow::Error, kind: &str, id: &str, uri: &str) -> ErrorData {
    match e.downcast_ref::<BrokerError>() {
        Some(b) if b.code == ErrorCode::NotFound => ErrorData::resource_not_found(
            format!("sshkeep has no {kind} {id}"),
            Some(json!({ "uri": uri })),
        ),
        _ => broker_failed(e),
    }
}

fn broker_failed(e: anyhow::Error) -> ErrorData {
    ErrorData::internal_error(format!("{e:#}"), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_a_log_or_a_screen_and_nothing_else() {
        assert_eq!(
            parse("sshkeep://commands/cmd-1a/log"),
            Some(Target::Log("cmd-1a"))
        );
        assert_eq!(
            parse("sshkeep://shells/sh_2/screen"),
            Some(Target::Screen("sh_2"))
        );
        assert_eq!(parse("sshkeep://commands//log"), None);
        assert_eq!(parse("sshkeep://commands/a/b/log"), None);
        assert_eq!(parse("file:///etc/passwd"), None);
    }
}
