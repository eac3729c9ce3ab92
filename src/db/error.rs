//! What can go wrong in the store, as one type: callers turn it into their own errors with `?`
//! instead of wrapping every call, and a message says which database file and what failed.

use std::path::PathBuf;

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite refused a statement.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON value does not read back (or a value does not serialise).
    #[error("a stored value does not read back: {0}")]
    Json(#[from] serde_json::Error),
    /// The database file could not be created, opened, configured, migrated or read.
    #[error("cannot {action} the database {}: {source}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A vault exists but the database that held its keys does not.
    #[error(
        "the database {db} is missing or empty, but the vault at {vault} exists: the stored keys, host-key pins and audit log lived in the database, so the broker will not start with a new one. Restore {db} from a backup (a copy taken after `sshkeep broker stop` holds everything), or, to start over and lose the stored keys, move {vault} aside",
        db = db.display(),
        vault = vault.display()
    )]
    Missing { db: PathBuf, vault: PathBuf },
    /// The write-ahead log could not be emptied because another connection held it.
    #[error("the database was busy; its write-ahead log was not emptied")]
    Busy,
    /// A row that was just written could not be read back.
    #[error("{0} vanished after it was saved")]
    Vanished(String),
}

impl DbError {
    pub(super) fn file(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(rusqlite::Error) -> DbError {
        let path = path.to_path_buf();
        move |e| DbError::File {
            action,
            path,
            source: Box::new(e),
        }
    }
}

/// A stored word that names no known state: the row was written by another version or edited by
/// hand, and reading it as some default would misreport what happened.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {word:?} stored in the database")]
pub struct UnknownWord {
    pub what: &'static str,
    pub word: String,
}

/// Reads column `idx` of a row as a word enum through `parse`; an unknown word is an error naming
/// it.
pub(super) fn stored_word<T>(
    r: &rusqlite::Row<'_>,
    idx: usize,
    what: &'static str,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let word: String = r.get(idx)?;
    parse(&word).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            Box::new(UnknownWord { what, word }),
        )
    })
}

/// Like [`stored_word`] for a column that may be NULL.
pub(super) fn stored_word_opt<T>(
    r: &rusqlite::Row<'_>,
    idx: usize,
    what: &'static str,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<Option<T>> {
    let word: Option<String> = r.get(idx)?;
    word.map(|word| {
        parse(&word).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                idx,
                rusqlite::types::Type::Text,
                Box::new(UnknownWord { what, word }),
            )
        })
    })
    .transpose()
}

/// The store's result.
pub type Result<T, E = DbError> = std::result::Result<T, E>;
