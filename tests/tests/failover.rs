//! Failover that operators ask for and replica migration, with real corekey processes and real
//! data (issue 7): a replica of a primary with two moves to a primary whose only replica died
//! and full-syncs its data; `CLUSTER FAILOVER` under write load loses no acknowledged write and
//! leaves the old primary replicating the new one; `FORCE` and `TAKEOVER` with the primary
//! alive; the refusals, with Valkey's texts.
//!
//! Every cluster runs with `cluster-node-timeout 2000` (failures are noticed in seconds) and
//! every wait has a deadline.

use corekey_tests::client::{Conn, Reply};
use corekey_tests::cluster::{self, index_of, owner_of, shard_of_slot_zero, Node, NodeLine};
use corekey_tests::slot::key_slot;
use corekey_tests::wait;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a role change, a resync or the cluster's agreement may take here.
const DEADLINE: Duration = Duration::from_secs(30);
const NODE_TIMEOUT: [&str; 2] = ["--cluster-node-timeout", "2000"];

/// A 3-primary × 1-replica cluster of nodes with `cores` shards, made by `redis-cli --cluster
/// create --cluster-replicas 1`; `None` (skip) without redis-cli.
fn three_by_one(cores: usize) -> Option<(Vec<Node>, PathBuf)> {
    let cli = cluster::redis_cli()?;
    let nodes = Node::start_many(6, cores, &NODE_TIMEOUT);
    cluster::create(&cli, &nodes, 1);
    cluster::wait_settled(&nodes.iter().collect::<Vec<_>>());
    Some((nodes, cli))
}

/// `n` keys named `{prefix}:{i}` that the primary `line` serves (spread over its shards).
fn keys_served_by(line: &NodeLine, prefix: &str, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .filter(|k| line.owns(key_slot(k.as_bytes())))
        .take(n)
        .collect()
}

/// Sets every key to its own name on `node`, then waits until a replica acknowledged them.
fn write_acknowledged(node: &Node, keys: &[String]) {
    let mut c = node.client();
    for k in keys {
        assert_eq!(c.call_text(&["SET", k, k]), "+OK\r\n", "SET {k}");
    }
    let acked = wait::poll(DEADLINE, || {
        (c.call(&["WAIT", "1", "1000"]).reply.as_int() >= Some(1)).then_some(())
    });
    if acked.is_none() {
        panic!(
            "no replica acknowledged the writes to {}:\n{}",
            node.address(),
            node.text(&["INFO", "replication"])
        );
    }
}

/// Keys of `keys` whose value on `node` (after READONLY, so a replica answers) is not the key
/// itself.
fn missing_on(node: &Node, keys: &[String]) -> Vec<String> {
    let mut c = node.client();
    assert_eq!(c.call_text(&["READONLY"]), "+OK\r\n");
    keys.iter()
        .filter(|k| c.call(&["GET", k.as_str()]).reply.as_bytes() != Some(k.as_bytes()))
        .cloned()
        .collect()
}

/// Waits until `old` replicates `new` with its link up and both report the same replication
/// offset (nothing left to send), and `new` counts it in WAIT.
fn wait_in_sync(old: &Node, new: &Node) {
    wait::until("the old primary to replicate the new one", DEADLINE, || {
        old.replicates(new).then_some(())
    });
    let mut c = new.client();
    wait::until(
        "the new primary's offset to reach its replica",
        DEADLINE,
        || {
            let acked = c.call(&["WAIT", "1", "1000"]).reply.as_int() >= Some(1);
            (acked && old.repl_offset() == new.repl_offset()).then_some(())
        },
    );
}

/// The first element of ROLE.
fn role(node: &Node) -> String {
    let f = node.client().call(&["ROLE"]);
    let items = f.reply.as_list().expect("ROLE answers an array");
    String::from_utf8_lossy(items[0].as_bytes().expect("a role name")).into_owned()
}

