//! The combined differential generator: the steps of every family's generator (strings and
//! keys, hashes, lists with their blocking commands, sets, sorted sets) interleaved on one
//! small shared key space, so values of every type meet each other's commands (WRONGTYPE),
//! plus transactions (MULTI/EXEC/DISCARD, WATCH/UNWATCH), BZPOPMIN/BZPOPMAX/BZMPOP with
//! timeouts that end at once or after a few milliseconds, and PUBLISH/SPUBLISH/PUBSUB against
//! subscribers the test opens beforehand (see [`CHANNELS`]).
//!
//! Each family generator names its own keys; this one maps them onto [`SHARED`] (an argument
//! equal to one of the family's keys becomes the shared key of the same index; a value that
//! happens to equal a key name is renamed too, which changes nothing for the comparison).
//! The sorted set generator keeps away from undefined answers by keeping its lexicographic
//! and negative-LIMIT commands to keys that only ever hold small sorted sets (see
//! `gen_zset`), and sets are valid inputs of its ZUNIONSTORE and friends: so sets never reach
//! the half of the shared keys sorted sets use ([`Z_SIDE`]). Set commands go to [`S_SIDE`],
//! sorted set commands to `Z_SIDE`, and every other family to both, except that a RENAME or
//! COPY between the halves is turned into one within the source's half, and the list
//! generator's SADD goes to `S_SIDE`. The sorted set generator's own big and lexicographic
//! keys stay its own.
//!
//! In a transaction only commands whose replies compare byte for byte are queued (no random
//! picks, hash-ordered replies, clock readings or score texts, which have their own rules
//! outside EXEC; never MULTI or WATCH, where redis 7.0 differs from Valkey 8), and nothing
//! else runs between WATCH and EXEC.

use crate::client::Frame;
use crate::diff::{rule_for, Pair, Planned, Rule, StepSource};
use crate::gen::{self, Generator, SplitMix64, Step};
use crate::gen_hash::{self, HashSteps};
use crate::gen_list::{self, ListGenerator};
use crate::gen_set::{self, SetGenerator};
use crate::gen_zset::ZsetGenerator;
use std::collections::VecDeque;

/// Keys sorted sets may use (on both shards of a 2-core node).
pub const Z_SIDE: &[&[u8]] = &[b"a", b"k*", b"{t}a", b"{u}1"];
/// Keys sets may use (on both shards).
pub const S_SIDE: &[&[u8]] = &[b"b", b"c", b"foo", b"{t}b"];
/// The whole shared key space, halves interleaved.
pub const SHARED: &[&[u8]] = &[b"a", b"b", b"k*", b"c", b"{t}a", b"foo", b"{u}1", b"{t}b"];
/// The sorted set generator's own keys (big and lexicographic sets), left as they are.
pub const ZSET_OWN: &[&[u8]] = &[b"zbig", b"{t}zbig", b"{u}zbig", b"zlex", b"{t}zlexbig"];
/// Every key the state check reads.
pub const STATE_KEYS: &[&[u8]] = &[
    b"a",
    b"b",
    b"k*",
    b"c",
    b"{t}a",
    b"foo",
    b"{u}1",
    b"{t}b",
    b"zbig",
    b"{t}zbig",
    b"{u}zbig",
    b"zlex",
    b"{t}zlexbig",
];
pub const STATE_READS: &[&str] = &[
    "TYPE",
    "PTTL",
    "GET",
    "LRANGE 0 -1",
    "SMEMBERS",
    "HLEN",
    "ZRANGE 0 -1 WITHSCORES",
];

/// Channels the test subscribes before the run (the same on both servers); the generator
/// publishes to these and to channels nobody listens to.
pub const CHANNELS: &[&str] = &["news", "ch:1", "ch:2"];
/// Patterns the test subscribes.
pub const PATTERNS: &[&str] = &["ch:*"];
/// Shard channels the test subscribes.
pub const SHARD_CHANNELS: &[&str] = &["snews", "{t}s"];

/// Commands never queued in a transaction: their replies are random picks, in hash order, or
/// judged by a family's own check (none of which applies inside an EXEC reply), or they
/// change the protocol.
const NOT_IN_TRANSACTIONS: &[&str] = &[
    "HELLO",
    "HGETALL",
    "HKEYS",
    "HVALS",
    "HSCAN",
    "HRANDFIELD",
    "SPOP",
    "SRANDMEMBER",
    "SSCAN",
    "SCAN",
    "KEYS",
    "RANDOMKEY",
    "MULTI",
    "WATCH",
    "UNWATCH",
    "EXEC",
    "DISCARD",
];

