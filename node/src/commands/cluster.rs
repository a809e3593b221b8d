//! The cluster family: CLUSTER and its subcommands, ASKING, READONLY and READWRITE, with
//! Valkey 8's replies and error texts (`cluster.c`, `cluster_legacy.c`).
//!
//! Where each subcommand runs:
//!
//! - From this shard's topology snapshot (no hop): HELP, KEYSLOT, MYID, MYSHARDID, SLOTS,
//!   SHARDS, REPLICAS/SLAVES.
//! - On shard 0, against the bus state itself: INFO, NODES, LINKS, COUNT-FAILURE-REPORTS
//!   (they show live ping, pong and link data that snapshots do not follow) and every
//!   subcommand that changes the configuration. A changing subcommand is checked and applied
//!   in one call on shard 0, so its checks see the state it changes; the facts only other
//!   shards know (how many keys the node or a slot holds) are gathered first.
//! - On the shard owning a slot: COUNTKEYSINSLOT, GETKEYSINSLOT.

use super::multi::Via;
use super::spec::{acl, flag, CommandSpec, Exec, Group};
use super::{ConnCtx, NodeCmd, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::cluster::driver::Driver;
use crate::cluster::{render, View};
use crate::resp::Out;
use crate::session::ClientState;
use corekey_bus::cluster::{AdminError, AdminOk, AdminOp, FailoverMode, SetSlotOp};
use corekey_bus::topology::{NodeFlags, NodeId, NodeView, Topology};
use corekey_bus::{key_slot, Slot, SLOT_COUNT};
use std::rc::Rc;

/// The CLUSTER subcommands that need more than the connection's shard (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterCmd {
    Info,
    Nodes,
    Links,
    CountFailureReports,
    CountKeysInSlot,
    GetKeysInSlot,
    /// Every subcommand that changes the configuration (parsed again by name).
    Admin,
    /// MIGRATE (in `migrate.rs`; it works in standalone mode too).
    Migrate,
}

const STALE: u32 = flag::STALE;
const ADMIN: u32 = flag::NO_ASYNC_LOADING | flag::ADMIN | flag::STALE;
const READ: u32 = flag::LOADING | flag::STALE;

