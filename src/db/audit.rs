//! The append-only, hash-chained audit log.
//!
//! Each record's hash is SHA-256 over a canonical JSON encoding of its fields and the previous
//! record's hash, so changing, inserting or deleting a record in the middle breaks the chain from
//! that record on. Truncating the newest records is not detectable from the chain alone (see
//! threat-model.md).

use anyhow::Result;
use rusqlite::params;
use sha2::{Digest, Sha256};

use super::Db;
use crate::protocol::{AuditFilter, AuditRecord};

/// What to append. Never put secret material in any field.
#[derive(Clone, Debug, Default)]
pub struct AuditEntry {
    pub op: String,
    pub key: Option<String>,
    pub conn: Option<String>,
    pub detail: String,
    pub client_pid: Option<u32>,
    pub client_uid: Option<u32>,
    pub client_exe: Option<String>,
}

/// The result of checking the chain.
#[derive(Clone, Debug)]
pub struct ChainCheck {
    pub records: u64,
    pub first_broken: Option<u64>,
    pub reason: Option<String>,
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn digest(seq: u64, ts: i64, e: &AuditEntry, prev: &str) -> String {
    let canonical = serde_json::json!([
        seq,
        ts,
        e.op,
        e.key,
        e.conn,
        e.detail,
        e.client_pid,
        e.client_uid,
        e.client_exe,
        prev
    ]);
    let hash = Sha256::digest(canonical.to_string().as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(AuditRecord, String)> {
    Ok((
        AuditRecord {
            seq: r.get::<_, i64>(0)? as u64,
            ts: r.get(1)?,
            op: r.get(2)?,
            key: r.get(3)?,
            conn: r.get(4)?,
            detail: r.get(5)?,
            client_pid: r.get(6)?,
            client_uid: r.get(7)?,
            client_exe: r.get(8)?,
            hash: r.get(10)?,
        },
        r.get(9)?,
    ))
}

const COLS: &str =
    "seq, ts, op, key_name, conn, detail, client_pid, client_uid, client_exe, prev_hash, hash";

impl Db {
    /// Appends a record to the chain.
    pub fn audit(&mut self, e: &AuditEntry, ts: i64) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (seq, prev): (u64, String) = tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .unwrap_or((0, GENESIS.to_string()));
        let seq = seq + 1;
        let hash = digest(seq, ts, e, &prev);
        tx.execute(
            &format!(
                "INSERT INTO audit ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            params![
                seq as i64,
                ts,
                e.op,
                e.key,
                e.conn,
                e.detail,
                e.client_pid,
                e.client_uid,
                e.client_exe,
                prev,
                hash
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records matching `f`, oldest first (the newest `limit` when a limit is given).
    pub fn audit_records(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLS} FROM audit
             WHERE (?1 IS NULL OR key_name = ?1) AND (?2 IS NULL OR conn = ?2)
               AND (?3 IS NULL OR op = ?3) AND (?4 IS NULL OR ts >= ?4)
             ORDER BY seq DESC LIMIT ?5"
        ))?;
        let limit = f.limit.map(i64::from).unwrap_or(-1);
        let mut rows = st
            .query_map(params![f.key, f.conn, f.op, f.since, limit], |r| {
                row(r).map(|(rec, _)| rec)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// Walks the whole chain and names the first record that does not fit.
    pub fn verify_audit(&self) -> Result<ChainCheck> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {COLS} FROM audit ORDER BY seq"))?;
        let mut rows = st.query([])?;
        let mut expected_prev = GENESIS.to_string();
        let mut expected_seq = 1u64;
        let mut count = 0u64;
        while let Some(r) = rows.next()? {
            let (rec, prev) = row(r)?;
            count += 1;
            let broken = if rec.seq != expected_seq {
                Some(format!("record {expected_seq} is missing"))
            } else if prev != expected_prev {
                Some("its link to the previous record does not match".to_string())
            } else {
                let e = AuditEntry {
                    op: rec.op.clone(),
                    key: rec.key.clone(),
                    conn: rec.conn.clone(),
                    detail: rec.detail.clone(),
                    client_pid: rec.client_pid,
                    client_uid: rec.client_uid,
                    client_exe: rec.client_exe.clone(),
                };
                (digest(rec.seq, rec.ts, &e, &prev) != rec.hash).then(|| {
                    "its content does not match its hash (the record was changed)".to_string()
                })
            };
            if let Some(reason) = broken {
                return Ok(ChainCheck {
                    records: count,
                    first_broken: Some(rec.seq),
                    reason: Some(reason),
                });
            }
            expected_prev = rec.hash;
            expected_seq += 1;
        }
        Ok(ChainCheck {
            records: count,
            first_broken: None,
            reason: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: &str) -> AuditEntry {
        AuditEntry {
            op: op.into(),
            detail: "d".into(),
            ..Default::default()
        }
    }

    #[test]
    fn chain_detects_a_changed_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Db::open(&dir.path().join("db")).expect("open");
        for op in ["a", "b", "c", "d"] {
            db.audit(&entry(op), 100).expect("append");
        }
        let ok = db.verify_audit().expect("verify");
        assert_eq!((ok.records, ok.first_broken), (4, None));
        db.raw()
            .execute("UPDATE audit SET detail = 'forged' WHERE seq = 3", [])
            .expect("tamper");
        let bad = db.verify_audit().expect("verify");
        assert_eq!(bad.first_broken, Some(3));
    }

    #[test]
    fn chain_detects_a_deleted_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Db::open(&dir.path().join("db")).expect("open");
        for op in ["a", "b", "c"] {
            db.audit(&entry(op), 100).expect("append");
        }
        db.raw()
            .execute("DELETE FROM audit WHERE seq = 2", [])
            .expect("tamper");
        assert_eq!(db.verify_audit().expect("verify").first_broken, Some(3));
    }

    #[test]
    fn filters_and_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Db::open(&dir.path().join("db")).expect("open");
        for op in ["a", "b", "a", "a"] {
            db.audit(&entry(op), 100).expect("append");
        }
        let f = AuditFilter {
            op: Some("a".into()),
            limit: Some(2),
            ..Default::default()
        };
        let got = db.audit_records(&f).expect("list");
        assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 4]);
    }
}
