//! The MCP adapter over real JSON-RPC on its stdio, against a real sshd; and once driven by the
//! official MCP Python SDK as an independent client.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use serde_json::{Value, json};

use crate::fixture::{Home, Sshd, wait_for};

pub struct Mcp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Mcp {
    pub fn start(home: &Home, extra_env: &[(&str, &str)]) -> Self {
        let mut cmd = home.command(&["mcp"]);
        // The adapter's flows as the user sets them up for a trusted agent; the `agent`
        // profile (the default) is tested on its own.
        cmd.env("SSHKEEP_PROFILE", "unrestricted");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Self::spawn(cmd)
    }

    /// An adapter started in `cwd` with more arguments, as a GUI MCP host would start it.
    pub fn start_in(home: &Home, cwd: &std::path::Path, args: &[&str]) -> Self {
        let mut all = vec!["mcp"];
        all.extend_from_slice(args);
        let mut cmd = home.command(&all);
        cmd.current_dir(cwd);
        if !args.contains(&"--profile") {
            cmd.env("SSHKEEP_PROFILE", "unrestricted");
        }
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: std::process::Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mcp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut m = Self {
            child,
            stdin,
            stdout,
            next: 1,
        };
        let init = m.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "sshkeep-tests", "version": "1"}}),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "sshkeep", "{init}");
        m.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        m
    }

    pub fn send(&mut self, v: Value) {
        writeln!(self.stdin, "{v}").expect("write");
        self.stdin.flush().expect("flush");
    }

    /// The next message the adapter writes (a reply or a notification).
    pub fn next_message(&mut self) -> Value {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("read");
        assert!(n > 0, "the adapter closed stdout");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout carries only JSON-RPC ({e}): {line}"))
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read");
            assert!(n > 0, "the adapter closed stdout");
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carries only JSON-RPC ({e}): {line}"));
            if v["id"] == id {
                return v;
            }
        }
    }

    /// Writes one raw line (not necessarily a message) and then a ping; returns the first line
    /// that comes back (the ping's reply if the raw line got none, so a silent adapter fails
    /// the test instead of hanging it), after reading up to the ping's reply.
    pub fn raw_line(&mut self, line: &str) -> Value {
        writeln!(self.stdin, "{line}").expect("write");
        self.send(json!({"jsonrpc": "2.0", "id": "after-raw", "method": "ping"}));
        let mut first = None;
        loop {
            let mut out = String::new();
            let n = self.stdout.read_line(&mut out).expect("read");
            assert!(n > 0, "the adapter closed stdout");
            let v: Value =
                serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
            let pong = v["id"] == "after-raw";
            let first = first.get_or_insert(v);
            if pong {
                return first.clone();
            }
        }
    }

    /// Calls a tool; returns (is_error, text, structured content).
    pub fn call(&mut self, tool: &str, args: Value) -> (bool, String, Value) {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        let res = &r["result"];
        assert!(
            res.is_object(),
            "tool call answered with a protocol error: {r}"
        );
        let text = res["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (
            res["isError"] == true,
            text,
            res["structuredContent"].clone(),
        )
    }

    pub fn ok(&mut self, tool: &str, args: Value) -> Value {
        let (err, text, s) = self.call(tool, args.clone());
        assert!(!err, "{tool} {args} failed: {text}");
        s
    }

    /// The lines of a logs reply's text: (line number, stream, text). The lines travel once,
    /// in the text, as `[N STREAM] TEXT`.
    pub fn log_lines(text: &str) -> Vec<(u64, String, String)> {
        text.lines()
            .filter_map(|l| {
                let (head, rest) = l.strip_prefix('[')?.split_once("] ")?;
                let (n, stream) = head.split_once(' ')?;
                Some((n.parse().ok()?, stream.to_string(), rest.to_string()))
            })
            .collect()
    }

    pub fn wait_done(&mut self, command_id: &str) -> Value {
        wait_for(120, "the command to end", || {
            let s = self.ok("ssh_exec", json!({"op": "status", "commandId": command_id}));
            (s["state"] != "queued" && s["state"] != "running").then_some(s)
        })
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tools_are_listed_with_described_schemas_and_minimal_mode_lists_the_core() {
    let home = Home::with_vault();
    let mut m = Mcp::start(&home, &[]);
    let tools = m.request("tools/list", json!({}))["result"]["tools"].clone();
    let names: Vec<&str> = tools
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for n in [
        "ssh_server_status",
        "ssh_tool_search",
        "ssh_conn",
        "ssh_key",
        "ssh_exec",
        "ssh_stream_info",
        "ssh_client",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    for t in tools.as_array().expect("tools") {
        assert!(
            t["description"].as_str().is_some_and(|d| d.len() > 20),
            "{t}"
        );
        assert_eq!(t["inputSchema"]["type"], "object");
    }
    let exec = tools
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["name"] == "ssh_exec")
        .expect("ssh_exec");
    let props = &exec["inputSchema"]["properties"];
    for arg in [
        "op",
        "connectionId",
        "sessionId",
        "commandId",
        "command",
        "tail",
        "head",
        "grep",
        "fromLine",
        "toLine",
        "stream",
        "detach",
        "timeout",
        "cwd",
        "env",
        "stdin",
        "pty",
    ] {
        assert!(props.get(arg).is_some(), "ssh_exec lacks {arg}: {props}");
    }
    assert!(props["commandId"]["description"].as_str().is_some());
    drop(m);

    let mut m = Mcp::start(&home, &[("SSHKEEP_MCP_MINIMAL", "1")]);
    let tools = m.request("tools/list", json!({}))["result"]["tools"].clone();
    let mut names: Vec<&str> = tools
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "ssh_conn",
            "ssh_exec",
            "ssh_server_status",
            "ssh_tool_search"
        ]
    );
    // Unlisted tools stay callable once found through the search.
    let s = m.ok("ssh_tool_search", json!({"query": "private key vault"}));
    assert_eq!(s["results"][0]["tool"], "ssh_key");
    assert_eq!(s["results"][0]["listed"], false);
    m.ok("ssh_key", json!({"op": "list"}));
}

