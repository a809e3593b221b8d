//! The keyspace of one shard: for each database, one hash table per hash slot the shard owns,
//! the expiry times kept apart from the entries, and the per-shard keyspace counters.
//!
//! This module owns the data and nothing else: no I/O, no clock (time comes in as `now_ms`,
//! Unix milliseconds), no protocol. Commands read and write it through [`Db`].
//!
//! Layout. A shard owns the slots `s` with `s % shards == shard`; the table of slot `s` is
//! `slots[s / shards]`. One table per slot keeps slot-wide work (counting, listing or moving a
//! slot's keys) cheap. Tables are `IndexMap`s: besides hashing, they give O(1) access by
//! position, which the SCAN cursor, RANDOMKEY and the active expiry walk all need (see
//! `scan.rs` for why positions make a correct SCAN cursor). A Fenwick tree over the table
//! sizes picks a uniformly random key in O(log slots).
//!
//! Expiry. A key with a TTL has `Entry::has_expire` set and its deadline in `Db::expires`;
//! keys without a TTL pay one bool. Expired keys are removed lazily when touched, and by the
//! active cycle (`expire.rs`), which walks `expires` with a cursor under a time budget.

mod bytes;
pub mod encoding;
mod expire;
mod fenwick;
pub mod hash;
pub mod list;
pub mod log;
pub mod rdb;
mod scan;
pub mod set;
pub mod signals;
pub mod value;
pub mod zset;

pub use bytes::SmallBytes;
pub use scan::{ScanFilter, TableCursor};
pub use value::{StrVal, Value};

use corekey_bus::{key_slot, SLOT_COUNT};
use indexmap::IndexMap;
use std::hash::BuildHasher;
use std::rc::Rc;
use std::sync::OnceLock;

/// The hasher of every key table: ahash with one random seed per process.
#[derive(Clone, Copy, Default)]
pub struct KeyHasher;

impl BuildHasher for KeyHasher {
    type Hasher = ahash::AHasher;
    fn build_hasher(&self) -> ahash::AHasher {
        static STATE: OnceLock<ahash::RandomState> = OnceLock::new();
        STATE.get_or_init(ahash::RandomState::new).build_hasher()
    }
}

/// A key's entry: its value, when it was last touched, and whether it has a TTL.
#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    /// Seconds clock (Unix seconds, truncated) of the last access, for OBJECT IDLETIME.
    pub lru: u32,
    has_expire: bool,
    /// A small integer that Valkey would not share (a COPY of one): OBJECT REFCOUNT says 1.
    pub unshared: bool,
}

impl Entry {
    pub fn new(value: Value, now_ms: i64) -> Entry {
        Entry {
            value,
            lru: lru_clock(now_ms),
            has_expire: false,
            unshared: false,
        }
    }

    pub fn has_expire(&self) -> bool {
        self.has_expire
    }
}

/// The LRU clock of a moment: Unix seconds, truncated to 32 bits.
pub fn lru_clock(now_ms: i64) -> u32 {
    (now_ms / 1000) as u32
}

type Table<V> = IndexMap<SmallBytes, V, KeyHasher>;

/// One numbered database, as seen by one shard.
pub struct Db {
    shard: usize,
    shards: usize,
    /// One table per owned slot; empty until the first key arrives (16 databases × 8192 slots
    /// of empty tables would cost megabytes per shard).
    slots: Vec<Table<Entry>>,
    sizes: fenwick::Fenwick,
    keys: usize,
    expires: Table<i64>,
    expire_cursor: usize,
    /// Keys removed because they expired (lazily or actively).
    pub expired: u64,
    /// Running estimate of the average remaining TTL in ms (INFO keyspace avg_ttl).
    pub avg_ttl_ms: i64,
    /// This database's number as the replication log last knew it (SWAPDB swaps whole
    /// databases; `crate::repl::capture` notices and replicates the swap).
    pub id: usize,
    /// The shard's replication write log (see `log.rs`), shared by all its databases.
    pub log: Rc<log::WriteLog>,
}

/// Counters of keyspace events on one shard.
#[derive(Debug, Default, Clone, Copy)]
pub struct KsStats {
    pub hits: u64,
    pub misses: u64,
}

