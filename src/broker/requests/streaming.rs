//! The requests that write frames of their own while they run, handled in one place: `exec`
//! (output as it comes, input and stop from the client), SFTP transfers and fleet audits with
//! progress (a transfer may be stopped), an attached shell terminal, and the broker's shutdown
//! (held open until the process exits).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use interprocess::local_socket::tokio::Stream;
use tokio::sync::mpsc::UnboundedReceiver;

use super::App;
use super::door::Outcome;
use crate::broker::commands::exec;
use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer};
use crate::broker::{fleet, sftp, shells};
use crate::frame::{read_frame, write_frame};
use crate::protocol::{FleetAuditOp, Request, Response, SftpRequest, Targets};

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

/// An SFTP request that reports progress, and that the client may stop with
/// [`Request::SftpStop`]: the stop sets a flag the transfer checks after every chunk, so it ends
/// through its own error path (the temporary file removed, the handle and channel closed).
async fn sftp_with_progress(
    broker: &Arc<Core>,
    peer: &Peer,
    req: SftpRequest,
    stream: &Stream,
) -> Result<Response, Fail> {
    let (ptx, prx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let stop = Arc::new(AtomicBool::new(false));
    let feedback = sftp::Feedback {
        progress: ptx,
        stop: stop.clone(),
    };
    let work = with_progress(sftp::run(broker, peer, req, Some(feedback)), prx, stream);
    let listen = async {
        let mut rx = stream;
        loop {
            match read_frame::<Request, _>(&mut rx).await {
                Ok(Request::SftpStop) => {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                Ok(_) => continue,
                // A client that went away does not stop the transfer midway.
                Err(_) => break,
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        r = work => r,
        () = listen => Err(Fail::internal("the stop listener ended")),
    }
}

/// A fleet audit that reports how many targets are done, as it goes.
pub async fn fleet_audit(
    broker: &Arc<Core>,
    peer: &Peer,
    op: FleetAuditOp,
    targets: Targets,
    concurrency: Option<u32>,
    stream: &Stream,
) -> Outcome {
    let (ptx, prx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let work = fleet::audit::run(broker, peer, op, targets, concurrency, Some(ptx));
    Outcome::of(with_progress(work, prx, stream).await)
}

/// Runs `work`, writing what it reports on `progress` as [`Response::Progress`] frames: at most
/// five a second, the latest only.
async fn with_progress(
    work: impl Future<Output = Result<Response, Fail>>,
    mut progress: UnboundedReceiver<(u64, u64)>,
    stream: &Stream,
) -> Result<Response, Fail> {
    let mut tx = stream;
    tokio::pin!(work);
    let mut last: Option<tokio::time::Instant> = None;
    let mut open = true;
    loop {
        tokio::select! {
            r = &mut work => return r,
            p = progress.recv(), if open => {
                let Some((done, total)) = p else {
                    open = false;
                    continue;
                };
                if last.is_none_or(|l| l.elapsed() >= std::time::Duration::from_millis(200)) {
                    last = Some(tokio::time::Instant::now());
                    // A client that went away does not stop the work midway.
                    let _ = write_frame(&mut tx, &Response::Progress { done, total }).await;
                }
            }
        }
    }
}
