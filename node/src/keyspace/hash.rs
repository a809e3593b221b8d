//! The hash value type and its two encodings, as Valkey 8 keeps them (`t_hash.c`).
//!
//! - **listpack**: a small hash is a vector of (field, value) pairs in insertion order. Lookups
//!   scan it, as Valkey scans its listpack; the order is what HGETALL, HKEYS, HVALS, HSCAN and
//!   HRANDFIELD show, so those replies match Valkey's byte for byte. A field updated in place
//!   keeps its position; a deleted one closes the gap (later pairs move up).
//! - **hashtable**: past the thresholds the hash becomes an `IndexMap` with the keyspace's
//!   hasher. Its order is not Valkey's (a dict's bucket order), which Valkey documents as
//!   unspecified. Removal is `swap_remove`, which keeps positions dense: HSCAN's cursor is a
//!   position, visited from the end down (see [`HashVal::scan_table`] for why that never skips
//!   a field that stays in the hash).
//!
//! When to convert (never back, as in Valkey):
//! - before a write of several pairs (HSET, HMSET, HSETNX — Valkey's `hashTypeTryConversion`):
//!   when the write brings more pairs than `hash-max-listpack-entries` (counted with
//!   repetitions), when any of its fields or values is longer than `hash-max-listpack-value`,
//!   or when the listpack would pass its 1 GiB safety size;
//! - on every single set (`hashTypeSet`, which HINCRBY and HINCRBYFLOAT reach directly): when
//!   the field or value is longer than `hash-max-listpack-value`, and after an insert when the
//!   hash has more than `hash-max-listpack-entries` fields.
//!
//! This module knows no commands and no protocol; `crate::commands::hash` uses it.

use super::encoding::Limits;
use super::{KeyHasher, SmallBytes};
use indexmap::IndexMap;

/// Valkey's `LISTPACK_MAX_SAFETY_SIZE`: a listpack is never let grow past 1 GiB.
const LISTPACK_SAFETY_BYTES: usize = 1 << 30;
/// Bytes a listpack spends around the data: a 6-byte header and the end mark.
const LISTPACK_HEADER_BYTES: usize = 7;
/// The least a listpack entry spends besides its data (one encoding byte, one back-length
/// byte). The size estimate uses it, so it is a lower bound of Valkey's `lpBytes`.
const LISTPACK_ENTRY_OVERHEAD: usize = 2;

type Table = IndexMap<SmallBytes, SmallBytes, KeyHasher>;

#[derive(Debug, Clone, PartialEq)]
enum Enc {
    Listpack(Vec<(SmallBytes, SmallBytes)>),
    Table(Table),
}

/// A hash value.
#[derive(Debug, Clone, PartialEq)]
pub struct HashVal {
    enc: Enc,
    /// Sum of the lengths of every field and value: what a listpack would hold as data.
    payload_bytes: usize,
    /// Heap bytes that fields and values hold beyond their inline slots.
    spilled_bytes: usize,
}

impl Default for HashVal {
    fn default() -> HashVal {
        HashVal::new()
    }
}

fn pair_payload(field: &[u8], value: &[u8]) -> usize {
    field.len() + value.len()
}

impl HashVal {
    /// An empty hash, in the listpack encoding (Valkey's `createHashObject`).
    pub fn new() -> HashVal {
        HashVal {
            enc: Enc::Listpack(Vec::new()),
            payload_bytes: 0,
            spilled_bytes: 0,
        }
    }

