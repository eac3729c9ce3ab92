use super::Result;
use rusqlite::{OptionalExtension, params};

use super::Db;
use crate::protocol::AgentOptions;

/// A stored key. `sealed` is age ciphertext; nothing here is secret.
#[derive(Clone, Debug)]
pub struct KeyRow {
    pub name: String,
    pub algorithm: String,
    pub fingerprint: String,
    pub comment: String,
    pub public_key: String,
    pub sealed: Vec<u8>,
    pub created: i64,
    /// Unix seconds when a rotation retired it (never used to log in again).
    pub retired: Option<i64>,
    pub agent: AgentOptions,
    /// The socket of the ssh-agent that holds the private key, for a key that stays there.
    pub held_by: Option<String>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        name: r.get(0)?,
        algorithm: r.get(1)?,
        fingerprint: r.get(2)?,
        comment: r.get(3)?,
        public_key: r.get(4)?,
        sealed: r.get(5)?,
        created: r.get(6)?,
        retired: r.get(7)?,
        agent: AgentOptions {
            offer: r.get(8)?,
            confirm: r.get(9)?,
            until: r.get(10)?,
            forward: r.get(12)?,
            only_to: r
                .get::<_, String>(13)?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        },
        held_by: r.get(11)?,
    })
}

const COLS: &str = "name, algorithm, fingerprint, comment, public_key, sealed, created, retired, agent_offer, agent_confirm, agent_until, held_by, agent_forward, agent_only_to";

impl Db {
    /// Inserts a key; fails if the name exists.
    pub fn insert_key(&self, k: &KeyRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO keys (name, algorithm, fingerprint, comment, public_key, sealed, created, held_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                k.name,
                k.algorithm,
                k.fingerprint,
                k.comment,
                k.public_key,
                k.sealed,
                k.created,
                k.held_by
            ],
        )?;
        Ok(())
    }

    /// One key by name.
    pub fn key(&self, name: &str) -> Result<Option<KeyRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLS} FROM keys WHERE name = ?1"),
                [name],
                row,
            )
            .optional()?)
    }

    /// All keys by name.
    pub fn keys(&self) -> Result<Vec<KeyRow>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {COLS} FROM keys ORDER BY name"))?;
        let rows = st
            .query_map([], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Names of the connections linked to a key.
    pub fn key_links(&self, name: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT name FROM connections WHERE key_name = ?1 ORDER BY name")?;
        let rows = st
            .query_map([name], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    }

    /// Deletes a key; links to it are cleared. Returns whether it existed.
    pub fn delete_key(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM keys WHERE name = ?1", [name])?
            > 0)
    }

    /// Sets a key's agent options.
    pub fn set_agent_options(&self, name: &str, o: &AgentOptions) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE keys SET agent_offer = ?2, agent_confirm = ?3, agent_until = ?4, agent_forward = ?5, agent_only_to = ?6 WHERE name = ?1",
            params![name, o.offer, o.confirm, o.until, o.forward, o.only_to.join(",")],
        )? > 0)
    }
}
