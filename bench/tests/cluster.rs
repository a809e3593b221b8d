//! `corekey-bench run --cluster-mode` follows MOVED and ASK, proven against a real 3-node
//! cluster built here: of redis-server nodes, and of corekey nodes (one shard each, made with
//! `redis-cli --cluster create` as a user would).
//!
//! To make redirects certain rather than a race with gossip, the bench reads a stale slot map:
//! the test records `CLUSTER SLOTS` from the converged cluster, then moves some slots from node
//! A to node B (on every node), and leaves one slot of node C half-migrated to A (MIGRATING on
//! C, IMPORTING on A). The bench's seed is a stand-in that answers `CLUSTER SLOTS` with the
//! recorded (now stale) reply, so requests for the moved slots reach A and get `-MOVED`, and
//! requests for the half-migrated slot reach C and get `-ASK`.

mod common;

use common::*;
use corekey_bench::resp::{scan_reply, Client, Value};
use corekey_bench::servers::ServerProcess;
use corekey_bench::slots::key_slot;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

const KEYS: u64 = 300;
const CLUSTER_DEADLINE: Duration = Duration::from_secs(60);

fn text(v: Value) -> String {
    v.as_text()
        .unwrap_or_else(|| panic!("expected text, got {v:?}"))
}

fn ok(c: &mut Client, args: &[&str]) {
    match call(c, args) {
        Value::Simple(s) if s == "OK" => {}
        other => panic!("{}: {other:?}", args.join(" ")),
    }
}

/// Polls until every node reports `cluster_state:ok` and knows 3 nodes with the same view of
/// `slot`'s owner.
fn wait_converged(nodes: &[ServerProcess], check: impl Fn(&mut Client) -> bool) {
    let end = Instant::now() + CLUSTER_DEADLINE;
    // Bounded by the deadline.
    loop {
        let all = nodes.iter().all(|n| {
            let mut c = client(n);
            let info = text(call(&mut c, &["CLUSTER", "INFO"]));
            info.contains("cluster_state:ok")
                && info.contains("cluster_known_nodes:3")
                && check(&mut c)
        });
        if all {
            return;
        }
        assert!(
            Instant::now() < end,
            "the cluster did not converge within {CLUSTER_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The raw bytes of one reply to `args`.
fn raw_reply(port: u16, args: &[&str]) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = Vec::new();
    let a: Vec<&[u8]> = args.iter().map(|x| x.as_bytes()).collect();
    corekey_bench::resp::push_command(&mut req, &a);
    s.write_all(&req).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    // Bounded by the read timeout.
    loop {
        if let Some((len, _)) = scan_reply(&buf).expect("valid reply") {
            buf.truncate(len);
            return buf;
        }
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Serves `reply` to every command on each connection until the test ends (the thread is
/// detached; the listener dies with the test process). Bounded: at most 16 connections.
fn stale_seed(reply: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Ok(Some((len, _))) = scan_reply(&buf) {
                    buf.drain(..len);
                    if s.write_all(&reply).is_err() {
                        break;
                    }
                }
            }
        }
    });
    port
}

/// A 3-node redis-server cluster (epochs 1, 2, 3; slots split in thirds by ADDSLOTSRANGE and
/// joined by MEET) under a stale map: the run follows MOVED and ASK with no error.
#[test]
fn cluster_mode_follows_moved_and_ask() {
    let Some(redis) = redis_server() else { return };
    let cluster_args = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "5000",
    ];
    let nodes: Vec<ServerProcess> = (0..3).map(|_| start_redis(&redis, &cluster_args)).collect();
    let ranges = [("0", "5460"), ("5461", "10922"), ("10923", "16383")];
    for (i, (node, (lo, hi))) in nodes.iter().zip(ranges).enumerate() {
        let mut c = client(node);
        ok(
            &mut c,
            &["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()],
        );
        ok(&mut c, &["CLUSTER", "ADDSLOTSRANGE", lo, hi]);
    }
    let mut a = client(&nodes[0]);
    for n in &nodes[1..] {
        ok(
            &mut a,
            &["CLUSTER", "MEET", "127.0.0.1", &n.port().to_string()],
        );
    }
    wait_converged(&nodes, |_| true);
    follows_stale_map(&nodes);
}

/// The same against three corekey nodes (`--cluster-enabled yes --cores 1`) made into a cluster
/// by `redis-cli --cluster create --cluster-yes`: the bench must follow corekey's own MOVED and
/// ASK replies, finish with 0 errors and exactly the requests it was asked for. redis-cli is
/// required under CI=true.
#[test]
fn cluster_mode_follows_corekey_cluster() {
    let Some(cli) = redis_cli() else { return };
    let args = ["--cluster-enabled", "yes", "--cores", "1"];
    let mut nodes: Vec<ServerProcess> = (0..3).map(|_| start_corekey_with(&args)).collect();
    let mut create = vec!["--cluster".to_string(), "create".to_string()];
    create.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())));
    create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
    let create: Vec<&str> = create.iter().map(String::as_str).collect();
    let out = run_tool(&cli, &create);
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    wait_converged(&nodes, |_| true);
    // redis-cli hands out the thirds in its own order: put the nodes in slot order (A serves
    // slot 0, B slot 5461, C slot 16383).
    let owners = slot_owner_ports(&mut client(&nodes[0]));
    nodes.sort_by_key(|n| {
        owners
            .iter()
            .find(|&&(_, _, port)| port == n.port())
            .map(|&(lo, _, _)| lo)
            .unwrap_or(i64::MAX)
    });
    let firsts: Vec<i64> = nodes
        .iter()
        .map(|n| {
            owners
                .iter()
                .find(|&&(_, _, port)| port == n.port())
                .map_or(-1, |&(lo, _, _)| lo)
        })
        .collect();
    assert_eq!(firsts, [0, 5461, 10923], "{owners:?}");
    follows_stale_map(&nodes);
}