/// Replica migration: in a 3 × 1 cluster whose primary of the last slot gets a second replica
/// (a seventh node, MEET + CLUSTER REPLICATE), the only replica of the primary of slot 0 is
/// killed with SIGKILL. Once it is FAIL and the migration delay passed, exactly one replica of
/// the two-replica primary (the one with the smaller id) moves to the orphan; every node sees
/// the move; its link comes up, it holds the orphan's data and nothing of its old primary's
/// (a full sync), and the other replica stays where it was.
#[test]
fn replica_migrates_to_orphaned_primary() {
    let Some(cli) = cluster::redis_cli() else {
        return;
    };
    let mut nodes = Node::start_many(7, 1, &NODE_TIMEOUT);
    cluster::create(&cli, &nodes[..6], 1);
    cluster::wait_settled(&nodes[..6].iter().collect::<Vec<_>>());

    let lines = nodes[0].nodes();
    let orphan_line = owner_of(&lines, 0).clone();
    let donor_line = owner_of(&lines, 16383).clone();
    assert_ne!(orphan_line.id, donor_line.id);
    let (orphan, donor) = (
        index_of(&nodes, &orphan_line.id),
        index_of(&nodes, &donor_line.id),
    );
    nodes[6].join_as_replica(&nodes[0], &donor_line.id, DEADLINE);
    let all: Vec<&Node> = nodes.iter().collect();
    cluster::wait_settled(&all);
    let donor_replicas = |n: &Node| -> Vec<String> {
        let mut v: Vec<String> = n
            .nodes()
            .into_iter()
            .filter(|l| l.primary == donor_line.id)
            .map(|l| l.id)
            .collect();
        v.sort();
        v
    };
    wait::until(
        "every node to see two replicas of the donor",
        DEADLINE,
        || {
            all.iter()
                .all(|n| donor_replicas(n).len() == 2)
                .then_some(())
        },
    );
    let replica_ids = donor_replicas(&nodes[0]);
    let migrant = index_of(&nodes, &replica_ids[0]);
    let stayer = index_of(&nodes, &replica_ids[1]);
    let doomed = index_of(
        &nodes,
        &lines
            .iter()
            .find(|l| l.primary == orphan_line.id)
            .expect("the orphan-to-be has a replica")
            .id,
    );
    for r in [migrant, stayer] {
        wait::until("the donor's replicas to be in sync", DEADLINE, || {
            nodes[r].replicates(&nodes[donor]).then_some(())
        });
    }
    let orphan_keys = keys_served_by(&orphan_line, "orphan", 200);
    write_acknowledged(&nodes[orphan], &orphan_keys);
    write_acknowledged(&nodes[donor], &keys_served_by(&donor_line, "donor", 100));
    let full_syncs = |n: &Node| {
        n.info("stats", "sync_full")
            .and_then(|v| v.parse::<u64>().ok())
    };
    let before = full_syncs(&nodes[orphan]);

    nodes[doomed].server.process().kill();
    let killed = Instant::now();
    wait::until(
        "a replica of the donor to replicate the orphan",
        Duration::from_secs(60),
        || nodes[migrant].replicates(&nodes[orphan]).then_some(()),
    );
    println!("replica migration: link up after {:?}", killed.elapsed());
    let live: Vec<&Node> = (0..nodes.len())
        .filter(|i| *i != doomed)
        .map(|i| &nodes[i])
        .collect();
    wait::until("every live node to see the move", DEADLINE, || {
        live.iter()
            .all(|n| {
                let lines = n.nodes();
                let primary_of =
                    |id: &str| lines.iter().find(|l| l.id == id).map(|l| l.primary.clone());
                primary_of(&replica_ids[0]) == Some(orphan_line.id.clone())
                    && primary_of(&replica_ids[1]) == Some(donor_line.id.clone())
            })
            .then_some(())
    });
    assert!(nodes[stayer].replicates(&nodes[donor]));

    // The migrant holds the orphan's data, and only that: the full sync replaced the donor's.
    wait_in_sync(&nodes[migrant], &nodes[orphan]);
    assert_eq!(
        missing_on(&nodes[migrant], &orphan_keys),
        Vec::<String>::new()
    );
    let dbsize = |n: &Node| n.client().call(&["DBSIZE"]).reply.as_int();
    assert_eq!(dbsize(&nodes[migrant]), dbsize(&nodes[orphan]));
    assert!(
        full_syncs(&nodes[orphan]) > before,
        "the orphan served no full sync"
    );

    // The directives, as Valkey answers CONFIG GET and a bad CONFIG SET.
    let mut c = nodes[orphan].client();
    assert_eq!(
        c.call_text(&["CONFIG", "GET", "cluster-migration-barrier"]),
        "*2\r\n$25\r\ncluster-migration-barrier\r\n$1\r\n1\r\n"
    );
    assert_eq!(
        c.call_text(&["CONFIG", "GET", "cluster-allow-replica-migration"]),
        "*2\r\n$31\r\ncluster-allow-replica-migration\r\n$3\r\nyes\r\n"
    );
    assert_eq!(
        c.call_text(&["CONFIG", "SET", "cluster-migration-barrier", "-1"]),
        "-ERR CONFIG SET failed (possibly related to argument 'cluster-migration-barrier') - argument must be between 0 and 2147483647 inclusive\r\n"
    );
    assert_eq!(
        c.call_text(&["CONFIG", "SET", "cluster-allow-replica-migration", "maybe"]),
        "-ERR CONFIG SET failed (possibly related to argument 'cluster-allow-replica-migration') - argument must be 'yes' or 'no'\r\n"
    );
}

