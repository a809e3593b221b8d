//! The cluster bus wire format: corekey's own, not Valkey's `RCmb` layout.
//!
//! Every message is one frame:
//!
//! ```text
//! offset size
//!  0      4   magic "CKbs"
//!  4      1   version (WIRE_VERSION)
//!  5      1   kind (ping, pong, meet, fail, update, auth request, auth ack, mfstart, publish)
//!  6      2   reserved, must be zero
//!  8      4   body length, little endian, at most MAX_MESSAGE_BYTES - FRAME_HEADER_BYTES
//! 12      4   CRC-32C of the body, little endian
//! 16      …   body: the sender's header, then the kind's fields
//! ```
//!
//! Integers are little endian. Strings carry a one-byte length and are restricted to the bytes an
//! address or hostname may hold, so they can go into `nodes.conf` unescaped. A slot set is either
//! a list of runs or the raw 2 KiB bitmap, whichever is shorter. Every count has a limit that is
//! checked before anything is allocated, and the decoder never panics: this module denies
//! `unwrap`, `expect`, indexing and unchecked arithmetic.
//!
//! Why not rkyv here: bus messages are small, variable-length and decoded once into owned state;
//! a hand-written codec lets every bound be checked at the byte where it is read, with no
//! alignment copy. Replication frames (large, read in place) are where rkyv pays.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::fmt;

use crate::slot::SLOT_COUNT;
use crate::topology::{NodeFlags, NodeId, ShardId, SlotBitmap, ID_BYTES};

/// First bytes of every frame.
pub const MAGIC: [u8; 4] = *b"CKbs";
/// The version this code writes and the only one it reads.
/// (2: the sender's per-stream offsets.)
pub const WIRE_VERSION: u8 = 2;
/// Bytes before the body.
pub const FRAME_HEADER_BYTES: usize = 16;
/// Largest frame, header included. A peer announcing more is cut off before its body is read.
/// Room for the largest gossip message and for a published message of up to
/// [`MAX_PUBLISH_BYTES`].
pub const MAX_MESSAGE_BYTES: usize = MAX_PUBLISH_BYTES + 128 * 1024;
/// Most bytes of channel and message a PUBLISH carries across the bus. A longer message
/// reaches only the subscribers of the node it was published on (Valkey has no such limit
/// but its bus reads the whole message into memory the same way).
pub const MAX_PUBLISH_BYTES: usize = 8 * 1024 * 1024;
/// Most gossip entries in one ping, pong or meet.
pub const MAX_GOSSIP_ENTRIES: usize = 128;
/// Longest IP address text (IPv6 with a zone, as Valkey's `NET_IP_STR_LEN`).
pub const MAX_IP_LEN: usize = 46;
/// Longest announced hostname.
pub const MAX_HOSTNAME_LEN: usize = 255;
/// Most per-stream offsets a sender announces (one stream per core of its primary).
pub const MAX_STREAMS: usize = 1024;

const SLOT_WORDS: usize = SLOT_COUNT as usize / 64;
/// Largest encoded slot set: the tag and the raw bitmap (a run list is used only when shorter).
const MAX_SLOT_SET_BYTES: usize = 1 + SLOT_WORDS * 8;
const MAX_SENDER_BYTES: usize = ID_BYTES
    + 3 * 8
    + 2
    + 1
    + ID_BYTES
    + ID_BYTES
    + 1
    + MAX_IP_LEN
    + 4
    + 1
    + MAX_HOSTNAME_LEN
    + 1
    + MAX_SLOT_SET_BYTES;
const MAX_GOSSIP_ENTRY_BYTES: usize = ID_BYTES + 1 + MAX_IP_LEN + 2 + 2 + 2 + 8;
const MAX_BODY_BYTES: usize = MAX_SENDER_BYTES
    + max(
        2 + MAX_GOSSIP_ENTRIES * MAX_GOSSIP_ENTRY_BYTES,
        ID_BYTES + 8 + MAX_SLOT_SET_BYTES,
    );

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

