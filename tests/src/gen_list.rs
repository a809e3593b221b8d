//! The differential generator of the list family: seeded sequences of list commands, blocking
//! ones included, mixed with a few string and generic commands on a small key space, so that
//! lists meet strings (WRONGTYPE), each other across shards (LMOVE, RPOPLPUSH, LMPOP and the
//! blocking forms on keys of both shards of a 2-core node, and on keys sharing a hash tag) and
//! both encodings: elements are small integers, integers at the edges of what a listpack
//! stores as integers, short words, strings around the listpack's 64-byte and 4096-byte
//! length classes, now and then one longer than a quicklist node (8 KiB, a "plain" node), and
//! bulk pushes of dozens of 100-byte elements carry lists past `list-max-listpack-size` and,
//! popped or trimmed back, below half of it. About one command in seven is invalid on
//! purpose (bad counts, indexes, ranks, words and timeouts, wrong arity), and option words
//! come in odd cases.
//!
//! Blocking commands never wait long: a valid timeout is always a small fraction of a second,
//! never 0, so on empty keys they time out at once and answer nil (the reference server
//! checks its blocked clients' timeouts once per event-loop tick, which is why the list tests
//! start it with a higher `hz`).
//!
//! The keys are a subset of [`crate::gen::KEYS`], so the runner's state check (LRANGE of every
//! key, TYPE and PTTL) covers them.

use crate::diff::{Planned, StepSource};
use crate::gen::{SplitMix64, Step};

/// The key space: on both shards of a 2-core node; `{t}a`, `{t}b`, `{t}c` share one slot.
pub const KEYS: &[&[u8]] = &[
    b"a",
    b"b",
    b"c",
    b"foo",
    b"n",
    b"long",
    b"{t}a",
    b"{t}b",
    b"{t}c",
    b"{u}1",
    b"bin\x00\xff",
    b"k*",
];

/// What the state check reads each key with (see `StepSource::state_reads`).
pub const STATE_READS: &[&str] = &["TYPE", "PTTL", "LRANGE 0 -1"];

/// Integers at the edges of a listpack's integer encodings, and strings that look like
/// integers but are not stored as ones.
const EDGE_ELEMENTS: &[&str] = &[
    "0",
    "-1",
    "127",
    "128",
    "-4096",
    "4095",
    "4096",
    "-32769",
    "8388607",
    "-2147483648",
    "2147483648",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "01",
    "-0",
    "+1",
    " 1",
    "1.5",
];

const ODD_ELEMENTS: &[&[u8]] = &[b"", b"\x00", b"a\x00b", b"\xff\xfe", b"a b", b"\r\n"];

/// Words for elements, pivots and LPOS/LREM targets: a small pool so commands meet.
const WORDS: &[&str] = &["a", "b", "c", "x", "hello", "e1", "e2", "e3", "e4", "e5"];

const BAD_NUMBERS: &[&str] = &[
    "x",
    "",
    "1.5",
    " 1",
    "1 ",
    "9223372036854775808",
    "-9223372036854775809",
    "0x1",
];

/// Valid timeouts: short enough that a timed-out command costs little, never 0.
const TIMEOUTS: &[&str] = &["0.01", "0.01", "0.02", ".01", "0.015", "1e-2"];

/// Invalid timeouts. None too large: Valkey 8 (and corekey) answer "timeout is out of range"
/// for one whose milliseconds pass LLONG_MAX (or do once the time now is added:
/// `getTimeoutFromObjectOrReply`), where redis 7.0 casts the overflowing value to a negative
/// integer and answers "timeout is negative" ("1e400", "inf", "9223372036854775807").
const BAD_TIMEOUTS: &[&str] = &[
    "-1", "-0.5", "-1e400", "x", "", "-inf", "nan", "1,5", "0.01s", "0x",
];

/// The generator of one seed.
pub struct ListGenerator {
    rng: SplitMix64,
    /// Whether the connections under test speak RESP3 now (HELLO switches both).
    resp3: bool,
    /// Whether LSET gets indexes outside a C int (see [`ListGenerator::for_valkey`]).
    lset_wide_indexes: bool,
}

