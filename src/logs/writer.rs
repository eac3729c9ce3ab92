//! The log writer: one thread, its own SQLite connection, one transaction per batch of events.
//!
//! Lines are numbered as they complete, across both streams, and collected per command in an
//! open chunk ([`crate::db::log_chunks`]) that is written when it is full, when the command has
//! been quiet for [`QUIET`], when it has been open for [`MAX_AGE`], and when the command ends or
//! is re-attached. A command's byte and line counts are saved with the chunks that hold those
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
use std::time::{Duration, Instant};

use anyhow::Result;
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::oneshot;

use std::sync::Mutex;

use super::queue::{Event, Loss, Queue};
use crate::db::log_chunks::{CHUNK_BYTES, ChunkBuf};

pub const STREAM_STDOUT: i64 = 1;
pub const STREAM_STDERR: i64 = 2;
pub const STREAM_MARKER: i64 = 3;

/// A line longer than this is stored in pieces.
const MAX_LINE: usize = 64 * 1024;
/// An open chunk is written once no line came for this long (so a quiet command's output is
/// readable, and safe from a crash, soon after it is printed)...
const QUIET: Duration = Duration::from_millis(100);
/// ...or once it has been open this long, under a steady trickle.
const MAX_AGE: Duration = Duration::from_secs(1);
/// Events written in one transaction at most.
const BATCH: usize = 1024;
/// Attempts at one batch before its output is counted as lost (a lock held by another
/// connection clears well within this; a full disk does not).
const ATTEMPTS: u32 = 15;

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

    /// Commits what is complete and forgets partial lines, before a re-attach from the
    /// committed offsets.
    /// Writes every command's open chunk and waits until it is committed (the broker is
    /// stopping: what a running command or shell printed last is kept).
    pub async fn sync(&self) {
        let (ack, done) = oneshot::channel();
        self.queue.push(Event::Sync { ack: Some(ack) });
        let _ = done.await;
    }

    pub async fn reset(&self, cmd: &Arc<str>) {
        let (ack, done) = oneshot::channel();
        self.queue.push(Event::Reset {
            cmd: cmd.clone(),
            ack: Some(ack),
        });
        let _ = done.await;
    }
}

/// Per-stream byte and line counts and the bytes kept, as the `commands` row holds them.
#[derive(Clone, Copy, Default)]
struct Counts {
    bytes: [i64; 2],
    lines: [i64; 2],
    stored: i64,
}

#[derive(Clone, Default)]
struct CmdState {
    next_n: i64,
    partial: [Vec<u8>; 2],
    /// When each partial line's first byte arrived.
    partial_at: [i64; 2],
    /// Every whole line received so far.
    counts: Counts,
    /// The counts without the lines in the open chunk: what the database holds, so that a
    /// re-attach or a crash never finds counts ahead of the stored lines.
    committed: Counts,
    capped: bool,
    dirty: bool,
    /// Lines not yet written, and when the first and the latest of them came (writer's clock).
    chunk: ChunkBuf,
    opened: Option<Instant>,
    last: Option<Instant>,
}

impl CmdState {
    /// Whether the open chunk is due: quiet for [`QUIET`] or open for [`MAX_AGE`].
    fn due(&self, now: Instant) -> bool {
        !self.chunk.is_empty()
            && (self.last.is_none_or(|t| now >= t + QUIET)
                || self.opened.is_none_or(|t| now >= t + MAX_AGE))
    }

    /// When the open chunk falls due, if there is one.
    fn due_at(&self) -> Option<Instant> {
        if self.chunk.is_empty() {
            return None;
        }
        let quiet = self.last.map(|t| t + QUIET);
        let age = self.opened.map(|t| t + MAX_AGE);
        quiet.into_iter().chain(age).min()
    }

