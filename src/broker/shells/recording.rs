//! Session recordings: every shell, a person's or an agent's, is written as it happens to an
//! asciicast v2 file (`state/recordings/ID.cast`, owner-only) that asciinema plays.
//!
//! Output is `o` events; an agent's input is kept as `i` events; each change of typist is an `m`
//! marker (`agent` or `person`) so a reader sees who typed what; resizes are `r` events. A
//! person's keystrokes are not kept (as asciinema does not keep stdin by default): they may be a
//! password typed at a prompt that does not echo; what the terminal echoed is in the output. A shell the
//! next broker re-adopts goes on in the same file, its clock continuing from the last event.
//! Recording never stops a shell: a file that cannot be written is logged once and dropped.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Who typed input into a shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Typist {
    /// Through the MCP adapter (`ssh_shell send`).
    Agent,
    /// A terminal attached with `sshkeep shell`.
    Person,
}

impl Typist {
    fn as_str(self) -> &'static str {
        match self {
            Typist::Agent => "agent",
            Typist::Person => "person",
        }
    }
}

/// The recording of one shell.
pub struct Recording {
    file: Option<File>,
    path: PathBuf,
    started: Instant,
    /// Seconds already on the file's clock when this broker took it over.
    base: f64,
    /// The tail of the last output chunk when it ended inside a UTF-8 sequence.
    pending: Vec<u8>,
    typist: Option<Typist>,
}

impl Recording {
    /// The recording of a shell: at `path` when there is one.
    pub fn of(path: Option<PathBuf>, size: (u16, u16), term: &str, title: &str) -> Self {
        match path {
            Some(p) => Self::open(p, size, term, title),
            None => Self {
                file: None,
                path: PathBuf::new(),
                started: Instant::now(),
                base: 0.0,
                pending: Vec::new(),
                typist: None,
            },
        }
    }

    /// Starts (or, for a re-adopted shell, continues) the recording at `path`.
    pub fn open(path: PathBuf, (cols, rows): (u16, u16), term: &str, title: &str) -> Self {
        let base = last_time(&path);
        let file = (|| -> std::io::Result<File> {
            if let Some(d) = path.parent() {
                crate::paths::ensure_private_dir(d).map_err(std::io::Error::other)?;
            }
            let existed = path.exists();
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)?;
            if !existed {
                let header = serde_json::json!({
                    "version": 2,
                    "width": cols,
                    "height": rows,
                    "timestamp": std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0),
                    "title": title,
                    "env": {"TERM": term},
                });
                writeln!(f, "{header}")?;
            }
            Ok(f)
        })();
        let file = match file {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!("cannot record the shell to {}: {e}", path.display());
                None
            }
        };
        Self {
            file,
            path,
            started: Instant::now(),
            base,
            pending: Vec::new(),
            typist: None,
        }
    }

    /// Raw output from the server.
    pub fn output(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // Keep an incomplete sequence at the end for the next chunk; anything else invalid
            // is written as U+FFFD like any terminal would show it.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let chunk: Vec<u8> = self.pending.drain(..valid).collect();
        if !chunk.is_empty() {
            let text = String::from_utf8_lossy(&chunk).into_owned();
            self.event("o", &text);
        }
    }

    /// Input someone typed (a person's is marked, not kept: see the module's doc).
    pub fn input(&mut self, by: Typist, data: &[u8]) {
        if self.typist != Some(by) {
            self.typist = Some(by);
            self.event("m", by.as_str());
        }
        if by == Typist::Agent {
            let text = String::from_utf8_lossy(data).into_owned();
            self.event("i", &text);
        }
    }

    /// The terminal's new size.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.event("r", &format!("{cols}x{rows}"));
    }

    fn event(&mut self, kind: &str, text: &str) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        let t = self.base + self.started.elapsed().as_secs_f64();
        let line = serde_json::json!([(t * 1_000_000.0).round() / 1_000_000.0, kind, text]);
        if let Err(e) = writeln!(f, "{line}") {
            tracing::warn!(
                "stopped recording the shell to {}: {e}",
                self.path.display()
            );
            self.file = None;
        }
    }
}

/// The time of the last event in an existing recording (0 for a new one).
fn last_time(path: &Path) -> f64 {
    let Ok(f) = File::open(path) else {
        return 0.0;
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .skip(1)
        .last()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .and_then(|v| v.get(0).and_then(serde_json::Value::as_f64))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_is_asciicast_v2_with_split_utf8_kept_whole_and_typists_marked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = crate::paths::Paths::under(dir.path())
            .recording("s1")
            .expect("path");
        let mut r = Recording::open(p.clone(), (80, 24), "xterm", "t");
        r.output(b"caf\xc3");
        r.output(b"\xa9\r\n");
        r.input(Typist::Agent, b"ls\r");
        r.input(Typist::Agent, b"pwd\r");
        r.input(Typist::Person, b"q");
        r.resize(100, 30);
        drop(r);
        // A re-adopting broker goes on in the same file, its clock not going back.
        let mut again = Recording::open(p.clone(), (80, 24), "xterm", "t");
        again.output(b"more");
        drop(again);
        let text = std::fs::read_to_string(&p).expect("read");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(lines[0]["width"], 80);
        let events: Vec<(String, String)> = lines[1..]
            .iter()
            .map(|e| {
                (
                    e[1].as_str().unwrap_or_default().to_string(),
                    e[2].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            // The chunk that ended inside `é` was held back until the sequence was whole.
            ("o", "caf"),
            ("o", "é\r\n"),
            ("m", "agent"),
            ("i", "ls\r"),
            ("i", "pwd\r"),
            ("m", "person"),
            ("r", "100x30"),
            ("o", "more"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(events, want);
        let times: Vec<f64> = lines[1..].iter().filter_map(|e| e[0].as_f64()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }
}
