//! What a real network and a real crash do: a server killed mid-command, a frozen server, a
//! dropped connection, and `kill -9` of the broker.

use crate::fixture::{Home, Sshd, wait_for};

fn session_state(home: &Home, sid: &str) -> String {
    let all = home.run(&["session", "list", "--json"]).ok().json();
    all.as_array()
        .and_then(|a| a.iter().find(|s| s["session_id"] == sid))
        .map(|s| s["state"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| "gone".into())
}

#[test]
fn server_killed_mid_command_fails_clearly_and_the_session_reconnects() {
    let mut sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let sid = home
        .run(&["session", "open", "srv"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let id = home.start(&[&sid, "--", "echo started; sleep 600"]);
    wait_for(60, "output", || {
        (home.status(&id)["stdout"]["lines"] == 1).then_some(())
    });

    sshd.stop();
    let st = home.wait_done(&id, 60);
    assert_eq!(st["state"], "failed");
    let err = st["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("lost while the command ran") && err.contains("srv"),
        "{err}"
    );
    assert_eq!(
        home.run(&["logs", &id]).ok().stdout,
        "started\n",
        "output before the crash is kept"
    );

    sshd.restart(false);
    wait_for(120, "the session to reconnect", || {
        (session_state(&home, &sid) == "open").then_some(())
    });
    let id = home.start(&[&sid, "--", "echo back"]);
    assert_eq!(home.wait_done(&id, 60)["state"], "completed");
    let all = home.run(&["session", "list", "--json"]).ok().json();
    assert!(all[0]["reconnects"].as_u64().unwrap_or_default() >= 1);
}

#[test]
fn a_frozen_server_is_detected_by_keepalive() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to_with(
        &sshd,
        "k",
        "srv",
        &["--keepalive-interval", "1", "--keepalive-max", "2"],
    );
    let id = home.start(&["srv", "--", "echo started; sleep 600"]);
    wait_for(60, "output", || {
        (home.status(&id)["stdout"]["lines"] == 1).then_some(())
    });
    sshd.signal_all("STOP");
    let st = home.wait_done(&id, 60);
    sshd.signal_all("CONT");
    assert_eq!(st["state"], "failed");
    let err = st["error"].as_str().unwrap_or_default();
    assert!(err.contains("keepalives went unanswered"), "{err}");
}

#[test]
fn detached_work_survives_a_dropped_connection_and_kill_9_of_the_broker() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let id = home.start(&[
        "srv",
        "--detach",
        "--",
        "for i in $(seq 1 60); do echo \"line $i\"; echo \"warn $i\" >&2; sleep 0.05; done; exit 5",
    ]);
    wait_for(60, "some output", || {
        (home.status(&id)["stdout"]["lines"].as_u64().unwrap_or(0) >= 5).then_some(())
    });

    // The connection drops; the job runs on and the broker re-attaches.
    sshd.drop_connections();
    wait_for(60, "more output after the reconnect", || {
        (home.status(&id)["stdout"]["lines"].as_u64().unwrap_or(0) >= 25).then_some(())
    });

    // The broker is killed outright; the next command starts a new one, which re-attaches.
    let pid = home.broker_pid();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    wait_for(10, "the broker to die", || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    let st = home.wait_done(&id, 120);
    assert_eq!(st["state"], "failed");
    assert_eq!(st["exit_code"], 5);
    assert_ne!(home.broker_pid(), pid);

    let out = home
        .run(&["logs", &id, "--stream", "stdout", "--json"])
        .ok()
        .json();
    let lines: Vec<String> = out
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["stream"] == "stdout")
        .map(|l| l["text"].as_str().unwrap_or_default().to_string())
        .collect();
    let expected: Vec<String> = (1..=60).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, expected, "every line once, in order");
    let err = home
        .run(&["logs", &id, "--stream", "stderr", "--json"])
        .ok()
        .json();
    let warns = err
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["stream"] == "stderr")
        .count();
    assert_eq!(warns, 60);
    assert_eq!(st["stdout"]["lines"], 60);
}

#[test]
fn attached_commands_running_when_the_broker_dies_are_interrupted_with_output_kept() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let id = home.start(&["srv", "--", "echo before; sleep 600"]);
    wait_for(60, "output", || {
        (home.status(&id)["stdout"]["lines"] == 1).then_some(())
    });
    let pid = home.broker_pid();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    wait_for(10, "the broker to die", || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    let st = home.status(&id);
    assert_eq!(st["state"], "interrupted");
    assert_eq!(home.run(&["logs", &id]).ok().stdout, "before\n");
}

#[test]
fn idle_sessions_close_after_their_idle_timeout() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to_with(&sshd, "k", "srv", &["--idle-timeout", "1"]);
    let sid = home
        .run(&["session", "open", "srv"])
        .ok()
        .stdout
        .trim()
        .to_string();
    wait_for(60, "the idle session to close", || {
        (session_state(&home, &sid) == "gone").then_some(())
    });
}
