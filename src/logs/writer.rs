//! The log writer: one thread, its own SQLite connection, one transaction per batch of events.
//!
//! Producers await room in a bounded queue, so a command printing faster than the disk accepts
//! is slowed down (SSH flow control reaches the server) instead of growing the broker's memory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};

pub const STREAM_STDOUT: i64 = 1;
pub const STREAM_STDERR: i64 = 2;
pub const STREAM_MARKER: i64 = 3;

/// A line longer than this is stored in pieces.
const MAX_LINE: usize = 64 * 1024;
/// Events queued before producers wait (each is at most one SSH packet of data).
const QUEUE: usize = 256;
/// Events written in one transaction at most.
const BATCH: usize = 1024;

enum Event {
    Data {
        cmd: Arc<str>,
        stream: i64,
        bytes: Vec<u8>,
    },
    Marker {
        cmd: Arc<str>,
        text: String,
    },
    /// Store partial lines as lines, commit, forget the command, then acknowledge.
    Finish {
        cmd: Arc<str>,
        ack: oneshot::Sender<()>,
    },
    /// Drop partial lines and in-memory counters (the data will be sent again from the
    /// committed offsets), commit, then acknowledge.
    Reset {
        cmd: Arc<str>,
        ack: oneshot::Sender<()>,
    },
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<Event>,
}

impl LogWriter {
    /// Starts the writer on the database at `path`. `cap` is the per-command byte cap in force.
    pub fn start(path: &Path, cap: Arc<AtomicU64>) -> Result<Self> {
        let conn = crate::db::Db::open_extra(path)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("sshkeep-log-writer".into())
            .spawn(move || run(conn, rx, cap))?;
        Ok(Self { tx })
    }

    /// Appends output. Waits while the queue is full.
    pub async fn data(&self, cmd: &Arc<str>, stream: i64, bytes: Vec<u8>) {
        let _ = self
            .tx
            .send(Event::Data {
                cmd: cmd.clone(),
                stream,
                bytes,
            })
            .await;
    }

    /// Appends a line of sshkeep's own (a cap reached, a re-attach, a cancel).
    pub async fn marker(&self, cmd: &Arc<str>, text: impl Into<String>) {
        let _ = self
            .tx
            .send(Event::Marker {
                cmd: cmd.clone(),
                text: text.into(),
            })
            .await;
    }

    /// Flushes the command's partial lines and waits until everything is committed.
    pub async fn finish(&self, cmd: &Arc<str>) {
        let (ack, done) = oneshot::channel();
        if self
            .tx
            .send(Event::Finish {
                cmd: cmd.clone(),
                ack,
            })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }

    /// Commits what is complete and forgets partial lines, before a re-attach from the
    /// committed offsets.
    pub async fn reset(&self, cmd: &Arc<str>) {
        let (ack, done) = oneshot::channel();
        if self
            .tx
            .send(Event::Reset {
                cmd: cmd.clone(),
                ack,
            })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }
}

#[derive(Default)]
struct CmdState {
    next_n: i64,
    partial: [Vec<u8>; 2],
    bytes: [i64; 2],
    lines: [i64; 2],
    stored: i64,
    capped: bool,
    dirty: bool,
}

fn load(conn: &Connection, cmd: &str, cap: u64) -> rusqlite::Result<CmdState> {
    let next_n: i64 = conn.query_row(
        "SELECT COALESCE(MAX(n), 0) + 1 FROM log_lines WHERE command_id = ?1",
        [cmd],
        |r| r.get(0),
    )?;
    let (b0, b1, l0, l1, stored): (i64, i64, i64, i64, i64) = conn
        .query_row(
            "SELECT stdout_bytes, stderr_bytes, stdout_lines, stderr_lines, stored_bytes FROM commands WHERE id = ?1",
            [cmd],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap_or((0, 0, 0, 0, 0));
    Ok(CmdState {
        next_n,
        bytes: [b0, b1],
        lines: [l0, l1],
        stored,
        capped: stored as u64 >= cap,
        ..Default::default()
    })
}

fn insert(
    conn: &Connection,
    cmd: &str,
    st: &mut CmdState,
    stream: i64,
    text: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO log_lines (command_id, n, stream, text) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![cmd, st.next_n, stream, text])?;
    st.next_n += 1;
    st.dirty = true;
    Ok(())
}

