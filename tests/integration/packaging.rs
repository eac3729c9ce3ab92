//! What packagers and operators expect: completions bash loads, a man page, the systemd user
//! unit, and shell recordings that play as asciicast v2.

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fixture::{Home, SSHKEEP, Sshd, wait_for};
use crate::mcp::Mcp;

#[test]
fn completions_load_in_bash_and_the_man_page_renders() {
    let home = Home::new();
    let r = home.run(&["completion", "bash"]).ok();
    assert!(r.stdout.contains("sshkeep"), "{}", r.stdout);
    // Loaded by bash itself, as `source <(sshkeep completion bash)` would.
    let out = Command::new("bash")
        .args([
            "-c",
            "source \"$1\" && complete -p sshkeep && COMP_WORDS=(sshkeep cance) COMP_CWORD=1 && \
             _sshkeep sshkeep cance sshkeep && printf '%s\\n' \"${COMPREPLY[@]}\"",
            "bash",
        ])
        .arg(write_temp(&r.stdout))
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("complete"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l == "cancel"),
        "completes subcommands: {stdout}"
    );
    for shell in ["zsh", "fish"] {
        assert!(!home.run(&["completion", shell]).ok().stdout.is_empty());
    }
    let man = home.run(&["man"]).ok().stdout;
    assert!(
        man.starts_with(".ie") || man.contains(".TH sshkeep"),
        "{man}"
    );
    assert!(man.contains("completion"), "the page lists the subcommands");
}

fn write_temp(text: &str) -> std::path::PathBuf {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let p = dir.join("completion.bash");
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn the_systemd_unit_is_written_removed_and_matches_the_one_shipped() {
    let home = Home::new();
    let config = home.user_home().join(".config");
    let unit = config.join("systemd/user/sshkeep.service");
    let r = home
        .command(&["service", "install", "--no-start"])
        .env("XDG_CONFIG_HOME", &config)
        .output()
        .expect("run");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = std::fs::read_to_string(&unit).expect("unit written");
    assert!(
        text.contains(&format!("ExecStart={SSHKEEP} broker")),
        "{text}"
    );
    assert!(text.contains("LimitCORE=0"), "{text}");
    assert!(
        text.contains(&format!(
            "Environment=\"SSHKEEP_HOME={}\"",
            home.sshkeep_home().display()
        )),
        "the service's broker is the one this CLI finds: {text}"
    );
    // The unit in the repository is the same text, for the usual install path.
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd/sshkeep.service"),
    )
    .expect("contrib/systemd/sshkeep.service");
    let generic: String = text
        .lines()
        .filter(|l| !l.starts_with("Environment="))
        .map(|l| l.replace(SSHKEEP, "%h/.cargo/bin/sshkeep") + "\n")
        .collect();
    assert_eq!(generic, shipped);
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let v = Command::new("systemd-analyze")
            .args(["verify", "--user"])
            .arg(&unit)
            .output()
            .expect("verify");
        let err = String::from_utf8_lossy(&v.stderr);
        assert!(!err.contains("sshkeep.service:"), "{err}");
    }
    let r = home
        .command(&["service", "uninstall"])
        .env("XDG_CONFIG_HOME", &config)
        .output()
        .expect("run");
    assert!(r.status.success());
    assert!(!unit.exists());
}

#[test]
fn a_shell_is_recorded_as_asciicast_with_who_typed_marked() {
    if !crate::fixture::has_tool("script") {
        eprintln!("skipped: script (util-linux) missing");
        return;
    }
    let sshd = Sshd::start_as("/bin/bash").unwrap_or_else(Sshd::start);
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let mut mcp = Mcp::start(&home, &[]);
    let open = mcp.ok(
        "ssh_shell",
        json!({"op": "open", "connectionId": "srv", "persist": false}),
    );
    let id = open["shellId"].as_str().expect("shellId").to_string();
    mcp.ok(
        "ssh_shell",
        json!({"op": "send", "shellId": id, "text": "echo agent-$((20+1))", "enter": true}),
    );
    mcp.ok(
        "ssh_shell",
        json!({"op": "wait", "shellId": id, "pattern": "agent-21", "timeout": 30}),
    );
    // A person attaches to the same shell and types.
    let mut child = home.in_terminal(&format!("shell --attach {id}"));
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::sleep(Duration::from_secs(2));
    stdin
        .write_all(b"echo person-$((30+2)); exit\r")
        .expect("type");
    let _ = wait_for(30, "the shell to end", || child.try_wait().ok().flatten());
    let mut out = String::new();
    let _ = child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out);

    let cast = home.run(&["shell", "--export", &id]).ok().stdout;
    let lines: Vec<Value> = cast
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["version"], 2, "{}", lines[0]);
    assert!(lines[0]["width"].as_u64().is_some());
    let events: Vec<(String, String)> = lines[1..]
        .iter()
        .map(|e| {
            assert!(e[0].as_f64().is_some(), "{e}");
            (
                e[1].as_str().unwrap_or_default().to_string(),
                e[2].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let pos = |kind: &str, needle: &str| {
        events
            .iter()
            .position(|(k, t)| k == kind && t.contains(needle))
            .unwrap_or_else(|| panic!("no {kind} event with {needle:?} in {events:?}"))
    };
    let agent = pos("m", "agent");
    let typed = pos("i", "echo agent-$((20+1))");
    let person = pos("m", "person");
    assert!(agent < typed && typed < person);
    // A person's keystrokes (a password at a prompt, say) are not kept, only marked.
    assert!(events[person..].iter().all(|(k, _)| k != "i"), "{events:?}");
    // What was shown is there too, as the terminal got it.
    let shown: String = events
        .iter()
        .filter(|(k, _)| k == "o")
        .map(|(_, t)| t.as_str())
        .collect();
    assert!(
        shown.contains("agent-21") && shown.contains("person-32"),
        "{shown}"
    );
    // The audit record of the shell points at its recording.
    let audit = home.run(&["audit", "--json"]).ok().stdout;
    assert!(audit.contains(&format!("{id}.cast")), "{audit}");
    // Not a shell id: refused by name, no path built from it.
    let r = home.run(&["shell", "--export", "../../etc/passwd"]).fails();
    assert!(r.stderr.contains("not a shell id"), "{}", r.stderr);
}