// Whatever the encoder is given within the documented limits fits in one frame.
const _: () = assert!(FRAME_HEADER_BYTES + MAX_BODY_BYTES <= MAX_MESSAGE_BYTES);
const _: () = assert!(MAX_HOSTNAME_LEN <= u8::MAX as usize);
const _: () = assert!(MAX_IP_LEN <= u8::MAX as usize);

/// What the sender says about itself; every message carries it (as Valkey's header does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderInfo {
    /// The sender's node id.
    pub id: NodeId,
    /// The sender's currentEpoch.
    pub current_epoch: u64,
    /// The sender's configEpoch, or for a replica its primary's.
    pub config_epoch: u64,
    /// The sender's replication offset.
    pub repl_offset: u64,
    /// The sender's offset on each stream of its primary (or its own, for a primary); they
    /// sum to `repl_offset`. At most [`MAX_STREAMS`].
    pub stream_offsets: Vec<u64>,
    /// The sender's own flags (primary or replica, nofailover); MYSELF is never sent.
    pub flags: NodeFlags,
    /// For a replica, its primary.
    pub primary: Option<NodeId>,
    /// The sender's replica set.
    pub shard_id: ShardId,
    /// Announced IP; empty means "use the address the connection comes from".
    pub ip: String,
    /// Client port.
    pub port: u16,
    /// Cluster bus port.
    pub bus_port: u16,
    /// Announced hostname, may be empty.
    pub hostname: String,
    /// A primary that paused its clients for a manual failover.
    pub paused: bool,
    /// Slots the sender serves, or for a replica its primary's.
    pub slots: SlotBitmap,
}

/// What a node says about another node in a ping, pong or meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipEntry {
    /// The node gossiped about.
    pub id: NodeId,
    /// Its address.
    pub ip: String,
    /// Its client port.
    pub port: u16,
    /// Its bus port.
    pub bus_port: u16,
    /// Its flags as the sender sees them (PFAIL and FAIL here are failure reports).
    pub flags: NodeFlags,
    /// How long ago the sender last got its pong, in ms. An age rather than a time, so clocks
    /// need not agree (Valkey sends the sender's wall-clock time and assumes synced clocks).
    pub pong_age_ms: u64,
}

/// The kinds of bus message and their own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Heartbeat; the receiver answers with a pong on the same link.
    Ping {
        /// A few other nodes.
        gossip: Vec<GossipEntry>,
    },
    /// Answer to a ping or meet, also broadcast after a configuration change.
    Pong {
        /// A few other nodes.
        gossip: Vec<GossipEntry>,
    },
    /// A ping that asks an unknown receiver to add the sender (CLUSTER MEET).
    Meet {
        /// A few other nodes.
        gossip: Vec<GossipEntry>,
    },
    /// The named node is failed by quorum: every receiver flags it FAIL.
    Fail {
        /// The failed node.
        node: NodeId,
    },
    /// The receiver's view of `node` is stale: here is its configuration.
    Update {
        /// The node whose configuration this is.
        node: NodeId,
        /// Its configEpoch.
        config_epoch: u64,
        /// The slots it serves under that epoch.
        slots: SlotBitmap,
    },
    /// A replica asks for a vote in the election for `sender.current_epoch`.
    AuthRequest {
        /// Manual failover: vote even though the primary is not failed.
        force_ack: bool,
        /// Digest of the electorate the candidate counts votes against; voters with another
        /// electorate refuse (see `cluster::election`).
        electorate_digest: u64,
    },
    /// A vote for the sender's election in `epoch` (`vote`), and/or, from a sibling replica,
    /// its statement that the candidate holds all of their primary's streams it holds (see
    /// `cluster::election`). A statement alone (`vote: false`) is never counted as a vote.
    AuthAck {
        /// The election epoch this answer is for.
        epoch: u64,
        /// A vote (the sender is a member of the electorate and recorded it), not only a
        /// statement.
        vote: bool,
    },
    /// A replica asks its primary to pause writes for a manual failover.
    MfStart,
    /// A message PUBLISHed on the sender (or SPUBLISHed, when `sharded`): every receiver
    /// delivers it to its own subscribers.
    Publish {
        /// SPUBLISH (a shard channel, sent only within the sender's shard).
        sharded: bool,
        /// The channel.
        channel: Vec<u8>,
        /// The message.
        message: Vec<u8>,
    },
}

