//! Test fixtures: a real OpenSSH `sshd` on a loopback port, and an isolated sshkeep home that
//! runs the built `sshkeep` binary. Both clean up after themselves on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

pub const SSHKEEP: &str = env!("CARGO_BIN_EXE_sshkeep");

/// Finds OpenSSH's sshd or fails with what to install.
pub fn sshd_binary() -> PathBuf {
    for p in ["/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!(
        "OpenSSH sshd not found: install it (Debian/Ubuntu: `apt-get install openssh-server`), or run scripts/test.sh which does"
    );
}

/// Whether `tool` is on the PATH.
pub fn has_tool(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Settings for one sshd.
#[derive(Clone, Debug, Default)]
pub struct SshdOptions {
    pub max_sessions: Option<u32>,
    pub max_startups: Option<String>,
    pub extra: Vec<String>,
}

/// A running sshd. Its host key and authorized_keys live in its own temp dir.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    opts: SshdOptions,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    /// The throw-away login account, when the server is logged into as one.
    account: Option<Account>,
}

/// A throw-away local account (needs root), removed on drop. Its home is a fresh directory with
/// no rc files of this machine's root: a login there is like one on a plain server.
pub struct Account {
    pub name: String,
    pub home: tempfile::TempDir,
}

impl Account {
    /// Creates an account whose login shell is `shell` (`/bin/sh` is dash on Debian).
    pub fn create(shell: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("skt{}x{n}", std::process::id());
        let home = tempfile::tempdir().expect("home dir");
        let st = Command::new("useradd")
            .args(["-p", "*", "-M", "-s", shell, "-d"])
            .arg(home.path())
            .arg(&name)
            .status()
            .expect("useradd");
        assert!(st.success(), "useradd failed");
        let _ = Command::new("chown").arg(&name).arg(home.path()).status();
        Self { name, home }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        // The account's leftover processes first, or userdel refuses.
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .status();
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

impl Sshd {
    pub fn start() -> Self {
        Self::start_with(SshdOptions::default())
    }

    /// An sshd logged into as a throw-away account whose login shell is `shell`, or `None`
    /// when not root (accounts cannot be made then; CI runs as root).
    pub fn start_as(shell: &str) -> Option<Self> {
        if !is_root() {
            eprintln!(
                "skipped: needs root to create a throw-away {shell} account (CI runs as root)"
            );
            return None;
        }
        let mut s = Self::start();
        s.login_as(Account::create(shell));
        Some(s)
    }

    /// The HOME test logins get (see `launch`).
    fn login_home(&self) -> PathBuf {
        let h = self.dir.path().join("login-home");
        let _ = std::fs::create_dir_all(&h);
        let _ = std::fs::set_permissions(&h, std::fs::Permissions::from_mode(0o777));
        h
    }

    /// Makes `account` the login of this server (sshd reads its authorized_keys as that user).
    pub fn login_as(&mut self, account: Account) {
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::set_permissions(
            self.authorized_keys(),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        self.user = account.name.clone();
        self.account = Some(account);
    }

    /// The login account's home directory, when the server is logged into as one.
    pub fn account_home(&self) -> Option<&Path> {
        self.account.as_ref().map(|a| a.home.path())
    }

    pub fn start_with(opts: SshdOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        keygen(&dir.path().join("host_ed25519"), "ed25519", "", "host");
        std::fs::write(dir.path().join("authorized_keys"), "").expect("authorized_keys");
        if is_root() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let mut s = Self {
            dir,
            port: 0,
            user: whoami(),
            opts,
            child: None,
            log: Arc::default(),
            account: None,
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        clear_stale_pyenv_lock();
        for _attempt in 0..5 {
            self.port = free_port();
            let d = self.dir.path();
            // SetEnv: a login shell whose rc file runs `pyenv init` (root's .bashrc on these
            // machines) takes a lock on every login; a test that SIGKILLs a login mid-way leaves
            // the lock behind and every later login would wait 60 s for it. Try it once instead.
            // Logins get HOME set to an empty directory of this sshd's (sshd applies SetEnv after
            // its own HOME; the working directory stays the account's home): bash then finds no
            // ~/.bashrc, so this machine's root rc files (pyenv, whose rehash lock makes
            // concurrent logins print errors) never run, as on a plain server.
            // sshd takes the first value of a keyword (the first SetEnv line, too): the test's
            // own lines come first, and its SetEnv values join the fixture's on one line.
            let (setenv, others): (Vec<&String>, Vec<&String>) = self
                .opts
                .extra
                .iter()
                .partition(|l| l.starts_with("SetEnv "));
            let mut cfg: String = others.iter().map(|l| format!("{l}\n")).collect();
            let env: String = setenv
                .iter()
                .map(|l| format!(" {}", &l["SetEnv ".len()..]))
                .collect();
            cfg.push_str(&format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {hk}\nAuthorizedKeysFile {ak}\nUsePAM no\nStrictModes no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 PidFile none\nLogLevel VERBOSE\nSubsystem sftp internal-sftp\n\
                 SetEnv PYENV_REHASH_TIMEOUT=0 HOME={home}{env}\n",
                port = self.port,
                hk = d.join("host_ed25519").display(),
                ak = d.join("authorized_keys").display(),
                home = self.login_home().display(),
            ));
            if let Some(n) = self.opts.max_sessions {
                cfg.push_str(&format!("MaxSessions {n}\n"));
            }
            if let Some(m) = &self.opts.max_startups {
                cfg.push_str(&format!("MaxStartups {m}\n"));
            }
            std::fs::write(d.join("sshd_config"), cfg).expect("sshd_config");
            let mut child = Command::new(sshd_binary())
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn sshd");
            // Wait for sshd's own "Server listening" line rather than guessing with sleeps.
            let stderr = child.stderr.take().expect("stderr");
            let (tx, rx) = std::sync::mpsc::channel();
            let log = self.log.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                    let verdict = if line.contains("Server listening") {
                        Some(true)
                    } else if (line.contains("Bind to port") && line.contains("failed"))
                        || line.contains("Cannot bind")
                    {
                        Some(false)
                    } else {
                        None
                    };
                    if let (Some(v), Some(t)) = (verdict, tx.as_ref()) {
                        let _ = t.send(v);
                        tx = None;
                    }
                }
                if let Some(t) = tx.take() {
                    let _ = t.send(false);
                }
            });
            match rx.recv_timeout(std::time::Duration::from_secs(20)) {
                Ok(true) => {
                    self.child = Some(child);
                    return;
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("sshd did not start; its log:\n{}", self.log());
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Lets `public_key_line` log in.
    pub fn authorize(&self, public_key_line: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .expect("open authorized_keys");
        writeln!(f, "{}", public_key_line.trim()).expect("write authorized_keys");
    }

    /// The file sshd reads authorized keys from (its `AuthorizedKeysFile`).
    pub fn authorized_keys(&self) -> PathBuf {
        self.dir.path().join("authorized_keys")
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `user@127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.port)
    }

    /// The host key's SHA256 fingerprint, as ssh-keygen prints it.
    pub fn host_fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_ed25519.pub"))
            .output()
            .expect("ssh-keygen -l");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .expect("fingerprint")
            .to_string()
    }

    /// The sshd master's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Stops the server the way a crash or reboot would: the listener and every per-connection
    /// process it forked (killing only the listener leaves open connections running).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let mut pids = descendants(c.id());
            pids.push(c.id());
            for p in pids {
                let _ = Command::new("kill")
                    .args(["-KILL", &p.to_string()])
                    .status();
            }
            let _ = c.wait();
        }
    }

    /// Drops every open connection (kills the per-connection sshd processes) while the server
    /// keeps listening and anything that detached from sshd keeps running.
    pub fn drop_connections(&self) {
        if let Some(c) = &self.child {
            for p in descendants(c.id()) {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                if comm.trim().starts_with("sshd") {
                    let _ = Command::new("kill")
                        .args(["-KILL", &p.to_string()])
                        .status();
                }
            }
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server and all its connections.
    pub fn signal_all(&self, signal: &str) {
        if let Some(c) = &self.child {
            let mut pids = descendants(c.id());
            pids.push(c.id());
            for p in pids {
                let _ = Command::new("kill")
                    .args([&format!("-{signal}"), &p.to_string()])
                    .status();
            }
        }
    }

    /// Restarts on the same port, optionally with a brand-new host key.
    pub fn restart(&mut self, new_host_key: bool) {
        self.stop();
        if new_host_key {
            for f in ["host_ed25519", "host_ed25519.pub"] {
                let _ = std::fs::remove_file(self.dir.path().join(f));
            }
            keygen(&self.dir.path().join("host_ed25519"), "ed25519", "", "host");
        }
        let port = self.port;
        let mut child = Command::new(sshd_binary())
            .args(["-D", "-e", "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sshd");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("Server listening") => break,
                Some(Ok(_)) => continue,
                _ => panic!("sshd did not restart on port {port}"),
            }
        }
        std::thread::spawn(move || for _ in lines.by_ref() {});
        self.child = Some(child);
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Root's `.bashrc` on these test machines runs `pyenv init`, which takes a lock file on every
/// login; a test that SIGKILLs a login mid-way can leave it behind, and every later login then
/// prints pyenv's complaints on stderr (tests that compare stderr fail for nothing sshkeep did).
/// A lock older than a minute belongs to no live login: remove it. Only the test machine's own
/// shell setup is touched; logins as the throw-away accounts (`Sshd::start_as`) never see it.
fn clear_stale_pyenv_lock() {
    let Some(home) = std::env::var_os("HOME") else {
        return;
    };
    let lock = Path::new(&home).join(".pyenv/shims/.pyenv-shim");
    let stale = std::fs::metadata(&lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(60));
    if stale {
        let _ = std::fs::remove_file(&lock);
    }
}

/// All processes below `pid`, read from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // The ppid is the second field after the parenthesised command name.
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else {
            continue;
        };
        if let Some(ppid) = after
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u32>().ok())
        {
            children.entry(ppid).or_default().push(p);
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        for c in children.get(&p).cloned().unwrap_or_default() {
            out.push(c);
            stack.push(c);
        }
    }
    out
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `secs` seconds with `what`.
/// (A deadline for something that must happen, not a speed assertion: keep it generous.)
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Processes on this machine whose command line contains `needle`.
pub fn processes_matching(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{p}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && p != std::process::id() {
            out.push(p);
        }
    }
    out
}

/// Runs ssh-keygen to make a key pair at `path`.
pub fn keygen(path: &Path, kind: &str, passphrase: &str, comment: &str) {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", comment, "-f"])
        .arg(path);
    let st = cmd.status().expect("ssh-keygen");
    assert!(st.success(), "ssh-keygen failed");
}

/// An isolated sshkeep home (SSHKEEP_HOME and HOME in a temp dir) whose broker is stopped on drop.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub passphrase_file: PathBuf,
    /// Whether commands get SSHKEEP_PASSPHRASE_FILE.
    pub use_passphrase_file: bool,
}

/// The result of one CLI run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn fails(self) -> Self {
        assert_ne!(
            self.code, 0,
            "expected failure\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("user/.ssh")).expect("home");
        let passphrase_file = dir.path().join("passphrase");
        std::fs::write(&passphrase_file, "correct horse battery staple\n").expect("passphrase");
        std::fs::set_permissions(&passphrase_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        Self {
            dir,
            passphrase_file,
            use_passphrase_file: true,
        }
    }

    /// A home with a passphrase vault already created.
    pub fn with_vault() -> Self {
        let h = Self::new();
        h.run(&["vault", "init", "--backend", "passphrase"]).ok();
        h
    }

    pub fn sshkeep_home(&self) -> PathBuf {
        self.dir.path().join("sshkeep")
    }

    pub fn user_home(&self) -> PathBuf {
        self.dir.path().join("user")
    }

    /// A `Command` for the sshkeep binary in this home.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(SSHKEEP);
        c.args(args)
            .env("SSHKEEP_HOME", self.sshkeep_home())
            .env("HOME", self.user_home())
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null());
        // SSHKEEP_TEST_LOG=debug passes a log level to the brokers the tests start.
        match std::env::var_os("SSHKEEP_TEST_LOG") {
            Some(level) => c.env("SSHKEEP_LOG", level),
            None => c.env_remove("SSHKEEP_LOG"),
        };
        if self.use_passphrase_file {
            c.env("SSHKEEP_PASSPHRASE_FILE", &self.passphrase_file);
        } else {
            c.env_remove("SSHKEEP_PASSPHRASE_FILE");
        }
        c
    }

    /// Runs `sshkeep ARGS` in a pseudo-terminal (`script`), as a person's terminal would, with
    /// this home's environment; stdin, stdout and stderr are piped.
    pub fn in_terminal(&self, args: &str) -> Child {
        let cmd = self.command(&[]);
        Command::new("script")
            .args(["-qefc", &format!("{SSHKEEP} {args}"), "/dev/null"])
            .envs(
                cmd.get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run sshkeep").into()
    }

    /// Runs with `input` on standard input.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sshkeep");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        child.wait_with_output().expect("wait").into()
    }

    /// Starts a command with `sshkeep run` and returns its id.
    pub fn start(&self, args: &[&str]) -> String {
        let mut full = vec!["run"];
        full.extend_from_slice(args);
        self.run(&full).ok().stdout.trim().to_string()
    }

    /// A command's status as JSON.
    pub fn status(&self, id: &str) -> serde_json::Value {
        self.run(&["status", id, "--json"]).ok().json()
    }

    /// Waits until a command has ended and returns its status.
    pub fn wait_done(&self, id: &str, secs: u64) -> serde_json::Value {
        wait_for(secs, &format!("command {id} to end"), || {
            let s = self.status(id);
            let st = s["state"].as_str().unwrap_or_default().to_string();
            (st != "queued" && st != "running").then_some(s)
        })
    }

    /// The broker's pid.
    pub fn broker_pid(&self) -> u32 {
        self.run(&["status", "--json"]).ok().json()["pid"]
            .as_u64()
            .expect("pid") as u32
    }

    /// Generates a key in the vault and authorizes it on `sshd`; saves connection `conn` to it.
    pub fn connect_to(&self, sshd: &Sshd, key: &str, conn: &str) {
        self.connect_to_with(sshd, key, conn, &[]);
    }

    /// Like [`Home::connect_to`], with more `conn save` flags.
    pub fn connect_to_with(&self, sshd: &Sshd, key: &str, conn: &str, extra: &[&str]) {
        self.run(&["key", "generate", key]).ok();
        sshd.authorize(&self.run(&["key", "pub", key]).ok().stdout);
        self.save_conn(sshd, conn, key, extra);
    }

    /// Saves connection `conn` to `sshd` with `key` and any more `conn save` flags.
    pub fn save_conn(&self, sshd: &Sshd, conn: &str, key: &str, extra: &[&str]) {
        let port = sshd.port.to_string();
        let mut args = vec![
            "conn",
            "save",
            conn,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            &sshd.user,
            "--key",
            key,
        ];
        args.extend_from_slice(extra);
        self.run(&args).ok();
    }

    pub fn broker_log(&self) -> String {
        std::fs::read_to_string(self.sshkeep_home().join("state/broker.log")).unwrap_or_default()
    }

    pub fn stop_broker(&self) {
        let _ = self.command(&["broker", "stop"]).output();
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.stop_broker();
    }
}
