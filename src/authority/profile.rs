//! Profiles: what a client working under a name may do. A profile says which connections it
//! reaches, which tools it may use, which command classes run, wait for the user's approval or are
//! refused (with per-connection overrides), how many commands it may start, and the rules it adds
//! to the table. The three built-in profiles cannot be changed; a user's profile starts from one.

use serde::{Deserialize, Serialize};

use super::class::Class;
use super::rules::{RuleError, RuleSet};

/// What happens to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// It runs.
    Run,
    /// It waits until the user, present, approves it.
    Ask,
    /// It is refused; nobody is asked.
    Refuse,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Ask => "ask",
            Self::Refuse => "refuse",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s.trim().to_ascii_lowercase().as_str() {
            "run" | "allow" => Some(Self::Run),
            "ask" => Some(Self::Ask),
            "refuse" | "deny" => Some(Self::Refuse),
            _ => None,
        }
    }
}

/// The decision for each command class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClassDecisions {
    pub read_only: Decision,
    pub safe: Decision,
    pub destructive: Decision,
    pub privileged: Decision,
    pub opaque: Decision,
}

impl ClassDecisions {
    pub fn all(d: Decision) -> Self {
        ClassDecisions {
            read_only: d,
            safe: d,
            destructive: d,
            privileged: d,
            opaque: d,
        }
    }

    pub fn get(&self, class: Class) -> Decision {
        match class {
            Class::ReadOnly => self.read_only,
            Class::Safe => self.safe,
            Class::Destructive => self.destructive,
            Class::Privileged => self.privileged,
            Class::Opaque => self.opaque,
        }
    }

    pub fn set(&mut self, class: Class, d: Decision) {
        match class {
            Class::ReadOnly => self.read_only = d,
            Class::Safe => self.safe = d,
            Class::Destructive => self.destructive = d,
            Class::Privileged => self.privileged = d,
            Class::Opaque => self.opaque = d,
        }
    }
}

/// Tools and operations beyond running commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolDecisions {
    /// Writing or editing remote files (`ssh_file` write/replace/edit).
    pub files_write: Decision,
    /// Sending local files to a server.
    pub upload: Decision,
    /// Bringing a server's files to this machine.
    pub download: Decision,
    /// Opening interactive shells (each line sent with `enter` is still classified).
    pub shells: Decision,
    /// Raw keystrokes into a shell, which no parser can judge.
    pub shell_keys: Decision,
    /// Runs over many connections at once (asked once for the whole run).
    pub bulk: Decision,
    /// Port forwards.
    pub forwards: Decision,
    /// Saving and editing connections (new ones land in the profile's scope).
    pub conn_edit: Decision,
    /// Generating keys, deploying and linking them (never removal, rotation or export).
    pub key_ops: Decision,
}

impl ToolDecisions {
    fn all(d: Decision) -> Self {
        ToolDecisions {
            files_write: d,
            upload: d,
            download: d,
            shells: d,
            shell_keys: d,
            bulk: d,
            forwards: d,
            conn_edit: d,
            key_ops: d,
        }
    }
}

/// Decisions that differ on some connections or client groups ("staging: all; prod: ask").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Override {
    /// Connection names this applies to.
    #[serde(default)]
    pub conns: Vec<String>,
    /// Client groups whose connections this applies to.
    #[serde(default)]
    pub clients: Vec<String>,
    pub classes: ClassDecisions,
}

/// How many commands a profile may start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
}

/// A profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Connections in reach by name. With `clients` also empty, every connection is.
    #[serde(default)]
    pub conns: Vec<String>,
    /// Client groups whose connections are in reach.
    #[serde(default)]
    pub clients: Vec<String>,
    pub classes: ClassDecisions,
    #[serde(default)]
    pub overrides: Vec<Override>,
    pub tools: ToolDecisions,
    #[serde(default)]
    pub quota: Quota,
    /// Rule lines added to the built-in table (see `authority::rules`).
    #[serde(default)]
    pub rules: Vec<String>,
}

/// The names of the built-in profiles, in the order they are listed.
pub const BUILTIN: [&str; 3] = ["agent", "readonly", "unrestricted"];

