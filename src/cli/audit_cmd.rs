//! `sshkeep audit [--verify]`.

use anyhow::Result;
use clap::Args;

use super::{Ctx, output};
use crate::client::AuditCheck;
use crate::protocol::{AuditFilter, AuditRecord, Request};

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Check the hash chain and name the first broken record.
    #[arg(long)]
    verify: bool,
    /// Only records about this key.
    #[arg(long)]
    key: Option<String>,
    /// Only records about this connection.
    #[arg(long)]
    conn: Option<String>,
    /// Only this operation (key_use, key_add, conn_save, host_key_pin, ...).
    #[arg(long)]
    op: Option<String>,
    /// Only records newer than this (e.g. 30m, 2h, 7d).
    #[arg(long)]
    since: Option<humantime::Duration>,
    /// At most this many (the newest).
    #[arg(long)]
    limit: Option<u32>,
}

pub async fn run(ctx: &Ctx, a: AuditArgs) -> Result<u8> {
    let mut c = ctx.client().await?;
    if a.verify {
        let AuditCheck {
            records,
            first_broken,
            reason,
        } = c.call(&Request::AuditVerify).await?;
        if ctx.json {
            output::json(
                &serde_json::json!({ "records": records, "first_broken": first_broken, "reason": reason }),
            )?;
        } else if let Some(seq) = first_broken {
            println!(
                "audit chain BROKEN at record {seq}: {}",
                reason.unwrap_or_default()
            );
        } else {
            println!("audit chain intact: {records} records");
        }
        return Ok(if first_broken.is_some() { 1 } else { 0 });
    }
    let since = a.since.map(|d| crate::clock::now() - d.as_secs() as i64);
    let filter = AuditFilter {
        key: a.key,
        conn: a.conn,
        op: a.op,
        since,
        limit: a.limit,
    };
    let records: Vec<AuditRecord> = c.call(&Request::AuditList(filter)).await?;
    if ctx.json {
        output::json(&records)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.seq.to_string(),
                output::time(r.ts),
                r.op.clone(),
                output::opt(&r.key),
                output::opt(&r.conn),
                format!(
                    "{}/{}",
                    r.client_pid
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r.client_exe
                        .as_deref()
                        .and_then(|e| e.rsplit('/').next())
                        .unwrap_or("-")
                ),
                r.detail.clone(),
            ]
        })
        .collect();
    output::table(
        &["SEQ", "TIME", "OP", "KEY", "CONN", "CLIENT", "DETAIL"],
        &rows,
    );
    Ok(0)
}
