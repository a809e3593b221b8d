//! Standalone replication between real corekey processes on loopback: full sync of a dataset
//! written before REPLICAOF, the live stream after it, every value type and TTLs, expiry on
//! the primary only, read-only replicas, WAIT, ROLE and INFO replication, partial and full
//! resync after a broken link, and a replica restarted after SIGKILL.

use corekey_tests::client::{Conn, Reply};
use corekey_tests::http::http_get;
use corekey_tests::server::{lease_port, Corekey};
use corekey_tests::wait;
use std::time::Duration;

/// How long a sync of these small datasets may take.
const SYNC_DEADLINE: Duration = Duration::from_secs(20);

fn start(cores: &str, extra: &[&str]) -> Corekey {
    let mut args = vec!["--cores", cores];
    args.extend_from_slice(extra);
    Corekey::start(&args)
}

/// The value of `field` in `INFO <section>`.
fn info_field(c: &mut Conn, section: &str, field: &str) -> Option<String> {
    let reply = c.call(&["INFO", section]);
    let text = String::from_utf8_lossy(reply.reply.as_bytes()?).into_owned();
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
}

fn info_int(c: &mut Conn, section: &str, field: &str) -> i64 {
    info_field(c, section, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no integer {field}"))
}

/// Points `replica` at `primary` and waits until its link is up.
fn replicate(replica: &Corekey, primary: &Corekey) {
    let mut r = replica.client();
    assert_eq!(
        r.call_text(&["REPLICAOF", "127.0.0.1", &primary.port().to_string()]),
        "+OK\r\n"
    );
    wait_link_up(replica);
}

fn wait_link_up(replica: &Corekey) {
    let mut r = replica.client();
    wait::until("the replica's link to come up", SYNC_DEADLINE, || {
        (info_field(&mut r, "replication", "master_link_status").as_deref() == Some("up"))
            .then_some(())
    });
}

/// Waits until the replica acknowledged everything the primary wrote so far.
fn wait_caught_up(primary: &Corekey) {
    let mut p = primary.client();
    let done = wait::poll(SYNC_DEADLINE, || {
        (p.call(&["WAIT", "1", "1000"]).reply.as_int() >= Some(1)).then_some(())
    });
    if done.is_none() {
        let info = p.call(&["INFO", "replication"]);
        panic!("WAIT 1 never counted a replica; primary: {info}");
    }
}

fn text(r: &Reply) -> String {
    match r {
        Reply::Array(v) | Reply::Set(v) => {
            let mut items: Vec<String> = v.iter().map(text).collect();
            items.sort();
            format!("[{}]", items.join(","))
        }
        Reply::Integer(n) => n.to_string(),
        Reply::Null => "nil".into(),
        other => String::from_utf8_lossy(other.as_bytes().unwrap_or_default()).into_owned(),
    }
}

/// Every key of the node in a canonical text form: type, content (collections sorted), and
/// whether it has a TTL. Two nodes with the same dataset give the same string.
fn dataset(c: &mut Conn) -> String {
    let keys = c.call(&["KEYS", "*"]);
    let mut keys: Vec<Vec<u8>> = keys
        .reply
        .as_list()
        .expect("KEYS answers an array")
        .iter()
        .map(|k| k.as_bytes().unwrap_or_default().to_vec())
        .collect();
    keys.sort();
    let mut out = String::new();
    for k in keys {
        let key = k.as_slice();
        let ty = text(&c.call(&[&b"TYPE"[..], key]).reply);
        let content = match ty.as_str() {
            "string" => text(&c.call(&[&b"GET"[..], key]).reply),
            "hash" => text(&c.call(&[&b"HGETALL"[..], key]).reply),
            // List order matters: keep it.
            "list" => format!("{:?}", c.call(&[&b"LRANGE"[..], key, b"0", b"-1"]).reply),
            "set" => text(&c.call(&[&b"SMEMBERS"[..], key]).reply),
            "zset" => format!(
                "{:?}",
                c.call(&[&b"ZRANGE"[..], key, b"0", b"-1", b"WITHSCORES"])
                    .reply
            ),
            other => panic!("unexpected type {other}"),
        };
        let ttl = c.call(&[&b"PTTL"[..], key]).reply.as_int().unwrap_or(-2);
        let _ = std::fmt::Write::write_fmt(
            &mut out,
            format_args!(
                "{} {ty} {content} ttl={}\n",
                String::from_utf8_lossy(key),
                ttl > 0
            ),
        );
    }
    out
}

/// Writes keys of every type, on both shards, some with TTLs; `tag` keeps rounds apart.
fn write_all_types(c: &mut Conn, tag: &str, n: usize) {
    let mut cmds: Vec<Vec<String>> = Vec::new();
    for i in 0..n {
        let s = |x: &str| x.to_string();
        cmds.push(vec![s("SET"), format!("{tag}:str:{i}"), format!("v{i}")]);
        cmds.push(vec![s("SET"), format!("{tag}:num:{i}"), i.to_string()]);
        cmds.push(vec![s("INCRBY"), format!("{tag}:num:{i}"), s("5")]);
        cmds.push(vec![
            s("HSET"),
            format!("{tag}:hash:{i}"),
            s("f1"),
            i.to_string(),
            s("f2"),
            s("x"),
        ]);
        cmds.push(vec![
            s("RPUSH"),
            format!("{tag}:list:{i}"),
            s("a"),
            s("b"),
            s("c"),
        ]);
        cmds.push(vec![s("LPOP"), format!("{tag}:list:{i}")]);
        cmds.push(vec![
            s("SADD"),
            format!("{tag}:set:{i}"),
            s("x"),
            s("y"),
            i.to_string(),
        ]);
        cmds.push(vec![
            s("SADD"),
            format!("{tag}:iset:{i}"),
            s("1"),
            s("2"),
            s("3"),
        ]);
        cmds.push(vec![
            s("ZADD"),
            format!("{tag}:zset:{i}"),
            s("1.5"),
            s("a"),
            s("-2"),
            s("b"),
            i.to_string(),
            s("c"),
        ]);
        cmds.push(vec![
            s("SET"),
            format!("{tag}:ttl:{i}"),
            s("t"),
            s("EX"),
            s("1000"),
        ]);
        cmds.push(vec![s("EXPIRE"), format!("{tag}:hash:{i}"), s("2000")]);
    }
    // A big collection, past every compact encoding.
    let mut big = vec!["SADD".to_string(), format!("{tag}:bigset")];
    big.extend((0..700).map(|i| format!("member-{i}")));
    cmds.push(big);
    let mut bigz = vec!["ZADD".to_string(), format!("{tag}:bigzset")];
    for i in 0..300 {
        bigz.push(format!("{}", i as f64 / 7.0));
        bigz.push(format!("m{i}"));
    }
    cmds.push(bigz);
    // Non-replayable and cross-shard writes replicate as their effects.
    cmds.push(vec!["SPOP".into(), format!("{tag}:bigset")]);
    cmds.push(vec![
        "MSET".into(),
        format!("{tag}:m1"),
        "1".into(),
        format!("{tag}:m2"),
        "2".into(),
        format!("{tag}:m3"),
        "3".into(),
    ]);
    cmds.push(vec![
        "DEL".into(),
        format!("{tag}:str:0"),
        format!("{tag}:m3"),
    ]);
    cmds.push(vec![
        "RENAME".into(),
        format!("{tag}:str:1"),
        format!("{tag}:renamed"),
    ]);
    let replies = c.pipeline(&cmds).expect("the write pipeline");
    for (cmd, r) in cmds.iter().zip(&replies) {
        assert!(!r.reply.is_error(), "{cmd:?}: {r}");
    }
}

/// A replica with the primary's core count, and one with another (ops routed by slot), both
/// get the dataset written before REPLICAOF (full sync) and the writes after it (live
/// stream), every value type and TTL alike; they refuse writes with Valkey's error; WAIT
/// counts them; ROLE and INFO replication describe both ends.
#[test]
fn full_sync_then_live_stream_all_types() {
    let primary = start("2", &[]);
    let same = start("2", &[]);
    let other = start("1", &[]);
    let mut p = primary.client();
    write_all_types(&mut p, "before", 40);

    replicate(&same, &primary);
    replicate(&other, &primary);
    write_all_types(&mut p, "after", 40);
    assert_eq!(p.call(&["WAIT", "2", "10000"]).reply.as_int(), Some(2));

    let want = dataset(&mut p);
    assert!(want.lines().count() > 500, "the dataset is not trivial");
    for (name, replica) in [("same core count", &same), ("one core", &other)] {
        let mut r = replica.client();
        assert_eq!(
            dataset(&mut r),
            want,
            "{name} replica differs from its primary"
        );
        assert_eq!(
            r.call_text(&["SET", "k", "v"]),
            "-READONLY You can't write against a read only replica.\r\n"
        );
        assert_eq!(r.call_text(&["GET", "k"]), "$-1\r\n");
        let role = r.call(&["ROLE"]).reply;
        let role = role.as_list().expect("ROLE is an array");
        assert_eq!(role[0].as_bytes(), Some(&b"slave"[..]));
        assert_eq!(role[1].as_bytes(), Some(&b"127.0.0.1"[..]));
        assert_eq!(role[2].as_int(), Some(i64::from(primary.port())));
        assert_eq!(role[3].as_bytes(), Some(&b"connected"[..]));
        assert_eq!(
            info_field(&mut r, "replication", "role").as_deref(),
            Some("slave")
        );
        assert_eq!(
            info_int(&mut r, "replication", "master_port"),
            i64::from(primary.port())
        );
    }

    // The primary lists both replicas, online, with their acknowledged offsets.
    let offset = info_int(&mut p, "replication", "master_repl_offset");
    assert!(offset > 0);
    assert_eq!(info_int(&mut p, "replication", "connected_slaves"), 2);
    for i in 0..2 {
        let line = info_field(&mut p, "replication", &format!("slave{i}")).expect("slaveN");
        assert!(line.starts_with("ip=127.0.0.1,port="), "{line}");
        assert!(line.contains(",state=online,"), "{line}");
        assert!(line.contains(&format!(",offset={offset},")), "{line}");
    }
    let role = p.call(&["ROLE"]).reply;
    let role = role.as_list().expect("ROLE is an array");
    assert_eq!(role[0].as_bytes(), Some(&b"master"[..]));
    assert_eq!(role[1].as_int(), Some(offset));
    assert_eq!(role[2].as_list().map(<[Reply]>::len), Some(2));
    // The replica with the same layout reports the same offset as its primary.
    let mut r = same.client();
    assert_eq!(info_int(&mut r, "replication", "slave_repl_offset"), offset);
    // A third replica does not exist: WAIT 3 times out with the two it has.
    assert_eq!(p.call(&["WAIT", "3", "100"]).reply.as_int(), Some(2));

    // FLUSHALL replicates.
    p.call(&["FLUSHALL"]);
    wait_caught_up(&primary);
    assert_eq!(same.client().call(&["DBSIZE"]).reply.as_int(), Some(0));
    assert_eq!(other.client().call(&["DBSIZE"]).reply.as_int(), Some(0));

    // REPLICAOF NO ONE makes a replica writable again, with the data it had.
    p.call(&["SET", "last", "1"]);
    wait_caught_up(&primary);
    assert_eq!(r.call_text(&["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
    assert_eq!(r.call_text(&["GET", "last"]), "$1\r\n1\r\n");
    assert_eq!(r.call_text(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(
        info_field(&mut r, "replication", "role").as_deref(),
        Some("master")
    );
}

/// A key that expires on the primary disappears from the replica (its delete replicates);
/// the replica never expires keys on its own: with its primary gone, a key past its deadline
/// is hidden from reads but still counted by DBSIZE, as on a Valkey replica.
#[test]
fn expiry_is_the_primarys() {
    let mut primary = start("2", &[]);
    let replica = start("2", &[]);
    replicate(&replica, &primary);
    let mut p = primary.client();
    let mut r = replica.client();
    p.call(&["SET", "short", "v", "PX", "300"]);
    p.call(&["SET", "stays", "v"]);
    assert_eq!(p.call(&["WAIT", "1", "5000"]).reply.as_int(), Some(1));
    assert_eq!(r.call_text(&["EXISTS", "short"]), ":1\r\n");
    wait::until(
        "the expired key to leave the replica",
        SYNC_DEADLINE,
        || (r.call(&["DBSIZE"]).reply.as_int() == Some(1)).then_some(()),
    );

    p.call(&["SET", "orphan", "v", "PX", "300"]);
    wait_caught_up(&primary);
    primary.process().kill();
    wait::until("the orphan's deadline to pass", SYNC_DEADLINE, || {
        (r.call(&["EXISTS", "orphan"]).reply.as_int() == Some(0)).then_some(())
    });
    assert_eq!(r.call_text(&["GET", "orphan"]), "$-1\r\n");
    std::thread::sleep(Duration::from_millis(300)); // several active expiry cycles
    assert_eq!(r.call(&["DBSIZE"]).reply.as_int(), Some(2));
    assert_eq!(
        info_field(&mut r, "replication", "master_link_status").as_deref(),
        Some("down")
    );
}

/// A replica whose link breaks (CLIENT KILL TYPE replica on the primary while the replica is
/// stopped, then writes it has not seen) resumes from its offset when the primary's backlog still holds it
/// (`sync_partial_ok`), and does a full sync when it does not (`sync_full`); either way it
/// ends with the primary's dataset.
#[test]
fn partial_resync_when_the_backlog_covers_it() {
    for (backlog, partial) in [("1mb", true), ("1", false)] {
        let primary = start("2", &["--repl-backlog-size", backlog]);
        let mut replica = start("2", &[]);
        let mut p = primary.client();
        write_all_types(&mut p, "base", 10);
        replicate(&replica, &primary);
        wait_caught_up(&primary);
        let full_before = info_int(&mut p, "stats", "sync_full");
        let partial_before = info_int(&mut p, "stats", "sync_partial_ok");

        // Stop the replica, break its link from the primary's side, write past it, let it
        // go on: it reconnects with the offset it had.
        replica.process().signal(libc::SIGSTOP);
        assert_eq!(
            p.call(&["CLIENT", "KILL", "TYPE", "replica"])
                .reply
                .as_int(),
            Some(1)
        );
        // Enough to overflow the smallest per-shard backlog (64 kB) on both shards.
        let blob = "x".repeat(2000);
        let cmds: Vec<Vec<String>> = (0..200)
            .map(|i| vec!["SET".into(), format!("gap:{i}"), blob.clone()])
            .collect();
        p.pipeline(&cmds)
            .expect("writes while the replica is stopped");
        replica.process().signal(libc::SIGCONT);
        let mut r = replica.client();
        wait_caught_up(&primary);
        wait_link_up(&replica);

        let full = info_int(&mut p, "stats", "sync_full") - full_before;
        let part = info_int(&mut p, "stats", "sync_partial_ok") - partial_before;
        if partial {
            assert_eq!(
                (full, part),
                (0, 2),
                "backlog {backlog}: one partial resync per shard"
            );
        } else {
            assert!(
                full >= 1 && part < 2,
                "backlog {backlog}: full {full}, partial {part}"
            );
        }
        assert_eq!(dataset(&mut r), dataset(&mut p), "backlog {backlog}");
    }
}

/// A replica killed with SIGKILL and started again is empty (corekey keeps no snapshot yet),
/// so pointing it at its primary again is a full sync, after which it holds everything,
/// including what was written while it was down.
#[test]
fn replica_restarted_after_sigkill_full_syncs() {
    let primary = start("2", &[]);
    let mut replica = start("1", &[]);
    let mut p = primary.client();
    write_all_types(&mut p, "one", 10);
    replicate(&replica, &primary);
    wait_caught_up(&primary);
    let full_before = info_int(&mut p, "stats", "sync_full");

    replica.restart(); // SIGKILL, then the same command line
    write_all_types(&mut p, "two", 10);
    replicate(&replica, &primary);
    wait_caught_up(&primary);
    assert!(info_int(&mut p, "stats", "sync_full") > full_before);
    assert_eq!(dataset(&mut replica.client()), dataset(&mut p));
}

/// A replica with more cores than its primary routes every op of the one stream by slot: the
/// full sync, the live writes, FLUSHDB and SWAPDB reach all its shards.
#[test]
fn replica_with_more_cores_routes_by_slot() {
    let primary = start("1", &[]);
    let replica = start("2", &[]);
    let mut p = primary.client();
    write_all_types(&mut p, "before", 20);
    replicate(&replica, &primary);
    write_all_types(&mut p, "after", 20);
    wait_caught_up(&primary);
    let mut r = replica.client();
    assert_eq!(dataset(&mut r), dataset(&mut p));
    assert_eq!(
        info_int(&mut r, "replication", "slave_repl_offset"),
        info_int(&mut p, "replication", "master_repl_offset")
    );

    p.call(&["SELECT", "3"]);
    write_all_types(&mut p, "db3", 5);
    p.call(&["SELECT", "0"]);
    assert_eq!(p.call_text(&["SWAPDB", "0", "3"]), "+OK\r\n");
    p.call(&["SELECT", "3"]);
    assert_eq!(p.call_text(&["FLUSHDB"]), "+OK\r\n");
    p.call(&["SELECT", "0"]);
    wait_caught_up(&primary);
    assert_eq!(dataset(&mut r), dataset(&mut p));
    r.call(&["SELECT", "3"]);
    assert_eq!(r.call(&["DBSIZE"]).reply.as_int(), Some(0));
}

/// Cluster mode: CLUSTER REPLICATE starts the stream (one primary with two shards, a replica
/// with one, set up with ADDSLOTSRANGE, MEET and REPLICATE); the replica holds what was
/// written before and after, WAIT counts it, it redirects clients to its primary (MOVED)
/// unless they sent READONLY, and then it serves their reads.
#[test]
fn cluster_replicate_starts_the_stream() {
    use corekey_tests::cluster::Node;
    let primary = Node::start(2, &["--cluster-node-timeout", "2000"]);
    let replica = Node::start(1, &["--cluster-node-timeout", "2000"]);
    let mut p = primary.client();
    assert_eq!(
        p.call_text(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        "+OK\r\n"
    );
    wait::until("the one-node cluster to be ok", SYNC_DEADLINE, || {
        primary.state_ok().then_some(())
    });
    for i in 0..200 {
        let k = format!("{{t}}:before:{i}");
        assert_eq!(p.call_text(&["SET", &k, &i.to_string()]), "+OK\r\n");
    }
    replica.join_as_replica(&primary, &primary.id(), SYNC_DEADLINE);
    let mut r = replica.client();
    wait::until("the replica's link to come up", SYNC_DEADLINE, || {
        (info_field(&mut r, "replication", "master_link_status").as_deref() == Some("up"))
            .then_some(())
    });
    for i in 0..200 {
        let k = format!("{{t}}:after:{i}");
        assert_eq!(p.call_text(&["HSET", &k, "f", &i.to_string()]), ":1\r\n");
    }
    assert_eq!(p.call(&["WAIT", "1", "5000"]).reply.as_int(), Some(1));

    let moved = r.call_text(&["GET", "{t}:before:7"]);
    assert!(moved.starts_with("-MOVED "), "{moved}");
    assert_eq!(r.call_text(&["READONLY"]), "+OK\r\n");
    assert_eq!(r.call_text(&["GET", "{t}:before:7"]), "$1\r\n7\r\n");
    assert_eq!(
        r.call_text(&["HGET", "{t}:after:199", "f"]),
        "$3\r\n199\r\n"
    );
    // Writes still go to the primary.
    assert!(r.call_text(&["SET", "{t}:x", "1"]).starts_with("-MOVED "));
    assert_eq!(r.call(&["DBSIZE"]).reply.as_int(), Some(400));
}

/// Automatic failover in a 3-primary × 1-replica cluster made by `redis-cli --cluster create
/// --cluster-replicas 1` with `cluster-node-timeout 2000`: keys acknowledged through WAIT 1
/// are written, a primary is killed with SIGKILL, its replica is promoted, the cluster is ok
/// again, and every acknowledged key is readable. Prints how long promotion took (speed is
/// measured here, never asserted).
#[test]
fn failover_promotes_the_replica_and_keeps_acknowledged_writes() {
    use corekey_tests::cluster::{self, Node};
    let Some((mut nodes, pi, ri, keys)) = three_by_one_with_keys("fo", 300) else {
        return;
    };
    // Make every primary wait for its replica.
    for n in &nodes {
        let mut c = n.client();
        if info_field(&mut c, "replication", "role").as_deref() == Some("master") {
            assert_eq!(c.call(&["WAIT", "1", "5000"]).reply.as_int(), Some(1));
        }
    }

    let killed = std::time::Instant::now();
    nodes[pi].server.process().kill();
    let survivors: Vec<&Node> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != pi)
        .map(|(_, n)| n)
        .collect();
    wait::until(
        "the replica to be promoted",
        Duration::from_secs(30),
        || {
            let me = nodes[ri]
                .nodes()
                .into_iter()
                .find(|l| l.has_flag("myself"))?;
            (me.has_flag("master") && !me.slots.is_empty()).then_some(())
        },
    );
    let promoted = killed.elapsed();
    wait::until(
        "cluster_state:ok everywhere",
        Duration::from_secs(30),
        || survivors.iter().all(|n| n.state_ok()).then_some(()),
    );
    let ok = killed.elapsed();
    println!("failover: promoted after {promoted:?}, cluster ok after {ok:?}");

    let mut r = nodes[ri].client();
    assert_eq!(
        info_field(&mut r, "replication", "role").as_deref(),
        Some("master")
    );
    for k in &keys {
        let v = cluster::call_following(survivors[0], &["GET", k]);
        assert_eq!(v.as_bytes(), Some(k.as_bytes()), "{k} after the failover");
    }
    drop(survivors);

    // The old primary, restarted (empty: corekey keeps no snapshot yet), rejoins as a replica
    // of the promoted node and full-syncs from it: with no data and no replication id it has
    // nothing a backlog could continue (a replica whose link only broke resumes instead, see
    // `partial_resync_when_the_backlog_covers_it`). The promoted node's counters show which.
    let (full, partial) = rejoin(&mut nodes, pi, ri, &keys, |n| n.server.restart());
    assert_eq!(
        (full, partial),
        (1, 0),
        "one full sync (one shard), no partial resync"
    );
}

/// A 3 x 1 cluster made with `redis-cli --cluster create --cluster-replicas 1` and
/// `cluster-node-timeout 2000`, with `n` keys `{prefix}:{i}` set (value = key) through it;
/// returns the nodes, the primary of slot 0 and its replica, and the keys (`None`: no
/// redis-cli outside CI).
fn three_by_one_with_keys(
    prefix: &str,
    n: usize,
) -> Option<(Vec<corekey_tests::cluster::Node>, usize, usize, Vec<String>)> {
    use corekey_tests::cluster::{self, Node};
    let cli = cluster::redis_cli()?;
    let nodes = Node::start_many(6, 1, &["--cluster-node-timeout", "2000"]);
    cluster::create(&cli, &nodes, 1);
    cluster::wait_settled(&nodes.iter().collect::<Vec<_>>());
    // Which node is a primary, and which replica follows it (its link up).
    let (pi, ri) = cluster::shard_of_slot_zero(&nodes);
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}:{i}")).collect();
    for k in &keys {
        let r = cluster::call_following(&nodes[0], &["SET", k, k]);
        assert!(!r.is_error(), "SET {k}: {r:?}");
    }
    Some((nodes, pi, ri, keys))
}

/// Wakes the replaced primary `pi` up (`wake`), waits until it replicates the promoted `ri`,
/// and checks it then holds every key of `keys` that `ri` serves. Returns the full and the
/// partial resyncs `ri` served meanwhile (its INFO stats), so a test shows which happened.
fn rejoin(
    nodes: &mut [corekey_tests::cluster::Node],
    pi: usize,
    ri: usize,
    keys: &[String],
    wake: impl FnOnce(&mut corekey_tests::cluster::Node),
) -> (i64, i64) {
    let mut r = nodes[ri].client();
    let full_before = info_int(&mut r, "stats", "sync_full");
    let partial_before = info_int(&mut r, "stats", "sync_partial_ok");
    wake(&mut nodes[pi]);
    wait::until(
        "the old primary to replicate the new one",
        SYNC_DEADLINE,
        || {
            let mut c = nodes[pi].client();
            let role = info_field(&mut c, "replication", "role")?;
            let link = info_field(&mut c, "replication", "master_link_status")?;
            let port = info_field(&mut c, "replication", "master_port")?;
            (role == "slave" && link == "up" && port == nodes[ri].port().to_string()).then_some(())
        },
    );
    assert_eq!(r.call(&["WAIT", "1", "5000"]).reply.as_int(), Some(1));
    let full = info_int(&mut r, "stats", "sync_full") - full_before;
    let partial = info_int(&mut r, "stats", "sync_partial_ok") - partial_before;
    println!("old primary rejoined: {full} full sync(s), {partial} partial resync(s)");
    let mut old = nodes[pi].client();
    assert_eq!(old.call_text(&["READONLY"]), "+OK\r\n");
    let owned_by_new: Vec<&String> = keys
        .iter()
        .filter(|k| !r.call(&["GET", k.as_str()]).reply.is_error())
        .collect();
    assert!(!owned_by_new.is_empty());
    for k in owned_by_new {
        assert_eq!(
            old.call(&["GET", k.as_str()]).reply.as_bytes(),
            Some(k.as_bytes())
        );
    }
    (full, partial)
}

/// A primary that hangs (SIGSTOP) instead of dying is replaced the same way, and when it
/// wakes up (SIGCONT) it learns it was replaced, follows the promoted node and resumes with a
/// partial resync: it still holds its history, and the promoted node kept the old replication
/// id and offsets as its second history (`replid2`), which cover it, since no write reached
/// the old primary after its replica had everything. The promoted node's counters show which
/// resync happened (compare the killed-and-restarted primary above, which full-syncs).
#[test]
fn hung_primary_wakes_up_as_a_replica_with_a_partial_resync() {
    let Some((mut nodes, pi, ri, keys)) = three_by_one_with_keys("hung", 200) else {
        return;
    };
    let mut p = nodes[pi].client();
    assert_eq!(p.call(&["WAIT", "1", "5000"]).reply.as_int(), Some(1));
    drop(p);

    nodes[pi].server.process().signal(libc::SIGSTOP);
    wait::until(
        "the replica to be promoted",
        Duration::from_secs(30),
        || {
            let mut r = nodes[ri].client();
            (info_field(&mut r, "replication", "role").as_deref() == Some("master")).then_some(())
        },
    );
    let (full, partial) = rejoin(&mut nodes, pi, ri, &keys, |n| {
        n.server.process().signal(libc::SIGCONT)
    });
    assert_eq!((full, partial), (0, 1), "a partial resync, no full sync");
}

/// `repl-timeout 1` on the primary does not drop a healthy replica: the primary pings every
/// third of it (pings went every second whatever the timeout, and a replica's last answer was
/// then often just over a second old). Over 5 s the link stays up and no resync happens.
#[test]
fn short_repl_timeout_keeps_a_healthy_replica() {
    let primary = start("1", &["--repl-timeout", "1"]);
    let replica = start("1", &[]);
    replicate(&replica, &primary);
    let mut p = primary.client();
    let syncs = |p: &mut Conn| {
        (
            info_int(p, "stats", "sync_full"),
            info_int(p, "stats", "sync_partial_ok"),
        )
    };
    let before = syncs(&mut p);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        syncs(&mut p),
        before,
        "the replica was dropped and resynced"
    );
    assert_eq!(info_int(&mut p, "replication", "connected_slaves"), 1);
}

/// Sync mode (`min-replicas-ack 1`): a write's reply comes only once the replica holds it, so
/// the replica has every acknowledged write without a WAIT; with the replica stopped, a write
/// gets no reply and its connection is closed (never a false OK); reads still answer, and
/// writes are acknowledged again once the replica is back.
#[test]
fn sync_mode_acknowledges_only_what_a_replica_holds() {
    let primary = start(
        "2",
        &[
            "--min-replicas-ack",
            "1",
            "--min-replicas-ack-timeout",
            "300",
        ],
    );
    let mut replica = start("1", &[]);
    replicate(&replica, &primary);
    let mut p = primary.client();
    let mut r = replica.client();
    for i in 0..100 {
        let k = format!("sync:{i}");
        assert_eq!(p.call_text(&["SET", &k, "v"]), "+OK\r\n");
        // Acknowledged, so already on the replica (its read may not wait for anything).
        assert_eq!(r.call_text(&["GET", &k]), "$1\r\nv\r\n", "{k}");
    }
    assert_eq!(p.call_text(&["MULTI"]), "+OK\r\n");
    assert_eq!(p.call_text(&["INCR", "sync:n"]), "+QUEUED\r\n");
    assert_eq!(p.call_text(&["EXEC"]), "*1\r\n:1\r\n");
    assert_eq!(r.call_text(&["GET", "sync:n"]), "$1\r\n1\r\n");

    replica.process().signal(libc::SIGSTOP);
    let mut lost = primary.client();
    assert_eq!(lost.call_text(&["GET", "sync:1"]), "$1\r\nv\r\n");
    let e = lost
        .try_call(&["SET", "sync:unacked", "v"])
        .expect_err("no reply for a write no replica holds");
    assert!(e.is_closed(), "{e}");
    replica.process().signal(libc::SIGCONT);
    wait::until("writes to be acknowledged again", SYNC_DEADLINE, || {
        // A fresh connection each time: an unacknowledged try closes its own.
        let mut c = primary.client();
        let ok = matches!(c.try_call(&["SET", "sync:after", "v"]), Ok(f) if f.raw == b"+OK\r\n");
        ok.then_some(())
    });
    assert_eq!(r.call_text(&["GET", "sync:after"]), "$1\r\nv\r\n");
}

/// Single-shard failover, which Valkey cannot do: one primary and two replicas (set up with
/// ADDSLOTSRANGE, MEET and REPLICATE), writes acknowledged by both replicas through WAIT 2,
/// the primary killed with SIGKILL. A replica is promoted, the other follows it with a
/// partial resync (both followed the same primary: the promoted one's replid2 covers it), and
/// every acknowledged write is readable.
#[test]
fn single_shard_failover_with_two_replicas() {
    use corekey_tests::cluster::Node;
    let args = ["--cluster-node-timeout", "2000"];
    let mut nodes = Node::start_many(3, 1, &args);
    single_shard(&nodes);
    let mut p = nodes[0].client();
    for i in 0..300 {
        let k = format!("one:{i}");
        assert_eq!(p.call_text(&["SET", &k, &k]), "+OK\r\n");
    }
    wait::until("both replicas to acknowledge", SYNC_DEADLINE, || {
        (p.call(&["WAIT", "2", "1000"]).reply.as_int() == Some(2)).then_some(())
    });
    let partial_before: i64 = nodes[1..]
        .iter()
        .map(|n| info_int(&mut n.client(), "stats", "sync_partial_ok"))
        .sum();

    let killed = std::time::Instant::now();
    nodes[0].server.process().kill();
    let promoted = wait::until("a replica to be promoted", Duration::from_secs(30), || {
        (1..3).find(|&i| {
            info_field(&mut nodes[i].client(), "replication", "role").as_deref() == Some("master")
        })
    });
    let elapsed = killed.elapsed();
    let other = 3 - promoted;
    wait::until(
        "the other replica to follow the new primary",
        SYNC_DEADLINE,
        || {
            let mut c = nodes[other].client();
            let port = info_field(&mut c, "replication", "master_port")?;
            let link = info_field(&mut c, "replication", "master_link_status")?;
            (port == nodes[promoted].port().to_string() && link == "up").then_some(())
        },
    );
    wait::until("cluster_state:ok", Duration::from_secs(30), || {
        nodes[1..].iter().all(|n| n.state_ok()).then_some(())
    });
    println!("single-shard failover: promoted after {elapsed:?}");
    let partial_after: i64 = nodes[1..]
        .iter()
        .map(|n| info_int(&mut n.client(), "stats", "sync_partial_ok"))
        .sum();
    assert!(
        partial_after > partial_before,
        "the sibling resumed with a partial resync"
    );
    let mut np = nodes[promoted].client();
    for i in 0..300 {
        let k = format!("one:{i}");
        assert_eq!(np.call(&["GET", &k]).reply.as_bytes(), Some(k.as_bytes()));
    }
    assert_eq!(np.call_text(&["SET", "one:new", "v"]), "+OK\r\n");
    assert_eq!(np.call(&["WAIT", "1", "5000"]).reply.as_int(), Some(1));
    let mut o = nodes[other].client();
    o.call(&["READONLY"]);
    assert_eq!(o.call_text(&["GET", "one:new"]), "$1\r\nv\r\n");
    drop(nodes.remove(0));
}

/// Makes `nodes[0]` the primary of every slot and the others its replicas (ADDSLOTSRANGE,
/// MEET, REPLICATE), then waits until the cluster has settled.
fn single_shard(nodes: &[corekey_tests::cluster::Node]) {
    let mut p = nodes[0].client();
    assert_eq!(
        p.call_text(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        "+OK\r\n"
    );
    let primary_id = nodes[0].id();
    for n in &nodes[1..] {
        n.join_as_replica(&nodes[0], &primary_id, SYNC_DEADLINE);
    }
    corekey_tests::cluster::wait_settled(&nodes.iter().collect::<Vec<_>>());
}

/// Sync mode when a failover is only feared: in a single shard whose replicas may not fail
/// over (`cluster-replica-no-failover`), the primary is stopped (SIGSTOP) until both replicas
/// see it FAIL, then continued. While a replica sees its primary FAIL it holds its
/// acknowledgements (a sibling may be elected holding less), so no write is acknowledged
/// while both do: each acknowledged write is checked against the replicas' views right after
/// its reply (a FAIL, once cleared, does not come back here). Once the FAIL is cleared they
/// acknowledge again and writes go on being acknowledged, and every one is on both replicas.
#[test]
fn sync_mode_replicas_hold_acks_while_their_primary_is_fail() {
    use corekey_tests::cluster::Node;
    let args = [
        "--cluster-node-timeout",
        "1000",
        "--min-replicas-ack",
        "1",
        "--min-replicas-ack-timeout",
        "200",
    ];
    let replica_args = [&args[..], &["--cluster-replica-no-failover", "yes"]].concat();
    let mut nodes = vec![
        Node::start(1, &args),
        Node::start(1, &replica_args),
        Node::start(1, &replica_args),
    ];
    single_shard(&nodes);
    let set = |n: &Node, k: &str| {
        // A fresh connection each time: an unacknowledged write closes its own.
        matches!(n.client().try_call(&["SET", k, k]), Ok(f) if f.raw == b"+OK\r\n")
    };
    wait::until("a first acknowledged write", SYNC_DEADLINE, || {
        set(&nodes[0], "hold:before").then_some(())
    });

    let primary_id = nodes[0].id();
    let sees_fail = |n: &Node| {
        n.nodes()
            .iter()
            .any(|l| l.id == primary_id && l.has_flag("fail"))
    };
    nodes[0].server.process().signal(libc::SIGSTOP);
    wait::until(
        "both replicas to see the primary FAIL",
        SYNC_DEADLINE,
        || nodes[1..].iter().all(sees_fail).then_some(()),
    );
    nodes[0].server.process().signal(libc::SIGCONT);
    let mut acked = vec!["hold:before".to_string()];
    let mut unacked = 0;
    wait::until("writes to be acknowledged again", SYNC_DEADLINE, || {
        let k = format!("hold:{}", acked.len() + unacked);
        if !set(&nodes[0], &k) {
            unacked += 1;
            return None;
        }
        assert!(
            !nodes[1..].iter().all(sees_fail),
            "{k} was acknowledged while both replicas held their acknowledgements"
        );
        acked.push(k);
        (acked.len() > 10).then_some(())
    });
    println!("writes not acknowledged while the replicas held: {unacked}");
    let mut p = nodes[0].client();
    wait::until("both replicas to acknowledge", SYNC_DEADLINE, || {
        (p.call(&["WAIT", "2", "1000"]).reply.as_int() == Some(2)).then_some(())
    });
    for n in &nodes[1..] {
        let mut c = n.client();
        assert_eq!(c.call_text(&["READONLY"]), "+OK\r\n");
        for k in &acked {
            assert_eq!(c.call(&["GET", k]).reply.as_bytes(), Some(k.as_bytes()));
        }
    }
}

/// Sync mode with two replicas ahead on different streams, which sums of offsets hid from
/// elections: one primary of two shards and two replicas (`--cores 2`, `min-replicas-ack 1`).
/// A shard thread of a replica is stopped (ptrace: the rest of the node runs on) until the
/// primary drops that stream's link (`repl-timeout 2`; seen in INFO replication: the offset
/// the replica acknowledged is then its other stream's alone). First replica 2 loses stream
/// 1, and writes there are acknowledged by replica 1 alone; then replica 1 loses stream 0,
/// and a larger write there reaches replica 2 alone (unacknowledged: no replica holds both
/// streams' latest, so its connection is closed). The primary is killed with SIGKILL and the
/// threads released: replica 1 is ahead on stream 1 with acknowledged writes, replica 2 on
/// stream 0 and in sum (checked). A replica is promoted, after catching up from its sibling
/// (the bus's `CatchUp`: each refuses the other while ahead on a stream), and every
/// acknowledged write is on it. Skipped where ptrace is not allowed.
#[test]
fn replicas_ahead_on_different_streams_lose_no_acknowledged_write() {
    use corekey_tests::cluster::Node;
    let args = [
        "--cluster-node-timeout",
        "2000",
        "--min-replicas-ack",
        "1",
        "--min-replicas-ack-timeout",
        "500",
    ];
    // 2 s, not 1: pings (and their acknowledgements) come every second.
    let primary_args = [&args[..], &["--repl-timeout", "2"]].concat();
    let mut nodes = vec![
        Node::start(2, &primary_args),
        Node::start(2, &args),
        Node::start(2, &args),
    ];
    single_shard(&nodes);
    for r in &nodes[1..] {
        wait::until("a replica's link to come up", SYNC_DEADLINE, || {
            r.replicates(&nodes[0]).then_some(())
        });
    }
    // Unequal streams, so that the offset a replica acknowledged tells which stream it has.
    let mut acked = keys_on_shard(0, "base", 20);
    acked.extend(keys_on_shard(1, "base", 5));
    set_all(&nodes[0], &acked);
    let mut p = nodes[0].client();
    wait::until("both replicas to acknowledge", SYNC_DEADLINE, || {
        (p.call(&["WAIT", "2", "1000"]).reply.as_int() == Some(2)).then_some(())
    });

    // Replica 2 loses stream 1; replica 1 acknowledges what is written there.
    let Some(frozen2) = nodes[2].server.process().freeze_thread("shard-1") else {
        // CI runs as root, where ptrace is allowed: a skip there would hide the test.
        assert!(
            !corekey_tests::in_ci(),
            "ptrace(2) is not allowed, under CI=true"
        );
        eprintln!("skipped: ptrace(2) is not allowed here");
        return;
    };
    wait_acknowledged_only(&nodes[0], &nodes[2], 0);
    let ahead1 = keys_on_shard(1, "ahead1", 10);
    set_all(&nodes[0], &ahead1);
    // Replica 1 loses stream 0; replica 2 gets a larger write there, which no replica
    // holding both streams' latest can acknowledge.
    let frozen1 = nodes[1].server.process().freeze_thread("shard-0");
    let frozen1 = frozen1.expect("ptrace allowed a moment ago");
    wait_acknowledged_only(&nodes[0], &nodes[1], 1);
    let tag = (0..)
        .map(|i| format!("{{ahead2-{i}}}"))
        .find(|t| corekey_tests::slot::key_shard(t.as_bytes(), 2) == 0)
        .expect("a hash tag on shard 0");
    let value = "v".repeat(300);
    let mut mset = vec!["MSET".to_string()];
    for i in 0..30 {
        mset.extend([format!("{tag}:{i}"), value.clone()]);
    }
    let e = p
        .try_call(&mset)
        .expect_err("no replica holds both streams");
    assert!(e.is_closed(), "{e}");
    wait_acknowledged_only(&nodes[0], &nodes[2], 0);

    let killed = std::time::Instant::now();
    nodes[0].server.process().kill();
    drop((frozen1, frozen2));
    // The replicas hold what they had: catching up starts once the primary is FAIL.
    let (o1, o2) = (shard_offsets(&nodes[1]), shard_offsets(&nodes[2]));
    println!("stream offsets: replica 1 {o1:?}, replica 2 {o2:?}");
    assert!(
        o1[1] > o2[1] && o2[0] > o1[0] && o2.iter().sum::<u64>() > o1.iter().sum::<u64>(),
        "replica 1 ahead on stream 1, replica 2 on stream 0 and in sum: {o1:?} {o2:?}"
    );
    acked.extend(ahead1);

    let promoted = wait::until("a replica to be promoted", Duration::from_secs(30), || {
        (1..3).find(|&i| nodes[i].info("replication", "role").as_deref() == Some("master"))
    });
    println!(
        "replica {promoted} promoted after {:?}, stream offsets {:?}",
        killed.elapsed(),
        shard_offsets(&nodes[promoted])
    );
    let mut np = nodes[promoted].client();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|k| np.call(&["GET", k.as_str()]).reply.as_bytes() != Some(k.as_bytes()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes missing on the new primary: {missing:?}",
        missing.len(),
        acked.len()
    );
}

/// `n` keys named `{prefix}:{i}` whose slots a node of two shards keeps on `shard`.
fn keys_on_shard(shard: u16, prefix: &str, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .filter(|k| corekey_tests::slot::key_shard(k.as_bytes(), 2) == shard)
        .take(n)
        .collect()
}

/// Sets every key to its own name on `node`, each acknowledged (+OK).
fn set_all(node: &corekey_tests::cluster::Node, keys: &[String]) {
    let mut c = node.client();
    for k in keys {
        assert_eq!(c.call_text(&["SET", k, k]), "+OK\r\n", "SET {k}");
    }
}

/// `repl_shard_offsets` of INFO replication: each shard's stream offset.
fn shard_offsets(node: &corekey_tests::cluster::Node) -> Vec<u64> {
    let text = node
        .info("replication", "repl_shard_offsets")
        .expect("INFO replication has repl_shard_offsets");
    text.split(',')
        .map(|o| o.parse().expect("an offset"))
        .collect()
}

/// Waits until `primary` counts `replica` on stream `kept` alone (it dropped the others),
/// with all of that stream acknowledged: its INFO line for the replica is then not online,
/// with the primary's offset of that stream.
fn wait_acknowledged_only(
    primary: &corekey_tests::cluster::Node,
    replica: &corekey_tests::cluster::Node,
    kept: usize,
) {
    let port = replica.port().to_string();
    wait::until(
        "the primary to count one stream of a replica",
        SYNC_DEADLINE,
        || {
            let kept_offset = shard_offsets(primary)[kept];
            let info = primary.text(&["INFO", "replication"]);
            let line = info
                .lines()
                .filter(|l| l.starts_with("slave") && l.contains(":ip="))
                .find(|l| l.contains(&format!(",port={port},")))?;
            (!line.contains(",state=online,") && line.contains(&format!(",offset={kept_offset},")))
                .then_some(())
        },
    );
}

/// `repl-timeout`: a replica whose primary goes silent (stopped with SIGSTOP: no close, no
/// pings) drops the link and reports it down; when the primary comes back the replica resumes
/// with a partial resync and gets what was written.
#[test]
fn silent_primary_times_out_then_resumes() {
    let mut primary = start("2", &[]);
    let replica = start("2", &["--repl-timeout", "1"]);
    replicate(&replica, &primary);
    let mut p = primary.client();
    p.call(&["SET", "before", "1"]);
    wait_caught_up(&primary);
    let partial_before = info_int(&mut p, "stats", "sync_partial_ok");

    primary.process().signal(libc::SIGSTOP);
    let mut r = replica.client();
    wait::until("the link to be reported down", SYNC_DEADLINE, || {
        (info_field(&mut r, "replication", "master_link_status").as_deref() == Some("down"))
            .then_some(())
    });
    primary.process().signal(libc::SIGCONT);
    p.call(&["SET", "after", "1"]);
    wait_link_up(&replica);
    wait_caught_up(&primary);
    assert_eq!(r.call_text(&["GET", "after"]), "$1\r\n1\r\n");
    assert!(info_int(&mut p, "stats", "sync_partial_ok") > partial_before);
}

/// `repl-timeout`, primary side: a replica that stops answering (SIGSTOP: no close, no acks)
/// is disconnected, so WAIT no longer waits on it and INFO stops listing it; idle replicas
/// that answer the primary's pings stay. When the replica comes back it resumes (partial
/// resync) and gets what was written meanwhile.
#[test]
fn silent_replica_is_dropped_then_resumes() {
    let primary = start("2", &["--repl-timeout", "1"]);
    let mut replica = start("2", &[]);
    replicate(&replica, &primary);
    let mut p = primary.client();
    p.call(&["SET", "before", "1"]);
    wait_caught_up(&primary);
    // Idle for longer than the timeout: the pings' acks keep the replica connected.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(info_int(&mut p, "replication", "connected_slaves"), 1);
    let partial_before = info_int(&mut p, "stats", "sync_partial_ok");

    replica.process().signal(libc::SIGSTOP);
    wait::until("the primary to drop the replica", SYNC_DEADLINE, || {
        (info_int(&mut p, "replication", "connected_slaves") == 0).then_some(())
    });
    assert_eq!(p.call(&["WAIT", "1", "100"]).reply.as_int(), Some(0));
    p.call(&["SET", "after", "1"]);
    replica.process().signal(libc::SIGCONT);
    wait_link_up(&replica);
    wait_caught_up(&primary);
    let mut r = replica.client();
    assert_eq!(r.call_text(&["GET", "after"]), "$1\r\n1\r\n");
    assert!(info_int(&mut p, "stats", "sync_partial_ok") > partial_before);
}

/// No acknowledged write lost, under write load, both ways a write can be acknowledged: in
/// sync mode (every node with `min-replicas-ack 1`: the reply itself waits for the replica),
/// and through `WAIT 1` after each SET (default settings). In a 3-primary × 1-replica cluster
/// a client writes to one primary as fast as it can while that primary is killed with
/// SIGKILL; after its replica is promoted, every key the client got its acknowledgement for is
/// there. Repeats `COREKEY_FAILOVER_REPS` times per mode (default 1; the 20
/// repetitions: `COREKEY_FAILOVER_REPS=20 cargo nextest run -p corekey-tests --test
/// replication no_acknowledged_write_lost --no-capture`).
#[test]
fn no_acknowledged_write_lost_under_load() {
    let Some(cli) = corekey_tests::cluster::redis_cli() else {
        return;
    };
    let reps: usize = std::env::var("COREKEY_FAILOVER_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for rep in 0..reps {
        for mode in [AckMode::Sync, AckMode::Wait] {
            failover_under_load(&cli, rep, mode, 1);
        }
    }
}

/// The same with two replicas per primary (`--cluster-replicas 2`, nine nodes): only
/// primaries vote there, so the sibling that is not promoted must still state what it holds
/// before the other wins (it may be the one that acknowledged the last writes). Either
/// replica may win; every acknowledged write must be on the one that did.
#[test]
fn no_acknowledged_write_lost_with_two_replicas_per_primary() {
    let Some(cli) = corekey_tests::cluster::redis_cli() else {
        return;
    };
    for mode in [AckMode::Sync, AckMode::Wait] {
        failover_under_load(&cli, 0, mode, 2);
    }
}

/// How the writer of [`failover_under_load`] gets its writes acknowledged.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AckMode {
    /// `min-replicas-ack 1`: a SET's +OK means the replica holds it.
    Sync,
    /// `WAIT 1 1000` after each SET: a reply of 1 means the replica holds it.
    Wait,
}

fn failover_under_load(cli: &std::path::Path, rep: usize, mode: AckMode, replicas: usize) {
    use corekey_tests::cluster::{self, Node};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let mut args = vec!["--cluster-node-timeout", "2000"];
    if mode == AckMode::Sync {
        args.extend([
            "--min-replicas-ack",
            "1",
            "--min-replicas-ack-timeout",
            "1000",
        ]);
    }
    let mut nodes = Node::start_many(3 * (1 + replicas), 1, &args);
    cluster::create(cli, &nodes, replicas);
    cluster::wait_settled(&nodes.iter().collect::<Vec<_>>());
    let (pi, _) = cluster::shard_of_slot_zero(&nodes);
    let candidates: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].replicates(&nodes[pi]))
        .collect();
    assert_eq!(candidates.len(), replicas, "replicas of slot 0's primary");
    // A hash tag the primary serves, so every write goes to it.
    let mut pc = nodes[pi].client();
    let tag = (0..1000)
        .map(|t| format!("{{w{t}}}"))
        .find(|tag| pc.call(&["GET", tag]).raw == b"$-1\r\n")
        .expect("a tag of the primary's slots");

    let acked = Arc::new(AtomicUsize::new(0));
    let writer = {
        let acked = acked.clone();
        let tag = tag.clone();
        std::thread::spawn(move || {
            let mut ok = Vec::new();
            // Bounded: the primary dies long before this many writes.
            for i in 0..10_000_000u64 {
                let k = format!("{tag}:{i}");
                match pc.try_call(&["SET", &k, &i.to_string()]) {
                    Ok(f) if f.raw == b"+OK\r\n" => {}
                    _ => break,
                }
                if mode == AckMode::Wait {
                    match pc.try_call(&["WAIT", "1", "1000"]) {
                        Ok(f) if f.reply.as_int().is_some_and(|n| n >= 1) => {}
                        _ => break,
                    }
                }
                ok.push(k);
                acked.fetch_add(1, Ordering::Relaxed);
            }
            ok
        })
    };
    wait::until("some acknowledged writes", SYNC_DEADLINE, || {
        (acked.load(Ordering::Relaxed) >= 300).then_some(())
    });
    nodes[pi].server.process().kill();
    let killed = std::time::Instant::now();
    let ok = writer.join().expect("the writer thread");
    let ri = wait::until("a replica to be promoted", Duration::from_secs(30), || {
        candidates.iter().copied().find(|&i| {
            let mut r = nodes[i].client();
            info_field(&mut r, "replication", "role").as_deref() == Some("master")
        })
    });
    let promoted = killed.elapsed();
    // Reported, not asserted (no speed thresholds in tests): the figure is the time
    // until the cluster answers again.
    wait::until(
        "cluster_state:ok on every survivor",
        Duration::from_secs(30),
        || {
            nodes
                .iter()
                .enumerate()
                .all(|(i, n)| i == pi || n.state_ok())
                .then_some(())
        },
    );
    println!(
        "repetition {rep} ({mode:?}, {replicas} replicas): promoted after {promoted:?}, cluster ok on every \
         survivor after {:?}",
        killed.elapsed()
    );
    let mut r = nodes[ri].client();
    let missing: Vec<&String> = ok
        .iter()
        .filter(|k| r.call(&["EXISTS", k.as_str()]).reply.as_int() != Some(1))
        .collect();
    assert!(
        missing.is_empty(),
        "repetition {rep} ({mode:?}): {} of {} acknowledged writes lost, first {:?}",
        missing.len(),
        ok.len(),
        missing.first()
    );
    println!(
        "repetition {rep} ({mode:?}): {} acknowledged writes, all kept",
        ok.len()
    );
}

/// The replication series of `/metrics` (redis_exporter's names) on both ends of a stream.
#[test]
fn replication_metrics() {
    let (pm, rm) = (lease_port(), lease_port());
    let primary = start("1", &["--metrics-port", &pm.port().to_string()]);
    let replica = start("1", &["--metrics-port", &rm.port().to_string()]);
    replicate(&replica, &primary);
    let mut p = primary.client();
    assert_eq!(p.call_text(&["SET", "k", "v"]), "+OK\r\n");
    wait_caught_up(&primary);
    let offset = info_int(&mut p, "replication", "master_repl_offset");
    let (status, page) = http_get(pm.port(), "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    let line = |page: &str, prefix: &str| -> String {
        page.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {page}"))
            .to_string()
    };
    assert_eq!(
        line(&page, "redis_connected_slaves "),
        "redis_connected_slaves 1"
    );
    assert_eq!(
        line(&page, "redis_master_repl_offset "),
        format!("redis_master_repl_offset {offset}")
    );
    let acked = line(&page, "redis_connected_slave_offset_bytes{");
    assert!(
        acked.contains(&format!("slave_port=\"{}\"", replica.port()))
            && acked.contains("slave_state=\"online\"")
            && acked.ends_with(&format!(" {offset}")),
        "{acked}"
    );
    assert!(line(&page, "redis_instance_info{").contains("role=\"master\""));
    let (_, page) = http_get(rm.port(), "/metrics").expect("GET /metrics");
    assert_eq!(
        line(&page, "redis_master_link_up "),
        "redis_master_link_up 1"
    );
    assert!(line(&page, "redis_instance_info{").contains("role=\"slave\""));
    assert_eq!(
        line(&page, "redis_slave_repl_offset "),
        format!("redis_slave_repl_offset {offset}")
    );
}
