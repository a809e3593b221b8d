//! The set value type and its three encodings, converted as Valkey 8's `t_set.c` converts them.
//!
//! - **intset**: distinct integers, sorted ascending. A set starts as one when its first member
//!   is an integer (as `string2ll` reads it) and it is not expected to outgrow
//!   `set-max-intset-entries` (512).
//! - **listpack**: members in insertion order (removals keep the order of the rest). Used while
//!   the set has at most `set-max-listpack-entries` (128) members of at most
//!   `set-max-listpack-value` (64) bytes.
//! - **hashtable**: an `IndexSet` with the keyspace's hasher, in "hash order" (insertion order,
//!   disturbed by removals, which move the last member into the hole).
//!
//! Sets only ever grow into a larger encoding: intset → listpack (a non-integer joins a small
//! intset) or → hashtable, listpack → hashtable. The exceptions are the ones Valkey makes: the
//! destination of SINTERSTORE becomes an intset when every member is an integer, and SPOP of most
//! of a set keeps the remaining members in a new set that starts small (see [`SetVal::pop_some`]).
//! Those rules, and the size hints SADD and the STORE commands give, are what OBJECT ENCODING
//! shows, so they are ported exactly.
//!
//! Besides the value, this module has the set algebra the commands share (intersection, union,
//! difference with Valkey's choice of algorithm, which decides the encoding of a stored result)
//! and the random sampling of SPOP and SRANDMEMBER. Nothing here knows about replies or shards.

use super::encoding::Limits;
use super::{Db, KeyHasher, SmallBytes, Value};
use crate::util::{glob_match, parse_i64};
use indexmap::IndexSet;

/// Most entries an intset can hold whatever the configuration says (Valkey caps
/// `set-max-intset-entries` at 1G because of the intset's internals).
const INTSET_ENTRIES_CAP: usize = 1 << 30;

/// A set value.
#[derive(Debug, Clone, PartialEq)]
pub struct SetVal {
    repr: Repr,
}

#[derive(Debug, Clone, PartialEq)]
enum Repr {
    /// "intset": sorted, distinct.
    Ints(Vec<i64>),
    /// "listpack": insertion order, distinct.
    Pack(Vec<SmallBytes>),
    /// "hashtable".
    Table(IndexSet<SmallBytes, KeyHasher>),
}

impl Default for SetVal {
    /// An empty intset, as Valkey's `createIntsetObject`.
    fn default() -> SetVal {
        SetVal {
            repr: Repr::Ints(Vec::new()),
        }
    }
}

/// One member as a set stores it: an integer of an intset, or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Elem<'_> {
    /// The member's bytes, owned.
    pub fn to_small(self) -> SmallBytes {
        match self {
            Elem::Int(n) => SmallBytes::new(itoa::Buffer::new().format(n).as_bytes()),
            Elem::Str(s) => SmallBytes::new(s),
        }
    }

    /// Calls `f` with the member's bytes (an integer is formatted on the stack).
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Int(n) => f(itoa::Buffer::new().format(n).as_bytes()),
            Elem::Str(s) => f(s),
        }
    }

    /// Whether the member is an integer as `string2ll` reads it.
    pub fn is_int(self) -> bool {
        match self {
            Elem::Int(_) => true,
            Elem::Str(s) => parse_i64(s).is_some(),
        }
    }
}

/// A small, fast PRNG (SplitMix64) for the random commands; seeded from the keyspace's.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        (self.next() % n as u64) as usize
    }
}

/// `k` distinct positions out of `0..n`, ascending, each subset equally likely: the one-pass
/// selection sampling of Valkey's `lpNextRandom`, used where it walks a listpack once.
fn pick_ascending(n: usize, k: usize, rng: &mut Rng) -> Vec<usize> {
    assert!(k <= n);
    let mut picked = Vec::with_capacity(k);
    for i in 0..n {
        let left = k - picked.len();
        if left == 0 {
            break;
        }
        // Pick `i` with probability left / (n - i); certain once every remaining one is needed.
        if rng.below(n - i) < left {
            picked.push(i);
        }
    }
    picked
}

/// Number of characters of `v` in decimal (Valkey's `sdigits10`, sign included).
fn digits10(v: i64) -> usize {
    itoa::Buffer::new().format(v).len()
}

impl SetVal {
    /// An empty listpack set (`createSetListpackObject`).
    pub fn new_listpack() -> SetVal {
        SetVal {
            repr: Repr::Pack(Vec::new()),
        }
    }

    /// An empty hashtable set with room for `capacity` members (`createSetObject`).
    pub fn new_table(capacity: usize) -> SetVal {
        SetVal {
            repr: Repr::Table(IndexSet::with_capacity_and_hasher(capacity, KeyHasher)),
        }
    }

    /// An empty set that can hold `first` and about `size_hint` members (`setTypeCreate`):
    /// an intset for an integer when the hint fits one, else a listpack when the hint fits
    /// one, else a hashtable sized for the hint.
    pub fn create(first: &[u8], size_hint: usize, limits: &Limits) -> SetVal {
        if parse_i64(first).is_some() && size_hint <= limits.set_max_intset_entries {
            SetVal::default()
        } else if size_hint <= limits.set_max_listpack_entries {
            SetVal::new_listpack()
        } else {
            SetVal::new_table(size_hint)
        }
    }

