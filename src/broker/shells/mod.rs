//! Interactive shells: PTY sessions the broker holds. Agents drive them with send / key / read /
//! wait; people attach a real terminal (`sshkeep shell`). Output goes to a terminal emulator (for
//! the screen), to memory (for `read` and `wait` by cursor) and to the log store (for the same
//! filtered reads as commands). With tmux on the server, the shell runs inside a tmux session
//! and is re-attached after a reconnect.
//!
//! The requests on an open shell (send, key, read, wait, resize, signal, status, close) are here;
//! opening and re-adopting are in [`open`], the shell itself in [`shell`].

mod attach;
mod driver;
mod keys;
mod open;
mod output;
mod recording;
mod shell;

use std::time::Duration;

use russh::Sig;

pub use attach::attach;
pub use open::{open, recover};
pub use shell::{Input, Shell, Shells};

use self::recording::Typist;
use crate::broker::core::fail::Fail;
pub(crate) use crate::broker::core::remote_script::probe;
use crate::broker::core::{Core, Peer};
use crate::protocol::{ErrorCode, Response};

const MAX_COLS: u16 = 1000;
const MAX_ROWS: u16 = 500;

fn check_size(cols: u16, rows: u16) -> Result<(), Fail> {
    if cols == 0 || rows == 0 || cols > MAX_COLS || rows > MAX_ROWS {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "terminal size {cols}x{rows} is out of range (1-{MAX_COLS} columns, 1-{MAX_ROWS} rows)"
            ),
        ));
    }
    Ok(())
}

/// The tmux session name of a shell (hex: safe in shell text).
fn tmux_name(id: &str) -> String {
    format!("sshkeep-{id}")
}

/// Types text, optionally followed by Enter.
pub fn send_text(shells: &Shells, id: &str, text: &str, enter: bool) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    if text.len() > 1024 * 1024 {
        return Err(Fail::new(
            ErrorCode::TooLarge,
            "text to send is over 1 MiB: upload a file with ssh_sftp instead",
        ));
    }
    let mut bytes = text.as_bytes().to_vec();
    if enter {
        bytes.push(b'\r');
    }
    shell.type_bytes(Typist::Agent, bytes)?;
    Ok(Response::Shell(shell.info()))
}

/// Presses a named key.
pub fn key(shells: &Shells, id: &str, name: &str) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    let app = shell.out(|o| o.application_cursor());
    let bytes = keys::bytes(name, app).ok_or_else(|| {
        Fail::new(
            ErrorCode::InvalidArgument,
            format!("unknown key {name:?}; keys: {}", keys::NAMES),
        )
    })?;
    shell.type_bytes(Typist::Agent, bytes)?;
    Ok(Response::Shell(shell.info()))
}

/// Output since a cursor, and the screen if asked.
pub fn read(
    shells: &Shells,
    id: &str,
    cursor: Option<u64>,
    screen: bool,
    max_bytes: Option<u64>,
) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    let max = max_bytes.unwrap_or(64 * 1024).clamp(256, 4 * 1024 * 1024) as usize;
    Ok(Response::ShellOutput(
        shell.output_reply(cursor, screen, max),
    ))
}

