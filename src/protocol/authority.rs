//! The words of authority: which profile a client works under, and the requests that wait for the
//! user's approval. A profile travels as its JSON text (the broker and the CLI both read it with
//! `authority::Profile`); the protocol does not interpret it.

use serde::{Deserialize, Serialize};

use super::{ApprovalKind, ApprovalState, SecretString};

/// A profile as clients see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProfileInfo {
    pub name: String,
    /// One of sshkeep's own profiles, which cannot be changed or removed.
    pub builtin: bool,
    pub description: String,
    /// The whole profile as JSON.
    pub body: String,
}

/// A change to the user's profiles. Each needs the user present (see [`Presence`]).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ProfileChange {
    /// Creates a profile (`replace` false) or replaces one with this JSON body.
    Put {
        body: String,
        replace: bool,
    },
    Remove {
        name: String,
    },
}

/// What a client shows to prove the user is present for an owner action: the vault passphrase
/// typed at its terminal (passphrase vaults). Keyring vaults confirm on the desktop instead.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Presence {
    pub passphrase: Option<SecretString>,
}

/// A request that waits, or waited, for the user's approval.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalInfo {
    /// The command id (or bulk run id) the client was given.
    pub id: String,
    pub kind: ApprovalKind,
    pub profile: String,
    /// The connection, or a bulk run's connections joined by commas.
    pub target: String,
    /// The exact command text (several commands on their own lines).
    pub command: String,
    /// The class that made it wait (`destructive`, `opaque`, ...) and which part got it.
    pub class: String,
    pub reason: String,
    pub state: ApprovalState,
    pub decided_by: Option<String>,
    pub deny_reason: Option<String>,
    /// The client process that asked.
    pub requested_by: String,
    /// Unix seconds.
    pub created: i64,
    pub expires: i64,
}
