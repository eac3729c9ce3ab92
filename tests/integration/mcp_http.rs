//! `sshkeep mcp --http`: the official Python SDK's Streamable HTTP client against the real adapter,
//! broker and sshd, under bearer tokens the user made at a terminal; and the gates in front of it
//! (loopback, Host, Origin, tokens) seen from raw HTTP requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

use serde_json::Value;

use crate::approvals::at_terminal;
use crate::fixture::{Home, Sshd};
use crate::mcp::python_with_mcp;

/// `sshkeep mcp --http 127.0.0.1:0` in `home`, killed on drop.
struct HttpAdapter {
    child: Child,
    url: String,
    port: u16,
}

impl HttpAdapter {
    fn start(home: &Home) -> Self {
        let mut child = home
            .command(&["mcp", "--http", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sshkeep mcp --http");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the URL");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        let port = url
            .trim_start_matches("http://127.0.0.1:")
            .trim_end_matches("/mcp")
            .parse()
            .expect("port");
        Self { child, url, port }
    }

    /// Stops the adapter and returns what it wrote to stderr.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for HttpAdapter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An MCP `initialize` POSTed by hand with `headers`; the status code and body.
fn post(port: u16, headers: &[(&str, &str)]) -> (u16, String) {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(req.as_bytes()).expect("send");
    // Refusals are short and close the connection; a served request may stream, so read only
    // the head.
    let mut head = String::new();
    let mut r = BufReader::new(s);
    r.read_line(&mut head).expect("status line");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let mut rest = String::new();
    if status != 200 {
        let _ = r.read_to_string(&mut rest);
    }
    (status, rest)
}

/// Makes a token at a terminal (the vault passphrase typed) and returns its text.
fn make_token(home: &Home, name: &str, profile: &str) -> String {
    let (ok, text) = at_terminal(
        home,
        &format!("mcp token create {name} --profile {profile}"),
    );
    assert!(ok, "{text}");
    text.split_whitespace()
        .find(|w| w.starts_with("skp_"))
        .unwrap_or_else(|| panic!("no token in {text}"))
        .trim()
        .to_string()
}

#[test]
fn http_sessions_work_under_their_tokens_profiles_behind_loopback_origin_and_token_checks() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");

    // Only the user, at a terminal, makes tokens; a client under a profile never does.
    let r = home
        .run(&["mcp", "token", "create", "bot", "--profile", "readonly"])
        .fails();
    assert!(r.stderr.contains("terminal"), "{}", r.stderr);
    let full = make_token(&home, "full", "unrestricted");
    let ro = make_token(&home, "ro", "readonly");
    assert_ne!(full, ro);
    let r = home
        .run(&["--profile", "agent", "mcp", "token", "revoke", "ro"])
        .fails();
    assert!(r.stderr.contains("user's own"), "{}", r.stderr);

    // Loopback unless the user says otherwise.
    let r = home.run(&["mcp", "--http", "0.0.0.0:0"]).fails();
    assert!(r.stderr.contains("--allow-public"), "{}", r.stderr);

    let adapter = HttpAdapter::start(&home);
    let port = adapter.port;
    let bearer = |t: &str| format!("Bearer {t}");

    // The official SDK: tools listed and echo run under `unrestricted`, rm refused under
    // `readonly`.
    if let Some(python) = python_with_mcp() {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/streamable_http.py");
        let out = std::process::Command::new(python)
            .arg(script)
            .args([adapter.url.as_str(), "srv"])
            .env("SSHKEEP_TEST_TOKEN_FULL", &full)
            .env("SSHKEEP_TEST_TOKEN_RO", &ro)
            .output()
            .expect("python");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "stdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: Value =
            serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("json");
        assert_eq!(seen["server"], "sshkeep");
        assert!(seen["tools"].to_string().contains("ssh_exec"), "{seen}");
        assert_eq!(seen["echo"], "completed");
        assert_eq!(seen["readonly_rm"], "refused");
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the MCP Python SDK"
        );
        eprintln!("skipped the SDK part: run scripts/test.sh (it installs the `mcp` package)");
    }

    // A valid token passes the gates; no token, or a wrong one, gets 401.
    let (status, _) = post(port, &[("Authorization", &bearer(&full))]);
    assert_eq!(status, 200);
    let (status, body) = post(port, &[]);
    assert_eq!(status, 401, "{body}");
    let wrong = format!("skp_{}", "A".repeat(43));
    let (status, body) = post(port, &[("Authorization", &bearer(&wrong))]);
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains(&wrong), "{body}");

    // A page on another origin, or a rebound name, is refused even with a good token.
    let (status, body) = post(
        port,
        &[
            ("Authorization", &bearer(&full)),
            ("Origin", "http://evil.example"),
        ],
    );
    assert_eq!(status, 403, "{body}");
    let host = format!("evil.example:{port}");
    let (status, body) = post(port, &[("Authorization", &bearer(&full)), ("Host", &host)]);
    assert_eq!(status, 403, "{body}");

    // The user sees the tokens (used or not) and revokes one; it fails from then on.
    let list = home.run(&["mcp", "token", "list", "--json"]).ok().json();
    let names: Vec<(&str, &str, bool)> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default(),
                t["profile"].as_str().unwrap_or_default(),
                t["last_used"].is_i64(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("full", "unrestricted", true),
            ("ro", "readonly", python_with_mcp().is_some())
        ]
    );
    let (ok, text) = at_terminal(&home, "mcp token revoke full");
    assert!(ok, "{text}");
    let (status, _) = post(port, &[("Authorization", &bearer(&full))]);
    assert_eq!(status, 401);

    // Refusals are audited, and the token's text is nowhere sshkeep writes.
    let audit = home.run(&["audit", "--json"]).ok().stdout;
    assert!(audit.contains("mcp_token_refuse"), "{audit}");
    assert!(audit.contains("mcp_token_revoke"), "{audit}");
    let adapter_log = adapter.stop();
    let state = home.sshkeep_home().join("state");
    let mut places = vec![
        ("the audit", audit),
        ("the broker log", home.broker_log()),
        ("the adapter's stderr", adapter_log),
    ];
    for entry in std::fs::read_dir(&state).expect("state dir").flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            places.push((
                "a state file",
                format!(
                    "{}\n{}",
                    entry.path().display(),
                    String::from_utf8_lossy(&bytes)
                ),
            ));
        }
    }
    for (what, text) in &places {
        for t in [&full, &ro, &wrong] {
            assert!(!text.contains(t.as_str()), "a token's text is in {what}");
        }
    }
    assert!(
        places.iter().any(|(_, t)| t.contains("sshkeep.db")),
        "the database was searched"
    );
}
