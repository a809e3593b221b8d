//! The replication wire format: frames on a stream connection, and the rkyv archive of the
//! operations a live or snapshot frame carries.
//!
//! Every message on a stream connection, both ways, is `[b'C', version, kind, 0, u32 LE body
//! length][body]`. The replica sends `HELLO` then `ACK`s; the primary answers `CONTINUE` or
//! `FULLRESYNC`, then `SNAPSHOT` frames and `SNAPSHOT_END` (full sync only), then `LIVE` frames
//! and `PING`s. Only `LIVE` frames count in a stream's offset (their whole length, header
//! included), so a backlog of live frames is exactly the stream between two offsets.
//!
//! A `LIVE` or `SNAPSHOT` body is an rkyv archive of a [`Batch`]; the receiver copies it into
//! an aligned buffer, validates it once (`rkyv::access`) and applies the archived operations in
//! place: command arguments and values are slices of that buffer, never copied into owned
//! structures. The other bodies are fixed little-endian fields.
//!
//! Bodies come from a socket: nothing here panics on them (clippy lints below), and a body
//! longer than [`FRAME_BODY_MAX`] closes the connection before it is buffered.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use rkyv::{Archive, Deserialize, Serialize};

/// First byte of every frame.
pub const MAGIC: u8 = b'C';
/// Wire version; a peer speaking another one is disconnected.
pub const VERSION: u8 = 1;
/// Frame header length.
pub const HEADER_LEN: usize = 8;
/// Largest body accepted. A snapshot frame carries whole slots (see `primary.rs`), so one slot
/// holding a value near `proto-max-bulk-len` (512 MB) still fits.
pub const FRAME_BODY_MAX: usize = 1 << 30;
/// Largest frame, header included (what `net::link` is told).
pub const FRAME_MAX: usize = FRAME_BODY_MAX + HEADER_LEN;

const _: () = assert!(FRAME_MAX <= u32::MAX as usize);

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Replica → primary: replication id, offset, listening port, stream index.
    Hello = 1,
    /// Primary → replica: partial resync accepted; body: replication id.
    Continue = 2,
    /// Primary → replica: full resync; body: replication id, offset the live stream resumes at.
    FullResync = 3,
    /// A batch of snapshot operations (full sync; not counted in the offset).
    Snapshot = 4,
    /// The snapshot is complete.
    SnapshotEnd = 5,
    /// A batch of live operations (counted in the offset).
    Live = 6,
    /// Keep-alive from the primary (not counted).
    Ping = 7,
    /// Replica → primary: the offset applied so far.
    Ack = 8,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Continue,
            3 => Kind::FullResync,
            4 => Kind::Snapshot,
            5 => Kind::SnapshotEnd,
            6 => Kind::Live,
            7 => Kind::Ping,
            8 => Kind::Ack,
            _ => return None,
        })
    }
}

/// A bad frame header (the connection is closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    BadMagic,
    BadVersion(u8),
    BadKind(u8),
    TooLong(usize),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::BadMagic => write!(f, "not a replication frame"),
            FrameError::BadVersion(v) => write!(f, "replication frame version {v} unsupported"),
            FrameError::BadKind(k) => write!(f, "unknown replication frame kind {k}"),
            FrameError::TooLong(n) => write!(f, "replication frame of {n} bytes is too long"),
        }
    }
}

/// The whole length of the frame at the start of `buf`, once its header is in (for
/// `net::link::start`).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let (Some(&magic), Some(&version), Some(&kind)) = (h.first(), h.get(1), h.get(2)) else {
        return Ok(None);
    };
    if magic != MAGIC {
        return Err(FrameError::BadMagic);
    }
    if version != VERSION {
        return Err(FrameError::BadVersion(version));
    }
    Kind::from_u8(kind).ok_or(FrameError::BadKind(kind))?;
    let len_bytes: [u8; 4] = h
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(FrameError::BadMagic)?;
    let body = u32::from_le_bytes(len_bytes) as usize;
    if body > FRAME_BODY_MAX {
        return Err(FrameError::TooLong(body));
    }
    Ok(Some(body.saturating_add(HEADER_LEN)))
}

/// Splits a whole frame (as `frame_len` measured it) into its kind and body.
pub fn split(frame: &[u8]) -> Option<(Kind, &[u8])> {
    let kind = Kind::from_u8(*frame.get(2)?)?;
    Some((kind, frame.get(HEADER_LEN..)?))
}

