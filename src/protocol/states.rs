//! The states and kinds the wire carries as words, as enums: parsed once at the edge (the
//! database row, the JSON frame), matched exhaustively inside. Each serialises to the word it
//! always had, so the wire format does not change.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// Declares a word enum with `as_str`, `parse` and `Display`, serialised as its word.
macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word on the wire and in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            /// Reads the word; `None` for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            // `pad`, so a width in the format string (a table column) applies to the word.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

word_enum! {
    /// What a request that waits for the user's approval would start.
    ApprovalKind {
        Command = "command",
        /// A bulk run, asked about once for all its targets.
        Bulk = "bulk",
    }
}

word_enum! {
    /// Where a request for approval stands.
    ApprovalState {
        /// Waiting for the user.
        Pending = "pending",
        /// The user approved it; what it asked for was started.
        Approved = "approved",
        /// The user refused it; nothing ran.
        Denied = "denied",
        /// Nobody decided before it expired (or the broker restarted); nothing ran.
        Expired = "expired",
    }
}

word_enum! {
    /// A bulk run as a whole.
    BulkState {
        /// Some target has not ended.
        Running = "running",
        /// Every target succeeded.
        Completed = "completed",
        /// Every target ended and at least one did not succeed.
        Failed = "failed",
        /// Held until the user approves the whole run; no target has started.
        AwaitingApproval = "awaiting_approval",
        /// The user refused the run; nothing ran.
        Denied = "denied",
        /// Nobody approved the run in time; nothing ran.
        Expired = "expired",
    }
}

word_enum! {
    /// Why a bulk target did not succeed, when its command ended.
    EndingCode {
        TimedOut = "timed_out",
        /// The command exited non-zero.
        ExitStatus = "exit_status",
        Signal = "signal",
        /// The connection dropped before the command's status arrived.
        ConnectionLost = "connection_lost",
        Failed = "failed",
    }
}

/// Why a bulk target did not succeed: how its command ended, or the broker's error code when it
/// never ran (an unknown target, a refused host key, a failed login).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetError {
    Ending(EndingCode),
    Broker(ErrorCode),
}

impl TargetError {
    /// The word on the wire and in the database.
    pub fn as_str(self) -> String {
        match self {
            TargetError::Ending(e) => e.as_str().to_string(),
            TargetError::Broker(c) => serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "internal".into()),
        }
    }

    /// Reads a stored word; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        EndingCode::parse(s).map(TargetError::Ending).or_else(|| {
            serde_json::from_value(serde_json::Value::String(s.to_string()))
                .ok()
                .map(TargetError::Broker)
        })
    }
}

word_enum! {
    /// An SSH session held by the broker.
    SessionState {
        Open = "open",
        /// The connection dropped; the broker is logging in again.
        Reconnecting = "reconnecting",
        /// Reconnecting gave up.
        Failed = "failed",
        Closed = "closed",
    }
}

word_enum! {
    /// An interactive shell.
    ShellState {
        /// Listed while its channel and PTY are still being set up.
        Opening = "opening",
        Open = "open",
        Reconnecting = "reconnecting",
        /// The shell's program ended.
        Exited = "exited",
        Closed = "closed",
    }
}

word_enum! {
    /// A key rotation as a whole.
    RotationState {
        /// A dry run: nothing was done.
        Planned = "planned",
        Running = "running",
        /// Some hosts failed: `--resume` goes on.
        Partial = "partial",
        Done = "done",
    }
}

word_enum! {
    /// How far a rotation got on one host.
    RotationStep {
        Pending = "pending",
        /// The new key was added to authorized_keys.
        Appended = "appended",
        /// A login with the new key worked.
        Verified = "verified",
        /// The connection now uses the new key.
        Switched = "switched",
        /// The old key was taken out of authorized_keys.
        Cleaned = "cleaned",
        /// The connection was unlinked or removed during the rotation.
        Dropped = "dropped",
    }
}

word_enum! {
    /// What a remote directory entry is.
    EntryKind {
        File = "file",
        Dir = "dir",
        Symlink = "symlink",
        Other = "other",
    }
}

word_enum! {
    /// Which stream a stored output line came from.
    LineStream {
        Stdout = "stdout",
        Stderr = "stderr",
        /// sshkeep's own notes in a command's log (a reconnect, lost output).
        Sshkeep = "sshkeep",
    }
}

word_enum! {
    /// What one fleet-audit check found.
    FindingStatus {
        Pass = "pass",
        Fail = "fail",
        Warn = "warn",
        Info = "info",
        /// The check did not run or did not report; `evidence` says why.
        Skipped = "skipped",
    }
}

word_enum! {
    /// How much a failed fleet-audit check matters.
    Severity {
        High = "high",
        Medium = "medium",
        Low = "low",
        Info = "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_and_serialises_as_itself() {
        for s in RotationStep::ALL {
            assert_eq!(RotationStep::parse(s.as_str()), Some(*s));
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::json!(s.as_str()))
            );
        }
        assert_eq!(BulkState::parse("done"), None);
        assert_eq!(LineStream::parse("stderr"), Some(LineStream::Stderr));
    }

    #[test]
    fn a_target_error_is_an_ending_or_a_broker_code() {
        let t = TargetError::parse("timed_out");
        assert_eq!(t, Some(TargetError::Ending(EndingCode::TimedOut)));
        let h = TargetError::parse("host_key_changed");
        assert_eq!(h, Some(TargetError::Broker(ErrorCode::HostKeyChanged)));
        assert_eq!(
            h.map(TargetError::as_str).as_deref(),
            Some("host_key_changed")
        );
        assert_eq!(TargetError::parse("nonsense"), None);
        let v: TargetError = serde_json::from_str("\"exit_status\"").expect("json");
        assert_eq!(v, TargetError::Ending(EndingCode::ExitStatus));
    }
}
