//! Fleet work on the wire: target selection, bulk runs and their results, fleet audits.

use serde::{Deserialize, Serialize};

use super::{
    BulkState, CommandState, ErrorCode, FindingStatus, LineStream, RunOptions, Severity,
    TargetError, TestReport,
};

/// Which connections a fleet operation covers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Targets {
    /// Connection names or ids.
    pub conns: Vec<String>,
    /// Every connection of this client group.
    pub client: Option<String>,
    /// Every saved connection.
    pub all: bool,
}

/// A bulk run to start.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BulkSpec {
    pub targets: Targets,
    /// Run in order on each target, stopping there at the first failure.
    pub commands: Vec<String>,
    /// Targets worked on at once (default 10).
    pub concurrency: Option<u32>,
    pub options: RunOptions,
}

/// One target of a bulk run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BulkTarget {
    pub connection_id: String,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub command_id: String,
    pub state: CommandState,
    pub exit_code: Option<i64>,
    /// Why the target failed, as a code (`unreachable`, `host_key_changed`, `auth_failed`, `exit_status`, ...).
    pub error_code: Option<TargetError>,
    pub error: Option<String>,
}

/// A bulk run as clients see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BulkInfo {
    pub bulk_id: String,
    pub commands: Vec<String>,
    pub state: BulkState,
    /// Targets per state.
    pub counts: std::collections::BTreeMap<String, u64>,
    pub targets: Vec<BulkTarget>,
    pub created_ms: i64,
}

/// One output line of a bulk run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BulkLogLine {
    /// The target's connection name.
    pub target: String,
    pub n: u64,
    pub stream: LineStream,
    pub text: String,
}

/// What `bulk conn` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkConnOp {
    /// Reachability, host key, login, round-trip time.
    Test,
    /// Open a persistent session to each (warm a fleet).
    Open,
    /// Close the sessions to each.
    Close,
}

/// One connection's result in `bulk conn`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BulkConnResult {
    pub connection_id: String,
    pub name: String,
    pub ok: bool,
    pub session_id: Option<String>,
    pub report: Option<TestReport>,
    pub error_code: Option<ErrorCode>,
    pub error: Option<String>,
    /// What to do, as data (see [`super::ErrorNext`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<super::ErrorNext>,
}

/// What a fleet audit looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FleetAuditOp {
    /// sshd settings, uid 0 accounts, empty passwords, world-writable PATH, listening ports,
    /// security updates, failed logins, full disks, reboot required.
    Security,
    /// OS, kernel, uptime, CPUs, memory, disks.
    Inventory,
}

/// One check's result on one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    pub check: String,
    /// `skipped` carries the reason in `evidence`.
    pub status: FindingStatus,
    pub severity: Severity,
    pub evidence: String,
    /// What to do, for `fail` and `warn`.
    pub fix: Option<String>,
    /// For a check that finds a list: how many items there were,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// how many of them `items` leaves out (it keeps the first 500),
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted: Option<u64>,
    /// and the items themselves (ports, accounts, files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
}

/// One inventory fact.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InventoryItem {
    pub key: String,
    pub value: String,
}

/// One target of a fleet audit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditTarget {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Whether the checks ran (`completed`) or not (`failed`, with the error).
    pub state: CommandState,
    pub error_code: Option<TargetError>,
    pub error: Option<String>,
    pub findings: Vec<Finding>,
    pub inventory: Vec<InventoryItem>,
}

/// A fleet audit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FleetAuditReport {
    pub audit_id: String,
    pub op: FleetAuditOp,
    pub created_ms: i64,
    pub targets: Vec<AuditTarget>,
}
