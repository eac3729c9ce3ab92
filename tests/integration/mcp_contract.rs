//! The MCP contract as agents meet it, over real JSON-RPC on the adapter's stdio against real
//! sshds: one vocabulary in requests and replies, unknown arguments refused, structured errors
//! that name tool calls, a small tool list, logs sent once, per-target bulk failures, parse
//! errors answered; and the CLI's `--json` in snake_case.

use serde_json::{Value, json};

use crate::fixture::{Home, Sshd, wait_for};
use crate::mcp::Mcp;

/// Every object key in `v`, at any depth.
fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                keys(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
        _ => {}
    }
}

/// CLI text in an MCP error reply: a command an agent cannot run, or a CLI flag.
fn cli_words(text: &str) -> bool {
    [
        "`sshkeep key",
        "`sshkeep conn",
        "`sshkeep ps",
        "`sshkeep session",
        "--key",
        "--force",
    ]
    .iter()
    .any(|w| text.contains(w))
}

#[test]
fn replies_name_things_as_the_arguments_do() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    let mut m = Mcp::start(&home, &[]);
    let k = m.ok("ssh_key", json!({"op": "generate", "keyName": "deploy"}));
    assert_eq!(k["keyName"], "deploy", "{k}");
    sshd.authorize(k["publicKey"].as_str().expect("publicKey"));
    let c = m.ok("ssh_conn", json!({"op": "save", "name": "web1", "host": "127.0.0.1", "port": sshd.port, "username": sshd.user, "keyName": "deploy"}));
    assert!(c["connectionId"].is_string(), "{c}");
    assert_eq!(c["username"], sshd.user.as_str(), "{c}");
    assert_eq!(c["keyName"], "deploy", "{c}");
    for old in ["id", "user", "key"] {
        assert!(c.get(old).is_none(), "`{old}` in {c}");
    }
    let listed = m.ok("ssh_conn", json!({"op": "list"}));
    assert_eq!(listed["connections"][0]["keyName"], "deploy", "{listed}");
    let t = m.ok("ssh_conn", json!({"op": "test", "connectionId": "web1"}));
    assert_eq!(t["username"], sshd.user.as_str(), "{t}");
    assert_eq!(t["keyName"], "deploy", "{t}");

    let r = m.ok(
        "ssh_bulk_exec",
        json!({"commands": ["true"], "connectionIds": ["web1"]}),
    );
    let bulk = r["bulkExecId"].as_str().expect("bulkExecId").to_string();
    let st = wait_for(60, "the bulk run to end", || {
        let s = m.ok("ssh_exec", json!({"op": "status", "bulkExecId": bulk}));
        (s["state"] != "running").then_some(s)
    });
    assert_eq!(st["bulkExecId"], bulk.as_str(), "{st}");
    assert!(st.get("bulkId").is_none(), "{st}");
    let cid = st["targets"][0]["commandId"].as_str().expect("commandId");
    let cmd = m.ok("ssh_exec", json!({"op": "status", "commandId": cid}));
    assert_eq!(cmd["bulkExecId"], bulk.as_str(), "{cmd}");
    // `timeout` is honoured per target, and counts per state keep the states' own names.
    let run = m.ok(
        "ssh_bulk_exec",
        json!({"commands": ["sleep 30"], "connectionIds": ["web1"], "timeout": 1}),
    );
    let id = run["bulkExecId"].as_str().expect("bulkExecId").to_string();
    let started = std::time::Instant::now();
    let st = wait_for(60, "the bulk run to time out", || {
        let s = m.ok("ssh_exec", json!({"op": "status", "bulkExecId": id}));
        (s["state"] != "running").then_some(s)
    });
    assert!(started.elapsed().as_secs() < 20, "{st}");
    assert_eq!(st["targets"][0]["state"], "timed_out", "{st}");
    assert_eq!(st["counts"]["timed_out"], 1, "{st}");
}

