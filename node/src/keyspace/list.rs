//! The list value type.
//!
//! Elements live in one `VecDeque`. What Valkey stores as a single listpack or as a quicklist
//! (a linked list of listpack nodes) only matters to OBJECT ENCODING and memory, but Valkey's
//! choice between the two depends on how its quicklist is laid out in nodes: it turns a
//! quicklist back into a listpack only when a single node is left, and that node fits in half
//! of `list-max-listpack-size`. So beside the elements we keep the layout Valkey would have
//! (how many elements each node holds and its bytes, never the data twice) and apply
//! Valkey's rules to it, from its `t_list.c` and `quicklist.c`:
//!
//! - listpack → quicklist before a write that would take the listpack past the limit
//!   (`listTypeTryConvertListpack`, which counts the new elements' raw lengths); the whole
//!   listpack becomes the quicklist's first node;
//! - a push goes into the end node when Valkey's estimate (`_quicklistNodeAllowInsert`: node
//!   bytes + element length + 8) stays within the node limit, else into a new node; an
//!   element larger than a node gets a "plain" node of its own;
//! - pops, LREM and LTRIM shrink nodes and drop the empty ones (no merging);
//! - LINSERT and LSET follow `_quicklistInsert` and `quicklistReplaceEntry`: insert into the
//!   node, its neighbour, a new node, or split the node and merge neighbours
//!   (`_quicklistMergeNodes`);
//! - quicklist → listpack after a removal when one packed node is left within half the limit
//!   (`listTypeTryConvertQuicklist` with `shrinking`).
//!
//! A node's bytes are exact (a listpack header and end byte plus each entry's encoding and
//! back-length), since Valkey's decisions read `lpBytes`.

use super::SmallBytes;
use crate::util::parse_i64;
use std::collections::VecDeque;

/// Listpack header (total bytes + element count) and end marker.
const LP_OVERHEAD: usize = 6 + 1;
/// Byte limits of a negative `list-max-listpack-size` (-1 … -5).
const NEG_FILL_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// Largest listpack allowed when the limit counts entries (Valkey's SIZE_SAFETY_LIMIT).
const SIZE_SAFETY_LIMIT: usize = 8192;
/// What `_quicklistNodeAllowInsert` adds to an element's length for its listpack overhead.
const SIZE_ESTIMATE_OVERHEAD: usize = 8;
/// The range a quicklist keeps of `list-max-listpack-size` (its 16-bit `fill` field, with
/// `quicklistSetFill`'s bounds).
const FILL_MAX: i64 = (1 << 15) - 1;
const FILL_MIN: i64 = -5;

/// Bytes one element takes in a listpack: its encoding plus its back-length.
pub fn lp_entry_bytes(elem: &[u8]) -> usize {
    let enc = match parse_i64(elem) {
        Some(v) if (0..=127).contains(&v) => 1,
        Some(v) if (-4096..=4095).contains(&v) => 2,
        Some(v) if (-32768..=32767).contains(&v) => 3,
        Some(v) if (-8_388_608..=8_388_607).contains(&v) => 4,
        Some(v) if (-2_147_483_648..=2_147_483_647).contains(&v) => 5,
        Some(_) => 9,
        None if elem.len() < 64 => 1 + elem.len(),
        None if elem.len() < 4096 => 2 + elem.len(),
        None => 5 + elem.len(),
    };
    let backlen = match enc {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    enc + backlen
}

/// The bytes Valkey counts for an element that LMOVE (or BLMOVE) carries to another list,
/// in the destination's listpack → quicklist check: none for one that came out of a
/// quicklist's listpack as an integer (Valkey hands it over as an integer object, which
/// `listTypeTryConvertListpack` does not count), else its length.
pub fn moved_element_bytes(elem: &[u8], from_quicklist: bool) -> usize {
    if from_quicklist && parse_i64(elem).is_some() {
        0
    } else {
        elem.len()
    }
}

/// Valkey's `quicklistNodeLimit`: (byte limit, entry limit) for a `list-max-listpack-size`.
fn node_limits(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        (usize::MAX, (fill.max(1)) as usize)
    } else {
        let i = ((-fill - 1) as usize).min(NEG_FILL_BYTES.len() - 1);
        (NEG_FILL_BYTES[i], usize::MAX)
    }
}

