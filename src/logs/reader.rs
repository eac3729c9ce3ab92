//! Filtered reads of stored output.
//!
//! Chunks are read one row at a time and never copied whole: head, tail and line ranges seek
//! to the chunk that holds their first line (by its first line number) and to the line inside it
//! (by the chunk's index); grep runs over the chunk's raw bytes at once (a plain substring with
//! `memchr`'s searcher, anything else with `regex`'s byte API) and a match is turned into a line
//! number through the index. Output stored a line per row before chunks existed is read from
//! `log_lines`, ahead of any chunk (its lines come first).

use anyhow::Result;
use memchr::memmem;
use rusqlite::{Connection, params};

use super::{STREAM_MARKER, stream_name};
use crate::db::log_chunks::{CHUNK_COLUMNS, Chunk, StoreError, last_line};
use crate::db::log_files;
use crate::protocol::{CommandState, LogLine, LogPage, LogQuery, StreamFilter};

/// Why a query was refused.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("grep is not a valid regular expression: {0}")]
    BadRegex(String),
    #[error("give head or tail, not both")]
    HeadAndTail,
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
    #[error("cannot read stored output: {0}")]
    File(#[from] std::io::Error),
}

impl From<StoreError> for QueryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Db(e) => Self::Db(e),
            StoreError::File(e) => Self::File(e),
        }
    }
}

/// A grep pattern, compiled for the fastest search that gives the same answer.
enum Matcher {
    /// A pattern with no regex syntax, matched case-sensitively: a substring search.
    Literal(Box<memmem::Finder<'static>>),
    Regex(regex::bytes::Regex),
}

impl Matcher {
    fn new(pattern: &str, ignore_case: bool) -> Result<Self, QueryError> {
        if pattern.len() > 1000 {
            return Err(QueryError::BadRegex("longer than 1000 characters".into()));
        }
        if !ignore_case && regex::escape(pattern) == pattern {
            return Ok(Self::Literal(Box::new(
                memmem::Finder::new(pattern.as_bytes()).into_owned(),
            )));
        }
        // Multi-line: `^` and `$` match at each line's ends inside a chunk.
        regex::bytes::RegexBuilder::new(pattern)
            .case_insensitive(ignore_case)
            .multi_line(true)
            .size_limit(16 << 20)
            .build()
            .map(Self::Regex)
            .map_err(|e| QueryError::BadRegex(e.to_string()))
    }

    /// The first match starting at or after `from` in `hay`: (start, end).
    fn find(&self, hay: &[u8], from: usize) -> Option<(usize, usize)> {
        match self {
            Self::Literal(f) => f
                .find(&hay[from..])
                .map(|s| (from + s, from + s + f.needle().len())),
            Self::Regex(re) => re.find_at(hay, from).map(|m| (m.start(), m.end())),
        }
    }

    fn is_match(&self, line: &[u8]) -> bool {
        match self {
            Self::Literal(f) => f.find(line).is_some(),
            Self::Regex(re) => re.is_match(line),
        }
    }
}

/// The page being filled: stops at the line count asked for or at the reply's size cap.
struct Page {
    lines: Vec<LogLine>,
    size: usize,
    want: u64,
    cap: usize,
    backwards: bool,
    timestamps: bool,
    truncated: bool,
    next_from_line: Option<u64>,
}

impl Page {
    /// Takes one line that passed the filters; false once the page is full.
    fn offer(&mut self, n: i64, stream: i64, text: &[u8], at_ms: Option<i64>) -> bool {
        if self.lines.len() as u64 >= self.want {
            return false;
        }
        let cost = text.len() + 24;
        if self.size + cost > self.cap && !self.lines.is_empty() {
            self.truncated = true;
            if !self.backwards {
                self.next_from_line = Some(n as u64);
            }
            return false;
        }
        self.size += cost;
        self.lines.push(LogLine {
            n: n as u64,
            stream: stream_name(stream),
            text: String::from_utf8_lossy(text).into_owned(),
            at_ms: if self.timestamps { at_ms } else { None },
        });
        true
    }