#[test]
fn unknown_or_missing_arguments_are_refused_by_name_with_structured_content() {
    let home = Home::with_vault();
    let mut m = Mcp::start(&home, &[]);
    m.ok("ssh_key", json!({"op": "generate", "keyName": "deploy"}));
    let (e, t, s) = m.call(
        "ssh_conn",
        json!({"op": "save", "name": "w", "host": "127.0.0.1", "username": "u", "key": "deploy"}),
    );
    assert!(e, "an unknown argument is refused: {t}");
    assert_eq!(s["error"]["code"], "invalid_argument", "{s}");
    assert_eq!(s["error"]["argument"], "key", "{s}");
    assert!(t.contains("keyName"), "names what was meant: {t}");
    assert!(
        s["error"]["accepted"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("keyName")) && a.contains(&json!("username"))),
        "{s}"
    );
    let listed = m.ok("ssh_conn", json!({"op": "list"}));
    assert_eq!(listed["connections"], json!([]), "nothing saved");

    // Deserialization errors: a missing op, a wrong type, an unknown op.
    for (tool, args, arg) in [
        ("ssh_conn", json!({"name": "w"}), "op"),
        (
            "ssh_exec",
            json!({"op": "logs", "commandId": "x", "tail": "3"}),
            "tail",
        ),
        ("ssh_exec", json!({"op": "lst"}), "op"),
        ("ssh_server_status", json!({"verbose": true}), "verbose"),
    ] {
        let (e, t, s) = m.call(tool, args.clone());
        assert!(e, "{tool} {args}: {t}");
        assert_eq!(s["error"]["code"], "invalid_argument", "{tool} {args}: {s}");
        assert_eq!(s["error"]["argument"], arg, "{tool} {args}: {s}");
        assert!(t.contains(arg), "{t}");
    }
}

#[test]
fn error_replies_speak_in_tool_calls() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    let mut m = Mcp::start(&home, &[]);
    m.ok("ssh_key", json!({"op": "generate", "keyName": "stranger"}));
    // No key linked.
    m.ok("ssh_conn", json!({"op": "save", "name": "nokey", "host": "127.0.0.1", "port": sshd.port, "username": sshd.user}));
    let (e, t, s) = m.call("ssh_exec", json!({"op": "open", "connectionId": "nokey"}));
    assert!(e && s["error"]["code"] == "no_key", "{t}");
    assert!(t.contains("ssh_key op=link") && !cli_words(&t), "{t}");
    assert_eq!(s["error"]["next"]["tool"], "ssh_key", "{s}");
    // No key for a bare address: the old hint said `pass keyName`, which ssh_exec has not.
    let (e, t, _) = m.call(
        "ssh_exec",
        json!({"op": "open", "connectionId": format!("someone@127.0.0.1:{}", sshd.port)}),
    );
    assert!(e && t.contains("ssh_conn op=save") && !cli_words(&t), "{t}");
    assert!(!t.contains("pass keyName"), "{t}");
    // A key the server does not accept.
    m.ok("ssh_conn", json!({"op": "save", "name": "wrong", "host": "127.0.0.1", "port": sshd.port, "username": sshd.user, "keyName": "stranger"}));
    let (e, t, s) = m.call("ssh_exec", json!({"op": "open", "connectionId": "wrong"}));
    assert!(e && s["error"]["code"] == "auth_failed", "{t}");
    assert!(
        t.contains("ssh_key op=pub keyName=stranger") && !cli_words(&t),
        "{t}"
    );
    // Unknown names.
    for (tool, args, call) in [
        (
            "ssh_key",
            json!({"op": "show", "keyName": "nope"}),
            "ssh_key op=list",
        ),
        (
            "ssh_exec",
            json!({"op": "open", "connectionId": "nope"}),
            "ssh_conn op=list",
        ),
        (
            "ssh_exec",
            json!({"op": "close", "sessionId": "nope"}),
            "ssh_exec op=list",
        ),
    ] {
        let (e, t, s) = m.call(tool, args.clone());
        assert!(e && s["error"]["code"] == "not_found", "{args}: {t}");
        assert!(t.contains(call) && !cli_words(&t), "{args}: {t}");
    }
    // conn test reports and bulk results in the agent's words too.
    let t = m.ok("ssh_conn", json!({"op": "test", "connectionId": "nokey"}));
    let err = t["error"].as_str().unwrap_or_default();
    assert!(err.contains("ssh_key op=link") && !cli_words(err), "{t}");
    let (_, text, b) = m.call(
        "ssh_bulk_conn",
        json!({"op": "test", "connectionIds": ["wrong", "nope"]}),
    );
    let err = b["results"][0]["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("ssh_key op=pub keyName=stranger") && !cli_words(err),
        "{b}"
    );
    assert_eq!(b["results"][1]["next"]["tool"], "ssh_conn", "{b}");
    assert!(!cli_words(&text), "{text}");
}

