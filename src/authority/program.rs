//! Judging one simple command: the rules table for ordinary programs, and sshkeep's own reading of
//! the programs that run other code: wrappers (`sudo`, `env`, `timeout`, `xargs`, `find -exec`),
//! shells given `-c`, `eval`, `trap`, and the text programs that can write or run (`sed`, `awk`).

use super::walk::{Arg, Walker};

/// Directories whose programs are the system's own: `/usr/bin/rm` is judged as `rm`, while
/// `./rm` or `/tmp/x/ls` could be anything.
const SYSTEM_DIRS: [&str; 6] = [
    "/bin",
    "/usr/bin",
    "/sbin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// Shells: with `-c` their code is parsed; without it they run a file or their input.
const SHELLS: [&str; 7] = ["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"];

/// Variables that change which program a name runs, or run code before a command.
pub(super) fn changes_what_runs(name: &str) -> bool {
    matches!(
        name,
        "PATH"
            | "IFS"
            | "ENV"
            | "BASH_ENV"
            | "SHELLOPTS"
            | "BASHOPTS"
            | "PS4"
            | "PROMPT_COMMAND"
            | "GCONV_PATH"
            | "PERL5OPT"
            | "PYTHONSTARTUP"
            | "PYTHONPATH"
            | "NODE_OPTIONS"
            | "GIT_SSH_COMMAND"
            | "GIT_EXEC_PATH"
            | "EDITOR"
            | "VISUAL"
            | "PAGER"
            | "SYSTEMD_PAGER"
    ) || name.starts_with("LD_")
        || name.starts_with("BASH_FUNC_")
}

fn shown(name: &Arg, args: &[Arg]) -> String {
    let mut s = name.raw.clone();
    for a in args {
        s.push(' ');
        s.push_str(&a.raw);
    }
    s
}

/// Classifies `name args...` into the walker's findings.
pub(super) fn judge(w: &mut Walker<'_>, name: &Arg, args: &[Arg]) {
    let part = shown(name, args);
    let Some(written) = name.literal.as_deref() else {
        return w.opaque(
            &part,
            "the program's name comes from an expansion or a pattern",
        );
    };
    let program = match written.rsplit_once('/') {
        Some((dir, base)) => {
            if !SYSTEM_DIRS.contains(&dir) {
                return w.opaque(&part, "runs a program by its path");
            }
            base
        }
        None => written,
    };
    let mut texts: Vec<String> = args.iter().map(|a| a.text().to_string()).collect();
    if program == "git" {
        match git_command(&texts) {
            Some(rest) => texts = rest,
            None => {
                return w.opaque(
                    &part,
                    "sets git configuration or paths, which can run programs",
                );
            }
        }
    }

    // The program's own part, from the table.
    match w.rules.lookup(program, &texts) {
        Some((class, why)) => {
            let why = why.to_string();
            w.out.add(class, part.clone(), why);
        }
        None => return w.opaque(&part, "sshkeep has no rule for this program"),
    }

    match program {
        p if SHELLS.contains(&p) => shell(w, &part, args),
        "eval" => code_from_args(w, &part, args),
        "trap" => {
            // `trap CODE SIGNAL...`; `trap -p` and `trap SIGNAL` alone run nothing.
            if let Some(code) = args.first().filter(|a| !a.text().starts_with('-'))
                && args.len() >= 2
            {
                code_arg(w, &part, code);
            }
        }
        "watch" => {
            let rest = after_options(args, &["-n", "--interval", "-d", "--differences"]);
            code_from_args(w, &part, rest);
        }
        "sudo" => run_rest(
            w,
            args,
            &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-T", "-U"],
        ),
        "doas" => run_rest(w, args, &["-u", "-C"]),
        "pkexec" => run_rest(w, args, &["--user"]),
        "runuser" | "su" => {
            if command_option(w, &part, args) {
                // judged
            } else if let Some(i) = args.iter().position(|a| a.text() == "--") {
                run_words(w, &args[i + 1..]);
            } else {
                w.opaque(&part, "starts a shell as another user");
            }
        }
        "env" => {
            let mut rest = args;
            while let Some(first) = rest.first() {
                let t = first.text();
                if t == "-u" || t == "--unset" || t == "-C" || t == "--chdir" {
                    rest = rest.get(2..).unwrap_or(&[]);
                } else if t == "-S" || t == "--split-string" {
                    return match rest.get(1) {
                        Some(code) => code_arg(w, &part, code),
                        None => w.opaque(&part, "runs a split string"),
                    };
                } else if t.starts_with('-') {
                    rest = &rest[1..];
                } else if let Some((var, _)) = t.split_once('=') {
                    if changes_what_runs(var) {
                        w.opaque(&part, "changes which programs run or what runs before them");
                    }
                    rest = &rest[1..];
                } else {
                    break;
                }
            }
            run_words(w, rest);
        }
        "nice" => run_rest(w, args, &["-n", "--adjustment"]),
        "ionice" => run_rest(
            w,
            args,
            &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"],
        ),
        "stdbuf" => run_rest(w, args, &["-i", "-o", "-e"]),
        "time" | "nohup" | "setsid" | "busybox" | "builtin" => run_rest(w, args, &[]),
        "exec" => run_rest(w, args, &["-a"]),
        // `command -v NAME` only looks the name up.
        "command" if args.iter().any(|a| a.text() == "-v" || a.text() == "-V") => {}
        "command" => run_rest(w, args, &[]),
        "timeout" => {
            let rest = after_options(args, &["-s", "--signal", "-k", "--kill-after"]);
            // The first word after the options is the duration.
            run_words(w, rest.get(1..).unwrap_or(&[]));
        }
        "flock" => {
            let rest = after_options(args, &["-w", "--timeout", "-E", "--conflict-exit-code"]);
            if !command_option(w, &part, rest) {
                // `flock FILE CMD...`; `flock FD` alone runs nothing.
                run_words(w, rest.get(1..).unwrap_or(&[]));
            }
        }
        "xargs" => xargs(w, &part, args),
        "find" => find_exec(w, args),
        "sed" => sed(w, &part, args),
        "awk" | "gawk" | "mawk" | "nawk" => awk(w, &part, args),
        _ => {}
    }
}

/// `git -C dir --no-pager status` is `git status`; `-c`, `--exec-path` and `--config-env` can
/// make git run any program, so they make the command unreadable (`None`).
fn git_command(args: &[String]) -> Option<Vec<String>> {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "-C" => i += 2,
            "-c" | "--config-env" => return None,
            x if x.starts_with("--exec-path") || x.starts_with("--config-env") => return None,
            "--no-pager" | "-P" | "-p" | "--paginate" | "--bare" | "--no-replace-objects" => i += 1,
            x if x.starts_with("--git-dir=")
                || x.starts_with("--work-tree=")
                || x.starts_with("--namespace=") =>
            {
                i += 1
            }
            _ => break,
        }
    }
    Some(args.get(i..).unwrap_or(&[]).to_vec())
}

