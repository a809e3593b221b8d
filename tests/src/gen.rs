//! A deterministic, seeded generator of command sequences for the differential test.
//!
//! The same seed always gives the same sequence (so a failure is replayed from its seed). The
//! key space is small so that commands meet each other's keys: some keys share the `{t}` or
//! `{u}` hash tag, the others land on slots of both parities (so on both shards of a 2-core
//! node), and a few have bytes that matter to glob patterns or are not text. Values mix small
//! and extreme integers, floats, binary and empty strings and long strings; about one command
//! in six is invalid on purpose (wrong arity, unknown options, bad numbers, conflicting
//! options), and option words come in odd cases and orders.
//!
//! Expiry options use TTLs of at least 1000 s or timestamps far in the past or future, so no
//! reply depends on how fast the servers run (the comparator allows a small tolerance on the
//! TTL readings themselves, see `diff`).
//!
//! The commands are exactly those of the current issue: strings, generic key commands,
//! PING/ECHO/HELLO, unknown commands and wrong arities.

/// SplitMix64: a tiny, well-mixed PRNG; enough for test data, and it has no dependencies.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi);
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Shuffles in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// One step of a differential run.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send this command to both servers and compare the replies.
    Command(Vec<Vec<u8>>),
    /// Run a whole SCAN iteration (cursor 0 back to 0) with these options on both servers and
    /// compare the sets of keys: single SCAN replies carry implementation-defined cursors.
    ScanAll {
        pattern: Option<Vec<u8>>,
        count: Option<u64>,
        kind: Option<Vec<u8>>,
    },
    /// RANDOMKEY on both: both must be nil, or each must name a key that exists on both.
    RandomKey,
}

/// The key space: small, so commands interact.
pub const KEYS: &[&[u8]] = &[
    b"a",
    b"b",
    b"c",
    b"d",
    b"foo",
    b"bar",
    b"baz",
    b"n",
    b"m",
    b"f",
    b"s",
    b"long",
    b"{t}a",
    b"{t}b",
    b"{t}c",
    b"{t}n",
    b"{u}1",
    b"{u}2",
    b"user:1000",
    b"user:1001",
    b"bin\x00\xff",
    b"",
    b"sp ace",
    b"k*",
    b"k?",
    b"K",
];

/// Integer-looking values, canonical or not, in and out of range.
const INTEGERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "10",
    "42",
    "-7",
    "100",
    "9999",
    "10000",
    "123456789",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775806",
    "-9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "01",
    "+1",
    " 1",
    "1 ",
    "-0",
    "0x10",
    "1.0",
    "",
    "abc",
];

const FLOATS: &[&str] = &[
    "1.5",
    "-0.25",
    "1e3",
    "inf",
    "-inf",
    "+inf",
    "Infinity",
    "nan",
    "3.14159",
    "0.1",
    "1e308",
    "-1e308",
    "-1e-5",
    "5.0e3",
    "0",
    "-0",
    "10",
    "1.",
    ".5",
    "1e",
    "abc",
    "",
    " 1",
    "0x1p3",
    "17976931348623157e292",
];

const WORDS: &[&[u8]] = &[
    b"",
    b"a",
    b"x",
    b"hello",
    b"ohmytext",
    b"mynewtext",
    b"hello world",
    b"\x00\x01\xff",
    b"abc\r\ndef",
    b"*",
    b"{t}",
    b"OK",
    b"-ERR",
];

/// Glob patterns for KEYS and SCAN MATCH, including escapes and classes.
const PATTERNS: &[&[u8]] = &[
    b"*",
    b"{t}*",
    b"a*",
    b"?",
    b"k\\*",
    b"k?",
    b"[a-c]",
    b"[^a]*",
    b"*o*",
    b"user:100[0-9]",
    b"[ab",
    b"\\",
    b"*\\",
    b"",
    b"K",
    b"k*",
    b"{u}?",
    b"*\x00*",
    b"[!a-z]*",
    b"b[a-z]?",
];

/// Seconds that are valid TTLs and long enough that no key expires during a run.
fn long_seconds(rng: &mut SplitMix64) -> String {
    rng.range(1000, 1_000_000).to_string()
}

