//! Broker settings: stored in the database, changed with `sshkeep config set`, shown by
//! `sshkeep config` and the MCP `ssh_server_status` tool.

use crate::protocol::Setting;

/// A setting's key: every setting is named here once, so a misspelt key does not compile (and a
/// misspelt key typed by a user is refused with the list of known ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    KeepaliveInterval,
    KeepaliveMax,
    IdleTimeout,
    ReconnectAttempts,
    ChannelLimit,
    LogMaxCommandBytes,
    LogMaxTotalBytes,
    LogMaxAgeDays,
    AutoLockIdle,
    LogsReplyMaxBytes,
}

impl Key {
    /// Every setting, in the order they are shown.
    pub const ALL: [Key; 10] = [
        Key::KeepaliveInterval,
        Key::KeepaliveMax,
        Key::IdleTimeout,
        Key::ReconnectAttempts,
        Key::ChannelLimit,
        Key::LogMaxCommandBytes,
        Key::LogMaxTotalBytes,
        Key::LogMaxAgeDays,
        Key::AutoLockIdle,
        Key::LogsReplyMaxBytes,
    ];

    /// The name users type and the database stores.
    pub fn name(self) -> &'static str {
        match self {
            Key::KeepaliveInterval => "keepalive_interval",
            Key::KeepaliveMax => "keepalive_max",
            Key::IdleTimeout => "idle_timeout",
            Key::ReconnectAttempts => "reconnect_attempts",
            Key::ChannelLimit => "channel_limit",
            Key::LogMaxCommandBytes => "log_max_command_bytes",
            Key::LogMaxTotalBytes => "log_max_total_bytes",
            Key::LogMaxAgeDays => "log_max_age_days",
            Key::AutoLockIdle => "auto_lock_idle",
            Key::LogsReplyMaxBytes => "logs_reply_max_bytes",
        }
    }

    /// The value in force until the user sets one.
    pub fn default_value(self) -> u64 {
        match self {
            Key::KeepaliveInterval => 30,
            Key::KeepaliveMax => 3,
            Key::IdleTimeout => 600,
            Key::ReconnectAttempts => 8,
            Key::ChannelLimit => 10,
            Key::LogMaxCommandBytes => 1 << 30,
            Key::LogMaxTotalBytes => 8 << 30,
            Key::LogMaxAgeDays => 30,
            Key::AutoLockIdle => 0,
            Key::LogsReplyMaxBytes => 256 * 1024,
        }
    }

    /// What the setting does, for `sshkeep config` and `ssh_server_status`.
    pub fn description(self) -> &'static str {
        match self {
            Key::KeepaliveInterval => {
                "seconds between keepalives for ad-hoc targets (saved connections have their own)"
            }
            Key::KeepaliveMax => {
                "unanswered keepalives before a connection counts as dead (ad-hoc targets)"
            }
            Key::IdleTimeout => "seconds an unused session stays open (ad-hoc targets)",
            Key::ReconnectAttempts => {
                "reconnect attempts (exponential backoff, 1 s doubling to 30 s) before a session is failed"
            }
            Key::ChannelLimit => {
                "channels opened at once per session before the server's own limit is learned"
            }
            Key::LogMaxCommandBytes => {
                "output bytes kept per command; past it a marker line says so and counting goes on"
            }
            Key::LogMaxTotalBytes => {
                "output bytes kept in all; the oldest finished commands' output goes first"
            }
            Key::LogMaxAgeDays => "days a finished command and its output are kept",
            Key::AutoLockIdle => {
                "seconds without a key being used after which the vault locks itself (0: never); sessions stay open"
            }
            Key::LogsReplyMaxBytes => {
                "largest logs reply; a larger result is cut and says where to go on"
            }
        }
    }

    /// Reads a name as users type it.
    pub fn parse(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Its slot in `Settings::values` (`ALL` lists the variants in declaration order).
    fn index(self) -> usize {
        self as usize
    }
}

/// The largest value any setting takes (a million years in seconds, a petabyte in bytes).
pub const MAX_VALUE: u64 = 1 << 45;

/// The settings in force.
#[derive(Clone, Debug)]
pub struct Settings {
    values: [u64; Key::ALL.len()],
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            values: Key::ALL.map(Key::default_value),
        }
    }
}

impl Settings {
    /// A setting's value.
    pub fn get(&self, key: Key) -> u64 {
        self.values[key.index()]
    }

    /// Validates and sets a value; returns the parsed number.
    pub fn set(&mut self, key: &str, value: &str) -> Result<u64, String> {
        let Some(k) = Key::parse(key) else {
            let keys: Vec<&str> = Key::ALL.iter().map(|k| k.name()).collect();
            return Err(format!(
                "unknown setting {key:?}; known: {}",
                keys.join(", ")
            ));
        };
        let v: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("{key} takes a whole number, not {value:?}"))?;
        if v == 0 && k != Key::AutoLockIdle {
            return Err(format!("{key} must be above 0"));
        }
        // Every value ends up in a duration, a count or a byte size: none may overflow the
        // arithmetic done with it (a clock plus u64::MAX seconds panics).
        if v > MAX_VALUE {
            return Err(format!("{key} must be at most {MAX_VALUE}"));
        }
        self.values[k.index()] = v;
        Ok(v)
    }

    /// All settings for display.
    pub fn describe(&self) -> Vec<Setting> {
        Key::ALL
            .iter()
            .map(|&k| Setting {
                key: k.name().to_string(),
                value: self.get(k).to_string(),
                default: k.default_value().to_string(),
                description: k.description().to_string(),
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
        assert_eq!(s.get(Key::ChannelLimit), 10);
        assert!(s.set("channel_limit", "4").is_ok());
        assert_eq!(s.get(Key::ChannelLimit), 4);
        assert!(s.set("channel_limit", "zero").is_err());
        assert!(s.set("channel_limit", "0").is_err());
        assert!(s.set("nope", "1").expect_err("unknown").contains("known:"));
        for (i, k) in Key::ALL.iter().enumerate() {
            assert_eq!(k.index(), i, "{k:?}");
            assert_eq!(Key::parse(k.name()), Some(*k));
        }
    }
}