const fn node(cmd: ClusterCmd) -> Exec {
    Exec::Node(NodeCmd::Cluster(cmd))
}

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        subcommands: CLUSTER_SUBCOMMANDS,
        ..CommandSpec::new("cluster", -2, 0, 0, Group::Cluster, "3.0.0",
            "A container for Cluster commands.", "Depends on subcommand.", "")
    },
    CommandSpec {
        exec: Exec::Conn(asking),
        ..CommandSpec::new("asking", 1, flag::FAST, acl::CONNECTION, Group::Cluster, "3.0.0",
            "Signals that a cluster client is following an -ASK redirect.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Conn(readonly),
        ..CommandSpec::new("readonly", 1, flag::FAST | flag::LOADING | flag::STALE, acl::CONNECTION, Group::Cluster, "3.0.0",
            "Enables read-only queries for a connection to a Valkey replica node.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Conn(readwrite),
        ..CommandSpec::new("readwrite", 1, flag::FAST | flag::LOADING | flag::STALE, acl::CONNECTION, Group::Cluster, "3.0.0",
            "Enables read-write queries for a connection to a Valkey replica node.", "O(1)", "")
    },
];

#[rustfmt::skip]
static CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        ..CommandSpec::new("addslots", -3, ADMIN, 0, Group::Cluster, "3.0.0",
            "Assigns new hash slots to a node.", "O(N) where N is the total number of hash slot arguments", "slot:integer...")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        ..CommandSpec::new("addslotsrange", -4, ADMIN, 0, Group::Cluster, "7.0.0",
            "Assigns new hash slot ranges to a node.", "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
            "range=(start-slot:integer end-slot:integer)...")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("bumpepoch", 2, ADMIN, 0, Group::Cluster, "3.0.0",
            "Advances the cluster config epoch.", "O(1)", "")
    },
    CommandSpec {
        exec: node(ClusterCmd::CountFailureReports),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("count-failure-reports", 3, flag::ADMIN | STALE, 0, Group::Cluster, "3.0.0",
            "Returns the number of active failure reports active for a node.", "O(N) where N is the number of failure reports", "node-id:string")
    },
    CommandSpec {
        exec: node(ClusterCmd::CountKeysInSlot),
        ..CommandSpec::new("countkeysinslot", 3, STALE, 0, Group::Cluster, "3.0.0",
            "Returns the number of keys in a hash slot.", "O(1)", "slot:integer")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        ..CommandSpec::new("delslots", -3, ADMIN, 0, Group::Cluster, "3.0.0",
            "Sets hash slots as unbound for a node.", "O(N) where N is the total number of hash slot arguments", "slot:integer...")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        ..CommandSpec::new("delslotsrange", -4, ADMIN, 0, Group::Cluster, "7.0.0",
            "Sets hash slot ranges as unbound for a node.", "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
            "range=(start-slot:integer end-slot:integer)...")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        ..CommandSpec::new("failover", -2, ADMIN, 0, Group::Cluster, "3.0.0",
            "Forces a replica to perform a manual failover of its primary.", "O(1)", "[options=FORCE|TAKEOVER]")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        ..CommandSpec::new("flushslots", 2, ADMIN, 0, Group::Cluster, "3.0.0",
            "Deletes all slots information from a node.", "O(1)", "")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        ..CommandSpec::new("forget", 3, ADMIN, 0, Group::Cluster, "3.0.0",
            "Removes a node from the nodes table.", "O(1)", "node-id:string")
    },
    CommandSpec {
        exec: node(ClusterCmd::GetKeysInSlot),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("getkeysinslot", 4, STALE, 0, Group::Cluster, "3.0.0",
            "Returns the key names in a hash slot.", "O(N) where N is the number of requested keys", "slot:integer count:integer")
    },
    CommandSpec {
        exec: Exec::Conn(help),
        ..CommandSpec::new("help", 2, READ, 0, Group::Cluster, "5.0.0",
            "Returns helpful text about the different subcommands.", "O(1)", "")
    },
    CommandSpec {
        exec: node(ClusterCmd::Info),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("info", 2, READ, 0, Group::Cluster, "3.0.0",
            "Returns information about the state of a node.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Conn(keyslot),
        ..CommandSpec::new("keyslot", 3, STALE, 0, Group::Cluster, "3.0.0",
            "Returns the hash slot for a key.", "O(N) where N is the number of bytes in the key", "key:string")
    },
    CommandSpec {
        exec: node(ClusterCmd::Links),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("links", 2, STALE, 0, Group::Cluster, "7.0.0",
            "Returns a list of all TCP links to and from peer nodes.", "O(N) where N is the total number of Cluster nodes", "")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        history: &[("4.0.0", "Added the optional `cluster_bus_port` argument.")],
        ..CommandSpec::new("meet", -4, ADMIN, 0, Group::Cluster, "3.0.0",
            "Forces a node to handshake with another node.", "O(1)", "ip:string port:integer [cluster-bus-port:integer{since=4.0.0}]")
    },
    CommandSpec {
        exec: Exec::Conn(myid),
        ..CommandSpec::new("myid", 2, READ, 0, Group::Cluster, "3.0.0",
            "Returns the ID of a node.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Conn(myshardid),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("myshardid", 2, READ, 0, Group::Cluster, "7.2.0",
            "Returns the shard ID of a node.", "O(1)", "")
    },
    CommandSpec {
        exec: node(ClusterCmd::Nodes),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("nodes", 2, READ, 0, Group::Cluster, "3.0.0",
            "Returns the cluster configuration for a node.", "O(N) where N is the total number of Cluster nodes", "")
    },
    CommandSpec {
        exec: Exec::Conn(replicas),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("replicas", 3, flag::ADMIN | STALE, 0, Group::Cluster, "5.0.0",
            "Lists the replica nodes of a primary node.", "O(N) where N is the number of replicas.", "node-id:string")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        ..CommandSpec::new("replicate", 3, ADMIN, 0, Group::Cluster, "3.0.0",
            "Configure a node as replica of a primary node.", "O(1)", "node-id:string")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        ..CommandSpec::new("reset", -2, flag::ADMIN | STALE | flag::NOSCRIPT, 0, Group::Cluster, "3.0.0",
            "Resets a node.", "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.",
            "[reset-type=HARD|SOFT]")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        ..CommandSpec::new("saveconfig", 2, ADMIN, 0, Group::Cluster, "3.0.0",
            "Forces a node to save the cluster configuration to disk.", "O(1)", "")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        ..CommandSpec::new("set-config-epoch", 3, ADMIN, 0, Group::Cluster, "3.0.0",
            "Sets the configuration epoch for a new node.", "O(1)", "config-epoch:integer")
    },
    CommandSpec {
        exec: node(ClusterCmd::Admin),
        history: &[("8.0.0", "Added the `TIMEOUT` option.")],
        ..CommandSpec::new("setslot", -4, ADMIN | flag::MAY_REPLICATE, 0, Group::Cluster, "3.0.0",
            "Binds a hash slot to a node.", "O(1)",
            "slot:integer subcommand=(IMPORTING importing:string{display=node-id}|MIGRATING migrating:string{display=node-id}|NODE node:string{display=node-id}|STABLE) [TIMEOUT timeout:integer{since=8.0.0}]")
    },
    CommandSpec {
        exec: Exec::Conn(shards),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("shards", 2, READ, 0, Group::Cluster, "7.0.0",
            "Returns the mapping of cluster slots to shards.", "O(N) where N is the total number of cluster nodes", "")
    },
    CommandSpec {
        exec: Exec::Conn(replicas),
        tips: &["nondeterministic_output"],
        doc_flags: &["deprecated"],
        deprecated: Some(("5.0.0", "`CLUSTER REPLICAS`")),
        ..CommandSpec::new("slaves", 3, flag::ADMIN | STALE, 0, Group::Cluster, "3.0.0",
            "Lists the replica nodes of a primary node.", "O(N) where N is the number of replicas.", "node-id:string")
    },
    CommandSpec {
        exec: Exec::Conn(slots),
        tips: &["nondeterministic_output"],
        history: &[("4.0.0", "Added node IDs."), ("7.0.0", "Added additional networking metadata field.")],
        ..CommandSpec::new("slots", 2, READ, 0, Group::Cluster, "3.0.0",
            "Returns the mapping of cluster slots to nodes.", "O(N) where N is the total number of Cluster nodes", "")
    },
];

