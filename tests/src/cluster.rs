//! Cluster-mode helpers for tests: start `corekey` nodes with cluster mode on and their own
//! leased bus ports, build a cluster with `redis-cli --cluster create`, wait for
//! `cluster_state:ok`, read `CLUSTER NODES`, and follow redirects like a cluster client.
//! Like the rest of the harness it talks to the nodes over sockets and through redis-cli only.

use crate::client::{Conn, Reply};
use crate::server::{lease_port, run_to_exit, Corekey, PortLease};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a cluster may take to agree after a change (create, add-node, restart): Valkey's
/// rules add up to a few seconds (writable delay, rejoin delay); this leaves room for a slow,
/// shared CI machine.
pub const SETTLE_DEADLINE: Duration = Duration::from_secs(60);
/// Backstop for one redis-cli --cluster run.
pub const CLI_DEADLINE: Duration = Duration::from_secs(120);

/// One corekey node in cluster mode, with its bus port leased for the test's lifetime.
pub struct Node {
    pub server: Corekey,
    bus: PortLease,
}

impl Node {
    /// Starts a node with `cores` shards, cluster mode on, a leased bus port and `extra`
    /// arguments.
    pub fn start(cores: usize, extra: &[&str]) -> Node {
        let bus = lease_port();
        let bus_port = bus.port().to_string();
        let cores = cores.to_string();
        let mut args = vec![
            "--cores",
            &cores,
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &bus_port,
        ];
        args.extend_from_slice(extra);
        Node {
            server: Corekey::start(&args),
            bus,
        }
    }

    /// Starts `n` nodes.
    pub fn start_many(n: usize, cores: usize, extra: &[&str]) -> Vec<Node> {
        (0..n).map(|_| Node::start(cores, extra)).collect()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub fn bus_port(&self) -> u16 {
        self.bus.port()
    }

    /// `127.0.0.1:port`, as redis-cli takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    pub fn client(&self) -> Conn {
        self.server.client()
    }

    /// The text of a bulk (or verbatim) reply to `args`.
    pub fn text(&self, args: &[&str]) -> String {
        let f = self.client().call(args);
        match f.reply.as_bytes() {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => panic!("{args:?}: not a text reply: {:?}", f.reply),
        }
    }

    /// CLUSTER MEET `seed`, then CLUSTER REPLICATE `primary_id` once the gossip has made the
    /// primary known here (within `deadline`).
    pub fn join_as_replica(&self, seed: &Node, primary_id: &str, deadline: Duration) {
        let mut c = self.client();
        let (port, bus) = (seed.port().to_string(), seed.bus_port().to_string());
        let meet = ["CLUSTER", "MEET", "127.0.0.1", &port, &bus];
        assert_eq!(c.call_text(&meet), "+OK\r\n");
        crate::wait::until("a replica to learn its primary", deadline, || {
            (c.call(&["CLUSTER", "REPLICATE", primary_id]).raw == b"+OK\r\n").then_some(())
        });
    }

    /// CLUSTER MYID.
    pub fn id(&self) -> String {
        self.text(&["CLUSTER", "MYID"])
    }

    /// One field of CLUSTER INFO.
    pub fn info_field(&self, field: &str) -> Option<String> {
        let info = self.text(&["CLUSTER", "INFO"]);
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .map(|v| v.trim().to_string())
    }

    /// Whether CLUSTER INFO says `cluster_state:ok`.
    pub fn state_ok(&self) -> bool {
        self.info_field("cluster_state").as_deref() == Some("ok")
    }

