//! Long MCP calls report progress and can be cancelled; command logs and shell screens are MCP
//! resources.

use serde_json::{Value, json};

use crate::fixture::{Home, Sshd, wait_for};
use crate::mcp::{Mcp, run_sdk_script};

#[test]
fn the_python_sdk_sees_progress_cancels_a_wait_and_reads_resources() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let Some(seen) = run_sdk_script(&home, "progress.py", &["srv".as_ref()]) else {
        return;
    };
    assert_eq!(seen["progress"], "ok", "{seen}");
    assert_eq!(seen["cancelled_wait_running"], "running", "{seen}");
    assert!(seen["progress_notes"].as_u64() >= Some(1), "{seen}");
}

/// Files in `dir` whose name has `part`.
fn named(dir: &std::path::Path, part: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(part))
        .collect()
}

#[test]
fn a_cancelled_upload_stops_in_the_broker_and_leaves_no_file_behind() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let root = tempfile::tempdir().expect("root");
    let remote = tempfile::tempdir().expect("remote");
    // Sparse: large to send, nothing on the local disk.
    std::fs::File::create(root.path().join("big.img"))
        .expect("create")
        .set_len(8 << 30)
        .expect("size");
    std::fs::write(root.path().join("small.txt"), "small\n").expect("write");
    let root_s = root.path().display().to_string();
    let mut mcp = Mcp::start(&home, &[("SSHKEEP_MCP_ROOTS", root_s.as_str())]);
    let target = format!("{}/big.img", remote.path().display());

    mcp.send(json!({"jsonrpc": "2.0", "id": "up", "method": "tools/call", "params": {
        "name": "ssh_sftp",
        "arguments": {"op": "upload", "connectionId": "srv", "localPath": "big.img", "remotePath": target},
        "_meta": {"progressToken": "up-token"},
    }}));
    // Bytes are reported against the token while the file streams.
    let note = loop {
        let m = mcp.next_message();
        assert_ne!(
            m["id"], "up",
            "the upload ended before it was cancelled: {m}"
        );
        if m["method"] == "notifications/progress" {
            break m;
        }
    };
    let p = &note["params"];
    assert_eq!(p["progressToken"], "up-token", "{note}");
    assert_eq!(p["total"].as_f64(), Some((8u64 << 30) as f64), "{note}");
    assert!(
        p["message"]
            .as_str()
            .unwrap_or_default()
            .contains("of 8.0 GiB"),
        "{note}"
    );
    mcp.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": "up", "reason": "test"}}),
    );

    // The broker stops: the temporary file goes, the target never appears, and the audit log
    // says the upload was stopped.
    let audited = wait_for(60, "the stopped upload in the audit log", || {
        let a = home
            .run(&["audit", "--op", "sftp_upload", "--json"])
            .ok()
            .json();
        let line = a.to_string();
        line.contains("stopped").then_some(line)
    });
    assert!(audited.contains("big.img"), "{audited}");
    wait_for(30, "the temporary file to go", || {
        named(remote.path(), "sshkeep-").is_empty().then_some(())
    });
    assert!(
        named(remote.path(), "big.img").is_empty(),
        "nothing left behind"
    );

    // The adapter and the session go on: the next transfer works.
    let small = format!("{}/small.txt", remote.path().display());
    let up = mcp.ok(
        "ssh_sftp",
        json!({"op": "upload", "connectionId": "srv", "localPath": "small.txt", "remotePath": small}),
    );
    assert_eq!(up["files"], 1, "{up}");
    assert_eq!(
        std::fs::read_to_string(remote.path().join("small.txt")).expect("read"),
        "small\n"
    );
}

#[test]
fn resources_list_newest_first_in_pages_and_unknown_ids_are_named() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let ids: Vec<String> = (0..52)
        .map(|i| home.start(&["srv", "--", &format!("echo n{i}")]))
        .collect();
    let mut mcp = Mcp::start(&home, &[]);
    let init_caps = mcp.request("ping", json!({}));
    assert!(init_caps["result"].is_object(), "{init_caps}");

    let first = mcp.request("resources/list", json!({}))["result"].clone();
    let uris = |page: &Value| -> Vec<String> {
        page["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r["uri"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let one = uris(&first);
    assert_eq!(one.len(), 50, "{first}");
    assert_eq!(
        one[0],
        format!("sshkeep://commands/{}/log", ids[51]),
        "newest first"
    );
    let cursor = first["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let second = mcp.request("resources/list", json!({"cursor": cursor}))["result"].clone();
    let two = uris(&second);
    assert_eq!(
        two,
        vec![
            format!("sshkeep://commands/{}/log", ids[1]),
            format!("sshkeep://commands/{}/log", ids[0])
        ],
        "{second}"
    );
    assert!(second["nextCursor"].is_null(), "{second}");
    assert_eq!(first["resources"][0]["mimeType"], "text/plain", "{first}");

    home.wait_done(&ids[7], 30);
    let read = mcp.request(
        "resources/read",
        json!({"uri": format!("sshkeep://commands/{}/log", ids[7])}),
    );
    assert_eq!(read["result"]["contents"][0]["text"], "n7\n", "{read}");

    let unknown = mcp.request(
        "resources/read",
        json!({"uri": "sshkeep://shells/sh-nosuch/screen"}),
    );
    let message = unknown["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("sh-nosuch"), "{unknown}");
    let bad = mcp.request("resources/read", json!({"uri": "sshkeep://keys/k"}));
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("sshkeep://commands/{commandId}/log"),
        "{bad}"
    );
}
