//! Reading jobs' stored output. Reads run on the broker's own log-reader connection, off the
//! async threads, so a long read never holds the main database connection.

use std::sync::Arc;

use crate::broker::core::Core;
use crate::broker::core::fail::Fail;
use crate::protocol::{CommandState, ErrorCode, LogQuery};

/// Reads stored output off the async threads, on the broker's own log-reader connection:
/// `f` gets a reader of filtered pages (query, the command's state, a byte cap).
pub async fn read_logs<T: Send + 'static>(
    broker: &Arc<Core>,
    f: impl FnOnce(
        &mut dyn FnMut(&LogQuery, CommandState, u64) -> Result<crate::protocol::LogPage, Fail>,
    ) -> Result<T, Fail>
    + Send
    + 'static,
) -> Result<T, Fail> {
    let b = broker.clone();
    tokio::task::spawn_blocking(move || {
        let conn = b.log_reader()?;
        let mut read = |q: &LogQuery, state: CommandState, cap: u64| {
            crate::logs::read(&conn, q, state, cap).map_err(|e| match e {
                crate::logs::QueryError::Db(d) => Fail::internal(d),
                crate::logs::QueryError::File(e) => Fail::internal(e),
                other => Fail::new(ErrorCode::InvalidArgument, other.to_string()),
            })
        };
        f(&mut read)
    })
    .await
    .map_err(Fail::internal)?
}
