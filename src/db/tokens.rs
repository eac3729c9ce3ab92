//! Bearer tokens for `sshkeep mcp --http`, kept as SHA-256 hashes: a token is 32 random bytes,
//! so a plain hash cannot be reversed or guessed, and the database never holds its text.

use rusqlite::params;

use super::{Db, Result};

/// One stored token.
#[derive(Clone, Debug)]
pub struct McpTokenRow {
    pub name: String,
    /// SHA-256 of the token text.
    pub hash: Vec<u8>,
    pub profile: String,
    pub created: i64,
    pub last_used: Option<i64>,
}

impl Db {
    /// Stores a new token; false if one of that name exists.
    pub fn insert_mcp_token(
        &self,
        name: &str,
        hash: &[u8],
        profile: &str,
        now: i64,
    ) -> Result<bool> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO mcp_tokens (name, hash, profile, created) VALUES (?1, ?2, ?3, ?4)",
            params![name, hash, profile, now],
        )? > 0)
    }

    /// Every token, by name.
    pub fn mcp_tokens(&self) -> Result<Vec<McpTokenRow>> {
        let mut st = self.conn.prepare(
            "SELECT name, hash, profile, created, last_used FROM mcp_tokens ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(McpTokenRow {
                name: r.get(0)?,
                hash: r.get(1)?,
                profile: r.get(2)?,
                created: r.get(3)?,
                last_used: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Notes that a token was used.
    pub fn touch_mcp_token(&self, name: &str, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE mcp_tokens SET last_used = ?2 WHERE name = ?1",
            params![name, now],
        )?;
        Ok(())
    }

    /// Removes a token; false if there was none.
    pub fn remove_mcp_token(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM mcp_tokens WHERE name = ?1", [name])?
            > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_listed_touched_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("t.db")).expect("open");
        assert!(
            db.insert_mcp_token("ci", &[1; 32], "readonly", 10)
                .expect("insert")
        );
        assert!(
            !db.insert_mcp_token("ci", &[2; 32], "agent", 11)
                .expect("again")
        );
        db.touch_mcp_token("ci", 20).expect("touch");
        let rows = db.mcp_tokens().expect("list");
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].profile.as_str(), rows[0].last_used),
            ("readonly", Some(20))
        );
        assert_eq!(rows[0].hash, vec![1; 32]);
        assert!(db.remove_mcp_token("ci").expect("remove"));
        assert!(db.mcp_tokens().expect("list").is_empty());
    }
}