/// One bus message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The sender's view of itself.
    pub sender: SenderInfo,
    /// The kind-specific part.
    pub body: Body,
}

impl Body {
    fn kind(&self) -> u8 {
        match self {
            Body::Ping { .. } => 1,
            Body::Pong { .. } => 2,
            Body::Meet { .. } => 3,
            Body::Fail { .. } => 4,
            Body::Update { .. } => 5,
            Body::AuthRequest { .. } => 6,
            Body::AuthAck { .. } => 7,
            Body::MfStart => 8,
            Body::Publish { .. } => 9,
        }
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Body::Ping { .. } => "ping",
            Body::Pong { .. } => "pong",
            Body::Meet { .. } => "meet",
            Body::Fail { .. } => "fail",
            Body::Update { .. } => "update",
            Body::AuthRequest { .. } => "auth-request",
            Body::AuthAck { .. } => "auth-ack",
            Body::MfStart => "mfstart",
            Body::Publish { sharded: false, .. } => "publish",
            Body::Publish { sharded: true, .. } => "publishshard",
        }
    }
}

/// Why bytes are not a message. Every variant means: close the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The frame does not start with [`MAGIC`].
    BadMagic,
    /// A version this build does not speak.
    UnsupportedVersion(u8),
    /// Reserved header bits set.
    BadReserved,
    /// The announced length is over [`MAX_MESSAGE_BYTES`].
    TooLarge(u64),
    /// The body does not match its checksum.
    BadChecksum,
    /// An unknown message kind.
    UnknownKind(u8),
    /// The body ends inside a field.
    Truncated,
    /// A field breaks a rule (named).
    Malformed(&'static str),
    /// Bytes left over after the body's last field.
    TrailingBytes,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::BadMagic => write!(f, "bad magic"),
            WireError::UnsupportedVersion(v) => write!(f, "unsupported bus protocol version {v}"),
            WireError::BadReserved => write!(f, "reserved header bits set"),
            WireError::TooLarge(n) => write!(f, "message of {n} bytes is over the limit"),
            WireError::BadChecksum => write!(f, "checksum mismatch"),
            WireError::UnknownKind(k) => write!(f, "unknown message kind {k}"),
            WireError::Truncated => write!(f, "truncated field"),
            WireError::Malformed(what) => write!(f, "malformed {what}"),
            WireError::TrailingBytes => write!(f, "trailing bytes after message"),
        }
    }
}

impl std::error::Error for WireError {}

// ---------------------------------------------------------------------------------------------
// CRC-32C (Castagnoli), table-driven. Written here rather than pulled in: it is twenty lines.

const CRC32C_TABLE: [u32; 256] = crc32c_table();

