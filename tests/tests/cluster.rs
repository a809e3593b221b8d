//! Cluster mode end to end: corekey nodes built into clusters by `redis-cli --cluster`, used by
//! cluster-aware clients, resharded, and restarted after SIGKILL. redis-cli (and for one test
//! redis-benchmark, python3 with redis-py) are required under CI=true and skipped elsewhere.
//!
//! The machine running these has few cores: three-node clusters use two shards per node, six-
//! node clusters one.

use corekey_tests::client::Reply;
use corekey_tests::cluster::{
    call_following, check_clean, cli, create, redis_cli, wait_settled, Node, SETTLE_DEADLINE,
};
use corekey_tests::server::{run_to_exit, Corekey};
use corekey_tests::slot::key_slot;
use corekey_tests::wait;
use std::time::Duration;

fn refs(nodes: &[Node]) -> Vec<&Node> {
    nodes.iter().collect()
}

/// The node serving `slot`, by the first node's view.
fn owner_of(nodes: &[Node], slot: u16) -> &Node {
    let lines = nodes[0].nodes();
    let id = lines
        .iter()
        .find(|l| {
            l.slots.iter().any(|r| {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                match (a.parse::<u16>(), b.parse::<u16>()) {
                    (Ok(a), Ok(b)) => (a..=b).contains(&slot),
                    _ => false,
                }
            })
        })
        .map(|l| l.id.clone())
        .expect("the slot has an owner");
    nodes
        .iter()
        .find(|n| n.id() == id)
        .expect("the owner is one of ours")
}

/// Six one-shard nodes made into three primaries with a replica each by `redis-cli --cluster
/// create --cluster-replicas 1`, once every node sees the three replicas (roles spread by
/// gossip).
fn six_with_replicas(cli_path: &std::path::Path) -> Vec<Node> {
    let nodes = Node::start_many(6, 1, &[]);
    create(cli_path, &nodes, 1);
    wait_settled(&refs(&nodes));
    wait::until("every node to see three replicas", SETTLE_DEADLINE, || {
        nodes
            .iter()
            .all(|n| n.nodes().iter().filter(|l| l.has_flag("slave")).count() == 3)
            .then_some(())
    });
    nodes
}

/// `redis-cli --cluster create` of three primaries succeeds, the cluster reaches
/// `cluster_state:ok` with every node agreeing, `--cluster check` is clean, and each node
/// describes the cluster as Valkey does (one `myself`, three primaries, INFO fields).
#[test]
fn create_three_primaries() {
    let Some(cli_path) = redis_cli() else {
        return;
    };
    let nodes = Node::start_many(3, 2, &[]);
    create(&cli_path, &nodes, 0);
    wait_settled(&refs(&nodes));
    check_clean(&cli_path, &nodes[0]);
    for n in &nodes {
        let lines = n.nodes();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines.iter().filter(|l| l.has_flag("myself")).count(), 1);
        assert_eq!(lines.iter().filter(|l| l.has_flag("master")).count(), 3);
        assert!(lines
            .iter()
            .all(|l| l.link == "connected" && l.primary == "-"));
        let me = lines.iter().find(|l| l.has_flag("myself")).unwrap();
        assert_eq!(me.id, n.id());
        assert_eq!(me.addr, format!("127.0.0.1:{}@{}", n.port(), n.bus_port()));
        assert_eq!(n.info_field("cluster_known_nodes").as_deref(), Some("3"));
        assert_eq!(n.info_field("cluster_size").as_deref(), Some("3"));
        assert_eq!(
            n.info_field("cluster_slots_assigned").as_deref(),
            Some("16384")
        );
        let info = n.text(&["INFO", "cluster"]);
        assert!(info.contains("cluster_enabled:1\r\n"), "{info}");
    }
    // Distinct configEpochs, as redis-cli assigns them.
    let mut epochs: Vec<u64> = nodes[0].nodes().iter().map(|l| l.config_epoch).collect();
    epochs.sort();
    epochs.dedup();
    assert_eq!(epochs.len(), 3);
}

