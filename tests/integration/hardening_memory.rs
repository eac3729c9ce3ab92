//! Attacks on the broker's memory: after logins and `lock`, no copy of a login key, the master
//! identity or the vault passphrase may be left where a process that reads the broker's memory
//! (a debugger, a core dump taken despite the broker's settings, a swap image) would find it.
//! Set `SCAN_DEBUG=1` to see which memory regions hold what the scan finds.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::fixture::{Home, Sshd, is_root, keygen};

/// Counts the places in `pid`'s writable memory, and in its readable anonymous memory, where
/// each needle occurs.
fn count_in_memory(pid: u32, needles: &[(&str, &[u8])]) -> Vec<(String, usize)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("open mem");
    let mut counts = vec![0usize; needles.len()];
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        let path = line.split_whitespace().nth(5).unwrap_or("");
        let anonymous = path.is_empty() || path.starts_with("[heap") || path.starts_with("[stack");
        if !perms.starts_with('r') || (!perms.contains('w') && !anonymous) {
            continue;
        }
        if matches!(path, "[vvar]" | "[vsyscall]" | "[vdso]" | "[vvar_vclock]") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let start = u64::from_str_radix(start, 16).expect("start");
        let end = u64::from_str_radix(end, 16).expect("end");
        let mut buf = vec![0u8; (end - start) as usize];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        for (i, (_, needle)) in needles.iter().enumerate() {
            let n = buf.windows(needle.len()).filter(|w| w == needle).count();
            if n > 0 && std::env::var_os("SCAN_DEBUG").is_some() {
                let offs: Vec<usize> = buf
                    .windows(needle.len())
                    .enumerate()
                    .filter(|(_, w)| w == needle)
                    .map(|(o, _)| o)
                    .take(8)
                    .collect();
                eprintln!(
                    "{n} x {} in {line} at {offs:x?} (len {:x})",
                    needles[i].0,
                    buf.len()
                );
            }
            counts[i] += n;
        }
    }
    needles
        .iter()
        .zip(counts)
        .map(|((name, _), n)| (name.to_string(), n))
        .collect()
}

/// The 32 secret bytes of an `AGE-SECRET-KEY-1...` identity (bech32, checksum not checked).
fn age_identity_bytes(identity: &str) -> Vec<u8> {
    const CHARSET: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let lower = identity.trim().to_ascii_lowercase();
    let data = &lower[lower.rfind('1').expect("bech32 separator") + 1..];
    let data = &data[..data.len() - 6];
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in data.chars() {
        acc = (acc << 5) | CHARSET.find(c).expect("bech32 char") as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The vault's master identity, read the way the broker does: master.age opened with the
/// passphrase.
fn master_identity(home: &Home) -> String {
    let ct = std::fs::read(home.sshkeep_home().join("state/vault/master.age")).expect("master");
    let pass = std::fs::read_to_string(&home.passphrase_file).expect("passphrase");
    let id = age::scrypt::Identity::new(pass.trim_end().to_string().into());
    let plain = age::decrypt(&id, &ct).expect("decrypt master.age");
    String::from_utf8(plain).expect("identity text")
}

fn ed25519_seed(key_file: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(key_file).expect("key");
    let key = russh::keys::PrivateKey::from_openssh(&text).expect("parse key");
    key.key_data()
        .ed25519()
        .expect("ed25519")
        .private
        .to_bytes()
        .to_vec()
}

#[test]
fn lock_leaves_no_copy_of_keys_the_master_identity_or_the_passphrase_in_broker_memory() {
    if !is_root() {
        // Reading a non-dumpable process's memory needs CAP_SYS_PTRACE; CI runs as root.
        eprintln!("skipped: reading the broker's memory needs root");
        return;
    }
    let home = Home::with_vault();
    let sshd = Sshd::start();
    let key_file = home.dir.path().join("login_key");
    keygen(&key_file, "ed25519", "", "memory-test");
    home.run(&[
        "key",
        "add",
        "k",
        "--file",
        key_file.to_str().expect("utf-8"),
    ])
    .ok();
    sshd.authorize(&home.run(&["key", "pub", "k"]).ok().stdout);
    home.save_conn(&sshd, "c", "k", &[]);
    // Six logins: five `conn test`s (each logs in afresh) and a command on a session.
    for _ in 0..5 {
        home.run(&["conn", "test", "c"]).ok();
    }
    home.run(&["exec", "c", "echo", "six"]).ok();

    let seed = ed25519_seed(&key_file);
    let key_text = std::fs::read_to_string(&key_file).expect("key text");
    // A line of the key file's base64 body (it holds the seed); the first ones are a fixed header.
    let key_line = key_text.lines().nth(3).expect("key body line").to_string();
    let identity = master_identity(&home);
    let identity_text = identity.trim().to_string();
    let scalar = age_identity_bytes(&identity_text);
    let pass = std::fs::read_to_string(&home.passphrase_file).expect("passphrase");
    let pass = pass.trim_end().to_string();
    let needles: [(&str, &[u8]); 5] = [
        ("login key seed", &seed),
        ("login key text", key_line.as_bytes()),
        ("master scalar", &scalar),
        ("master identity text", identity_text.as_bytes()),
        ("vault passphrase", pass.as_bytes()),
    ];

    let pid = home.broker_pid();
    let before = count_in_memory(pid, &needles);
    eprintln!("copies while unlocked, after six logins: {before:?}");

    // The unlocked master identity's page is kept out of swap (root has no memory-lock limit).
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let locked_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmLck");
    assert!(
        locked_kb >= 4,
        "the master identity's page is mlocked: {status}"
    );

    home.run(&["lock"]).ok();
    let after = count_in_memory(pid, &needles);
    eprintln!("copies after lock: {after:?}");
    let left: Vec<_> = after.iter().filter(|(_, n)| *n > 0).collect();
    assert!(
        left.is_empty(),
        "lock must leave no copy of secret material in the broker's memory: {left:?}"
    );
    // The scan can find what it looks for: the test process holds each secret itself.
    let own = count_in_memory(std::process::id(), &needles);
    assert!(
        own.iter().all(|(_, n)| *n > 0),
        "the scan finds secrets where they are: {own:?}"
    );
}
