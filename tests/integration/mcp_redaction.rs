//! What an agent reads through the MCP adapter is redacted; the user's own log keeps the original.

use serde_json::json;

use crate::fixture::{Home, Sshd};
use crate::mcp::Mcp;

#[test]
fn output_an_agent_reads_is_redacted_and_the_user_keeps_the_original() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let config = home.sshkeep_home().join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("redact"),
        "# values never shown to agents\nmysecretvalue42\n",
    )
    .expect("redact file");
    let mut m = Mcp::start(&home, &[]);
    let script = "printf '%s\\n' ok '-----BEGIN OPENSSH PRIVATE KEY-----' \
                  b3BlbnNzaC1rZXktdjEAAAAA '-----END OPENSSH PRIVATE KEY-----' \
                  token=ghp_abcdefghijklmnopqrstuvwxyz0123456789 mysecretvalue42 plain";
    let r = m.ok(
        "ssh_exec",
        json!({"op": "run", "connectionId": "srv", "command": script}),
    );
    let id = r["commandId"].as_str().expect("id").to_string();
    m.wait_done(&id);
    let (_, text, _) = m.call("ssh_exec", json!({"op": "logs", "commandId": id}));
    for secret in [
        "b3BlbnNzaC1rZXktdjEAAAAA",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "mysecretvalue42",
    ] {
        assert!(!text.contains(secret), "{secret} reached the agent: {text}");
    }
    assert!(text.contains("[redacted: private key]"), "{text}");
    assert!(text.contains("[redacted: marked secret]"), "{text}");
    // Line numbers stay true: the plain line is still line 7.
    assert!(
        Mcp::log_lines(&text)
            .iter()
            .any(|(n, _, l)| *n == 7 && l.contains("plain")),
        "{text}"
    );
    // The user's own log keeps every byte.
    let own = home.run(&["logs", &id]).ok().stdout;
    assert!(
        own.contains("b3BlbnNzaC1rZXktdjEAAAAA") && own.contains("mysecretvalue42"),
        "{own}"
    );
}