/// Six nodes with `--cluster-replicas 1`: three primaries each with one replica, a clean check,
/// and CLUSTER REPLICAS lists each primary's replica.
#[test]
fn create_six_with_replicas() {
    let Some(cli_path) = redis_cli() else {
        return;
    };
    let nodes = six_with_replicas(&cli_path);
    check_clean(&cli_path, &nodes[0]);
    let lines = nodes[0].nodes();
    for primary in lines.iter().filter(|l| l.has_flag("master")) {
        let replicas = lines.iter().filter(|l| l.primary == primary.id).count();
        assert_eq!(replicas, 1, "{primary:?}");
        let f = nodes[0]
            .client()
            .call(&["CLUSTER", "REPLICAS", &primary.id]);
        assert_eq!(f.reply.as_list().map(<[Reply]>::len), Some(1), "{f}");
    }
    // A replica redirects to its primary, except reads after READONLY (served here; the data
    // itself arrives with replication, a later issue).
    let replica_line = lines.iter().find(|l| l.has_flag("slave")).unwrap();
    let replica = nodes.iter().find(|n| n.id() == replica_line.id).unwrap();
    let primary = nodes
        .iter()
        .find(|n| n.id() == replica_line.primary)
        .unwrap();
    let primary_line = lines.iter().find(|l| l.id == replica_line.primary).unwrap();
    let first_slot: u16 = primary_line.slots[0]
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| key_slot(k.as_bytes()) == first_slot)
        .unwrap();
    let moved = format!("-MOVED {first_slot} 127.0.0.1:{}\r\n", primary.port());
    let mut c = replica.client();
    assert_eq!(c.call(&["GET", &key]).raw, moved.as_bytes());
    assert_eq!(c.call(&["READONLY"]).raw, b"+OK\r\n");
    assert_eq!(c.call(&["GET", &key]).raw, b"$-1\r\n");
    assert_eq!(c.call(&["SET", &key, "v"]).raw, moved.as_bytes());
    assert_eq!(c.call(&["READWRITE"]).raw, b"+OK\r\n");
    assert_eq!(c.call(&["GET", &key]).raw, moved.as_bytes());
}

/// add-node as a primary and as a replica (`--cluster-slave`), then del-node of both: each step
/// leaves a cluster that `--cluster check` finds clean, and the removed nodes are forgotten.
#[test]
fn add_and_delete_nodes() {
    let Some(cli_path) = redis_cli() else {
        return;
    };
    let nodes = Node::start_many(3, 1, &[]);
    create(&cli_path, &nodes, 0);
    wait_settled(&refs(&nodes));
    let extra = Node::start_many(2, 1, &[]);
    let (primary, replica) = (&extra[0], &extra[1]);
    cli(
        &cli_path,
        &[
            "--cluster",
            "add-node",
            &primary.address(),
            &nodes[0].address(),
        ],
    );
    // add-node checks that every node agrees first, and a new node learns its peers' slots
    // from their pings within a moment (as with Valkey): wait for that before the next one.
    let four: Vec<&Node> = nodes.iter().chain([primary]).collect();
    wait::until(
        "the new primary to know all four nodes",
        SETTLE_DEADLINE,
        || four.iter().all(|n| n.nodes().len() == 4).then_some(()),
    );
    wait_settled(&four);
    cli(
        &cli_path,
        &[
            "--cluster",
            "add-node",
            &replica.address(),
            &nodes[0].address(),
            "--cluster-slave",
        ],
    );
    let all: Vec<&Node> = nodes.iter().chain(extra.iter()).collect();
    wait::until(
        "five nodes known everywhere, one replica",
        SETTLE_DEADLINE,
        || {
            all.iter()
                .all(|n| {
                    let l = n.nodes();
                    l.len() == 5 && l.iter().filter(|x| x.has_flag("slave")).count() == 1
                })
                .then_some(())
        },
    );
    wait_settled(&all);
    check_clean(&cli_path, &nodes[0]);
    for gone in [replica, primary] {
        let id = gone.id();
        cli(
            &cli_path,
            &["--cluster", "del-node", &nodes[0].address(), &id],
        );
        for n in &nodes {
            assert!(n.nodes().iter().all(|l| l.id != id), "{id} still known");
        }
    }
    check_clean(&cli_path, &nodes[0]);
    assert_eq!(primary.nodes().len(), 1, "a deleted node is reset");
}

