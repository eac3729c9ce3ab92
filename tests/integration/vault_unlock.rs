//! Locking and unlocking the passphrase vault.

use crate::fixture::{Home, Sshd};

#[test]
fn locked_vault_refuses_new_logins_until_unlocked() {
    let sshd = Sshd::start();
    let mut home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");

    // A broker started without SSHKEEP_PASSPHRASE_FILE comes up locked.
    home.stop_broker();
    home.use_passphrase_file = false;
    let st = home.run(&["status", "--json"]).ok().json();
    assert_eq!(st["vault"]["unlocked"], false);
    assert!(
        st["vault"]["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("sshkeep unlock")
    );

    let r = home.run(&["exec", "srv", "--", "echo", "nope"]).fails();
    assert!(
        r.stderr.contains("vault is locked") && r.stderr.contains("need `sshkeep unlock`"),
        "{}",
        r.stderr
    );
    assert!(
        !sshd.log().contains("Accepted publickey"),
        "no login may be attempted while locked"
    );

    // Keys can still be added while locked: sealing needs only the public recipient.
    home.run(&["key", "generate", "while-locked"]).ok();

    // No terminal, no passphrase file: says exactly what to do.
    let r = home.run(&["unlock"]).fails();
    assert!(r.stderr.contains("SSHKEEP_PASSPHRASE_FILE"), "{}", r.stderr);

    let wrong = home.dir.path().join("wrong");
    std::fs::write(&wrong, "not the passphrase\n").expect("write");
    let r = home
        .command(&["unlock"])
        .env("SSHKEEP_PASSPHRASE_FILE", &wrong)
        .output()
        .expect("run");
    assert_ne!(r.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&r.stderr).contains("wrong passphrase"));

    let r = home
        .command(&["unlock"])
        .env("SSHKEEP_PASSPHRASE_FILE", &home.passphrase_file)
        .output()
        .expect("run");
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    home.run(&["exec", "srv", "--", "true"]).ok();

    // `lock` drops the identity; the pooled session stays, a new login is refused.
    home.run(&["lock"]).ok();
    assert_eq!(
        home.run(&["status", "--json"]).ok().json()["vault"]["unlocked"],
        false
    );
    home.run(&["exec", "srv", "--", "true"]).ok();
    let port = sshd.port.to_string();
    home.run(&[
        "conn",
        "save",
        "srv2",
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
    let r = home.run(&["exec", "srv2", "--", "true"]).fails();
    assert!(r.stderr.contains("vault is locked"), "{}", r.stderr);
}

#[test]
fn vault_init_refuses_twice_and_status_without_vault_says_what_to_do() {
    let home = Home::new();
    let st = home.run(&["status", "--json"]).ok().json();
    assert_eq!(st["vault"]["initialized"], false);
    assert!(
        st["vault"]["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("sshkeep vault init")
    );
    let r = home.run(&["key", "generate", "k"]).fails();
    assert!(r.stderr.contains("sshkeep vault init"), "{}", r.stderr);
    home.run(&["vault", "init", "--backend", "passphrase"]).ok();
    let r = home.run(&["vault", "init"]).fails();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
}

#[test]
fn auto_backend_without_a_keyring_says_so_and_uses_the_passphrase() {
    let home = Home::new();
    let r = home.run(&["vault", "init"]).ok();
    assert!(
        r.stdout.contains("no OS keyring is reachable"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("backend: passphrase"), "{}", r.stdout);
    let st = home.run(&["status", "--json"]).ok().json();
    assert_eq!(st["vault"]["backend"], "passphrase");
}
