//! Key rotations: a state machine per rotation and per host, so a rotation interrupted at any
//! point (a crash, a host down) resumes where it stopped.

use super::Result;
use rusqlite::{OptionalExtension, params};

use super::Db;
use super::error::stored_word;
use crate::protocol::{RotationState, RotationStep};

/// A stored rotation.
#[derive(Clone, Debug)]
pub struct RotationRow {
    pub id: String,
    pub key_name: String,
    pub new_key: String,
    pub key_type: String,
    pub state: RotationState,
    pub retired_as: Option<String>,
}

/// One host's place in a rotation.
#[derive(Clone, Debug)]
pub struct RotationHostRow {
    pub conn: String,
    pub step: RotationStep,
    pub error: Option<String>,
}

impl Db {
    /// Records a new rotation with its hosts, all `pending`.
    pub fn insert_rotation(&mut self, r: &RotationRow, hosts: &[String], now: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO rotations (id, key_name, new_key, key_type, state, created, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![
                r.id,
                r.key_name,
                r.new_key,
                r.key_type,
                r.state.as_str(),
                now
            ],
        )?;
        for h in hosts {
            tx.execute(
                "INSERT INTO rotation_hosts (rotation_id, conn, step, updated) VALUES (?1, ?2, 'pending', ?3)",
                params![r.id, h, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The unfinished rotation of a key, if any.
    pub fn active_rotation(&self, key: &str) -> Result<Option<RotationRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, key_name, new_key, key_type, state, retired_as FROM rotations
                 WHERE key_name = ?1 AND state != 'done' ORDER BY created DESC LIMIT 1",
                [key],
                |r| {
                    Ok(RotationRow {
                        id: r.get(0)?,
                        key_name: r.get(1)?,
                        new_key: r.get(2)?,
                        key_type: r.get(3)?,
                        state: stored_word(r, 4, "rotation state", RotationState::parse)?,
                        retired_as: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// The hosts of a rotation, by connection name.
    pub fn rotation_hosts(&self, id: &str) -> Result<Vec<RotationHostRow>> {
        let mut st = self.conn.prepare(
            "SELECT conn, step, error FROM rotation_hosts WHERE rotation_id = ?1 ORDER BY conn",
        )?;
        let rows = st
            .query_map([id], |r| {
                Ok(RotationHostRow {
                    conn: r.get(0)?,
                    step: stored_word(r, 1, "rotation step", RotationStep::parse)?,
                    error: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Adds a host (a connection linked to the key after the rotation started).
    pub fn add_rotation_host(&self, id: &str, conn: &str, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO rotation_hosts (rotation_id, conn, step, updated) VALUES (?1, ?2, 'pending', ?3)",
            params![id, conn, now],
        )?;
        Ok(())
    }

    /// Records a host's step (and its last error).
    pub fn set_rotation_step(
        &self,
        id: &str,
        conn: &str,
        step: RotationStep,
        error: Option<&str>,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE rotation_hosts SET step = ?3, error = ?4, updated = ?5 WHERE rotation_id = ?1 AND conn = ?2",
            params![id, conn, step.as_str(), error, now],
        )?;
        Ok(())
    }

    pub fn set_rotation_state(&self, id: &str, state: RotationState, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE rotations SET state = ?2, updated = ?3 WHERE id = ?1",
            params![id, state.as_str(), now],
        )?;
        Ok(())
    }

    /// Switches one connection from the old key to the new one and records the step, together.
    pub fn switch_rotation_link(
        &mut self,
        id: &str,
        conn: &str,
        new_key: &str,
        now: i64,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE connections SET key_name = ?2 WHERE name = ?1",
            params![conn, new_key],
        )?;
        tx.execute(
            "UPDATE rotation_hosts SET step = 'switched', error = NULL, updated = ?3 WHERE rotation_id = ?1 AND conn = ?2",
            params![id, conn, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Ends a rotation in one transaction: the old key is renamed `retired_as` and disabled,
    /// the new key takes the old name, and the connections follow it.
    pub fn finish_rotation(&mut self, r: &RotationRow, retired_as: &str, now: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        let conns: Vec<String> = {
            let mut st = tx.prepare("SELECT name FROM connections WHERE key_name = ?1")?;
            st.query_map([&r.new_key], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        tx.execute(
            "UPDATE connections SET key_name = NULL WHERE key_name = ?1",
            [&r.new_key],
        )?;
        tx.execute(
            "UPDATE keys SET name = ?2, retired = ?3, agent_offer = 0 WHERE name = ?1",
            params![r.key_name, retired_as, now],
        )?;
        tx.execute(
            "UPDATE keys SET name = ?2 WHERE name = ?1",
            params![r.new_key, r.key_name],
        )?;
        for c in &conns {
            tx.execute(
                "UPDATE connections SET key_name = ?2 WHERE name = ?1",
                params![c, r.key_name],
            )?;
        }
        tx.execute(
            "UPDATE rotations SET state = 'done', retired_as = ?2, updated = ?3 WHERE id = ?1",
            params![r.id, retired_as, now],
        )?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation() -> RotationRow {
        RotationRow {
            id: "r1".into(),
            key_name: "deploy".into(),
            new_key: "deploy.next".into(),
            key_type: "ed25519".into(),
            state: RotationState::Running,
            retired_as: None,
        }
    }

    #[test]
    fn steps_and_states_read_back_as_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Db::open(&dir.path().join("db")).expect("open");
        db.insert_rotation(&rotation(), &["web1".into()], 100)
            .expect("insert");
        db.set_rotation_step("r1", "web1", RotationStep::Verified, None, 101)
            .expect("step");
        db.set_rotation_state("r1", RotationState::Partial, 101)
            .expect("state");
        let hosts = db.rotation_hosts("r1").expect("hosts");
        assert_eq!(hosts[0].step, RotationStep::Verified);
        let r = db.active_rotation("deploy").expect("query").expect("row");
        assert_eq!(r.state, RotationState::Partial);
    }

    #[test]
    fn an_unknown_stored_step_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Db::open(&dir.path().join("db")).expect("open");
        db.insert_rotation(&rotation(), &["web1".into()], 100)
            .expect("insert");
        db.raw()
            .execute("UPDATE rotation_hosts SET step = 'halfway'", [])
            .expect("edit");
        let e = db.rotation_hosts("r1").expect_err("unknown step");
        assert!(e.to_string().contains("\"halfway\""), "{e}");
    }
}
