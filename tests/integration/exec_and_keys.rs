//! The new-user path, exit status passthrough, key import formats.

use std::path::Path;

use crate::fixture::{Home, Sshd, keygen};

#[test]
fn new_user_path_from_vault_to_exec() {
    let sshd = Sshd::start();
    let home = Home::new();
    let init = home.run(&["vault", "init", "--backend", "passphrase"]).ok();
    assert!(
        init.stdout.contains("backend: passphrase"),
        "{}",
        init.stdout
    );

    home.run(&["key", "generate", "deploy"]).ok();
    let public = home.run(&["key", "pub", "deploy"]).ok().stdout;
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    sshd.authorize(&public);

    let port = sshd.port.to_string();
    home.run(&[
        "conn",
        "save",
        "web",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        &sshd.user,
    ])
    .ok();
    home.run(&["key", "link", "deploy", "web"]).ok();
    let shown = home.run(&["key", "show", "deploy", "--json"]).ok().json();
    assert_eq!(shown["connections"], serde_json::json!(["web"]));

    let test = home.run(&["conn", "test", "web", "--json"]).ok().json();
    assert_eq!(test["reachable"], true);
    assert_eq!(test["authenticated"], true);
    assert_eq!(test["host_key"]["fingerprint"], sshd.host_fingerprint());
    assert_eq!(test["host_key"]["status"], "pinned_now");
    assert!(test["connect_ms"].as_f64().is_some());

    let out = home
        .run(&["exec", "web", "--", "echo", "hello from $(hostname)"])
        .ok();
    assert!(out.stdout.starts_with("hello from "), "{}", out.stdout);

    let status = home.run(&["status", "--json"]).ok().json();
    assert_eq!(status["vault"]["backend"], "passphrase");
    assert_eq!(status["vault"]["unlocked"], true);
    assert_eq!(
        status["sessions_open"], 1,
        "exec keeps its session open for reuse"
    );
}

#[test]
fn exit_status_and_streams_pass_through() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");

    let r = home.run(&["exec", "srv", "--", "echo out; echo err >&2; exit 7"]);
    assert_eq!(r.code, 7);
    assert_eq!(r.stdout, "out\n");
    // (A server's login scripts may print to stderr first; the command's own line comes last.)
    assert_eq!(r.stderr.lines().last(), Some("err"), "{}", r.stderr);

    let r = home.run(&["exec", "srv", "--", "kill -TERM $$"]);
    assert_eq!(r.code, 128 + 15, "a signal maps to 128+N: {}", r.stderr);

    // Binary output survives the trip unchanged.
    let r = home
        .command(&["exec", "srv", "--", "printf '\\000\\001\\377'"])
        .output()
        .expect("run");
    assert_eq!(r.stdout, vec![0u8, 1, 255]);

    // An ad-hoc address resolves to the saved connection with the same user, host and port.
    let r = home
        .run(&["exec", &sshd.address(), "--", "echo adhoc"])
        .ok();
    assert_eq!(r.stdout, "adhoc\n");
}

#[test]
fn adhoc_address_needs_a_key_and_says_so() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.run(&["key", "generate", "k"]).ok();
    let r = home.run(&["exec", &sshd.address(), "--", "true"]).fails();
    assert!(r.stderr.contains("pass --key KEY"), "{}", r.stderr);
    sshd.authorize(&home.run(&["key", "pub", "k"]).ok().stdout);
    home.run(&["exec", "--key", "k", &sshd.address(), "--", "true"])
        .ok();
}

fn body_lines(private_key_file: &Path) -> Vec<String> {
    std::fs::read_to_string(private_key_file)
        .expect("key file")
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20 && !l.contains(':'))
        .map(str::to_string)
        .collect()
}

