//! A shell's output as agents read it: a terminal emulator for the screen, and the byte stream
//! with terminal control sequences removed, numbered by offset (the `cursor`), of which the
//! newest part stays in memory.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::recording::Recording;

/// Stripped output kept in memory for `read` and `wait` (older output is in the log store).
const KEEP: usize = 1024 * 1024;

/// Removes escape sequences (CSI, OSC, DCS, two-byte escapes), carriage returns and other C0
/// controls except newline and tab. Keeps its state across chunks.
#[derive(Default)]
pub struct Stripper {
    state: St,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum St {
    #[default]
    Text,
    Esc,
    Csi,
    /// OSC, DCS, SOS, PM, APC: until BEL or ESC \.
    Str,
    StrEsc,
}

impl Stripper {
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for &b in data {
            self.state = match (self.state, b) {
                (St::Text, 0x1b) => St::Esc,
                (St::Text, b'\n' | b'\t') => {
                    out.push(b);
                    St::Text
                }
                (St::Text, b) if b < 0x20 || b == 0x7f => St::Text,
                (St::Text, b) => {
                    out.push(b);
                    St::Text
                }
                (St::Esc, b'[') => St::Csi,
                (St::Esc, b']' | b'P' | b'X' | b'^' | b'_') => St::Str,
                // Character-set and other two-byte escapes take one more byte.
                (St::Esc, b'(' | b')' | b'*' | b'+' | b'#' | b'%') => St::Csi,
                (St::Esc, _) => St::Text,
                (St::Csi, 0x40..=0x7e) => St::Text,
                (St::Csi, _) => St::Csi,
                (St::Str, 0x07) => St::Text,
                (St::Str, 0x1b) => St::StrEsc,
                (St::Str, _) => St::Str,
                (St::StrEsc, b'\\') => St::Text,
                (St::StrEsc, _) => St::Str,
            };
        }
    }
}

/// Raw output for attached terminals; `End` when the shell is over.
#[derive(Clone, Debug)]
pub enum Out {
    Data(Arc<Vec<u8>>),
    End(Option<u32>),
    /// tmux's client was detached: attached terminals detach too; the shell goes on.
    Detached,
}

/// The output state of one shell.
pub struct Output {
    parser: vt100::Parser,
    stripper: Stripper,
    /// Stripped bytes from offset `start`.
    buf: Vec<u8>,
    start: u64,
    pub raw: broadcast::Sender<Out>,
    /// Everything shown and typed, as an asciicast file.
    pub recording: Recording,
}

impl Output {
    pub fn new(rows: u16, cols: u16, recording: Recording) -> Self {
        Self {
            parser: vt100::Parser::new(rows, cols, 0),
            stripper: Stripper::default(),
            buf: Vec::new(),
            start: 0,
            raw: broadcast::channel(1024).0,
            recording,
        }
    }

    /// Takes raw output; returns its stripped form (for the log store).
    pub fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        self.recording.output(data);
        self.parser.process(data);
        let mut text = Vec::with_capacity(data.len());
        self.stripper.feed(data, &mut text);
        self.buf.extend_from_slice(&text);
        if self.buf.len() > 2 * KEEP {
            let drop = self.buf.len() - KEEP;
            self.buf.drain(..drop);
            self.start += drop as u64;
        }
        let _ = self.raw.send(Out::Data(Arc::new(data.to_vec())));
        text
    }

    /// The offset after the newest output.
    pub fn cursor(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Stripped text from `cursor` (or the oldest kept), at most `max` bytes: (text, where it
    /// starts, where it ends).
    pub fn since(&self, cursor: Option<u64>, max: usize) -> (String, u64, u64) {
        let from = cursor
            .unwrap_or(self.start)
            .clamp(self.start, self.cursor());
        let mut a = (from - self.start) as usize;
        // Start and end on character boundaries.
        while a < self.buf.len() && (self.buf[a] & 0xc0) == 0x80 {
            a += 1;
        }
        let mut b = a.saturating_add(max).min(self.buf.len());
        while b < self.buf.len() && b > a && (self.buf[b] & 0xc0) == 0x80 {
            b -= 1;
        }
        let text = String::from_utf8_lossy(&self.buf[a..b]).into_owned();
        (text, self.start + a as u64, self.start + b as u64)
    }

    /// The screen as plain text, trailing blank lines removed.
    pub fn screen(&self) -> String {
        let s = self.parser.screen().contents();
        s.trim_end_matches('\n').to_string()
    }

    /// Escape sequences that redraw the current screen (for a terminal that attaches now).
    pub fn redraw(&self) -> Vec<u8> {
        self.parser.screen().contents_formatted()
    }

    /// Whether the program asked for application cursor keys (vi, less, top).
    pub fn application_cursor(&self) -> bool {
        self.parser.screen().application_cursor()
    }

    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.recording.resize(cols, rows);
        self.parser.screen_mut().set_size(rows, cols);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_terminal_controls_across_chunks() {
        let mut s = Stripper::default();
        let mut out = Vec::new();
        s.feed(b"\x1b[1;3", &mut out);
        s.feed(
            b"2mred\x1b[0m\r\n\x1b]0;title\x07ok\x1b(Bx\tz\x08",
            &mut out,
        );
        assert_eq!(String::from_utf8(out).expect("ok"), "red\nokx\tz");
    }

    #[test]
    fn reads_since_a_cursor_and_renders_the_screen() {
        let mut o = Output::new(5, 20, Recording::of(None, (20, 5), "xterm", "t"));
        o.feed(b"hello\r\n");
        let c = o.cursor();
        o.feed("wörld \x1b[31mred\x1b[0m".as_bytes());
        let (text, from, to) = o.since(Some(c), 1000);
        assert_eq!(text, "wörld red");
        assert_eq!((from, to), (c, o.cursor()));
        assert_eq!(o.screen(), "hello\nwörld red");
        let (t, _, end) = o.since(Some(c), 2);
        assert_eq!(t, "w");
        assert!(end < o.cursor());
    }
}
