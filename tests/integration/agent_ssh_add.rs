//! OpenSSH's own `ssh-add` on sshkeep's agent socket: keys added with `-h` (destination
//! constraints), `-t` (lifetime) and `-c` (confirmation), removed with `-d` / `-D`, used by
//! OpenSSH's `ssh` and `ssh -A` hops against real sshd; nothing of them reaches the disk.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::agent_keys::{agent_socket, contains, files_under, onward, private_lines, ssh_via};
use crate::fixture::{Home, Sshd, keygen, whoami};

/// OpenSSH's `ssh-add ARGS` on `sock`, looking host names up in `known_hosts` (`-H`).
fn ssh_add(sock: &str, known_hosts: &Path, args: &[&str]) -> Output {
    Command::new("ssh-add")
        .arg("-H")
        .arg(known_hosts)
        .args(args)
        .env("SSH_AUTH_SOCK", sock)
        .env_remove("DISPLAY")
        .env_remove("SSH_ASKPASS")
        .stdin(Stdio::null())
        .output()
        .expect("ssh-add")
}

fn listed(sock: &str, known_hosts: &Path) -> String {
    String::from_utf8_lossy(&ssh_add(sock, known_hosts, &["-l"]).stdout).into_owned()
}

fn audit(home: &Home, op: &str) -> String {
    home.run(&["audit", "--op", op, "--json"])
        .ok()
        .json()
        .to_string()
}