impl ListGenerator {
    pub fn new(seed: u64) -> Self {
        ListGenerator {
            // A different stream from the other generators' for the same seed.
            rng: SplitMix64::new(seed ^ 0x4c15_7000_0000_0000),
            resp3: false,
            lset_wide_indexes: true,
        }
    }

    /// The steps of [`ListGenerator::new`] for a run against Valkey 8.0 itself, except that
    /// LSET's index stays within a C int: Valkey 8.0 passes it to `listTypeReplaceAtIndex` as
    /// an `int`, so `LSET k 4294967296 v` overwrites element 0 and `LSET k 9223372036854775807
    /// v` the last one (silent corruption, fixed upstream by redis/redis#15417), where redis
    /// 7.0 and corekey answer "ERR index out of range".
    pub fn for_valkey(seed: u64) -> Self {
        ListGenerator {
            lset_wide_indexes: false,
            ..ListGenerator::new(seed)
        }
    }

    fn key(&mut self) -> Vec<u8> {
        self.rng.pick(KEYS).to_vec()
    }

    fn keys(&mut self, lo: i64, hi: i64) -> Vec<Vec<u8>> {
        let n = self.rng.range(lo, hi);
        (0..n).map(|_| self.key()).collect()
    }

    fn element(&mut self) -> Vec<u8> {
        match self.rng.below(100) {
            0..=29 => self.rng.range(-3, 30).to_string().into_bytes(),
            30..=59 => self.rng.pick(WORDS).as_bytes().to_vec(),
            60..=69 => self.rng.pick(EDGE_ELEMENTS).as_bytes().to_vec(),
            70..=76 => self.rng.pick(ODD_ELEMENTS).to_vec(),
            77..=88 => {
                // Around the 63/64-byte boundary of a listpack's short strings, and 100 bytes.
                let len = *self.rng.pick(&[62usize, 63, 64, 65, 100, 100]);
                self.filler(len)
            }
            89..=97 => {
                // Around the 4095/4096-byte boundary of the 12-bit string length.
                let len = *self.rng.pick(&[1000usize, 4094, 4095, 4096, 4097]);
                self.filler(len)
            }
            _ => {
                // Larger than a whole 8 KiB node: Valkey keeps it in a plain node.
                let len = *self.rng.pick(&[8185usize, 8192, 8193, 9000]);
                self.filler(len)
            }
        }
    }

    /// `len` bytes of one of a few letters (so equal elements come up).
    fn filler(&mut self, len: usize) -> Vec<u8> {
        vec![b'p' + self.rng.below(3) as u8; len]
    }

    /// Dozens of 100-byte elements (and a few small ones), to pass the 8 KiB listpack limit.
    fn bulk_elements(&mut self) -> Vec<Vec<u8>> {
        let n = self.rng.range(20, 160);
        (0..n)
            .map(|i| {
                if self.rng.chance(10) {
                    self.element()
                } else {
                    format!("{:0>100}", i).into_bytes()
                }
            })
            .collect()
    }

    /// An option word in a random case.
    fn word(&mut self, w: &str) -> Vec<u8> {
        match self.rng.below(3) {
            0 => w.to_ascii_lowercase().into_bytes(),
            _ => w.as_bytes().to_vec(),
        }
    }

    /// A command name, now and then in lower case.
    fn name(&mut self, n: &str) -> Vec<u8> {
        if self.rng.chance(15) {
            n.to_ascii_lowercase().into_bytes()
        } else {
            n.as_bytes().to_vec()
        }
    }

    /// A number: one of `choices`, or now and then an invalid one.
    fn number(&mut self, choices: &[i64]) -> Vec<u8> {
        if self.rng.chance(7) {
            self.rng.pick(BAD_NUMBERS).as_bytes().to_vec()
        } else {
            self.rng.pick(choices).to_string().into_bytes()
        }
    }

    /// An index or range end: mostly small, now and then extreme or invalid.
    fn index(&mut self) -> Vec<u8> {
        match self.rng.below(20) {
            0 => self.rng.pick(BAD_NUMBERS).as_bytes().to_vec(),
            1 => self
                .rng
                .pick(&[
                    "9223372036854775807",
                    "-9223372036854775808",
                    "1000",
                    "-1000",
                ])
                .as_bytes()
                .to_vec(),
            _ => self.rng.range(-12, 12).to_string().into_bytes(),
        }
    }

