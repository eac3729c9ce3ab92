//! What `ssh_tool_search` searches: every tool with its operations and what they do.

/// One tool's entry.
pub struct Entry {
    pub tool: &'static str,
    pub summary: &'static str,
    /// (operation, what it does)
    pub ops: &'static [(&'static str, &'static str)],
    /// Listed in the minimal tool list.
    pub core: bool,
}

/// Every tool the adapter serves.
pub const TOOLS: &[Entry] = &[
    Entry {
        tool: "ssh_tool_search",
        summary: "Find sshkeep tools and operations by keyword.",
        ops: &[],
        core: true,
    },
    Entry {
        tool: "ssh_server_status",
        summary: "sshkeep's state: version, uptime, vault backend and lock state, sessions open, commands running, database size, settings in force.",
        ops: &[],
        core: true,
    },
    Entry {
        tool: "ssh_conn",
        summary: "Saved SSH connections and host keys.",
        ops: &[
            ("list", "list saved connections"),
            (
                "test",
                "check reachability, host key fingerprint, login with the linked key, round-trip time",
            ),
            (
                "save",
                "save or update a connection: name, host, port, username, client, keyName, hostKeyPolicy",
            ),
            ("show", "one connection's details and pinned host key"),
            ("remove", "delete a saved connection"),
            (
                "trust",
                "pin a host key by fingerprint after it changed or for strict connections",
            ),
        ],
        core: true,
    },
    Entry {
        tool: "ssh_key",
        summary: "SSH private keys kept encrypted in sshkeep's vault; private keys are never returned.",
        ops: &[
            (
                "add",
                "import a private key (privateKey, OpenSSH or PEM, optional passphrase)",
            ),
            ("generate", "generate a new key (ed25519, rsa, ecdsa)"),
            ("list", "list keys with fingerprints and linked connections"),
            ("show", "one key's type, fingerprint, comment, links"),
            ("pub", "public key as an authorized_keys line"),
            ("link", "link a key to a connection"),
            ("unlink", "remove a key's link to a connection"),
            ("remove", "delete a key"),
            (
                "rotate",
                "replace a key on every linked server: add new key, verify login, switch, remove old key, retire (resume, dryRun)",
            ),
            (
                "deploy",
                "install a key's public half on a connection's server and verify it logs in",
            ),
        ],
        core: false,
    },
    Entry {
        tool: "ssh_exec",
        summary: "Persistent sessions and asynchronous commands whose output is stored and read back with filters.",
        ops: &[
            (
                "open",
                "open a persistent session on a connection, returns sessionId",
            ),
            (
                "run",
                "start a command (or a list) without waiting, returns commandId; detach, timeout, cwd, env, stdin, pty",
            ),
            (
                "status",
                "state, exit code, timings, bytes and lines per stream of a command",
            ),
            (
                "logs",
                "output lines with stream, grep regex, head, tail, fromLine, toLine filters",
            ),
            ("list", "sessions and running commands"),
            ("close", "close a session"),
            (
                "cancel",
                "stop a command and kill its process tree on the server",
            ),
        ],
        core: true,
    },
    Entry {
        tool: "ssh_stream_info",
        summary: "For a command: bytes and lines per stream so far, whether it still runs, and the line to poll logs from next.",
        ops: &[],
        core: false,
    },
    Entry {
        tool: "ssh_bulk_exec",
        summary: "Run commands across a fleet (connectionIds, client, all) with a self-healing queue; returns bulkExecId; status and logs through ssh_exec with bulkExecId.",
        ops: &[],
        core: false,
    },
    Entry {
        tool: "ssh_bulk_conn",
        summary: "Fleet connections at once.",
        ops: &[
            (
                "test",
                "test many connections: reachable, host key pinned or changed, login, round-trip time",
            ),
            (
                "open",
                "open persistent sessions for a whole client group to warm a fleet",
            ),
            ("close", "close the sessions of many connections"),
        ],
        core: false,
    },
    Entry {
        tool: "ssh_bulk_audit",
        summary: "Fleet security audit and inventory with stored, structured findings.",
        ops: &[
            (
                "security",
                "read-only security checks: sshd root login, password authentication, uid 0, empty passwords, world-writable PATH, ports, security updates, failed logins, disk full, reboot required",
            ),
            (
                "inventory",
                "OS, kernel, uptime, CPUs, memory, disks of each server",
            ),
            ("show", "a stored audit again by auditId"),
        ],
        core: false,
    },
    Entry {
        tool: "ssh_shell",
        summary: "Interactive terminal (PTY) sessions an agent drives: prompts, installers, editors, top; persistent through reconnects with tmux.",
        ops: &[
            (
                "open",
                "open a PTY shell on connectionId with cols, rows, term; returns shellId",
            ),
            ("send", "type text, enter=true to press Enter"),
            (
                "key",
                "press a key: enter, tab, escape, arrows, backspace, ctrl-c, ctrl-d, ctrl-z, f1-f12",
            ),
            (
                "read",
                "output since cursor, or the rendered screen (screen=true); grep/tail/head read the stored log",
            ),
            (
                "wait",
                "wait until a regex pattern appears (or timeout seconds), e.g. a prompt",
            ),
            ("resize", "change the terminal size"),
            (
                "signal",
                "send INT, TERM, KILL, HUP, QUIT to the foreground job",
            ),
            ("status", "state, size, persistence (tmux), cursor"),
            ("list", "all shells"),
            ("close", "end a shell"),
        ],
        core: false,
    },
    Entry {
        tool: "ssh_sftp",
        summary: "File transfer over SFTP: upload, download (files and directories, verified by SHA-256), list, stat, mkdir, remove, rename, chmod.",
        ops: &[
            (
                "upload",
                "copy localPath to remotePath; recursive for directories; verify size and sha256",
            ),
            (
                "download",
                "copy remotePath to localPath; recursive; verify",
            ),
            ("list", "directory entries"),
            ("stat", "type, size, mode, owner of a path"),
            ("mkdir", "create a directory with parents"),
            ("remove", "delete a file, or a directory with recursive"),
            ("rename", "move remotePath to newPath (atomic replace)"),
            ("chmod", "set permission bits (mode, octal)"),
        ],
        core: false,
    },
    Entry {
        tool: "ssh_file",
        summary: "Safe remote text-file edits over SFTP: read line ranges, atomic write, exact replace with expected count, line insert/replace/delete, backups.",
        ops: &[
            ("read", "a file or lines fromLine..toLine"),
            (
                "write",
                "replace the whole file atomically with content (backup optional)",
            ),
            (
                "replace",
                "exact text old -> new, only if found expectedCount times",
            ),
            (
                "edit_line",
                "insert_before, insert_after, replace or delete a line by number or pattern",
            ),
        ],
        core: false,
    },
    Entry {
        tool: "ssh_client",
        summary: "Client (customer) groups of connections.",
        ops: &[
            ("list", "client groups with their connections"),
            ("assign", "put connections in a client group"),
            ("remove", "take connections out of their client group"),
        ],
        core: false,
    },
];

