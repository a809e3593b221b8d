//! The differential generator of the set family: seeded sequences of set commands mixed with
//! a few string and generic ones on a small key space, so that sets meet strings (WRONGTYPE),
//! each other across shards (SMOVE and the algebra commands on keys of both shards of a
//! 2-core node, and on keys sharing a hash tag) and every encoding: members are small
//! integers (intsets), short words (listpacks), long words and bulk additions (hashtables),
//! plus integers at the edges of `string2ll` and binary bytes. About one command in eight is
//! invalid on purpose (bad counts, cursors and options, wrong arity), and option words come
//! in odd cases.
//!
//! SPOP and SRANDMEMBER are [`Planned::SetSample`] steps and SSCAN iterations
//! [`Planned::KeyScanAll`] steps, because their single replies may legitimately differ (see
//! `diff`). What the generator leaves out on purpose, each a known difference between
//! redis-server 7.0 (the reference) and Valkey 8 (which corekey follows):
//!
//! - SADD with more than 512 members: Valkey converts an intset to a hashtable up front when
//!   the argument count exceeds `set-max-intset-entries` (even if most are duplicates);
//!   redis 7.0 converts only when the set really grows past it.
//! - SSCAN with a negative cursor: Valkey's `string2ull` rejects it ("invalid cursor"); redis
//!   7.0 reads it with `strtoul`, which wraps "-1" around.
//! - SSCAN's NOVALUES and NOSCORES words: Valkey 8 answers that they belong to HSCAN/ZSCAN;
//!   redis 7.0 does not know them (a syntax error).
//! - SRANDMEMBER with a huge negative count: Valkey (and redis) would build a reply of that
//!   many members; corekey refuses counts beyond its limit.

use crate::diff::{Planned, StepSource};
use crate::gen::{SplitMix64, Step};

/// The key space: keys on both shards of a 2-core node (`s1`, `s3`, `big`, `ints`, `str`
/// on one, `s2`, `s4`, `m` and the `{g}` pair on the other).
pub const KEYS: &[&[u8]] = &[
    b"s1", b"s2", b"s3", b"s4", b"{g}a", b"{g}b", b"big", b"ints", b"str", b"m",
];

/// Integers at the edges of what sets store as integers, and strings that look like ones.
const EDGE_MEMBERS: &[&str] = &[
    "0",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "01",
    "-0",
    "+1",
    " 1",
    "1.5",
    "1e3",
];

const ODD_MEMBERS: &[&[u8]] = &[
    b"",
    b"\x00",
    b"a\x00b",
    b"\xff\xfe",
    b"*",
    b"?",
    b"[a]",
    b"a b",
];

const BAD_COUNTS: &[&str] = &[
    "-1",
    "x",
    "",
    "1.5",
    " 1",
    "-9223372036854775808",
    "9223372036854775808",
];

const PATTERNS: &[&[u8]] = &[
    b"*", b"m*", b"1?", b"*5*", b"[a-c]", b"w1*", b"*\x00*", b"\\*",
];

/// The generator of one seed.
pub struct SetGenerator {
    rng: SplitMix64,
}

impl SetGenerator {
    pub fn new(seed: u64) -> Self {
        SetGenerator {
            rng: SplitMix64::new(seed),
        }
    }

    fn key(&mut self) -> Vec<u8> {
        self.rng.pick(KEYS).to_vec()
    }

    fn keys(&mut self, lo: i64, hi: i64) -> Vec<Vec<u8>> {
        let n = self.rng.range(lo, hi);
        (0..n).map(|_| self.key()).collect()
    }

    fn member(&mut self) -> Vec<u8> {
        match self.rng.below(100) {
            0..=34 => self.rng.range(-5, 40).to_string().into_bytes(),
            35..=44 => self.rng.pick(EDGE_MEMBERS).as_bytes().to_vec(),
            45..=84 => format!("m{}", self.rng.below(60)).into_bytes(),
            85..=92 => {
                // Around the 64-byte listpack limit.
                let len = self.rng.range(60, 70) as usize;
                let c = b'a' + self.rng.below(3) as u8;
                vec![c; len]
            }
            _ => self.rng.pick(ODD_MEMBERS).to_vec(),
        }
    }

