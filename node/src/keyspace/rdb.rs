//! DUMP/RESTORE payloads in Valkey's RDB object format (the subset corekey writes so far).
//!
//! A payload is `<type byte><object><RDB version, 2 bytes LE><CRC-64/Jones of all before, 8
//! bytes LE>`, exactly what Valkey's `createDumpPayload` builds, so Valkey and Redis accept
//! what we DUMP. We write each type in its plain, version-independent RDB form: strings as
//! integers (when short and canonical) or raw bytes, lists as `RDB_TYPE_LIST`, hashes as
//! `RDB_TYPE_HASH`, sets as `RDB_TYPE_SET`, sorted sets as `RDB_TYPE_ZSET_2` (binary double
//! scores). We read those forms, LZF-compressed strings and the compact forms Valkey 7+ itself
//! writes (intset, listpack sets/hashes/sorted sets, quicklist-2 lists), so keys DUMPed by
//! Valkey or Redis 7 RESTORE here, building each value in the encoding Valkey's
//! `rdbLoadObject` would. Not read: the ziplist forms of Redis < 7, streams and modules;
//! RESTORE answers "Bad data format" for them.
//!
//! Payloads come from clients: the reader never panics and checks every length against what
//! is left before allocating (this module denies unwrap, indexing and unchecked arithmetic).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use super::encoding::Limits;
use super::hash::HashVal;
use super::list::{End, ListVal};
use super::set::{Elem, SetVal};
use super::value::{StrVal, Value};
use super::zset::ZSetVal;
use super::SmallBytes;

/// The RDB version written (Valkey 8's `RDB_VERSION`); payloads of later versions are refused.
pub const RDB_VERSION: u16 = 11;

const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
const TYPE_SET_LISTPACK: u8 = 20;

const QUICKLIST_NODE_PLAIN: usize = 1;
const QUICKLIST_NODE_PACKED: usize = 2;

const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Most elements a collection payload may announce beyond what its bytes could hold (each
/// element takes at least one byte, so the payload length bounds the count anyway).
const FOOTER_BYTES: usize = 10;

// Built at compile time; the loop bounds keep every index in range.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const CRC64_TABLE: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0x95ac_9329_ac4b_c9b5
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-64/Jones (reflected, polynomial 0xad93d23594c935a9), as Valkey's `crc64`.
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    for &b in data {
        let i = ((crc ^ u64::from(b)) & 0xff) as u8;
        crc = CRC64_TABLE.get(usize::from(i)).copied().unwrap_or(0) ^ (crc >> 8);
    }
    crc
}

