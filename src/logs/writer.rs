//! The log writer: one thread, its own SQLite connection, one transaction per batch of events
//! (at most [`BATCH`] events, about [`BATCH_BYTES`] of output). Chunks' bytes are appended to
//! each command's output file before their rows go into the transaction.
//!
//! Lines are numbered as they complete, across both streams, and collected per command in an
//! open chunk ([`crate::db::log_chunks`], kept by [`super::command_lines`]) that is written when
//! it is full, when the command has been quiet for 100 ms, when it has been open for 1 s, when
//! the command ends or is re-attached, and when the broker stops. A command's byte and line counts are saved with the chunks that hold those
//! lines, never ahead of them: a crash loses the open chunk (and whatever waited in the queue)
//! and the counts say exactly what was kept; a detached command is re-read from there.
//!
//! Producers never wait: see [`super::queue`] for how memory stays bounded when output arrives
//! faster than the database takes it.
//!
//! Storage errors never stop the writer. A batch the database refuses (a full disk, say) is
//! retried for a while, then dropped with its bytes counted as lost for each command; the loss
//! is shown in the command's status at once and recorded with the command (a marker line and
//! the byte count) as soon as the database takes writes again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Result;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use std::sync::Mutex;

use super::command_lines::{CmdState, data, line, load, save_counts};
use super::queue::{Event, Loss, Queue};
use crate::db::log_chunks::StoreError;

pub const STREAM_STDOUT: i64 = 1;
pub const STREAM_STDERR: i64 = 2;
pub const STREAM_MARKER: i64 = 3;

/// Events written in one transaction at most...
const BATCH: usize = 1024;
/// ...and the output bytes they hold, about (a batch is in memory whole: 1,024 network reads
/// of 32 KiB read back from the spill file would be 32 MiB).
const BATCH_BYTES: usize = 2 * 1024 * 1024;
/// Attempts at one batch before its output is counted as lost (a lock held by another
/// connection clears well within this; a full disk does not).
const ATTEMPTS: u32 = 15;

/// The writer connection's page cache, in KiB as SQLite's `cache_size` takes a negative
/// number (its default is 2000).
const WRITER_CACHE_KIB: i64 = -256;

/// Output lost per command and not yet recorded in the database.
type Losses = Arc<Mutex<HashMap<Arc<str>, Loss>>>;

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    queue: Arc<Queue>,
    unrecorded: Losses,
}

impl LogWriter {
    /// Starts the writer on the database at `path`, spilling to `spill` under load. `cap` is the
    /// per-command byte cap in force.
    pub fn start(path: &Path, spill: std::path::PathBuf, cap: Arc<AtomicU64>) -> Result<Self> {
        let conn = crate::db::Db::open_extra(path)?;
        // The writer appends and seldom reads back what it wrote: a small page cache does.
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        match crate::db::log_files::remove_orphans(&conn) {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} output files no stored output pointed at"),
            Err(e) => tracing::warn!("cannot look for output files to remove: {e}"),
        }
        let queue = Queue::new(spill);
        let q = queue.clone();
        let unrecorded = Losses::default();
        let u = unrecorded.clone();
        std::thread::Builder::new()
            .name("sshkeep-log-writer".into())
            .spawn(move || run(conn, q, cap, u))?;
        Ok(Self { queue, unrecorded })
    }

    /// Output of `cmd` lost to a storage error and not yet recorded with the command.
    pub fn unrecorded_loss(&self, cmd: &str) -> Option<Loss> {
        let mut all = self.queue.take_lost();
        let mut u = self.unrecorded.lock().unwrap_or_else(|p| p.into_inner());
        for (c, l) in all.drain() {
            merge(&mut u, c, l);
        }
        u.get(cmd).cloned()
    }

    /// Appends output. Never waits.
    pub fn data(&self, cmd: &Arc<str>, stream: i64, bytes: Vec<u8>) {
        self.queue.push(Event::Data {
            cmd: cmd.clone(),
            stream,
            bytes,
            at_ms: crate::clock::now_ms(),
        });
    }

    /// Appends a line of sshkeep's own (a cap reached, a re-attach, a cancel).
    pub fn marker(&self, cmd: &Arc<str>, text: impl Into<String>) {
        self.queue.push(Event::Marker {
            cmd: cmd.clone(),
            text: text.into(),
            at_ms: crate::clock::now_ms(),
        });
    }

    /// Flushes the command's partial lines and waits until everything is committed.
    pub async fn finish(&self, cmd: &Arc<str>) {
        let (ack, done) = oneshot::channel();
        self.queue.push(Event::Finish {
            cmd: cmd.clone(),
            ack: Some(ack),
        });
        let _ = done.await;
    }

    /// Writes every command's open chunk and waits until it is committed (the broker is
    /// stopping: what a running command or shell printed last is kept).
    pub async fn sync(&self) {
        let (ack, done) = oneshot::channel();
        self.queue.push(Event::Sync { ack: Some(ack) });
        let _ = done.await;
    }

    /// Commits what is complete and forgets partial lines, before a re-attach from the
    /// committed offsets.
    pub async fn reset(&self, cmd: &Arc<str>) {
        let (ack, done) = oneshot::channel();
        self.queue.push(Event::Reset {
            cmd: cmd.clone(),
            ack: Some(ack),
        });
        let _ = done.await;
    }
}

