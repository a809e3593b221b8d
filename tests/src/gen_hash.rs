//! The hash family's part of the differential test: a seeded generator of hash commands mixed
//! with string and generic ones on a small shared key space, and the judgement of the hash
//! replies that may legitimately differ in bytes from the reference server's.
//!
//! The generator. Keys are a subset of [`crate::gen::KEYS`] (so the runner's state check covers
//! their types and TTLs) on both shards of a 2-core node; fields come from a small pool so
//! commands meet each other's fields. Values mix integers (canonical or not), floats, words,
//! binary and empty strings, and strings around the 64-byte listpack limit; now and then a
//! bulk HSET brings hundreds of distinct fields so hashes pass the 512-entry limit. About one
//! command in eight is invalid on purpose.
//! HELLO switches the connections between RESP2 and RESP3 so both reply shapes are compared.
//!
//! Left out on purpose, because redis-server 7.0 (the reference) differs from Valkey 8 there
//! and corekey follows Valkey 8:
//! - HSCAN's NOVALUES (added in Redis 7.4 / Valkey 8: 7.0 answers a syntax error) and NOSCORES
//!   (Valkey 8 names the option in its error, 7.0 answers a syntax error);
//! - an HSET of more than 512 pairs that repeat fields: Valkey 8 converts to a hashtable by
//!   the pair count before writing (`hashTypeTryConversion` guesses the fields are distinct),
//!   7.0 only by the number of fields that result, so the encodings would differ;
//! - negative, empty and space-led HSCAN cursors: Valkey 8's `string2ull` refuses "-1" and
//!   "" and accepts " 1"; 7.0's `strtoull` check wraps "-1" around to a huge cursor, reads ""
//!   as 0 and refuses " 1".
//!
//! Huge negative HRANDFIELD counts are never sent either: a server that accepts them builds an
//! endless reply.
//!
//! The judgement ([`HashSteps::check`], when the bytes differ):
//! - HGETALL, HKEYS, HVALS: the same pairs or elements in any order, and only when the hash is
//!   hashtable-encoded on both servers (a listpack's order is insertion order, compared exactly);
//! - HSCAN: both iterations are run to cursor 0 and must have found the same pairs; again only
//!   for hashtable-encoded hashes (a listpack comes back whole, compared exactly);
//! - HRANDFIELD: the same reply shape (types and lengths, so RESP2/RESP3 nesting is checked), and
//!   on each server its own picks are fields of the hash with their values (HMGET), distinct
//!   for a positive count, as many as the count and the hash size allow (HLEN).

use crate::client::{show_command, Conn, Frame, Reply};
use crate::diff::{Pair, Planned, Side, StepSource};
use crate::gen::{SplitMix64, Step};
use std::collections::BTreeSet;

/// The keys: a subset of the string generator's key space, on both shards.
pub const KEYS: &[&[u8]] = &[
    b"a",
    b"b",
    b"c",
    b"foo",
    b"{t}a",
    b"{t}b",
    b"user:1000",
    b"bin\x00\xff",
    b"",
    b"k*",
];

/// The usual fields: short, colliding, some binary, empty, numeric or glob-like.
const FIELDS: &[&[u8]] = &[
    b"f1",
    b"f2",
    b"f3",
    b"f4",
    b"f5",
    b"name",
    b"age",
    b"",
    b"1",
    b"-1",
    b"\x00\xff",
    b"sp ace",
    b"f*",
    b"F1",
    b"b7",
];

const INTEGERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "7",
    "42",
    "-100",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775806",
    "9223372036854775808",
    "01",
    "+1",
    " 1",
    "-0",
    "1.0",
    "",
    "abc",
];

const FLOATS: &[&str] = &[
    "1.5", "-0.25", "1e3", "inf", "-inf", "+inf", "nan", "0.1", "3.0e2", "1e308", "-1e308",
    "1e4900", "0", "-0", "10", "1.", ".5", "1e", "abc", "", " 1", "0x10", "5.0e-3",
];

const WORDS: &[&[u8]] = &[
    b"",
    b"v",
    b"hello",
    b"hello world",
    b"\x00\x01\xff",
    b"abc\r\ndef",
    b"*",
    b"OK",
];

