//! Interactive shells against a real sshd: an agent answering a prompt, a full-screen program,
//! resize, a tmux-backed shell surviving a dropped connection, and a person's terminal.

use std::process::{Command, Stdio};

use serde_json::json;

use crate::fixture::{Home, Sshd, has_tool, wait_for};
use crate::mcp::Mcp;

/// Types `text` (with Enter) until `pattern` shows: a program that is ending may flush what was
/// typed ahead (bash after an interrupt, top when it restores the terminal), as it would for a
/// person, who would type it again.
fn type_until(mcp: &mut Mcp, id: &str, text: &str, pattern: &str) -> serde_json::Value {
    wait_for(60, &format!("{pattern} after typing {text}"), || {
        mcp.ok(
            "ssh_shell",
            json!({"op": "send", "shellId": id, "text": text, "enter": true}),
        );
        let w = mcp.ok(
            "ssh_shell",
            json!({"op": "wait", "shellId": id, "pattern": pattern, "timeout": 3}),
        );
        (w["matched"] == true).then_some(w)
    })
}

#[test]
fn an_agent_answers_a_prompt_reads_a_full_screen_program_and_resizes() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let mut mcp = Mcp::start(&home, &[]);
    let open = mcp.ok(
        "ssh_shell",
        json!({"op": "open", "connectionId": "srv", "cols": 100, "rows": 30, "persist": false}),
    );
    let id = open["shellId"].as_str().expect("shellId").to_string();
    assert_eq!(open["persistent"], false);
    assert_eq!(open["state"], "open");

    // The prompt text is built by printf so that the echoed command line does not match it.
    mcp.ok("ssh_shell", json!({"op": "send", "shellId": id, "text": "read -r -p \"$(printf 'Na%s? ' me)\" n; echo \"hello, $n!\"", "enter": true}));
    let w = mcp.ok(
        "ssh_shell",
        json!({"op": "wait", "shellId": id, "pattern": "Name\\? ", "timeout": 20}),
    );
    assert_eq!(w["matched"], true, "{w}");
    mcp.ok(
        "ssh_shell",
        json!({"op": "send", "shellId": id, "text": "world", "enter": true}),
    );
    let w = mcp.ok(
        "ssh_shell",
        json!({"op": "wait", "shellId": id, "pattern": "hello, world!", "timeout": 20}),
    );
    assert_eq!(w["matched"], true, "{w}");
    // A wait that cannot match ends at its timeout with matched=false.
    let w = mcp.ok(
        "ssh_shell",
        json!({"op": "wait", "shellId": id, "pattern": "never-printed-\\d{9}", "timeout": 1}),
    );
    assert_eq!(w["matched"], false);

    // Resize, then ask the terminal for its size.
    mcp.ok(
        "ssh_shell",
        json!({"op": "resize", "shellId": id, "cols": 132, "rows": 43}),
    );
    mcp.ok(
        "ssh_shell",
        json!({"op": "send", "shellId": id, "text": "stty size", "enter": true}),
    );
    let w = mcp.ok(
        "ssh_shell",
        json!({"op": "wait", "shellId": id, "pattern": "(?m)^43 132$", "timeout": 20}),
    );
    assert_eq!(w["matched"], true, "{w}");

    // A full-screen program: its screen as a terminal shows it, then quit with a key.
    mcp.ok(
        "ssh_shell",
        json!({"op": "send", "shellId": id, "text": "top -d 1", "enter": true}),
    );
    let w = mcp.ok(
        "ssh_shell",
        json!({"op": "wait", "shellId": id, "pattern": "PID +USER", "screen": true, "timeout": 30}),
    );
    assert_eq!(w["matched"], true, "{w}");
    let screen = w["screen"].as_str().expect("screen");
    assert!(screen.contains("load average"), "{screen}");
    assert!(!screen.contains('\u{1b}'), "the screen is plain text");
    mcp.ok("ssh_shell", json!({"op": "key", "shellId": id, "key": "q"}));
    // top flushes typed-ahead input when it restores the terminal, as it does for a person.
    type_until(&mut mcp, &id, "echo back-$((6*7))", "(?m)^back-42");
    // ctrl-c interrupts a foreground program. (bash drops what was typed while it handled the
    // interrupt, so the follow-up is typed again until it shows, as a person would.)
    mcp.ok("ssh_shell", json!({"op": "send", "shellId": id, "text": "sh -c 'echo started-$((3*3)); exec sleep 300'; echo slept", "enter": true}));
    let w = mcp.ok(
        "ssh_shell",
        json!({"op": "wait", "shellId": id, "pattern": "(?m)^started-9", "timeout": 20}),
    );
    assert_eq!(w["matched"], true, "{w}");
    mcp.ok(
        "ssh_shell",
        json!({"op": "key", "shellId": id, "key": "ctrl-c"}),
    );
    let w = type_until(&mut mcp, &id, "echo after-$((1+1))", "(?m)^after-2");
    assert!(!w["text"].as_str().unwrap_or("").contains("\nslept"));

    // The output is stored like a command's and read with the same filters.
    // (The lines come once, in the text: `N: TEXT`; the structured part has the counts.)
    let logs = wait_for(20, "stored shell output", || {
        let (err, text, facts) = mcp.call(
            "ssh_shell",
            json!({"op": "read", "shellId": id, "grep": "^hello, world!$"}),
        );
        (!err
            && facts["lines"].as_u64().unwrap_or(0) > 0
            && text.lines().any(|l| l.ends_with(": hello, world!")))
        .then_some(text)
    });
    assert!(
        logs.lines().any(|l| l.ends_with(": hello, world!")),
        "{logs}"
    );
    let (err, text, _) = mcp.call(
        "ssh_shell",
        json!({"op": "key", "shellId": id, "key": "hyperspace"}),
    );
    assert!(err && text.contains("unknown key"), "{text}");

    // Exit: the shell reports its exit status, and input is refused after.
    mcp.ok(
        "ssh_shell",
        json!({"op": "send", "shellId": id, "text": "exit 7", "enter": true}),
    );
    let st = wait_for(20, "the shell to exit", || {
        let s = mcp.ok("ssh_shell", json!({"op": "status", "shellId": id}));
        (s["state"] == "exited").then_some(s)
    });
    assert_eq!(st["exitCode"], 7);
    let (err, text, _) = mcp.call(
        "ssh_shell",
        json!({"op": "send", "shellId": id, "text": "x"}),
    );
    assert!(err && text.contains("has ended"), "{text}");
    let (err, _, s) = mcp.call("ssh_shell", json!({"op": "status", "shellId": "nope"}));
    assert!(err && s["error"]["code"] == "not_found", "{s}");
}