/// All databases of one shard.
pub struct Keyspace {
    pub shard: usize,
    pub shards: usize,
    pub dbs: Vec<Db>,
    pub stats: KsStats,
    /// WATCHed keys of this shard (see `signals.rs`).
    pub watches: signals::Watches,
    /// Keys blocked clients wait on, and the ones writes made ready.
    pub readiness: signals::Readiness,
    /// Compact-encoding thresholds (from the configuration).
    pub limits: encoding::Limits,
    rng: u64,
}

impl Keyspace {
    pub fn new(shard: usize, shards: usize, databases: usize) -> Keyspace {
        assert!(shard < shards && shards > 0 && shards <= usize::from(SLOT_COUNT));
        Keyspace {
            shard,
            shards,
            dbs: (0..databases).map(|_| Db::new(shard, shards)).collect(),
            stats: KsStats::default(),
            watches: signals::Watches::default(),
            readiness: signals::Readiness::default(),
            limits: encoding::Limits::default(),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (shard as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
        }
        .with_shared_log()
    }

    /// Gives every database the same write log and its number.
    fn with_shared_log(mut self) -> Keyspace {
        let log = Rc::new(log::WriteLog::default());
        for (i, db) in self.dbs.iter_mut().enumerate() {
            db.id = i;
            db.log = log.clone();
        }
        self
    }

    /// The shard's replication write log.
    pub fn log(&self) -> Option<&Rc<log::WriteLog>> {
        self.dbs.first().map(|d| &d.log)
    }

    /// Whether this shard owns the slot of `key`.
    pub fn owns(&self, key: &[u8]) -> bool {
        usize::from(key_slot(key).get()) % self.shards == self.shard
    }

    /// A pseudo-random number (xorshift64*); not for anything secret.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Total keys in all databases.
    pub fn total_keys(&self) -> usize {
        self.dbs.iter().map(Db::len).sum()
    }
}

impl Db {
    pub fn new(shard: usize, shards: usize) -> Db {
        Db {
            shard,
            shards,
            slots: Vec::new(),
            sizes: fenwick::Fenwick::new(0),
            keys: 0,
            expires: Table::default(),
            expire_cursor: 0,
            expired: 0,
            avg_ttl_ms: 0,
            id: 0,
            log: Rc::default(),
        }
    }

    /// Number of slots this shard owns.
    fn owned_slots(&self) -> usize {
        (usize::from(SLOT_COUNT) - self.shard).div_ceil(self.shards)
    }

    /// The local table index of `key`'s slot. Routing sends every key to its owning shard, so
    /// a key of another shard here is a bug.
    fn local(&self, key: &[u8]) -> usize {
        let slot = usize::from(key_slot(key).get());
        assert_eq!(
            slot % self.shards,
            self.shard,
            "key routed to the wrong shard"
        );
        slot / self.shards
    }

    /// The global slot number of local table `i`.
    pub fn slot_of_local(&self, i: usize) -> usize {
        i * self.shards + self.shard
    }

    fn ensure_tables(&mut self) {
        if self.slots.is_empty() {
            let n = self.owned_slots();
            self.slots = (0..n).map(|_| Table::default()).collect();
            self.sizes = fenwick::Fenwick::new(n);
        }
    }

    /// Number of keys (expired ones not yet removed included, as Valkey's DBSIZE).
    pub fn len(&self) -> usize {
        self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }

    /// Number of keys with a TTL.
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// Keys in the slot with global number `slot` (which this shard must own).
    pub fn keys_in_slot(&self, slot: usize) -> usize {
        self.slots.get(slot / self.shards).map_or(0, IndexMap::len)
    }

    /// Up to `max` keys of the slot with global number `slot` (which this shard must own), in
    /// table order, expired ones not yet removed included (CLUSTER GETKEYSINSLOT).
    pub fn keys_of_slot(&self, slot: usize, max: usize) -> Vec<SmallBytes> {
        self.slots
            .get(slot / self.shards)
            .map_or_else(Vec::new, |t| t.keys().take(max).cloned().collect())
    }