/// The payload of `value`, or `None` for a type this module cannot write yet.
pub fn dump(value: &Value) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    match value {
        Value::Str(s) => {
            out.push(TYPE_STRING);
            put_string(&mut out, &s.bytes());
        }
        Value::List(l) => {
            out.push(TYPE_LIST);
            put_len(&mut out, l.len() as u64);
            for e in l.iter() {
                put_string(&mut out, e);
            }
        }
        Value::Hash(h) => {
            out.push(TYPE_HASH);
            put_len(&mut out, h.len() as u64);
            for (f, v) in h.iter() {
                put_string(&mut out, f);
                put_string(&mut out, v);
            }
        }
        Value::Set(set) => {
            out.push(TYPE_SET);
            put_len(&mut out, set.len() as u64);
            for e in set.iter() {
                match e {
                    Elem::Str(b) => put_string(&mut out, b),
                    Elem::Int(n) => put_string(&mut out, itoa::Buffer::new().format(n).as_bytes()),
                }
            }
        }
        Value::ZSet(z) => {
            out.push(TYPE_ZSET_2);
            put_len(&mut out, z.len() as u64);
            for (member, score) in z.iter() {
                put_string(&mut out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// Whether the footer of `payload` is right (version not newer than ours, checksum matches):
/// Valkey's `verifyDumpPayload`.
pub fn verify(payload: &[u8]) -> bool {
    let Some(body_len) = payload.len().checked_sub(FOOTER_BYTES) else {
        return false;
    };
    let (Some(version), Some(crc)) = (
        payload.get(body_len..body_len.saturating_add(2)),
        payload.get(body_len.saturating_add(2)..),
    ) else {
        return false;
    };
    let version = u16::from_le_bytes([
        version.first().copied().unwrap_or(0xff),
        version.get(1).copied().unwrap_or(0xff),
    ]);
    if version > RDB_VERSION {
        return false;
    }
    let Ok(crc) = <[u8; 8]>::try_from(crc) else {
        return false;
    };
    let body = payload
        .get(..body_len.saturating_add(2))
        .unwrap_or_default();
    crc64(0, body) == u64::from_le_bytes(crc)
}

/// The value in a payload that passed [`verify`]; `None` for a malformed or unsupported one.
pub fn restore(payload: &[u8], limits: Limits) -> Option<Value> {
    let body = payload.get(..payload.len().checked_sub(FOOTER_BYTES)?)?;
    let mut r = Reader { buf: body, pos: 0 };
    let value = match r.u8()? {
        TYPE_STRING => Value::Str(StrVal::from_arg(&r.string()?)),
        TYPE_LIST => {
            let n = r.len()?;
            let items = (0..n).map(|_| r.string()).collect::<Option<Vec<_>>>()?;
            build_list(items, limits)?
        }
        TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.len()?;
            let mut items = Vec::new();
            for _ in 0..nodes {
                let container = r.len()?;
                let blob = r.string()?;
                match container {
                    QUICKLIST_NODE_PLAIN => items.push(blob),
                    QUICKLIST_NODE_PACKED => {
                        let entries = listpack_entries(&blob)?;
                        // Valkey refuses an empty quicklist node as corrupt.
                        if entries.is_empty() {
                            return None;
                        }
                        items.extend(entries);
                    }
                    _ => return None,
                }
            }
            build_list(items, limits)?
        }
        TYPE_HASH => {
            let n = r.len()?;
            let mut pairs = Vec::with_capacity(n.min(1 << 20));
            for _ in 0..n {
                pairs.push((r.string()?, r.string()?));
            }
            build_hash(pairs, limits)?
        }
        TYPE_HASH_LISTPACK => build_hash(listpack_pairs(&r.string()?)?, limits)?,
        TYPE_SET => {
            let n = r.len()?;
            let members = (0..n).map(|_| r.string()).collect::<Option<Vec<_>>>()?;
            build_set(members, limits)?
        }
        TYPE_SET_INTSET => build_set(intset_entries(&r.string()?)?, limits)?,
        TYPE_SET_LISTPACK => build_set(listpack_entries(&r.string()?)?, limits)?,
        TYPE_ZSET_2 => {
            let n = r.len()?;
            let mut items = Vec::with_capacity(n.min(1 << 20));
            for _ in 0..n {
                let member = r.string()?;
                let bits = <[u8; 8]>::try_from(r.bytes(8)?).ok()?;
                items.push((f64::from_le_bytes(bits), member));
            }
            build_zset(items, limits)?
        }
        TYPE_ZSET_LISTPACK => {
            let mut items = Vec::new();
            for (member, score) in listpack_pairs(&r.string()?)? {
                let score = crate::commands::sorted_set::parse_double(&score)?;
                items.push((score, member));
            }
            build_zset(items, limits)?
        }
        _ => return None,
    };
    // Every byte of the object must have been used.
    (r.pos == body.len()).then_some(value)
}

fn build_list(items: Vec<Vec<u8>>, limits: Limits) -> Option<Value> {
    if items.is_empty() {
        return None;
    }
    let mut l = ListVal::new();
    for item in &items {
        l.push(End::Right, item);
    }
    l.settle(limits.list_max_listpack_size);
    Some(Value::List(Box::new(l)))
}

fn build_hash(pairs: Vec<(Vec<u8>, Vec<u8>)>, limits: Limits) -> Option<Value> {
    let mut h = HashVal::new();
    for (f, v) in &pairs {
        h.set(f, v, limits);
    }
    // Empty, or a field twice: a corrupt payload.
    if h.is_empty() || h.len() != pairs.len() {
        return None;
    }
    Some(Value::Hash(Box::new(h)))
}

fn build_set(members: Vec<Vec<u8>>, limits: Limits) -> Option<Value> {
    let n = members.len();
    if n == 0 {
        return None;
    }
    // Too many members for an intset: a hashtable from the start (Valkey caps the setting at
    // 2^30 here).
    let mut set = if n > limits.set_max_intset_entries.min(1 << 30) {
        SetVal::new_table(n.min(1 << 20))
    } else {
        SetVal::default()
    };
    for m in &members {
        // A member twice: a corrupt payload.
        if !set.add(m, &limits) {
            return None;
        }
    }
    Some(Value::Set(Box::new(set)))
}

fn build_zset(items: Vec<(f64, Vec<u8>)>, limits: Limits) -> Option<Value> {
    if items.is_empty() || items.iter().any(|(s, _)| s.is_nan()) {
        return None;
    }
    let mut items: Vec<(f64, SmallBytes)> = items
        .into_iter()
        .map(|(s, m)| (s, SmallBytes::new(&m)))
        .collect();
    // Members are unique; the set is built in order (Valkey converts to a listpack after
    // loading when it fits).
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    if !items.iter().all(|(_, m)| seen.insert(m.clone())) {
        return None;
    }
    items.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Some(Value::ZSet(Box::new(ZSetVal::from_sorted(items, &limits))))
}

/// The members of an intset blob (`<encoding u32><length u32><ints>`, little endian), as text.
fn intset_entries(blob: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader { buf: blob, pos: 0 };
    let width = u32::from_le_bytes(r.bytes(4)?.try_into().ok()?);
    let n = usize::try_from(u32::from_le_bytes(r.bytes(4)?.try_into().ok()?)).ok()?;
    let width = match width {
        2 | 4 | 8 => width as usize,
        _ => return None,
    };
    if blob.len() != n.checked_mul(width)?.checked_add(8)? {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    let mut prev: Option<i64> = None;
    for _ in 0..n {
        let b = r.bytes(width)?;
        let v = match width {
            2 => i64::from(i16::from_le_bytes(b.try_into().ok()?)),
            4 => i64::from(i32::from_le_bytes(b.try_into().ok()?)),
            _ => i64::from_le_bytes(b.try_into().ok()?),
        };
        // An intset is sorted and without duplicates.
        if prev.is_some_and(|p| p >= v) {
            return None;
        }
        prev = Some(v);
        out.push(crate::util::i64_text(v));
    }
    Some(out)
}

/// The entries of a listpack blob (Valkey's `listpack.c` format), integers as text.
fn listpack_entries(blob: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader { buf: blob, pos: 0 };
    let total = usize::try_from(u32::from_le_bytes(r.bytes(4)?.try_into().ok()?)).ok()?;
    let count = u16::from_le_bytes(r.bytes(2)?.try_into().ok()?);
    if total != blob.len() {
        return None;
    }
    let mut out = Vec::new();
    // Every entry takes at least two bytes: the bound keeps the loop finite on any input.
    for _ in 0..blob.len() {
        let start = r.pos;
        let b = r.u8()?;
        if b == 0xff {
            // The end marker must be the last byte; a count of 65535 means "not known".
            let ok = r.pos == blob.len() && (count == u16::MAX || usize::from(count) == out.len());
            return ok.then_some(out);
        }
        let entry = match b {
            0x00..=0x7f => crate::util::i64_text(i64::from(b)),
            0x80..=0xbf => r.bytes(usize::from(b & 0x3f))?.to_vec(),
            0xc0..=0xdf => {
                let v = (i64::from(b & 0x1f) << 8) | i64::from(r.u8()?);
                crate::util::i64_text(if v >= 1 << 12 {
                    v.wrapping_sub(1 << 13)
                } else {
                    v
                })
            }
            0xe0..=0xef => {
                let len = (usize::from(b & 0x0f) << 8) | usize::from(r.u8()?);
                r.bytes(len)?.to_vec()
            }
            0xf0 => {
                let len = usize::try_from(u32::from_le_bytes(r.bytes(4)?.try_into().ok()?)).ok()?;
                r.bytes(len)?.to_vec()
            }
            0xf1 => {
                crate::util::i64_text(i64::from(i16::from_le_bytes(r.bytes(2)?.try_into().ok()?)))
            }
            0xf2 => {
                let b3 = r.bytes(3)?;
                let v = i32::from_le_bytes([0, *b3.first()?, *b3.get(1)?, *b3.get(2)?]) >> 8;
                crate::util::i64_text(i64::from(v))
            }
            0xf3 => {
                crate::util::i64_text(i64::from(i32::from_le_bytes(r.bytes(4)?.try_into().ok()?)))
            }
            0xf4 => crate::util::i64_text(i64::from_le_bytes(r.bytes(8)?.try_into().ok()?)),
            _ => return None,
        };
        // The back-length: the entry's size (encoding and data), 7 bits per byte.
        let size = r.pos.checked_sub(start)?;
        let backlen_bytes = match size {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2_097_150 => 3,
            2_097_151..=268_435_454 => 4,
            _ => 5,
        };
        r.bytes(backlen_bytes)?;
        out.push(entry);
    }
    None
}

/// A listpack of alternating fields and values.
fn listpack_pairs(blob: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let entries = listpack_entries(blob)?;
    if entries.len() % 2 != 0 {
        return None;
    }
    let mut it = entries.into_iter();
    let mut out = Vec::new();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Some(out)
}

fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push((n & 0xff) as u8);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A string, as an integer when Valkey's `rdbTryIntegerEncoding` would make it one.
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(n) = crate::util::parse_i64(s) {
            if crate::util::i64_text(n) == s {
                if let Ok(v) = i8::try_from(n) {
                    out.push(0xc0 | ENC_INT8);
                    out.extend_from_slice(&v.to_le_bytes());
                    return;
                }
                if let Ok(v) = i16::try_from(n) {
                    out.push(0xc0 | ENC_INT16);
                    out.extend_from_slice(&v.to_le_bytes());
                    return;
                }
                if let Ok(v) = i32::try_from(n) {
                    out.push(0xc0 | ENC_INT32);
                    out.extend_from_slice(&v.to_le_bytes());
                    return;
                }
            }
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A length, or a special string encoding.
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos = self.pos.checked_add(1)?;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let b = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(b)
    }

    fn raw_len(&mut self) -> Option<Len> {
        let b = self.u8()?;
        Some(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.u8()?)),
            3 => Len::Encoded(b & 0x3f),
            _ if b == 0x80 => Len::Plain(u64::from(u32::from_be_bytes(
                self.bytes(4)?.try_into().ok()?,
            ))),
            _ if b == 0x81 => Len::Plain(u64::from_be_bytes(self.bytes(8)?.try_into().ok()?)),
            _ => return None,
        })
    }

    /// A collection length: no larger than the bytes left (each element needs one).
    fn len(&mut self) -> Option<usize> {
        match self.raw_len()? {
            Len::Plain(n) => {
                let n = usize::try_from(n).ok()?;
                (n <= self.buf.len().saturating_sub(self.pos)).then_some(n)
            }
            Len::Encoded(_) => None,
        }
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        match self.raw_len()? {
            Len::Plain(n) => Some(self.bytes(usize::try_from(n).ok()?)?.to_vec()),
            Len::Encoded(ENC_INT8) => {
                let v = i8::from_le_bytes(self.bytes(1)?.try_into().ok()?);
                Some(crate::util::i64_text(i64::from(v)))
            }
            Len::Encoded(ENC_INT16) => {
                let v = i16::from_le_bytes(self.bytes(2)?.try_into().ok()?);
                Some(crate::util::i64_text(i64::from(v)))
            }
            Len::Encoded(ENC_INT32) => {
                let v = i32::from_le_bytes(self.bytes(4)?.try_into().ok()?);
                Some(crate::util::i64_text(i64::from(v)))
            }
            Len::Encoded(ENC_LZF) => {
                let clen = self.len()?;
                let Len::Plain(len) = self.raw_len()? else {
                    return None;
                };
                let len = usize::try_from(len).ok()?;
                // A compressed run expands at most 264 bytes per 2 input bytes: refuse lengths
                // the input cannot produce before allocating them.
                if len > clen.saturating_mul(132).saturating_add(32) {
                    return None;
                }
                lzf_decompress(self.bytes(clen)?, len)
            }
            Len::Encoded(_) => None,
        }
    }
}

