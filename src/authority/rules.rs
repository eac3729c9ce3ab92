//! The rules table: which program (and subcommand, and flag) gets which class.
//!
//! The table is data, one rule per line, in the same form for the built-in table
//! (`builtin_rules.txt`) and for the lines a user adds to a profile:
//!
//! ```text
//! find -delete => destructive: deletes what it finds
//! git status   => read-only: shows the work tree
//! ```
//!
//! Left of `=>`: the program, then words that must match. A word starting with `-` is a flag that
//! must appear among the arguments (`-i` also matches a cluster such as `-ni` or `-i.bak`;
//! `--in-place` also matches `--in-place=x`). Any other word must equal the command's next
//! positional argument (its subcommand). Of the rules that match, the most specific (most words)
//! decides; equally specific rules give the worst of their classes. `$` means "no more
//! positional arguments" (`systemctl $` is plain `systemctl`); `_` means "any one positional
//! argument" (`uniq _ _` writes its second).  A user's rule with the same
//! words as a built-in one replaces it. A program no rule names is opaque.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::class::Class;

/// The built-in table, compiled in.
const BUILTIN: &str = include_str!("builtin_rules.txt");

/// The built-in table, read once. The table is checked by a test; a bad line there is
/// skipped, never fatal.
static BUILTIN_SET: LazyLock<RuleSet> = LazyLock::new(|| {
    let mut set = RuleSet::default();
    for line in BUILTIN.lines() {
        if let Ok(Some((program, rule))) = parse_line(line) {
            set.insert(program, rule);
        }
    }
    set
});

/// One line of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The words after the program: subcommands and flags.
    words: Vec<String>,
    pub class: Class,
    pub why: String,
}

/// A rule line that could not be read, with what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("rule {line:?}: {problem}")]
pub struct RuleError {
    pub line: String,
    pub problem: &'static str,
}

/// The table, looked up by program name.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    by_program: HashMap<String, Vec<Rule>>,
}

impl RuleSet {
    /// The built-in table (read from its text once per process).
    pub fn builtin() -> RuleSet {
        BUILTIN_SET.clone()
    }

    /// The built-in table with a profile's own lines on top.
    pub fn with_additions(lines: &[String]) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::builtin();
        for line in lines {
            if let Some((program, rule)) = parse_line(line)? {
                set.insert(program, rule);
            }
        }
        Ok(set)
    }

    fn insert(&mut self, program: String, rule: Rule) {
        let rules = self.by_program.entry(program).or_default();
        rules.retain(|r| r.words != rule.words);
        rules.push(rule);
    }

    /// The class of `program args...` by the table alone, with the reason; `None` when no rule
    /// names the program.
    pub fn lookup(&self, program: &str, args: &[String]) -> Option<(Class, &str)> {
        let rules = self.by_program.get(program)?;
        let positional: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .filter(|a| !a.starts_with('-'))
            .collect();
        let mut best: Option<(usize, &Rule)> = None;
        for rule in rules.iter().filter(|r| matches(r, args, &positional)) {
            let better = match best {
                None => true,
                Some((n, b)) => {
                    rule.words.len() > n || (rule.words.len() == n && rule.class > b.class)
                }
            };
            if better {
                best = Some((rule.words.len(), rule));
            }
        }
        best.map(|(_, r)| (r.class, r.why.as_str()))
    }

    /// The worst class any rule gives the program: what it can do with arguments nobody has
    /// seen yet (`xargs rm`).
    pub fn worst_for(&self, program: &str) -> Option<Class> {
        self.by_program.get(program)?.iter().map(|r| r.class).max()
    }

    /// Whether any rule names the program.
    pub fn knows(&self, program: &str) -> bool {
        self.by_program.contains_key(program)
    }
}