    /// The OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Ints(_) => "intset",
            Repr::Pack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => v.len(),
            Repr::Pack(v) => v.len(),
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes owned by the value (an estimate for the hashtable: entries of hash + member,
    /// plus the index table).
    pub fn heap_bytes(&self) -> usize {
        const TABLE_ENTRY_BYTES: usize = 8 + std::mem::size_of::<SmallBytes>();
        const TABLE_INDEX_BYTES: usize = 9;
        match &self.repr {
            Repr::Ints(v) => v.capacity() * std::mem::size_of::<i64>(),
            Repr::Pack(v) => {
                v.capacity() * std::mem::size_of::<SmallBytes>()
                    + v.iter().map(SmallBytes::heap_bytes).sum::<usize>()
            }
            Repr::Table(t) => {
                t.capacity() * (TABLE_ENTRY_BYTES + TABLE_INDEX_BYTES)
                    + t.iter().map(SmallBytes::heap_bytes).sum::<usize>()
            }
        }
    }

    /// The members in the encoding's order (ascending for an intset, insertion order for a
    /// listpack, hash order for a hashtable).
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Ints(v) => Iter::Ints(v.iter()),
            Repr::Pack(v) => Iter::Pack(v.iter()),
            Repr::Table(t) => Iter::Table(t.iter()),
        }
    }

    /// The member at position `i` of [`SetVal::iter`]'s order.
    fn at(&self, i: usize) -> Elem<'_> {
        match &self.repr {
            Repr::Ints(v) => Elem::Int(v[i]),
            Repr::Pack(v) => Elem::Str(&v[i]),
            Repr::Table(t) => Elem::Str(&t[i]),
        }
    }

    fn intset_max(limits: &Limits) -> usize {
        limits.set_max_intset_entries.min(INTSET_ENTRIES_CAP)
    }

    /// Re-encodes as a hashtable with room for `capacity` members.
    fn convert_to_table(&mut self, capacity: usize) {
        let mut t = IndexSet::with_capacity_and_hasher(capacity.max(self.len()), KeyHasher);
        for e in self.iter() {
            t.insert(e.to_small());
        }
        self.repr = Repr::Table(t);
    }

    /// Converts a listpack or intset to a hashtable when `size_hint` members would not fit
    /// its encoding (`setTypeMaybeConvert`, before SADD adds its members).
    pub fn reserve_for(&mut self, size_hint: usize, limits: &Limits) {
        let too_big = match self.repr {
            Repr::Pack(_) => size_hint > limits.set_max_listpack_entries,
            Repr::Ints(_) => size_hint > limits.set_max_intset_entries,
            Repr::Table(_) => false,
        };
        if too_big {
            self.convert_to_table(size_hint);
        }
    }

    /// Adds `member`; returns whether it was new (`setTypeAdd`, conversions included).
    pub fn add(&mut self, member: &[u8], limits: &Limits) -> bool {
        match &mut self.repr {
            Repr::Table(t) => {
                if t.contains(member) {
                    return false;
                }
                t.insert(SmallBytes::new(member))
            }
            Repr::Pack(v) => {
                if v.iter().any(|m| &m[..] == member) {
                    return false;
                }
                if v.len() < limits.set_max_listpack_entries
                    && member.len() <= limits.set_max_listpack_value
                {
                    v.push(SmallBytes::new(member));
                } else {
                    let n = v.len();
                    self.convert_to_table(n + 1);
                    self.insert_new_in_table(member);
                }
                true
            }
            Repr::Ints(v) => match parse_i64(member) {
                Some(n) => {
                    let Err(at) = v.binary_search(&n) else {
                        return false;
                    };
                    v.insert(at, n);
                    if v.len() > Self::intset_max(limits) {
                        let len = v.len();
                        self.convert_to_table(len);
                    }
                    true
                }
                None => {
                    // A listpack if it stays within every listpack limit, judging the integers
                    // by the longest of the smallest and the largest (as Valkey estimates).
                    let widest = match (v.first(), v.last()) {
                        (Some(&lo), Some(&hi)) => digits10(lo).max(digits10(hi)),
                        _ => 0,
                    };
                    let n = v.len();
                    if n < limits.set_max_listpack_entries
                        && member.len() <= limits.set_max_listpack_value
                        && widest <= limits.set_max_listpack_value
                    {
                        let mut pack: Vec<SmallBytes> = Vec::with_capacity(n + 1);
                        pack.extend(v.iter().map(|&i| Elem::Int(i).to_small()));
                        pack.push(SmallBytes::new(member));
                        self.repr = Repr::Pack(pack);
                    } else {
                        self.convert_to_table(n + 1);
                        self.insert_new_in_table(member);
                    }
                    true
                }
            },
        }
    }

    fn insert_new_in_table(&mut self, member: &[u8]) {
        let Repr::Table(t) = &mut self.repr else {
            unreachable!("just converted to a hashtable");
        };
        let added = t.insert(SmallBytes::new(member));
        assert!(added, "a new member was already in the converted set");
    }

    /// [`SetVal::add`] for a member read from another set.
    pub fn add_elem(&mut self, e: Elem<'_>, limits: &Limits) -> bool {
        match (&mut self.repr, e) {
            (Repr::Ints(v), Elem::Int(n)) => {
                let Err(at) = v.binary_search(&n) else {
                    return false;
                };
                v.insert(at, n);
                if v.len() > Self::intset_max(limits) {
                    let len = v.len();
                    self.convert_to_table(len);
                }
                true
            }
            _ => e.with_bytes(|b| self.add(b, limits)),
        }
    }

    /// Removes `member`; returns whether it was there. A listpack keeps the order of the rest.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Table(t) => t.swap_remove(member),
            Repr::Pack(v) => match v.iter().position(|m| &m[..] == member) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            Repr::Ints(v) => match parse_i64(member).map(|n| v.binary_search(&n)) {
                Some(Ok(i)) => {
                    v.remove(i);
                    true
                }
                _ => false,
            },
        }
    }

    /// [`SetVal::remove`] for a member read from another set.
    pub fn remove_elem(&mut self, e: Elem<'_>) -> bool {
        match (&mut self.repr, e) {
            (Repr::Ints(v), Elem::Int(n)) => match v.binary_search(&n) {
                Ok(i) => {
                    v.remove(i);
                    true
                }
                Err(_) => false,
            },
            _ => e.with_bytes(|b| self.remove(b)),
        }
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Table(t) => t.contains(member),
            Repr::Pack(v) => v.iter().any(|m| &m[..] == member),
            Repr::Ints(v) => parse_i64(member).is_some_and(|n| v.binary_search(&n).is_ok()),
        }
    }

    /// [`SetVal::contains`] for a member read from another set.
    pub fn contains_elem(&self, e: Elem<'_>) -> bool {
        match (&self.repr, e) {
            (Repr::Ints(v), Elem::Int(n)) => v.binary_search(&n).is_ok(),
            _ => e.with_bytes(|b| self.contains(b)),
        }
    }

    /// Converts to an intset if the set is small enough for one (`maybeConvertToIntset`); the
    /// caller knows that every member is an integer.
    pub fn maybe_to_intset(&mut self, limits: &Limits) {
        if matches!(self.repr, Repr::Ints(_)) || self.len() > Self::intset_max(limits) {
            return;
        }
        let mut v: Vec<i64> = self
            .iter()
            .map(|e| match e {
                Elem::Int(n) => n,
                Elem::Str(s) => parse_i64(s).expect("maybe_to_intset on a non-integer member"),
            })
            .collect();
        v.sort_unstable();
        self.repr = Repr::Ints(v);
    }

    /// A random member of a non-empty set.
    pub fn random(&self, rng: &mut Rng) -> Elem<'_> {
        self.at(rng.below(self.len()))
    }

    /// Removes and returns a random member of a non-empty set (`setTypePopRandom`).
    pub fn pop_random(&mut self, rng: &mut Rng) -> SmallBytes {
        let i = rng.below(self.len());
        match &mut self.repr {
            Repr::Ints(v) => Elem::Int(v.remove(i)).to_small(),
            Repr::Pack(v) => v.remove(i),
            Repr::Table(t) => t.swap_remove_index(i).expect("index below len"),
        }
    }

    /// SPOP with a count, for `0 < count < len` (Valkey's `spopWithCountCommand`): returns the
    /// popped members in reply order.
    ///
    /// When few members are taken (the rest is more than a fifth of the count), they are popped
    /// one by one; a listpack is walked once instead, picking in order. Otherwise the members
    /// that stay are picked and moved into a new set, and the old one is handed out whole: from
    /// a listpack the new set is a listpack, from an intset an intset, and from a hashtable a
    /// listpack that converts as it grows (so the survivors of a large set can end up in a
    /// compact encoding, as in Valkey).
    pub fn pop_some(&mut self, count: usize, limits: &Limits, rng: &mut Rng) -> Vec<SmallBytes> {
        const MOVE_STRATEGY_MUL: usize = 5;
        let size = self.len();
        assert!(count > 0 && count < size);
        let remaining = size - count;
        let few = remaining.saturating_mul(MOVE_STRATEGY_MUL) > count;
        match (&mut self.repr, few) {
            (Repr::Pack(v), true) => {
                let picked = pick_ascending(size, count, rng);
                let mut popped = Vec::with_capacity(count);
                let mut keep = Vec::with_capacity(remaining);
                let mut next = picked.iter().peekable();
                for (i, m) in std::mem::take(v).into_iter().enumerate() {
                    if next.next_if_eq(&&i).is_some() {
                        popped.push(m);
                    } else {
                        keep.push(m);
                    }
                }
                *v = keep;
                popped
            }
            (_, true) => (0..count).map(|_| self.pop_random(rng)).collect(),
            (Repr::Pack(v), false) => {
                let picked = pick_ascending(size, remaining, rng);
                let mut kept = SetVal::new_listpack();
                let mut popped = Vec::with_capacity(count);
                let mut next = picked.iter().peekable();
                for (i, m) in std::mem::take(v).into_iter().enumerate() {
                    if next.next_if_eq(&&i).is_some() {
                        kept.add(&m, limits);
                    } else {
                        popped.push(m);
                    }
                }
                *self = kept;
                popped
            }
            (_, false) => {
                let mut kept = match self.repr {
                    Repr::Ints(_) => SetVal::default(),
                    _ => SetVal::new_listpack(),
                };
                for _ in 0..remaining {
                    let m = self.pop_random(rng);
                    kept.add(&m, limits);
                }
                let popped = self.iter().map(Elem::to_small).collect();
                *self = kept;
                popped
            }
        }
    }

    /// SRANDMEMBER with a count, for `1 < count < len` (distinct members): a listpack is walked
    /// once and answers in its own order; other encodings answer a random subset in random
    /// order, as Valkey's temporary dictionary does.
    pub fn sample_distinct(&self, count: usize, rng: &mut Rng) -> Vec<Elem<'_>> {
        const SUB_STRATEGY_MUL: usize = 3;
        let size = self.len();
        assert!(count > 0 && count < size);
        if let Repr::Pack(_) = self.repr {
            return pick_ascending(size, count, rng)
                .into_iter()
                .map(|i| self.at(i))
                .collect();
        }
        let picked: Vec<usize> = if count.saturating_mul(SUB_STRATEGY_MUL) > size {
            // Most of the set: shuffle the first `count` positions into place.
            let mut all: Vec<usize> = (0..size).collect();
            for i in 0..count {
                let j = i + rng.below(size - i);
                all.swap(i, j);
            }
            all.truncate(count);
            all
        } else {
            // A small part: draw until there are enough distinct ones.
            let mut seen = std::collections::HashSet::with_capacity(count);
            let mut order = Vec::with_capacity(count);
            while order.len() < count {
                let i = rng.below(size);
                if seen.insert(i) {
                    order.push(i);
                }
            }
            order
        };
        picked.into_iter().map(|i| self.at(i)).collect()
    }

    /// One SSCAN call: the members matching `pattern` among those the cursor visits, and the
    /// next cursor (0 when done).
    ///
    /// An intset or listpack comes back whole with cursor 0, as in Valkey. A hashtable's cursor
    /// is a position, visited from the end down (the keyspace SCAN's scheme, see `scan.rs`):
    /// removals move the last member into the hole, which lies in the part already visited, so
    /// a member present for the whole iteration is returned at least once.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
        out: &mut Vec<SmallBytes>,
    ) -> u64 {
        let keep = |b: &[u8]| pattern.is_none_or(|p| glob_match(p, b, false));
        let Repr::Table(t) = &self.repr else {
            for e in self.iter() {
                e.with_bytes(|b| {
                    if keep(b) {
                        out.push(SmallBytes::new(b));
                    }
                });
            }
            return 0;
        };
        let len = t.len();
        let mut pos = match usize::try_from(cursor) {
            Ok(0) => len,
            Ok(c) => c.min(len),
            Err(_) => len,
        };
        let mut examined = 0;
        while pos > 0 && examined < count {
            pos -= 1;
            examined += 1;
            if keep(&t[pos]) {
                out.push(t[pos].clone());
            }
        }
        pos as u64
    }
}