    /// The OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self.enc {
            Enc::Listpack(_) => "listpack",
            Enc::Table(_) => "hashtable",
        }
    }

    /// Whether the hash is in its compact encoding (whole-hash replies keep insertion order,
    /// HSCAN returns everything in one call).
    pub fn is_listpack(&self) -> bool {
        matches!(self.enc, Enc::Listpack(_))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.enc {
            Enc::Listpack(v) => v.len(),
            Enc::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sum of the lengths of all fields and values.
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }

    /// Heap bytes owned by the value (for memory accounting): the pair slots, the table's
    /// index and the bytes of fields and values too long to sit inline.
    pub fn heap_bytes(&self) -> usize {
        const PAIR: usize = std::mem::size_of::<(SmallBytes, SmallBytes)>();
        let slots = match &self.enc {
            Enc::Listpack(v) => v.capacity() * PAIR,
            // Each IndexMap entry stores the pair and its hash; the index is a hashbrown table
            // of `usize` positions with one control byte per bucket (at most 8/7 of the
            // capacity, rounded to a power of two: counted as twice the capacity).
            Enc::Table(t) => {
                t.capacity() * (PAIR + std::mem::size_of::<u64>())
                    + 2 * t.capacity() * (std::mem::size_of::<usize>() + 1)
            }
        };
        slots + self.spilled_bytes
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.enc {
            Enc::Listpack(v) => v
                .iter()
                .find(|(f, _)| f.as_slice() == field)
                .map(|(_, val)| val.as_slice()),
            Enc::Table(t) => t.get(field).map(|v| v.as_slice()),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// The pair at position `i` of the encoding's order.
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match &self.enc {
            Enc::Listpack(v) => v.get(i).map(|(f, val)| (f.as_slice(), val.as_slice())),
            Enc::Table(t) => t
                .get_index(i)
                .map(|(f, val)| (f.as_slice(), val.as_slice())),
        }
    }

    /// Every pair, in the encoding's order (insertion order while a listpack).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.len()).filter_map(move |i| self.get_index(i))
    }

    /// Valkey's `hashTypeTryConversion`, run before a command writes the pairs in `args`
    /// (fields and values alternating): converts to a hashtable when the write brings more
    /// pairs than a listpack may hold, an argument longer than a listpack value may be, or
    /// more data than the listpack's safety size.
    pub fn prepare_for(&mut self, args: &[&[u8]], limits: Limits) {
        if !self.is_listpack() {
            return;
        }
        if args.len() / 2 > limits.hash_max_listpack_entries {
            self.convert();
            return;
        }
        let mut sum = 0usize;
        for a in args {
            if a.len() > limits.hash_max_listpack_value {
                self.convert();
                return;
            }
            sum = sum.saturating_add(a.len());
        }
        if self.listpack_bytes_estimate().saturating_add(sum) > LISTPACK_SAFETY_BYTES {
            self.convert();
        }
    }

    /// A lower bound of the bytes Valkey's listpack for this hash would take.
    fn listpack_bytes_estimate(&self) -> usize {
        LISTPACK_HEADER_BYTES + self.payload_bytes + 2 * LISTPACK_ENTRY_OVERHEAD * self.len()
    }

    /// Sets `field` to `value` (Valkey's `hashTypeSet`); returns true when the field is new.
    /// A field or value too long for a listpack converts first; an insert that takes the
    /// listpack past its entry limit converts after.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: Limits) -> bool {
        if self.is_listpack()
            && (field.len() > limits.hash_max_listpack_value
                || value.len() > limits.hash_max_listpack_value)
        {
            self.convert();
        }
        let new_value = SmallBytes::new(value);
        self.payload_bytes += value.len();
        self.spilled_bytes += new_value.heap_bytes();
        let old = match &mut self.enc {
            Enc::Listpack(v) => match v.iter_mut().find(|(f, _)| f.as_slice() == field) {
                Some((_, slot)) => Some(std::mem::replace(slot, new_value)),
                None => {
                    let field = SmallBytes::new(field);
                    self.spilled_bytes += field.heap_bytes();
                    v.push((field, new_value));
                    None
                }
            },
            Enc::Table(t) => match t.get_mut(field) {
                Some(slot) => Some(std::mem::replace(slot, new_value)),
                None => {
                    let field = SmallBytes::new(field);
                    self.spilled_bytes += field.heap_bytes();
                    t.insert(field, new_value);
                    None
                }
            },
        };
        let inserted = match old {
            Some(old) => {
                self.payload_bytes -= old.len();
                self.spilled_bytes -= old.heap_bytes();
                false
            }
            None => {
                self.payload_bytes += field.len();
                true
            }
        };
        if inserted && self.is_listpack() && self.len() > limits.hash_max_listpack_entries {
            self.convert();
        }
        inserted
    }

    /// Removes `field`; returns whether it was there. A listpack keeps the order of the rest;
    /// a table moves its last pair into the hole (see the module notes on HSCAN).
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let removed = match &mut self.enc {
            Enc::Listpack(v) => v
                .iter()
                .position(|(f, _)| f.as_slice() == field)
                .map(|i| v.remove(i)),
            Enc::Table(t) => t.swap_remove_entry(field),
        };
        let Some((f, val)) = removed else {
            return false;
        };
        self.payload_bytes -= pair_payload(&f, &val);
        self.spilled_bytes -= f.heap_bytes() + val.heap_bytes();
        true
    }

    /// Converts a listpack into a hashtable (Valkey's `hashTypeConvertListpack`), keeping the
    /// pairs in their order.
    fn convert(&mut self) {
        if let Enc::Listpack(v) = &mut self.enc {
            let pairs = std::mem::take(v);
            let mut t = Table::with_capacity_and_hasher(pairs.len(), KeyHasher);
            t.extend(pairs);
            self.enc = Enc::Table(t);
        }
    }

    /// One HSCAN call over a hashtable-encoded hash: the positions to visit, going down from
    /// position `cursor` (0 starts at the end, a cursor past the end is clamped to it) for at
    /// most `count` pairs, and the cursor of the next call (0 when the scan is complete).
    /// Visit the positions in reverse (downwards) with [`HashVal::get_index`].
    ///
    /// Why positions downwards: inserts append at the end, and a removal moves the last pair
    /// into the hole. Below the cursor nothing moves except into a hole left there, and what
    /// moves comes from above the cursor (already visited) — unless the hash has shrunk below
    /// the cursor, in which case it comes from the unvisited part and stays in it. So every
    /// field present for the whole scan is returned at least once, as Valkey guarantees; a
    /// field may come twice.
    ///
    /// A listpack-encoded hash ignores the cursor in Valkey and comes back whole: callers
    /// check [`HashVal::is_listpack`] first.
    pub fn scan_table(&self, cursor: u64, count: usize) -> (std::ops::Range<usize>, u64) {
        let len = self.len();
        let end = match usize::try_from(cursor) {
            Ok(0) | Err(_) => len,
            Ok(c) => c.min(len),
        };
        let start = end.saturating_sub(count);
        (start..end, start as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn limits(entries: usize, value: usize) -> Limits {
        Limits {
            hash_max_listpack_entries: entries,
            hash_max_listpack_value: value,
            ..Limits::default()
        }
    }

    /// Recomputes the byte counters from the pairs, to check the incremental bookkeeping.
    fn recount(h: &HashVal) -> (usize, usize) {
        h.iter().fold((0, 0), |(p, s), (f, v)| {
            (
                p + f.len() + v.len(),
                s + SmallBytes::new(f).heap_bytes() + SmallBytes::new(v).heap_bytes(),
            )
        })
    }

    /// A listpack keeps insertion order through updates and deletions, and converts to a
    /// hashtable exactly when an insert passes the entry limit.
    #[test]
    fn listpack_order_and_entry_limit() {
        let l = limits(3, 64);
        let mut h = HashVal::new();
        assert!(h.set(b"a", b"1", l));
        assert!(h.set(b"b", b"2", l));
        assert!(h.set(b"c", b"3", l));
        assert!(!h.set(b"a", b"9", l));
        let order: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(
            order,
            [
                (b"a".to_vec(), b"9".to_vec()),
                (b"b".to_vec(), b"2".to_vec()),
                (b"c".to_vec(), b"3".to_vec())
            ]
        );
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert_eq!(
            h.iter().map(|(f, _)| f.to_vec()).collect::<Vec<_>>(),
            [b"b", b"c"]
        );
        assert!(h.set(b"d", b"4", l));
        assert_eq!(h.encoding(), "listpack");
        assert!(h.set(b"e", b"5", l));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 4);
        // Never back, even when it shrinks.
        for f in [b"b", b"c", b"d"] {
            h.remove(f);
        }
        assert_eq!(h.encoding(), "hashtable");
    }

    /// Lengths convert at `hash-max-listpack-value` + 1, for a field or a value, both before
    /// a multi-pair write and on a single set.
    #[test]
    fn value_length_limit() {
        let l = limits(128, 4);
        let mut h = HashVal::new();
        h.set(b"abcd", b"wxyz", l);
        assert_eq!(h.encoding(), "listpack");
        let mut g = h.clone();
        g.set(b"f", b"12345", l);
        assert_eq!(g.encoding(), "hashtable");
        let mut g = h.clone();
        g.set(b"12345", b"f", l);
        assert_eq!(g.encoding(), "hashtable");
        let mut g = h.clone();
        g.prepare_for(&[b"x", b"y", b"long!", b"z"], l);
        assert_eq!(g.encoding(), "hashtable");
        let mut g = h.clone();
        g.prepare_for(&[b"x", b"y", b"1234", b"z"], l);
        assert_eq!(g.encoding(), "listpack");
    }

    /// A write bringing more pairs than the entry limit converts before anything is set,
    /// even when the pairs repeat one field (Valkey counts arguments, not distinct fields).
    #[test]
    fn pair_count_converts_before_writing() {
        let l = limits(2, 64);
        let mut h = HashVal::new();
        h.prepare_for(&[b"f", b"1", b"f", b"2", b"f", b"3"], l);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = HashVal::new();
        h.prepare_for(&[b"f", b"1", b"g", b"2"], l);
        assert_eq!(h.encoding(), "listpack");
        // A limit of 0 converts on the first write.
        let mut h = HashVal::new();
        h.prepare_for(&[b"f", b"1"], limits(0, 64));
        assert_eq!(h.encoding(), "hashtable");
    }

    /// A full table scan in steps returns every pair once when nothing changes, and never
    /// misses a pair that stays while others are removed and added between the steps.
    #[test]
    fn table_scan_guarantees() {
        let l = limits(0, 64);
        let mut h = HashVal::new();
        for i in 0..100u32 {
            h.set(format!("f{i}").as_bytes(), b"v", l);
        }
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            let (positions, next) = h.scan_table(cursor, 7);
            for i in positions.rev() {
                seen.extend(h.get_index(i).map(|(f, _)| f.to_vec()));
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 100);

        let mut seen = std::collections::BTreeSet::new();
        let mut cursor = 0;
        let mut step = 0u32;
        loop {
            let (positions, next) = h.scan_table(cursor, 5);
            for i in positions.rev() {
                seen.extend(h.get_index(i).map(|(f, _)| f.to_vec()));
            }
            cursor = next;
            // Churn: remove two fields that are not among the stable ones, add one.
            for victim in [format!("f{}", 90 + step % 10), format!("g{step}")] {
                h.remove(victim.as_bytes());
            }
            h.set(format!("n{step}").as_bytes(), b"v", l);
            step += 1;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..90u32 {
            assert!(seen.contains(format!("f{i}").as_bytes()), "f{i} missed");
        }
    }

    /// Cursors past the end start over from the end instead of skipping pairs.
    #[test]
    fn stale_cursor_is_clamped() {
        let l = limits(0, 64);
        let mut h = HashVal::new();
        h.set(b"a", b"1", l);
        h.set(b"b", b"2", l);
        assert_eq!(h.scan_table(u64::MAX, 10), (0..2, 0));
        assert_eq!(h.scan_table(5, 1), (1..2, 1));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, Vec<u8>),
        SetMany(Vec<(u8, Vec<u8>)>),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        let value = proptest::collection::vec(any::<u8>(), 0..30);
        prop_oneof![
            4 => (0u8..40, value.clone()).prop_map(|(f, v)| Op::Set(f, v)),
            1 => proptest::collection::vec((0u8..40, value), 1..6).prop_map(Op::SetMany),
            3 => (0u8..40).prop_map(Op::Remove),
        ]
    }

    /// Field names of varying length, some past the inline size, so spilled bytes are tracked.
    fn field(f: u8) -> Vec<u8> {
        let mut v = vec![b'f'; usize::from(f % 30)];
        v.push(f);
        v
    }

    proptest! {
        /// Against a model (an ordered map plus an insertion-order list), any sequence of sets
        /// and removals gives the same contents; while a listpack, the order is the model's
        /// insertion order; the encoding is a hashtable exactly when the model says Valkey's
        /// rules would have converted; the byte counters match a recount.
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 0..120),
                         entries in 0usize..12, value_max in 0usize..24) {
            let l = limits(entries, value_max);
            let mut h = HashVal::new();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut order: Vec<Vec<u8>> = Vec::new();
            let mut converted = false;
            for op in ops {
                match op {
                    Op::Set(f, v) => {
                        let f = field(f);
                        if f.len() > value_max || v.len() > value_max { converted = true; }
                        let new = model.insert(f.clone(), v.clone()).is_none();
                        if new { order.push(f.clone()); }
                        prop_assert_eq!(h.set(&f, &v, l), new);
                        if new && model.len() > entries { converted = true; }
                    }
                    Op::SetMany(pairs) => {
                        let args: Vec<Vec<u8>> = pairs.iter()
                            .flat_map(|(f, v)| [field(*f), v.clone()]).collect();
                        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                        if pairs.len() > entries || args.iter().any(|a| a.len() > value_max) {
                            converted = true;
                        }
                        h.prepare_for(&refs, l);
                        for (f, v) in pairs {
                            let f = field(f);
                            let new = model.insert(f.clone(), v.clone()).is_none();
                            if new { order.push(f.clone()); }
                            prop_assert_eq!(h.set(&f, &v, l), new);
                            if new && model.len() > entries { converted = true; }
                        }
                    }
                    Op::Remove(f) => {
                        let f = field(f);
                        let was = model.remove(&f).is_some();
                        order.retain(|o| o != &f);
                        prop_assert_eq!(h.remove(&f), was);
                    }
                }
                prop_assert_eq!(h.len(), model.len());
                prop_assert_eq!(h.encoding(), if converted { "hashtable" } else { "listpack" });
                for (f, v) in &model {
                    prop_assert_eq!(h.get(f), Some(v.as_slice()));
                }
                let got: BTreeMap<Vec<u8>, Vec<u8>> =
                    h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                prop_assert_eq!(&got, &model);
                if h.is_listpack() {
                    let fields: Vec<Vec<u8>> = h.iter().map(|(f, _)| f.to_vec()).collect();
                    prop_assert_eq!(&fields, &order);
                }
                let (payload, spilled) = recount(&h);
                prop_assert_eq!(h.payload_bytes(), payload);
                prop_assert_eq!(h.spilled_bytes, spilled);
            }
        }
    }
}
