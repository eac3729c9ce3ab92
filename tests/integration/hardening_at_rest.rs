//! Attacks on what sshkeep keeps on disk, from the same red-team run as `hardening`: a vault
//! whose metadata went missing, a full disk, a missing database, a damaged `master.age`, an
//! audit chain edited and re-hashed. Each played against the real broker.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::fixture::{Home, Sshd, is_root, wait_for};
use crate::hardening::{field, temp_root};

#[test]
fn vault_init_refuses_to_overwrite_a_vault_whose_metadata_is_missing() {
    let home = Home::with_vault();
    home.run(&["key", "generate", "k"]).ok();
    home.stop_broker();
    let vault = home.sshkeep_home().join("state/vault");
    let master_before = std::fs::read(vault.join("master.age")).expect("master.age");
    std::fs::remove_file(vault.join("vault.json")).expect("rm vault.json");

    // The advice once was "run `sshkeep vault init`", which made a new identity and lost every
    // sealed key for good.
    let listed = home.run(&["key", "generate", "k2"]).fails();
    assert!(
        !listed.stderr.contains("run `sshkeep vault init`") && listed.stderr.contains("restore"),
        "{}",
        listed.stderr
    );
    let init = home
        .run(&["vault", "init", "--backend", "passphrase"])
        .fails();
    assert!(
        init.stderr.contains("vault.json") && init.stderr.contains("restore"),
        "names the missing file and the way back: {}",
        init.stderr
    );
    assert_eq!(
        std::fs::read(vault.join("master.age")).expect("master.age"),
        master_before,
        "master.age untouched"
    );
    // Even with master.age gone too, the sealed keys in the database forbid a new vault.
    home.stop_broker();
    std::fs::rename(vault.join("master.age"), vault.join("master.age.bak")).expect("mv");
    let init = home
        .run(&["vault", "init", "--backend", "passphrase"])
        .fails();
    assert!(init.stderr.contains("sealed key"), "{}", init.stderr);
    assert!(!vault.join("vault.json").exists());
}

