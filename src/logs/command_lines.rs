//! A command's output on its way into the database: bytes become numbered lines (long ones in
//! pieces), lines gather in an open chunk that falls due when quiet or old, and the counts the
//! `commands` row holds never run ahead of the lines stored.

use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use super::writer::STREAM_MARKER;
use crate::db::log_chunks::{CHUNK_BYTES, ChunkBuf, StoreError};

type Result<T = ()> = std::result::Result<T, StoreError>;

/// A line longer than this is stored in pieces.
const MAX_LINE: usize = 64 * 1024;
/// An open chunk is written once no line came for this long (so a quiet command's output is
/// readable, and safe from a crash, soon after it is printed)...
const QUIET: Duration = Duration::from_millis(100);
/// ...or once it has been open this long, under a steady trickle.
const MAX_AGE: Duration = Duration::from_secs(1);

/// Per-stream byte and line counts and the bytes kept, as the `commands` row holds them.
#[derive(Clone, Copy, Default)]
pub(super) struct Counts {
    pub(super) bytes: [i64; 2],
    pub(super) lines: [i64; 2],
    pub(super) stored: i64,
}

#[derive(Clone, Default)]
pub(super) struct CmdState {
    pub(super) next_n: i64,
    pub(super) partial: [Vec<u8>; 2],
    /// When each partial line's first byte arrived.
    pub(super) partial_at: [i64; 2],
    /// Every whole line received so far.
    pub(super) counts: Counts,
    /// The counts without the lines in the open chunk: what the database holds, so that a
    /// re-attach or a crash never finds counts ahead of the stored lines.
    pub(super) committed: Counts,
    pub(super) capped: bool,
    pub(super) dirty: bool,
    /// Lines not yet written, and when the first and the latest of them came (writer's clock).
    pub(super) chunk: ChunkBuf,
    pub(super) opened: Option<Instant>,
    pub(super) last: Option<Instant>,
}

impl CmdState {
    /// Whether the open chunk is due: quiet for [`QUIET`] or open for [`MAX_AGE`].
    pub(super) fn due(&self, now: Instant) -> bool {
        !self.chunk.is_empty()
            && (self.last.is_none_or(|t| now >= t + QUIET)
                || self.opened.is_none_or(|t| now >= t + MAX_AGE))
    }

    /// When the open chunk falls due, if there is one.
    pub(super) fn due_at(&self) -> Option<Instant> {
        if self.chunk.is_empty() {
            return None;
        }
        let quiet = self.last.map(|t| t + QUIET);
        let age = self.opened.map(|t| t + MAX_AGE);
        quiet.into_iter().chain(age).min()
    }

    /// Notes that output came now (once per event, not per line: a flood is a million lines).
    pub(super) fn touch(&mut self) {
        self.last = Some(Instant::now());
    }

    /// Appends a line to the open chunk, writing the chunk once it is full.
    pub(super) fn push(
        &mut self,
        conn: &Connection,
        cmd: &str,
        stream: i64,
        body: &[u8],
        at_ms: i64,
    ) -> Result {
        if self.chunk.is_empty() {
            self.opened = Some(*self.last.get_or_insert_with(Instant::now));
        }
        self.chunk.push(self.next_n, stream, body, at_ms);
        self.next_n += 1;
        self.dirty = true;
        if self.chunk.len() >= CHUNK_BYTES {
            self.flush(conn, cmd)?;
        }
        Ok(())
    }

    /// Writes the open chunk: its lines and the counts that include them become the database's.
    pub(super) fn flush(&mut self, conn: &Connection, cmd: &str) -> Result {
        if !self.chunk.is_empty() {
            self.chunk.write_to_file(conn, cmd)?;
            self.opened = None;
            self.dirty = true;
        }
        Ok(())
    }

    pub(super) fn marker(
        &mut self,
        conn: &Connection,
        cmd: &str,
        text: &str,
        at_ms: i64,
    ) -> Result {
        self.touch();
        if self.chunk.is_empty() {
            self.committed = self.counts;
        }
        self.push(conn, cmd, STREAM_MARKER, text.as_bytes(), at_ms)
    }
}

pub(super) fn load(conn: &Connection, cmd: &str, cap: u64) -> rusqlite::Result<CmdState> {
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
pub(super) fn line(
    conn: &Connection,
    cmd: &str,
    st: &mut CmdState,
    stream: i64,
    raw: &[u8],
    cap: u64,
    at_ms: i64,
) -> Result {
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

pub(super) fn data(
    conn: &Connection,
    cmd: &str,
    st: &mut CmdState,
    stream: i64,
    bytes: &[u8],
    cap: u64,
    at_ms: i64,
) -> Result {
    st.touch();
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
fn long_pieces(conn: &Connection, cmd: &str, st: &mut CmdState, stream: i64, cap: u64) -> Result {
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

pub(super) fn save_counts(conn: &Connection, cmd: &str, st: &mut CmdState) -> Result {
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