// Runs at compile time only, on constants: indexing and counters cannot go wrong here.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0x82F6_3B78 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        let index = ((crc ^ u32::from(b)) & 0xFF) as u8;
        // `index` is a u8, the table has 256 entries: this lookup cannot miss.
        let entry = CRC32C_TABLE.get(usize::from(index)).copied().unwrap_or(0);
        crc = entry ^ (crc >> 8);
    }
    !crc
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Appends the frame of `msg` to `out`.
///
/// Panics (our bug, not the peer's) if `msg` breaks a documented limit: more than
/// [`MAX_GOSSIP_ENTRIES`] entries, or an address or hostname that is too long or holds bytes
/// outside the allowed set. The state machine never builds such a message.
pub fn encode(msg: &Message, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(WIRE_VERSION);
    out.push(msg.body.kind());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&[0; 8]); // length and checksum, filled in below
    let body_start = out.len();
    put_sender(out, &msg.sender);
    match &msg.body {
        Body::Ping { gossip } | Body::Pong { gossip } | Body::Meet { gossip } => {
            assert!(
                gossip.len() <= MAX_GOSSIP_ENTRIES,
                "too many gossip entries"
            );
            put_u16(out, gossip.len() as u16);
            for g in gossip {
                out.extend_from_slice(g.id.as_bytes());
                put_str(out, &g.ip, MAX_IP_LEN, valid_ip_byte);
                put_u16(out, g.port);
                put_u16(out, g.bus_port);
                put_u16(out, g.flags.bits());
                put_u64(out, g.pong_age_ms);
            }
        }
        Body::Fail { node } => out.extend_from_slice(node.as_bytes()),
        Body::Update {
            node,
            config_epoch,
            slots,
        } => {
            out.extend_from_slice(node.as_bytes());
            put_u64(out, *config_epoch);
            put_slots(out, slots);
        }
        Body::AuthRequest {
            force_ack,
            electorate_digest,
        } => {
            out.push(u8::from(*force_ack));
            put_u64(out, *electorate_digest);
        }
        Body::AuthAck { epoch, vote } => {
            put_u64(out, *epoch);
            out.push(u8::from(*vote));
        }
        Body::MfStart => {}
        Body::Publish {
            sharded,
            channel,
            message,
        } => {
            assert!(channel.len().saturating_add(message.len()) <= MAX_PUBLISH_BYTES);
            out.push(u8::from(*sharded));
            out.extend_from_slice(&(channel.len() as u32).to_le_bytes());
            out.extend_from_slice(channel);
            out.extend_from_slice(&(message.len() as u32).to_le_bytes());
            out.extend_from_slice(message);
        }
    }
    let body = out.get(body_start..).unwrap_or_default();
    let body_len = body.len();
    let crc = crc32c(body);
    assert!(FRAME_HEADER_BYTES.saturating_add(body_len) <= MAX_MESSAGE_BYTES);
    let len_bytes = (body_len as u32).to_le_bytes();
    let crc_bytes = crc.to_le_bytes();
    if let Some(field) = out.get_mut(start.saturating_add(8)..start.saturating_add(16)) {
        let (len_field, crc_field) = field.split_at_mut(4);
        len_field.copy_from_slice(&len_bytes);
        crc_field.copy_from_slice(&crc_bytes);
    }
}

