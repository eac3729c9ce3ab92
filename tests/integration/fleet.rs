//! Fleets: bulk runs and bulk connect across many real sshd instances, troublemakers included.

use crate::fixture::{Home, Sshd, SshdOptions};

fn by_name<'a>(info: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    info["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no target {name}"))
}

#[test]
fn a_fleet_of_twenty_servers_with_its_troublemakers() {
    let home = Home::with_vault();
    home.run(&["key", "generate", "fleet"]).ok();
    let public = home.run(&["key", "pub", "fleet"]).ok().stdout;

    let healthy: Vec<Sshd> = (0..15).map(|_| Sshd::start()).collect();
    for (i, s) in healthy.iter().enumerate() {
        s.authorize(&public);
        home.save_conn(s, &format!("web{i:02}"), "fleet", &[]);
    }
    // One channel at a time: three connections share one session that is already open.
    let one_session = Sshd::start_with(SshdOptions {
        max_sessions: Some(1),
        ..Default::default()
    });
    one_session.authorize(&public);
    for n in ["ms1-a", "ms1-b", "ms1-c"] {
        home.save_conn(&one_session, n, "fleet", &[]);
    }
    let kept = home
        .run(&["session", "open", "ms1-a"])
        .ok()
        .stdout
        .trim()
        .to_string();
    // Drops concurrent unauthenticated connections beyond one: four targets handshake at once.
    let one_startup = Sshd::start_with(SshdOptions {
        max_startups: Some("1".into()),
        ..Default::default()
    });
    one_startup.authorize(&public);
    for n in ["startups-a", "startups-b", "startups-c", "startups-d"] {
        home.save_conn(&one_startup, n, "fleet", &[]);
    }
    // Not listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
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
        &closed.to_string(),
        "--user",
        "u",
        "--key",
        "fleet",
    ])
    .ok();
    // Pinned, then re-keyed.
    let mut rekeyed = Sshd::start();
    rekeyed.authorize(&public);
    home.save_conn(&rekeyed, "rekeyed", "fleet", &[]);
    home.run(&["conn", "test", "rekeyed"]).ok();
    rekeyed.restart(true);
    // Does not accept the key.
    let refuses = Sshd::start();
    home.save_conn(&refuses, "refuses", "fleet", &[]);

    let run = home.run(&[
        "bulk",
        "exec",
        "--all",
        "--concurrency",
        "8",
        "--json",
        "--",
        "sleep 0.3; echo \"port ${SSH_CONNECTION##* }\"",
    ]);
    assert_eq!(
        run.code, 1,
        "a failed target makes the exit status non-zero: {}",
        run.stderr
    );
    let info = run.json();
    assert_eq!(info["state"], "failed");
    assert_eq!(info["targets"].as_array().expect("targets").len(), 25);
    let ok: Vec<String> = (0..15)
        .map(|i| format!("web{i:02}"))
        .chain(
            [
                "ms1-a",
                "ms1-b",
                "ms1-c",
                "startups-a",
                "startups-b",
                "startups-c",
                "startups-d",
            ]
            .map(String::from),
        )
        .collect();
    for name in &ok {
        let t = by_name(&info, name);
        assert_eq!(t["state"], "completed", "{name}: {t}");
        assert_eq!(t["exit_code"], 0);
    }
    for (name, code) in [
        ("down", "unreachable"),
        ("rekeyed", "host_key_changed"),
        ("refuses", "auth_failed"),
    ] {
        let t = by_name(&info, name);
        assert_eq!(t["state"], "failed", "{name}: {t}");
        assert_eq!(t["error_code"], code, "{name}: {t}");
        assert!(t["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(info["counts"]["completed"], 22);
    assert_eq!(info["counts"]["failed"], 3);

    // Transient sessions were closed; the one that was open before is still open.
    let sessions = home.run(&["session", "list", "--json"]).ok().json();
    let open: Vec<&str> = sessions
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["session_id"].as_str())
        .collect();
    assert_eq!(open, vec![kept.as_str()], "{sessions}");
    assert_eq!(sessions[0]["state"], "open");

    // Each target's output is what that host printed; the aggregate labels every line.
    let bulk_id = info["bulk_id"].as_str().expect("bulk_id");
    // (Only stdout is compared: a server's login scripts may add lines of their own on stderr.)
    let stdout_texts = |v: &serde_json::Value| -> Vec<(String, String)> {
        v.as_array()
            .expect("lines")
            .iter()
            .filter(|l| l["stream"] == "stdout")
            .map(|l| {
                (
                    l["target"].as_str().unwrap_or_default().to_string(),
                    l["text"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    for (i, s) in healthy.iter().enumerate() {
        let name = format!("web{i:02}");
        let lines = home
            .run(&["bulk", "logs", bulk_id, "--target", &name, "--json"])
            .ok()
            .json();
        assert_eq!(
            stdout_texts(&lines),
            vec![(name.clone(), format!("port {}", s.port))],
            "{lines}"
        );
    }
    let all = home
        .run(&["bulk", "logs", bulk_id, "--stream", "stdout", "--json"])
        .ok()
        .json();
    let all = stdout_texts(&all);
    assert_eq!(all.len(), 22, "one line per successful target");
    for (target, text) in &all {
        let port = if target.starts_with("ms1") {
            one_session.port
        } else if target.starts_with("startups") {
            one_startup.port
        } else {
            healthy[target[3..].parse::<usize>().expect("index")].port
        };
        assert_eq!(text, &format!("port {port}"), "{target}");
    }
    // A target can be named by host too (all are 127.0.0.1 here, so that picks many).
    let one = home
        .run(&["bulk", "status", bulk_id, "--target", "web03", "--json"])
        .ok()
        .json();
    assert_eq!(one["targets"].as_array().expect("targets").len(), 1);
}

#[test]
fn bulk_conn_tests_opens_and_closes_and_bulk_runs_cancel() {
    let home = Home::with_vault();
    home.run(&["key", "generate", "k"]).ok();
    let public = home.run(&["key", "pub", "k"]).ok().stdout;
    let servers: Vec<Sshd> = (0..3).map(|_| Sshd::start()).collect();
    for (i, s) in servers.iter().enumerate() {
        s.authorize(&public);
        home.save_conn(s, &format!("n{i}"), "k", &["--client", "Globex"]);
    }
    let t = home
        .run(&["bulk", "conn", "test", "--client", "Globex", "--json"])
        .ok()
        .json();
    for r in t.as_array().expect("results") {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["report"]["host_key"]["status"], "pinned_now");
        assert!(r["report"]["connect_ms"].as_f64().is_some());
    }
    let opened = home
        .run(&["bulk", "conn", "open", "--conn", "n0,n1,n2", "--json"])
        .ok()
        .json();
    assert_eq!(
        opened
            .as_array()
            .expect("results")
            .iter()
            .filter(|r| r["session_id"].is_string())
            .count(),
        3
    );
    assert_eq!(
        home.run(&["session", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .expect("s")
            .len(),
        3
    );

    // A run on warm sessions reuses them; cancel stops every target.
    let id = home
        .run(&[
            "bulk",
            "exec",
            "--client",
            "Globex",
            "--no-wait",
            "--",
            "sleep 600",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    crate::fixture::wait_for(60, "all targets running", || {
        let s = home.run(&["bulk", "status", &id, "--json"]).ok().json();
        (s["counts"]["running"] == 3).then_some(())
    });
    let c = home
        .run(&["bulk", "cancel", &id, "--target", "n1", "--json"])
        .ok()
        .json();
    assert_eq!(c["targets"][0]["state"], "cancelled");
    let c = home.run(&["bulk", "cancel", &id, "--json"]).ok().json();
    assert_eq!(c["counts"]["cancelled"], 3, "{c}");
    assert_eq!(
        home.run(&["session", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .expect("s")
            .len(),
        3,
        "warm sessions stay open"
    );

    home.run(&["bulk", "conn", "close", "--all"]).ok();
    assert!(
        home.run(&["session", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .expect("s")
            .is_empty()
    );
    let r = home
        .run(&["bulk", "exec", "--client", "Nobody", "--", "true"])
        .fails();
    assert!(
        r.stderr.contains("client 'Nobody' has no connections"),
        "{}",
        r.stderr
    );
}

fn finding<'a>(target: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    target["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check}"))
}

#[test]
fn security_audit_and_inventory_on_real_servers() {
    let home = Home::with_vault();
    home.run(&["key", "generate", "k"]).ok();
    let public = home.run(&["key", "pub", "k"]).ok().stdout;
    let a = Sshd::start();
    a.authorize(&public);
    home.save_conn(&a, "a", "k", &["--client", "Audited"]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    home.run(&[
        "conn",
        "save",
        "gone",
        "--host",
        "127.0.0.1",
        "--port",
        &closed.to_string(),
        "--user",
        "u",
        "--key",
        "k",
        "--client",
        "Audited",
    ])
    .ok();

    let r = home.run(&["bulk", "audit", "security", "--client", "Audited", "--json"]);
    assert_eq!(
        r.code, 1,
        "an unreachable target makes the exit status non-zero"
    );
    let report = r.json();
    let ta = &report["targets"][0];
    assert_eq!(ta["state"], "completed", "{ta}");
    let findings = ta["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 10);
    for f in findings {
        assert!(
            ["pass", "fail", "warn", "info", "skipped"]
                .contains(&f["status"].as_str().unwrap_or_default()),
            "{f}"
        );
        assert!(
            !f["evidence"].as_str().unwrap_or_default().is_empty(),
            "{f}"
        );
        assert!(
            ["high", "medium", "low", "info"].contains(&f["severity"].as_str().unwrap_or_default()),
            "{f}"
        );
        if f["status"] == "fail" || f["status"] == "warn" {
            assert!(
                f["fix"].as_str().is_some_and(|x| !x.is_empty()),
                "a failure says how to fix it: {f}"
            );
        }
    }
    // The server's own listening port shows up (the checks ran on the server we think),
    // however many other sockets listen on this machine: a list is never cut silently.
    let ports = finding(ta, "listening_ports");
    let items: Vec<&str> = ports["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let count = ports["count"].as_u64().expect("count");
    assert_eq!(
        count,
        items.len() as u64 + ports["omitted"].as_u64().unwrap_or(0),
        "{ports}"
    );
    assert!(
        ports["evidence"]
            .as_str()
            .unwrap_or_default()
            .contains(&count.to_string()),
        "{ports}"
    );
    assert!(
        items.iter().any(|i| i.ends_with(&format!(":{}", a.port)))
            || ports["omitted"].as_u64().unwrap_or(0) > 0,
        "{ports}"
    );
    let tg = &report["targets"][1];
    assert_eq!(tg["state"], "failed");
    assert_eq!(tg["error_code"], "unreachable");
    assert!(
        tg["findings"].as_array().expect("findings").is_empty(),
        "no findings invented for a host that was not checked"
    );

    // Stored, and readable again by its id.
    let id = report["audit_id"].as_str().expect("audit_id");
    let again = home.run(&["bulk", "audit", "--show", id, "--json"]).json();
    assert_eq!(again, report);

    // Inventory: this machine's own facts (the sshd runs here).
    let inv = home
        .run(&["bulk", "audit", "inventory", "--conn", "a", "--json"])
        .ok()
        .json();
    let items = inv["targets"][0]["inventory"]
        .as_array()
        .expect("inventory")
        .clone();
    let get = |k: &str| {
        items
            .iter()
            .find(|i| i["key"] == k)
            .map(|i| i["value"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    let kernel = String::from_utf8_lossy(
        &std::process::Command::new("uname")
            .arg("-r")
            .output()
            .expect("uname")
            .stdout,
    )
    .trim()
    .to_string();
    assert_eq!(get("kernel"), kernel);
    assert!(get("cpus").parse::<u32>().is_ok_and(|n| n >= 1));
    assert!(get("memory_kib").parse::<u64>().is_ok_and(|n| n > 0));
    assert!(!get("os").is_empty() && get("disks").contains('/'));
}

#[test]
fn checks_the_login_cannot_run_are_skipped_never_passed() {
    if !crate::fixture::is_root() {
        eprintln!("skipped: needs root to create a throw-away account (CI runs as root)");
        return;
    }
    let home = Home::with_vault();
    let sshd = Sshd::start_as("/bin/sh").expect("root");
    home.connect_to(&sshd, "k", "plain");
    // Any failed check (pending updates on this machine, say) makes the status 1; the checks
    // that could not run are what this test is about.
    let r = home.run(&["bulk", "audit", "security", "--conn", "plain", "--json"]);
    let report = r.json();
    let t = &report["targets"][0];
    assert_eq!(t["state"], "completed", "{t}");
    let shadow = finding(t, "empty_passwords");
    assert_eq!(shadow["status"], "skipped", "{shadow}");
    assert!(
        shadow["evidence"]
            .as_str()
            .unwrap_or_default()
            .contains("needs root"),
        "{shadow}"
    );
    // Without root the effective sshd settings cannot be seen: never judged from the file
    // (which Include, Match and the command line can override).
    for check in ["sshd_password_auth", "sshd_root_login"] {
        let f = finding(t, check);
        assert_eq!(f["status"], "skipped", "{f}");
        assert!(
            f["evidence"]
                .as_str()
                .unwrap_or_default()
                .contains("sshd -T"),
            "{f}"
        );
    }
    let failed = t["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .any(|f| f["status"] == "fail");
    assert_eq!(
        r.code,
        i32::from(failed),
        "the status says whether any check failed"
    );
    if failed {
        let human = home.run(&["bulk", "audit", "security", "--conn", "plain"]);
        assert_eq!(human.code, 1);
        assert!(human.stdout.contains("fix "), "{}", human.stdout);
    }
}
