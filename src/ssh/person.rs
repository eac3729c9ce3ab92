//! The person at the CLI's terminal, as a login sees them: a way to put a server's
//! keyboard-interactive questions to them and get their answers back. The request that carries
//! the CLI's "a person is here" flag makes one ([`Person::new`]) and serves its questions on
//! that client's connection; every other login (an agent's, a bulk run's, a reconnect) has none,
//! and a question sshkeep cannot answer from the vault fails it with
//! [`crate::protocol::ErrorCode::NeedsPerson`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::SshError;
use crate::protocol::{ErrorCode, LoginPrompt, PERSON_WAIT_SECS, SecretString};

/// One round of questions waiting for the person, and where their answers go.
pub struct Ask {
    pub prompt: LoginPrompt,
    pub reply: oneshot::Sender<Result<Vec<SecretString>, SshError>>,
    /// When the person's time to answer ends: one deadline for all of a request's rounds.
    pub deadline: Instant,
}

/// A handle on the person at one client's terminal.
#[derive(Clone)]
pub struct Person {
    tx: mpsc::Sender<Ask>,
    /// Questions the person answered, for the audit (how many, never what).
    answered: Arc<AtomicUsize>,
    /// Whether a question is out to the person now (callers without a person waiting for the
    /// same login give up at once instead of waiting behind it).
    asking: Arc<watch::Sender<bool>>,
    /// The end of the person's time to answer, set when the first question goes out.
    deadline: Arc<OnceLock<Instant>>,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Person")
    }
}

impl Person {
    /// A person, and the questions to serve on their connection.
    pub fn new() -> (Self, mpsc::Receiver<Ask>) {
        let (tx, rx) = mpsc::channel(1);
        (
            Self {
                tx,
                answered: Arc::default(),
                asking: Arc::new(watch::channel(false).0),
                deadline: Arc::default(),
            },
            rx,
        )
    }

    /// Puts one round of questions to the person: one answer per question, or why there is
    /// none (no answer in time, cancelled, the terminal went away).
    pub async fn ask(&self, prompt: LoginPrompt) -> Result<Vec<SecretString>, SshError> {
        let n = prompt.questions.len();
        let gone = || {
            SshError::new(
                ErrorCode::Cancelled,
                "the terminal that was asked the login questions went away",
            )
        };
        let deadline = *self
            .deadline
            .get_or_init(|| Instant::now() + Duration::from_secs(PERSON_WAIT_SECS));
        let (reply, answer) = oneshot::channel();
        self.asking.send_replace(true);
        let asked = async {
            self.tx
                .send(Ask {
                    prompt,
                    reply,
                    deadline,
                })
                .await
                .map_err(|_| gone())?;
            // The connection side keeps the deadline; this one only guards against it stalling.
            tokio::time::timeout_at(deadline + Duration::from_secs(10), answer)
                .await
                .map_err(|_| gone())?
                .map_err(|_| gone())?
        }
        .await;
        self.asking.send_replace(false);
        let answers = asked?;
        if answers.len() != n {
            return Err(SshError::new(
                ErrorCode::BadRequest,
                format!("{} answers for {n} login questions", answers.len()),
            ));
        }
        self.answered.fetch_add(n, Ordering::Relaxed);
        Ok(answers)
    }

    /// Whether the request that brought the person is still being served (a login that comes
    /// later, in the background, has nobody to ask).
    pub fn present(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Waits until a question is out to the person (forever when none ever is).
    pub async fn asked(&self) {
        let mut rx = self.asking.subscribe();
        if rx.wait_for(|a| *a).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// How many questions the person has answered so far.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }
}
