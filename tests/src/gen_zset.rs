//! A seeded generator of sorted set command sequences for the differential test
//! (`tests/differential_zset.rs`), mixed with a few string and generic commands on the same
//! keys so that WRONGTYPE paths, TYPE, OBJECT ENCODING, RENAME and COPY meet sorted sets.
//!
//! Sorted sets have a few answers that are not defined, and the generator keeps away from
//! them rather than loosening the comparison:
//!
//! - A lexicographic range over members with different scores walks the set's own layout;
//!   on a skiplist that layout is random (each node's height), so two servers answer
//!   differently. So the key space is split in three, by what a key may hold:
//!   - `SMALL` keys (from [`crate::gen::KEYS`], shared with strings): at most a couple of
//!     dozen members of at most 64 bytes, so always a listpack in both servers, where a
//!     lexicographic walk is deterministic. Only small inputs are ever stored into them,
//!     and RENAME/COPY move values only between them.
//!   - `BIG` keys: any scores, members beyond the listpack limits (more than 128, or longer
//!     than 64 bytes), so they turn into skiplists. No lexicographic command reads them.
//!   - `LEX` keys: members all with score 0 (one may grow past the listpack), where
//!     lexicographic ranges are well defined whatever the encoding.
//! - A negative LIMIT offset on a skiplist counts from the end in Valkey 8
//!   (`zslNthInRange`) and returns nothing in redis-server 7.0: negative offsets only go to
//!   keys that are always listpacks.
//! - Options redis-server 7.0 does not have: ZRANK/ZREVRANK `WITHSCORE` (7.2) and ZSCAN
//!   `NOSCORES` (Valkey 8) are not generated, nor negative ZSCAN cursors (an "invalid
//!   cursor" in Valkey 8, accepted by 7.0). The unit tests cover those against Valkey 8.
//! - A ZADD with a member too long for a listpack: Valkey 8 converts the set to a skiplist
//!   before adding anything (`zsetTypeMaybeConvert`), redis-server 7.0 only when it adds that
//!   member. So such a ZADD has no XX (which may keep the member out) and no -0 score (which
//!   a listpack stores as 0).
//! - ZRANDMEMBER counts stay small (a huge negative count makes both servers build an
//!   enormous reply).
//!
//! About one command in six is invalid on purpose (bad numbers, bad ranges, unknown or
//! conflicting options, wrong arity), and option words come in odd cases and orders.

use crate::gen::{SplitMix64, Step};

/// Keys that only ever hold small sorted sets (or strings).
const SMALL: &[&[u8]] = &[
    b"a",
    b"b",
    b"c",
    b"foo",
    b"{t}a",
    b"{t}b",
    b"{t}c",
    b"{u}1",
    b"{u}2",
    b"bin\x00\xff",
    b"k*",
];

/// Keys whose sorted sets may outgrow a listpack; scores are mixed.
const BIG: &[&[u8]] = &[b"zbig", b"{t}zbig", b"{u}zbig"];

/// Keys whose members all have score 0; `{t}zlexbig` may outgrow a listpack.
const LEX: &[&[u8]] = &[b"zlex", b"{t}zlexbig"];

/// Members of small sets: short, binary, numeric-looking, empty, and one of exactly 64 bytes
/// (the largest a listpack takes).
const SMALL_MEMBERS: &[&[u8]] = &[
    b"a",
    b"b",
    b"c",
    b"d",
    b"e",
    b"x",
    b"y",
    b"z",
    b"ab",
    b"abc",
    b"A",
    b"1",
    b"2",
    b"10",
    b"-1",
    b"3.5",
    b"",
    b"\x00",
    b"\xff\x00z",
    b"m 1",
    b"pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp",
];

/// Scores as ZADD receives them: valid ones of every shape, and a few that are not numbers.
const SCORES: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "10",
    "1.5",
    "-0.25",
    "0.1",
    "0.2",
    "1e3",
    "inf",
    "-inf",
    "+inf",
    "-0",
    "1e-5",
    "3.14159",
    "1e20",
    "5e-324",
    "17976931348623157e292",
    "123456789012345678",
    "0x10",
    "1.",
    ".5",
];

