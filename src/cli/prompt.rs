//! Reading passphrases: from a file named by the user, or from the terminal (never echoed);
//! and a server's login questions (a one-time code), asked of the person at the terminal.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::protocol::{LoginPrompt, SecretString};

/// Reads a passphrase file, dropping one trailing newline.
pub fn from_file(path: &Path) -> Result<SecretString> {
    let mut s =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
    Ok(SecretString::new(s))
}

/// The passphrase from `SSHKEEP_PASSPHRASE_FILE`, if that is set.
pub fn from_env() -> Result<Option<SecretString>> {
    match std::env::var_os("SSHKEEP_PASSPHRASE_FILE").filter(|v| !v.is_empty()) {
        Some(p) => from_file(Path::new(&p))
            .map(Some)
            .context("SSHKEEP_PASSPHRASE_FILE"),
        None => Ok(None),
    }
}

/// Asks on the terminal. `hint` says what to do when there is no terminal.
pub fn ask(prompt: &str, hint: &str) -> Result<SecretString> {
    match rpassword::prompt_password(prompt) {
        Ok(p) => Ok(SecretString::new(p)),
        Err(_) => bail!("no terminal to ask for the passphrase on: {hint}"),
    }
}

/// Below this many characters a new passphrase gets a warning: the vault's files can be
/// attacked offline by whoever copies them.
const SHORT_PASSPHRASE: usize = 12;

/// Asks for a new passphrase and then for it again, up to three times until both agree; warns
/// when it is short.
pub fn ask_new(what: &str, hint: &str) -> Result<SecretString> {
    for attempt in 1..=3 {
        let a = ask(&format!("New {what}: "), hint)?;
        if a.is_empty() {
            eprintln!("The passphrase must not be empty; try again.");
            continue;
        }
        if a.expose().chars().count() < SHORT_PASSPHRASE {
            eprintln!(
                "Warning: a passphrase under {SHORT_PASSPHRASE} characters is weak against an offline attack on a copied vault; several words are better."
            );
        }
        let b = ask(&format!("Repeat the {what}: "), hint)?;
        if a.expose() == b.expose() {
            return Ok(a);
        }
        if attempt < 3 {
            eprintln!("The two passphrases differ; try again.");
        }
    }
    bail!("the passphrases did not match three times; nothing was changed")
}

/// Whether a person is at this terminal to answer a server's login questions: standard input
/// and standard error are terminals and `/dev/tty` opens. Scripts, pipes and agents that run
/// the CLI without a terminal never are.
pub fn person_here() -> bool {
    std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
        && std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_ok()
}

/// A server's text without control characters (a server must not drive the terminal).
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// Shows a server's login questions on `/dev/tty` and reads the answers there: echoed as they
/// are typed only when the server allows it. The answers are wiped when dropped.
pub fn login_answers(p: &LoginPrompt) -> Result<Vec<SecretString>> {
    let mut tty = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to answer the login questions on")?;
    writeln!(tty, "sshkeep: {} asks at login:", printable(&p.server))?;
    for text in [&p.name, &p.instructions] {
        if !text.trim().is_empty() {
            writeln!(tty, "{}", printable(text.trim_end()))?;
        }
    }
    let mut answers = Vec::new();
    for q in &p.questions {
        let text = printable(&q.text);
        let answer = if q.echo {
            write!(tty, "{text}")?;
            tty.flush()?;
            read_line(&mut tty)?
        } else {
            rpassword::prompt_password(&text).context("cannot read the answer")?
        };
        answers.push(SecretString::new(answer));
    }
    Ok(answers)
}

/// One line from the terminal, byte by byte (nothing read past it), without its newline.
fn read_line(tty: &mut std::fs::File) -> Result<String> {
    let mut line = zeroize::Zeroizing::new(Vec::new());
    let mut b = [0u8; 1];
    loop {
        match tty.read(&mut b).context("cannot read the answer")? {
            0 => bail!("the terminal closed before the answer"),
            _ if b[0] == b'\n' => break,
            _ => line.push(b[0]),
        }
    }
    while line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line.to_vec()).context("the answer is not UTF-8")
}