/// The members of a set, in its encoding's order.
pub enum Iter<'a> {
    Ints(std::slice::Iter<'a, i64>),
    Pack(std::slice::Iter<'a, SmallBytes>),
    Table(indexmap::set::Iter<'a, SmallBytes>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    fn next(&mut self) -> Option<Elem<'a>> {
        match self {
            Iter::Ints(i) => i.next().map(|&n| Elem::Int(n)),
            Iter::Pack(i) => i.next().map(|m| Elem::Str(m)),
            Iter::Table(i) => i.next().map(|m| Elem::Str(m)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Ints(i) => i.size_hint(),
            Iter::Pack(i) => i.size_hint(),
            Iter::Table(i) => i.size_hint(),
        }
    }
}

/// Orders the operands of an intersection as Valkey does: smallest first, ties in argument
/// order (the first operand's order is the order of the reply).
pub fn sort_for_inter(sets: &mut [&SetVal]) {
    sets.sort_by_key(|s| s.len());
}

/// The members of the intersection of `sets` (sorted by [`sort_for_inter`], at least one),
/// in the order of the first.
pub fn inter<'a, 's>(sets: &'s [&'a SetVal]) -> impl Iterator<Item = Elem<'a>> + use<'a, 's> {
    let (first, rest) = sets.split_first().expect("an intersection of no sets");
    first.iter().filter(move |&e| {
        rest.iter()
            .all(|s| std::ptr::eq(*s, *first) || s.contains_elem(e))
    })
}

/// The set SINTERSTORE stores for the intersection of `sets` (sorted, at least one): it starts
/// as an intset when the smallest operand is one, else as a listpack, grows as members are
/// added, and ends as an intset if every member is an integer and there are few enough.
pub fn inter_store(sets: &[&SetVal], limits: &Limits) -> SetVal {
    let mut dst = match sets.first().map(|s| &s.repr) {
        Some(Repr::Ints(_)) => SetVal::default(),
        _ => SetVal::new_listpack(),
    };
    let mut only_integers = true;
    for e in inter(sets) {
        only_integers = only_integers && e.is_int();
        dst.add_elem(e, limits);
    }
    if only_integers && !dst.is_empty() {
        dst.maybe_to_intset(limits);
    }
    dst
}

/// Which of SUNION and SDIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Union,
    Diff,
}