    /// Many members at once, to grow sets past the compact encodings.
    fn bulk_members(&mut self) -> Vec<Vec<u8>> {
        let n = self.rng.range(40, 300);
        let ints = self.rng.chance(50);
        (0..n)
            .map(|_| {
                if ints {
                    self.rng.range(0, 700).to_string().into_bytes()
                } else {
                    format!("w{}", self.rng.below(400)).into_bytes()
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

    fn count(&mut self, choices: &[i64]) -> Vec<u8> {
        if self.rng.chance(8) {
            self.rng.pick(BAD_COUNTS).as_bytes().to_vec()
        } else {
            self.rng.pick(choices).to_string().into_bytes()
        }
    }

    /// The next step.
    pub fn next_step(&mut self) -> Planned {
        let cmd = match self.rng.below(150) {
            0..=17 => {
                let mut c = vec![self.name("SADD"), self.key()];
                if self.rng.chance(10) {
                    c.extend(self.bulk_members());
                } else {
                    let n = self.rng.range(1, 5);
                    c.extend((0..n).map(|_| self.member()));
                }
                c
            }
            18..=27 => {
                let mut c = vec![self.name("SREM"), self.key()];
                let n = self.rng.range(1, 6);
                c.extend((0..n).map(|_| self.member()));
                c
            }
            28..=34 => vec![self.name("SMEMBERS"), self.key()],
            35..=38 => vec![self.name("SISMEMBER"), self.key(), self.member()],
            39..=42 => {
                let mut c = vec![self.name("SMISMEMBER"), self.key()];
                let n = self.rng.range(1, 4);
                c.extend((0..n).map(|_| self.member()));
                c
            }
            43..=46 => vec![self.name("SCARD"), self.key()],
            47..=54 => {
                let mut c = vec![self.name("SPOP"), self.key()];
                if self.rng.chance(70) {
                    c.push(self.count(&[0, 1, 2, 3, 5, 10, 50, 200, 1000]));
                }
                if self.rng.chance(3) {
                    c.push(b"1".to_vec());
                }
                return Planned::SetSample(c);
            }
            55..=62 => {
                let mut c = vec![self.name("SRANDMEMBER"), self.key()];
                if self.rng.chance(75) {
                    c.push(self.count(&[0, 1, -1, 2, -2, 5, -5, 20, -20, 100, -100, 1000]));
                }
                if self.rng.chance(3) {
                    c.push(b"1".to_vec());
                }
                return Planned::SetSample(c);
            }
            63..=70 => vec![self.name("SMOVE"), self.key(), self.key(), self.member()],
            71..=85 => {
                let op = *self.rng.pick(&["SINTER", "SUNION", "SDIFF"]);
                let mut c = vec![self.name(op)];
                c.extend(self.keys(1, 4));
                c
            }
            86..=97 => {
                let op = *self.rng.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]);
                let mut c = vec![self.name(op), self.key()];
                c.extend(self.keys(1, 4));
                c
            }
            98..=103 => self.sintercard(),
            104..=109 => return self.sscan(),
            110..=117 => vec![self.name("OBJECT"), self.word("ENCODING"), self.key()],
            118..=121 => {
                let v = if self.rng.chance(50) {
                    self.member()
                } else {
                    b"text".to_vec()
                };
                vec![self.name("SET"), self.key(), v]
            }
            122..=123 => vec![self.name("GET"), self.key()],
            124..=126 => {
                let mut c = vec![self.name("DEL")];
                c.extend(self.keys(1, 2));
                c
            }
            127..=128 => vec![self.name("TYPE"), self.key()],
            129..=130 => vec![
                self.name("EXPIRE"),
                self.key(),
                self.rng.range(1000, 100_000).to_string().into_bytes(),
            ],
            131..=133 => vec![self.name("RENAME"), self.key(), self.key()],
            134..=136 => {
                let mut c = vec![self.name("COPY"), self.key(), self.key()];
                if self.rng.chance(50) {
                    c.push(self.word("REPLACE"));
                }
                c
            }
            137..=138 => vec![self.name("EXISTS"), self.key()],
            139..=140 => vec![
                self.name("HELLO"),
                self.rng.pick(&["2", "3"]).as_bytes().to_vec(),
            ],
            _ => self.wrong_arity(),
        };
        Planned::Step(Step::Command(cmd))
    }

    fn sintercard(&mut self) -> Vec<Vec<u8>> {
        let keys = self.keys(1, 4);
        let numkeys = match self.rng.below(12) {
            0 => b"0".to_vec(),
            1 => (keys.len() + 1).to_string().into_bytes(),
            2 => self.rng.pick(BAD_COUNTS).as_bytes().to_vec(),
            _ => keys.len().to_string().into_bytes(),
        };
        let mut c = vec![self.name("SINTERCARD"), numkeys];
        c.extend(keys);
        match self.rng.below(10) {
            0..=3 => {
                c.push(self.word("LIMIT"));
                c.push(self.count(&[0, 1, 2, 5, 100]));
            }
            4 => c.push(self.word("LIMIT")),
            5 => c.push(self.word("FOO")),
            _ => {}
        }
        c
    }

    fn sscan(&mut self) -> Planned {
        let key = self.key();
        if self.rng.chance(15) {
            // Invalid SSCANs are plain commands: their errors are deterministic.
            let bad: &[&[&str]] = &[
                &["abc"],
                &["1x"],
                &["0", "COUNT", "0"],
                &["0", "COUNT", "-1"],
                &["0", "COUNT", "x"],
                &["0", "COUNT"],
                &["0", "MATCH"],
                &["0", "TYPE", "set"],
                &["0", "FOO"],
            ];
            let mut c = vec![self.name("SSCAN"), key];
            c.extend(self.rng.pick(bad).iter().map(|a| a.as_bytes().to_vec()));
            return Planned::Step(Step::Command(c));
        }
        let mut c = vec![self.name("SSCAN"), key, b"0".to_vec()];
        if self.rng.chance(40) {
            c.push(self.word("MATCH"));
            c.push(self.rng.pick(PATTERNS).to_vec());
        }
        if self.rng.chance(50) {
            c.push(self.word("COUNT"));
            c.push(self.rng.pick(&["1", "5", "10", "100"]).as_bytes().to_vec());
        }
        Planned::KeyScanAll(c)
    }

    fn wrong_arity(&mut self) -> Vec<Vec<u8>> {
        let forms: &[&[&str]] = &[
            &["SADD", "s1"],
            &["SREM", "s1"],
            &["SMEMBERS"],
            &["SMEMBERS", "s1", "s2"],
            &["SISMEMBER", "s1"],
            &["SMISMEMBER", "s1"],
            &["SCARD"],
            &["SPOP"],
            &["SRANDMEMBER"],
            &["SMOVE", "s1", "s2"],
            &["SINTER"],
            &["SINTERCARD", "1"],
            &["SINTERSTORE", "s1"],
            &["SUNIONSTORE", "s1"],
            &["SDIFFSTORE", "s1"],
            &["SSCAN", "s1"],
        ];
        self.rng
            .pick(forms)
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect()
    }
}

impl StepSource for SetGenerator {
    fn next_planned(&mut self) -> Planned {
        self.next_step()
    }

    fn state_keys(&self) -> &[&[u8]] {
        KEYS
    }

    fn state_reads(&self) -> &[&str] {
        &["GET", "PTTL", "SMEMBERS"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::key_shard;

    /// The same seed gives the same steps.
    #[test]
    fn deterministic() {
        let (mut a, mut b) = (SetGenerator::new(9), SetGenerator::new(9));
        for _ in 0..500 {
            assert_eq!(a.next_step(), b.next_step());
        }
    }

    /// The keys spread over both shards of a 2-core node, and the `{g}` pair shares one.
    #[test]
    fn keys_cover_both_shards() {
        let shards: std::collections::BTreeSet<u16> =
            KEYS.iter().map(|k| key_shard(k, 2)).collect();
        assert_eq!(shards.len(), 2);
        assert_eq!(key_shard(b"{g}a", 2), key_shard(b"{g}b", 2));
    }

    /// Every set command comes up, with the sampled and scanning steps, and SADD never sends
    /// more than 512 members (see the module notes).
    #[test]
    fn covers_the_family() {
        let mut g = SetGenerator::new(1);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20_000 {
            let (kind, cmd) = match g.next_step() {
                Planned::Step(Step::Command(c)) => ("", c),
                Planned::SetSample(c) => ("(sample)", c),
                Planned::KeyScanAll(c) => ("(all)", c),
                Planned::Step(other) => panic!("unexpected step {other:?}"),
            };
            let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
            if name == "SADD" {
                assert!(cmd.len() - 2 <= 512);
            }
            seen.insert(format!("{name}{kind}"));
        }
        for name in [
            "SADD",
            "SREM",
            "SMEMBERS",
            "SISMEMBER",
            "SMISMEMBER",
            "SCARD",
            "SPOP(sample)",
            "SRANDMEMBER(sample)",
            "SMOVE",
            "SINTER",
            "SINTERCARD",
            "SINTERSTORE",
            "SUNION",
            "SUNIONSTORE",
            "SDIFF",
            "SDIFFSTORE",
            "SSCAN",
            "SSCAN(all)",
            "OBJECT",
            "SET",
            "GET",
            "DEL",
            "TYPE",
            "EXPIRE",
            "RENAME",
            "COPY",
            "EXISTS",
            "HELLO",
        ] {
            assert!(seen.contains(name), "{name} never generated");
        }
    }
}
