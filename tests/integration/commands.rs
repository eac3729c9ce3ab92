//! Asynchronous commands: sessions, queueing under MaxSessions, stored logs and their filters,
//! cancel and timeout.

use crate::fixture::{Home, Sshd, SshdOptions, processes_matching, wait_for};

#[test]
fn sequential_commands_on_one_session_and_shared_between_clients() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let sid = home
        .run(&["session", "open", "srv"])
        .ok()
        .stdout
        .trim()
        .to_string();

    let a = home.start(&[&sid, "--", "echo first; echo warn >&2"]);
    let a_st = home.wait_done(&a, 60);
    assert_eq!(a_st["state"], "completed");
    assert_eq!(a_st["exit_code"], 0);
    assert_eq!(a_st["session_id"], sid.as_str());
    // A second client process reuses the session the first one opened.
    let b = home.start(&[
        &sid,
        "--then",
        "echo second",
        "--then",
        "false",
        "--then",
        "echo never",
    ]);
    let b_st = home.wait_done(&b, 60);
    assert_eq!(
        b_st["state"], "failed",
        "a list stops at the first failure: {b_st}"
    );
    assert_eq!(b_st["exit_code"], 1);
    let logs = home.run(&["logs", &b]).ok().stdout;
    assert_eq!(logs, "second\n");

    let logs = home.run(&["logs", &a, "--json"]).ok().json();
    let lines = logs.as_array().expect("lines");
    // Every line is numbered and labelled with its stream. (A server's login scripts may add
    // stderr lines of their own, so the command's lines are picked out by text.)
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["n"], i as u64 + 1);
    }
    let first = lines.iter().find(|l| l["text"] == "first").expect("first");
    assert_eq!(first["stream"], "stdout");
    let warn = lines.iter().find(|l| l["text"] == "warn").expect("warn");
    assert_eq!(warn["stream"], "stderr");
    assert_eq!(lines.iter().filter(|l| l["stream"] == "stdout").count(), 1);

    let sessions = home.run(&["session", "list", "--json"]).ok().json();
    let s = sessions
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["session_id"] == sid.as_str())
        .expect("our session")
        .clone();
    assert_eq!(s["state"], "open");
    assert_eq!(s["commands_running"], 0);
    assert_eq!(
        sshd.log().matches("Accepted publickey").count(),
        1,
        "one login for all of it"
    );

    home.run(&["session", "close", &sid]).ok();
    let r = home.run(&["run", &sid, "--", "true"]).fails();
    assert!(r.stderr.contains("no session named"), "{}", r.stderr);
}

