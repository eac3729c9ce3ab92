//! A server that asks a one-time code after the password (OpenSSH through PAM, with a tiny PAM
//! module built here): the person at the CLI's terminal types it, and the code is kept nowhere;
//! a wrong code is refused; the MCP adapter and the CLI without a terminal get the
//! needs-a-person error with the command to run, and use the session the person opened.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::fixture::{Account, Home, Sshd, SshdOptions, has_tool, is_root, set_password, wait_for};
use crate::mcp::Mcp;

/// A PAM module whose authentication asks "Verification code: " through the PAM conversation
/// (echoed, or hidden while its second file exists) and succeeds only when the answer is the
/// content of the first file it is given. The
/// few PAM types it needs are declared here, so no libpam headers are needed.
const PAM_CODE_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define PAM_SUCCESS 0
#define PAM_CONV 5
#define PAM_AUTH_ERR 7
#define PAM_PROMPT_ECHO_OFF 1
#define PAM_PROMPT_ECHO_ON 2
struct pam_message { int msg_style; const char *msg; };
struct pam_response { char *resp; int resp_retcode; };
struct pam_conv {
    int (*conv)(int, const struct pam_message **, struct pam_response **, void *);
    void *appdata_ptr;
};
typedef struct pam_handle pam_handle_t;
extern int pam_get_item(const pam_handle_t *pamh, int item_type, const void **item);

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    const struct pam_conv *conv = NULL;
    if (argc < 1 || pam_get_item(pamh, PAM_CONV, (const void **)&conv) != PAM_SUCCESS || !conv)
        return PAM_AUTH_ERR;
    char want[128] = {0};
    FILE *f = fopen(argv[0], "r");
    if (!f) return PAM_AUTH_ERR;
    size_t n = fread(want, 1, sizeof want - 1, f);
    fclose(f);
    while (n > 0 && (want[n - 1] == '\n' || want[n - 1] == '\r')) want[--n] = 0;
    int style = PAM_PROMPT_ECHO_ON;
    FILE *hidden = argc > 1 ? fopen(argv[1], "r") : NULL;
    if (hidden) { style = PAM_PROMPT_ECHO_OFF; fclose(hidden); }
    struct pam_message m = { style, "Verification code: " };
    const struct pam_message *mp = &m;
    struct pam_response *r = NULL;
    if (conv->conv(1, &mp, &r, conv->appdata_ptr) != PAM_SUCCESS || !r) return PAM_AUTH_ERR;
    int ok = n > 0 && r->resp && strcmp(r->resp, want) == 0;
    if (r->resp) { memset(r->resp, 0, strlen(r->resp)); free(r->resp); }
    free(r);
    return ok ? PAM_SUCCESS : PAM_AUTH_ERR;
}

int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    return PAM_SUCCESS;
}
"#;

/// Builds the PAM module in `dir` and writes a PAM stack that asks the account's password
/// (pam_unix) and then the code in `code_file`, hidden while `hidden_file` exists. Panics, saying what is missing, without gcc or
/// unshare (scripts/test.sh installs both).
fn pam_stack(dir: &Path, code_file: &Path, hidden_file: &Path) -> PathBuf {
    for tool in ["gcc", "unshare"] {
        assert!(
            has_tool(tool),
            "this test needs `{tool}` (gcc builds its PAM module, unshare gives its sshd a PAM stack of its own): install it (Debian/Ubuntu: `apt-get install gcc util-linux`), or run scripts/test.sh which does"
        );
    }
    let src = dir.join("pam_code.c");
    let module = dir.join("pam_code.so");
    std::fs::write(&src, PAM_CODE_C).expect("write module source");
    let out = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&module)
        .arg(&src)
        .output()
        .expect("gcc");
    assert!(
        out.status.success(),
        "gcc could not build the PAM module: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stack = dir.join("pam-sshd");
    std::fs::write(
        &stack,
        format!(
            "auth required pam_unix.so\nauth required {} {} {}\naccount required pam_permit.so\nsession required pam_permit.so\npassword required pam_deny.so\n",
            module.display(),
            code_file.display(),
            hidden_file.display()
        ),
    )
    .expect("write PAM stack");
    stack
}

/// `sshkeep ARGS` in a pseudo-terminal where the person types `code` once the server's question
/// is on the screen: (succeeded, everything the terminal showed).
fn at_terminal(home: &Home, args: &str, code: &str) -> (bool, String) {
    let mut child = home.in_terminal(args);
    let mut stdout = child.stdout.take().expect("stdout");
    let shown = Arc::new(Mutex::new(String::new()));
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = shown.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        })
    };
    wait_for(60, "the code to be asked at the terminal", || {
        let s = shown.lock().expect("lock").clone();
        s.contains("Verification code: ").then_some(())
    });
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{code}").expect("type the code");
    let status = child.wait().expect("script");
    let _ = reader.join();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let text = format!("{}{err}", shown.lock().expect("lock"));
    (status.success(), text)
}

