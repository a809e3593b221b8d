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

/// Clients that WATCH keys of this shard, and which of them saw a watched key change.
#[derive(Debug, Default)]
pub struct Watches {
    by_key: HashMap<DbKey, Vec<u64>>,
    dirty: HashSet<u64>,
}

impl Watches {
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Client `client` watches `key`.
    pub fn watch(&mut self, db: usize, key: &[u8], client: u64) {
        let v = self.by_key.entry((db, SmallBytes::new(key))).or_default();
        if !v.contains(&client) {
            v.push(client);
        }
    }

    /// Forgets `client`'s watches on `keys` (UNWATCH, EXEC, DISCARD, disconnect).
    pub fn unwatch(&mut self, client: u64, keys: &[(usize, Vec<u8>)]) {
        for (db, key) in keys {
            let k = (*db, SmallBytes::new(key));
            if let Some(v) = self.by_key.get_mut(&k) {
                v.retain(|&c| c != client);
                if v.is_empty() {
                    self.by_key.remove(&k);
                }
            }
        }
        self.dirty.remove(&client);
    }

    /// A write changed `key`: every client watching it is now dirty.
    pub fn touched(&mut self, db: usize, key: &[u8]) {
        if self.by_key.is_empty() {
            return;
        }
        if let Some(v) = self.by_key.get(&(db, SmallBytes::new(key))) {
            self.dirty.extend(v.iter().copied());
        }
    }

    /// A whole database changed (FLUSHDB, FLUSHALL, SWAPDB): its watchers are dirty.
    pub fn touched_db(&mut self, db: usize) {
        for ((d, _), v) in &self.by_key {
            if *d == db {
                self.dirty.extend(v.iter().copied());
            }
        }
    }

    /// Whether one of `client`'s watched keys on this shard changed.
    pub fn is_dirty(&self, client: u64) -> bool {
        self.dirty.contains(&client)
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
        w.watch(0, b"a", 1);
        w.watch(0, b"a", 2);
        w.watch(1, b"a", 3);
        w.touched(0, b"b");
        assert!(!w.is_dirty(1));
        w.touched(0, b"a");
        assert!(w.is_dirty(1) && w.is_dirty(2) && !w.is_dirty(3));
        w.unwatch(1, &[(0, b"a".to_vec())]);
        assert!(!w.is_dirty(1));
        w.touched_db(1);
        assert!(w.is_dirty(3));
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
