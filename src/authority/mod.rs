//! Authority: what a client may do through the broker, decided from the command itself.
//!
//! A command line is parsed with a real shell parser (brush-parser) and every simple command in
//! it is classified, wherever it hides: `ls; rm -f x`, `echo $(rm -f x)`, `sh -c 'rm -f x'`,
//! `find . -delete`, `xargs rm`, `sudo ...`, redirections that write. Text that cannot be read
//! is opaque, which is never cheaper than destructive. The rules table is data (see `rules`).
//!
//! What this cannot know: what a program does with input it reads at run time, what a script
//! file on the server contains, or what an alias or function defined on the server does. Those
//! are opaque by rule (unknown programs, scripts, interpreters), and the threat model says so.

mod class;
pub mod profile;
mod program;
pub mod redact;
mod rules;
pub mod verdict;
mod walk;
mod words;

pub use class::{Class, Classification, Finding};
pub use profile::{BUILTIN, Decision, Profile};
pub use rules::{RuleError, RuleSet};
pub use verdict::{Target, Tool, Verdict};

/// Longer command lines are not parsed: judged opaque (they still run where opaque may run).
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// The parser recurses as deep as the command nests; it runs on a thread of its own with room
/// for that, so no command line can overflow a broker thread's stack.
const PARSER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Most opening brackets and compound keywords a line may have before it is called opaque
/// without parsing (bounds the parser's recursion well inside its stack).
const MAX_NESTING_MARKS: usize = 2_000;

/// Classifies a command line as it would run in a POSIX shell or bash on the server.
pub fn classify(command: &str, rules: &RuleSet) -> Classification {
    let mut out = Classification::default();
    if command.len() > MAX_COMMAND_BYTES {
        out.add(Class::Opaque, command, "too long to judge");
        return out;
    }
    if nesting_marks(command) > MAX_NESTING_MARKS {
        out.add(Class::Opaque, command, "nested too deeply to judge");
        return out;
    }
    let judged = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("sshkeep-classify".into())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(scope, || {
                let mut w = walk::Walker::new(rules);
                w.script(command);
                w.out
            })
            .ok()
            .and_then(|t| t.join().ok())
    });
    match judged {
        Some(c) => c,
        None => {
            // The parser panicked or no thread could be started: nothing was judged.
            out.add(Class::Opaque, command, "sshkeep could not read it");
            out
        }
    }
}

fn nesting_marks(s: &str) -> usize {
    s.bytes()
        .filter(|b| matches!(b, b'(' | b'{' | b'`'))
        .count()
        + s.split_whitespace()
            .filter(|w| matches!(*w, "if" | "while" | "until" | "for" | "case" | "select"))
            .count()
}

#[cfg(test)]
mod classify_tests;
