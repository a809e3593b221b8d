//! The replica side: learning the primary's layout, one connection per stream, and applying
//! frames in place.

use super::frame::{self, ArchivedOp, Kind, Op, REPLID_LEN};
use super::{primary, InStream};
use crate::commands::{self, Exec, Lookup};
use crate::keyspace::log::ExpiryMode;
use crate::keyspace::{rdb, Entry};
use crate::net::client::LineClient;
use crate::net::link::{self, Link, LinkEvent};
use crate::resp::Out;
use crate::shard::Shard;
use std::cell::Cell;
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Poll, Waker};
use std::time::Duration;

/// How long a connection attempt or the layout exchange may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Wait between two attempts to reach the primary (short: a failover reconnects siblings).
const RETRY_PERIOD: Duration = Duration::from_millis(100);

/// Starts this shard's replication from `host:port` for role generation `generation`.
pub(super) fn start(shard: &Shard, generation: u64, host: String, port: u16) {
    let Some(me) = super::this_shard() else {
        return;
    };
    debug_assert_eq!(me.id, shard.id);
    monoio::spawn(supervise(me, generation, host, port));
}

fn current(shard: &Shard, generation: u64) -> bool {
    !shard.node.is_shutting_down() && shard.node.repl.generation() == generation
}

/// Reaches the primary, runs this shard's streams until they end, and tries again, for as
/// long as the role generation lasts. While the primary is unreachable, catches up from a
/// sibling replica when the cluster names one (see "Catching up from a sibling" in the
/// module docs of `crate::repl`).
async fn supervise(shard: Rc<Shard>, generation: u64, host: String, port: u16) {
    while current(&shard, generation) {
        match fetch_layout(&host, port).await {
            Ok(ports) => {
                shard.node.repl.set_primary_streams(ports.len());
                let mine: Vec<usize> = (0..ports.len())
                    .filter(|k| k % shard.shards() == shard.id)
                    .collect();
                if mine.is_empty() {
                    // More shards here than there: no stream for this one (the others
                    // route its slots' ops to it).
                    shard.repl.state().streams.clear();
                    return;
                }
                {
                    let mut st = shard.repl.state();
                    // Streams of another layout are meaningless now.
                    st.streams.retain(|k, _| mine.contains(k));
                    for &k in &mine {
                        st.streams.entry(k).or_default();
                    }
                }
                run_streams(&shard, generation, &host, &ports, &mine, None).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, %host, port, "replication: primary unreachable");
                catch_up(&shard, generation).await;
            }
        }
        monoio::time::sleep(RETRY_PERIOD).await;
    }
}

