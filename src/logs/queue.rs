//! The log writer's input queue: producers never wait, memory stays bounded.
//!
//! A command's channel must be read as fast as the server sends (russh stalls the whole
//! connection, keepalives and other commands included, while one channel's queue is full), but
//! the database may be slower than the network. So events go to memory up to [`MEMORY_LIMIT`]
//! bytes; past that they are appended to a spill file (owner-only, in the state directory) and
//! read back in order once memory is empty. Memory holds only events older than anything in
//! the file, so order is kept.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::oneshot;

/// Output bytes held in memory before spilling to disk.
pub const MEMORY_LIMIT: usize = 8 * 1024 * 1024;

/// What the writer is asked to do.
pub enum Event {
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
        ack: Option<oneshot::Sender<()>>,
    },
    /// Forget partial lines and in-memory counters, commit, then acknowledge.
    Reset {
        cmd: Arc<str>,
        ack: Option<oneshot::Sender<()>>,
    },
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

    fn put(&mut self, ev: Event) -> std::io::Result<()> {
        let (kind, cmd, num, payload): (u8, Arc<str>, u64, Vec<u8>) = match ev {
            Event::Data { cmd, stream, bytes } => (0, cmd, stream as u64, bytes),
            Event::Marker { cmd, text } => (1, cmd, 0, text.into_bytes()),
            Event::Finish { cmd, ack } => (2, cmd, self.keep_ack(ack), Vec::new()),
            Event::Reset { cmd, ack } => (3, cmd, self.keep_ack(ack), Vec::new()),
        };
        let mut rec = Vec::with_capacity(payload.len() + cmd.len() + 19);
        rec.push(kind);
        rec.extend_from_slice(&(cmd.len() as u16).to_be_bytes());
        rec.extend_from_slice(cmd.as_bytes());
        rec.extend_from_slice(&num.to_be_bytes());
        rec.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        rec.extend_from_slice(&payload);
        self.write.write_all(&rec)?;
        self.pending += 1;
        Ok(())
    }

    fn take(&mut self) -> std::io::Result<Event> {
        self.write.flush()?;
        let mut head = [0u8; 3];
        self.read.read_exact(&mut head)?;
        let mut cmd = vec![0u8; u16::from_be_bytes([head[1], head[2]]) as usize];
        self.read.read_exact(&mut cmd)?;
        let mut num = [0u8; 8];
        self.read.read_exact(&mut num)?;
        let mut len = [0u8; 4];
        self.read.read_exact(&mut len)?;
        let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
        self.read.read_exact(&mut payload)?;
        self.pending -= 1;
        let cmd: Arc<str> = String::from_utf8_lossy(&cmd).into_owned().into();
        let num = u64::from_be_bytes(num);
        Ok(match head[0] {
            0 => Event::Data {
                cmd,
                stream: num as i64,
                bytes: payload,
            },
            1 => Event::Marker {
                cmd,
                text: String::from_utf8_lossy(&payload).into_owned(),
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

struct State {
    memory: VecDeque<Event>,
    memory_bytes: usize,
    spill: Option<Spill>,
    closed: bool,
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
                closed: false,
            }),
            ready: Condvar::new(),
            spill_path,
        })
    }

    /// Adds an event. Never waits for the writer.
    pub fn push(&self, ev: Event) {
        let Ok(mut st) = self.st.lock() else { return };
        let size = ev.size();
        if st.spill.is_none() && st.memory_bytes + size <= MEMORY_LIMIT {
            st.memory_bytes += size;
            st.memory.push_back(ev);
        } else {
            if st.spill.is_none() {
                match Spill::open(self.spill_path.clone()) {
                    Ok(s) => {
                        tracing::info!(
                            "command output arrives faster than it is stored; spilling to {}",
                            s.path.display()
                        );
                        st.spill = Some(s);
                    }
                    Err(e) => {
                        // No disk for the spill: hold it in memory rather than lose output.
                        tracing::error!(
                            "cannot open the spill file {}: {e}",
                            self.spill_path.display()
                        );
                        st.memory_bytes += size;
                        st.memory.push_back(ev);
                        self.ready.notify_one();
                        return;
                    }
                }
            }
            if let Some(s) = st.spill.as_mut()
                && let Err(e) = s.put(ev)
            {
                tracing::error!("cannot write the spill file: {e}; this output is lost");
            }
        }
        self.ready.notify_one();
    }

    /// Takes up to `max` events, oldest first, waiting while there are none. `None` once closed
    /// and empty.
    pub fn take(&self, max: usize) -> Option<Vec<Event>> {
        let mut st = self.st.lock().ok()?;
        loop {
            let mut out = Vec::new();
            while out.len() < max {
                if let Some(ev) = st.memory.pop_front() {
                    st.memory_bytes -= ev.size();
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
                    break;
                }
                match spill.take() {
                    Ok(ev) => out.push(ev),
                    Err(e) => {
                        tracing::error!("cannot read the spill file back: {e}");
                        st.spill = None;
                        break;
                    }
                }
            }
            if !out.is_empty() {
                return Some(out);
            }
            if st.closed {
                return None;
            }
            st = self.ready.wait(st).ok()?;
        }
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
            for ev in q.take(4).expect("events") {
                match ev {
                    Event::Data { bytes, .. } => seen.push(bytes[0]),
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
        });
        let _ = q.take(10);
        assert!(!dir.path().join("spill").exists());
    }
}
