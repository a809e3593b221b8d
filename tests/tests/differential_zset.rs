//! Differential test of the sorted set family: seeded sequences from
//! `corekey_tests::gen_zset` (Z commands mixed with string and generic ones on a shared key
//! space) go to corekey (2 shards) and to a real redis-server, and the replies must be the
//! same up to the normalisations `corekey_tests::diff` lists (score text, random picks, ZSCAN
//! pages). Replay one seed with `COREKEY_DIFF_SEED=<seed>`, soak with
//! `COREKEY_DIFF_SEEDS=<n>`. To compare with Valkey 8 instead, put a `redis-server` that runs
//! valkey-server first in PATH.

use corekey_tests::diff::{self, Side};
use corekey_tests::gen_zset::ZsetGenerator;
use corekey_tests::server::{Corekey, RedisServer};

/// Seeds run by default (6 × 2,500 = 15,000 commands).
const SEEDS: &[u64] = &[1, 2, 3, 4, 5, 6];
const STEPS_PER_SEED: usize = 2_500;

fn run_all(a: Side, b: Side, both_alive: impl Fn() -> bool) {
    let seeds = diff::seeds_from_env(SEEDS);
    diff::run_seeds(a, b, &seeds, STEPS_PER_SEED, ZsetGenerator::new, both_alive);
}

/// corekey (2 shards, so multi-key commands cross shards) answers each generated sorted set
/// command as redis-server does.
#[test]
fn zset_corekey_matches_redis_server() {
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

/// The generator and normalisations raise no false alarms: two redis-servers fed the same
/// sequences never differ.
#[test]
fn zset_redis_server_matches_itself() {
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