/// The frame of `msg` as a new buffer.
pub fn encode_to_vec(msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    encode(msg, &mut out);
    out
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str, max_len: usize, valid: fn(u8) -> bool) {
    assert!(
        s.len() <= max_len && s.bytes().all(valid),
        "string breaks the wire rules: {s:?}"
    );
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn put_sender(out: &mut Vec<u8>, s: &SenderInfo) {
    out.extend_from_slice(s.id.as_bytes());
    put_u64(out, s.current_epoch);
    put_u64(out, s.config_epoch);
    put_u64(out, s.repl_offset);
    put_u16(out, s.stream_offsets.len().min(MAX_STREAMS) as u16);
    for o in s.stream_offsets.iter().take(MAX_STREAMS) {
        put_u64(out, *o);
    }
    put_u16(out, s.flags.bits());
    match &s.primary {
        Some(p) => {
            out.push(1);
            out.extend_from_slice(p.as_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(s.shard_id.as_bytes());
    put_str(out, &s.ip, MAX_IP_LEN, valid_ip_byte);
    put_u16(out, s.port);
    put_u16(out, s.bus_port);
    put_str(out, &s.hostname, MAX_HOSTNAME_LEN, valid_hostname_byte);
    out.push(u8::from(s.paused));
    put_slots(out, &s.slots);
}

fn put_slots(out: &mut Vec<u8>, slots: &SlotBitmap) {
    let ranges = slots.ranges();
    // Runs cost 4 bytes each plus a count; the raw bitmap costs 2 KiB.
    if ranges.len().saturating_mul(4).saturating_add(2) < SLOT_WORDS.saturating_mul(8) {
        out.push(0);
        put_u16(out, ranges.len() as u16);
        for (a, b) in ranges {
            put_u16(out, a);
            put_u16(out, b);
        }
    } else {
        out.push(1);
        for w in slots.words() {
            put_u64(out, *w);
        }
    }
}

/// Bytes allowed in an IP address text: hex digits, dots, colons, and `%` plus letters and
/// digits for an IPv6 zone.
pub fn valid_ip_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'%')
}

/// Bytes allowed in a hostname: letters, digits, `-` and `.` (as Valkey's announced hostnames).
pub fn valid_hostname_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.')
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// The total length of the frame that starts `buf`, once its header is in: `Ok(None)` while
/// fewer than [`FRAME_HEADER_BYTES`] bytes are there. A driver reads until it has that many bytes
/// and then calls [`decode`]; an error means the link must be closed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, WireError> {
    let Some(header) = buf.get(..FRAME_HEADER_BYTES) else {
        // Reject a wrong magic as early as its first bytes allow.
        let n = buf.len().min(MAGIC.len());
        if buf.get(..n) != MAGIC.get(..n) {
            return Err(WireError::BadMagic);
        }
        return Ok(None);
    };
    let mut r = Reader::new(header);
    if r.bytes(4)? != MAGIC {
        return Err(WireError::BadMagic);
    }
    let version = r.u8()?;
    if version != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion(version));
    }
    let _kind = r.u8()?;
    if r.u16()? != 0 {
        return Err(WireError::BadReserved);
    }
    let body_len = u64::from(r.u32()?);
    let total = body_len.saturating_add(FRAME_HEADER_BYTES as u64);
    if total > MAX_MESSAGE_BYTES as u64 {
        return Err(WireError::TooLarge(total));
    }
    Ok(Some(total as usize))
}

/// Decodes the frame at the start of `buf`: `Ok(None)` while it is incomplete, else the message
/// and the number of bytes it used. Never panics, whatever `buf` holds.
pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, WireError> {
    let Some(total) = frame_len(buf)? else {
        return Ok(None);
    };
    let Some(frame) = buf.get(..total) else {
        return Ok(None);
    };
    let mut head = Reader::new(frame);
    head.skip(5)?;
    let kind = head.u8()?;
    head.skip(6)?;
    let crc = head.u32()?;
    let body = frame
        .get(FRAME_HEADER_BYTES..)
        .ok_or(WireError::Truncated)?;
    if crc32c(body) != crc {
        return Err(WireError::BadChecksum);
    }
    let mut r = Reader::new(body);
    let sender = read_sender(&mut r)?;
    let body = match kind {
        1..=3 => {
            let count = usize::from(r.u16()?);
            if count > MAX_GOSSIP_ENTRIES {
                return Err(WireError::Malformed("gossip count"));
            }
            let mut gossip = Vec::with_capacity(count);
            for _ in 0..count {
                gossip.push(GossipEntry {
                    id: r.id()?,
                    ip: r.str8(MAX_IP_LEN, valid_ip_byte, "gossip ip")?,
                    port: r.u16()?,
                    bus_port: r.u16()?,
                    flags: NodeFlags::from_bits_truncate(r.u16()?),
                    pong_age_ms: r.u64()?,
                });
            }
            match kind {
                1 => Body::Ping { gossip },
                2 => Body::Pong { gossip },
                _ => Body::Meet { gossip },
            }
        }
        4 => Body::Fail { node: r.id()? },
        5 => Body::Update {
            node: r.id()?,
            config_epoch: r.u64()?,
            slots: read_slots(&mut r)?,
        },
        6 => Body::AuthRequest {
            force_ack: r.bool()?,
            electorate_digest: r.u64()?,
        },
        7 => Body::AuthAck {
            epoch: r.u64()?,
            vote: r.bool()?,
        },
        8 => Body::MfStart,
        9 => {
            let sharded = r.bool()?;
            let len = usize::try_from(r.u32()?).map_err(|_| WireError::Malformed("publish"))?;
            let channel = r.bytes(len)?.to_vec();
            let len = usize::try_from(r.u32()?).map_err(|_| WireError::Malformed("publish"))?;
            let message = r.bytes(len)?.to_vec();
            Body::Publish {
                sharded,
                channel,
                message,
            }
        }
        other => return Err(WireError::UnknownKind(other)),
    };
    if !r.is_empty() {
        return Err(WireError::TrailingBytes);
    }
    Ok(Some((Message { sender, body }, total)))
}