/// Stores one complete line (with its newline, if any) of `stream`.
fn line(
    conn: &Connection,
    cmd: &str,
    st: &mut CmdState,
    stream: i64,
    raw: &[u8],
    cap: u64,
) -> rusqlite::Result<()> {
    let i = (stream - 1) as usize;
    st.bytes[i] += raw.len() as i64;
    st.lines[i] += 1;
    st.dirty = true;
    if st.capped {
        return Ok(());
    }
    if (st.stored + raw.len() as i64) as u64 > cap {
        st.capped = true;
        let text = format!(
            "[sshkeep] output past {cap} bytes is not kept (setting log_max_command_bytes); byte and line counts go on"
        );
        return insert(conn, cmd, st, STREAM_MARKER, &text);
    }
    st.stored += raw.len() as i64;
    let body = raw.strip_suffix(b"\n").unwrap_or(raw);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    insert(conn, cmd, st, stream, &String::from_utf8_lossy(body))
}

fn data(
    conn: &Connection,
    cmd: &str,
    st: &mut CmdState,
    stream: i64,
    bytes: &[u8],
    cap: u64,
) -> rusqlite::Result<()> {
    let i = (stream - 1) as usize;
    let mut buf = std::mem::take(&mut st.partial[i]);
    buf.extend_from_slice(bytes);
    let mut start = 0;
    while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
        line(conn, cmd, st, stream, &buf[start..start + pos + 1], cap)?;
        start += pos + 1;
    }
    while buf.len() - start > MAX_LINE {
        line(conn, cmd, st, stream, &buf[start..start + MAX_LINE], cap)?;
        start += MAX_LINE;
    }
    buf.drain(..start);
    st.partial[i] = buf;
    Ok(())
}

fn save_counts(conn: &Connection, cmd: &str, st: &mut CmdState) -> rusqlite::Result<()> {
    if st.dirty {
        conn.prepare_cached(
            "UPDATE commands SET stdout_bytes = ?2, stderr_bytes = ?3, stdout_lines = ?4, stderr_lines = ?5, stored_bytes = ?6 WHERE id = ?1",
        )?
        .execute(params![cmd, st.bytes[0], st.bytes[1], st.lines[0], st.lines[1], st.stored])?;
        st.dirty = false;
    }
    Ok(())
}

fn run(mut conn: Connection, mut rx: mpsc::Receiver<Event>, cap: Arc<AtomicU64>) {
    let mut states: HashMap<Arc<str>, CmdState> = HashMap::new();
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let cap_now = cap.load(Ordering::Relaxed);
        let mut acks = Vec::new();
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for ev in batch {
                let cmd = match &ev {
                    Event::Data { cmd, .. }
                    | Event::Marker { cmd, .. }
                    | Event::Finish { cmd, .. }
                    | Event::Reset { cmd, .. } => cmd.clone(),
                };
                if !states.contains_key(&cmd) {
                    states.insert(cmd.clone(), load(&tx, &cmd, cap_now)?);
                }
                let Some(st) = states.get_mut(&cmd) else {
                    continue;
                };
                match ev {
                    Event::Data { stream, bytes, .. } => {
                        data(&tx, &cmd, st, stream, &bytes, cap_now)?
                    }
                    Event::Marker { text, .. } => insert(&tx, &cmd, st, STREAM_MARKER, &text)?,
                    Event::Finish { ack, .. } => {
                        for stream in [STREAM_STDOUT, STREAM_STDERR] {
                            let rest = std::mem::take(&mut st.partial[(stream - 1) as usize]);
                            if !rest.is_empty() {
                                line(&tx, &cmd, st, stream, &rest, cap_now)?;
                            }
                        }
                        save_counts(&tx, &cmd, st)?;
                        states.remove(&cmd);
                        acks.push(ack);
                    }
                    Event::Reset { ack, .. } => {
                        save_counts(&tx, &cmd, st)?;
                        states.remove(&cmd);
                        acks.push(ack);
                    }
                }
            }
            for (cmd, st) in states.iter_mut() {
                save_counts(&tx, cmd, st)?;
            }
            tx.commit()
        })();
        if let Err(e) = result {
            tracing::error!("cannot store command output: {e}");
            // Counters may be ahead of what was committed: reload from the database.
            states.clear();
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}
