//! Differential tests: the same seeded command sequences (`corekey_tests::gen`) go to corekey
//! and to a real redis-server, and the replies must be the same (`corekey_tests::diff` lists
//! the few normalisations). A mismatch report names the seed and step; replay one seed with
//! `COREKEY_DIFF_SEED=<seed>`, or soak with `COREKEY_DIFF_SEEDS=<n>` (seeds 1..=n).

use corekey_tests::diff::{self, Side};
use corekey_tests::gen::Generator;
use corekey_tests::server::{Corekey, RedisServer};

/// Seeds run by default (5 × 2,500 = 12,500 commands).
const SEEDS: &[u64] = &[1, 2, 3, 4, 5];
const STEPS_PER_SEED: usize = 2_500;

/// Runs every seed against both servers and fails with every mismatch report; stops early
/// if a server stops answering (a crash: its output is printed when the test fails).
fn run_all(a: Side, b: Side, both_alive: impl Fn() -> bool) {
    let seeds = diff::seeds_from_env(SEEDS);
    diff::run_seeds(a, b, &seeds, STEPS_PER_SEED, Generator::new, both_alive);
}

/// corekey (2 shards) answers each generated command as redis-server does: same bytes, or the
/// same up to a documented normalisation.
#[test]
fn corekey_matches_redis_server() {
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

/// The harness itself has no false alarms: two redis-servers fed the same sequences never
/// differ, so every nondeterministic reply the generator can cause is normalised.
#[test]
fn redis_server_matches_itself() {
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