#[test]
fn a_tmux_shell_survives_a_dropped_connection() {
    if !has_tool("tmux") {
        eprintln!("tmux is not installed: skipping (scripts/test.sh installs it)");
        return;
    }
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to_with(
        &sshd,
        "k",
        "srv",
        &["--keepalive-interval", "1", "--keepalive-max", "2"],
    );
    let mut mcp = Mcp::start(&home, &[]);
    let open = mcp.ok("ssh_shell", json!({"op": "open", "connectionId": "srv"}));
    let id = open["shellId"].as_str().expect("shellId").to_string();
    assert_eq!(open["persistent"], true, "{open}");
    mcp.ok("ssh_shell", json!({"op": "send", "shellId": id, "text": "X=kept-$((40+2)); echo set-$X", "enter": true}));
    let w = mcp.ok(
        "ssh_shell",
        json!({"op": "wait", "shellId": id, "pattern": "set-kept-42", "timeout": 20}),
    );
    assert_eq!(w["matched"], true, "{w}");

    sshd.drop_connections();
    let st = wait_for(60, "the shell to re-attach", || {
        let s = mcp.ok("ssh_shell", json!({"op": "status", "shellId": id}));
        (s["reconnects"].as_u64()? >= 1 && s["state"] == "open").then_some(s)
    });
    assert_eq!(st["persistent"], true);
    mcp.ok(
        "ssh_shell",
        json!({"op": "send", "shellId": id, "text": "echo still-$X", "enter": true}),
    );
    let w = mcp.ok(
        "ssh_shell",
        json!({"op": "wait", "shellId": id, "pattern": "still-kept-42", "timeout": 30}),
    );
    assert_eq!(w["matched"], true, "the shell's state survived: {w}");
    // Signal reaches the foreground job inside tmux.
    mcp.ok("ssh_shell", json!({"op": "send", "shellId": id, "text": "sh -c 'echo started-$((3*3)); exec sleep 300'; echo slept", "enter": true}));
    let w = mcp.ok(
        "ssh_shell",
        json!({"op": "wait", "shellId": id, "pattern": "(?m)^started-9", "timeout": 20}),
    );
    assert_eq!(w["matched"], true, "{w}");
    mcp.ok(
        "ssh_shell",
        json!({"op": "signal", "shellId": id, "signal": "INT"}),
    );
    type_until(&mut mcp, &id, "echo woke-$((2+3))", "(?m)^woke-5");

    let closed = mcp.ok("ssh_shell", json!({"op": "close", "shellId": id}));
    assert_eq!(closed["state"], "closed");
    let gone = Command::new("tmux")
        .args(["has-session", "-t", &format!("sshkeep-{id}")])
        .stderr(Stdio::null())
        .status()
        .expect("tmux");
    assert!(!gone.success(), "closing the shell ends its tmux session");
}