    /// Removes `key` if its deadline has passed; returns whether it did.
    fn expire_if_needed(&mut self, key: &[u8], now_ms: i64) -> bool {
        let Some(&when) = self.expires.get(key) else {
            return false;
        };
        if when > now_ms {
            return false;
        }
        match self.log.expiry.get() {
            log::ExpiryMode::Normal => {}
            // A replica hides the key from its clients but leaves it to its primary's delete.
            log::ExpiryMode::Hide => return true,
            log::ExpiryMode::Off => return false,
        }
        self.remove_quiet(key);
        self.expired += 1;
        self.log.expired(self.id, key);
        true
    }

    fn entry_index(&mut self, key: &[u8], now_ms: i64) -> Option<(usize, usize)> {
        if self.slots.is_empty() {
            return None;
        }
        let local = self.local(key);
        let idx = self.slots[local].get_index_of(key)?;
        if self.slots[local][idx].has_expire && self.expire_if_needed(key, now_ms) {
            return None;
        }
        Some((local, idx))
    }

    /// The live entry of `key` (an expired one is removed first). Does not count hits or
    /// touch the LRU clock; see [`Db::lookup_read`] and [`Db::lookup_write`].
    pub fn get(&mut self, key: &[u8], now_ms: i64) -> Option<&Entry> {
        let (local, idx) = self.entry_index(key, now_ms)?;
        self.slots[local].get_index(idx).map(|(_, e)| e)
    }

    /// Like [`Db::get`], mutable.
    pub fn get_mut(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Entry> {
        let (local, idx) = self.entry_index(key, now_ms)?;
        self.slots[local].get_index_mut(idx).map(|(_, e)| e)
    }

    /// A read access (Valkey's `lookupKeyRead`): counts a hit or a miss and touches the LRU.
    pub fn lookup_read<'a>(
        &'a mut self,
        stats: &mut KsStats,
        key: &[u8],
        now_ms: i64,
    ) -> Option<&'a mut Entry> {
        match self.get_mut(key, now_ms) {
            Some(e) => {
                stats.hits += 1;
                e.lru = lru_clock(now_ms);
                Some(e)
            }
            None => {
                stats.misses += 1;
                None
            }
        }
    }

