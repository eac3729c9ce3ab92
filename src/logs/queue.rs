//! The log writer's input queue: producers never wait, memory stays bounded.
//!
//! A command's channel must be read as fast as the server sends (russh stalls the whole
//! connection, keepalives and other commands included, while one channel's queue is full), but
//! the database may be slower than the network. So events go to memory up to [`MEMORY_LIMIT`]
//! bytes; past that they are appended to a spill file (owner-only, in the state directory) and
//! read back in order once memory is empty. Memory holds only events older than anything in
//! the file, so order is kept.
//!
//! When the disk is full, output that fits nowhere is dropped, never silently: the bytes lost
//! are counted per command and handed to the writer, which records them with the command as
//! soon as the database takes writes again. Nothing here panics or logs while holding the
//! queue's lock (a log write can fail on the same full disk), and a poisoned lock is recovered,
//! so one failure never stops output storage for every later command.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// Output bytes held in memory before spilling to disk.
pub const MEMORY_LIMIT: usize = 8 * 1024 * 1024;
/// Memory allowed when the spill file cannot be used (a full disk): past this, output is
/// dropped and counted as lost.
const EMERGENCY_LIMIT: usize = 2 * MEMORY_LIMIT;

/// What the writer is asked to do.
pub enum Event {
    Data {
        cmd: Arc<str>,
        stream: i64,
        bytes: Vec<u8>,
        /// When the bytes arrived (Unix milliseconds).
        at_ms: i64,
    },
    Marker {
        cmd: Arc<str>,
        text: String,
        at_ms: i64,
    },
    /// Store partial lines as lines, commit, forget the command, then acknowledge.
    Finish {
        cmd: Arc<str>,
        ack: Option<oneshot::Sender<()>>,
    },
    /// Forget partial lines and in-memory counters, commit, then acknowledge.
    Reset {
        cmd: Arc<str>,
        ack: Option<oneshot::Sender<()>>,
    },
    /// Write every command's open chunk, commit, then acknowledge (the broker is stopping).
    Sync { ack: Option<oneshot::Sender<()>> },
}

impl Event {
    fn size(&self) -> usize {
        match self {
            Event::Data { bytes, .. } => bytes.len() + 64,
            Event::Marker { text, .. } => text.len() + 64,
            _ => 64,
        }
    }
}

struct Spill {
    path: PathBuf,
    write: File,
    read: BufReader<File>,
    /// Records written and not yet read back.
    pending: u64,
    /// Bytes of whole records in the file (a failed write is cut back to this).
    written: u64,
    /// A write failed: records after it went elsewhere, so nothing more is added to the file.
    broken: bool,
    next_ack: u64,
    acks: HashMap<u64, oneshot::Sender<()>>,
}

impl Spill {
    fn open(path: PathBuf) -> std::io::Result<Self> {
        let write = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        let read = BufReader::new(File::open(&path)?);
        Ok(Self {
            path,
            write,
            read,
            pending: 0,
            written: 0,
            broken: false,
            next_ack: 0,
            acks: HashMap::new(),
        })
    }

    /// Acknowledgements cannot be written to a file: they wait here under a number.
    fn keep_ack(&mut self, ack: Option<oneshot::Sender<()>>) -> u64 {
        let id = self.next_ack;
        self.next_ack += 1;
        if let Some(a) = ack {
            self.acks.insert(id, a);
        }
        id
    }

