//! Stored command output: a writer thread that stores it in chunks of whole lines (bytes in the
//! command's output file, [`crate::db::log_files`]; the index in SQLite, [`crate::db::log_chunks`]),
//! and filtered reads over those chunks.
//!
//! Output is split into lines as it arrives and numbered across both streams in arrival order.
//! Byte counts per stream count only what is committed as whole lines, so a detached command can
//! be re-attached from exactly where the log stops: no line lost, none twice.

mod command_lines;
mod queue;
mod reader;
mod writer;

use crate::protocol::LineStream;

pub use crate::db::log_chunks::last_line as total_lines;
pub use reader::{QueryError, markers, read};
pub use writer::{LogWriter, STREAM_MARKER, STREAM_STDERR, STREAM_STDOUT};

/// The stream a stored stream number stands for; every other number is a marker the broker
/// wrote, so it reads as sshkeep's own line.
pub fn stream_name(n: i64) -> LineStream {
    match n {
        STREAM_STDOUT => LineStream::Stdout,
        STREAM_STDERR => LineStream::Stderr,
        _ => LineStream::Sshkeep,
    }
}