/// LZF decompression (the format of Valkey's `lzf_d.c`) into exactly `len` bytes.
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(len);
    let mut i = 0usize;
    while i < input.len() {
        let ctrl = usize::from(*input.get(i)?);
        i = i.checked_add(1)?;
        if ctrl < 32 {
            let run = ctrl.checked_add(1)?;
            let end = i.checked_add(run)?;
            out.extend_from_slice(input.get(i..end)?);
            i = end;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run = run.checked_add(usize::from(*input.get(i)?))?;
                i = i.checked_add(1)?;
            }
            let back = ((ctrl & 0x1f) << 8)
                .checked_add(usize::from(*input.get(i)?))?
                .checked_add(1)?;
            i = i.checked_add(1)?;
            let mut from = out.len().checked_sub(back)?;
            for _ in 0..run.checked_add(2)? {
                let b = *out.get(from)?;
                out.push(b);
                from = from.checked_add(1)?;
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    /// The CRC is CRC-64/Jones: Redis's test vector for "123456789".
    #[test]
    fn crc64_check_value() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    /// Payloads Valkey 8 produced for a string and an integer decode to the same values, and
    /// ours for them are byte-identical to Valkey's.
    #[test]
    fn valkey_string_payloads() {
        // DUMP of SET k hello / SET n 12345 on Valkey 8.0.1.
        let hello = b"\x00\x05hello\x0b\x00\x0a\xad\x62\x05\x98\xab\xc9\x83";
        let n = b"\x00\xc1\x39\x30\x0b\x00\xf4\x4b\x57\x54\x6e\x63\xe1\x30";
        for (payload, text) in [(&hello[..], &b"hello"[..]), (&n[..], &b"12345"[..])] {
            assert!(verify(payload), "{payload:?}");
            let v = restore(payload, Limits::default()).unwrap();
            assert_eq!(v.as_str().unwrap().bytes().as_ref(), text);
            assert_eq!(dump(&v).unwrap(), payload);
        }
    }

    /// Lists and hashes round-trip; a corrupted byte fails the checksum; truncated and
    /// trailing bytes are refused; random bytes never panic.
    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Payloads Valkey 8.0.1 DUMPed for small collections, in the compact forms it writes
    /// (intset, listpack, LZF-compressed quicklist-2), read back as the same values.
    #[test]
    fn valkey_compact_payloads() {
        let limits = Limits::default();
        let set = |members: &[&[u8]]| {
            let mut s = SetVal::default();
            for m in members {
                s.add(m, &limits);
            }
            Value::Set(Box::new(s))
        };
        let mut h = HashVal::new();
        for (f, v) in [
            (&b"f"[..], &b"1"[..]),
            (b"g", &[b'x'; 20]),
            (b"n", b"-4000"),
        ] {
            h.set(f, v, limits);
        }
        let mut l = ListVal::new();
        let long = b"x".repeat(64);
        for e in [
            &b"a"[..],
            b"1",
            b"-1",
            b"4095",
            b"4611686018427387904",
            &long,
        ] {
            l.push(End::Right, e);
        }
        l.settle(limits.list_max_listpack_size);
        let z = vec![
            (-2.0, SmallBytes::new(b"b")),
            (1.5, SmallBytes::new(b"a")),
            (3.0, SmallBytes::new(b"d")),
            (f64::INFINITY, SmallBytes::new(b"c")),
        ];
        let cases = [
            // SADD si -3 7 70000 (intset, 4-byte integers)
            (
                "0b140400000003000000fdffffff07000000701101000b0007714f3e87fbdac2",
                set(&[b"-3", b"7", b"70000"]),
            ),
            // SADD ss a bb -5000 1099511627776 (listpack)
            (
                "141c1c000000040081610282626203f178ec03f4000000000001000009ff0b002110059360e52ac9",
                set(&[b"a", b"bb", b"-5000", b"1099511627776"]),
            ),
            // ZADD z 1.5 a -2 b inf c 3 d (listpack)
            (
                "1122220000000800816202dffe0281610283312e3504816402030181630283696e6604ff0b00307c6b27256807db",
                Value::ZSet(Box::new(ZSetVal::from_sorted(z, &limits))),
            ),
            // HSET h f 1 g xxxxxxxxxxxxxxxxxxxx n -4000 (LZF-compressed listpack)
            (
                "10c31d2b0f2b000000060081660201018167029478e00a000715816e02d06002ff0b00e52d96491427f678",
                Value::Hash(Box::new(h)),
            ),
            // RPUSH l a 1 -1 4095 2^62 x*64 (quicklist-2, LZF-compressed listpack)
            (
                "120102c323405f115f00000006008161020101dfff02cfff02f420104000044009e04078e036000142ff0b000f2575031415471b",
                Value::List(Box::new(l)),
            ),
        ];
        for (payload, want) in cases {
            let p = hex(payload);
            assert!(verify(&p), "{payload}");
            let got = restore(&p, limits).unwrap();
            assert!(got == want, "{payload}");
            assert_eq!(got.encoding(), want.encoding());
            // Any truncated listpack/intset is refused, never a panic.
            for cut in 1..p.len() - FOOTER_BYTES {
                let mut short = p[..cut].to_vec();
                short.extend_from_slice(&p[p.len() - FOOTER_BYTES..]);
                assert!(restore(&short, limits).is_none(), "{payload} cut at {cut}");
            }
        }
    }

    #[test]
    fn round_trips_and_garbage() {
        let mut l = ListVal::new();
        for e in [
            &b"a"[..],
            b"-5",
            b"x".repeat(20000).as_slice(),
            b"123456789012",
        ] {
            l.push(End::Right, e);
        }
        l.settle(Limits::default().list_max_listpack_size);
        let mut h = HashVal::new();
        h.set(b"f", b"1", Limits::default());
        h.set(b"g", &b"v".repeat(100), Limits::default());
        let limits = Limits::default();
        let mut ints = SetVal::default();
        let mut strs = SetVal::default();
        for i in 0..300i64 {
            ints.add(i.to_string().as_bytes(), &limits);
            strs.add(format!("m{i}").as_bytes(), &limits);
        }
        let mut small = SetVal::default();
        small.add(b"a", &limits);
        small.add(b"7", &limits);
        let big_z: Vec<(f64, SmallBytes)> = (0..200)
            .map(|i| {
                (
                    f64::from(i) / 3.0,
                    SmallBytes::new(format!("z{i:04}").as_bytes()),
                )
            })
            .collect();
        let small_z = vec![(-0.5, SmallBytes::new(b"a")), (2.0, SmallBytes::new(b"b"))];
        for v in [
            Value::List(Box::new(l)),
            Value::Hash(Box::new(h)),
            Value::Set(Box::new(ints)),
            Value::Set(Box::new(strs)),
            Value::Set(Box::new(small)),
            Value::ZSet(Box::new(ZSetVal::from_sorted(big_z, &limits))),
            Value::ZSet(Box::new(ZSetVal::from_sorted(small_z, &limits))),
        ] {
            let p = dump(&v).unwrap();
            assert!(verify(&p));
            let back = restore(&p, Limits::default()).unwrap();
            assert!(back == v, "round trip");
            assert_eq!(back.encoding(), v.encoding());
            let mut bad = p.clone();
            bad[1] ^= 1;
            assert!(!verify(&bad));
        }
        let mut seed = 7u64;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            let _ = verify(&bytes);
            let _ = restore(&bytes, Limits::default());
        }
    }

    /// LZF-compressed strings (as Valkey writes long repetitive values) decode.
    #[test]
    fn lzf() {
        // "aaaaaaaaaa": a literal 'a' then a back reference of length 9 at distance 1.
        let compressed = [0x00, b'a', 0xe0, 0x00, 0x00];
        assert_eq!(lzf_decompress(&compressed, 10).unwrap(), b"aaaaaaaaaa");
        assert!(lzf_decompress(&compressed, 11).is_none());
        assert!(lzf_decompress(&[0xe0, 0x05, 0x00], 5).is_none());
    }
}