#[test]
fn passphrase_protected_and_pem_keys_import_and_work() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    let d = home.dir.path();

    keygen(&d.join("enc"), "ed25519", "s3cret pass", "enc");
    std::fs::write(d.join("wrong"), "not it\n").expect("write");
    std::fs::write(d.join("right"), "s3cret pass\n").expect("write");
    let enc = d.join("enc").display().to_string();

    // No terminal and no passphrase file: a clear refusal, nothing stored.
    let r = home.run(&["key", "add", "enc", "--file", &enc]).fails();
    assert!(r.stderr.contains("--passphrase-file"), "{}", r.stderr);
    let r = home
        .run(&[
            "key",
            "add",
            "enc",
            "--file",
            &enc,
            "--passphrase-file",
            &d.join("wrong").display().to_string(),
        ])
        .fails();
    assert!(r.stderr.contains("does not decrypt"), "{}", r.stderr);
    assert!(
        home.run(&["key", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .expect("array")
            .is_empty()
    );

    home.run(&[
        "key",
        "add",
        "enc",
        "--file",
        &enc,
        "--passphrase-file",
        &d.join("right").display().to_string(),
    ])
    .ok();
    sshd.authorize(&std::fs::read_to_string(d.join("enc.pub")).expect("pub"));

    // A PEM (PKCS#1) RSA key, read from standard input.
    let pem = d.join("pem");
    let st = std::process::Command::new("ssh-keygen")
        .args([
            "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-C", "pem", "-f",
        ])
        .arg(&pem)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    assert!(
        std::fs::read_to_string(&pem)
            .expect("pem")
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    home.run_with_stdin(
        &["key", "add", "pem", "--stdin"],
        &std::fs::read(&pem).expect("pem"),
    )
    .ok();
    sshd.authorize(&std::fs::read_to_string(d.join("pem.pub")).expect("pub"));

    for key in ["enc", "pem"] {
        let conn = format!("via-{key}");
        home.save_conn(&sshd, &conn, key, &[]);
        let r = home.run(&["exec", &conn, "--", "echo", key]).ok();
        assert_eq!(r.stdout.trim(), key);
    }

    // The fingerprint sshkeep reports is OpenSSH's.
    let fp = home.run(&["key", "show", "pem", "--json"]).ok().json()["fingerprint"]
        .as_str()
        .expect("fp")
        .to_string();
    let keygen_fp = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(d.join("pem.pub"))
        .output()
        .expect("lf");
    assert!(String::from_utf8_lossy(&keygen_fp.stdout).contains(&fp));

    // Garbage is refused with a clear error.
    let r = home.run_with_stdin(&["key", "add", "junk", "--stdin"], b"this is not a key");
    assert!(r.fails().stderr.contains("not a private key"));
}

#[test]
fn no_private_key_bytes_anywhere_under_sshkeep_home() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    let d = home.dir.path();
    keygen(&d.join("plain"), "ed25519", "", "plain");
    home.run(&[
        "key",
        "add",
        "plain",
        "--file",
        &d.join("plain").display().to_string(),
    ])
    .ok();
    sshd.authorize(&std::fs::read_to_string(d.join("plain.pub")).expect("pub"));
    home.save_conn(&sshd, "s", "plain", &[]);
    home.run(&["exec", "s", "--", "true"]).ok();
    home.run(&["key", "show", "plain"]).ok();

    let needles = body_lines(&d.join("plain"));
    assert!(!needles.is_empty());
    let mut checked = 0;
    for entry in walk(&home.sshkeep_home()) {
        let Ok(bytes) = std::fs::read(&entry) else {
            continue;
        };
        checked += 1;
        let text = String::from_utf8_lossy(&bytes);
        for n in &needles {
            assert!(
                !text.contains(n.as_str()),
                "private key material found in {}",
                entry.display()
            );
        }
        assert!(
            !text.contains("AGE-SECRET-KEY-1"),
            "vault identity in clear in {}",
            entry.display()
        );
    }
    assert!(
        checked >= 3,
        "expected the database, vault files and log to be checked"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn key_and_connection_management_errors_are_actionable() {
    let home = Home::with_vault();
    home.run(&["key", "generate", "k"]).ok();
    let r = home.run(&["key", "generate", "k"]).fails();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    let r = home.run(&["key", "show", "nope"]).fails();
    assert!(r.stderr.contains("sshkeep key list"), "{}", r.stderr);
    let r = home
        .run(&["conn", "save", "bad name", "--host", "h", "--user", "u"])
        .fails();
    assert!(r.stderr.contains("invalid connection name"), "{}", r.stderr);
    let r = home
        .run(&["conn", "save", "x", "--host", "h;rm -rf /", "--user", "u"])
        .fails();
    assert!(r.stderr.contains("invalid host"), "{}", r.stderr);
    home.run(&[
        "conn",
        "save",
        "c",
        "--host",
        "127.0.0.1",
        "--user",
        "u",
        "--key",
        "k",
    ])
    .ok();
    let r = home.run(&["key", "remove", "k"]).fails();
    assert!(r.stderr.contains("linked to c"), "{}", r.stderr);
    home.run(&["key", "unlink", "k", "c"]).ok();
    home.run(&["key", "remove", "k"]).ok();
    let r = home.run(&["exec", "c", "--", "true"]).fails();
    assert!(r.stderr.contains("no key linked"), "{}", r.stderr);
    home.run(&["conn", "remove", "c"]).ok();
    let r = home.run(&["exec", "c", "--", "true"]).fails();
    assert!(r.stderr.contains("no connection named 'c'"), "{}", r.stderr);
}

#[test]
fn unreachable_host_is_named() {
    let home = Home::with_vault();
    home.run(&["key", "generate", "k"]).ok();
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    home.run(&[
        "conn",
        "save",
        "down",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--user",
        "u",
        "--key",
        "k",
    ])
    .ok();
    let r = home.run(&["exec", "down", "--", "true"]).fails();
    assert!(
        r.stderr.contains("cannot reach connection 'down'"),
        "{}",
        r.stderr
    );
    let t = home.run(&["conn", "test", "down", "--json"]).fails().json();
    assert_eq!(t["reachable"], false);
    assert_eq!(t["error_code"], "unreachable");
}

#[test]
fn client_groups_from_the_cli() {
    let home = Home::with_vault();
    for c in ["web1", "web2", "db1"] {
        home.run(&["conn", "save", c, "--host", "127.0.0.1", "--user", "u"])
            .ok();
    }
    home.run(&["client", "assign", "AcmeCorp", "web1", "web2"])
        .ok();
    home.run(&[
        "conn",
        "save",
        "db1",
        "--host",
        "127.0.0.1",
        "--user",
        "u",
        "--client",
        "Globex",
    ])
    .ok();
    let groups = home.run(&["client", "list", "--json"]).ok().json();
    assert_eq!(
        groups,
        serde_json::json!([
            {"name": "AcmeCorp", "connections": ["web1", "web2"]},
            {"name": "Globex", "connections": ["db1"]}
        ])
    );
    home.run(&["client", "remove", "web2"]).ok();
    let r = home.run(&["client", "assign", "AcmeCorp", "nope"]).fails();
    assert!(
        r.stderr.contains("no connection named 'nope'"),
        "{}",
        r.stderr
    );
    let groups = home.run(&["client", "list", "--json"]).ok().json();
    assert_eq!(groups[0]["connections"], serde_json::json!(["web1"]));
}