    fn end_word(&mut self) -> Vec<u8> {
        if self.rng.chance(5) {
            self.rng.pick(&["UP", "LEFTT", ""]).as_bytes().to_vec()
        } else {
            let w = *self.rng.pick(&["LEFT", "RIGHT"]);
            self.word(w)
        }
    }

    fn timeout(&mut self) -> Vec<u8> {
        if self.rng.chance(10) {
            self.rng.pick(BAD_TIMEOUTS).as_bytes().to_vec()
        } else {
            self.rng.pick(TIMEOUTS).as_bytes().to_vec()
        }
    }

    /// The next step.
    pub fn next_step(&mut self) -> Step {
        let cmd = match self.rng.below(200) {
            0..=27 => {
                let name = *self.rng.pick(&["LPUSH", "RPUSH"]);
                let mut c = vec![self.name(name), self.key()];
                if self.rng.chance(8) {
                    c.extend(self.bulk_elements());
                } else {
                    let n = self.rng.range(1, 4);
                    c.extend((0..n).map(|_| self.element()));
                }
                c
            }
            28..=33 => {
                let name = *self.rng.pick(&["LPUSHX", "RPUSHX"]);
                let mut c = vec![self.name(name), self.key()];
                let n = self.rng.range(1, 3);
                c.extend((0..n).map(|_| self.element()));
                c
            }
            34..=47 => {
                let name = *self.rng.pick(&["LPOP", "RPOP"]);
                let mut c = vec![self.name(name), self.key()];
                if self.rng.chance(50) {
                    c.push(self.number(&[0, 1, 2, 3, 5, 20, 100, -1]));
                }
                if self.rng.chance(3) {
                    c.push(b"1".to_vec());
                }
                c
            }
            48..=61 => vec![self.name("LRANGE"), self.key(), self.index(), self.index()],
            62..=65 => vec![self.name("LLEN"), self.key()],
            66..=71 => vec![self.name("LINDEX"), self.key(), self.index()],
            72..=79 => {
                let mut index = self.index();
                let wide = std::str::from_utf8(&index)
                    .ok()
                    .and_then(|i| i.parse::<i64>().ok())
                    .is_some_and(|i| i32::try_from(i).is_err());
                if wide && !self.lset_wide_indexes {
                    index = b"-1000".to_vec();
                }
                vec![self.name("LSET"), self.key(), index, self.element()]
            }
            80..=86 => vec![
                self.name("LREM"),
                self.key(),
                self.number(&[0, 1, 2, -1, -2, 5, -5]),
                self.element(),
            ],
            87..=93 => vec![self.name("LTRIM"), self.key(), self.index(), self.index()],
            94..=103 => self.linsert(),
            104..=111 => self.lpos(),
            112..=119 => vec![
                self.name("LMOVE"),
                self.key(),
                self.key(),
                self.end_word(),
                self.end_word(),
            ],
            120..=123 => vec![self.name("RPOPLPUSH"), self.key(), self.key()],
            124..=129 => {
                let mut c = vec![self.name("LMPOP")];
                c.extend(self.mpop_tail());
                c
            }
            130..=149 => self.blocking(),
            150..=159 => vec![self.name("OBJECT"), self.word("ENCODING"), self.key()],
            160..=175 => self.string_or_generic(),
            176..=178 => {
                self.resp3 = !self.resp3;
                vec![
                    b"HELLO".to_vec(),
                    if self.resp3 {
                        b"3".to_vec()
                    } else {
                        b"2".to_vec()
                    },
                ]
            }
            _ => self.wrong_arity(),
        };
        Step::Command(cmd)
    }

    fn linsert(&mut self) -> Vec<Vec<u8>> {
        let place = if self.rng.chance(5) {
            self.rng
                .pick(&["AROUND", "", "BEFOREE"])
                .as_bytes()
                .to_vec()
        } else {
            let w = *self.rng.pick(&["BEFORE", "AFTER"]);
            self.word(w)
        };
        vec![
            self.name("LINSERT"),
            self.key(),
            place,
            self.element(),
            self.element(),
        ]
    }