#[derive(Clone, Copy, PartialEq, Debug)]
enum Family {
    Strings,
    Hash,
    List,
    Set,
    Zset,
}

/// The generator of one seed.
pub struct MixedGenerator {
    rng: SplitMix64,
    strings: Generator,
    hash: HashSteps,
    list: ListGenerator,
    set: SetGenerator,
    zset: ZsetGenerator,
    /// Steps of a block (a transaction) still to send.
    pending: VecDeque<Planned>,
}

impl MixedGenerator {
    pub fn new(seed: u64) -> Self {
        Self::with_list(seed, ListGenerator::new(seed))
    }

    /// The steps of [`MixedGenerator::new`] for a run against Valkey 8.0 itself: the list
    /// steps of `ListGenerator::for_valkey` (LSET indexes within a C int).
    pub fn for_valkey(seed: u64) -> Self {
        Self::with_list(seed, ListGenerator::for_valkey(seed))
    }

    fn with_list(seed: u64, list: ListGenerator) -> Self {
        MixedGenerator {
            rng: SplitMix64::new(seed ^ 0x6d69_7865_6400_0000),
            strings: Generator::new(seed),
            hash: HashSteps::new(seed),
            list,
            set: SetGenerator::new(seed.wrapping_add(0x5e75)),
            zset: ZsetGenerator::new(seed),
            pending: VecDeque::new(),
        }
    }

    fn family(&mut self) -> Family {
        match self.rng.below(100) {
            0..=17 => Family::Strings,
            18..=37 => Family::Hash,
            38..=62 => Family::List,
            63..=79 => Family::Set,
            _ => Family::Zset,
        }
    }

    /// One step of `family`, its keys mapped onto the shared space.
    fn family_step(&mut self, family: Family) -> Planned {
        let planned = match family {
            Family::Strings => self.strings.next_planned(),
            Family::Hash => self.hash.next_planned(),
            Family::List => self.list.next_planned(),
            Family::Set => self.set.next_planned(),
            Family::Zset => self.zset.next_planned(),
        };
        let map = |cmd: &mut Vec<Vec<u8>>| remap(family, cmd);
        match planned {
            Planned::Step(Step::Command(mut c)) => {
                map(&mut c);
                Planned::Step(Step::Command(c))
            }
            Planned::KeyScanAll(mut c) => {
                map(&mut c);
                Planned::KeyScanAll(c)
            }
            Planned::SetSample(mut c) => {
                map(&mut c);
                Planned::SetSample(c)
            }
            // SCAN and RANDOMKEY name no key.
            other => other,
        }
    }

    /// A plain command of any family that may go inside a transaction (bounded tries, then
    /// a GET).
    fn queueable(&mut self) -> Vec<Vec<u8>> {
        for _ in 0..50 {
            let family = self.family();
            if let Planned::Step(Step::Command(c)) = self.family_step(family) {
                let name = String::from_utf8_lossy(&c[0]).to_ascii_uppercase();
                if rule_for(&c) == Rule::Exact && !NOT_IN_TRANSACTIONS.contains(&name.as_str()) {
                    return c;
                }
            }
        }
        vec![b"GET".to_vec(), b"a".to_vec()]
    }

    fn shared_key(&mut self) -> Vec<u8> {
        self.rng.pick(SHARED).to_vec()
    }

    /// WATCH (sometimes), commands, MULTI, queued commands, EXEC or DISCARD.
    fn transaction(&mut self) {
        let mut steps: Vec<Vec<Vec<u8>>> = Vec::new();
        if self.rng.chance(45) {
            let mut c = vec![b"WATCH".to_vec(), self.shared_key()];
            if self.rng.chance(40) {
                c.push(self.shared_key());
            }
            steps.push(c);
            for _ in 0..self.rng.below(3) {
                steps.push(self.queueable());
            }
            if self.rng.chance(10) {
                steps.push(vec![b"UNWATCH".to_vec()]);
            }
        }
        steps.push(vec![b"MULTI".to_vec()]);
        // No MULTI or WATCH inside MULTI: Valkey 8 refuses both as "Command not allowed
        // inside a transaction" and so aborts the EXEC (EXECABORT), as corekey does; redis
        // 7.0 answers "MULTI calls can not be nested" / "WATCH inside MULTI is not allowed"
        // and still runs the transaction.
        for _ in 0..self.rng.range(1, 5) {
            steps.push(self.queueable());
        }
        steps.push(if self.rng.chance(15) {
            vec![b"DISCARD".to_vec()]
        } else {
            vec![b"EXEC".to_vec()]
        });
        self.pending
            .extend(steps.into_iter().map(|c| Planned::Step(Step::Command(c))));
    }