#[test]
fn twenty_concurrent_commands_on_a_server_allowing_two_sessions_all_complete() {
    let sshd = Sshd::start_with(SshdOptions {
        max_sessions: Some(2),
        ..Default::default()
    });
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let sid = home
        .run(&["session", "open", "srv"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let ids: Vec<String> = (0..20)
        .map(|i| home.start(&[&sid, "--", &format!("sleep 0.3; echo job-{i}")]))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let st = home.wait_done(id, 120);
        assert_eq!(st["state"], "completed", "job {i}: {st}");
        assert_eq!(home.run(&["logs", id]).ok().stdout, format!("job-{i}\n"));
    }
    let sessions = home.run(&["session", "list", "--json"]).ok().json();
    assert_eq!(
        sessions[0]["channel_limit"], 2,
        "the server's MaxSessions was learned: {sessions}"
    );
    assert_eq!(
        sessions[0]["channels_in_use"], 0,
        "every channel was closed"
    );
}

#[test]
fn every_log_filter_works_and_big_replies_say_where_to_go_on() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let id = home.start(&["srv", "--", "for i in $(seq 1 100); do echo \"out $i\"; [ $((i % 10)) -eq 0 ] && echo \"error at $i\" >&2; done; true"]);
    assert_eq!(home.wait_done(&id, 60)["state"], "completed");
    let texts = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["logs", id.as_str(), "--json"];
        full.extend_from_slice(args);
        home.run(&full)
            .ok()
            .json()
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| l["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    // (Lines are picked out by text where a server's login scripts could add stderr lines.)
    let ours = ["--grep", "^(out|error at) [0-9]+$"];
    assert_eq!(texts(&ours).len(), 110);
    assert_eq!(
        texts(&["--stream", "stderr", "--grep", "^error at"]).len(),
        10
    );
    assert_eq!(texts(&["--stream", "stdout"]).len(), 100);
    assert_eq!(
        texts(&["--grep", "^error at [1-3]0$"]),
        vec!["error at 10", "error at 20", "error at 30"]
    );
    assert_eq!(
        texts(&["--stream", "stdout", "--head", "2"]),
        vec!["out 1", "out 2"]
    );
    // (stdout and stderr are separate pipes: their relative order is the server's business)
    assert_eq!(
        texts(&["--stream", "stdout", "--tail", "2"]),
        vec!["out 99", "out 100"]
    );
    assert_eq!(texts(&["--tail", "1"]).len(), 1);
    assert_eq!(
        texts(&["--grep", "error", "--tail", "1"]),
        vec!["error at 100"]
    );
    let out1 = home
        .run(&["logs", &id, "--grep", "^out 1$", "--json"])
        .ok()
        .json()[0]["n"]
        .as_u64()
        .expect("n");
    let (from, to) = ((out1 + 2).to_string(), (out1 + 3).to_string());
    assert_eq!(
        texts(&["--from-line", &from, "--to-line", &to]),
        vec!["out 3", "out 4"]
    );
    let r = home.run(&["logs", &id, "--grep", "("]).fails();
    assert!(
        r.stderr.contains("not a valid regular expression"),
        "{}",
        r.stderr
    );
    let r = home.run(&["logs", "no-such-id"]).fails();
    assert!(r.stderr.contains("no command named"), "{}", r.stderr);

    // A small reply cap: the page is cut, says where to go on, and following it loses nothing.
    home.run(&["config", "set", "logs_reply_max_bytes", "1024"])
        .ok();
    let page = raw_logs(&home, &id, None);
    assert_eq!(page["truncated"], true);
    let next = page["next_from_line"].as_u64().expect("next_from_line");
    assert_eq!(
        page["lines"].as_array().expect("lines").len() as u64,
        next - 1
    );
    // The CLI pages through by itself.
    assert_eq!(texts(&ours).len(), 110);
}

/// One raw `logs` reply, through the protocol (the CLI pages through cut replies by itself).
fn raw_logs(home: &Home, id: &str, from: Option<u64>) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut s =
        std::os::unix::net::UnixStream::connect(home.sshkeep_home().join("run/broker.sock"))
            .expect("connect");
    let mut send = |v: serde_json::Value| {
        let body = v.to_string();
        s.write_all(&(body.len() as u32).to_be_bytes())
            .expect("write");
        s.write_all(body.as_bytes()).expect("write");
        let mut len = [0u8; 4];
        s.read_exact(&mut len).expect("read");
        let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).expect("read");
        serde_json::from_slice::<serde_json::Value>(&buf).expect("json")
    };
    send(
        serde_json::json!({"type": "hello", "version": sshkeep::protocol::PROTOCOL_VERSION, "client": "test"}),
    );
    send(serde_json::json!({"type": "command_logs", "command_id": id, "from_line": from}))
}

