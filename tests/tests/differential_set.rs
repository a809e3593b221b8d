//! Differential tests of the set family: seeded sequences from `corekey_tests::gen_set` (set
//! commands mixed with string and generic ones on a shared key space) go to corekey (2
//! shards) and to a real redis-server, and the replies must agree (`corekey_tests::diff`
//! lists the normalisations and the known differences of redis 7.0). Replay one seed with
//! `COREKEY_DIFF_SEED=<seed>`, or soak with `COREKEY_DIFF_SEEDS=<n>` (seeds 1..=n).

use corekey_tests::diff::{self, Side};
use corekey_tests::gen_set::SetGenerator;
use corekey_tests::server::{Corekey, RedisServer};

/// Seeds run by default (5 × 2,000 = 10,000 commands).
const SEEDS: &[u64] = &[1, 2, 3, 4, 5];
const STEPS_PER_SEED: usize = 2_000;
/// Runs every seed and fails with every mismatch report; stops early if a server stops
/// answering.
fn run_all(a: Side, b: Side, both_alive: impl Fn() -> bool) {
    let seeds = diff::seeds_from_env(SEEDS);
    diff::run_seeds(a, b, &seeds, STEPS_PER_SEED, SetGenerator::new, both_alive);
}

/// corekey (2 shards) answers each generated set-family step as redis-server does: same
/// bytes, or the same up to a documented normalisation or known difference.
#[test]
fn corekey_matches_redis_server_on_sets() {
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

/// The harness has no false alarms on this family: two redis-servers fed the same sequences
/// never differ, so every nondeterministic reply the generator can cause is handled.
#[test]
fn redis_server_matches_itself_on_sets() {
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
