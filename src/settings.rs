//! Broker settings: stored in the database, changed with `sshkeep config set`, shown by
//! `sshkeep config` and the MCP `ssh_server_status` tool.

use crate::protocol::Setting;

/// Every setting: key, default, description.
pub const KNOWN: &[(&str, u64, &str)] = &[
    (
        "keepalive_interval",
        30,
        "seconds between keepalives for ad-hoc targets (saved connections have their own)",
    ),
    (
        "keepalive_max",
        3,
        "unanswered keepalives before a connection counts as dead (ad-hoc targets)",
    ),
    (
        "idle_timeout",
        600,
        "seconds an unused session stays open (ad-hoc targets)",
    ),
    (
        "reconnect_attempts",
        8,
        "reconnect attempts (exponential backoff, 1 s doubling to 30 s) before a session is failed",
    ),
    (
        "channel_limit",
        10,
        "channels opened at once per session before the server's own limit is learned",
    ),
    (
        "log_max_command_bytes",
        1 << 30,
        "output bytes kept per command; past it a marker line says so and counting goes on",
    ),
    (
        "log_max_total_bytes",
        8 << 30,
        "output bytes kept in all; the oldest finished commands' output goes first",
    ),
    (
        "log_max_age_days",
        30,
        "days a finished command and its output are kept",
    ),
    (
        "auto_lock_idle",
        0,
        "seconds without a key being used after which the vault locks itself (0: never); sessions stay open",
    ),
    (
        "logs_reply_max_bytes",
        256 * 1024,
        "largest logs reply; a larger result is cut and says where to go on",
    ),
];

/// The largest value any setting takes (a million years in seconds, a petabyte in bytes).
pub const MAX_VALUE: u64 = 1 << 45;

/// The settings in force.
#[derive(Clone, Debug)]
pub struct Settings {
    values: Vec<(String, u64)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            values: KNOWN.iter().map(|(k, d, _)| (k.to_string(), *d)).collect(),
        }
    }
}

impl Settings {
    /// A setting's value (the default for unknown keys, which cannot be stored).
    pub fn get(&self, key: &str) -> u64 {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }

    /// Validates and sets a value; returns the parsed number.
    pub fn set(&mut self, key: &str, value: &str) -> Result<u64, String> {
        let Some(slot) = self.values.iter_mut().find(|(k, _)| k == key) else {
            let keys: Vec<&str> = KNOWN.iter().map(|(k, _, _)| *k).collect();
            return Err(format!(
                "unknown setting {key:?}; known: {}",
                keys.join(", ")
            ));
        };
        let v: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("{key} takes a whole number, not {value:?}"))?;
        if v == 0 && key != "auto_lock_idle" {
            return Err(format!("{key} must be above 0"));
        }
        // Every value ends up in a duration, a count or a byte size: none may overflow the
        // arithmetic done with it (a clock plus u64::MAX seconds panics).
        if v > MAX_VALUE {
            return Err(format!("{key} must be at most {MAX_VALUE}"));
        }
        slot.1 = v;
        Ok(v)
    }

    /// All settings for display.
    pub fn describe(&self) -> Vec<Setting> {
        KNOWN
            .iter()
            .map(|(k, d, desc)| Setting {
                key: k.to_string(),
                value: self.get(k).to_string(),
                default: d.to_string(),
                description: desc.to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_validates() {
        let mut s = Settings::default();
        assert_eq!(s.get("channel_limit"), 10);
        assert!(s.set("channel_limit", "4").is_ok());
        assert_eq!(s.get("channel_limit"), 4);
        assert!(s.set("channel_limit", "zero").is_err());
        assert!(s.set("channel_limit", "0").is_err());
        assert!(s.set("nope", "1").expect_err("unknown").contains("known:"));
    }
}
