//! Differential tests of the list family: seeded sequences from `corekey_tests::gen_list`
//! (list commands, blocking ones included, mixed with string and generic ones on a shared key
//! space) go to corekey (2 shards) and to a real redis-server, and the replies must agree
//! (`corekey_tests::diff` lists the normalisations and the known differences of redis 7.0).
//! Replay one seed with `COREKEY_DIFF_SEED=<seed>`, or soak with `COREKEY_DIFF_SEEDS=<n>`.
//!
//! redis-server 7.0 has no listpack encoding for lists, so there OBJECT ENCODING is only
//! checked for plausibility; where a Valkey 8 server is at hand (`COREKEY_VALKEY_BIN`),
//! `corekey_matches_valkey_on_lists` compares with it: there a quicklist where Valkey keeps a
//! listpack is a difference (the other way round still passes the plausibility check of the
//! rule made for redis 7.0, `Rule::CompactEncoding`).

use corekey_tests::diff::{self, Side};
use corekey_tests::gen_list::ListGenerator;
use corekey_tests::server::{Corekey, RedisServer};

/// Seeds run by default (5 × 2,000 = 10,000 commands).
const SEEDS: &[u64] = &[1, 2, 3, 4, 5];
const STEPS_PER_SEED: usize = 2_000;
/// The reference servers check blocked clients' timeouts once per event-loop tick, which
/// `hz` sets (10 a second by default): at 100 a command that times out after 10 ms answers
/// after about 10 ms rather than 100. Nothing compared depends on `hz`.
const REFERENCE_FLAGS: &[&str] = &["--hz", "100"];

fn run(a: Side, b: Side, make: fn(u64) -> ListGenerator, both_alive: impl Fn() -> bool) {
    let seeds = diff::seeds_from_env(SEEDS);
    diff::run_seeds(a, b, &seeds, STEPS_PER_SEED, make, both_alive);
}

/// corekey (2 shards) answers each generated list-family step as redis-server does: same
/// bytes, or the same up to a documented normalisation or known difference.
#[test]
fn corekey_matches_redis_server_on_lists() {
    let Some(redis) = RedisServer::start_with(REFERENCE_FLAGS) else {
        return;
    };
    let corekey = Corekey::start(&[]);
    run(
        Side {
            name: "corekey",
            addr: corekey.addr(),
        },
        Side {
            name: "redis-server",
            addr: redis.addr(),
        },
        ListGenerator::new,
        || corekey.answers_ping() && redis.answers_ping(),
    );
}

/// The harness has no false alarms on this family: two redis-servers fed the same sequences
/// never differ.
#[test]
fn redis_server_matches_itself_on_lists() {
    let Some(a) = RedisServer::start_with(REFERENCE_FLAGS) else {
        return;
    };
    let Some(b) = RedisServer::start_with(REFERENCE_FLAGS) else {
        return;
    };
    run(
        Side {
            name: "redis-server A",
            addr: a.addr(),
        },
        Side {
            name: "redis-server B",
            addr: b.addr(),
        },
        ListGenerator::new,
        || a.answers_ping() && b.answers_ping(),
    );
}

/// Against Valkey 8 itself (skipped without one): the same steps, where corekey must say
/// listpack wherever Valkey does (see the module comment for the other way round; LSET
/// indexes stay within a C int: see `ListGenerator::for_valkey`).
#[test]
fn corekey_matches_valkey_on_lists() {
    let Some(valkey) = RedisServer::start_valkey(REFERENCE_FLAGS) else {
        return;
    };
    let corekey = Corekey::start(&[]);
    run(
        Side {
            name: "corekey",
            addr: corekey.addr(),
        },
        Side {
            name: "valkey-server",
            addr: valkey.addr(),
        },
        ListGenerator::for_valkey,
        || corekey.answers_ping() && valkey.answers_ping(),
    );
}
