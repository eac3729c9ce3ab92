//! The append-only, hash-chained audit log.
//!
//! Each record's hash covers a canonical JSON encoding of its fields and the previous record's
//! hash, so changing, inserting or deleting a record in the middle breaks the chain from that
//! record on. Once the vault has been unlocked, the hash is an HMAC-SHA256 under the audit key
//! (sealed in the vault, held only by the broker), so a process that can write the database
//! cannot re-hash an edited chain into one that verifies. Records written before the key was
//! known are plain SHA-256 and marked unkeyed. Truncating the newest records shows against the
//! head the broker writes outside the database (`state/audit-head`, keyed the same way).

use super::Result;
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
    /// Keyed records were found and no key was given: nothing was concluded about them.
    pub needs_key: bool,
}

/// The key of the audit chain's HMACs.
pub type AuditKey = zeroize::Zeroizing<[u8; 32]>;

/// The newest record as the broker last wrote it down outside the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
    /// HMAC of the two under the audit key (`-` when none was known).
    pub mac: String,
}

impl AuditHead {
    /// `seq hash mac`, one line.
    pub fn to_line(&self) -> String {
        format!("{} {} {}\n", self.seq, self.hash, self.mac)
    }

    /// Parses [`AuditHead::to_line`]'s form.
    pub fn parse(text: &str) -> Option<Self> {
        let mut it = text.split_whitespace();
        let head = Self {
            seq: it.next()?.parse().ok()?,
            hash: it.next()?.to_string(),
            mac: it.next()?.to_string(),
        };
        it.next().is_none().then_some(head)
    }

    /// A head for `seq`/`hash`, keyed when `key` is given.
    pub fn new(seq: u64, hash: String, key: Option<&AuditKey>) -> Self {
        let mac = key
            .map(|k| hmac_hex(k, format!("audit-head:{seq}:{hash}").as_bytes()))
            .unwrap_or_else(|| "-".into());
        Self { seq, hash, mac }
    }

    fn genuine(&self, key: Option<&AuditKey>) -> Option<bool> {
        let key = key?;
        Some(Self::new(self.seq, self.hash.clone(), Some(key)).mac == self.mac)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 (RFC 2104) in hex.
fn hmac_hex(key: &[u8; 32], msg: &[u8]) -> String {
    let mut ipad = zeroize::Zeroizing::new([0x36u8; 64]);
    let mut opad = zeroize::Zeroizing::new([0x5cu8; 64]);
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad.as_slice())
        .chain_update(msg)
        .finalize();
    hex(&Sha256::new()
        .chain_update(opad.as_slice())
        .chain_update(inner)
        .finalize())
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn digest(seq: u64, ts: i64, e: &AuditEntry, prev: &str, key: Option<&AuditKey>) -> String {
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
    match key {
        Some(k) => hmac_hex(k, canonical.to_string().as_bytes()),
        None => hex(&Sha256::digest(canonical.to_string().as_bytes())),
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(AuditRecord, String, bool)> {
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
        r.get(11)?,
    ))
}

const COLS: &str = "seq, ts, op, key_name, conn, detail, client_pid, client_uid, client_exe, prev_hash, hash, keyed";

impl Db {
    /// Appends a record to the chain, keyed when `key` is given; returns the new head.
    pub fn audit(&mut self, e: &AuditEntry, ts: i64, key: Option<&AuditKey>) -> Result<AuditHead> {
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
        let hash = digest(seq, ts, e, &prev, key);
        tx.execute(
            &format!(
                "INSERT INTO audit ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
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
                hash,
                key.is_some()
            ],
        )?;
        tx.commit()?;
        Ok(AuditHead::new(seq, hash, key))
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
                row(r).map(|(rec, _, _)| rec)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// Walks the whole chain and names the first record that does not fit, then checks the
    /// newest record against `head` (written outside the database) for truncation.
    pub fn verify_audit(
        &self,
        key: Option<&AuditKey>,
        head: Option<&AuditHead>,
    ) -> Result<ChainCheck> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {COLS} FROM audit ORDER BY seq"))?;
        let mut rows = st.query([])?;
        let mut expected_prev = GENESIS.to_string();
        let mut expected_seq = 1u64;
        let mut count = 0u64;
        let mut any_keyed = false;
        let mut needs_key = false;
        let mut at_head = None;
        while let Some(r) = rows.next()? {
            let (rec, prev, keyed) = row(r)?;
            count += 1;
            any_keyed |= keyed;
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
                match (keyed, key) {
                    (true, None) => {
                        needs_key = true;
                        None
                    }
                    // Once keyed, always keyed: an unkeyed record after a keyed one was
                    // re-hashed by someone without the key.
                    (false, _) if any_keyed => Some(
                        "it is not keyed although records before it are (the record was rewritten)"
                            .to_string(),
                    ),
                    _ => (digest(rec.seq, rec.ts, &e, &prev, key.filter(|_| keyed)) != rec.hash)
                        .then(|| {
                            "its content does not match its hash (the record was changed)"
                                .to_string()
                        }),
                }
            };
            if let Some(reason) = broken {
                return Ok(ChainCheck {
                    records: count,
                    first_broken: Some(rec.seq),
                    reason: Some(reason),
                    needs_key,
                });
            }
            if head.is_some_and(|h| h.seq == rec.seq) {
                at_head = Some(rec.hash.clone());
            }
            expected_prev = rec.hash;
            expected_seq += 1;
        }
        let mut check = ChainCheck {
            records: count,
            first_broken: None,
            reason: None,
            needs_key,
        };
        match head {
            Some(h) if h.genuine(key) == Some(false) => {
                check.reason =
                    Some("the audit head written outside the database was altered".to_string());
                check.first_broken = Some(h.seq.min(count + 1));
            }
            Some(h) if h.seq > count => {
                check.first_broken = Some(count + 1);
                check.reason = Some(format!(
                    "records {} to {} are missing: the audit head written outside the database ends at record {} (the log was truncated)",
                    count + 1,
                    h.seq,
                    h.seq
                ));
            }
            Some(h) if at_head.as_deref().is_some_and(|a| a != h.hash) => {
                check.first_broken = Some(h.seq);
                check.reason = Some(
                    "it does not match the audit head written outside the database".to_string(),
                );
            }
            None if any_keyed => {
                check.first_broken = Some(count);
                check.reason = Some(
                    "the audit head written outside the database is missing, so truncation cannot be ruled out".to_string(),
                );
            }
            _ => {}
        }
        Ok(check)
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
            db.audit(&entry(op), 100, None).expect("append");
        }
        let ok = db.verify_audit(None, None).expect("verify");
        assert_eq!((ok.records, ok.first_broken), (4, None));
        db.raw()
            .execute("UPDATE audit SET detail = 'forged' WHERE seq = 3", [])
            .expect("tamper");
        let bad = db.verify_audit(None, None).expect("verify");
        assert_eq!(bad.first_broken, Some(3));
    }

    #[test]
    fn chain_detects_a_deleted_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Db::open(&dir.path().join("db")).expect("open");
        for op in ["a", "b", "c"] {
            db.audit(&entry(op), 100, None).expect("append");
        }
        db.raw()
            .execute("DELETE FROM audit WHERE seq = 2", [])
            .expect("tamper");
        assert_eq!(
            db.verify_audit(None, None).expect("verify").first_broken,
            Some(3)
        );
    }

    #[test]
    fn filters_and_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Db::open(&dir.path().join("db")).expect("open");
        for op in ["a", "b", "a", "a"] {
            db.audit(&entry(op), 100, None).expect("append");
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
