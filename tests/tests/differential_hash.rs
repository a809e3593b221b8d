//! Differential tests of the hash family: seeded sequences from `corekey_tests::gen_hash` (hash
//! commands mixed with string and generic ones on shared keys) go to corekey (2 shards) and to
//! a real redis-server, and the replies must be the same bytes, or the same by the family's
//! judgement of hash-table order and random picks (`gen_hash` says which and why). Replay one
//! seed with `COREKEY_DIFF_SEED=<seed>`, soak with `COREKEY_DIFF_SEEDS=<n>` (seeds 1..=n).

use corekey_tests::diff::{self, Side};
use corekey_tests::gen_hash::HashSteps;
use corekey_tests::server::{Corekey, RedisServer};

/// Seeds run by default (5 × 2,000 = 10,000 commands).
const SEEDS: &[u64] = &[1, 2, 3, 4, 5];
const STEPS_PER_SEED: usize = 2_000;

/// Runs every seed against both servers and fails with every mismatch report; stops early if
/// a server stops answering.
fn run_all(a: Side, b: Side, both_alive: impl Fn() -> bool) {
    let seeds = diff::seeds_from_env(SEEDS);
    diff::run_seeds(a, b, &seeds, STEPS_PER_SEED, HashSteps::new, both_alive);
}

/// corekey (2 shards) answers each generated hash sequence as redis-server does.
#[test]
fn hashes_match_redis_server() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let corekey = Corekey::start(&[]);
    run_all(
        Side {
            name: "corekey",
            addr: corekey.addr(),
        },
        Side {
            name: "redis-server",
            addr: redis.addr(),
        },
        || corekey.answers_ping() && redis.answers_ping(),
    );
}

/// The hash generator and its judgement raise no false alarms: two redis-servers fed the same
/// sequences never differ.
#[test]
fn redis_server_matches_itself_on_hashes() {
    let Some(a) = RedisServer::start() else {
        return;
    };
    let Some(b) = RedisServer::start() else {
        return;
    };
    run_all(
        Side {
            name: "redis-server A",
            addr: a.addr(),
        },
        Side {
            name: "redis-server B",
            addr: b.addr(),
        },
        || a.answers_ping() && b.answers_ping(),
    );
}