#[test]
fn seed_flow_1_over_json_rpc() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    let mut m = Mcp::start(&home, &[]);
    // Key and connection through the adapter, as an agent would.
    let k = m.ok(
        "ssh_key",
        json!({"op": "generate", "keyName": "prod-deploy-key"}),
    );
    sshd.authorize(k["publicKey"].as_str().expect("publicKey"));
    let c = m.ok("ssh_conn", json!({"op": "save", "name": "production-app-server", "host": "127.0.0.1", "port": sshd.port, "username": sshd.user, "client": "AcmeCorp"}));
    let conn_id = c["connectionId"]
        .as_str()
        .expect("connectionId")
        .to_string();
    m.ok(
        "ssh_key",
        json!({"op": "link", "keyName": "prod-deploy-key", "connectionId": conn_id}),
    );

    let s = m.ok("ssh_exec", json!({"op": "open", "connectionId": conn_id}));
    let sid = s["sessionId"].as_str().expect("sessionId").to_string();
    let r = m.ok(
        "ssh_exec",
        json!({"op": "run", "sessionId": sid, "command": "echo updating; echo 'E: error one' >&2"}),
    );
    let first = r["commandId"].as_str().expect("commandId").to_string();
    let st = m.wait_done(&first);
    assert_eq!(st["state"], "completed");
    assert_eq!(st["exitCode"], 0);
    let r = m.ok(
        "ssh_exec",
        json!({"op": "run", "sessionId": sid, "command": ["seq 1 50", "echo finished"]}),
    );
    let second = r["commandId"].as_str().expect("commandId").to_string();
    assert_eq!(m.wait_done(&second)["state"], "completed");

    let (_, text, _) = m.call(
        "ssh_exec",
        json!({"op": "logs", "commandId": second, "tail": 3}),
    );
    let lines = Mcp::log_lines(&text);
    let texts: Vec<&str> = lines.iter().map(|l| l.2.as_str()).collect();
    assert_eq!(texts, vec!["49", "50", "finished"]);
    assert_eq!(lines[0].0, 49);
    assert_eq!(lines[0].1, "stdout");
    let (_, text, _) = m.call(
        "ssh_exec",
        json!({"op": "logs", "commandId": first, "grep": "error"}),
    );
    let lines = Mcp::log_lines(&text);
    assert_eq!(lines[0].2, "E: error one");
    assert_eq!(lines[0].1, "stderr");
    let info = m.ok("ssh_stream_info", json!({"commandId": second}));
    assert_eq!(info["stdout"]["lines"], 51);
    assert_eq!(info["open"], false);
    assert_eq!(info["nextFromLine"], 52);

    // A connection may be named by its name as well as its id; and a run on a connection reuses
    // its session.
    let r = m.ok(
        "ssh_exec",
        json!({"op": "run", "connectionId": "production-app-server", "command": "echo by-name"}),
    );
    assert_eq!(
        m.wait_done(r["commandId"].as_str().expect("id"))["state"],
        "completed"
    );

    let status = m.ok("ssh_server_status", json!({}));
    assert_eq!(status["vault"]["unlocked"], true);
    assert!(status["uptimeSecs"].as_u64().is_some());
    assert!(status["databaseBytes"].as_u64().unwrap_or(0) > 0);
    assert!(
        status["settings"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["key"] == "keepalive_interval"))
    );

    let clients = m.ok("ssh_client", json!({"op": "list"}));
    assert_eq!(clients["clients"][0]["name"], "AcmeCorp");

    m.ok("ssh_exec", json!({"op": "close", "sessionId": sid}));
    let listed = m.ok("ssh_exec", json!({"op": "list"}));
    assert!(
        !listed["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .any(|s| s["sessionId"] == sid.as_str())
    );
}

