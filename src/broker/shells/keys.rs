//! Named keys and the bytes a terminal sends for them (xterm conventions).

/// The bytes for `name` (case-insensitive: `enter`, `tab`, `escape`, `backspace`, `up`, `down`,
/// `left`, `right`, `home`, `end`, `pageup`, `pagedown`, `insert`, `delete`, `f1`..`f12`,
/// `ctrl-a`..`ctrl-z`, `ctrl-[`, `ctrl-\`, `ctrl-]`, `space`, or any single character). Arrow keys follow the
/// program's cursor-key mode (`app_cursor`), as a real terminal does.
pub fn bytes(name: &str, app_cursor: bool) -> Option<Vec<u8>> {
    // A single character is that key (q to quit top, y at a prompt).
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && !c.is_control()
    {
        return Some(c.to_string().into_bytes());
    }
    let n = name.trim().to_ascii_lowercase().replace(['_', '+'], "-");
    let arrow = |c: char| {
        if app_cursor {
            format!("\x1bO{c}")
        } else {
            format!("\x1b[{c}")
        }
    };
    let s: String = match n.as_str() {
        "enter" | "return" => "\r".into(),
        "tab" => "\t".into(),
        "escape" | "esc" => "\x1b".into(),
        "backspace" => "\x7f".into(),
        "space" => " ".into(),
        "up" => arrow('A'),
        "down" => arrow('B'),
        "right" => arrow('C'),
        "left" => arrow('D'),
        "home" => arrow('H'),
        "end" => arrow('F'),
        "pageup" | "page-up" => "\x1b[5~".into(),
        "pagedown" | "page-down" => "\x1b[6~".into(),
        "insert" => "\x1b[2~".into(),
        "delete" | "del" => "\x1b[3~".into(),
        "f1" => "\x1bOP".into(),
        "f2" => "\x1bOQ".into(),
        "f3" => "\x1bOR".into(),
        "f4" => "\x1bOS".into(),
        "f5" => "\x1b[15~".into(),
        "f6" => "\x1b[17~".into(),
        "f7" => "\x1b[18~".into(),
        "f8" => "\x1b[19~".into(),
        "f9" => "\x1b[20~".into(),
        "f10" => "\x1b[21~".into(),
        "f11" => "\x1b[23~".into(),
        "f12" => "\x1b[24~".into(),
        _ => {
            let c = n.strip_prefix("ctrl-").or_else(|| n.strip_prefix("c-"))?;
            let mut chars = c.chars();
            let (ch, None) = (chars.next()?, chars.next()) else {
                return None;
            };
            let b = match ch {
                'a'..='z' => ch as u8 - b'a' + 1,
                '[' => 0x1b,
                '\\' => 0x1c,
                ']' => 0x1d,
                '@' | ' ' => 0,
                _ => return None,
            };
            return Some(vec![b]);
        }
    };
    Some(s.into_bytes())
}

/// Names accepted, for error messages.
pub const NAMES: &str = "enter, tab, escape, backspace, space, up, down, left, right, home, end, pageup, pagedown, insert, delete, f1-f12, ctrl-a..ctrl-z (ctrl-c, ctrl-d, ctrl-z, ...), or a single character";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_terminal_bytes() {
        assert_eq!(bytes("Ctrl-C", false), Some(vec![3]));
        assert_eq!(bytes("ctrl+d", false), Some(vec![4]));
        assert_eq!(bytes("up", false), Some(b"\x1b[A".to_vec()));
        assert_eq!(bytes("up", true), Some(b"\x1bOA".to_vec()));
        assert_eq!(bytes("F12", false), Some(b"\x1b[24~".to_vec()));
        assert_eq!(bytes("ctrl-zz", false), None);
        assert_eq!(bytes("hyper", false), None);
        assert_eq!(bytes("q", false), Some(b"q".to_vec()));
    }
}