/// A profile name: short, plain, and not one that could be mistaken for an option.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Profile {
    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<Profile> {
        use Decision::{Ask, Refuse, Run};
        let p = match name {
            "agent" => Profile {
                name: name.into(),
                description: "read-only and safe commands run; destructive, privileged and \
                              opaque ones wait for the user's approval"
                    .into(),
                conns: vec![],
                clients: vec![],
                classes: ClassDecisions {
                    read_only: Run,
                    safe: Run,
                    destructive: Ask,
                    privileged: Ask,
                    opaque: Ask,
                },
                overrides: vec![],
                tools: ToolDecisions {
                    files_write: Ask,
                    upload: Ask,
                    download: Run,
                    shells: Run,
                    shell_keys: Ask,
                    bulk: Run,
                    forwards: Ask,
                    conn_edit: Run,
                    key_ops: Ask,
                },
                quota: Quota::default(),
                rules: vec![],
            },
            "readonly" => Profile {
                name: name.into(),
                description: "read-only commands and reads only; anything else is refused".into(),
                conns: vec![],
                clients: vec![],
                classes: ClassDecisions {
                    read_only: Run,
                    safe: Refuse,
                    destructive: Refuse,
                    privileged: Refuse,
                    opaque: Refuse,
                },
                overrides: vec![],
                tools: ToolDecisions {
                    download: Run,
                    shells: Run,
                    bulk: Run,
                    ..ToolDecisions::all(Refuse)
                },
                quota: Quota::default(),
                rules: vec![],
            },
            "unrestricted" => Profile {
                name: name.into(),
                description: "every command runs; owner actions still need the user".into(),
                conns: vec![],
                clients: vec![],
                classes: ClassDecisions::all(Run),
                overrides: vec![],
                tools: ToolDecisions::all(Run),
                quota: Quota::default(),
                rules: vec![],
            },
            _ => return None,
        };
        Some(p)
    }

    /// Whether a connection (with the client groups it belongs to) is in reach.
    pub fn reaches(&self, conn: &str, conn_groups: &[String]) -> bool {
        (self.conns.is_empty() && self.clients.is_empty())
            || self.conns.iter().any(|c| c == conn)
            || self.clients.iter().any(|g| conn_groups.contains(g))
    }

    /// The decision for a command of `class` on `conn`: the first override naming the connection
    /// or one of its groups, else the profile's own.
    pub fn decide(&self, class: Class, conn: &str, conn_groups: &[String]) -> Decision {
        self.overrides
            .iter()
            .find(|o| {
                o.conns.iter().any(|c| c == conn)
                    || o.clients.iter().any(|g| conn_groups.contains(g))
            })
            .map_or(&self.classes, |o| &o.classes)
            .get(class)
    }

    /// The rules table this profile judges commands by.
    pub fn rule_set(&self) -> Result<RuleSet, RuleError> {
        RuleSet::with_additions(&self.rules)
    }

    /// Reads a stored profile, checking what serde cannot: its name and its rule lines.
    pub fn from_json(text: &str) -> Result<Profile, String> {
        let p: Profile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if !valid_name(&p.name) {
            return Err(format!("profile name {:?} is not a plain name", p.name));
        }
        p.rule_set().map_err(|e| e.to_string())?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_say_what_the_issue_promises() {
        let agent = Profile::builtin("agent").expect("agent");
        assert_eq!(agent.decide(Class::ReadOnly, "web1", &[]), Decision::Run);
        assert_eq!(agent.decide(Class::Safe, "web1", &[]), Decision::Run);
        for c in [Class::Destructive, Class::Privileged, Class::Opaque] {
            assert_eq!(agent.decide(c, "web1", &[]), Decision::Ask);
        }
        let ro = Profile::builtin("readonly").expect("readonly");
        assert_eq!(ro.decide(Class::Safe, "web1", &[]), Decision::Refuse);
        assert_eq!(ro.tools.upload, Decision::Refuse);
        let all = Profile::builtin("unrestricted").expect("unrestricted");
        assert_eq!(all.decide(Class::Opaque, "web1", &[]), Decision::Run);
        assert!(Profile::builtin("root").is_none());
        for name in BUILTIN {
            let p = Profile::builtin(name).expect("builtin");
            let text = serde_json::to_string(&p).expect("json");
            assert_eq!(Profile::from_json(&text), Ok(p));
        }
    }

    #[test]
    fn scope_and_overrides_follow_connections_and_groups() {
        let mut p = Profile::builtin("agent").expect("agent");
        p.clients = vec!["staging".into()];
        p.overrides.push(Override {
            conns: vec![],
            clients: vec!["staging".into()],
            classes: ClassDecisions::all(Decision::Run),
        });
        let staging = vec!["staging".to_string()];
        assert!(p.reaches("s1", &staging));
        assert!(!p.reaches("prod1", &["prod".to_string()]));
        assert_eq!(p.decide(Class::Destructive, "s1", &staging), Decision::Run);
        assert_eq!(p.decide(Class::Destructive, "p1", &[]), Decision::Ask);
    }

    #[test]
    fn stored_profiles_are_checked_when_read() {
        assert!(Profile::from_json("{}").is_err());
        let mut p = Profile::builtin("agent").expect("agent");
        p.name = "--all".into();
        assert!(Profile::from_json(&serde_json::to_string(&p).expect("json")).is_err());
        p.name = "ops".into();
        p.rules = vec!["rm => harmless".into()];
        assert!(Profile::from_json(&serde_json::to_string(&p).expect("json")).is_err());
        let unknown = serde_json::to_string(&Profile::builtin("agent"))
            .expect("json")
            .replacen('{', "{\"sudo\":true,", 1);
        assert!(Profile::from_json(&unknown).is_err());
    }
}
