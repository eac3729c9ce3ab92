//! Asking the user before a key signs, the way OpenSSH's ssh-agent does: the `SSH_ASKPASS`
//! program (or ssh-askpass) with `SSH_ASKPASS_PROMPT=confirm`, which needs a display unless
//! `SSH_ASKPASS_REQUIRE=force`. When no prompt can be shown the answer is no.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::broker::core::Peer;

/// How long a prompt may stay open.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Asks whether `key` may sign for `peer`. `Err` says why no prompt could be shown.
pub fn ask(key: &str, fingerprint: Option<&str>, peer: &Peer) -> Result<bool, String> {
    let who = match (&peer.exe, peer.pid) {
        (Some(exe), Some(pid)) => format!("{exe} (pid {pid})"),
        (None, Some(pid)) => format!("pid {pid}"),
        _ => "an unknown process".into(),
    };
    let key = match fingerprint {
        Some(fp) => format!("'{key}' ({fp}, added by ssh-add)"),
        None => format!("'{key}'"),
    };
    confirm(&format!("Allow use of sshkeep key {key} by {who}?"))
}

/// Shows `question` with a yes/no answer. `Err` says why no prompt could be shown.
pub fn confirm(question: &str) -> Result<bool, String> {
    let askpass = std::env::var_os("SSH_ASKPASS")
        .filter(|p| !p.is_empty())
        .or_else(|| {
            [
                "/usr/bin/ssh-askpass",
                "/usr/lib/ssh/ssh-askpass",
                "/usr/libexec/openssh/ssh-askpass",
            ]
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .map(Into::into)
        })
        .ok_or("no SSH_ASKPASS program to ask with")?;
    let forced = std::env::var("SSH_ASKPASS_REQUIRE").is_ok_and(|v| v == "force");
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if !forced && !display {
        return Err(
            "no display for the confirmation prompt (DISPLAY / WAYLAND_DISPLAY unset)".into(),
        );
    }
    let mut child = Command::new(&askpass)
        .arg(question)
        .env("SSH_ASKPASS_PROMPT", "confirm")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run the confirmation program: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status.success()),
            Ok(None) if started.elapsed() > PROMPT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(false);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("the confirmation program failed: {e}")),
        }
    }
}