/// A unix time in seconds far in the future (after 2100) or in the past.
fn unix_seconds(rng: &mut SplitMix64) -> String {
    if rng.chance(75) {
        rng.range(4_102_444_800, 4_200_000_000).to_string()
    } else {
        rng.pick(&["1", "1000000000", "1600000000"]).to_string()
    }
}

/// Invalid time arguments (zero and negatives are invalid for SET/GETEX, meaningful for
/// EXPIRE; huge ones overflow).
const BAD_TIMES: &[&str] = &[
    "0",
    "-1",
    "-1000",
    "abc",
    "1.5",
    "",
    "9223372036854775807",
    "9223372036854775",
    "-9223372036854775808",
    "1e3",
];

/// What a step is about.
#[derive(Debug, Clone, Copy)]
enum Family {
    Set,
    Get,
    Setnx,
    Setex,
    Psetex,
    Getset,
    Getdel,
    Getex,
    Mget,
    Mset,
    Counter,
    Append,
    Strlen,
    Getrange,
    Setrange,
    Lcs,
    Del,
    Exists,
    Type,
    Expire,
    TtlRead,
    Persist,
    Keys,
    Scan,
    RandomKey,
    Rename,
    Copy,
    Touch,
    Object,
    Dbsize,
    Flush,
    Select,
    Swapdb,
    Move,
    PingEcho,
    Hello,
    Unknown,
    WrongArity,
}

/// How often each family comes (relative weights). Writes dominate so the key space stays
/// busy; FLUSHALL/FLUSHDB are rare so that state builds up between them.
const FAMILIES: &[(Family, u64)] = &[
    (Family::Set, 100),
    (Family::Get, 60),
    (Family::Setnx, 20),
    (Family::Setex, 20),
    (Family::Psetex, 15),
    (Family::Getset, 15),
    (Family::Getdel, 15),
    (Family::Getex, 30),
    (Family::Mget, 25),
    (Family::Mset, 35),
    (Family::Counter, 60),
    (Family::Append, 25),
    (Family::Strlen, 15),
    (Family::Getrange, 25),
    (Family::Setrange, 20),
    (Family::Lcs, 20),
    (Family::Del, 35),
    (Family::Exists, 25),
    (Family::Type, 10),
    (Family::Expire, 60),
    (Family::TtlRead, 45),
    (Family::Persist, 15),
    (Family::Keys, 15),
    (Family::Scan, 15),
    (Family::RandomKey, 8),
    (Family::Rename, 25),
    (Family::Copy, 25),
    (Family::Touch, 10),
    (Family::Object, 25),
    (Family::Dbsize, 10),
    (Family::Flush, 3),
    (Family::Select, 22),
    (Family::Swapdb, 5),
    (Family::Move, 15),
    (Family::PingEcho, 15),
    (Family::Hello, 10),
    (Family::Unknown, 15),
    (Family::WrongArity, 40),
];

