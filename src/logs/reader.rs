//! Filtered reads of stored output.

use anyhow::Result;
use rusqlite::{Connection, params};

use super::stream_name;
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
    let re = match &q.grep {
        Some(p) if p.len() > 1000 => {
            return Err(QueryError::BadRegex("longer than 1000 characters".into()));
        }
        Some(p) => Some(
            regex_lite::RegexBuilder::new(p)
                .case_insensitive(q.ignore_case)
                .build()
                .map_err(|e| QueryError::BadRegex(e.to_string()))?,
        ),
        None => None,
    };
    let stream = match q.stream.unwrap_or_default() {
        StreamFilter::Stdout => 1,
        StreamFilter::Stderr => 2,
        StreamFilter::Both => 0,
    };
    let total: i64 = conn.query_row(
        "SELECT COALESCE(MAX(n), 0) FROM log_lines WHERE command_id = ?1",
        [&q.command_id],
        |r| r.get(0),
    )?;
    let from = q.from_line.unwrap_or(1).max(1) as i64;
    let to = q.to_line.map(|t| t as i64).unwrap_or(i64::MAX);
    let backwards = q.tail.is_some();
    let want = q.head.or(q.tail).unwrap_or(u64::MAX);
    let cap = cap.max(1024) as usize;

    let sql = format!(
        "SELECT n, stream, text, at_ms FROM log_lines WHERE command_id = ?1 AND n BETWEEN ?2 AND ?3
           AND (?4 = 0 OR stream = ?4) ORDER BY n {}",
        if backwards { "DESC" } else { "ASC" }
    );
    let mut st = conn.prepare(&sql)?;
    let mut rows = st.query(params![q.command_id, from, to, stream])?;
    let mut lines = Vec::new();
    let mut size = 0usize;
    let mut truncated = false;
    let mut next_from_line = None;
    while let Some(r) = rows.next()? {
        if lines.len() as u64 >= want {
            break;
        }
        let n: i64 = r.get(0)?;
        let s: i64 = r.get(1)?;
        let text: String = r.get(2)?;
        let at_ms: Option<i64> = if q.timestamps { r.get(3)? } else { None };
        if let Some(re) = &re
            && !re.is_match(&text)
        {
            continue;
        }
        let cost = text.len() + 24;
        if size + cost > cap && !lines.is_empty() {
            truncated = true;
            if !backwards {
                next_from_line = Some(n as u64);
            }
            break;
        }
        size += cost;
        lines.push(LogLine {
            n: n as u64,
            stream: stream_name(s),
            text,
            at_ms,
        });
    }
    if backwards {
        lines.reverse();
    }
    Ok(LogPage {
        command_id: q.command_id.clone(),
        lines,
        total_lines: total as u64,
        truncated,
        next_from_line,
        state,
    })
}
