//! The text and shape of the informational CLUSTER replies, from a topology snapshot: NODES
//! (and REPLICAS, which uses the same lines), INFO, SLOTS and SHARDS, byte for byte as Valkey 8
//! writes them (`clusterGenNodeDescription`, `genClusterInfoString`,
//! `generateClusterSlotResponse`, `clusterCommandShards`).
//!
//! Valkey lists nodes in its hash table's order; we list them by id, which clients cannot tell
//! apart from any other order.

use super::driver::{MessageStats, MESSAGE_KINDS};
use crate::resp::Out;
use corekey_bus::topology::{NodeFlags, NodeId, NodeView, Topology, NO_OWNER};
use corekey_bus::SLOT_COUNT;
use std::fmt::Write as _;

/// The configEpoch a node shows: a replica shows its primary's (Valkey's `nodeEpoch`).
pub fn node_epoch(topology: &Topology, n: &NodeView) -> u64 {
    if n.flags.contains(NodeFlags::REPLICA) {
        if let Some(p) = n.primary.as_ref().and_then(|p| topology.node(p)) {
            return p.config_epoch;
        }
    }
    n.config_epoch
}

/// One `CLUSTER NODES` line, without its newline.
pub fn node_line(out: &mut String, topology: &Topology, n: &NodeView) {
    let _ = write!(out, "{} {}:{}@{}", n.id, n.ip, n.port, n.bus_port);
    if !n.hostname.is_empty() {
        let _ = write!(out, ",{}", n.hostname);
    }
    // Valkey creates a handshake entry with no role, and sets `ping_sent` only once a ping
    // really left: the bus marks the entry a primary and starts its ping clock at the connect
    // attempt (so an address that never answers still times out).
    let handshake = n.flags.contains(NodeFlags::HANDSHAKE);
    let mut flags = n.flags;
    let mut ping_sent = n.ping_sent_ms;
    if handshake {
        flags.remove(NodeFlags::PRIMARY);
        if !n.link_connected {
            ping_sent = 0;
        }
    }
    let _ = write!(
        out,
        " {} {} {} {} {} {}",
        flags.names(),
        n.primary
            .filter(|_| n.flags.contains(NodeFlags::REPLICA))
            .map_or_else(|| "-".to_string(), |p| p.to_hex()),
        ping_sent,
        n.pong_received_ms,
        node_epoch(topology, n),
        if n.link_connected {
            "connected"
        } else {
            "disconnected"
        }
    );
    for (a, b) in n.slots.ranges() {
        if a == b {
            let _ = write!(out, " {a}");
        } else {
            let _ = write!(out, " {a}-{b}");
        }
    }
    if n.id == topology.myself {
        // In slot order; a slot both migrating and importing shows as migrating.
        let mut marks: Vec<(u16, bool, NodeId)> = topology
            .migrating
            .iter()
            .map(|(s, id)| (s.get(), true, *id))
            .collect();
        for (s, id) in &topology.importing {
            if !topology.migrating.iter().any(|(m, _)| m == s) {
                marks.push((s.get(), false, *id));
            }
        }
        marks.sort_by_key(|m| m.0);
        for (slot, migrating, id) in marks {
            if migrating {
                let _ = write!(out, " [{slot}->-{id}]");
            } else {
                let _ = write!(out, " [{slot}-<-{id}]");
            }
        }
    }
}

/// `CLUSTER NODES`.
pub fn nodes(topology: &Topology) -> String {
    let mut out = String::with_capacity(topology.nodes.len() * 128);
    for n in &topology.nodes {
        node_line(&mut out, topology, n);
        out.push('\n');
    }
    out
}

/// `CLUSTER INFO`.
pub fn info(topology: &Topology, stats: &MessageStats) -> String {
    let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
    for &owner in &topology.slot_owner {
        if owner == NO_OWNER {
            continue;
        }
        let Some(n) = topology.nodes.get(usize::from(owner)) else {
            continue;
        };
        assigned += 1;
        if n.flags.contains(NodeFlags::FAIL) {
            fail += 1;
        } else if n.flags.contains(NodeFlags::PFAIL) {
            pfail += 1;
        } else {
            ok += 1;
        }
    }
    let mut s = String::with_capacity(1024);
    let _ = write!(
        s,
        "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok}\r\ncluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n",
        if topology.cluster_ok { "ok" } else { "fail" },
        topology.nodes.len(),
        topology.size,
        topology.current_epoch,
        node_epoch(topology, topology.me()),
    );
    for (dir, counts) in [("sent", &stats.sent), ("received", &stats.received)] {
        let mut total = 0;
        for (name, &n) in MESSAGE_KINDS.iter().zip(counts.iter()) {
            if n == 0 {
                continue;
            }
            total += n;
            let _ = write!(s, "cluster_stats_messages_{name}_{dir}:{n}\r\n");
        }
        let _ = write!(s, "cluster_stats_messages_{dir}:{total}\r\n");
    }
    s.push_str("total_cluster_links_buffer_limit_exceeded:0\r\n");
    s
}

