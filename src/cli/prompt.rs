//! Reading passphrases: from a file named by the user, or from the terminal (never echoed).

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::protocol::SecretString;

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
