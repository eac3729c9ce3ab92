//! A server's login questions for the person at the CLI's terminal (keyboard-interactive: a
//! one-time code, a password nobody stored). Only a client that says a person is at its
//! terminal (`person` on [`super::Request::SessionOpen`], [`super::Request::ConnTest`] and
//! [`super::Request::Exec`]) is sent a [`LoginPrompt`]; it answers on the same connection with
//! [`super::Request::LoginAnswer`] or [`super::Request::LoginCancel`]. Answers are
//! [`super::SecretString`]s: redacted in `Debug`, wiped on drop, never logged or stored.

use serde::{Deserialize, Serialize};

/// How long the broker waits for the person to answer a request's questions, all rounds together.
pub const PERSON_WAIT_SECS: u64 = 120;

/// Rounds of questions a login may put to the person, at most.
pub const PERSON_ROUNDS: usize = 3;

/// Questions in one round a login may put to the person, at most (a server asking more is
/// refused).
pub const PERSON_QUESTIONS: usize = 8;

/// One question of a keyboard-interactive round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginQuestion {
    /// The server's prompt text ("Verification code: ").
    pub text: String,
    /// Whether the answer may be shown as it is typed.
    pub echo: bool,
}

/// A round of questions a server asks during a login, for the person at the terminal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginPrompt {
    /// `user@host:port` (and the connection's name) the login is for.
    pub server: String,
    /// The server's name for the round (often empty).
    pub name: String,
    /// The server's instructions (often empty).
    pub instructions: String,
    pub questions: Vec<LoginQuestion>,
}
