//! Keys that stay in another ssh-agent, destination constraints on sshkeep's agent socket, and
//! agent forwarding on sshkeep's own sessions: against real sshd, ssh-agent, ssh and ssh-add.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::fixture::{Home, Sshd, keygen, wait_for, whoami};

/// OpenSSH's own `ssh-agent`, in the foreground on a socket of the test's; killed on drop.
struct OtherAgent {
    child: Child,
    socket: PathBuf,
}

impl OtherAgent {
    fn start(dir: &Path) -> Self {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        wait_for(20, "ssh-agent's socket", || socket.exists().then_some(()));
        Self { child, socket }
    }

    fn ssh_add(&self, args: &[&str]) -> std::process::Output {
        Command::new("ssh-add")
            .args(args)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdin(Stdio::null())
            .output()
            .expect("ssh-add")
    }

    fn sock(&self) -> &str {
        self.socket.to_str().expect("utf8")
    }
}

impl Drop for OtherAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The base64 body lines of an OpenSSH private key file.
pub(crate) fn private_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_string)
        .collect()
}

/// Every file under `dir`, as bytes.
pub(crate) fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_key_held_only_by_a_running_ssh_agent_logs_in_and_never_reaches_sshkeep() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = OtherAgent::start(dir.path());
    let key = dir.path().join("id_held");
    keygen(&key, "ed25519", "", "held-elsewhere");
    assert!(
        agent
            .ssh_add(&[key.to_str().expect("utf8")])
            .status
            .success()
    );
    let private = std::fs::read_to_string(&key).expect("key");
    let seed = russh::keys::decode_secret_key(&private, None)
        .expect("parse")
        .key_data()
        .ed25519()
        .expect("ed25519")
        .private
        .to_bytes();
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    std::fs::remove_file(&key).expect("delete the key file");
    std::fs::remove_file(key.with_extension("pub")).expect("delete the pub file");
    sshd.authorize(&public);

    let shown = home
        .run(&["key", "add", "ext", "--from-agent", agent.sock(), "--json"])
        .ok()
        .json();
    assert_eq!(shown["held_by"], agent.sock());
    let blob = |l: &str| l.split_whitespace().nth(1).map(str::to_string);
    assert_eq!(
        blob(shown["public_key"].as_str().expect("public key")),
        blob(&public)
    );
    home.save_conn(&sshd, "srv", "ext", &[]);
    let out = home.run(&["exec", "srv", "echo", "via-other-agent"]).ok();
    assert!(out.stdout.contains("via-other-agent"), "{}", out.stdout);
    let uses = home
        .run(&["audit", "--op", "key_use", "--key", "ext", "--json"])
        .ok()
        .json();
    assert!(!uses.as_array().expect("records").is_empty(), "{uses}");
    let added = home
        .run(&["audit", "--op", "key_add", "--json"])
        .ok()
        .json();
    assert!(added.to_string().contains(agent.sock()), "{added}");

    // No byte of the private key in the database, the vault or the broker's log.
    home.run(&["lock"]).ok();
    for (path, bytes) in files_under(&home.sshkeep_home()) {
        assert!(!contains(&bytes, &seed), "private key bytes in {path:?}");
        for l in private_lines(&private) {
            assert!(
                !contains(&bytes, l.as_bytes()),
                "private key text in {path:?}"
            );
        }
    }
    assert!(!home.broker_log().is_empty());
    home.run(&["unlock"]).ok();

    // The agent no longer holds the key: a clear error (a fresh login: conn test).
    assert!(agent.ssh_add(&["-D"]).status.success());
    let t = home.run(&["conn", "test", "srv", "--json"]).json();
    assert_eq!(t["authenticated"], false, "{t}");
    let err = t["error"].as_str().unwrap_or_default();
    assert!(err.contains("no longer holds"), "{err}");
    assert!(err.contains(agent.sock()), "{err}");

    // The agent is gone: a clear error naming the socket.
    drop(agent);
    let t = home.run(&["conn", "test", "srv", "--json"]).json();
    let err = t["error"].as_str().unwrap_or_default();
    assert!(err.contains("not running"), "{err}");
}

