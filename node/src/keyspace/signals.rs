//! What a write tells the rest of the shard: which watched keys it touched (WATCH/EXEC) and
//! which keys may now serve a blocked client (BLPOP and friends). Valkey's `signalModifiedKey`
//! and `signalKeyAsReady`.
//!
//! Both registries are empty on almost every shard almost all the time, so a write pays one
//! `is_empty` check for each.

use super::SmallBytes;
use std::collections::{HashMap, HashSet};

/// A (database, key) pair.
pub type DbKey = (usize, SmallBytes);

/// One client's watch on one key.
#[derive(Debug, Clone, Copy)]
struct Watcher {
    client: u64,
    /// The key was already expired when watched (Valkey's `wk->expired`): its deletion is no
    /// change.
    expired: bool,
    /// The key's deadline when watched: passing it before EXEC is a change (the key expired).
    deadline: Option<i64>,
}

/// Clients that WATCH keys of this shard, and which of them saw a watched key change.
#[derive(Debug, Default)]
pub struct Watches {
    by_key: HashMap<DbKey, Vec<Watcher>>,
    dirty: HashSet<u64>,
}

impl Watches {
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Client `client` watches `key` (live, without a deadline, or absent).
    pub fn watch(&mut self, db: usize, key: &[u8], client: u64) {
        self.watch_key(db, key, client, false, None);
    }

    /// Client `client` watches `key`, which is `expired` (present but past its deadline) or
    /// live with `deadline`.
    pub fn watch_key(
        &mut self,
        db: usize,
        key: &[u8],
        client: u64,
        expired: bool,
        deadline: Option<i64>,
    ) {
        let v = self.by_key.entry((db, SmallBytes::new(key))).or_default();
        if !v.iter().any(|w| w.client == client) {
            v.push(Watcher {
                client,
                expired,
                deadline: if expired { None } else { deadline },
            });
        }
    }

    /// Forgets `client`'s watches on `keys` (UNWATCH, EXEC, DISCARD, disconnect).
    pub fn unwatch(&mut self, client: u64, keys: &[(usize, Vec<u8>)]) {
        for (db, key) in keys {
            let k = (*db, SmallBytes::new(key));
            if let Some(v) = self.by_key.get_mut(&k) {
                v.retain(|w| w.client != client);
                if v.is_empty() {
                    self.by_key.remove(&k);
                }
            }
        }
        self.dirty.remove(&client);
    }

    /// A write changed `key`: every client watching it is now dirty.
    pub fn touched(&mut self, db: usize, key: &[u8]) {
        self.touched_exists(db, key, true);
    }

    /// A write touched `key`, which `exists` afterwards. Watchers that saw the key already
    /// expired are not dirtied by its removal (Valkey: deleting a stale key is no change).
    pub fn touched_exists(&mut self, db: usize, key: &[u8], exists: bool) {
        if self.by_key.is_empty() {
            return;
        }
        if let Some(v) = self.by_key.get_mut(&(db, SmallBytes::new(key))) {
            for w in v.iter_mut() {
                if w.expired && !exists {
                    w.expired = false;
                    continue;
                }
                w.expired = false;
                self.dirty.insert(w.client);
            }
        }
    }

    /// A whole database changed (FLUSHDB, FLUSHALL, SWAPDB): `before(key)` says whether a
    /// watched key was present (live or expired), `after(key)` what is there now: `None`
    /// (absent), `Some(false)` live, `Some(true)` present but expired. As Valkey's
    /// `touchAllWatchedKeysInDb`, a key present in neither is untouched, and a stale key that
    /// is gone or still stale is no change.
    pub fn touched_db(
        &mut self,
        db: usize,
        before: &mut dyn FnMut(&[u8]) -> bool,
        after: &mut dyn FnMut(&[u8]) -> Option<bool>,
    ) {
        for ((d, key), v) in self.by_key.iter_mut() {
            if *d != db {
                continue;
            }
            let existed = before(&key[..]);
            let now = after(&key[..]);
            if !existed && now.is_none() {
                continue;
            }
            for w in v.iter_mut() {
                if w.expired {
                    match now {
                        None => {
                            w.expired = false;
                            continue;
                        }
                        Some(true) => continue,
                        Some(false) => {}
                    }
                } else if !existed && now == Some(true) {
                    w.expired = true;
                    continue;
                }
                self.dirty.insert(w.client);
            }
        }
    }

