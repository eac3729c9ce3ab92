//! Stored login passwords and key certificates. A password is only ever here as vault
//! ciphertext; a certificate is public (it is what the server is shown), kept beside its key.

use rusqlite::{OptionalExtension, params};

use super::{Db, Result};

/// A stored password: `sealed` is age ciphertext to the vault; nothing here is secret.
#[derive(Clone, Debug)]
pub struct SecretRow {
    pub name: String,
    pub sealed: Vec<u8>,
    /// The servers (`host:port`) the password may be sent to.
    pub hosts: Vec<String>,
    pub created: i64,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRow> {
    let hosts: String = r.get(2)?;
    Ok(SecretRow {
        name: r.get(0)?,
        sealed: r.get(1)?,
        hosts: hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect(),
        created: r.get(3)?,
    })
}

impl Db {
    /// Stores a password, replacing the ciphertext (and widening the hosts) of one of that name.
    pub fn put_secret(&self, s: &SecretRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO secrets (name, sealed, hosts, created) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET sealed = excluded.sealed, hosts = excluded.hosts",
            params![s.name, s.sealed, s.hosts.join(","), s.created],
        )?;
        Ok(())
    }

    /// Sets the servers a password may be sent to.
    pub fn set_secret_hosts(&self, name: &str, hosts: &[String]) -> Result<()> {
        self.conn.execute(
            "UPDATE secrets SET hosts = ?2 WHERE name = ?1",
            params![name, hosts.join(",")],
        )?;
        Ok(())
    }

    /// One password by name.
    pub fn secret(&self, name: &str) -> Result<Option<SecretRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, sealed, hosts, created FROM secrets WHERE name = ?1",
                [name],
                row,
            )
            .optional()?)
    }

    /// All passwords by name.
    pub fn secrets(&self) -> Result<Vec<SecretRow>> {
        let mut st = self
            .conn
            .prepare("SELECT name, sealed, hosts, created FROM secrets ORDER BY name")?;
        let rows = st
            .query_map([], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Names of the connections that log in with a password.
    pub fn secret_links(&self, name: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT name FROM connections WHERE password_secret = ?1 ORDER BY name")?;
        let rows = st
            .query_map([name], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    }

    /// Deletes a password; connections linked to it lose the link. Returns whether it existed.
    pub fn delete_secret(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM secrets WHERE name = ?1", [name])?
            > 0)
    }

    /// Attaches (or replaces) a key's certificate.
    pub fn set_key_cert(&self, key: &str, certificate: &str, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO key_certs (key_name, certificate, added) VALUES (?1, ?2, ?3)
             ON CONFLICT(key_name) DO UPDATE SET certificate = excluded.certificate, added = excluded.added",
            params![key, certificate, now],
        )?;
        Ok(())
    }

    /// A key's certificate line, if it has one.
    pub fn key_cert(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT certificate FROM key_certs WHERE key_name = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Removes a key's certificate. Returns whether it had one.
    pub fn delete_key_cert(&self, key: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM key_certs WHERE key_name = ?1", [key])?
            > 0)
    }
}
