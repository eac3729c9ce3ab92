//! Interactive shells: PTY sessions the broker holds. Agents drive them with send / key / read /
//! wait; people attach a real terminal (`sshkeep shell`). Output goes to a terminal emulator (for
//! the screen), to memory (for `read` and `wait` by cursor) and to the log store (for the same
//! filtered reads as commands). With tmux on the server, the shell runs inside a tmux session
//! and is re-attached after a reconnect.

mod attach;
mod driver;
mod keys;
mod output;
mod recording;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::Sig;
use tokio::sync::{mpsc, watch};

pub use attach::attach;

use self::output::Output;
use self::recording::{Recording, Typist};
use crate::broker::core::backoff::Backoff;
use crate::broker::core::fail::Fail;
use crate::broker::core::login::resolve;
pub(crate) use crate::broker::core::remote_script::probe;
use crate::broker::core::sessions::Session;
use crate::broker::core::sessions::{Reuse, session_for};
use crate::broker::core::{Core, Peer};
use crate::db::NewCommand;
use crate::db::now_ms;
use crate::protocol::{
    ErrorCode, NextStep, Response, RunOptions, ShellInfo, ShellOutput, ShellSpec,
};

/// What the driver task does for the shell.
pub enum Input {
    Data(Vec<u8>),
    Resize(u16, u16),
    Signal(Sig),
    Close,
}

/// Mutable facts about a shell.
struct Facts {
    cols: u16,
    rows: u16,
    state: &'static str,
    exit_code: Option<u32>,
    reconnects: u32,
    /// The output offset when input was last sent (where `wait` looks from by default).
    input_cursor: u64,
    attached: u32,
}

/// One shell.
pub struct Shell {
    pub id: String,
    pub log_id: Arc<str>,
    pub target: String,
    pub session: Arc<Session>,
    pub term: String,
    pub created_ms: i64,
    pub persistent: bool,
    pub persistence: String,
    input: mpsc::UnboundedSender<Input>,
    facts: Mutex<Facts>,
    out: Mutex<Output>,
    /// Bumped on every output chunk and state change.
    changed: watch::Sender<u64>,
}