/// Valkey's answer to every CLUSTER subcommand (and ASKING) on a standalone node.
const ERR_DISABLED: &str = "This instance has cluster support disabled";

/// This shard's view, or the standalone error written.
fn view_or_err(ctx: &mut ConnCtx<'_>) -> Option<Rc<View>> {
    let v = ctx.shard.cluster.view();
    if v.is_none() {
        ctx.out.err(ERR_DISABLED);
    }
    v
}

/// Valkey's `clusterLookupNode`: a known node by its 40-character name.
fn lookup<'a>(topology: &'a Topology, arg: &[u8]) -> Option<&'a NodeView> {
    NodeId::parse_hex(arg).and_then(|id| topology.node(&id))
}

fn unknown_node(arg: &[u8]) -> Vec<u8> {
    super::quoted_err("Unknown node ", arg, "")
}

/// `getSlotOrReply`.
fn slot_arg(arg: &[u8]) -> Result<Slot, &'static str> {
    crate::util::parse_i64(arg)
        .and_then(|n| u16::try_from(n).ok())
        .and_then(Slot::new)
        .ok_or("Invalid or out of range slot")
}

fn subcommand_syntax_error(argv: &[&[u8]]) -> Vec<u8> {
    super::quoted_err(
        "unknown subcommand or wrong number of arguments for '",
        crate::dispatch::clip(argv[1]),
        "'. Try CLUSTER HELP.",
    )
}

fn asking(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    if !ctx.shard.cluster.enabled() {
        ctx.out.err(ERR_DISABLED);
        return;
    }
    ctx.client.cluster.asking = true;
    ctx.out.ok();
}

fn readonly(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    ctx.client.cluster.readonly = true;
    ctx.out.ok();
}

fn readwrite(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    ctx.client.cluster.readonly = false;
    ctx.out.ok();
}

