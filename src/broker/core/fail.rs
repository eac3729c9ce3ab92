//! The broker's error type: a code and a message fit to show the user.

use crate::protocol::{ErrorCode, ErrorNext, NextStep, Response};
use crate::ssh::SshError;
use sshkeep_vault::VaultError;

/// A failed request.
#[derive(Debug)]
pub struct Fail {
    pub code: ErrorCode,
    pub message: String,
    /// The next step as data, for clients that word it themselves.
    pub next: Option<ErrorNext>,
}

impl Fail {
    /// A failure with a code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            next: None,
        }
    }

    /// A failure with a next step: `message` says both, `next` keeps them apart.
    pub fn then(code: ErrorCode, problem: impl Into<String>, step: NextStep) -> Self {
        let problem = problem.into();
        Self {
            code,
            message: step.after(&problem),
            next: Some(ErrorNext { problem, step }),
        }
    }

    /// An unknown name or id, and where to look the right one up.
    pub fn unknown(kind: &str, name: &str, step: NextStep) -> Self {
        Self::then(
            ErrorCode::NotFound,
            format!("no {kind} named '{name}'"),
            step,
        )
    }

    /// An unexpected failure (database, I/O). Such errors never carry secrets: they come from
    /// code paths that handle none.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, format!("internal error: {e:#}"))
    }

    /// An unknown name or id.
    pub fn not_found(kind: &str, name: &str, hint: &str) -> Self {
        Self::new(
            ErrorCode::NotFound,
            format!("no {kind} named '{name}': {hint}"),
        )
    }

    /// The reply frame.
    pub fn into_response(self) -> Response {
        Response::Error {
            code: self.code,
            message: self.message,
            next: self.next,
        }
    }
}

impl From<SshError> for Fail {
    fn from(e: SshError) -> Self {
        Self {
            code: e.code,
            message: e.message,
            next: e.next,
        }
    }
}

impl From<VaultError> for Fail {
    fn from(e: VaultError) -> Self {
        // The one vault error whose next step is a plain call: each client words it its way.
        if let VaultError::NotInitialized(dir) = &e {
            return Self::then(
                ErrorCode::VaultMissing,
                format!("no vault at {}", dir.display()),
                NextStep::VaultInit,
            );
        }
        let code = match &e {
            VaultError::NotInitialized(_) | VaultError::Orphaned(..) => ErrorCode::VaultMissing,
            VaultError::AlreadyInitialized(_) => ErrorCode::AlreadyExists,
            VaultError::Locked => ErrorCode::VaultLocked,
            VaultError::WrongPassphrase => ErrorCode::WrongPassphrase,
            VaultError::PassphraseRequired | VaultError::EmptyPassphrase => {
                ErrorCode::PassphraseRequired
            }
            VaultError::Keyring(_) | VaultError::KeyringEntryMissing => {
                ErrorCode::KeyringUnavailable
            }
            _ => ErrorCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

/// A store failure is the broker's own fault, never the client's: an internal error.
impl From<crate::db::DbError> for Fail {
    fn from(e: crate::db::DbError) -> Self {
        Self::internal(e)
    }
}