    /// A write access (Valkey's `lookupKeyWrite`): touches the LRU, counts nothing.
    pub fn lookup_write(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Entry> {
        self.log.touched(self.id, key);
        let e = self.get_mut(key, now_ms)?;
        e.lru = lru_clock(now_ms);
        Some(e)
    }

    /// What is stored at `key`, without removing it if expired (Valkey's `dbFind`): `None`
    /// when absent, else whether it is past its deadline, and the deadline.
    pub fn stored(&self, key: &[u8], now_ms: i64) -> Option<(bool, Option<i64>)> {
        let local = self.local(key);
        let e = self.slots.get(local)?.get(key)?;
        let deadline = if e.has_expire {
            self.expires.get(key).copied()
        } else {
            None
        };
        Some((deadline.is_some_and(|d| d <= now_ms), deadline))
    }

    /// Whether `key` exists (and is not expired).
    pub fn contains(&mut self, key: &[u8], now_ms: i64) -> bool {
        self.entry_index(key, now_ms).is_some()
    }

    /// Sets `key` to `value` as Valkey's `setKey` does: the key is created or overwritten, and
    /// any TTL is dropped unless `keep_ttl`.
    pub fn set(&mut self, key: &[u8], value: Value, now_ms: i64, keep_ttl: bool) {
        self.log.touched(self.id, key);
        self.ensure_tables();
        // An expired key is gone before the write, so KEEPTTL cannot revive its deadline.
        self.expire_if_needed(key, now_ms);
        let local = self.local(key);
        let lru = lru_clock(now_ms);
        if let Some(e) = self.slots[local].get_mut(key) {
            e.value = value;
            e.lru = lru;
            e.unshared = false;
            if e.has_expire && !keep_ttl {
                e.has_expire = false;
                self.expires.swap_remove(key);
            }
            return;
        }
        self.slots[local].insert(
            SmallBytes::new(key),
            Entry {
                value,
                lru,
                has_expire: false,
                unshared: false,
            },
        );
        self.sizes.add(local, 1);
        self.keys += 1;
    }

    /// Inserts a whole entry for a key that does not exist (RENAME, COPY, MOVE), with its
    /// deadline if any. The caller has checked that `key` is absent.
    pub fn insert_entry(&mut self, key: &[u8], mut entry: Entry, expire_at: Option<i64>) {
        self.log.touched(self.id, key);
        self.ensure_tables();
        let local = self.local(key);
        entry.has_expire = expire_at.is_some();
        if let Some(at) = expire_at {
            self.expires.insert(SmallBytes::new(key), at);
        }
        let old = self.slots[local].insert(SmallBytes::new(key), entry);
        assert!(old.is_none(), "insert_entry over an existing key");
        self.sizes.add(local, 1);
        self.keys += 1;
    }

    /// Removes `key` and its TTL; returns the entry and its deadline.
    pub fn remove(&mut self, key: &[u8]) -> Option<(Entry, Option<i64>)> {
        self.log.touched(self.id, key);
        self.remove_quiet(key)
    }

    /// [`Db::remove`] without logging (expiry logs its own event).
    fn remove_quiet(&mut self, key: &[u8]) -> Option<(Entry, Option<i64>)> {
        if self.slots.is_empty() {
            return None;
        }
        let local = self.local(key);
        let entry = self.slots[local].swap_remove(key)?;
        self.sizes.sub(local, 1);
        self.keys -= 1;
        let when = if entry.has_expire {
            self.expires.swap_remove(key)
        } else {
            None
        };
        Some((entry, when))
    }

    /// Removes `key` if it exists and is live; returns whether it did (DEL).
    pub fn delete(&mut self, key: &[u8], now_ms: i64) -> bool {
        self.contains(key, now_ms) && self.remove(key).is_some()
    }

    /// The deadline (Unix ms) of `key`, which must be live; `None` when it has no TTL.
    pub fn expire_of(&self, key: &[u8]) -> Option<i64> {
        self.expires.get(key).copied()
    }

    /// Gives the existing key `key` the deadline `at_ms`.
    pub fn set_expire(&mut self, key: &[u8], at_ms: i64) {
        self.log.touched(self.id, key);
        let local = self.local(key);
        let Some(e) = self.slots.get_mut(local).and_then(|t| t.get_mut(key)) else {
            panic!("set_expire on a missing key");
        };
        e.has_expire = true;
        self.expires.insert(SmallBytes::new(key), at_ms);
    }

    /// Drops the TTL of `key`; returns whether it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        self.log.touched(self.id, key);
        if self.slots.is_empty() {
            return false;
        }
        let local = self.local(key);
        match self.slots[local].get_mut(key) {
            Some(e) if e.has_expire => {
                e.has_expire = false;
                self.expires.swap_remove(key);
                true
            }
            _ => false,
        }
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.log.flushed(self.id);
        self.slots = Vec::new();
        self.sizes = fenwick::Fenwick::new(0);
        self.keys = 0;
        self.expires = Table::default();
        self.expire_cursor = 0;
        self.avg_ttl_ms = 0;
    }

    /// A uniformly random live key, or `None` when the database is empty. Expired keys met on
    /// the way are removed; after `tries` expired picks it gives up, as Valkey does.
    pub fn random_key(
        &mut self,
        mut random: impl FnMut() -> u64,
        now_ms: i64,
        tries: usize,
    ) -> Option<SmallBytes> {
        for _ in 0..tries {
            if self.keys == 0 {
                return None;
            }
            let r = (random() % self.keys as u64) as usize;
            let (local, within) = self.sizes.find(r);
            let key = self.slots[local]
                .get_index(within)
                .map(|(k, _)| k.clone())?;
            if !self.expire_if_needed(&key, now_ms) {
                return Some(key);
            }
            if self.log.expiry.get() != log::ExpiryMode::Normal {
                // A replica's expired key stays in the table: another pick may find a live one.
                continue;
            }
        }
        None
    }