#[test]
fn private_keys_go_in_and_never_come_out() {
    let home = Home::with_vault();
    let d = home.dir.path();
    crate::fixture::keygen(&d.join("agent"), "ed25519", "", "agent");
    let private = std::fs::read_to_string(d.join("agent")).expect("key");
    let body: Vec<&str> = private
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect();
    let mut m = Mcp::start(&home, &[]);
    let mut replies = Vec::new();
    replies.push(m.call(
        "ssh_key",
        json!({"op": "add", "keyName": "agent", "privateKey": private}),
    ));
    replies.push(m.call("ssh_key", json!({"op": "show", "keyName": "agent"})));
    replies.push(m.call("ssh_key", json!({"op": "list"})));
    replies.push(m.call("ssh_key", json!({"op": "pub", "keyName": "agent"})));
    replies.push(m.call(
        "ssh_key",
        json!({"op": "add", "keyName": "bad", "privateKey": "not a key at all"}),
    ));
    assert!(!replies[0].0, "{}", replies[0].1);
    assert!(replies[4].0, "garbage is refused");
    for (_, text, s) in &replies {
        for line in &body {
            assert!(
                !text.contains(line) && !s.to_string().contains(line),
                "private key material in a reply"
            );
        }
    }
    assert!(replies[3].1.starts_with("ssh-ed25519 "));
}

#[test]
fn every_error_path_has_its_own_clear_message() {
    let mut sshd = Sshd::start();
    let mut home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let mut m = Mcp::start(&home, &[]);

    let (e, t, s) = m.call(
        "ssh_exec",
        json!({"op": "status", "commandId": "7e57e57e-0000-0000-0000-000000000000"}),
    );
    assert!(
        e && s["error"]["code"] == "not_found" && t.contains("ssh_exec op=list"),
        "{t}"
    );
    let (e, t, _) = m.call("ssh_exec", json!({"op": "run", "sessionId": "7e57e57e-0000-0000-0000-000000000000", "command": "true"}));
    assert!(e && t.contains("no session named"), "{t}");
    let (e, t, _) = m.call("ssh_exec", json!({"op": "open", "connectionId": "nope"}));
    assert!(e && t.contains("ssh_conn op=list"), "{t}");
    let (e, t, _) = m.call("ssh_exec", json!({"op": "run", "sessionId": "x"}));
    assert!(e && t.contains("needs command"), "{t}");
    let (e, t, _) = m.call("ssh_exec", json!({"op": "logs"}));
    assert!(e && t.contains("needs commandId"), "{t}");

    // Only `command` is ever run: ids and names are validated, options are quoted.
    let marker = home.dir.path().join("pwned");
    let (e, t, _) = m.call("ssh_exec", json!({"op": "run", "connectionId": format!("srv; touch {}", marker.display()), "command": "true"}));
    assert!(e && t.contains("invalid connection name"), "{t}");
    let r = m.ok("ssh_exec", json!({"op": "run", "connectionId": "srv", "cwd": format!("/tmp/$(touch {})", marker.display()), "command": "true"}));
    let st = m.wait_done(r["commandId"].as_str().expect("id"));
    assert_eq!(
        st["state"], "failed",
        "cd into a directory with that literal name fails: {st}"
    );
    assert!(
        !marker.exists(),
        "an argument other than command was run by a shell"
    );

    // Unreachable host.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    m.ok("ssh_conn", json!({"op": "save", "name": "down", "host": "127.0.0.1", "port": port, "username": "u", "keyName": "k"}));
    let (e, t, s) = m.call("ssh_exec", json!({"op": "open", "connectionId": "down"}));
    assert!(
        e && s["error"]["code"] == "unreachable" && t.contains("cannot reach"),
        "{t}"
    );

    // Refused host key.
    m.ok("ssh_exec", json!({"op": "open", "connectionId": "srv"}));
    sshd.restart(true);
    home.stop_broker();
    let (e, t, s) = m.call("ssh_exec", json!({"op": "open", "connectionId": "srv"}));
    assert!(e && s["error"]["code"] == "host_key_changed", "{t}");
    assert!(
        t.contains(&sshd.host_fingerprint()) && t.contains("do not re-pin it yourself"),
        "{t}"
    );
    // Replacing a pin is the user's decision: the adapter refuses, the CLI does it.
    let fp = sshd.host_fingerprint();
    let (e, t, s) = m.call(
        "ssh_conn",
        json!({"op": "trust", "connectionId": "srv", "fingerprint": fp}),
    );
    assert!(
        e && s["error"]["code"] == "host_key_change_needs_user"
            && t.contains("sshkeep conn trust srv"),
        "{t}"
    );
    let (e, _, _) = m.call("ssh_conn", json!({"op": "trust", "connectionId": "srv"}));
    assert!(e, "trust without a fingerprint is refused over MCP");
    home.run(&["conn", "trust", "srv", "--fingerprint", &fp])
        .ok();
    m.ok("ssh_exec", json!({"op": "open", "connectionId": "srv"}));

    // Locked vault: a broker without the passphrase file starts locked.
    drop(m);
    home.stop_broker();
    home.use_passphrase_file = false;
    let mut m = Mcp::start(&home, &[]);
    let (e, t, s) = m.call("ssh_exec", json!({"op": "open", "connectionId": "srv"}));
    assert!(e && s["error"]["code"] == "vault_locked", "{t}");
    assert!(
        t.contains("sshkeep unlock") && t.contains("an agent cannot unlock"),
        "{t}"
    );
    let st = m.ok("ssh_server_status", json!({}));
    assert_eq!(st["vault"]["unlocked"], false);
}

