//! The large encoding of a sorted set ("skiplist"): a skip list with spans, as in Valkey's
//! `zskiplist` (William Pugh's structure, with each forward link also counting how many
//! elements it jumps so that ranks cost O(log n)), plus a hash index from member to node.
//!
//! Layout. Nodes live in an arena (`Slab`) and link to each other by index, so there is no
//! unsafe code and a clone is a plain copy. Each member is stored once, as the key of the
//! hash index (`IndexMap`, member → node id); a node finds its member through the position
//! of its index entry (`Node::entry`). Removing an index entry moves the last entry into its
//! place (`swap_remove`), so the moved member's node gets its new position — O(1). The index
//! positions also give ZRANDMEMBER a uniform pick and ZSCAN a cursor (see `scan_page` in
//! `zset.rs`).
//!
//! Order: by score, then by member bytes (`memcmp`, shorter first), compared with `<` and
//! `==` on the doubles as Valkey does (so -0 and 0 tie and the members decide). Scores are
//! never NaN.

use crate::keyspace::{KeyHasher, SmallBytes};
use indexmap::IndexMap;
use slab::Slab;
use smallvec::{smallvec, SmallVec};

/// Most levels a node can have (Valkey's ZSKIPLIST_MAXLEVEL).
const MAX_LEVEL: usize = 32;
/// A node gets one more level with probability 1/4 (ZSKIPLIST_P).
const LEVEL_P_16BIT: u64 = 0x4000;
/// No node.
const NIL: u32 = u32::MAX;
/// The header node: it has every level and no element.
const HEAD: u32 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    forward: u32,
    /// How many elements the forward link passes (the rank difference).
    span: u32,
}

#[derive(Debug, Clone)]
struct Node {
    score: f64,
    /// Position of this node's member in `SkipList::members`.
    entry: u32,
    backward: u32,
    levels: SmallVec<[Level; 2]>,
}

/// A skip list of (score, member) with a member index. See the module comment.
#[derive(Debug, Clone)]
pub struct SkipList {
    nodes: Slab<Node>,
    members: IndexMap<SmallBytes, u32, KeyHasher>,
    tail: u32,
    level: usize,
    /// Heap bytes of the members (for memory accounting in O(1)).
    member_heap: usize,
    rng: u64,
}

impl Default for SkipList {
    fn default() -> SkipList {
        SkipList::with_capacity(0)
    }
}