#[test]
fn ssh_add_h_keys_sign_only_for_the_listed_hosts_and_leave_no_trace() {
    let a = Sshd::start();
    let b = Sshd::start();
    let home = Home::with_vault();
    let sock = agent_socket(&home);
    // A vault key offered on the socket: `ssh-add -D` must leave it.
    home.run(&["key", "generate", "v"]).ok();
    home.run(&["key", "agent", "v", "--offer"]).ok();

    let dir = tempfile::tempdir().expect("tempdir");
    let known = dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "hosta {}\nhostb {}\n",
            a.host_public_key().trim(),
            b.host_public_key().trim()
        ),
    )
    .expect("known_hosts");
    let key = dir.path().join("id_added");
    keygen(&key, "ed25519", "", "added-by-test");
    let private = std::fs::read_to_string(&key).expect("key");
    let seed = russh::keys::decode_secret_key(&private, None)
        .expect("parse")
        .key_data()
        .ed25519()
        .expect("ed25519")
        .private
        .to_bytes();
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    a.authorize(&public);
    b.authorize(&public);
    let keyfile = key.to_str().expect("utf8");
    let pubfile = dir.path().join("id_added.pub");
    let pubfile = pubfile.to_str().expect("utf8");
    // Adds the key with `args`, the key file present only for the add.
    let add = |args: &[&str]| {
        std::fs::write(&key, &private).expect("key file");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let out = ssh_add(&sock, &known, &[args, &[keyfile]].concat());
        std::fs::remove_file(&key).expect("delete the key file");
        out
    };

    let out = add(&["-h", "hosta"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let l = listed(&sock, &known);
    assert!(
        l.contains("added-by-test") && l.contains("sshkeep:v"),
        "{l}"
    );
    let st = home.run(&["agent", "status", "--json"]).ok().json();
    assert_eq!(st["added"][0]["name"], "added-by-test", "{st}");
    assert_eq!(st["added"][0]["only_to"][0], "hosta", "{st}");
    assert_eq!(st["offered"][0], "v", "{st}");

    // A: logs in with the key the file of which is gone. B (authorized too): refused.
    let (out, err, ok) = ssh_via(&a, &sock, &[], "echo on-a");
    assert!(ok && out.contains("on-a"), "{out} {err}");
    let (out, _, ok) = ssh_via(&b, &sock, &[], "echo on-b");
    assert!(!ok && !out.contains("on-b"), "B is not listed: {out}");
    let refused = audit(&home, "agent_sign_refused");
    assert!(refused.contains("destination constraint"), "{refused}");
    assert!(refused.contains(&b.host_fingerprint()), "{refused}");
    assert!(refused.contains("added by ssh-add"), "{refused}");
    let signed = audit(&home, "agent_sign");
    assert!(
        signed.contains("added-by-test") && signed.contains(&a.host_fingerprint()),
        "{signed}"
    );
    // A hop from A on to B: refused unless `-h "hosta>hostb"` is given.
    let (out, err, _) = ssh_via(&a, &sock, &["-A"], &onward(&b));
    assert!(
        !out.contains("reached-42"),
        "A>B is not listed: {out} {err}"
    );
    assert!(add(&["-h", "hosta", "-h", "hosta>hostb"]).status.success());
    let (out, err, _) = ssh_via(&a, &sock, &["-A"], &onward(&b));
    assert!(out.contains("reached-42"), "{out} {err}");
    // A user on the hop limits the account the login may be for.
    assert!(add(&["-h", "someone-else@hosta"]).status.success());
    let (out, _, ok) = ssh_via(&a, &sock, &[], "echo on-a");
    assert!(!ok && !out.contains("on-a"), "another user: {out}");
    assert!(
        add(&["-h", &format!("{}@hosta", whoami())])
            .status
            .success()
    );
    let (out, err, ok) = ssh_via(&a, &sock, &[], "echo on-a");
    assert!(ok && out.contains("on-a"), "{out} {err}");

    // `ssh-add` on the far end of `ssh -A` cannot plant a key, nor drop one.
    let other = dir.path().join("id_remote");
    keygen(&other, "ed25519", "", "planted");
    let (out, err, _) = ssh_via(
        &a,
        &sock,
        &["-A"],
        &format!(
            "ssh-add {} && echo planted-ok; ssh-add -D && echo dropped-ok",
            other.display()
        ),
    );
    assert!(
        !out.contains("planted-ok") && !out.contains("dropped-ok"),
        "{out} {err}"
    );
    assert!(!listed(&sock, &known).contains("planted"));
    assert!(listed(&sock, &known).contains("added-by-test"));
    assert!(audit(&home, "agent_refused").contains("forwarded"));

    // `ssh-add -d` removes the added key; the vault key stays.
    assert!(ssh_add(&sock, &known, &["-d", pubfile]).status.success());
    let l = listed(&sock, &known);
    assert!(
        !l.contains("added-by-test") && l.contains("sshkeep:v"),
        "{l}"
    );
    let (_, _, ok) = ssh_via(&a, &sock, &[], "echo on-a");
    assert!(!ok, "a removed key signs nothing");

    // `ssh-add -t 2`: listed, then gone.
    assert!(add(&["-t", "2"]).status.success());
    assert!(listed(&sock, &known).contains("added-by-test"));
    let st = home.run(&["agent", "status", "--json"]).ok().json();
    assert!(st["added"][0]["expires"].is_number(), "{st}");
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let l = listed(&sock, &known);
    assert!(
        !l.contains("added-by-test") && l.contains("sshkeep:v"),
        "{l}"
    );
    let expired = audit(&home, "agent_remove");
    assert!(expired.contains("end of its lifetime"), "{expired}");

    // `ssh-add -c` with no way to ask: the signature is refused, loudly.
    assert!(add(&["-c"]).status.success());
    let st = home.run(&["agent", "status", "--json"]).ok().json();
    assert_eq!(st["added"][0]["confirm"], true, "{st}");
    let (_, _, ok) = ssh_via(&a, &sock, &[], "echo on-a");
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        assert!(!ok, "no prompt, no signature");
        assert!(audit(&home, "agent_sign_refused").contains("no prompt could be shown"));
    }

    // `ssh-add -D` removes only what ssh-add added.
    assert!(ssh_add(&sock, &known, &["-D"]).status.success());
    let l = listed(&sock, &known);
    assert!(
        !l.contains("added-by-test") && l.contains("sshkeep:v"),
        "{l}"
    );
    let removed = audit(&home, "agent_remove");
    assert!(removed.contains("ssh-add -D"), "{removed}");

    // No byte of the private key in sshkeep's home: database, vault, logs, audit.
    home.run(&["lock"]).ok();
    for (path, bytes) in files_under(&home.sshkeep_home()) {
        assert!(!contains(&bytes, &seed), "private key bytes in {path:?}");
        for l in private_lines(&private) {
            assert!(
                !contains(&bytes, l.as_bytes()),
                "private key text in {path:?}"
            );
        }
    }
    assert!(!home.broker_log().is_empty());
}