/// Appends a frame of `kind` with `body` to `out`.
pub fn put(out: &mut Vec<u8>, kind: Kind, body: &[u8]) {
    assert!(body.len() <= FRAME_BODY_MAX, "frame body over the limit");
    out.extend_from_slice(&[MAGIC, VERSION, kind as u8, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
}

/// Length of a replication id (40 hex characters, as Valkey's).
pub const REPLID_LEN: usize = 40;

/// The replica's opening message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The replication id the replica's data follows (`?` × 40 when it has none).
    pub replid: [u8; REPLID_LEN],
    /// The next offset it needs (its applied offset); ignored when `replid` is unknown.
    pub offset: u64,
    /// The replica's client port (INFO `slaveN:port`).
    pub listening_port: u16,
    /// The replica node's run id, so the primary counts nodes, not streams.
    pub node: [u8; REPLID_LEN],
}

impl Hello {
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(2 * REPLID_LEN + 10);
        body.extend_from_slice(&self.replid);
        body.extend_from_slice(&self.offset.to_le_bytes());
        body.extend_from_slice(&self.listening_port.to_le_bytes());
        body.extend_from_slice(&self.node);
        let mut out = Vec::new();
        put(&mut out, Kind::Hello, &body);
        out
    }

    pub fn decode(body: &[u8]) -> Option<Hello> {
        let replid = body.get(..REPLID_LEN)?.try_into().ok()?;
        let rest = body.get(REPLID_LEN..)?;
        let offset = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let listening_port = u16::from_le_bytes(rest.get(8..10)?.try_into().ok()?);
        let node = rest
            .get(10..10usize.checked_add(REPLID_LEN)?)?
            .try_into()
            .ok()?;
        Some(Hello {
            replid,
            offset,
            listening_port,
            node,
        })
    }
}

/// A `CONTINUE` or `FULLRESYNC` body: replication id and offset.
pub fn sync_reply(kind: Kind, replid: &[u8; REPLID_LEN], offset: u64) -> Vec<u8> {
    let mut body = Vec::with_capacity(REPLID_LEN + 8);
    body.extend_from_slice(replid);
    body.extend_from_slice(&offset.to_le_bytes());
    let mut out = Vec::new();
    put(&mut out, kind, &body);
    out
}

/// Decodes a `CONTINUE` or `FULLRESYNC` body.
pub fn decode_sync_reply(body: &[u8]) -> Option<([u8; REPLID_LEN], u64)> {
    let replid = body.get(..REPLID_LEN)?.try_into().ok()?;
    let offset = u64::from_le_bytes(
        body.get(REPLID_LEN..REPLID_LEN.checked_add(8)?)?
            .try_into()
            .ok()?,
    );
    Some((replid, offset))
}

/// An `ACK` frame.
pub fn ack(offset: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 8);
    put(&mut out, Kind::Ack, &offset.to_le_bytes());
    out
}

/// Decodes an `ACK` body.
pub fn decode_ack(body: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(body.get(..8)?.try_into().ok()?))
}

/// No expiry (in [`Op::Put`]).
pub const NO_EXPIRE: i64 = i64::MIN;
/// Every database (in [`Op::Flush`]).
pub const ALL_DBS: u32 = u32::MAX;

/// One replicated operation. Key operations carry their slot, so a replica with another shard
/// count routes each one by slot (every operation touches one slot: multi-slot commands are
/// replicated as their effects, one key at a time; see `capture.rs`).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Op {
    /// Run a command as the primary ran it, with the primary's clock (so relative expiry times
    /// land on the same deadline). `args` is the argument vector, each argument as a u32 LE
    /// length and its bytes.
    Cmd {
        db: u32,
        slot: u16,
        now_ms: i64,
        args: Vec<u8>,
    },
    /// A key's whole value (a DUMP payload) and deadline ([`NO_EXPIRE`] for none).
    Put {
        db: u32,
        slot: u16,
        key: Vec<u8>,
        payload: Vec<u8>,
        expire_at: i64,
    },
    /// A key is gone (deleted, expired, moved away).
    Del { db: u32, slot: u16, key: Vec<u8> },
    /// FLUSHDB (or FLUSHALL with [`ALL_DBS`]).
    Flush { db: u32 },
    /// SWAPDB.
    SwapDb { a: u32, b: u32 },
    /// Snapshot: every key of this slot, in every database, is about to be sent; drop what
    /// the replica holds there.
    ClearSlot { slot: u16 },
}

/// The body of a `LIVE` or `SNAPSHOT` frame.
#[derive(Archive, Serialize, Debug, Clone, PartialEq, Default)]
pub struct Batch {
    pub ops: Vec<Op>,
}

/// Encodes a batch as a whole frame of `kind`.
pub fn encode_batch(kind: Kind, batch: &Batch) -> Vec<u8> {
    // Serialising plain vectors and integers into memory cannot fail.
    let body = match rkyv::to_bytes::<rkyv::rancor::Error>(batch) {
        Ok(b) => b,
        Err(e) => panic!("serialising a replication batch: {e}"),
    };
    let mut out = Vec::with_capacity(HEADER_LEN.saturating_add(body.len()));
    put(&mut out, kind, &body);
    out
}