    /// Appends one record. On failure the event is handed back, the file is cut back to its
    /// last whole record and the spill is marked broken.
    fn put(&mut self, ev: Event) -> Result<(), (Event, std::io::Error)> {
        let rec = match &ev {
            // The number holds the arrival time above the stream's byte.
            Event::Data {
                cmd,
                stream,
                bytes,
                at_ms,
            } => record(0, cmd, ((*at_ms as u64) << 8) | *stream as u64, bytes),
            Event::Marker { cmd, text, at_ms } => record(1, cmd, *at_ms as u64, text.as_bytes()),
            Event::Finish { cmd, .. } => record(2, cmd, self.next_ack, &[]),
            Event::Reset { cmd, .. } => record(3, cmd, self.next_ack, &[]),
            Event::Sync { .. } => record(4, "", self.next_ack, &[]),
        };
        if let Err(e) = self.write.write_all(&rec).and_then(|_| self.write.flush()) {
            self.broken = true;
            let _ = self.write.set_len(self.written);
            return Err((ev, e));
        }
        self.written += rec.len() as u64;
        self.pending += 1;
        if let Event::Finish { ack, .. } | Event::Reset { ack, .. } | Event::Sync { ack } = ev {
            self.keep_ack(ack);
        }
        Ok(())
    }

    fn take(&mut self) -> std::io::Result<Event> {
        let mut head = [0u8; 3];
        self.read.read_exact(&mut head)?;
        let mut cmd = vec![0u8; u16::from_be_bytes([head[1], head[2]]) as usize];
        self.read.read_exact(&mut cmd)?;
        let mut num = [0u8; 8];
        self.read.read_exact(&mut num)?;
        let mut len = [0u8; 4];
        self.read.read_exact(&mut len)?;
        // Only whole records are ever left in the file, so the length is one this queue wrote;
        // still, a length past the file's end is refused rather than allocated.
        let len = u64::from(u32::from_be_bytes(len));
        if len > self.written {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a spill record is longer than the file",
            ));
        }
        let mut payload = vec![0u8; len as usize];
        self.read.read_exact(&mut payload)?;
        self.pending = self.pending.saturating_sub(1);
        let cmd: Arc<str> = String::from_utf8_lossy(&cmd).into_owned().into();
        let num = u64::from_be_bytes(num);
        Ok(match head[0] {
            0 => Event::Data {
                cmd,
                stream: (num & 0xff) as i64,
                bytes: payload,
                at_ms: (num >> 8) as i64,
            },
            1 => Event::Marker {
                cmd,
                text: String::from_utf8_lossy(&payload).into_owned(),
                at_ms: num as i64,
            },
            4 => Event::Sync {
                ack: self.acks.remove(&num),
            },
            3 => Event::Reset {
                cmd,
                ack: self.acks.remove(&num),
            },
            _ => Event::Finish {
                cmd,
                ack: self.acks.remove(&num),
            },
        })
    }
}

/// One spill record: kind, command id, a number (arrival time and stream, arrival time, or
/// acknowledgement), payload.
fn record(kind: u8, cmd: &str, num: u64, payload: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(payload.len() + cmd.len() + 19);
    rec.push(kind);
    rec.extend_from_slice(&(cmd.len().min(u16::MAX as usize) as u16).to_be_bytes());
    rec.extend_from_slice(
        cmd.as_bytes()
            .get(..u16::MAX as usize)
            .unwrap_or(cmd.as_bytes()),
    );
    rec.extend_from_slice(&num.to_be_bytes());
    rec.extend_from_slice(&(payload.len().min(u32::MAX as usize) as u32).to_be_bytes());
    rec.extend_from_slice(payload.get(..u32::MAX as usize).unwrap_or(payload));
    rec
}

/// Output dropped because it fitted nowhere, per command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loss {
    pub bytes: u64,
    /// The storage error that caused it (the first one seen).
    pub error: String,
}

struct State {
    memory: VecDeque<Event>,
    memory_bytes: usize,
    spill: Option<Spill>,
    /// Events that must not be lost (markers, finish and reset with their acknowledgements)
    /// that arrived after the spill file broke: they follow the spill's records.
    after_spill: VecDeque<Event>,
    lost: HashMap<Arc<str>, Loss>,
    closed: bool,
}

impl State {
    fn lose(&mut self, ev: Event, error: &str) {
        if let Event::Data { cmd, bytes, .. } = ev {
            let loss = self.lost.entry(cmd).or_default();
            loss.bytes += bytes.len() as u64;
            if loss.error.is_empty() {
                loss.error = error.to_string();
            }
        }
    }
}