    fn lpos(&mut self) -> Vec<Vec<u8>> {
        let mut c = vec![self.name("LPOS"), self.key(), self.element()];
        let mut opts: Vec<Vec<Vec<u8>>> = Vec::new();
        if self.rng.chance(40) {
            let rank = self.number(&[1, 2, 3, -1, -2, -3, 0, 9223372036854775807]);
            opts.push(vec![self.word("RANK"), rank]);
        }
        if self.rng.chance(40) {
            let count = self.number(&[0, 1, 2, 3, -1]);
            opts.push(vec![self.word("COUNT"), count]);
        }
        if self.rng.chance(30) {
            let maxlen = self.number(&[0, 1, 2, 5, -1]);
            opts.push(vec![self.word("MAXLEN"), maxlen]);
        }
        if self.rng.chance(5) {
            opts.push(vec![self.word("RANK")]);
        }
        if self.rng.chance(4) {
            opts.push(vec![self.word("FOO"), b"1".to_vec()]);
        }
        self.rng.shuffle(&mut opts);
        c.extend(opts.into_iter().flatten());
        c
    }

    /// `numkeys key… LEFT|RIGHT [COUNT n]` of LMPOP and BLMPOP, valid or not.
    fn mpop_tail(&mut self) -> Vec<Vec<u8>> {
        let keys = self.keys(1, 3);
        let numkeys = match self.rng.below(14) {
            0 => b"0".to_vec(),
            1 => (keys.len() + 1).to_string().into_bytes(),
            2 => self.rng.pick(BAD_NUMBERS).as_bytes().to_vec(),
            3 => b"-1".to_vec(),
            _ => keys.len().to_string().into_bytes(),
        };
        let mut c = vec![numkeys];
        c.extend(keys);
        c.push(self.end_word());
        match self.rng.below(10) {
            0..=4 => {
                c.push(self.word("COUNT"));
                c.push(self.number(&[1, 2, 3, 10, 0, -1]));
            }
            5 => c.push(self.word("COUNT")),
            6 => {
                c.push(self.word("COUNT"));
                c.push(b"1".to_vec());
                c.push(self.word("COUNT"));
                c.push(b"2".to_vec());
            }
            _ => {}
        }
        c
    }

    /// A blocking command that answers at once (a non-empty list) or after a short timeout.
    fn blocking(&mut self) -> Vec<Vec<u8>> {
        match self.rng.below(10) {
            0..=3 => {
                let name = *self.rng.pick(&["BLPOP", "BRPOP"]);
                let mut c = vec![self.name(name)];
                c.extend(self.keys(1, 3));
                c.push(self.timeout());
                c
            }
            4..=5 => vec![
                self.name("BLMOVE"),
                self.key(),
                self.key(),
                self.end_word(),
                self.end_word(),
                self.timeout(),
            ],
            6 => vec![
                self.name("BRPOPLPUSH"),
                self.key(),
                self.key(),
                self.timeout(),
            ],
            _ => {
                let mut c = vec![self.name("BLMPOP"), self.timeout()];
                c.extend(self.mpop_tail());
                c
            }
        }
    }

    fn string_or_generic(&mut self) -> Vec<Vec<u8>> {
        match self.rng.below(12) {
            0..=1 => {
                let v = *self.rng.pick(&["v", "1", ""]);
                vec![self.name("SET"), self.key(), v.as_bytes().to_vec()]
            }
            2 => vec![self.name("GET"), self.key()],
            3..=4 => {
                let mut c = vec![self.name("DEL"), self.key()];
                if self.rng.chance(30) {
                    c.push(self.key());
                }
                c
            }
            5 => vec![self.name("TYPE"), self.key()],
            6 => {
                let secs = *self.rng.pick(&["1000", "100000", "0", "-5"]);
                vec![self.name("EXPIRE"), self.key(), secs.as_bytes().to_vec()]
            }
            7 => vec![self.name("PERSIST"), self.key()],
            8 => {
                let name = *self.rng.pick(&["RENAME", "RENAMENX"]);
                vec![self.name(name), self.key(), self.key()]
            }
            9 => {
                let mut c = vec![self.name("COPY"), self.key(), self.key()];
                if self.rng.chance(50) {
                    c.push(self.word("REPLACE"));
                }
                c
            }
            10 => vec![self.name("EXISTS"), self.key(), self.key()],
            _ => vec![self.name("SADD"), self.key(), self.element()],
        }
    }