const BAD_SCORES: &[&str] = &[
    "nan", "abc", "", " 1", "1 ", "(1", "1e400", "1e-400", "1\u{0}", "--1", "inf1",
];

/// Ends of score ranges.
const SCORE_EDGES: &[&str] = &[
    "-inf", "+inf", "inf", "0", "1", "2", "(1", "(2", "1.5", "(0", "-1", "(-inf", "(+inf", "10",
    "(10", "1e3", "0.1", "(0.1", "-0", "5", "50", "(100", "150",
];

const BAD_SCORE_EDGES: &[&str] = &["x", "[1", "nan", "(nan", "1x", "((1"];

/// Ends of lexicographic ranges.
const LEX_EDGES: &[&str] = &[
    "-", "+", "[a", "(a", "[b", "(b", "[c", "(ab", "[ab", "[z", "(z", "[", "(", "[w050", "(w100",
    "[w1", "[m 1", "[1",
];

const BAD_LEX_EDGES: &[&str] = &["a", "", "+x", "-x", "{a", "1"];

/// The generator of steps for one seed.
pub struct ZsetGenerator {
    rng: SplitMix64,
    /// Whether the connections under test speak RESP3 now (HELLO switches both).
    resp3: bool,
}

#[derive(Debug, Clone, Copy)]
enum Family {
    Zadd,
    ZaddBig,
    Zincrby,
    Zrem,
    Zscore,
    Zmscore,
    Zcard,
    Zcount,
    Zlexcount,
    Zrange,
    Zrangestore,
    Zrank,
    Zpop,
    Zmpop,
    Zsetop,
    Zsetopstore,
    Zintercard,
    Zrandmember,
    Zscan,
    Zremrange,
    Inspect,
    StringCmd,
    Generic,
    Hello,
    WrongArity,
}

/// Relative weights of the command families.
const FAMILIES: &[(Family, u64)] = &[
    (Family::Zadd, 120),
    (Family::ZaddBig, 8),
    (Family::Zincrby, 30),
    (Family::Zrem, 30),
    (Family::Zscore, 25),
    (Family::Zmscore, 15),
    (Family::Zcard, 15),
    (Family::Zcount, 25),
    (Family::Zlexcount, 20),
    (Family::Zrange, 120),
    (Family::Zrangestore, 25),
    (Family::Zrank, 20),
    (Family::Zpop, 25),
    (Family::Zmpop, 20),
    (Family::Zsetop, 40),
    (Family::Zsetopstore, 30),
    (Family::Zintercard, 10),
    (Family::Zrandmember, 20),
    (Family::Zscan, 15),
    (Family::Zremrange, 30),
    (Family::Inspect, 40),
    (Family::StringCmd, 15),
    (Family::Generic, 50),
    (Family::Hello, 6),
    (Family::WrongArity, 12),
];

/// What a key may hold, which decides what may be done with it (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    Small,
    Big,
    Lex,
}

impl ZsetGenerator {
    pub fn new(seed: u64) -> Self {
        ZsetGenerator {
            rng: SplitMix64::new(seed ^ 0x5a5e_7000_0000_0000),
            resp3: false,
        }
    }

    fn pool_key(&mut self, pool: Pool) -> Vec<u8> {
        let keys = match pool {
            Pool::Small => SMALL,
            Pool::Big => BIG,
            Pool::Lex => LEX,
        };
        self.rng.pick(keys).to_vec()
    }

    /// A key of any pool, and its pool.
    fn any_key(&mut self) -> (Vec<u8>, Pool) {
        let pool = match self.rng.below(10) {
            0..=5 => Pool::Small,
            6..=7 => Pool::Big,
            _ => Pool::Lex,
        };
        (self.pool_key(pool), pool)
    }

    /// A key that lexicographic commands may read.
    fn lex_key(&mut self) -> (Vec<u8>, Pool) {
        let pool = if self.rng.chance(60) {
            Pool::Small
        } else {
            Pool::Lex
        };
        (self.pool_key(pool), pool)
    }

    /// Whether a key is a listpack in both servers whatever happens (negative LIMIT offsets
    /// are only sent to those).
    fn always_listpack(key: &[u8], pool: Pool) -> bool {
        pool == Pool::Small || key == b"zlex"
    }

    /// An option word in a random case.
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