/// The queue shared by producers and the writer thread.
pub struct Queue {
    st: Mutex<State>,
    ready: Condvar,
    spill_path: PathBuf,
}

impl Queue {
    /// A queue that spills to `spill_path` when memory is full.
    pub fn new(spill_path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            st: Mutex::new(State {
                memory: VecDeque::new(),
                memory_bytes: 0,
                spill: None,
                after_spill: VecDeque::new(),
                lost: HashMap::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            spill_path,
        })
    }

    /// The state, also after a thread panicked while holding it: the queue's invariants hold
    /// between statements, and losing every later command's output would be worse.
    fn state(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an event. Never waits for the writer.
    pub fn push(&self, ev: Event) {
        // Logged after the lock is released: a log write may fail on the same full disk.
        let note = self.push_locked(ev);
        self.ready.notify_one();
        match note {
            Some(Note::Spilling(path)) => tracing::info!(
                "command output arrives faster than it is stored; spilling to {}",
                path.display()
            ),
            Some(Note::SpillFailed(e)) => tracing::error!(
                "cannot use the spill file {}: {e}; output that does not fit in memory is dropped and counted",
                self.spill_path.display()
            ),
            None => {}
        }
    }

    fn push_locked(&self, ev: Event) -> Option<Note> {
        let mut st = self.state();
        let size = ev.size();
        if st.spill.is_none() && st.after_spill.is_empty() {
            if st.memory_bytes + size <= MEMORY_LIMIT {
                st.memory_bytes += size;
                st.memory.push_back(ev);
                return None;
            }
            match Spill::open(self.spill_path.clone()) {
                Ok(s) => {
                    st.spill = Some(s);
                    let note = Note::Spilling(self.spill_path.clone());
                    return self.push_spill(&mut st, ev).or(Some(note));
                }
                Err(e) => {
                    // No disk for the spill: memory up to a bound, then counted losses.
                    let error = format!("cannot open the spill file: {e}");
                    let fresh = !st.lost.values().any(|l| l.error == error);
                    if st.memory_bytes + size <= EMERGENCY_LIMIT
                        || !matches!(ev, Event::Data { .. })
                    {
                        st.memory_bytes += size;
                        st.memory.push_back(ev);
                    } else {
                        st.lose(ev, &error);
                    }
                    return fresh.then_some(Note::SpillFailed(e.to_string()));
                }
            }
        }
        self.push_spill(&mut st, ev)
    }

    /// Past memory: into the spill file, or, once it has failed, after it (markers and
    /// acknowledgements) or counted as lost (output).
    fn push_spill(&self, st: &mut State, ev: Event) -> Option<Note> {
        let ev = match st.spill.as_mut() {
            Some(spill) if !spill.broken => match spill.put(ev) {
                Ok(()) => return None,
                Err((ev, e)) => {
                    let error = format!("cannot write the spill file: {e}");
                    keep_or_lose(st, ev, &error);
                    return Some(Note::SpillFailed(e.to_string()));
                }
            },
            _ => ev,
        };
        keep_or_lose(st, ev, "the spill file failed earlier");
        None
    }

    /// Takes the output lost so far (the writer records it with each command).
    pub fn take_lost(&self) -> HashMap<Arc<str>, Loss> {
        std::mem::take(&mut self.state().lost)
    }

    /// Takes up to `max` events holding up to about `max_bytes` (at least one event), oldest
    /// first, waiting while there are none (until `until`, if given: then possibly none). `None`
    /// once closed and empty.
    pub fn take(
        &self,
        max: usize,
        max_bytes: usize,
        until: Option<std::time::Instant>,
    ) -> Option<Vec<Event>> {
        let mut st = self.state();
        let mut failure = None;
        loop {
            let mut out = Vec::new();
            let mut bytes = 0;
            while out.len() < max && bytes < max_bytes {
                if let Some(ev) = st.memory.pop_front() {
                    st.memory_bytes = st.memory_bytes.saturating_sub(ev.size());
                    bytes += ev.size();
                    out.push(ev);
                    continue;
                }
                let Some(spill) = st.spill.as_mut() else {
                    break;
                };
                if spill.pending == 0 {
                    let path = spill.path.clone();
                    st.spill = None;
                    let _ = std::fs::remove_file(path);
                    // What waited behind a broken spill file comes next, in order.
                    let rest = std::mem::take(&mut st.after_spill);
                    for ev in rest {
                        st.memory_bytes += ev.size();
                        st.memory.push_back(ev);
                    }
                    continue;
                }
                match spill.take() {
                    Ok(ev) => {
                        bytes += ev.size();
                        out.push(ev);
                    }
                    Err(e) => {
                        // Unreadable records are lost, but their acknowledgements are still
                        // sent (dropping the sender wakes the waiter) and the rest goes on.
                        failure = Some(format!("cannot read the spill file back: {e}"));
                        let path = spill.path.clone();
                        st.spill = None;
                        let _ = std::fs::remove_file(path);
                        let rest = std::mem::take(&mut st.after_spill);
                        for ev in rest {
                            st.memory_bytes += ev.size();
                            st.memory.push_back(ev);
                        }
                    }
                }
            }
            let timed_out = until.is_some_and(|t| std::time::Instant::now() >= t);
            if !out.is_empty() || st.closed || timed_out {
                let closed = st.closed;
                drop(st);
                if let Some(f) = failure {
                    tracing::error!("{f}");
                }
                return (!out.is_empty() || !closed).then_some(out);
            }
            st = match until {
                Some(t) => {
                    let left = t.saturating_duration_since(std::time::Instant::now());
                    self.ready
                        .wait_timeout(st, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.ready.wait(st).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// Something to log once the queue's lock is released.
enum Note {
    Spilling(PathBuf),
    SpillFailed(String),
}

/// Behind a broken spill file: output is counted as lost (memory is bounded), everything else
/// waits in order for the spill file to drain.
fn keep_or_lose(st: &mut State, ev: Event, error: &str) {
    match ev {
        Event::Data { .. } => st.lose(ev, error),
        other => st.after_spill.push_back(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_past_the_memory_limit_and_keeps_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = Queue::new(dir.path().join("spill"));
        let cmd: Arc<str> = "c".into();
        let chunk = vec![b'x'; 1024 * 1024];
        for i in 0..20u8 {
            let mut b = chunk.clone();
            b[0] = i;
            q.push(Event::Data {
                cmd: cmd.clone(),
                stream: 1,
                bytes: b,
                at_ms: 1_764_000_000_000 + i64::from(i),
            });
        }
        let (tx, mut rx) = oneshot::channel();
        q.push(Event::Finish {
            cmd: cmd.clone(),
            ack: Some(tx),
        });
        assert!(
            dir.path().join("spill").exists(),
            "past 8 MiB the queue spills"
        );
        let mut seen = Vec::new();
        while seen.len() < 21 {
            for ev in q.take(4, usize::MAX, None).expect("events") {
                match ev {
                    Event::Data {
                        bytes,
                        stream,
                        at_ms,
                        ..
                    } => {
                        assert_eq!(
                            (stream, at_ms),
                            (1, 1_764_000_000_000 + i64::from(bytes[0]))
                        );
                        seen.push(bytes[0]);
                    }
                    Event::Finish { ack, .. } => {
                        seen.push(255);
                        ack.expect("ack kept across the spill")
                            .send(())
                            .expect("send");
                    }
                    _ => {}
                }
            }
        }
        let mut want: Vec<u8> = (0..20).collect();
        want.push(255);
        assert_eq!(seen, want);
        assert!(rx.try_recv().is_ok());
        // Drained: the next take removes the file.
        q.push(Event::Marker {
            cmd,
            text: "m".into(),
            at_ms: 0,
        });
        let _ = q.take(10, usize::MAX, None);
        assert!(!dir.path().join("spill").exists());
    }
}
