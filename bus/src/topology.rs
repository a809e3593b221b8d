//! The cluster's vocabulary: node and shard ids, node flags, slot bitmaps, and the immutable
//! topology snapshot a driver publishes to every shard.
//!
//! These types are plain data with no behaviour beyond their own invariants (an id is 40 hex
//! digits, a bitmap has exactly [`SLOT_COUNT`] bits). The rules that change them live in
//! `cluster`; their byte layout lives in `wire` and `config`.

use std::fmt;

use crate::rng::Rng;
use crate::slot::{Slot, SLOT_COUNT};

/// Bytes of a node or shard id; it is shown as twice as many lowercase hex digits (40, as
/// Valkey's `CLUSTER_NAMELEN`).
pub const ID_BYTES: usize = 20;

/// Hex digits of a node or shard id as shown in `CLUSTER NODES` and `nodes.conf`.
pub const ID_HEX_LEN: usize = ID_BYTES * 2;

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Ordered byte-wise, which is the same order as comparing the lowercase hex text (Valkey
        /// compares names with `memcmp`, and the configEpoch collision rule depends on it).
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name([u8; ID_BYTES]);

        impl $name {
            /// The id with these raw bytes.
            pub const fn from_bytes(bytes: [u8; ID_BYTES]) -> $name {
                $name(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; ID_BYTES] {
                &self.0
            }

            /// A fresh random id.
            pub fn random(rng: &mut Rng) -> $name {
                let mut bytes = [0u8; ID_BYTES];
                rng.fill(&mut bytes);
                $name(bytes)
            }

            /// Parses exactly 40 lowercase hex digits, as Valkey accepts node names. Anything else
            /// (uppercase, another length) is `None`, so it can never match a known node.
            pub fn parse_hex(text: &[u8]) -> Option<$name> {
                if text.len() != ID_HEX_LEN {
                    return None;
                }
                let mut bytes = [0u8; ID_BYTES];
                for (out, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
                    let hi = hex_digit(*pair.first()?)?;
                    let lo = hex_digit(*pair.get(1)?)?;
                    *out = (hi << 4) | lo;
                }
                Some($name(bytes))
            }

            /// The 40 lowercase hex digits.
            pub fn to_hex(&self) -> String {
                self.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Eight digits are enough to tell nodes apart in logs and test failures.
                for b in &self.0[..4] {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    };
}

hex_id!(
    /// A node's name in the cluster: 160 random bits, chosen once and kept in `nodes.conf`.
    NodeId
);
hex_id!(
    /// A replica set's id (`CLUSTER MYSHARDID`): a primary picks one at random, its replicas take
    /// their primary's.
    ShardId
);

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// What a node is, as far as this node knows. The bit values are corekey's own (they travel in
/// gossip entries); the meanings are Valkey's.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NodeFlags(u16);

impl NodeFlags {
    /// This entry is the local node.
    pub const MYSELF: NodeFlags = NodeFlags(1 << 0);
    /// A primary (Valkey's `master`).
    pub const PRIMARY: NodeFlags = NodeFlags(1 << 1);
    /// A replica (Valkey's `slave`).
    pub const REPLICA: NodeFlags = NodeFlags(1 << 2);
    /// No pong within the node timeout, from this node's point of view (`fail?`).
    pub const PFAIL: NodeFlags = NodeFlags(1 << 3);
    /// Failed by agreement of a majority of the electorate (`fail`).
    pub const FAIL: NodeFlags = NodeFlags(1 << 4);
    /// Met by address, id not learnt yet.
    pub const HANDSHAKE: NodeFlags = NodeFlags(1 << 5);
    /// Address unknown.
    pub const NOADDR: NodeFlags = NodeFlags(1 << 6);
    /// A replica that will not start an automatic failover.
    pub const NOFAILOVER: NodeFlags = NodeFlags(1 << 7);
    /// Keep sending MEET (not PING) until the node answers once.
    pub const MEET: NodeFlags = NodeFlags(1 << 8);

    /// The bits that mean something on the wire; others are ignored when decoding.
    pub const WIRE_MASK: u16 = (1 << 9) - 1;

    /// No flag.
    pub const fn empty() -> NodeFlags {
        NodeFlags(0)
    }
    /// The raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }
    /// Flags from raw bits; unknown bits are dropped.
    pub const fn from_bits_truncate(bits: u16) -> NodeFlags {
        NodeFlags(bits & NodeFlags::WIRE_MASK)
    }
    /// True when every flag of `other` is set.
    pub const fn contains(self, other: NodeFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// True when any flag of `other` is set.
    pub const fn intersects(self, other: NodeFlags) -> bool {
        self.0 & other.0 != 0
    }
    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: NodeFlags) {
        self.0 |= other.0;
    }
    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: NodeFlags) {
        self.0 &= !other.0;
    }
    /// Sets or clears the flags of `other`.
    pub fn set(&mut self, other: NodeFlags, on: bool) {
        if on {
            self.insert(other)
        } else {
            self.remove(other)
        }
    }
    /// The union.
    pub const fn union(self, other: NodeFlags) -> NodeFlags {
        NodeFlags(self.0 | other.0)
    }

    /// The comma-separated names `CLUSTER NODES` and `nodes.conf` show, in Valkey's order
    /// (`myself,master,slave,fail?,fail,handshake,noaddr,nofailover`, or `noflags`).
    pub fn names(self) -> String {
        const NAMES: [(NodeFlags, &str); 8] = [
            (NodeFlags::MYSELF, "myself"),
            (NodeFlags::PRIMARY, "master"),
            (NodeFlags::REPLICA, "slave"),
            (NodeFlags::PFAIL, "fail?"),
            (NodeFlags::FAIL, "fail"),
            (NodeFlags::HANDSHAKE, "handshake"),
            (NodeFlags::NOADDR, "noaddr"),
            (NodeFlags::NOFAILOVER, "nofailover"),
        ];
        let names: Vec<&str> = NAMES
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect();
        if names.is_empty() {
            "noflags".to_string()
        } else {
            names.join(",")
        }
    }

    /// Parses [`NodeFlags::names`] text; unknown names are an error.
    pub fn parse_names(text: &str) -> Option<NodeFlags> {
        let mut flags = NodeFlags::empty();
        for name in text.split(',') {
            flags.insert(match name {
                "myself" => NodeFlags::MYSELF,
                "master" => NodeFlags::PRIMARY,
                "slave" => NodeFlags::REPLICA,
                "fail?" => NodeFlags::PFAIL,
                "fail" => NodeFlags::FAIL,
                "handshake" => NodeFlags::HANDSHAKE,
                "noaddr" => NodeFlags::NOADDR,
                "nofailover" => NodeFlags::NOFAILOVER,
                "noflags" => NodeFlags::empty(),
                _ => return None,
            });
        }
        Some(flags)
    }
}

impl fmt::Debug for NodeFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names())
    }
}