/// `CLUSTER FAILOVER` while keys expire and a client reads them: during the write pause the
/// primary must not delete expired keys (lazily on a read, or in its active cycle), or its
/// offset would move past the one the replica caught up to, and rejoining it would need a full
/// resync. 2,000 keys of slot 0's primary expire over 1.3 s while a client reads them round
/// and round (MGET); the old primary must resume with a partial resync, as without expiry.
#[test]
fn manual_failover_while_keys_expire_resumes_partially() {
    let Some((nodes, _cli)) = three_by_one(2) else {
        return;
    };
    let (p, r) = shard_of_slot_zero(&nodes);
    let line = owner_of(&nodes[0].nodes(), 0).clone();
    // One hash tag of its slots, so that MGET reads many keys a call (a sweep of all of
    // them every millisecond or so: an expired key is read soon after its deadline).
    let tag = (0..)
        .map(|i| format!("{{ttl{i}}}"))
        .find(|t| line.owns(key_slot(t.as_bytes())))
        .expect("a tag of the primary's slots");
    let keys: Vec<String> = (0..2000).map(|i| format!("{tag}:{i}")).collect();
    let mut c = nodes[p].client();
    for (i, k) in keys.iter().enumerate() {
        let ms = (300 + i * 1300 / keys.len()).to_string();
        assert_eq!(c.call_text(&["SET", k, k, "PX", &ms]), "+OK\r\n");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, keys) = (stop.clone(), keys.clone());
        let mut c = nodes[p].client();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            // Bounded: stopped once the failover is over.
            'outer: for _ in 0..100_000 {
                for chunk in keys.chunks(200) {
                    let mut args = vec!["MGET"];
                    args.extend(chunk.iter().map(String::as_str));
                    if stop.load(Ordering::Relaxed) || c.try_call(&args).is_err() {
                        break 'outer;
                    }
                    reads += chunk.len() as u64;
                }
            }
            reads
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut rc = nodes[r].client();
    assert_eq!(rc.call_text(&["CLUSTER", "FAILOVER"]), "+OK\r\n");
    wait::until("the replica to become the primary", DEADLINE, || {
        (role(&nodes[r]) == "master").then_some(())
    });
    wait_in_sync(&nodes[p], &nodes[r]);
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("the reader thread");
    let stat = |n: &Node, f: &str| n.info("stats", f).and_then(|v| v.parse::<u64>().ok());
    let (full, partial) = (
        stat(&nodes[r], "sync_full"),
        stat(&nodes[r], "sync_partial_ok"),
    );
    println!("{reads} reads; the new primary served {full:?} full and {partial:?} partial resyncs");
    assert_eq!(full, Some(0), "no full resync");
    assert!(partial > Some(0), "a partial resync");
}