#[test]
fn a_full_disk_loses_output_visibly_and_storage_resumes_when_space_returns() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a small tmpfs for the state directory");
        return;
    }
    let sshd = Sshd::start();
    let home = Home::new();
    // The state directory (database, vault, broker log) on a 2 MiB disk.
    let disk = Tmpfs::mount(&home.sshkeep_home().join("state"), "2m");
    home.run(&["vault", "init", "--backend", "passphrase"]).ok();
    home.connect_to(&sshd, "k", "srv");

    // 12 MB of output: more than the disk and more than the writer's memory queue.
    let flood = home.start(&[
        "srv",
        "--",
        "head -c 12000000 /dev/zero | tr '\\0' x | fold -w 199",
    ]);
    let seen = wait_for(180, "the status to report lost output", || {
        let s = home.status(&flood);
        (field(&s, "output_lost_bytes").as_u64().unwrap_or(0) > 0).then_some(s)
    });
    assert!(
        field(&seen, "storage_error").is_string(),
        "the status names the storage error: {seen}"
    );

    // Space comes back: the command's end is recorded, the loss is written down with it, and
    // the next command is stored as usual.
    disk.resize("64m");
    let done = home.wait_done(&flood, 120);
    assert_eq!(done["state"], "completed", "{done}");
    let lost = field(&done, "output_lost_bytes").as_u64().unwrap_or(0);
    assert!(lost > 0, "{done}");
    // The broker's note: in the status's events and on the CLI's stderr, never in stdout.
    let logs = home.run(&["logs", &flood, "--grep", "were lost"]).ok();
    assert!(
        logs.stderr.contains("bytes of output were lost"),
        "a marker line where output went missing: {}",
        logs.stderr
    );
    let events = home.status(&flood)["events"].to_string();
    assert!(events.contains("were lost"), "{events}");
    let next = home.start(&["srv", "--", "echo after the storm"]);
    let st = home.wait_done(&next, 60);
    assert_eq!(st["state"], "completed", "{st}");
    assert_eq!(home.run(&["logs", &next]).ok().stdout, "after the storm\n");
    home.stop_broker();
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).expect("mkdir");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(at)
            .status()
            .expect("mount");
        assert!(st.success(), "mount tmpfs at {}", at.display());
        Self(at.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("remount");
        assert!(st.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_missing_database_is_refused_and_a_stopped_broker_leaves_a_whole_database_file() {
    let home = Home::with_vault();
    home.run(&["key", "generate", "k"]).ok();
    let pid = home.broker_pid();
    home.run(&["broker", "stop"]).ok();
    wait_for(30, "the broker to exit", || {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    let state = home.sshkeep_home().join("state");
    // A backup of sshkeep.db alone (no -wal beside it) holds the keys.
    let backup = temp_root(&home).join("backup.db");
    std::fs::copy(state.join("sshkeep.db"), &backup).expect("copy");
    let db = sshkeep::db::Db::open(&backup).expect("open the backup");
    assert_eq!(
        db.keys().expect("keys").len(),
        1,
        "the database file alone holds the key after a clean stop"
    );
    drop(db);

    for f in ["sshkeep.db", "sshkeep.db-wal", "sshkeep.db-shm"] {
        let _ = std::fs::remove_file(state.join(f));
    }
    let r = home.run(&["key", "list"]).fails();
    assert!(
        r.stderr.contains("sshkeep.db") && r.stderr.to_lowercase().contains("restore"),
        "names the missing database and the way back: {}",
        r.stderr
    );
    assert!(
        !state.join("sshkeep.db").exists()
            || std::fs::metadata(state.join("sshkeep.db"))
                .map(|m| m.len())
                .unwrap_or(0)
                == 0,
        "no empty database made in its place"
    );
    // An empty file in its place is no better.
    std::fs::write(state.join("sshkeep.db"), b"").expect("empty db");
    home.run(&["key", "list"]).fails();
    // Restored, everything is back.
    std::fs::copy(&backup, state.join("sshkeep.db")).expect("restore");
    let keys = home.run(&["key", "list"]).ok().stdout;
    assert!(keys.contains('k'), "{keys}");
}

#[test]
fn a_damaged_master_age_is_named_not_reported_as_a_locked_vault() {
    let home = Home::with_vault();
    home.stop_broker();
    let master = home.sshkeep_home().join("state/vault/master.age");
    let mut bytes = std::fs::read(&master).expect("master.age");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&master, &bytes).expect("damage");
    let status = home.run(&["status"]).ok().stdout;
    assert!(
        status.contains("master.age") && status.contains("damaged"),
        "status names the damaged file: {status}"
    );
    let r = home.run(&["unlock"]).fails();
    assert!(
        r.stderr.contains("master.age")
            && r.stderr.contains("damaged")
            && !r.stderr.contains("wrong passphrase"),
        "{}",
        r.stderr
    );
}

/// Rewrites the audit chain from record `from` on as a plain SHA-256 chain, the way a process
/// that can write the database would cover an edit.
fn rehash_audit_chain(db: &rusqlite::Connection, from: i64) {
    use sha2::{Digest, Sha256};
    type Row = (
        i64,
        i64,
        String,
        Option<String>,
        Option<String>,
        String,
        Option<i64>,
        Option<i64>,
        Option<String>,
    );
    let rows: Vec<Row> = db
        .prepare("SELECT seq, ts, op, key_name, conn, detail, client_pid, client_uid, client_exe FROM audit WHERE seq >= ?1 ORDER BY seq")
        .expect("prepare")
        .query_map([from], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let mut prev: String = db
        .query_row("SELECT hash FROM audit WHERE seq = ?1", [from - 1], |r| {
            r.get(0)
        })
        .expect("previous hash");
    for (seq, ts, op, key, conn, detail, pid, uid, exe) in rows {
        let canonical = json!([seq, ts, op, key, conn, detail, pid, uid, exe, prev]);
        let hash: String = Sha256::digest(canonical.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        db.execute(
            "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            rusqlite::params![seq, prev, hash],
        )
        .expect("rewrite");
        prev = hash;
    }
}

#[test]
fn an_edited_and_re_hashed_or_truncated_audit_log_does_not_verify() {
    let home = Home::with_vault();
    for k in ["k1", "k2", "k3"] {
        home.run(&["key", "generate", k]).ok();
    }
    home.run(&["key", "remove", "k3"]).ok();
    assert!(
        home.run(&["audit", "--verify"])
            .ok()
            .stdout
            .contains("intact")
    );
    let db_path = home.sshkeep_home().join("state/sshkeep.db");

    // Edit the record of k2's creation and re-hash the chain after it.
    let db = sshkeep::db::Db::open(&db_path).expect("open db");
    let seq: i64 = db
        .raw()
        .query_row(
            "SELECT seq FROM audit WHERE key_name = 'k2' ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("k2's record");
    db.raw()
        .execute(
            "UPDATE audit SET detail = 'nothing happened', key_name = NULL WHERE seq = ?1",
            [seq],
        )
        .expect("tamper");
    rehash_audit_chain(db.raw(), seq);
    drop(db);
    let r = home.run(&["audit", "--verify"]).fails();
    assert!(
        r.stdout.contains(&format!("BROKEN at record {seq}")),
        "a re-hashed chain must not verify: {}",
        r.stdout
    );

    // A fresh home: delete the newest records.
    let home = Home::with_vault();
    for k in ["k1", "k2", "k3"] {
        home.run(&["key", "generate", k]).ok();
    }
    let db_path = home.sshkeep_home().join("state/sshkeep.db");
    let db = sshkeep::db::Db::open(&db_path).expect("open db");
    db.raw()
        .execute(
            "DELETE FROM audit WHERE seq > (SELECT MAX(seq) - 2 FROM audit)",
            [],
        )
        .expect("truncate");
    drop(db);
    let r = home.run(&["audit", "--verify"]).fails();
    assert!(r.stdout.contains("truncated"), "{}", r.stdout);
}
