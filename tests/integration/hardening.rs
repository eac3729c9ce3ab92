//! Attacks from a red-team run, each played against the real broker (and a real sshd where a
//! server is involved). Every test here failed before its defence existed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::fixture::{Home, Sshd, keygen, wait_for};
use crate::mcp::Mcp;

/// An agent uploading `local` to `remote` on connection `srv`: (is_error, text).
fn upload(a: &mut Mcp, local: &str, remote: &str) -> (bool, String) {
    let (e, t, _) = a.call(
        "ssh_sftp",
        json!({"op": "upload", "connectionId": "srv", "localPath": local, "remotePath": remote, "recursive": true}),
    );
    (e, t)
}

/// A JSON field in either casing (the CLI's and the MCP adapter's).
pub(crate) fn field<'a>(v: &'a Value, snake: &str) -> &'a Value {
    if !v[snake].is_null() {
        return &v[snake];
    }
    let mut camel = String::new();
    let mut up = false;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            camel.extend(c.to_uppercase());
            up = false;
        } else {
            camel.push(c);
        }
    }
    &v[camel.as_str()]
}

pub(crate) fn temp_root(home: &Home) -> PathBuf {
    home.sshkeep_home()
        .parent()
        .expect("the test's temp dir")
        .to_path_buf()
}

#[test]
fn an_agent_gets_no_root_at_slash_or_home_and_never_the_vault_passphrase_or_ssh_keys() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let remote = sshd.dir.path().join("got");
    let remote = remote.display().to_string();

    // A GUI host starts the adapter in `/`: no implicit root, so /etc/passwd stays home.
    let mut a = Mcp::start_in(&home, Path::new("/"), &[]);
    let (e, t) = upload(&mut a, "/etc/passwd", &remote);
    assert!(e, "an adapter started in / must not send /etc/passwd: {t}");
    assert!(t.contains("--root"), "says how to allow a directory: {t}");
    let (e, t) = upload(&mut a, "etc/hostname", &remote);
    assert!(e, "nor relative paths under /: {t}");
    drop(a);

    // Started in $HOME: no implicit root either (it holds ~/.ssh).
    std::fs::write(home.user_home().join(".ssh/id_ed25519"), "private").expect("key file");
    let mut a = Mcp::start_in(&home, &home.user_home(), &[]);
    let (e, t) = upload(&mut a, ".ssh/id_ed25519", &remote);
    assert!(e, "an adapter started in $HOME must not send ~/.ssh: {t}");
    drop(a);

    // A root that holds everything (sshkeep's home, the passphrase file, ~/.ssh): the
    // protected files are refused anyway, also through a symlink and inside a directory.
    let root = temp_root(&home);
    let master = home.sshkeep_home().join("state/vault/master.age");
    assert!(master.exists());
    std::os::unix::fs::symlink(&master, root.join("innocent.txt")).expect("symlink");
    std::fs::write(root.join("notes.txt"), "fine").expect("notes");
    let root_arg = root.display().to_string();
    let mut a = Mcp::start_in(&home, &root, &["--root", &root_arg]);
    for attack in [
        master.display().to_string(),
        home.sshkeep_home()
            .join("state/sshkeep.db")
            .display()
            .to_string(),
        home.passphrase_file.display().to_string(),
        home.user_home()
            .join(".ssh/id_ed25519")
            .display()
            .to_string(),
        "innocent.txt".into(),
        "sshkeep".into(),
        "user".into(),
    ] {
        let (e, t) = upload(&mut a, &attack, &remote);
        assert!(e, "{attack} must be refused to an agent: {t}");
        assert!(!std::path::Path::new(&remote).exists(), "{attack} was sent");
    }
    // Nor may a download plant a file in ~/.ssh or in the state directory.
    let (e, t, _) = a.call(
        "ssh_sftp",
        json!({"op": "download", "connectionId": "srv", "remotePath": sshd.authorized_keys().display().to_string(),
               "localPath": home.user_home().join(".ssh/authorized_keys").display().to_string()}),
    );
    assert!(e, "a download into ~/.ssh must be refused: {t}");
    assert!(!home.user_home().join(".ssh/authorized_keys").exists());
    // The root still works for what it is for.
    let (e, t) = upload(&mut a, "notes.txt", &remote);
    assert!(!e, "an ordinary file under the root goes: {t}");
    assert_eq!(std::fs::read_to_string(&remote).expect("uploaded"), "fine");
}

