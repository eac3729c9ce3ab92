//! Turning broker replies into MCP tool results: structured content with camelCase keys plus a
//! short text summary; failures as tool errors whose text says what to call next.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};

use crate::client::BrokerError;
use crate::protocol::ErrorCode;

/// `snake_case` to `camelCase`.
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut up = false;
    for c in key.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Renames every object key to camelCase (environment maps keep their names).
pub fn camelize(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    if k == "env" {
                        (k, v)
                    } else {
                        (camel(&k), camelize(v))
                    }
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(camelize).collect()),
        other => other,
    }
}

/// A success: `summary` for people and models, `value` (camelized) as structured content.
pub fn ok(summary: impl Into<String>, value: Value) -> CallToolResult {
    let value = match camelize(value) {
        v @ Value::Object(_) => v,
        other => json!({ "result": other }),
    };
    let mut r = CallToolResult::success(vec![ContentBlock::text(summary.into())]);
    r.structured_content = Some(value);
    r
}

/// A failure the model should read.
pub fn fail(code: &str, message: impl Into<String>) -> CallToolResult {
    let message = message.into();
    let mut r = CallToolResult::error(vec![ContentBlock::text(format!("{code}: {message}"))]);
    r.structured_content = Some(json!({ "error": { "code": code, "message": message } }));
    r
}

/// A missing or wrong argument.
pub fn bad_arg(message: impl Into<String>) -> CallToolResult {
    fail("invalid_argument", message)
}

fn code_name(c: ErrorCode) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "error".into())
}

/// The broker's CLI-worded hints, said in tool calls. A changed host key is left to the user.
fn for_agents(code: ErrorCode, message: &str) -> String {
    if code == ErrorCode::HostKeyChanged {
        return format!(
            "{message}. This is for the user to decide: do not re-pin it yourself; tell them."
        );
    }
    let mut m = message.to_string();
    for (cli, tool) in [
        ("`sshkeep conn list`", "ssh_conn op=list"),
        ("`sshkeep key list`", "ssh_key op=list"),
        ("`sshkeep ps`", "ssh_exec op=list"),
        ("`sshkeep session list`", "ssh_exec op=list"),
        ("`sshkeep conn test`", "ssh_conn op=test"),
        (
            "`sshkeep key add` or `sshkeep key generate`",
            "ssh_key op=add or op=generate",
        ),
        (
            "pass --key KEY",
            "pass keyName, or save a connection with ssh_conn op=save",
        ),
        (
            "`sshkeep unlock`",
            "`sshkeep unlock` (the user runs it in a terminal; an agent cannot unlock the vault)",
        ),
        (
            "`sshkeep vault init`",
            "`sshkeep vault init` (the user runs it in a terminal)",
        ),
        (
            "`sshkeep broker stop`",
            "`sshkeep broker stop` (the user runs it)",
        ),
    ] {
        m = m.replace(cli, tool);
    }
    if let Ok(re) = regex_lite::Regex::new(r"`sshkeep conn trust (\S+) --fingerprint (\S+)`") {
        m = re
            .replace_all(
                &m,
                "ssh_conn op=trust connectionId=$1 fingerprint=$2 (after the user has checked it)",
            )
            .into_owned();
    }
    if let Ok(re) = regex_lite::Regex::new(r"`sshkeep key link (\S+) (\S+)`") {
        m = re
            .replace_all(&m, "ssh_key op=link keyName=$1 connectionId=$2")
            .into_owned();
    }
    if let Ok(re) = regex_lite::Regex::new(r"`sshkeep key pub (\S+)`") {
        m = re.replace_all(&m, "ssh_key op=pub keyName=$1").into_owned();
    }
    m
}

/// Any failure talking to the broker.
pub fn from_error(e: anyhow::Error) -> CallToolResult {
    match e.downcast_ref::<BrokerError>() {
        Some(be) => fail(&code_name(be.code), for_agents(be.code, &be.message)),
        None => fail("broker_unavailable", format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_camel_case() {
        let v = camelize(
            json!({"session_id": "s", "stdout": {"bytes": 1}, "lines": [{"n": 1, "exit_code": 0}], "env": {"MY_VAR": "x"}}),
        );
        assert_eq!(
            v,
            json!({"sessionId": "s", "stdout": {"bytes": 1}, "lines": [{"n": 1, "exitCode": 0}], "env": {"MY_VAR": "x"}})
        );
    }

    #[test]
    fn cli_hints_become_tool_calls() {
        let m = for_agents(
            ErrorCode::HostKeyUnknown,
            "not trusted yet: run `sshkeep conn trust web --fingerprint SHA256:abc`",
        );
        assert!(
            m.contains("ssh_conn op=trust connectionId=web fingerprint=SHA256:abc"),
            "{m}"
        );
        assert!(
            for_agents(ErrorCode::NotFound, "see `sshkeep conn list`").contains("ssh_conn op=list")
        );
        let m = for_agents(
            ErrorCode::HostKeyChanged,
            "HOST KEY CHANGED: `sshkeep conn trust web --fingerprint SHA256:abc`",
        );
        assert!(
            m.contains("sshkeep conn trust web") && m.contains("do not re-pin it yourself"),
            "{m}"
        );
    }
}
