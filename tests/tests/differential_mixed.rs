//! The combined differential test: seeded sequences from `corekey_tests::gen_mixed` (strings,
//! keys, hashes, lists, sets and sorted sets on one shared key space so their types collide,
//! transactions with WATCH, blocking commands that answer at once or after a few milliseconds,
//! PUBLISH/SPUBLISH/PUBSUB) go to corekey (2 shards) and to a real redis-server, and the
//! replies and keyspaces must agree. Before the run, the same subscribers (channels, a
//! pattern, shard channels) are opened on both servers, on both of corekey's shards, so
//! PUBLISH counts and PUBSUB answers are not all zero.
//! Replay one seed with `COREKEY_DIFF_SEED=<seed>`, or soak with `COREKEY_DIFF_SEEDS=<n>`.

use corekey_tests::client::Conn;
use corekey_tests::diff::{self, Side};
use corekey_tests::gen_mixed::{MixedGenerator, CHANNELS, PATTERNS, SHARD_CHANNELS};
use corekey_tests::server::{Corekey, RedisServer};
use std::net::SocketAddr;

/// Seeds run by default (4 × 5,500 = 22,000 steps, each at least one command).
const SEEDS: &[u64] = &[1, 2, 3, 4];
const STEPS_PER_SEED: usize = 5_500;
/// As in the list test: the reference checks blocked clients' timeouts each tick, and with
/// `hz` 100 a 10 ms timeout ends after about 10 ms.
const REFERENCE_FLAGS: &[&str] = &["--hz", "100"];
/// Subscriber connections per server: enough that corekey has some on both shards.
const SUBSCRIBERS: usize = 4;

/// Opens [`SUBSCRIBERS`] connections subscribed to every channel, pattern and shard channel
/// of the generator (the `i`-th to all but the `i`-th channel, so counts differ per channel).
fn subscribe(addr: SocketAddr) -> Vec<Conn> {
    (0..SUBSCRIBERS)
        .map(|i| {
            let mut c = connect_on_shard(addr, i as i64 % 2);
            let channels: Vec<&str> = CHANNELS
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, ch)| *ch)
                .collect();
            let mut cmds: Vec<Vec<&str>> = vec![[&["SUBSCRIBE"][..], &channels].concat()];
            if i % 2 == 0 {
                cmds.push([&["PSUBSCRIBE"][..], PATTERNS].concat());
            }
            // One shard channel each: SSUBSCRIBE takes channels of one slot.
            cmds.push(vec!["SSUBSCRIBE", SHARD_CHANNELS[i % SHARD_CHANNELS.len()]]);
            for cmd in cmds {
                c.send(&cmd).expect("subscribe");
                for _ in 1..cmd.len() {
                    let f = c.read_reply().expect("subscription confirmed");
                    assert!(!f.reply.is_error(), "{cmd:?}: {f}");
                }
            }
            c
        })
        .collect()
}

/// A connection whose client id says corekey serves it on `shard` of 2 (ids are
/// `shard + 1 + k * shards`); on redis-server, just a connection with an id of that parity.
/// Bounded: the kernel spreads connections over corekey's listeners.
fn connect_on_shard(addr: SocketAddr, shard: i64) -> Conn {
    for _ in 0..256 {
        let mut c = Conn::connect(addr).expect("subscriber connects");
        let id = c.call(&["CLIENT", "ID"]).reply.as_int().expect("CLIENT ID");
        if (id - 1) % 2 == shard {
            return c;
        }
    }
    panic!("256 connections to {addr} and none on shard {shard}");
}

fn run(a: Side, b: Side, make: fn(u64) -> MixedGenerator, both_alive: impl Fn() -> bool) {
    let seeds = diff::seeds_from_env(SEEDS);
    diff::run_seeds(a, b, &seeds, STEPS_PER_SEED, make, both_alive);
}

/// corekey (2 shards) answers every generated step as redis-server does.
#[test]
fn corekey_matches_redis_server_on_every_family() {
    let Some(redis) = RedisServer::start_with(REFERENCE_FLAGS) else {
        return;
    };
    let corekey = Corekey::start(&[]);
    let _subscribers = (subscribe(corekey.addr()), subscribe(redis.addr()));
    run(
        Side {
            name: "corekey",
            addr: corekey.addr(),
        },
        Side {
            name: "redis-server",
            addr: redis.addr(),
        },
        MixedGenerator::new,
        || corekey.answers_ping() && redis.answers_ping(),
    );
}

/// The harness has no false alarms on the mix: two redis-servers fed the same sequences never
/// differ.
#[test]
fn redis_server_matches_itself_on_every_family() {
    let Some(a) = RedisServer::start_with(REFERENCE_FLAGS) else {
        return;
    };
    let Some(b) = RedisServer::start_with(REFERENCE_FLAGS) else {
        return;
    };
    let _subscribers = (subscribe(a.addr()), subscribe(b.addr()));
    run(
        Side {
            name: "redis-server A",
            addr: a.addr(),
        },
        Side {
            name: "redis-server B",
            addr: b.addr(),
        },
        MixedGenerator::new,
        || a.answers_ping() && b.answers_ping(),
    );
}

/// Against Valkey 8 itself (skipped without one: `COREKEY_VALKEY_BIN`), where corekey must
/// also say listpack for sets and lists wherever Valkey does (`Rule::CompactEncoding` still
/// lets a listpack stand against Valkey's hashtable or quicklist, after its plausibility
/// check).
#[test]
fn corekey_matches_valkey_on_every_family() {
    let Some(valkey) = RedisServer::start_valkey(REFERENCE_FLAGS) else {
        return;
    };
    let corekey = Corekey::start(&[]);
    let _subscribers = (subscribe(corekey.addr()), subscribe(valkey.addr()));
    run(
        Side {
            name: "corekey",
            addr: corekey.addr(),
        },
        Side {
            name: "valkey-server",
            addr: valkey.addr(),
        },
        MixedGenerator::for_valkey,
        || corekey.answers_ping() && valkey.answers_ping(),
    );
}
