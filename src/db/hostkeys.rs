use super::Result;
use rusqlite::{OptionalExtension, params};

use super::Db;

/// A pinned host key for one host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub algorithm: String,
    /// `SHA256:...`, as OpenSSH prints it.
    pub fingerprint: String,
    /// `first-use`, `trust`, `trust-fingerprint`.
    pub source: String,
}

impl Db {
    /// The pin for `host:port`.
    pub fn pin(&self, host: &str, port: u16) -> Result<Option<Pin>> {
        Ok(self
            .conn
            .query_row(
                "SELECT algorithm, fingerprint, source FROM host_keys WHERE host = ?1 AND port = ?2",
                params![crate::target::canonical_host(host), port],
                |r| Ok(Pin { algorithm: r.get(0)?, fingerprint: r.get(1)?, source: r.get(2)? }),
            )
            .optional()?)
    }

    /// Pins (or re-pins) `host:port`.
    pub fn set_pin(&self, host: &str, port: u16, pin: &Pin, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO host_keys (host, port, algorithm, fingerprint, source, pinned_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(host, port) DO UPDATE SET algorithm = excluded.algorithm, fingerprint = excluded.fingerprint,
               source = excluded.source, pinned_at = excluded.pinned_at",
            params![crate::target::canonical_host(host), port, pin.algorithm, pin.fingerprint, pin.source, now],
        )?;
        Ok(())
    }
}