fn help(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    if view_or_err(ctx).is_none() {
        return;
    }
    super::connection::help_reply(
        ctx.out,
        argv[0],
        &[
            "COUNTKEYSINSLOT <slot>",
            "    Return the number of keys in <slot>.",
            "GETKEYSINSLOT <slot> <count>",
            "    Return key names stored by current node in a slot.",
            "INFO",
            "    Return information about the cluster.",
            "KEYSLOT <key>",
            "    Return the hash slot for <key>.",
            "MYID",
            "    Return the node id.",
            "MYSHARDID",
            "    Return the node's shard id.",
            "NODES",
            "    Return cluster configuration seen by node. Output format:",
            "    <id> <ip:port@bus-port[,hostname]> <flags> <primary> <pings> <pongs> <epoch> <link> <slot> ...",
            "REPLICAS <node-id>",
            "    Return <node-id> replicas.",
            "SLOTS",
            "    Return information about slots range mappings. Each range is made of:",
            "    start, end, primary and replicas IP addresses, ports and ids",
            "SLOT-STATS",
            "    Return an array of slot usage statistics for slots assigned to the current node.",
            "SHARDS",
            "    Return information about slot range mappings and the nodes associated with them.",
            "ADDSLOTS <slot> [<slot> ...]",
            "    Assign slots to current node.",
            "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "    Assign slots which are between <start-slot> and <end-slot> to current node.",
            "BUMPEPOCH",
            "    Advance the cluster config epoch.",
            "COUNT-FAILURE-REPORTS <node-id>",
            "    Return number of failure reports for <node-id>.",
            "DELSLOTS <slot> [<slot> ...]",
            "    Delete slots information from current node.",
            "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
            "FAILOVER [FORCE|TAKEOVER]",
            "    Promote current replica node to being a master.",
            "FORGET <node-id>",
            "    Remove a node from the cluster.",
            "FLUSHSLOTS",
            "    Delete current node own slots information.",
            "MEET <ip> <port> [<bus-port>]",
            "    Connect nodes into a working cluster.",
            "REPLICATE <node-id>",
            "    Configure current node as replica to <node-id>.",
            "RESET [HARD|SOFT]",
            "    Reset current node (default: soft).",
            "SET-CONFIG-EPOCH <epoch>",
            "    Set config epoch of current node.",
            "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
            "    Set slot state.",
            "SAVECONFIG",
            "    Force saving cluster configuration on disk.",
            "LINKS",
            "    Return information about all network links between this node and its peers.",
            "    Output format is an array where each array element is a map containing attributes of a link",
        ],
    );
}

fn keyslot(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    if view_or_err(ctx).is_none() {
        return;
    }
    ctx.out.int(i64::from(key_slot(argv[2]).get()));
}

fn myid(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    if let Some(v) = view_or_err(ctx) {
        ctx.out.bulk(v.topology.myself.to_hex().as_bytes());
    }
}

fn myshardid(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    if let Some(v) = view_or_err(ctx) {
        ctx.out.bulk(v.topology.me().shard_id.to_hex().as_bytes());
    }
}

fn slots(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    if let Some(v) = view_or_err(ctx) {
        render::slots(&v.topology, ctx.out);
    }
}

fn shards(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    if let Some(v) = view_or_err(ctx) {
        render::shards(&v.topology, ctx.out);
    }
}

fn replicas(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    let Some(v) = view_or_err(ctx) else {
        return;
    };
    let t = &v.topology;
    let Some(n) = lookup(t, argv[2]) else {
        ctx.out.err(unknown_node(argv[2]));
        return;
    };
    if n.flags.contains(NodeFlags::REPLICA) {
        ctx.out.err("The specified node is not a master");
        return;
    }
    let lines: Vec<String> = render::replicas_of(t, &n.id)
        .map(|r| {
            let mut s = String::new();
            render::node_line(&mut s, t, r);
            s
        })
        .collect();
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.bulk(l.as_bytes());
    }
}

/// Runs `f` with the driver on shard 0 and returns its result.
async fn on_driver<R: Send + 'static>(
    shard: Via<'_>,
    f: impl FnOnce(&Rc<Driver>) -> R + Send + 'static,
) -> R {
    shard
        .call(0, move |s| {
            let d = s
                .cluster
                .driver()
                .expect("shard 0 runs the driver in cluster mode");
            f(&d)
        })
        .await
}

/// Keys in database 0 of the whole node.
async fn total_keys(shard: Via<'_>) -> usize {
    let mut total = 0;
    for t in 0..shard.shards() {
        total += shard.call(t, |s| s.ks.borrow().dbs[0].len()).await;
    }
    total
}

/// Keys in `slot` (on the shard that owns it).
async fn keys_in_slot(shard: Via<'_>, slot: Slot) -> usize {
    let n = usize::from(slot.get());
    shard
        .call(shard.shard_of_slot(slot.get()), move |s| {
            s.ks.borrow().dbs[0].keys_in_slot(n)
        })
        .await
}