/// `CLUSTER FAILOVER` (default mode) under write load, nodes with two shards: two clients
/// write to the primary of slot 0 (keys on both of its shards) as fast as they can while its
/// replica is asked to take over. The primary pauses writes, the replica catches up to the
/// paused offset and wins; the roles swap (ROLE, INFO replication); every write the clients
/// were answered OK for is on the new primary; the first write refused (held by the pause,
/// or sent after it) is a MOVED to the new primary; the old primary replicates the new one
/// (a partial resync), its link up and in sync.
#[test]
fn manual_failover_under_write_load_loses_no_acknowledged_write() {
    let Some((nodes, _cli)) = three_by_one(2) else {
        return;
    };
    let (p, r) = shard_of_slot_zero(&nodes);
    let line = owner_of(&nodes[0].nodes(), 0).clone();

    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let (acked, stop, line) = (acked.clone(), stop.clone(), line.clone());
            let mut c = nodes[p].client();
            std::thread::spawn(move || {
                let mut ok = Vec::new();
                let mut moved = None;
                for k in (0..).map(|i| format!("load:{t}:{i}")) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if !line.owns(key_slot(k.as_bytes())) {
                        continue;
                    }
                    match c.try_call(&["SET", &k, &k]) {
                        Ok(f) if f.raw == b"+OK\r\n" => {
                            ok.push(k);
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(f) => {
                            moved = Some(String::from_utf8_lossy(&f.raw).into_owned());
                            break;
                        }
                        Err(e) => {
                            moved = Some(format!("no reply: {e}"));
                            break;
                        }
                    }
                }
                (ok, moved)
            })
        })
        .collect();
    wait::until("some acknowledged writes", DEADLINE, || {
        (acked.load(Ordering::Relaxed) >= 1000).then_some(())
    });
    let mut rc = nodes[r].client();
    assert_eq!(rc.call_text(&["CLUSTER", "FAILOVER"]), "+OK\r\n");
    let asked = Instant::now();
    wait::until("the replica to become the primary", DEADLINE, || {
        (role(&nodes[r]) == "master").then_some(())
    });
    println!("manual failover: promoted after {:?}", asked.elapsed());
    wait_in_sync(&nodes[p], &nodes[r]);
    stop.store(true, Ordering::Relaxed);
    let mut ok = Vec::new();
    for w in writers {
        let (keys, end) = w.join().expect("a writer thread");
        let end = end.expect("a writer stopped by its first refused write");
        let to_new = format!(" 127.0.0.1:{}\r\n", nodes[r].port());
        assert!(
            end.starts_with("-MOVED ") && end.ends_with(&to_new),
            "a write after the failover was answered {end:?}"
        );
        ok.extend(keys);
    }
    println!("{} acknowledged writes", ok.len());
    assert_eq!(missing_on(&nodes[r], &ok), Vec::<String>::new());
    assert_eq!(missing_on(&nodes[p], &ok), Vec::<String>::new());
    // Paused at the very offset the replica reached, the old primary resumed from it: a
    // partial resync, no full copy.
    let stat = |n: &Node, f: &str| n.info("stats", f).and_then(|v| v.parse::<u64>().ok());
    assert_eq!(stat(&nodes[r], "sync_full"), Some(0));
    assert!(stat(&nodes[r], "sync_partial_ok") > Some(0));

    // ROLE and INFO replication on both, as Valkey shows them.
    let f = nodes[r].client().call(&["ROLE"]);
    let items = f.reply.as_list().expect("ROLE array");
    assert_eq!(items[0].as_bytes(), Some(&b"master"[..]));
    let followers = items[2].as_list().expect("replica list");
    assert!(followers
        .iter()
        .any(|f| f.as_list().and_then(|v| v[1].as_bytes())
            == Some(nodes[p].port().to_string().as_bytes())));
    let f = nodes[p].client().call(&["ROLE"]);
    let items = f.reply.as_list().expect("ROLE array");
    assert_eq!(items[0].as_bytes(), Some(&b"slave"[..]));
    assert_eq!(items[2], Reply::Integer(i64::from(nodes[r].port())));
    assert_eq!(items[3].as_bytes(), Some(&b"connected"[..]));
    assert_eq!(
        nodes[r].info("replication", "role").as_deref(),
        Some("master")
    );
    assert_eq!(
        nodes[r].info("replication", "connected_slaves").as_deref(),
        Some("1")
    );
    // The cluster agrees: the new primary serves slot 0.
    let all: Vec<&Node> = nodes.iter().collect();
    cluster::wait_settled(&all);
    assert_eq!(owner_of(&nodes[p].nodes(), 0).id, nodes[r].id());
}