/// Redirects and refusals carry Valkey's exact bytes: MOVED, CROSSSLOT, ASK and TRYAGAIN while a
/// slot migrates, ASKING letting a command into an importing slot, and CLUSTERDOWN for a slot
/// nobody serves.
#[test]
fn redirect_texts_are_exact() {
    let Some(cli_path) = redis_cli() else {
        return;
    };
    let nodes = Node::start_many(3, 2, &[]);
    create(&cli_path, &nodes, 0);
    wait_settled(&refs(&nodes));
    let slot = key_slot(b"foo");
    assert_eq!(slot, 12182);
    let owner = owner_of(&nodes, slot);
    let other = nodes.iter().find(|n| n.port() != owner.port()).unwrap();
    let f = other.client().call(&["GET", "foo"]);
    assert_eq!(
        f.raw,
        format!("-MOVED 12182 127.0.0.1:{}\r\n", owner.port()).as_bytes()
    );
    let f = owner.client().call(&["MSET", "a", "1", "b", "2"]);
    assert_eq!(
        f.raw,
        b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    let f = owner.client().call(&["SET", "foo", "bar"]);
    assert_eq!(f.raw, b"+OK\r\n");
    // Migrate slot 12182 from `owner` to `other`.
    let (owner_id, other_id) = (owner.id(), other.id());
    let s = slot.to_string();
    assert_eq!(
        other
            .client()
            .call(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &owner_id])
            .raw,
        b"+OK\r\n"
    );
    assert_eq!(
        owner
            .client()
            .call(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &other_id])
            .raw,
        b"+OK\r\n"
    );
    // A key still here is served; a missing one is sent to the target with ASK.
    assert_eq!(owner.client().call(&["GET", "foo"]).raw, b"$3\r\nbar\r\n");
    let f = owner.client().call(&["GET", "{foo}missing"]);
    assert_eq!(
        f.raw,
        format!("-ASK 12182 127.0.0.1:{}\r\n", other.port()).as_bytes()
    );
    let f = owner.client().call(&["MGET", "foo", "{foo}missing"]);
    assert_eq!(
        f.raw,
        b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
    );
    // The importing node redirects without ASKING and serves after it.
    let mut c = other.client();
    assert_eq!(
        c.call(&["GET", "{foo}missing"]).raw,
        format!("-MOVED 12182 127.0.0.1:{}\r\n", owner.port()).as_bytes()
    );
    assert_eq!(c.call(&["ASKING"]).raw, b"+OK\r\n");
    assert_eq!(c.call(&["SET", "{foo}new", "v"]).raw, b"+OK\r\n");
    // ASKING lasts one command.
    assert!(c
        .call(&["GET", "{foo}new"])
        .raw
        .starts_with(b"-MOVED 12182"));
    // The migrating node's markers in CLUSTER NODES.
    let mine = owner.text(&["CLUSTER", "NODES"]);
    assert!(mine.contains(&format!(" [12182->-{other_id}]")), "{mine}");
    let theirs = other.text(&["CLUSTER", "NODES"]);
    assert!(
        theirs.contains(&format!(" [12182-<-{owner_id}]")),
        "{theirs}"
    );
    // MIGRATE the key over and finish the move; the slot then answers MOVED to the target.
    let f = owner.client().call(&[
        "MIGRATE",
        "127.0.0.1",
        &other.port().to_string(),
        "",
        "0",
        "5000",
        "KEYS",
        "foo",
    ]);
    assert_eq!(f.raw, b"+OK\r\n");
    for n in [&other, &owner] {
        assert_eq!(
            n.client()
                .call(&["CLUSTER", "SETSLOT", &s, "NODE", &other_id])
                .raw,
            b"+OK\r\n"
        );
    }
    assert_eq!(
        owner.client().call(&["GET", "foo"]).raw,
        format!("-MOVED 12182 127.0.0.1:{}\r\n", other.port()).as_bytes()
    );
    assert_eq!(other.client().call(&["GET", "foo"]).raw, b"$3\r\nbar\r\n");
    // A slot nobody serves.
    let f = other.client().call(&["CLUSTER", "DELSLOTS", &s]);
    assert_eq!(f.raw, b"+OK\r\n");
    let f = other.client().call(&["GET", "foo"]);
    assert!(
        f.raw == b"-CLUSTERDOWN Hash slot not served\r\n"
            || f.raw == b"-CLUSTERDOWN The cluster is down\r\n",
        "{f}"
    );
}

