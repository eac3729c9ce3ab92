//! Takes the process-group marker line out of one output stream.
//!
//! The marker is the first thing the command prints, but a server's login scripts (a `.bashrc`
//! that warns, say) can print before it. So the marker is looked for at the start of every line
//! in the first [`SCAN_LIMIT`] bytes; lines before it pass through untouched.

use super::wrap::PGID_MARK;

/// How far into the stream the marker is looked for.
const SCAN_LIMIT: usize = 64 * 1024;

/// Watches one stream for a line `PGID_MARK<digits>` and removes it.
pub struct MarkerFilter {
    stream: i64,
    /// A partial line held back until its end shows whether it is the marker.
    buf: Vec<u8>,
    scanned: usize,
    done: bool,
    pub pgid: Option<i64>,
}

impl MarkerFilter {
    /// Looks for the marker on `stream`.
    pub fn new(stream: i64) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            scanned: 0,
            done: false,
            pgid: None,
        }
    }

    /// Passes data through, minus the marker line. Holds back at most one partial line.
    pub fn feed(&mut self, stream: i64, data: &[u8]) -> Vec<u8> {
        if self.done || stream != self.stream {
            return data.to_vec();
        }
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while !self.done {
            let Some(nl) = self.buf.iter().position(|b| *b == b'\n') else {
                let n = self.buf.len().min(PGID_MARK.len());
                if self.buf[..n] != PGID_MARK[..n] || self.scanned + self.buf.len() > SCAN_LIMIT {
                    // Not the start of the marker (or past the scan limit): pass the partial
                    // line on now; later lines are still looked at.
                    self.scanned += self.buf.len();
                    self.done = self.scanned > SCAN_LIMIT;
                    out.append(&mut self.buf);
                }
                return out;
            };
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            self.scanned += line.len();
            if let Some(rest) = line.strip_prefix(PGID_MARK) {
                let digits = String::from_utf8_lossy(rest)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                self.pgid = digits.parse::<i64>().ok().filter(|p| *p > 1);
                self.done = true;
            } else {
                out.extend_from_slice(&line);
                if self.scanned > SCAN_LIMIT {
                    self.done = true;
                }
            }
        }
        out.append(&mut self.buf);
        out
    }

    /// Whatever is still held back (the stream ended early).
    pub fn rest(&mut self) -> Vec<u8> {
        self.done = true;
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_marker_split_across_chunks() {
        let mut f = MarkerFilter::new(2);
        assert!(f.feed(2, b"\x1esshkeep-pg").is_empty());
        assert_eq!(f.feed(1, b"out"), b"out");
        assert_eq!(f.feed(2, b"id:4242\r\nreal err\n"), b"real err\n");
        assert_eq!(f.pgid, Some(4242));
        assert_eq!(f.feed(2, b"more"), b"more");
        assert!(
            f.rest().is_empty(),
            "the marker must not come back at the end"
        );
    }

    #[test]
    fn passes_other_output_untouched() {
        let mut f = MarkerFilter::new(2);
        assert_eq!(f.feed(2, b"plain"), b"plain");
        assert_eq!(f.pgid, None);
    }

    #[test]
    fn finds_the_marker_after_login_script_noise() {
        let mut f = MarkerFilter::new(2);
        let mut got = f.feed(2, b"pyenv: cannot rehash: lock held\nwarn");
        got.extend(f.feed(2, b"ing: locale\n\x1esshkeep-pgid:77\nreal\n"));
        got.extend(f.rest());
        assert_eq!(
            got,
            b"pyenv: cannot rehash: lock held\nwarning: locale\nreal\n"
        );
        assert_eq!(f.pgid, Some(77));
    }
}