/// Whether (a_score, a_member) sorts before (b_score, b_member).
fn before(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> bool {
    a_score < b_score || (a_score == b_score && a_member < b_member)
}

impl SkipList {
    pub fn with_capacity(capacity: usize) -> SkipList {
        let mut nodes = Slab::with_capacity(capacity + 1);
        let head = nodes.insert(Node {
            score: 0.0,
            entry: NIL,
            backward: NIL,
            levels: smallvec![Level { forward: NIL, span: 0 }; MAX_LEVEL],
        });
        assert_eq!(head, HEAD as usize);
        SkipList {
            nodes,
            members: IndexMap::with_capacity_and_hasher(capacity, KeyHasher),
            tail: NIL,
            level: 1,
            member_heap: 0,
            rng: 0x853c_49e6_748f_ea9b ^ (capacity as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Heap bytes owned (an estimate from capacities; O(1)).
    pub fn heap_bytes(&self) -> usize {
        let node = std::mem::size_of::<Node>() + 8;
        let entry = std::mem::size_of::<(u64, SmallBytes, u32)>() + 9;
        // Levels beyond the two kept inline spill to the heap (1 node in 16 has 3 or more).
        let spilled = self.len() / 16 * 4 * std::mem::size_of::<Level>();
        self.nodes.capacity() * node
            + self.members.capacity() * entry
            + MAX_LEVEL * std::mem::size_of::<Level>()
            + spilled
            + self.member_heap
    }

    fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    fn node_mut(&mut self, id: u32) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    fn lvl(&self, id: u32, i: usize) -> Level {
        self.node(id).levels[i]
    }

    fn lvl_mut(&mut self, id: u32, i: usize) -> &mut Level {
        &mut self.node_mut(id).levels[i]
    }

    fn member_of(&self, id: u32) -> &[u8] {
        self.members
            .get_index(self.node(id).entry as usize)
            .map(|(m, _)| m.as_slice())
            .unwrap_or_default()
    }

    /// The member and score of node `id`.
    fn elem(&self, id: u32) -> (&[u8], f64) {
        (self.member_of(id), self.node(id).score)
    }

    fn random_level(&mut self) -> usize {
        let mut level = 1;
        loop {
            // xorshift64
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            if level >= MAX_LEVEL || (self.rng & 0xFFFF) >= LEVEL_P_16BIT {
                return level;
            }
            level += 1;
        }
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.members.get(member).map(|&id| self.node(id).score)
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains_key(member)
    }

    /// Adds a member that is not present.
    pub fn insert(&mut self, score: f64, member: SmallBytes) {
        assert!(!score.is_nan(), "NaN score");
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let l = self.lvl(x, i);
                if l.forward != NIL && {
                    let (m, s) = self.elem(l.forward);
                    before(s, m, score, &member)
                } {
                    rank[i] += l.span;
                    x = l.forward;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let level = self.random_level();
        if level > self.level {
            let len = self.len() as u32;
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEAD;
                self.lvl_mut(HEAD, i).span = len;
            }
            self.level = level;
        }
        let entry = u32::try_from(self.members.len()).expect("sorted set too large");
        let id = self.nodes.insert(Node {
            score,
            entry,
            backward: NIL,
            levels: smallvec![Level { forward: NIL, span: 0 }; level],
        });
        let id = u32::try_from(id).expect("sorted set too large");
        self.member_heap += member.heap_bytes();
        self.members.insert(member, id);
        for i in 0..level {
            let u = update[i];
            let ul = self.lvl(u, i);
            let passed = rank[0] - rank[i];
            *self.lvl_mut(id, i) = Level {
                forward: ul.forward,
                span: ul.span - passed,
            };
            *self.lvl_mut(u, i) = Level {
                forward: id,
                span: passed + 1,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(level) {
            self.lvl_mut(u, i).span += 1;
        }
        self.node_mut(id).backward = if update[0] == HEAD { NIL } else { update[0] };
        let next = self.lvl(id, 0).forward;
        if next != NIL {
            self.node_mut(next).backward = id;
        } else {
            self.tail = id;
        }
    }

    /// For each level, the last node before (score, member).
    fn path_to(&self, score: f64, member: &[u8]) -> [u32; MAX_LEVEL] {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.lvl(x, i).forward;
                if f != NIL && {
                    let (m, s) = self.elem(f);
                    before(s, m, score, member)
                } {
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        update
    }

    /// Unlinks node `x`, whose predecessors on every level are `update`.
    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) {
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let ul = self.lvl(u, i);
            if ul.forward == x {
                let xl = self.lvl(x, i);
                *self.lvl_mut(u, i) = Level {
                    forward: xl.forward,
                    span: ul.span + xl.span - 1,
                };
            } else {
                self.lvl_mut(u, i).span = ul.span - 1;
            }
        }
        let next = self.lvl(x, 0).forward;
        let back = self.node(x).backward;
        if next != NIL {
            self.node_mut(next).backward = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.lvl(HEAD, self.level - 1).forward == NIL {
            self.level -= 1;
        }
    }

    /// Frees an unlinked node and its index entry; returns the member.
    fn release(&mut self, x: u32) -> (SmallBytes, f64) {
        let node = self.nodes.remove(x as usize);
        let entry = node.entry as usize;
        let (member, _) = self
            .members
            .swap_remove_index(entry)
            .expect("node without index entry");
        // The last index entry moved into `entry`: its node must learn its new position.
        if let Some((_, &moved)) = self.members.get_index(entry) {
            self.node_mut(moved).entry = node.entry;
        }
        self.member_heap -= member.heap_bytes();
        (member, node.score)
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let &id = self.members.get(member)?;
        let score = self.node(id).score;
        let update = self.path_to(score, member);
        let x = self.lvl(update[0], 0).forward;
        assert_eq!(x, id, "skip list and index disagree");
        self.unlink(x, &update);
        Some(self.release(x).1)
    }

    /// Changes the score of an existing member (in place when its position does not change,
    /// as Valkey's `zslUpdateScore`).
    pub fn set_score(&mut self, member: &[u8], score: f64) {
        let Some(&id) = self.members.get(member) else {
            return;
        };
        let back = self.node(id).backward;
        let next = self.lvl(id, 0).forward;
        let after_back = back == NIL || {
            let (m, s) = self.elem(back);
            before(s, m, score, member)
        };
        let before_next = next == NIL || {
            let (m, s) = self.elem(next);
            before(score, member, s, m)
        };
        if after_back && before_next {
            self.node_mut(id).score = score;
            return;
        }
        let old = self.node(id).score;
        let update = self.path_to(old, member);
        self.unlink(id, &update);
        let (member, _) = self.release(id);
        self.insert(score, member);
    }

    /// How many elements, from the first, satisfy `pred` (which must hold for a prefix of
    /// the order and not after it), in O(log n).
    pub fn count_leading(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut x = HEAD;
        let mut n = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.lvl(x, i);
                if l.forward != NIL && {
                    let (m, s) = self.elem(l.forward);
                    pred(s, m)
                } {
                    n += l.span as usize;
                    x = l.forward;
                } else {
                    break;
                }
            }
        }
        n
    }

    /// The 0-based rank of `member` and its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        let score = self.score(member)?;
        let n = self.count_leading(|s, m| !before(score, member, s, m));
        Some((n - 1, score))
    }

    /// The node at 0-based `rank`.
    fn node_at(&self, rank: usize) -> u32 {
        if rank >= self.len() {
            return NIL;
        }
        let target = rank + 1;
        let mut x = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.lvl(x, i);
                if l.forward != NIL && traversed + l.span as usize <= target {
                    traversed += l.span as usize;
                    x = l.forward;
                } else {
                    break;
                }
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }

    /// The element at 0-based `rank`.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        match self.node_at(rank) {
            NIL => None,
            id => Some(self.elem(id)),
        }
    }

    /// Iterates from `rank` towards the end (or the start when `reverse`).
    pub fn iter_from(&self, rank: usize, reverse: bool) -> Iter<'_> {
        Iter {
            list: self,
            node: self.node_at(rank),
            reverse,
        }
    }

    /// Removes the elements of ranks `start..=end` (0-based, within bounds), giving each to
    /// `removed` in order.
    pub fn remove_ranks(
        &mut self,
        start: usize,
        end: usize,
        mut removed: impl FnMut(SmallBytes, f64),
    ) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.lvl(x, i);
                if l.forward != NIL && traversed + l.span as usize <= start {
                    traversed += l.span as usize;
                    x = l.forward;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let mut x = self.lvl(x, 0).forward;
        let mut rank = start;
        while x != NIL && rank <= end {
            let next = self.lvl(x, 0).forward;
            self.unlink(x, &update);
            let (m, s) = self.release(x);
            removed(m, s);
            rank += 1;
            x = next;
        }
    }

    /// The member and score at position `pos` of the index (not of the order).
    pub fn at_position(&self, pos: usize) -> Option<(&[u8], f64)> {
        self.members
            .get_index(pos)
            .map(|(m, &id)| (m.as_slice(), self.node(id).score))
    }

    /// Checks the structure (for tests): links, spans, back links, order and index.
    #[cfg(test)]
    pub fn check(&self) {
        let mut ids = Vec::new();
        let mut x = self.lvl(HEAD, 0).forward;
        let mut back = NIL;
        while x != NIL {
            assert_eq!(self.node(x).backward, back);
            ids.push(x);
            back = x;
            x = self.lvl(x, 0).forward;
        }
        assert_eq!(self.tail, back);
        assert_eq!(ids.len(), self.len());
        for w in ids.windows(2) {
            let (m0, s0) = self.elem(w[0]);
            let (m1, s1) = self.elem(w[1]);
            assert!(before(s0, m0, s1, m1), "out of order");
        }
        let pos: std::collections::HashMap<u32, usize> =
            ids.iter().enumerate().map(|(i, &id)| (id, i + 1)).collect();
        for i in 0..MAX_LEVEL {
            let mut x = HEAD;
            let mut at = 0usize;
            loop {
                let l = self.lvl(x, i);
                if i >= self.level {
                    assert_eq!(l.forward, NIL);
                    break;
                }
                if l.forward == NIL {
                    // A link to the end spans the elements that are left.
                    assert_eq!(l.span as usize, self.len() - at, "end span at level {i}");
                    break;
                }
                let to = pos[&l.forward];
                assert_eq!(to - at, l.span as usize, "span at level {i}");
                at = to;
                x = l.forward;
            }
        }
        for (i, (m, &id)) in self.members.iter().enumerate() {
            assert_eq!(self.node(id).entry as usize, i);
            assert_eq!(self.member_of(id), m.as_slice());
        }
        let heap: usize = self.members.keys().map(SmallBytes::heap_bytes).sum();
        assert_eq!(heap, self.member_heap);
    }
}

/// Walks the skip list from a node, forwards or backwards.
pub struct Iter<'a> {
    list: &'a SkipList,
    node: u32,
    reverse: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        if self.node == NIL {
            return None;
        }
        let id = self.node;
        self.node = if self.reverse {
            self.list.node(id).backward
        } else {
            self.list.lvl(id, 0).forward
        };
        Some(self.list.elem(id))
    }
}
