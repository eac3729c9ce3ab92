//! Host-key pinning: accept-new, strict, known_hosts, a changed key, and an agent's first pin.

use serde_json::json;

use crate::fixture::{Home, Sshd};
use crate::mcp::Mcp;

#[test]
fn changed_host_key_is_refused_with_both_fingerprints() {
    let mut sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    home.run(&["exec", "srv", "--", "true"]).ok();
    let old = sshd.host_fingerprint();
    let shown = home.run(&["conn", "show", "srv", "--json"]).ok().json();
    assert_eq!(shown["pinned_host_key"], old.as_str());

    sshd.restart(true);
    let new = sshd.host_fingerprint();
    assert_ne!(old, new);
    // The pooled session died with the old sshd; the new login must see the new key.
    let r = home
        .run(&["exec", "srv", "--", "echo", "must not run"])
        .fails();
    assert!(!r.stdout.contains("must not run"));
    assert!(r.stderr.contains("HOST KEY CHANGED"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&old) && r.stderr.contains(&new),
        "both fingerprints: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("127.0.0.1"),
        "names the host: {}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("sshkeep conn trust srv --fingerprint {new}")),
        "{}",
        r.stderr
    );

    let audit = home
        .run(&["audit", "--op", "host_key_refused", "--json"])
        .ok()
        .json();
    assert_eq!(audit.as_array().expect("array").len(), 1);

    // A wrong fingerprint pinned by hand is still refused; the right one lets it through.
    home.run(&["conn", "trust", "srv", "--fingerprint", "not-a-fingerprint"])
        .fails();
    home.run(&["conn", "trust", "srv", "--fingerprint", &new])
        .ok();
    home.run(&["exec", "srv", "--", "true"]).ok();
}

#[test]
fn strict_policy_needs_a_pin_or_known_hosts() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.run(&["key", "generate", "k"]).ok();
    sshd.authorize(&home.run(&["key", "pub", "k"]).ok().stdout);
    let save = |name: &str| {
        home.save_conn(&sshd, name, "k", &["--host-key-policy", "strict"]);
    };
    save("strict1");
    let r = home.run(&["exec", "strict1", "--", "true"]).fails();
    assert!(r.stderr.contains("not trusted yet"), "{}", r.stderr);
    assert!(r.stderr.contains(&sshd.host_fingerprint()), "{}", r.stderr);

    // An entry in ~/.ssh/known_hosts is trusted (and the file is never written).
    let pubkey =
        std::fs::read_to_string(sshd.dir.path().join("host_ed25519.pub")).expect("host pub");
    let kh = home.user_home().join(".ssh/known_hosts");
    let line = format!(
        "[127.0.0.1]:{} {}",
        sshd.port,
        pubkey
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::fs::write(&kh, format!("{line}\n")).expect("known_hosts");
    home.run(&["exec", "strict1", "--", "true"]).ok();
    assert_eq!(
        std::fs::read_to_string(&kh).expect("read"),
        format!("{line}\n")
    );
    std::fs::remove_file(&kh).expect("rm");

    // `conn trust` without a fingerprint pins what the server presents now.
    home.stop_broker();
    let r = home.run(&["exec", "strict1", "--", "true"]).fails();
    assert!(r.stderr.contains("not trusted yet"), "{}", r.stderr);
    let t = home.run(&["conn", "trust", "strict1"]).ok();
    assert!(t.stdout.contains(&sshd.host_fingerprint()), "{}", t.stdout);
    home.run(&["exec", "strict1", "--", "true"]).ok();
}

#[test]
fn known_hosts_mismatch_is_refused() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let other = sshd.dir.path().join("other");
    crate::fixture::keygen(&other, "ed25519", "", "other");
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let line = format!(
        "[127.0.0.1]:{} {}",
        sshd.port,
        pubkey
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::fs::write(
        home.user_home().join(".ssh/known_hosts"),
        format!("{line}\n"),
    )
    .expect("known_hosts");
    let r = home.run(&["exec", "srv", "--", "true"]).fails();
    assert!(r.stderr.contains("HOST KEY CHANGED"), "{}", r.stderr);
    assert!(r.stderr.contains("known_hosts line 1"), "{}", r.stderr);
}

#[test]
fn a_detached_command_on_a_rekeyed_server_says_so_and_does_not_hammer_it() {
    let mut sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let id = home.start(&["srv", "--detach", "--", "sleep 30; echo done"]);
    crate::fixture::wait_for(30, "the command to run", || {
        (home.status(&id)["state"] == "running").then_some(())
    });
    sshd.restart(true);
    // The broker's note is an event of the command (and on the CLI's stderr), never its stdout.
    let logs = crate::fixture::wait_for(60, "the follower to report the refusal", || {
        let l = home.status(&id)["events"].to_string();
        l.contains("[sshkeep] cannot reach").then_some(l)
    });
    let view = home.run(&["logs", &id]).ok();
    assert!(!view.stdout.contains("[sshkeep]"), "{}", view.stdout);
    assert!(
        view.stderr.contains("[sshkeep] cannot reach"),
        "{}",
        view.stderr
    );
    assert!(
        logs.contains("HOST KEY CHANGED") && logs.contains("10 minutes"),
        "{logs}"
    );
    // Refusals are not retried every few seconds (each one is an audit record).
    let count = || {
        home.run(&["audit", "--op", "host_key_refused", "--json"])
            .ok()
            .json()
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = count();
    std::thread::sleep(std::time::Duration::from_secs(8));
    assert_eq!(
        count(),
        before,
        "no retry within seconds of a changed host key"
    );
    assert_eq!(home.status(&id)["state"], "running");
}

#[test]
fn an_agent_may_make_a_first_pin_with_a_fingerprint() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to_with(&sshd, "k", "srv", &["--host-key-policy", "strict"]);
    let mut m = Mcp::start(&home, &[]);
    let (e, t, s) = m.call("ssh_exec", json!({"op": "open", "connectionId": "srv"}));
    assert!(e && s["error"]["code"] == "host_key_unknown", "{t}");
    assert!(
        t.contains(&format!(
            "ssh_conn op=trust connectionId=srv fingerprint={}",
            sshd.host_fingerprint()
        )),
        "{t}"
    );
    m.ok(
        "ssh_conn",
        json!({"op": "trust", "connectionId": "srv", "fingerprint": sshd.host_fingerprint()}),
    );
    m.ok("ssh_exec", json!({"op": "open", "connectionId": "srv"}));
    let trusted = home
        .run(&["audit", "--op", "host_key_trust", "--json"])
        .ok()
        .json();
    assert!(
        trusted[0]["client_exe"]
            .as_str()
            .unwrap_or_default()
            .ends_with("sshkeep"),
        "audited with the client: {trusted}"
    );
}