/// Words in a slot bitmap.
const SLOT_WORDS: usize = SLOT_COUNT as usize / 64;

/// One bit per hash slot (2 KiB), boxed so that moving a node around stays cheap.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SlotBitmap(Box<[u64; SLOT_WORDS]>);

impl Default for SlotBitmap {
    fn default() -> SlotBitmap {
        SlotBitmap::new()
    }
}

impl SlotBitmap {
    /// No slot.
    pub fn new() -> SlotBitmap {
        SlotBitmap(Box::new([0; SLOT_WORDS]))
    }

    /// Every slot.
    pub fn full() -> SlotBitmap {
        SlotBitmap(Box::new([u64::MAX; SLOT_WORDS]))
    }

    /// Whether `slot` is set.
    pub fn contains(&self, slot: Slot) -> bool {
        let n = usize::from(slot.get());
        self.0[n / 64] & (1 << (n % 64)) != 0
    }

    /// Sets `slot`; returns whether it was clear.
    pub fn insert(&mut self, slot: Slot) -> bool {
        let n = usize::from(slot.get());
        let was = self.0[n / 64] & (1 << (n % 64)) != 0;
        self.0[n / 64] |= 1 << (n % 64);
        !was
    }

    /// Clears `slot`; returns whether it was set.
    pub fn remove(&mut self, slot: Slot) -> bool {
        let n = usize::from(slot.get());
        let was = self.0[n / 64] & (1 << (n % 64)) != 0;
        self.0[n / 64] &= !(1 << (n % 64));
        was
    }