/// FORCE (the primary alive, no handshake with it) and TAKEOVER (no election either): the
/// replica takes the slots, the old primary follows it, resyncs and stays in sync, and every
/// write acknowledged before the command is on the new primary. TAKEOVER's new configEpoch is
/// the greatest of the cluster.
fn forced_failover(mode: &str) {
    let Some((nodes, cli)) = three_by_one(1) else {
        return;
    };
    let (p, r) = shard_of_slot_zero(&nodes);
    let line = owner_of(&nodes[0].nodes(), 0).clone();
    let keys = keys_served_by(&line, mode, 300);
    write_acknowledged(&nodes[p], &keys);

    let mut rc = nodes[r].client();
    assert_eq!(rc.call_text(&["CLUSTER", "FAILOVER", mode]), "+OK\r\n");
    wait::until("the replica to become the primary", DEADLINE, || {
        (role(&nodes[r]) == "master").then_some(())
    });
    wait_in_sync(&nodes[p], &nodes[r]);
    assert_eq!(missing_on(&nodes[r], &keys), Vec::<String>::new());
    assert_eq!(missing_on(&nodes[p], &keys), Vec::<String>::new());
    // Writes go to the new primary, and reach the old one.
    assert_eq!(rc.call_text(&["SET", &keys[0], "after"]), "+OK\r\n");
    assert_eq!(rc.call(&["WAIT", "1", "5000"]).reply.as_int(), Some(1));
    let mut pc = nodes[p].client();
    assert_eq!(pc.call_text(&["READONLY"]), "+OK\r\n");
    assert_eq!(pc.call_text(&["GET", &keys[0]]), "$5\r\nafter\r\n");
    let all: Vec<&Node> = nodes.iter().collect();
    cluster::wait_settled(&all);
    let lines = nodes[p].nodes();
    assert_eq!(owner_of(&lines, 0).id, nodes[r].id());
    if mode == "TAKEOVER" {
        let newest = lines.iter().map(|l| l.config_epoch).max();
        assert_eq!(Some(owner_of(&lines, 0).config_epoch), newest);
        let unique = lines
            .iter()
            .filter(|l| l.has_flag("master") && Some(l.config_epoch) == newest)
            .count();
        assert_eq!(unique, 1, "{lines:?}");
    }
    cluster::check_clean(&cli, &nodes[r]);
}

#[test]
fn manual_failover_force_with_the_primary_alive() {
    forced_failover("FORCE");
}

#[test]
fn manual_failover_takeover() {
    forced_failover("TAKEOVER");
}

/// The refusals of CLUSTER FAILOVER, with redis-server 7's (and Valkey's) texts: on a primary,
/// with a bad option, with too many arguments, and in default mode on a replica whose primary
/// is unreachable (FORCE is then the way).
#[test]
fn cluster_failover_refusals() {
    let Some((mut nodes, _cli)) = three_by_one(1) else {
        return;
    };
    let (p, r) = shard_of_slot_zero(&nodes);
    let mut pc = nodes[p].client();
    for args in [
        &["CLUSTER", "FAILOVER"][..],
        &["CLUSTER", "FAILOVER", "FORCE"],
        &["CLUSTER", "FAILOVER", "takeover"],
    ] {
        assert_eq!(
            pc.call_text(args),
            "-ERR You should send CLUSTER FAILOVER to a replica\r\n"
        );
    }
    let mut rc: Conn = nodes[r].client();
    assert_eq!(
        rc.call_text(&["CLUSTER", "FAILOVER", "bogus"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        rc.call_text(&["CLUSTER", "FAILOVER", "force", "extra"]),
        "-ERR unknown subcommand or wrong number of arguments for 'FAILOVER'. Try CLUSTER HELP.\r\n"
    );
    assert_eq!(role(&nodes[r]), "slave");
    let primary_id = nodes[p].id();
    nodes[p].server.process().kill();
    wait::until(
        "the replica to see its primary's link down",
        DEADLINE,
        || {
            nodes[r]
                .nodes()
                .iter()
                .any(|l| l.id == primary_id && l.link == "disconnected")
                .then_some(())
        },
    );
    assert_eq!(
        rc.call_text(&["CLUSTER", "FAILOVER"]),
        "-ERR Master is down or failed, please use CLUSTER FAILOVER FORCE\r\n"
    );
}