    fn full(&self) -> bool {
        self.truncated || self.lines.len() as u64 >= self.want
    }
}

/// The filters of one query, in stored terms.
struct Filter {
    /// 0: both streams; 1 or 2 keeps that stream only (as a row filter always did).
    stream: i64,
    from: i64,
    to: i64,
    matcher: Option<Matcher>,
}

impl Filter {
    fn stream_ok(&self, s: i64) -> bool {
        self.stream == 0 || s == self.stream
    }
}

/// A line of a chunk that passed the filters: its number in the chunk and byte range.
struct Hit {
    i: u32,
    start: usize,
    end: usize,
}

/// The lines of `c` that pass `f`, in order.
fn chunk_hits(c: &Chunk<'_>, f: &Filter) -> Vec<Hit> {
    let mut hits = Vec::new();
    if c.lines == 0 {
        return hits;
    }
    let last = c.first_n + i64::from(c.lines) - 1;
    let (lo, hi) = (f.from.max(c.first_n), f.to.min(last));
    if lo > hi {
        return hits;
    }
    let (lo, hi) = ((lo - c.first_n) as u32, (hi - c.first_n) as u32);
    let start = c.line_start(lo);
    let end = c.line_start(hi + 1).min(c.data.len());
    let data = &c.data[..end];
    match &f.matcher {
        None => {
            let mut pos = start;
            for i in lo..=hi {
                let e = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |p| pos + p);
                if f.stream_ok(c.meta(i).0) {
                    hits.push(Hit {
                        i,
                        start: pos,
                        end: e,
                    });
                }
                pos = e + 1;
                if pos > data.len() {
                    break;
                }
            }
        }
        Some(m) => {
            let mut pos = start;
            while pos < data.len() {
                let Some((ms, me)) = m.find(data, pos) else {
                    break;
                };
                // The line the match starts on.
                let ls = memchr::memrchr(b'\n', &data[..ms])
                    .map_or(0, |p| p + 1)
                    .max(pos);
                let le = memchr::memchr(b'\n', &data[ms..]).map_or(data.len(), |p| ms + p);
                // A match that runs past the line's end (`\s`, `[^x]` take a newline) counts only
                // if the line matches alone.
                let ok = me <= le || m.is_match(&data[ls..le]);
                if ok {
                    let i = c.line_of(ls);
                    if f.stream_ok(c.meta(i).0) {
                        hits.push(Hit {
                            i,
                            start: ls,
                            end: le,
                        });
                    }
                }
                pos = le + 1;
            }
        }
    }
    hits
}

/// Reads a page of `q.command_id`'s output. `cap` bounds the reply's text size.
pub fn read(
    conn: &Connection,
    q: &LogQuery,
    state: CommandState,
    cap: u64,
) -> Result<LogPage, QueryError> {
    if q.head.is_some() && q.tail.is_some() {
        return Err(QueryError::HeadAndTail);
    }
    let matcher = match &q.grep {
        Some(p) => Some(Matcher::new(p, q.ignore_case)?),
        None => None,
    };
    let stream = match q.stream.unwrap_or_default() {
        StreamFilter::Stdout => 1,
        StreamFilter::Stderr => 2,
        StreamFilter::Both => 0,
    };
    let total = last_line(conn, &q.command_id)?;
    let f = Filter {
        stream,
        from: q.from_line.unwrap_or(1).max(1).min(i64::MAX as u64) as i64,
        to: q
            .to_line
            .map_or(i64::MAX, |t| t.min(i64::MAX as u64) as i64),
        matcher,
    };
    let backwards = q.tail.is_some();
    let mut page = Page {
        lines: Vec::new(),
        size: 0,
        want: q.head.or(q.tail).unwrap_or(u64::MAX),
        cap: cap.max(1024) as usize,
        backwards,
        timestamps: q.timestamps,
        truncated: false,
        next_from_line: None,
    };
    if backwards {
        read_chunks(conn, &q.command_id, &f, &mut page)?;
        if !page.full() {
            read_rows(conn, &q.command_id, &f, &mut page)?;
        }
        page.lines.reverse();
    } else {
        read_rows(conn, &q.command_id, &f, &mut page)?;
        if !page.full() {
            read_chunks(conn, &q.command_id, &f, &mut page)?;
        }
    }
    Ok(LogPage {
        command_id: q.command_id.clone(),
        lines: page.lines,
        total_lines: total as u64,
        truncated: page.truncated,
        next_from_line: page.next_from_line,
        state,
    })
}

