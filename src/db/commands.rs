//! Asynchronous commands: their records and state transitions. Output lives in `log_chunks`
//! (see [`super::log_chunks`]) and is written by the log writer ([`crate::logs`]).

use super::Result;
use rusqlite::{OptionalExtension, params};

use super::Db;
use super::error::stored_word_opt;
use crate::protocol::{CommandState, RunOptions, TargetError};

/// A command to record.
#[derive(Clone, Debug)]
pub struct NewCommand {
    pub id: String,
    pub session_id: Option<String>,
    pub target: String,
    pub conn_name: Option<String>,
    pub key_name: Option<String>,
    pub commands: Vec<String>,
    pub options: RunOptions,
    pub detached: bool,
    pub bulk_id: Option<String>,
}

/// A stored command.
#[derive(Clone, Debug)]
pub struct CommandRow {
    pub id: String,
    pub session_id: Option<String>,
    pub target: String,
    pub conn_name: Option<String>,
    pub key_name: Option<String>,
    pub commands: Vec<String>,
    pub options: RunOptions,
    pub detached: bool,
    pub state: CommandState,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    pub error: Option<String>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub stdout_lines: u64,
    pub stderr_lines: u64,
    pub stored_bytes: u64,
    pub remote_pgid: Option<i64>,
    pub spool: Option<String>,
    pub bulk_id: Option<String>,
    pub error_code: Option<TargetError>,
}

const COLS: &str = "id, session_id, target, conn_name, key_name, commands, options, detached, state, exit_code, signal, \
    error, created_ms, started_ms, ended_ms, stdout_bytes, stderr_bytes, stdout_lines, stderr_lines, stored_bytes, \
    remote_pgid, spool, bulk_id, error_code";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CommandRow> {
    let commands: String = r.get(5)?;
    let options: String = r.get(6)?;
    let state: String = r.get(8)?;
    Ok(CommandRow {
        id: r.get(0)?,
        session_id: r.get(1)?,
        target: r.get(2)?,
        conn_name: r.get(3)?,
        key_name: r.get(4)?,
        commands: serde_json::from_str(&commands).unwrap_or_default(),
        options: serde_json::from_str(&options).unwrap_or_default(),
        detached: r.get(7)?,
        state: CommandState::parse(&state).unwrap_or(CommandState::Failed),
        exit_code: r.get(9)?,
        signal: r.get(10)?,
        error: r.get(11)?,
        created_ms: r.get(12)?,
        started_ms: r.get(13)?,
        ended_ms: r.get(14)?,
        stdout_bytes: r.get::<_, i64>(15)? as u64,
        stderr_bytes: r.get::<_, i64>(16)? as u64,
        stdout_lines: r.get::<_, i64>(17)? as u64,
        stderr_lines: r.get::<_, i64>(18)? as u64,
        stored_bytes: r.get::<_, i64>(19)? as u64,
        remote_pgid: r.get(20)?,
        spool: r.get(21)?,
        bulk_id: r.get(22)?,
        error_code: stored_word_opt(r, 23, "error code", TargetError::parse)?,
    })
}

/// Adds output lost to a storage error to a command's record (on any connection: the log
/// writer calls it inside its own transaction).
pub fn record_output_loss(
    conn: &rusqlite::Connection,
    id: &str,
    bytes: u64,
    error: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE commands SET lost_bytes = lost_bytes + ?2, storage_error = COALESCE(storage_error, ?3) WHERE id = ?1",
        params![id, bytes as i64, error],
    )?;
    Ok(())
}

