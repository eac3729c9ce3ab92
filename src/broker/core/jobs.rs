//! The jobs running in this broker (commands, and each target of a fleet run): their stop
//! controls, how a job ended, and the bookkeeping that records its end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::broker::core::Core;
use crate::db::now_ms;
use crate::protocol::CommandState;

/// Why a job is being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Cancel,
    Timeout,
}

/// How a job ended.
#[derive(Debug)]
pub struct Ending {
    pub state: CommandState,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    pub error: Option<String>,
}

impl Default for Ending {
    /// A failure with nothing known (callers fill in what they know).
    fn default() -> Self {
        Self {
            state: CommandState::Failed,
            exit_code: None,
            signal: None,
            error: None,
        }
    }
}

impl Ending {
    pub fn failed(msg: impl Into<String>) -> Self {
        Self {
            state: CommandState::Failed,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

/// A running job's controls.
struct Running {
    stop: watch::Sender<Option<Stop>>,
    done: watch::Receiver<bool>,
}

/// The jobs running in this broker.
#[derive(Default)]
pub struct Jobs {
    map: Mutex<HashMap<String, Running>>,
}

impl Jobs {
    /// Registers a job: its stop signal to watch, and the flag to raise when it has ended.
    fn insert(&self, id: &str) -> (watch::Receiver<Option<Stop>>, watch::Sender<bool>) {
        let (stop, stop_rx) = watch::channel(None);
        let (done_tx, done) = watch::channel(false);
        if let Ok(mut m) = self.map.lock() {
            m.insert(id.to_string(), Running { stop, done });
        }
        (stop_rx, done_tx)
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }

    /// Asks a running job to stop; returns what turns true once it has ended (`None` when no
    /// such job runs here).
    pub fn signal(&self, id: &str, s: Stop) -> Option<watch::Receiver<bool>> {
        let m = self.map.lock().ok()?;
        let r = m.get(id)?;
        let _ = r.stop.send(Some(s));
        Some(r.done.clone())
    }

    /// What turns true once a running job has ended (`None` when no such job runs here).
    pub fn done(&self, id: &str) -> Option<watch::Receiver<bool>> {
        Some(self.map.lock().ok()?.get(id)?.done.clone())
    }

    /// How many jobs run now.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether none run.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sleeps until `deadline`; without one, never wakes.
pub async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Waits until the job is asked to stop, or its deadline passes.
pub async fn stopped(stop: &mut watch::Receiver<Option<Stop>>, deadline: Option<Instant>) -> Stop {
    // The watch borrow must not live across an await (it is not Send): copy the value out.
    let asked = async { stop.wait_for(|s| s.is_some()).await.ok().and_then(|s| *s) };
    let got = tokio::select! {
        _ = until(deadline) => Some(Stop::Timeout),
        got = asked => got,
    };
    match got {
        Some(s) => s,
        // The controls are gone: only the deadline can still stop the command.
        None => {
            until(deadline).await;
            Stop::Timeout
        }
    }
}

/// Starts a command's task: registers its controls, runs the job `start` makes from the stop
/// signal, then stores how it ended and unregisters it.
pub fn spawn_tracked<Fut>(
    broker: &Arc<Core>,
    id: &str,
    start: impl FnOnce(watch::Receiver<Option<Stop>>) -> Fut,
) where
    Fut: std::future::Future<Output = Ending> + Send + 'static,
{
    let (stop, done) = broker.jobs().insert(id);
    let job = start(stop);
    let b = broker.clone();
    let cmd: Arc<str> = id.into();
    tokio::spawn(async move {
        let ending = job.await;
        finish(&b, &cmd, ending).await;
        b.jobs().remove(&cmd);
        let _ = done.send(true);
    });
}

async fn finish(broker: &Arc<Core>, cmd: &Arc<str>, e: Ending) {
    if let Some(err) = &e.error
        && e.state != CommandState::Failed
    {
        broker.log_writer().marker(cmd, format!("[sshkeep] {err}"));
    }
    broker.log_writer().finish(cmd).await;
    let state = e.state;
    let ended = now_ms();
    // The end is recorded even when the database refuses writes for a while (a full disk):
    // retried until it is, so the command never stays `running` once space is back.
    for attempt in 0u32.. {
        let stored = broker.db().is_ok_and(|db| {
            db.command_ended(
                cmd,
                state,
                e.exit_code,
                e.signal.as_deref(),
                e.error.as_deref(),
                ended,
            )
            .is_ok()
        });
        if stored || attempt >= 3600 {
            break;
        }
        if attempt == 0 {
            tracing::warn!(command = %cmd, "cannot record the command's end yet; retrying");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