    /// BZPOPMIN, BZPOPMAX or BZMPOP on sorted set keys, with a short timeout.
    fn bzpop(&mut self) -> Vec<Vec<u8>> {
        let zkey = |g: &mut Self| -> Vec<u8> {
            if g.rng.chance(70) {
                g.rng.pick(Z_SIDE).to_vec()
            } else {
                g.rng.pick(ZSET_OWN).to_vec()
            }
        };
        let timeout = self.rng.pick(&["0.01", "0.02", ".01"]).as_bytes().to_vec();
        if self.rng.chance(60) {
            let name = *self.rng.pick(&["BZPOPMIN", "BZPOPMAX"]);
            let mut c = vec![name.as_bytes().to_vec()];
            for _ in 0..self.rng.range(1, 2) {
                c.push(zkey(self));
            }
            c.push(timeout);
            c
        } else {
            let n = self.rng.range(1, 2);
            let mut c = vec![b"BZMPOP".to_vec(), timeout, n.to_string().into_bytes()];
            for _ in 0..n {
                c.push(zkey(self));
            }
            c.push(self.rng.pick(&["MIN", "MAX", "max"]).as_bytes().to_vec());
            if self.rng.chance(50) {
                c.push(b"COUNT".to_vec());
                c.push(self.rng.pick(&["1", "2", "5", "0"]).as_bytes().to_vec());
            }
            c
        }
    }

    /// PUBLISH, SPUBLISH or a PUBSUB introspection whose answer is defined.
    fn pubsub(&mut self) -> Vec<Vec<u8>> {
        let channel = |g: &mut Self| -> Vec<u8> {
            if g.rng.chance(75) {
                g.rng.pick(CHANNELS).as_bytes().to_vec()
            } else {
                g.rng.pick(&["nobody", "ch:", "a"]).as_bytes().to_vec()
            }
        };
        let words = |v: &[&str]| v.iter().map(|w| w.as_bytes().to_vec()).collect::<Vec<_>>();
        match self.rng.below(10) {
            0..=4 => vec![b"PUBLISH".to_vec(), channel(self), b"msg".to_vec()],
            5..=6 => {
                let ch = *self.rng.pick(&["snews", "{t}s", "nobody"]);
                words(&["SPUBLISH", ch, "m"])
            }
            7 => {
                let mut c = words(&["PUBSUB", "NUMSUB"]);
                for _ in 0..self.rng.below(3) {
                    c.push(channel(self));
                }
                c
            }
            8 => {
                let sub = *self.rng.pick(&["NUMPAT", "SHARDNUMSUB"]);
                let mut c = words(&["PUBSUB", sub]);
                if sub == "SHARDNUMSUB" {
                    c.push(self.rng.pick(SHARD_CHANNELS).as_bytes().to_vec());
                }
                c
            }
            _ => {
                // Patterns matching at most one channel, so the order is defined.
                let (sub, pattern) = *self.rng.pick(&[
                    ("CHANNELS", "n*"),
                    ("CHANNELS", "ch:1"),
                    ("CHANNELS", "x*"),
                    ("SHARDCHANNELS", "s*"),
                ]);
                words(&["PUBSUB", sub, pattern])
            }
        }
    }
}

/// The index of `arg` in `keys`.
fn index_in(keys: &[&[u8]], arg: &[u8]) -> Option<usize> {
    keys.iter().position(|k| *k == arg)
}

/// Maps a family's keys onto the shared space (see the module comment).
fn remap(family: Family, cmd: &mut [Vec<u8>]) {
    let name = cmd
        .first()
        .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase())
        .unwrap_or_default();
    let (own, target): (&[&[u8]], &[&[u8]]) = match family {
        Family::Strings => (gen::KEYS, SHARED),
        Family::Hash => (gen_hash::KEYS, SHARED),
        Family::List if name == "SADD" => (gen_list::KEYS, S_SIDE),
        Family::List => (gen_list::KEYS, SHARED),
        Family::Set => (gen_set::KEYS, S_SIDE),
        // The sorted set generator's small keys are string-generator keys.
        Family::Zset => (gen::KEYS, Z_SIDE),
    };
    for arg in cmd.iter_mut().skip(1) {
        if let Some(i) = index_in(own, arg) {
            *arg = target[i % target.len()].to_vec();
        }
    }
    // A value moved between the halves could carry a set to where sorted set commands read.
    if matches!(name.as_str(), "RENAME" | "RENAMENX" | "COPY") && cmd.len() >= 3 {
        let side = |k: &[u8]| {
            if Z_SIDE.contains(&k) {
                Some(Z_SIDE)
            } else if S_SIDE.contains(&k) {
                Some(S_SIDE)
            } else {
                None
            }
        };
        if let (Some(from), Some(to)) = (side(&cmd[1]), side(&cmd[2])) {
            if from != to {
                let i = index_in(to, &cmd[2]).unwrap_or(0);
                cmd[2] = from[i].to_vec();
            }
        }
    }
}

