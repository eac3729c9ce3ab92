//! Command output as stored: chunks of whole lines, numbered across both streams in arrival
//! order, kept as raw bytes with a compact index beside them.
//!
//! A row per line cost a B-tree insert per line on the way in and a row decode per line on the
//! way out. A chunk of up to [`CHUNK_BYTES`] is one insert of one blob; grep scans it at memory
//! speed, and a line is found through the index without counting from the start.
//!
//! One chunk (a row of `log_chunks`):
//! - `first_n`, `lines`: the chunk holds lines `first_n ..= first_n + lines - 1`, every one of
//!   them (chunks of a command never overlap and leave no gap).
//! - the lines, each as stored (without its `\n` or `\r\n`) followed by one `\n`: in the
//!   command's output file at `file_off` (`file_len` bytes, see [`super::log_files`]), or, for
//!   chunks written before output files and the broker's own retention notes, in `data`.
//! - `runs`: [`RUN_BYTES`]-byte records (line count u32 LE, stream u8, arrival ms i64 LE), one
//!   per stretch of lines of one stream whose first bytes arrived in the same millisecond. Every
//!   line keeps its own stream and arrival time; a flood costs one record per network read.
//! - `idx`: the byte offset (u32 LE) in `data` of every [`INDEX_EVERY`]th line, line 0 first.
//!
//! Output stored before chunks (the `log_lines` table, a row per line) is read as it is; new
//! output of such a command goes on in chunks, numbered after it.

use rusqlite::{Connection, OptionalExtension, params};

use super::log_files;
use crate::logs::STREAM_MARKER;

/// Why output could not be stored or read back.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
    #[error("command output file: {0}")]
    File(#[from] std::io::Error),
}

/// A chunk is written once it holds this many bytes (it may pass it by one line).
pub const CHUNK_BYTES: usize = 256 * 1024;
/// The index holds the offset of every this-many-th line.
pub const INDEX_EVERY: usize = 64;
const RUN_BYTES: usize = 13;

/// Lines of one stream that arrived in the same millisecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub lines: u32,
    pub stream: i64,
    pub at_ms: i64,
}

/// A chunk being filled by the log writer.
#[derive(Clone, Debug, Default)]
pub struct ChunkBuf {
    first_n: i64,
    data: Vec<u8>,
    runs: Vec<Run>,
    idx: Vec<u8>,
    lines: u32,
    markers: u32,
}

impl ChunkBuf {
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Bytes of output held.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Appends line number `n` (the chunk's next one, or its first). `body` holds no `\n`; a
    /// marker's text may, and its newlines are stored as spaces.
    pub fn push(&mut self, n: i64, stream: i64, body: &[u8], at_ms: i64) {
        if self.lines == 0 {
            self.first_n = n;
        }
        if (self.lines as usize).is_multiple_of(INDEX_EVERY) {
            self.idx
                .extend_from_slice(&(self.data.len() as u32).to_le_bytes());
        }
        let at = self.data.len();
        self.data.extend_from_slice(body);
        if stream == STREAM_MARKER {
            self.markers += 1;
            for b in &mut self.data[at..] {
                if *b == b'\n' {
                    *b = b' ';
                }
            }
        }
        self.data.push(b'\n');
        match self.runs.last_mut() {
            Some(r) if r.stream == stream && r.at_ms == at_ms => r.lines += 1,
            _ => self.runs.push(Run {
                lines: 1,
                stream,
                at_ms,
            }),
        }
        self.lines += 1;
    }

    /// Writes the chunk, bytes and index, as a row of `cmd`'s output and empties it (the
    /// broker's own short notes, and tests).
    pub fn write(&mut self, conn: &Connection, cmd: &str) -> rusqlite::Result<()> {
        self.insert(conn, cmd, None)
    }

    /// Appends the chunk's bytes to `cmd`'s output file, then writes its row pointing there,
    /// and empties it.
    pub fn write_to_file(&mut self, conn: &Connection, cmd: &str) -> Result<(), StoreError> {
        if self.lines == 0 {
            return Ok(());
        }
        let off = log_files::append(conn, cmd, &self.data)?;
        Ok(self.insert(conn, cmd, Some(off))?)
    }

    fn insert(
        &mut self,
        conn: &Connection,
        cmd: &str,
        file_off: Option<u64>,
    ) -> rusqlite::Result<()> {
        if self.lines == 0 {
            return Ok(());
        }
        let mut runs = Vec::with_capacity(self.runs.len() * RUN_BYTES);
        for r in &self.runs {
            runs.extend_from_slice(&r.lines.to_le_bytes());
            runs.push(r.stream as u8);
            runs.extend_from_slice(&r.at_ms.to_le_bytes());
        }
        let (data, file_len): (&[u8], Option<i64>) = match file_off {
            Some(_) => (&[], Some(self.data.len() as i64)),
            None => (&self.data, None),
        };
        conn.prepare_cached(
            "INSERT INTO log_chunks (command_id, first_n, lines, markers, runs, idx, data, file_off, file_len)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            cmd,
            self.first_n,
            self.lines,
            self.markers,
            runs,
            self.idx,
            data,
            file_off.map(|o| o as i64),
            file_len
        ])?;
        *self = Self::default();
        Ok(())
    }
}