/// Valkey's `quicklistNodeExceedsLimit`.
fn exceeds(fill: i64, bytes: usize, count: usize) -> bool {
    let (sz, cnt) = node_limits(fill);
    if sz != usize::MAX {
        bytes > sz
    } else {
        bytes > SIZE_SAFETY_LIMIT || count > cnt
    }
}

/// Valkey's `isLargeElement`: an element that gets a plain node of its own.
fn is_large(len: usize, fill: i64) -> bool {
    if fill >= 0 {
        len > SIZE_SAFETY_LIMIT
    } else {
        len > node_limits(fill).0
    }
}

/// One quicklist node: how many elements it holds and its bytes (a listpack's, or the
/// element's length for a plain node).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    count: usize,
    bytes: usize,
    plain: bool,
}

impl Node {
    /// A packed node of `count` elements whose entries take `entries` bytes.
    fn packed(count: usize, entries: usize) -> Node {
        Node {
            count,
            bytes: LP_OVERHEAD + entries,
            plain: false,
        }
    }

    /// A plain node holding one element of `len` bytes.
    fn plain(len: usize) -> Node {
        Node {
            count: 1,
            bytes: len,
            plain: true,
        }
    }
}

/// Listpack entry bytes of positions `from..to`.
fn entries_bytes(items: &VecDeque<SmallBytes>, from: usize, to: usize) -> usize {
    items.range(from..to).map(|e| lp_entry_bytes(e)).sum()
}

/// The node layout of a quicklist, with the `fill` it was created with (Valkey keeps it in
/// the quicklist; later config changes only affect conversions).
#[derive(Debug, Clone, PartialEq)]
struct Quicklist {
    fill: i64,
    nodes: VecDeque<Node>,
}

impl Quicklist {
    /// The node holding position `at`, the node's first position, and `at`'s offset in it.
    fn locate(&self, at: usize) -> (usize, usize, usize) {
        let mut start = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            if at < start + n.count {
                return (i, start, at - start);
            }
            start += n.count;
        }
        panic!("position {at} beyond the quicklist's {start} elements");
    }

    /// `_quicklistNodeAllowInsert` for node `i` (none when out of range).
    fn allow_insert(&self, i: Option<usize>, len: usize) -> bool {
        let Some(n) = i.and_then(|i| self.nodes.get(i)) else {
            return false;
        };
        !n.plain
            && !is_large(len, self.fill)
            && !exceeds(
                self.fill,
                n.bytes + len + SIZE_ESTIMATE_OVERHEAD,
                n.count + 1,
            )
    }

    /// `_quicklistNodeAllowMerge` for nodes `a` and `b` (none when out of range).
    fn allow_merge(&self, a: Option<usize>, b: Option<usize>) -> bool {
        let (Some(a), Some(b)) = (
            a.and_then(|i| self.nodes.get(i)),
            b.and_then(|i| self.nodes.get(i)),
        ) else {
            return false;
        };
        !a.plain
            && !b.plain
            && !exceeds(
                self.fill,
                a.bytes + b.bytes - LP_OVERHEAD,
                a.count + b.count,
            )
    }

    /// Merges node `a` with the node after it (`lpMerge`: one header and end byte less).
    fn merge(&mut self, a: usize) {
        let b = self.nodes.remove(a + 1).expect("merged nodes are adjacent");
        let n = &mut self.nodes[a];
        n.count += b.count;
        n.bytes = n.bytes + b.bytes - LP_OVERHEAD;
    }

    /// `_quicklistMergeNodes` around node `center`.
    fn merge_around(&mut self, center: usize) {
        let mut center = center;
        let prev = center.checked_sub(1);
        let prev_prev = center.checked_sub(2);
        if self.allow_merge(prev, prev_prev) {
            self.merge(center - 2);
            center -= 1;
        }
        if self.allow_merge(Some(center + 1), Some(center + 2)) {
            self.merge(center + 1);
        }
        let target = if self.allow_merge(Some(center), center.checked_sub(1)) {
            self.merge(center - 1);
            center - 1
        } else {
            center
        };
        if self.allow_merge(Some(target), Some(target + 1)) {
            self.merge(target);
        }
    }

    /// Takes one element of `entry` bytes out of node `i`, dropping the node when it empties.
    fn remove_from(&mut self, i: usize, entry: usize) {
        let n = &mut self.nodes[i];
        n.count -= 1;
        if n.count == 0 {
            self.nodes.remove(i);
        } else if !n.plain {
            n.bytes -= entry;
        }
    }
}

