//! Every way a server lets you log in, against a real sshd: a stored password (by `password`
//! and by `keyboard-interactive` through PAM), and OpenSSH user certificates (made with
//! ssh-keygen, and signed by sshkeep's own `key cert sign`), an expired one refused before
//! trying. The password never shows up in the database, the broker log or an MCP reply.

use std::process::{Command, Stdio};

use serde_json::json;

use crate::fixture::{Account, Home, Sshd, SshdOptions, is_root, keygen, set_password};
use crate::mcp::Mcp;

/// An sshd with `extra` config lines, logged into as a new account with `password`.
fn server(extra: &[&str], password: &str) -> Option<Sshd> {
    if !is_root() {
        eprintln!("skipped: needs root to make an account and set its password");
        return None;
    }
    let mut sshd = Sshd::start_with(SshdOptions {
        extra: extra.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    });
    let account = Account::create("/bin/sh");
    set_password(&account.name, password);
    sshd.login_as(account);
    Some(sshd)
}

fn no_trace_of(home: &Home, secret: &str, replies: &[String]) {
    let db = std::fs::read(home.sshkeep_home().join("state/sshkeep.db")).expect("db");
    let mut wal = home
        .sshkeep_home()
        .join("state/sshkeep.db")
        .into_os_string();
    wal.push("-wal");
    let wal = std::fs::read(wal).unwrap_or_default();
    for (what, bytes) in [("database", &db), ("database WAL", &wal)] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the password is in the {what}"
        );
    }
    assert!(
        !home.broker_log().contains(secret),
        "the password is in the broker log"
    );
    for r in replies {
        assert!(!r.contains(secret), "the password is in a reply: {r}");
    }
}

