//! What the node tells about its replication: `INFO replication`, `ROLE`, WAIT's count, and
//! the sync counters of `INFO stats`. Gathers each shard's report through the mesh (`Via`, so
//! it works inside EXEC too) and adds them up: the node's offset is the sum of its streams'.

use super::{frame::REPLID_LEN, primary, AckWaiter, Role, SyncStats};
use crate::commands::multi::Via;
use crate::shard::Shard;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// One replica stream as its primary shard sees it.
#[derive(Debug, Clone)]
struct ReplicaReport {
    node: [u8; REPLID_LEN],
    ip: String,
    port: u16,
    online: bool,
    ack: u64,
    ack_ms: i64,
}

/// One shard's replication facts.
#[derive(Debug, Clone, Default)]
struct ShardReport {
    offset: u64,
    backlog: Option<(u64, usize, usize)>,
    replicas: Vec<ReplicaReport>,
    streams: Vec<(bool, bool, i64, &'static str)>,
    stats: SyncStats,
}

fn gather(s: &Shard) -> ShardReport {
    let st = s.repl.state();
    ShardReport {
        offset: s.node.repl.offsets[s.id].load(Ordering::Relaxed),
        backlog: st
            .backlog
            .as_ref()
            .map(|b| (b.first_offset(), b.len(), b.bytes_max)),
        replicas: st
            .replicas
            .iter()
            .map(|r| ReplicaReport {
                node: r.node,
                ip: r.ip.clone(),
                port: r.port,
                online: r.online,
                ack: r.ack,
                ack_ms: r.ack_ms,
            })
            .collect(),
        streams: st
            .streams
            .values()
            .map(|s| (s.up, s.syncing, s.last_io_ms, s.role_state()))
            .collect(),
        stats: st.stats,
    }
}

async fn reports(via: Via<'_>) -> Vec<ShardReport> {
    let mut v = Vec::with_capacity(via.shards());
    for t in 0..via.shards() {
        v.push(via.call(t, gather).await);
    }
    v
}

/// A replica node as its primary sees it: present on every shard's stream.
struct ReplicaNode {
    ip: String,
    port: u16,
    online: bool,
    offset: u64,
    lag_s: i64,
}

fn replica_nodes(reports: &[ShardReport], now_ms: i64) -> Vec<ReplicaNode> {
    let mut by_node: BTreeMap<[u8; REPLID_LEN], (ReplicaNode, usize)> = BTreeMap::new();
    for r in reports {
        for x in &r.replicas {
            let e = by_node.entry(x.node).or_insert_with(|| {
                (
                    ReplicaNode {
                        ip: x.ip.clone(),
                        port: x.port,
                        online: true,
                        offset: 0,
                        lag_s: 0,
                    },
                    0,
                )
            });
            e.0.online &= x.online;
            e.0.offset += x.ack;
            e.0.lag_s = e.0.lag_s.max((now_ms - x.ack_ms).max(0) / 1000);
            e.1 += 1;
        }
    }
    by_node
        .into_values()
        .map(|(mut n, streams)| {
            // A node missing a stream is still synchronising.
            n.online &= streams == reports.len();
            n
        })
        .collect()
}

fn hex(id: &[u8; REPLID_LEN]) -> &str {
    std::str::from_utf8(id).unwrap_or("0000000000000000000000000000000000000000")
}

/// The `# Replication` section's body (Valkey's fields and order), for INFO.
pub async fn section(via: Via<'_>) -> String {
    let reports = reports(via).await;
    let node = &via.node;
    let ident = node.repl.ident();
    let now = super::now_ms();
    let offset: u64 = reports.iter().map(|r| r.offset).sum();
    let mut s = String::new();
    match &ident.role {
        Role::Primary => s.push_str("role:master\r\n"),
        Role::Replica { host, port } => {
            let up = !reports.iter().all(|r| r.streams.is_empty())
                && reports.iter().flat_map(|r| &r.streams).all(|st| st.0);
            let syncing = reports.iter().flat_map(|r| &r.streams).any(|st| st.1);
            let last_io = reports
                .iter()
                .flat_map(|r| &r.streams)
                .map(|st| st.2)
                .min()
                .unwrap_or(0);
            let _ = write!(
                s,
                "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{offset}\r\nslave_repl_offset:{offset}\r\nreplicas_repl_buffer_size:0\r\nreplicas_repl_buffer_peak:0\r\n",
                if up { "up" } else { "down" },
                if last_io > 0 { (now - last_io).max(0) / 1000 } else { -1 },
                u8::from(syncing),
            );
            if !up {
                let last = node.repl.last_contact_ms.load(Ordering::Relaxed) as i64;
                let since = if last > 0 {
                    (now - last).max(0) / 1000
                } else {
                    -1
                };
                let _ = write!(s, "master_link_down_since_seconds:{since}\r\n");
            }
            s.push_str("slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\n");
        }
    }
    let replicas = replica_nodes(&reports, now);
    let _ = write!(s, "connected_slaves:{}\r\n", replicas.len());
    for (i, r) in replicas.iter().enumerate() {
        let _ = write!(
            s,
            "slave{i}:ip={},port={},state={},offset={},lag={},type=replica\r\n",
            r.ip,
            r.port,
            if r.online { "online" } else { "send_bulk" },
            r.offset,
            r.lag_s
        );
    }
    let second: i64 = match &ident.second_offsets {
        Some(o) => o.iter().sum::<u64>() as i64 + 1,
        None => -1,
    };
    let active = reports.iter().any(|r| r.backlog.is_some());
    let first: u64 = reports
        .iter()
        .map(|r| r.backlog.map_or(r.offset, |b| b.0))
        .sum();
    let histlen: usize = reports.iter().map(|r| r.backlog.map_or(0, |b| b.1)).sum();
    let size = via.config().repl.backlog_size;
    let _ = write!(
        s,
        "replicas_waiting_psync:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{offset}\r\nsecond_repl_offset:{second}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{size}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{histlen}\r\n",
        hex(&ident.replid),
        hex(&ident.replid2),
        u8::from(active),
        first + 1,
    );
    // corekey's own: each shard's stream offset.
    let per: Vec<String> = reports.iter().map(|r| r.offset.to_string()).collect();
    let _ = write!(s, "repl_shard_offsets:{}\r\n", per.join(","));
    s
}

/// `sync_full`, `sync_partial_ok`, `sync_partial_err` summed over shards (INFO stats).
pub async fn sync_stats(via: Via<'_>) -> SyncStats {
    let mut total = SyncStats::default();
    for r in reports(via).await {
        total.sync_full += r.stats.sync_full;
        total.sync_partial_ok += r.stats.sync_partial_ok;
        total.sync_partial_err += r.stats.sync_partial_err;
    }
    total
}

/// ROLE's reply.
pub async fn role(via: Via<'_>, out: &mut crate::resp::Out) {
    let reports = reports(via).await;
    let offset: u64 = reports.iter().map(|r| r.offset).sum();
    match via.node.repl.role() {
        Role::Primary => {
            let replicas = replica_nodes(&reports, super::now_ms());
            out.array(3);
            out.bulk(b"master");
            out.int(offset as i64);
            out.array(replicas.len());
            for r in replicas {
                out.array(3);
                out.bulk(r.ip.as_bytes());
                out.bulk(r.port.to_string().as_bytes());
                out.bulk(r.offset.to_string().as_bytes());
            }
        }
        Role::Replica { host, port } => {
            let states: Vec<&str> = reports
                .iter()
                .flat_map(|r| &r.streams)
                .map(|s| s.3)
                .collect();
            // The least advanced stream speaks for the node.
            let state = ["connect", "handshake", "sync", "connected"]
                .into_iter()
                .find(|s| states.contains(s))
                .unwrap_or("connect");
            out.array(5);
            out.bulk(b"slave");
            out.bulk(host.as_bytes());
            out.int(i64::from(port));
            out.bulk(state.as_bytes());
            out.int(offset as i64);
        }
    }
}

/// WAIT: seals every shard, waits (up to `timeout_ms`, 0 = no limit) until `needed` replica
/// nodes acknowledged every shard's offset, and returns how many did.
pub async fn wait_acks(via: Via<'_>, needed: usize, timeout_ms: u64) -> usize {
    let home = via.shard.clone();
    let mut targets = Vec::with_capacity(via.shards());
    let mut tickets = Vec::new();
    for t in 0..via.shards() {
        let (ticket, fut) = home.new_ticket();
        let home_id = home.id;
        let registered = via
            .call(t, move |s: &Shard| {
                super::drain(s);
                super::seal(s);
                let offset = s.node.repl.offsets[s.id].load(Ordering::Relaxed);
                let mut st = s.repl.state();
                let enough = primary::acked_nodes(&st, offset).len() >= needed;
                if !enough && needed > 0 {
                    st.waiters.push(AckWaiter {
                        home: home_id,
                        ticket,
                        offset,
                        needed,
                    });
                }
                (offset, !enough && needed > 0)
            })
            .await;
        targets.push(registered.0);
        if registered.1 {
            tickets.push((t, ticket, fut));
        } else {
            // Nothing to wait for on this shard: the ticket is never completed.
            let mut fut = fut;
            fut.discard();
        }
    }
    let all = async {
        for (_, _, fut) in tickets.iter_mut() {
            (&mut *fut).await;
        }
    };
    if timeout_ms == 0 {
        all.await;
    } else {
        let _ = monoio::time::timeout(std::time::Duration::from_millis(timeout_ms), all).await;
    }
    // Forget waiters that timed out, and count the nodes that acknowledged everything.
    let mut count: Option<Vec<[u8; REPLID_LEN]>> = None;
    for (t, &offset) in targets.iter().enumerate() {
        let mine: Vec<usize> = tickets
            .iter()
            .filter(|(s, _, _)| *s == t)
            .map(|(_, k, _)| *k)
            .collect();
        let home_id = home.id;
        let acked = via
            .call(t, move |s: &Shard| {
                let mut st = s.repl.state();
                st.waiters
                    .retain(|w| !(w.home == home_id && mine.contains(&w.ticket)));
                primary::acked_nodes(&st, offset)
            })
            .await;
        count = Some(match count {
            None => acked,
            Some(prev) => prev.into_iter().filter(|n| acked.contains(n)).collect(),
        });
    }
    for (_, _, mut fut) in tickets {
        fut.discard();
    }
    count.map_or(0, |c| c.len())
}