/// Like [`at_terminal`], running `meanwhile` while the question is on the screen and before
/// the code is typed: (succeeded, what the terminal showed, what `meanwhile` returned).
fn at_terminal_while<T: Send>(
    home: &Home,
    args: &str,
    code: &str,
    meanwhile: impl FnOnce() -> T + Send,
) -> (bool, String, T) {
    let mut child = home.in_terminal(args);
    let shown = watch(child.stdout.take().expect("stdout"));
    wait_for(60, "the code to be asked at the terminal", || {
        let s = shown.lock().expect("lock").clone();
        s.contains("Verification code: ").then_some(())
    });
    // Bounded: a caller kept waiting behind the person's login fails the test instead of
    // hanging it (the code is typed after 30 s either way).
    let (tx, rx) = std::sync::mpsc::channel();
    let waited = std::thread::scope(|scope| {
        scope.spawn(move || {
            let _ = tx.send(meanwhile());
        });
        let waited = rx.recv_timeout(std::time::Duration::from_secs(30));
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{code}").expect("type the code");
        waited.unwrap_or_else(|_| rx.recv().expect("meanwhile"))
    });
    let status = child.wait().expect("script");
    let text = shown.lock().expect("lock").clone();
    (status.success(), text, waited)
}

/// `sshkeep ARGS` in a pseudo-terminal, with ctrl-c pressed at the server's question, then
/// `stty -a` in the same terminal: everything the terminal showed.
fn ctrl_c_at_question(home: &Home, args: &str) -> String {
    // The shell outlives the ctrl-c (its trap) to run stty after sshkeep.
    let mut child = home.in_terminal_script(&format!(
        "trap : INT; {} {args}; stty -a",
        crate::fixture::SSHKEEP
    ));
    let shown = watch(child.stdout.take().expect("stdout"));
    wait_for(60, "the code to be asked at the terminal", || {
        let s = shown.lock().expect("lock").clone();
        s.contains("Verification code: ").then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"\x03").expect("ctrl-c");
    stdin.flush().expect("flush");
    wait_for(60, "stty to show the terminal's state", || {
        let s = shown.lock().expect("lock").clone();
        s.contains("speed").then_some(())
    });
    drop(stdin);
    let _ = child.wait();
    shown.lock().expect("lock").clone()
}

/// Everything read from `out`, as it arrives.
fn watch(mut out: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let shown = Arc::new(Mutex::new(String::new()));
    let s = shown.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut t) = s.lock() {
                t.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    shown
}

/// The secrets in none of the database, its WAL, the broker log, the audit log, or `replies`.
fn nowhere(home: &Home, secrets: &[&str], replies: &[String]) {
    let db_path = home.sshkeep_home().join("state/sshkeep.db");
    let db = std::fs::read(&db_path).expect("db");
    let mut wal = db_path.into_os_string();
    wal.push("-wal");
    let wal = std::fs::read(wal).unwrap_or_default();
    let audit = home.run(&["audit", "--json"]).ok().stdout;
    for secret in secrets {
        for (what, bytes) in [("database", &db), ("database WAL", &wal)] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a secret typed or stored is in the {what}"
            );
        }
        assert!(
            !home.broker_log().contains(secret),
            "a secret is in the broker log"
        );
        assert!(!audit.contains(secret), "a secret is in the audit log");
        for r in replies {
            assert!(!r.contains(secret), "a secret is in a reply: {r}");
        }
    }
}