/// MATCH patterns for HSCAN.
const PATTERNS: &[&[u8]] = &[
    b"*", b"f*", b"f?", b"[a-f]*", b"b1*", b"*e*", b"\\*", b"[^f]*", b"", b"F1", b"b[0-9]",
];

/// What a step is about, with relative weights.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Hset,
    Hmset,
    Hsetnx,
    BulkHset,
    Hget,
    Hmget,
    Whole,
    Hdel,
    Count,
    Hincrby,
    Hincrbyfloat,
    Hscan,
    Hrandfield,
    Set,
    Get,
    Del,
    Type,
    Expire,
    Rename,
    Copy,
    Encoding,
    Hello,
    Select,
    Flush,
    WrongArity,
}

const KINDS: &[(Kind, u64)] = &[
    (Kind::Hset, 70),
    (Kind::Hmset, 10),
    (Kind::Hsetnx, 15),
    (Kind::BulkHset, 4),
    (Kind::Hget, 30),
    (Kind::Hmget, 15),
    (Kind::Whole, 35),
    (Kind::Hdel, 35),
    (Kind::Count, 25),
    (Kind::Hincrby, 25),
    (Kind::Hincrbyfloat, 20),
    (Kind::Hscan, 25),
    (Kind::Hrandfield, 30),
    (Kind::Set, 15),
    (Kind::Get, 6),
    (Kind::Del, 8),
    (Kind::Type, 8),
    (Kind::Expire, 8),
    (Kind::Rename, 8),
    (Kind::Copy, 8),
    (Kind::Encoding, 20),
    (Kind::Hello, 6),
    (Kind::Select, 5),
    (Kind::Flush, 1),
    (Kind::WrongArity, 15),
];

/// The hash family's generator for one seed.
pub struct HashSteps {
    rng: SplitMix64,
}

impl HashSteps {
    pub fn new(seed: u64) -> HashSteps {
        // A different stream from the string generator's for the same seed.
        HashSteps {
            rng: SplitMix64::new(seed ^ 0x4841_5348_4841_5348),
        }
    }

    fn key(&mut self) -> Vec<u8> {
        self.rng.pick(KEYS).to_vec()
    }

