//! Text edits as pure functions: the file's old content in, the new content out, or an error
//! that says why nothing changed. No I/O here, so every rule is unit-tested.

use crate::protocol::LineEdit;

/// Replaces `old` with `new` if `old` occurs exactly `expected` times (non-overlapping).
pub fn replace(text: &str, old: &str, new: &str, expected: u64) -> Result<String, String> {
    if old.is_empty() {
        return Err("the text to replace (old) is empty".into());
    }
    let found = text.matches(old).count() as u64;
    if found != expected {
        return Err(format!(
            "found {found} occurrence{} of the text to replace, expected {expected}: nothing was changed \
             (read the file again, or give the number found as expectedCount)",
            if found == 1 { "" } else { "s" }
        ));
    }
    Ok(text.replace(old, new))
}

/// Splits text into lines that keep their line endings, so joining them gives the text back.
fn lines_with_endings(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The line ending the file uses (for inserted lines).
fn newline(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// Applies a line edit at a line number (1-based) or at every line matching `pattern` (a regular
/// expression), which must match exactly `expected` lines. `content` may hold several lines.
pub fn edit_line(
    text: &str,
    edit: LineEdit,
    line: Option<u64>,
    pattern: Option<&str>,
    content: Option<&str>,
    expected: u64,
) -> Result<(String, u64), String> {
    let lines = lines_with_endings(text);
    let targets: Vec<usize> = match (line, pattern) {
        (Some(n), None) => {
            let last = lines.len() as u64;
            let ok = n >= 1 && (n <= last || (n == last + 1 && edit == LineEdit::InsertBefore));
            if !ok {
                return Err(format!(
                    "line {n} is out of range: the file has {last} lines"
                ));
            }
            vec![(n - 1) as usize]
        }
        (None, Some(p)) => {
            let re = regex_lite::Regex::new(p).map_err(|e| format!("bad pattern: {e}"))?;
            let hits: Vec<usize> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| re.is_match(l.trim_end_matches(['\n', '\r'])))
                .map(|(i, _)| i)
                .collect();
            if hits.len() as u64 != expected {
                return Err(format!(
                    "the pattern matches {} line{}, expected {expected}: nothing was changed",
                    hits.len(),
                    if hits.len() == 1 { "" } else { "s" }
                ));
            }
            hits
        }
        _ => return Err("give either line or pattern".into()),
    };
    let nl = newline(text);
    let block = match (edit, content) {
        (LineEdit::Delete, _) => None,
        (_, Some(c)) => {
            let mut b = c.to_string();
            if !b.ends_with('\n') {
                b.push_str(nl);
            }
            Some(b)
        }
        (_, None) => return Err("this edit needs content (the new line text)".into()),
    };
    let mut out = String::with_capacity(text.len() + block.as_ref().map_or(0, |b| b.len()));
    for (i, l) in lines.iter().enumerate() {
        let hit = targets.contains(&i);
        // A last line without a newline gets one before anything is added after it.
        let ensure_nl = |out: &mut String, l: &str| {
            out.push_str(l);
            if !l.ends_with('\n') {
                out.push_str(nl);
            }
        };
        match (hit, edit, &block) {
            (true, LineEdit::InsertBefore, Some(b)) => {
                out.push_str(b);
                out.push_str(l);
            }
            (true, LineEdit::InsertAfter, Some(b)) => {
                ensure_nl(&mut out, l);
                out.push_str(b);
            }
            (true, LineEdit::Replace, Some(b)) => {
                if l.ends_with('\n') {
                    out.push_str(b);
                } else {
                    out.push_str(b.trim_end_matches(['\n', '\r']));
                }
            }
            (true, LineEdit::Delete, _) => {}
            _ => out.push_str(l),
        }
    }
    if let (Some(n), LineEdit::InsertBefore, Some(b)) = (line, edit, &block)
        && n as usize == lines.len() + 1
    {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(nl);
        }
        out.push_str(b);
    }
    Ok((out, targets.len() as u64))
}

/// Lines `from..=to` (1-based, clamped) and the total count.
pub fn line_range(text: &str, from: Option<u64>, to: Option<u64>) -> (String, u64, u64, u64) {
    let lines = lines_with_endings(text);
    let total = lines.len() as u64;
    let from = from.unwrap_or(1).max(1);
    let to = to.unwrap_or(total).min(total);
    if from > to {
        return (String::new(), total, from, to);
    }
    let s = lines[(from - 1) as usize..to as usize].concat();
    (s, total, from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_needs_the_expected_count() {
        assert_eq!(replace("a b a", "a", "c", 2).as_deref(), Ok("c b c"));
        assert!(replace("a b a", "a", "c", 1).is_err());
        assert!(replace("a", "", "c", 1).is_err());
        assert!(
            replace("abc", "x", "y", 1)
                .expect_err("mismatch")
                .contains("found 0")
        );
    }

    #[test]
    fn line_edits_by_number_and_pattern() {
        let t = "one\ntwo\nthree";
        assert_eq!(
            edit_line(t, LineEdit::InsertBefore, Some(2), None, Some("x"), 1)
                .expect("ok")
                .0,
            "one\nx\ntwo\nthree"
        );
        assert_eq!(
            edit_line(t, LineEdit::InsertAfter, Some(3), None, Some("x"), 1)
                .expect("ok")
                .0,
            "one\ntwo\nthree\nx\n"
        );
        assert_eq!(
            edit_line(t, LineEdit::Replace, Some(3), None, Some("3"), 1)
                .expect("ok")
                .0,
            "one\ntwo\n3"
        );
        assert_eq!(
            edit_line(t, LineEdit::Delete, Some(2), None, None, 1)
                .expect("ok")
                .0,
            "one\nthree"
        );
        assert_eq!(
            edit_line(t, LineEdit::InsertBefore, Some(4), None, Some("end"), 1)
                .expect("ok")
                .0,
            "one\ntwo\nthree\nend\n"
        );
        assert!(edit_line(t, LineEdit::Delete, Some(9), None, None, 1).is_err());
        assert_eq!(
            edit_line(t, LineEdit::Replace, None, Some("^t"), Some("T"), 2).expect("ok"),
            ("one\nT\nT".to_string(), 2)
        );
        assert!(edit_line(t, LineEdit::Replace, None, Some("^t"), Some("T"), 1).is_err());
        assert_eq!(
            edit_line(
                "a\r\nb\r\n",
                LineEdit::InsertAfter,
                Some(1),
                None,
                Some("c"),
                1
            )
            .expect("ok")
            .0,
            "a\r\nc\r\nb\r\n"
        );
    }

    #[test]
    fn ranges_keep_bytes() {
        assert_eq!(
            line_range("a\nb\nc", Some(2), None),
            ("b\nc".into(), 3, 2, 3)
        );
        assert_eq!(line_range("a\nb\n", None, Some(1)), ("a\n".into(), 2, 1, 1));
    }
}