fn read_sender(r: &mut Reader<'_>) -> Result<SenderInfo, WireError> {
    Ok(SenderInfo {
        id: r.id()?,
        current_epoch: r.u64()?,
        config_epoch: r.u64()?,
        repl_offset: r.u64()?,
        stream_offsets: {
            let n = usize::from(r.u16()?);
            if n > MAX_STREAMS {
                return Err(WireError::Malformed("stream count"));
            }
            (0..n).map(|_| r.u64()).collect::<Result<_, _>>()?
        },
        flags: NodeFlags::from_bits_truncate(r.u16()?),
        primary: match r.u8()? {
            0 => None,
            1 => Some(r.id()?),
            _ => return Err(WireError::Malformed("primary tag")),
        },
        shard_id: ShardId::from_bytes(r.array()?),
        ip: r.str8(MAX_IP_LEN, valid_ip_byte, "ip")?,
        port: r.u16()?,
        bus_port: r.u16()?,
        hostname: r.str8(MAX_HOSTNAME_LEN, valid_hostname_byte, "hostname")?,
        paused: r.bool()?,
        slots: read_slots(r)?,
    })
}

fn read_slots(r: &mut Reader<'_>) -> Result<SlotBitmap, WireError> {
    let mut words = [0u64; SLOT_WORDS];
    match r.u8()? {
        0 => {
            let count = r.u16()?;
            if u32::from(count) > u32::from(SLOT_COUNT / 2) {
                return Err(WireError::Malformed("slot run count"));
            }
            let mut next_free: u32 = 0; // runs must be ascending and apart
            for _ in 0..count {
                let first = r.u16()?;
                let last = r.u16()?;
                if u32::from(first) < next_free || first > last || last >= SLOT_COUNT {
                    return Err(WireError::Malformed("slot run"));
                }
                for n in first..=last {
                    if let Some(w) = words.get_mut(usize::from(n / 64)) {
                        *w |= 1u64 << (n % 64);
                    }
                }
                next_free = u32::from(last).saturating_add(2);
            }
        }
        1 => {
            for w in words.iter_mut() {
                *w = r.u64()?;
            }
        }
        _ => return Err(WireError::Malformed("slot set tag")),
    }
    Ok(SlotBitmap::from_words(words))
}