/// The CLUSTER subcommands that run off the connection's shard.
pub async fn run(
    cmd: ClusterCmd,
    shard: Via<'_>,
    client: &mut ClientState,
    argv: &[&[u8]],
    out: &mut Out,
) {
    if cmd == ClusterCmd::Migrate {
        return super::migrate::migrate(shard, client, argv, out).await;
    }
    if !shard.cluster.enabled() {
        out.err(ERR_DISABLED);
        return;
    }
    match cmd {
        ClusterCmd::Info => {
            let text = on_driver(shard, |d| render::info(&d.topology(), &d.stats())).await;
            out.verbatim(text.as_bytes());
        }
        ClusterCmd::Nodes => {
            let text = on_driver(shard, |d| render::nodes(&d.topology())).await;
            out.verbatim(text.as_bytes());
        }
        ClusterCmd::Links => {
            let links = on_driver(shard, |d| d.links()).await;
            out.array(links.len());
            for l in links {
                out.map(6);
                out.bulk(b"direction");
                out.bulk(if l.outbound { b"to" } else { b"from" });
                out.bulk(b"node");
                out.bulk(l.node.as_bytes());
                out.bulk(b"create-time");
                out.int(l.created_ms as i64);
                out.bulk(b"events");
                out.bulk(if l.queued_bytes > 0 { b"rw" } else { b"r" });
                out.bulk(b"send-buffer-allocated");
                out.int(l.queued_bytes as i64);
                out.bulk(b"send-buffer-used");
                out.int(l.queued_bytes as i64);
            }
        }
        ClusterCmd::CountFailureReports => {
            let arg = argv[2].to_vec();
            let id = NodeId::parse_hex(&arg);
            match on_driver(shard, move |d| id.and_then(|id| d.failure_reports(&id))).await {
                Some(n) => out.int(n as i64),
                None => out.err(unknown_node(&arg)),
            }
        }
        ClusterCmd::CountKeysInSlot => {
            let Some(n) = crate::util::parse_i64(argv[2]) else {
                out.err(ERR_NOT_INTEGER);
                return;
            };
            let Some(slot) = u16::try_from(n).ok().and_then(Slot::new) else {
                out.err("Invalid slot");
                return;
            };
            out.int(keys_in_slot(shard, slot).await as i64);
        }
        ClusterCmd::GetKeysInSlot => {
            let (Some(n), Some(max)) = (
                crate::util::parse_i64(argv[2]),
                crate::util::parse_i64(argv[3]),
            ) else {
                out.err(ERR_NOT_INTEGER);
                return;
            };
            let slot = u16::try_from(n).ok().and_then(Slot::new);
            let (Some(slot), true) = (slot, max >= 0) else {
                out.err("Invalid slot or number of keys");
                return;
            };
            let max = usize::try_from(max).unwrap_or(usize::MAX);
            let s = usize::from(slot.get());
            let keys = shard
                .call(shard.shard_of_slot(slot.get()), move |sh| {
                    sh.ks.borrow().dbs[0].keys_of_slot(s, max)
                })
                .await;
            out.array(keys.len());
            for k in keys {
                out.bulk(&k);
            }
        }
        ClusterCmd::Admin => admin(shard, argv, out).await,
        ClusterCmd::Migrate => unreachable!("handled above"),
    }
}

/// What only other shards know, gathered before an admin subcommand runs on shard 0.
#[derive(Debug, Clone, Copy, Default)]
struct Facts {
    /// Keys in the node (FLUSHSLOTS, REPLICATE, RESET).
    total_keys: usize,
    /// Keys in the SETSLOT slot.
    slot_keys: usize,
}

/// What an admin subcommand answers.
enum AdminReply {
    Ok,
    Simple(String),
    Err(Vec<u8>),
}

