//! Authority end to end: an MCP adapter under the `agent` profile (real sshd, real JSON-RPC),
//! what waits for approval, what is refused, and the user approving from a terminal.

use std::io::Write;

use serde_json::{Value, json};

use crate::fixture::{Home, Sshd};
use crate::mcp::Mcp;

fn agent(home: &Home, profile: &str) -> Mcp {
    let dir = home.user_home();
    Mcp::start_in(home, &dir, &["--profile", profile])
}

/// `sshkeep ARGS` at a terminal, with the vault passphrase typed when asked.
pub fn at_terminal(home: &Home, args: &str) -> (bool, String) {
    let mut child = home.in_terminal(args);
    let pass = std::fs::read_to_string(&home.passphrase_file).expect("passphrase");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = writeln!(stdin, "{}", pass.trim_end());
    let out = child.wait_with_output().expect("script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn exists(home: &Home, path: &str) -> bool {
    home.run(&["exec", "srv", "--", "test", "-e", path]).code == 0
}

fn run(m: &mut Mcp, command: &str) -> Value {
    m.ok(
        "ssh_exec",
        json!({"op": "run", "connectionId": "srv", "command": command}),
    )
}

#[test]
fn the_agent_profile_runs_reads_and_holds_every_way_of_removing_a_file() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let f = "/tmp/sshkeep-approval-target";
    home.run(&["exec", "srv", "--", "touch", f]).ok();
    let mut m = agent(&home, "agent");

    let r = run(&mut m, "ls /tmp");
    assert_ne!(r["state"], "awaiting_approval", "{r}");
    let done = m.wait_done(r["commandId"].as_str().expect("id"));
    assert_eq!(done["state"], "completed", "{done}");

    let b64 = "cm0gLWYgL3RtcC9zc2hrZWVwLWFwcHJvdmFsLXRhcmdldAo="; // rm -f F
    let attempts = [
        format!("rm -f {f}"),
        format!("ls; rm -f {f}"),
        format!("true && rm -f {f}"),
        format!("echo $(rm -f {f})"),
        format!("sh -c 'rm -f {f}'"),
        "find /tmp -name sshkeep-approval-target -delete".to_string(),
        format!("echo {f} | xargs rm -f"),
        format!("echo {b64} | base64 -d | sh"),
        format!("cp /dev/null {f}"),
        "python3 -c 'import os; os.remove(\"/tmp/sshkeep-approval-target\")'".to_string(),
    ];
    let mut held = Vec::new();
    for a in &attempts {
        let r = run(&mut m, a);
        assert_eq!(r["state"], "awaiting_approval", "{a} was not held: {r}");
        assert!(r["reason"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
        held.push(r["commandId"].as_str().expect("id").to_string());
    }
    assert!(exists(&home, f), "nothing ran before approval");
    let s = m.ok("ssh_exec", json!({"op": "status", "commandId": held[0]}));
    assert_eq!(s["state"], "awaiting_approval", "{s}");

    // Nothing an agent can call approves, or does an owner's work.
    let (e, t, _) = m.call("ssh_exec", json!({"op": "approve", "commandId": held[0]}));
    assert!(e, "{t}");
    let (e, t, _) = m.call("ssh_key", json!({"op": "remove", "keyName": "k"}));
    assert!(e && t.contains("user's own"), "{t}");
    let (e, t, _) = m.call("ssh_conn", json!({"op": "remove", "connectionId": "srv"}));
    assert!(e, "{t}");
    // Re-pointing a saved connection would carry the user's own later work elsewhere.
    let (e, t, _) = m.call(
        "ssh_conn",
        json!({"op": "save", "name": "srv", "host": "127.0.0.2", "username": "x"}),
    );
    assert!(e && t.contains("user's own"), "{t}");

    // The user's CLI without a terminal (an agent's shell tool) cannot approve.
    let r = home.run(&["approve", &held[0]]).fails();
    assert!(r.stderr.contains("no terminal"), "{}", r.stderr);
    let pending = home.run(&["approvals", "--json"]).ok().json();
    assert_eq!(pending.as_array().map(Vec::len), Some(attempts.len()));

    // Denied: nothing runs, the agent sees why.
    let (ok, text) = at_terminal(&home, &format!("deny {} --reason no", held[1]));
    assert!(ok, "{text}");
    let s = m.ok("ssh_exec", json!({"op": "status", "commandId": held[1]}));
    assert_eq!(s["state"], "denied", "{s}");

    // Approved at a terminal with the passphrase: it runs, and the audit says who approved.
    let (ok, text) = at_terminal(&home, &format!("approve {}", held[0]));
    assert!(ok, "{text}");
    let done = m.wait_done(&held[0]);
    assert_eq!(done["state"], "completed", "{done}");
    assert!(!exists(&home, f), "the approved command ran");
    let audit = home
        .run(&["audit", "--op", "approval_grant", "--json"])
        .ok()
        .json();
    let detail = audit[0]["detail"].as_str().unwrap_or_default().to_string();
    assert!(
        detail.contains("the user at") && detail.contains("passphrase"),
        "{audit}"
    );

    // A shell: a line sent with Enter is judged like a command; keystrokes need a profile that
    // allows them (the agent profile does not), and a removal typed into a shell cannot wait,
    // so the agent is told to start it as a run.
    let open = m.ok(
        "ssh_shell",
        json!({"op": "open", "connectionId": "srv", "persist": false}),
    );
    let shell = open["shellId"].as_str().expect("shellId").to_string();
    let (e, t, _) = m.call(
        "ssh_shell",
        json!({"op": "send", "shellId": shell, "text": "rm -f /tmp/x", "enter": false}),
    );
    assert!(e && t.contains("raw keystrokes"), "{t}");
    let (e, t, _) = m.call(
        "ssh_shell",
        json!({"op": "send", "shellId": shell, "text": format!("rm -f {f}"), "enter": true}),
    );
    assert!(e && t.contains("ssh_exec"), "{t}");
    m.ok(
        "ssh_shell",
        json!({"op": "send", "shellId": shell, "text": "ls /tmp", "enter": true}),
    );
    m.ok("ssh_shell", json!({"op": "close", "shellId": shell}));
}

#[test]
fn readonly_refuses_outright_and_a_scoped_profile_with_a_quota_stays_in_its_lane() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    home.run(&["client", "assign", "acme", "srv"]).ok();
    home.run(&[
        "conn",
        "save",
        "other",
        "--host",
        "127.0.0.1",
        "--port",
        &sshd.port.to_string(),
        "--user",
        "nobody",
    ])
    .ok();

    let mut ro = agent(&home, "readonly");
    let (e, t, _) = ro.call(
        "ssh_exec",
        json!({"op": "run", "connectionId": "srv", "command": "rm -f /tmp/x"}),
    );
    assert!(e && t.contains("refused"), "{t}");
    let (e, t, _) = ro.call(
        "ssh_file",
        json!({"op": "write", "connectionId": "srv", "path": "/tmp/x", "content": "x"}),
    );
    assert!(e && t.contains("refused"), "{t}");
    let r = run(&mut ro, "uname -a");
    assert_eq!(
        ro.wait_done(r["commandId"].as_str().expect("id"))["state"],
        "completed"
    );
    drop(ro);

    // Creating a profile is an owner action: refused without a terminal, done at one.
    home.run(&[
        "profile",
        "create",
        "acme-ops",
        "--from",
        "unrestricted",
        "--clients",
        "acme",
    ])
    .fails();
    let (ok, text) = at_terminal(
        &home,
        "profile create acme-ops --from unrestricted --clients acme --per-hour 2",
    );
    assert!(ok, "{text}");
    let mut ops = agent(&home, "acme-ops");
    let status = ops.ok("ssh_server_status", json!({}));
    assert!(status.to_string().contains("acme-ops"), "{status}");
    let (e, t, _) = ops.call(
        "ssh_exec",
        json!({"op": "run", "connectionId": "other", "command": "true"}),
    );
    assert!(e && t.contains("other"), "out of reach: {t}");
    // The same server by its address is the same saved connection, judged as such.
    let (e, t, _) = ops.call(
        "ssh_exec",
        json!({"op": "run", "connectionId": format!("nobody@127.0.0.1:{}", sshd.port), "command": "true"}),
    );
    assert!(e && t.contains("other"), "out of reach by address: {t}");
    for _ in 0..2 {
        let r = run(&mut ops, "rm -f /tmp/sshkeep-nothing-here");
        assert_ne!(r["state"], "awaiting_approval", "{r}");
    }
    let (e, t, _) = ops.call(
        "ssh_exec",
        json!({"op": "run", "connectionId": "srv", "command": "true"}),
    );
    assert!(
        e && t.contains("2 commands an hour"),
        "the third is stopped: {t}"
    );

    // A key linked to a connection out of reach does not come into reach by saving a new
    // connection with it, and client groups are the user's to change.
    home.run(&["key", "generate", "k2"]).ok();
    home.run(&["key", "link", "k2", "other"]).ok();
    let (e, t, _) = ops.call(
        "ssh_conn",
        json!({"op": "save", "name": "sneaky", "host": "127.0.0.1", "port": sshd.port,
               "username": "nobody", "keyName": "k2"}),
    );
    assert!(e && t.contains("linked to connection 'other'"), "{t}");
    let (e, t, _) = ops.call(
        "ssh_client",
        json!({"op": "assign", "client": "acme", "connectionId": "other"}),
    );
    assert!(e && t.contains("user's own"), "{t}");
}

#[test]
fn the_official_python_mcp_sdk_sees_a_removal_wait_under_the_agent_profile() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let Some(seen) = crate::mcp::run_sdk_script(&home, "approval.py", &["srv".as_ref()]) else {
        return;
    };
    assert_eq!(seen["approval"], "held");
}