/// `(first slot, last slot, port)` of every range in `CLUSTER SLOTS`.
fn slot_owner_ports(c: &mut Client) -> Vec<(i64, i64, u16)> {
    let Value::Array(ranges) = call(c, &["CLUSTER", "SLOTS"]) else {
        panic!("CLUSTER SLOTS is not an array");
    };
    ranges
        .iter()
        .filter_map(|r| match r {
            Value::Array(f) => Some((
                f[0].as_int()?,
                f[1].as_int()?,
                match &f[2] {
                    Value::Array(p) => u16::try_from(p[1].as_int()?).ok()?,
                    _ => return None,
                },
            )),
            _ => None,
        })
        .collect()
}

/// The cluster `nodes` (A serves 0-5460, B 5461-10922, C 10923-16383, converged) under a stale
/// map from a stand-in seed: a run that must follow MOVED and ASK with no error, leaving every
/// key on the node that really owns its slot.
fn follows_stale_map(nodes: &[ServerProcess]) {
    let ids: Vec<String> = nodes
        .iter()
        .map(|n| text(call(&mut client(n), &["CLUSTER", "MYID"])))
        .collect();
    let mut a = client(&nodes[0]);
    let stale = raw_reply(nodes[0].port(), &["CLUSTER", "SLOTS"]);

    // The slots of our keys: those A serves move to B; one of C's is left half-migrated to A.
    let slots: BTreeSet<u16> = (1..=KEYS)
        .map(|k| key_slot(format!("memtier-{k}").as_bytes()))
        .collect();
    let moved: Vec<u16> = slots.iter().copied().filter(|&s| s <= 5460).collect();
    let ask_slot = *slots
        .iter()
        .find(|&&s| s >= 10923)
        .expect("a key on node C");
    assert!(!moved.is_empty());
    for &slot in &moved {
        let slot = slot.to_string();
        // The new owner first, then the old one, then the third node.
        for &n in &[1usize, 0, 2] {
            let mut c = client(&nodes[n]);
            ok(&mut c, &["CLUSTER", "SETSLOT", &slot, "NODE", &ids[1]]);
        }
    }
    let ask = ask_slot.to_string();
    ok(&mut a, &["CLUSTER", "SETSLOT", &ask, "IMPORTING", &ids[2]]);
    ok(
        &mut client(&nodes[2]),
        &["CLUSTER", "SETSLOT", &ask, "MIGRATING", &ids[0]],
    );
    // Every node agrees that B now serves the first moved slot.
    let probe = moved[0].to_string();
    let b_port = nodes[1].port() as i64;
    wait_converged(nodes, |c| {
        let Value::Array(ranges) = call(c, &["CLUSTER", "SLOTS"]) else {
            return false;
        };
        let s: i64 = probe.parse().unwrap();
        ranges.iter().any(|r| match r {
            Value::Array(f) => {
                f[0].as_int().is_some_and(|lo| lo <= s)
                    && f[1].as_int().is_some_and(|hi| s <= hi)
                    && matches!(&f[2], Value::Array(p) if p[1].as_int() == Some(b_port))
            }
            _ => false,
        })
    });

    let seed = stale_seed(stale);
    let doc = bench_run(
        seed,
        &[
            "--cluster-mode",
            "-t",
            "1",
            "-c",
            "2",
            "--pipeline",
            "4",
            "--ratio",
            "1:1",
            "--key-pattern",
            "P:P",
            "--key-minimum",
            "1",
            "--key-maximum",
            &KEYS.to_string(),
            "--requests",
            &KEYS.to_string(),
        ],
    );
    assert_eq!(count(&doc, "errors"), 0, "{doc}");
    assert_eq!(count(&doc, "sets.count"), KEYS);
    assert_eq!(count(&doc, "gets.count"), KEYS);
    let moved_count = count(&doc, "sets.moved") + count(&doc, "gets.moved");
    let ask_count = count(&doc, "sets.ask") + count(&doc, "gets.ask");
    assert!(moved_count > 0, "no MOVED followed: {doc}");
    assert!(ask_count > 0, "no ASK followed: {doc}");
    // Every GET found the key its client had just written.
    assert_eq!(count(&doc, "gets.hits"), KEYS);
    // Every key was written once, on the node that serves (or imports) its slot.
    let sizes: Vec<i64> = nodes
        .iter()
        .map(|n| call_int(&mut client(n), &["DBSIZE"]))
        .collect();
    assert_eq!(sizes.iter().sum::<i64>(), KEYS as i64, "{sizes:?}");
    for &slot in &moved {
        let s = slot.to_string();
        assert_eq!(call_int(&mut a, &["CLUSTER", "COUNTKEYSINSLOT", &s]), 0);
    }
    assert!(call_int(&mut a, &["CLUSTER", "COUNTKEYSINSLOT", &ask]) > 0);
}
