//! The broker socket: permissions, peer uid check, protocol robustness, one broker per home.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

use crate::fixture::{Home, SSHKEEP, is_root};

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn read_reply(s: &mut UnixStream) -> serde_json::Value {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("reply length");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("reply body");
    serde_json::from_slice(&body).expect("reply json")
}

#[test]
fn socket_and_runtime_dir_are_owner_only() {
    let home = Home::new();
    home.run(&["status"]).ok();
    let run = home.sshkeep_home().join("run");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&run), 0o700);
    assert_eq!(mode(&run.join("broker.sock")), 0o600);
    assert_eq!(mode(&home.sshkeep_home().join("state")), 0o700);
    assert_eq!(mode(&home.sshkeep_home().join("state/sshkeep.db")), 0o600);
}

#[test]
fn malformed_and_oversized_frames_get_errors_and_the_broker_survives() {
    let home = Home::new();
    home.run(&["status"]).ok();
    let sock = home.sshkeep_home().join("run/broker.sock");

    let mut s = UnixStream::connect(&sock).expect("connect");
    s.write_all(&frame(b"{this is not json")).expect("write");
    let r = read_reply(&mut s);
    assert_eq!(r["type"], "error");
    assert_eq!(r["code"], "bad_request");
    // Still in sync: a request before the hello is refused, then the hello works.
    s.write_all(&frame(br#"{"type":"status"}"#)).expect("write");
    assert!(
        read_reply(&mut s)["message"]
            .as_str()
            .unwrap_or_default()
            .contains("hello")
    );
    s.write_all(&frame(br#"{"type":"hello","version":999,"client":"t"}"#))
        .expect("write");
    let r = read_reply(&mut s);
    assert_eq!(r["code"], "protocol_mismatch");
    assert!(
        r["message"]
            .as_str()
            .unwrap_or_default()
            .contains("sshkeep broker stop")
    );
    let hello = format!(
        r#"{{"type":"hello","version":{},"client":"t"}}"#,
        sshkeep::protocol::PROTOCOL_VERSION
    );
    s.write_all(&frame(hello.as_bytes())).expect("write");
    assert_eq!(read_reply(&mut s)["type"], "hello");
    s.write_all(&frame(br#"{"type":"key_show","name":42}"#))
        .expect("write");
    assert_eq!(read_reply(&mut s)["code"], "bad_request");
    s.write_all(&frame(br#"{"type":"status"}"#)).expect("write");
    assert_eq!(read_reply(&mut s)["type"], "status");

    let mut s = UnixStream::connect(&sock).expect("connect");
    s.write_all(&(64u32 * 1024 * 1024).to_be_bytes())
        .expect("write");
    let r = read_reply(&mut s);
    assert_eq!(r["code"], "too_large");

    // Abrupt hang-ups mid-frame do not hurt either.
    let mut s = UnixStream::connect(&sock).expect("connect");
    s.write_all(&[0, 0, 1]).expect("write");
    drop(s);
    home.run(&["status"]).ok();
}

#[test]
fn a_second_broker_on_the_same_home_is_refused() {
    let home = Home::new();
    home.run(&["status"]).ok();
    let r = home.run(&["broker"]).fails();
    assert!(
        r.stderr.contains("another broker is already running"),
        "{}",
        r.stderr
    );
    home.run(&["status"]).ok();
}

#[test]
fn concurrent_clients_start_exactly_one_broker() {
    let home = Home::new();
    let children: Vec<_> = (0..6)
        .map(|_| {
            home.command(&["status", "--json"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let pids: std::collections::BTreeSet<u64> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait");
            assert!(out.status.success());
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            v["pid"].as_u64().expect("pid")
        })
        .collect();
    assert_eq!(pids.len(), 1, "one broker for all: {pids:?}");
}

#[test]
fn broker_stop_stops_it() {
    let home = Home::new();
    home.run(&["status"]).ok();
    assert!(
        home.run(&["broker", "stop"])
            .ok()
            .stdout
            .contains("broker stopped")
    );
    assert!(!home.sshkeep_home().join("run/broker.sock").exists());
    assert!(
        home.run(&["broker", "stop"])
            .ok()
            .stdout
            .contains("no broker is running")
    );
}

/// Runs the sshkeep client as `nobody` (needs root to switch users).
fn as_nobody(home: &Home, args: &[&str]) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(SSHKEEP)
        .args(args)
        .env("SSHKEEP_HOME", home.sshkeep_home())
        .env("HOME", "/nonexistent")
        .output()
        .expect("setpriv")
}

#[test]
fn another_uid_is_refused_at_the_socket() {
    if !is_root() {
        eprintln!("skipped: switching to another uid needs root (CI runs as root)");
        return;
    }
    let home = Home::new();
    home.run(&["status"]).ok();

    // With the default permissions the socket cannot even be reached.
    let out = as_nobody(&home, &["status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));

    // Even if the permissions are opened by mistake, the peer uid check refuses and logs it.
    for p in [
        home.dir.path().to_path_buf(),
        home.sshkeep_home(),
        home.sshkeep_home().join("run"),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o711)).expect("chmod dir");
    }
    let sock = home.sshkeep_home().join("run/broker.sock");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).expect("chmod sock");
    let out = as_nobody(&home, &["status"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused: this broker serves uid 0 only"),
        "{err}"
    );
    assert!(
        home.broker_log()
            .contains("refused a connection from another user"),
        "{}",
        home.broker_log()
    );
    // The owner still gets in.
    home.run(&["status"]).ok();
}