/// The result of SUNION/SDIFF (and their STORE forms) over `sets` (a missing key is `None`,
/// an empty set), built as Valkey's `sunionDiffGenericCommand` builds it, so that a stored
/// result has Valkey's encoding: the result starts as an intset (for a reply, as a hashtable
/// as soon as an operand is not an intset) and converts as members are added.
///
/// `first_repeated`: the first key appears again later (SDIFF is then empty). For SDIFF the
/// algorithm is chosen by Valkey's estimate of the work, because the second one (add all of
/// the first set, then remove the others) can leave a hashtable that the first would not.
pub fn union_diff(
    sets: &[Option<&SetVal>],
    op: SetOp,
    store: bool,
    first_repeated: bool,
    limits: &Limits,
) -> SetVal {
    let compact_operands = sets
        .iter()
        .flatten()
        .all(|s| matches!(s.repr, Repr::Ints(_)));
    let mut dst = if store || compact_operands {
        SetVal::default()
    } else {
        SetVal::new_table(0)
    };
    match op {
        SetOp::Union => {
            for s in sets.iter().flatten() {
                for e in s.iter() {
                    dst.add_elem(e, limits);
                }
            }
        }
        SetOp::Diff => {
            let Some(Some(first)) = sets.first() else {
                return dst;
            };
            if first_repeated {
                return dst;
            }
            let others = || sets[1..].iter().flatten();
            let present = 1 + others().count();
            let algo_one_work = first.len().saturating_mul(present) / 2;
            let algo_two_work: usize = sets.iter().flatten().map(|s| s.len()).sum();
            if algo_one_work <= algo_two_work {
                for e in first.iter() {
                    if !others().any(|s| s.contains_elem(e)) {
                        dst.add_elem(e, limits);
                    }
                }
            } else {
                for e in first.iter() {
                    dst.add_elem(e, limits);
                }
                for s in others() {
                    if dst.is_empty() {
                        break;
                    }
                    for e in s.iter() {
                        dst.remove_elem(e);
                    }
                }
            }
        }
    }
    dst
}

