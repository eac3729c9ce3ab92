//! Bearer tokens for `sshkeep mcp --http`: each names the profile its HTTP sessions work under.
//! The broker keeps only a token's hash; the text crosses the socket twice, when it is made
//! (to the user's CLI, once) and when the HTTP adapter checks one it was given.

use serde::{Deserialize, Serialize};

/// A token as `sshkeep mcp token list` shows it: never its text or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpTokenInfo {
    pub name: String,
    /// The profile the token's sessions work under.
    pub profile: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds of the last request that carried it, if any.
    pub last_used: Option<i64>,
}