    fn wrong_arity(&mut self) -> Vec<Vec<u8>> {
        let forms: &[&[&str]] = &[
            &["LPUSH", "a"],
            &["RPUSH"],
            &["LPUSHX", "a"],
            &["RPUSHX"],
            &["LPOP"],
            &["RPOP", "a", "1", "2"],
            &["LRANGE", "a", "0"],
            &["LLEN"],
            &["LLEN", "a", "b"],
            &["LINDEX", "a"],
            &["LSET", "a", "0"],
            &["LREM", "a", "0"],
            &["LTRIM", "a", "0"],
            &["LINSERT", "a", "BEFORE", "x"],
            &["LPOS", "a"],
            &["LMOVE", "a", "b", "LEFT"],
            &["RPOPLPUSH", "a"],
            &["LMPOP", "1", "a"],
            &["LMPOP"],
            &["BLPOP", "a"],
            &["BRPOP"],
            &["BLMOVE", "a", "b", "LEFT", "RIGHT"],
            &["BRPOPLPUSH", "a", "b"],
            &["BLMPOP", "0.01", "1", "a"],
            &["BLMPOP", "0.01"],
        ];
        self.rng
            .pick(forms)
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect()
    }
}

impl StepSource for ListGenerator {
    fn next_planned(&mut self) -> Planned {
        Planned::Step(self.next_step())
    }

    fn state_keys(&self) -> &[&[u8]] {
        KEYS
    }

    fn state_reads(&self) -> &[&str] {
        STATE_READS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::key_shard;

    /// The same seed gives the same steps.
    #[test]
    fn deterministic() {
        let (mut a, mut b) = (ListGenerator::new(9), ListGenerator::new(9));
        for _ in 0..500 {
            assert_eq!(a.next_step(), b.next_step());
        }
    }

    /// The keys spread over both shards of a 2-core node, the `{t}` keys share one, and all
    /// are keys of the string generator too.
    #[test]
    fn keys_cover_both_shards() {
        let shards: std::collections::BTreeSet<u16> =
            KEYS.iter().map(|k| key_shard(k, 2)).collect();
        assert_eq!(shards.len(), 2);
        assert_eq!(key_shard(b"{t}a", 2), key_shard(b"{t}c", 2));
        assert!(KEYS.iter().all(|k| crate::gen::KEYS.contains(k)));
    }

    /// Every list command comes up, and no blocking command is ever sent with timeout 0
    /// (an empty key would block it for good).
    #[test]
    fn covers_the_family_and_never_blocks_for_good() {
        let mut g = ListGenerator::new(1);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20_000 {
            let Step::Command(cmd) = g.next_step() else {
                panic!("only commands");
            };
            let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
            let timeout = match name.as_str() {
                "BLPOP" | "BRPOP" | "BLMOVE" | "BRPOPLPUSH" => cmd.last(),
                "BLMPOP" => cmd.get(1),
                _ => None,
            };
            if let Some(t) = timeout {
                let t = String::from_utf8_lossy(t);
                assert!(t.parse::<f64>() != Ok(0.0), "timeout {t} in {cmd:?}");
            }
            seen.insert(name);
        }
        for name in [
            "LPUSH",
            "RPUSH",
            "LPUSHX",
            "RPUSHX",
            "LPOP",
            "RPOP",
            "LRANGE",
            "LLEN",
            "LINDEX",
            "LSET",
            "LREM",
            "LTRIM",
            "LINSERT",
            "LPOS",
            "LMOVE",
            "RPOPLPUSH",
            "LMPOP",
            "BLPOP",
            "BRPOP",
            "BLMOVE",
            "BRPOPLPUSH",
            "BLMPOP",
            "OBJECT",
            "SET",
            "TYPE",
            "RENAME",
            "COPY",
            "HELLO",
        ] {
            assert!(seen.contains(name), "{name} never generated");
        }
    }
}
