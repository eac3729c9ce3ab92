use crate::protocol::{ErrorCode, ErrorNext, NextStep};

/// An SSH failure, worded for the user: it names the host and says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SshError {
    /// The error class clients can act on.
    pub code: ErrorCode,
    /// What happened and what to run next.
    pub message: String,
    /// The next step as data, for clients that word it themselves.
    pub next: Option<ErrorNext>,
}

impl SshError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            next: None,
        }
    }

    /// An error with a next step: `message` says both, `next` keeps them apart.
    pub fn then(code: ErrorCode, problem: impl Into<String>, step: NextStep) -> Self {
        let problem = problem.into();
        Self {
            code,
            message: step.after(&problem),
            next: Some(ErrorNext { problem, step }),
        }
    }
}