impl Shell {
    /// A shell record and the receiver its driver reads input from.
    fn new(
        id: String,
        target: String,
        session: Arc<Session>,
        term: String,
        (cols, rows): (u16, u16),
        (persistent, persistence): (bool, String),
        state: &'static str,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Input>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let shell = Arc::new(Shell {
            log_id: id.clone().into(),
            id,
            target,
            session,
            term,
            created_ms: now_ms(),
            persistent,
            persistence,
            input: tx,
            facts: Mutex::new(Facts {
                cols,
                rows,
                state,
                exit_code: None,
                reconnects: 0,
                input_cursor: 0,
                attached: 0,
            }),
            out: Mutex::new(Output::new(
                rows,
                cols,
                Recording::of(None, (cols, rows), "", ""),
            )),
            changed: watch::channel(0).0,
        });
        (shell, rx)
    }

    /// Records the shell from now on (see [`recording`]).
    fn record_to(&self, recording: Recording) {
        self.out(|o| o.recording = recording);
    }

    fn facts<T>(&self, f: impl FnOnce(&mut Facts) -> T) -> T {
        match self.facts.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    fn out<T>(&self, f: impl FnOnce(&mut Output) -> T) -> T {
        match self.out.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn is_over(&self) -> bool {
        self.facts(|f| matches!(f.state, "exited" | "closed"))
    }

    /// What clients see.
    pub fn info(&self) -> ShellInfo {
        let cursor = self.out(|o| o.cursor());
        self.facts(|f| ShellInfo {
            shell_id: self.id.clone(),
            target: self.target.clone(),
            session_id: self.session.id.clone(),
            cols: f.cols,
            rows: f.rows,
            term: self.term.clone(),
            state: f.state.into(),
            persistent: self.persistent,
            persistence: self.persistence.clone(),
            exit_code: f.exit_code,
            cursor,
            reconnects: f.reconnects,
            created_ms: self.created_ms,
            clients_attached: f.attached,
        })
    }

    fn send(&self, input: Input) -> Result<(), Fail> {
        if self.is_over() || self.input.send(input).is_err() {
            return Err(Fail::new(
                ErrorCode::InvalidArgument,
                format!(
                    "shell {} has ended ({}); open a new one",
                    self.id,
                    self.facts(|f| f.state)
                ),
            ));
        }
        Ok(())
    }

    /// Sends keystrokes and remembers where the output stood.
    pub fn type_bytes(&self, by: Typist, bytes: Vec<u8>) -> Result<u64, Fail> {
        let cursor = self.out(|o| {
            o.recording.input(by, &bytes);
            o.cursor()
        });
        self.send(Input::Data(bytes))?;
        self.facts(|f| f.input_cursor = cursor);
        Ok(cursor)
    }

    fn output_reply(&self, cursor: Option<u64>, screen: bool, max: usize) -> ShellOutput {
        let (text, from, to, now, scr) = self.out(|o| {
            let (t, a, b) = o.since(cursor, max);
            (t, a, b, o.cursor(), screen.then(|| o.screen()))
        });
        ShellOutput {
            shell_id: self.id.clone(),
            text,
            from_cursor: from,
            cursor: to,
            more: to < now,
            screen: scr,
            state: self.facts(|f| f.state).into(),
            matched: None,
            matched_text: None,
        }
    }
}

/// The broker's shells.
#[derive(Default)]
pub struct Shells {
    map: Mutex<HashMap<String, Arc<Shell>>>,
}

impl Shells {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Arc<Shell>>) -> T) -> T {
        match self.map.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// A shell by id (a unique prefix of at least 4 characters works too).
    pub fn get(&self, id: &str) -> Result<Arc<Shell>, Fail> {
        self.with(|m| {
            if let Some(s) = m.get(id) {
                return Ok(s.clone());
            }
            let hits: Vec<_> = if id.len() >= 4 {
                m.values()
                    .filter(|s| s.id.starts_with(id))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            match hits.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(Fail::unknown("shell", id, NextStep::ListShells)),
            }
        })
    }

    pub fn list(&self) -> Vec<ShellInfo> {
        let mut v: Vec<_> = self.with(|m| m.values().map(|s| s.info()).collect());
        v.sort_by_key(|s| s.created_ms);
        v
    }

    fn insert(&self, s: Arc<Shell>) {
        self.with(|m| m.insert(s.id.clone(), s));
    }

    /// Forgets ended shells older than a while (their output stays in the log store).
    fn prune(&self) {
        let cutoff = now_ms() - 3_600_000;
        self.with(|m| m.retain(|_, s| !(s.is_over() && s.created_ms < cutoff)));
    }
}

const MAX_COLS: u16 = 1000;
const MAX_ROWS: u16 = 500;

fn check_size(cols: u16, rows: u16) -> Result<(), Fail> {
    if cols == 0 || rows == 0 || cols > MAX_COLS || rows > MAX_ROWS {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "terminal size {cols}x{rows} is out of range (1-{MAX_COLS} columns, 1-{MAX_ROWS} rows)"
            ),
        ));
    }
    Ok(())
}

/// The tmux session name of a shell (hex: safe in shell text).
fn tmux_name(id: &str) -> String {
    format!("sshkeep-{id}")
}