impl StepSource for MixedGenerator {
    fn next_planned(&mut self) -> Planned {
        if let Some(p) = self.pending.pop_front() {
            return p;
        }
        match self.rng.below(100) {
            0..=6 => {
                self.transaction();
                self.pending.pop_front().expect("a transaction has steps")
            }
            7..=9 => Planned::Step(Step::Command(self.pubsub())),
            10 => Planned::Step(Step::Command(self.bzpop())),
            _ => {
                let family = self.family();
                self.family_step(family)
            }
        }
    }

    fn state_keys(&self) -> &[&[u8]] {
        STATE_KEYS
    }

    fn state_reads(&self) -> &[&str] {
        STATE_READS
    }

    fn check(
        &mut self,
        cmd: &[Vec<u8>],
        replies: (&Frame, &Frame),
        a: Pair,
        b: Pair,
    ) -> Option<Result<(), String>> {
        self.hash.check(cmd, replies, a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::key_shard;
    use std::collections::BTreeSet;

    /// The same seed gives the same steps.
    #[test]
    fn deterministic() {
        let (mut a, mut b) = (MixedGenerator::new(3), MixedGenerator::new(3));
        for _ in 0..2000 {
            assert_eq!(a.next_planned(), b.next_planned());
        }
    }

    /// Both halves of the shared space, and the whole, are on both shards of a 2-core node.
    #[test]
    fn halves_cover_both_shards() {
        for keys in [Z_SIDE, S_SIDE, SHARED] {
            let shards: BTreeSet<u16> = keys.iter().map(|k| key_shard(k, 2)).collect();
            assert_eq!(shards.len(), 2, "{keys:?}");
        }
        for k in Z_SIDE.iter().chain(S_SIDE) {
            assert!(SHARED.contains(k) && STATE_KEYS.contains(k));
        }
    }

    /// Every family, transactions, blocking forms and pub/sub come up; set commands never
    /// name a sorted set key and sorted set commands never a set key; transactions queue no
    /// command with a rule of its own.
    #[test]
    fn mixes_every_family_and_keeps_sets_from_sorted_sets() {
        let mut g = MixedGenerator::new(1);
        let mut seen = BTreeSet::new();
        let mut in_multi = false;
        for _ in 0..30_000 {
            let Planned::Step(Step::Command(c)) = g.next_planned() else {
                continue;
            };
            let name = String::from_utf8_lossy(&c[0]).to_ascii_uppercase();
            match name.as_str() {
                "MULTI" => in_multi = true,
                "EXEC" | "DISCARD" => in_multi = false,
                _ if in_multi => {
                    assert_eq!(rule_for(&c), Rule::Exact, "{c:?}");
                    assert!(!NOT_IN_TRANSACTIONS.contains(&name.as_str()), "{c:?}");
                }
                _ => {}
            }
            // The key of single-key set and sorted set commands.
            let key = c.get(1).map_or(&b""[..], Vec::as_slice);
            if SET_ONE_KEY.contains(&name.as_str()) {
                assert!(!Z_SIDE.contains(&key), "{c:?}");
            }
            if ZSET_ONE_KEY.contains(&name.as_str()) {
                assert!(!S_SIDE.contains(&key), "{c:?}");
            }
            seen.insert(name);
        }
        for name in [
            "SET",
            "GET",
            "HSET",
            "HGET",
            "LPUSH",
            "BLPOP",
            "BLMOVE",
            "SADD",
            "SINTERSTORE",
            "ZADD",
            "ZRANGEBYLEX",
            "MULTI",
            "EXEC",
            "DISCARD",
            "WATCH",
            "UNWATCH",
            "PUBLISH",
            "SPUBLISH",
            "PUBSUB",
            "BZPOPMIN",
            "BZMPOP",
            "RENAME",
            "COPY",
            "TYPE",
        ] {
            assert!(seen.contains(name), "{name} never generated");
        }
    }

    const SET_ONE_KEY: &[&str] = &["SADD", "SREM", "SCARD", "SISMEMBER", "SMEMBERS"];
    const ZSET_ONE_KEY: &[&str] = &["ZADD", "ZREM", "ZCARD", "ZRANGEBYLEX", "ZSCORE", "ZCOUNT"];
}
