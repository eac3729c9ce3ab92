//! The shell text sshkeep sends to servers around a user's command.
//!
//! Only the user's command is ever interpreted as shell code. Everything else that reaches a
//! remote shell (working directory, environment values, spool paths) is single-quoted here, and
//! environment names are validated. Scripts assume a POSIX shell on the server; the user's
//! command itself runs in their login shell, as with `ssh host CMD`.

use crate::protocol::RunOptions;

/// The first line an attached command prints: its process group id (the login shell sshd
/// starts is a session leader, so its pid is its process group).
pub const PGID_MARK: &[u8] = b"\x1esshkeep-pgid:";

/// Quotes `s` for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Checks an environment variable name.
pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

/// The longest command timeout: 30 days (longer work runs detached, without one).
pub const MAX_TIMEOUT_SECS: u64 = 30 * 86_400;

/// Refuses text that cannot be sent to a server: a NUL byte ends a string inside sshd, which
/// then drops the whole connection (and every other command on it).
pub fn check_text(what: &str, s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return Err(format!(
            "{what} contains a NUL byte, which cannot be sent to a server: remove it"
        ));
    }
    Ok(())
}

/// Checks the commands of a run at the door.
pub fn check_commands<S: AsRef<str>>(commands: &[S]) -> Result<(), String> {
    commands
        .iter()
        .try_for_each(|c| check_text("the command", c.as_ref()))
}

/// Checks a run's options at the door: text a server can carry, a timeout within bounds.
pub fn check_options(opts: &RunOptions) -> Result<(), String> {
    if let Some(cwd) = &opts.cwd {
        check_text("the working directory (cwd)", cwd)?;
    }
    for (k, v) in &opts.env {
        if !valid_env_name(k) {
            return Err(format!("invalid environment variable name {k:?}"));
        }
        check_text(&format!("the value of environment variable {k}"), v)?;
    }
    if let Some(t) = opts.timeout_secs
        && !(1..=MAX_TIMEOUT_SECS).contains(&t)
    {
        return Err(format!(
            "timeout must be between 1 and {MAX_TIMEOUT_SECS} seconds (30 days), not {t}; run longer work detached"
        ));
    }
    Ok(())
}

/// `cd` and `export` lines for the options.
pub fn prelude(opts: &RunOptions) -> Result<String, String> {
    check_options(opts)?;
    let mut s = String::new();
    if let Some(cwd) = &opts.cwd {
        s.push_str(&format!("cd -- {} || exit 1\n", quote(cwd)));
    }
    for (k, v) in &opts.env {
        if !valid_env_name(k) {
            return Err(format!("invalid environment variable name {k:?}"));
        }
        s.push_str(&format!("{k}={}; export {k}\n", quote(v)));
    }
    Ok(s)
}

/// An attached command: report the process group, apply the options, run the command.
pub fn attached(command: &str, opts: &RunOptions) -> Result<String, String> {
    check_text("the command", command)?;
    Ok(format!(
        "printf '\\036sshkeep-pgid:%s\\n' \"$$\" >&2\n{}{command}",
        prelude(opts)?
    ))
}

/// What [`kill_group`] prints last when the group is gone.
pub const GROUP_GONE: &str = "sshkeep-group-gone";
/// What [`kill_group`] prints last when the group survived TERM and KILL.
pub const GROUP_ALIVE: &str = "sshkeep-group-alive";

/// Kills a process group: TERM, up to 2 s for it to go, then KILL, then reports whether the
/// group is gone. The signal is written as `-TERM -PGID` with no `--`: dash's `kill` builtin
/// (Debian's `/bin/sh`) rejects `--` and `-s NAME` before a negative id, bash and zsh take both.
pub fn kill_group(pgid: i64) -> String {
    format!(
        "kill -TERM -{pgid} 2>/dev/null; i=0; while kill -0 -{pgid} 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; \
         if kill -0 -{pgid} 2>/dev/null; then kill -KILL -{pgid} 2>/dev/null; sleep 0.2; fi; \
         if kill -0 -{pgid} 2>/dev/null; then echo {GROUP_ALIVE}; else echo {GROUP_GONE}; fi"
    )
}