    /// How many slots are set.
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True when no slot is set.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// True when some slot is in both.
    pub fn intersects(&self, other: &SlotBitmap) -> bool {
        self.0.iter().zip(other.0.iter()).any(|(a, b)| a & b != 0)
    }

    /// The 64-bit words, slot 0 in bit 0 of word 0.
    pub fn words(&self) -> &[u64; SLOT_WORDS] {
        &self.0
    }

    /// A bitmap from its words.
    pub fn from_words(words: [u64; SLOT_WORDS]) -> SlotBitmap {
        SlotBitmap(Box::new(words))
    }

    /// The set slots, in order (skipping empty words, so sparse bitmaps are cheap).
    pub fn iter(&self) -> impl Iterator<Item = Slot> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                Slot::new((w * 64) as u16 + b as u16)
            })
        })
    }

    /// The set slots as inclusive `(first, last)` runs, in order. Works a word at a time: a
    /// run boundary is where a bit differs from the one before it.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out = Vec::new();
        let mut start: Option<u16> = None;
        let mut prev_bit = 0u64; // the last bit of the previous word
        for (w, &word) in self.0.iter().enumerate() {
            // Bits where the slot differs from the slot before it.
            let mut edges = word ^ ((word << 1) | prev_bit);
            prev_bit = word >> 63;
            while edges != 0 {
                let b = edges.trailing_zeros();
                edges &= edges - 1;
                let n = (w * 64) as u16 + b as u16;
                match start.take() {
                    None => start = Some(n),
                    Some(s) => out.push((s, n - 1)),
                }
            }
        }
        if let Some(s) = start {
            out.push((s, SLOT_COUNT - 1));
        }
        out
    }
}

impl fmt::Debug for SlotBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges = self.ranges();
        write!(f, "[")?;
        for (i, (a, b)) in ranges.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        write!(f, "]")
    }
}

/// One node as this node knows it, in a [`Topology`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The node's id (for a node still in handshake, a random placeholder).
    pub id: NodeId,
    /// Announced or observed IP; empty when unknown.
    pub ip: String,
    /// Client port.
    pub port: u16,
    /// Cluster bus port.
    pub bus_port: u16,
    /// Announced hostname; may be empty.
    pub hostname: String,
    /// The replica set it belongs to.
    pub shard_id: ShardId,
    /// Flags as `CLUSTER NODES` shows them.
    pub flags: NodeFlags,
    /// For a replica, its primary.
    pub primary: Option<NodeId>,
    /// The node's configEpoch (for a replica, as last announced).
    pub config_epoch: u64,
    /// Slots this node serves, by this node's view.
    pub slots: SlotBitmap,
    /// When this node last sent it a ping still unanswered (ms, 0 = none).
    pub ping_sent_ms: u64,
    /// When this node last got a pong from it (ms).
    pub pong_received_ms: u64,
    /// Whether the outbound bus link is up (always true for myself).
    pub link_connected: bool,
    /// Replication offset it last announced.
    pub repl_offset: u64,
}

/// `NodeView` index meaning "no node" in [`Topology::slot_owner`].
pub const NO_OWNER: u16 = u16::MAX;

/// An immutable picture of the cluster at one moment, for routing and for the CLUSTER commands.
/// The driver builds one after every [`crate::cluster::Action::TopologyChanged`] and hands it
/// to each shard.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Increases by one with every snapshot a state machine builds.
    pub version: u64,
    /// The local node's id.
    pub myself: NodeId,
    /// Index of the local node in `nodes`.
    pub myself_index: usize,
    /// The cluster's currentEpoch as this node knows it.
    pub current_epoch: u64,
    /// The epoch this node last voted in.
    pub last_vote_epoch: u64,
    /// `cluster_state:ok` (true) or `fail`.
    pub cluster_ok: bool,
    /// Every known node, sorted by id (handshake placeholders included).
    pub nodes: Vec<NodeView>,
    /// For each slot, the index in `nodes` of its owner, or [`NO_OWNER`].
    pub slot_owner: Vec<u16>,
    /// Slots this node is migrating, and to which node (`[slot->-id]`).
    pub migrating: Vec<(Slot, NodeId)>,
    /// Slots this node is importing, and from which node (`[slot-<-id]`).
    pub importing: Vec<(Slot, NodeId)>,
    /// Number of primaries serving at least one slot (`cluster_size`).
    pub size: usize,
}

