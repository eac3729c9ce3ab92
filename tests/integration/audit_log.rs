//! The hash-chained audit log, seen from the CLI.

use crate::fixture::{Home, Sshd};

#[test]
fn key_use_and_changes_are_audited_and_tampering_is_named() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    home.run(&["exec", "srv", "--", "true"]).ok();

    let all = home.run(&["audit", "--json"]).ok().json();
    let ops: Vec<&str> = all
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["op"].as_str())
        .collect();
    for op in [
        "vault_init",
        "key_generate",
        "conn_save",
        "key_use",
        "host_key_pin",
    ] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
    let uses = home
        .run(&["audit", "--op", "key_use", "--key", "k", "--json"])
        .ok()
        .json();
    let u = &uses[0];
    assert_eq!(u["conn"], "srv");
    assert!(u["client_pid"].as_u64().is_some());
    assert!(
        u["client_exe"]
            .as_str()
            .unwrap_or_default()
            .ends_with("sshkeep"),
        "{u}"
    );
    assert!(
        home.run(&["audit", "--verify"])
            .ok()
            .stdout
            .contains("intact")
    );

    // Change one record behind the broker's back: --verify names it.
    let db = sshkeep::db::Db::open(&home.sshkeep_home().join("state/sshkeep.db")).expect("open db");
    db.raw()
        .execute(
            "UPDATE audit SET detail = 'nothing happened' WHERE seq = 3",
            [],
        )
        .expect("tamper");
    drop(db);
    let r = home.run(&["audit", "--verify"]).fails();
    assert!(r.stdout.contains("BROKEN at record 3"), "{}", r.stdout);
}
