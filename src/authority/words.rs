//! Reading one shell word as the shell would, without running anything: its literal value when it
//! has one, and the command substitutions hidden in it (`$(...)`, backticks, `${x:-$(...)}`,
//! `$(( a[$(...)] ))`), whose text is classified like any command.
//!
//! sshkeep reads words itself rather than through the parser's word cache, so that no command
//! text stays in a cache after it is judged. Anything this reader is unsure of (an unterminated
//! quote, unbalanced parentheses) makes the word unreadable, which makes it opaque.

/// What a word is, before expansion.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Word {
    /// The text with quotes and escapes removed, when that text does not depend on expansions.
    /// `'r'm`, `\rm` and `"rm"` all read as `rm`.
    pub literal: Option<String>,
    /// The text of each command substitution inside the word.
    pub substitutions: Vec<String>,
    /// Unquoted glob or brace characters (`*`, `?`, `[`, `{a,b}`): the shell may turn the word
    /// into other words.
    pub pattern: bool,
    /// The reader could not follow the word.
    pub unreadable: bool,
}

/// Reads a word of a command line.
pub fn read(raw: &str) -> Word {
    Reader::new(raw, false).run()
}

/// Reads the body of a here-document that expands (quotes are plain characters there).
pub fn read_heredoc(raw: &str) -> Word {
    Reader::new(raw, true).run()
}

struct Reader {
    chars: Vec<char>,
    i: usize,
    heredoc: bool,
    out: Word,
    text: String,
    dynamic: bool,
}

impl Reader {
    fn new(raw: &str, heredoc: bool) -> Self {
        Reader {
            chars: raw.chars().collect(),
            i: 0,
            heredoc,
            out: Word::default(),
            text: String::new(),
            dynamic: false,
        }
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn run(mut self) -> Word {
        while let Some(c) = self.peek(0) {
            match c {
                '\\' => {
                    match self.peek(1) {
                        Some('\n') => {}
                        Some(n) => self.text.push(n),
                        None => self.text.push('\\'),
                    }
                    self.i += 2;
                }
                '\'' if !self.heredoc => {
                    self.i += 1;
                    match self.find('\'') {
                        Some(end) => {
                            self.text.extend(&self.chars[self.i..end]);
                            self.i = end + 1;
                        }
                        None => return self.unreadable(),
                    }
                }
                '"' if !self.heredoc => {
                    self.i += 1;
                    if !self.double_quoted() {
                        return self.unreadable();
                    }
                }
                '$' if self.peek(1) == Some('\'') && !self.heredoc => {
                    // ANSI-C quoting: `$'\x72m'` is `rm`. Without escapes it is plain text;
                    // with them, sshkeep does not decode, so the word has no literal value.
                    self.i += 2;
                    let Some(end) = self.find_unescaped('\'') else {
                        return self.unreadable();
                    };
                    let body: String = self.chars[self.i..end].iter().collect();
                    if body.contains('\\') {
                        self.dynamic = true;
                    }
                    self.text.push_str(&body);
                    self.i = end + 1;
                }
                '$' | '`' => {
                    if !self.expansion() {
                        return self.unreadable();
                    }
                }
                '*' | '?' | '[' if !self.heredoc => {
                    // A `[` is a pattern only when a `]` closes it: `[` alone is the test command.
                    if c != '[' || self.chars[self.i..].contains(&']') {
                        self.out.pattern = true;
                    }
                    self.text.push(c);
                    self.i += 1;
                }
                '{' if !self.heredoc => {
                    // Brace expansion needs a comma or `..` before the closing brace.
                    let rest: String = self.chars[self.i..].iter().collect();
                    if let Some(end) = rest.find('}')
                        && (rest[..end].contains(',') || rest[..end].contains(".."))
                    {
                        self.out.pattern = true;
                    }
                    self.text.push(c);
                    self.i += 1;
                }
                _ => {
                    self.text.push(c);
                    self.i += 1;
                }
            }
        }
        if !self.dynamic {
            self.out.literal = Some(std::mem::take(&mut self.text));
        }
        self.out
    }

    fn unreadable(mut self) -> Word {
        self.out.unreadable = true;
        self.out.literal = None;
        self.out
    }

    fn find(&self, c: char) -> Option<usize> {
        (self.i..self.chars.len()).find(|&j| self.chars[j] == c)
    }

    fn find_unescaped(&self, c: char) -> Option<usize> {
        let mut j = self.i;
        while j < self.chars.len() {
            match self.chars[j] {
                '\\' => j += 2,
                x if x == c => return Some(j),
                _ => j += 1,
            }
        }
        None
    }

    /// Inside `"..."`, after the opening quote; false when it never closes.
    fn double_quoted(&mut self) -> bool {
        while let Some(c) = self.peek(0) {
            match c {
                '"' => {
                    self.i += 1;
                    return true;
                }
                '\\' => {
                    match self.peek(1) {
                        Some(n @ ('$' | '`' | '"' | '\\')) => self.text.push(n),
                        Some('\n') => {}
                        Some(n) => {
                            self.text.push('\\');
                            self.text.push(n);
                        }
                        None => return false,
                    }
                    self.i += 2;
                }
                '$' | '`' => {
                    if !self.expansion() {
                        return false;
                    }
                }
                _ => {
                    self.text.push(c);
                    self.i += 1;
                }
            }
        }
        false
    }

    /// At a `$` or a backtick; false when what starts here never ends.
    fn expansion(&mut self) -> bool {
        let c = self.peek(0);
        let next = self.peek(1);
        match (c, next) {
            (Some('`'), _) => {
                self.i += 1;
                let Some(end) = self.find_unescaped('`') else {
                    return false;
                };
                let inner: String = self.chars[self.i..end].iter().collect();
                // Inside backticks, `\`` and `\\` stand for themselves.
                let inner = inner.replace("\\`", "`").replace("\\\\", "\\");
                self.out.substitutions.push(inner);
                self.dynamic = true;
                self.i = end + 1;
                true
            }
            (Some('$'), Some('(')) => {
                let arithmetic = self.peek(2) == Some('(');
                self.i += 2;
                let Some(end) = self.closing(')', '(') else {
                    return false;
                };
                let inner: String = self.chars[self.i..end].iter().collect();
                if arithmetic {
                    // `$(( ... ))`: an expression, but bash expands `$(...)` inside it.
                    self.nested(&inner);
                } else {
                    self.out.substitutions.push(inner);
                }
                self.dynamic = true;
                self.i = end + 1;
                true
            }
            (Some('$'), Some('{')) => {
                self.i += 2;
                let Some(end) = self.closing('}', '{') else {
                    return false;
                };
                let inner: String = self.chars[self.i..end].iter().collect();
                // `${x:-$(rm f)}`: the default is a word of its own.
                self.nested(&inner);
                self.dynamic = true;
                self.i = end + 1;
                true
            }
            (Some('$'), Some(n)) if n.is_ascii_alphanumeric() || "_@*#?$!-".contains(n) => {
                self.dynamic = true;
                self.i += 2;
                if n.is_ascii_alphabetic() || n == '_' {
                    while self
                        .peek(0)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        self.i += 1;
                    }
                }
                true
            }
            _ => {
                // A lone `$` is a plain character.
                self.text.push('$');
                self.i += 1;
                true
            }
        }
    }

