//! The sorted set value ("zset") and its two encodings, as Valkey 8 keeps them:
//!
//! - "listpack": a small set, a `Vec` of (score, member) kept in order. Every operation is a
//!   linear walk, like Valkey's listpack, and the walks follow Valkey's exactly (where the
//!   first and last elements of a range are, how far a LIMIT offset skips), so even the
//!   unspecified results of a lexicographic range over members with different scores come
//!   out as Valkey's.
//! - "skiplist": a skip list with spans plus a member index (`zset/skiplist.rs`), O(log n)
//!   insert, delete, rank and range.
//!
//! A set starts as a listpack and becomes a skiplist when it would hold more than
//! `zset-max-listpack-entries` members or a member longer than `zset-max-listpack-value`
//! bytes. It never goes back by itself; the commands that build a new set from scratch
//! (ZUNIONSTORE and friends, ZRANGESTORE) choose the encoding from the result, as Valkey's do.
//!
//! Scores are ordered with `<` and `==` as C compares doubles: -0 and 0 are equal and the
//! members decide. No score is ever NaN.

mod dtoa;
mod skiplist;

pub use dtoa::{as_exact_i64, format_score, ScoreText, SCORE_TEXT_MAX};

use super::encoding::Limits;
use super::SmallBytes;
use skiplist::SkipList;
use std::cmp::Ordering;

/// A sorted set value.
#[derive(Debug, Clone)]
pub struct ZSetVal {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// In order, distinct members.
    Listpack(Vec<(f64, SmallBytes)>),
    Skiplist(SkipList),
}

impl Default for ZSetVal {
    fn default() -> ZSetVal {
        ZSetVal {
            repr: Repr::Listpack(Vec::new()),
        }
    }
}

impl PartialEq for ZSetVal {
    /// Same encoding and the same elements in the same order (scores compared bit for bit).
    fn eq(&self, other: &ZSetVal) -> bool {
        self.encoding() == other.encoding()
            && self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((m1, s1), (m2, s2))| m1 == m2 && s1.to_bits() == s2.to_bits())
    }
}

/// Whether (a_score, a_member) sorts before (b_score, b_member).
fn before(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> bool {
    a_score < b_score || (a_score == b_score && a_member < b_member)
}

/// A range of elements: by score (ZRANGEBYSCORE) or by member (ZRANGEBYLEX).
pub trait ZRange {
    /// Whether the range is empty whatever the set holds (min above max, or equal and open).
    fn is_void(&self) -> bool;
    /// Whether an element is at or above the minimum.
    fn gte_min(&self, score: f64, member: &[u8]) -> bool;
    /// Whether an element is at or below the maximum.
    fn lte_max(&self, score: f64, member: &[u8]) -> bool;
}

/// A score range, each end inclusive or exclusive (Valkey's `zrangespec`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub min_ex: bool,
    pub max_ex: bool,
}

impl ZRange for ScoreRange {
    fn is_void(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_ex || self.max_ex))
    }

    fn gte_min(&self, score: f64, _: &[u8]) -> bool {
        if self.min_ex {
            score > self.min
        } else {
            score >= self.min
        }
    }

    fn lte_max(&self, score: f64, _: &[u8]) -> bool {
        if self.max_ex {
            score < self.max
        } else {
            score <= self.max
        }
    }
}

/// One end of a lexicographic range: `-`, `+`, or a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexEdge {
    /// `-`: below every member.
    Lowest,
    /// `+`: above every member.
    Highest,
    Member(Vec<u8>),
}

impl LexEdge {
    /// Valkey's `sdscmplex`: `-` and `+` below and above every member (and equal to
    /// themselves), members by bytes.
    fn cmp_member(&self, member: &[u8]) -> Ordering {
        match self {
            LexEdge::Lowest => Ordering::Less,
            LexEdge::Highest => Ordering::Greater,
            LexEdge::Member(m) => m.as_slice().cmp(member),
        }
    }

    fn cmp_edge(&self, other: &LexEdge) -> Ordering {
        match (self, other) {
            (LexEdge::Lowest, LexEdge::Lowest) | (LexEdge::Highest, LexEdge::Highest) => {
                Ordering::Equal
            }
            (LexEdge::Lowest, _) | (_, LexEdge::Highest) => Ordering::Less,
            (LexEdge::Highest, _) | (_, LexEdge::Lowest) => Ordering::Greater,
            (LexEdge::Member(a), LexEdge::Member(b)) => a.cmp(b),
        }
    }
}