/// Opens a shell.
pub async fn open(
    broker: &Arc<Core>,
    shells: &Shells,
    peer: &Peer,
    spec: ShellSpec,
) -> Result<Response, Fail> {
    check_size(spec.cols, spec.rows)?;
    if spec.term.is_empty()
        || spec.term.len() > 64
        || !spec
            .term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "terminal type {:?} is not valid (e.g. xterm-256color)",
                spec.term
            ),
        ));
    }
    shells.prune();
    let r = resolve(broker, &spec.target, spec.key.as_deref())?;
    // The shell's driver counts each channel it opens on the session.
    let (session, _) = session_for(broker, peer, &r, "shell", Reuse::Shared).await?;
    let (persistent, persistence) = match spec.persist {
        Some(false) => (
            false,
            "not asked for: the shell ends if the connection drops".to_string(),
        ),
        wanted => match probe(&session, "command -v tmux >/dev/null 2>&1").await {
            Some((0, _)) => (
                true,
                "runs in tmux on the server: re-attached after a reconnect".to_string(),
            ),
            _ if wanted == Some(true) => {
                return Err(Fail::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "a persistent shell needs tmux on {}, which was not found: install it there, or open the shell without persist",
                        session.label
                    ),
                ));
            }
            _ => (
                false,
                "tmux not found on the server: the shell ends if the connection drops".to_string(),
            ),
        },
    };
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let conn_name = session.resolved.endpoint.conn_name.clone();
    {
        let db = broker.db()?;
        db.insert_command(
            &NewCommand {
                id: id.clone(),
                session_id: Some(session.id.clone()),
                target: spec.target.clone(),
                conn_name: conn_name.clone(),
                key_name: session.resolved.key.clone(),
                commands: vec![format!(
                    "interactive shell ({} {}x{}{})",
                    spec.term,
                    spec.cols,
                    spec.rows,
                    if persistent { ", tmux" } else { "" }
                )],
                options: RunOptions {
                    pty: true,
                    ..Default::default()
                },
                detached: false,
                bulk_id: None,
            },
            now_ms(),
        )
        .map_err(Fail::internal)?;
        let terminal = serde_json::json!({
            "term": spec.term,
            "cols": spec.cols,
            "rows": spec.rows,
            "persistent": persistent,
        });
        db.mark_shell(&id, &terminal.to_string())
            .map_err(Fail::internal)?;
    }
    let cast = broker.paths().recording(&id);
    broker.audit(
        peer,
        "shell_open",
        session.resolved.key.as_deref(),
        conn_name.as_deref(),
        format!(
            "shell {id} on {}; recording {}",
            session.label,
            cast.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into())
        ),
    )?;
    let recording = Recording::of(
        cast,
        (spec.cols, spec.rows),
        &spec.term,
        &format!("sshkeep shell {id} on {}", session.label),
    );
    let (shell, rx) = Shell::new(
        id,
        spec.target,
        session,
        spec.term,
        (spec.cols, spec.rows),
        (persistent, persistence),
        "opening",
    );
    shell.record_to(recording);
    shells.insert(shell.clone());
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(driver::run(broker.clone(), shell.clone(), rx, ready_tx));
    match ready_rx.await {
        Ok(Ok(())) => Ok(Response::Shell(shell.info())),
        Ok(Err(f)) => Err(f),
        Err(_) => Err(Fail::internal("the shell's task ended before it started")),
    }
}

/// The terminal a shell was opened with, as stored.
#[derive(serde::Deserialize)]
struct Terminal {
    term: String,
    cols: u16,
    rows: u16,
}

/// At broker start: re-adopts the tmux-backed shells that were open when the broker stopped (their
/// tmux sessions kept running on the servers).
pub fn recover(broker: &Arc<Core>, shells: &Arc<Shells>) {
    let rows = match broker.db() {
        Ok(db) => db.persistent_shells().unwrap_or_default(),
        Err(_) => return,
    };
    for (row, terminal) in rows {
        tokio::spawn(adopt(broker.clone(), shells.clone(), row, terminal));
    }
}