/// The columns [`Chunk::from_row`] reads, in its order.
pub const CHUNK_COLUMNS: &str = "first_n, lines, runs, idx, data, file_off, file_len";

/// A stored chunk, borrowed from the row it was read from.
pub struct Chunk<'a> {
    pub first_n: i64,
    pub lines: u32,
    runs: Vec<Run>,
    /// Line count at the end of each run.
    run_ends: Vec<u32>,
    idx: &'a [u8],
    pub data: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// Reads the columns [`CHUNK_COLUMNS`] from `r` starting at column 0; a chunk whose bytes
    /// are in the output file is read through `file` into `buf`.
    pub fn from_row(
        r: &'a rusqlite::Row<'a>,
        file: &mut log_files::Reader<'_>,
        buf: &'a mut Vec<u8>,
    ) -> Result<Self, StoreError> {
        let first_n: i64 = r.get(0)?;
        let lines: u32 = r.get(1)?;
        let raw_runs = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
        let idx = r.get_ref(3)?.as_blob().map_err(rusqlite::Error::from)?;
        let data = match (r.get::<_, Option<i64>>(5)?, r.get::<_, Option<i64>>(6)?) {
            (Some(off), Some(len)) => {
                file.read(off.max(0) as u64, len.max(0) as usize, buf)?;
                &buf[..]
            }
            _ => r.get_ref(4)?.as_blob().map_err(rusqlite::Error::from)?,
        };
        let mut runs = Vec::with_capacity(raw_runs.len() / RUN_BYTES);
        let mut run_ends = Vec::with_capacity(runs.capacity());
        let mut end = 0u32;
        for rec in raw_runs.chunks_exact(RUN_BYTES) {
            let mut l = [0u8; 4];
            l.copy_from_slice(&rec[..4]);
            let mut t = [0u8; 8];
            t.copy_from_slice(&rec[5..13]);
            let run = Run {
                lines: u32::from_le_bytes(l),
                stream: i64::from(rec[4]),
                at_ms: i64::from_le_bytes(t),
            };
            end = end.saturating_add(run.lines);
            runs.push(run);
            run_ends.push(end);
        }
        Ok(Self {
            first_n,
            lines,
            runs,
            run_ends,
            idx,
            data,
        })
    }

    /// The stream and arrival time of line `i` (0-based in the chunk).
    pub fn meta(&self, i: u32) -> (i64, i64) {
        let k = self.run_ends.partition_point(|&e| e <= i);
        self.runs
            .get(k)
            .or(self.runs.last())
            .map_or((crate::logs::STREAM_STDOUT, 0), |r| (r.stream, r.at_ms))
    }

    fn index_entry(&self, k: usize) -> Option<usize> {
        let b = self.idx.get(k * 4..k * 4 + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// The byte offset where line `i` starts (the end of the data past the last line).
    pub fn line_start(&self, i: u32) -> usize {
        let k = i as usize / INDEX_EVERY;
        let (mut pos, mut at) = match self.index_entry(k) {
            Some(o) => (o.min(self.data.len()), k * INDEX_EVERY),
            None => (0, 0),
        };
        while at < i as usize {
            match memchr::memchr(b'\n', &self.data[pos..]) {
                Some(p) => pos += p + 1,
                None => return self.data.len(),
            }
            at += 1;
        }
        pos
    }

    /// The line (0-based in the chunk) that byte `off` belongs to.
    pub fn line_of(&self, off: usize) -> u32 {
        let entries = self.idx.len() / 4;
        // The last index entry at or before `off`.
        let (mut lo, mut hi) = (0usize, entries);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.index_entry(mid).unwrap_or(usize::MAX) <= off {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let k = lo.saturating_sub(1);
        let base = self.index_entry(k).unwrap_or(0).min(off);
        let counted = memchr::memchr_iter(b'\n', &self.data[base..off]).count();
        (k * INDEX_EVERY + counted) as u32
    }
}

/// The number of `cmd`'s last stored line (0 when none), old rows and chunks alike.
pub fn last_line(conn: &Connection, cmd: &str) -> rusqlite::Result<i64> {
    let old: i64 = conn.query_row(
        "SELECT COALESCE(MAX(n), 0) FROM log_lines WHERE command_id = ?1",
        [cmd],
        |r| r.get(0),
    )?;
    let new: Option<i64> = conn
        .query_row(
            "SELECT first_n + lines - 1 FROM log_chunks WHERE command_id = ?1
             ORDER BY first_n DESC LIMIT 1",
            [cmd],
            |r| r.get(0),
        )
        .optional()?;
    Ok(old.max(new.unwrap_or(0)))
}

/// Removes every line of `cmd`'s output from the database. Its output file goes once this is
/// committed ([`log_files::remove`]).
pub fn remove(conn: &Connection, cmd: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM log_lines WHERE command_id = ?1", [cmd])?;
    conn.execute("DELETE FROM log_chunks WHERE command_id = ?1", [cmd])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Lines 10..=209 (every third on stderr, times in steps) and a marker, in one chunk.
    fn sample() -> ChunkBuf {
        let mut b = ChunkBuf::default();
        for i in 0..200i64 {
            let stream = if i % 3 == 0 { 2 } else { 1 };
            b.push(10 + i, stream, format!("line {i}").as_bytes(), 1000 + i / 7);
        }
        b.push(210, STREAM_MARKER, b"a\nmarker", 5000);
        b
    }

    /// Reads `cmd`'s chunks (each `first_n`) through `f`, or the first error.
    fn each_chunk(
        conn: &Connection,
        cmd: &str,
        mut f: impl FnMut(&Chunk<'_>),
    ) -> Result<(), StoreError> {
        let mut st = conn.prepare(&format!(
            "SELECT {CHUNK_COLUMNS} FROM log_chunks WHERE command_id = ?1 ORDER BY first_n"
        ))?;
        let mut rows = st.query([cmd])?;
        let mut file = log_files::Reader::new(conn, cmd);
        let mut buf = Vec::new();
        while let Some(row) = rows.next()? {
            f(&Chunk::from_row(row, &mut file, &mut buf)?);
        }
        Ok(())
    }

    fn check_sample(c: &Chunk<'_>) {
        assert_eq!((c.first_n, c.lines), (10, 201));
        for i in [0u32, 1, 63, 64, 65, 150, 199] {
            let s = c.line_start(i);
            let e = s + memchr::memchr(b'\n', &c.data[s..]).expect("newline");
            assert_eq!(&c.data[s..e], format!("line {i}").as_bytes());
            assert_eq!(c.line_of(s), i);
            assert_eq!(c.line_of(e), i, "a line's newline belongs to it");
            let stream = if i % 3 == 0 { 2 } else { 1 };
            assert_eq!(c.meta(i), (stream, 1000 + i64::from(i) / 7));
        }
        let s = c.line_start(200);
        assert_eq!(&c.data[s..], b"a marker\n");
        assert_eq!(c.meta(200), (STREAM_MARKER, 5000));
        assert_eq!(c.line_start(201), c.data.len());
    }

    #[test]
    fn lines_are_found_through_the_index_and_keep_their_stream_and_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::Db::open(&dir.path().join("db")).expect("open");
        let conn = db.raw();
        let mut b = sample();
        b.write(conn, "inline").expect("write");
        assert!(b.is_empty());
        let mut b = sample();
        b.write_to_file(conn, "in-file").expect("write to file");
        assert!(b.is_empty());
        for cmd in ["inline", "in-file"] {
            let mut seen = 0;
            each_chunk(conn, cmd, |c| {
                check_sample(c);
                seen += 1;
            })
            .expect("read");
            assert_eq!(seen, 1, "{cmd}");
            assert_eq!(last_line(conn, cmd).expect("last"), 210);
        }
        // The file holds the bytes, the row only where they are; both owner-only.
        let stored: i64 = conn
            .query_row(
                "SELECT length(data) FROM log_chunks WHERE command_id = 'in-file'",
                [],
                |r| r.get(0),
            )
            .expect("row");
        assert_eq!(stored, 0);
        let out = dir.path().join("db-output");
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&out), 0o700);
        assert_eq!(mode(&out.join("in-file")), 0o600);
        assert!(!out.join("inline").exists());
    }

    #[test]
    fn a_cut_file_is_an_error_naming_it_and_files_no_row_points_at_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::Db::open(&dir.path().join("db")).expect("open");
        let conn = db.raw();
        let mut b = ChunkBuf::default();
        b.push(1, 1, b"first", 0);
        b.write_to_file(conn, "c").expect("write");
        b.push(2, 1, b"second", 0);
        b.write_to_file(conn, "c").expect("write");
        let file = dir.path().join("db-output/c");
        assert_eq!(std::fs::read(&file).expect("file"), b"first\nsecond\n");
        // Bytes no row points at (a crash between append and commit) are skipped over.
        std::fs::write(&file, b"first\nsecond\ntorn").expect("torn tail");
        b.push(3, 1, b"third", 0);
        b.write_to_file(conn, "c").expect("write after a torn tail");
        let mut lines = Vec::new();
        each_chunk(conn, "c", |c| lines.push(c.data.to_vec())).expect("read");
        assert_eq!(
            lines,
            [
                b"first\n".to_vec(),
                b"second\n".to_vec(),
                b"third\n".to_vec()
            ]
        );
        // A file cut short (its end lost in a power failure) reads as an error naming it.
        std::fs::write(&file, b"first\nsec").expect("cut");
        let mut seen = 0;
        let err = each_chunk(conn, "c", |_| seen += 1).expect_err("cut file");
        assert_eq!(seen, 1, "the chunks before the cut still read");
        let msg = err.to_string();
        assert!(
            msg.contains(&file.display().to_string()) && msg.contains("shorter"),
            "{msg}"
        );
        // At start, a file no row points at is removed; the others stay.
        std::fs::write(dir.path().join("db-output/orphan"), b"x").expect("orphan");
        assert_eq!(log_files::remove_orphans(conn).expect("sweep"), 1);
        assert!(file.exists());
        assert!(log_files::path(conn, "../db").is_err());
    }
}
