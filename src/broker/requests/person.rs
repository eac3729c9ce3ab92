//! A request made with a person at the client's terminal (`person` on `session open`, `conn
//! test` and `exec`): its login's questions are written to this connection as
//! [`Response::LoginPrompt`] frames and the answers read back from it, while the request runs.
//! The flag only decides where questions go: the answers still come from this connection alone,
//! within [`PERSON_WAIT_SECS`] for all of the request's rounds together, and are never logged, audited or stored.

use interprocess::local_socket::tokio::Stream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::broker::core::Peer;
use crate::frame::{read_frame, write_frame};
use crate::protocol::{ErrorCode, LoginPrompt, PERSON_WAIT_SECS, Request, Response, SecretString};
use crate::ssh::{Ask, Person, SshError};

/// `peer` with a person at its terminal when the client said so, and the questions to serve.
pub fn at_terminal(peer: &Peer, person: bool) -> (Peer, Option<mpsc::Receiver<Ask>>) {
    let mut peer = peer.clone();
    if !person {
        return (peer, None);
    }
    let (p, asks) = Person::new();
    peer.person = Some(p);
    (peer, Some(asks))
}

/// Runs `work`, answering its login questions through `stream`.
pub async fn serve<T>(
    work: impl Future<Output = T>,
    asks: Option<mpsc::Receiver<Ask>>,
    stream: &Stream,
) -> T {
    let Some(mut asks) = asks else {
        return work.await;
    };
    tokio::pin!(work);
    let mut open = true;
    loop {
        tokio::select! {
            r = &mut work => return r,
            ask = asks.recv(), if open => match ask {
                Some(Ask { prompt, reply, deadline }) => {
                    let _ = reply.send(converse(prompt, deadline, stream).await);
                }
                None => open = false,
            },
        }
    }
}

/// One round: the questions out, the answers back (or why there are none).
async fn converse(
    prompt: LoginPrompt,
    deadline: Instant,
    stream: &Stream,
) -> Result<Vec<SecretString>, SshError> {
    let mut tx = stream;
    let mut rx = stream;
    let gone = || {
        SshError::new(
            ErrorCode::Cancelled,
            "the terminal that was asked the login questions went away",
        )
    };
    write_frame(&mut tx, &Response::LoginPrompt(prompt))
        .await
        .map_err(|_| gone())?;
    match tokio::time::timeout_at(deadline, read_frame::<Request, _>(&mut rx)).await {
        Err(_) => Err(SshError::new(
            ErrorCode::AuthFailed,
            format!("no answer to the login questions at the terminal within {PERSON_WAIT_SECS} s"),
        )),
        Ok(Ok(Request::LoginAnswer { answers })) => Ok(answers),
        Ok(Ok(Request::LoginCancel | Request::ExecStop)) => Err(SshError::new(
            ErrorCode::Cancelled,
            "the login questions were not answered at the terminal",
        )),
        Ok(Ok(_)) => Err(SshError::new(
            ErrorCode::BadRequest,
            "a login question waits for its answer (login_answer or login_cancel)",
        )),
        Ok(Err(_)) => Err(gone()),
    }
}