    fn text(&mut self, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len).map(|_| *self.rng.pick(ALPHABET)).collect()
    }

    fn field(&mut self) -> Vec<u8> {
        match self.rng.below(20) {
            0 => {
                // Around the listpack value limit.
                let len = *self.rng.pick(&[63usize, 64, 65]);
                vec![b'F'; len]
            }
            1 | 2 => format!("b{}", self.rng.below(600)).into_bytes(),
            _ => self.rng.pick(FIELDS).to_vec(),
        }
    }

    fn value(&mut self) -> Vec<u8> {
        match self.rng.below(12) {
            0..=3 => self.rng.pick(INTEGERS).as_bytes().to_vec(),
            4 => self.rng.pick(FLOATS).as_bytes().to_vec(),
            5..=7 => self.rng.pick(WORDS).to_vec(),
            8 => {
                let len = *self.rng.pick(&[63usize, 64, 65, 100]);
                self.text(len)
            }
            9 => (0..self.rng.range(1, 12))
                .map(|_| self.rng.below(256) as u8)
                .collect(),
            _ => {
                let len = self.rng.range(1, 10) as usize;
                self.text(len)
            }
        }
    }

    /// An integer argument: usually small, sometimes extreme or invalid.
    fn int_arg(&mut self, lo: i64, hi: i64) -> Vec<u8> {
        if self.rng.chance(80) {
            self.rng.range(lo, hi).to_string().into_bytes()
        } else {
            self.rng.pick(INTEGERS).as_bytes().to_vec()
        }
    }

    /// A word in a random case.
    fn word(&mut self, w: &str) -> Vec<u8> {
        match self.rng.below(3) {
            0 => w.to_ascii_lowercase().into_bytes(),
            1 => w
                .bytes()
                .enumerate()
                .map(|(i, b)| {
                    if i % 2 == 0 {
                        b.to_ascii_lowercase()
                    } else {
                        b
                    }
                })
                .collect(),
            _ => w.as_bytes().to_vec(),
        }
    }

    fn name(&mut self, n: &str) -> Vec<u8> {
        if self.rng.chance(15) {
            self.word(n)
        } else {
            n.as_bytes().to_vec()
        }
    }

    fn with_fields(&mut self, name: &str, lo: i64, hi: i64) -> Vec<Vec<u8>> {
        let mut c = vec![self.name(name), self.key()];
        for _ in 0..self.rng.range(lo, hi) {
            c.push(self.field());
        }
        c
    }

    fn hset(&mut self, name: &str) -> Vec<Vec<u8>> {
        let mut c = vec![self.name(name), self.key()];
        for _ in 0..self.rng.range(1, 4) {
            c.push(self.field());
            c.push(self.value());
        }
        if self.rng.chance(5) {
            c.pop(); // an odd number of arguments
        }
        c
    }

    /// An HSET of hundreds of distinct fields `b0…` (past 512 in one call or over a few calls;
    /// never a repeated field past 512 pairs, see the module notes).
    fn bulk_hset(&mut self) -> Vec<Vec<u8>> {
        let mut c = vec![b"HSET".to_vec(), self.key()];
        let start = self.rng.below(300);
        for i in start..start + self.rng.below(300) + 250 {
            c.push(format!("b{i}").into_bytes());
            c.push(self.rng.below(1000).to_string().into_bytes());
        }
        c
    }

    fn hscan(&mut self) -> Vec<Vec<u8>> {
        let mut c = vec![self.name("HSCAN"), self.key()];
        if self.rng.chance(15) {
            // Invalid on purpose: the errors are compared exactly.
            let bad: &[&[&str]] = &[
                &["abc"],
                &["18446744073709551616"],
                &["1.5"],
                &["1x"],
                &["0", "COUNT", "0"],
                &["0", "COUNT", "-3"],
                &["0", "COUNT", "x"],
                &["0", "MATCH"],
                &["0", "TYPE", "hash"],
                &["0", "FOO"],
                &["0", "COUNT"],
            ];
            c.extend(self.rng.pick(bad).iter().map(|a| a.as_bytes().to_vec()));
            return c;
        }
        c.push(b"0".to_vec());
        let mut opts: Vec<Vec<Vec<u8>>> = Vec::new();
        if self.rng.chance(50) {
            opts.push(vec![self.word("MATCH"), self.rng.pick(PATTERNS).to_vec()]);
        }
        if self.rng.chance(50) {
            let n = *self.rng.pick(&[1u32, 2, 7, 10, 100, 1000]);
            opts.push(vec![self.word("COUNT"), n.to_string().into_bytes()]);
        }
        self.rng.shuffle(&mut opts);
        c.extend(opts.into_iter().flatten());
        c
    }

    fn hrandfield(&mut self) -> Vec<Vec<u8>> {
        let mut c = vec![self.name("HRANDFIELD"), self.key()];
        match self.rng.below(20) {
            0..=3 => return c,
            4 => {
                let bad = *self.rng.pick(&[
                    "abc",
                    "1.5",
                    "-9223372036854775808",
                    "9223372036854775808",
                    "",
                ]);
                c.push(bad.as_bytes().to_vec());
                return c;
            }
            5 => {
                // Out of WITHVALUES's range, or a bad option.
                let (count, opt) = *self.rng.pick(&[
                    ("4611686018427387904", "WITHVALUES"),
                    ("-4611686018427387904", "WITHVALUES"),
                    ("4611686018427387903", "WITHVALUES"),
                    ("9223372036854775807", "WITHVALUES"),
                    ("3", "WITHVALUE"),
                    ("3", "COUNT"),
                ]);
                c.push(count.as_bytes().to_vec());
                c.push(self.word(opt));
                return c;
            }
            6 => {
                c.push(b"2".to_vec());
                c.push(self.word("WITHVALUES"));
                c.push(b"extra".to_vec());
                return c;
            }
            _ => {}
        }
        let count = match self.rng.below(10) {
            0..=5 => self.rng.range(-6, 6),
            6 => *self
                .rng
                .pick(&[100i64, 511, 600, 1000, 9_223_372_036_854_775_807]),
            7 => *self.rng.pick(&[-100i64, -600, -1000]),
            _ => *self.rng.pick(&[0i64, 1, -1]),
        };
        c.push(count.to_string().into_bytes());
        if self.rng.chance(50) && count.unsigned_abs() <= 4_611_686_018_427_387_903 {
            c.push(self.word("WITHVALUES"));
        }
        c
    }

    fn generic(&mut self, kind: Kind) -> Vec<Vec<u8>> {
        match kind {
            Kind::Set => vec![self.name("SET"), self.key(), self.value()],
            Kind::Get => vec![self.name("GET"), self.key()],
            Kind::Del => {
                let mut c = vec![self.name("DEL"), self.key()];
                if self.rng.chance(30) {
                    c.push(self.key());
                }
                c
            }
            Kind::Type => {
                let name = *self.rng.pick(&["TYPE", "EXISTS", "TTL"]);
                vec![self.name(name), self.key()]
            }
            Kind::Expire => {
                if self.rng.chance(30) {
                    vec![self.name("PERSIST"), self.key()]
                } else {
                    let secs = self.rng.range(1000, 100_000).to_string().into_bytes();
                    vec![self.name("EXPIRE"), self.key(), secs]
                }
            }
            Kind::Rename => {
                let name = if self.rng.chance(60) {
                    "RENAME"
                } else {
                    "RENAMENX"
                };
                vec![self.name(name), self.key(), self.key()]
            }
            Kind::Copy => {
                let mut c = vec![self.name("COPY"), self.key(), self.key()];
                if self.rng.chance(30) {
                    c.push(self.word("DB"));
                    c.push(self.rng.range(0, 3).to_string().into_bytes());
                }
                if self.rng.chance(40) {
                    c.push(self.word("REPLACE"));
                }
                c
            }
            Kind::Encoding => vec![self.name("OBJECT"), self.word("ENCODING"), self.key()],
            Kind::Hello => {
                let v = if self.rng.chance(50) { "3" } else { "2" };
                vec![self.name("HELLO"), v.as_bytes().to_vec()]
            }
            Kind::Select => {
                let db = *self.rng.pick(&["0", "0", "0", "1", "2"]);
                vec![self.name("SELECT"), db.as_bytes().to_vec()]
            }
            Kind::Flush => vec![self.name("FLUSHDB")],
            _ => self.wrong_arity(),
        }
    }

    fn wrong_arity(&mut self) -> Vec<Vec<u8>> {
        const CASES: &[&[&str]] = &[
            &["HSET", "a"],
            &["HSET", "a", "f"],
            &["HMSET", "a", "f"],
            &["HSETNX", "a", "f"],
            &["HSETNX", "a", "f", "v", "w"],
            &["HGET", "a"],
            &["HGET", "a", "f", "g"],
            &["HMGET", "a"],
            &["HGETALL"],
            &["HGETALL", "a", "b"],
            &["HKEYS"],
            &["HVALS", "a", "b"],
            &["HDEL", "a"],
            &["HLEN"],
            &["HEXISTS", "a"],
            &["HSTRLEN", "a", "f", "g"],
            &["HINCRBY", "a", "f"],
            &["HINCRBYFLOAT", "a", "f", "1", "2"],
            &["HSCAN", "a"],
            &["HRANDFIELD"],
        ];
        let case = *self.rng.pick(CASES);
        let mut c: Vec<Vec<u8>> = case.iter().map(|a| a.as_bytes().to_vec()).collect();
        c[0] = self.name(case[0]);
        c
    }
}

