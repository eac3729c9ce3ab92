//! The bytes of command output, in files of their own: one append-only file per command in an
//! owner-only directory beside the database (`sshkeep.db-output/`, named after the database
//! file as SQLite names its `-wal` and `-shm`), found through the `log_chunks` rows that index
//! them (`file_off`, `file_len`; see [`super::log_chunks`]).
//!
//! Output written as blobs went to disk three times (SQLite's write-ahead log, the database at
//! each checkpoint, and the writer's spill file whenever that made the writer slower than the
//! network). Appended to a file it is written once, and the rows SQLite keeps are a few bytes
//! per chunk.
//!
//! Order: a chunk's bytes are appended before its row is inserted, in the writer's transaction.
//! A crash (or a refused transaction) between the two leaves bytes that no row points at; they
//! are never read, and the next append goes after them. A file no row points at (a crash before
//! a command's first commit, or between a removal's commit and the file's deletion) is deleted
//! when the broker starts.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::PathBuf;

use rusqlite::Connection;

/// The directory holding the output files of the database `conn` is open on.
pub fn dir(conn: &Connection) -> io::Result<PathBuf> {
    match conn.path() {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(format!("{p}-output"))),
        _ => Err(io::Error::other(
            "an in-memory database keeps no output files",
        )),
    }
}

/// The file of command `cmd`. Command ids are the broker's own, but one that could name
/// anything but a plain file in the directory is refused all the same.
pub fn path(conn: &Connection, cmd: &str) -> io::Result<PathBuf> {
    let plain = !cmd.is_empty()
        && cmd.len() <= 128
        && cmd
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plain {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a command id that cannot name an output file",
        ));
    }
    Ok(dir(conn)?.join(cmd))
}

/// Appends `bytes` to `cmd`'s file (creating the directory and the file owner-only); returns
/// the offset they start at. A failed write is cut back, so the file only ever grows by whole
/// appends.
pub fn append(conn: &Connection, cmd: &str, bytes: &[u8]) -> io::Result<u64> {
    let path = path(conn, cmd)?;
    if let Some(parent) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| with_path(e, "open", &path))?;
    let off = f.metadata()?.len();
    if let Err(e) = f.write_all(bytes) {
        let _ = f.set_len(off);
        return Err(with_path(e, "write", &path));
    }
    Ok(off)
}

/// Deletes `cmd`'s file, if there is one. Called once the rows pointing into it are gone.
pub fn remove(conn: &Connection, cmd: &str) -> io::Result<()> {
    match std::fs::remove_file(path(conn, cmd)?) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Deletes the files no row points at; returns how many. Run before the writer starts.
pub fn remove_orphans(conn: &Connection) -> anyhow::Result<usize> {
    let dir = dir(conn)?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut used = conn.prepare(
        "SELECT EXISTS (SELECT 1 FROM log_chunks WHERE command_id = ?1 AND file_off IS NOT NULL)",
    )?;
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(cmd) = name.to_str() else { continue };
        if !used.query_row([cmd], |r| r.get::<_, bool>(0))? {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Reads stretches of one command's file, opening it once.
pub struct Reader<'c> {
    conn: &'c Connection,
    cmd: String,
    file: Option<(File, PathBuf)>,
}

impl<'c> Reader<'c> {
    pub fn new(conn: &'c Connection, cmd: &str) -> Self {
        Self {
            conn,
            cmd: cmd.to_string(),
            file: None,
        }
    }

    /// Fills `buf` with the `len` bytes at `off`.
    pub fn read(&mut self, off: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        if self.file.is_none() {
            let path = path(self.conn, &self.cmd)?;
            let f = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| with_path(e, "open", &path))?;
            self.file = Some((f, path));
        }
        let Some((f, path)) = &self.file else {
            return Err(io::Error::other("output file not open"));
        };
        buf.clear();
        buf.resize(len, 0);
        f.read_exact_at(buf, off).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{} is shorter than the index of this command's output says (its end was lost, as in a power failure before the disk had it)",
                        path.display()
                    ),
                )
            } else {
                with_path(e, "read", path)
            }
        })
    }
}

fn with_path(e: io::Error, action: &str, path: &std::path::Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {action} {}: {e}", path.display()))
}
