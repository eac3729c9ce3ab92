//! The OS keyring backend against a real Secret Service (gnome-keyring-daemon on a private D-Bus
//! session bus). Needs `dbus-run-session` and `gnome-keyring-daemon` (Debian: dbus, gnome-keyring);
//! scripts/test.sh installs them, and CI must have them.

use std::process::Command;

use crate::fixture::{Home, SSHKEEP, Sshd};

fn available() -> bool {
    let have = |b: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    have("dbus-run-session") && have("gnome-keyring-daemon")
}

/// Runs `script` in a fresh D-Bus session with an unlocked gnome-keyring. The keyring's files
/// live in the test home, so a second session sees what the first stored.
fn in_keyring_session(home: &Home, script: &str) -> crate::fixture::Run {
    let wrapped = format!(
        "printf 'keyring-pw' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1\n{script}\nrc=$?\n\"$SSHKEEP\" broker stop >/dev/null 2>&1\nexit $rc"
    );
    Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &wrapped])
        .env("SSHKEEP", SSHKEEP)
        .env("SSHKEEP_HOME", home.sshkeep_home())
        .env("HOME", home.user_home())
        .env("XDG_DATA_HOME", home.user_home().join(".local/share"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("SSHKEEP_PASSPHRASE_FILE")
        .output()
        .expect("dbus-run-session")
        .into()
}

#[test]
fn keyring_vault_unlocks_by_itself_in_a_later_session() {
    if !available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install dbus and gnome-keyring (scripts/test.sh does)"
        );
        eprintln!(
            "skipped: dbus-run-session or gnome-keyring-daemon missing (apt-get install dbus gnome-keyring)"
        );
        return;
    }
    let sshd = Sshd::start();
    let home = Home::new();
    let port = sshd.port.to_string();
    let r = in_keyring_session(
        &home,
        &format!(
            "\"$SSHKEEP\" vault init --backend keyring && \"$SSHKEEP\" key generate k && \"$SSHKEEP\" key pub k > \"$HOME/k.pub\" && \
             \"$SSHKEEP\" conn save s --host 127.0.0.1 --port {port} --user {} --key k",
            sshd.user
        ),
    );
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("backend: keyring"), "{}", r.stdout);
    assert!(
        !home.sshkeep_home().join("state/vault/master.age").exists(),
        "no wrapped identity file with the keyring backend"
    );
    sshd.authorize(&std::fs::read_to_string(home.user_home().join("k.pub")).expect("pub"));

    // A new session, a new broker: it unlocks from the keyring with no passphrase anywhere.
    let r = in_keyring_session(
        &home,
        "\"$SSHKEEP\" status --json && \"$SSHKEEP\" exec s -- echo via-keyring",
    );
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("\"unlocked\": true"), "{}", r.stdout);
    assert!(r.stdout.contains("via-keyring"), "{}", r.stdout);

    // Without a session bus the keyring vault stays locked and says why.
    let st = home.run(&["status", "--json"]).ok().json();
    assert_eq!(st["vault"]["backend"], "keyring");
    assert_eq!(st["vault"]["unlocked"], false);
    let r = home.run(&["unlock"]).fails();
    assert!(r.stderr.contains("OS keyring unavailable"), "{}", r.stderr);
}

#[test]
fn explicit_keyring_backend_without_a_keyring_fails_loudly() {
    let home = Home::new();
    let r = home.run(&["vault", "init", "--backend", "keyring"]).fails();
    assert!(r.stderr.contains("OS keyring unavailable"), "{}", r.stderr);
    assert!(
        !home.sshkeep_home().join("state/vault/vault.json").exists(),
        "nothing half-created"
    );
}
