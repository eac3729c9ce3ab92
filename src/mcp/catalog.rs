//! Every tool's documentation, in one place: the description `tools/list` shows (the adapter
//! sets it from here), each operation and what it does (what `ssh_tool_search` searches), and
//! whether the minimal list shows the tool. Arguments are documented where they are declared
//! ([`super::args`], whose doc comments become the input schemas). Tests below keep this table,
//! the tools' `op` values and the README's tool table in step.

/// One tool's entry.
pub struct Entry {
    pub tool: &'static str,
    /// What `tools/list` says of the tool: what it does, its ops and their main arguments.
    pub description: &'static str,
    /// (operation, what it does)
    pub ops: &'static [(&'static str, &'static str)],
    /// Listed in the minimal tool list.
    pub core: bool,
    /// What the tool can do to the world, as MCP tool annotations (hints a host may use to
    /// decide what to confirm; sshkeep's own checks never rely on them).
    pub hints: Hints,
}

/// A tool's MCP annotations: `readOnlyHint`, `destructiveHint`, `idempotentHint`,
/// `openWorldHint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    /// Reaches servers beyond sshkeep itself.
    pub open_world: bool,
}

/// Reads sshkeep's own state only.
const READS_SSHKEEP: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: false,
};
/// Reads servers, changes nothing.
const READS_SERVERS: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: true,
};
/// Can change or remove things on servers (commands, files, keys, shells).
const CHANGES_SERVERS: Hints = Hints {
    read_only: false,
    destructive: true,
    idempotent: false,
    open_world: true,
};
/// Opens and closes sessions; loses nothing on the servers.
const OPENS_SESSIONS: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: true,
    open_world: true,
};
/// Changes sshkeep's own records (saved connections, client groups), which can be removed.
const CHANGES_SSHKEEP: Hints = Hints {
    read_only: false,
    destructive: true,
    idempotent: false,
    open_world: false,
};

impl Hints {
    /// As rmcp's annotations.
    pub fn annotations(self) -> rmcp::model::ToolAnnotations {
        rmcp::model::ToolAnnotations::new()
            .read_only(self.read_only)
            .destructive(self.destructive)
            .idempotent(self.idempotent)
            .open_world(self.open_world)
    }
}

/// The entry of the tool named `tool`.
pub fn entry(tool: &str) -> Option<&'static Entry> {
    TOOLS.iter().find(|e| e.tool == tool)
}

