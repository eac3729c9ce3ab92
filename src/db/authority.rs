//! What the authority layer keeps: the user's own profiles, requests waiting for the user's
//! approval, time-limited grants ("this exact command for N minutes"), and a record of each
//! command a profile started (for quotas). Profiles are stored as JSON text that the authority
//! layer parses; this module does not interpret them.

use super::Result;
use crate::authority::Class;
use crate::protocol::{ApprovalKind, ApprovalState};
use rusqlite::{OptionalExtension, params};

use super::Db;

/// A request that waits, or waited, for the user's approval.
#[derive(Clone, Debug)]
pub struct ApprovalRow {
    /// The id the client was given (a command id or a bulk run id).
    pub id: String,
    pub kind: ApprovalKind,
    pub profile: String,
    /// The connection name, or the targets of a bulk run joined by commas.
    pub target: String,
    /// The exact command text (several commands joined by newlines).
    pub command: String,
    /// The request to run once approved, as JSON.
    pub request: String,
    /// The class that made it wait, and which part got it.
    pub class: Class,
    pub reason: String,
    pub state: ApprovalState,
    /// Who decided, in words (the terminal and process that approved).
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub deny_reason: Option<String>,
    /// The client process that asked.
    pub requested_by: String,
    pub created: i64,
    pub expires: i64,
}

const APPROVAL_COLUMNS: &str = "id, kind, profile, target, command, request, class, reason, state,
    decided_by, decided_at, deny_reason, requested_by, created, expires";

