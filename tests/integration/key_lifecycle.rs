//! Key lifecycle against real sshds: rotation across linked hosts (with a host down, and with
//! the broker killed mid-way), the ssh-agent socket used by OpenSSH's own tools, the idle
//! auto-lock.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::fixture::{Home, Sshd, keygen, wait_for};

const OTHER: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ5zPpm2bB3CFOp0vIzWzm7nJ0rL6a5c9XQfQx2kqG0e someone@else";

/// OpenSSH's `ssh` with only the given identity (or agent), no prompts, no known_hosts.
fn ssh(sshd: &Sshd, extra: &[&str]) -> std::process::Output {
    let options = [&["-o", "ConnectTimeout=10"], extra].concat();
    sshd.openssh(&options, &["echo", "logged-in"])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("ssh")
}

fn logs_in_with_file(sshd: &Sshd, key: &Path) -> bool {
    let k = key.to_str().expect("utf8");
    let out = ssh(
        sshd,
        &[
            "-i",
            k,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
        ],
    );
    String::from_utf8_lossy(&out.stdout).contains("logged-in")
}

/// A home whose key `k` comes from a file (so OpenSSH can try it) and is linked to `n` servers,
/// each with other authorized_keys lines that must survive.
fn fleet(n: usize) -> (Home, Vec<Sshd>, tempfile::TempDir) {
    let home = Home::with_vault();
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old");
    keygen(&old, "ed25519", "", "old@test");
    home.run(&["key", "add", "k", "--file", old.to_str().expect("utf8")])
        .ok();
    let public = std::fs::read_to_string(dir.path().join("old.pub")).expect("pub");
    let mut servers = Vec::new();
    for i in 0..n {
        let sshd = Sshd::start();
        std::fs::write(
            sshd.authorized_keys(),
            format!(
                "# keys of srv{i}\n\nfrom=\"127.0.0.1\",no-pty {OTHER}\n{}",
                public.trim()
            ),
        )
        .expect("authorized_keys");
        let ak = sshd.authorized_keys().display().to_string();
        home.save_conn(&sshd, &format!("srv{i}"), "k", &["--authorized-keys", &ak]);
        servers.push(sshd);
    }
    (home, servers, dir)
}

fn assert_rotated(home: &Home, servers: &[Sshd], old_key_file: &Path) {
    for (i, sshd) in servers.iter().enumerate() {
        let text = std::fs::read_to_string(sshd.authorized_keys()).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            &lines[..3],
            &[
                format!("# keys of srv{i}").as_str(),
                "",
                &format!("from=\"127.0.0.1\",no-pty {OTHER}")
            ],
            "other lines untouched on srv{i}: {text}"
        );
        assert_eq!(
            lines.len(),
            4,
            "exactly the new key added on srv{i}: {text}"
        );
        assert!(
            !logs_in_with_file(sshd, old_key_file),
            "the old key still logs in to srv{i}"
        );
        let out = home
            .run(&["exec", &format!("srv{i}"), "--", "echo", "new-key-ok"])
            .ok();
        assert!(out.stdout.contains("new-key-ok"));
    }
}

