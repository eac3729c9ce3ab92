//! Takes the process-group marker line off the front of one output stream.

use super::wrap::PGID_MARK;

/// Watches the start of one stream for [`PGID_MARK`]`<digits>\n` and removes it.
pub struct MarkerFilter {
    stream: i64,
    buf: Vec<u8>,
    done: bool,
    pub pgid: Option<i64>,
}

impl MarkerFilter {
    /// Looks for the marker on `stream`.
    pub fn new(stream: i64) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            done: false,
            pgid: None,
        }
    }

    /// Passes data through, minus the marker. May hold back up to one short line at the start.
    pub fn feed(&mut self, stream: i64, data: &[u8]) -> Vec<u8> {
        if self.done || stream != self.stream {
            return data.to_vec();
        }
        self.buf.extend_from_slice(data);
        let n = self.buf.len().min(PGID_MARK.len());
        if self.buf[..n] != PGID_MARK[..n] {
            self.done = true;
            return std::mem::take(&mut self.buf);
        }
        let Some(nl) = self.buf.iter().position(|b| *b == b'\n') else {
            if self.buf.len() > 64 {
                self.done = true;
                return std::mem::take(&mut self.buf);
            }
            return Vec::new();
        };
        let digits = String::from_utf8_lossy(&self.buf[PGID_MARK.len()..nl])
            .trim_end_matches('\r')
            .to_string();
        self.pgid = digits.parse::<i64>().ok().filter(|p| *p > 1);
        self.done = true;
        let tail = self.buf.split_off(nl + 1);
        self.buf.clear();
        tail
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
}
