use crate::protocol::ErrorCode;

/// An SSH failure, worded for the user: it names the host and says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SshError {
    /// The error class clients can act on.
    pub code: ErrorCode,
    /// What happened and what to run next.
    pub message: String,
}

impl SshError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