#[test]
fn the_tool_list_is_small_and_minimal_mode_strands_no_one() {
    let home = Home::with_vault();
    let mut m = Mcp::start(&home, &[]);
    let list = m.request("tools/list", json!({}))["result"].clone();
    let bytes = list.to_string().len();
    // 12 KiB of descriptions and schemas, plus about 1.3 KiB of annotations (four hints a tool).
    assert!(bytes <= 14 * 1024, "tools/list is {bytes} bytes");
    // Every tool says what it can do to the world; a host may confirm destructive ones.
    for t in list["tools"].as_array().expect("tools") {
        let a = &t["annotations"];
        for hint in [
            "readOnlyHint",
            "destructiveHint",
            "idempotentHint",
            "openWorldHint",
        ] {
            assert!(a[hint].is_boolean(), "{} has no {hint}: {t}", t["name"]);
        }
        let read_only = a["readOnlyHint"] == true;
        let name = t["name"].as_str().unwrap_or_default();
        assert_eq!(
            read_only,
            matches!(
                name,
                "ssh_tool_search" | "ssh_server_status" | "ssh_stream_info" | "ssh_bulk_audit"
            ),
            "{name}"
        );
        if name == "ssh_exec" {
            assert!(
                a["destructiveHint"] == true && a["openWorldHint"] == true,
                "{t}"
            );
        }
    }
    let text = list.to_string();
    for bloat in [
        "$schema",
        "$defs",
        "$ref",
        "oneOf",
        "\"format\"",
        "\"null\"",
    ] {
        assert!(!text.contains(bloat), "{bloat} in tools/list");
    }
    let tools = list["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 13);
    let exec = tools
        .iter()
        .find(|t| t["name"] == "ssh_exec")
        .expect("ssh_exec");
    assert_eq!(exec["inputSchema"]["properties"]["tail"]["type"], "integer");
    assert_eq!(
        exec["inputSchema"]["properties"]["op"]["enum"],
        json!([
            "open", "run", "status", "logs", "list", "close", "cancel", "wait"
        ])
    );
    // A search finds an op and gives the very schema the list gives.
    let s = m.ok("ssh_tool_search", json!({"query": "wait for a command"}));
    let hit = &s["results"][0];
    assert_eq!(hit["tool"], "ssh_exec", "{s}");
    assert!(
        hit["matchingOps"]
            .as_array()
            .is_some_and(|o| o.contains(&json!("wait"))),
        "{s}"
    );
    assert_eq!(hit["inputSchema"], exec["inputSchema"], "{s}");
    drop(m);

    let mut m = Mcp::start(&home, &[("SSHKEEP_MCP_MINIMAL", "1")]);
    let s = m.ok("ssh_tool_search", json!({"query": "upload a file"}));
    let results = s["results"].as_array().expect("results");
    assert_eq!(results[0]["tool"], "ssh_sftp", "{s}");
    assert!(results.len() <= 3, "only what matches: {s}");
    assert!(
        results[0]["inputSchema"]["properties"]["localPath"].is_object(),
        "{s}"
    );
    assert_eq!(results[0]["listed"], false);
    // Hidden, and callable.
    m.ok("ssh_key", json!({"op": "list"}));
    let (e, t, s) = m.call(
        "ssh_sftp",
        json!({"op": "stat", "connectionId": "nope", "path": "/"}),
    );
    assert!(e && s["error"]["code"] == "not_found", "{t}");
}

#[test]
fn logs_are_sent_once_grep_can_ignore_case_and_lists_say_which_step_failed() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let mut m = Mcp::start(&home, &[]);
    let r = m.ok(
        "ssh_exec",
        json!({"op": "run", "connectionId": "srv", "command": "printf 'Alpha one\\nbeta two\\nALPHA three\\n'"}),
    );
    let id = r["commandId"].as_str().expect("commandId").to_string();
    m.wait_done(&id);
    // stdout only: a login shell may print its own noise on stderr.
    let (e, text, s) = m.call(
        "ssh_exec",
        json!({"op": "logs", "commandId": id, "stream": "stdout"}),
    );
    assert!(!e, "{text}");
    for line in ["Alpha one", "beta two", "ALPHA three"] {
        assert_eq!(text.matches(line).count(), 1, "{text}");
        assert!(!s.to_string().contains(line), "the lines twice: {s}");
    }
    assert_eq!(s["lines"], 3, "{s}");
    assert_eq!(s["totalLines"], 3, "{s}");
    let (_, text, s) = m.call(
        "ssh_exec",
        json!({"op": "logs", "commandId": id, "grep": "alpha", "ignoreCase": true}),
    );
    assert!(
        text.contains("Alpha one") && text.contains("ALPHA three") && !text.contains("beta"),
        "{text}"
    );
    assert_eq!(s["lines"], 2, "{s}");
    let (_, text, _) = m.call(
        "ssh_exec",
        json!({"op": "logs", "commandId": id, "grep": "alpha"}),
    );
    assert!(
        !text.contains("Alpha one"),
        "case matters without ignoreCase: {text}"
    );

    let r = m.ok(
        "ssh_exec",
        json!({"op": "run", "connectionId": "srv", "command": ["true", "exit 3", "echo never"]}),
    );
    let st = m.wait_done(r["commandId"].as_str().expect("commandId"));
    assert_eq!(st["exitCode"], 3);
    let err = st["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("step 2 of 3") && err.contains("exit 3"),
        "{st}"
    );
}

