//! Reading passphrases: from a file named by the user, or from the terminal (never echoed);
//! and a server's login questions (a one-time code), asked of the person at the terminal.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use zeroize::Zeroize;

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

/// At most this many characters of each server text are shown.
const MAX_TEXT: usize = 512;

/// Whether `c` is a Unicode format character (category Cf: bidirectional overrides and
/// isolates, zero-width characters, tags), which reorder or hide what a terminal shows.
fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2
        | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

/// A server's text as shown: no control or format characters (a server must not drive or
/// disguise the terminal), tabs as spaces, at most [`MAX_TEXT`] characters, each line
/// (a question: its one line) starting with "server: " so that nothing a server sends looks
/// like sshkeep's own words.
fn shown(s: &str, one_line: bool) -> String {
    let mut clean = String::new();
    for (n, c) in s
        .chars()
        .filter(|c| !is_format(*c) && (!c.is_control() || matches!(c, '\n' | '\t')))
        .enumerate()
    {
        if n == MAX_TEXT {
            clean.push_str("...");
            break;
        }
        clean.push(match c {
            '\t' => ' ',
            '\n' if one_line => ' ',
            c => c,
        });
    }
    clean
        .split('\n')
        .map(|line| format!("server: {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Shows a server's login questions on `/dev/tty` and reads the answers there: echoed as they
/// are typed only when the server allows it. The answers are wiped when dropped.
pub fn login_answers(p: &LoginPrompt) -> Result<Vec<SecretString>> {
    let mut tty = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to answer the login questions on")?;
    writeln!(
        tty,
        "sshkeep: {} asks at login (its words follow \"server:\"):",
        shown(&p.server, true).trim_start_matches("server: ")
    )?;
    for text in [&p.name, &p.instructions] {
        if !text.trim().is_empty() {
            writeln!(tty, "{}", shown(text.trim_end(), false))?;
        }
    }
    let mut answers = Vec::new();
    for q in &p.questions {
        write!(tty, "{}", shown(&q.text, true))?;
        tty.flush()?;
        let answer = if q.echo {
            read_line(&mut tty)?
        } else {
            let state = crate::system::TtyState::save()
                .context("no terminal to answer the login questions on")?;
            state.echo_off().context("cannot turn echo off")?;
            let line = read_line(&mut tty);
            drop(state);
            writeln!(tty)?;
            line?
        };
        answers.push(SecretString::new(answer));
    }
    Ok(answers)
}

/// One line from the terminal, byte by byte (nothing read past it), without its newline. Every
/// copy of the typed bytes is wiped, the answer's too when it is not UTF-8.
fn read_line(tty: &mut impl Read) -> Result<String> {
    // Room up front: a vector that grows would leave copies of the bytes behind.
    let mut line = zeroize::Zeroizing::new(Vec::with_capacity(1024));
    let mut b = [0u8; 1];
    loop {
        match tty.read(&mut b).context("cannot read the answer")? {
            0 => bail!("the terminal closed before the answer"),
            _ if b[0] == b'\n' => break,
            _ => line.push(b[0]),
        }
    }
    b.zeroize();
    while line.last() == Some(&b'\r') {
        line.pop();
    }
    match String::from_utf8(std::mem::take(&mut *line)) {
        Ok(s) => Ok(s),
        Err(e) => {
            let mut bytes = e.into_bytes();
            bytes.zeroize();
            bail!("the answer is not UTF-8")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_TEXT, read_line, shown};

    #[test]
    fn a_server_text_cannot_hide_reorder_or_pose_as_sshkeep() {
        // Bidi override, zero-width space and joiner, BOM, escape and bell are gone.
        assert_eq!(
            shown(
                "Code\u{202E}tpircs\u{200B}\u{200D}\u{FEFF}\x1b[2J\x07: ",
                true
            ),
            "server: Codetpircs[2J: "
        );
        // A question's newlines cannot start a line of its own.
        assert_eq!(
            shown("Code:\nsshkeep: vault passphrase: ", true),
            "server: Code: sshkeep: vault passphrase: "
        );
        // Instructions keep their lines, each marked as the server's.
        assert_eq!(
            shown("line one\nsshkeep: unlock the vault", false),
            "server: line one\nserver: sshkeep: unlock the vault"
        );
        let long = shown(&"x".repeat(10_000), true);
        assert_eq!(long.len(), "server: ".len() + MAX_TEXT + 3);
    }

    #[test]
    fn an_answer_is_read_up_to_its_newline_and_must_be_utf8() {
        let mut input: &[u8] = b"123456\r\nrest";
        assert_eq!(read_line(&mut input).expect("line"), "123456");
        assert_eq!(input, b"rest");
        let mut bad: &[u8] = b"\xff\xfe\n";
        assert!(read_line(&mut bad).is_err());
    }
}
