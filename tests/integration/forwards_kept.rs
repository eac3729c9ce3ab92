//! Remote forwards (`-R`) and forwards that outlive their connection and the broker, through a
//! real sshd on loopback: the server's port reaches an echo server on the test's side, comes back
//! after the connection drops, and every forward listens again after `broker stop` and a restart.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::fixture::{Home, Sshd, wait_for};
use crate::forwards::echo_server;

/// `sshkeep forward srv FLAG SPEC --json`: the forward opened.
fn open(home: &Home, flag: &str, spec: &str) -> serde_json::Value {
    home.run(&["forward", "srv", flag, spec, "--json"])
        .ok()
        .json()
}

/// Whether bytes sent to `port` on loopback come back unchanged.
fn echoes(port: u16, text: &[u8]) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    // Bounds a read that would hang (a forward half up), not a speed check.
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if s.write_all(text).is_err() {
        return false;
    }
    let mut got = vec![0u8; text.len()];
    s.read_exact(&mut got).is_ok() && got == text
}

fn listed(home: &Home, id: &str) -> Option<serde_json::Value> {
    home.run(&["forward", "list", "--json"])
        .ok()
        .json()
        .as_array()?
        .iter()
        .find(|f| f["forward_id"] == id)
        .cloned()
}

fn wait_open(home: &Home, id: &str, what: &str) -> serde_json::Value {
    wait_for(60, what, || {
        listed(home, id).filter(|f| f["state"] == "open")
    })
}

#[test]
fn remote_forward_reaches_back_and_comes_back_after_a_drop() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let echo = echo_server();

    let f = open(&home, "-R", &format!("0:127.0.0.1:{echo}"));
    let id = f["forward_id"].as_str().expect("id").to_string();
    assert_eq!(f["kind"], "remote", "{f}");
    assert_eq!(f["bind_address"], "localhost", "{f}");
    let port = f["bind_port"].as_u64().expect("port") as u16;
    assert_ne!(port, 0, "the port the server picked is reported: {f}");

    // The server listens on its loopback (this machine): what goes in comes back from the
    // echo server on the broker's side.
    assert!(echoes(port, b"back through sshd\n"), "echo through -R");
    let text = home.run(&["forward", "list"]).ok().stdout;
    assert!(
        text.contains(&format!("-R localhost:{port} on srv -> 127.0.0.1:{echo}")),
        "{text}"
    );

    // The connection drops: the forward asks the reconnected session to listen again.
    sshd.drop_connections();
    wait_for(60, "the remote forward to carry again after a drop", || {
        echoes(port, b"after the drop\n").then_some(())
    });
    wait_open(&home, &id, "the forward to be open again");

    // A server-side bind other machines could reach needs --allow-public.
    let r = home
        .run(&["forward", "srv", "-R", &format!("*:0:127.0.0.1:{echo}")])
        .fails();
    assert!(r.stderr.contains("--allow-public"), "{}", r.stderr);

    home.run(&["forward", "close", &id]).ok();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server no longer listens once the forward is closed"
    );
    assert!(listed(&home, &id).is_none());
}

#[test]
fn forwards_listen_again_after_the_broker_restarts() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let echo = echo_server();

    let l = open(&home, "-L", &format!("0:127.0.0.1:{echo}"));
    let (lid, lport) = (
        l["forward_id"].as_str().expect("id").to_string(),
        l["bind_port"].as_u64().expect("port") as u16,
    );
    let r = open(&home, "-R", &format!("0:127.0.0.1:{echo}"));
    let (rid, rport) = (
        r["forward_id"].as_str().expect("id").to_string(),
        r["bind_port"].as_u64().expect("port") as u16,
    );
    assert!(echoes(lport, b"before\n") && echoes(rport, b"before\n"));

    let old_pid = home.broker_pid();
    home.run(&["broker", "stop"]).ok();
    wait_for(30, "the -L port to be released", || {
        TcpStream::connect(("127.0.0.1", lport))
            .is_err()
            .then_some(())
    });

    // Any command starts the broker again; it reopens both on the same ports.
    let l2 = wait_open(&home, &lid, "the -L forward to be open after the restart");
    assert_ne!(home.broker_pid(), old_pid, "a new broker");
    assert_eq!(l2["bind_port"].as_u64(), Some(u64::from(lport)), "{l2}");
    let r2 = wait_open(&home, &rid, "the -R forward to be open after the restart");
    assert_eq!(r2["bind_port"].as_u64(), Some(u64::from(rport)), "{r2}");
    wait_for(30, "traffic on the same -L port", || {
        echoes(lport, b"after restart -L\n").then_some(())
    });
    wait_for(30, "traffic on the same -R port", || {
        echoes(rport, b"after restart -R\n").then_some(())
    });
    let audit = home.run(&["audit", "--json"]).ok().stdout;
    assert!(audit.contains("forward_reopen"), "the reopening is audited");

    // Closed forwards are forgotten: the next broker does not open them.
    home.run(&["forward", "close", &lid]).ok();
    home.run(&["forward", "close", &rid]).ok();
    home.run(&["broker", "stop"]).ok();
    let list = home.run(&["forward", "list", "--json"]).ok().json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

