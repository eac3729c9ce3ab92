//! SFTP transfers and file edits against a real sshd with its internal-sftp.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::fixture::{Home, Sshd};
use crate::mcp::Mcp;

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("hash")
        .to_string()
}

/// Writes `size` bytes of incompressible pseudo-random data (xorshift) without holding them.
fn random_file(path: &Path, size: usize, seed: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut x = seed | 1;
    let mut written = 0;
    let mut buf = vec![0u8; 1 << 16];
    while written < size {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = buf.len().min(size - written);
        f.write_all(&buf[..n]).expect("write");
        written += n;
    }
    f.flush().expect("flush");
}

/// Every regular file under `dir` with its hash, by relative path.
fn tree_hashes(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let m = std::fs::symlink_metadata(e.path()).expect("meta");
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .expect("rel")
                    .display()
                    .to_string();
                out.push((rel, sha256(&e.path())));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_200_mb_file_and_a_tree_round_trip_with_identical_checksums() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let work = tempfile::tempdir().expect("tempdir");
    let remote = tempfile::tempdir().expect("remote dir");

    let big = work.path().join("big.bin");
    random_file(&big, 200 * 1024 * 1024, 7);
    let want = sha256(&big);
    let dest = format!("srv:{}/sub/big.bin", remote.path().display());
    // The destination directory must exist for a single file, as with cp.
    home.run(&[
        "sftp",
        "mkdir",
        "-p",
        "srv",
        &format!("{}/sub", remote.path().display()),
    ])
    .ok();
    let up = home
        .run(&[
            "cp",
            big.to_str().expect("utf8"),
            &dest,
            "--verify",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(up["verified"], true, "{up}");
    assert_eq!(up["bytes"], 200 * 1024 * 1024);
    assert_eq!(up["sha256"], want.as_str());
    assert_eq!(sha256(&remote.path().join("sub/big.bin")), want);
    let back = work.path().join("back.bin");
    let down = home
        .run(&[
            "cp",
            &dest,
            back.to_str().expect("utf8"),
            "--verify",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(down["verified"], true, "{down}");
    assert_eq!(sha256(&back), want);
    // No temporary files are left behind on either side.
    let leftovers: Vec<_> = std::fs::read_dir(remote.path().join("sub"))
        .expect("ls")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, vec!["big.bin".to_string()]);

    // A tree with nested directories, an empty file, odd names and a symlink (not followed).
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("a/b/c")).expect("mkdir");
    std::fs::create_dir_all(tree.join("empty dir")).expect("mkdir");
    std::fs::write(tree.join("top.txt"), "top\n").expect("w");
    std::fs::write(tree.join("a/empty"), "").expect("w");
    std::fs::write(tree.join("a/b/name with spaces & $(x)"), "odd\n").expect("w");
    random_file(&tree.join("a/b/c/blob"), 3 * 1024 * 1024 + 17, 11);
    std::fs::set_permissions(tree.join("top.txt"), std::fs::Permissions::from_mode(0o640))
        .expect("chmod");
    std::os::unix::fs::symlink("/etc/passwd", tree.join("link")).expect("symlink");
    let rtree = format!("{}/tree", remote.path().display());
    let up = home
        .run(&[
            "cp",
            "-r",
            tree.to_str().expect("utf8"),
            &format!("srv:{rtree}"),
            "--verify",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(up["verified"], true, "{up}");
    assert_eq!(up["files"], 4);
    assert!(up["skipped"].to_string().contains("link"), "{up}");
    let back = work.path().join("tree-back");
    home.run(&[
        "cp",
        "-r",
        &format!("srv:{rtree}"),
        back.to_str().expect("utf8"),
        "--json",
    ])
    .ok();
    let mut want = tree_hashes(&tree);
    want.retain(|(p, _)| p != "link");
    assert_eq!(tree_hashes(Path::new(&rtree)), want);
    assert_eq!(tree_hashes(&back), want);
    assert!(back.join("empty dir").is_dir());
    let mode = std::fs::metadata(Path::new(&rtree).join("top.txt"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640, "modes travel with the files");

    // The remote file-system operations.
    let ls = home
        .run(&["sftp", "ls", "srv", &rtree, "--json"])
        .ok()
        .json();
    let names: Vec<_> = ls
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, vec!["a", "empty dir", "top.txt"]);
    home.run(&[
        "sftp",
        "mv",
        "srv",
        &format!("{rtree}/top.txt"),
        &format!("{rtree}/moved.txt"),
    ])
    .ok();
    home.run(&["sftp", "chmod", "srv", "600", &format!("{rtree}/moved.txt")])
        .ok();
    let st = home
        .run(&[
            "sftp",
            "stat",
            "srv",
            &format!("{rtree}/moved.txt"),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(st["mode"], 0o600);
    let refused = home
        .run(&["sftp", "rm", "srv", &format!("{rtree}/a")])
        .fails();
    assert!(refused.stderr.contains("recursive"), "{}", refused.stderr);
    home.run(&["sftp", "rm", "-r", "srv", &format!("{rtree}/a")])
        .ok();
    assert!(!Path::new(&rtree).join("a").exists());
    let missing = home.run(&["sftp", "stat", "srv", "/no/such/path"]).fails();
    assert!(
        missing.stderr.contains("no such file"),
        "{}",
        missing.stderr
    );
}

#[test]
fn file_edits_are_atomic_exact_and_byte_for_byte() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let remote = tempfile::tempdir().expect("remote dir");
    let path = remote.path().join("conf");
    let p = path.to_str().expect("utf8");
    std::fs::write(&path, "old\n").expect("w");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");

    // Content that breaks heredocs and shell quoting, without a trailing newline.
    let nasty = "line one\nEOF\n'EOF'\n\"quoted\" and 'single'\n$(touch /tmp/sshkeep-pwned) `id` ${HOME}\nback\\slash \\n \\\\\n\ttab\r\ncrlf\u{e9}\u{1F600}\nno newline at end";
    let w = home
        .run_with_stdin(
            &["file", "write", "srv", p, "--backup", "--json"],
            nasty.as_bytes(),
        )
        .ok()
        .json();
    assert_eq!(std::fs::read(&path).expect("read"), nasty.as_bytes());
    assert!(!Path::new("/tmp/sshkeep-pwned").exists());
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the file keeps its mode");
    let backup = w["backup"].as_str().expect("backup path");
    assert_eq!(std::fs::read_to_string(backup).expect("backup"), "old\n");
    let r = home.run(&["file", "read", "srv", p, "--json"]).ok().json();
    assert_eq!(r["content"], nasty);
    let r = home
        .run(&[
            "file",
            "read",
            "srv",
            p,
            "--from-line",
            "2",
            "--to-line",
            "3",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["content"], "EOF\n'EOF'\n");

    // A replace whose expected count is wrong changes nothing (same bytes, same inode).
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(&path).expect("meta").ino();
    let f = home
        .run(&[
            "file", "replace", "srv", p, "--old", "EOF", "--new", "X", "--count", "1",
        ])
        .fails();
    assert!(f.stderr.contains("found 2"), "{}", f.stderr);
    assert_eq!(std::fs::read(&path).expect("read"), nasty.as_bytes());
    assert_eq!(std::fs::metadata(&path).expect("meta").ino(), ino);
    home.run(&[
        "file", "replace", "srv", p, "--old", "EOF", "--new", "X", "--count", "2",
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        nasty.replace("EOF", "X")
    );

    // Line edits by number and by pattern; the last line gets its newline before an append.
    std::fs::write(&path, "a\nb\nc").expect("w");
    home.run(&[
        "file",
        "edit",
        "srv",
        p,
        "insert_after",
        "--line",
        "3",
        "--content",
        "d",
    ])
    .ok();
    home.run(&[
        "file",
        "edit",
        "srv",
        p,
        "replace",
        "--pattern",
        "^b$",
        "--content",
        "B $(x) \\",
    ])
    .ok();
    home.run(&["file", "edit", "srv", p, "delete", "--line", "1"])
        .ok();
    home.run(&[
        "file",
        "edit",
        "srv",
        p,
        "insert_before",
        "--pattern",
        "^c",
        "--content",
        "pre",
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "B $(x) \\\npre\nc\nd\n"
    );
    let f = home
        .run(&[
            "file",
            "edit",
            "srv",
            p,
            "delete",
            "--pattern",
            "^[a-z]$",
            "--count",
            "1",
        ])
        .fails();
    assert!(f.stderr.contains("matches 2 lines"), "{}", f.stderr);
    // A new file gets the asked mode.
    let newf = remote.path().join("new.sh");
    home.run_with_stdin(
        &[
            "file",
            "write",
            "srv",
            newf.to_str().expect("utf8"),
            "--mode",
            "750",
        ],
        b"#!/bin/sh\n",
    )
    .ok();
    assert_eq!(
        std::fs::metadata(&newf).expect("meta").permissions().mode() & 0o777,
        0o750
    );
    // Nothing but the files and the one backup are left in the directory.
    let mut names: Vec<_> = std::fs::read_dir(remote.path())
        .expect("ls")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| !n.contains(".sshkeep-") || n.starts_with("conf.sshkeep-bak-")),
        "{names:?}"
    );
}

#[test]
fn the_mcp_tools_transfer_and_edit_only_within_allowed_local_roots() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");
    let root = tempfile::tempdir().expect("root");
    let outside = tempfile::tempdir().expect("outside");
    let remote = tempfile::tempdir().expect("remote");
    std::fs::write(root.path().join("in.txt"), "inside\n").expect("w");
    std::fs::write(outside.path().join("secret"), "secret\n").expect("w");
    std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("sneaky"))
        .expect("symlink");
    let root_s = root.path().display().to_string();
    let mut mcp = Mcp::start(&home, &[("SSHKEEP_MCP_ROOTS", root_s.as_str())]);
    let r = |p: &str| format!("{}/{p}", remote.path().display());

    // A relative local path is under the root.
    let up = mcp.ok("ssh_sftp", json!({"op": "upload", "connectionId": "srv", "localPath": "in.txt", "remotePath": r("in.txt"), "verify": true}));
    assert_eq!(up["verified"], true, "{up}");
    assert_eq!(
        std::fs::read_to_string(remote.path().join("in.txt")).expect("r"),
        "inside\n"
    );
    // Reading or writing outside the roots is refused with a clear error, and nothing moves.
    for (op, local) in [
        (
            "upload",
            outside.path().join("secret").display().to_string(),
        ),
        ("upload", "sneaky".to_string()),
        (
            "upload",
            "../".to_string()
                + &outside.path().file_name().expect("n").to_string_lossy()
                + "/secret",
        ),
        ("download", outside.path().join("got").display().to_string()),
    ] {
        let (err, text, s) = mcp.call(
            "ssh_sftp",
            json!({"op": op, "connectionId": "srv", "localPath": local, "remotePath": r("in.txt")}),
        );
        assert!(err, "{op} {local} was allowed: {text}");
        assert!(
            s["error"]["code"] == "outside_roots" || s["error"]["code"] == "invalid_argument",
            "{op} {local}: {s}"
        );
        assert!(text.contains("outside") || text.contains(".."), "{text}");
    }
    assert!(!outside.path().join("got").exists());
    assert!(!remote.path().join("secret").exists());
    let down = mcp.ok("ssh_sftp", json!({"op": "download", "connectionId": "srv", "remotePath": r("in.txt"), "localPath": "sub/dir/copy.txt"}));
    assert_eq!(down["files"], 1);
    assert_eq!(
        std::fs::read_to_string(root.path().join("sub/dir/copy.txt")).expect("r"),
        "inside\n"
    );

    // ssh_file through MCP: write, replace with the expected count, read.
    let f = r("app.conf");
    mcp.ok("ssh_file", json!({"op": "write", "connectionId": "srv", "path": f, "content": "port = 80\nhost = \"$(hostname)\"\n"}));
    let (err, text, _) = mcp.call("ssh_file", json!({"op": "replace", "connectionId": "srv", "path": f, "old": "80", "new": "8080", "expectedCount": 2}));
    assert!(err && text.contains("nothing was changed"), "{text}");
    mcp.ok(
        "ssh_file",
        json!({"op": "replace", "connectionId": "srv", "path": f, "old": "80", "new": "8080"}),
    );
    mcp.ok("ssh_file", json!({"op": "edit_line", "connectionId": "srv", "path": f, "edit": "insert_after", "pattern": "^port", "content": "tls = on"}));
    let read = mcp.ok(
        "ssh_file",
        json!({"op": "read", "connectionId": "srv", "path": f}),
    );
    assert_eq!(
        read["content"],
        "port = 8080\ntls = on\nhost = \"$(hostname)\"\n"
    );
    let ls = mcp.ok(
        "ssh_sftp",
        json!({"op": "list", "connectionId": "srv", "path": remote.path().display().to_string()}),
    );
    assert_eq!(ls["entries"].as_array().expect("entries").len(), 2, "{ls}");
}
