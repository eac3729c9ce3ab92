//! Command output in SQLite: a writer thread that batches lines into transactions, and filtered
//! reads.
//!
//! Output is split into lines as it arrives and numbered across both streams in arrival order.
//! Byte counts per stream count only what is committed as whole lines, so a detached command can
//! be re-attached from exactly where the log stops: no line lost, none twice.

mod queue;
mod reader;
mod writer;

pub use reader::{QueryError, read};
pub use writer::{LogWriter, STREAM_MARKER, STREAM_STDERR, STREAM_STDOUT};

/// The name a stream number is shown with.
pub fn stream_name(n: i64) -> &'static str {
    match n {
        STREAM_STDOUT => "stdout",
        STREAM_STDERR => "stderr",
        _ => "sshkeep",
    }
}