#[test]
fn a_person_gets_a_real_terminal_with_the_exit_status() {
    if !has_tool("script") {
        eprintln!("script (util-linux) is not installed: skipping");
        return;
    }
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    // `script` gives the client a pseudo-terminal, as a person's terminal would.
    let mut child = home.in_terminal("shell srv");
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().expect("stdin");
        std::thread::sleep(std::time::Duration::from_secs(2));
        stdin
            .write_all(b"stty size; echo tty-$((20+1)); exit 3\r")
            .expect("write");
    }
    let out = wait_for(60, "the shell to end", || child.try_wait().ok().flatten());
    let mut stdout = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read");
    assert!(stdout.contains("tty-21"), "{stdout}");
    assert_eq!(
        out.code(),
        Some(3),
        "the remote exit status is the client's: {stdout}"
    );
    // The shell the terminal opened is gone with it.
    let shells = home.run(&["shell", "--list", "--json"]).ok().json();
    assert!(
        shells
            .as_array()
            .expect("list")
            .iter()
            .all(|s| s["state"] != "open"),
        "{shells}"
    );
}

#[test]
fn tmux_shells_are_re_adopted_after_the_broker_is_killed_or_stopped() {
    if !has_tool("tmux") {
        eprintln!("tmux is not installed: skipping (scripts/test.sh installs it)");
        return;
    }
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let mut mcp = Mcp::start(&home, &[]);
    let open = mcp.ok(
        "ssh_shell",
        json!({"op": "open", "connectionId": "srv", "persist": true}),
    );
    let id = open["shellId"].as_str().expect("shellId").to_string();
    mcp.ok("ssh_shell", json!({"op": "send", "shellId": id, "text": "Y=adopted-$((6*7)); echo set-$Y", "enter": true}));
    let w = mcp.ok(
        "ssh_shell",
        json!({"op": "wait", "shellId": id, "pattern": "set-adopted-42", "timeout": 20}),
    );
    assert_eq!(w["matched"], true, "{w}");

    for how in ["kill -9", "broker stop"] {
        if how == "kill -9" {
            let pid = home.broker_pid();
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        } else {
            home.stop_broker();
        }
        // The adapter starts a new broker on its next call; that broker re-adopts the shell.
        let st = wait_for(60, "the shell to be re-adopted", || {
            let (err, _, s) = mcp.call("ssh_shell", json!({"op": "status", "shellId": id}));
            (!err && s["state"] == "open").then_some(s)
        });
        assert_eq!(st["persistent"], true, "after {how}: {st}");
        mcp.ok(
            "ssh_shell",
            json!({"op": "send", "shellId": id, "text": "echo again-$Y", "enter": true}),
        );
        let w = mcp.ok(
            "ssh_shell",
            json!({"op": "wait", "shellId": id, "pattern": "again-adopted-42", "timeout": 30}),
        );
        assert_eq!(w["matched"], true, "the shell's state survived {how}: {w}");
    }
    // The broker's notes come on the CLI's stderr (stdout is only what the shell printed). The
    // note of the broker that was stopped was written as it stopped; a running shell's latest
    // lines are stored once its output pauses (a fraction of a second), so the second may lag.
    let logs = wait_for(30, "both notes stored", || {
        let logs = home
            .run(&["logs", &id, "--grep", "broker restarted"])
            .ok()
            .stderr;
        (logs.lines().count() == 2).then_some(logs)
    });
    assert_eq!(logs.lines().count(), 2, "{logs}");
    mcp.ok("ssh_shell", json!({"op": "close", "shellId": id}));
}
