//! The idle auto-lock: after `auto_lock_idle` seconds in which no key was decrypted, the vault
//! locks itself. Open sessions stay open; new logins need `sshkeep unlock` and say why.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::core::{Core, Peer};

/// Checks every few seconds until the broker stops.
pub async fn run(broker: Arc<Core>) {
    let me = Peer {
        pid: Some(std::process::id()),
        uid: Some(crate::system::current_uid()),
        exe: Some("sshkeep broker (auto-lock)".into()),
        person: None,
    };
    loop {
        let idle_limit = broker.settings().get(crate::settings::Key::AutoLockIdle) as i64;
        let tick = if idle_limit > 0 {
            (idle_limit as u64 / 4).clamp(1, 15)
        } else {
            5
        };
        tokio::time::sleep(Duration::from_secs(tick)).await;
        if idle_limit <= 0 {
            continue;
        }
        // Read the idle time while holding the vault, so an unlock that just happened (and
        // restarted the clock under the same guard) is never undone.
        let (locked, idle) = match broker.vault() {
            Ok(mut slot) => {
                let idle = broker.secs_since_key_use();
                match slot.as_mut() {
                    Some(v) if v.is_unlocked() && idle >= idle_limit => {
                        v.lock();
                        (true, idle)
                    }
                    _ => (false, idle),
                }
            }
            Err(_) => (false, 0),
        };
        if locked {
            let why = format!(
                "locked by itself after {idle} s without a key being used (auto_lock_idle = {idle_limit})"
            );
            broker.set_lock_reason(why.clone());
            tracing::info!("{why}");
            let _ = broker.audit(&me, "vault_auto_lock", None, None, why);
        }
    }
}
