//! The broker's error type: a code and a message fit to show the user.

use crate::protocol::{ErrorCode, Response};
use crate::ssh::SshError;
use sshkeep_vault::VaultError;

/// A failed request.
#[derive(Debug)]
pub struct Fail {
    pub code: ErrorCode,
    pub message: String,
}

impl Fail {
    /// A failure with a code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
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
        }
    }
}

impl From<SshError> for Fail {
    fn from(e: SshError) -> Self {
        Self::new(e.code, e.message)
    }
}

impl From<VaultError> for Fail {
    fn from(e: VaultError) -> Self {
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