async fn adopt(
    broker: Arc<Core>,
    shells: Arc<Shells>,
    row: crate::db::CommandRow,
    terminal: String,
) {
    let end = |why: String| {
        tracing::warn!(shell = %row.id, "{why}");
        if let Ok(db) = broker.db() {
            let _ = db.command_ended(
                &row.id,
                crate::protocol::CommandState::Failed,
                None,
                None,
                Some(&why),
                now_ms(),
            );
        }
    };
    let Ok(t) = serde_json::from_str::<Terminal>(&terminal) else {
        return end("the shell's stored terminal is unreadable".into());
    };
    let peer = Peer::default();
    // 2 s doubling to a minute, eight times.
    let mut pause = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
    let session = loop {
        let found = match resolve(&broker, &row.target, row.key_name.as_deref()) {
            Ok(r) => session_for(&broker, &peer, &r, "re-adopt a shell", Reuse::Shared).await,
            Err(f) => Err(f),
        };
        match found {
            Ok((s, _)) => break s,
            Err(f) if pause.failures() < 8 => {
                tracing::info!(shell = %row.id, "cannot reach {} yet to re-adopt the shell: {}", row.target, f.message);
                pause.wait().await;
            }
            Err(f) => {
                return end(format!(
                    "could not re-adopt the shell after the broker restarted: {}",
                    f.message
                ));
            }
        }
    };
    match probe(
        &session,
        &format!("tmux has-session -t {}", tmux_name(&row.id)),
    )
    .await
    {
        Some((0, _)) => {}
        _ => return end("the shell's tmux session ended while the broker was away".into()),
    }
    let recording = Recording::of(
        broker.paths().recording(&row.id),
        (t.cols, t.rows),
        &t.term,
        &format!("sshkeep shell {} on {}", row.id, session.label),
    );
    let (shell, rx) = Shell::new(
        row.id.clone(),
        row.target.clone(),
        session,
        t.term,
        (t.cols, t.rows),
        (
            true,
            "runs in tmux on the server: re-attached after a reconnect".into(),
        ),
        "reconnecting",
    );
    shell.record_to(recording);
    shell.facts(|f| f.reconnects = 1);
    broker.log_writer().marker(
        &shell.log_id,
        "[sshkeep] the broker restarted; re-attaching the tmux session",
    );
    shells.insert(shell.clone());
    tracing::info!(shell = %shell.id, target = %shell.target, "re-adopting a tmux-backed shell");
    let (ready, _) = tokio::sync::oneshot::channel();
    driver::run(broker, shell, rx, ready).await;
}

/// Types text, optionally followed by Enter.
pub fn send_text(shells: &Shells, id: &str, text: &str, enter: bool) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    if text.len() > 1024 * 1024 {
        return Err(Fail::new(
            ErrorCode::TooLarge,
            "text to send is over 1 MiB: upload a file with ssh_sftp instead",
        ));
    }
    let mut bytes = text.as_bytes().to_vec();
    if enter {
        bytes.push(b'\r');
    }
    shell.type_bytes(Typist::Agent, bytes)?;
    Ok(Response::Shell(shell.info()))
}

/// Presses a named key.
pub fn key(shells: &Shells, id: &str, name: &str) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    let app = shell.out(|o| o.application_cursor());
    let bytes = keys::bytes(name, app).ok_or_else(|| {
        Fail::new(
            ErrorCode::InvalidArgument,
            format!("unknown key {name:?}; keys: {}", keys::NAMES),
        )
    })?;
    shell.type_bytes(Typist::Agent, bytes)?;
    Ok(Response::Shell(shell.info()))
}

/// Output since a cursor, and the screen if asked.
pub fn read(
    shells: &Shells,
    id: &str,
    cursor: Option<u64>,
    screen: bool,
    max_bytes: Option<u64>,
) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    let max = max_bytes.unwrap_or(64 * 1024).clamp(256, 4 * 1024 * 1024) as usize;
    Ok(Response::ShellOutput(
        shell.output_reply(cursor, screen, max),
    ))
}