/// Waits for a pattern in the output after a cursor (or on the screen), or a timeout.
pub async fn wait(
    shells: &Shells,
    id: &str,
    pattern: &str,
    timeout_secs: u64,
    cursor: Option<u64>,
    screen: bool,
) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    let re = regex_lite::Regex::new(pattern).map_err(|e| {
        Fail::new(
            ErrorCode::InvalidArgument,
            format!("bad pattern {pattern:?}: {e}"),
        )
    })?;
    let from = cursor.unwrap_or_else(|| shell.facts(|f| f.input_cursor));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_secs.clamp(0, 3600));
    let mut rx = shell.changed.subscribe();
    loop {
        rx.borrow_and_update();
        let found = shell.out(|o| {
            if screen {
                let s = o.screen();
                re.find(&s).map(|m| (m.as_str().to_string(), o.cursor()))
            } else {
                let (text, start, _) = o.since(Some(from), usize::MAX);
                re.find(&text)
                    .map(|m| (m.as_str().to_string(), start + m.end() as u64))
            }
        });
        if let Some((matched, end)) = found {
            let mut r = shell.output_reply(Some(from), screen, 64 * 1024);
            if !screen {
                r.cursor = end.min(r.cursor.max(end));
            }
            r.matched = Some(true);
            r.matched_text = Some(matched);
            return Ok(Response::ShellOutput(r));
        }
        let over = shell.is_over();
        let timed_out = tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err();
        if over || timed_out {
            let mut r = shell.output_reply(Some(from), screen, 64 * 1024);
            r.matched = Some(false);
            return Ok(Response::ShellOutput(r));
        }
    }
}

pub fn resize(shells: &Shells, id: &str, cols: u16, rows: u16) -> Result<Response, Fail> {
    check_size(cols, rows)?;
    let shell = shells.get(id)?;
    shell.send(Input::Resize(cols, rows))?;
    shell.facts(|f| {
        f.cols = cols;
        f.rows = rows;
    });
    shell.out(|o| o.resize(rows, cols));
    Ok(Response::Shell(shell.info()))
}

/// Signal names accepted.
fn sig(name: &str) -> Option<Sig> {
    Some(
        match name
            .trim()
            .trim_start_matches("SIG")
            .to_ascii_uppercase()
            .as_str()
        {
            "INT" => Sig::INT,
            "TERM" => Sig::TERM,
            "KILL" => Sig::KILL,
            "HUP" => Sig::HUP,
            "QUIT" => Sig::QUIT,
            "USR1" => Sig::USR1,
            "ALRM" => Sig::ALRM,
            _ => return None,
        },
    )
}

/// Sends a signal: to the foreground job of a tmux shell's pane, else to the shell's process
/// (SSH `signal` request; use the key ctrl-c to interrupt a foreground program there).
pub async fn signal(shells: &Shells, id: &str, name: &str) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    let s = sig(name).ok_or_else(|| {
        Fail::new(
            ErrorCode::InvalidArgument,
            format!("unknown signal {name:?}: use INT, TERM, KILL, HUP, QUIT, USR1 or ALRM"),
        )
    })?;
    if shell.persistent {
        let name = format!("{s:?}");
        // The pane's terminal foreground process group gets the signal, as ctrl-c would.
        let script = format!(
            "p=$(tmux display-message -p -t {} '#{{pane_pid}}') && g=$(ps -o tpgid= -p \"$p\" | tr -d ' ') && kill -{name} -\"$g\"",
            tmux_name(&shell.id)
        );
        match probe(&shell.session, &script).await {
            Some((0, _)) => {}
            _ => {
                return Err(Fail::new(
                    ErrorCode::Ssh,
                    format!(
                        "could not signal the foreground job of shell {} (tmux or ps missing?)",
                        shell.id
                    ),
                ));
            }
        }
    } else {
        shell.send(Input::Signal(s))?;
    }
    Ok(Response::Shell(shell.info()))
}

pub fn status(shells: &Shells, id: &str) -> Result<Response, Fail> {
    Ok(Response::Shell(shells.get(id)?.info()))
}

/// Ends a shell (and its tmux session).
pub async fn close(
    broker: &Core,
    shells: &Shells,
    peer: &Peer,
    id: &str,
) -> Result<Response, Fail> {
    let shell = shells.get(id)?;
    if !shell.is_over() {
        let _ = shell.input.send(Input::Close);
        let mut rx = shell.changed.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !shell.is_over() {
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                break;
            }
        }
    }
    broker.audit(
        peer,
        "shell_close",
        None,
        shell.session.resolved.endpoint.conn_name.as_deref(),
        format!("shell {}", shell.id),
    )?;
    Ok(Response::Shell(shell.info()))
}
