//! Port forwards kept across broker restarts: stored when opened, removed when closed, and read
//! at start so the broker opens them again on the same ports.

use rusqlite::params;

use super::{Db, Result};
use crate::protocol::{ForwardKind, ForwardSpec};

/// A stored forward.
#[derive(Clone, Debug)]
pub struct ForwardRow {
    pub id: String,
    pub spec: ForwardSpec,
    pub created_ms: i64,
}

fn kind_word(k: ForwardKind) -> &'static str {
    match k {
        ForwardKind::Local => "local",
        ForwardKind::Dynamic => "dynamic",
        ForwardKind::Remote => "remote",
    }
}

fn kind_of(word: &str) -> Option<ForwardKind> {
    match word {
        "local" => Some(ForwardKind::Local),
        "dynamic" => Some(ForwardKind::Dynamic),
        "remote" => Some(ForwardKind::Remote),
        _ => None,
    }
}

impl Db {
    /// Stores a forward (or updates it, by id).
    pub fn save_forward(&self, f: &ForwardRow) -> Result<()> {
        let s = &f.spec;
        self.conn.execute(
            "INSERT INTO forwards (id, target, key_name, kind, bind_address, bind_port, host, host_port, allow_public, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(id) DO UPDATE SET bind_port = excluded.bind_port",
            params![
                f.id,
                s.target,
                s.key,
                kind_word(s.kind),
                s.bind_address,
                s.bind_port,
                s.host,
                s.host_port,
                s.allow_public,
                f.created_ms
            ],
        )?;
        Ok(())
    }

    /// Every stored forward, oldest first. A row of a kind this broker does not know is skipped
    /// with a log line, not fatal: the others still open.
    pub fn forwards(&self) -> Result<Vec<ForwardRow>> {
        let mut st = self.conn.prepare(
            "SELECT id, target, key_name, kind, bind_address, bind_port, host, host_port, allow_public, created_ms
             FROM forwards ORDER BY created_ms",
        )?;
        let rows = st
            .query_map([], |r| {
                let kind: String = r.get(3)?;
                Ok((
                    kind,
                    ForwardRow {
                        id: r.get(0)?,
                        spec: ForwardSpec {
                            target: r.get(1)?,
                            key: r.get(2)?,
                            kind: ForwardKind::Local,
                            bind_address: r.get(4)?,
                            bind_port: r.get(5)?,
                            host: r.get(6)?,
                            host_port: r.get(7)?,
                            allow_public: r.get(8)?,
                        },
                        created_ms: r.get(9)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(kind, mut row)| match kind_of(&kind) {
                Some(k) => {
                    row.spec.kind = k;
                    Some(row)
                }
                None => {
                    tracing::warn!(forward = %row.id, "stored forward of unknown kind {kind:?} skipped");
                    None
                }
            })
            .collect())
    }

    /// Forgets a forward; returns whether it was stored.
    pub fn delete_forward(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM forwards WHERE id = ?1", [id])?
            > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_is_kept_until_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("db.sqlite")).expect("open");
        let row = ForwardRow {
            id: "f1".into(),
            spec: ForwardSpec {
                target: "srv".into(),
                key: None,
                kind: ForwardKind::Remote,
                bind_address: "localhost".into(),
                bind_port: 0,
                host: Some("127.0.0.1".into()),
                host_port: Some(8080),
                allow_public: false,
            },
            created_ms: 1,
        };
        db.save_forward(&row).expect("save");
        let mut given = row.clone();
        given.spec.bind_port = 40123;
        db.save_forward(&given).expect("update port");
        let back = db.forwards().expect("read");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].spec.kind, ForwardKind::Remote);
        assert_eq!(back[0].spec.bind_port, 40123);
        assert!(db.delete_forward("f1").expect("delete"));
        assert!(db.forwards().expect("read").is_empty());
    }
}