/// Waits for a pattern in the output after a cursor (or on the screen), or a timeout.
pub async fn wait(
    shells: &Shells,
    id: &str,
    pattern: &str,
    timeout_secs: u64,
    cursor: Option<u64>,
    screen: bool,
) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    let re = regex_lite::Regex::new(pattern).map_err(|e| {
        Fail::new(
            ErrorCode::InvalidArgument,
            format!("bad pattern {pattern:?}: {e}"),
        )
    })?;
    let from = cursor.unwrap_or_else(|| shell.facts(|f| f.input_cursor));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_secs.clamp(0, 3600));
    let mut rx = shell.changed.subscribe();
    loop {
        rx.borrow_and_update();
        let found = shell.out(|o| {
            if screen {
                let s = o.screen();
                re.find(&s).map(|m| (m.as_str().to_string(), o.cursor()))
            } else {
                let (text, start, _) = o.since(Some(from), usize::MAX);
                re.find(&text)
                    .map(|m| (m.as_str().to_string(), start + m.end() as u64))
            }
        });
        if let Some((matched, end)) = found {
            let mut r = shell.output_reply(Some(from), screen, 64 * 1024);
            if !screen {
                r.cursor = end.min(r.cursor.max(end));
            }
            r.matched = Some(true);
            r.matched_text = Some(matched);
            return Ok(Response::ShellOutput(r));
        }
        let over = shell.is_over();
        let timed_out = tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err();
        if over || timed_out {
            let mut r = shell.output_reply(Some(from), screen, 64 * 1024);
            r.matched = Some(false);
            return Ok(Response::ShellOutput(r));
        }
    }
}

pub fn resize(shells: &Shells, id: &str, cols: u16, rows: u16) -> Result<Response, Fail> {
    check_size(cols, rows)?;
    let shell = shells.get(id)?;
    shell.send(Input::Resize(cols, rows))?;
    shell.facts(|f| {
        f.cols = cols;
        f.rows = rows;
    });
    shell.out(|o| o.resize(rows, cols));
    Ok(Response::Shell(shell.info()))
}

/// Signal names accepted.
fn sig(name: &str) -> Option<Sig> {
    Some(
        match name
            .trim()
            .trim_start_matches("SIG")
            .to_ascii_uppercase()
            .as_str()
        {
            "INT" => Sig::INT,
            "TERM" => Sig::TERM,
            "KILL" => Sig::KILL,
            "HUP" => Sig::HUP,
            "QUIT" => Sig::QUIT,
            "USR1" => Sig::USR1,
            "ALRM" => Sig::ALRM,
            _ => return None,
        },
    )
}

/// Sends a signal: to the foreground job of a tmux shell's pane, else to the shell's process
/// (SSH `signal` request; use the key ctrl-c to interrupt a foreground program there).
pub async fn signal(shells: &Shells, id: &str, name: &str) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    let s = sig(name).ok_or_else(|| {
        Fail::new(
            ErrorCode::InvalidArgument,
            format!("unknown signal {name:?}: use INT, TERM, KILL, HUP, QUIT, USR1 or ALRM"),
        )
    })?;
    if shell.persistent {
        let name = format!("{s:?}");
        // The pane's terminal foreground process group gets the signal, as ctrl-c would.
        let script = format!(
            "p=$(tmux display-message -p -t {} '#{{pane_pid}}') && g=$(ps -o tpgid= -p \"$p\" | tr -d ' ') && kill -{name} -\"$g\"",
            tmux_name(&shell.id)
        );
        match probe(&shell.session, &script).await {
            Some((0, _)) => {}
            _ => {
                return Err(Fail::new(
                    ErrorCode::Ssh,
                    format!(
                        "could not signal the foreground job of shell {} (tmux or ps missing?)",
                        shell.id
                    ),
                ));
            }
        }
    } else {
        shell.send(Input::Signal(s))?;
    }
    Ok(Response::Shell(shell.info()))
}

pub fn status(shells: &Shells, id: &str) -> Result<Response, Fail> {
    Ok(Response::Shell(shells.get(id)?.info()))
}

/// Ends a shell (and its tmux session).
pub async fn close(
    broker: &Core,
    shells: &Shells,
    peer: &Peer,
    id: &str,
) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    if !shell.is_over() {
        let _ = shell.input.send(Input::Close);
        let mut rx = shell.changed.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !shell.is_over() {
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                break;
            }
        }
    }
    broker.audit(
        peer,
        "shell_close",
        None,
        shell.session.resolved.endpoint.conn_name.as_deref(),
        format!("shell {}", shell.id),
    )?;
    Ok(Response::Shell(shell.info()))
}
