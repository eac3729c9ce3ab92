//! Fleet work: the same commands, connection checks or audits across many connections.

pub mod audit;
pub mod bulk;
pub mod bulk_conn;
pub mod checks;
