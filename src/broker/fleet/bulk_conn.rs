//! `bulk conn`: test, open or close sessions for many connections at once (to check a fleet, or
//! warm it before work).

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::broker::core::fail::Fail;
use crate::broker::core::login::{self, resolve};
use crate::broker::core::sessions::{Reuse, session_for};
use crate::broker::core::{Core, Peer};
use crate::broker::fleet::bulk::resolve_targets;
use crate::db::ConnRow;
use crate::protocol::{BulkConnOp, BulkConnResult, ErrorCode, Response, SessionState, Targets};

async fn one(broker: Arc<Core>, peer: Peer, op: BulkConnOp, c: ConnRow) -> BulkConnResult {
    let mut res = BulkConnResult {
        connection_id: c.id.clone(),
        name: c.spec.name.clone(),
        ok: false,
        session_id: None,
        report: None,
        error_code: None,
        error: None,
        next: None,
    };
    let outcome: Result<(), Fail> = async {
        match op {
            BulkConnOp::Test => {
                let t = login::test::run(&broker, &peer, &c.spec.name, None).await?;
                res.ok = t.authenticated;
                res.error_code = t.error_code;
                res.error = t.error.clone();
                res.next = t.next.clone();
                res.report = Some(t);
                Ok(())
            }
            BulkConnOp::Open => {
                let r = resolve(&broker, &c.spec.name, None)?;
                let (s, _) =
                    session_for(&broker, &peer, &r, "bulk conn open", Reuse::Shared).await?;
                res.session_id = Some(s.id.clone());
                res.ok = true;
                Ok(())
            }
            BulkConnOp::Close => {
                let ids: Vec<String> = broker
                    .sessions()
                    .list()
                    .into_iter()
                    .filter(|s| {
                        s.conn_name.as_deref() == Some(c.spec.name.as_str())
                            && s.state != SessionState::Closed
                    })
                    .map(|s| s.session_id)
                    .collect();
                for id in ids {
                    broker.sessions().close(&id, "closed by bulk conn").await?;
                }
                res.ok = true;
                Ok(())
            }
        }
    }
    .await;
    if let Err(f) = outcome {
        res.error_code = Some(f.code);
        res.error = Some(f.message);
        res.next = f.next;
    }
    res
}

/// Runs `op` on every target, `concurrency` at a time; results in the order of the targets.
pub async fn run(
    broker: &Arc<Core>,
    peer: &Peer,
    op: BulkConnOp,
    targets: &Targets,
    concurrency: Option<u32>,
) -> Result<Response, Fail> {
    let (conns, unknown) = resolve_targets(broker, targets)?;
    let limit = concurrency.unwrap_or(10);
    if !(1..=256).contains(&limit) {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            "concurrency must be between 1 and 256",
        ));
    }
    let sem = Arc::new(Semaphore::new(limit as usize));
    let mut set = JoinSet::new();
    for (i, c) in conns.into_iter().enumerate() {
        let (b, p, sem) = (broker.clone(), peer.clone(), sem.clone());
        set.spawn(async move {
            let _slot = sem.acquire_owned().await;
            (i, one(b, p, op, c).await)
        });
    }
    let mut results = Vec::new();
    while let Some(r) = set.join_next().await {
        results.push(r.map_err(Fail::internal)?);
    }
    results.sort_by_key(|(i, _)| *i);
    let mut results: Vec<BulkConnResult> = results.into_iter().map(|(_, r)| r).collect();
    // Names that match no connection fail alone, after the others.
    results.extend(unknown.into_iter().map(|(name, f)| BulkConnResult {
        connection_id: String::new(),
        name,
        ok: false,
        session_id: None,
        report: None,
        error_code: Some(f.code),
        error: Some(f.message),
        next: f.next,
    }));
    Ok(Response::BulkConn { results })
}