/// The spool directory of a detached command on the server, relative to the login directory.
pub fn spool(command_id: &str) -> String {
    format!(".cache/sshkeep/jobs/{command_id}")
}

/// Creates the spool and stores the job script read from standard input.
pub fn detached_prepare(spool: &str) -> String {
    format!(
        "umask 077 && mkdir -p {d} && cat > {d}/job.sh && : > {d}/in",
        d = quote(spool)
    )
}

/// Stores standard input for the job.
pub fn detached_stdin(spool: &str) -> String {
    format!("cat > {}/in", quote(spool))
}

/// The job script: the options, then each command in order, stopping at the first failure.
pub fn detached_job(commands: &[String], opts: &RunOptions) -> Result<String, String> {
    let mut s = prelude(opts)?;
    for c in commands {
        s.push_str(c);
        s.push_str("\nsshkeep_rc=$?; [ \"$sshkeep_rc\" -eq 0 ] || exit \"$sshkeep_rc\"\n");
    }
    Ok(s)
}

/// Starts the job in its own session (so it outlives the SSH connection and can be killed as a
/// group), records its exit status in `exit` when it ends, and prints its process group id.
pub fn detached_launch(spool: &str) -> String {
    format!(
        "cd {d} || exit 1\n\
         command -v setsid >/dev/null 2>&1 || {{ echo 'setsid not found on the server (util-linux): detach needs it' >&2; exit 127; }}\n\
         setsid sh -c 'echo $$ > pgid.tmp && mv pgid.tmp pgid; sh ./job.sh < in > out 2> err; echo $? > exit.tmp; mv exit.tmp exit' \
         </dev/null >/dev/null 2>&1 &\n\
         i=0; while [ ! -s pgid ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done\n\
         cat pgid",
        d = quote(spool)
    )
}

/// Exit status of the follower when the job disappeared without recording its own.
pub const VANISHED: u32 = 254;

/// Streams the job's output from the given byte offsets until it ends, then exits with the job's
/// status. Output written before `exit` appeared is always sent before the follower exits.
pub fn follower(spool: &str, out_offset: u64, err_offset: u64) -> String {
    format!(
        "cd {d} || exit {VANISHED}\n\
         o={out_offset}; e={err_offset}\n\
         while :; do\n\
           if [ -f exit ]; then fin=1; else fin=0; fi\n\
           so=$(($(wc -c < out 2>/dev/null || echo 0))); se=$(($(wc -c < err 2>/dev/null || echo 0)))\n\
           if [ \"$so\" -gt \"$o\" ]; then tail -c +$((o+1)) out | head -c $((so-o)); o=$so; fi\n\
           if [ \"$se\" -gt \"$e\" ]; then tail -c +$((e+1)) err | head -c $((se-e)) >&2; e=$se; fi\n\
           if [ $fin = 1 ]; then exit \"$(cat exit)\"; fi\n\
           if ! kill -0 \"$(cat pgid 2>/dev/null || echo 0)\" 2>/dev/null && [ ! -f exit ]; then exit {VANISHED}; fi\n\
           sleep 0.2\n\
         done",
        d = quote(spool)
    )
}

/// Removes the spool directory after the job ended and its output was collected.
pub fn detached_cleanup(spool: &str) -> String {
    format!("rm -rf -- {}", quote(spool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_every_shell_character() {
        let nasty = "a'b\"c$(d)`e`\\f;g|h&i\nj";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote(nasty)))
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), nasty);
    }

    #[test]
    fn env_names_are_validated() {
        let mut o = RunOptions::default();
        o.env.insert("GOOD_1".into(), "x y".into());
        assert!(prelude(&o).is_ok());
        o.env.insert("BAD;rm".into(), "x".into());
        assert!(prelude(&o).is_err());
    }

    #[test]
    fn prelude_and_attached_run_in_sh() {
        let mut o = RunOptions {
            cwd: Some("/".into()),
            ..Default::default()
        };
        o.env.insert("SSHKEEP_T".into(), "it's $HOME".into());
        let script = attached("pwd; echo \"$SSHKEEP_T\"", &o).expect("script");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/\nit's $HOME\n");
        assert!(out.stderr.starts_with(PGID_MARK));
    }
}