/// A validated archived batch, in an aligned copy of its body.
pub struct ArchivedFrame {
    buf: rkyv::util::AlignedVec<16>,
}

impl ArchivedFrame {
    /// Copies `body` into an aligned buffer and validates it.
    pub fn new(body: &[u8]) -> Option<ArchivedFrame> {
        let mut buf = rkyv::util::AlignedVec::<16>::with_capacity(body.len());
        buf.extend_from_slice(body);
        rkyv::access::<ArchivedBatch, rkyv::rancor::Error>(&buf).ok()?;
        Some(ArchivedFrame { buf })
    }

    /// The batch (validated in [`ArchivedFrame::new`]).
    pub fn batch(&self) -> &ArchivedBatch {
        // SAFETY: `new` validated these very bytes with `rkyv::access`, and they have not
        // changed since (the buffer is private and never written after).
        unsafe { rkyv::access_unchecked::<ArchivedBatch>(&self.buf) }
    }
}

/// Appends one argument to a [`Op::Cmd`] argument buffer.
pub fn push_arg(args: &mut Vec<u8>, arg: &[u8]) {
    args.extend_from_slice(&(arg.len() as u32).to_le_bytes());
    args.extend_from_slice(arg);
}

/// Splits a [`Op::Cmd`] argument buffer; `None` when it is malformed.
pub fn split_args<'a>(mut args: &'a [u8], out: &mut Vec<&'a [u8]>) -> Option<()> {
    out.clear();
    while !args.is_empty() {
        let len = u32::from_le_bytes(args.get(..4)?.try_into().ok()?) as usize;
        let end = len.checked_add(4)?;
        out.push(args.get(4..end)?);
        args = args.get(end..)?;
    }
    Some(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A batch survives encoding, framing and validated access, and command arguments come
    /// back as slices of the archive.
    #[test]
    fn batch_round_trip() {
        let mut args = Vec::new();
        for a in [&b"SET"[..], b"k", b"", b"v\x00\xff"] {
            push_arg(&mut args, a);
        }
        let batch = Batch {
            ops: vec![
                Op::Cmd {
                    db: 3,
                    slot: 77,
                    now_ms: 123,
                    args,
                },
                Op::Put {
                    db: 0,
                    slot: 1,
                    key: b"k".to_vec(),
                    payload: b"pp".to_vec(),
                    expire_at: NO_EXPIRE,
                },
                Op::Flush { db: ALL_DBS },
            ],
        };
        let wire = encode_batch(Kind::Live, &batch);
        assert_eq!(frame_len(&wire).unwrap(), Some(wire.len()));
        assert_eq!(frame_len(&wire[..5]).unwrap(), None);
        let (kind, body) = split(&wire).unwrap();
        assert_eq!(kind, Kind::Live);
        let f = ArchivedFrame::new(body).unwrap();
        let ops = &f.batch().ops;
        assert_eq!(ops.len(), 3);
        match &ops[0] {
            ArchivedOp::Cmd { db, slot, args, .. } => {
                assert_eq!(db.to_native(), 3);
                assert_eq!(slot.to_native(), 77);
                let mut v = Vec::new();
                split_args(args.as_slice(), &mut v).unwrap();
                assert_eq!(v, vec![&b"SET"[..], b"k", b"", b"v\x00\xff"]);
            }
            _ => panic!("first op is a command"),
        }
    }

    /// Garbage never panics: bad headers are refused, bad bodies fail validation.
    #[test]
    fn garbage() {
        assert_eq!(
            frame_len(b"X\x01\x06\x00\x00\x00\x00\x00"),
            Err(FrameError::BadMagic)
        );
        assert_eq!(
            frame_len(b"C\x02\x06\x00\x00\x00\x00\x00"),
            Err(FrameError::BadVersion(2))
        );
        assert_eq!(
            frame_len(b"C\x01\x63\x00\x00\x00\x00\x00"),
            Err(FrameError::BadKind(0x63))
        );
        assert!(matches!(
            frame_len(b"C\x01\x06\x00\xff\xff\xff\xff"),
            Err(FrameError::TooLong(_))
        ));
        let mut seed = 1u64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            let _ = ArchivedFrame::new(&bytes);
            let _ = Hello::decode(&bytes);
            let mut v = Vec::new();
            let _ = split_args(&bytes, &mut v);
        }
        let h = Hello {
            replid: [b'a'; REPLID_LEN],
            offset: 99,
            listening_port: 7000,
            node: [b'b'; REPLID_LEN],
        };
        let wire = h.encode();
        assert_eq!(Hello::decode(split(&wire).unwrap().1).unwrap(), h);
    }
}