#[test]
fn a_one_time_code_is_typed_by_the_person_at_the_terminal_and_never_asked_of_an_agent() {
    if !is_root() {
        eprintln!("skipped: needs root for a throw-away account and a private PAM stack");
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let code = format!("4{:06}7", std::process::id() % 1_000_000);
    let code_file = work.path().join("code");
    std::fs::write(&code_file, format!("{code}\n")).expect("code");
    let hidden_file = work.path().join("hidden");
    let stack = pam_stack(work.path(), &code_file, &hidden_file);
    let password = format!("Otp-{}-pw9!Q", std::process::id());
    let mut sshd = Sshd::start_with(SshdOptions {
        extra: vec![
            "UsePAM yes".into(),
            "KbdInteractiveAuthentication yes".into(),
            "PasswordAuthentication no".into(),
        ],
        pam_file: Some(stack),
        ..Default::default()
    });
    let account = Account::create("/bin/sh");
    set_password(&account.name, &password);
    sshd.login_as(account);
    let home = Home::with_vault();
    home.save_password_conn(&sshd, "otp", &password);

    // No terminal (a script, an agent running the CLI): the code is never asked.
    // The server's own words are never passed on to a caller without a person.
    let open = home.run(&["conn", "open", "otp"]).fails();
    assert!(
        !open.stderr.contains("Verification code")
            && open.stderr.contains("only the user can answer")
            && open.stderr.contains("sshkeep conn open otp"),
        "{}",
        open.stderr
    );
    let test = home.run(&["conn", "test", "otp", "--json"]).json();
    assert_eq!(test["authenticated"], false, "{test}");
    assert_eq!(test["error_code"], "needs_person", "{test}");
    let exec = home.run(&["exec", "otp", "--", "echo", "hi"]).fails();
    assert!(
        exec.stderr.contains("sshkeep conn open otp"),
        "{}",
        exec.stderr
    );

    // The agent: the needs-a-person error, with the command the user runs.
    let mut m = Mcp::start(&home, &[]);
    let (err, text, s) = m.call("ssh_exec", json!({"op": "open", "connectionId": "otp"}));
    assert!(err, "{text}");
    assert!(
        text.contains("ask the user to run `sshkeep conn open otp`")
            && !text.contains("Verification code"),
        "{text}"
    );
    assert_eq!(s["error"]["code"], "needs_person", "{s}");
    let mut replies = vec![text, s.to_string()];

    // While the person sits at the question, a caller without a person is not kept waiting
    // behind that login: it gets the needs-a-person answer at once.
    let (ok, shown, waited) =
        at_terminal_while(&home, "exec otp -- echo typed-meanwhile", &code, || {
            let started = std::time::Instant::now();
            let exec = home.run(&["exec", "otp", "--", "echo", "hi"]);
            (exec, started.elapsed())
        });
    assert!(ok && shown.contains("typed-meanwhile"), "{shown}");
    let (exec, took) = waited;
    let exec = exec.fails();
    assert!(
        exec.stderr.contains("sshkeep conn open otp"),
        "{}",
        exec.stderr
    );
    assert!(
        took < std::time::Duration::from_secs(15),
        "a caller without a person waited {took:?} behind the person's login"
    );
    let sessions = home.run(&["session", "list", "--json"]).json();
    let id = sessions[0]["session_id"].as_str().expect("id").to_string();
    home.run(&["session", "close", &id]).ok();

    // Ctrl-c at a hidden question leaves the terminal's echo on.
    std::fs::write(&hidden_file, "").expect("hidden");
    let stty = ctrl_c_at_question(&home, "exec otp -- echo never-ran");
    std::fs::remove_file(&hidden_file).expect("hidden");
    assert!(!stty.contains("never-ran"), "{stty}");
    let echo = stty.split_whitespace().any(|w| w == "echo");
    assert!(
        echo && !stty.split_whitespace().any(|w| w == "-echo"),
        "echo was left off: {stty}"
    );

    // A wrong code typed at the terminal is refused, and says so.
    let wrong = format!("{}1", &code[..code.len() - 1]);
    let (ok, shown) = at_terminal(&home, "conn open otp", &wrong);
    assert!(!ok, "a wrong code logged in: {shown}");
    assert!(shown.contains("not accepted"), "{shown}");
    assert!(home.run(&["session", "list", "--json"]).json() == json!([]));

    // The right code: the session opens, and the agent then uses it without any question.
    let (ok, shown) = at_terminal(&home, "conn open otp", &code);
    assert!(ok, "{shown}\n{}", sshd.log());
    assert!(
        sshd.log().contains("Accepted keyboard-interactive"),
        "{}",
        sshd.log()
    );
    let sessions = home.run(&["session", "list", "--json"]).json();
    assert_eq!(sessions.as_array().map(Vec::len), Some(1), "{sessions}");
    let logins = || {
        home.run(&["audit", "--json"])
            .ok()
            .stdout
            .matches("\"password_use\"")
            .count()
    };
    let before = logins();
    let (err, text, s) = m.call("ssh_exec", json!({"op": "open", "connectionId": "otp"}));
    assert!(!err, "{text}");
    assert_eq!(s["sessionId"], sessions[0]["session_id"], "{s}");
    assert_eq!(
        logins(),
        before,
        "the agent's open logged in again instead of using the session"
    );
    let r = m.ok(
        "ssh_exec",
        json!({"op": "run", "connectionId": "otp", "command": "echo agent-after-person"}),
    );
    let done = m.wait_done(r["commandId"].as_str().expect("id"));
    assert_eq!(done["state"], "completed", "{done}");
    let out = home
        .run(&["exec", "otp", "--", "echo", "cli-after-person"])
        .ok();
    assert_eq!(out.stdout.trim(), "cli-after-person");
    replies.extend([text, s.to_string(), done.to_string(), sessions.to_string()]);

    // `conn test` and `exec` ask at the terminal the same way when they log in.
    let (ok, shown) = at_terminal(&home, "conn test otp", &code);
    assert!(ok, "{shown}");
    let id = sessions[0]["session_id"].as_str().expect("id");
    home.run(&["session", "close", id]).ok();
    let (ok, shown) = at_terminal(&home, "exec otp -- echo typed-then-ran", &code);
    assert!(ok && shown.contains("typed-then-ran"), "{shown}");

    // The audit says a person answered one question at each login (four), never what.
    let audit = home.run(&["audit", "--json"]).ok().stdout;
    assert_eq!(
        audit.matches("answered 1 question (logged in)").count(),
        4,
        "{audit}"
    );
    assert_eq!(audit.matches("answered 1 question (refused)").count(), 1);
    nowhere(&home, &[&code, &password], &replies);
}
