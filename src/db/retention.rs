//! Retention of command output: by age, and by total size.

use super::Result;
use rusqlite::TransactionBehavior;

use super::Db;
use super::log_chunks::ChunkBuf;
use crate::logs::STREAM_MARKER;

/// What a sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Finished commands removed whole (older than the age limit).
    pub commands_removed: u64,
    /// Finished commands whose output was removed to get under the total size limit.
    pub outputs_removed: u64,
}

impl Db {
    /// Removes finished commands that ended before `cutoff_ms`, then removes the output of the
    /// oldest finished commands until the output kept is at most `max_total_bytes`. A command
    /// whose output was removed keeps its record and one marker line that says so.
    pub fn sweep(&mut self, cutoff_ms: i64, max_total_bytes: u64) -> Result<Swept> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut swept = Swept::default();
        // Output files go once the rows pointing into them are gone for good.
        let mut files_to_remove: Vec<String> = tx
            .prepare(
                "SELECT id FROM commands WHERE ended_ms IS NOT NULL AND ended_ms < ?1
                   AND EXISTS (SELECT 1 FROM log_chunks WHERE command_id = commands.id AND file_off IS NOT NULL)",
            )?
            .query_map([cutoff_ms], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for table in ["log_lines", "log_chunks"] {
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE command_id IN
                       (SELECT id FROM commands WHERE ended_ms IS NOT NULL AND ended_ms < ?1)"
                ),
                [cutoff_ms],
            )?;
        }
        swept.commands_removed = tx.execute(
            "DELETE FROM commands WHERE ended_ms IS NOT NULL AND ended_ms < ?1",
            [cutoff_ms],
        )? as u64;
        let mut total: i64 = tx.query_row(
            "SELECT COALESCE(SUM(stored_bytes), 0) FROM commands",
            [],
            |r| r.get(0),
        )?;
        while total as u64 > max_total_bytes {
            let victim: Option<(String, i64)> = tx
                .query_row(
                    "SELECT id, stored_bytes FROM commands WHERE ended_ms IS NOT NULL AND stored_bytes > 0
                     ORDER BY ended_ms LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .ok();
            let Some((id, bytes)) = victim else { break };
            super::log_chunks::remove(&tx, &id)?;
            files_to_remove.push(id.clone());
            let mut marker = ChunkBuf::default();
            marker.push(
                1,
                STREAM_MARKER,
                format!(
                    "[sshkeep] this command's {bytes} bytes of output were removed to keep the total under {max_total_bytes} bytes (setting log_max_total_bytes)"
                )
                .as_bytes(),
                super::now_ms(),
            );
            marker.write(&tx, &id)?;
            tx.execute("UPDATE commands SET stored_bytes = 0 WHERE id = ?1", [&id])?;
            total -= bytes;
            swept.outputs_removed += 1;
        }
        tx.commit()?;
        for id in files_to_remove {
            // One left behind is removed at the next start, as no row points at it.
            if let Err(e) = super::log_files::remove(&self.conn, &id) {
                tracing::warn!("cannot remove the output file of command {id}: {e}");
            }
        }
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::NewCommand;
    use crate::protocol::CommandState;
    use rusqlite::params;

    fn add(db: &Db, id: &str, ended: i64, bytes: i64) {
        let c = NewCommand {
            id: id.into(),
            session_id: None,
            target: "t".into(),
            conn_name: None,
            key_name: None,
            commands: vec!["x".into()],
            options: Default::default(),
            detached: false,
            bulk_id: None,
        };
        db.insert_command(&c, ended).expect("insert");
        db.command_ended(id, CommandState::Completed, Some(0), None, None, ended)
            .expect("end");
        db.raw()
            .execute(
                "UPDATE commands SET stored_bytes = ?2 WHERE id = ?1",
                params![id, bytes],
            )
            .expect("bytes");
        db.raw()
            .execute(
                "INSERT INTO log_lines (command_id, n, stream, text) VALUES (?1, 1, 1, 'line')",
                [id],
            )
            .expect("line");
        let mut chunk = ChunkBuf::default();
        chunk.push(2, 1, b"more", ended);
        chunk.write_to_file(db.raw(), id).expect("chunk in a file");
    }

    #[test]
    fn age_then_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Db::open(&dir.path().join("db")).expect("open");
        add(&db, "old", 100, 10);
        add(&db, "a", 1000, 600);
        add(&db, "b", 2000, 600);
        let s = db.sweep(500, 1000).expect("sweep");
        assert_eq!(
            s,
            Swept {
                commands_removed: 1,
                outputs_removed: 1
            }
        );
        assert!(db.command("old").expect("q").is_none());
        // Output files go with the rows that pointed into them.
        let files = dir.path().join("db-output");
        assert!(!files.join("old").exists() && !files.join("a").exists());
        assert!(files.join("b").exists());
        let a = db.command("a").expect("q").expect("a kept");
        assert_eq!(a.stored_bytes, 0);
        // The old row is gone, a marker line says why.
        let page = crate::logs::read(
            db.raw(),
            &crate::protocol::LogQuery {
                command_id: "a".into(),
                ..Default::default()
            },
            CommandState::Completed,
            1 << 20,
        )
        .expect("read");
        assert_eq!(page.lines.len(), 1);
        assert_eq!(page.lines[0].n, 1);
        assert!(page.lines[0].text.contains("log_max_total_bytes"));
        assert_eq!(db.command("b").expect("q").expect("b").stored_bytes, 600);
    }
}