#[test]
fn unsupported_constraints_are_refused_and_rsa_and_ecdsa_keys_log_in() {
    let a = Sshd::start();
    let home = Home::with_vault();
    let sock = agent_socket(&home);
    let dir = tempfile::tempdir().expect("tempdir");
    let known = dir.path().join("known_hosts");
    // A host known only through a certificate authority: sshkeep cannot enforce it.
    std::fs::write(
        &known,
        format!("@cert-authority hosta {}\n", a.host_public_key().trim()),
    )
    .expect("known_hosts");
    let key = dir.path().join("id_added");
    keygen(&key, "ed25519", "", "ca-bound");
    let out = ssh_add(&sock, &known, &["-h", "hosta", key.to_str().expect("utf8")]);
    assert!(!out.status.success(), "a CA hop must not be taken");
    assert!(!listed(&sock, &known).contains("ca-bound"));
    let refused = audit(&home, "agent_refused");
    assert!(refused.contains("certificate authority"), "{refused}");
    // The same key without constraints is taken.
    let out = ssh_add(&sock, &known, &[key.to_str().expect("utf8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(listed(&sock, &known).contains("ca-bound"));

    // RSA (signed with SHA-2) and ECDSA keys are taken too, and log in.
    for kind in ["rsa", "ecdsa"] {
        let k = dir.path().join(format!("id_{kind}"));
        keygen(&k, kind, "", &format!("added-{kind}"));
        let out = ssh_add(&sock, &known, &[k.to_str().expect("utf8")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(listed(&sock, &known).contains(&format!("added-{kind}")));
    }
    let (_, _, ok) = ssh_via(&a, &sock, &[], "true");
    assert!(!ok, "nothing authorized yet");
    for kind in ["rsa", "ecdsa"] {
        a.authorize(
            &std::fs::read_to_string(dir.path().join(format!("id_{kind}.pub"))).expect("pub"),
        );
    }
    for (kind, alg) in [("rsa", "rsa-sha2-512"), ("ecdsa", "ecdsa-sha2-nistp256")] {
        let opt = format!("PubkeyAcceptedAlgorithms={alg}");
        let (out, err, ok) = ssh_via(&a, &sock, &["-o", &opt], "echo logged-in");
        assert!(ok && out.contains("logged-in"), "{kind}: {out} {err}");
        let signed = audit(&home, "agent_sign");
        assert!(signed.contains(&format!("added-{kind}")), "{signed}");
    }
}

#[test]
fn a_server_that_sshkeep_forwards_its_agent_to_cannot_add_or_remove_keys() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to_with(&sshd, "k", "fwd", &["--forward-agent"]);
    home.run(&["key", "agent", "k", "--forward"]).ok();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("id_remote");
    keygen(&key, "ed25519", "", "planted");
    let out = home
        .run(&[
            "exec",
            "fwd",
            &format!(
                "ssh-add {} && echo planted-ok; ssh-add -D && echo dropped-ok; ssh-add -L | wc -l",
                key.display()
            ),
        ])
        .ok();
    assert!(!out.stdout.contains("planted-ok"), "{}", out.stdout);
    assert!(!out.stdout.contains("dropped-ok"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().last(), Some("1"), "{}", out.stdout);
    let refused = audit(&home, "agent_refused");
    assert!(refused.contains("forwarded to"), "{refused}");
    let sock = agent_socket(&home);
    let listed = Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("ssh-add");
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("planted"));
}

#[test]
fn a_key_the_vault_takes_after_ssh_add_follows_the_vaults_options() {
    let home = Home::with_vault();
    let sock = agent_socket(&home);
    let dir = tempfile::tempdir().expect("tempdir");
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, "").expect("known_hosts");
    let key = dir.path().join("id_both");
    keygen(&key, "ed25519", "", "added-then-kept");
    let keyfile = key.to_str().expect("utf8");
    assert!(ssh_add(&sock, &known, &[keyfile]).status.success());
    assert!(listed(&sock, &known).contains("added-then-kept"));

    // The vault takes the same key: the added copy is wiped, and the key, not offered by the
    // vault, is not listed any more (the looser added copy does not stand in for it).
    home.run(&["key", "add", "kept", "--file", keyfile]).ok();
    let l = listed(&sock, &known);
    assert!(
        !l.contains("added-then-kept") && !l.contains("sshkeep:kept"),
        "{l}"
    );
    let st = home.run(&["agent", "status", "--json"]).ok().json();
    assert_eq!(st["added"].as_array().map(Vec::len), Some(0), "{st}");
    let removed = audit(&home, "agent_remove");
    assert!(removed.contains("in the vault now"), "{removed}");
    // Offered by the vault: listed once, under the vault's name.
    home.run(&["key", "agent", "kept", "--offer"]).ok();
    let l = listed(&sock, &known);
    assert!(l.contains("sshkeep:kept") && l.lines().count() == 1, "{l}");
}