/// Runs `streams` (this shard's, by index among the `ports` of `host`) until every one ended.
/// From the primary (`catch_up` is `None`) one stream ending ends the shard's others too, so
/// that the supervisor reconnects them all (each resumes from its offset); a catch-up stream
/// ends alone (the others may still be fetching what the sibling holds).
async fn run_streams(
    shard: &Rc<Shard>,
    generation: u64,
    host: &str,
    ports: &[u16],
    streams: &[usize],
    catch_up: Option<u64>,
) {
    let primary_shards = ports.len();
    let left = Rc::new(Cell::new(streams.len()));
    let waker: Rc<Cell<Option<Waker>>> = Rc::default();
    for &k in streams {
        let (s, h, l, w) = (shard.clone(), host.to_string(), left.clone(), waker.clone());
        let p = ports[k];
        monoio::spawn(async move {
            let layout = Layout {
                stream: k,
                primary_shards,
            };
            if let Err(e) = run_stream(&s, generation, &h, p, layout, catch_up).await {
                tracing::debug!(error = %e, stream = k, "replication stream");
            }
            l.set(l.get() - 1);
            if catch_up.is_none() {
                let others: Vec<_> = s
                    .repl
                    .state()
                    .streams
                    .values()
                    .filter_map(|st| st.link.clone())
                    .collect();
                for o in others {
                    o.close();
                }
            }
            if let Some(w) = w.take() {
                w.wake();
            }
        });
    }
    std::future::poll_fn(|cx| {
        if left.get() == 0 {
            Poll::Ready(())
        } else {
            waker.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    })
    .await;
}

/// The primary is unreachable: if the cluster names a sibling replica to catch up from, runs
/// the streams it lists that this shard owns against the sibling's copies of them, until they
/// end. Only this shard's supervisor calls it, between two attempts at the primary, so a
/// stream never has the primary's link and the sibling's at once.
async fn catch_up(shard: &Rc<Shard>, generation: u64) {
    let (source_generation, Some(from)) = shard.node.repl.catch_up_source() else {
        return;
    };
    let primary_shards = shard.node.repl.primary_streams();
    let mine: Vec<usize> = {
        let st = shard.repl.state();
        from.streams
            .iter()
            .copied()
            .filter(|&k| k < primary_shards && k % shard.shards() == shard.id)
            // A stream we never received from this primary has nothing to resume.
            .filter(|k| {
                st.streams.get(k).is_some_and(|s| {
                    s.replid.is_some() && s.catch_up_refused != Some(source_generation)
                })
            })
            .collect()
    };
    if mine.is_empty() {
        return;
    }
    let ports = match fetch_layout(&from.ip, from.port).await {
        Ok(ports) => ports,
        Err(e) => {
            tracing::debug!(error = %e, ip = %from.ip, port = from.port, "catch-up: sibling unreachable");
            return;
        }
    };
    if ports.len() != primary_shards {
        // Its streams are not our primary's one to one: it serves none of them (see
        // `primary::on_hello`).
        tracing::debug!(
            ip = %from.ip,
            port = from.port,
            "catch-up: the sibling's core count is not our primary's"
        );
        return;
    }
    if !current(shard, generation) || shard.node.repl.catch_up_generation() != source_generation {
        return;
    }
    run_streams(
        shard,
        generation,
        &from.ip,
        &ports,
        &mine,
        Some(source_generation),
    )
    .await;
}

/// The catch-up source changed to generation `catch_up`, listing `streams` (empty: none):
/// closes this shard's catch-up links of an older source, so that its supervisor starts over,
/// and the links from the primary on the listed streams, which a primary that vanished
/// without closing them could hold until `repl-timeout` (a live primary is reconnected at
/// once, with a partial resync).
pub(super) fn on_catch_up_changed(shard: &Shard, catch_up: u64, streams: &[usize]) {
    let links: Vec<Link> = shard
        .repl
        .state()
        .streams
        .iter()
        .filter(|(k, s)| match s.catch_up {
            Some(g) => g != catch_up,
            None => streams.contains(k),
        })
        .filter_map(|(_, s)| s.link.clone())
        .collect();
    for l in links {
        l.close();
    }
}

/// `REPLCONF corekey-layout` on the primary's client port: its streams' ports.
async fn fetch_layout(host: &str, port: u16) -> std::io::Result<Vec<u16>> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut c = LineClient::connect(host, port, CONNECT_TIMEOUT).await?;
    c.write_all(
        b"*2\r\n$8\r\nREPLCONF\r\n$14\r\ncorekey-layout\r\n".to_vec(),
        CONNECT_TIMEOUT,
    )
    .await?;
    let line = c.read_line(CONNECT_TIMEOUT).await?;
    let text = String::from_utf8_lossy(&line);
    let mut words = text.split(' ');
    if words.next() != Some("+corekey-layout") {
        return Err(bad(&format!("unexpected layout reply: {text}")));
    }
    let ports: Vec<u16> = words
        .map(|w| w.parse::<u16>().map_err(|_| bad("bad port in layout")))
        .collect::<Result<_, _>>()?;
    if ports.is_empty() || ports.contains(&0) {
        return Err(bad("primary has no replication listener"));
    }
    Ok(ports)
}

