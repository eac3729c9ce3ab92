//! Open SSH sessions kept for reuse, like OpenSSH's ControlPersist: a session stays open for its
//! idle timeout after its last use and is closed by the reaper after that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::Handle;

use super::hostkey::Verifier;

/// What makes two logins interchangeable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// The fingerprint of the key the session authenticated with.
    pub key_fingerprint: String,
}

struct Entry {
    handle: Arc<Handle<Verifier>>,
    last_used: Instant,
    idle: Duration,
}

/// The broker's open sessions.
#[derive(Default)]
pub struct Pool {
    inner: Mutex<HashMap<PoolKey, Entry>>,
}

impl Pool {
    /// A live session for `key`, marked as used now.
    pub fn get(&self, key: &PoolKey) -> Option<Arc<Handle<Verifier>>> {
        let mut map = self.inner.lock().ok()?;
        match map.get_mut(key) {
            Some(e) if !e.handle.is_closed() => {
                e.last_used = Instant::now();
                Some(e.handle.clone())
            }
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `handle` for reuse for `idle` after its last use.
    pub fn put(&self, key: PoolKey, handle: Arc<Handle<Verifier>>, idle: Duration) {
        if let Ok(mut map) = self.inner.lock() {
            map.insert(
                key,
                Entry {
                    handle,
                    last_used: Instant::now(),
                    idle,
                },
            );
        }
    }

    /// Marks the session as used now (at the end of a command).
    pub fn touch(&self, key: &PoolKey) {
        if let Ok(mut map) = self.inner.lock()
            && let Some(e) = map.get_mut(key)
        {
            e.last_used = Instant::now();
        }
    }

    /// Forgets `handle` if it is still the pooled session for `key` (it failed in use).
    pub fn evict(&self, key: &PoolKey, handle: &Arc<Handle<Verifier>>) {
        if let Ok(mut map) = self.inner.lock()
            && map.get(key).is_some_and(|e| Arc::ptr_eq(&e.handle, handle))
        {
            map.remove(key);
        }
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|m| m.values().filter(|e| !e.handle.is_closed()).count())
            .unwrap_or(0)
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes dead sessions and those idle past their timeout that no command is using, and
    /// returns the idle ones so the caller can disconnect them politely.
    pub fn take_expired(&self) -> Vec<Arc<Handle<Verifier>>> {
        let Ok(mut map) = self.inner.lock() else {
            return Vec::new();
        };
        let now = Instant::now();
        let expired: Vec<PoolKey> = map
            .iter()
            .filter(|(_, e)| {
                e.handle.is_closed()
                    || (Arc::strong_count(&e.handle) == 1
                        && now.duration_since(e.last_used) >= e.idle)
            })
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|k| map.remove(&k))
            .map(|e| e.handle)
            .collect()
    }

    /// Empties the pool (broker shutdown).
    pub fn drain(&self) -> Vec<Arc<Handle<Verifier>>> {
        self.inner
            .lock()
            .map(|mut m| m.drain().map(|(_, e)| e.handle).collect())
            .unwrap_or_default()
    }
}
