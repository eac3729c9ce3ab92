//! Whether the user is present: owner actions (approving an agent's request, changing profiles,
//! trusting a changed host key, removing or rotating keys) are the user's alone, so the broker
//! asks for more than a connection to its socket, which any process of the user can make.
//!
//! The model is sudo's: the client must run in the foreground of a terminal (its controlling
//! terminal's foreground process group), and prove it knows the vault secret: the passphrase,
//! typed at that terminal and checked against `master.age` (passphrase vaults), or a click on a
//! desktop confirmation (`SSH_ASKPASS`, keyring vaults).
//!
//! Unlike sudo, a proof is not remembered for the terminal: AI agents' shell tools often run in
//! the user's own terminal session and foreground process group (a coding agent started in a
//! terminal spawns its commands there), so a per-terminal timestamp would let the agent ride on
//! the user's last approval. Each decision needs the secret; one approval can instead grant the
//! exact command for some minutes.
//!
//! What this cannot stop (threat-model.md says it too): a process of the user can make itself a
//! terminal (`script`), so the terminal check only keeps out agents' tool calls that have none;
//! the secret is the real bar, and a passphrase file that a same-user process can read gives it
//! away.

use std::sync::Arc;

use sshkeep_vault::{Backend, SecretString, VaultError};

use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer};
use crate::protocol::ErrorCode;

/// What `/proc/PID/stat` says of a process's terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StatTerminal {
    tty: u64,
    /// The process group in the terminal's foreground, and the process's own.
    foreground: i64,
    group: i64,
}

/// Parses the fields of `/proc/PID/stat` that matter here. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from its last `)`.
fn parse_stat(stat: &str) -> Option<StatTerminal> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8).
    Some(StatTerminal {
        group: f.get(2)?.parse().ok()?,
        tty: f.get(4)?.parse().ok()?,
        foreground: f.get(5)?.parse().ok()?,
    })
}

fn stat_of(pid: u32) -> Option<StatTerminal> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Checks that `pid` runs in the foreground of a terminal; says why not.
pub fn in_foreground_of_a_terminal(pid: u32) -> Result<(), &'static str> {
    let st = stat_of(pid).ok_or("the client process cannot be inspected")?;
    if st.tty == 0 {
        return Err("the client has no terminal");
    }
    if st.foreground != st.group {
        return Err("the client is not in the foreground of its terminal");
    }
    Ok(())
}

/// How the user proved presence, for the audit record.
fn describe(peer: &Peer, how: &str) -> String {
    let tty = peer
        .pid
        .and_then(|p| std::fs::read_link(format!("/proc/{p}/fd/0")).ok())
        .map(|p| p.display().to_string())
        .filter(|p| p.starts_with("/dev/"))
        .unwrap_or_else(|| "a terminal".into());
    let pid = peer.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    format!("the user at {tty}{pid}, {how}")
}

/// Checks that the user is present for `what` (words for the desktop prompt). Blocking: a
/// passphrase check takes about a second, a desktop prompt as long as the user takes.
/// Returns who decided, in words, for the audit record.
pub fn require(
    core: &Core,
    peer: &Peer,
    passphrase: Option<&SecretString>,
    what: &str,
) -> Result<String, Fail> {
    let pid = peer
        .pid
        .ok_or_else(|| not_present("the client process is unknown"))?;
    in_foreground_of_a_terminal(pid).map_err(not_present)?;
    let no_vault = || {
        Fail::new(
            ErrorCode::VaultMissing,
            "there is no vault yet: run `sshkeep vault init`",
        )
    };
    let backend = core.vault()?.as_ref().ok_or_else(no_vault)?.backend();
    let how = match backend {
        Backend::Passphrase => {
            let pass = passphrase.ok_or_else(|| {
                Fail::new(
                    ErrorCode::PassphraseRequired,
                    "this needs you present: type the vault passphrase at your terminal",
                )
            })?;
            let vault = core.vault()?;
            let vault = vault.as_ref().ok_or_else(no_vault)?;
            vault.verify_passphrase(pass).map_err(|e| match e {
                VaultError::WrongPassphrase => Fail::new(
                    ErrorCode::WrongPassphrase,
                    "wrong vault passphrase: nothing was done",
                ),
                other => Fail::from(other),
            })?;
            "with the vault passphrase"
        }
        Backend::Keyring => match crate::broker::core::confirm::confirm(what) {
            Ok(true) => "confirmed on the desktop",
            Ok(false) => {
                return Err(Fail::new(
                    ErrorCode::PermissionDenied,
                    "the desktop confirmation was declined: nothing was done",
                ));
            }
            Err(why) => {
                return Err(not_present(&format!(
                    "this keyring vault confirms owner actions on the desktop, and {why}"
                )));
            }
        },
    };
    Ok(describe(peer, how))
}

/// [`require`] off the async runtime.
pub async fn present(
    core: &Arc<Core>,
    peer: &Peer,
    passphrase: Option<crate::protocol::SecretString>,
    what: String,
) -> Result<String, Fail> {
    let (core, peer) = (core.clone(), peer.clone());
    tokio::task::spawn_blocking(move || {
        let pass = passphrase.map(SecretString::from);
        require(&core, &peer, pass.as_ref(), &what)
    })
    .await
    .map_err(|e| Fail::new(ErrorCode::Internal, format!("presence check failed: {e}")))?
}

fn not_present(why: &str) -> Fail {
    Fail::new(
        ErrorCode::PermissionDenied,
        format!(
            "this is the user's to decide, in person: {why}. Run it yourself in your own terminal"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4242 (evil) 1 2 3 4) S 1 4242 4242 34816 4242 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        let st = parse_stat(stat).expect("parse");
        assert_eq!(st.group, 4242);
        assert_eq!(st.tty, 34816);
        assert_eq!(st.foreground, 4242);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn a_process_without_a_terminal_is_not_present() {
        // setsid: a new session with no controlling terminal, as an agent's tool call has.
        let mut child = std::process::Command::new("setsid")
            .args(["sleep", "5"])
            .spawn()
            .expect("setsid");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let r = in_foreground_of_a_terminal(child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(r, Err("the client has no terminal"));
    }
}
