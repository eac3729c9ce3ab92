//! Reading OpenSSH's client configuration (`~/.ssh/config`) the way `ssh` does, for
//! `sshkeep conn import` and for targets named by a `Host` alias that is not saved.
//!
//! The rules followed are OpenSSH's: keywords are case-insensitive and take their arguments after
//! spaces or one `=`; `Host` patterns use `*` and `?` with `!` negating, matched without regard to
//! case; for each option the first value obtained wins (IdentityFile accumulates); `Include`
//! reads files (relative to `~/.ssh`, with `*`/`?` in the last part) in place, and inside a `Host`
//! block only when that block applies. `Match` blocks cannot be judged without a connection, so
//! their options are never applied, and the report says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One line that matters: a keyword, its arguments, and where it was.
#[derive(Clone, Debug)]
struct Line {
    keyword: String,
    args: Vec<String>,
    file: PathBuf,
    line: usize,
}

/// A configuration file with its includes expanded in place (conditional ones marked).
#[derive(Clone, Debug, Default)]
pub struct Config {
    lines: Vec<Line>,
    /// Files that could not be read, and why (an unreadable Include is not fatal for `ssh`).
    pub problems: Vec<String>,
}

/// The options `ssh ALIAS` would use, as far as sshkeep reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostOptions {
    pub alias: String,
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<String>,
    pub proxy_jump: Option<String>,
    pub proxy_command: Option<String>,
    pub server_alive_interval: Option<u32>,
    pub server_alive_count_max: Option<u32>,
    pub connect_timeout: Option<u32>,
    pub strict_host_key_checking: Option<String>,
    pub user_known_hosts_file: Option<String>,
    /// Options set for this host that sshkeep does not carry over (keyword -> value).
    pub ignored: BTreeMap<String, String>,
    /// Whether a `Match` block could have changed something for this host.
    pub match_blocks: usize,
}

/// Most Include nesting followed (OpenSSH allows 16).
const MAX_DEPTH: usize = 16;

impl Config {
    /// Reads `path` and everything it includes. `ssh_dir` is where relative includes start
    /// (`~/.ssh` for a user's config).
    pub fn read(path: &Path, ssh_dir: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut c = Config::default();
        c.parse(&text, path, ssh_dir, 0);
        Ok(c)
    }

    fn parse(&mut self, text: &str, file: &Path, ssh_dir: &Path, depth: usize) {
        for (i, raw) in text.lines().enumerate() {
            let Some((keyword, args)) = split_line(raw) else {
                continue;
            };
            if keyword == "include" {
                if depth >= MAX_DEPTH {
                    self.problems.push(format!(
                        "{}:{}: Include nested deeper than {MAX_DEPTH}",
                        file.display(),
                        i + 1
                    ));
                    continue;
                }
                for pattern in &args {
                    for inc in expand_include(pattern, ssh_dir) {
                        match std::fs::read_to_string(&inc) {
                            Ok(t) => self.parse(&t, &inc, ssh_dir, depth + 1),
                            Err(e) => self
                                .problems
                                .push(format!("cannot read {}: {e}", inc.display())),
                        }
                    }
                }
                continue;
            }
            self.lines.push(Line {
                keyword,
                args,
                file: file.to_path_buf(),
                line: i + 1,
            });
        }
    }