/// Words that say nothing about which tool is meant ("how do I upload a file to the server").
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "to", "of", "for", "on", "in", "at", "by", "with", "and", "or", "from",
    "into", "my", "me", "i", "it", "is", "how", "do", "can", "what", "which", "this", "that",
    "server", "servers", "ssh", "remote", "some", "all", "use",
];

/// Entries matching the query's words, best first, with the operations that matched. Only
/// entries scoring at least half the best score are returned: a word found in passing in some
/// description does not bring in every tool.
pub fn search(query: &str) -> Vec<(&'static Entry, Vec<&'static str>)> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .map(str::to_lowercase)
        .filter(|w| !w.is_empty() && !STOP_WORDS.contains(&w.as_str()))
        .collect();
    let mut hits: Vec<(usize, &Entry, Vec<&str>)> = TOOLS
        .iter()
        .filter_map(|e| {
            let mut score = 0;
            let mut ops = Vec::new();
            for w in &words {
                if e.tool.contains(w.as_str()) {
                    score += 3;
                }
                if e.summary.to_lowercase().contains(w.as_str()) {
                    score += 1;
                }
                for (op, what) in e.ops {
                    let named = *op == w.as_str();
                    if named || what.to_lowercase().contains(w.as_str()) {
                        score += if named { 4 } else { 1 };
                        if !ops.contains(op) {
                            ops.push(*op);
                        }
                    }
                }
            }
            (score > 0 || words.is_empty()).then_some((score, e, ops))
        })
        .collect();
    hits.sort_by_key(|h| std::cmp::Reverse(h.0));
    let best = hits.first().map(|h| h.0).unwrap_or(0);
    hits.into_iter()
        .filter(|h| h.0 * 2 >= best)
        .map(|(_, e, ops)| (e, ops))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_tool_op_and_description() {
        assert_eq!(search("grep logs")[0].0.tool, "ssh_exec");
        assert!(search("grep logs")[0].1.contains(&"logs"));
        assert_eq!(search("fingerprint trust")[0].0.tool, "ssh_conn");
        assert_eq!(search("customer")[0].0.tool, "ssh_client");
        assert!(search("zebra").is_empty());
        let upload: Vec<&str> = search("upload a file").iter().map(|h| h.0.tool).collect();
        assert_eq!(upload[0], "ssh_sftp", "{upload:?}");
        assert!(upload.len() <= 3, "{upload:?}");
    }
}