/// A cursor over untrusted bytes: every read is bounds-checked and returns `Truncated` at the end.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn skip(&mut self, n: usize) -> Result<(), WireError> {
        self.bytes(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn bool(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Malformed("boolean")),
        }
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn id(&mut self) -> Result<NodeId, WireError> {
        Ok(NodeId::from_bytes(self.array()?))
    }

    fn str8(
        &mut self,
        max_len: usize,
        valid: fn(u8) -> bool,
        what: &'static str,
    ) -> Result<String, WireError> {
        let len = usize::from(self.u8()?);
        if len > max_len {
            return Err(WireError::Malformed(what));
        }
        let bytes = self.bytes(len)?;
        if !bytes.iter().all(|b| valid(*b)) {
            return Err(WireError::Malformed(what));
        }
        // Every allowed byte is ASCII, so this cannot fail; map the impossible case anyway.
        String::from_utf8(bytes.to_vec()).map_err(|_| WireError::Malformed(what))
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::slot::Slot;
    use proptest::prelude::*;

    fn sample_sender(seed: u64) -> SenderInfo {
        let mut rng = Rng::new(seed);
        let mut slots = SlotBitmap::new();
        for _ in 0..rng.below(40) {
            slots.insert(Slot::new(rng.below(16384) as u16).unwrap());
        }
        SenderInfo {
            id: NodeId::random(&mut rng),
            current_epoch: rng.next_u64(),
            config_epoch: rng.next_u64(),
            repl_offset: rng.next_u64(),
            stream_offsets: (0..rng.below(4)).map(|_| rng.next_u64()).collect(),
            flags: NodeFlags::PRIMARY,
            primary: if rng.chance(500) {
                Some(NodeId::random(&mut rng))
            } else {
                None
            },
            shard_id: ShardId::random(&mut rng),
            ip: "127.0.0.1".into(),
            port: 7000,
            bus_port: 17000,
            hostname: "node-1.example".into(),
            paused: rng.chance(500),
            slots,
        }
    }

    fn sample_messages(seed: u64) -> Vec<Message> {
        let mut rng = Rng::new(seed ^ 0x55);
        let gossip: Vec<GossipEntry> = (0..rng.below(5))
            .map(|i| GossipEntry {
                id: NodeId::random(&mut rng),
                ip: "::1".into(),
                port: 7000 + i as u16,
                bus_port: 17000 + i as u16,
                flags: NodeFlags::REPLICA.union(NodeFlags::PFAIL),
                pong_age_ms: rng.next_u64(),
            })
            .collect();
        let sender = sample_sender(seed);
        let bodies = vec![
            Body::Ping {
                gossip: gossip.clone(),
            },
            Body::Pong {
                gossip: gossip.clone(),
            },
            Body::Meet { gossip },
            Body::Fail {
                node: NodeId::random(&mut rng),
            },
            Body::Update {
                node: NodeId::random(&mut rng),
                config_epoch: 9,
                slots: SlotBitmap::full(),
            },
            Body::AuthRequest {
                force_ack: true,
                electorate_digest: 77,
            },
            Body::AuthAck {
                epoch: 12,
                vote: true,
            },
            Body::MfStart,
            Body::Publish {
                sharded: seed % 2 == 1,
                channel: b"news\x00\xff".to_vec(),
                message: vec![b'm'; seed as usize * 100],
            },
        ];
        bodies
            .into_iter()
            .map(|body| Message {
                sender: sender.clone(),
                body,
            })
            .collect()
    }

    /// CRC-32C matches the standard check value for "123456789".
    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    /// Every message kind survives encode then decode unchanged and uses exactly its frame.
    #[test]
    fn round_trip_all_kinds() {
        for seed in 0..20 {
            for msg in sample_messages(seed) {
                let bytes = encode_to_vec(&msg);
                let (back, used) = decode(&bytes).unwrap().unwrap();
                assert_eq!(back, msg);
                assert_eq!(used, bytes.len());
            }
        }
    }

    /// A slot set of alternating slots (worst case for runs) goes as a raw bitmap and comes back.
    #[test]
    fn worst_case_slots_round_trip() {
        let mut msg = sample_messages(1).remove(0);
        let mut slots = SlotBitmap::new();
        for n in (0..16384).step_by(2) {
            slots.insert(Slot::new(n).unwrap());
        }
        msg.sender.slots = slots;
        let bytes = encode_to_vec(&msg);
        assert!(bytes.len() < 3000);
        assert_eq!(decode(&bytes).unwrap().unwrap().0, msg);
    }

    /// A prefix of a frame is "incomplete", never an error or a wrong message; two frames in one
    /// buffer decode one at a time.
    #[test]
    fn partial_and_concatenated_frames() {
        let msgs = sample_messages(4);
        let a = encode_to_vec(&msgs[0]);
        for cut in 0..a.len() {
            assert_eq!(decode(&a[..cut]), Ok(None), "cut at {cut}");
        }
        let mut both = a.clone();
        encode(&msgs[3], &mut both);
        let (first, used) = decode(&both).unwrap().unwrap();
        assert_eq!(first, msgs[0]);
        let (second, _) = decode(&both[used..]).unwrap().unwrap();
        assert_eq!(second, msgs[3]);
    }

    /// Corruption is caught: a flipped body bit fails the checksum; bad magic, version, reserved
    /// bits and oversize lengths are refused from the header alone.
    #[test]
    fn corruption_is_refused() {
        let bytes = encode_to_vec(&sample_messages(2)[0]);
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(decode(&flipped), Err(WireError::BadChecksum));
        let mut magic = bytes.clone();
        magic[0] = b'X';
        assert_eq!(decode(&magic[..1]), Err(WireError::BadMagic));
        let mut version = bytes.clone();
        version[4] = 9;
        assert_eq!(decode(&version), Err(WireError::UnsupportedVersion(9)));
        let mut reserved = bytes.clone();
        reserved[6] = 1;
        assert_eq!(decode(&reserved), Err(WireError::BadReserved));
        let mut big = bytes;
        big[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&big[..16]), Err(WireError::TooLarge(_))));
    }

    /// A body with a valid checksum but broken fields (unsorted slot runs, bad tags, too many
    /// gossip entries, trailing bytes) is refused, not half-accepted.
    #[test]
    fn malformed_bodies_with_valid_checksum() {
        fn reframe(kind: u8, body: &[u8]) -> Vec<u8> {
            let mut out = MAGIC.to_vec();
            out.push(WIRE_VERSION);
            out.push(kind);
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&crc32c(body).to_le_bytes());
            out.extend_from_slice(body);
            out
        }
        let good = encode_to_vec(&sample_messages(3)[7]); // MfStart: sender only
        let body = &good[FRAME_HEADER_BYTES..];
        let mut trailing = body.to_vec();
        trailing.push(0);
        assert_eq!(
            decode(&reframe(8, &trailing)),
            Err(WireError::TrailingBytes)
        );
        assert_eq!(decode(&reframe(99, body)), Err(WireError::UnknownKind(99)));
        // Gossip count over the limit.
        let mut gossip = body.to_vec();
        gossip.extend_from_slice(&((MAX_GOSSIP_ENTRIES + 1) as u16).to_le_bytes());
        assert_eq!(
            decode(&reframe(1, &gossip)),
            Err(WireError::Malformed("gossip count"))
        );
        // An update whose slot runs go backwards.
        let mut update = body.to_vec();
        update.extend_from_slice(&[0u8; ID_BYTES]);
        update.extend_from_slice(&1u64.to_le_bytes());
        update.push(0);
        update.extend_from_slice(&2u16.to_le_bytes());
        for v in [10u16, 20, 5, 6] {
            update.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(
            decode(&reframe(5, &update)),
            Err(WireError::Malformed("slot run"))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary bytes, with or without a valid magic in front, never panic the decoder.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            with_magic in any::<bool>(),
        ) {
            let mut input = if with_magic { MAGIC.to_vec() } else { Vec::new() };
            input.extend_from_slice(&bytes);
            let _ = frame_len(&input);
            let _ = decode(&input);
        }

        /// Valid frames with random bytes overwritten, after fixing the checksum so the fields
        /// themselves are fuzzed, never panic the decoder either.
        #[test]
        fn mutated_frames_never_panic(
            seed in 0u64..50,
            which in 0usize..8,
            edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
            cut in any::<u16>(),
        ) {
            let mut bytes = encode_to_vec(&sample_messages(seed)[which]);
            for (pos, val) in edits {
                let i = FRAME_HEADER_BYTES + usize::from(pos) % (bytes.len() - FRAME_HEADER_BYTES);
                bytes[i] = val;
            }
            let keep = FRAME_HEADER_BYTES + usize::from(cut) % (bytes.len() - FRAME_HEADER_BYTES + 1);
            bytes.truncate(keep);
            let body_len = (bytes.len() - FRAME_HEADER_BYTES) as u32;
            bytes[8..12].copy_from_slice(&body_len.to_le_bytes());
            let crc = crc32c(&bytes[FRAME_HEADER_BYTES..]);
            bytes[12..16].copy_from_slice(&crc.to_le_bytes());
            let _ = decode(&bytes);
        }
    }
}
