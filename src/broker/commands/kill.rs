//! Stopping a command on the server: killing its process group, and how a stopped command is
//! reported.

use std::sync::Arc;
use std::time::Duration;

use super::wrap;
use crate::broker::core::jobs::{Ending, Stop};
use crate::broker::core::remote_script::{self, Lane, Script};
use crate::broker::core::sessions::Session;
use crate::protocol::CommandState;

/// How a command stopped by `s` ended; `kill` is what became of its process group, when one
/// was known.
pub fn stopped(s: Stop, kill: Option<(i64, Killed)>) -> Ending {
    let killed = match kill {
        None => String::new(),
        Some((p, Killed::Gone)) => format!("; process group {p} was killed"),
        Some((p, Killed::Survived)) => format!(
            "; process group {p} survived TERM and KILL on the server (look with `ps -g {p}` there)"
        ),
        Some((p, Killed::Unreachable)) => format!(
            "; the server could not be reached to kill process group {p}: it may still run there"
        ),
    };
    let state = match s {
        Stop::Cancel => CommandState::Cancelled,
        Stop::Timeout => CommandState::TimedOut,
    };
    let what = match s {
        Stop::Cancel => "cancelled on request",
        Stop::Timeout => "timed out",
    };
    Ending {
        state,
        error: Some(format!("{what}{killed}")),
        ..Default::default()
    }
}

/// What became of a process group sshkeep was asked to kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Killed {
    /// No process of the group is left.
    Gone,
    /// A process of the group was still there after TERM and KILL.
    Survived,
    /// The kill could not be run or did not report (connection down, server too slow).
    Unreachable,
}

/// Kills a remote process group on a channel of its own, outside the session's queue (a cancel
/// must not wait behind the commands it competes with), and reports whether the group is gone.
/// Bounded in time: a cancel never hangs on a server that stopped answering.
pub async fn kill_remote_group(session: &Arc<Session>, pgid: i64) -> Killed {
    let script = wrap::kill_group(pgid);
    let run = remote_script::run(
        session,
        Script {
            text: &script,
            stdin: None,
            cap: 4096,
            quiet: None,
            lane: Lane::Outside,
        },
    );
    let Ok(Ok(ran)) = tokio::time::timeout(Duration::from_secs(20), run).await else {
        return Killed::Unreachable;
    };
    let out = String::from_utf8_lossy(&ran.stdout);
    if out.contains(wrap::GROUP_GONE) {
        Killed::Gone
    } else if out.contains(wrap::GROUP_ALIVE) {
        Killed::Survived
    } else {
        Killed::Unreachable
    }
}