/// A node killed with SIGKILL and started again comes back with the same id, epoch and
/// slots (from its nodes.conf), and the cluster returns to `cluster_state:ok`.
#[test]
fn sigkill_and_restart() {
    let Some(cli_path) = redis_cli() else {
        return;
    };
    let mut nodes = Node::start_many(3, 1, &[]);
    create(&cli_path, &nodes, 0);
    wait_settled(&refs(&nodes));
    let before = nodes[1].nodes();
    let me_before = before
        .iter()
        .find(|l| l.has_flag("myself"))
        .unwrap()
        .clone();
    nodes[1].server.process().kill();
    nodes[1].server.restart();
    let after = nodes[1].nodes();
    let me_after = after.iter().find(|l| l.has_flag("myself")).unwrap();
    assert_eq!(me_after.id, me_before.id);
    assert_eq!(me_after.slots, me_before.slots);
    assert_eq!(me_after.config_epoch, me_before.config_epoch);
    assert_eq!(after.len(), 3, "it remembers its peers");
    wait_settled(&refs(&nodes));
    check_clean(&cli_path, &nodes[0]);
}

/// `redis-cli --cluster reshard` moves slots with their keys (MIGRATE ... KEYS into
/// RESTORE-ASKING): every key is readable afterwards through redirects, the check is clean.
#[test]
fn reshard_moves_keys() {
    let Some(cli_path) = redis_cli() else {
        return;
    };
    let nodes = Node::start_many(3, 2, &[]);
    create(&cli_path, &nodes, 0);
    wait_settled(&refs(&nodes));
    // redis-cli takes the lowest slots of the source: put every key in slots 0..300.
    let from = owner_of(&nodes, 0);
    let to = nodes.iter().find(|n| n.port() != from.port()).unwrap();
    let keys: Vec<String> = (0..)
        .map(|i| format!("key:{i}"))
        .filter(|k| key_slot(k.as_bytes()) < 300)
        .take(300)
        .collect();
    // Every value type moves: strings, lists, hashes, sets (intset and hashtable) and
    // sorted sets, each DUMPed by the source and RESTOREd by the target.
    for (i, k) in keys.iter().enumerate() {
        let write = write_of(i, k);
        let reply = call_following(from, &write.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!matches!(reply, Reply::Error(_)), "{k}: {reply:?}");
    }
    let keys_before = from.client().call(&["DBSIZE"]).reply.as_int().unwrap();
    assert_eq!(keys_before, 300);
    cli(
        &cli_path,
        &[
            "--cluster",
            "reshard",
            &from.address(),
            "--cluster-from",
            &from.id(),
            "--cluster-to",
            &to.id(),
            "--cluster-slots",
            "300",
            "--cluster-yes",
        ],
    );
    wait_settled(&refs(&nodes));
    check_clean(&cli_path, &nodes[0]);
    assert_eq!(from.client().call(&["DBSIZE"]).reply.as_int(), Some(0));
    assert_eq!(to.client().call(&["DBSIZE"]).reply.as_int(), Some(300));
    for (i, k) in keys.iter().enumerate() {
        let (read, want) = read_of(i, k);
        let got = call_following(
            &nodes[2],
            &read.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(got, want, "{k}");
    }
}

/// The write that makes key number `i` of the reshard test: one value type per `i % 6`.
fn write_of(i: usize, k: &str) -> Vec<String> {
    match i % 6 {
        0 => vec!["SET".into(), k.into(), format!("v-{k}")],
        1 => vec![
            "RPUSH".into(),
            k.into(),
            "a".into(),
            "1".into(),
            format!("v-{k}"),
        ],
        2 => vec![
            "HSET".into(),
            k.into(),
            "f".into(),
            format!("v-{k}"),
            "n".into(),
            "7".into(),
        ],
        3 => vec![
            "SADD".into(),
            k.into(),
            "3".into(),
            "-1".into(),
            i.to_string(),
        ],
        4 => vec!["SADD".into(), k.into(), "m".into(), format!("v-{k}")],
        _ => vec![
            "ZADD".into(),
            k.into(),
            "1.5".into(),
            "a".into(),
            "-inf".into(),
            k.into(),
        ],
    }
}

/// The read that checks key number `i` after the move, and its reply.
fn read_of(i: usize, k: &str) -> (Vec<String>, Reply) {
    let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
    let cmd = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let v = format!("v-{k}");
    match i % 6 {
        0 => (cmd(&["GET", k]), bulk(&v)),
        1 => (
            cmd(&["LRANGE", k, "0", "-1"]),
            Reply::Array(vec![bulk("a"), bulk("1"), bulk(&v)]),
        ),
        2 => (
            cmd(&["HMGET", k, "f", "n"]),
            Reply::Array(vec![bulk(&v), bulk("7")]),
        ),
        3 => {
            // An intset answers SMEMBERS in numeric order.
            let mut members = vec![-1i64, 3, i as i64];
            members.sort_unstable();
            members.dedup();
            (
                cmd(&["SMEMBERS", k]),
                Reply::Array(members.iter().map(|m| bulk(&m.to_string())).collect()),
            )
        }
        4 => (
            cmd(&["SMISMEMBER", k, "m", &v, "x"]),
            Reply::Array(vec![
                Reply::Integer(1),
                Reply::Integer(1),
                Reply::Integer(0),
            ]),
        ),
        _ => (
            cmd(&["ZRANGE", k, "0", "-1", "WITHSCORES"]),
            Reply::Array(vec![bulk(k), bulk("-inf"), bulk("a"), bulk("1.5")]),
        ),
    }
}

/// redis-py's RedisCluster (from PyPI) writes 10,000 keys spread over every node and reads
/// them back.
#[test]
fn redis_py_cluster_client() {
    let Some(cli_path) = redis_cli() else {
        return;
    };
    let Some(python) = corekey_tests::require_tool("python3", "python3") else {
        return;
    };
    let probe = run_to_exit(
        "python3",
        &python,
        &["-c", "import redis.cluster"],
        Duration::from_secs(30),
    );
    if !probe.status.success() {
        if corekey_tests::in_ci() {
            panic!("redis-py is not installed but CI=true: `pip install redis` (.ci/run does)");
        }
        eprintln!("SKIPPED: redis-py not installed (pip install redis)");
        return;
    }
    let nodes = Node::start_many(3, 2, &[]);
    create(&cli_path, &nodes, 0);
    wait_settled(&refs(&nodes));
    let script = r#"
import sys
from redis.cluster import RedisCluster
rc = RedisCluster(host="127.0.0.1", port=int(sys.argv[1]))
n = 10000
pipe = rc.pipeline()
for i in range(n):
    pipe.set(f"key:{i}", f"value:{i}")
pipe.execute()
pipe = rc.pipeline()
for i in range(n):
    pipe.get(f"key:{i}")
bad = [i for i, v in enumerate(pipe.execute()) if v != f"value:{i}".encode()]
assert not bad, f"{len(bad)} keys read back wrong, first {bad[:5]}"
per_node = rc.dbsize(target_nodes=RedisCluster.PRIMARIES)
print("ok", per_node)
"#;
    let port = nodes[0].port().to_string();
    let done = run_to_exit(
        "python3",
        &python,
        &["-c", script, &port],
        Duration::from_secs(300),
    );
    assert!(
        done.status.success() && done.stdout.starts_with("ok"),
        "redis-py failed:\n{}\n{}",
        done.stdout,
        done.stderr
    );
    let total: i64 = nodes
        .iter()
        .map(|n| {
            let k = n.client().call(&["DBSIZE"]).reply.as_int().unwrap();
            assert!(k > 0, "node {} holds no key", n.port());
            k
        })
        .sum();
    assert_eq!(total, 10_000);
}

/// `redis-benchmark --cluster` runs SET and GET against the cluster with no error.
#[test]
fn redis_benchmark_cluster() {
    let Some(cli_path) = redis_cli() else {
        return;
    };
    let Some(bench) = corekey_tests::require_tool("redis-benchmark", "redis-tools") else {
        return;
    };
    let nodes = Node::start_many(3, 2, &[]);
    create(&cli_path, &nodes, 0);
    wait_settled(&refs(&nodes));
    let port = nodes[0].port().to_string();
    let args = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cluster",
        "-t",
        "set,get",
        "-n",
        "20000",
        "-r",
        "10000",
        "-c",
        "20",
        "-q",
    ];
    let done = run_to_exit("redis-benchmark", &bench, &args, Duration::from_secs(300));
    let output = format!("{}\n{}", done.stdout, done.stderr);
    assert!(done.status.success(), "redis-benchmark failed:\n{output}");
    let errors: Vec<&str> = output
        .split(['\r', '\n'])
        .filter(|l| l.to_ascii_lowercase().contains("err"))
        .collect();
    assert!(
        errors.is_empty(),
        "redis-benchmark reported errors: {errors:#?}"
    );
    for t in ["SET:", "GET:"] {
        assert!(output.contains(t), "no result for {t}:\n{output}");
    }
}