impl HashSteps {
    fn step(&mut self) -> Step {
        let total: u64 = KINDS.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.below(total);
        let kind = KINDS
            .iter()
            .find(|(_, w)| {
                let hit = roll < *w;
                roll = roll.saturating_sub(*w);
                hit
            })
            .map_or(Kind::Hget, |(k, _)| *k);
        let cmd = match kind {
            Kind::Hset => self.hset("HSET"),
            Kind::Hmset => self.hset("HMSET"),
            Kind::Hsetnx => vec![self.name("HSETNX"), self.key(), self.field(), self.value()],
            Kind::BulkHset => self.bulk_hset(),
            Kind::Hget => vec![self.name("HGET"), self.key(), self.field()],
            Kind::Hmget => self.with_fields("HMGET", 1, 5),
            Kind::Whole => {
                let name = *self.rng.pick(&["HGETALL", "HGETALL", "HKEYS", "HVALS"]);
                vec![self.name(name), self.key()]
            }
            Kind::Hdel => self.with_fields("HDEL", 1, 4),
            Kind::Count => {
                if self.rng.chance(40) {
                    vec![self.name("HLEN"), self.key()]
                } else {
                    let name = *self.rng.pick(&["HEXISTS", "HSTRLEN"]);
                    vec![self.name(name), self.key(), self.field()]
                }
            }
            Kind::Hincrby => vec![
                self.name("HINCRBY"),
                self.key(),
                self.field(),
                self.int_arg(-100, 100),
            ],
            Kind::Hincrbyfloat => {
                let by = if self.rng.chance(70) {
                    format!("{}.{}", self.rng.range(-50, 50), self.rng.below(100)).into_bytes()
                } else {
                    self.rng.pick(FLOATS).as_bytes().to_vec()
                };
                vec![self.name("HINCRBYFLOAT"), self.key(), self.field(), by]
            }
            Kind::Hscan => self.hscan(),
            Kind::Hrandfield => self.hrandfield(),
            other => self.generic(other),
        };
        Step::Command(cmd)
    }
}