    /// A command name, now and then in lower case.
    fn name(&mut self, n: &str) -> Vec<u8> {
        if self.rng.chance(15) {
            n.to_ascii_lowercase().into_bytes()
        } else {
            n.as_bytes().to_vec()
        }
    }

    fn score(&mut self) -> Vec<u8> {
        if self.rng.chance(4) {
            self.rng.pick(BAD_SCORES).as_bytes().to_vec()
        } else if self.rng.chance(50) {
            self.rng.range(-3, 12).to_string().into_bytes()
        } else {
            self.rng.pick(SCORES).as_bytes().to_vec()
        }
    }

    fn big_member(&mut self) -> Vec<u8> {
        match self.rng.below(20) {
            0 => vec![b'q'; 65],
            1 => self.rng.pick(SMALL_MEMBERS).to_vec(),
            _ => format!("m{:03}", self.rng.below(200)).into_bytes(),
        }
    }

    fn lex_member(&mut self) -> Vec<u8> {
        if self.rng.chance(50) {
            format!("w{:03}", self.rng.below(200)).into_bytes()
        } else {
            self.rng.pick(SMALL_MEMBERS).to_vec()
        }
    }

    fn member_for(&mut self, pool: Pool) -> Vec<u8> {
        match pool {
            Pool::Small => self.rng.pick(SMALL_MEMBERS).to_vec(),
            Pool::Big => self.big_member(),
            Pool::Lex => self.lex_member(),
        }
    }

    fn rank(&mut self) -> Vec<u8> {
        if self.rng.chance(8) {
            self.rng
                .pick(&[
                    "x",
                    "",
                    "1.5",
                    "9223372036854775807",
                    "-9223372036854775808",
                    "99999999999999999999",
                ])
                .as_bytes()
                .to_vec()
        } else {
            self.rng.range(-8, 8).to_string().into_bytes()
        }
    }

    fn score_edge(&mut self) -> Vec<u8> {
        if self.rng.chance(4) {
            self.rng.pick(BAD_SCORE_EDGES).as_bytes().to_vec()
        } else {
            self.rng.pick(SCORE_EDGES).as_bytes().to_vec()
        }
    }

    fn lex_edge(&mut self) -> Vec<u8> {
        if self.rng.chance(4) {
            self.rng.pick(BAD_LEX_EDGES).as_bytes().to_vec()
        } else {
            self.rng.pick(LEX_EDGES).as_bytes().to_vec()
        }
    }