/// The replicas of `primary`, in id order.
pub fn replicas_of<'a>(
    topology: &'a Topology,
    primary: &'a NodeId,
) -> impl Iterator<Item = &'a NodeView> + 'a {
    topology.nodes.iter().filter(move |n| {
        n.flags.contains(NodeFlags::REPLICA) && n.primary.as_ref() == Some(primary)
    })
}

/// Valkey's `isNodeAvailable`: listed in CLUSTER SLOTS only when not failed and with some
/// replication progress.
fn available(n: &NodeView) -> bool {
    !n.flags.contains(NodeFlags::FAIL) && n.repl_offset != 0
}

fn node_entry(out: &mut Out, n: &NodeView) {
    out.array(4);
    out.bulk(n.ip.as_bytes());
    out.int(i64::from(n.port));
    out.bulk(n.id.to_hex().as_bytes());
    if n.hostname.is_empty() {
        out.map(0);
    } else {
        out.map(1);
        out.bulk(b"hostname");
        out.bulk(n.hostname.as_bytes());
    }
}

/// `CLUSTER SLOTS`: one entry per run of slots with the same owner.
pub fn slots(topology: &Topology, out: &mut Out) {
    let mut runs: Vec<(u16, u16, u16)> = Vec::new();
    for (slot, &owner) in topology.slot_owner.iter().enumerate() {
        if owner == NO_OWNER {
            continue;
        }
        let slot = slot as u16;
        match runs.last_mut() {
            Some((_, end, o)) if *o == owner && *end + 1 == slot => *end = slot,
            _ => runs.push((slot, slot, owner)),
        }
    }
    debug_assert!(runs.iter().all(|r| r.1 < SLOT_COUNT));
    out.array(runs.len());
    for (start, end, owner) in runs {
        let Some(primary) = topology.nodes.get(usize::from(owner)) else {
            out.array(0);
            continue;
        };
        let replicas: Vec<&NodeView> = replicas_of(topology, &primary.id)
            .filter(|r| available(r))
            .collect();
        out.array(3 + replicas.len());
        out.int(i64::from(start));
        out.int(i64::from(end));
        node_entry(out, primary);
        for r in replicas {
            node_entry(out, r);
        }
    }
}

fn shard_node(out: &mut Out, n: &NodeView) {
    let replica = n.flags.contains(NodeFlags::REPLICA);
    let health = if n.flags.contains(NodeFlags::FAIL) {
        "fail"
    } else if replica && n.repl_offset == 0 {
        "loading"
    } else {
        "online"
    };
    // id, ip, endpoint, role, replication-offset, health, and the optional port and hostname.
    let mut fields = 6;
    if n.port != 0 {
        fields += 1;
    }
    if !n.hostname.is_empty() {
        fields += 1;
    }
    out.map(fields);
    out.bulk(b"id");
    out.bulk(n.id.to_hex().as_bytes());
    if n.port != 0 {
        out.bulk(b"port");
        out.int(i64::from(n.port));
    }
    out.bulk(b"ip");
    out.bulk(n.ip.as_bytes());
    out.bulk(b"endpoint");
    out.bulk(n.ip.as_bytes());
    if !n.hostname.is_empty() {
        out.bulk(b"hostname");
        out.bulk(n.hostname.as_bytes());
    }
    out.bulk(b"role");
    out.bulk(if replica { b"replica" } else { b"master" });
    out.bulk(b"replication-offset");
    out.int(n.repl_offset as i64);
    out.bulk(b"health");
    out.bulk(health.as_bytes());
}

/// `CLUSTER SHARDS`: one entry per replica set (nodes sharing a shard id), the primary first.
pub fn shards(topology: &Topology, out: &mut Out) {
    let mut sets: Vec<(corekey_bus::topology::ShardId, Vec<&NodeView>)> = Vec::new();
    for n in &topology.nodes {
        if n.flags.contains(NodeFlags::HANDSHAKE) {
            continue;
        }
        match sets.iter_mut().find(|(id, _)| *id == n.shard_id) {
            Some((_, members)) => members.push(n),
            None => sets.push((n.shard_id, vec![n])),
        }
    }
    out.array(sets.len());
    for (_, mut members) in sets {
        members.sort_by_key(|n| (n.flags.contains(NodeFlags::REPLICA), n.id));
        out.map(2);
        out.bulk(b"slots");
        let ranges = members
            .iter()
            .find(|n| !n.slots.is_empty())
            .map(|n| n.slots.ranges())
            .unwrap_or_default();
        out.array(ranges.len() * 2);
        for (a, b) in ranges {
            out.int(i64::from(a));
            out.int(i64::from(b));
        }
        out.bulk(b"nodes");
        out.array(members.len());
        for n in members {
            shard_node(out, n);
        }
    }
}
