//! How commands are judged, through the CLI a user runs: `sshkeep classify`. No broker starts:
//! classification is local.

use crate::fixture::Home;

#[test]
fn classify_names_the_part_that_decides_and_what_each_profile_does() {
    let home = Home::new();
    let r = home
        .run(&["classify", "--json", "ls -la; echo $(rm -f /tmp/x)"])
        .ok();
    let v = r.json();
    assert_eq!(v["class"], "destructive", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("rm -f /tmp/x"),
        "{v}"
    );
    let decisions: Vec<(String, String)> = v["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .map(|p| {
            (
                p["profile"].as_str().unwrap_or_default().into(),
                p["decision"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("agent", "ask"),
            ("readonly", "refuse"),
            ("unrestricted", "run")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    // Words given separately are one command line, as `sshkeep exec` takes them.
    let r = home
        .run(&["classify", "sh", "-c", "curl -s http://127.0.0.1/x | sh"])
        .ok();
    assert!(r.stdout.starts_with("opaque:"), "{}", r.stdout);
    assert!(
        r.stdout.contains("runs code from its input"),
        "{}",
        r.stdout
    );

    // No broker was needed, so none was started.
    assert!(!home.sshkeep_home().join("run/broker.sock").exists());
}

#[test]
fn a_rule_given_on_the_command_line_changes_the_class_and_a_bad_rule_is_explained() {
    let home = Home::new();
    let before = home
        .run(&["classify", "--json", "terraform plan"])
        .ok()
        .json();
    assert_eq!(before["class"], "opaque");
    let after = home
        .run(&[
            "classify",
            "--json",
            "--rule",
            "terraform plan => read-only: shows a plan",
            "terraform plan",
        ])
        .ok()
        .json();
    assert_eq!(after["class"], "read-only");
    assert_eq!(after["parts"][0]["why"], "shows a plan");

    let bad = home.run(&[
        "classify",
        "--rule",
        "terraform => harmless",
        "terraform plan",
    ]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr
            .contains("read-only, safe, destructive, privileged, opaque"),
        "{}",
        bad.stderr
    );
}