#[test]
fn an_agent_cannot_replace_a_host_key_that_known_hosts_vouches_for() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    // The user's known_hosts vouches for the server's real key; the agent is shown another
    // one (a man in the middle) and tries to trust it.
    let other = sshd.dir.path().join("mitm_key");
    keygen(&other, "ed25519", "", "mitm");
    let mitm_pub = std::fs::read_to_string(other.with_extension("pub"))
        .or_else(|_| std::fs::read_to_string(format!("{}.pub", other.display())))
        .expect("pub");
    let mut parts = mitm_pub.split_whitespace();
    let (alg, body) = (parts.next().expect("alg"), parts.next().expect("body"));
    std::fs::write(
        home.user_home().join(".ssh/known_hosts"),
        format!("[127.0.0.1]:{} {alg} {body}\n", sshd.port),
    )
    .expect("known_hosts");
    let real = sshd.host_fingerprint();

    let mut a = Mcp::start_in(&home, &temp_root(&home), &[]);
    let (e, t, _) = a.call(
        "ssh_conn",
        json!({"op": "trust", "connectionId": "srv", "fingerprint": real}),
    );
    assert!(e, "an agent must not trust over a known_hosts entry: {t}");
    assert!(t.contains("known_hosts"), "names what vouches: {t}");
    let shown = home.run(&["conn", "show", "srv", "--json"]).ok().json();
    assert!(
        field(&shown, "pinned_host_key").is_null(),
        "nothing was pinned: {shown}"
    );
    let refused = home
        .run(&["audit", "--op", "host_key_trust_refused", "--json"])
        .ok()
        .json();
    assert_eq!(
        refused.as_array().map(Vec::len),
        Some(1),
        "audited: {refused}"
    );
    // The user, at a terminal, still decides.
    home.run(&["conn", "trust", "srv", "--fingerprint", &real])
        .ok();
    home.run(&["run", "srv", "--", "true"]).ok();
}

#[test]
fn nul_bytes_are_refused_at_the_door_and_the_shared_connection_survives() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let long = home.start(&["srv", "--", "sleep 3; echo survived"]);
    wait_for(30, "the long command to run", || {
        (home.status(&long)["state"] == "running").then_some(())
    });
    let mut a = Mcp::start_in(&home, &temp_root(&home), &[]);
    for args in [
        json!({"op": "run", "connectionId": "srv", "command": "echo a\u{0}b"}),
        json!({"op": "run", "connectionId": "srv", "command": "pwd", "cwd": "/tmp\u{0}x"}),
        json!({"op": "run", "connectionId": "srv", "command": "env", "env": {"A": "x\u{0}y"}}),
    ] {
        let (e, t, _) = a.call("ssh_exec", args.clone());
        assert!(e, "{args} must be refused: {t}");
        assert!(t.contains("NUL"), "{t}");
    }
    let st = home.wait_done(&long, 60);
    assert_eq!(
        st["state"], "completed",
        "the shared connection lived on: {st}"
    );
    assert_eq!(home.run(&["logs", &long]).ok().stdout, "survived\n");
}

#[test]
fn huge_timeouts_and_settings_are_refused_and_leave_no_ghost_command() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let r = home
        .run(&[
            "run",
            "--timeout",
            "18446744073709551615",
            "srv",
            "--",
            "true",
        ])
        .fails();
    assert!(r.stderr.contains("timeout must be between"), "{}", r.stderr);
    let mut a = Mcp::start_in(&home, &temp_root(&home), &[]);
    let (e, t, _) = a.call(
        "ssh_exec",
        json!({"op": "run", "connectionId": "srv", "command": "true", "timeout": u64::MAX}),
    );
    assert!(e, "{t}");
    let ps = home.run(&["ps", "--json"]).ok().json();
    assert_eq!(
        ps.as_array().map(Vec::len),
        Some(0),
        "no command was recorded: {ps}"
    );
    let r = home
        .run(&["config", "set", "idle_timeout", "18446744073709551615"])
        .fails();
    assert!(r.stderr.contains("at most"), "{}", r.stderr);
    // The broker is still fine.
    let id = home.start(&["--timeout", "30", "srv", "--", "echo ok"]);
    assert_eq!(home.wait_done(&id, 60)["state"], "completed");
}

#[test]
fn re_pointing_a_connection_to_another_spelling_of_its_host_keeps_its_pin() {
    let mut sshd = Sshd::start();
    let attacker = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    home.save_conn(&sshd, "loc", "k", &[]);
    let port = sshd.port.to_string();
    home.run(&[
        "conn",
        "save",
        "loc",
        "--host",
        "localhost",
        "--port",
        &port,
        "--user",
        &sshd.user,
        "--key",
        "k",
    ])
    .ok();
    for conn in ["srv", "loc"] {
        let id = home.start(&[conn, "--", "true"]);
        assert_eq!(home.wait_done(&id, 60)["state"], "completed");
    }
    let pinned = sshd.host_fingerprint();
    // A man in the middle takes the server's address with another key.
    sshd.restart(true);
    assert_ne!(sshd.host_fingerprint(), pinned);

    let mut a = Mcp::start_in(&home, &temp_root(&home), &[]);
    let mut moves: Vec<(&str, String, u16)> =
        ["127.0.0.01", "127.1", "0x7f000001", "::ffff:127.0.0.1"]
            .iter()
            .map(|h| ("srv", h.to_string(), sshd.port))
            .collect();
    moves.push(("loc", "LOCALHOST".into(), sshd.port));
    // Another server altogether, on another port: the connection keeps its pin.
    moves.push(("srv", "127.0.0.1".into(), attacker.port));
    // An agent may not re-point a saved connection at all, under any profile.
    let (e, t, _) = a.call(
        "ssh_conn",
        json!({"op": "save", "name": "srv", "host": "127.1", "port": sshd.port, "username": sshd.user, "keyName": "k"}),
    );
    assert!(e && t.contains("user's own"), "{t}");
    // The user may; another spelling of the same address keeps the pin, so a man in the
    // middle still meets the old key.
    for (conn, host, port) in moves {
        let port_text = port.to_string();
        home.run(&[
            "conn", "save", conn, "--host", &host, "--port", &port_text, "--user", &sshd.user,
            "--key", "k",
        ])
        .ok();
        a.call("ssh_conn", json!({"op": "test", "connectionId": conn}));
        let shown = home.run(&["conn", "show", conn, "--json"]).ok().json();
        assert_eq!(
            field(&shown, "pinned_host_key").as_str(),
            Some(pinned.as_str()),
            "{conn} moved to {host}:{port} must keep its pin: {shown}"
        );
    }
}