#[test]
fn cancel_and_timeout_kill_the_remote_process_tree() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    // Sleep lengths unique to this run, so no other process on the machine matches.
    let (a, b) = (format!("{}1", sshd.port), format!("{}2", sshd.port));
    let remaining = |a: &str, b: &str| -> Vec<String> {
        [a, b]
            .iter()
            .flat_map(|n| processes_matching(&format!("sleep {n}")))
            .map(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .unwrap_or_default()
                    .replace('\0', " ")
            })
            .collect()
    };
    let id = home.start(&["srv", "--", &format!("sleep {a} & sleep {b}; wait")]);
    wait_for(60, "the remote sleeps to start", || {
        (remaining(&a, &b).len() >= 2).then_some(())
    });
    let r = home.run(&["cancel", &id, "--json"]).ok().json();
    assert_eq!(r["state"], "cancelled");
    let left = remaining(&a, &b);
    assert!(
        left.is_empty(),
        "cancel must kill the command and its children: {left:?}"
    );
    let r = home.run(&["cancel", &id]).fails();
    assert!(r.stderr.contains("already ended"), "{}", r.stderr);

    let (a, b) = (format!("{}3", sshd.port), format!("{}4", sshd.port));
    let id = home.start(&[
        "srv",
        "--timeout",
        "1",
        "--",
        &format!("sleep {a} & sleep {b}; wait"),
    ]);
    let st = home.wait_done(&id, 60);
    assert_eq!(st["state"], "timed_out");
    wait_for(10, "the timed-out processes to go", || {
        remaining(&a, &b).is_empty().then_some(())
    });
    // The broker's note comes on the CLI's stderr: stdout is only what the command printed.
    let logs = home.run(&["logs", &id]).ok().stderr;
    assert!(
        logs.contains("timed out"),
        "the log says why it ended: {logs}"
    );
}

#[test]
fn options_cwd_env_stdin_and_pty() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let dir = sshd.dir.path().join("work dir");
    std::fs::create_dir(&dir).expect("mkdir");
    let cwd = dir.display().to_string();
    let id = home.start(&[
        "srv",
        "--cwd",
        &cwd,
        "--env",
        "GREETING=it's $HOME",
        "--",
        "pwd; echo \"$GREETING\"",
    ]);
    home.wait_done(&id, 60);
    assert_eq!(
        home.run(&["logs", &id]).ok().stdout,
        format!("{cwd}\nit's $HOME\n")
    );

    let mut child = home
        .command(&["run", "srv", "--stdin", "--", "tr a-z A-Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"secret words\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    home.wait_done(&id, 60);
    assert_eq!(home.run(&["logs", &id]).ok().stdout, "SECRET WORDS\n");
    let db = std::fs::read(home.sshkeep_home().join("state/sshkeep.db")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&db).contains("secret words"),
        "stdin text is never stored"
    );

    let id = home.start(&["srv", "--pty", "--", "tty"]);
    assert_eq!(home.wait_done(&id, 60)["state"], "completed");
    assert!(
        home.run(&["logs", &id])
            .ok()
            .stdout
            .starts_with("/dev/pts/")
    );

    let r = home
        .run(&["run", "srv", "--env", "BAD;NAME=x", "--", "true"])
        .fails();
    assert!(
        r.stderr.contains("invalid environment variable name"),
        "{}",
        r.stderr
    );
}

#[test]
fn login_script_noise_before_the_command_does_not_hide_the_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let noise = dir.path().join("noise.sh");
    std::fs::write(&noise, "echo 'login script says hello' >&2\n").expect("write");
    // bash sources $BASH_ENV before running a command, like a chatty .bashrc.
    let sshd = Sshd::start_with(SshdOptions {
        extra: vec![format!("SetEnv BASH_ENV={}", noise.display())],
        ..Default::default()
    });
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let n = format!("{}7", sshd.port);
    let id = home.start(&["srv", "--", &format!("echo started; sleep {n}")]);
    wait_for(60, "the sleep to start", || {
        (!processes_matching(&format!("sleep {n}")).is_empty()).then_some(())
    });
    wait_for(60, "output", || {
        (home.status(&id)["stdout"]["lines"] == 1).then_some(())
    });
    let r = home.run(&["cancel", &id, "--json"]).ok().json();
    assert_eq!(r["state"], "cancelled");
    assert!(
        processes_matching(&format!("sleep {n}")).is_empty(),
        "the process group was found and killed"
    );
    let logs = home.run(&["logs", &id, "--json"]).ok().json();
    let texts: Vec<&str> = logs
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert!(
        !texts.iter().any(|t| t.contains("sshkeep-pgid")),
        "the marker never reaches the log: {texts:?}"
    );
    assert!(texts.contains(&"started"));
}
