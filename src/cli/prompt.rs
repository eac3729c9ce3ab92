//! Reading passphrases: from a file named by the user, or from the terminal (never echoed).

use std::path::Path;

use anyhow::{Context, Result, bail};
use sshkeep_vault::SecretString;

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

/// Asks twice for a new passphrase and checks both agree.
pub fn ask_new(what: &str, hint: &str) -> Result<SecretString> {
    let a = ask(&format!("New {what}: "), hint)?;
    if a.is_empty() {
        bail!("the passphrase must not be empty");
    }
    let b = ask(&format!("Repeat the {what}: "), hint)?;
    if a.expose() != b.expose() {
        bail!("the two passphrases differ; nothing was changed");
    }
    Ok(a)
}
