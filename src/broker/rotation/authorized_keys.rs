//! Editing an `authorized_keys` file's text: add one key, remove one key, and leave every other
//! line (options, comments, blank lines, odd spacing) exactly as it was.

/// Key types a line's key starts with.
fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-sha2-") || t.starts_with("sk-")
}

/// Splits a line into whitespace-separated tokens, keeping double-quoted option values whole.
fn tokens(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

/// The base64 key of an `authorized_keys` line (after any options), or `None` for comments and
/// blank lines.
pub fn key_of(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let toks = tokens(t);
    toks.windows(2).find(|w| is_key_type(w[0])).map(|w| w[1])
}

/// `content` with `public_line` appended, or `None` when the key is already there.
pub fn with_key(content: &str, public_line: &str) -> Option<String> {
    let want = key_of(public_line)?;
    if content.lines().any(|l| key_of(l) == Some(want)) {
        return None;
    }
    let mut out = content.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(public_line.trim_end());
    out.push('\n');
    Some(out)
}

/// `content` without the lines carrying `key` (base64), and how many were removed.
pub fn without_key(content: &str, key: &str) -> (String, usize) {
    let mut removed = 0;
    let out: String = content
        .split_inclusive('\n')
        .filter(|l| {
            let hit = key_of(l.trim_end_matches(['\n', '\r'])) == Some(key);
            removed += usize::from(hit);
            !hit
        })
        .collect();
    (out, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAA a@x";
    const B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBB b@x";

    #[test]
    fn keys_are_found_after_options() {
        assert_eq!(key_of(A), Some("AAAAC3NzaC1lZDI1NTE5AAAAIAAA"));
        assert_eq!(
            key_of(r#"from="10.0.0.1",command="echo \"hi there\"" ssh-rsa AAAAB3 c"#),
            Some("AAAAB3")
        );
        assert_eq!(key_of("# ssh-ed25519 AAAA"), None);
        assert_eq!(key_of("   "), None);
    }

    #[test]
    fn add_and_remove_leave_other_lines_alone() {
        let original = format!("# team keys\n\nno-pty  {B}\r\n{A}");
        assert_eq!(with_key(&original, A), None, "already there");
        let added = with_key("# only a comment", B).expect("added");
        assert_eq!(added, format!("# only a comment\n{B}\n"));
        let (out, n) = without_key(&original, "AAAAC3NzaC1lZDI1NTE5AAAAIAAA");
        assert_eq!(n, 1);
        assert_eq!(out, format!("# team keys\n\nno-pty  {B}\r\n"));
        let (same, n) = without_key(&original, "nope");
        assert_eq!((same.as_str(), n), (original.as_str(), 0));
    }
}