/// Applies a batch in one transaction, then writes the chunks that fell due. Acknowledgements
/// are sent by the caller after commit.
fn apply(
    conn: &mut Connection,
    states: &mut HashMap<Arc<str>, CmdState>,
    batch: &[Event],
    cap: u64,
) -> Result<(), StoreError> {
    let now = Instant::now();
    if batch.is_empty() && !states.values().any(|st| st.due(now)) {
        return Ok(());
    }
    // IMMEDIATE: take the write lock now (waiting up to the busy timeout), not on the first
    // write after reading, which fails at once in WAL mode if another connection wrote between.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for ev in batch {
        let cmd = match ev {
            Event::Data { cmd, .. }
            | Event::Marker { cmd, .. }
            | Event::Finish { cmd, .. }
            | Event::Reset { cmd, .. } => cmd.clone(),
            Event::Sync { .. } => {
                for (cmd, st) in states.iter_mut() {
                    st.flush(&tx, cmd)?;
                    save_counts(&tx, cmd, st)?;
                }
                continue;
            }
        };
        if !states.contains_key(&cmd) {
            states.insert(cmd.clone(), load(&tx, &cmd, cap)?);
        }
        let Some(st) = states.get_mut(&cmd) else {
            continue;
        };
        match ev {
            Event::Data {
                stream,
                bytes,
                at_ms,
                ..
            } => data(&tx, &cmd, st, *stream, bytes, cap, *at_ms)?,
            Event::Marker { text, at_ms, .. } => st.marker(&tx, &cmd, text, *at_ms)?,
            Event::Finish { .. } => {
                for stream in [STREAM_STDOUT, STREAM_STDERR] {
                    let rest = std::mem::take(&mut st.partial[(stream - 1) as usize]);
                    if !rest.is_empty() {
                        let at = st.partial_at[(stream - 1) as usize];
                        line(&tx, &cmd, st, stream, &rest, cap, at)?;
                    }
                }
                st.flush(&tx, &cmd)?;
                save_counts(&tx, &cmd, st)?;
                states.remove(&cmd);
            }
            Event::Reset { .. } => {
                // Whole lines are kept; partial ones come again from the committed offsets.
                st.flush(&tx, &cmd)?;
                save_counts(&tx, &cmd, st)?;
                states.remove(&cmd);
            }
            Event::Sync { .. } => {}
        }
    }
    let now = Instant::now();
    for (cmd, st) in states.iter_mut() {
        if st.due(now) {
            st.flush(&tx, cmd)?;
        }
        save_counts(&tx, cmd, st)?;
    }
    Ok(tx.commit()?)
}

fn merge(into: &mut HashMap<Arc<str>, Loss>, cmd: Arc<str>, l: Loss) {
    let e = into.entry(cmd).or_default();
    e.bytes += l.bytes;
    if e.error.is_empty() {
        e.error = l.error;
    }
}

/// Counts a refused batch's output as lost and lets its waiters go on.
fn drop_batch(
    states: &mut HashMap<Arc<str>, CmdState>,
    batch: Vec<Event>,
    error: &str,
    lost: &Losses,
) {
    let mut u = lost.lock().unwrap_or_else(|p| p.into_inner());
    for ev in batch {
        match ev {
            Event::Data { cmd, bytes, .. } => merge(
                &mut u,
                cmd,
                Loss {
                    bytes: bytes.len() as u64,
                    error: error.to_string(),
                },
            ),
            Event::Marker { .. } | Event::Sync { .. } => {}
            Event::Finish { cmd, ack } | Event::Reset { cmd, ack } => {
                // Counters are reloaded from the database next time; the lines not written
                // with them are lost, and counted.
                if let Some(st) = states.remove(&cmd) {
                    let bytes = st.chunk.len() + st.partial[0].len() + st.partial[1].len();
                    if bytes > 0 {
                        merge(
                            &mut u,
                            cmd.clone(),
                            Loss {
                                bytes: bytes as u64,
                                error: error.to_string(),
                            },
                        );
                    }
                }
                if let Some(a) = ack {
                    let _ = a.send(());
                }
            }
        }
    }
}