async fn admin(shard: Via<'_>, argv: &[&[u8]], out: &mut Out) {
    let sub = String::from_utf8_lossy(super::cstr(argv[1])).to_ascii_lowercase();
    let mut facts = Facts::default();
    match sub.as_str() {
        "flushslots" | "replicate" | "reset" => facts.total_keys = total_keys(shard).await,
        "setslot" => {
            if let Ok(slot) = slot_arg(argv[2]) {
                facts.slot_keys = keys_in_slot(shard, slot).await;
            }
        }
        _ => {}
    }
    let owned: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    let reply = shard
        .call(0, move |s| {
            let d = s
                .cluster
                .driver()
                .expect("shard 0 runs the driver in cluster mode");
            // Shard 0 installs every snapshot as the change happens: its view is the state.
            let v = s.cluster.view().expect("cluster mode has a view");
            let argv: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            admin_on_driver(&d, &v.topology, &sub, &argv, facts)
        })
        .await;
    match reply {
        (AdminReply::Ok, flush) => {
            if flush {
                // A replica that forgets its primary forgets its data too (Valkey's
                // `clusterReset` empties the dataset of a replica).
                crate::commands::server::flushall(shard, &argv[..1], &mut Out::new(false)).await;
            }
            out.ok()
        }
        (AdminReply::Simple(s), _) => out.simple(&s),
        (AdminReply::Err(e), _) => out.err(e),
    }
}

fn bus_err(e: AdminError) -> AdminReply {
    AdminReply::Err(e.to_string().into_bytes())
}

fn done(r: Result<AdminOk, AdminError>) -> AdminReply {
    match r {
        Ok(_) => AdminReply::Ok,
        Err(e) => bus_err(e),
    }
}