impl Db {
    /// The set stored at `key` as it is: no expiry check, no statistics. For a command that
    /// has already looked each of its keys up (so an expired one is gone and the access is
    /// counted) and now needs several sets at once.
    pub fn set_at(&self, key: &[u8]) -> Option<&SetVal> {
        let table = self.slots.get(self.local(key))?;
        match &table.get(key)?.value {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn limits() -> Limits {
        Limits::default()
    }

    fn small_limits() -> Limits {
        Limits {
            set_max_intset_entries: 6,
            set_max_listpack_entries: 4,
            set_max_listpack_value: 3,
            ..Limits::default()
        }
    }

    fn of(members: &[&str], l: &Limits) -> SetVal {
        let mut s = SetVal::create(members[0].as_bytes(), members.len(), l);
        for m in members {
            s.add(m.as_bytes(), l);
        }
        s
    }

    fn texts(s: &SetVal) -> Vec<String> {
        s.iter()
            .map(|e| String::from_utf8_lossy(&e.to_small()).into_owned())
            .collect()
    }

    fn ints(range: std::ops::Range<i64>) -> Vec<String> {
        range.map(|i| i.to_string()).collect()
    }

    fn from_strings(v: &[String], l: &Limits) -> SetVal {
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        of(&refs, l)
    }

    /// The encoding a new set starts in follows setTypeCreate: intset for an integer first
    /// member, listpack while the size hint fits one, else a hashtable.
    #[test]
    fn create_by_hint() {
        let l = limits();
        assert_eq!(SetVal::create(b"12", 1, &l).encoding(), "intset");
        assert_eq!(SetVal::create(b"12", 512, &l).encoding(), "intset");
        assert_eq!(SetVal::create(b"12", 513, &l).encoding(), "hashtable");
        assert_eq!(SetVal::create(b"012", 1, &l).encoding(), "listpack");
        assert_eq!(SetVal::create(b"a", 128, &l).encoding(), "listpack");
        assert_eq!(SetVal::create(b"a", 129, &l).encoding(), "hashtable");
        let mut s = of(&["1", "2"], &l);
        s.reserve_for(513, &l);
        assert_eq!(s.encoding(), "hashtable");
        let mut s = of(&["a"], &l);
        s.reserve_for(128, &l);
        assert_eq!(s.encoding(), "listpack");
        s.reserve_for(129, &l);
        assert_eq!(s.encoding(), "hashtable");
    }

    /// Growth converts at Valkey's thresholds: 513 integers leave the intset, the 129th member
    /// or a 65-byte one leaves the listpack, and a string joins a small intset as a listpack
    /// (integers first, ascending) but a large one as a hashtable.
    #[test]
    fn growth_thresholds() {
        let l = limits();
        let mut s = from_strings(&ints(0..512), &l);
        assert_eq!(s.encoding(), "intset");
        s.add(b"512", &l);
        assert_eq!((s.encoding(), s.len()), ("hashtable", 513));

        let mut s = of(&["3", "1", "2"], &l);
        s.add(b"x", &l);
        assert_eq!(s.encoding(), "listpack");
        assert_eq!(texts(&s), ["1", "2", "3", "x"]);
        s.add(b"0", &l);
        assert_eq!(texts(&s), ["1", "2", "3", "x", "0"]);

        let mut s = from_strings(&ints(0..127), &l);
        s.add(b"x", &l);
        assert_eq!((s.encoding(), s.len()), ("listpack", 128));
        s.add(b"y", &l);
        assert_eq!((s.encoding(), s.len()), ("hashtable", 129));

        let mut s = from_strings(&ints(0..128), &l);
        s.add(b"x", &l);
        assert_eq!(s.encoding(), "hashtable");

        let mut s = of(&["a"], &l);
        s.add(&[b'v'; 64], &l);
        assert_eq!(s.encoding(), "listpack");
        s.add(&[b'v'; 65], &l);
        assert_eq!(s.encoding(), "hashtable");

        let mut s = of(&["1"], &l);
        s.add(&[b'v'; 65], &l);
        assert_eq!(s.encoding(), "hashtable");
    }

    /// An intset whose widest integer has more digits than a listpack value may hold turns
    /// into a hashtable, not a listpack, when a string joins (Valkey's estimate).
    #[test]
    fn intset_digits_estimate() {
        let l = small_limits();
        let mut s = of(&["-10"], &l);
        s.add(b"a", &l);
        assert_eq!(s.encoding(), "listpack");
        let mut s = of(&["-100"], &l);
        s.add(b"a", &l);
        assert_eq!(s.encoding(), "hashtable");
    }

    /// Removal keeps a listpack's order and never changes the encoding; membership reads
    /// integers the way string2ll does.
    #[test]
    fn remove_and_contains() {
        let l = limits();
        let mut s = of(&["a", "b", "c", "1"], &l);
        assert!(s.remove(b"b"));
        assert!(!s.remove(b"b"));
        assert_eq!(texts(&s), ["a", "c", "1"]);
        let mut i = of(&["1", "2"], &l);
        assert!(i.contains(b"1") && !i.contains(b"01") && !i.contains(b"+1"));
        assert!(!i.remove(b"01"));
        assert!(i.remove(b"1"));
        assert_eq!(i.encoding(), "intset");
        assert!(s.contains_elem(Elem::Int(1)));
        assert!(!i.contains_elem(Elem::Str(b"x")));
    }

    /// SINTERSTORE's destination: an intset when every member is an integer (even from
    /// listpacks and hashtables), else a listpack while small, else a hashtable.
    #[test]
    fn inter_store_encodings() {
        let l = limits();
        let a = of(&["1", "2", "x"], &l);
        let b = of(&["2", "1", "y", "x"], &l);
        let mut v = vec![&a, &b];
        sort_for_inter(&mut v);
        let r = inter_store(&v, &l);
        assert_eq!(r.encoding(), "listpack");
        assert_eq!(texts(&r), ["1", "2", "x"]);

        let c = of(&["2", "1", "z"], &l);
        let mut v = vec![&b, &c];
        sort_for_inter(&mut v);
        assert_eq!(inter_store(&v, &l).encoding(), "intset");

        let mut big: Vec<String> = ints(0..300);
        big.push("s".into());
        let h1 = from_strings(&big, &l);
        let h2 = from_strings(&big, &l);
        assert_eq!(h1.encoding(), "hashtable");
        let mut v = vec![&h1, &h2];
        sort_for_inter(&mut v);
        let r = inter_store(&v, &l);
        assert_eq!((r.encoding(), r.len()), ("hashtable", 301));
        let only_ints = from_strings(&ints(0..300), &l);
        let mut v = vec![&h1, &only_ints];
        sort_for_inter(&mut v);
        assert_eq!(inter_store(&v, &l).encoding(), "intset");
    }

    /// Intersections iterate the smallest set, ties in argument order.
    #[test]
    fn inter_order() {
        let l = limits();
        let a = of(&["x", "y", "z"], &l);
        let b = of(&["z", "y", "x"], &l);
        let mut v = vec![&b, &a];
        sort_for_inter(&mut v);
        let got: Vec<String> = inter(&v)
            .map(|e| String::from_utf8_lossy(&e.to_small()).into_owned())
            .collect();
        assert_eq!(got, ["z", "y", "x"]);
        let small = of(&["y", "x"], &l);
        let mut v = vec![&b, &small];
        sort_for_inter(&mut v);
        assert!(std::ptr::eq(v[0], &small));
    }

    /// SUNIONSTORE/SDIFFSTORE results start as intsets and convert as members arrive; SDIFF's
    /// second algorithm (chosen when the first set is large next to the others) can leave a
    /// hashtable behind even for a small result, as in Valkey.
    #[test]
    fn union_diff_encodings() {
        let l = limits();
        let ints_a = of(&["1", "2", "3"], &l);
        let pack = of(&["a", "1"], &l);
        let r = union_diff(
            &[Some(&ints_a), None, Some(&pack)],
            SetOp::Union,
            true,
            false,
            &l,
        );
        assert_eq!((r.encoding(), r.len()), ("listpack", 4));
        let r = union_diff(
            &[Some(&ints_a), Some(&pack)],
            SetOp::Union,
            false,
            false,
            &l,
        );
        assert_eq!(r.encoding(), "hashtable");
        let r = union_diff(&[Some(&ints_a)], SetOp::Union, false, false, &l);
        assert_eq!(r.encoding(), "intset");

        let many: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
        let first = from_strings(&many, &l);
        let one = of(&["m0"], &l);
        let sub = from_strings(&many[..190], &l);
        // Algorithm 1 (work 200 * 2 / 2 = 200 <= 201): the 199 members go to a hashtable.
        let r = union_diff(&[Some(&first), Some(&one)], SetOp::Diff, true, false, &l);
        assert_eq!((r.encoding(), r.len()), ("hashtable", 199));
        // Algorithm 1 again (work 300 <= 391): only the 10 survivors are added: a listpack.
        let r = union_diff(
            &[Some(&first), Some(&sub), Some(&one)],
            SetOp::Diff,
            true,
            false,
            &l,
        );
        assert_eq!((r.encoding(), r.len()), ("listpack", 10));
        // Algorithm 2 (work 200 > 390? no: 200 <= 390, so algorithm 1).
        let r = union_diff(&[Some(&first), Some(&sub)], SetOp::Diff, true, false, &l);
        assert_eq!((r.encoding(), r.len()), ("listpack", 10));
        // Algorithm 2 when the first set is large next to the sum: 200 * 4 / 2 = 400 > 203.
        let r = union_diff(
            &[Some(&first), Some(&one), Some(&one), Some(&one)],
            SetOp::Diff,
            true,
            false,
            &l,
        );
        assert_eq!((r.encoding(), r.len()), ("hashtable", 199));
        let small_pack = from_strings(&many[..3], &l);
        let r = union_diff(
            &[Some(&first), None, Some(&small_pack), Some(&sub)],
            SetOp::Diff,
            true,
            false,
            &l,
        );
        // Work one 300 <= 393: algorithm 1, a listpack of 10.
        assert_eq!((r.encoding(), r.len()), ("listpack", 10));
        // The first key repeated, or missing: empty.
        let r = union_diff(&[Some(&first), Some(&first)], SetOp::Diff, true, true, &l);
        assert!(r.is_empty());
        let r = union_diff(&[None, Some(&first)], SetOp::Diff, true, false, &l);
        assert!(r.is_empty());
    }

    /// SDIFF's second algorithm adds the whole first set before removing: with a big first
    /// set and small others, a small result is still a hashtable (Valkey does the same).
    #[test]
    fn diff_algorithm_two_leaves_hashtable() {
        let l = limits();
        let first = from_strings(&(0..150).map(|i| format!("m{i}")).collect::<Vec<_>>(), &l);
        let mut rest: Vec<SetVal> = Vec::new();
        for chunk in 0..5 {
            let v: Vec<String> = (chunk * 29..chunk * 29 + 29)
                .map(|i| format!("m{i}"))
                .collect();
            rest.push(from_strings(&v, &l));
        }
        // Work one = 150 * 6 / 2 = 450 > work two = 150 + 145 = 295: algorithm 2.
        let mut operands = vec![Some(&first)];
        operands.extend(rest.iter().map(Some));
        let r = union_diff(&operands, SetOp::Diff, true, false, &l);
        assert_eq!((r.encoding(), r.len()), ("hashtable", 5));
    }

    /// SPOP with a count: the popped and the kept members partition the set, a listpack keeps
    /// its order, and the survivors of a mostly-popped set land in a fresh compact set.
    #[test]
    fn pop_some_cases() {
        let l = limits();
        let mut rng = Rng::new(7);
        for count in [1, 3, 9] {
            let mut s = of(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], &l);
            let before: BTreeSet<_> = s.iter().map(|e| e.to_small().to_vec()).collect();
            let popped = s.pop_some(count, &l, &mut rng);
            assert_eq!(
                (popped.len(), s.len(), s.encoding()),
                (count, 10 - count, "listpack")
            );
            let mut all: BTreeSet<_> = s.iter().map(|e| e.to_small().to_vec()).collect();
            for p in &popped {
                assert!(all.insert(p.to_vec()), "popped member still in the set");
            }
            assert_eq!(all, before);
            // Listpack order survives in both parts.
            let kept = texts(&s);
            let mut sorted = kept.clone();
            sorted.sort();
            assert_eq!(kept, sorted);
            let popped: Vec<Vec<u8>> = popped.iter().map(|p| p.to_vec()).collect();
            let mut p2 = popped.clone();
            p2.sort();
            assert_eq!(popped, p2);
        }
        // 600 integers (a hashtable), 550 popped: the 50 left form a listpack, as in Valkey.
        let mut s = from_strings(&ints(0..600), &l);
        assert_eq!(s.encoding(), "hashtable");
        let popped = s.pop_some(550, &l, &mut rng);
        assert_eq!((popped.len(), s.len(), s.encoding()), (550, 50, "listpack"));
        // An intset keeps being one.
        let mut s = from_strings(&ints(0..100), &l);
        s.pop_some(90, &l, &mut rng);
        assert_eq!((s.len(), s.encoding()), (10, "intset"));
        s.pop_some(1, &l, &mut rng);
        assert_eq!((s.len(), s.encoding()), (9, "intset"));
        // A hashtable losing a few stays a hashtable.
        let mut s = from_strings(&ints(0..600), &l);
        s.pop_some(10, &l, &mut rng);
        assert_eq!((s.len(), s.encoding()), (590, "hashtable"));
    }

    /// SRANDMEMBER's distinct samples: the right number of distinct members; a listpack
    /// answers in its own order.
    #[test]
    fn sample_distinct_cases() {
        let l = limits();
        let mut rng = Rng::new(3);
        let pack = of(&["e", "d", "c", "b", "a"], &l);
        for count in 1..5 {
            let got = pack.sample_distinct(count, &mut rng);
            assert_eq!(got.len(), count);
            let pos: Vec<usize> = got
                .iter()
                .map(|e| pack.iter().position(|x| x == *e).expect("a member"))
                .collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]), "listpack order");
        }
        let table = from_strings(&ints(0..1000), &l);
        for count in [1, 10, 400, 999] {
            let got = table.sample_distinct(count, &mut rng);
            let distinct: BTreeSet<_> = got.iter().map(|e| e.to_small().to_vec()).collect();
            assert_eq!(distinct.len(), count);
            assert!(got.iter().all(|e| table.contains_elem(*e)));
        }
    }

    /// The selection sampling behind listpack picks is uniform: every member of a 4-member
    /// set is picked about equally often when picking 2.
    #[test]
    fn pick_ascending_uniform() {
        let mut rng = Rng::new(11);
        let mut hits = [0u32; 4];
        for _ in 0..8000 {
            for i in pick_ascending(4, 2, &mut rng) {
                hits[i] += 1;
            }
        }
        assert!(hits.iter().all(|&h| (3600..4400).contains(&h)), "{hits:?}");
    }

    /// SSCAN over a hashtable returns every member present for the whole iteration, even when
    /// members are removed and added between calls; compact sets come back whole with cursor 0.
    #[test]
    fn scan_cursor() {
        let l = limits();
        let pack = of(&["a", "b", "c"], &l);
        let mut out = Vec::new();
        assert_eq!(pack.scan(0, 1, None, &mut out), 0);
        assert_eq!(out.len(), 3);
        let mut out = Vec::new();
        assert_eq!(pack.scan(12345, 1, Some(b"[ab]"), &mut out), 0);
        assert_eq!(out, [SmallBytes::new(b"a"), SmallBytes::new(b"b")]);

        let mut s = from_strings(&ints(0..1000), &l);
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            let mut out = Vec::new();
            cursor = s.scan(cursor, 7, None, &mut out);
            seen.extend(out.into_iter().map(|m| m.to_vec()));
            calls += 1;
            // Churn: remove a member and add a new one between calls.
            s.remove((calls * 3).to_string().as_bytes());
            s.add(format!("new{calls}").as_bytes(), &l);
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000 {
            let m = i.to_string();
            if s.contains(m.as_bytes()) {
                assert!(seen.contains(m.as_bytes()), "{m} missed");
            }
        }
    }

    /// A stale cursor beyond the end restarts from the end instead of failing.
    #[test]
    fn scan_stale_cursor() {
        let l = limits();
        let s = from_strings(&ints(0..600), &l);
        let mut out = Vec::new();
        let next = s.scan(u64::MAX, 10, None, &mut out);
        assert_eq!((out.len(), next), (10, 590));
    }

    /// Memory accounting grows with the members and counts long members' heap bytes.
    #[test]
    fn heap_bytes_grow() {
        let l = limits();
        let small = of(&["a"], &l);
        let long = of(&["a", &"x".repeat(40)], &l);
        assert!(long.heap_bytes() >= small.heap_bytes() + 40);
        let table = from_strings(&ints(0..1000), &l);
        assert!(table.heap_bytes() > 1000 * 24);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(Vec<u8>),
        Remove(Vec<u8>),
        Pop(usize),
        PopOne,
    }

    fn member() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (-12i64..12).prop_map(|i| i.to_string().into_bytes()),
            Just(b"-1000".to_vec()),
            prop::sample::select(vec![
                &b"a"[..],
                b"b",
                b"cc",
                b"ddd",
                b"eeee",
                b"01",
                b"-0",
                b""
            ])
            .prop_map(<[u8]>::to_vec),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => member().prop_map(Op::Add),
            2 => member().prop_map(Op::Remove),
            1 => (1usize..8).prop_map(Op::Pop),
            1 => Just(Op::PopOne),
        ]
    }

    /// The invariants of each encoding under limits `l`.
    fn check_invariants(s: &SetVal, l: &Limits) {
        match &s.repr {
            Repr::Ints(v) => {
                assert!(v.windows(2).all(|w| w[0] < w[1]), "intset not sorted");
                assert!(v.len() <= l.set_max_intset_entries);
            }
            Repr::Pack(v) => {
                assert!(v.len() <= l.set_max_listpack_entries);
                assert!(v.iter().all(|m| m.len() <= l.set_max_listpack_value));
                let distinct: BTreeSet<&[u8]> = v.iter().map(|m| &m[..]).collect();
                assert_eq!(distinct.len(), v.len(), "listpack duplicates");
            }
            Repr::Table(_) => {}
        }
    }

    proptest! {
        /// Random SADD/SREM/SPOP sequences on small limits agree with a BTreeSet model, every
        /// encoding keeps its invariants, encodings only move the ways Valkey moves them, and
        /// a listpack keeps insertion order (a Vec model; an intset turning into a listpack
        /// puts its integers first, ascending).
        #[test]
        fn model(ops in prop::collection::vec(op(), 1..120), seed in any::<u64>()) {
            let l = small_limits();
            let mut rng = Rng::new(seed);
            let mut s: Option<SetVal> = None;
            let mut model: BTreeSet<Vec<u8>> = BTreeSet::new();
            // The expected listpack order, while the set is a listpack.
            let mut order: Option<Vec<Vec<u8>>> = None;
            for op in ops {
                let before = s.as_ref().map_or("none", SetVal::encoding);
                match &op {
                    Op::Add(m) => {
                        let set = s.get_or_insert_with(|| SetVal::create(m, 1, &l));
                        let added = set.add(m, &l);
                        prop_assert_eq!(added, model.insert(m.clone()));
                        let after = set.encoding();
                        let allowed = match before {
                            "listpack" => after != "intset",
                            "hashtable" => after == "hashtable",
                            _ => true,
                        };
                        prop_assert!(allowed, "{} -> {}", before, after);
                        if after == "intset" {
                            prop_assert!(parse_i64(m).is_some());
                        }
                        match (before, after) {
                            ("listpack", "listpack") if added => {
                                if let Some(o) = order.as_mut() {
                                    o.push(m.clone());
                                }
                            }
                            ("intset", "listpack") => {
                                let mut ints: Vec<i64> =
                                    model.iter().filter_map(|x| parse_i64(x)).collect();
                                ints.sort_unstable();
                                let mut o: Vec<Vec<u8>> =
                                    ints.iter().map(|i| i.to_string().into_bytes()).collect();
                                o.push(m.clone());
                                order = Some(o);
                            }
                            ("none", "listpack") => order = Some(vec![m.clone()]),
                            _ => {}
                        }
                    }
                    Op::Remove(m) => {
                        let removed = s.as_mut().is_some_and(|set| set.remove(m));
                        prop_assert_eq!(removed, model.remove(m));
                        if let Some(o) = order.as_mut() {
                            o.retain(|x| x != m);
                        }
                    }
                    Op::Pop(count) => {
                        let Some(set) = s.as_mut() else { continue };
                        if *count >= set.len() {
                            continue;
                        }
                        let popped = set.pop_some(*count, &l, &mut rng);
                        prop_assert_eq!(popped.len(), *count);
                        for p in popped {
                            prop_assert!(model.remove(&p[..]), "popped a non-member");
                            if let Some(o) = order.as_mut() {
                                o.retain(|x| x[..] != p[..]);
                            }
                        }
                        if before != "listpack" {
                            // A hashtable's survivors arrive in random order.
                            order = Some(set.iter().map(|e| e.to_small().to_vec()).collect());
                        }
                    }
                    Op::PopOne => {
                        let Some(set) = s.as_mut() else { continue };
                        let p = set.pop_random(&mut rng);
                        prop_assert!(model.remove(&p[..]));
                        if let Some(o) = order.as_mut() {
                            o.retain(|x| x[..] != p[..]);
                        }
                    }
                }
                if s.as_ref().is_some_and(SetVal::is_empty) {
                    s = None;
                }
                let Some(set) = s.as_ref() else {
                    prop_assert!(model.is_empty());
                    order = None;
                    continue;
                };
                check_invariants(set, &l);
                prop_assert_eq!(set.len(), model.len());
                let got: Vec<Vec<u8>> = set.iter().map(|e| e.to_small().to_vec()).collect();
                let got_set: BTreeSet<Vec<u8>> = got.iter().cloned().collect();
                prop_assert_eq!(&got_set, &model);
                for m in &model {
                    prop_assert!(set.contains(m));
                }
                if set.encoding() == "listpack" {
                    prop_assert_eq!(Some(&got), order.as_ref());
                } else {
                    order = None;
                }
            }
        }
    }
}