    /// Memory per element of each value type, estimated from up to `samples` random keys
    /// (INFO memory): for each type, the bytes (key, entry, table slot and value) and the
    /// elements of the sampled keys. A type held by few keys may go unsampled.
    pub fn sample_memory(
        &self,
        mut random: impl FnMut() -> u64,
        samples: usize,
    ) -> [(&'static str, u64, u64); 5] {
        let mut acc = [
            ("string", 0, 0),
            ("list", 0, 0),
            ("set", 0, 0),
            ("zset", 0, 0),
            ("hash", 0, 0),
        ];
        if self.keys == 0 {
            return acc;
        }
        // A table slot: the key, the entry and the index's hash and position.
        let slot = std::mem::size_of::<(SmallBytes, Entry)>() + 2 * std::mem::size_of::<usize>();
        // Measuring a collection walks its elements: stop once this many were measured.
        const ELEMENTS_MAX: u64 = 1 << 20;
        let mut measured = 0u64;
        for _ in 0..samples.min(self.keys) {
            if measured > ELEMENTS_MAX {
                break;
            }
            let r = (random() % self.keys as u64) as usize;
            let (local, within) = self.sizes.find(r);
            let Some((k, e)) = self.slots[local].get_index(within) else {
                continue;
            };
            let Some(a) = acc.iter_mut().find(|a| a.0 == e.value.type_name()) else {
                continue;
            };
            a.1 += (slot + k.heap_bytes() + e.value.heap_bytes()) as u64;
            a.2 += e.value.element_count() as u64;
            measured += e.value.element_count() as u64;
        }
        acc
    }

    /// Every live key matching the filter, in table order (KEYS).
    pub fn keys_matching(
        &mut self,
        filter: &ScanFilter<'_>,
        now_ms: i64,
        out: &mut Vec<SmallBytes>,
    ) {
        let mut expired = Vec::new();
        for table in &self.slots {
            for (k, e) in table {
                if e.has_expire && self.expires.get(k).is_some_and(|&w| w <= now_ms) {
                    expired.push(k.clone());
                    continue;
                }
                if filter.accepts(k, &e.value) {
                    out.push(k.clone());
                }
            }
        }
        if self.log.expiry.get() != log::ExpiryMode::Normal {
            return;
        }
        for k in expired {
            self.remove_quiet(&k);
            self.expired += 1;
            self.log.expired(self.id, &k);
        }
    }

    /// What is stored at `key`, expired or not, with its deadline (replication reads the
    /// state a write left, without expiring anything).
    pub fn raw(&self, key: &[u8]) -> Option<(&Entry, Option<i64>)> {
        let e = self.slots.get(self.local(key))?.get(key)?;
        let at = if e.has_expire {
            self.expires.get(key).copied()
        } else {
            None
        };
        Some((e, at))
    }

    /// Every key of the slot with global number `slot` (which this shard must own), with its
    /// entry and deadline: what a full sync sends of that slot.
    pub fn slot_entries(
        &self,
        slot: usize,
    ) -> impl Iterator<Item = (&SmallBytes, &Entry, Option<i64>)> {
        self.slots
            .get(slot / self.shards)
            .into_iter()
            .flat_map(move |t| {
                t.iter().map(move |(k, e)| {
                    let at = if e.has_expire {
                        self.expires.get(k).copied()
                    } else {
                        None
                    };
                    (k, e, at)
                })
            })
    }

    /// Removes every key of the slot with global number `slot` (a replica, before the
    /// snapshot of that slot arrives). Not logged: only replicas do this.
    pub fn clear_slot(&mut self, slot: usize) {
        let Some(table) = self.slots.get_mut(slot / self.shards) else {
            return;
        };
        let keys: Vec<SmallBytes> = table.keys().cloned().collect();
        for k in keys {
            self.remove_quiet(&k);
        }
    }

    /// Moves every key and TTL of `other` into `self`, which must be empty (SWAPDB swaps whole
    /// databases instead; this is for tests and restores).
    pub fn swap(&mut self, other: &mut Db) {
        std::mem::swap(self, other);
    }
}

#[cfg(test)]
mod tests;
