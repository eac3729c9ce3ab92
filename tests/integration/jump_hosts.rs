//! Jump hosts (ProxyJump) through real sshds: each hop its own login with its own pinned host
//! key, a changed key at any hop refused by that hop's name, chains of hops, and a fleet behind
//! one bastion sharing one bastion login.

use crate::fixture::{Home, Sshd, SshdOptions};

/// A bastion whose log shows the `direct-tcpip` requests it serves.
fn bastion() -> Sshd {
    Sshd::start_with(SshdOptions {
        extra: vec!["LogLevel DEBUG1".into()],
        ..Default::default()
    })
}

/// Logins the server accepted.
fn logins(sshd: &Sshd) -> usize {
    sshd.log()
        .lines()
        .filter(|l| l.contains("Accepted publickey"))
        .count()
}

fn save_behind(home: &Home, target: &Sshd, name: &str, jump: &str) {
    let port = target.port.to_string();
    home.run(&[
        "conn",
        "save",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        &target.user,
        "--key",
        "k",
        "--jump",
        jump,
    ])
    .ok();
}

#[test]
fn a_target_is_reached_through_one_or_two_bastions_and_hop_keys_are_checked_by_name() {
    let mut outer = bastion();
    let inner_bastion = bastion();
    let mut target = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&outer, "k", "outer");
    let public = home.run(&["key", "pub", "k"]).ok().stdout;
    inner_bastion.authorize(&public);
    target.authorize(&public);
    save_behind(&home, &target, "app", "outer");
    let r = home
        .run(&["exec", "app", "--", "echo through-$((1+1))"])
        .ok();
    assert_eq!(r.stdout, "through-2\n");
    let log = outer.log();
    assert!(
        log.lines()
            .any(|l| l.contains("server_request_direct_tcpip")
                && l.contains(&format!("target 127.0.0.1 port {}", target.port))),
        "the bastion carried the connection: {log}"
    );
    let show = home.run(&["conn", "show", "app"]).ok().stdout;
    assert!(show.contains("jump through     outer"), "{show}");

    // Two hops: outer, then inner_bastion (itself saved behind outer), then the target.
    save_behind(&home, &inner_bastion, "inner", "outer");
    save_behind(&home, &target, "deep", "outer,inner");
    // A session to the same login is reused whatever the path: start from none.
    home.stop_broker();
    home.run(&["exec", "deep", "true"]).ok();
    assert!(
        inner_bastion.log().contains("server_request_direct_tcpip"),
        "the second hop carried it"
    );
    // A hop that is not a saved connection is refused at save time, by name.
    let port = target.port.to_string();
    let r = home
        .run(&[
            "conn",
            "save",
            "bad",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            "u",
            "--jump",
            "nowhere",
        ])
        .fails();
    assert!(r.stderr.contains("nowhere"), "{}", r.stderr);

    // The target re-keyed: refused, naming the target, even though the bastion is fine.
    home.stop_broker();
    target.restart(true);
    let r = home.run(&["exec", "app", "true"]).fails();
    assert!(
        r.stderr.contains("HOST KEY CHANGED") && r.stderr.contains("'app'"),
        "{}",
        r.stderr
    );
    // The bastion re-keyed: refused, naming the bastion.
    home.stop_broker();
    outer.restart(true);
    let r = home.run(&["exec", "app", "true"]).fails();
    assert!(
        r.stderr.contains("HOST KEY CHANGED") && r.stderr.contains("'outer'"),
        "{}",
        r.stderr
    );
}

#[test]
fn twenty_targets_behind_one_bastion_use_one_bastion_login() {
    let gate = bastion();
    let home = Home::with_vault();
    home.connect_to(&gate, "k", "gate");
    let public = home.run(&["key", "pub", "k"]).ok().stdout;
    let targets: Vec<Sshd> = (0..20).map(|_| Sshd::start()).collect();
    let mut names = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        t.authorize(&public);
        let name = format!("t{i}");
        save_behind(&home, t, &name, "gate");
        names.push(name);
    }
    let r = home.run(&[
        "bulk",
        "exec",
        "--conn",
        &names.join(","),
        "--concurrency",
        "20",
        "--json",
        "--",
        "echo",
        "ok",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let logins = logins(&gate);
    assert_eq!(logins, 1, "one bastion login for the whole fleet");
    let tunnels = gate
        .log()
        .lines()
        .filter(|l| l.contains("server_request_direct_tcpip"))
        .count();
    assert!(
        tunnels >= 20,
        "every target through the bastion ({tunnels})"
    );
}

#[test]
fn a_fleet_behind_a_bastion_heals_around_the_targets_limits_with_one_bastion_login() {
    let gate = Sshd::start_with(SshdOptions {
        max_sessions: Some(1),
        max_startups: Some("1".into()),
        extra: vec!["LogLevel DEBUG1".into()],
        ..Default::default()
    });
    let home = Home::with_vault();
    home.connect_to(&gate, "k", "gate");
    let public = home.run(&["key", "pub", "k"]).ok().stdout;
    // Behind the bastion: a server that drops concurrent handshakes beyond one, and one that
    // allows a single session per login; each saved several times, so they are hit at once.
    let one_startup = Sshd::start_with(SshdOptions {
        max_startups: Some("1".into()),
        ..Default::default()
    });
    let one_session = Sshd::start_with(SshdOptions {
        max_sessions: Some(1),
        ..Default::default()
    });
    let mut names = Vec::new();
    for (sshd, prefix, n) in [(&one_startup, "startups", 4), (&one_session, "sessions", 3)] {
        sshd.authorize(&public);
        for i in 0..n {
            let name = format!("{prefix}-{i}");
            home.save_conn(sshd, &name, "k", &["--jump", "gate"]);
            names.push(name);
        }
    }
    let r = home.run(&[
        "bulk",
        "exec",
        "--conn",
        &names.join(","),
        "--concurrency",
        "8",
        "--json",
        "--",
        "sleep 0.3; echo ok",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let info = r.json();
    let targets = info["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), names.len());
    assert!(targets.iter().all(|t| t["state"] == "completed"), "{info}");
    let logins = logins(&gate);
    assert_eq!(logins, 1, "one bastion login for the whole run");
    // The limits did bite: the queue healed around them rather than never meeting them.
    assert!(
        one_startup.log().contains("past MaxStartups"),
        "{}",
        one_startup.log()
    );
}
