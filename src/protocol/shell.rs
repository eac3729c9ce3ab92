//! Requests and replies of interactive shells: PTY sessions the broker holds, which agents drive
//! with send/key/read/wait and people attach to with `sshkeep shell`.

use serde::{Deserialize, Serialize};

use super::ShellState;

/// Open a shell.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShellSpec {
    pub target: String,
    pub key: Option<String>,
    pub cols: u16,
    pub rows: u16,
    pub term: String,
    /// Run the shell inside tmux on the server so it survives reconnects (`None`: when tmux is
    /// there).
    pub persist: Option<bool>,
}

/// A shell's state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShellInfo {
    pub shell_id: String,
    pub target: String,
    pub session_id: String,
    pub cols: u16,
    pub rows: u16,
    pub term: String,
    pub state: ShellState,
    /// Runs inside tmux on the server and survives a dropped connection.
    pub persistent: bool,
    /// Why the shell is or is not persistent.
    pub persistence: String,
    pub exit_code: Option<u32>,
    /// Output offset now: pass it as `cursor` to read or wait for what comes next.
    pub cursor: u64,
    pub reconnects: u32,
    pub created_ms: i64,
    pub clients_attached: u32,
}

/// Output of a shell since a cursor, or its screen.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShellOutput {
    pub shell_id: String,
    /// Text since the cursor, terminal control sequences removed.
    pub text: String,
    /// Where the returned text starts (later than asked if older output left memory: read
    /// it from the stored log).
    pub from_cursor: u64,
    /// Pass this as `cursor` next time.
    pub cursor: u64,
    /// More output follows the cap.
    pub more: bool,
    /// The screen as a terminal emulator shows it now (rows joined by newlines).
    pub screen: Option<String>,
    pub state: ShellState,
    /// Whether `wait` found its pattern (absent for `read`).
    pub matched: Option<bool>,
    /// The text the pattern matched.
    pub matched_text: Option<String>,
}
