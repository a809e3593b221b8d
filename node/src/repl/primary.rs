//! The primary side of a shard's stream: its listener, the HELLO that picks a partial or a
//! full resync, the fork-less snapshot walk, acknowledgements, WAIT's waiters, keep-alives.

use super::frame::{self, Batch, Kind, Op, NO_EXPIRE};
use super::{ReplicaLink, ShardState};
use crate::keyspace::rdb;
use crate::net::link::{self, LinkEvent};
use crate::shard::Shard;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A snapshot step stops adding slots once its frame holds this many bytes.
pub const SNAPSHOT_STEP_BYTES: usize = 1 << 20;
/// A snapshot step waits while the link has more than this queued (bounds the memory a full
/// sync takes on the primary to a few steps, never a copy of the dataset).
pub const SNAPSHOT_QUEUE_MAX_BYTES: usize = 4 << 20;
/// Keep-alive period (Valkey's `repl-ping-replica-period` is 10 s; we ping more often so a
/// replica's `master_last_io_seconds_ago` stays small on an idle primary).
pub(super) const PING_PERIOD: Duration = Duration::from_secs(1);
/// How often the write log of an idle shard is drained (active expiry's deletes).
const DRAIN_PERIOD: Duration = Duration::from_millis(100);

/// The shard's replication listener port, binding it on first use.
pub(super) fn ensure_listener(shard: &Shard) -> u16 {
    let port = shard.node.repl.ports[shard.id].load(Ordering::Acquire);
    if port != 0 {
        return port;
    }
    let Some(me) = super::this_shard() else {
        return 0;
    };
    let config = shard.config();
    let addr = config
        .bind
        .iter()
        .map(|a| a.trim_start_matches('-').to_string())
        .next()
        .unwrap_or_else(|| "127.0.0.1".into());
    let listener = match link::bind(std::slice::from_ref(&addr), 0) {
        Ok(mut l) if !l.is_empty() => l.remove(0),
        Ok(_) => return 0,
        Err(e) => {
            tracing::error!(error = %e, %addr, "replication listener");
            return 0;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    if port == 0 {
        return 0;
    }
    shard.node.repl.ports[shard.id].store(port, Ordering::Release);
    shard.repl.state().listener = true;
    let weak = Rc::downgrade(&me);
    monoio::spawn(async move {
        let canceller = monoio::io::Canceller::new();
        crate::net::accept_loop(
            listener,
            canceller.handle(),
            move |stream, peer, _l, _fd| {
                if let Some(s) = weak.upgrade() {
                    accept(&s, stream, peer);
                }
            },
        )
        .await;
    });
    monoio::spawn(ticker(Rc::downgrade(&me)));
    port
}

/// Keep-alives to replicas, and draining the write log of a shard no command wakes.
async fn ticker(shard: std::rc::Weak<Shard>) {
    let mut since_ping = Duration::ZERO;
    loop {
        monoio::time::sleep(DRAIN_PERIOD).await;
        let Some(s) = shard.upgrade() else { return };
        if s.node.is_shutting_down() {
            return;
        }
        if !s.is_locked() {
            super::drain(&s);
        }
        since_ping += DRAIN_PERIOD;
        if since_ping >= ping_period(&s) {
            since_ping = Duration::ZERO;
            let mut ping = Vec::with_capacity(frame::HEADER_LEN);
            frame::put(&mut ping, Kind::Ping, &[]);
            for r in &s.repl.state().replicas {
                r.link.send(&ping);
            }
            drop_silent_replicas(&s);
        }
    }
}

/// How often replicas are pinged: every second, or a third of `repl-timeout` when that is
/// shorter, so a replica (which acknowledges every ping) is never dropped for a silence that
/// only our ping period made (`repl-timeout 1` dropped healthy replicas every few seconds).
fn ping_period(shard: &Shard) -> Duration {
    let timeout = Duration::from_secs(shard.config().repl.timeout_s.max(1));
    PING_PERIOD.min(timeout / 3).max(DRAIN_PERIOD)
}

/// A replica connected to this shard's listener.
fn accept(shard: &Rc<Shard>, stream: monoio::net::TcpStream, peer: std::net::SocketAddr) {
    let id = {
        let mut st = shard.repl.state();
        st.next_link_id += 1;
        st.next_link_id
    };
    let weak = Rc::downgrade(shard);
    let me: Rc<RefCell<Option<link::Link>>> = Rc::default();
    let me2 = me.clone();
    let ip = peer.ip().to_string();
    let link = link::start(stream, frame::FRAME_MAX, frame::frame_len, move |ev| {
        let Some(s) = weak.upgrade() else { return };
        match ev {
            LinkEvent::Frame(f) => {
                let Some((kind, body)) = frame::split(f) else {
                    return;
                };
                match kind {
                    Kind::Hello => {
                        let Some(hello) = frame::Hello::decode(body) else {
                            close(&me2);
                            return;
                        };
                        if let Some(l) = me2.borrow().clone() {
                            on_hello(&s, id, l, &ip, hello);
                        }
                    }
                    Kind::Ack => {
                        if let Some(off) = frame::decode_ack(body) {
                            on_ack(&s, id, off);
                        }
                    }
                    _ => close(&me2),
                }
            }
            LinkEvent::Closed => {
                s.repl.state().replicas.retain(|r| r.id != id);
                check_waiters(&s);
            }
        }
    });
    *me.borrow_mut() = Some(link);
}

/// `repl-timeout`, primary side (Valkey's "Disconnecting timedout replica"): an online replica
/// that acknowledged nothing for that long (it answers every ping) is hung or cut off; its
/// link is closed, so it stops counting for WAIT, `min-replicas-ack` and INFO, and it
/// resyncs when it comes back.
fn drop_silent_replicas(shard: &Shard) {
    let timeout_ms = shard.config().repl.timeout_s.saturating_mul(1000) as i64;
    let now = super::now_ms();
    for r in shard.repl.state().replicas.iter() {
        if r.online && now - r.ack_ms > timeout_ms {
            tracing::warn!(
                shard = shard.id,
                replica = %r.ip,
                "replication: replica silent past repl-timeout, link closed"
            );
            r.link.close();
        }
    }
}

fn close(link: &Rc<RefCell<Option<link::Link>>>) {
    if let Some(l) = link.borrow().as_ref() {
        l.close();
    }
}

/// Partial resync when our history holds the replica's offset, else a full sync.
fn on_hello(shard: &Rc<Shard>, id: u64, link: link::Link, ip: &str, hello: frame::Hello) {
    if shard.node.repl.is_replica() && !stream_is_ours(shard) {
        // A replica only serves sub-replicas from streams it mirrors one to one.
        link.close();
        return;
    }
    super::ensure_source(shard);
    super::seal(shard);
    let ident = shard.node.repl.ident();
    let mut st = shard.repl.state();
    let backlog_end = st.backlog.as_ref().map_or(0, |b| b.end_offset());
    let same_history = hello.replid == ident.replid
        || (hello.replid == ident.replid2
            && !st.foreign_offsets
            && ident
                .second_offsets
                .as_ref()
                .and_then(|o| o.get(shard.id))
                .is_some_and(|&limit| hello.offset <= limit));
    let resume: Option<Vec<Vec<u8>>> = same_history
        .then(|| {
            st.backlog
                .as_ref()
                .and_then(|b| b.frames_from(hello.offset))
                .map(|it| it.cloned().collect())
        })
        .flatten();
    let node = hello.node;
    let entry = ReplicaLink {
        id,
        link: link.clone(),
        node,
        ip: ip.to_string(),
        port: hello.listening_port,
        online: resume.is_some(),
        // What the replica holds is not what it acknowledges: while its acknowledgements are
        // held (`crate::repl::hold_acks`) they may differ, so only an ACK counts.
        ack: 0,
        ack_ms: super::now_ms(),
    };
    match resume {
        Some(frames) => {
            st.stats.sync_partial_ok += 1;
            link.send(&frame::sync_reply(
                Kind::Continue,
                &ident.replid,
                hello.offset,
            ));
            for f in frames {
                link.send(&f);
            }
            st.replicas.push(entry);
            tracing::info!(shard = shard.id, %ip, port = hello.listening_port, offset = hello.offset, "partial resync accepted");
        }
        None => {
            if hello.replid != [b'?'; frame::REPLID_LEN] {
                st.stats.sync_partial_err += 1;
            }
            st.stats.sync_full += 1;
            link.send(&frame::sync_reply(
                Kind::FullResync,
                &ident.replid,
                backlog_end,
            ));
            st.replicas.push(entry);
            drop(st);
            tracing::info!(shard = shard.id, %ip, port = hello.listening_port, offset = backlog_end, "full resync");
            let s = shard.clone();
            monoio::spawn(async move { snapshot(s, id, link).await });
        }
    }
}

/// Whether this replica shard's stream mirrors its primary's stream of the same index (then
/// its backlog holds the same frames at the same offsets, and it may serve sub-replicas).
fn stream_is_ours(shard: &Shard) -> bool {
    let st = shard.repl.state();
    st.streams.len() == 1 && st.streams.contains_key(&shard.id)
}

/// The fork-less full sync of one replica: whole slots at a time, in slot order, each step
/// queued after every live frame sealed before it (see the module docs of `crate::repl`).
async fn snapshot(shard: Rc<Shard>, id: u64, link: link::Link) {
    let shards = shard.shards();
    let mut slot = shard.id;
    let total = usize::from(corekey_bus::SLOT_COUNT);
    while slot < total {
        // Back-pressure: wait for the replica to read what was queued.
        let mut waited = 0u32;
        while link.queued_bytes() > SNAPSHOT_QUEUE_MAX_BYTES {
            if !is_connected(&shard, id) {
                return;
            }
            monoio::time::sleep(Duration::from_millis(1)).await;
            waited = waited.saturating_add(1);
        }
        if !is_connected(&shard, id) {
            return;
        }
        // A transaction's half-done state must not be sent: wait for the shard's turn and
        // hold it for this (synchronous) step.
        let turn = shard.turn().await;
        // Live frames up to now go first.
        super::drain(&shard);
        super::seal(&shard);
        let mut batch = Batch::default();
        let mut bytes = 0usize;
        {
            let ks = shard.ks.borrow();
            while slot < total && bytes < SNAPSHOT_STEP_BYTES {
                batch.ops.push(Op::ClearSlot { slot: slot as u16 });
                for (db_index, db) in ks.dbs.iter().enumerate() {
                    for (key, entry, at) in db.slot_entries(slot) {
                        let Some(payload) = rdb::dump(&entry.value) else {
                            panic!("no replication payload for a {}", entry.value.type_name());
                        };
                        bytes += key.len() + payload.len() + 32;
                        batch.ops.push(Op::Put {
                            db: db_index as u32,
                            slot: slot as u16,
                            key: key.to_vec(),
                            payload,
                            expire_at: at.unwrap_or(NO_EXPIRE),
                        });
                    }
                }
                bytes += 8;
                slot += shards;
            }
        }
        link.send(&frame::encode_batch(Kind::Snapshot, &batch));
        drop(turn);
        // Let clients in between steps.
        monoio::time::sleep(Duration::ZERO).await;
    }
    let mut end = Vec::with_capacity(frame::HEADER_LEN);
    frame::put(&mut end, Kind::SnapshotEnd, &[]);
    link.send(&end);
    if let Some(r) = shard.repl.state().replicas.iter_mut().find(|r| r.id == id) {
        r.online = true;
        // `repl-timeout` counts from here: the snapshot may have taken longer than that.
        r.ack_ms = super::now_ms();
    }
    tracing::info!(shard = shard.id, "full resync: snapshot sent");
}

fn is_connected(shard: &Shard, id: u64) -> bool {
    shard.repl.state().replicas.iter().any(|r| r.id == id)
}

fn on_ack(shard: &Shard, id: u64, offset: u64) {
    {
        let mut st = shard.repl.state();
        if let Some(r) = st.replicas.iter_mut().find(|r| r.id == id) {
            r.ack = r.ack.max(offset);
            r.ack_ms = super::now_ms();
        }
    }
    check_waiters(shard);
}

/// Replica nodes (by run id) whose stream on this shard acknowledged `offset`.
pub(super) fn acked_nodes(st: &ShardState, offset: u64) -> Vec<[u8; frame::REPLID_LEN]> {
    let mut v: Vec<_> = st
        .replicas
        .iter()
        .filter(|r| r.online && r.ack >= offset)
        .map(|r| r.node)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Completes the waiters whose offset enough replicas acknowledged.
pub(super) fn check_waiters(shard: &Shard) {
    let done: Vec<(usize, usize)> = {
        let mut st = shard.repl.state();
        if st.waiters.is_empty() {
            return;
        }
        let mut done = Vec::new();
        let mut i = 0;
        while i < st.waiters.len() {
            let w = &st.waiters[i];
            if acked_nodes(&st, w.offset).len() >= w.needed {
                let w = st.waiters.swap_remove(i);
                done.push((w.home, w.ticket));
            } else {
                i += 1;
            }
        }
        done
    };
    for (home, ticket) in done {
        shard.complete(home, ticket, Box::new(()));
    }
}
