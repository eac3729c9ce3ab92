//! Walks a parsed command line and classifies every simple command in it, wherever it sits:
//! pipelines, lists, subshells, groups, loops, conditionals, function bodies, command and process
//! substitutions, here-documents, and the redirections that write files.

use brush_parser::ast;

use super::class::{Class, Classification};
use super::rules::RuleSet;
use super::{program, words};

/// How deep `sh -c '... $(... )'` may nest before the line is called opaque.
const MAX_DEPTH: usize = 16;

/// Targets a redirection may write without changing anything kept.
const HARMLESS_TARGETS: [&str; 5] = [
    "/dev/null",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/tty",
    "/dev/zero",
];

/// One argument of a simple command: as written, and its value when that is literal.
pub(super) struct Arg {
    pub raw: String,
    pub literal: Option<String>,
}

impl Arg {
    /// The literal value, or the text as written (for display and for rules matching flags).
    pub fn text(&self) -> &str {
        self.literal.as_deref().unwrap_or(&self.raw)
    }
}

pub(super) struct Walker<'r> {
    pub rules: &'r RuleSet,
    pub out: Classification,
    depth: usize,
}

impl<'r> Walker<'r> {
    pub fn new(rules: &'r RuleSet) -> Self {
        Walker {
            rules,
            out: Classification::default(),
            depth: 0,
        }
    }

    pub fn opaque(&mut self, part: &str, why: &str) {
        self.out.add(Class::Opaque, part, why);
    }

    /// Parses shell text and classifies what it runs.
    pub fn script(&mut self, text: &str) {
        if self.depth >= MAX_DEPTH {
            return self.opaque(text, "nested too deeply to follow");
        }
        let options = brush_parser::ParserOptions::default();
        let parsed = brush_parser::uncached_tokenize_str(text, &options.tokenizer_options())
            .ok()
            .and_then(|tokens| brush_parser::parse_tokens(&tokens, &options).ok());
        let Some(program) = parsed else {
            return self.opaque(text, "does not parse as a shell command");
        };
        self.depth += 1;
        for list in &program.complete_commands {
            self.list(list);
        }
        self.depth -= 1;
    }