/// The arguments after the leading options, skipping the value of each option in `with_value`.
fn after_options<'a>(args: &'a [Arg], with_value: &[&str]) -> &'a [Arg] {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text();
        if t == "--" {
            return args.get(i + 1..).unwrap_or(&[]);
        }
        if !t.starts_with('-') || t == "-" {
            break;
        }
        i += if with_value.contains(&t) { 2 } else { 1 };
    }
    args.get(i..).unwrap_or(&[])
}

/// A wrapper: judge the command after its options.
fn run_rest(w: &mut Walker<'_>, args: &[Arg], with_value: &[&str]) {
    run_words(w, after_options(args, with_value));
}

/// Judges words as a command of their own (`sudo rm x` judges `rm x`).
fn run_words(w: &mut Walker<'_>, words: &[Arg]) {
    if let Some((name, rest)) = words.split_first() {
        judge(w, name, rest);
    }
}

/// `sh -c CODE`, `bash script.sh`, `curl ... | sh`.
fn shell(w: &mut Walker<'_>, part: &str, args: &[Arg]) {
    let mut i = 0;
    let mut code_flag = false;
    while let Some(a) = args.get(i) {
        let t = a.text();
        if t == "--" || !(t.starts_with('-') || t.starts_with('+')) || t == "-" {
            break;
        }
        if t == "-o" || t == "+o" || t == "-O" || t == "+O" {
            i += 2;
            continue;
        }
        if !t.starts_with("--") && t.contains('c') {
            code_flag = true;
        }
        if !t.starts_with("--") && t.contains('s') {
            return w.opaque(part, "runs code from its input");
        }
        i += 1;
    }
    let rest = args.get(i..).unwrap_or(&[]);
    let rest = match rest.first() {
        Some(a) if a.text() == "--" => &rest[1..],
        _ => rest,
    };
    match (code_flag, rest.first()) {
        (true, Some(code)) => code_arg(w, part, code),
        (true, None) => w.opaque(part, "runs code it is not given"),
        (false, Some(_)) => w.opaque(part, "runs a script file"),
        (false, None) => w.opaque(part, "runs code from its input"),
    }
}

/// `-c CODE` / `--command CODE` (`su`, `runuser`, `flock`): judges the code; false when there is
/// no such option.
fn command_option(w: &mut Walker<'_>, part: &str, args: &[Arg]) -> bool {
    let Some(i) = args
        .iter()
        .position(|a| a.text() == "-c" || a.text() == "--command")
    else {
        return false;
    };
    match args.get(i + 1) {
        Some(code) => code_arg(w, part, code),
        None => w.opaque(part, "runs code it is not given"),
    }
    true
}

/// An argument that is shell code: parsed and judged when it is literal.
fn code_arg(w: &mut Walker<'_>, part: &str, code: &Arg) {
    match &code.literal {
        Some(text) => w.script(text),
        None => w.opaque(part, "runs code that comes from an expansion"),
    }
}

