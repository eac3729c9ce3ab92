//! The keyring backend against a real Secret Service: gnome-keyring-daemon on a private D-Bus
//! session bus. The test re-runs itself inside `dbus-run-session`.

use std::process::Command;

use sshkeep_vault::{Backend, BackendChoice, Vault};

const INSIDE: &str = "SSHKEEP_VAULT_TEST_INSIDE_BUS";

fn tools_present() -> bool {
    ["dbus-run-session", "gnome-keyring-daemon"]
        .iter()
        .all(|b| {
            Command::new("sh")
                .args(["-c", &format!("command -v {b}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn keyring_backend_round_trip() {
    if std::env::var_os(INSIDE).is_some() {
        inside_the_bus();
        return;
    }
    if !tools_present() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install dbus and gnome-keyring (scripts/test.sh does)"
        );
        eprintln!("skipped: install dbus and gnome-keyring to test the keyring backend");
        return;
    }
    let home = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("dbus-run-session")
        .args([
            "--",
            "sh",
            "-c",
            "printf pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; exec \"$0\" --exact keyring_backend_round_trip --nocapture",
        ])
        .arg(exe)
        .env(INSIDE, "1")
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .output()
        .expect("dbus-run-session");
    assert!(
        out.status.success(),
        "inside the bus:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn inside_the_bus() {
    sshkeep_vault::keyring_available().expect("the private Secret Service answers");
    let dir = tempfile::tempdir().expect("tempdir");
    let (v, notice) = Vault::create(dir.path(), BackendChoice::Auto, None).expect("create");
    assert!(notice.is_none(), "auto picks the keyring when one answers");
    assert_eq!(v.backend(), Backend::Keyring);
    let ct = v.seal(b"key material").expect("seal");
    drop(v);

    let mut again = Vault::open(dir.path()).expect("open");
    assert!(!again.is_unlocked());
    again.unlock_keyring().expect("unlock from the keyring");
    assert_eq!(
        again.open_sealed(&ct).expect("open").expose(),
        b"key material"
    );
    assert!(
        !dir.path().join("master.age").exists(),
        "the keyring backend writes no identity file"
    );
}