#[test]
fn big_replies_are_capped_and_say_where_to_go_on() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let mut m = Mcp::start(&home, &[]);
    let r = m.ok(
        "ssh_exec",
        json!({"op": "run", "connectionId": "srv", "command": "seq 1 20000"}),
    );
    let id = r["commandId"].as_str().expect("id").to_string();
    m.wait_done(&id);
    let (_, text, s) = m.call(
        "ssh_exec",
        json!({"op": "logs", "commandId": id, "maxBytes": 4096}),
    );
    assert_eq!(s["truncated"], true);
    let next = s["nextFromLine"].as_u64().expect("nextFromLine");
    assert!(text.contains(&format!("fromLine={next}")), "{text}");
    let mut seen = Mcp::log_lines(&text).len() as u64;
    assert_eq!(s["lines"], seen);
    let mut from = next;
    while seen < 20000 {
        let (_, text, s) = m.call(
            "ssh_exec",
            json!({"op": "logs", "commandId": id, "fromLine": from}),
        );
        let lines = Mcp::log_lines(&text);
        assert_eq!(lines[0].0, from, "paging loses nothing");
        assert_eq!(s["firstLine"], from);
        seen += lines.len() as u64;
        match s["nextFromLine"].as_u64() {
            Some(n) => from = n,
            None => break,
        }
    }
    assert_eq!(seen, 20000);
}

/// The Python interpreter with the official `mcp` package (scripts/test.sh makes it).
pub fn python_with_mcp() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("SSHKEEP_TEST_PYTHON") {
        return Some(p.into());
    }
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/mcp-venv/bin/python");
    p.exists().then_some(p)
}

/// Runs `tests/mcp/SCRIPT` with the official MCP Python SDK against this home's adapter, with
/// the binary and `args` as its arguments; asserts it succeeded and returns the JSON it printed
/// last. `None` (the test skips) where the SDK is not installed, which CI never allows.
pub fn run_sdk_script(home: &Home, script: &str, args: &[&std::ffi::OsStr]) -> Option<Value> {
    let Some(python) = python_with_mcp() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the MCP Python SDK: scripts/test.sh installs it in target/mcp-venv"
        );
        eprintln!(
            "skipped: run scripts/test.sh (it installs the `mcp` Python package in target/mcp-venv)"
        );
        return None;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp")
        .join(script);
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(crate::fixture::SSHKEEP)
        .args(args)
        .env("SSHKEEP_HOME", home.sshkeep_home())
        .env("HOME", home.user_home())
        .env("SSHKEEP_PASSPHRASE_FILE", &home.passphrase_file)
        .env("SSHKEEP_PROFILE", "unrestricted")
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("json"))
}

#[test]
fn the_official_python_mcp_sdk_drives_flow_1() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let Some(seen) = run_sdk_script(&home, "flow1.py", &["srv".as_ref()]) else {
        return;
    };
    assert_eq!(seen["flow1"], "ok");
    assert_eq!(seen["server"], "sshkeep");
}