/// A list value.
#[derive(Debug, Clone, PartialEq)]
pub struct ListVal {
    items: VecDeque<SmallBytes>,
    /// Bytes of the listpack Valkey holds these elements in, while a listpack.
    lp_bytes: usize,
    /// Valkey's quicklist layout, while a quicklist.
    ql: Option<Quicklist>,
}

impl Default for ListVal {
    fn default() -> ListVal {
        ListVal::new()
    }
}

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl ListVal {
    pub fn new() -> ListVal {
        ListVal {
            items: VecDeque::new(),
            lp_bytes: LP_OVERHEAD,
            ql: None,
        }
    }

    /// The OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        if self.ql.is_some() {
            "quicklist"
        } else {
            "listpack"
        }
    }

    pub fn is_quicklist(&self) -> bool {
        self.ql.is_some()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Heap bytes owned by the value.
    pub fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<SmallBytes>()
            + self.items.iter().map(SmallBytes::heap_bytes).sum::<usize>()
            + self
                .ql
                .as_ref()
                .map_or(0, |q| q.nodes.capacity() * std::mem::size_of::<Node>())
    }

    /// Before adding `elems`: turns a listpack into a quicklist if they would not fit
    /// (Valkey's `listTypeTryConvertListpack`, which counts the new elements' raw lengths).
    pub fn before_growing<'a>(&mut self, elems: impl IntoIterator<Item = &'a [u8]>, fill: i64) {
        let (mut add_bytes, mut add_len) = (0usize, 0usize);
        for e in elems {
            add_bytes += e.len();
            add_len += 1;
        }
        self.before_growing_by(add_bytes, add_len, fill);
    }

    /// [`ListVal::before_growing`] for `add_len` elements that count `add_bytes` bytes.
    pub fn before_growing_by(&mut self, add_bytes: usize, add_len: usize, fill: i64) {
        if self.ql.is_some()
            || !exceeds(fill, self.lp_bytes + add_bytes, self.items.len() + add_len)
        {
            return;
        }
        let mut nodes = VecDeque::new();
        if !self.items.is_empty() {
            nodes.push_back(Node {
                count: self.items.len(),
                bytes: self.lp_bytes,
                plain: false,
            });
        }
        self.ql = Some(Quicklist {
            fill: fill.clamp(FILL_MIN, FILL_MAX),
            nodes,
        });
    }

    /// After removing elements: back to a listpack when a single packed node is left and it
    /// fits in half a node (Valkey's `listTypeTryConvertQuicklist` with `shrinking`).
    pub fn after_shrinking(&mut self, fill: i64) {
        let Some(q) = &self.ql else {
            return;
        };
        let (sz, cnt) = node_limits(fill);
        match q.nodes.front() {
            Some(n)
                if q.nodes.len() == 1 && !n.plain && n.bytes <= sz / 2 && n.count <= cnt / 2 =>
            {
                self.lp_bytes = n.bytes;
                self.ql = None;
            }
            _ => {}
        }
    }

    /// After building a list from scratch the way Valkey loads an `RDB_TYPE_LIST` (every
    /// element pushed at the tail of a new quicklist, then `LIST_CONV_AUTO`): lays the nodes
    /// out so, and keeps a listpack when one packed node within the limit holds everything.
    pub fn settle(&mut self, fill: i64) {
        let items = std::mem::take(&mut self.items);
        self.ql = Some(Quicklist {
            fill: fill.clamp(FILL_MIN, FILL_MAX),
            nodes: VecDeque::new(),
        });
        for e in &items {
            self.push(End::Right, e);
        }
        let (sz, cnt) = node_limits(fill);
        if let Some(q) = &self.ql {
            match q.nodes.front() {
                Some(n) if q.nodes.len() == 1 && !n.plain && n.bytes <= sz && n.count <= cnt => {
                    self.lp_bytes = n.bytes;
                    self.ql = None;
                }
                _ => {}
            }
        }
    }

    pub fn push(&mut self, end: End, elem: &[u8]) {
        let entry = lp_entry_bytes(elem);
        match &mut self.ql {
            None => self.lp_bytes += entry,
            Some(q) => {
                // `quicklistPushHead` / `quicklistPushTail`.
                let edge = match end {
                    End::Left => Some(0),
                    End::Right => q.nodes.len().checked_sub(1),
                };
                let new_node = if is_large(elem.len(), q.fill) {
                    Some(Node::plain(elem.len()))
                } else if let Some(i) = edge.filter(|_| q.allow_insert(edge, elem.len())) {
                    q.nodes[i].count += 1;
                    q.nodes[i].bytes += entry;
                    None
                } else {
                    Some(Node::packed(1, entry))
                };
                match (new_node, end) {
                    (Some(n), End::Left) => q.nodes.push_front(n),
                    (Some(n), End::Right) => q.nodes.push_back(n),
                    (None, _) => {}
                }
            }
        }
        let e = SmallBytes::new(elem);
        match end {
            End::Left => self.items.push_front(e),
            End::Right => self.items.push_back(e),
        }
    }

    pub fn pop(&mut self, end: End) -> Option<SmallBytes> {
        let e = match end {
            End::Left => self.items.pop_front(),
            End::Right => self.items.pop_back(),
        }?;
        let entry = lp_entry_bytes(&e);
        match &mut self.ql {
            None => self.lp_bytes -= entry,
            Some(q) => {
                let i = match end {
                    End::Left => 0,
                    End::Right => q.nodes.len() - 1,
                };
                q.remove_from(i, entry);
            }
        }
        Some(e)
    }

    /// The element at `index` (negative counts from the end).
    pub fn get(&self, index: i64) -> Option<&SmallBytes> {
        self.items.get(self.resolve(index)?)
    }

    /// Position of `index` (negative from the end), when it is inside the list.
    fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if index < 0 {
            len.checked_add(index)?
        } else {
            index
        };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// Replaces the element at `index`; false when out of range (Valkey's
    /// `quicklistReplaceEntry` for a quicklist).
    pub fn set(&mut self, index: i64, elem: &[u8]) -> bool {
        let Some(i) = self.resolve(index) else {
            return false;
        };
        let (old, new) = (lp_entry_bytes(&self.items[i]), lp_entry_bytes(elem));
        let items = &self.items;
        match &mut self.ql {
            None => self.lp_bytes = self.lp_bytes + new - old,
            Some(q) => {
                let (ni, start, off) = q.locate(i);
                let node = q.nodes[ni];
                match (node.plain, is_large(elem.len(), q.fill)) {
                    (false, false) => q.nodes[ni].bytes = node.bytes + new - old,
                    (true, true) => q.nodes[ni].bytes = elem.len(),
                    (true, false) => {
                        // Inserted after the plain node as LINSERT AFTER would, then the
                        // plain node goes.
                        if q.allow_insert(Some(ni + 1), elem.len()) {
                            q.nodes[ni + 1].count += 1;
                            q.nodes[ni + 1].bytes += new;
                        } else {
                            q.nodes.insert(ni + 1, Node::packed(1, new));
                        }
                        q.nodes.remove(ni);
                    }
                    (false, true) => {
                        // The node splits after the element, the new one goes into a plain
                        // node between the halves, then the old one goes.
                        let end = start + node.count;
                        q.nodes[ni] = Node::packed(off + 1, entries_bytes(items, start, i + 1));
                        q.nodes.insert(ni + 1, Node::plain(elem.len()));
                        if i + 1 < end {
                            let tail = Node::packed(end - i - 1, entries_bytes(items, i + 1, end));
                            q.nodes.insert(ni + 2, tail);
                        }
                        if off == 0 {
                            q.nodes.remove(ni);
                        } else {
                            q.nodes[ni].count -= 1;
                            q.nodes[ni].bytes -= old;
                            q.merge_around(ni + 1);
                        }
                    }
                }
            }
        }
        self.items[i] = SmallBytes::new(elem);
        true
    }

    /// Inserts `elem` before or after the element at position `pivot` (LINSERT; Valkey's
    /// `_quicklistInsert` for a quicklist).
    pub fn insert(&mut self, pivot: usize, after: bool, elem: &[u8]) {
        let entry = lp_entry_bytes(elem);
        let at = if after { pivot + 1 } else { pivot };
        let items = &self.items;
        match &mut self.ql {
            None => self.lp_bytes += entry,
            Some(q) => {
                let (ni, start, off) = q.locate(pivot);
                let node = q.nodes[ni];
                let len = elem.len();
                let full = !q.allow_insert(Some(ni), len);
                let at_tail = after && off == node.count - 1;
                let at_head = !after && off == 0;
                let avail_next = at_tail && q.allow_insert(Some(ni + 1), len);
                let avail_prev = at_head && q.allow_insert(ni.checked_sub(1), len);
                // The node split at the insertion point: the part before it and the rest.
                let end = start + node.count;
                let before = Node::packed(at - start, entries_bytes(items, start, at));
                let rest = Node::packed(end - at, entries_bytes(items, at, end));
                let side = if after { ni + 1 } else { ni };
                if is_large(len, q.fill) {
                    if node.plain || at_tail || at_head {
                        q.nodes.insert(side, Node::plain(len));
                    } else {
                        q.nodes[ni] = before;
                        q.nodes.insert(ni + 1, Node::plain(len));
                        q.nodes.insert(ni + 2, rest);
                    }
                } else if !full {
                    q.nodes[ni].count += 1;
                    q.nodes[ni].bytes += entry;
                } else if avail_next || avail_prev {
                    let n = if avail_next { ni + 1 } else { ni - 1 };
                    q.nodes[n].count += 1;
                    q.nodes[n].bytes += entry;
                } else if at_tail || at_head {
                    q.nodes.insert(side, Node::packed(1, entry));
                } else {
                    // The half on the insertion side takes the new element (`after`: the
                    // node keeps the part before, a new node after it takes the element and
                    // the rest; else the other way round), then neighbours merge.
                    let grow = |n: Node| Node::packed(n.count + 1, n.bytes - LP_OVERHEAD + entry);
                    let center = if after {
                        q.nodes[ni] = before;
                        q.nodes.insert(ni + 1, grow(rest));
                        ni
                    } else {
                        q.nodes[ni] = rest;
                        q.nodes.insert(ni, grow(before));
                        ni + 1
                    };
                    q.merge_around(center);
                }
            }
        }
        self.items.insert(at, SmallBytes::new(elem));
    }

    /// Removes the elements equal to `target`: the first `count` from the head (all when 0),
    /// or the last `-count` from the tail (LREM). Returns how many went.
    pub fn remove_equal(&mut self, target: &[u8], count: i64) -> usize {
        let want = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        let matches = |(_, e): &(usize, &SmallBytes)| ***e == *target;
        let mut gone: Vec<usize> = if count >= 0 {
            self.items
                .iter()
                .enumerate()
                .filter(matches)
                .map(|(i, _)| i)
                .take(if count == 0 { usize::MAX } else { want })
                .collect()
        } else {
            self.items
                .iter()
                .enumerate()
                .rev()
                .filter(matches)
                .map(|(i, _)| i)
                .take(want)
                .collect()
        };
        gone.sort_unstable();
        let entry = lp_entry_bytes(target);
        match &mut self.ql {
            None => self.lp_bytes -= entry * gone.len(),
            Some(q) => {
                // Node by node over the original layout (positions ascending; a node's count
                // is read when the walk reaches it, before any of its elements went).
                let (mut node, mut end) = (0usize, q.nodes.front().map_or(0, |n| n.count));
                for &p in &gone {
                    while p >= end {
                        node += 1;
                        end += q.nodes[node].count;
                    }
                    let n = &mut q.nodes[node];
                    n.count -= 1;
                    if !n.plain {
                        n.bytes -= entry;
                    }
                }
                q.nodes.retain(|n| n.count > 0);
            }
        }
        let mut k = 0;
        let mut i = 0usize;
        self.items.retain(|_| {
            let keep = gone.get(k) != Some(&i);
            if !keep {
                k += 1;
            }
            i += 1;
            keep
        });
        gone.len()
    }

    /// Elements in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &SmallBytes> + ExactSizeIterator {
        self.items.iter()
    }

    /// Keeps only positions `start..start+len` (LTRIM: Valkey deletes the head and tail
    /// ranges, which empties and drops nodes as pops would).
    pub fn keep_range(&mut self, start: usize, len: usize) {
        let start = start.min(self.items.len());
        for _ in 0..start {
            self.pop(End::Left);
        }
        let len = len.min(self.items.len());
        while self.items.len() > len {
            self.pop(End::Right);
        }
    }

    /// Valkey's range arithmetic for LRANGE: the inclusive positions `start..=end` (negative
    /// from the end), clipped; `None` when empty.
    pub fn range(&self, start: i64, end: i64) -> Option<(usize, usize)> {
        let len = self.items.len() as i64;
        let mut start = if start < 0 {
            len.saturating_add(start)
        } else {
            start
        };
        let mut end = if end < 0 {
            len.saturating_add(end)
        } else {
            end
        };
        if start < 0 {
            start = 0;
        }
        if start > end || start >= len {
            return None;
        }
        if end >= len {
            end = len - 1;
        }
        Some((start as usize, end as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Listpack entry sizes follow Valkey's encoding table.
    #[test]
    fn entry_sizes() {
        assert_eq!(lp_entry_bytes(b"1"), 2);
        assert_eq!(lp_entry_bytes(b"-1"), 3);
        assert_eq!(lp_entry_bytes(b"100000"), 5);
        assert_eq!(lp_entry_bytes(b"9223372036854775807"), 10);
        assert_eq!(lp_entry_bytes(b"abc"), 5);
        assert_eq!(lp_entry_bytes(&[b'x'; 100]), 103);
        assert_eq!(lp_entry_bytes(&[b'x'; 5000]), 5007);
    }

    /// The quicklist layout: (elements, bytes) of each node, plain nodes marked with `true`.
    fn layout(l: &ListVal) -> Vec<(usize, usize, bool)> {
        l.ql.as_ref()
            .map(|q| {
                q.nodes
                    .iter()
                    .map(|n| (n.count, n.bytes, n.plain))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// RPUSH of `n` elements, one command each, at the default -2.
    fn rpush_each(l: &mut ListVal, elems: impl IntoIterator<Item = Vec<u8>>) {
        for e in elems {
            l.before_growing([&e[..]], -2);
            l.push(End::Right, &e);
        }
    }

    /// A list becomes a quicklist past 8 KiB (the default -2), its listpack the first node
    /// and the pushes after it in a second; popping back to under half of 8 KiB is not
    /// enough while two nodes remain (Valkey 8.0.1 answers the same at every step: with
    /// 100 pushes of 100 bytes and LPOPs, quicklist at 22 elements, listpack at 21).
    #[test]
    fn conversions() {
        // Each 100-byte element takes 103 listpack bytes; the header and end take 7.
        let mut l = ListVal::new();
        rpush_each(&mut l, (0..79).map(|_| vec![b'x'; 100]));
        // 7 + 78 * 103 + 100 fitted in 8192 before the 79th push; the 80th does not.
        assert_eq!(l.encoding(), "listpack");
        rpush_each(&mut l, (0..21).map(|_| vec![b'x'; 100]));
        assert_eq!(
            layout(&l),
            [(79, 7 + 79 * 103, false), (21, 7 + 21 * 103, false)]
        );
        while l.len() > 22 {
            l.pop(End::Left);
            l.after_shrinking(-2);
            assert_eq!(l.encoding(), "quicklist", "at {} elements", l.len());
        }
        l.pop(End::Left);
        l.after_shrinking(-2);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(l.lp_bytes, 7 + 21 * 103);
    }

    /// LINSERT into a full node splits it and merges the neighbours that fit; LSET of an
    /// element larger than a node splits around a plain node. The layouts are those Valkey
    /// 8.0.1 reports for the same commands (DEBUG OBJECT: ql_nodes 2, then 4, with
    /// ql_uncompressed_size 10317, then 19222).
    #[test]
    fn insert_and_set_split_nodes() {
        let e = |i: usize| format!("e{i:098}").into_bytes();
        let mut l = ListVal::new();
        rpush_each(&mut l, (1..=100).map(e));
        // 99-byte elements take 102 bytes each; the 80th still fits (8065 + 99 counted), the
        // 81st does not (Valkey 8.0.1: listpack at 80 elements, quicklist at 81, and LPOPs
        // from 100 give a listpack at 20).
        assert_eq!(
            layout(&l),
            [(80, 7 + 80 * 102, false), (20, 7 + 20 * 102, false)]
        );
        let x = [b'x'; 100];
        l.before_growing([&x[..]], -2);
        l.insert(39, false, &x);
        assert_eq!(layout(&l), [(40, 4088, false), (61, 6229, false)]);
        assert_eq!(layout(&l).iter().map(|n| n.1).sum::<usize>(), 10317);
        let y = [b'y'; 9000];
        l.before_growing([&y[..]], -2);
        assert!(l.set(10, &y));
        l.after_shrinking(-2);
        assert_eq!(
            layout(&l),
            [
                (10, 1027, false),
                (1, 9000, true),
                (29, 2966, false),
                (61, 6229, false)
            ]
        );
        assert_eq!(layout(&l).iter().map(|n| n.1).sum::<usize>(), 19222);
        assert_eq!(&**l.get(10).unwrap(), &y[..]);
        assert_eq!(&**l.get(39).unwrap(), &x[..]);
        assert_eq!(l.len(), 101);
    }

    /// LREM takes elements out of their nodes and drops the nodes it empties; LTRIM as pops.
    #[test]
    fn remove_and_trim_keep_node_counts() {
        let mut l = ListVal::new();
        rpush_each(&mut l, (0..100).map(|i| vec![b'a' + (i % 3) as u8; 100]));
        assert_eq!(l.remove_equal(&[b'a'; 100], 0), 34);
        assert_eq!(l.len(), 66);
        let counts: Vec<usize> = layout(&l).iter().map(|n| n.0).collect();
        assert_eq!(counts, [79 - 27, 21 - 7]);
        assert_eq!(l.remove_equal(&[b'b'; 100], -2), 2);
        assert_eq!(&**l.get(-1).unwrap(), &[b'c'; 100][..]);
        l.keep_range(0, 50);
        assert_eq!(layout(&l).iter().map(|n| n.0).sum::<usize>(), 50);
        assert_eq!(l.iter().len(), 50);
    }

    /// Indexes, ranges and trims match Valkey's arithmetic, and the byte count stays exact.
    #[test]
    fn positions() {
        let mut l = ListVal::new();
        for e in ["a", "b", "c", "d"] {
            l.push(End::Right, e.as_bytes());
        }
        assert_eq!(&**l.get(-1).unwrap(), b"d");
        assert!(l.get(4).is_none());
        assert!(l.get(-5).is_none());
        assert_eq!(l.range(1, -2), Some((1, 2)));
        assert_eq!(l.range(-100, 100), Some((0, 3)));
        assert_eq!(l.range(3, 1), None);
        l.keep_range(1, 2);
        assert_eq!(
            l.iter().map(|e| e.to_vec()).collect::<Vec<_>>(),
            [b"b".to_vec(), b"c".to_vec()]
        );
        let want = LP_OVERHEAD + l.iter().map(|e| lp_entry_bytes(e)).sum::<usize>();
        assert_eq!(l.lp_bytes, want);
    }
}