#[test]
fn a_stored_password_logs_in_and_goes_nowhere_else() {
    let password = format!("Pw-{}-qz7!Tx", std::process::id());
    let Some(sshd) = server(&["PasswordAuthentication yes"], &password) else {
        return;
    };
    let home = Home::with_vault();
    let port = sshd.port.to_string();
    let saved = home
        .run_with_stdin(
            &[
                "conn",
                "save",
                "pw",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--user",
                &sshd.user,
                "--password-stdin",
            ],
            format!("{password}\n").as_bytes(),
        )
        .ok();
    assert!(
        saved.stdout.contains("stored secret 'pw'"),
        "{}",
        saved.stdout
    );
    let out = home
        .run(&["exec", "pw", "--", "echo", "in-by-password"])
        .ok();
    assert_eq!(out.stdout.trim(), "in-by-password");
    assert!(
        sshd.log().contains("Accepted password for"),
        "{}",
        sshd.log()
    );
    let listed = home.run(&["secret", "list", "--json"]).ok();
    let l = listed.json();
    assert_eq!(l[0]["name"], "pw");
    assert_eq!(l[0]["hosts"], json!([format!("127.0.0.1:{port}")]));
    assert_eq!(l[0]["connections"], json!(["pw"]));

    // An agent may link the stored password by name to the same server, never elsewhere, and
    // can neither set nor read its value.
    let mut m = Mcp::start(&home, &[]);
    let mut replies = Vec::new();
    let c = m.ok(
        "ssh_conn",
        json!({"op": "save", "name": "pw-agent", "host": "127.0.0.1", "port": sshd.port, "username": sshd.user, "passwordSecret": "pw"}),
    );
    assert_eq!(c["passwordSecret"], "pw");
    replies.push(c.to_string());
    let r = m.ok(
        "ssh_exec",
        json!({"op": "run", "connectionId": "pw-agent", "command": "echo agent-in"}),
    );
    let id = r["commandId"].as_str().expect("commandId").to_string();
    let st = m.wait_done(&id);
    assert_eq!(st["state"], "completed", "{st}");
    replies.push(st.to_string());
    let (err, text, v) = m.call(
        "ssh_conn",
        json!({"op": "save", "name": "pw-elsewhere", "host": "127.0.0.2", "port": sshd.port, "username": sshd.user, "passwordSecret": "pw"}),
    );
    assert!(err, "a stored password linked to another server: {text}");
    assert!(text.contains("may be sent only to"), "{text}");
    replies.push(format!("{text}{v}"));
    let (_, text, v) = m.call("ssh_conn", json!({"op": "show", "connectionId": "pw"}));
    replies.push(format!("{text}{v}"));
    drop(m);

    // A profile can store no password: it is the user's.
    let p = home
        .command(&[
            "secret",
            "add",
            "mine",
            "--password-stdin",
            "--profile",
            "agent",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!p.status.success());

    // A wrong password is a clear refusal.
    home.run_with_stdin(&["secret", "add", "pw", "--password-stdin"], b"wrong\n")
        .ok();
    let bad = home.run(&["conn", "test", "pw", "--json"]).json();
    assert_eq!(bad["authenticated"], false, "{bad}");
    assert_eq!(bad["error_code"], "auth_failed", "{bad}");
    assert!(
        bad["error"]
            .as_str()
            .unwrap_or_default()
            .contains("tried password"),
        "{bad}"
    );
    replies.push(bad.to_string());
    no_trace_of(&home, &password, &replies);
}

#[test]
fn keyboard_interactive_answers_the_password_prompt_through_pam() {
    let password = format!("Kb-{}-wq3!Zr", std::process::id());
    // Without PAM, OpenSSH on Linux has no keyboard-interactive device: PAM asks here.
    let Some(sshd) = server(
        &[
            "UsePAM yes",
            "KbdInteractiveAuthentication yes",
            "PasswordAuthentication no",
        ],
        &password,
    ) else {
        return;
    };
    let home = Home::with_vault();
    home.save_password_conn(&sshd, "kbd", &password);
    let t = home.run(&["conn", "test", "kbd", "--json"]).json();
    assert_eq!(t["authenticated"], true, "{t}\n{}", sshd.log());
    assert!(
        sshd.log().contains("Accepted keyboard-interactive"),
        "{}",
        sshd.log()
    );
    no_trace_of(&home, &password, &[t.to_string()]);
}

#[test]
fn certificates_log_in_and_an_expired_one_is_refused_before_trying() {
    if !is_root() {
        eprintln!("skipped: needs root for a throw-away account");
        return;
    }
    let home = Home::with_vault();
    let work = tempfile::tempdir().expect("tempdir");
    // A CA made with ssh-keygen, and one kept in sshkeep's vault; the server trusts both.
    let ca = work.path().join("ca");
    keygen(&ca, "ed25519", "", "test-ca");
    home.run(&["key", "generate", "vault-ca"]).ok();
    let vault_ca = home.run(&["key", "pub", "vault-ca"]).ok().stdout;
    let trusted = work.path().join("trusted_cas");
    let ca_pub = std::fs::read_to_string(ca.with_extension("pub")).expect("ca pub");
    std::fs::write(&trusted, format!("{ca_pub}{vault_ca}")).expect("write");
    let mut perms = std::fs::metadata(work.path()).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(work.path(), perms).expect("chmod");
    let mut sshd = Sshd::start_with(SshdOptions {
        extra: vec![format!("TrustedUserCAKeys {}", trusted.display())],
        ..Default::default()
    });
    sshd.login_as(Account::create("/bin/sh"));
    let save = |conn: &str, key: &str| home.save_conn(&sshd, conn, key, &[]);
    // Signed by ssh-keygen; the key itself is in no authorized_keys.
    let sign = |key: &str, validity: &str| {
        let public = work.path().join(format!("{key}.pub"));
        std::fs::write(&public, home.run(&["key", "pub", key]).ok().stdout).expect("pub");
        let st = Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(&ca)
            .args(["-I", key, "-n", &sshd.user, "-V", validity])
            .arg(&public)
            .status()
            .expect("ssh-keygen");
        assert!(st.success());
        work.path().join(format!("{key}-cert.pub"))
    };
    // An imported key, so that its private bytes are known and can be looked for afterwards.
    let imported = work.path().join("imported");
    keygen(&imported, "ed25519", "", "imported");
    home.run(&[
        "key",
        "add",
        "signed",
        "--file",
        imported.to_str().expect("path"),
    ])
    .ok();
    let cert = sign("signed", "+1h");
    let shown = home
        .run(&[
            "key",
            "cert",
            "add",
            "signed",
            "--file",
            cert.to_str().expect("path"),
        ])
        .ok();
    assert!(shown.stdout.contains(&sshd.user), "{}", shown.stdout);
    assert!(
        shown.stderr.contains("expires within 7 days"),
        "{}",
        shown.stderr
    );
    let k = home.run(&["key", "show", "signed", "--json"]).ok().json();
    assert_eq!(k["certificate"]["principals"], json!([sshd.user]));
    assert_eq!(k["certificate"]["status"], "expiring");
    let ca_fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(ca.with_extension("pub"))
        .output()
        .expect("ssh-keygen -l");
    let ca_fp = String::from_utf8_lossy(&ca_fp.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string();
    assert_eq!(k["certificate"]["ca_fingerprint"], ca_fp);
    save("cert1", "signed");
    let out = home
        .run(&["exec", "cert1", "--", "echo", "in-by-cert"])
        .ok();
    assert_eq!(out.stdout.trim(), "in-by-cert");
    assert!(sshd.log().contains("ED25519-CERT"), "{}", sshd.log());

    // Signed by sshkeep with the CA key in its vault.
    home.run(&["key", "generate", "short"]).ok();
    let signed = home
        .run(&[
            "key",
            "cert",
            "sign",
            "vault-ca",
            "--key",
            "short",
            "--principal",
            &sshd.user,
            "--validity",
            "10m",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(signed["certificate"]["principals"], json!([sshd.user]));
    save("cert2", "short");
    let out = home
        .run(&["exec", "cert2", "--", "echo", "in-by-vault-ca"])
        .ok();
    assert_eq!(out.stdout.trim(), "in-by-vault-ca");

    // Expired: refused before any attempt, with a clear error.
    home.run(&["key", "generate", "old"]).ok();
    let cert = sign("old", "20200101:20200102");
    let shown = home
        .run(&[
            "key",
            "cert",
            "add",
            "old",
            "--file",
            cert.to_str().expect("path"),
        ])
        .ok();
    assert!(shown.stderr.contains("EXPIRED"), "{}", shown.stderr);
    save("cert3", "old");
    let attempts_before = sshd.log().matches("Connection from").count();
    let bad = home.run(&["exec", "cert3", "--", "true"]).fails();
    assert!(
        bad.stderr.contains("certificate of key 'old' expired"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        sshd.log().matches("Connection from").count(),
        attempts_before,
        "an expired certificate must not reach the server"
    );
    // A certificate for another key is refused when attached.
    home.run(&["key", "generate", "other"]).ok();
    home.run(&[
        "key",
        "cert",
        "add",
        "other",
        "--file",
        cert.to_str().expect("path"),
    ])
    .fails();
    // The imported private key's body is nowhere in the database or the broker log.
    let private = std::fs::read_to_string(&imported).expect("key");
    for line in private.lines().filter(|l| !l.starts_with("-----")) {
        no_trace_of(&home, line, &[]);
    }
}