/// Every tool the adapter serves.
pub const TOOLS: &[Entry] = &[
    Entry {
        tool: "ssh_tool_search",
        description: "Find sshkeep's tools and ops by keyword, with their input schemas. Use it first when the tool list is short.",
        ops: &[],
        core: true,
        hints: READS_SSHKEEP,
    },
    Entry {
        tool: "ssh_server_status",
        description: "sshkeep's state: version, uptime, vault backend and lock state, sessions, commands running, database size, settings in force.",
        ops: &[],
        core: true,
        hints: READS_SSHKEEP,
    },
    Entry {
        tool: "ssh_conn",
        description: "Saved SSH connections, named by id or name. op: list | test | save (name, host, port, username, client, keyName, hostKeyPolicy, jump) | show | remove | trust (fingerprint) | forward (local/remote/dynamic: ssh -L/-R/-D text) | forwards | unforward.",
        ops: &[
            ("list", "list saved connections"),
            (
                "test",
                "check reachability, host key fingerprint, login with the linked key, round-trip time",
            ),
            (
                "save",
                "save or update a connection: name, host, port, username, client, keyName, hostKeyPolicy, jump (bastions)",
            ),
            ("show", "one connection's details and pinned host key"),
            ("remove", "delete a saved connection"),
            (
                "trust",
                "pin a host key by fingerprint after it changed or for strict connections",
            ),
            ("forward", "hold a port forward (loopback binds)"),
            ("forwards", "list port forwards"),
            ("unforward", "close a port forward"),
        ],
        core: true,
        hints: CHANGES_SSHKEEP,
    },
    Entry {
        tool: "ssh_key",
        description: "SSH keys in sshkeep's encrypted vault. op: add (privateKey, never returned) | generate | list | show | pub | link (keyName, connectionId) | unlink | remove | rotate (on every linked server, verified; resume, dryRun) | deploy (install the public key on connectionId).",
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
        hints: CHANGES_SERVERS,
    },
    Entry {
        tool: "ssh_exec",
        description: "Sessions and non-blocking commands. op: open (connectionId -> sessionId) | run (sessionId or connectionId, command -> commandId at once; detach, timeout, cwd, env, stdin, pty) | status (commandId) | logs (commandId; stream, grep, head, tail, fromLine, toLine) | list | close (sessionId) | cancel (commandId) | wait (commandId, timeout: until it ends). Replies are capped and say where to go on.",
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
            (
                "wait",
                "block until a command ends or timeout seconds pass, with progress; cancelling the wait leaves the command running",
            ),
        ],
        core: true,
        hints: CHANGES_SERVERS,
    },
    Entry {
        tool: "ssh_stream_info",
        description: "A command's bytes and lines per stream, whether it runs, and the fromLine to poll ssh_exec op=logs from next.",
        ops: &[],
        core: false,
        hints: READS_SSHKEEP,
    },
    Entry {
        tool: "ssh_bulk_exec",
        description: "Run commands across a fleet without waiting (connectionIds, client or all). Returns bulkExecId at once; then ssh_exec op=status|logs|cancel with bulkExecId (and connectionId, name or host for one target). Open sessions are reused; a failing target never stops the others.",
        ops: &[],
        core: false,
        hints: CHANGES_SERVERS,
    },
    Entry {
        tool: "ssh_bulk_conn",
        description: "Many connections at once. op: test (reachable, host key pinned or changed, login, round-trip time) | open (persistent sessions, to warm a fleet) | close. Targets by connectionIds or client.",
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
        hints: OPENS_SESSIONS,
    },
    Entry {
        tool: "ssh_bulk_audit",
        description: "Fleet audit, synchronous, on connectionIds or client. op: security (read-only checks of sshd, accounts, PATH, ports, updates, logins, disks, reboot; findings: check, status, severity, evidence, fix) | inventory (OS, kernel, uptime, CPUs, memory, disks) | show (auditId).",
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
        hints: READS_SERVERS,
    },
    Entry {
        tool: "ssh_shell",
        description: "A terminal (PTY) driven step by step, for prompts, installers, editors. op: open (connectionId -> shellId; tmux keeps it across reconnects) | send (text, enter) | key (enter, tab, up, ctrl-c, f1, ...) | read (cursor, screen; grep/head/tail: stored log) | wait (pattern, timeout) | resize | signal | status | list | close.",
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
        hints: CHANGES_SERVERS,
    },
    Entry {
        tool: "ssh_sftp",
        description: "Files over SFTP. op: upload (localPath -> remotePath) | download (remotePath -> localPath) | list | stat | mkdir (with parents) | remove | rename (newPath, atomic) | chmod (mode). recursive for directories; verify compares size and SHA-256.",
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
        hints: CHANGES_SERVERS,
    },
    Entry {
        tool: "ssh_file",
        description: "Edit remote text files over SFTP, byte for byte (no shell heredoc). op: read (path, fromLine, toLine, maxBytes) | write (content; atomic, mode and owner kept) | replace (old, new; changes nothing unless there are exactly expectedCount matches) | edit_line (edit at line or pattern, content). backup keeps the old file.",
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
        hints: CHANGES_SERVERS,
    },
    Entry {
        tool: "ssh_client",
        description: "Client (customer) groups of connections. op: list | assign (client, connectionId or connectionIds) | remove (connectionId or connectionIds).",
        ops: &[
            ("list", "client groups with their connections"),
            ("assign", "put connections in a client group"),
            ("remove", "take connections out of their client group"),
        ],
        core: false,
        hints: CHANGES_SSHKEEP,
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
                if e.description.to_lowercase().contains(w.as_str()) {
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
        assert_eq!(search("private key vault")[0].0.tool, "ssh_key");
    }

    /// The `op` values a tool's input schema allows, in order.
    fn schema_ops(schema: &rmcp::model::JsonObject) -> Vec<String> {
        let compact = crate::mcp::schema::compact(schema);
        compact
            .get("properties")
            .and_then(|p| p.get("op"))
            .and_then(|op| op.get("enum"))
            .and_then(|e| e.as_array())
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn every_tool_has_one_entry_whose_ops_are_the_tools_ops() {
        let router = crate::mcp::Adapter::tool_router();
        let tools = router.list_all();
        assert_eq!(tools.len(), TOOLS.len());
        for t in tools {
            let e = entry(&t.name).unwrap_or_else(|| panic!("{} has no catalog entry", t.name));
            let ops: Vec<&str> = e.ops.iter().map(|(op, _)| *op).collect();
            assert_eq!(schema_ops(&t.input_schema), ops, "{}", t.name);
            for op in ops {
                assert!(
                    e.description.contains(op),
                    "{}'s description does not name op {op}",
                    t.name
                );
            }
        }
    }

    /// The README's table of tools names every tool and every op.
    #[test]
    fn the_readme_lists_every_tool_and_op() {
        let readme = include_str!("../../README.md");
        for e in TOOLS {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", e.tool)))
                .unwrap_or_else(|| panic!("the README's tool table lacks {}", e.tool));
            for (op, _) in e.ops {
                assert!(
                    row.contains(&format!("`{op}`")),
                    "the README's row for {} lacks op {op}",
                    e.tool
                );
            }
        }
    }
}