/// `eval a b c`, `watch a b c`: the words joined are shell code.
fn code_from_args(w: &mut Walker<'_>, part: &str, args: &[Arg]) {
    let mut code = String::new();
    for a in args {
        match &a.literal {
            Some(t) => {
                code.push_str(t);
                code.push(' ');
            }
            None => return w.opaque(part, "runs code that comes from an expansion"),
        }
    }
    w.script(&code);
}

/// `xargs CMD ARGS`: the command gets more arguments from the input, which could be any flag, so
/// the command is judged by the worst rule its program has.
fn xargs(w: &mut Walker<'_>, part: &str, args: &[Arg]) {
    let rest = after_options(
        args,
        &[
            "-I",
            "-n",
            "-P",
            "-d",
            "-E",
            "-L",
            "-s",
            "-a",
            "--arg-file",
            "--delimiter",
            "--max-args",
            "--max-procs",
        ],
    );
    let Some((name, _)) = rest.split_first() else {
        return; // `xargs` alone runs echo.
    };
    let Some(program) = name.literal.as_deref() else {
        return w.opaque(part, "runs a program whose name comes from an expansion");
    };
    let base = program.rsplit('/').next().unwrap_or(program);
    run_words(w, rest);
    match w.rules.worst_for(base) {
        Some(class) => w
            .out
            .add(class, part, "a command given more arguments from its input"),
        None => w.opaque(part, "sshkeep has no rule for this program"),
    }
}

/// `find ... -exec CMD {} ;`: each command it runs is judged.
fn find_exec(w: &mut Walker<'_>, args: &[Arg]) {
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text();
        if matches!(t, "-exec" | "-execdir" | "-ok" | "-okdir") {
            let start = i + 1;
            let mut end = start;
            while end < args.len() && !matches!(args[end].text(), ";" | "+") {
                end += 1;
            }
            run_words(w, &args[start..end.min(args.len())]);
            i = end + 1;
        } else {
            i += 1;
        }
    }
}

/// `sed`: `-i` is in the table; scripts that write files (`w`) or run commands (`e`) are opaque.
fn sed(w: &mut Walker<'_>, part: &str, args: &[Arg]) {
    let mut scripts = Vec::new();
    let mut i = 0;
    let mut explicit = false;
    while i < args.len() {
        let t = args[i].text();
        if t == "-e" || t == "--expression" {
            explicit = true;
            if let Some(s) = args.get(i + 1) {
                scripts.push(s);
            }
            i += 2;
            continue;
        }
        if t == "-f" || t.starts_with("--file") {
            return w.opaque(part, "runs a sed script from a file");
        }
        i += 1;
    }
    if !explicit && let Some(first) = args.iter().find(|a| !a.text().starts_with('-')) {
        scripts.push(first);
    }
    for s in scripts {
        match &s.literal {
            Some(text) if !sed_runs_or_writes(text) => {}
            Some(_) => w.opaque(part, "the sed script writes files or runs commands"),
            None => w.opaque(part, "the sed script comes from an expansion"),
        }
    }
}

/// Whether a sed script has a command that writes a file or runs one (`w`, `W`, `e`, or the `s`
/// flags `w` and `e`). Splitting on `;` is rough; a rough split can only call a script opaque.
fn sed_runs_or_writes(script: &str) -> bool {
    for segment in script.split([';', '\n']) {
        let mut chars = segment.trim_start().chars().peekable();
        // Skip the address: line numbers, `$`, `/regex/`, ranges, `!`.
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() || matches!(c, ',' | '$' | '!' | ' ' | '~' | '+') {
                chars.next();
            } else if c == '/' {
                chars.next();
                skip_past(&mut chars, '/', 1);
            } else {
                break;
            }
        }
        match chars.next() {
            Some('w' | 'W' | 'e') => return true,
            Some('s') => {
                let Some(delim) = chars.next() else { continue };
                // Past the pattern and the replacement: what is left are the flags.
                skip_past(&mut chars, delim, 2);
                let flags: String = chars.collect();
                if flags.contains('w') || flags.contains('e') {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Consumes characters up to and including the `count`th unescaped `delim`.
fn skip_past(chars: &mut impl Iterator<Item = char>, delim: char, count: usize) {
    let mut seen = 0;
    let mut escaped = false;
    for c in chars {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == delim {
            seen += 1;
            if seen == count {
                return;
            }
        }
    }
}

/// `awk`: programs that call `system`, pipe, or print into files are opaque.
fn awk(w: &mut Walker<'_>, part: &str, args: &[Arg]) {
    let mut i = 0;
    let mut program = None;
    while i < args.len() {
        let t = args[i].text();
        if t == "-f" || t.starts_with("--file") {
            return w.opaque(part, "runs an awk program from a file");
        }
        if t == "-v" || t == "-F" {
            i += 2;
            continue;
        }
        if !t.starts_with('-') {
            program = Some(&args[i]);
            break;
        }
        i += 1;
    }
    let Some(program) = program else { return };
    match &program.literal {
        Some(text) => {
            let writes = text.contains("print") && text.contains('>');
            if text.contains("system") || text.contains('|') || writes {
                w.opaque(part, "the awk program runs commands or writes files");
            }
        }
        None => w.opaque(part, "the awk program comes from an expansion"),
    }
}