fn approval(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRow> {
    Ok(ApprovalRow {
        id: r.get(0)?,
        kind: super::error::stored_word(r, 1, "approval kind", ApprovalKind::parse)?,
        profile: r.get(2)?,
        target: r.get(3)?,
        command: r.get(4)?,
        request: r.get(5)?,
        class: super::error::stored_word(r, 6, "command class", Class::parse)?,
        reason: r.get(7)?,
        // An unknown stored state is never treated as decided.
        state: ApprovalState::parse(&r.get::<_, String>(8)?).unwrap_or(ApprovalState::Pending),
        decided_by: r.get(9)?,
        decided_at: r.get(10)?,
        deny_reason: r.get(11)?,
        requested_by: r.get(12)?,
        created: r.get(13)?,
        expires: r.get(14)?,
    })
}

impl Db {
    /// The user's own profiles as (name, JSON body), by name.
    pub fn profiles(&self) -> Result<Vec<(String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT name, body FROM profiles ORDER BY name")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One of the user's profiles as JSON.
    pub fn profile(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT body FROM profiles WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Creates or replaces a profile.
    pub fn put_profile(&self, name: &str, body: &str, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO profiles (name, body, created, updated) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT(name) DO UPDATE SET body = excluded.body, updated = excluded.updated",
            params![name, body, now],
        )?;
        Ok(())
    }

    /// Removes a profile; false if there was none.
    pub fn remove_profile(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM profiles WHERE name = ?1", [name])?
            > 0)
    }

    /// Records a request that waits for approval.
    pub fn insert_approval(&self, a: &ApprovalRow) -> Result<()> {
        self.conn.execute(
            &format!("INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
            params![
                a.id,
                a.kind.as_str(),
                a.profile,
                a.target,
                a.command,
                a.request,
                a.class.as_str(),
                a.reason,
                a.state.as_str(),
                a.decided_by,
                a.decided_at,
                a.deny_reason,
                a.requested_by,
                a.created,
                a.expires
            ],
        )?;
        Ok(())
    }

    /// One approval request.
    pub fn approval(&self, id: &str) -> Result<Option<ApprovalRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                [id],
                approval,
            )
            .optional()?)
    }

    /// Approval requests, newest first: only pending ones unless `all`.
    pub fn approvals(&self, all: bool, limit: u32) -> Result<Vec<ApprovalRow>> {
        let filter = if all { "" } else { "WHERE state = 'pending'" };
        let mut st = self.conn.prepare(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals {filter} ORDER BY created DESC LIMIT ?1"
        ))?;
        let rows = st.query_map([limit], approval)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Decides a pending request. False if it was no longer pending (decided or expired).
    pub fn decide_approval(
        &self,
        id: &str,
        state: ApprovalState,
        by: &str,
        deny_reason: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE approvals SET state = ?2, decided_by = ?3, decided_at = ?4, deny_reason = ?5
             WHERE id = ?1 AND state = 'pending'",
            params![id, state.as_str(), by, now, deny_reason],
        )? > 0)
    }

    /// Marks every pending request past its expiry as expired and returns their ids.
    pub fn expire_approvals(&self, now: i64) -> Result<Vec<String>> {
        let mut st = self.conn.prepare(
            "UPDATE approvals SET state = 'expired', decided_at = ?1
             WHERE state = 'pending' AND expires <= ?1 RETURNING id",
        )?;
        let rows = st.query_map([now], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Grants `command` on `target` to `profile` until `until` (unix seconds).
    pub fn insert_grant(
        &self,
        profile: &str,
        target: &str,
        command: &str,
        until: i64,
        approval: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO grants (profile, target, command, until, approval)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![profile, target, command, until, approval],
        )?;
        Ok(())
    }

    /// The approval id of a grant that still covers exactly this command, target and profile.
    pub fn grant_for(
        &self,
        profile: &str,
        target: &str,
        command: &str,
        now: i64,
    ) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT approval FROM grants WHERE profile = ?1 AND target = ?2 AND command = ?3
                 AND until > ?4 ORDER BY until DESC LIMIT 1",
                params![profile, target, command, now],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records that `profile` started a command (for quotas).
    pub fn record_profile_use(&self, profile: &str, now_ms: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO profile_uses (profile, at_ms) VALUES (?1, ?2)",
            params![profile, now_ms],
        )?;
        // Nothing older than a day is ever counted.
        self.conn.execute(
            "DELETE FROM profile_uses WHERE at_ms < ?1",
            [now_ms - 86_400_000],
        )?;
        Ok(())
    }

    /// How many commands `profile` started since `since_ms`.
    pub fn profile_uses_since(&self, profile: &str, since_ms: i64) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM profile_uses WHERE profile = ?1 AND at_ms >= ?2",
            params![profile, since_ms],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("t.db")).expect("open");
        (dir, db)
    }

    fn pending(id: &str, expires: i64) -> ApprovalRow {
        ApprovalRow {
            id: id.into(),
            kind: ApprovalKind::Command,
            profile: "agent".into(),
            target: "web1".into(),
            command: "rm -f /tmp/x".into(),
            request: "{}".into(),
            class: Class::Destructive,
            reason: "rm -f /tmp/x: destructive (removes files)".into(),
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at: None,
            deny_reason: None,
            requested_by: "pid 1".into(),
            created: 100,
            expires,
        }
    }

    #[test]
    fn a_request_is_decided_once_and_expires_if_nobody_decides() {
        let (_d, db) = db();
        db.insert_approval(&pending("a", 200)).expect("insert");
        db.insert_approval(&pending("b", 150)).expect("insert");
        assert_eq!(db.approvals(false, 10).expect("list").len(), 2);
        assert!(
            db.decide_approval("a", ApprovalState::Approved, "tty", None, 120)
                .expect("decide")
        );
        assert!(
            !db.decide_approval("a", ApprovalState::Denied, "tty", Some("no"), 121)
                .expect("again"),
            "a decided request stays decided"
        );
        assert_eq!(
            db.expire_approvals(160).expect("expire"),
            vec!["b".to_string()]
        );
        assert!(
            !db.decide_approval("b", ApprovalState::Approved, "tty", None, 161)
                .expect("late"),
            "an expired request cannot be approved"
        );
        let b = db.approval("b").expect("get").expect("b");
        assert_eq!(b.state, ApprovalState::Expired);
        assert!(db.approvals(false, 10).expect("list").is_empty());
    }

    #[test]
    fn grants_cover_the_exact_command_target_and_profile_until_they_end() {
        let (_d, db) = db();
        db.insert_grant("agent", "web1", "systemctl restart app", 500, "a")
            .expect("grant");
        assert!(
            db.grant_for("agent", "web1", "systemctl restart app", 400)
                .expect("q")
                .is_some()
        );
        for (p, t, c, now) in [
            ("agent", "web1", "systemctl restart app ", 400),
            ("agent", "web2", "systemctl restart app", 400),
            ("other", "web1", "systemctl restart app", 400),
            ("agent", "web1", "systemctl restart app", 500),
        ] {
            assert!(
                db.grant_for(p, t, c, now).expect("q").is_none(),
                "{p} {t} {c:?} {now}"
            );
        }
    }

    #[test]
    fn quota_counts_a_profiles_commands_in_a_window() {
        let (_d, db) = db();
        for t in [1_000, 2_000, 3_000] {
            db.record_profile_use("agent", t).expect("use");
        }
        db.record_profile_use("readonly", 2_500).expect("use");
        assert_eq!(db.profile_uses_since("agent", 2_000).expect("count"), 2);
        assert_eq!(db.profile_uses_since("readonly", 0).expect("count"), 1);
    }
}
