//! Turning broker replies into MCP tool results: structured content with camelCase keys plus a
//! short text summary; failures as tool errors whose text says what to call next.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};

use crate::client::{BrokerError, Done, UnexpectedReply};
use crate::protocol::{ErrorCode, ErrorNext, NextStep};

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

/// Maps whose keys are data, not field names: environment variables, and counts per state
/// (`timed_out` is a state's name, as in `state`).
const DATA_KEYED: &[&str] = &["env", "counts"];

/// Renames every object key to camelCase (keys of [`DATA_KEYED`] maps are kept).
pub fn camelize(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    if DATA_KEYED.contains(&k.as_str()) {
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

/// What the broker did, in its words.
pub fn done(Done { message }: Done) -> CallToolResult {
    ok(message.clone(), json!({ "ok": true, "message": message }))
}

/// A failure the model should read.
pub fn fail(code: &str, message: impl Into<String>) -> CallToolResult {
    fail_with(code, message, Map::new())
}

/// A failure with more fields for the structured `error` (the argument at fault, the next
/// call to make, ...).
pub fn fail_with(
    code: &str,
    message: impl Into<String>,
    fields: Map<String, Value>,
) -> CallToolResult {
    let message = message.into();
    let mut r = CallToolResult::error(vec![ContentBlock::text(format!("{code}: {message}"))]);
    let mut error = Map::new();
    error.insert("code".into(), Value::from(code));
    error.insert("message".into(), Value::from(message));
    error.extend(fields);
    r.structured_content = Some(json!({ "error": error }));
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

/// A tool call as text (`ssh_key op=pub keyName=deploy`) and as data.
fn call(tool: &str, args: Value) -> (String, Value) {
    // `op` first, as agents write it.
    let mut pairs: Vec<(&String, &Value)> = args.as_object().into_iter().flatten().collect();
    pairs.sort_by_key(|(k, _)| k.as_str() != "op");
    let words: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    (
        format!("{tool} {}", words.join(" ")),
        json!({ "tool": tool, "arguments": args }),
    )
}

/// What only the user can do, in a terminal.
fn user(command: &str) -> Value {
    json!({ "user": command })
}

/// A next step, said for an agent: the tool call to make (text, and as data), or what to ask
/// the user for. A changed host key is always left to the user.
pub fn next_for_agents(step: &NextStep) -> (String, Value) {
    match step {
        NextStep::ListConns => {
            let (c, v) = call("ssh_conn", json!({"op": "list"}));
            (format!("see {c} (or give user@host[:port])"), v)
        }
        NextStep::ListKeys => see(call("ssh_key", json!({"op": "list"}))),
        NextStep::ListCommands | NextStep::ListSessions => {
            see(call("ssh_exec", json!({"op": "list"})))
        }
        NextStep::ListClients => see(call("ssh_client", json!({"op": "list"}))),
        NextStep::ListShells => see(call("ssh_shell", json!({"op": "list"}))),
        NextStep::BulkRunId => (
            "the id is the bulkExecId that ssh_bulk_exec returned".into(),
            json!({ "tool": "ssh_bulk_exec" }),
        ),
        NextStep::AuditId => (
            "the id is the auditId that ssh_bulk_audit returned".into(),
            json!({ "tool": "ssh_bulk_audit" }),
        ),
        NextStep::TestConn => {
            let (c, v) = call("ssh_conn", json!({"op": "test"}));
            (format!("diagnose it with {c} connectionId=..."), v)
        }
        NextStep::AddKey => (
            "add it first with ssh_key op=add or op=generate".into(),
            json!({ "tool": "ssh_key", "arguments": {"op": "generate"} }),
        ),
        NextStep::LinkKey { conn } => {
            let (c, v) = call(
                "ssh_key",
                json!({"op": "link", "keyName": "KEY", "connectionId": conn}),
            );
            (format!("link one with {c}"), v)
        }
        NextStep::SaveConnWithKey { user, host, port } => {
            let (c, v) = call(
                "ssh_conn",
                json!({"op": "save", "name": "NAME", "host": host, "port": port, "username": user, "keyName": "KEY"}),
            );
            (format!("save a connection with {c}, then use its name"), v)
        }
        NextStep::AuthorizeKey { key } => {
            let (c, v) = call("ssh_key", json!({"op": "pub", "keyName": key}));
            (
                format!("put the line {c} returns into that user's ~/.ssh/authorized_keys on the server"),
                v,
            )
        }
        NextStep::TrustHostKey { conn, fingerprint } => {
            let (c, v) = call(
                "ssh_conn",
                json!({"op": "trust", "connectionId": conn, "fingerprint": fingerprint}),
            );
            (format!("once the user has checked it out of band: {c}"), v)
        }
        NextStep::RepinHostKey { conn, fingerprint } => {
            let command = format!("sshkeep conn trust {conn} --fingerprint {fingerprint}");
            (
                format!(
                    "replacing a pinned key is for the user to decide: do not re-pin it yourself; tell them \
                     (after checking the new fingerprint out of band they run `{command}` in a terminal)"
                ),
                user(&command),
            )
        }
        NextStep::UnlinkOrForce { key } => {
            let (c, v) = call(
                "ssh_key",
                json!({"op": "unlink", "keyName": key, "connectionId": "CONN"}),
            );
            (format!("unlink it first with {c}, or call op=remove force=true"), v)
        }
        NextStep::RetiredKey { key } => {
            let (c, v) = call("ssh_key", json!({"op": "remove", "keyName": key}));
            (
                format!("use the key that replaced it (see ssh_key op=list), or destroy it with {c}"),
                v,
            )
        }
        NextStep::ResumeRotation { key } => {
            let (c, v) = call(
                "ssh_key",
                json!({"op": "rotate", "keyName": key, "resume": true}),
            );
            (format!("continue it with {c}"), v)
        }
        NextStep::StartRotation { key } => {
            let (c, v) = call("ssh_key", json!({"op": "rotate", "keyName": key}));
            (format!("start one with {c}"), v)
        }
        NextStep::Unlock => (
            "new logins need the vault unlocked: the user runs `sshkeep unlock` in a terminal (an agent cannot unlock the vault)".into(),
            user("sshkeep unlock"),
        ),
        NextStep::VaultInit => (
            "the user creates it with `sshkeep vault init` in a terminal".into(),
            user("sshkeep vault init"),
        ),
        NextStep::AwaitApproval { id } => {
            let command = format!("sshkeep approve {id}");
            (
                format!(
                    "nothing runs until the user approves it: ask them to run `{command}` in their \
                     terminal (you cannot approve it), then poll ssh_exec op=status with this id"
                ),
                user(&command),
            )
        }
        NextStep::UserOnly { command } => (
            format!(
                "this is the user's to do, in person: tell them to run `{command}` in a terminal"
            ),
            user(command),
        ),
        NextStep::LogInAtTerminal { command } => (
            format!(
                "the server asks a one-time code at login, which only the user can type: ask the user to run `{command}` in their terminal, then call this again (it reuses the session they opened)"
            ),
            user(command),
        ),
        NextStep::RunToWait => {
            let (c, v) = call("ssh_exec", json!({"op": "run", "command": "..."}));
            (
                format!("start it with {c}, which returns a commandId that waits for the user's approval"),
                v,
            )
        }
    }
}

fn see((c, v): (String, Value)) -> (String, Value) {
    (format!("see {c}"), v)
}

/// A problem and its next step, said for an agent.
pub fn problem_then(problem: &str, step: &NextStep) -> (String, Value) {
    let (text, next) = next_for_agents(step);
    (format!("{problem}; {text}"), next)
}

/// An error field of a reply (a conn test, a bulk target) said for an agent when it comes with
/// its next step: `error` in tool calls, and `next` as data.
pub fn agent_error(v: &mut Value, next: Option<&ErrorNext>) {
    if let (Some(n), Value::Object(m)) = (next, v) {
        let (message, step) = problem_then(&n.problem, &n.step);
        m.insert("error".into(), Value::String(message));
        m.insert("next".into(), step);
    }
}

/// A broker call's result as a tool result: `render` the reply, or say what failed.
pub fn answer<T>(r: anyhow::Result<T>, render: impl FnOnce(T) -> CallToolResult) -> CallToolResult {
    match r {
        Ok(v) => render(v),
        Err(e) => from_error(e),
    }
}

/// Any failure talking to the broker.
pub fn from_error(e: anyhow::Error) -> CallToolResult {
    match e.downcast_ref::<BrokerError>() {
        Some(BrokerError {
            code,
            next: Some(n),
            ..
        }) => {
            let (message, next) = problem_then(&n.problem, &n.step);
            let mut fields = Map::new();
            fields.insert("next".into(), next);
            fail_with(&code_name(*code), message, fields)
        }
        Some(be) => fail(&code_name(be.code), be.message.clone()),
        None if e.is::<UnexpectedReply>() => fail("internal", e.to_string()),
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
    fn counts_per_state_keep_the_states_names() {
        let v = camelize(json!({"bulk_id": "b", "counts": {"timed_out": 1}}));
        assert_eq!(v, json!({"bulkId": "b", "counts": {"timed_out": 1}}));
    }

    #[test]
    fn next_steps_become_tool_calls_or_the_users_part() {
        let (t, v) = problem_then(
            "not trusted yet",
            &NextStep::TrustHostKey {
                conn: "web".into(),
                fingerprint: "SHA256:abc".into(),
            },
        );
        assert!(
            t.contains("ssh_conn op=trust connectionId=web fingerprint=SHA256:abc"),
            "{t}"
        );
        assert_eq!(v["arguments"]["connectionId"], "web");
        let (t, v) = next_for_agents(&NextStep::RepinHostKey {
            conn: "web".into(),
            fingerprint: "SHA256:abc".into(),
        });
        assert!(
            t.contains("sshkeep conn trust web") && t.contains("do not re-pin it yourself"),
            "{t}"
        );
        assert!(v.get("tool").is_none());
        let (t, _) = next_for_agents(&NextStep::SaveConnWithKey {
            user: "u".into(),
            host: "h".into(),
            port: 22,
        });
        assert!(!t.contains("--key") && t.contains("keyName=KEY"), "{t}");
        let (t, _) = next_for_agents(&NextStep::RetiredKey { key: "k".into() });
        assert!(
            t.contains("ssh_key op=remove keyName=k") && !t.contains("sshkeep"),
            "{t}"
        );
    }
}