/// Runs OpenSSH's `ssh` to `sshd` with `agent` as its agent and `extra` options; returns
/// (stdout, stderr, success).
pub(crate) fn ssh_via(
    sshd: &Sshd,
    agent: &str,
    extra: &[&str],
    command: &str,
) -> (String, String, bool) {
    let options = [&["-o", "IdentitiesOnly=no"], extra].concat();
    let out = sshd
        .openssh(&options, &[command])
        .env("SSH_AUTH_SOCK", agent)
        .output()
        .expect("ssh");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// The command a hop runs to go on to `to` with the forwarded agent.
pub(crate) fn onward(to: &Sshd) -> String {
    format!(
        "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o LogLevel=ERROR -p {} {}@127.0.0.1 echo reached-$((40+2))",
        to.port(),
        whoami()
    )
}

pub(crate) fn agent_socket(home: &Home) -> String {
    home.run(&["agent", "env"])
        .ok()
        .stdout
        .strip_prefix("SSH_AUTH_SOCK=")
        .and_then(|s| s.split(';').next())
        .expect("SSH_AUTH_SOCK line")
        .to_string()
}

#[test]
fn a_destination_constrained_key_signs_for_the_listed_hop_and_not_beyond_it() {
    let a = Sshd::start();
    let b = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&a, "k", "a");
    b.authorize(&home.run(&["key", "pub", "k"]).ok().stdout);
    home.save_conn(&b, "b", "k", &[]);
    // Pin both host keys (the names --only-to takes stand for pinned keys).
    home.run(&["exec", "a", "true"]).ok();
    home.run(&["exec", "b", "true"]).ok();
    let sock = agent_socket(&home);
    home.run(&["key", "agent", "k", "--offer"]).ok();

    // Unconstrained, the forwarded agent takes the hop on to B (the control).
    let (out, err, _) = ssh_via(&a, &sock, &["-A"], &onward(&b));
    assert!(out.contains("reached-42"), "{out} {err}");

    // Constrained to A: A itself is fine, B from A is refused, and B directly too.
    let shown = home
        .run(&["key", "agent", "k", "--only-to", "a", "--json"])
        .ok()
        .json();
    assert_eq!(shown["agent"]["only_to"][0], "a");
    let (out, err, ok) = ssh_via(&a, &sock, &["-A"], "echo on-a");
    assert!(ok && out.contains("on-a"), "{out} {err}");
    let (out, err, _) = ssh_via(&a, &sock, &["-A"], &onward(&b));
    assert!(
        !out.contains("reached-42"),
        "the hop to B must be refused: {out} {err}"
    );
    let (out, _, ok) = ssh_via(&b, &sock, &[], "echo on-b");
    assert!(!ok && !out.contains("on-b"));
    let refused = home
        .run(&["audit", "--op", "agent_sign_refused", "--json"])
        .ok()
        .json();
    let text = refused.to_string();
    assert!(text.contains("destination constraint"), "{text}");
    assert!(text.contains(&b.host_fingerprint()), "{text}");

    // A FROM>TO hop allows exactly that hop.
    home.run(&["key", "agent", "k", "--only-to", "a,a>b"]).ok();
    let (out, err, _) = ssh_via(&a, &sock, &["-A"], &onward(&b));
    assert!(out.contains("reached-42"), "{out} {err}");

    // A socket used without a bound session (not OpenSSH's ssh) signs nothing with it.
    let extra = tempfile::tempdir().expect("tempdir");
    let data = extra.path().join("data");
    std::fs::write(&data, "hello").expect("data");
    std::fs::write(
        extra.path().join("k.pub"),
        home.run(&["key", "pub", "k"]).ok().stdout,
    )
    .expect("pub");
    let sig = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "file", "-f"])
        .arg(extra.path().join("k.pub"))
        .arg(&data)
        .env("SSH_AUTH_SOCK", &sock)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen");
    assert!(
        !sig.status.success(),
        "an unbound signature must be refused"
    );

    // An unknown name is refused when set, not kept as a key that signs nothing.
    home.run(&["key", "agent", "k", "--only-to", "nowhere-at-all"])
        .fails();
}

#[test]
fn forwarding_is_off_by_default_and_serves_only_keys_marked_for_it() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to_with(&sshd, "k", "fwd", &["--forward-agent"]);
    home.run(&["key", "generate", "unmarked"]).ok();
    sshd.authorize(&home.run(&["key", "pub", "unmarked"]).ok().stdout);
    home.save_conn(&sshd, "plain", "unmarked", &[]);
    home.run(&["key", "agent", "k", "--forward"]).ok();

    let out = home
        .run(&["exec", "fwd", "echo sock=$SSH_AUTH_SOCK; ssh-add -L"])
        .ok();
    let sock_line = out.stdout.lines().next().unwrap_or_default().to_string();
    assert!(sock_line.len() > "sock=".len(), "{}", out.stdout);
    let listed: Vec<&str> = out.stdout.lines().skip(1).collect();
    let k_pub = home.run(&["key", "pub", "k"]).ok().stdout;
    let blob = |l: &str| l.split_whitespace().nth(1).map(str::to_string);
    assert_eq!(listed.len(), 1, "only the marked key: {}", out.stdout);
    assert_eq!(blob(listed[0]), blob(&k_pub));

    // A signature through the forwarded agent: the hop logs in to the server again.
    let out = home.run(&["exec", "fwd", &onward(&sshd)]).ok();
    assert!(
        out.stdout.contains("reached-42"),
        "{} {}",
        out.stdout,
        out.stderr
    );
    let signs = home
        .run(&["audit", "--op", "agent_sign", "--json"])
        .ok()
        .json();
    let rec = &signs.as_array().expect("records")[0];
    assert_eq!(rec["key"], "k");
    assert_eq!(rec["conn"], "fwd");
    assert!(
        rec["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("forwarded"),
        "{rec}"
    );

    // Without the opt-in there is no agent on the server.
    let out = home
        .run(&["exec", "plain", "echo sock=$SSH_AUTH_SOCK"])
        .ok();
    assert_eq!(out.stdout.trim(), "sock=", "{}", out.stdout);
}