    /// `LIMIT offset count`: negative offsets only where the key is always a listpack.
    fn limit(&mut self, negative_ok: bool) -> Vec<Vec<u8>> {
        let offset = if negative_ok && self.rng.chance(15) {
            self.rng.range(-3, -1)
        } else {
            self.rng.range(0, 4)
        };
        let count = self.rng.range(-2, 5);
        let mut v = vec![self.word("LIMIT")];
        if self.rng.chance(3) {
            v.push(b"x".to_vec());
        } else {
            v.push(offset.to_string().into_bytes());
        }
        if !self.rng.chance(3) {
            v.push(count.to_string().into_bytes());
        }
        v
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
            .map_or(Family::Zadd, |(f, _)| *f);
        Step::Command(match family {
            Family::Zadd => self.zadd(),
            Family::ZaddBig => self.zadd_big(),
            Family::Zincrby => self.zincrby(),
            Family::Zrem => {
                let (key, pool) = self.any_key();
                let mut c = vec![self.name("ZREM"), key];
                for _ in 0..self.rng.range(1, 4) {
                    c.push(self.member_for(pool));
                }
                c
            }
            Family::Zscore => {
                let (key, pool) = self.any_key();
                vec![self.name("ZSCORE"), key, self.member_for(pool)]
            }
            Family::Zmscore => {
                let (key, pool) = self.any_key();
                let mut c = vec![self.name("ZMSCORE"), key];
                for _ in 0..self.rng.range(1, 4) {
                    c.push(self.member_for(pool));
                }
                c
            }
            Family::Zcard => vec![self.name("ZCARD"), self.any_key().0],
            Family::Zcount => vec![
                self.name("ZCOUNT"),
                self.any_key().0,
                self.score_edge(),
                self.score_edge(),
            ],
            Family::Zlexcount => vec![
                self.name("ZLEXCOUNT"),
                self.lex_key().0,
                self.lex_edge(),
                self.lex_edge(),
            ],
            Family::Zrange => self.zrange(),
            Family::Zrangestore => self.zrangestore(),
            Family::Zrank => {
                let (key, pool) = self.any_key();
                let name = *self.rng.pick(&["ZRANK", "ZREVRANK"]);
                vec![self.name(name), key, self.member_for(pool)]
            }
            Family::Zpop => self.zpop(),
            Family::Zmpop => self.zmpop(),
            Family::Zsetop => self.zsetop(false),
            Family::Zsetopstore => self.zsetop(true),
            Family::Zintercard => self.zintercard(),
            Family::Zrandmember => self.zrandmember(),
            Family::Zscan => self.zscan(),
            Family::Zremrange => self.zremrange(),
            Family::Inspect => self.inspect(),
            Family::StringCmd => self.string_cmd(),
            Family::Generic => self.generic(),
            Family::Hello => {
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
            Family::WrongArity => self.wrong_arity(),
        })
    }

    fn zadd(&mut self) -> Vec<Vec<u8>> {
        let (key, pool) = match self.rng.below(10) {
            0..=5 => (self.pool_key(Pool::Small), Pool::Small),
            6..=7 => (self.pool_key(Pool::Big), Pool::Big),
            _ => (self.pool_key(Pool::Lex), Pool::Lex),
        };
        let mut c = vec![self.name("ZADD"), key];
        // Options in any order, sometimes conflicting.
        let mut opts: Vec<&str> = Vec::new();
        if self.rng.chance(25) {
            opts.push(*self.rng.pick(&["NX", "XX"]));
        }
        if self.rng.chance(20) && pool != Pool::Lex {
            opts.push(*self.rng.pick(&["GT", "LT"]));
        }
        if self.rng.chance(20) {
            opts.push("CH");
        }
        if self.rng.chance(12) && pool != Pool::Lex {
            opts.push("INCR");
        }
        if self.rng.chance(4) {
            opts.push(*self.rng.pick(&["NX", "XX", "GT", "LT", "INCR"]));
        }
        self.rng.shuffle(&mut opts);
        let xx = opts.contains(&"XX");
        for o in opts {
            c.push(self.word(o));
        }
        let pairs = if self.rng.chance(80) {
            self.rng.range(1, 3)
        } else {
            self.rng.range(1, 6)
        };
        for _ in 0..pairs {
            let score = if pool == Pool::Lex {
                b"0".to_vec()
            } else {
                self.score()
            };
            c.push(score);
            let mut member = self.member_for(pool);
            if xx && member.len() > 64 {
                // Valkey 8 converts the set before XX finds the member missing
                // (zsetTypeMaybeConvert); redis-server 7.0 converts only when it adds it.
                member = b"m000".to_vec();
            }
            c.push(member);
        }
        if self.rng.chance(3) {
            // A score without a member.
            c.push(self.score());
        }
        if c.iter().any(|a| a.len() > 64) {
            // With a member too long for a listpack, Valkey 8 converts the set to a skiplist
            // before adding anything (so a -0 score stays -0); redis-server 7.0 adds the
            // members before it into the listpack first (where -0 is stored as 0).
            for a in c.iter_mut() {
                if a.as_slice() == b"-0" {
                    *a = b"0".to_vec();
                }
            }
        }
        c
    }

    /// A ZADD of many members, past the listpack limit, into a BIG or LEX key.
    fn zadd_big(&mut self) -> Vec<Vec<u8>> {
        let lex = self.rng.chance(30);
        let key = if lex {
            b"{t}zlexbig".to_vec()
        } else {
            self.pool_key(Pool::Big)
        };
        let mut c = vec![self.name("ZADD"), key];
        let n = self.rng.range(100, 140);
        let base = self.rng.below(60);
        for i in 0..n {
            if lex {
                c.push(b"0".to_vec());
                c.push(format!("w{:03}", (base as i64 + i) % 200).into_bytes());
            } else {
                c.push(self.rng.range(-50, 50).to_string().into_bytes());
                c.push(format!("m{:03}", (base as i64 + i) % 200).into_bytes());
            }
        }
        c
    }

    fn zincrby(&mut self) -> Vec<Vec<u8>> {
        let pool = if self.rng.chance(70) {
            Pool::Small
        } else {
            Pool::Big
        };
        let key = self.pool_key(pool);
        let incr = if self.rng.chance(5) {
            let w = *self.rng.pick(&["NX", "XX", "GT"]);
            self.word(w)
        } else {
            self.score()
        };
        vec![self.name("ZINCRBY"), key, incr, self.member_for(pool)]
    }

    fn zrange(&mut self) -> Vec<Vec<u8>> {
        let form = *self.rng.pick(&[
            "ZRANGE",
            "ZRANGE",
            "ZRANGE",
            "ZREVRANGE",
            "ZRANGEBYSCORE",
            "ZREVRANGEBYSCORE",
            "ZRANGEBYLEX",
            "ZREVRANGEBYLEX",
        ]);
        let kind = match form {
            "ZRANGE" => *self.rng.pick(&["rank", "rank", "score", "lex"]),
            "ZREVRANGE" => "rank",
            "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE" => "score",
            _ => "lex",
        };
        let (key, pool) = if kind == "lex" {
            self.lex_key()
        } else {
            self.any_key()
        };
        let negative_ok = Self::always_listpack(&key, pool);
        let mut c = vec![self.name(form), key];
        match kind {
            "rank" => {
                c.push(self.rank());
                c.push(self.rank());
            }
            "score" => {
                c.push(self.score_edge());
                c.push(self.score_edge());
            }
            _ => {
                c.push(self.lex_edge());
                c.push(self.lex_edge());
            }
        }
        let mut opts: Vec<Vec<Vec<u8>>> = Vec::new();
        if form == "ZRANGE" {
            if kind == "score" || (kind == "rank" && self.rng.chance(5)) {
                opts.push(vec![self.word("BYSCORE")]);
            }
            if kind == "lex" {
                opts.push(vec![self.word("BYLEX")]);
            }
            if self.rng.chance(35) {
                opts.push(vec![self.word("REV")]);
            }
        }
        // WITHSCORES with BYLEX and LIMIT with a rank range are errors: rarely.
        let withscores = self.rng.chance(40);
        if withscores && (kind != "lex" || self.rng.chance(10)) {
            opts.push(vec![self.word("WITHSCORES")]);
        }
        let limit = self.rng.chance(35);
        if limit && (kind != "rank" || self.rng.chance(10)) {
            opts.push(self.limit(negative_ok));
        }
        if self.rng.chance(3) {
            let w = *self.rng.pick(&["REV", "BYSCORE", "FOO", "WITHSCORE"]);
            opts.push(vec![self.word(w)]);
        }
        self.rng.shuffle(&mut opts);
        for o in opts {
            c.extend(o);
        }
        c
    }

    fn zrangestore(&mut self) -> Vec<Vec<u8>> {
        // Small destinations only take small sources; lexicographic ranges only read keys
        // where they are well defined.
        let big_dst = self.rng.chance(30);
        let dst = if big_dst {
            self.pool_key(Pool::Big)
        } else {
            self.pool_key(Pool::Small)
        };
        let kind = *self.rng.pick(&["rank", "score", "lex"]);
        let (src, pool) = match (big_dst, kind) {
            (false, _) => (self.pool_key(Pool::Small), Pool::Small),
            (true, "lex") => self.lex_key(),
            (true, _) => self.any_key(),
        };
        let negative_ok = Self::always_listpack(&src, pool);
        let mut c = vec![self.name("ZRANGESTORE"), dst, src];
        match kind {
            "rank" => {
                c.push(self.rank());
                c.push(self.rank());
            }
            "score" => {
                c.push(self.score_edge());
                c.push(self.score_edge());
                c.push(self.word("BYSCORE"));
            }
            _ => {
                c.push(self.lex_edge());
                c.push(self.lex_edge());
                c.push(self.word("BYLEX"));
            }
        }
        if self.rng.chance(30) {
            c.push(self.word("REV"));
        }
        if kind != "rank" && self.rng.chance(30) {
            c.extend(self.limit(negative_ok));
        }
        if self.rng.chance(4) {
            c.push(self.word("WITHSCORES"));
        }
        c
    }

    fn zpop(&mut self) -> Vec<Vec<u8>> {
        let name = *self.rng.pick(&["ZPOPMIN", "ZPOPMAX"]);
        let mut c = vec![self.name(name), self.any_key().0];
        match self.rng.below(10) {
            0..=3 => {}
            4..=8 => c.push(self.rng.range(0, 4).to_string().into_bytes()),
            _ => c.push(self.rng.pick(&["-1", "x", "1 "]).as_bytes().to_vec()),
        }
        if self.rng.chance(3) {
            c.push(b"1".to_vec());
        }
        c
    }

    fn zmpop(&mut self) -> Vec<Vec<u8>> {
        let n = self.rng.range(1, 3);
        let mut c = vec![self.name("ZMPOP")];
        if self.rng.chance(5) {
            c.push(self.rng.pick(&["0", "-1", "x", "5"]).as_bytes().to_vec());
        } else {
            c.push(n.to_string().into_bytes());
        }
        for _ in 0..n {
            c.push(self.any_key().0);
        }
        let where_ = if self.rng.chance(5) {
            "FOO"
        } else {
            *self.rng.pick(&["MIN", "MAX"])
        };
        c.push(self.word(where_));
        if self.rng.chance(50) {
            c.push(self.word("COUNT"));
            c.push(
                self.rng
                    .pick(&["1", "2", "3", "10", "0", "-1", "x"])
                    .as_bytes()
                    .to_vec(),
            );
        }
        if self.rng.chance(3) {
            c.push(self.word("COUNT"));
        }
        c
    }

    /// Input keys of ZUNION/ZINTER/ZDIFF: any pool when reading or storing into a BIG key,
    /// small ones when storing into a small key.
    fn inputs(&mut self, n: i64, small_only: bool) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                if small_only {
                    self.pool_key(Pool::Small)
                } else {
                    self.any_key().0
                }
            })
            .collect()
    }

    fn zsetop(&mut self, store: bool) -> Vec<Vec<u8>> {
        let op = *self.rng.pick(&["UNION", "INTER", "DIFF"]);
        let name = if store {
            format!("Z{op}STORE")
        } else {
            format!("Z{op}")
        };
        let n = self.rng.range(1, 3);
        let mut c = vec![self.name(&name)];
        let mut small_only = false;
        if store {
            let big_dst = self.rng.chance(35);
            small_only = !big_dst;
            c.push(if big_dst {
                self.pool_key(Pool::Big)
            } else {
                self.pool_key(Pool::Small)
            });
        }
        if self.rng.chance(5) {
            c.push(self.rng.pick(&["0", "-1", "x", "9"]).as_bytes().to_vec());
        } else {
            c.push(n.to_string().into_bytes());
        }
        c.extend(self.inputs(n, small_only));
        let mut opts: Vec<Vec<Vec<u8>>> = Vec::new();
        if op != "DIFF" || self.rng.chance(5) {
            if self.rng.chance(35) {
                let mut w = vec![self.word("WEIGHTS")];
                for _ in 0..n {
                    w.push(
                        self.rng
                            .pick(&["1", "2", "0", "-1", "0.5", "inf", "-inf", "1e308", "x"])
                            .as_bytes()
                            .to_vec(),
                    );
                }
                opts.push(w);
            }
            if self.rng.chance(35) {
                let agg = *self.rng.pick(&["SUM", "MIN", "MAX", "AVG"]);
                opts.push(vec![self.word("AGGREGATE"), self.word(agg)]);
            }
        }
        if (!store || self.rng.chance(5)) && self.rng.chance(50) {
            opts.push(vec![self.word("WITHSCORES")]);
        }
        self.rng.shuffle(&mut opts);
        for o in opts {
            c.extend(o);
        }
        c
    }

    fn zintercard(&mut self) -> Vec<Vec<u8>> {
        let n = self.rng.range(1, 3);
        let mut c = vec![self.name("ZINTERCARD"), n.to_string().into_bytes()];
        c.extend(self.inputs(n, false));
        if self.rng.chance(50) {
            c.push(self.word("LIMIT"));
            c.push(
                self.rng
                    .pick(&["0", "1", "2", "10", "-1", "x"])
                    .as_bytes()
                    .to_vec(),
            );
        }
        c
    }

    fn zrandmember(&mut self) -> Vec<Vec<u8>> {
        let mut c = vec![self.name("ZRANDMEMBER"), self.any_key().0];
        if self.rng.chance(75) {
            c.push(
                self.rng
                    .pick(&[
                        "0",
                        "1",
                        "2",
                        "3",
                        "5",
                        "-1",
                        "-3",
                        "-6",
                        "200",
                        "x",
                        "-9223372036854775808",
                    ])
                    .as_bytes()
                    .to_vec(),
            );
            if self.rng.chance(50) {
                let w = *self.rng.pick(&["WITHSCORES", "WITHSCORES", "WITHSCORE"]);
                c.push(self.word(w));
            }
        }
        c
    }

    fn zscan(&mut self) -> Vec<Vec<u8>> {
        let mut c = vec![self.name("ZSCAN"), self.any_key().0];
        c.push(if self.rng.chance(5) {
            b"x".to_vec()
        } else {
            b"0".to_vec()
        });
        if self.rng.chance(40) {
            c.push(self.word("MATCH"));
            c.push(
                self.rng
                    .pick(&["*", "m1*", "?", "[a-c]", "w0?0", "*x*"])
                    .as_bytes()
                    .to_vec(),
            );
        }
        if self.rng.chance(40) {
            c.push(self.word("COUNT"));
            c.push(
                self.rng
                    .pick(&["1", "5", "100", "0", "x"])
                    .as_bytes()
                    .to_vec(),
            );
        }
        if self.rng.chance(3) {
            c.push(self.word("TYPE"));
            c.push(b"zset".to_vec());
        }
        c
    }

    fn zremrange(&mut self) -> Vec<Vec<u8>> {
        match self.rng.below(3) {
            0 => vec![
                self.name("ZREMRANGEBYRANK"),
                self.any_key().0,
                self.rank(),
                self.rank(),
            ],
            1 => vec![
                self.name("ZREMRANGEBYSCORE"),
                self.any_key().0,
                self.score_edge(),
                self.score_edge(),
            ],
            _ => vec![
                self.name("ZREMRANGEBYLEX"),
                self.lex_key().0,
                self.lex_edge(),
                self.lex_edge(),
            ],
        }
    }

    /// Reads that show a whole set or its encoding (so a write that answered right but
    /// stored something wrong is caught).
    fn inspect(&mut self) -> Vec<Vec<u8>> {
        let key = self.any_key().0;
        match self.rng.below(3) {
            0 => vec![b"OBJECT".to_vec(), self.word("ENCODING"), key],
            1 => vec![b"TYPE".to_vec(), key],
            _ => vec![
                b"ZRANGE".to_vec(),
                key,
                b"0".to_vec(),
                b"-1".to_vec(),
                b"WITHSCORES".to_vec(),
            ],
        }
    }

    fn string_cmd(&mut self) -> Vec<Vec<u8>> {
        let key = if self.rng.chance(85) {
            self.pool_key(Pool::Small)
        } else {
            self.any_key().0
        };
        match self.rng.below(5) {
            0 => vec![
                self.name("SET"),
                key,
                self.rng.pick(&["v", "1", "", "1.5"]).as_bytes().to_vec(),
            ],
            1 | 2 => vec![self.name("GET"), key],
            3 => vec![self.name("STRLEN"), key],
            _ => vec![self.name("APPEND"), key, b"x".to_vec()],
        }
    }

    fn generic(&mut self) -> Vec<Vec<u8>> {
        match self.rng.below(10) {
            0..=2 => {
                let mut c = vec![self.name("DEL"), self.any_key().0];
                if self.rng.chance(30) {
                    c.push(self.any_key().0);
                }
                c
            }
            3 => vec![self.name("EXISTS"), self.any_key().0, self.any_key().0],
            4 => {
                // Long TTLs, or none left (the key goes at once).
                let secs = *self.rng.pick(&["1000", "100000", "0", "-5"]);
                vec![
                    self.name("EXPIRE"),
                    self.any_key().0,
                    secs.as_bytes().to_vec(),
                ]
            }
            5 => vec![self.name("TTL"), self.any_key().0],
            6 => vec![self.name("PERSIST"), self.any_key().0],
            7 => {
                let name = *self.rng.pick(&["RENAME", "RENAMENX"]);
                vec![
                    self.name(name),
                    self.pool_key(Pool::Small),
                    self.pool_key(Pool::Small),
                ]
            }
            8 => {
                let mut c = vec![
                    self.name("COPY"),
                    self.pool_key(Pool::Small),
                    self.pool_key(Pool::Small),
                ];
                if self.rng.chance(50) {
                    c.push(self.word("REPLACE"));
                }
                c
            }
            _ => vec![self.name("TYPE"), self.any_key().0],
        }
    }

    fn wrong_arity(&mut self) -> Vec<Vec<u8>> {
        let name = *self.rng.pick(&[
            "ZADD",
            "ZINCRBY",
            "ZREM",
            "ZSCORE",
            "ZMSCORE",
            "ZCARD",
            "ZCOUNT",
            "ZLEXCOUNT",
            "ZRANGE",
            "ZRANGESTORE",
            "ZREVRANGE",
            "ZRANGEBYSCORE",
            "ZRANGEBYLEX",
            "ZRANK",
            "ZPOPMIN",
            "ZMPOP",
            "ZUNION",
            "ZINTERSTORE",
            "ZDIFF",
            "ZINTERCARD",
            "ZRANDMEMBER",
            "ZSCAN",
            "ZREMRANGEBYRANK",
            "ZREMRANGEBYLEX",
            "ZREMRANGEBYSCORE",
        ]);
        let n = self.rng.range(0, 2);
        let mut c = vec![self.name(name)];
        for _ in 0..n {
            c.push(self.pool_key(Pool::Small));
        }
        c
    }
}