impl Topology {
    /// The local node.
    pub fn me(&self) -> &NodeView {
        &self.nodes[self.myself_index]
    }

    /// The node owning `slot`, if any.
    pub fn owner(&self, slot: Slot) -> Option<&NodeView> {
        let i = self.slot_owner[usize::from(slot.get())];
        self.nodes.get(usize::from(i))
    }

    /// The node with this id.
    pub fn node(&self, id: &NodeId) -> Option<&NodeView> {
        self.nodes
            .binary_search_by(|n| n.id.cmp(id))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids print as 40 lowercase hex digits and parse back; other text is refused.
    #[test]
    fn id_hex_round_trip() {
        let id = NodeId::random(&mut Rng::new(3));
        let text = id.to_hex();
        assert_eq!(text.len(), 40);
        assert_eq!(NodeId::parse_hex(text.as_bytes()), Some(id));
        assert_eq!(NodeId::parse_hex(text.to_uppercase().as_bytes()), None);
        assert_eq!(NodeId::parse_hex(&text.as_bytes()[..39]), None);
        assert_eq!(NodeId::parse_hex(b"zz"), None);
    }

    /// Byte order of ids is the order of their hex text, which the collision rule relies on.
    #[test]
    fn id_order_matches_text_order() {
        let mut rng = Rng::new(9);
        for _ in 0..100 {
            let a = NodeId::random(&mut rng);
            let b = NodeId::random(&mut rng);
            assert_eq!(a.cmp(&b), a.to_hex().cmp(&b.to_hex()));
        }
    }

    /// Flag names follow Valkey's order and parse back.
    #[test]
    fn flag_names() {
        let f = NodeFlags::MYSELF
            .union(NodeFlags::PRIMARY)
            .union(NodeFlags::PFAIL);
        assert_eq!(f.names(), "myself,master,fail?");
        assert_eq!(NodeFlags::parse_names("myself,master,fail?"), Some(f));
        assert_eq!(NodeFlags::empty().names(), "noflags");
        assert_eq!(NodeFlags::parse_names("bogus"), None);
    }

    /// Slot bitmaps count, iterate and compress into runs correctly at both ends of the range,
    /// and the word-at-a-time scans agree with a slot-by-slot scan on random bitmaps.
    #[test]
    fn bitmap_ranges() {
        let mut b = SlotBitmap::new();
        for n in [0u16, 1, 2, 100, 16383] {
            b.insert(Slot::new(n).unwrap_or_else(|| unreachable!()));
        }
        assert_eq!(b.count(), 5);
        assert_eq!(b.ranges(), vec![(0, 2), (100, 100), (16383, 16383)]);
        assert_eq!(SlotBitmap::full().ranges(), vec![(0, 16383)]);
        assert!(SlotBitmap::new().is_empty());
        assert!(SlotBitmap::new().ranges().is_empty());
        let mut r = Rng::new(4);
        for _ in 0..50 {
            let mut b = SlotBitmap::new();
            for _ in 0..r.below(300) {
                let first = r.below(16384) as u16;
                let len = r.below(200) as u16;
                for n in first..first.saturating_add(len).min(16384) {
                    b.insert(Slot::new(n).unwrap_or_else(|| unreachable!()));
                }
            }
            let naive: Vec<u16> = (0..16384u16)
                .filter(|n| b.contains(Slot::new(*n).unwrap_or_else(|| unreachable!())))
                .collect();
            let fast: Vec<u16> = b.iter().map(|s| s.get()).collect();
            assert_eq!(fast, naive);
            let from_ranges: Vec<u16> = b.ranges().iter().flat_map(|(a, z)| *a..=*z).collect();
            assert_eq!(from_ranges, naive);
        }
    }
}