/// What changes with cluster mode on a single node: one database (SELECT, MOVE, SWAPDB refuse as
/// Valkey does), HELLO says cluster, nodes.conf exists; a standalone node refuses CLUSTER.
#[test]
fn cluster_mode_basics() {
    let node = Node::start(1, &["--databases", "16"]);
    let mut c = node.client();
    let databases = c.call(&["CONFIG", "GET", "databases"]);
    assert_eq!(
        databases
            .reply
            .as_list()
            .and_then(|l| l.get(1))
            .and_then(Reply::as_bytes),
        Some(&b"1"[..])
    );
    assert_eq!(
        c.call(&["SELECT", "1"]).raw,
        b"-ERR SELECT is not allowed in cluster mode\r\n"
    );
    assert_eq!(c.call(&["SELECT", "0"]).raw, b"+OK\r\n");
    assert_eq!(
        c.call(&["SWAPDB", "0", "1"]).raw,
        b"-ERR SWAPDB is not allowed in cluster mode\r\n"
    );
    let hello = c.call(&["HELLO", "2"]);
    let text = String::from_utf8_lossy(&hello.raw).into_owned();
    assert!(text.contains("$4\r\nmode\r\n$7\r\ncluster\r\n"), "{text}");
    // No slots yet: keys are refused, CLUSTER INFO says fail.
    assert_eq!(
        c.call(&["GET", "k"]).raw,
        b"-CLUSTERDOWN Hash slot not served\r\n"
    );
    assert_eq!(node.info_field("cluster_state").as_deref(), Some("fail"));
    // One node serving every slot is a whole cluster.
    assert_eq!(
        c.call(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).raw,
        b"+OK\r\n"
    );
    wait::until("a one-node cluster to be ok", SETTLE_DEADLINE, || {
        node.state_ok().then_some(())
    });
    assert_eq!(c.call(&["SET", "k", "v"]).raw, b"+OK\r\n");
    assert_eq!(
        c.call(&["MOVE", "k", "1"]).raw,
        b"-ERR MOVE is not allowed in cluster mode\r\n"
    );
    let conf = std::fs::read_to_string(node.server.data_dir().join("nodes.conf")).unwrap();
    assert!(conf.contains(&node.id()), "{conf}");
    assert!(conf.contains(" 0-16383"), "{conf}");
    let standalone = Corekey::start(&[]);
    assert_eq!(
        standalone.client().call(&["CLUSTER", "INFO"]).raw,
        b"-ERR This instance has cluster support disabled\r\n"
    );
    let info = standalone.client().call(&["INFO", "cluster"]);
    assert!(String::from_utf8_lossy(&info.raw).contains("cluster_enabled:0"));
}