impl crate::diff::StepSource for ZsetGenerator {
    fn next_planned(&mut self) -> crate::diff::Planned {
        crate::diff::Planned::Step(ZsetGenerator::next_step(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same seed gives the same steps.
    #[test]
    fn deterministic() {
        let mut a = ZsetGenerator::new(9);
        let mut b = ZsetGenerator::new(9);
        for _ in 0..500 {
            assert_eq!(a.next_step(), b.next_step());
        }
    }

    /// Lexicographic commands never read a BIG key, stores into small keys never read big
    /// ones, and negative LIMIT offsets never go to a key that may be a skiplist.
    #[test]
    fn keeps_to_defined_answers() {
        let mut g = ZsetGenerator::new(1);
        for _ in 0..20_000 {
            let Step::Command(c) = g.next_step() else {
                continue;
            };
            let name = String::from_utf8_lossy(&c[0]).to_ascii_uppercase();
            let has = |w: &str| c.iter().any(|a| a.eq_ignore_ascii_case(w.as_bytes()));
            let lex = name.contains("LEX") || has("BYLEX");
            let at = |i: usize| c.get(i).map(Vec::as_slice).into_iter().collect::<Vec<_>>();
            let keys_at: Vec<&[u8]> = match name.as_str() {
                "ZRANGESTORE" => at(2),
                _ if name.starts_with("ZRANGE")
                    || name.starts_with("ZREV")
                    || name == "ZLEXCOUNT"
                    || name.starts_with("ZREM") =>
                {
                    at(1)
                }
                _ => vec![],
            };
            for k in &keys_at {
                if lex {
                    assert!(!BIG.contains(k), "lex on a big key: {c:?}");
                }
                let limit = c.iter().position(|a| a.eq_ignore_ascii_case(b"LIMIT"));
                if let Some(off) = limit.and_then(|i| c.get(i + 1)) {
                    if off.first() == Some(&b'-') {
                        assert!(
                            SMALL.contains(k) || *k == b"zlex",
                            "negative offset on {c:?}"
                        );
                    }
                }
            }
            if name.ends_with("STORE") && c.len() > 1 && SMALL.contains(&c[1].as_slice()) {
                let from = if name == "ZRANGESTORE" { 2 } else { 3 };
                for k in c.iter().skip(from) {
                    assert!(
                        !BIG.contains(&k.as_slice()) && !LEX.contains(&k.as_slice()),
                        "{c:?}"
                    );
                }
            }
        }
    }
}