    fn list(&mut self, list: &ast::CompoundList) {
        for ast::CompoundListItem(and_or, _) in &list.0 {
            self.pipeline(&and_or.first);
            for next in &and_or.additional {
                match next {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p),
                }
            }
        }
    }

    fn pipeline(&mut self, p: &ast::Pipeline) {
        for command in &p.seq {
            self.command(command);
        }
    }

    fn command(&mut self, c: &ast::Command) {
        match c {
            ast::Command::Simple(s) => self.simple(s),
            ast::Command::Compound(compound, redirects) => {
                self.compound(compound);
                self.redirects(redirects.as_ref());
            }
            // Defining a function runs nothing, but its body runs when it is called (by a name
            // sshkeep will not know, so the call is opaque): judge the body too.
            ast::Command::Function(f) => {
                self.compound(&f.body.0);
                self.redirects(f.body.1.as_ref());
            }
            ast::Command::ExtendedTest(test, redirects) => {
                self.loose_text(&test.to_string());
                self.redirects(redirects.as_ref());
            }
        }
    }

    fn compound(&mut self, c: &ast::CompoundCommand) {
        use ast::CompoundCommand as C;
        match c {
            C::Arithmetic(a) => self.loose_text(&a.expr.value),
            C::ArithmeticForClause(a) => {
                for e in [&a.initializer, &a.condition, &a.updater]
                    .into_iter()
                    .flatten()
                {
                    self.loose_text(&e.value);
                }
                self.list(&a.body.list);
            }
            C::BraceGroup(b) => self.list(&b.list),
            C::Subshell(s) => self.list(&s.list),
            C::ForClause(f) => {
                for w in f.values.iter().flatten() {
                    self.word(w);
                }
                self.list(&f.body.list);
            }
            C::CaseClause(case) => {
                self.word(&case.value);
                for item in &case.cases {
                    for p in &item.patterns {
                        self.word(p);
                    }
                    if let Some(list) = &item.cmd {
                        self.list(list);
                    }
                }
            }
            C::IfClause(i) => {
                self.list(&i.condition);
                self.list(&i.then);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.list(c);
                    }
                    self.list(&e.body);
                }
            }
            C::WhileClause(w) | C::UntilClause(w) => {
                self.list(&w.0);
                self.list(&w.1.list);
            }
            C::Coprocess(c) => self.command(&c.body),
        }
    }

    /// Text that is not a word but may hold substitutions (arithmetic, `[[ ]]`, here-documents).
    fn loose_text(&mut self, text: &str) {
        let w = words::read_heredoc(text);
        if w.unreadable {
            self.opaque(text, "a part sshkeep cannot read");
        }
        for s in &w.substitutions {
            self.script(s);
        }
    }

    /// Reads a word and judges the commands substituted into it.
    fn word(&mut self, w: &ast::Word) -> Arg {
        let read = words::read(&w.value);
        if read.unreadable {
            self.opaque(&w.value, "a word sshkeep cannot read");
        }
        for s in &read.substitutions {
            self.script(s);
        }
        Arg {
            raw: w.value.clone(),
            literal: read.literal.filter(|_| !read.pattern),
        }
    }

    fn redirects(&mut self, list: Option<&ast::RedirectList>) {
        for r in list.iter().flat_map(|l| l.0.iter()) {
            self.redirect(r);
        }
    }

    fn redirect(&mut self, r: &ast::IoRedirect) {
        use ast::IoFileRedirectKind as K;
        use ast::IoFileRedirectTarget as T;
        match r {
            ast::IoRedirect::File(_, kind, target) => {
                let writes = matches!(
                    kind,
                    K::Write | K::Append | K::ReadAndWrite | K::Clobber | K::DuplicateOutput
                );
                match target {
                    T::Filename(w) | T::Duplicate(w) => {
                        let arg = self.word(w);
                        if writes {
                            self.written(&arg, &r.to_string());
                        } else if arg.text().starts_with("/dev/tcp/")
                            || arg.text().starts_with("/dev/udp/")
                        {
                            self.opaque(&r.to_string(), "opens a network connection");
                        }
                    }
                    T::Fd(_) => {}
                    T::ProcessSubstitution(_, sub) => self.list(&sub.list),
                }
            }
            ast::IoRedirect::HereDocument(_, doc) => {
                if doc.requires_expansion {
                    self.loose_text(&doc.doc.value);
                }
            }
            ast::IoRedirect::HereString(_, w) => {
                self.word(w);
            }
            ast::IoRedirect::OutputAndError(w, _) => {
                let arg = self.word(w);
                self.written(&arg, &r.to_string());
            }
        }
    }

    /// A redirection that writes `target`.
    fn written(&mut self, target: &Arg, part: &str) {
        let t = target.text();
        // `>&2` duplicates a descriptor: the parser gives the number as a word.
        if t.chars().all(|c| c.is_ascii_digit() || c == '-') {
            return;
        }
        if t.starts_with("/dev/tcp/") || t.starts_with("/dev/udp/") {
            return self.opaque(part, "opens a network connection");
        }
        if target.literal.is_some() && (HARMLESS_TARGETS.contains(&t) || t.starts_with("/dev/fd/"))
        {
            return;
        }
        self.out.add(
            Class::Destructive,
            part.trim(),
            "writes a file, replacing what it held",
        );
    }

    fn simple(&mut self, s: &ast::SimpleCommand) {
        use ast::CommandPrefixOrSuffixItem as Item;
        let mut args = Vec::new();
        let items = s
            .prefix
            .iter()
            .flat_map(|p| p.0.iter())
            .chain(s.suffix.iter().flat_map(|x| x.0.iter()));
        let mut prefix_len = s.prefix.as_ref().map_or(0, |p| p.0.len());
        let mut assigns_only = true;
        for item in items {
            let in_prefix = prefix_len > 0;
            prefix_len = prefix_len.saturating_sub(1);
            match item {
                Item::IoRedirect(r) => self.redirect(r),
                Item::ProcessSubstitution(_, sub) => self.list(&sub.list),
                Item::AssignmentWord(a, w) => {
                    self.assignment(a, w);
                    if !in_prefix {
                        args.push(Arg {
                            raw: w.value.clone(),
                            literal: words::read(&w.value).literal,
                        });
                    }
                }
                Item::Word(w) => {
                    assigns_only = false;
                    let arg = self.word(w);
                    args.push(arg);
                }
            }
        }
        let Some(name) = &s.word_or_name else {
            if assigns_only && s.prefix.is_some() {
                self.out.add(Class::Safe, s.to_string(), "sets a variable");
            }
            return;
        };
        let name = self.word(name);
        program::judge(self, &name, &args);
    }

    /// `NAME=value`: judge what the value runs, and refuse to read past names that change which
    /// program a command runs or what the shell does before it.
    fn assignment(&mut self, a: &ast::Assignment, w: &ast::Word) {
        let name = match &a.name {
            ast::AssignmentName::VariableName(n) | ast::AssignmentName::ArrayElementName(n, _) => n,
        };
        if program::changes_what_runs(name) {
            self.opaque(
                &w.value,
                "changes which programs run or what runs before them",
            );
        }
        match &a.value {
            ast::AssignmentValue::Scalar(v) => {
                self.word(v);
            }
            ast::AssignmentValue::Array(items) => {
                for (k, v) in items {
                    if let Some(k) = k {
                        self.word(k);
                    }
                    self.word(v);
                }
            }
        }
    }
}