/// The last `limit` of `cmd`'s marker lines (the broker's own notes on it), oldest first.
pub fn markers(conn: &Connection, cmd: &str, limit: usize) -> Result<Vec<String>, QueryError> {
    let mut out = Vec::new();
    let mut st = conn.prepare_cached(&format!(
        "SELECT {CHUNK_COLUMNS} FROM log_chunks
         WHERE command_id = ?1 AND markers > 0 ORDER BY first_n DESC"
    ))?;
    let mut rows = st.query([cmd])?;
    let mut file = log_files::Reader::new(conn, cmd);
    let mut buf = Vec::new();
    'chunks: while let Some(r) = rows.next()? {
        let c = Chunk::from_row(r, &mut file, &mut buf)?;
        for i in (0..c.lines).rev() {
            if c.meta(i).0 != STREAM_MARKER {
                continue;
            }
            let s = c.line_start(i);
            let e = memchr::memchr(b'\n', &c.data[s..]).map_or(c.data.len(), |p| s + p);
            out.push(String::from_utf8_lossy(&c.data[s..e]).into_owned());
            if out.len() >= limit {
                break 'chunks;
            }
        }
    }
    if out.len() < limit {
        let mut st = conn.prepare_cached(&format!(
            "SELECT text FROM log_lines WHERE command_id = ?1 AND stream = {STREAM_MARKER}
             ORDER BY n DESC LIMIT ?2"
        ))?;
        let old = st.query_map(params![cmd, (limit - out.len()) as i64], |r| {
            r.get::<_, String>(0)
        })?;
        for t in old {
            out.push(t?);
        }
    }
    out.reverse();
    Ok(out)
}

fn read_chunks(
    conn: &Connection,
    cmd: &str,
    f: &Filter,
    page: &mut Page,
) -> Result<(), QueryError> {
    // The chunk holding the first line asked for: chunks before it are never read.
    let start: i64 = conn.query_row(
        "SELECT COALESCE(MAX(first_n), 0) FROM log_chunks WHERE command_id = ?1 AND first_n <= ?2",
        params![cmd, f.from],
        |r| r.get(0),
    )?;
    let sql = format!(
        "SELECT {CHUNK_COLUMNS} FROM log_chunks
         WHERE command_id = ?1 AND first_n BETWEEN ?2 AND ?3 ORDER BY first_n {}",
        if page.backwards { "DESC" } else { "ASC" }
    );
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params![cmd, start, f.to])?;
    let mut file = log_files::Reader::new(conn, cmd);
    let mut buf = Vec::new();
    while let Some(r) = rows.next()? {
        let c = Chunk::from_row(r, &mut file, &mut buf)?;
        let hits = chunk_hits(&c, f);
        let backwards = page.backwards;
        let mut offer = |h: &Hit| {
            let (s, at) = c.meta(h.i);
            page.offer(
                c.first_n + i64::from(h.i),
                s,
                &c.data[h.start..h.end],
                Some(at),
            )
        };
        let go_on = if backwards {
            hits.iter().rev().all(&mut offer)
        } else {
            hits.iter().all(&mut offer)
        };
        if !go_on {
            break;
        }
    }
    Ok(())
}

/// Output stored a line per row, before chunks.
fn read_rows(conn: &Connection, cmd: &str, f: &Filter, page: &mut Page) -> Result<(), QueryError> {
    let sql = format!(
        "SELECT n, stream, text, at_ms FROM log_lines WHERE command_id = ?1 AND n BETWEEN ?2 AND ?3
           AND (?4 = 0 OR stream = ?4) ORDER BY n {}",
        if page.backwards { "DESC" } else { "ASC" }
    );
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params![cmd, f.from, f.to, f.stream])?;
    while let Some(r) = rows.next()? {
        let n: i64 = r.get(0)?;
        let s: i64 = r.get(1)?;
        let text = r.get_ref(2)?.as_bytes().map_err(rusqlite::Error::from)?;
        let at_ms: Option<i64> = r.get(3)?;
        if let Some(m) = &f.matcher
            && !m.is_match(text)
        {
            continue;
        }
        if !page.offer(n, s, text, at_ms) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_across_a_newline_counts_only_if_its_line_matches_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::Db::open(&dir.path().join("db")).expect("open");
        let mut b = crate::db::log_chunks::ChunkBuf::default();
        for (n, t) in ["ab", "cd", "x y", "ab", "zz"].iter().enumerate() {
            b.push(n as i64 + 1, 1, t.as_bytes(), 0);
        }
        b.write(db.raw(), "c").expect("write");
        let grep = |p: &str, ic: bool| -> Vec<u64> {
            read(
                db.raw(),
                &LogQuery {
                    command_id: "c".into(),
                    grep: Some(p.into()),
                    ignore_case: ic,
                    ..Default::default()
                },
                CommandState::Completed,
                1 << 20,
            )
            .expect("read")
            .lines
            .iter()
            .map(|l| l.n)
            .collect()
        };
        assert_eq!(grep(r"b\sc", false), Vec::<u64>::new());
        assert_eq!(grep(r"\s", false), vec![3]);
        assert_eq!(grep("ab", false), vec![1, 4]);
        assert_eq!(grep("^AB$", true), vec![1, 4]);
        assert_eq!(grep("^", false), vec![1, 2, 3, 4, 5]);
        assert_eq!(grep("z$", false), vec![5]);
        assert_eq!(grep("", false), vec![1, 2, 3, 4, 5]);
    }
}