impl StepSource for HashSteps {
    fn next_planned(&mut self) -> Planned {
        Planned::Step(self.step())
    }

    fn check(
        &mut self,
        cmd: &[Vec<u8>],
        (ra, rb): (&Frame, &Frame),
        a: Pair,
        b: Pair,
    ) -> Option<Result<(), String>> {
        let name = String::from_utf8_lossy(cmd.first()?).to_ascii_uppercase();
        match name.as_str() {
            "HGETALL" | "HKEYS" | "HVALS" => Some(check_whole(cmd, ra, rb, a, b)),
            "HSCAN" => Some(check_scan(cmd, ra, rb, a, b)),
            "HRANDFIELD" => Some(check_random(cmd, ra, rb, a, b)),
            _ => None,
        }
    }
}

fn call(c: &mut Conn, side: Side, cmd: &[Vec<u8>]) -> Result<Frame, String> {
    c.try_call(cmd)
        .map_err(|e| format!("{}: no reply to {}: {e}", side.name, show_command(cmd)))
}

/// The bulk strings of an array or map reply, flattened (a map's keys and values alternate).
fn flat(reply: &Reply) -> Option<Vec<Vec<u8>>> {
    let items: Vec<&Reply> = match reply {
        Reply::Map(m) => m.iter().flat_map(|(k, v)| [k, v]).collect(),
        Reply::Array(v) => v.iter().collect(),
        _ => return None,
    };
    items
        .iter()
        .map(|r| r.as_bytes().map(<[u8]>::to_vec))
        .collect()
}

/// Fails unless both servers hold `key` as a hashtable-encoded hash: only then may whole-hash
/// replies come in different orders.
fn both_hashtable(key: &[u8], (ca, a): Pair, (cb, b): Pair) -> Result<(), String> {
    let cmd = [b"OBJECT".to_vec(), b"ENCODING".to_vec(), key.to_vec()];
    for (c, side) in [(ca, a), (cb, b)] {
        let r = call(c, side, &cmd)?;
        if r.reply.as_bytes() != Some(b"hashtable") {
            return Err(format!(
                "the replies differ but {} holds the hash as \"{r}\" (only a hashtable may reorder)",
                side.name
            ));
        }
    }
    Ok(())
}

/// HGETALL, HKEYS, HVALS: the same multiset of pairs (or elements) in the same reply type.
fn check_whole(cmd: &[Vec<u8>], ra: &Frame, rb: &Frame, a: Pair, b: Pair) -> Result<(), String> {
    let pairs = String::from_utf8_lossy(&cmd[0]).eq_ignore_ascii_case("HGETALL");
    let group = |r: &Reply| -> Option<Vec<Vec<Vec<u8>>>> {
        let items = flat(r)?;
        let mut groups: Vec<Vec<Vec<u8>>> = if pairs {
            items.chunks(2).map(<[Vec<u8>]>::to_vec).collect()
        } else {
            items.into_iter().map(|i| vec![i]).collect()
        };
        groups.sort();
        Some(groups)
    };
    let same_kind = std::mem::discriminant(&ra.reply) == std::mem::discriminant(&rb.reply);
    match (group(&ra.reply), group(&rb.reply)) {
        (Some(x), Some(y)) if same_kind && x == y => both_hashtable(&cmd[1], a, b),
        _ => Err("the replies hold different elements".into()),
    }
}

