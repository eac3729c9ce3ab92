//! Forwards kept across broker restarts: stored when opened (with the port bound or given),
//! forgotten when closed, and opened again when the broker starts. `broker stop` is not
//! `forward close`: the records stay.

use std::sync::Arc;

use super::{Forward, Forwards, describe, listen, remote};
use crate::broker::core::fail::Fail;
use crate::broker::core::login::resolve;
use crate::broker::core::{Core, Peer};
use crate::db::ForwardRow;
use crate::protocol::ForwardKind;

fn row(fwd: &Forward) -> ForwardRow {
    ForwardRow {
        id: fwd.id.clone(),
        spec: fwd.stored_spec(),
        created_ms: fwd.created_ms,
    }
}

/// Stores an opened forward.
pub(super) fn save(broker: &Core, fwd: &Forward) -> Result<(), Fail> {
    broker.db()?.save_forward(&row(fwd))?;
    Ok(())
}

/// Records the port a server gave on listening again (it may differ when the old one was taken).
pub(super) fn update_port(broker: &Core, fwd: &Forward) {
    if let Err(f) = save(broker, fwd) {
        tracing::warn!(forward = %fwd.id, "cannot store the forward's new port: {}", f.message);
    }
}

/// Forgets a closed forward.
pub(super) fn forget(broker: &Core, id: &str) -> Result<(), Fail> {
    broker.db()?.delete_forward(id)?;
    Ok(())
}

/// At broker start: opens every stored forward again, on the same address and port. One that
/// cannot listen or log in yet is listed as `retrying` with the reason, and retries by itself.
pub fn restore(broker: &Arc<Core>, forwards: &Forwards) {
    let rows = match broker.db().and_then(|db| db.forwards().map_err(Fail::from)) {
        Ok(rows) => rows,
        Err(f) => {
            tracing::warn!("cannot read the stored forwards: {}", f.message);
            return;
        }
    };
    let peer = Peer::default();
    for r in rows {
        let fwd = Forward::new(r.id, r.spec, r.created_ms);
        fwd.set_retrying("opening again after the broker started".into());
        let conn = resolve(broker, &fwd.spec.target, fwd.spec.key.as_deref())
            .ok()
            .and_then(|r| r.endpoint.conn_name);
        if let Err(f) = broker.audit(
            &peer,
            "forward_reopen",
            fwd.spec.key.as_deref(),
            conn.as_deref(),
            format!("forward {}: {}", fwd.id, describe(&fwd.info())),
        ) {
            tracing::warn!(forward = %fwd.id, "forward not reopened (cannot audit): {}", f.message);
            continue;
        }
        match fwd.spec.kind {
            ForwardKind::Local | ForwardKind::Dynamic => listen::reopen(broker, &fwd),
            ForwardKind::Remote => remote::reopen(broker, &peer, &fwd),
        }
        tracing::info!(forward = %fwd.id, "reopening {}", describe(&fwd.info()));
        forwards.insert(fwd);
    }
}
