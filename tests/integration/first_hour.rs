//! What a new user meets in the first hour with the CLI, on logins like a real server's: a
//! throw-away account whose login shell is dash (`/bin/sh`, whose `kill` builtin rejects `--`)
//! and one whose login shell is bash, neither with this machine's root rc files.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::fixture::{Home, Sshd, ended, has_tool, processes_matching, wait_for};

/// Logins to test on: dash and bash throw-away accounts (as root), else the current user.
fn logins() -> Vec<Sshd> {
    match (Sshd::start_as("/bin/sh"), Sshd::start_as("/bin/bash")) {
        (Some(dash), Some(bash)) => vec![dash, bash],
        _ => vec![Sshd::start()],
    }
}

#[test]
fn cancel_and_timeout_stop_the_remote_process_group_on_dash_and_bash() {
    for sshd in logins() {
        let home = Home::with_vault();
        home.connect_to(&sshd, "k", "srv");
        let shell = sshd.user.clone();

        // Attached: cancel kills the group (the sleep is a child of the login shell) and says so.
        let id = home.start(&["srv", "--", "sleep 3001; echo never"]);
        wait_for(30, "the sleep to start", || {
            (!processes_matching("sleep 3001").is_empty()).then_some(())
        });
        let c = home.run(&["cancel", &id, "--json"]).ok().json();
        assert_eq!(c["state"], "cancelled", "{shell}: {c}");
        assert!(
            c["error"]
                .as_str()
                .unwrap_or_default()
                .contains("was killed"),
            "{shell}: {c}"
        );
        wait_for(10, "the remote sleep to be gone", || {
            processes_matching("sleep 3001").is_empty().then_some(())
        });

        // Timeout: the same kill, from the deadline.
        let id = home.start(&["srv", "--timeout", "2", "--", "sleep 3002"]);
        let s = home.wait_done(&id, 40);
        assert_eq!(s["state"], "timed_out", "{shell}: {s}");
        assert!(
            s["error"]
                .as_str()
                .unwrap_or_default()
                .contains("was killed"),
            "{shell}: {s}"
        );
        wait_for(10, "the timed-out sleep to be gone", || {
            processes_matching("sleep 3002").is_empty().then_some(())
        });

        // Detached: the job's own session is killed on the server.
        let id = home.start(&["srv", "--detach", "--", "sleep 3004"]);
        wait_for(30, "the detached sleep to start", || {
            (!processes_matching("sleep 3004").is_empty()).then_some(())
        });
        let c = home.run(&["cancel", &id, "--json"]).ok().json();
        assert_eq!(c["state"], "cancelled", "{shell}: {c}");
        wait_for(10, "the detached sleep to be gone", || {
            processes_matching("sleep 3004").is_empty().then_some(())
        });
    }
}

#[test]
fn broker_notes_stay_out_of_a_commands_stdout_and_go_to_its_events() {
    let sshd = Sshd::start_as("/bin/sh").unwrap_or_else(Sshd::start);
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let id = home.start(&["srv", "--detach", "--", "echo one; sleep 4; echo two"]);
    wait_for(30, "the first line", || {
        home.run(&["logs", &id])
            .stdout
            .contains("one")
            .then_some(())
    });
    // The connection drops under the running job: the follower re-attaches from the offsets.
    sshd.drop_connections();
    let s = home.wait_done(&id, 60);
    assert_eq!(s["state"], "completed", "{s}");
    let out = home.run(&["logs", &id, "--stream", "stdout"]).ok();
    assert_eq!(
        out.stdout, "one\ntwo\n",
        "stdout is what the command printed"
    );
    let events = s["events"].as_array().expect("events").clone();
    assert!(
        events
            .iter()
            .any(|e| e.as_str().unwrap_or_default().contains("re-attached")),
        "{s}"
    );
    // The combined view labels the note as the broker's; the CLI prints it on stderr.
    let both = home.run(&["logs", &id]).ok();
    assert_eq!(both.stdout, "one\ntwo\n");
    assert!(
        both.stderr.contains("[sshkeep] re-attached"),
        "{}",
        both.stderr
    );
    let json = home
        .run(&["logs", &id, "--stream", "stdout", "--json"])
        .ok()
        .json();
    assert!(
        json.as_array()
            .expect("lines")
            .iter()
            .all(|l| l["stream"] == "stdout"),
        "{json}"
    );
}