/// Checks and applies one admin subcommand on shard 0. The second value asks the caller to
/// empty the dataset afterwards (RESET of a replica).
fn admin_on_driver(
    d: &Rc<Driver>,
    t: &Topology,
    sub: &str,
    argv: &[&[u8]],
    facts: Facts,
) -> (AdminReply, bool) {
    let syntax = || AdminReply::Err(subcommand_syntax_error(argv));
    let argc = argv.len();
    let me = t.me();
    let i_am_replica = me.flags.contains(NodeFlags::REPLICA);
    let reply = match sub {
        "meet" if argc == 4 || argc == 5 => {
            let Some(port) = crate::util::parse_i64(argv[3]) else {
                return (
                    AdminReply::Err(super::quoted_err(
                        "Invalid base port specified: ",
                        argv[3],
                        "",
                    )),
                    false,
                );
            };
            let bus_port = if argc == 5 {
                match crate::util::parse_i64(argv[4]) {
                    Some(p) => p,
                    None => {
                        return (
                            AdminReply::Err(super::quoted_err(
                                "Invalid bus port specified: ",
                                argv[4],
                                "",
                            )),
                            false,
                        )
                    }
                }
            } else {
                port + i64::from(crate::cluster::BUS_PORT_OFFSET)
            };
            let ip = std::str::from_utf8(argv[2])
                .ok()
                .and_then(|s| s.parse::<std::net::IpAddr>().ok());
            let valid = |p: i64| (1..=65535).contains(&p);
            match ip {
                Some(ip) if valid(port) && valid(bus_port) => done(d.admin(AdminOp::Meet {
                    ip: ip.to_string(),
                    port: port as u16,
                    bus_port: bus_port as u16,
                })),
                _ => AdminReply::Err(
                    [
                        b"Invalid node address specified: ".as_slice(),
                        super::cstr(argv[2]),
                        b":",
                        super::cstr(argv[3]),
                    ]
                    .concat(),
                ),
            }
        }
        "flushslots" if argc == 2 => {
            if facts.total_keys != 0 {
                AdminReply::Err(b"DB must be empty to perform CLUSTER FLUSHSLOTS.".to_vec())
            } else {
                done(d.admin(AdminOp::FlushSlots))
            }
        }
        "addslots" | "delslots" if argc >= 3 => {
            let del = sub == "delslots";
            let mut slots = Vec::with_capacity(argc - 2);
            for a in &argv[2..] {
                match slot_arg(a) {
                    Ok(s) => slots.push(s),
                    Err(e) => return (AdminReply::Err(e.as_bytes().to_vec()), false),
                }
            }
            let mut seen = vec![false; usize::from(SLOT_COUNT)];
            for &s in &slots {
                if let Err(e) = check_slot(t, &mut seen, s, del) {
                    return (AdminReply::Err(e.into_bytes()), false);
                }
            }
            let ranges = slots.iter().map(|&s| (s, s)).collect();
            done(d.admin(if del {
                AdminOp::DelSlots(ranges)
            } else {
                AdminOp::AddSlots(ranges)
            }))
        }
        "addslotsrange" | "delslotsrange" if argc >= 4 => {
            if argc % 2 == 1 {
                return (
                    AdminReply::Err(super::arity_error(&format!("cluster|{sub}")).into_bytes()),
                    false,
                );
            }
            let del = sub == "delslotsrange";
            let mut seen = vec![false; usize::from(SLOT_COUNT)];
            let mut ranges = Vec::new();
            for pair in argv[2..].chunks_exact(2) {
                let (start, end) = match (slot_arg(pair[0]), slot_arg(pair[1])) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(e), _) | (_, Err(e)) => {
                        return (AdminReply::Err(e.as_bytes().to_vec()), false)
                    }
                };
                if start > end {
                    return (
                        AdminReply::Err(
                            format!(
                                "start slot number {} is greater than end slot number {}",
                                start.get(),
                                end.get()
                            )
                            .into_bytes(),
                        ),
                        false,
                    );
                }
                for n in start.get()..=end.get() {
                    let s = Slot::new(n).expect("within a valid range");
                    if let Err(e) = check_slot(t, &mut seen, s, del) {
                        return (AdminReply::Err(e.into_bytes()), false);
                    }
                }
                ranges.push((start, end));
            }
            done(d.admin(if del {
                AdminOp::DelSlots(ranges)
            } else {
                AdminOp::AddSlots(ranges)
            }))
        }
        "setslot" if argc >= 4 => return (setslot(d, t, argv, facts), false),
        "bumpepoch" if argc == 2 => match d.admin(AdminOp::BumpEpoch) {
            Ok(AdminOk::Bump { bumped, epoch }) => AdminReply::Simple(format!(
                "{} {epoch}",
                if bumped { "BUMPED" } else { "STILL" }
            )),
            other => done(other),
        },
        "saveconfig" if argc == 2 => match d.save_config() {
            Ok(()) => AdminReply::Ok,
            Err(e) => AdminReply::Err(
                format!("error saving the cluster node config: {}", strerror(&e)).into_bytes(),
            ),
        },
        "forget" if argc == 3 => match lookup(t, argv[2]) {
            None => {
                if NodeId::parse_hex(argv[2]).is_some_and(|id| d.is_banned(&id)) {
                    AdminReply::Ok
                } else {
                    AdminReply::Err(unknown_node(argv[2]))
                }
            }
            Some(n) if n.id == t.myself => {
                AdminReply::Err(b"I tried hard but I can't forget myself...".to_vec())
            }
            Some(n) if i_am_replica && me.primary == Some(n.id) => {
                AdminReply::Err(b"Can't forget my master!".to_vec())
            }
            Some(n) => done(d.admin(AdminOp::Forget(n.id))),
        },
        "replicate" if argc == 3 => match lookup(t, argv[2]) {
            None => AdminReply::Err(unknown_node(argv[2])),
            Some(n) if n.id == t.myself => AdminReply::Err(b"Can't replicate myself".to_vec()),
            Some(n) if n.flags.contains(NodeFlags::REPLICA) => {
                AdminReply::Err(b"I can only replicate a master, not a replica.".to_vec())
            }
            Some(_) if !i_am_replica && (!me.slots.is_empty() || facts.total_keys != 0) => {
                AdminReply::Err(
                    b"To set a master the node must be empty and without assigned slots.".to_vec(),
                )
            }
            Some(n) if i_am_replica && me.primary == Some(n.id) => AdminReply::Ok,
            Some(n) => done(d.admin(AdminOp::Replicate(n.id))),
        },
        "failover" if argc == 2 || argc == 3 => {
            let mode = if argc == 2 {
                FailoverMode::Default
            } else if super::opt_is(argv[2], "force") {
                FailoverMode::Force
            } else if super::opt_is(argv[2], "takeover") {
                FailoverMode::Takeover
            } else {
                return (AdminReply::Err(ERR_SYNTAX.as_bytes().to_vec()), false);
            };
            done(d.admin(AdminOp::Failover(mode)))
        }
        "set-config-epoch" if argc == 3 => match crate::util::parse_i64(argv[2]) {
            None => AdminReply::Err(ERR_NOT_INTEGER.as_bytes().to_vec()),
            Some(e) if e < 0 => {
                AdminReply::Err(format!("Invalid config epoch specified: {e}").into_bytes())
            }
            Some(e) => done(d.admin(AdminOp::SetConfigEpoch(e as u64))),
        },
        "reset" if argc == 2 || argc == 3 => {
            let hard = if argc == 2 || super::opt_is(argv[2], "soft") {
                false
            } else if super::opt_is(argv[2], "hard") {
                true
            } else {
                return (AdminReply::Err(ERR_SYNTAX.as_bytes().to_vec()), false);
            };
            if !i_am_replica && facts.total_keys != 0 {
                AdminReply::Err(
                    b"CLUSTER RESET can't be called with master nodes containing keys".to_vec(),
                )
            } else {
                let r = done(d.admin(AdminOp::Reset { hard }));
                return (r, i_am_replica);
            }
        }
        _ => syntax(),
    };
    (reply, false)
}