    /// Appends a line to the open chunk, writing the chunk once it is full.
    fn push(
        &mut self,
        conn: &Connection,
        cmd: &str,
        stream: i64,
        body: &[u8],
        at_ms: i64,
    ) -> rusqlite::Result<()> {
        let now = Instant::now();
        if self.chunk.is_empty() {
            self.opened = Some(now);
        }
        self.last = Some(now);
        self.chunk.push(self.next_n, stream, body, at_ms);
        self.next_n += 1;
        self.dirty = true;
        if self.chunk.len() >= CHUNK_BYTES {
            self.flush(conn, cmd)?;
        }
        Ok(())
    }

    /// Writes the open chunk: its lines and the counts that include them become the database's.
    fn flush(&mut self, conn: &Connection, cmd: &str) -> rusqlite::Result<()> {
        if !self.chunk.is_empty() {
            self.chunk.write(conn, cmd)?;
            self.opened = None;
            self.dirty = true;
        }
        Ok(())
    }

    fn marker(
        &mut self,
        conn: &Connection,
        cmd: &str,
        text: &str,
        at_ms: i64,
    ) -> rusqlite::Result<()> {
        if self.chunk.is_empty() {
            self.committed = self.counts;
        }
        self.push(conn, cmd, STREAM_MARKER, text.as_bytes(), at_ms)
    }
}