/// What one full HSCAN iteration found: the set of items (pairs, or fields with NOVALUES).
fn scan_rest(
    (c, side): Pair,
    cmd: &[Vec<u8>],
    first: &Frame,
) -> Result<BTreeSet<Vec<Vec<u8>>>, String> {
    let novalues = cmd
        .iter()
        .skip(3)
        .any(|a| a.eq_ignore_ascii_case(b"NOVALUES"));
    let mut found = BTreeSet::new();
    let mut page = first.clone();
    let mut next = cmd.to_vec();
    for _ in 0..100_000 {
        let (cursor, items) = match page.reply.as_list() {
            Some([Reply::Bulk(cursor), items]) => (cursor.clone(), flat(items)),
            _ => return Err(format!("{}: not an HSCAN page: \"{page}\"", side.name)),
        };
        let items = items.ok_or_else(|| format!("{}: not an HSCAN page: \"{page}\"", side.name))?;
        if novalues {
            found.extend(items.into_iter().map(|f| vec![f]));
        } else {
            found.extend(items.chunks(2).map(<[Vec<u8>]>::to_vec));
        }
        if cursor == b"0" {
            return Ok(found);
        }
        next[2] = cursor;
        page = call(c, side, &next)?;
    }
    Err(format!(
        "{}: HSCAN did not come back to cursor 0",
        side.name
    ))
}

/// HSCAN: both full iterations find the same items, and the hash is a hashtable on both.
fn check_scan(cmd: &[Vec<u8>], ra: &Frame, rb: &Frame, a: Pair, b: Pair) -> Result<(), String> {
    let (ca, sa) = a;
    let (cb, sb) = b;
    let x = scan_rest((&mut *ca, sa), cmd, ra)?;
    let y = scan_rest((&mut *cb, sb), cmd, rb)?;
    if x != y {
        return Err(format!(
            "full iterations differ: {} items on {}, {} on {}",
            x.len(),
            sa.name,
            y.len(),
            sb.name
        ));
    }
    both_hashtable(&cmd[1], (ca, sa), (cb, sb))
}

/// The types and lengths of a reply, not its contents.
fn shape(r: &Reply) -> String {
    match r {
        Reply::Array(v) => format!("[{}]", v.iter().map(shape).collect::<Vec<_>>().join(",")),
        Reply::Bulk(_) => "b".into(),
        other => format!("{other:?}"),
    }
}

