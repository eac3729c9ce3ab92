//! The fleet tools over MCP: the seed's Flow 2 (bulk runs with transient and reused sessions),
//! bulk connect and the fleet audit.

use serde_json::json;

use crate::fixture::{Home, Sshd, wait_for};
use crate::mcp::Mcp;

#[test]
fn seed_flow_2_bulk_runs_through_mcp() {
    let home = Home::with_vault();
    home.run(&["key", "generate", "k"]).ok();
    let public = home.run(&["key", "pub", "k"]).ok().stdout;
    let a = Sshd::start();
    let b = Sshd::start();
    let bad = Sshd::start();
    a.authorize(&public);
    b.authorize(&public);
    home.save_conn(&a, "srv1", "k", &["--client", "AcmeCorp"]);
    home.save_conn(&b, "srv2", "k", &["--client", "AcmeCorp"]);
    home.save_conn(&bad, "srv3", "k", &["--client", "AcmeCorp"]);
    let mut m = Mcp::start(&home, &[]);
    // srv2 has an active session: reused and kept; srv1 gets a transient one, closed after.
    let kept = m.ok("ssh_exec", json!({"op": "open", "connectionId": "srv2"}))["sessionId"]
        .as_str()
        .expect("sid")
        .to_string();

    let conn = m.ok("ssh_bulk_conn", json!({"op": "test", "client": "AcmeCorp"}));
    let oks: Vec<bool> = conn["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["ok"] == true)
        .collect();
    assert_eq!(oks, vec![true, true, false], "{conn}");

    let r = m.ok("ssh_bulk_exec", json!({"commands": ["echo \"port ${SSH_CONNECTION##* }\""], "connectionIds": ["srv1", "srv2", "srv3"], "concurrency": 5}));
    let bulk = r["bulkExecId"].as_str().expect("bulkExecId").to_string();
    let st = wait_for(120, "the bulk run to end", || {
        let s = m.ok("ssh_exec", json!({"op": "status", "bulkExecId": bulk}));
        (s["state"] != "running").then_some(s)
    });
    assert_eq!(st["state"], "failed");
    assert_eq!(st["counts"]["completed"], 2);
    let t3 = st["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["name"] == "srv3")
        .expect("srv3")
        .clone();
    assert_eq!(t3["errorCode"], "auth_failed", "{t3}");
    let one = m.ok(
        "ssh_exec",
        json!({"op": "status", "bulkExecId": bulk, "connectionId": "srv1"}),
    );
    assert_eq!(one["targets"][0]["state"], "completed");
    let (_, text, _) = m.call(
        "ssh_exec",
        json!({"op": "logs", "bulkExecId": bulk, "tail": 20}),
    );
    // The lines travel once, in the text, as `[TARGET] TEXT`.
    let lines: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let (target, rest) = l.strip_prefix('[')?.split_once("] ")?;
            Some((target.to_string(), rest.to_string()))
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            ("srv1".to_string(), format!("port {}", a.port)),
            ("srv2".to_string(), format!("port {}", b.port))
        ]
    );
    let logs = m.ok(
        "ssh_exec",
        json!({"op": "logs", "bulkExecId": bulk, "name": "srv2"}),
    );
    assert_eq!(logs["lines"], 1);

    let sessions = m.ok("ssh_exec", json!({"op": "list"}))["sessions"].clone();
    let ids: Vec<&str> = sessions
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["sessionId"].as_str())
        .collect();
    assert_eq!(ids, vec![kept.as_str()], "transient closed, active kept");
    let (e, t, _) = m.call("ssh_exec", json!({"op": "status", "bulkExecId": "nope"}));
    assert!(e && t.contains("no bulk run named"), "{t}");

    let audit = m.ok(
        "ssh_bulk_audit",
        json!({"op": "security", "client": "AcmeCorp"}),
    );
    let targets = audit["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 3);
    assert_eq!(
        targets[0]["findings"].as_array().expect("findings").len(),
        10
    );
    assert_eq!(targets[2]["errorCode"], "auth_failed");
    let id = audit["auditId"].as_str().expect("auditId");
    let again = m.ok("ssh_bulk_audit", json!({"op": "show", "auditId": id}));
    assert_eq!(again, audit);
    let inv = m.ok(
        "ssh_bulk_audit",
        json!({"op": "inventory", "connectionIds": ["srv1"]}),
    );
    assert!(
        inv["targets"][0]["inventory"]
            .as_array()
            .is_some_and(|i| i.iter().any(|x| x["key"] == "kernel"))
    );
}