/// The broker's resident memory in KiB and CPU time (user + system) in clock ticks.
fn broker_usage(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = stat.rsplit_once(')').expect("comm").1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let cpu = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    (rss, cpu)
}

#[test]
fn half_sent_frames_and_a_full_descriptor_table_do_not_exhaust_the_broker() {
    use std::os::unix::net::UnixStream;
    let home = Home::with_vault();
    let pid = home.broker_pid();
    let socket = home.sshkeep_home().join("run/broker.sock");
    let (rss_before, _) = broker_usage(pid);

    // Thirty clients announce 16 MiB frames and send 12 MiB of each, then stall.
    let chunk = vec![b' '; 1 << 20];
    let mut stalled = Vec::new();
    for _ in 0..30 {
        let mut s = UnixStream::connect(&socket).expect("connect");
        let _ = s.write_all(&((16u32 << 20) - 1).to_be_bytes());
        for _ in 0..12 {
            if s.write_all(&chunk).is_err() {
                break; // the broker closed this one: it holds too much already
            }
        }
        stalled.push(s);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (rss, _) = broker_usage(pid);
    assert!(
        rss < rss_before + 150 * 1024,
        "half-sent frames grew the broker from {rss_before} KiB to {rss} KiB"
    );
    home.run(&["status"]).ok();
    drop(stalled);

    // Out of descriptors: accept() fails with EMFILE until some are free again. The broker
    // must wait, not spin and flood its log.
    let log_before = home.broker_log().len();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("soft nofile")
        .to_string();
    // Only the soft limit: lowering the hard one could not be undone without privileges.
    let st = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg("--nofile=48:")
        .status()
        .expect("prlimit");
    assert!(st.success());
    let mut held = Vec::new();
    for _ in 0..80 {
        if let Ok(s) = UnixStream::connect(&socket) {
            held.push(s);
        }
    }
    let (_, cpu_before) = broker_usage(pid);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (_, cpu_after) = broker_usage(pid);
    let ticks = cpu_after - cpu_before;
    assert!(
        ticks < 100,
        "the broker spun on a full descriptor table: {ticks} ticks of CPU in 3 s"
    );
    let logged = home.broker_log().len() - log_before;
    assert!(logged < 20_000, "{logged} bytes of log in 3 s");
    drop(held);
    let st = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={soft}:"))
        .status()
        .expect("prlimit");
    assert!(st.success());
    wait_for(30, "the broker to answer again", || {
        (home.run(&["status"]).code == 0).then_some(())
    });
}

/// The Python interpreter with the official `mcp` package (scripts/test.sh makes it).
#[test]
fn the_official_python_mcp_sdk_as_an_agent_is_refused_the_vault_and_a_known_hosts_override() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    // known_hosts vouches for the server's real key; the agent offers a man in the middle's.
    let real = std::fs::read_to_string(sshd.dir.path().join("host_ed25519.pub")).expect("pub");
    let mut parts = real.split_whitespace();
    let (alg, body) = (parts.next().expect("alg"), parts.next().expect("body"));
    std::fs::write(
        home.user_home().join(".ssh/known_hosts"),
        format!("[127.0.0.1]:{} {alg} {body}\n", sshd.port),
    )
    .expect("known_hosts");
    let other = sshd.dir.path().join("mitm_key");
    keygen(&other, "ed25519", "", "mitm");
    let listed = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(format!("{}.pub", other.display()))
        .output()
        .expect("ssh-keygen -lf");
    let mitm = String::from_utf8_lossy(&listed.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string();
    let remote = sshd.dir.path().join("got");
    let root = temp_root(&home);
    let master = home.sshkeep_home().join("state/vault/master.age");
    let args: [&std::ffi::OsStr; 5] = [
        "srv".as_ref(),
        root.as_os_str(),
        master.as_os_str(),
        mitm.as_ref(),
        remote.as_os_str(),
    ];
    let Some(seen) = crate::mcp::run_sdk_script(&home, "red_team.py", &args) else {
        return;
    };
    assert_eq!(seen["red_team"], "refused");
    assert_eq!(seen["attempts"], 6);
}
