//! `sshkeep conn import` against a real ~/.ssh/config: aliases, Include, wildcard defaults, an
//! encrypted IdentityFile, a hashed known_hosts entry and a ProxyJump host.

use std::process::Command;

use crate::fixture::{Home, Sshd, SshdOptions, keygen};

#[test]
fn an_ssh_config_is_imported_with_keys_pins_and_a_report() {
    // DEBUG1: the log shows the direct-tcpip request of the ProxyJump host.
    let sshd = Sshd::start_with(SshdOptions {
        extra: vec!["LogLevel DEBUG1".into()],
        ..Default::default()
    });
    let home = Home::with_vault();
    let ssh = home.user_home().join(".ssh");
    std::fs::create_dir_all(ssh.join("config.d")).expect("mkdir");
    keygen(
        &ssh.join("id_test"),
        "ed25519",
        "key pass phrase",
        "imported",
    );
    sshd.authorize(&std::fs::read_to_string(ssh.join("id_test.pub")).expect("pub"));
    // known_hosts holds the server's key, hashed as `ssh-keygen -H` leaves it.
    let host_pub = std::fs::read_to_string(sshd.dir.path().join("host_ed25519.pub")).expect("hk");
    let kh = ssh.join("known_hosts");
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}", sshd.port, host_pub.trim()),
    )
    .expect("kh");
    let st = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&kh)
        .output()
        .expect("ssh-keygen -H");
    assert!(st.status.success());
    assert!(std::fs::read_to_string(&kh).expect("kh").starts_with("|1|"));
    std::fs::write(
        ssh.join("config"),
        format!(
            "Include config.d/*\n\
             Host web\n  HostName 127.0.0.1\n\
             Host inner\n  HostName 127.0.0.1\n  ProxyJump web\n\
             Host behind\n  HostName 10.9.9.9\n  ProxyJump gateway.example\n\
             Host *\n  User {user}\n  Port {port}\n  IdentityFile ~/.ssh/id_test\n  ServerAliveInterval 15\n  ConnectTimeout 7\n  ForwardAgent yes\n",
            user = sshd.user,
            port = sshd.port
        ),
    )
    .expect("config");
    std::fs::write(
        ssh.join("config.d/db"),
        "Host db\n  HostName 127.0.0.1\n  StrictHostKeyChecking yes\n",
    )
    .expect("include");
    let pass = home.dir.path().join("key-pass");
    std::fs::write(&pass, "key pass phrase\n").expect("pass");
    let pass = pass.display().to_string();

    // A dry run says what would happen and changes nothing.
    let r = home.run(&["conn", "import", "--dry-run", "--json"]);
    let dry = r.json();
    assert_eq!(dry["hosts"].as_array().map(Vec::len), Some(4), "{dry}");
    assert!(
        home.run(&["conn", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    let r = home.run(&["conn", "import", "--passphrase-file", &pass, "--json"]);
    assert_eq!(r.code, 1, "a skipped host makes the status 1: {}", r.stdout);
    let report = r.json();
    let row = |alias: &str| {
        report["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .find(|h| h["alias"] == alias)
            .unwrap_or_else(|| panic!("{alias} in {report}"))
            .clone()
    };
    let web = row("web");
    assert_eq!(web["result"], "imported", "{web}");
    assert_eq!(web["key"], "id_test");
    assert_eq!(web["pin"], "known_hosts", "{web}");
    assert!(web["notes"].to_string().contains("forwardagent"), "{web}");
    let db = row("db");
    assert_eq!(db["result"], "imported", "{db}");
    // ProxyJump to an imported alias becomes a jump host; to anything else, a reason.
    let inner = row("inner");
    assert_eq!(inner["result"], "imported", "{inner}");
    let behind = row("behind");
    assert_eq!(behind["result"], "skipped");
    assert!(
        behind["notes"].to_string().contains("ProxyJump"),
        "{behind}"
    );

    // The key is in the vault now; logins never read the file again.
    std::fs::remove_file(ssh.join("id_test")).expect("rm key");
    let r = home.run(&["exec", "web", "--", "echo", "via-alias"]).ok();
    assert_eq!(r.stdout, "via-alias\n");
    // db is strict: it logs in only because known_hosts' key was pinned.
    home.run(&["exec", "db", "true"]).ok();
    // inner goes through web, as `ssh inner` would with its ProxyJump.
    home.stop_broker();
    let r = home.run(&["exec", "inner", "echo", "hopped"]).ok();
    assert_eq!(r.stdout, "hopped\n");
    assert!(
        sshd.log().contains("server_request_direct_tcpip"),
        "through web"
    );
    let shown = home.run(&["conn", "show", "inner", "--json"]).ok().json();
    assert_eq!(shown["jump"], serde_json::json!(["web"]), "{shown}");
    let show = home.run(&["conn", "show", "web", "--json"]).ok().json();
    assert_eq!(show["keepalive_interval"], 15, "{show}");
    assert_eq!(show["connect_timeout"], 7, "{show}");
    assert!(show["pinned_host_key"].as_str().is_some(), "{show}");

    // Importing again leaves saved connections alone unless asked.
    let again = home.run(&["conn", "import", "web", "--json"]).json();
    assert_eq!(again["hosts"][0]["result"], "skipped", "{again}");
    let human = home.run(&["conn", "import", "web", "--replace"]);
    assert_eq!(human.code, 0, "{} {}", human.stdout, human.stderr);
    assert!(human.stdout.contains("replaced"), "{}", human.stdout);
}

#[test]
fn an_alias_that_is_not_saved_works_ad_hoc_and_says_how_to_save_it() {
    let sshd = Sshd::start_with(SshdOptions {
        extra: vec!["LogLevel DEBUG1".into()],
        ..Default::default()
    });
    let home = Home::with_vault();
    home.run(&["key", "generate", "k"]).ok();
    let public = home.run(&["key", "pub", "k"]).ok().stdout;
    sshd.authorize(&public);
    // Only the public half is next to the config: the private file is never read at login.
    let ssh = home.user_home().join(".ssh");
    std::fs::create_dir_all(&ssh).expect("mkdir");
    std::fs::write(ssh.join("id_k.pub"), &public).expect("pub");
    let host = |alias: &str, more: &str| {
        format!(
            "Host {alias}\n  HostName 127.0.0.1\n  Port {}\n  User {}\n{more}",
            sshd.port, sshd.user
        )
    };
    std::fs::write(
        ssh.join("config"),
        [
            host("web", "  IdentityFile ~/.ssh/id_k\n"),
            host("inner", "  IdentityFile ~/.ssh/id_k\n  ProxyJump web\n"),
            host("nokey", "  IdentityFile ~/.ssh/id_elsewhere\n"),
            "Host legacy\n  ProxyCommand nc %h %p\n".to_string(),
        ]
        .concat(),
    )
    .expect("config");

    let r = home.run(&["exec", "web", "--", "echo", "hello"]).ok();
    assert_eq!(r.stdout, "hello\n");
    assert!(r.stderr.contains("sshkeep conn import web"), "{}", r.stderr);
    assert!(
        home.run(&["conn", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .is_some_and(Vec::is_empty),
        "nothing was saved"
    );

    // A ProxyJump to another alias: the second login comes through the first (a fresh broker,
    // so web's open session, the same login, is not simply reused).
    home.stop_broker();
    let before = tunnels(&sshd);
    let r = home.run(&["exec", "inner", "--", "echo", "through"]).ok();
    assert_eq!(r.stdout, "through\n");
    assert!(tunnels(&sshd) > before, "inner was reached through web");

    let r = home.run(&["exec", "nokey", "--", "true"]).fails();
    assert!(
        r.stderr.contains("id_elsewhere") && r.stderr.contains("sshkeep conn import nokey"),
        "{}",
        r.stderr
    );
    let r = home.run(&["exec", "legacy", "--", "true"]).fails();
    assert!(r.stderr.contains("ProxyCommand"), "{}", r.stderr);
    let r = home.run(&["exec", "nowhere", "--", "true"]).fails();
    assert!(r.stderr.contains("nowhere"), "{}", r.stderr);
}

fn tunnels(sshd: &Sshd) -> usize {
    sshd.log()
        .lines()
        .filter(|l| l.contains("server_request_direct_tcpip"))
        .count()
}
