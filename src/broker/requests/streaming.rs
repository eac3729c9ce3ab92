//! The requests that write frames of their own while they run, handled in one place: `exec`
//! (output as it comes, input and stop from the client), SFTP transfers with progress, an
//! attached shell terminal, and the broker's shutdown (held open until the process exits).

use std::sync::Arc;

use interprocess::local_socket::tokio::Stream;

use super::App;
use super::door::Outcome;
use crate::broker::commands::exec;
use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer};
use crate::broker::{sftp, shells};
use crate::frame::write_frame;
use crate::protocol::{Response, SftpRequest};

/// `exec`: its output and exit frames are written as the command runs.
pub async fn exec(
    broker: &Arc<Core>,
    peer: &Peer,
    spec: exec::ExecSpec<'_>,
    stream: &Stream,
) -> Outcome {
    match exec::run(broker, peer, spec, stream).await {
        Ok(()) => Outcome::Streamed,
        Err(f) => Outcome::Reply(Box::new(f.into_response())),
    }
}

/// An SFTP request; with `progress`, progress frames come before the reply.
pub async fn sftp(broker: &Arc<Core>, peer: &Peer, req: SftpRequest, stream: &Stream) -> Outcome {
    if req.progress {
        Outcome::of(sftp_with_progress(broker, peer, req, stream).await)
    } else {
        Outcome::of(sftp::run(broker, peer, req, None).await)
    }
}

/// A terminal attached to a shell: the connection serves it, and ends with it.
pub async fn attach(
    app: &App,
    peer: &Peer,
    shell_id: &str,
    close_on_detach: bool,
    stream: &Stream,
) -> Outcome {
    match shells::attach(
        &app.core,
        &app.shells,
        peer,
        stream,
        shell_id,
        close_on_detach,
    )
    .await
    {
        Ok(()) => Outcome::Close,
        Err(f) => Outcome::Reply(Box::new(f.into_response())),
    }
}

/// `broker stop`: answers, asks the broker to stop, and holds the connection open until the
/// process exits: the client waits for it to close, so `broker stop` returns once the database
/// is checkpointed.
pub async fn shutdown(broker: &Core, stream: &Stream) -> Outcome {
    let mut tx = stream;
    let _ = write_frame(
        &mut tx,
        &Response::Ok {
            message: "broker stopping".into(),
        },
    )
    .await;
    broker.request_shutdown();
    std::future::pending::<()>().await;
    Outcome::Close
}

/// An SFTP request that reports progress: at most five frames a second while it runs.
async fn sftp_with_progress(
    broker: &Arc<Core>,
    peer: &Peer,
    req: SftpRequest,
    stream: &Stream,
) -> Result<Response, Fail> {
    let mut tx = stream;
    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let work = sftp::run(broker, peer, req, Some(ptx));
    tokio::pin!(work);
    let mut last = tokio::time::Instant::now();
    let mut latest = None;
    loop {
        tokio::select! {
            r = &mut work => return r,
            p = prx.recv() => {
                if let Some(p) = p { latest = Some(p); }
                if let Some((done, total)) = latest
                    && last.elapsed() >= std::time::Duration::from_millis(200)
                {
                    last = tokio::time::Instant::now();
                    latest = None;
                    // A client that went away does not stop the transfer midway.
                    let _ = write_frame(&mut tx, &Response::Progress { done, total }).await;
                }
            }
        }
    }
}