/// PUBLISH reaches subscribers on every node of the cluster (the reply counts the publishing
/// node's own subscribers, as Valkey's does); SPUBLISH reaches the replicas of the channel's
/// shard and no other node.
#[test]
fn publish_reaches_every_node() {
    let Some(cli_path) = redis_cli() else {
        return;
    };
    let nodes = six_with_replicas(&cli_path);
    let mut subs: Vec<_> = nodes
        .iter()
        .map(|n| {
            let mut c = n.client();
            c.set_read_timeout(Duration::from_secs(10));
            assert_eq!(
                c.call(&["SUBSCRIBE", "news"]).raw,
                b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
            );
            c
        })
        .collect();
    // The bus links are up once the cluster is settled; publish from each node in turn.
    for (i, publisher) in nodes.iter().enumerate() {
        let text = format!("hello from {i}");
        let reply = publisher.client().call(&["PUBLISH", "news", &text]);
        assert_eq!(
            reply.reply.as_int(),
            Some(1),
            "only the local subscriber counts"
        );
        let want = format!(
            "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n${}\r\n{text}\r\n",
            text.len()
        );
        for (j, s) in subs.iter_mut().enumerate() {
            let got = s.read_reply().expect("the message arrives");
            assert_eq!(got.raw, want.as_bytes(), "subscriber on node {j}");
        }
    }

    // SPUBLISH: the owner of the channel's slot and its replica have subscribers.
    let slot = key_slot(b"sc");
    let owner = owner_of(&nodes, slot);
    let lines = nodes[0].nodes();
    let replica_id = lines
        .iter()
        .find(|l| l.primary == owner.id())
        .expect("the owner has a replica")
        .id
        .clone();
    let replica = nodes.iter().find(|n| n.id() == replica_id).unwrap();
    let mut shard_subs: Vec<_> = [owner, replica]
        .iter()
        .map(|n| {
            let mut c = n.client();
            c.set_read_timeout(Duration::from_secs(10));
            assert_eq!(
                c.call(&["SSUBSCRIBE", "sc"]).raw,
                b"*3\r\n$10\r\nssubscribe\r\n$2\r\nsc\r\n:1\r\n"
            );
            c
        })
        .collect();
    let reply = owner.client().call(&["SPUBLISH", "sc", "m1"]);
    assert_eq!(reply.reply.as_int(), Some(1));
    for s in &mut shard_subs {
        assert_eq!(
            s.read_reply().expect("the shard message arrives").raw,
            b"*3\r\n$8\r\nsmessage\r\n$2\r\nsc\r\n$2\r\nm1\r\n"
        );
    }
    // Only the owner's shard heard of it: the other nodes received no shard message.
    for n in nodes
        .iter()
        .filter(|n| n.port() != owner.port() && n.port() != replica.port())
    {
        let info = n.client().call_text(&["CLUSTER", "INFO"]);
        assert!(
            !info.contains("cluster_stats_messages_publishshard_received"),
            "{info}"
        );
        // One PUBLISH from each of the five other nodes.
        assert!(
            info.contains("cluster_stats_messages_publish_received:5"),
            "{info}"
        );
    }
}