/// HRANDFIELD: the same shape on both; on each server, its own picks are fields of the hash
/// with their values, distinct for a positive count, as many as the count and size allow.
fn check_random(cmd: &[Vec<u8>], ra: &Frame, rb: &Frame, a: Pair, b: Pair) -> Result<(), String> {
    if shape(&ra.reply) != shape(&rb.reply) {
        return Err("the replies have different shapes".into());
    }
    let count: Option<i64> = cmd
        .get(2)
        .and_then(|c| std::str::from_utf8(c).ok()?.parse().ok());
    let withvalues = cmd.len() == 4;
    for (reply, (c, side)) in [(&ra.reply, a), (&rb.reply, b)] {
        // (field, value if WITHVALUES) picks, from a bulk, a flat array or nested pairs.
        let picks: Vec<(Vec<u8>, Option<Vec<u8>>)> = match reply {
            Reply::Bulk(f) => vec![(f.clone(), None)],
            Reply::Array(v) if v.iter().all(|p| matches!(p, Reply::Array(_))) && !v.is_empty() => v
                .iter()
                .map(|p| match flat(p).as_deref() {
                    Some([f, val]) => Ok((f.clone(), Some(val.clone()))),
                    _ => Err(format!("{}: a pick is not a pair", side.name)),
                })
                .collect::<Result<_, _>>()?,
            r => {
                let items = flat(r).ok_or("not an HRANDFIELD reply")?;
                if withvalues {
                    items
                        .chunks(2)
                        .map(|p| (p[0].clone(), p.get(1).cloned()))
                        .collect()
                } else {
                    items.into_iter().map(|f| (f, None)).collect()
                }
            }
        };
        let mut hmget = vec![b"HMGET".to_vec(), cmd[1].clone()];
        hmget.extend(picks.iter().map(|(f, _)| f.clone()));
        let stored = if picks.is_empty() {
            Vec::new()
        } else {
            call(c, side, &hmget)?
                .reply
                .as_list()
                .map(<[Reply]>::to_vec)
                .ok_or_else(|| format!("{}: HMGET failed", side.name))?
        };
        for ((_, v), s) in picks.iter().zip(&stored) {
            match (s.as_bytes(), v) {
                (None, _) => {
                    return Err(format!(
                        "{}: picked a field that is not in the hash",
                        side.name
                    ))
                }
                (Some(s), Some(v)) if s != v.as_slice() => {
                    return Err(format!("{}: picked a field with a wrong value", side.name))
                }
                _ => {}
            }
        }
        if let Some(n) = count.filter(|&n| n > 0) {
            let distinct: BTreeSet<&Vec<u8>> = picks.iter().map(|(f, _)| f).collect();
            if distinct.len() != picks.len() {
                return Err(format!(
                    "{}: repeated a field for a positive count",
                    side.name
                ));
            }
            let len = call(c, side, &[b"HLEN".to_vec(), cmd[1].clone()])?
                .reply
                .as_int()
                .unwrap_or(-1);
            if picks.len() as i64 != n.min(len) {
                return Err(format!(
                    "{}: {} picks for count {n} from {len} fields",
                    side.name,
                    picks.len()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::key_shard;

    /// The keys are among the string generator's (whose state check covers them) and lie on
    /// both shards of a 2-core node.
    #[test]
    fn keys_are_shared_and_on_both_shards() {
        for k in KEYS {
            assert!(crate::gen::KEYS.contains(k), "{k:?}");
        }
        let shards: BTreeSet<u16> = KEYS.iter().map(|k| key_shard(k, 2)).collect();
        assert_eq!(shards.len(), 2);
    }

    /// The same seed gives the same steps, and a long run sends every hash command, a bulk
    /// HSET past the entry limit, both protocols, and never a case excluded above.
    #[test]
    fn deterministic_and_covering() {
        let run = |seed| {
            let mut g = HashSteps::new(seed);
            (0..300).map(|_| g.step()).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        let mut g = HashSteps::new(1);
        let mut seen = BTreeSet::new();
        let mut bulk = false;
        for _ in 0..10_000 {
            let Step::Command(c) = g.step() else {
                panic!("only commands")
            };
            let name = String::from_utf8_lossy(&c[0]).to_ascii_uppercase();
            bulk |= name == "HSET" && c.len() > 2 + 2 * 512;
            if name == "HSCAN" {
                assert!(c.iter().all(|a| !a.eq_ignore_ascii_case(b"NOVALUES")
                    && !a.eq_ignore_ascii_case(b"NOSCORES")));
                let cursor = c.get(2).map_or(&b"0"[..], Vec::as_slice);
                assert!(
                    !cursor.is_empty() && !cursor.starts_with(b"-") && !cursor.starts_with(b" ")
                );
            }
            if name == "HELLO" {
                seen.insert(format!("HELLO {}", String::from_utf8_lossy(&c[1])));
            }
            seen.insert(name);
        }
        assert!(bulk, "no HSET past 512 pairs");
        for name in [
            "HSET",
            "HMSET",
            "HSETNX",
            "HGET",
            "HMGET",
            "HGETALL",
            "HKEYS",
            "HVALS",
            "HDEL",
            "HLEN",
            "HEXISTS",
            "HSTRLEN",
            "HINCRBY",
            "HINCRBYFLOAT",
            "HSCAN",
            "HRANDFIELD",
            "SET",
            "GET",
            "DEL",
            "TYPE",
            "EXPIRE",
            "RENAME",
            "COPY",
            "OBJECT",
            "HELLO 2",
            "HELLO 3",
        ] {
            assert!(seen.contains(name), "{name} never generated");
        }
    }

    /// Reply shapes tell RESP3 nested pairs from RESP2 flat arrays.
    #[test]
    fn shapes() {
        let pair = Reply::Array(vec![Reply::Bulk(b"f".to_vec()), Reply::Bulk(b"v".to_vec())]);
        let nested = Reply::Array(vec![pair.clone()]);
        let flat_pair = pair;
        assert_ne!(shape(&nested), shape(&flat_pair));
        assert_eq!(
            shape(&Reply::Bulk(b"x".to_vec())),
            shape(&Reply::Bulk(b"y".to_vec()))
        );
    }
}
