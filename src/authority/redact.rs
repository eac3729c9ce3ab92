//! The redactor: output going back to an agent loses private key blocks, common token formats,
//! `password=`-style values, and any value the user marked secret. The stored log keeps the
//! original for the user; only what an agent reads is redacted.
//!
//! This is a seatbelt, not a wall: an agent that may run `base64 ~/.aws/credentials` gets the
//! text in a form no pattern knows. The profile's command classes are the wall.

use std::sync::LazyLock;

use regex_lite::Regex;

struct Pattern {
    re: Regex,
    label: &'static str,
    /// The capture group to replace (0 for the whole match).
    group: usize,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let defs: [(&str, &str, usize); 8] = [
        (
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|$)",
            "private key",
            0,
        ),
        (r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", "AWS access key id", 0),
        (r"\bgh[pousr]_[A-Za-z0-9]{30,}\b", "GitHub token", 0),
        (r"\bgithub_pat_[A-Za-z0-9_]{30,}\b", "GitHub token", 0),
        (r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b", "Slack token", 0),
        (
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",
            "JWT",
            0,
        ),
        (r"\b(sk|rk)_(live|test)_[A-Za-z0-9]{16,}\b", "API key", 0),
        (
            r#"(?i)(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret)\b["']?\s*[:=]\s*["']?([^\s"',;\[]{4,})"#,
            "secret value",
            1,
        ),
    ];
    defs.into_iter()
        .filter_map(|(re, label, group)| {
            // The patterns are constants checked by a test; one that does not compile is skipped.
            Regex::new(re).ok().map(|re| Pattern { re, label, group })
        })
        .collect()
});

/// Redacts `text` for an agent. `marked` are values the user marked secret (shorter than four
/// characters they are ignored: they would blank out ordinary words).
pub fn redact(text: &str, marked: &[String]) -> String {
    let mut out = text.to_string();
    for value in marked.iter().filter(|v| v.len() >= 4) {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), "[redacted: marked secret]");
        }
    }
    for p in PATTERNS.iter() {
        if !p.re.is_match(&out) {
            continue;
        }
        let label = p.label;
        let group = p.group;
        out =
            p.re.replace_all(&out, |caps: &regex_lite::Captures<'_>| {
                let whole = caps.get(0).map_or("", |m| m.as_str());
                match caps.get(group).filter(|_| group > 0) {
                    Some(m) => {
                        let start = m.start() - caps.get(0).map_or(0, |w| w.start());
                        format!(
                            "{}[redacted: {label}]{}",
                            &whole[..start],
                            &whole[start + m.len()..]
                        )
                    }
                    None => format!("[redacted: {label}]"),
                }
            })
            .into_owned();
    }
    out
}

/// Redacts output line by line, keeping the line count: a private key block spread over lines is
/// blanked from its BEGIN line to its END line, tracked per source (a stream, a bulk target), so
/// interleaved sources do not confuse it.
pub struct LineRedactor<'m> {
    marked: &'m [String],
    in_key: std::collections::HashSet<String>,
}

impl<'m> LineRedactor<'m> {
    pub fn new(marked: &'m [String]) -> Self {
        LineRedactor {
            marked,
            in_key: Default::default(),
        }
    }

    /// The line as an agent may read it.
    pub fn line(&mut self, source: &str, text: &str) -> String {
        let begins = text.contains("-----BEGIN") && text.contains("PRIVATE KEY");
        let ends = text.contains("-----END") && text.contains("PRIVATE KEY");
        if self.in_key.contains(source) {
            if ends {
                self.in_key.remove(source);
            }
            return "[redacted: private key]".into();
        }
        if begins && !ends {
            self.in_key.insert(source.to_string());
            return "[redacted: private key]".into();
        }
        redact(text, self.marked)
    }
}

/// Values the user marked secret: one a line in `<config>/redact` (owner-only, like the rest of
/// sshkeep's configuration). A missing file marks nothing.
pub fn marked_values(config_dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(config_dir.join("redact"))
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(PATTERNS.len(), 8);
    }

    #[test]
    fn secrets_are_replaced_and_the_rest_kept() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
        let text = format!(
            "before\n{key}\nid AKIAABCDEFGHIJKLMNOP\ntoken: ghp_abcdefghijklmnopqrstuvwxyz0123456789\n\
             DB_PASSWORD=hunter2hunter2\nplain words stay\nmine: s3cr3t-value\n"
        );
        let out = redact(&text, &["s3cr3t-value".into(), "ab".into()]);
        for gone in [
            "b3BlbnNzaC1rZXktdjEAAAAA",
            "AKIAABCDEFGHIJKLMNOP",
            "ghp_abcdef",
            "hunter2",
            "s3cr3t-value",
        ] {
            assert!(!out.contains(gone), "{gone} in {out}");
        }
        assert!(out.contains("[redacted: private key]"));
        assert!(
            out.contains("DB_PASSWORD=[redacted: secret value]"),
            "{out}"
        );
        assert!(out.contains("before") && out.contains("plain words stay"));
        assert_eq!(
            redact("no secrets here: ab ls -la", &["ab".into()]),
            "no secrets here: ab ls -la"
        );
    }

    #[test]
    fn a_key_block_over_many_lines_is_blanked_line_for_line_per_source() {
        let mut r = LineRedactor::new(&[]);
        let lines = [
            ("a", "ok"),
            ("a", "-----BEGIN OPENSSH PRIVATE KEY-----"),
            ("b", "b's own line"),
            ("a", "b3BlbnNzaC1rZXktdjEAAAAA"),
            ("a", "-----END OPENSSH PRIVATE KEY-----"),
            ("a", "after"),
        ];
        let out: Vec<String> = lines.iter().map(|(s, t)| r.line(s, t)).collect();
        assert_eq!(
            out,
            [
                "ok",
                "[redacted: private key]",
                "b's own line",
                "[redacted: private key]",
                "[redacted: private key]",
                "after"
            ]
        );
    }

    #[test]
    fn a_key_cut_off_by_a_tail_is_still_redacted() {
        let out = redact("-----BEGIN RSA PRIVATE KEY-----\nMIIEow", &[]);
        assert_eq!(out, "[redacted: private key]");
    }
}