#[test]
fn rotation_across_five_hosts_survives_a_host_down_and_resumes() {
    let (home, mut servers, dir) = fleet(5);
    let old = dir.path().join("old");
    assert!(logs_in_with_file(&servers[0], &old));
    let old_fp = home.run(&["key", "show", "k", "--json"]).ok().json()["fingerprint"].clone();

    let plan = home
        .run(&["key", "rotate", "k", "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(plan["state"], "planned");
    assert_eq!(plan["hosts"].as_array().expect("hosts").len(), 5);
    assert_eq!(
        home.run(&["key", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .expect("keys")
            .len(),
        1,
        "a dry run changes nothing"
    );

    servers[2].stop();
    let r = home.run(&["key", "rotate", "k", "--json"]);
    assert_eq!(r.code, 1, "a partial rotation exits 1: {}", r.stdout);
    let r = r.json();
    assert_eq!(r["state"], "partial");
    for h in r["hosts"].as_array().expect("hosts") {
        if h["conn"] == "srv2" {
            assert_eq!(h["step"], "pending");
            assert!(
                h["error"].as_str().unwrap_or("").contains("127.0.0.1"),
                "{h}"
            );
        } else {
            assert_eq!(h["step"], "cleaned", "{h}");
        }
    }
    // The host that was down still works with the old key; the others already do not.
    servers[2].restart(false);
    assert!(logs_in_with_file(&servers[2], &old));
    assert!(!logs_in_with_file(&servers[0], &old));
    let again = home.run(&["key", "rotate", "k"]).fails();
    assert!(again.stderr.contains("--resume"), "{}", again.stderr);

    let r = home
        .run(&["key", "rotate", "k", "--resume", "--json"])
        .ok()
        .json();
    assert_eq!(r["state"], "done", "{r}");
    let retired = r["retired_as"].as_str().expect("retired_as").to_string();
    assert_rotated(&home, &servers, &old);

    let keys = home.run(&["key", "list", "--json"]).ok().json();
    let k = keys
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == "k")
        .expect("k");
    assert_ne!(k["fingerprint"], old_fp);
    assert_eq!(k["connections"].as_array().expect("links").len(), 5);
    let old_row = keys
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == retired.as_str())
        .expect("retired key kept");
    assert_eq!(old_row["fingerprint"], old_fp);
    assert!(old_row["retired"].is_number());
    let refused = home
        .run(&["exec", "srv0", "--key", &retired, "--", "true"])
        .fails();
    assert!(refused.stderr.contains("retired"), "{}", refused.stderr);
    home.run(&["key", "remove", &retired]).ok();
    let audit = home
        .run(&["audit", "--key", "k", "--op", "key_rotate_done", "--json"])
        .ok()
        .json();
    assert_eq!(audit.as_array().expect("records").len(), 1);
    home.run(&["audit", "--verify"]).ok();
}

#[test]
fn a_host_that_never_comes_back_can_be_left_out_of_a_rotation() {
    let (home, mut servers, dir) = fleet(2);
    servers[1].stop();
    let r = home.run(&["key", "rotate", "k", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    // The user gives up on srv1: unlinked, it is left out and the rotation completes.
    home.run(&["key", "unlink", "k", "srv1"]).ok();
    let r = home
        .run(&["key", "rotate", "k", "--resume", "--json"])
        .ok()
        .json();
    assert_eq!(r["state"], "done", "{r}");
    let srv1 = r["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["conn"] == "srv1")
        .expect("srv1");
    assert_eq!(srv1["step"], "dropped", "{r}");
    assert!(!logs_in_with_file(&servers[0], &dir.path().join("old")));
    home.run(&["exec", "srv0", "--", "true"]).ok();
}

#[test]
fn a_broker_killed_mid_rotation_leaves_every_host_with_a_working_key_and_resumes() {
    let (home, servers, dir) = fleet(3);
    let old = dir.path().join("old");
    for stop_at in ["appended", "switched"] {
        let mut child = home
            .command(&["key", "rotate", "k"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rotate");
        let pid = home.broker_pid();
        // Kill -9 as soon as some host reached the step (wherever the broker is by then, the
        // invariant must hold).
        let finished_first = wait_for(60, "the rotation to reach a step", || {
            // A fast machine may finish the whole rotation before the first look.
            if let Ok(Some(status)) = child.try_wait() {
                assert!(status.success(), "the rotation failed on its own: {status}");
                return Some(true);
            }
            let plan = home.run(&["key", "rotate", "k", "--dry-run", "--json"]);
            let plan = plan.json();
            plan["hosts"]
                .as_array()?
                .iter()
                .any(|h| h["step"] == stop_at || h["step"] == "cleaned")
                .then_some(false)
        });
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let _ = child.wait();
        // Every host accepts a key the vault holds, right now, before any resume.
        let keys = home.run(&["key", "list", "--json"]).ok().json();
        let held: Vec<String> = keys
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["name"].as_str().unwrap_or("").to_string())
            .collect();
        for (i, _) in servers.iter().enumerate() {
            let works = held.iter().any(|name| {
                home.command(&["exec", &format!("srv{i}"), "--key", name, "--", "true"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
            assert!(
                works,
                "after kill -9 at {stop_at}, srv{i} accepts no key the vault holds"
            );
        }
        let r = home.run(&["key", "rotate", "k", "--resume", "--json"]);
        if r.code != 0 {
            // Nothing left to resume: the rotation ended before the kill.
            assert!(r.stderr.contains("no rotation"), "{}", r.stderr);
            eprintln!(
                "the rotation finished before the kill at {stop_at} (finished first: {finished_first})"
            );
        } else {
            assert_eq!(r.json()["state"], "done", "{}", r.stdout);
        }
        if stop_at == "appended" {
            assert_rotated(&home, &servers, &old);
        }
    }
}

#[test]
fn openssh_uses_offered_keys_through_the_agent_socket_and_nothing_else() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    home.run(&["key", "generate", "hidden"]).ok();
    sshd.authorize(&home.run(&["key", "pub", "hidden"]).ok().stdout);
    let env = home.run(&["agent", "env"]).ok().stdout;
    let sock = env
        .strip_prefix("SSH_AUTH_SOCK=")
        .and_then(|s| s.split(';').next())
        .expect("SSH_AUTH_SOCK line")
        .to_string();
    assert!(env.trim_end().ends_with("export SSH_AUTH_SOCK;"), "{env}");
    let mode = std::fs::metadata(&sock)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .expect("socket");
    assert_eq!(mode, 0o600);
    let ssh_add = |args: &[&str]| {
        Command::new("ssh-add")
            .args(args)
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .expect("ssh-add")
    };

    // Nothing is offered until the user says so.
    assert!(!ssh_add(&["-L"]).status.success());
    assert!(
        !String::from_utf8_lossy(&ssh(&sshd, &["-o", &format!("IdentityAgent={sock}")]).stdout)
            .contains("logged-in")
    );
    home.run(&["key", "agent", "k", "--offer"]).ok();
    let listed = String::from_utf8_lossy(&ssh_add(&["-L"]).stdout).into_owned();
    let k_pub = home.run(&["key", "pub", "k"]).ok().stdout;
    let blob = |l: &str| l.split_whitespace().nth(1).map(str::to_string);
    assert_eq!(listed.lines().count(), 1, "only the offered key: {listed}");
    assert_eq!(blob(&listed), blob(&k_pub));

    let out = ssh(&sshd, &["-o", &format!("IdentityAgent={sock}")]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("logged-in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit = home
        .run(&["audit", "--op", "agent_sign", "--json"])
        .ok()
        .json();
    let rec = &audit.as_array().expect("records")[0];
    assert_eq!(rec["key"], "k");
    assert!(
        rec["client_exe"].as_str().unwrap_or("").ends_with("ssh"),
        "{rec}"
    );
    assert!(rec["client_pid"].is_number());

    // A vault key is never removed through the socket: `ssh-add -d` is refused (and audited),
    // `ssh-add -D` removes only keys ssh-add added.
    let extra = tempfile::tempdir().expect("tempdir");
    let k_file = extra.path().join("k.pub");
    std::fs::write(&k_file, &k_pub).expect("k.pub");
    assert!(
        !ssh_add(&["-d", k_file.to_str().expect("utf8")])
            .status
            .success()
    );
    assert!(ssh_add(&["-D"]).status.success());
    let refused = home
        .run(&["audit", "--op", "agent_refused", "--json"])
        .ok()
        .json();
    assert!(!refused.as_array().expect("records").is_empty());
    assert_eq!(
        String::from_utf8_lossy(&ssh_add(&["-L"]).stdout)
            .lines()
            .count(),
        1
    );

    // Confirmation with no way to ask fails closed, loudly.
    home.run(&["key", "agent", "k", "--confirm"]).ok();
    home.stop_broker();
    let st = home
        .command(&["status"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("SSH_ASKPASS")
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .output()
        .expect("status");
    assert!(st.status.success());
    assert!(
        !String::from_utf8_lossy(&ssh(&sshd, &["-o", &format!("IdentityAgent={sock}")]).stdout)
            .contains("logged-in")
    );
    let refused = home
        .run(&["audit", "--op", "agent_sign_refused", "--json"])
        .ok()
        .json();
    assert!(
        refused.to_string().contains("no prompt could be shown"),
        "{refused}"
    );
    // With a prompt program that says yes, it signs.
    home.stop_broker();
    let yes = extra.path().join("yes.sh");
    std::fs::write(
        &yes,
        "#!/bin/sh\n[ \"$SSH_ASKPASS_PROMPT\" = confirm ] || exit 1\nexit 0\n",
    )
    .expect("askpass");
    std::fs::set_permissions(&yes, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    home.command(&["status"])
        .env("SSH_ASKPASS", &yes)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .output()
        .expect("status");
    assert!(
        String::from_utf8_lossy(&ssh(&sshd, &["-o", &format!("IdentityAgent={sock}")]).stdout)
            .contains("logged-in")
    );
    // A lifetime ends the offer.
    home.run(&["key", "agent", "k", "--lifetime", "1s"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(
        !ssh_add(&["-L"]).status.success(),
        "expired keys are not listed"
    );
}

#[test]
fn an_idle_vault_locks_itself_keeps_sessions_and_says_why() {
    let a = Sshd::start();
    let b = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&a, "k", "a");
    let pubkey = home.run(&["key", "pub", "k"]).ok().stdout;
    b.authorize(&pubkey);
    home.save_conn(&b, "b", "k", &[]);
    home.run(&["exec", "a", "--", "true"]).ok();
    home.run(&["config", "set", "auto_lock_idle", "2"]).ok();
    wait_for(30, "the vault to lock itself", || {
        let st = home.run(&["status", "--json"]).ok().json();
        (st["vault"]["unlocked"] == false).then_some(())
    });
    // The open session still runs commands; a new login is refused with the reason.
    let out = home.run(&["exec", "a", "--", "echo", "still-open"]).ok();
    assert!(out.stdout.contains("still-open"));
    let refused = home.run(&["exec", "b", "--", "true"]).fails();
    assert!(
        refused.stderr.contains("locked by itself") && refused.stderr.contains("sshkeep unlock"),
        "{}",
        refused.stderr
    );
    home.run(&["unlock"]).ok();
    home.run(&["config", "set", "auto_lock_idle", "0"]).ok();
    home.run(&["exec", "b", "--", "true"]).ok();
    let audit = home
        .run(&["audit", "--op", "vault_auto_lock", "--json"])
        .ok()
        .json();
    assert_eq!(audit.as_array().expect("records").len(), 1);
}