/// One stream: connect, HELLO, apply frames until the link closes. `catch_up`: from a
/// sibling replica, for that catch-up generation (see [`catch_up`]).
async fn run_stream(
    shard: &Rc<Shard>,
    generation: u64,
    host: &str,
    port: u16,
    layout: Layout,
    catch_up: Option<u64>,
) -> std::io::Result<()> {
    let k = layout.stream;
    let mirror = layout.primary_shards == shard.shards();
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let stream = link::connect(addr, CONNECT_TIMEOUT).await?;
    if !current(shard, generation) {
        return Ok(());
    }
    let hello = {
        let st = shard.repl.state();
        let s = st.streams.get(&k);
        let mut node = [b'0'; REPLID_LEN];
        node.copy_from_slice(&shard.node.run_id.as_bytes()[..REPLID_LEN]);
        frame::Hello {
            replid: s.and_then(|s| s.replid).unwrap_or([b'?'; REPLID_LEN]),
            offset: s.map_or(0, |s| s.offset),
            listening_port: shard.config().port,
            node,
        }
    };
    let closed = Rc::new(Cell::new(false));
    let waker: Rc<Cell<Option<Waker>>> = Rc::default();
    let weak = Rc::downgrade(shard);
    let (c2, w2) = (closed.clone(), waker.clone());
    let mut applier = Applier::new(layout, catch_up);
    let link = link::start(stream, frame::FRAME_MAX, frame::frame_len, move |ev| {
        let Some(s) = weak.upgrade() else { return };
        match ev {
            LinkEvent::Frame(f) => {
                if !applier.on_frame(&s, k, mirror, f) {
                    // A frame we cannot use: drop the link (the supervisor reconnects).
                    if let Some(l) = s.repl.state().streams.get(&k).and_then(|s| s.link.clone()) {
                        l.close();
                    }
                }
            }
            LinkEvent::Closed => {
                if let Some(st) = s.repl.state().streams.get_mut(&k) {
                    st.up = false;
                    st.link = None;
                    if st.catch_up.take().is_some() {
                        tracing::info!(
                            stream = k,
                            offset = st.offset,
                            "catch-up from a sibling replica: link closed"
                        );
                    }
                }
                c2.set(true);
                if let Some(w) = w2.take() {
                    w.wake();
                }
            }
        }
    });
    link.send(&hello.encode());
    {
        let mut st = shard.repl.state();
        let s = st.streams.entry(k).or_default();
        s.link = Some(link.clone());
        s.catch_up = catch_up;
        s.last_io_ms = super::now_ms();
    }
    // Checked after the link is recorded, with no await in between: a change that came
    // before is seen here, one that comes after finds the link to close.
    let stale_catch_up = catch_up.is_some_and(|g| shard.node.repl.catch_up_generation() != g);
    if !current(shard, generation) || stale_catch_up {
        link.close();
    }
    // `repl-timeout`: a primary that sends nothing (not even its pings) for that long is
    // gone, or cut off; drop the link so the supervisor reconnects and INFO says "down".
    {
        let (s, l, c) = (shard.clone(), link.clone(), closed.clone());
        monoio::spawn(async move {
            // Bounded by the link's life: it ends when the link closes.
            while !c.get() {
                monoio::time::sleep(primary::PING_PERIOD).await;
                let timeout_ms = s.config().repl.timeout_s.saturating_mul(1000) as i64;
                let last = s.repl.state().streams.get(&k).map_or(0, |st| st.last_io_ms);
                if !c.get() && super::now_ms() - last > timeout_ms {
                    let from = if catch_up.is_some() {
                        "sibling (catch-up)"
                    } else {
                        "primary"
                    };
                    tracing::warn!(
                        stream = k,
                        from,
                        "replication: source silent past repl-timeout, link closed"
                    );
                    l.close();
                    return;
                }
            }
        });
    }
    std::future::poll_fn(|cx| {
        if closed.get() {
            Poll::Ready(())
        } else {
            waker.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    })
    .await;
    Ok(())
}

/// Which of the primary's streams this is, out of how many.
#[derive(Debug, Clone, Copy)]
struct Layout {
    stream: usize,
    primary_shards: usize,
}

/// Applies a stream's frames; keeps a reusable reply sink.
struct Applier {
    out: Out,
    layout: Layout,
    /// From a sibling replica, for this catch-up generation: a partial resync or nothing.
    catch_up: Option<u64>,
}

impl Applier {
    fn new(layout: Layout, catch_up: Option<u64>) -> Applier {
        Applier {
            out: Out::new(false),
            layout,
            catch_up,
        }
    }

    /// Handles one frame; false when it is unusable (the link is then closed).
    fn on_frame(&mut self, shard: &Rc<Shard>, k: usize, mirror: bool, f: &[u8]) -> bool {
        let Some((kind, body)) = frame::split(f) else {
            return false;
        };
        let now = super::now_ms();
        if self.catch_up.is_none() {
            // Elections' data-age rule: contact with the primary, which a sibling is not.
            shard
                .node
                .repl
                .last_contact_ms
                .store(now.max(0) as u64, Ordering::Relaxed);
        }
        if let Some(s) = shard.repl.state().streams.get_mut(&k) {
            s.last_io_ms = now;
        }
        match kind {
            Kind::FullResync | Kind::Snapshot | Kind::SnapshotEnd if self.catch_up.is_some() => {
                // A full resync would throw away what we hold, acknowledged writes included:
                // the stream stays as it was, and this source is not asked for it again.
                tracing::warn!(
                    stream = k,
                    "catch-up from a sibling replica: it offers no partial resync, stream left as it is"
                );
                if let Some(s) = shard.repl.state().streams.get_mut(&k) {
                    s.catch_up_refused = self.catch_up;
                }
                false
            }
            Kind::Continue | Kind::FullResync => {
                let Some((replid, offset)) = frame::decode_sync_reply(body) else {
                    return false;
                };
                shard.node.repl.with_ident(|id| {
                    if id.replid != replid {
                        id.replid = replid;
                        id.replid2 = [b'0'; REPLID_LEN];
                        id.second_offsets = None;
                    }
                });
                let full = kind == Kind::FullResync;
                let mut st = shard.repl.state();
                let backlog_bytes = super::backlog_bytes(shard);
                if !mirror {
                    st.foreign_offsets = true;
                } else if full {
                    st.foreign_offsets = false;
                }
                if let Some(s) = st.streams.get_mut(&k) {
                    s.replid = Some(replid);
                    // From a sibling the link to the primary stays down (INFO, ROLE).
                    s.up = !full && self.catch_up.is_none();
                    s.syncing = full;
                    if full {
                        s.offset = offset;
                    }
                }
                if full && mirror {
                    // Our backlog restarts where the primary's stream resumes.
                    st.backlog = Some(super::Backlog::new(offset, backlog_bytes));
                    shard.node.repl.offsets[shard.id].store(offset, Ordering::Relaxed);
                } else if st.backlog.is_none() && mirror {
                    st.backlog = Some(super::Backlog::new(offset, backlog_bytes));
                }
                drop(st);
                if !mirror {
                    sum_stream_offsets(shard);
                }
                if full {
                    tracing::info!(stream = k, offset, "full resync from the primary");
                } else if self.catch_up.is_some() {
                    tracing::info!(
                        stream = k,
                        offset,
                        "catch-up from a sibling replica: partial resync from this offset"
                    );
                    schedule_ack(shard, k);
                } else {
                    tracing::info!(stream = k, offset, "partial resync from the primary");
                    // The primary counts acknowledgements only, not the HELLO's offset.
                    schedule_ack(shard, k);
                }
                true
            }
            Kind::Snapshot => self.apply(shard, body),
            Kind::SnapshotEnd => {
                if let Some(s) = shard.repl.state().streams.get_mut(&k) {
                    s.syncing = false;
                    s.up = true;
                }
                tracing::info!(stream = k, "full resync done");
                schedule_ack(shard, k);
                true
            }
            Kind::Live => {
                if !self.apply(shard, body) {
                    return false;
                }
                let len = f.len() as u64;
                if let Some(s) = shard.repl.state().streams.get_mut(&k) {
                    s.offset += len;
                }
                if mirror {
                    super::publish_live(shard, f.to_vec());
                } else {
                    sum_stream_offsets(shard);
                }
                schedule_ack(shard, k);
                true
            }
            // Answered with our offset, as Valkey's replicas send REPLCONF ACK every second:
            // it tells the primary we are alive (`repl-timeout` on its side) even when no
            // write flows.
            Kind::Ping => {
                schedule_ack(shard, k);
                true
            }
            Kind::Hello | Kind::Ack => false,
        }
    }

    /// Validates a batch once and applies its ops in place.
    fn apply(&mut self, shard: &Rc<Shard>, body: &[u8]) -> bool {
        let Some(archived) = frame::ArchivedFrame::new(body) else {
            tracing::warn!("replication: invalid frame from the primary");
            return false;
        };
        let log = shard.ks.borrow().log().cloned();
        if let Some(l) = &log {
            l.expiry.set(ExpiryMode::Off);
        }
        let mut ok = true;
        for op in archived.batch().ops.iter() {
            ok &= self.apply_op(shard, op);
        }
        if let Some(l) = &log {
            if shard.node.repl.is_replica() {
                l.expiry.set(ExpiryMode::Hide);
            } else {
                l.expiry.set(ExpiryMode::Normal);
            }
        }
        ok
    }

    fn apply_op(&mut self, shard: &Rc<Shard>, op: &ArchivedOp) -> bool {
        let shards = shard.shards();
        let slot_of = |op: &ArchivedOp| match op {
            ArchivedOp::Cmd { slot, .. }
            | ArchivedOp::Put { slot, .. }
            | ArchivedOp::Del { slot, .. }
            | ArchivedOp::ClearSlot { slot } => Some(usize::from(slot.to_native())),
            ArchivedOp::Flush { .. } | ArchivedOp::SwapDb { .. } => None,
        };
        let layout = self.layout;
        if layout.primary_shards != shards {
            // Another core count: a stream's flush covers only the slots of its primary
            // shard, which several shards here hold; a SWAPDB comes once per primary shard
            // and is done once, for the whole node, from stream 0.
            match op {
                ArchivedOp::Flush { db } => {
                    let db = db.to_native();
                    for t in 0..shards {
                        let job = move |s: &Shard| {
                            let mut ks = s.ks.borrow_mut();
                            let slots = (layout.stream..usize::from(corekey_bus::SLOT_COUNT))
                                .step_by(layout.primary_shards)
                                .filter(|slot| slot % shards == t);
                            for slot in slots {
                                for (i, d) in ks.dbs.iter_mut().enumerate() {
                                    if db == frame::ALL_DBS || db as usize == i {
                                        d.clear_slot(slot);
                                    }
                                }
                            }
                        };
                        run_on(shard, t, job);
                    }
                    return true;
                }
                ArchivedOp::SwapDb { a, b } => {
                    if layout.stream == 0 {
                        let (a, b) = (a.to_native(), b.to_native());
                        for t in 0..shards {
                            let op = Op::SwapDb { a, b };
                            run_on(shard, t, move |s: &Shard| apply_owned(s, &op));
                        }
                    }
                    return true;
                }
                _ => {}
            }
        }
        if let Some(slot) = slot_of(op) {
            let target = slot % shards;
            if target != shard.id {
                // Another core count here: the op belongs to another shard (an owned copy
                // travels; the order per shard is the ring's order).
                let owned: Op = match rkyv::deserialize::<Op, rkyv::rancor::Error>(op) {
                    Ok(o) => o,
                    Err(_) => return false,
                };
                drop(shard.start_call(target, move |s: &Shard| apply_owned(s, &owned)));
                return true;
            }
        }
        apply_local(shard, op, &mut self.out);
        true
    }
}

/// Runs `job` on shard `t`: at once when it is this shard, else through the mesh (in the
/// ring's order, after every op sent there before it).
fn run_on(shard: &Rc<Shard>, t: usize, job: impl FnOnce(&Shard) + Send + 'static) {
    if t == shard.id {
        job(shard);
    } else {
        drop(shard.start_call(t, job));
    }
}

/// An op routed here from another shard's stream.
fn apply_owned(shard: &Shard, op: &Op) {
    let Ok(bytes) = rkyv::to_bytes::<rkyv::rancor::Error>(op) else {
        return;
    };
    let Ok(archived) = rkyv::access::<ArchivedOp, rkyv::rancor::Error>(&bytes) else {
        return;
    };
    let log = shard.ks.borrow().log().cloned();
    // Restores what was there: this may run inside the apply of a frame on this shard.
    let before = log.as_ref().map(|l| l.expiry.replace(ExpiryMode::Off));
    apply_local(shard, archived, &mut Out::new(false));
    if let (Some(l), Some(mode)) = (&log, before) {
        l.expiry.set(mode);
    }
}

/// Applies one op to this shard's keyspace.
fn apply_local(shard: &Shard, op: &ArchivedOp, out: &mut Out) {
    let now = super::now_ms();
    match op {
        ArchivedOp::Cmd {
            db, now_ms, args, ..
        } => {
            let mut argv = Vec::with_capacity(8);
            if frame::split_args(args.as_slice(), &mut argv).is_none() {
                return;
            }
            let db = db.to_native() as usize;
            if db >= shard.ks.borrow().dbs.len() {
                return;
            }
            let Lookup::Found(r) = commands::registry().lookup(&argv) else {
                tracing::warn!("replication: unknown command in the stream");
                return;
            };
            let Exec::Key(f) = r.spec.exec else {
                return;
            };
            out.buf.clear();
            crate::dispatch::exec_key(shard, r, f, db, &argv, out, now_ms.to_native());
            let _ = out.take_errors();
            out.buf.clear();
        }
        ArchivedOp::Put {
            db,
            key,
            payload,
            expire_at,
            ..
        } => {
            let mut ks = shard.ks.borrow_mut();
            let limits = ks.limits;
            let Some(d) = ks.dbs.get_mut(db.to_native() as usize) else {
                return;
            };
            let Some(value) = rdb::restore(payload.as_slice(), limits) else {
                tracing::warn!("replication: bad value payload in the stream");
                return;
            };
            let at = expire_at.to_native();
            d.remove(key.as_slice());
            d.insert_entry(
                key.as_slice(),
                Entry::new(value, now),
                (at != frame::NO_EXPIRE).then_some(at),
            );
        }
        ArchivedOp::Del { db, key, .. } => {
            let mut ks = shard.ks.borrow_mut();
            if let Some(d) = ks.dbs.get_mut(db.to_native() as usize) {
                d.remove(key.as_slice());
            }
        }
        ArchivedOp::Flush { db } => {
            let mut ks = shard.ks.borrow_mut();
            let db = db.to_native();
            for (i, d) in ks.dbs.iter_mut().enumerate() {
                if db == frame::ALL_DBS || db as usize == i {
                    d.clear();
                }
            }
        }
        ArchivedOp::SwapDb { a, b } => {
            let mut ks = shard.ks.borrow_mut();
            let (a, b) = (a.to_native() as usize, b.to_native() as usize);
            if a < ks.dbs.len() && b < ks.dbs.len() {
                ks.dbs.swap(a, b);
                ks.dbs[a].id = a;
                ks.dbs[b].id = b;
            }
        }
        ArchivedOp::ClearSlot { slot } => {
            let mut ks = shard.ks.borrow_mut();
            let slot = usize::from(slot.to_native());
            for d in ks.dbs.iter_mut() {
                d.clear_slot(slot);
            }
        }
    }
}

/// With another core count than the primary's, a shard's offset is the sum of the offsets of
/// the streams it receives (so the node's is its primary's, as in Valkey).
fn sum_stream_offsets(shard: &Shard) {
    let sum: u64 = shard.repl.state().streams.values().map(|s| s.offset).sum();
    shard.node.repl.offsets[shard.id].store(sum, Ordering::Relaxed);
}

/// Acknowledges the stream's offset once the current batch of frames is applied, unless
/// acknowledgements are held (see the module docs of `crate::repl`), and records it for the
/// elections' per-stream offsets.
pub(super) fn schedule_ack(shard: &Shard, k: usize) {
    let mut st = shard.repl.state();
    let Some(s) = st.streams.get_mut(&k) else {
        return;
    };
    if s.ack_scheduled {
        return;
    }
    s.ack_scheduled = true;
    drop(st);
    shard.post(
        shard.id,
        Box::new(move |s: &Shard| {
            let mut st = s.repl.state();
            if let Some(st) = st.streams.get_mut(&k) {
                st.ack_scheduled = false;
                if let Some(ack) = s.node.repl.stream_applied(k, st.offset, st.link.is_some()) {
                    if let Some(l) = &st.link {
                        l.send(&frame::ack(ack));
                    }
                }
            }
        }),
    );
}

impl InStream {
    /// `master_link_status`-style state for ROLE: connect, sync, connected.
    pub(crate) fn role_state(&self) -> &'static str {
        if self.up {
            "connected"
        } else if self.syncing {
            "sync"
        } else if self.link.is_some() {
            "handshake"
        } else {
            "connect"
        }
    }
}