fn matches(rule: &Rule, args: &[String], positional: &[&str]) -> bool {
    let mut next_positional = positional.iter();
    rule.words.iter().all(|w| {
        if w == "$" {
            // Nothing more: `systemctl $` is `systemctl` with no subcommand.
            return next_positional.next().is_none();
        }
        if w == "_" {
            return next_positional.next().is_some();
        }
        if let Some(long) = w.strip_prefix("--") {
            args.iter().any(|a| {
                a.strip_prefix("--")
                    .is_some_and(|x| x == long || x.starts_with(&format!("{long}=")))
            })
        } else if let Some(flag) = w.strip_prefix('-') {
            let mut letters = flag.chars();
            match (letters.next(), letters.next()) {
                // One letter: also inside a cluster (`-i` matches `-ni` and `-i.bak`).
                (Some(letter), None) => args.iter().any(|a| {
                    a.strip_prefix('-')
                        .is_some_and(|x| !x.starts_with('-') && x.contains(letter))
                }),
                // A word-long flag with one dash (`find -delete`): only itself.
                _ => args
                    .iter()
                    .any(|a| a == w || a.starts_with(&format!("{w}="))),
            }
        } else {
            next_positional.next().is_some_and(|p| p == w)
        }
    })
}

/// Reads one line: `None` for blank lines and comments.
fn parse_line(line: &str) -> Result<Option<(String, Rule)>, RuleError> {
    let text = line.split('#').next().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    let err = |problem| RuleError {
        line: line.trim().to_string(),
        problem,
    };
    let (pattern, outcome) = text
        .split_once("=>")
        .ok_or_else(|| err("expected `PROGRAM [WORDS] => CLASS: why`"))?;
    let mut words = pattern.split_whitespace().map(str::to_string);
    let program = words.next().ok_or_else(|| err("no program before `=>`"))?;
    if program.starts_with('-') || program.contains('/') {
        return Err(err("the program is a bare name, such as `rm`"));
    }
    let (class, why) = match outcome.split_once(':') {
        Some((c, w)) => (c, w.trim()),
        None => (outcome, ""),
    };
    let class = Class::parse(class).ok_or_else(|| {
        err("the class is one of read-only, safe, destructive, privileged, opaque")
    })?;
    let why = if why.is_empty() {
        format!("{class} by rule")
    } else {
        why.to_string()
    };
    Ok(Some((
        program,
        Rule {
            words: words.collect(),
            class,
            why,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn every_builtin_line_reads() {
        for line in BUILTIN.lines() {
            if let Err(e) = parse_line(line) {
                panic!("{e}");
            }
        }
        assert!(RuleSet::builtin().knows("ls"));
    }

    #[test]
    fn the_most_specific_rule_decides() {
        let set = RuleSet::builtin();
        assert_eq!(
            set.lookup("git", &args("status")).map(|x| x.0),
            Some(Class::ReadOnly)
        );
        assert_eq!(
            set.lookup("git", &args("push --force")).map(|x| x.0),
            Some(Class::Destructive)
        );
        assert_eq!(
            set.lookup("find", &args(". -name x")).map(|x| x.0),
            Some(Class::ReadOnly)
        );
        assert_eq!(
            set.lookup("find", &args(". -name x -delete")).map(|x| x.0),
            Some(Class::Destructive)
        );
        assert_eq!(
            set.lookup("sed", &args("-ni s/a/b/ f")).map(|x| x.0),
            Some(Class::Destructive)
        );
        assert_eq!(
            set.lookup("sed", &args("--in-place=.bak s/a/b/ f"))
                .map(|x| x.0),
            Some(Class::Destructive)
        );
        assert_eq!(
            set.lookup("systemctl", &args("--no-pager status nginx"))
                .map(|x| x.0),
            Some(Class::ReadOnly)
        );
        assert_eq!(
            set.lookup("systemctl", &args("restart nginx")).map(|x| x.0),
            Some(Class::Destructive)
        );
        assert_eq!(set.lookup("frobnicate", &args("x")), None);
    }

    #[test]
    fn a_users_rule_replaces_the_builtin_with_the_same_words() {
        let set = RuleSet::with_additions(&[
            "git push => safe: our CI pushes".into(),
            "terraform plan => read-only".into(),
        ])
        .expect("rules read");
        assert_eq!(
            set.lookup("git", &args("push")).map(|x| x.0),
            Some(Class::Safe)
        );
        assert_eq!(
            set.lookup("terraform", &args("plan")).map(|x| x.0),
            Some(Class::ReadOnly)
        );
        assert_eq!(set.lookup("terraform", &args("apply")), None);
        let bad = RuleSet::with_additions(&["terraform => harmless".into()]);
        assert!(bad.is_err());
        assert!(RuleSet::with_additions(&["/bin/rm => safe".into()]).is_err());
    }
}
