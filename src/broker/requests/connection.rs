//! One client connection: frames in and out, each request handed to the [`door`] until the
//! client hangs up.

use std::sync::Arc;

use interprocess::local_socket::tokio::Stream;

use super::App;
use super::door::{self, Caller, Outcome};
use crate::broker::core::Peer;
use crate::frame::{FrameError, read_frame, write_frame};
use crate::protocol::{ErrorCode, Request, Response};

/// Answers a connection past the broker's client limit and closes it.
pub async fn refuse_busy(stream: Stream, limit: usize) {
    let mut tx = &stream;
    let reply = Response::error(
        ErrorCode::TooLarge,
        format!(
            "the broker is serving its limit of {limit} clients at once; try again when some have finished"
        ),
    );
    let _ = write_frame(&mut tx, &reply).await;
}

/// Serves one connection. Malformed frames get an error reply; only an oversized frame (after
/// which the stream cannot be resynchronised) or a hang-up ends the connection.
pub async fn serve(app: Arc<App>, stream: Stream, peer: Peer) {
    // `&Stream` reads and writes; requests and replies alternate, so one stream serves both.
    let mut rx = &stream;
    let mut tx = &stream;
    let mut caller = Caller::new(peer);
    loop {
        let req: Request = match read_frame(&mut rx).await {
            Ok(r) => r,
            Err(FrameError::Closed) => return,
            Err(FrameError::Malformed(why)) => {
                let reply =
                    Response::error(ErrorCode::BadRequest, format!("malformed request: {why}"));
                if write_frame(&mut tx, &reply).await.is_err() {
                    return;
                }
                continue;
            }
            Err(e @ (FrameError::TooLarge(_) | FrameError::Busy)) => {
                let _ = write_frame(
                    &mut tx,
                    &Response::error(ErrorCode::TooLarge, e.to_string()),
                )
                .await;
                return;
            }
            Err(FrameError::Io(_)) => return,
        };
        match door::handle(&app, &mut caller, req, &stream).await {
            Outcome::Reply(reply) => {
                if write_frame(&mut tx, &reply).await.is_err() {
                    return;
                }
            }
            Outcome::Streamed => {}
            Outcome::Close => return,
        }
    }
}