fn load(conn: &Connection, cmd: &str, cap: u64) -> rusqlite::Result<CmdState> {
    let next_n = crate::db::log_chunks::last_line(conn, cmd)? + 1;
    let (b0, b1, l0, l1, stored): (i64, i64, i64, i64, i64) = conn
        .query_row(
            "SELECT stdout_bytes, stderr_bytes, stdout_lines, stderr_lines, stored_bytes FROM commands WHERE id = ?1",
            [cmd],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap_or((0, 0, 0, 0, 0));
    let counts = Counts {
        bytes: [b0, b1],
        lines: [l0, l1],
        stored,
    };
    Ok(CmdState {
        next_n,
        counts,
        committed: counts,
        capped: stored as u64 >= cap,
        ..Default::default()
    })
}

/// Stores one complete line (with its newline, if any) of `stream`.
fn line(
    conn: &Connection,
    cmd: &str,
    st: &mut CmdState,
    stream: i64,
    raw: &[u8],
    cap: u64,
    at_ms: i64,
) -> rusqlite::Result<()> {
    let i = (stream - 1) as usize;
    if st.chunk.is_empty() {
        st.committed = st.counts;
    }
    st.counts.bytes[i] += raw.len() as i64;
    st.counts.lines[i] += 1;
    st.dirty = true;
    if st.capped {
        return Ok(());
    }
    if (st.counts.stored + raw.len() as i64) as u64 > cap {
        st.capped = true;
        let text = format!(
            "[sshkeep] output past {cap} bytes is not kept (setting log_max_command_bytes); byte and line counts go on"
        );
        return st.push(conn, cmd, STREAM_MARKER, text.as_bytes(), at_ms);
    }
    st.counts.stored += raw.len() as i64;
    let body = raw.strip_suffix(b"\n").unwrap_or(raw);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    st.push(conn, cmd, stream, body, at_ms)
}

fn data(
    conn: &Connection,
    cmd: &str,
    st: &mut CmdState,
    stream: i64,
    bytes: &[u8],
    cap: u64,
    at_ms: i64,
) -> rusqlite::Result<()> {
    let i = (stream - 1) as usize;
    let mut rest = bytes;
    // A partial line is completed first; it keeps the arrival time of its first byte.
    if !st.partial[i].is_empty() {
        let at = st.partial_at[i];
        match memchr::memchr(b'\n', rest) {
            Some(p) => {
                let mut buf = std::mem::take(&mut st.partial[i]);
                buf.extend_from_slice(&rest[..=p]);
                rest = &rest[p + 1..];
                let mut start = 0;
                while buf.len() - start > MAX_LINE + 1 {
                    line(
                        conn,
                        cmd,
                        st,
                        stream,
                        &buf[start..start + MAX_LINE],
                        cap,
                        at,
                    )?;
                    start += MAX_LINE;
                }
                line(conn, cmd, st, stream, &buf[start..], cap, at)?;
            }
            None => {
                st.partial[i].extend_from_slice(rest);
                return long_pieces(conn, cmd, st, stream, cap);
            }
        }
    }
    while let Some(p) = memchr::memchr(b'\n', rest) {
        let mut piece = &rest[..=p];
        while piece.len() > MAX_LINE + 1 {
            line(conn, cmd, st, stream, &piece[..MAX_LINE], cap, at_ms)?;
            piece = &piece[MAX_LINE..];
        }
        line(conn, cmd, st, stream, piece, cap, at_ms)?;
        rest = &rest[p + 1..];
    }
    if !rest.is_empty() {
        if st.partial[i].is_empty() {
            st.partial_at[i] = at_ms;
        }
        st.partial[i].extend_from_slice(rest);
    }
    long_pieces(conn, cmd, st, stream, cap)
}

/// A partial line longer than [`MAX_LINE`] is stored in pieces as it grows.
fn long_pieces(
    conn: &Connection,
    cmd: &str,
    st: &mut CmdState,
    stream: i64,
    cap: u64,
) -> rusqlite::Result<()> {
    let i = (stream - 1) as usize;
    if st.partial[i].len() <= MAX_LINE {
        return Ok(());
    }
    let buf = std::mem::take(&mut st.partial[i]);
    let at = st.partial_at[i];
    let mut start = 0;
    while buf.len() - start > MAX_LINE {
        line(
            conn,
            cmd,
            st,
            stream,
            &buf[start..start + MAX_LINE],
            cap,
            at,
        )?;
        start += MAX_LINE;
    }
    st.partial[i] = buf[start..].to_vec();
    Ok(())
}

fn save_counts(conn: &Connection, cmd: &str, st: &mut CmdState) -> rusqlite::Result<()> {
    if st.dirty {
        let c = if st.chunk.is_empty() {
            st.counts
        } else {
            st.committed
        };
        conn.prepare_cached(
            "UPDATE commands SET stdout_bytes = ?2, stderr_bytes = ?3, stdout_lines = ?4, stderr_lines = ?5, stored_bytes = ?6 WHERE id = ?1",
        )?
        .execute(params![cmd, c.bytes[0], c.bytes[1], c.lines[0], c.lines[1], c.stored])?;
        st.dirty = false;
    }
    Ok(())
}

/// Applies a batch in one transaction, then writes the chunks that fell due. Acknowledgements
/// are sent by the caller after commit.
fn apply(
    conn: &mut Connection,
    states: &mut HashMap<Arc<str>, CmdState>,
    batch: &[Event],
    cap: u64,
) -> rusqlite::Result<()> {
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
    tx.commit()
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
) -> rusqlite::Result<()> {
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
) -> rusqlite::Result<()> {
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
    tx.commit()
}

fn run(mut conn: Connection, queue: Arc<Queue>, cap: Arc<AtomicU64>, lost: Losses) {
    let mut states: HashMap<Arc<str>, CmdState> = HashMap::new();
    loop {
        // Wait for events, or until the first open chunk falls due.
        let due = states.values().filter_map(CmdState::due_at).min();
        let Some(batch) = queue.take(BATCH, due) else {
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
mod tests {
    use super::*;
    use crate::db::{Db, NewCommand};
    use crate::protocol::{CommandState, LogQuery};

    /// Every line of command `c1` as the reader returns them.
    fn read_c1(path: &std::path::Path) -> crate::protocol::LogPage {
        let conn = Db::open_extra(path).expect("reader");
        crate::logs::read(
            &conn,
            &LogQuery {
                command_id: "c1".into(),
                ..Default::default()
            },
            CommandState::Completed,
            1 << 20,
        )
        .expect("read")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn lines_of_a_command_that_goes_on_are_stored_once_quiet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let db = Db::open(&path).expect("open");
        let cmd = NewCommand {
            id: "c1".into(),
            session_id: None,
            target: "t".into(),
            conn_name: None,
            key_name: None,
            commands: vec!["x".into()],
            options: Default::default(),
            detached: false,
            bulk_id: None,
        };
        db.insert_command(&cmd, 0).expect("insert");
        let w = LogWriter::start(
            &path,
            dir.path().join("spill"),
            Arc::new(AtomicU64::new(1 << 30)),
        )
        .expect("writer");
        let id: Arc<str> = "c1".into();
        w.data(&id, STREAM_STDOUT, b"one\npartial".to_vec());
        w.marker(&id, "[sshkeep] a note");
        // No finish: the command goes on, and what is whole is stored once the output is quiet.
        let mut texts = Vec::new();
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            texts = read_c1(&path)
                .lines
                .iter()
                .map(|l| l.text.clone())
                .collect();
            if texts.len() == 2 {
                break;
            }
        }
        assert_eq!(texts, ["one", "[sshkeep] a note"]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_loss_recorded_while_the_command_runs_keeps_its_lines_numbered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let db = Db::open(&path).expect("open");
        let cmd = NewCommand {
            id: "c1".into(),
            session_id: None,
            target: "t".into(),
            conn_name: None,
            key_name: None,
            commands: vec!["x".into()],
            options: Default::default(),
            detached: false,
            bulk_id: None,
        };
        db.insert_command(&cmd, 0).expect("insert");
        let w = LogWriter::start(
            &path,
            dir.path().join("spill"),
            Arc::new(AtomicU64::new(1 << 30)),
        )
        .expect("writer");
        let id: Arc<str> = "c1".into();
        w.unrecorded.lock().expect("lock").insert(
            id.clone(),
            Loss {
                bytes: 5,
                error: "database or disk is full".into(),
            },
        );
        w.data(&id, STREAM_STDOUT, b"a\n".to_vec());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        w.data(&id, STREAM_STDOUT, b"b\n".to_vec());
        w.finish(&id).await;
        let page = read_c1(&path);
        let texts: Vec<String> = page.lines.iter().map(|l| l.text.clone()).collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert_eq!((texts[0].as_str(), texts[2].as_str()), ("a", "b"));
        assert!(
            texts[1].contains("5 bytes of output were lost"),
            "{texts:?}"
        );
        assert_eq!(db.output_loss("c1").expect("loss").0, 5);
        assert!(w.unrecorded_loss("c1").is_none());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn lines_offsets_partial_lines_and_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let db = Db::open(&path).expect("open");
        let cmd = NewCommand {
            id: "c1".into(),
            session_id: None,
            target: "t".into(),
            conn_name: None,
            key_name: None,
            commands: vec!["x".into()],
            options: Default::default(),
            detached: true,
            bulk_id: None,
        };
        db.insert_command(&cmd, 0).expect("insert");
        let w = LogWriter::start(
            &path,
            dir.path().join("spill"),
            Arc::new(AtomicU64::new(1 << 30)),
        )
        .expect("writer");
        let id: Arc<str> = "c1".into();
        w.data(&id, STREAM_STDOUT, b"one\ntw".to_vec());
        w.data(&id, STREAM_STDERR, b"err\r\n".to_vec());
        w.data(&id, STREAM_STDOUT, b"o\nthr".to_vec());
        // A re-attach drops the partial "thr": only whole lines count as received.
        w.reset(&id).await;
        let row = db.command("c1").expect("query").expect("row");
        assert_eq!(
            (row.stdout_bytes, row.stdout_lines, row.stderr_bytes),
            (8, 2, 5)
        );
        // The data comes again from the committed offset and the line is whole once.
        w.data(&id, STREAM_STDOUT, b"three".to_vec());
        w.finish(&id).await;
        let page = read_c1(&path);
        let got: Vec<(String, String)> = page
            .lines
            .iter()
            .map(|l| (l.stream.to_string(), l.text.clone()))
            .collect();
        let want = [
            ("stdout", "one"),
            ("stderr", "err"),
            ("stdout", "two"),
            ("stdout", "three"),
        ];
        assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
        let row = db.command("c1").expect("query").expect("row");
        assert_eq!((row.stdout_bytes, row.stdout_lines), (13, 3));
    }
}