#[test]
fn a_stored_forward_whose_port_is_taken_says_why_and_takes_it_once_free() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let echo = echo_server();
    let l = open(&home, "-L", &format!("0:127.0.0.1:{echo}"));
    let id = l["forward_id"].as_str().expect("id").to_string();
    let port = l["bind_port"].as_u64().expect("port") as u16;
    home.run(&["broker", "stop"]).ok();

    // Something else took the port while the broker was away.
    let squatter = wait_for(30, "the port to be free to take", || {
        std::net::TcpListener::bind(("127.0.0.1", port)).ok()
    });
    let f = wait_for(30, "the forward to say why it is not open", || {
        listed(&home, &id).filter(|f| f["state"] == "retrying" && f["error"].is_string())
    });
    assert!(
        f["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&port.to_string()),
        "{f}"
    );
    drop(squatter);
    wait_open(&home, &id, "the forward to take its port once free");
    wait_for(30, "traffic on the port", || {
        echoes(port, b"finally\n").then_some(())
    });
}

#[test]
fn a_stored_remote_forward_waits_for_the_vault_and_listens_once_unlocked() {
    let sshd = Sshd::start();
    let mut home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let echo = echo_server();
    let r = open(&home, "-R", &format!("0:127.0.0.1:{echo}"));
    let id = r["forward_id"].as_str().expect("id").to_string();
    let port = r["bind_port"].as_u64().expect("port") as u16;
    home.run(&["broker", "stop"]).ok();

    // The next broker starts with the vault locked: the forward cannot log in, and says so.
    home.use_passphrase_file = false;
    let f = wait_for(30, "the forward to say the vault is locked", || {
        listed(&home, &id).filter(|f| {
            f["state"] == "retrying" && f["error"].as_str().is_some_and(|e| e.contains("locked"))
        })
    });
    assert_eq!(f["bind_port"].as_u64(), Some(u64::from(port)), "{f}");

    let unlocked = home
        .command(&["unlock"])
        .env("SSHKEEP_PASSPHRASE_FILE", &home.passphrase_file)
        .output()
        .expect("unlock");
    assert!(unlocked.status.success(), "{unlocked:?}");
    wait_open(
        &home,
        &id,
        "the forward to listen once the vault is unlocked",
    );
    wait_for(30, "traffic through the server's port", || {
        echoes(port, b"unlocked\n").then_some(())
    });
}

#[test]
fn an_agent_forwards_through_mcp_in_ssh_words_and_only_on_loopback() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let echo = echo_server();
    let mut m = crate::mcp::Mcp::start(&home, &[]);

    let local = m.ok(
        "ssh_conn",
        json!({"op": "forward", "connectionId": "srv", "local": format!("0:127.0.0.1:{echo}")}),
    );
    assert_eq!(local["connectionId"], "srv", "{local}");
    assert_eq!(local["kind"], "local", "{local}");
    let local_port = local["bindPort"].as_u64().expect("bindPort") as u16;
    assert!(echoes(local_port, b"through -L"), "{local}");

    // A remote forward would let the server reach this machine: the user's own, even for
    // an unrestricted profile.
    let (e, t, _) = m.call(
        "ssh_conn",
        json!({"op": "forward", "connectionId": "srv", "remote": format!("0:127.0.0.1:{echo}")}),
    );
    assert!(e && t.contains("-R") && t.contains("user's own"), "{t}");

    let listed = m.ok("ssh_conn", json!({"op": "forwards"}));
    let forwards = listed["forwards"].as_array().expect("forwards");
    assert_eq!(forwards.len(), 1, "{listed}");
    assert!(
        forwards.iter().all(|f| f["connectionId"] == "srv"),
        "{listed}"
    );

    // Listening where other machines reach is the user's call; malformed text says the form.
    let (e, t, _) = m.call(
        "ssh_conn",
        json!({"op": "forward", "connectionId": "srv", "local": "0.0.0.0:0:127.0.0.1:22"}),
    );
    assert!(e && t.contains("loopback"), "{t}");
    let (e, t, _) = m.call(
        "ssh_conn",
        json!({"op": "forward", "connectionId": "srv", "local": "1:2", "dynamic": "0"}),
    );
    assert!(e && t.contains("exactly one"), "{t}");
    let (e, t, _) = m.call(
        "ssh_conn",
        json!({"op": "forward", "connectionId": "srv", "local": "80:x:http"}),
    );
    assert!(e && t.contains("not a port number"), "{t}");

    let id = local["forwardId"].as_str().expect("forwardId");
    m.ok("ssh_conn", json!({"op": "unforward", "forwardId": id}));
    assert!(!echoes(local_port, b"closed"));
    let listed = m.ok("ssh_conn", json!({"op": "forwards"}));
    assert_eq!(
        listed["forwards"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    drop(m);

    // The agent profile does not open forwards on its own.
    let dir = home.user_home();
    let mut agent = crate::mcp::Mcp::start_in(&home, &dir, &["--profile", "agent"]);
    let (e, t, _) = agent.call(
        "ssh_conn",
        json!({"op": "forward", "connectionId": "srv", "dynamic": "0"}),
    );
    assert!(e && t.contains("port forwards"), "{t}");
}