/// A lexicographic range (Valkey's `zlexrangespec`); `-` and `+` count as exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexEdge,
    pub max: LexEdge,
    pub min_ex: bool,
    pub max_ex: bool,
}

impl ZRange for LexRange {
    fn is_void(&self) -> bool {
        match self.min.cmp_edge(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min_ex || self.max_ex,
            Ordering::Less => false,
        }
    }

    fn gte_min(&self, _: f64, member: &[u8]) -> bool {
        // member >= min  <=>  min <= member
        match self.min.cmp_member(member) {
            Ordering::Less => true,
            Ordering::Equal => !self.min_ex,
            Ordering::Greater => false,
        }
    }

    fn lte_max(&self, _: f64, member: &[u8]) -> bool {
        match self.max.cmp_member(member) {
            Ordering::Greater => true,
            Ordering::Equal => !self.max_ex,
            Ordering::Less => false,
        }
    }
}

/// ZADD's options for one element.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AddFlags {
    pub incr: bool,
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

/// What adding one element did (Valkey's `zsetAdd` out flags and new score).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Added {
    /// A new member, with this score.
    New(f64),
    /// An existing member now has this (different) score.
    Updated(f64),
    /// An existing member was processed but kept its score (the same score, or +0).
    Same(f64),
    /// Nothing done: NX on an existing member, XX on a missing one, or GT/LT refused.
    Nop,
    /// The resulting score would be NaN (an increment of -inf to +inf).
    Nan,
}