/// Records lost output with each command: a marker line and the byte count. A command still
/// running keeps its line numbering in `states` (a marker numbered from the database alone
/// would collide with its next line); `states` is rolled back if the transaction fails.
fn record_losses(
    conn: &mut Connection,
    states: &mut HashMap<Arc<str>, CmdState>,
    losses: &HashMap<Arc<str>, Loss>,
    cap: u64,
) -> Result<(), StoreError> {
    let snapshot = states.clone();
    let result = insert_losses(conn, states, losses, cap);
    if result.is_err() {
        *states = snapshot;
    }
    result
}

fn insert_losses(
    conn: &mut Connection,
    states: &mut HashMap<Arc<str>, CmdState>,
    losses: &HashMap<Arc<str>, Loss>,
    cap: u64,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (cmd, l) in losses {
        let text = format!(
            "[sshkeep] {} bytes of output were lost: they could not be stored ({})",
            l.bytes, l.error
        );
        let at = crate::clock::now_ms();
        match states.get_mut(cmd) {
            Some(st) => {
                st.marker(&tx, cmd, &text, at)?;
                st.flush(&tx, cmd)?;
                save_counts(&tx, cmd, st)?;
            }
            None => {
                let mut st = load(&tx, cmd, cap)?;
                st.marker(&tx, cmd, &text, at)?;
                st.flush(&tx, cmd)?;
            }
        }
        crate::db::record_output_loss(&tx, cmd, l.bytes, &l.error)?;
    }
    Ok(tx.commit()?)
}

fn run(mut conn: Connection, queue: Arc<Queue>, cap: Arc<AtomicU64>, lost: Losses) {
    let mut states: HashMap<Arc<str>, CmdState> = HashMap::new();
    loop {
        // Wait for events, or until the first open chunk falls due.
        let due = states.values().filter_map(CmdState::due_at).min();
        let Some(batch) = queue.take(BATCH, BATCH_BYTES, due) else {
            break;
        };
        let cap_now = cap.load(Ordering::Relaxed);
        let stored = store(&mut conn, &mut states, batch, cap_now, &lost);
        let mut u = lost.lock().unwrap_or_else(|p| p.into_inner());
        for (c, l) in queue.take_lost() {
            merge(&mut u, c, l);
        }
        if !stored || u.is_empty() {
            continue;
        }
        // The database takes writes again: record what was lost while it did not.
        let pending = u.clone();
        drop(u);
        if record_losses(&mut conn, &mut states, &pending, cap_now).is_ok() {
            let mut u = lost.lock().unwrap_or_else(|p| p.into_inner());
            for (c, l) in pending {
                if let Some(now) = u.get_mut(&c) {
                    now.bytes -= l.bytes.min(now.bytes);
                    if now.bytes == 0 {
                        u.remove(&c);
                    }
                }
            }
        }
    }
}

/// Stores one batch, retrying a while; past that its output is counted as lost. Acknowledges
/// the batch's finish and reset events either way. Whether it was stored.
fn store(
    conn: &mut Connection,
    states: &mut HashMap<Arc<str>, CmdState>,
    batch: Vec<Event>,
    cap: u64,
    lost: &Losses,
) -> bool {
    let mut attempt = 0u32;
    loop {
        let snapshot = states.clone();
        match apply(conn, states, &batch, cap) {
            Ok(()) => break,
            Err(e) => {
                // Roll the in-memory state back with the transaction and try again: output is
                // never dropped for a transient lock.
                *states = snapshot;
                attempt += 1;
                if attempt == 1 {
                    tracing::warn!("cannot store command output yet: {e}");
                }
                if attempt >= ATTEMPTS {
                    tracing::error!(
                        "command output could not be stored after {attempt} attempts ({e}); it is counted as lost and the command's status says so"
                    );
                    drop_batch(states, batch, &e.to_string(), lost);
                    return false;
                }
                std::thread::sleep(std::time::Duration::from_millis(
                    50 * u64::from(attempt.min(10)),
                ));
            }
        }
    }
    for ev in batch {
        if let Event::Finish { ack: Some(ack), .. }
        | Event::Reset { ack: Some(ack), .. }
        | Event::Sync { ack: Some(ack) } = ev
        {
            let _ = ack.send(());
        }
    }
    true
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
