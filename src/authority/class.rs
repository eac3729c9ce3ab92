//! What a command can do, in five classes, and why a command got its class.
//!
//! A command line is judged by its worst part: `ls; rm -f x` is destructive because of `rm`, and a
//! part that cannot be read (an interpreter running code from its arguments, a program name that
//! comes from an expansion, text that does not parse) is opaque, which is never cheaper than
//! destructive.

use std::fmt;

/// What running a command can do, from harmless to unknowable. The order is the order of worry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Looks, changes nothing: `ls`, `cat`, `systemctl status`.
    ReadOnly,
    /// Changes things in ways that lose nothing: `mkdir`, `touch`, `git fetch`.
    Safe,
    /// Can lose data or stop a service: `rm`, `mv`, `>` into a file, `systemctl stop`.
    Destructive,
    /// Runs as someone else: `sudo`, `su`, `doas`.
    Privileged,
    /// Cannot be judged from the text: interpreters given code, unknown programs, `eval`,
    /// expansions in the program name, anything that does not parse.
    Opaque,
}

impl Class {
    /// Every class, from harmless to unknowable.
    pub const ALL: [Class; 5] = [
        Class::ReadOnly,
        Class::Safe,
        Class::Destructive,
        Class::Privileged,
        Class::Opaque,
    ];

    /// The name used in rules, profiles, replies and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::Safe => "safe",
            Self::Destructive => "destructive",
            Self::Privileged => "privileged",
            Self::Opaque => "opaque",
        }
    }

    /// Reads a class name as written in rules and profiles (`read-only` or `readonly`).
    pub fn parse(s: &str) -> Option<Class> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read-only" | "readonly" | "read_only" => Some(Self::ReadOnly),
            "safe" => Some(Self::Safe),
            "destructive" => Some(Self::Destructive),
            "privileged" => Some(Self::Privileged),
            "opaque" => Some(Self::Opaque),
            _ => None,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One part of a command line and the class it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub class: Class,
    /// The part, as the user would recognise it: `rm -f x`, `> /etc/app.conf`, `python3 -c`.
    pub part: String,
    /// Why this part has this class, in a few words.
    pub why: String,
}

/// Every part of a command line with its class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Classification {
    pub findings: Vec<Finding>,
}

impl Classification {
    /// The class of the whole command: the worst of its parts (read-only when it has none,
    /// as an empty line or a comment runs nothing).
    pub fn class(&self) -> Class {
        self.findings
            .iter()
            .map(|f| f.class)
            .max()
            .unwrap_or(Class::ReadOnly)
    }

    /// The part that decided the class, for the reason given to the agent and the user.
    pub fn worst(&self) -> Option<&Finding> {
        // max_by_key returns the last of equal maxima; the first is the one the user reads first.
        let class = self.class();
        self.findings.iter().find(|f| f.class == class)
    }

    /// "destructive: `rm -f x` (removes files)", or "read-only" for a harmless line.
    pub fn reason(&self) -> String {
        match self.worst() {
            Some(f) => format!("{}: `{}` ({})", f.class, f.part, f.why),
            None => Class::ReadOnly.to_string(),
        }
    }

    pub(super) fn add(&mut self, class: Class, part: impl Into<String>, why: impl Into<String>) {
        let part = shorten(part.into());
        self.findings.push(Finding {
            class,
            part,
            why: why.into(),
        });
    }
}

/// Parts are shown to people and agents: keep them to one readable line.
fn shorten(s: String) -> String {
    const MAX: usize = 120;
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= MAX {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_part_decides_and_is_named() {
        let mut c = Classification::default();
        assert_eq!(c.class(), Class::ReadOnly);
        c.add(Class::ReadOnly, "ls", "lists");
        c.add(Class::Destructive, "rm -f x", "removes files");
        c.add(Class::Safe, "mkdir d", "creates");
        assert_eq!(c.class(), Class::Destructive);
        assert_eq!(c.reason(), "destructive: `rm -f x` (removes files)");
    }

    #[test]
    fn opaque_is_never_cheaper_than_destructive() {
        assert!(Class::Opaque > Class::Destructive);
        assert!(Class::Opaque > Class::Privileged);
        for c in Class::ALL {
            assert_eq!(Class::parse(c.as_str()), Some(c));
        }
        assert_eq!(Class::parse("readonly"), Some(Class::ReadOnly));
        assert_eq!(Class::parse("harmless"), None);
    }
}
