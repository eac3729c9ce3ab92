//! The verdict on one request from a client working under a profile: run it, wait for the user's
//! approval, or refuse it, with the reason the agent and the user are shown. Pure: the broker
//! supplies the profile, the connection's groups and the counts; this decides.

use super::class::{Class, Classification};
use super::classify;
use super::profile::{Decision, Profile};

/// What becomes of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Run,
    /// Wait for the user; `reason` names the part and its class.
    Ask {
        reason: String,
    },
    /// Refused outright; nobody is asked.
    Refuse {
        reason: String,
    },
}

impl Verdict {
    fn from(decision: Decision, reason: String) -> Verdict {
        match decision {
            Decision::Run => Verdict::Run,
            Decision::Ask => Verdict::Ask { reason },
            Decision::Refuse => Verdict::Refuse { reason },
        }
    }

    /// The stricter of two verdicts (refuse over ask over run); the first wins a tie.
    pub fn stricter(self, other: Verdict) -> Verdict {
        fn rank(v: &Verdict) -> u8 {
            match v {
                Verdict::Run => 0,
                Verdict::Ask { .. } => 1,
                Verdict::Refuse { .. } => 2,
            }
        }
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
}

/// Operations other than running a command, each with its own decision in a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    FilesWrite,
    Upload,
    Download,
    Shells,
    ShellKeys,
    Bulk,
    Forwards,
    ConnEdit,
    KeyOps,
}

impl Tool {
    fn describe(self) -> &'static str {
        match self {
            Tool::FilesWrite => "writing remote files",
            Tool::Upload => "uploading files",
            Tool::Download => "downloading files",
            Tool::Shells => "interactive shells",
            Tool::ShellKeys => "raw keystrokes into a shell",
            Tool::Bulk => "runs over many connections",
            Tool::Forwards => "port forwards",
            Tool::ConnEdit => "saving or editing connections",
            Tool::KeyOps => "key generation, deployment and linking",
        }
    }
}

/// One connection a request touches, with the client groups it belongs to.
pub struct Target<'a> {
    pub conn: &'a str,
    pub groups: &'a [String],
}

