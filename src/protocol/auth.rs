//! Ways to log in besides a bare key: stored passwords (named secrets) and OpenSSH user
//! certificates attached to keys. Only names and public facts cross the socket, never a value.

use serde::{Deserialize, Serialize};

/// A stored password, as clients see it: never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub name: String,
    /// The servers (`host:port`) it may be sent to; a login anywhere else is refused.
    pub hosts: Vec<String>,
    /// Connections that log in with it.
    pub connections: Vec<String>,
    pub created: i64,
}

/// Whether a certificate can log in now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertStatus {
    Valid,
    /// Valid, but for less than 7 days more.
    Expiring,
    Expired,
    NotYetValid,
}

/// The OpenSSH user certificate attached to a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    pub key_id: String,
    pub serial: u64,
    /// Users it may log in as (empty: any, as OpenSSH reads it).
    pub principals: Vec<String>,
    /// Unix seconds.
    pub valid_after: u64,
    /// Unix seconds (`u64::MAX`: forever).
    pub valid_before: u64,
    /// SHA-256 fingerprint of the CA key that signed it.
    pub ca_fingerprint: String,
    pub status: CertStatus,
}