/// One slot of ADDSLOTS/DELSLOTS(RANGE), in Valkey's order of checks.
fn check_slot(t: &Topology, seen: &mut [bool], s: Slot, del: bool) -> Result<(), String> {
    let owned = t.owner(s).is_some();
    if del && !owned {
        return Err(format!("Slot {} is already unassigned", s.get()));
    }
    if !del && owned {
        return Err(format!("Slot {} is already busy", s.get()));
    }
    let i = usize::from(s.get());
    if seen[i] {
        return Err(format!("Slot {} specified multiple times", s.get()));
    }
    seen[i] = true;
    Ok(())
}

fn setslot(d: &Rc<Driver>, t: &Topology, argv: &[&[u8]], facts: Facts) -> AdminReply {
    let err = |m: &str| AdminReply::Err(m.as_bytes().to_vec());
    let me = t.me();
    if me.flags.contains(NodeFlags::REPLICA) {
        return err("Please use SETSLOT only with masters.");
    }
    let slot = match slot_arg(argv[2]) {
        Ok(s) => s,
        Err(e) => return err(e),
    };
    let argc = argv.len();
    let owner = t.owner(slot).map(|n| n.id);
    let action = argv[3];
    let unknown_peer =
        |arg: &[u8]| AdminReply::Err(super::quoted_err("I don't know about node ", arg, ""));
    let (op, optarg) = if super::opt_is(action, "migrating") && argc >= 5 {
        if owner != Some(t.myself) {
            return err(&format!("I'm not the owner of hash slot {}", slot.get()));
        }
        let Some(n) = lookup(t, argv[4]) else {
            return unknown_peer(argv[4]);
        };
        if n.flags.contains(NodeFlags::REPLICA) {
            return err("Target node is not a master");
        }
        (SetSlotOp::Migrating(n.id), 5)
    } else if super::opt_is(action, "importing") && argc >= 5 {
        if owner == Some(t.myself) {
            return err(&format!(
                "I'm already the owner of hash slot {}",
                slot.get()
            ));
        }
        let Some(n) = lookup(t, argv[4]) else {
            return unknown_peer(argv[4]);
        };
        if n.flags.contains(NodeFlags::REPLICA) {
            return err("Target node is not a master");
        }
        (SetSlotOp::Importing(n.id), 5)
    } else if super::opt_is(action, "stable") {
        (SetSlotOp::Stable, 4)
    } else if super::opt_is(action, "node") && argc >= 5 {
        let Some(n) = lookup(t, argv[4]) else {
            return AdminReply::Err(unknown_node(argv[4]));
        };
        if n.flags.contains(NodeFlags::REPLICA) {
            return err("Target node is not a master");
        }
        if owner == Some(t.myself) && n.id != t.myself && facts.slot_keys != 0 {
            return err(&format!(
                "Can't assign hashslot {} to a different node while I still hold keys for this hash slot.",
                slot.get()
            ));
        }
        (SetSlotOp::Node(n.id), 5)
    } else {
        return err("Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP");
    };
    // TIMEOUT bounds the wait for replicas to take the change first; without data
    // replication (the replication issue) there is nothing to wait for, but the value is
    // checked as Valkey checks it.
    let mut i = optarg;
    while i < argc {
        if super::opt_is(argv[i], "timeout") {
            let Some(v) = argv.get(i + 1) else {
                return err("Missing timeout value");
            };
            match crate::util::parse_i64(v) {
                None => return err("timeout is not an integer or out of range"),
                Some(n) if n < 0 => return err("timeout is negative"),
                Some(_) => {}
            }
        }
        i += 1;
    }
    done(d.admin(AdminOp::SetSlot(slot, op)))
}

fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    // "No space left on device (os error 28)" → "No space left on device", as strerror prints.
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