/// The generator of steps for one seed.
pub struct Generator {
    rng: SplitMix64,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: SplitMix64::new(seed),
        }
    }

    fn key(&mut self) -> Vec<u8> {
        self.rng.pick(KEYS).to_vec()
    }

    fn keys(&mut self, lo: u64, hi: u64) -> Vec<Vec<u8>> {
        let n = lo + self.rng.below(hi - lo + 1);
        (0..n).map(|_| self.key()).collect()
    }

    /// A string of `len` random letters and digits.
    fn text(&mut self, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len).map(|_| *self.rng.pick(ALPHABET)).collect()
    }

    fn value(&mut self) -> Vec<u8> {
        match self.rng.below(10) {
            0..=2 => self.rng.pick(INTEGERS).as_bytes().to_vec(),
            3 => self.rng.pick(FLOATS).as_bytes().to_vec(),
            4..=6 => self.rng.pick(WORDS).to_vec(),
            7 => {
                // Around the 44-byte embstr/raw boundary, and longer.
                let len = *self.rng.pick(&[43usize, 44, 45, 46, 64, 100, 200]);
                self.text(len)
            }
            8 => (0..self.rng.range(1, 20))
                .map(|_| self.rng.below(256) as u8)
                .collect(),
            _ => {
                let len = self.rng.range(1, 12) as usize;
                self.text(len)
            }
        }
    }

    /// An integer argument: usually a small valid one, sometimes extreme or invalid.
    fn int_arg(&mut self, lo: i64, hi: i64) -> Vec<u8> {
        if self.rng.chance(80) {
            self.rng.range(lo, hi).to_string().into_bytes()
        } else {
            self.rng.pick(INTEGERS).as_bytes().to_vec()
        }
    }

    /// An option word in a random case: "ex", "EX", "Ex", "eX".
    fn word(&mut self, w: &str) -> Vec<u8> {
        match self.rng.below(4) {
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

    /// One of `choices`, in a random case.
    fn word_of(&mut self, choices: &[&str]) -> Vec<u8> {
        let w = *self.rng.pick(choices);
        self.word(w)
    }

    /// A command name, now and then in lower or mixed case.
    fn name(&mut self, n: &str) -> Vec<u8> {
        if self.rng.chance(15) {
            self.word(n)
        } else {
            n.as_bytes().to_vec()
        }
    }

    /// An expiry option of SET/GETEX: `[EX s | PX ms | EXAT ts | PXAT ts]`, valid or not.
    fn expiry_option(&mut self) -> Vec<Vec<u8>> {
        let bad = self.rng.chance(12);
        let (opt, arg) = match self.rng.below(4) {
            0 => ("EX", long_seconds(&mut self.rng)),
            1 => ("PX", (self.rng.range(1000, 1_000_000) * 1000).to_string()),
            2 => ("EXAT", unix_seconds(&mut self.rng)),
            _ => ("PXAT", format!("{}000", unix_seconds(&mut self.rng))),
        };
        let arg = if bad {
            self.rng.pick(BAD_TIMES).to_string()
        } else {
            arg
        };
        let mut out = vec![self.word(opt)];
        if !(bad && self.rng.chance(20)) {
            out.push(arg.into_bytes());
        }
        out
    }

    /// The next step.
    pub fn next_step(&mut self) -> Step {
        let total: u64 = FAMILIES.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.below(total);
        let family = FAMILIES
            .iter()
            .find(|(_, w)| {
                let hit = roll < *w;
                roll = roll.saturating_sub(*w);
                hit
            })
            .map_or(Family::Get, |(f, _)| *f);
        let cmd = match family {
            Family::Set => self.set(),
            Family::Get => vec![self.name("GET"), self.key()],
            Family::Setnx => vec![self.name("SETNX"), self.key(), self.value()],
            Family::Setex => self.setex("SETEX", false),
            Family::Psetex => self.setex("PSETEX", true),
            Family::Getset => vec![self.name("GETSET"), self.key(), self.value()],
            Family::Getdel => vec![self.name("GETDEL"), self.key()],
            Family::Getex => self.getex(),
            Family::Mget => self.with_keys("MGET", 1, 5),
            Family::Mset => {
                let name = if self.rng.chance(70) {
                    "MSET"
                } else {
                    "MSETNX"
                };
                self.mset(name)
            }
            Family::Counter => self.counter(),
            Family::Append => vec![self.name("APPEND"), self.key(), self.value()],
            Family::Strlen => vec![self.name("STRLEN"), self.key()],
            Family::Getrange => {
                let name = if self.rng.chance(80) {
                    "GETRANGE"
                } else {
                    "SUBSTR"
                };
                vec![
                    self.name(name),
                    self.key(),
                    self.int_arg(-60, 60),
                    self.int_arg(-60, 60),
                ]
            }
            Family::Setrange => self.setrange(),
            Family::Lcs => self.lcs(),
            Family::Del => {
                let name = if self.rng.chance(70) { "DEL" } else { "UNLINK" };
                self.with_keys(name, 1, 4)
            }
            Family::Exists => self.with_keys("EXISTS", 1, 4),
            Family::Type => vec![self.name("TYPE"), self.key()],
            Family::Expire => self.expire(),
            Family::TtlRead => {
                let name = *self.rng.pick(&["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"]);
                vec![self.name(name), self.key()]
            }
            Family::Persist => vec![self.name("PERSIST"), self.key()],
            Family::Keys => vec![self.name("KEYS"), self.rng.pick(PATTERNS).to_vec()],
            Family::Scan => return self.scan(),
            Family::RandomKey => return Step::RandomKey,
            Family::Rename => {
                let name = if self.rng.chance(60) {
                    "RENAME"
                } else {
                    "RENAMENX"
                };
                vec![self.name(name), self.key(), self.key()]
            }
            Family::Copy => self.copy(),
            Family::Touch => self.with_keys("TOUCH", 1, 4),
            Family::Object => self.object(),
            Family::Dbsize => vec![self.name("DBSIZE")],
            Family::Flush => self.flush(),
            Family::Select => self.select(),
            Family::Swapdb => self.swapdb(),
            Family::Move => self.move_(),
            Family::PingEcho => self.ping_echo(),
            Family::Hello => self.hello(),
            Family::Unknown => self.unknown(),
            Family::WrongArity => self.wrong_arity(),
        };
        Step::Command(cmd)
    }

    /// `name` followed by `lo..=hi` keys.
    fn with_keys(&mut self, name: &str, lo: u64, hi: u64) -> Vec<Vec<u8>> {
        let mut c = vec![self.name(name)];
        c.extend(self.keys(lo, hi));
        c
    }

    /// SET k v with options in any order; sometimes conflicting, duplicated, unknown or
    /// missing their argument.
    fn set(&mut self) -> Vec<Vec<u8>> {
        let mut groups: Vec<Vec<Vec<u8>>> = Vec::new();
        if self.rng.chance(30) {
            groups.push(vec![self.word_of(&["NX", "XX"])]);
        }
        if self.rng.chance(25) {
            groups.push(vec![self.word("GET")]);
        }
        match self.rng.below(10) {
            0..=3 => groups.push(self.expiry_option()),
            4 => groups.push(vec![self.word("KEEPTTL")]),
            _ => {}
        }
        if self.rng.chance(8) {
            // Something invalid: a conflicting or unknown option.
            let extra = match self.rng.below(4) {
                0 => self.expiry_option(),
                1 => vec![self.word("KEEPTTL")],
                2 => vec![self.word_of(&["NX", "XX"])],
                _ => vec![self.word_of(&["FOO", "EXX", "PERSIST", "GETT"])],
            };
            groups.push(extra);
        }
        self.rng.shuffle(&mut groups);
        let mut c = vec![self.name("SET"), self.key(), self.value()];
        c.extend(groups.into_iter().flatten());
        if self.rng.chance(2) {
            c.truncate(2);
        }
        c
    }

    fn setex(&mut self, name: &str, millis: bool) -> Vec<Vec<u8>> {
        let t = if self.rng.chance(85) {
            let s = self.rng.range(1000, 1_000_000);
            (if millis { s * 1000 } else { s }).to_string()
        } else {
            self.rng.pick(BAD_TIMES).to_string()
        };
        vec![self.name(name), self.key(), t.into_bytes(), self.value()]
    }

    fn getex(&mut self) -> Vec<Vec<u8>> {
        let mut c = vec![self.name("GETEX"), self.key()];
        match self.rng.below(10) {
            0..=4 => c.extend(self.expiry_option()),
            5 | 6 => c.push(self.word("PERSIST")),
            7 => {
                // Two options: a syntax error.
                c.extend(self.expiry_option());
                if self.rng.chance(50) {
                    c.push(self.word("PERSIST"));
                } else {
                    c.extend(self.expiry_option());
                }
            }
            8 => c.push(self.word_of(&["KEEPTTL", "NX", "FOO"])),
            _ => {}
        }
        c
    }

    fn mset(&mut self, name: &str) -> Vec<Vec<u8>> {
        let mut c = vec![self.name(name)];
        let pairs = self.rng.range(1, 4);
        for _ in 0..pairs {
            c.push(self.key());
            c.push(self.value());
        }
        if self.rng.chance(8) {
            c.pop(); // odd arity
        }
        c
    }

    fn counter(&mut self) -> Vec<Vec<u8>> {
        match self.rng.below(5) {
            0 => vec![self.name("INCR"), self.key()],
            1 => vec![self.name("DECR"), self.key()],
            2 => vec![self.name("INCRBY"), self.key(), self.int_arg(-1000, 1000)],
            3 => vec![self.name("DECRBY"), self.key(), self.int_arg(-1000, 1000)],
            _ => vec![
                self.name("INCRBYFLOAT"),
                self.key(),
                self.rng.pick(FLOATS).as_bytes().to_vec(),
            ],
        }
    }

    fn setrange(&mut self) -> Vec<Vec<u8>> {
        let offset = match self.rng.below(10) {
            0 => self
                .rng
                .pick(&["-1", "abc", "536870912", "600000000", "9223372036854775807"])
                .as_bytes()
                .to_vec(),
            _ => self.rng.range(0, 60).to_string().into_bytes(),
        };
        let value = self.value();
        // A huge offset with a non-empty value would be a 512 MB string if accepted: only the
        // offsets above are used, all of which are rejected (or, with an empty value, ignored).
        vec![self.name("SETRANGE"), self.key(), offset, value]
    }

    fn lcs(&mut self) -> Vec<Vec<u8>> {
        let mut c = vec![self.name("LCS"), self.key(), self.key()];
        let mut opts: Vec<Vec<Vec<u8>>> = Vec::new();
        if self.rng.chance(30) {
            opts.push(vec![self.word("LEN")]);
        }
        if self.rng.chance(40) {
            opts.push(vec![self.word("IDX")]);
        }
        if self.rng.chance(30) {
            opts.push(vec![self.word("MINMATCHLEN"), self.int_arg(0, 5)]);
        }
        if self.rng.chance(30) {
            opts.push(vec![self.word("WITHMATCHLEN")]);
        }
        if self.rng.chance(5) {
            opts.push(vec![self.word("FOO")]);
        }
        self.rng.shuffle(&mut opts);
        c.extend(opts.into_iter().flatten());
        if self.rng.chance(3) {
            c.truncate(2);
        }
        c
    }

    fn expire(&mut self) -> Vec<Vec<u8>> {
        let (name, t) = match self.rng.below(4) {
            0 => ("EXPIRE", long_seconds(&mut self.rng)),
            1 => (
                "PEXPIRE",
                (self.rng.range(1000, 1_000_000) * 1000).to_string(),
            ),
            2 => ("EXPIREAT", unix_seconds(&mut self.rng)),
            _ => ("PEXPIREAT", format!("{}000", unix_seconds(&mut self.rng))),
        };
        // Negative and zero times are valid here: they delete the key.
        let t = if self.rng.chance(12) {
            self.rng.pick(BAD_TIMES).to_string()
        } else {
            t
        };
        let mut c = vec![self.name(name), self.key(), t.into_bytes()];
        let flags = ["NX", "XX", "GT", "LT"];
        if self.rng.chance(40) {
            c.push(self.word_of(&flags));
        }
        if self.rng.chance(8) {
            c.push(self.word_of(&["NX", "XX", "GT", "LT", "FOO"]));
        }
        c
    }

    fn scan(&mut self) -> Step {
        if self.rng.chance(15) {
            // Invalid SCANs are compared as plain commands: their errors are deterministic.
            let bad: &[&[&str]] = &[
                &["SCAN"],
                &["SCAN", "abc"],
                &["SCAN", "-1x"],
                &["SCAN", "0", "COUNT", "0"],
                &["SCAN", "0", "COUNT", "-1"],
                &["SCAN", "0", "COUNT", "abc"],
                &["SCAN", "0", "MATCH"],
                &["SCAN", "0", "FOO", "bar"],
                &["SCAN", "0", "TYPE"],
            ];
            let args = self
                .rng
                .pick(bad)
                .iter()
                .map(|a| a.as_bytes().to_vec())
                .collect();
            return Step::Command(args);
        }
        let pattern = self
            .rng
            .chance(50)
            .then(|| self.rng.pick(PATTERNS).to_vec());
        let count = self
            .rng
            .chance(40)
            .then(|| *self.rng.pick(&[1u64, 2, 5, 10, 100, 1000]));
        let kind = self
            .rng
            .chance(20)
            .then(|| self.word_of(&["string", "list", "hash", "set", "zset", "stream"]));
        Step::ScanAll {
            pattern,
            count,
            kind,
        }
    }

    fn copy(&mut self) -> Vec<Vec<u8>> {
        let mut c = vec![self.name("COPY"), self.key(), self.key()];
        let mut opts: Vec<Vec<Vec<u8>>> = Vec::new();
        if self.rng.chance(40) {
            let db = if self.rng.chance(85) {
                self.rng.range(0, 3).to_string().into_bytes()
            } else {
                self.rng.pick(&["16", "-1", "abc"]).as_bytes().to_vec()
            };
            opts.push(vec![self.word("DB"), db]);
        }
        if self.rng.chance(40) {
            opts.push(vec![self.word("REPLACE")]);
        }
        if self.rng.chance(5) {
            opts.push(vec![self.word("FOO")]);
        }
        self.rng.shuffle(&mut opts);
        c.extend(opts.into_iter().flatten());
        c
    }

    fn object(&mut self) -> Vec<Vec<u8>> {
        let sub = *self.rng.pick(&[
            "ENCODING", "ENCODING", "ENCODING", "FREQ", "IDLETIME", "REFCOUNT", "NOSUCH",
        ]);
        let mut c = vec![self.name("OBJECT"), self.word(sub), self.key()];
        if self.rng.chance(5) {
            c.push(self.key()); // wrong arity
        }
        c
    }

    fn flush(&mut self) -> Vec<Vec<u8>> {
        let name = if self.rng.chance(50) {
            "FLUSHALL"
        } else {
            "FLUSHDB"
        };
        let mut c = vec![self.name(name)];
        match self.rng.below(5) {
            0 => c.push(self.word("ASYNC")),
            1 => c.push(self.word("SYNC")),
            2 => c.push(self.word("FOO")),
            _ => {}
        }
        c
    }

    fn select(&mut self) -> Vec<Vec<u8>> {
        let db = match self.rng.below(10) {
            0..=4 => "0",
            5 | 6 => "1",
            7 => "2",
            8 => "3",
            _ => *self.rng.pick(&["16", "-1", "abc", "1.5", ""]),
        };
        vec![self.name("SELECT"), db.as_bytes().to_vec()]
    }

    fn swapdb(&mut self) -> Vec<Vec<u8>> {
        let db = |rng: &mut SplitMix64| {
            if rng.chance(90) {
                rng.range(0, 3).to_string().into_bytes()
            } else {
                rng.pick(&["16", "-1", "abc"]).as_bytes().to_vec()
            }
        };
        vec![self.name("SWAPDB"), db(&mut self.rng), db(&mut self.rng)]
    }

    fn move_(&mut self) -> Vec<Vec<u8>> {
        let db = if self.rng.chance(90) {
            self.rng.range(0, 3).to_string().into_bytes()
        } else {
            self.rng.pick(&["16", "-1", "abc"]).as_bytes().to_vec()
        };
        vec![self.name("MOVE"), self.key(), db]
    }

    fn ping_echo(&mut self) -> Vec<Vec<u8>> {
        match self.rng.below(4) {
            0 => vec![self.name("PING")],
            1 => vec![self.name("PING"), self.value()],
            _ => vec![self.name("ECHO"), self.value()],
        }
    }

    /// HELLO 2 / HELLO 3 switch the protocol of both connections; later replies are compared in
    /// whichever protocol is on.
    fn hello(&mut self) -> Vec<Vec<u8>> {
        let version = match self.rng.below(10) {
            0..=3 => "3",
            4..=7 => "2",
            _ => *self.rng.pick(&["4", "1", "0", "abc", "-1"]),
        };
        let mut c = vec![self.name("HELLO"), version.as_bytes().to_vec()];
        if self.rng.chance(20) {
            c.push(self.word("SETNAME"));
            c.push(b"differential".to_vec());
        }
        c
    }

    fn unknown(&mut self) -> Vec<Vec<u8>> {
        let name = *self.rng.pick(&[
            "NOSUCH",
            "GETT",
            "foo",
            "SETT",
            "x",
            "CONFIG-GET",
            "GET\x00",
        ]);
        let mut c = vec![name.as_bytes().to_vec()];
        for _ in 0..self.rng.below(4) {
            let v = self.value();
            c.push(v);
        }
        c
    }

    fn wrong_arity(&mut self) -> Vec<Vec<u8>> {
        const CASES: &[&[&str]] = &[
            &["GET"],
            &["GET", "a", "b"],
            &["SET", "a"],
            &["SET"],
            &["STRLEN"],
            &["INCR", "a", "b"],
            &["INCRBY", "a"],
            &["INCRBYFLOAT", "a"],
            &["APPEND", "a"],
            &["TTL"],
            &["PTTL", "a", "b"],
            &["EXISTS"],
            &["DEL"],
            &["UNLINK"],
            &["MGET"],
            &["MSET"],
            &["MSET", "a"],
            &["MSETNX", "a", "1", "b"],
            &["RENAME", "a"],
            &["RENAMENX", "a"],
            &["ECHO"],
            &["ECHO", "a", "b"],
            &["KEYS"],
            &["KEYS", "a", "b"],
            &["DBSIZE", "x"],
            &["SWAPDB", "0"],
            &["OBJECT"],
            &["OBJECT", "ENCODING"],
            &["LCS", "a"],
            &["GETRANGE", "a", "0"],
            &["SUBSTR", "a"],
            &["SETRANGE", "a", "0"],
            &["SELECT"],
            &["PING", "a", "b"],
            &["TOUCH"],
            &["MOVE", "a"],
            &["COPY", "a"],
            &["GETEX"],
            &["GETDEL"],
            &["GETSET", "a"],
            &["SETEX", "a", "100"],
            &["PSETEX", "a"],
            &["SETNX", "a"],
            &["EXPIRE", "a"],
            &["PEXPIREAT"],
            &["EXPIRETIME"],
            &["PERSIST"],
            &["TYPE"],
            &["RANDOMKEY", "a"],
            &["DECR"],
            &["DECRBY", "a"],
            &["FLUSHALL", "ASYNC", "SYNC"],
            &["FLUSHDB", "SYNC", "x"],
        ];
        let case = *self.rng.pick(CASES);
        let mut c: Vec<Vec<u8>> = case.iter().map(|a| a.as_bytes().to_vec()).collect();
        c[0] = self.name(case[0]);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::key_shard;

    /// The same seed gives the same steps, and different seeds different ones.
    #[test]
    fn deterministic() {
        let run = |seed| {
            let mut g = Generator::new(seed);
            (0..500).map(|_| g.next_step()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    /// The key space covers both shards of a 2-core node, and hash-tagged keys share a shard.
    #[test]
    fn keys_cover_both_shards() {
        let shards: std::collections::BTreeSet<u16> =
            KEYS.iter().map(|k| key_shard(k, 2)).collect();
        assert_eq!(shards.len(), 2);
        assert_eq!(key_shard(b"{t}a", 2), key_shard(b"{t}n", 2));
    }

    /// Over a long run every command family appears, including SCAN and RANDOMKEY steps.
    #[test]
    fn covers_the_command_set() {
        let mut g = Generator::new(1);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20_000 {
            match g.next_step() {
                Step::Command(c) => {
                    seen.insert(String::from_utf8_lossy(&c[0]).to_ascii_uppercase());
                }
                Step::ScanAll { .. } => {
                    seen.insert("SCAN(all)".into());
                }
                Step::RandomKey => {
                    seen.insert("RANDOMKEY".into());
                }
            }
        }
        for name in [
            "GET",
            "SET",
            "SETNX",
            "SETEX",
            "PSETEX",
            "GETSET",
            "GETDEL",
            "GETEX",
            "MGET",
            "MSET",
            "MSETNX",
            "INCR",
            "DECR",
            "INCRBY",
            "DECRBY",
            "INCRBYFLOAT",
            "APPEND",
            "STRLEN",
            "GETRANGE",
            "SETRANGE",
            "SUBSTR",
            "LCS",
            "DEL",
            "UNLINK",
            "EXISTS",
            "TYPE",
            "EXPIRE",
            "PEXPIRE",
            "EXPIREAT",
            "PEXPIREAT",
            "TTL",
            "PTTL",
            "EXPIRETIME",
            "PEXPIRETIME",
            "PERSIST",
            "KEYS",
            "SCAN",
            "SCAN(all)",
            "RANDOMKEY",
            "RENAME",
            "RENAMENX",
            "COPY",
            "TOUCH",
            "OBJECT",
            "DBSIZE",
            "FLUSHALL",
            "FLUSHDB",
            "SELECT",
            "SWAPDB",
            "MOVE",
            "PING",
            "ECHO",
            "HELLO",
            "NOSUCH",
        ] {
            assert!(seen.contains(name), "{name} never generated");
        }
    }
}