impl Db {
    /// Output of a command lost to storage errors: bytes and the first error.
    pub fn output_loss(&self, id: &str) -> Result<(u64, Option<String>)> {
        Ok(self
            .conn
            .query_row(
                "SELECT lost_bytes, storage_error FROM commands WHERE id = ?1",
                [id],
                |r| Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, None)))
    }

    /// Records a new command in state `queued`.
    pub fn insert_command(&self, c: &NewCommand, now_ms: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO commands (id, session_id, target, conn_name, key_name, commands, options, detached, state, created_ms, bulk_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9, ?10)",
            params![
                c.id,
                c.session_id,
                c.target,
                c.conn_name,
                c.key_name,
                serde_json::to_string(&c.commands)?,
                serde_json::to_string(&c.options)?,
                c.detached,
                now_ms,
                c.bulk_id
            ],
        )?;
        Ok(())
    }

    /// Marks a recorded command as an interactive shell's output log.
    pub fn mark_shell(&self, id: &str, terminal: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE commands SET kind = 'shell', shell = ?2 WHERE id = ?1",
            params![id, terminal],
        )?;
        Ok(())
    }

    /// Shells in tmux that were open when the broker stopped: (row, terminal JSON).
    pub fn persistent_shells(&self) -> Result<Vec<(CommandRow, String)>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLS}, shell FROM commands WHERE kind = 'shell' AND state IN ('queued', 'running')
             AND json_extract(shell, '$.persistent') = 1 ORDER BY created_ms"
        ))?;
        let rows = st
            .query_map([], |r| Ok((row(r)?, r.get::<_, String>(24)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// One command.
    pub fn command(&self, id: &str) -> Result<Option<CommandRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLS} FROM commands WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }

    /// Commands, newest first, filtered by state, connection name and bulk run.
    pub fn commands(
        &self,
        state: Option<&str>,
        conn: Option<&str>,
        bulk: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CommandRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLS} FROM commands WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR conn_name = ?2 OR target = ?2)
             AND (?3 IS NULL OR bulk_id = ?3) AND kind = 'command' ORDER BY created_ms DESC, rowid DESC LIMIT ?4"
        ))?;
        let rows = st
            .query_map(params![state, conn, bulk, limit], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Moves a queued command to running.
    pub fn command_started(&self, id: &str, session_id: &str, now_ms: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE commands SET state = 'running', session_id = ?2, started_ms = COALESCE(started_ms, ?3) WHERE id = ?1",
            params![id, session_id, now_ms],
        )?;
        Ok(())
    }

    /// Records the remote process group (attached) or spool directory (detached).
    pub fn command_remote(&self, id: &str, pgid: Option<i64>, spool: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE commands SET remote_pgid = COALESCE(?2, remote_pgid), spool = COALESCE(?3, spool) WHERE id = ?1",
            params![id, pgid, spool],
        )?;
        Ok(())
    }

    /// Ends a command unless it already ended (the first ending wins: a cancel is not
    /// overwritten by the exit it caused).
    pub fn command_ended(
        &self,
        id: &str,
        state: CommandState,
        exit_code: Option<i64>,
        signal: Option<&str>,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE commands SET state = ?2, exit_code = ?3, signal = ?4, error = ?5, ended_ms = ?6
             WHERE id = ?1 AND state IN ('queued', 'running')",
            params![id, state.as_str(), exit_code, signal, error, now_ms],
        )?;
        Ok(n > 0)
    }

    /// At broker start: attached commands that were queued or running cannot be resumed; they are
    /// marked `interrupted` with their output kept. Returns how many.
    pub fn interrupt_orphans(&self, now_ms: i64) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE commands SET state = 'interrupted', ended_ms = ?1,
               error = 'the broker stopped while this command ran; its output up to then is kept'
             WHERE state IN ('queued', 'running') AND detached = 0
               AND NOT (kind = 'shell' AND COALESCE(json_extract(shell, '$.persistent'), 0) = 1)",
            [now_ms],
        )?)
    }

    /// Detached commands still running (to re-attach to).
    pub fn running_detached(&self) -> Result<Vec<CommandRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLS} FROM commands WHERE detached = 1 AND state IN ('queued', 'running') ORDER BY created_ms"
        ))?;
        let rows = st
            .query_map([], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Records why a command failed, as a code.
    pub fn command_error_code(&self, id: &str, code: TargetError) -> Result<()> {
        self.conn.execute(
            "UPDATE commands SET error_code = ?2 WHERE id = ?1",
            params![id, code.as_str()],
        )?;
        Ok(())
    }

    /// Records a bulk run.
    pub fn insert_bulk(
        &self,
        id: &str,
        commands: &[String],
        concurrency: u32,
        now_ms: i64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO bulk_runs (id, commands, concurrency, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![id, serde_json::to_string(commands)?, concurrency, now_ms],
        )?;
        Ok(())
    }

    /// A bulk run's commands and creation time.
    pub fn bulk(&self, id: &str) -> Result<Option<(Vec<String>, i64)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT commands, created_ms FROM bulk_runs WHERE id = ?1",
                [id],
                |r| {
                    let c: String = r.get(0)?;
                    Ok((serde_json::from_str(&c).unwrap_or_default(), r.get(1)?))
                },
            )
            .optional()?)
    }

    /// The per-target commands of a bulk run, in the order the targets were given.
    pub fn bulk_commands(&self, bulk_id: &str) -> Result<Vec<CommandRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLS} FROM commands WHERE bulk_id = ?1 ORDER BY rowid"
        ))?;
        let rows = st
            .query_map([bulk_id], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Stores a fleet audit's report.
    pub fn insert_fleet_audit(&self, id: &str, op: &str, now_ms: i64, report: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO fleet_audits (id, op, created_ms, report) VALUES (?1, ?2, ?3, ?4)",
            params![id, op, now_ms, report],
        )?;
        Ok(())
    }

    /// A stored fleet audit report (JSON).
    pub fn fleet_audit(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT report FROM fleet_audits WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Counts commands by state.
    pub fn count_commands(&self, state: &str) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM commands WHERE state = ?1 AND kind = 'command'",
            [state],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// A setting's stored value.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Stores a setting.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}
