//! One vocabulary both ways: an MCP reply names a thing as the argument that takes it back
//! (`connectionId`, `username`, `keyName`, `bulkExecId`), not as the broker's protocol field
//! (`id`, `user`, `key`, `bulk_id`). The protocol keeps its snake_case names, which are the
//! CLI's `--json` output; the renames live here, per type, and [`super::reply::ok`] turns the
//! remaining snake_case keys into camelCase.

use serde::Serialize;
use serde_json::Value;

use crate::protocol::{
    BulkConnResult, BulkInfo, CommandInfo, ConnInfo, ForwardInfo, KeyInfo, RotationReport,
    SessionInfo, TestReport,
};

/// A protocol type as an MCP reply shows it.
pub trait Vocab: Serialize {
    /// (path of a protocol field, its MCP name). A path is field names joined by `.`; `[]` after
    /// a name goes into every element of that list.
    const RENAMES: &'static [(&'static str, &'static str)];

    /// The value with its fields renamed (still snake_case elsewhere).
    fn to_mcp(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        for (path, to) in Self::RENAMES {
            let segments: Vec<&str> = path.split('.').collect();
            rename(&mut v, &segments, to);
        }
        v
    }
}

/// Each element of a list as an MCP reply shows it.
pub fn all<T: Vocab>(items: &[T]) -> Vec<Value> {
    items.iter().map(Vocab::to_mcp).collect()
}

fn rename(v: &mut Value, path: &[&str], to: &str) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Value::Object(m) = v else {
        return;
    };
    let (name, each) = match first.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (*first, false),
    };
    if rest.is_empty() {
        if let Some(x) = m.remove(name) {
            m.insert(to.to_string(), x);
        }
        return;
    }
    match (m.get_mut(name), each) {
        (Some(Value::Array(items)), true) => {
            for item in items {
                rename(item, rest, to);
            }
        }
        (Some(inner), false) => rename(inner, rest, to),
        _ => {}
    }
}

impl Vocab for ConnInfo {
    const RENAMES: &'static [(&'static str, &'static str)] = &[
        ("id", "connectionId"),
        ("user", "username"),
        ("key", "keyName"),
        ("password", "passwordSecret"),
    ];
}

impl Vocab for ForwardInfo {
    const RENAMES: &'static [(&'static str, &'static str)] = &[("target", "connectionId")];
}

impl Vocab for TestReport {
    const RENAMES: &'static [(&'static str, &'static str)] =
        &[("user", "username"), ("key", "keyName")];
}

impl Vocab for SessionInfo {
    const RENAMES: &'static [(&'static str, &'static str)] = &[("user", "username")];
}

impl Vocab for CommandInfo {
    const RENAMES: &'static [(&'static str, &'static str)] = &[("bulk_id", "bulkExecId")];
}

impl Vocab for BulkInfo {
    const RENAMES: &'static [(&'static str, &'static str)] = &[("bulk_id", "bulkExecId")];
}

impl Vocab for BulkConnResult {
    const RENAMES: &'static [(&'static str, &'static str)] =
        &[("report.user", "username"), ("report.key", "keyName")];
}

impl Vocab for KeyInfo {
    const RENAMES: &'static [(&'static str, &'static str)] = &[("name", "keyName")];
}

impl Vocab for RotationReport {
    const RENAMES: &'static [(&'static str, &'static str)] = &[
        ("key", "keyName"),
        ("new_key", "newKeyName"),
        ("hosts[].conn", "connectionId"),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConnSpec, HostKeyPolicy, RotationHost, RotationState, RotationStep};

    #[test]
    fn replies_use_the_argument_names() {
        let c = ConnInfo {
            id: "0e28".into(),
            spec: ConnSpec {
                name: "web1".into(),
                host: "h".into(),
                port: 22,
                user: "u".into(),
                key: Some("deploy".into()),
                client: None,
                host_key_policy: HostKeyPolicy::AcceptNew,
                keepalive_interval: 30,
                keepalive_max: 3,
                idle_timeout: 600,
                authorized_keys: ".ssh/authorized_keys".into(),
                jump: Vec::new(),
                connect_timeout: None,
                forward_agent: false,
                password: None,
            },
            pinned_host_key: None,
            created: 0,
        };
        let v = c.to_mcp();
        assert_eq!(v["connectionId"], "0e28");
        assert_eq!(v["username"], "u");
        assert_eq!(v["keyName"], "deploy");
        assert!(v.get("id").is_none() && v.get("user").is_none() && v.get("key").is_none());

        let r = RotationReport {
            rotation_id: String::new(),
            key: "deploy".into(),
            new_key: String::new(),
            new_fingerprint: None,
            state: RotationState::Planned,
            retired_as: None,
            hosts: vec![RotationHost {
                conn: "web1".into(),
                step: RotationStep::Pending,
                error: None,
                next: None,
            }],
        };
        let v = r.to_mcp();
        assert_eq!(v["keyName"], "deploy");
        assert_eq!(v["hosts"][0]["connectionId"], "web1");
    }
}