    /// The substitutions inside an expansion's text.
    fn nested(&mut self, inner: &str) {
        let w = Reader::new(inner, true).run();
        self.out.substitutions.extend(w.substitutions);
        if w.unreadable {
            self.out.unreadable = true;
        }
    }

    /// The index of the bracket closing the one just passed, skipping quotes and nested pairs.
    fn closing(&self, close: char, open: char) -> Option<usize> {
        let mut depth = 1usize;
        let mut j = self.i;
        let mut quote: Option<char> = None;
        while j < self.chars.len() {
            let c = self.chars[j];
            match quote {
                Some('\'') => {
                    if c == '\'' {
                        quote = None;
                    }
                }
                Some(q) => {
                    if c == '\\' {
                        j += 1;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    '\\' => j += 1,
                    '\'' | '"' | '`' => quote = Some(c),
                    x if x == open => depth += 1,
                    x if x == close => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j);
                        }
                    }
                    _ => {}
                },
            }
            j += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes_read_as_the_shell_reads_them() {
        for w in ["rm", "'rm'", "\"rm\"", "r'm'", "\\rm", "r\"\"m"] {
            assert_eq!(read(w).literal.as_deref(), Some("rm"), "{w}");
        }
        assert_eq!(read("'a b'").literal.as_deref(), Some("a b"));
        assert_eq!(read("\"a\\\"b\"").literal.as_deref(), Some("a\"b"));
    }

    #[test]
    fn expansions_have_no_literal_value() {
        for w in [
            "$CMD",
            "${CMD}",
            "$'\\x72m'",
            "\"$x\"",
            "$(echo rm)",
            "`echo rm`",
        ] {
            assert_eq!(read(w).literal, None, "{w}");
        }
        assert_eq!(read("$'rm'").literal.as_deref(), Some("rm"));
        assert_eq!(read("a$").literal.as_deref(), Some("a$"));
    }

    #[test]
    fn substitutions_are_found_wherever_they_hide() {
        let cases = [
            ("$(rm -f F)", "rm -f F"),
            ("`rm -f F`", "rm -f F"),
            ("\"x$(rm -f F)y\"", "rm -f F"),
            ("${X:-$(rm -f F)}", "rm -f F"),
            ("$(( a[$(rm -f F)] ))", "rm -f F"),
            ("$(echo \")\" ; rm -f F)", "echo \")\" ; rm -f F"),
        ];
        for (w, inner) in cases {
            assert_eq!(read(w).substitutions, vec![inner.to_string()], "{w}");
        }
        assert_eq!(
            read_heredoc("it's $(rm -f F)\n").substitutions,
            vec!["rm -f F".to_string()]
        );
    }

    #[test]
    fn patterns_and_broken_words_are_flagged() {
        assert!(read("r{m,x}").pattern);
        assert!(read("/bin/r?").pattern);
        assert!(!read("'*'").pattern);
        assert!(!read("{}").pattern);
        assert!(read("'open").unreadable);
        assert!(read("$(open").unreadable);
        assert!(read("\"open").unreadable);
    }
}
