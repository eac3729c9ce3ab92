//! Requests and replies of file transfer (`sftp`) and file edits (`file`). Remote paths travel
//! as data in SFTP packets, never as shell text.

use serde::{Deserialize, Serialize};

use super::EntryKind;

/// One SFTP operation on a target.
#[derive(Debug, Serialize, Deserialize)]
pub struct SftpRequest {
    /// A connection name or `user@host[:port]`; its reusable session is used or opened.
    pub target: String,
    pub key: Option<String>,
    pub action: SftpAction,
    /// Local directories the operation may read or write under (the MCP adapter sets them);
    /// `None`: any path the broker's user may use (the CLI).
    pub local_roots: Option<Vec<String>>,
    /// Send [`super::Response::Progress`] frames while a transfer runs.
    pub progress: bool,
}

/// What to do. Local paths are absolute (clients resolve them against their working directory).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SftpAction {
    Upload {
        local: String,
        remote: String,
        recursive: bool,
        verify: bool,
    },
    Download {
        remote: String,
        local: String,
        recursive: bool,
        verify: bool,
    },
    List {
        path: String,
    },
    Stat {
        path: String,
    },
    Mkdir {
        path: String,
        parents: bool,
    },
    Remove {
        path: String,
        recursive: bool,
    },
    Rename {
        from: String,
        to: String,
    },
    Chmod {
        path: String,
        mode: u32,
    },
}

/// A remote directory entry or `stat` result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoteEntry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Permission bits, e.g. 0o644 (shown in octal by clients).
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Seconds since the epoch.
    pub mtime: Option<u32>,
}

/// The outcome of an upload or download.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TransferReport {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub elapsed_ms: u64,
    /// Entries not copied (symlinks, devices), with the reason.
    pub skipped: Vec<String>,
    /// Every file's size and SHA-256 matched on both ends (`None` when not asked).
    pub verified: Option<bool>,
    /// The SHA-256 of a single copied file.
    pub sha256: Option<String>,
}

/// One file edit on a target, done over SFTP.
#[derive(Debug, Serialize, Deserialize)]
pub struct FileRequest {
    pub target: String,
    pub key: Option<String>,
    pub action: FileAction,
}

/// Where a line edit applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineEdit {
    InsertBefore,
    InsertAfter,
    Replace,
    Delete,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FileAction {
    /// Text of a file, or of a line range; refused above `max_bytes`.
    Read {
        path: String,
        from_line: Option<u64>,
        to_line: Option<u64>,
        max_bytes: Option<u64>,
    },
    /// Replace the whole file atomically (temp file in the same directory, then rename).
    Write {
        path: String,
        content: String,
        backup: bool,
        /// Permission bits for a new file (an existing file keeps its own).
        mode: Option<u32>,
    },
    /// Exact text replacement; changes nothing unless `old` occurs exactly `expected_count` times.
    Replace {
        path: String,
        old: String,
        new: String,
        expected_count: u64,
        backup: bool,
    },
    /// Insert, replace or delete a line given by number or by a pattern that must match exactly
    /// `expected_count` lines.
    EditLine {
        path: String,
        edit: LineEdit,
        line: Option<u64>,
        pattern: Option<String>,
        content: Option<String>,
        expected_count: u64,
        backup: bool,
    },
}

/// A file's text as read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileText {
    pub path: String,
    pub content: String,
    pub size: u64,
    pub total_lines: u64,
    pub from_line: u64,
    pub to_line: u64,
}

/// What an edit did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileChange {
    pub path: String,
    /// Size after the edit.
    pub size: u64,
    /// Occurrences replaced or lines edited.
    pub changed: u64,
    /// Where the previous content was saved.
    pub backup: Option<String>,
    /// The file did not exist before (write).
    pub created: bool,
}