    /// Whether a write touched one of `client`'s watched keys on this shard.
    pub fn is_dirty(&self, client: u64) -> bool {
        self.dirty.contains(&client)
    }

    /// Whether EXEC must fail for `client` here: one of its watched `keys` changed or, live
    /// when watched, has passed its deadline by `now_ms` (Valkey's `isWatchedKeyExpired`).
    pub fn exec_dirty(&self, client: u64, keys: &[(usize, Vec<u8>)], now_ms: i64) -> bool {
        if self.dirty.contains(&client) {
            return true;
        }
        keys.iter().any(|(db, key)| {
            self.by_key
                .get(&(*db, SmallBytes::new(key)))
                .and_then(|v| v.iter().find(|w| w.client == client))
                .is_some_and(|w| w.deadline.is_some_and(|d| d <= now_ms))
        })
    }

    /// Watched keys on this shard (INFO `total_watched_keys`).
    pub fn keys(&self) -> usize {
        self.by_key.len()
    }
}

/// Keys that blocked clients wait on, and those a write made ready since the last check.
#[derive(Debug, Default)]
pub struct Readiness {
    /// How many waiters each key has (the waiters themselves live in the shard's block table).
    waited: HashMap<DbKey, usize>,
    ready: Vec<DbKey>,
}

impl Readiness {
    pub fn wait(&mut self, db: usize, key: &[u8]) {
        *self.waited.entry((db, SmallBytes::new(key))).or_insert(0) += 1;
    }

    pub fn unwait(&mut self, db: usize, key: &[u8]) {
        let k = (db, SmallBytes::new(key));
        if let Some(n) = self.waited.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                self.waited.remove(&k);
            }
        }
    }

    /// A write may have made `key` able to serve a waiter.
    pub fn signal(&mut self, db: usize, key: &[u8]) {
        if self.waited.is_empty() {
            return;
        }
        let k = (db, SmallBytes::new(key));
        if self.waited.contains_key(&k) && !self.ready.contains(&k) {
            self.ready.push(k);
        }
    }

    /// Takes the keys signalled since the last call.
    pub fn take_ready(&mut self) -> Vec<DbKey> {
        std::mem::take(&mut self.ready)
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write to a watched key makes its watchers dirty, and only them; unwatch clears.
    #[test]
    fn watches() {
        let mut w = Watches::default();
        let a = [(0, b"a".to_vec())];
        w.watch(0, b"a", 1);
        w.watch(0, b"a", 2);
        w.watch(1, b"a", 3);
        w.touched(0, b"b");
        assert!(!w.exec_dirty(1, &a, 0));
        w.touched(0, b"a");
        assert!(w.exec_dirty(1, &a, 0) && w.exec_dirty(2, &a, 0) && !w.exec_dirty(3, &a, 0));
        w.unwatch(1, &a);
        assert!(!w.exec_dirty(1, &a, 0));
        w.touched_db(1, &mut |_| true, &mut |_| None);
        assert!(w.exec_dirty(3, &[(1, b"a".to_vec())], 0));
    }

    /// A key watched while stale: deleting it is no change, writing it is; a live key with a
    /// deadline is dirty once the deadline passes.
    #[test]
    fn stale_and_expiring_keys() {
        let mut w = Watches::default();
        let k = [(0, b"k".to_vec())];
        w.watch_key(0, b"k", 1, true, Some(5));
        w.touched_exists(0, b"k", false);
        assert!(!w.exec_dirty(1, &k, 100));
        w.touched_exists(0, b"k", true);
        assert!(w.exec_dirty(1, &k, 100));

        let mut w = Watches::default();
        w.watch_key(0, b"k", 1, false, Some(50));
        assert!(!w.exec_dirty(1, &k, 49));
        assert!(w.exec_dirty(1, &k, 50));

        // FLUSHDB of a database without the key leaves its watchers alone.
        let mut w = Watches::default();
        w.watch(0, b"k", 1);
        w.touched_db(0, &mut |_| false, &mut |_| None);
        assert!(!w.exec_dirty(1, &k, 0));
    }

    /// Only keys someone waits on become ready, once each until taken.
    #[test]
    fn readiness() {
        let mut r = Readiness::default();
        r.signal(0, b"k");
        assert!(!r.has_ready());
        r.wait(0, b"k");
        r.signal(0, b"k");
        r.signal(0, b"k");
        assert_eq!(r.take_ready().len(), 1);
        r.unwait(0, b"k");
        r.signal(0, b"k");
        assert!(!r.has_ready());
    }
}