#[test]
fn exec_forwards_stdin_takes_a_command_without_dashes_and_gives_a_terminal() {
    for sshd in logins() {
        let home = Home::with_vault();
        home.connect_to(&sshd, "k", "srv");
        let r = home
            .run_with_stdin(&["exec", "srv", "--", "cat"], b"hi\nthere\n")
            .ok();
        assert_eq!(r.stdout, "hi\nthere\n");
        let r = home
            .run_with_stdin(&["exec", "srv", "wc", "-c"], &[b'x'; 100_000])
            .ok();
        assert_eq!(r.stdout.trim(), "100000");
        // Input and output far past the SSH window at once: neither side may wait on the other.
        let mut child = home
            .command(&["exec", "srv", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("exec cat");
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || {
            let chunk = vec![b'y'; 1 << 20];
            for _ in 0..16 {
                stdin.write_all(&chunk).expect("write");
            }
        });
        let mut echoed = Vec::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_end(&mut echoed)
            .expect("read");
        writer.join().expect("writer");
        assert!(child.wait().expect("wait").success());
        assert_eq!(echoed.len(), 16 << 20);
        let r = home.run(&["exec", "srv", "echo", "plain", "words"]).ok();
        assert_eq!(r.stdout, "plain words\n");
        // -n: nothing is read from stdin (like ssh -n); the command sees it closed.
        let r = home
            .run_with_stdin(&["exec", "-n", "srv", "cat"], b"unread")
            .ok();
        assert_eq!(r.stdout, "");
        // -t: a terminal on the server, as ssh -t gives.
        let r = home
            .run(&["exec", "-t", "srv", "--", "test -t 0 && echo has-tty"])
            .ok();
        assert!(r.stdout.contains("has-tty"), "{}", r.stdout);
        let r = home
            .run(&["exec", "srv", "--", "test -t 0 || echo no-tty"])
            .ok();
        assert_eq!(r.stdout, "no-tty\n");
        // The exit status is the command's.
        assert_eq!(home.run(&["exec", "srv", "--", "exit 7"]).code, 7);
    }
}

#[test]
fn ctrl_c_on_exec_stops_the_remote_command_and_exits_130() {
    for sshd in logins() {
        let home = Home::with_vault();
        home.connect_to(&sshd, "k", "srv");
        let mut child = home
            .command(&["exec", "srv", "--", "sleep 3005"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("exec");
        let pid = child.id().to_string();
        // The remote sleep, not this CLI (whose own command line holds the same words).
        let remote = || {
            processes_matching("sleep 3005")
                .into_iter()
                .filter(|p| p.to_string() != pid)
                .count()
        };
        wait_for(30, "the remote sleep to start", || {
            (remote() > 0).then_some(())
        });
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        let (status, _, stderr) = ended(&mut child, 40, "exec to end");
        assert_eq!(status.code(), Some(130), "{stderr}");
        assert!(stderr.contains("was killed"), "{stderr}");
        wait_for(10, "the remote sleep to be gone", || {
            (remote() == 0).then_some(())
        });
        // Nothing is left holding a channel or listed as running.
        let ps = home
            .run(&["ps", "--state", "running", "--json"])
            .ok()
            .json();
        assert_eq!(ps.as_array().map(Vec::len), Some(0), "{ps}");
    }
}

#[test]
fn logs_follow_exits_with_the_commands_status() {
    let sshd = Sshd::start_as("/bin/sh").unwrap_or_else(Sshd::start);
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let ok = home.start(&["srv", "--", "sleep 1; echo fine"]);
    let r = home.run(&["logs", &ok, "--follow"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "fine\n"), "{}", r.stderr);
    let bad = home.start(&["srv", "--", "echo failing; exit 3"]);
    let r = home.run(&["logs", &bad, "--follow"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let timed = home.start(&["srv", "--timeout", "1", "--", "sleep 30"]);
    let r = home.run(&["logs", &timed, "--follow"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("timed_out"), "{}", r.stderr);
}

#[test]
fn a_closed_pipe_ends_the_cli_quietly() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let id = home.start(&["srv", "--", "seq 1 200000"]);
    home.wait_done(&id, 60);
    let cmd = home.command(&[]);
    for args in [format!("logs {id}"), "audit".to_string()] {
        let out = Command::new("bash")
            .args([
                "-c",
                &format!(
                    "\"$SSHKEEP_BIN\" {args} | head -1 >/dev/null; echo \"status=${{PIPESTATUS[0]}}\""
                ),
            ])
            .envs(
                cmd.get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .env("SSHKEEP_BIN", crate::fixture::SSHKEEP)
            .output()
            .expect("bash");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args}: {stderr}"
        );
        // Like `seq 1 1000000 | head -1`: ended by SIGPIPE (141), or done before the pipe closed.
        assert!(
            stdout.contains("status=141") || stdout.contains("status=0"),
            "{args}: {stdout} {stderr}"
        );
    }
}

#[test]
fn detaching_tmux_keeps_a_persistent_shell_attachable() {
    if !has_tool("tmux") || !has_tool("script") {
        eprintln!("skipped: tmux or script missing (scripts/test.sh installs them)");
        return;
    }
    let sshd = Sshd::start_as("/bin/bash").unwrap_or_else(Sshd::start);
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let mut child = home.in_terminal("shell srv --persist");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::sleep(Duration::from_secs(3));
    stdin.write_all(b"echo marker-$((40+2))\r").expect("type");
    std::thread::sleep(Duration::from_secs(2));
    // tmux's own detach key: C-b d.
    stdin.write_all(b"\x02d").expect("detach");
    let (status, out, _) = ended(&mut child, 30, "the CLI to detach");
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains("detached"), "{out}");
    let shells = home.run(&["shell", "--list", "--json"]).ok().json();
    let shell = shells
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["persistent"] == true)
        .unwrap_or_else(|| panic!("{shells}"))
        .clone();
    let id = shell["shell_id"].as_str().expect("id").to_string();
    let state = wait_for(20, "the shell to be open again", || {
        let l = home.run(&["shell", "--list", "--json"]).ok().json();
        l.as_array()
            .expect("list")
            .iter()
            .find(|s| s["shell_id"] == id.as_str())
            .map(|s| s["state"].clone())
            .filter(|s| s == "open")
    });
    assert_eq!(state, "open");
    // Attaching again shows the screen as it was.
    let mut again = home.in_terminal(&format!("shell --attach {id}"));
    let mut stdin = again.stdin.take().expect("stdin");
    std::thread::sleep(Duration::from_secs(3));
    stdin.write_all(b"exit\r").expect("exit");
    let (_, out, _) = ended(&mut again, 30, "the shell to end");
    assert!(out.contains("marker-42"), "{out}");
}

#[test]
fn a_new_passphrase_is_asked_again_on_a_mismatch_and_a_short_one_is_warned_about() {
    let mut home = Home::new();
    home.use_passphrase_file = false;
    let mut child = home.in_terminal("vault init --backend passphrase");
    let mut stdin = child.stdin.take().expect("stdin");
    for line in [
        "short",
        "other",
        "a long enough passphrase",
        "a long enough passphrase",
    ] {
        std::thread::sleep(Duration::from_millis(800));
        stdin
            .write_all(format!("{line}\r").as_bytes())
            .expect("type");
    }
    let (status, out, _) = ended(&mut child, 60, "vault init to end");
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains("Warning: a passphrase under"), "{out}");
    assert!(out.contains("differ; try again"), "{out}");
    assert!(
        !out.contains("a long enough passphrase"),
        "never echoed: {out}"
    );
    let st = home.run(&["status", "--json"]).ok().json();
    assert_eq!(st["vault"]["backend"], "passphrase", "{st}");
}

#[test]
fn vault_init_falls_back_to_a_passphrase_when_the_secret_service_has_no_default_keyring() {
    if !has_tool("dbus-run-session") || !has_tool("gnome-keyring-daemon") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install dbus and gnome-keyring (scripts/test.sh does)"
        );
        eprintln!("skipped: dbus-run-session or gnome-keyring-daemon missing");
        return;
    }
    let home = Home::new();
    // gnome-keyring unlocked with an empty password answers, but has no default collection.
    let script = "printf '' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1\n\
                  \"$SSHKEEP\" vault init\nrc=$?\n\"$SSHKEEP\" broker stop >/dev/null 2>&1\nexit $rc";
    let r: crate::fixture::Run = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .env("SSHKEEP", crate::fixture::SSHKEEP)
        .env("SSHKEEP_HOME", home.sshkeep_home())
        .env("HOME", home.user_home())
        .env("XDG_DATA_HOME", home.user_home().join(".local/share"))
        .env("SSHKEEP_PASSPHRASE_FILE", &home.passphrase_file)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("dbus-run-session")
        .into();
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    // dbus-daemon's own complaints (fd limits in a container) are not sshkeep's words.
    let all: String = format!("{}{}", r.stdout, r.stderr)
        .lines()
        .filter(|l| !l.starts_with("dbus-daemon"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(all.contains("passphrase"), "says which backend: {all}");
    assert!(all.contains("no default keyring"), "says why: {all}");
    assert!(
        !all.contains("no result found") && !all.contains("org.freedesktop"),
        "no raw D-Bus text: {all}"
    );
    let st = home.run(&["status", "--json"]).ok().json();
    assert_eq!(st["vault"]["backend"], "passphrase", "{st}");
    assert_eq!(st["vault"]["unlocked"], true, "{st}");
}