    /// This node's CLUSTER NODES lines, parsed.
    pub fn nodes(&self) -> Vec<NodeLine> {
        self.text(&["CLUSTER", "NODES"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(NodeLine::parse)
            .collect()
    }

    /// One field of `INFO <section>`.
    pub fn info(&self, section: &str, field: &str) -> Option<String> {
        let text = self.text(&["INFO", section]);
        let prefix = format!("{field}:");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
    }

    /// Whether INFO replication says this node replicates `primary` with its link up.
    pub fn replicates(&self, primary: &Node) -> bool {
        self.info("replication", "role").as_deref() == Some("slave")
            && self.info("replication", "master_port") == Some(primary.port().to_string())
            && self.info("replication", "master_link_status").as_deref() == Some("up")
    }

    /// `master_repl_offset` of INFO replication.
    pub fn repl_offset(&self) -> u64 {
        self.info("replication", "master_repl_offset")
            .and_then(|v| v.parse().ok())
            .expect("INFO replication has master_repl_offset")
    }
}

/// The index in `nodes` of the node with id `id`.
pub fn index_of(nodes: &[Node], id: &str) -> usize {
    nodes
        .iter()
        .position(|n| n.id() == id)
        .unwrap_or_else(|| panic!("no node has id {id}"))
}

/// The line of the primary serving `slot`, in `lines`.
pub fn owner_of(lines: &[NodeLine], slot: u16) -> &NodeLine {
    lines
        .iter()
        .find(|l| l.has_flag("master") && l.owns(slot))
        .unwrap_or_else(|| panic!("nobody serves slot {slot}: {lines:?}"))
}

/// (primary, replica) indexes of the replica set serving slot 0, once the replica's link is up.
pub fn shard_of_slot_zero(nodes: &[Node]) -> (usize, usize) {
    let lines = nodes[0].nodes();
    let primary = owner_of(&lines, 0).id.clone();
    let replica = lines
        .iter()
        .find(|l| l.primary == primary)
        .map(|l| l.id.clone())
        .expect("the primary of slot 0 has a replica");
    let (p, r) = (index_of(nodes, &primary), index_of(nodes, &replica));
    crate::wait::until("the replica's link to come up", SETTLE_DEADLINE, || {
        nodes[r].replicates(&nodes[p]).then_some(())
    });
    (p, r)
}

/// One CLUSTER NODES line.
#[derive(Debug, Clone)]
pub struct NodeLine {
    pub id: String,
    pub addr: String,
    pub flags: Vec<String>,
    pub primary: String,
    pub config_epoch: u64,
    pub link: String,
    pub slots: Vec<String>,
}

impl NodeLine {
    pub fn parse(line: &str) -> NodeLine {
        let f: Vec<&str> = line.split(' ').collect();
        assert!(f.len() >= 8, "short CLUSTER NODES line: {line:?}");
        NodeLine {
            id: f[0].to_string(),
            addr: f[1].to_string(),
            flags: f[2].split(',').map(str::to_string).collect(),
            primary: f[3].to_string(),
            config_epoch: f[6].parse().expect("config epoch"),
            link: f[7].to_string(),
            slots: f[8..].iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Whether the line lists `slot` among its slots (single slots and ranges; open
    /// migrations in brackets are skipped).
    pub fn owns(&self, slot: u16) -> bool {
        self.slots.iter().filter(|s| !s.starts_with('[')).any(|s| {
            let (first, last) = s.split_once('-').unwrap_or((s, s));
            match (first.parse::<u16>(), last.parse::<u16>()) {
                (Ok(a), Ok(b)) => (a..=b).contains(&slot),
                _ => false,
            }
        })
    }
}

/// redis-cli, or `None` (skip) outside CI when it is missing.
pub fn redis_cli() -> Option<PathBuf> {
    crate::require_tool("redis-cli", "redis-tools")
}

/// Runs `redis-cli <args>`; returns its combined output, panicking with it if the exit
/// status is not success.
pub fn cli(cli: &Path, args: &[&str]) -> String {
    let done = run_to_exit("redis-cli", cli, args, CLI_DEADLINE);
    let output = format!("{}\n{}", done.stdout, done.stderr);
    assert!(
        done.status.success(),
        "redis-cli {args:?} exited with {:?}:\n{output}",
        done.status
    );
    output
}

/// `redis-cli --cluster check`: asserts it succeeds and reports no error or warning.
pub fn check_clean(cli_path: &Path, node: &Node) -> String {
    let out = cli(cli_path, &["--cluster", "check", &node.address()]);
    for bad in ["[ERR]", "[WARNING]"] {
        assert!(!out.contains(bad), "--cluster check reported {bad}:\n{out}");
    }
    assert!(
        out.contains("[OK] All 16384 slots covered."),
        "--cluster check output:\n{out}"
    );
    out
}

/// `redis-cli --cluster create` of `nodes` with `replicas` replicas per primary.
pub fn create(cli_path: &Path, nodes: &[Node], replicas: usize) -> String {
    let addrs: Vec<String> = nodes.iter().map(Node::address).collect();
    let replicas = replicas.to_string();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    args.extend(["--cluster-replicas", &replicas, "--cluster-yes"]);
    let out = cli(cli_path, &args);
    assert!(
        out.contains("[OK] All 16384 slots covered."),
        "--cluster create output:\n{out}"
    );
    out
}

/// Waits until every node reports `cluster_state:ok` and all agree on the slot owners.
pub fn wait_settled(nodes: &[&Node]) {
    crate::wait::until(
        "every node to report cluster_state:ok",
        SETTLE_DEADLINE,
        || nodes.iter().all(|n| n.state_ok()).then_some(()),
    );
    crate::wait::until(
        "every node to agree on slot owners",
        SETTLE_DEADLINE,
        || {
            let views: Vec<Vec<(String, Vec<String>)>> = nodes
                .iter()
                .map(|n| {
                    let mut v: Vec<(String, Vec<String>)> = n
                        .nodes()
                        .into_iter()
                        .filter(|l| !l.slots.is_empty())
                        .map(|l| (l.id, l.slots))
                        .collect();
                    v.sort();
                    v
                })
                .collect();
            views.windows(2).all(|w| w[0] == w[1]).then_some(())
        },
    );
}

/// Sends `args` to `start` and follows MOVED/ASK redirects (at most a few), as a cluster
/// client does; returns the final reply.
pub fn call_following(start: &Node, args: &[&str]) -> Reply {
    let mut conn = start.client();
    let mut asking = false;
    for _ in 0..8 {
        if asking {
            conn.call(&["ASKING"]);
        }
        let f = conn.call(args);
        let Reply::Error(e) = &f.reply else {
            return f.reply;
        };
        let text = String::from_utf8_lossy(e).into_owned();
        let mut words = text.split(' ');
        let kind = words.next().unwrap_or_default();
        if kind != "MOVED" && kind != "ASK" {
            return f.reply;
        }
        let addr = words.nth(1).expect("redirect address");
        conn = Conn::connect(addr.parse().expect("redirect ip:port")).expect("redirect target");
        asking = kind == "ASK";
    }
    panic!("{args:?}: too many redirects");
}