    /// Every concrete alias (a `Host` pattern with no wildcard or negation), in file order.
    pub fn aliases(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for l in self.lines.iter().filter(|l| l.keyword == "host") {
            for p in &l.args {
                if !p.contains(['*', '?', '!']) && !out.iter().any(|o| o == p) {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    /// The options that apply to `alias`, in OpenSSH's first-match order.
    pub fn options_for(&self, alias: &str) -> HostOptions {
        let mut o = HostOptions {
            alias: alias.to_string(),
            ..Default::default()
        };
        let mut active = true;
        for l in &self.lines {
            match l.keyword.as_str() {
                "host" => {
                    active = host_matches(&l.args, alias);
                    continue;
                }
                "match" => {
                    active = false;
                    o.match_blocks += 1;
                    continue;
                }
                _ => {}
            }
            if !active {
                continue;
            }
            let first = l.args.first().cloned().unwrap_or_default();
            let set = |slot: &mut Option<String>| {
                if slot.is_none() {
                    *slot = Some(first.clone());
                }
            };
            match l.keyword.as_str() {
                "hostname" => set(&mut o.host_name),
                "user" => set(&mut o.user),
                "port" => {
                    if o.port.is_none() {
                        o.port = first.parse().ok();
                    }
                }
                "identityfile" => o.identity_files.push(first),
                "proxyjump" => set(&mut o.proxy_jump),
                "proxycommand" => {
                    if o.proxy_command.is_none() {
                        o.proxy_command = Some(l.args.join(" "));
                    }
                }
                "serveraliveinterval" => {
                    if o.server_alive_interval.is_none() {
                        o.server_alive_interval = first.parse().ok();
                    }
                }
                "serveralivecountmax" => {
                    if o.server_alive_count_max.is_none() {
                        o.server_alive_count_max = first.parse().ok();
                    }
                }
                "connecttimeout" => {
                    if o.connect_timeout.is_none() {
                        o.connect_timeout = first.parse().ok();
                    }
                }
                "stricthostkeychecking" => set(&mut o.strict_host_key_checking),
                "userknownhostsfile" => set(&mut o.user_known_hosts_file),
                other => {
                    o.ignored
                        .entry(other.to_string())
                        .or_insert_with(|| l.args.join(" "));
                }
            }
        }
        // `HostName %h.example.com`: the tokens ssh expands in HostName.
        if let Some(h) = &o.host_name {
            o.host_name = Some(h.replace("%h", alias).replace("%%", "%"));
        }
        o
    }

    /// Whether `alias` is a host this configuration names: a `Host` line that applies to it
    /// through a positive pattern other than a bare `*` (`Host *` or `Host * !bastion` would
    /// make every typo a host).
    pub fn names(&self, alias: &str) -> bool {
        self.lines.iter().filter(|l| l.keyword == "host").any(|l| {
            host_matches(&l.args, alias)
                && l.args
                    .iter()
                    .any(|p| p != "*" && !p.starts_with('!') && wildcard(p, alias))
        })
    }

    /// Where a keyword was set last (for messages).
    pub fn location_of(&self, keyword: &str) -> Option<String> {
        self.lines
            .iter()
            .find(|l| l.keyword == keyword)
            .map(|l| format!("{}:{}", l.file.display(), l.line))
    }
}

/// Splits a line into its lower-cased keyword and arguments (quotes respected); `None` for a
/// blank line or a comment.
fn split_line(raw: &str) -> Option<(String, Vec<String>)> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (keyword, rest) = match line.find(|c: char| c.is_whitespace() || c == '=') {
        Some(i) => (&line[..i], &line[i..]),
        None => (line, ""),
    };
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in rest.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    args.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        args.push(cur);
    }
    Some((keyword.to_ascii_lowercase(), args))
}

/// Whether a `Host` line's patterns select `alias`: some pattern matches and no negated one does.
fn host_matches(patterns: &[String], alias: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if wildcard(neg, alias) {
                return false;
            }
        } else if wildcard(p, alias) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` matching, case-insensitive as OpenSSH matches host names.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The files an `Include` argument names: `~` expanded, relative to `ssh_dir`, wildcards in the
/// last component, in lexical order (as glob(3) gives them to ssh).
fn expand_include(arg: &str, ssh_dir: &Path) -> Vec<PathBuf> {
    let path = match arg.strip_prefix("~/") {
        Some(rest) => ssh_dir
            .parent()
            .map(|home| home.join(rest))
            .unwrap_or_else(|| PathBuf::from(arg)),
        None if Path::new(arg).is_absolute() => PathBuf::from(arg),
        None => ssh_dir.join(arg),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return if path.exists() {
            vec![path]
        } else {
            Vec::new()
        };
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
        .filter(|e| e.path().is_file())
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// The local user's name, which `ssh` logs in as when no `User` is set (found once).
pub fn local_user() -> Option<String> {
    static USER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    USER.get_or_init(|| {
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| {
                std::process::Command::new("id")
                    .arg("-un")
                    .output()
                    .ok()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .filter(|u| !u.is_empty())
            })
    })
    .clone()
}

/// `~/` in a path from the config, expanded against `home`.
pub fn expand_home(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(files: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ssh = dir.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("config.d")).expect("mkdir");
        for (name, text) in files {
            std::fs::write(ssh.join(name), text).expect("write");
        }
        let c = Config::read(&ssh.join("config"), &ssh).expect("read");
        (dir, c)
    }

    #[test]
    fn first_match_wins_with_wildcards_negation_and_includes() {
        let (_d, c) = config(&[
            (
                "config",
                "# top\nInclude config.d/*\n\
                 Host web1 web2\n  HostName %h.example.com\n  User deploy\n\
                 Host db\n  HostName=10.0.0.5\n  Port 2222\n  ProxyJump bastion\n\
                 Host !web2 *\n  User fallback\n  ServerAliveInterval 15\n\
                 Match host web1\n  User nope\n\
                 Host *\n  User last\n  Port 22\n  IdentityFile ~/.ssh/id_ed25519\n  ForwardAgent yes\n",
            ),
            (
                "config.d/10-bastion",
                "Host bastion\n  HostName bastion.example.com\n  User jump\n",
            ),
        ]);
        assert_eq!(c.aliases(), ["bastion", "web1", "web2", "db"]);
        let w1 = c.options_for("web1");
        assert_eq!(w1.host_name.as_deref(), Some("web1.example.com"));
        assert_eq!(w1.user.as_deref(), Some("deploy"));
        assert_eq!(w1.port, Some(22));
        assert_eq!(w1.server_alive_interval, Some(15));
        assert_eq!(w1.identity_files, ["~/.ssh/id_ed25519"]);
        assert_eq!(w1.match_blocks, 1);
        assert_eq!(
            w1.ignored.get("forwardagent").map(String::as_str),
            Some("yes")
        );
        // `!web2` excludes web2 from that block: it never gets the fallback user or interval.
        let w2 = c.options_for("web2");
        assert_eq!(w2.user.as_deref(), Some("deploy"));
        assert_eq!(w2.server_alive_interval, None);
        let db = c.options_for("db");
        assert_eq!(db.host_name.as_deref(), Some("10.0.0.5"));
        assert_eq!(db.port, Some(2222));
        assert_eq!(db.user.as_deref(), Some("fallback"));
        assert_eq!(db.proxy_jump.as_deref(), Some("bastion"));
        let b = c.options_for("bastion");
        assert_eq!(b.user.as_deref(), Some("jump"));
        assert_eq!(b.host_name.as_deref(), Some("bastion.example.com"));
    }

    #[test]
    fn only_a_pattern_more_specific_than_star_names_a_host() {
        let (_d, c) = config(&[(
            "config",
            "Host * !bastion
  User u
Host *.internal
  User i
Host web
  User w
",
        )]);
        assert!(c.names("web"));
        assert!(c.names("db.internal"));
        assert!(!c.names("typo"), "Host * !bastion names no host");
        assert!(!c.names("bastion"));
    }

    #[test]
    fn quoting_case_and_patterns() {
        assert_eq!(
            split_line("  IdentityFile \"/path/with space/key\"  "),
            Some((
                "identityfile".to_string(),
                vec!["/path/with space/key".to_string()]
            ))
        );
        assert_eq!(split_line("# comment"), None);
        assert!(wildcard("*.EXAMPLE.com", "a.example.COM"));
        assert!(wildcard("web?", "web1"));
        assert!(!wildcard("web?", "web10"));
        assert!(host_matches(&["*".into(), "!db*".into()], "web"));
        assert!(!host_matches(&["*".into(), "!db*".into()], "db1"));
    }
}
