//! DUMP/RESTORE payloads in Valkey's RDB object format (the subset corekey writes so far).
//!
//! A payload is `<type byte><object><RDB version, 2 bytes LE><CRC-64/Jones of all before, 8
//! bytes LE>`, exactly what Valkey's `createDumpPayload` builds, so Valkey and Redis accept
//! what we DUMP. We write each type in its plain, version-independent RDB form: strings as
//! integers (when short and canonical) or raw bytes, lists as `RDB_TYPE_LIST`, hashes as
//! `RDB_TYPE_HASH`, sets as `RDB_TYPE_SET`, sorted sets as `RDB_TYPE_ZSET_2`. We read those
//! forms plus LZF-compressed strings. Not yet read or written: the compact encodings Valkey
//! itself writes for small collections (listpack, quicklist, intset), streams and modules —
//! the persistence work completes this module; RESTORE answers "Bad data format" for them.
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
use super::set::SetVal;
use super::value::{StrVal, Value};
use super::zset::ZSetVal;
use super::SmallBytes;

/// The RDB version written (Valkey 8's `RDB_VERSION`); payloads of later versions are refused.
pub const RDB_VERSION: u16 = 11;

const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_HASH: u8 = 4;
/// Sorted set with binary (little-endian f64) scores, as Valkey writes since RDB 8.
const TYPE_ZSET_2: u8 = 5;

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
                e.with_bytes(|b| put_string(&mut out, b));
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
            let mut l = ListVal::new();
            for _ in 0..n {
                l.push(End::Right, &r.string()?);
            }
            if l.is_empty() {
                return None;
            }
            l.settle(limits.list_max_listpack_size);
            Value::List(Box::new(l))
        }
        TYPE_HASH => {
            let n = r.len()?;
            let mut h = HashVal::new();
            for _ in 0..n {
                let f = r.string()?;
                let v = r.string()?;
                h.set(&f, &v, limits);
            }
            if h.is_empty() {
                return None;
            }
            Value::Hash(Box::new(h))
        }
        TYPE_SET => {
            let n = r.len()?;
            let mut members = Vec::with_capacity(n.min(body.len()));
            for _ in 0..n {
                members.push(r.string()?);
            }
            let first = members.first()?;
            let mut set = SetVal::create(first, members.len(), &limits);
            for m in &members {
                // A member twice is a corrupt payload, as in Valkey's loader.
                if !set.add(m, &limits) {
                    return None;
                }
            }
            Value::Set(Box::new(set))
        }
        TYPE_ZSET_2 => {
            let n = r.len()?;
            let mut items: Vec<(f64, SmallBytes)> = Vec::with_capacity(n.min(body.len()));
            for _ in 0..n {
                let member = r.string()?;
                let score = f64::from_le_bytes(r.bytes(8)?.try_into().ok()?);
                if score.is_nan() {
                    return None;
                }
                items.push((score, SmallBytes::new(&member)));
            }
            if items.is_empty() {
                return None;
            }
            // Members must be distinct.
            let mut seen = std::collections::HashSet::with_capacity(items.len());
            if !items.iter().all(|(_, m)| seen.insert(&m[..])) {
                return None;
            }
            drop(seen);
            items.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1[..].cmp(&b.1[..])));
            Value::ZSet(Box::new(ZSetVal::from_sorted(items, &limits)))
        }
        _ => return None,
    };
    // Every byte of the object must have been used.
    (r.pos == body.len()).then_some(value)
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

    /// Sets (intset, listpack and hashtable encodings) and sorted sets (listpack and skiplist)
    /// round-trip with the same members and scores; a member twice is refused.
    #[test]
    fn set_and_zset_round_trips() {
        let limits = Limits::default();
        let members = |v: &Value| -> Vec<Vec<u8>> {
            let mut m: Vec<Vec<u8>> = match v {
                Value::Set(s) => s.iter().map(|e| e.to_small().to_vec()).collect(),
                Value::ZSet(z) => z
                    .iter()
                    .map(|(m, s)| [m, &s.to_le_bytes()[..]].concat())
                    .collect(),
                _ => unreachable!(),
            };
            m.sort();
            m
        };
        for (n, ints) in [(3, true), (3, false), (600, true), (600, false)] {
            let mut set = SetVal::create(b"1", 1, &limits);
            let mut items = Vec::new();
            for i in 0..n {
                let m = if ints {
                    format!("{i}")
                } else {
                    format!("m{i}")
                };
                set.add(m.as_bytes(), &limits);
                items.push((i as f64 * 0.5 - 3.0, SmallBytes::new(m.as_bytes())));
            }
            items.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1[..].cmp(&b.1[..])));
            let z = ZSetVal::from_sorted(items, &limits);
            for v in [Value::Set(Box::new(set.clone())), Value::ZSet(Box::new(z))] {
                let p = dump(&v).unwrap();
                assert!(verify(&p));
                let back = restore(&p, limits).unwrap();
                assert_eq!(back.type_name(), v.type_name());
                assert_eq!(back.encoding(), v.encoding());
                assert_eq!(members(&back), members(&v));
            }
        }
        // SADD-free duplicate: "a" twice.
        let mut p = vec![TYPE_SET, 2, 1, b'a', 1, b'a'];
        p.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        assert!(verify(&p));
        assert!(restore(&p, limits).is_none());
    }

    /// Lists and hashes round-trip; a corrupted byte fails the checksum; truncated and
    /// trailing bytes are refused; random bytes never panic.
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
        for v in [Value::List(Box::new(l)), Value::Hash(Box::new(h))] {
            let p = dump(&v).unwrap();
            assert!(verify(&p));
            assert!(restore(&p, Limits::default()).unwrap() == v, "round trip");
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