/// Whether the profile reaches every target: the first one out of reach refuses the request.
pub fn check_scope(profile: &Profile, targets: &[Target<'_>]) -> Verdict {
    match targets.iter().find(|t| !profile.reaches(t.conn, t.groups)) {
        Some(t) => Verdict::Refuse {
            reason: format!(
                "connection {:?} is outside what profile {:?} reaches",
                t.conn, profile.name
            ),
        },
        None => Verdict::Run,
    }
}

/// The verdict on running `command` on every target (one target for a command, many for a bulk
/// run, which is asked about once). Returns the classification too, for the audit record.
pub fn check_command(
    profile: &Profile,
    targets: &[Target<'_>],
    command: &str,
) -> (Classification, Verdict) {
    let rules = match profile.rule_set() {
        Ok(r) => r,
        Err(e) => {
            let reason = format!(
                "profile {:?} has a rule sshkeep cannot read: {e}",
                profile.name
            );
            return (Classification::default(), Verdict::Refuse { reason });
        }
    };
    let c = classify(command, &rules);
    let mut verdict = check_scope(profile, targets);
    let classes: Vec<Class> = if c.findings.is_empty() {
        vec![Class::ReadOnly]
    } else {
        c.findings.iter().map(|f| f.class).collect()
    };
    for t in targets {
        for (i, class) in classes.iter().enumerate() {
            let decision = profile.decide(*class, t.conn, t.groups);
            if decision == Decision::Run {
                continue;
            }
            let reason = match c.findings.get(i) {
                Some(f) => format!(
                    "{}: `{}` ({}); profile {:?} says {} on {}",
                    f.class,
                    f.part,
                    f.why,
                    profile.name,
                    decision.as_str(),
                    t.conn
                ),
                None => format!("profile {:?} says {}", profile.name, decision.as_str()),
            };
            verdict = verdict.stricter(Verdict::from(decision, reason));
        }
    }
    (c, verdict)
}

/// The verdict on an operation other than a command.
pub fn check_tool(profile: &Profile, tool: Tool, targets: &[Target<'_>]) -> Verdict {
    let t = &profile.tools;
    let decision = match tool {
        Tool::FilesWrite => t.files_write,
        Tool::Upload => t.upload,
        Tool::Download => t.download,
        Tool::Shells => t.shells,
        Tool::ShellKeys => t.shell_keys,
        Tool::Bulk => t.bulk,
        Tool::Forwards => t.forwards,
        Tool::ConnEdit => t.conn_edit,
        Tool::KeyOps => t.key_ops,
    };
    let reason = format!(
        "profile {:?} says {} for {}",
        profile.name,
        decision.as_str(),
        tool.describe()
    );
    check_scope(profile, targets).stricter(Verdict::from(decision, reason))
}

/// Whether another command would pass the profile's quota, given how many it started in the last
/// hour and day.
pub fn check_quota(profile: &Profile, last_hour: u32, last_day: u32) -> Verdict {
    let q = &profile.quota;
    for (limit, used, per) in [
        (q.per_hour, last_hour, "an hour"),
        (q.per_day, last_day, "a day"),
    ] {
        if let Some(limit) = limit.filter(|l| used >= *l) {
            return Verdict::Refuse {
                reason: format!(
                    "profile {:?} may start {limit} commands {per} and has started {used}",
                    profile.name
                ),
            };
        }
    }
    Verdict::Run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::profile::{ClassDecisions, Override};

    fn on(conn: &str) -> [Target<'_>; 1] {
        [Target { conn, groups: &[] }]
    }

    #[test]
    fn the_agent_profile_runs_reads_and_asks_for_the_rest() {
        let agent = Profile::builtin("agent").expect("agent");
        assert_eq!(check_command(&agent, &on("web1"), "ls -la").1, Verdict::Run);
        let (c, v) = check_command(&agent, &on("web1"), "ls; rm -f F");
        assert_eq!(c.class(), Class::Destructive);
        match v {
            Verdict::Ask { reason } => {
                assert!(
                    reason.contains("rm -f F") && reason.contains("web1"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        let ro = Profile::builtin("readonly").expect("readonly");
        assert!(matches!(
            check_command(&ro, &on("web1"), "rm -f F").1,
            Verdict::Refuse { .. }
        ));
        assert!(matches!(
            check_command(&ro, &on("web1"), "mkdir d").1,
            Verdict::Refuse { .. }
        ));
        let all = Profile::builtin("unrestricted").expect("unrestricted");
        assert_eq!(
            check_command(&all, &on("web1"), "rm -rf /srv").1,
            Verdict::Run
        );
    }

    #[test]
    fn one_target_out_of_reach_refuses_the_whole_run() {
        let mut p = Profile::builtin("unrestricted").expect("unrestricted");
        p.clients = vec!["acme".into()];
        let acme = vec!["acme".to_string()];
        let other = vec!["globex".to_string()];
        let targets = [
            Target {
                conn: "a1",
                groups: &acme,
            },
            Target {
                conn: "g1",
                groups: &other,
            },
        ];
        match check_command(&p, &targets, "uptime").1 {
            Verdict::Refuse { reason } => assert!(reason.contains("g1"), "{reason}"),
            v => panic!("{v:?}"),
        }
        assert!(matches!(
            check_tool(&p, Tool::Upload, &targets[1..]),
            Verdict::Refuse { .. }
        ));
        assert_eq!(check_tool(&p, Tool::Upload, &targets[..1]), Verdict::Run);
    }

    #[test]
    fn overrides_apply_per_connection_in_a_bulk_run() {
        let mut p = Profile::builtin("agent").expect("agent");
        p.overrides.push(Override {
            conns: vec!["staging1".into()],
            clients: vec![],
            classes: ClassDecisions::all(Decision::Run),
        });
        assert_eq!(
            check_command(&p, &on("staging1"), "rm -f F").1,
            Verdict::Run
        );
        let both = [
            Target {
                conn: "staging1",
                groups: &[],
            },
            Target {
                conn: "prod1",
                groups: &[],
            },
        ];
        assert!(matches!(
            check_command(&p, &both, "rm -f F").1,
            Verdict::Ask { .. }
        ));
    }

    #[test]
    fn the_quota_stops_the_command_after_the_last_allowed() {
        let mut p = Profile::builtin("agent").expect("agent");
        p.quota.per_hour = Some(3);
        assert_eq!(check_quota(&p, 2, 2), Verdict::Run);
        assert!(matches!(check_quota(&p, 3, 3), Verdict::Refuse { .. }));
        p.quota = Default::default();
        p.quota.per_day = Some(10);
        assert!(matches!(check_quota(&p, 0, 10), Verdict::Refuse { .. }));
    }
}
