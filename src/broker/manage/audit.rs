//! Audit requests: the records, filtered, and a check of the hash chain.

use crate::broker::core::Core;
use crate::broker::core::fail::Fail;
use crate::protocol::{AuditFilter, Response};

/// `audit`.
pub fn list(broker: &Core, filter: &AuditFilter) -> Result<Response, Fail> {
    Ok(Response::Audit {
        records: broker.db()?.audit_records(filter)?,
    })
}

/// `audit --verify`.
pub fn verify(broker: &Core) -> Result<Response, Fail> {
    let c = broker.verify_audit()?;
    Ok(Response::AuditVerified {
        records: c.records,
        first_broken: c.first_broken,
        reason: c.reason,
    })
}
