//! One shell (its facts, its output views, its input queue) and the broker's table of shells.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use russh::Sig;
use tokio::sync::{mpsc, watch};

use super::output::Output;
use super::recording::{Recording, Typist};
use crate::broker::core::fail::Fail;
use crate::broker::core::sessions::Session;
use crate::db::now_ms;
use crate::protocol::{ErrorCode, NextStep, ShellInfo, ShellOutput, ShellState};

/// What the driver task does for the shell.
pub enum Input {
    Data(Vec<u8>),
    Resize(u16, u16),
    Signal(Sig),
    Close,
}

/// Mutable facts about a shell.
pub(super) struct Facts {
    pub(super) cols: u16,
    pub(super) rows: u16,
    pub(super) state: ShellState,
    pub(super) exit_code: Option<u32>,
    pub(super) reconnects: u32,
    /// The output offset when input was last sent (where `wait` looks from by default).
    pub(super) input_cursor: u64,
    pub(super) attached: u32,
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
    pub(super) input: mpsc::UnboundedSender<Input>,
    facts: Mutex<Facts>,
    out: Mutex<Output>,
    /// Bumped on every output chunk and state change.
    pub(super) changed: watch::Sender<u64>,
}

impl Shell {
    /// A shell record and the receiver its driver reads input from.
    pub(super) fn new(
        id: String,
        target: String,
        session: Arc<Session>,
        term: String,
        (cols, rows): (u16, u16),
        (persistent, persistence): (bool, String),
        state: ShellState,
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
    pub(super) fn record_to(&self, recording: Recording) {
        self.out(|o| o.recording = recording);
    }

    pub(super) fn facts<T>(&self, f: impl FnOnce(&mut Facts) -> T) -> T {
        match self.facts.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub(super) fn out<T>(&self, f: impl FnOnce(&mut Output) -> T) -> T {
        match self.out.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub(super) fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    pub(super) fn is_over(&self) -> bool {
        self.facts(|f| matches!(f.state, ShellState::Exited | ShellState::Closed))
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
            state: f.state,
            persistent: self.persistent,
            persistence: self.persistence.clone(),
            exit_code: f.exit_code,
            cursor,
            reconnects: f.reconnects,
            created_ms: self.created_ms,
            clients_attached: f.attached,
        })
    }

    pub(super) fn send(&self, input: Input) -> Result<(), Fail> {
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

    pub(super) fn output_reply(
        &self,
        cursor: Option<u64>,
        screen: bool,
        max: usize,
    ) -> ShellOutput {
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
            state: self.facts(|f| f.state),
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

    pub(super) fn insert(&self, s: Arc<Shell>) {
        self.with(|m| m.insert(s.id.clone(), s));
    }

    /// Forgets ended shells older than a while (their output stays in the log store).
    pub(super) fn prune(&self) {
        let cutoff = now_ms() - 3_600_000;
        self.with(|m| m.retain(|_, s| !(s.is_over() && s.created_ms < cutoff)));
    }
}
