use super::Result;
use rusqlite::{OptionalExtension, params};

use super::Db;
use crate::protocol::{ConnSpec, HostKeyPolicy};

/// A saved connection.
#[derive(Clone, Debug)]
pub struct ConnRow {
    pub id: String,
    pub spec: ConnSpec,
    pub created: i64,
}

const COLS: &str = "id, name, host, port, user, key_name, client, host_key_policy, keepalive_interval, keepalive_max, idle_timeout, created, authorized_keys, jump, connect_timeout, forward_agent, password_secret";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConnRow> {
    let policy: String = r.get(7)?;
    Ok(ConnRow {
        id: r.get(0)?,
        spec: ConnSpec {
            name: r.get(1)?,
            host: r.get(2)?,
            port: r.get(3)?,
            user: r.get(4)?,
            key: r.get(5)?,
            client: r.get(6)?,
            host_key_policy: HostKeyPolicy::parse(&policy).unwrap_or(HostKeyPolicy::Strict),
            keepalive_interval: r.get(8)?,
            keepalive_max: r.get(9)?,
            idle_timeout: r.get(10)?,
            authorized_keys: r.get(12)?,
            jump: r
                .get::<_, String>(13)?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            connect_timeout: r.get(14)?,
            forward_agent: r.get(15)?,
            password: r.get(16)?,
        },
        created: r.get(11)?,
    })
}

impl Db {
    /// Inserts or updates (by name) a connection and returns it.
    pub fn save_conn(&self, id: &str, s: &ConnSpec, now: i64) -> Result<ConnRow> {
        self.conn.execute(
            &format!(
                "INSERT INTO connections ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT(name) DO UPDATE SET host = excluded.host, port = excluded.port, user = excluded.user,
                   key_name = excluded.key_name, client = excluded.client, host_key_policy = excluded.host_key_policy,
                   keepalive_interval = excluded.keepalive_interval, keepalive_max = excluded.keepalive_max,
                   idle_timeout = excluded.idle_timeout, authorized_keys = excluded.authorized_keys, jump = excluded.jump,
                   connect_timeout = excluded.connect_timeout, forward_agent = excluded.forward_agent,
                   password_secret = excluded.password_secret"
            ),
            params![
                id,
                s.name,
                s.host,
                s.port,
                s.user,
                s.key,
                s.client,
                s.host_key_policy.as_str(),
                s.keepalive_interval,
                s.keepalive_max,
                s.idle_timeout,
                now,
                s.authorized_keys,
                s.jump.join(","),
                s.connect_timeout,
                s.forward_agent,
                s.password
            ],
        )?;
        self.conn_by_ref(&s.name)?
            .ok_or_else(|| super::DbError::Vanished(format!("connection {}", s.name)))
    }

    /// A connection by name or id.
    pub fn conn_by_ref(&self, name_or_id: &str) -> Result<Option<ConnRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLS} FROM connections WHERE name = ?1 OR id = ?1 ORDER BY name = ?1 DESC LIMIT 1"),
                [name_or_id],
                row,
            )
            .optional()?)
    }

    /// A saved connection with exactly this user, host and port, if any.
    pub fn conn_by_address(&self, user: &str, host: &str, port: u16) -> Result<Option<ConnRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLS} FROM connections WHERE user = ?1 AND host = ?2 AND port = ?3 ORDER BY name LIMIT 1"),
                params![user, host, port],
                row,
            )
            .optional()?)
    }

    /// All connections by name.
    pub fn conns(&self) -> Result<Vec<ConnRow>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {COLS} FROM connections ORDER BY name"))?;
        let rows = st
            .query_map([], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Deletes a connection by id.
    pub fn delete_conn(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM connections WHERE id = ?1", [id])?
            > 0)
    }

    /// Sets or clears a connection's client group.
    pub fn set_conn_client(&self, id: &str, client: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE connections SET client = ?2 WHERE id = ?1",
            params![id, client],
        )?;
        Ok(())
    }

    /// Sets or clears the key linked to a connection.
    pub fn set_conn_key(&self, id: &str, key: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE connections SET key_name = ?2 WHERE id = ?1",
            params![id, key],
        )?;
        Ok(())
    }
}
