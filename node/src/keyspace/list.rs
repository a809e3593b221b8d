//! The list value type.
//!
//! Elements live in one `VecDeque`. What Valkey stores as a single listpack or as a quicklist
//! (a list of listpacks) only matters to OBJECT ENCODING and memory, so we keep the listpack
//! byte size Valkey would have (`lp_bytes`, from Valkey's listpack encoding rules) and switch
//! the reported encoding at Valkey's thresholds:
//!
//! - listpack → quicklist before a push that would take the listpack past
//!   `list-max-listpack-size` (bytes when negative, entries when positive; Valkey's
//!   `quicklistNodeExceedsLimit`, with its 8 KiB safety limit for entry-count limits);
//! - quicklist → listpack after a removal, once the whole list fits in half the limit (Valkey
//!   converts back when the quicklist has a single node within half the limit; a list that
//!   fits in half a node has a single node in every sequence of pushes and pops at the ends,
//!   which is how lists are used — after inserts in the middle Valkey's node layout can differ).

use super::SmallBytes;
use crate::util::parse_i64;
use std::collections::VecDeque;

/// Listpack header (total bytes + element count) and end marker.
const LP_OVERHEAD: usize = 6 + 1;
/// Byte limits of a negative `list-max-listpack-size` (-1 … -5).
const NEG_FILL_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// Largest listpack allowed when the limit counts entries (Valkey's SIZE_SAFETY_LIMIT).
const SIZE_SAFETY_LIMIT: usize = 8192;

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

/// A list value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListVal {
    items: VecDeque<SmallBytes>,
    /// Bytes of the listpack Valkey would hold these elements in.
    lp_bytes: usize,
    quicklist: bool,
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
            quicklist: false,
        }
    }

    /// The OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        if self.quicklist {
            "quicklist"
        } else {
            "listpack"
        }
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
    }

    /// Before adding `elems`: turns a listpack into a quicklist if they would not fit
    /// (Valkey's `listTypeTryConvertListpack`, which counts the new elements' raw lengths).
    pub fn before_growing<'a>(&mut self, elems: impl IntoIterator<Item = &'a [u8]>, fill: i64) {
        if self.quicklist {
            return;
        }
        let (mut add_bytes, mut add_len) = (0usize, 0usize);
        for e in elems {
            add_bytes += e.len();
            add_len += 1;
        }
        if exceeds(fill, self.lp_bytes + add_bytes, self.items.len() + add_len) {
            self.quicklist = true;
        }
    }

    /// After removing elements: back to a listpack when the list fits in half a node
    /// (Valkey's `listTypeTryConvertQuicklist` with `shrinking`).
    pub fn after_shrinking(&mut self, fill: i64) {
        if !self.quicklist {
            return;
        }
        let (sz, cnt) = node_limits(fill);
        let fits_one_node = !exceeds(fill, self.lp_bytes, self.items.len());
        if fits_one_node && self.lp_bytes <= sz / 2 && self.items.len() <= cnt / 2 {
            self.quicklist = false;
        }
    }

    /// After building a list from scratch (a destination of a move that did not exist):
    /// Valkey's `LIST_CONV_AUTO`.
    pub fn settle(&mut self, fill: i64) {
        self.quicklist = exceeds(fill, self.lp_bytes, self.items.len());
    }

    pub fn push(&mut self, end: End, elem: &[u8]) {
        self.lp_bytes += lp_entry_bytes(elem);
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
        self.lp_bytes -= lp_entry_bytes(&e);
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

    /// Replaces the element at `index`; false when out of range.
    pub fn set(&mut self, index: i64, elem: &[u8]) -> bool {
        let Some(i) = self.resolve(index) else {
            return false;
        };
        self.lp_bytes -= lp_entry_bytes(&self.items[i]);
        self.lp_bytes += lp_entry_bytes(elem);
        self.items[i] = SmallBytes::new(elem);
        true
    }

    /// Inserts `elem` at position `at` (0..=len).
    pub fn insert(&mut self, at: usize, elem: &[u8]) {
        self.lp_bytes += lp_entry_bytes(elem);
        self.items.insert(at, SmallBytes::new(elem));
    }

    /// Removes and returns the element at position `at`.
    pub fn remove(&mut self, at: usize) -> Option<SmallBytes> {
        let e = self.items.remove(at)?;
        self.lp_bytes -= lp_entry_bytes(&e);
        Some(e)
    }

    /// Elements in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &SmallBytes> + ExactSizeIterator {
        self.items.iter()
    }

    /// Keeps only positions `start..start+len` (LTRIM).
    pub fn keep_range(&mut self, start: usize, len: usize) {
        let start = start.min(self.items.len());
        for e in self.items.drain(..start) {
            self.lp_bytes -= lp_entry_bytes(&e);
        }
        let len = len.min(self.items.len());
        for e in self.items.drain(len..) {
            self.lp_bytes -= lp_entry_bytes(&e);
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

    /// A list becomes a quicklist past 8 KiB (the default -2) and returns to a listpack only
    /// once it fits in half of that.
    #[test]
    fn conversions() {
        // Each 100-byte element takes 103 listpack bytes; the header and end take 7.
        let mut l = ListVal::new();
        let elem = [b'x'; 100];
        for _ in 0..79 {
            l.before_growing([&elem[..]], -2);
            l.push(End::Right, &elem);
        }
        // 7 + 78 * 103 + 100 fitted in 8192 before the 79th push; the 80th does not.
        assert_eq!(l.encoding(), "listpack");
        l.before_growing([&elem[..]], -2);
        l.push(End::Right, &elem);
        assert_eq!(l.encoding(), "quicklist");
        // Back to a listpack at 7 + 39 * 103 <= 4096 bytes, not before.
        while l.len() > 40 {
            l.pop(End::Left);
            l.after_shrinking(-2);
            assert_eq!(l.encoding(), "quicklist");
        }
        l.pop(End::Left);
        l.after_shrinking(-2);
        assert_eq!(l.encoding(), "listpack");
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