#[test]
fn one_unknown_bulk_target_fails_alone() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let mut m = Mcp::start(&home, &[]);
    let r = m.ok(
        "ssh_bulk_exec",
        json!({"commands": ["echo hi"], "connectionIds": ["srv", "nope"]}),
    );
    let bulk = r["bulkExecId"].as_str().expect("bulkExecId").to_string();
    let st = wait_for(60, "the bulk run to end", || {
        let s = m.ok("ssh_exec", json!({"op": "status", "bulkExecId": bulk}));
        (s["state"] != "running").then_some(s)
    });
    let target = |name: &str| {
        st["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {st}"))
    };
    assert_eq!(target("srv")["state"], "completed", "{st}");
    assert_eq!(target("nope")["state"], "failed", "{st}");
    assert_eq!(target("nope")["errorCode"], "not_found", "{st}");
    let c = m.ok(
        "ssh_bulk_conn",
        json!({"op": "test", "connectionIds": ["srv", "nope"]}),
    );
    assert_eq!(c["results"][0]["ok"], true, "{c}");
    assert_eq!(c["results"][1]["ok"], false, "{c}");
    assert_eq!(c["results"][1]["errorCode"], "not_found", "{c}");
    // Naming nothing that exists is still refused as a whole.
    let (e, t, _) = m.call(
        "ssh_bulk_exec",
        json!({"commands": ["true"], "connectionIds": ["nope"]}),
    );
    assert!(e && t.contains("nope"), "{t}");
}

#[test]
fn an_unparseable_line_gets_a_json_rpc_parse_error() {
    let home = Home::with_vault();
    let mut m = Mcp::start(&home, &[]);
    let reply = m.raw_line("{\"jsonrpc\": \"2.0\", \"id\": 7, \"method\": ");
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert_eq!(reply["id"], Value::Null, "{reply}");
    let reply = m.raw_line("[1, 2]");
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    // The adapter goes on serving.
    m.ok("ssh_server_status", json!({}));
}

#[test]
fn cli_json_is_snake_case_throughout() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let id = home.start(&["srv", "--", "echo", "hi"]);
    home.wait_done(&id, 60);
    let mut all = Vec::new();
    for args in [
        vec!["audit", "--verify", "--json"],
        vec!["status", "--json"],
        vec!["conn", "list", "--json"],
        vec!["key", "list", "--json"],
        vec!["ps", "--json"],
        vec!["status", &id, "--json"],
        vec!["logs", &id, "--json"],
    ] {
        let v = home.run(&args).ok().json();
        keys(&v, &mut all);
    }
    let camel: Vec<&String> = all
        .iter()
        .filter(|k| k.chars().any(|c| c.is_ascii_uppercase()) && !k.starts_with("SSH"))
        .collect();
    assert!(camel.is_empty(), "camelCase keys in --json: {camel:?}");
    let verified = home.run(&["audit", "--verify", "--json"]).ok().json();
    assert!(verified.get("first_broken").is_some(), "{verified}");
}

#[test]
fn the_official_python_mcp_sdk_checks_the_contract() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let Some(seen) = crate::mcp::run_sdk_script(&home, "contract.py", &["srv".as_ref()]) else {
        return;
    };
    assert_eq!(seen["contract"], "ok");
    assert_eq!(seen["minimal"], "ok");
    assert_eq!(seen["parseError"], "ok");
}