/// The score a listpack stores: Valkey writes a score that is an integer as an integer
/// entry, so -0 comes back as 0.
fn listpack_score(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// The encoding a new set of `len` members, the longest `member_len` bytes, gets.
fn fits_listpack(len: usize, member_len: usize, limits: &Limits) -> bool {
    len <= limits.zset_max_listpack_entries && member_len <= limits.zset_max_listpack_value
}

impl ZSetVal {
    /// An empty listpack (what an empty set is until it grows).
    pub fn new() -> ZSetVal {
        ZSetVal::default()
    }

    /// A new empty set sized for about `size_hint` members of about `member_len` bytes
    /// (Valkey's `zsetTypeCreate`): a skiplist from the start when they would not fit a
    /// listpack.
    pub fn with_hint(size_hint: usize, member_len: usize, limits: &Limits) -> ZSetVal {
        if fits_listpack(size_hint, member_len, limits) {
            ZSetVal::new()
        } else {
            ZSetVal {
                repr: Repr::Skiplist(SkipList::with_capacity(size_hint)),
            }
        }
    }

    /// Converts a listpack to a skiplist before `size_hint` members of up to `member_len`
    /// bytes are added, when they would not fit (Valkey's `zsetTypeMaybeConvert`).
    pub fn reserve_for(&mut self, size_hint: usize, member_len: usize, limits: &Limits) {
        if matches!(self.repr, Repr::Listpack(_)) && !fits_listpack(size_hint, member_len, limits) {
            self.convert_to_skiplist(size_hint);
        }
    }

    /// A set of `items`, which are in order and distinct, in the encoding their size calls
    /// for (Valkey's `zsetConvertToListpackIfNeeded` on a freshly built result).
    pub fn from_sorted(items: Vec<(f64, SmallBytes)>, limits: &Limits) -> ZSetVal {
        let longest = items.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
        if fits_listpack(items.len(), longest, limits) {
            let items = items
                .into_iter()
                .map(|(s, m)| (listpack_score(s), m))
                .collect();
            return ZSetVal {
                repr: Repr::Listpack(items),
            };
        }
        let mut list = SkipList::with_capacity(items.len());
        // From the highest down: each insert then stops at the head of the list.
        for (score, member) in items.into_iter().rev() {
            list.insert(score, member);
        }
        ZSetVal {
            repr: Repr::Skiplist(list),
        }
    }

    fn convert_to_skiplist(&mut self, capacity: usize) {
        if let Repr::Listpack(v) = &mut self.repr {
            let items = std::mem::take(v);
            let mut list = SkipList::with_capacity(capacity.max(items.len()));
            for (score, member) in items.into_iter().rev() {
                list.insert(score, member);
            }
            self.repr = Repr::Skiplist(list);
        }
    }

    /// The OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Skiplist(_) => "skiplist",
        }
    }

    /// Whether the set is in its compact encoding.
    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, Repr::Listpack(_))
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(v) => v.len(),
            Repr::Skiplist(l) => l.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes owned by the value.
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Listpack(v) => {
                v.capacity() * std::mem::size_of::<(f64, SmallBytes)>()
                    + v.iter().map(|(_, m)| m.heap_bytes()).sum::<usize>()
            }
            Repr::Skiplist(l) => l.heap_bytes(),
        }
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Listpack(v) => v.iter().find(|(_, m)| **m == *member).map(|(s, _)| *s),
            Repr::Skiplist(l) => l.score(member),
        }
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Listpack(v) => v.iter().any(|(_, m)| **m == *member),
            Repr::Skiplist(l) => l.contains(member),
        }
    }

    /// Inserts a member that is not present.
    fn insert(&mut self, score: f64, member: &[u8], limits: &Limits) {
        if let Repr::Listpack(v) = &self.repr {
            if v.len() + 1 > limits.zset_max_listpack_entries
                || member.len() > limits.zset_max_listpack_value
            {
                let n = v.len() + 1;
                self.convert_to_skiplist(n);
            }
        }
        match &mut self.repr {
            Repr::Listpack(v) => {
                let at = v.partition_point(|(s, m)| before(*s, m, score, member));
                v.insert(at, (listpack_score(score), SmallBytes::new(member)));
            }
            Repr::Skiplist(l) => l.insert(score, SmallBytes::new(member)),
        }
    }

    /// Gives an existing member a new score.
    fn set_score(&mut self, member: &[u8], score: f64) {
        match &mut self.repr {
            Repr::Listpack(v) => {
                if let Some(i) = v.iter().position(|(_, m)| **m == *member) {
                    let (_, m) = v.remove(i);
                    let at = v.partition_point(|(s, x)| before(*s, x, score, member));
                    v.insert(at, (listpack_score(score), m));
                }
            }
            Repr::Skiplist(l) => l.set_score(member, score),
        }
    }

    /// Adds or updates one element as ZADD does (Valkey's `zsetAdd`); may convert a listpack
    /// that would grow too large.
    pub fn add(&mut self, score: f64, member: &[u8], flags: AddFlags, limits: &Limits) -> Added {
        if score.is_nan() {
            return Added::Nan;
        }
        match self.score(member) {
            Some(current) => {
                if flags.nx {
                    return Added::Nop;
                }
                let mut score = score;
                if flags.incr {
                    score += current;
                    if score.is_nan() {
                        return Added::Nan;
                    }
                }
                if (flags.lt && score >= current) || (flags.gt && score <= current) {
                    return Added::Nop;
                }
                if score != current {
                    self.set_score(member, score);
                    Added::Updated(score)
                } else {
                    Added::Same(score)
                }
            }
            None if flags.xx => Added::Nop,
            None => {
                self.insert(score, member, limits);
                Added::New(score)
            }
        }
    }

    /// Removes `member`; returns whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Listpack(v) => match v.iter().position(|(_, m)| **m == *member) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            Repr::Skiplist(l) => l.remove(member).is_some(),
        }
    }

    /// The 0-based rank of `member` (from the lowest, or the highest when `reverse`) and its
    /// score.
    pub fn rank(&self, member: &[u8], reverse: bool) -> Option<(usize, f64)> {
        let (rank, score) = match &self.repr {
            Repr::Listpack(v) => v
                .iter()
                .position(|(_, m)| **m == *member)
                .map(|i| (i, v[i].0))?,
            Repr::Skiplist(l) => l.rank(member)?,
        };
        Some((if reverse { self.len() - 1 - rank } else { rank }, score))
    }

    /// The element at 0-based `rank` (from the lowest).
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Listpack(v) => v.get(rank).map(|(s, m)| (m.as_slice(), *s)),
            Repr::Skiplist(l) => l.get(rank),
        }
    }

    /// The elements from `rank` towards the highest (or towards the lowest when `reverse`).
    pub fn iter_from(&self, rank: usize, reverse: bool) -> Iter<'_> {
        match &self.repr {
            Repr::Listpack(v) => {
                let part = if reverse {
                    v.get(..=rank).unwrap_or_default()
                } else {
                    v.get(rank..).unwrap_or_default()
                };
                Iter::Listpack {
                    items: part.iter(),
                    reverse,
                }
            }
            Repr::Skiplist(l) => Iter::Skiplist(l.iter_from(rank, reverse)),
        }
    }

    /// All elements, lowest first.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, false)
    }

    /// Whether any element can be in `range`: the quick test both of Valkey's encodings make
    /// before looking for the first or last element of a range.
    fn may_hold(&self, range: &impl ZRange) -> bool {
        if range.is_void() {
            return false;
        }
        let (Some((lm, ls)), Some((fm, fs))) = (self.get(self.len().wrapping_sub(1)), self.get(0))
        else {
            return false;
        };
        range.gte_min(ls, lm) && range.lte_max(fs, fm)
    }

    /// The rank of the first element of `range`: the first element at or above the minimum,
    /// if it is also at or below the maximum (a listpack walks; a skiplist descends).
    pub fn first_in(&self, range: &impl ZRange) -> Option<usize> {
        if !self.may_hold(range) {
            return None;
        }
        let i = match &self.repr {
            Repr::Listpack(v) => v.iter().position(|(s, m)| range.gte_min(*s, m))?,
            Repr::Skiplist(l) => l.count_leading(|s, m| !range.gte_min(s, m)),
        };
        let (m, s) = self.get(i)?;
        range.lte_max(s, m).then_some(i)
    }

    /// The rank of the last element of `range`: the last element at or below the maximum, if
    /// it is also at or above the minimum.
    pub fn last_in(&self, range: &impl ZRange) -> Option<usize> {
        if !self.may_hold(range) {
            return None;
        }
        let i = match &self.repr {
            Repr::Listpack(v) => v.iter().rposition(|(s, m)| range.lte_max(*s, m))?,
            Repr::Skiplist(l) => l.count_leading(|s, m| range.lte_max(s, m)).checked_sub(1)?,
        };
        let (m, s) = self.get(i)?;
        range.gte_min(s, m).then_some(i)
    }

    /// Where a range reply with a LIMIT `offset` starts (walking up, or down when `reverse`).
    ///
    /// A listpack skips `offset` elements from the first (last) element of the range, so a
    /// negative offset runs off the end. A skiplist (Valkey 8's `zslNthInRange`) counts a
    /// negative offset from the other end of the range instead: forwards, -1 is the last
    /// element of the range; backwards, -1 is the first.
    pub fn range_start(&self, range: &impl ZRange, offset: i64, reverse: bool) -> Option<usize> {
        match &self.repr {
            Repr::Listpack(_) => {
                let offset = usize::try_from(offset).ok()?;
                if reverse {
                    self.last_in(range)?.checked_sub(offset)
                } else {
                    let i = self.first_in(range)?.checked_add(offset)?;
                    (i < self.len()).then_some(i)
                }
            }
            Repr::Skiplist(_) => {
                let n = if reverse {
                    -i128::from(offset) - 1
                } else {
                    i128::from(offset)
                };
                self.nth_in(range, n)
            }
        }
    }

    /// Valkey's `zslNthInRange` (and its lexicographic twin): the `n`-th element of the range
    /// from its start, or from its end when `n` is negative (-1 is the last).
    fn nth_in(&self, range: &impl ZRange, n: i128) -> Option<usize> {
        if !self.may_hold(range) {
            return None;
        }
        let len = self.len() as i128;
        if n >= 0 {
            let below = match &self.repr {
                Repr::Skiplist(l) => l.count_leading(|s, m| !range.gte_min(s, m)),
                Repr::Listpack(v) => v.iter().take_while(|(s, m)| !range.gte_min(*s, m)).count(),
            };
            let i = below as i128 + n;
            if i >= len {
                return None;
            }
            let (m, s) = self.get(i as usize)?;
            range.lte_max(s, m).then_some(i as usize)
        } else {
            let upto = match &self.repr {
                Repr::Skiplist(l) => l.count_leading(|s, m| range.lte_max(s, m)),
                Repr::Listpack(v) => v.iter().take_while(|(s, m)| range.lte_max(*s, m)).count(),
            };
            let i = upto as i128 + n;
            if i < 0 {
                return None;
            }
            let (m, s) = self.get(i as usize)?;
            range.gte_min(s, m).then_some(i as usize)
        }
    }

    /// How many elements a walk from the first element of `range` finds before one is above
    /// the maximum (ZCOUNT, ZLEXCOUNT, and what ZREMRANGEBYSCORE/BYLEX remove).
    pub fn count_in(&self, range: &impl ZRange) -> usize {
        match &self.repr {
            Repr::Listpack(_) => match self.first_in(range) {
                Some(first) => self
                    .iter_from(first, false)
                    .take_while(|(m, s)| range.lte_max(*s, m))
                    .count(),
                None => 0,
            },
            Repr::Skiplist(_) => match (self.nth_in(range, 0), self.nth_in(range, -1)) {
                (Some(first), Some(last)) => last + 1 - first,
                (Some(first), None) => self.len() - first,
                _ => 0,
            },
        }
    }

    /// Removes the elements of ranks `start..=end` (0-based, `start <= end < len`), giving
    /// each to `removed`, lowest first.
    pub fn remove_ranks(
        &mut self,
        start: usize,
        end: usize,
        mut removed: impl FnMut(SmallBytes, f64),
    ) {
        match &mut self.repr {
            Repr::Listpack(v) => {
                let end = end.min(v.len().saturating_sub(1));
                if start <= end {
                    for (s, m) in v.drain(start..=end) {
                        removed(m, s);
                    }
                }
            }
            Repr::Skiplist(l) => l.remove_ranks(start, end, removed),
        }
    }

    /// Removes and returns up to `count` elements from the lowest end (or the highest when
    /// `max`), in the order they are popped.
    pub fn pop(&mut self, max: bool, count: usize) -> Vec<(SmallBytes, f64)> {
        let n = count.min(self.len());
        if n == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(n);
        let (start, end) = if max {
            (self.len() - n, self.len() - 1)
        } else {
            (0, n - 1)
        };
        self.remove_ranks(start, end, |m, s| out.push((m, s)));
        if max {
            out.reverse();
        }
        out
    }

    /// The element picked by the random number `r`, uniformly.
    pub fn random(&self, r: u64) -> Option<(&[u8], f64)> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let i = (r % len as u64) as usize;
        match &self.repr {
            Repr::Listpack(v) => v.get(i).map(|(s, m)| (m.as_slice(), *s)),
            Repr::Skiplist(l) => l.at_position(i),
        }
    }

    /// One ZSCAN step. A listpack is returned whole (cursor 0 next, as Valkey does for every
    /// compact encoding). A skiplist is walked by position in its member index from the end
    /// down, `count` members per call; a removal moves the last member into the hole, which
    /// is above the cursor and so already visited, so a member present for the whole scan is
    /// never missed (it may come twice, which SCAN allows). Returns the next cursor.
    pub fn scan_step<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut emit: impl FnMut(&'a [u8], f64),
    ) -> u64 {
        match &self.repr {
            Repr::Listpack(v) => {
                for (s, m) in v {
                    emit(m, *s);
                }
                0
            }
            Repr::Skiplist(l) => {
                let len = l.len();
                let mut pos = if cursor == 0 {
                    len
                } else {
                    usize::try_from(cursor).unwrap_or(usize::MAX).min(len)
                };
                let mut seen = 0;
                while pos > 0 && seen < count.max(1) {
                    pos -= 1;
                    seen += 1;
                    if let Some((m, s)) = l.at_position(pos) {
                        emit(m, s);
                    }
                }
                pos as u64
            }
        }
    }

    /// Checks the skiplist structure (tests only).
    #[cfg(test)]
    pub fn check(&self) {
        match &self.repr {
            Repr::Listpack(v) => {
                for w in v.windows(2) {
                    assert!(
                        before(w[0].0, &w[0].1, w[1].0, &w[1].1),
                        "listpack out of order"
                    );
                }
            }
            Repr::Skiplist(l) => l.check(),
        }
    }
}

/// Elements of a sorted set in order, from some rank, as (member, score).
pub enum Iter<'a> {
    Listpack {
        items: std::slice::Iter<'a, (f64, SmallBytes)>,
        reverse: bool,
    },
    Skiplist(skiplist::Iter<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        match self {
            Iter::Listpack { items, reverse } => {
                let next = if *reverse {
                    items.next_back()
                } else {
                    items.next()
                };
                next.map(|(s, m)| (m.as_slice(), *s))
            }
            Iter::Skiplist(it) => it.next(),
        }
    }
}

impl super::Db {
    /// The value stored at `key` as it is: no expiry check, no statistics, no type check.
    /// For a command that has already looked each of its keys up (so an expired one is gone
    /// and the access is counted) and now reads several values at once (ZUNIONSTORE…).
    pub fn zset_input_at(&self, key: &[u8]) -> Option<&super::Value> {
        let table = self.slots.get(self.local(key))?;
        table.get(key).map(|e| &e.value)
    }
}

#[cfg(test)]
mod tests;
