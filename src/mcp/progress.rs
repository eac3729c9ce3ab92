//! Long tool calls as MCP expects them: `notifications/progress` while they run (only when the
//! client gave a `progressToken`, and at most every 500 ms), and `notifications/cancelled`
//! honoured. A wait that is cancelled returns at once and leaves the command running; a
//! transfer is stopped in the broker (which removes the file it was writing); a fleet audit is
//! no longer waited for (it finishes in the broker and is stored). Progress messages carry
//! counts and sizes only, never output, so they need no redaction.

use std::time::Duration;

use anyhow::Result;
use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use tokio::time::Instant;

use super::Adapter;
use crate::client::{Client, FromReply, expect};
use crate::frame::{read_frame, write_frame};
use crate::protocol::{Request, Response};

/// Notifications closer together than this are dropped (the latest state comes with the next).
const EVERY: Duration = Duration::from_millis(500);

/// One tool call's progress token (if the client gave one) and cancellation.
pub struct Watch {
    ctx: RequestContext<RoleServer>,
    token: Option<ProgressToken>,
    last_sent: Option<Instant>,
    last_progress: Option<f64>,
}

impl Watch {
    pub fn new(ctx: &RequestContext<RoleServer>) -> Self {
        Self {
            token: ctx.meta.get_progress_token(),
            ctx: ctx.clone(),
            last_sent: None,
            last_progress: None,
        }
    }

    /// Resolves when the client cancels the call.
    pub async fn cancelled(&self) {
        self.ctx.ct.cancelled().await
    }

    /// Tells the client how far the call is, if it asked to know and the last notification is
    /// old enough. `progress` must grow (MCP requires it); a repeat is not sent.
    pub async fn report(&mut self, progress: f64, total: Option<f64>, message: String) {
        let Some(token) = &self.token else {
            return;
        };
        if self.last_sent.is_some_and(|t| t.elapsed() < EVERY)
            || self.last_progress.is_some_and(|p| progress <= p)
        {
            return;
        }
        self.last_sent = Some(Instant::now());
        self.last_progress = Some(progress);
        let mut p = ProgressNotificationParam::new(token.clone(), progress).with_message(message);
        if let Some(t) = total {
            p = p.with_total(t);
        }
        // A client that went away learns nothing; the call goes on to its end.
        let _ = self.ctx.peer.notify_progress(p).await;
    }
}

/// What happens to a broker request when the client cancels the tool call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnCancel {
    /// Ask the broker to stop ([`Request::SftpStop`]) and read its reply.
    Stop,
    /// Stop waiting and hang up: the broker finishes the work on its own.
    Abandon,
}

/// How a watched request ended.
pub enum Watched<R> {
    Reply(Result<R>),
    /// Cancelled with [`OnCancel::Abandon`]: there is no reply.
    Abandoned,
}

/// What a watched request reports as it goes.
pub enum Tick {
    /// A [`Response::Progress`] frame: done of total.
    Frame(u64, u64),
    /// Time passed with no frame (every 500 ms).
    Waited(Duration),
}

/// Sends `req` (one that may stream [`Response::Progress`] frames before its reply) and reads
/// its reply, turning frames and waiting time into progress notifications through `describe`
/// (progress, total, message) and honouring cancellation as `on_cancel` says.
pub async fn call_watched<R: FromReply>(
    a: &Adapter,
    req: &Request,
    w: &mut Watch,
    on_cancel: OnCancel,
    mut describe: impl FnMut(Tick) -> Option<(f64, Option<f64>, String)>,
) -> Watched<R> {
    let client = match Client::connect(&a.paths, a.profile.as_deref()).await {
        Ok(c) => c,
        Err(e) => return Watched::Reply(Err(e)),
    };
    let stream = client.stream();
    let (mut rx, mut tx) = (stream, stream);
    if let Err(e) = write_frame(&mut tx, req).await {
        return Watched::Reply(Err(
            anyhow::Error::new(e).context("cannot send to the broker")
        ));
    }
    let started = Instant::now();
    let mut stopping = false;
    let mut ticks = tokio::time::interval(EVERY);
    ticks.tick().await;
    loop {
        // One read at a time, never dropped halfway through a frame: the connection stays in
        // step when a stop is sent while it waits.
        let next = read_frame::<Response, _>(&mut rx);
        tokio::pin!(next);
        let frame = loop {
            tokio::select! {
                f = &mut next => break f,
                () = w.cancelled(), if !stopping => {
                    if on_cancel == OnCancel::Abandon {
                        return Watched::Abandoned;
                    }
                    stopping = true;
                    // If the stop cannot be sent the reply still comes, later.
                    let _ = write_frame(&mut tx, &Request::SftpStop).await;
                }
                _ = ticks.tick() => {
                    if let Some((p, t, m)) = describe(Tick::Waited(started.elapsed())) {
                        w.report(p, t, m).await;
                    }
                }
            }
        };
        match frame {
            Ok(Response::Progress { done, total }) => {
                if let Some((p, t, m)) = describe(Tick::Frame(done, total)) {
                    w.report(p, t, m).await;
                }
            }
            Ok(r) => return Watched::Reply(expect(r)),
            Err(e) => {
                return Watched::Reply(Err(
                    anyhow::Error::new(e).context("lost the connection to the broker")
                ));
            }
        }
    }
}

/// Bytes for people: `12.5 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
