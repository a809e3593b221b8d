//! Replication: per-shard streams from a primary node to its replicas, backlogs and resync,
//! WAIT, and the role switches that REPLICAOF and cluster failover make.
//!
//! Owns the stream state of every shard (`ShardRepl`), the node's replication identity
//! (`NodeRepl`), the frame format (`frame.rs`) and the stream sockets (see below). It may read
//! and write a shard's keyspace (capturing writes, applying them on a replica) but never
//! another shard's except through the mesh, and it knows nothing of the cluster bus: cluster
//! mode tells it who the primary is through [`set_primary`].
//!
//! # How writes are captured (`capture.rs`)
//!
//! Valkey propagates the commands it ran, rewritten where replaying them would differ
//! (relative TTLs, random pops, blocking pops). corekey does the same where it is cheap and
//! exact, and ships effects elsewhere:
//!
//! - A key command (`dispatch::exec_key`) with the `write` flag that did not fail becomes a
//!   `Cmd` op: its arguments plus the primary's clock. Replaying with the primary's clock
//!   makes relative expiry (EXPIRE, SET EX, GETEX, RESTORE ttl) land on the same deadline
//!   without rewriting. Commands that are not deterministic given the data and the clock
//!   (SPOP) and commands whose keys span slots (standalone mode) become effects instead.
//! - Writes made outside a replayable command (a step of a cross-shard transaction, a blocked
//!   client served, FLUSHALL, MIGRATE's deletes) are seen through the keyspace's write log
//!   (`keyspace/log.rs`): every key they changed becomes a `Put` of its whole value (a DUMP
//!   payload and deadline) or a `Del`; a flush becomes `Flush`, a swap `SwapDb`.
//! - Keys that expire on the primary (lazily or in the active cycle) become `Del` ops, logged
//!   before the command that noticed them. Replicas never expire keys on their own; they hide
//!   keys past their deadline from their clients, as Valkey's replicas do.
//!
//! Every op names one slot, so a replica with another shard count routes it by slot.
//!
//! # Frames, offsets, backlog
//!
//! Ops accumulate per shard and are sealed into one rkyv-archived `LIVE` frame per event-loop
//! turn (a post to the shard itself), so one pipeline of writes is one frame. A stream's
//! offset counts the bytes of its live frames; the node's `master_repl_offset` is the sum over
//! its shards. Each shard keeps a backlog of its latest frames (`backlog.rs`,
//! `repl-backlog-size` split across shards).
//!
//! # Streams and sockets (`primary.rs`, `replica.rs`)
//!
//! Each primary shard listens on its own ephemeral port; a replica learns the ports with
//! `REPLCONF corekey-layout` on the client port, then its shard `k % shards` connects to the
//! primary's shard `k` and says HELLO (replication id, offset). The primary answers CONTINUE
//! (and sends the backlog from there) or FULLRESYNC. The stream sockets are framed links of
//! `crate::net::link`, the module that owns long-lived server-to-server sockets.
//!
//! # Full sync without fork (`primary.rs`)
//!
//! The primary shard walks its slots in order while it keeps serving. Each step first seals
//! the pending ops (so every live frame produced so far is queued before it), then queues a
//! `SNAPSHOT` frame that clears whole slots on the replica and puts every key of them. Live
//! frames keep flowing during the walk, for every slot: applied to a slot not yet sent they
//! build garbage that the slot's snapshot then replaces wholesale, applied after it they are
//! exactly the writes the snapshot does not hold. Because every op touches a single slot,
//! garbage never leaks into another slot. A step waits while the link's queue is long, so
//! the primary never holds much more than one step of the dataset in memory.
//!
//! # The replica applies in place
//!
//! A replica copies a frame body into an aligned buffer, validates it once, and runs each
//! archived op with slices of that buffer as arguments. It appends each live frame unchanged
//! to its own backlog, so its offsets are its primary's: after a failover its siblings and the
//! old primary resume from the new primary with a partial resync (`replid2`), as in Valkey.
//!
//! # WAIT
//!
//! WAIT seals every shard's pending ops and waits until N replica nodes acknowledged each
//! shard's offset at that moment (a shard with no replica acknowledges nothing). Replicas
//! acknowledge after each batch of frames they read, and when a partial resync is accepted; the
//! primary counts only acknowledgements (a HELLO's offset says what the replica holds, not
//! what it acknowledges). Sync mode (`min-replicas-ack`) waits the same way.
//!
//! # Held acknowledgements
//!
//! While the cluster bus says so ([`hold_acks`] and [`resume_acks`], driven by its
//! `HoldAcks`/`ResumeAcks`), a replica acknowledges nothing beyond what each stream had
//! already acknowledged: its primary may be being replaced by a sibling that holds less, and
//! a write acknowledged now could be lost (the rule is in `corekey_bus::cluster::election`).
//! The replica keeps applying what it receives; only the acknowledgements wait. The gate is
//! one lock for the node, taken by each shard as it acknowledges, so a hold covers every
//! acknowledgement that had not been recorded when it began.
//!
//! # Catching up from a sibling
//!
//! With several streams, the replicas of one primary need not be ordered: one can hold
//! acknowledged writes on stream 1 while its sibling holds more of stream 0, and more in sum.
//! (Some replica holds every acknowledged write: an acknowledgement needs one node to have
//! acknowledged every stream's offset as it was after the write. But sums do not say which.)
//! So the cluster bus compares offsets stream by stream, a sibling ahead on a stream refuses
//! its vote, and when the primary fails the bus says, with its `CatchUp`, which sibling holds
//! more on which streams ([`catch_up`]), so that a candidate comes to hold all of it. The
//! sibling keeps a backlog of the primary's frames at the primary's offsets, and already
//! serves its mirrored streams to sub-replicas, so fetching a suffix is a partial resync
//! against it.
//!
//! The node keeps the source (and a generation bumped at each change); each shard's stream
//! supervisor (`replica.rs`) uses it only when the primary is unreachable: it then connects
//! the listed streams it owns to the sibling (its layout comes from `REPLCONF corekey-layout`,
//! as the primary's does), says HELLO with its replid and offset, and applies what follows
//! exactly as from the primary (backlog, offsets, sub-replicas, acknowledgements). A FULLRESYNC
//! is refused: it would drop what we hold; the stream stays as it was and is not asked again
//! from the same source. The primary's streams and the sibling's never run at the same time
//! on one shard: one supervisor runs either, and waits for the catch-up streams to end before
//! it tries the primary again. A new source, none, or a role change closes the catch-up links
//! (a new source also closes the listed streams' links to the primary, which a vanished
//! primary could hold open until `repl-timeout`), and the supervisor starts over. Frames from
//! a sibling do not count as contact with the primary (the data-age rule of elections).

pub mod backlog;
pub mod capture;
pub mod frame;
pub mod info;
mod primary;
mod replica;

use crate::keyspace::log::ExpiryMode;
use crate::net::link::Link;
use crate::shard::Shard;
use backlog::Backlog;
use frame::{Op, REPLID_LEN};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Mutex;

/// Most bytes queued to one replica stream before the link is dropped: Valkey's hard
/// `client-output-buffer-limit replica 256mb`, per shard stream.
pub const REPLICA_QUEUE_MAX_BYTES: usize = 256 << 20;

/// Who this node replicates from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica { host: String, port: u16 },
}

/// The node's replication identity, shared by its shards.
pub struct NodeRepl {
    ident: Mutex<Ident>,
    replica: AtomicBool,
    /// Bumped at every role change; stream tasks of an older generation stop.
    generation: AtomicU64,
    /// Each shard's stream offset (`master_repl_offset` of that shard).
    offsets: Vec<AtomicU64>,
    /// Each shard's replication listener port (0 until one is needed).
    ports: Vec<AtomicU16>,
    /// Unix ms of the last frame received from the primary, any stream (0: never).
    last_contact_ms: AtomicU64,
    /// What each stream acknowledged, and whether acknowledgements are held.
    acks: Mutex<AckGate>,
    /// The sibling replica to catch up from (see "Catching up from a sibling").
    catch_up: Mutex<CatchUpState>,
}

/// A sibling replica to fetch streams from (the cluster bus's `CatchUp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUpFrom {
    /// The sibling's node id (for the logs).
    pub node: String,
    /// Its client address and port.
    pub ip: String,
    pub port: u16,
    /// Our primary's streams (indexes) it holds more of.
    pub streams: Vec<usize>,
}

#[derive(Debug, Default)]
struct CatchUpState {
    /// Bumped at every change of `from`; catch-up links of another generation close.
    generation: u64,
    from: Option<CatchUpFrom>,
}

/// See "Held acknowledgements" in the module docs.
#[derive(Debug, Default)]
struct AckGate {
    held: bool,
    /// Per stream of the primary (its index), the offset last acknowledged on it.
    acked: std::collections::BTreeMap<usize, u64>,
    /// Per stream of the primary, the offset held on it, recorded once per batch of frames
    /// (where acknowledgements are decided). Elections read it when the primary's core count
    /// differs from ours; otherwise shard `k` holds stream `k` and `offsets[k]` says it.
    held_offsets: std::collections::BTreeMap<usize, u64>,
    /// How many streams our primary has, once its layout was learnt (0: not yet).
    primary_streams: usize,
}

#[derive(Debug, Clone)]
struct Ident {
    role: Role,
    replid: [u8; REPLID_LEN],
    replid2: [u8; REPLID_LEN],
    /// Per shard: the last offset valid under `replid2` (None: no replid2).
    second_offsets: Option<Vec<u64>>,
}

fn new_replid() -> [u8; REPLID_LEN] {
    let hex = crate::shard::random_hex40();
    let mut id = [b'0'; REPLID_LEN];
    id.copy_from_slice(&hex.as_bytes()[..REPLID_LEN]);
    id
}

impl NodeRepl {
    pub fn new(shards: usize) -> NodeRepl {
        NodeRepl {
            ident: Mutex::new(Ident {
                role: Role::Primary,
                replid: new_replid(),
                replid2: [b'0'; REPLID_LEN],
                second_offsets: None,
            }),
            replica: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            offsets: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            ports: (0..shards).map(|_| AtomicU16::new(0)).collect(),
            last_contact_ms: AtomicU64::new(0),
            acks: Mutex::new(AckGate::default()),
            catch_up: Mutex::new(CatchUpState::default()),
        }
    }

    fn with_catch_up<R>(&self, f: impl FnOnce(&mut CatchUpState) -> R) -> R {
        match self.catch_up.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Sets the catch-up source; the new generation when it changed.
    fn set_catch_up(&self, from: Option<CatchUpFrom>) -> Option<u64> {
        self.with_catch_up(|c| {
            if c.from == from {
                return None;
            }
            c.from = from;
            c.generation += 1;
            Some(c.generation)
        })
    }

    /// The catch-up source and its generation.
    fn catch_up_source(&self) -> (u64, Option<CatchUpFrom>) {
        self.with_catch_up(|c| (c.generation, c.from.clone()))
    }

    fn catch_up_generation(&self) -> u64 {
        self.with_catch_up(|c| c.generation)
    }

    fn with_acks<R>(&self, f: impl FnOnce(&mut AckGate) -> R) -> R {
        match self.acks.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Stream `k` applied a batch of frames up to `offset`: records what it holds and, when
    /// `ack` (it has a link to acknowledge on), returns the offset to acknowledge: `offset`
    /// (recorded as acknowledged), or while held what the stream already acknowledged, so the
    /// primary still hears from us (`repl-timeout`) and counts nothing new. One lock for
    /// both: this runs once per batch.
    pub(crate) fn stream_applied(&self, k: usize, offset: u64, ack: bool) -> Option<u64> {
        self.with_acks(|g| {
            g.held_offsets.insert(k, offset);
            if !ack {
                None
            } else if g.held {
                g.acked.get(&k).copied()
            } else {
                g.acked.insert(k, offset);
                Some(offset)
            }
        })
    }

    /// Our primary has `n` streams (learnt from its layout).
    pub(crate) fn set_primary_streams(&self, n: usize) {
        self.with_acks(|g| g.primary_streams = n);
    }

    /// How many streams our primary has (0: not learnt yet).
    pub(crate) fn primary_streams(&self) -> usize {
        self.with_acks(|g| g.primary_streams)
    }

    /// Starts holding acknowledgements; whether they were not held yet.
    fn hold(&self) -> bool {
        !self.with_acks(|g| std::mem::replace(&mut g.held, true))
    }

    /// Stops holding acknowledgements; whether they were held.
    fn release(&self) -> bool {
        self.with_acks(|g| std::mem::replace(&mut g.held, false))
    }

    /// The offsets elections compare, one per stream of our primary (indexed by its shard; a
    /// primary gives its own shards' offsets): what this node holds on each, and never less
    /// than what it acknowledged there (the cluster bus's `set_replication` asks for that
    /// while acknowledgements are held; a full resync may have moved a stream back since).
    /// Elections compare them stream by stream: with several streams a replica can hold
    /// acknowledged writes its sibling lacks while the sibling holds more in sum.
    pub fn election_offsets(&self) -> Vec<u64> {
        let shards = self.offsets.len();
        let replica = self.is_replica();
        self.with_acks(|g| {
            let streams = if replica && g.primary_streams != 0 {
                g.primary_streams
            } else {
                shards
            };
            (0..streams)
                .map(|k| {
                    // The same core count: shard k receives stream k alone, and its offset
                    // moves with every frame. Another: the per-stream record.
                    let held = if streams == shards {
                        self.offsets[k].load(Ordering::Relaxed)
                    } else {
                        g.held_offsets.get(&k).copied().unwrap_or(0)
                    };
                    held.max(g.acked.get(&k).copied().unwrap_or(0))
                })
                .collect()
        })
    }

    fn ident(&self) -> Ident {
        match self.ident.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn with_ident<R>(&self, f: impl FnOnce(&mut Ident) -> R) -> R {
        match self.ident.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Whether this node is a replica.
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Acquire)
    }

    pub fn role(&self) -> Role {
        self.ident().role
    }

    /// The node's replication offset: the sum of its shards' stream offsets.
    pub fn offset(&self) -> u64 {
        self.offsets.iter().map(|o| o.load(Ordering::Relaxed)).sum()
    }

    /// Unix ms of the last frame from the primary (`None`: never, or not a replica).
    pub fn last_contact_ms(&self) -> Option<u64> {
        let t = self.last_contact_ms.load(Ordering::Relaxed);
        (self.is_replica() && t > 0).then_some(t)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// One replica stream connected to this shard (primary side).
pub(crate) struct ReplicaLink {
    pub id: u64,
    pub link: Link,
    pub node: [u8; REPLID_LEN],
    pub ip: String,
    pub port: u16,
    /// Streaming live frames (false while the snapshot is being sent).
    pub online: bool,
    pub ack: u64,
    pub ack_ms: i64,
}

/// One stream this shard receives (replica side).
#[derive(Default)]
pub(crate) struct InStream {
    pub replid: Option<[u8; REPLID_LEN]>,
    pub offset: u64,
    pub link: Option<Link>,
    pub up: bool,
    pub syncing: bool,
    pub last_io_ms: i64,
    pub ack_scheduled: bool,
    /// The link is a catch-up link from a sibling replica, of this catch-up generation.
    pub catch_up: Option<u64>,
    /// The catch-up generation whose sibling offered only a full resync (not asked again).
    pub catch_up_refused: Option<u64>,
}

/// A WAIT (or sync-mode write) waiting for acknowledgements on this shard.
pub(crate) struct AckWaiter {
    pub home: usize,
    pub ticket: usize,
    pub offset: u64,
    pub needed: usize,
}

/// Counters INFO stats shows.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncStats {
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
}

/// A shard's replication state.
#[derive(Default)]
pub struct ShardRepl {
    inner: RefCell<ShardState>,
}

#[derive(Default)]
pub(crate) struct ShardState {
    pub backlog: Option<Backlog>,
    pub pending: Vec<Op>,
    pub seal_scheduled: bool,
    pub replicas: Vec<ReplicaLink>,
    pub next_link_id: u64,
    pub waiters: Vec<AckWaiter>,
    pub streams: std::collections::BTreeMap<usize, InStream>,
    pub listener: bool,
    pub stats: SyncStats,
    /// This shard received streams of a primary with another core count: its offsets are
    /// sums over those streams, so they cannot resume a stream of that primary's history
    /// (`replid2`) for a replica of our own after a promotion.
    pub foreign_offsets: bool,
}

impl ShardRepl {
    pub(crate) fn state(&self) -> std::cell::RefMut<'_, ShardState> {
        self.inner.borrow_mut()
    }
}

/// The per-shard backlog bound: `repl-backlog-size` split across shards.
fn backlog_bytes(shard: &Shard) -> usize {
    (shard.config().repl.backlog_size as usize) / shard.shards().max(1)
}

/// Makes this shard a replication source (creating its backlog) if it is not yet one.
fn ensure_source(shard: &Shard) {
    let mut st = shard.repl.state();
    if st.backlog.is_none() {
        let at = shard.node.repl.offsets[shard.id].load(Ordering::Relaxed);
        st.backlog = Some(Backlog::new(at, backlog_bytes(shard)));
    }
    drop(st);
    if !shard.node.repl.is_replica() {
        if let Some(log) = shard.ks.borrow().log() {
            log.on.set(true);
            log.record.set(true);
        }
    }
}

/// Queues an op for the next frame of this shard.
pub(crate) fn emit(shard: &Shard, op: Op) {
    let mut st = shard.repl.state();
    st.pending.push(op);
    if !st.seal_scheduled {
        st.seal_scheduled = true;
        drop(st);
        // Sealed after the current event-loop turn: a pipeline of writes is one frame.
        shard.post(shard.id, Box::new(|s: &Shard| seal(s)));
    }
}

/// Seals the pending ops into a live frame: backlog, replica links, offset, waiters.
pub(crate) fn seal(shard: &Shard) {
    let ops = {
        let mut st = shard.repl.state();
        st.seal_scheduled = false;
        if st.pending.is_empty() {
            return;
        }
        std::mem::take(&mut st.pending)
    };
    let wire = frame::encode_batch(frame::Kind::Live, &frame::Batch { ops });
    publish_live(shard, wire);
}

/// Appends a live frame to this shard's backlog and sends it to its replicas (a primary's own
/// frame, or one a replica received and passes on).
pub(crate) fn publish_live(shard: &Shard, wire: Vec<u8>) {
    let mut st = shard.repl.state();
    for r in &st.replicas {
        if r.link.queued_bytes() > REPLICA_QUEUE_MAX_BYTES {
            // A replica this far behind would cost unbounded memory: drop it; it reconnects
            // and resumes from the backlog, or full-syncs.
            tracing::warn!(shard = shard.id, ip = %r.ip, port = r.port, "replica too far behind: link closed");
            r.link.close();
            continue;
        }
        r.link.send(&wire);
    }
    let end = match st.backlog.as_mut() {
        Some(b) => {
            b.push(wire);
            b.end_offset()
        }
        None => {
            let at = shard.node.repl.offsets[shard.id].load(Ordering::Relaxed);
            at + wire.len() as u64
        }
    };
    shard.node.repl.offsets[shard.id].store(end, Ordering::Relaxed);
    drop(st);
    primary::check_waiters(shard);
}

/// Changes who this node replicates from (REPLICAOF, or cluster mode's topology). Runs on any
/// shard; every shard is told through the mesh. Returns false when nothing changed.
pub fn set_primary(shard: &Shard, target: Option<(String, u16)>) -> bool {
    let node = &shard.node;
    let new_role = match &target {
        Some((host, port)) => Role::Replica {
            host: host.clone(),
            port: *port,
        },
        None => Role::Primary,
    };
    let changed = node.repl.with_ident(|id| {
        if id.role == new_role {
            return false;
        }
        if matches!(id.role, Role::Replica { .. }) && new_role == Role::Primary {
            // Promotion: a new history starts; the old one stays valid up to where we are, so
            // replicas that followed the same primary resume with a partial resync.
            id.replid2 = id.replid;
            id.second_offsets = Some(
                node.repl
                    .offsets
                    .iter()
                    .map(|o| o.load(Ordering::Relaxed))
                    .collect(),
            );
            id.replid = new_replid();
        }
        id.role = new_role.clone();
        true
    });
    if !changed {
        return false;
    }
    node.repl.replica.store(target.is_some(), Ordering::Release);
    // A catch-up was for the old primary's streams (`apply_role` closes its links).
    if node.repl.set_catch_up(None).is_some() {
        tracing::info!("catch-up from a sibling replica: ended by a role change");
    }
    // What we acknowledged, held and knew of the layout was of the old primary's streams.
    node.repl.with_acks(|g| {
        g.acked.clear();
        g.held_offsets.clear();
        g.primary_streams = 0;
    });
    let generation = node.repl.generation.fetch_add(1, Ordering::AcqRel) + 1;
    tracing::info!(role = ?new_role, "replication role changed");
    for t in 0..shard.shards() {
        let target = target.clone();
        let job = move |s: &Shard| apply_role(s, generation, target);
        if t == shard.id {
            job(shard);
        } else {
            shard.post(t, Box::new(job));
        }
    }
    true
}

/// One shard's part of a role change.
fn apply_role(shard: &Shard, generation: u64, target: Option<(String, u16)>) {
    if shard.node.repl.generation() != generation {
        return; // a newer change is on its way
    }
    // Our replicas resync against whatever we become.
    let (replicas, streams): (Vec<ReplicaLink>, Vec<Link>) = {
        let mut st = shard.repl.state();
        let r = std::mem::take(&mut st.replicas);
        let s = st
            .streams
            .values_mut()
            .filter_map(|s| {
                s.up = false;
                s.link.take()
            })
            .collect();
        (r, s)
    };
    for r in replicas {
        r.link.close();
    }
    for l in streams {
        l.close();
    }
    let log = shard.ks.borrow().log().cloned();
    match target {
        None => {
            if let Some(log) = &log {
                log.expiry.set(ExpiryMode::Normal);
            }
            // What we received ends here: if we replicate again, we resume from our own
            // history (replid, offset), never from a stream position our own writes since
            // then have left behind.
            shard.repl.state().streams.clear();
            if shard.repl.state().backlog.is_some() {
                ensure_source(shard);
            }
        }
        Some((host, port)) => {
            if let Some(log) = &log {
                log.on.set(false);
                log.events.borrow_mut().clear();
                log.expiry.set(ExpiryMode::Hide);
            }
            // A primary becoming a replica resumes from its own history (replid, offset).
            let (replid, _) = {
                let id = shard.node.repl.ident();
                (id.replid, id.replid2)
            };
            {
                let mut st = shard.repl.state();
                st.pending.clear();
                let end = shard.node.repl.offsets[shard.id].load(Ordering::Relaxed);
                for s in st.streams.values_mut() {
                    if s.replid.is_none() {
                        s.replid = Some(replid);
                        s.offset = end;
                    }
                }
                if st.streams.is_empty() {
                    st.streams.insert(
                        shard.id,
                        InStream {
                            replid: Some(replid),
                            offset: end,
                            ..InStream::default()
                        },
                    );
                }
            }
            replica::start(shard, generation, host, port);
        }
    }
}

/// Holds this node's acknowledgements (the cluster bus's `HoldAcks`): from now on no stream
/// acknowledges beyond what it already has. Returns the offsets elections must compare
/// ([`NodeRepl::election_offsets`]), which cover everything acknowledged on each stream.
pub fn hold_acks(shard: &Shard) -> Vec<u64> {
    let repl = &shard.node.repl;
    repl.hold();
    repl.election_offsets()
}

/// Ends a hold (the cluster bus's `ResumeAcks`) and has every stream acknowledge what it
/// holds at once: writes may be waiting for it in sync mode.
pub fn resume_acks(shard: &Shard) {
    if !shard.node.repl.release() {
        return;
    }
    for t in 0..shard.shards() {
        let job = |s: &Shard| {
            let streams: Vec<usize> = s.repl.state().streams.keys().copied().collect();
            for k in streams {
                replica::schedule_ack(s, k);
            }
        };
        if t == shard.id {
            job(shard);
        } else {
            shard.post(t, Box::new(job));
        }
    }
}

/// Carries out the cluster bus's `CatchUp` (see "Catching up from a sibling" in the module
/// docs): while our primary is unreachable, the streams `from` lists are fetched from that
/// sibling replica; `None` ends any catch-up. Runs on any shard; every shard is told.
pub fn catch_up(shard: &Shard, from: Option<CatchUpFrom>) {
    let from = from.map(|mut f| {
        // One applier per stream: a stream listed twice is fetched once.
        f.streams.sort_unstable();
        f.streams.dedup();
        f
    });
    let repl = &shard.node.repl;
    let Some(generation) = repl.set_catch_up(from.clone()) else {
        return;
    };
    let offsets = repl.election_offsets();
    match &from {
        Some(f) => tracing::info!(
            sibling = %f.node,
            ip = %f.ip,
            port = f.port,
            streams = ?f.streams,
            ?offsets,
            "catch-up from a sibling replica: started"
        ),
        None => tracing::info!(?offsets, "catch-up from a sibling replica: ended"),
    }
    let streams = from.map(|f| f.streams).unwrap_or_default();
    for t in 0..shard.shards() {
        let streams = streams.clone();
        let job = move |s: &Shard| replica::on_catch_up_changed(s, generation, &streams);
        if t == shard.id {
            job(shard);
        } else {
            shard.post(t, Box::new(job));
        }
    }
}

/// CLIENT KILL TYPE master (`to_primary`) or TYPE replica on this shard: closes the streams
/// from our primary (the replica reconnects and resumes from its offset) or to our replicas
/// (they reconnect likewise). Returns the node ids whose links were closed.
pub fn kill_links(shard: &Shard, to_primary: bool) -> Vec<[u8; REPLID_LEN]> {
    let st = shard.repl.state();
    let mut closed = Vec::new();
    let links: Vec<Link> = if to_primary {
        st.streams
            .values()
            .filter_map(|s| s.link.clone())
            .inspect(|_| closed.push([b'm'; REPLID_LEN]))
            .collect()
    } else {
        st.replicas
            .iter()
            .inspect(|r| closed.push(r.node))
            .map(|r| r.link.clone())
            .collect()
    };
    drop(st);
    for l in links {
        l.close();
    }
    closed
}

/// `-READONLY` for a write sent to a standalone replica (cluster mode redirects instead).
pub fn refuse_write(shard: &Shard, spec: &crate::commands::CommandSpec) -> Option<&'static [u8]> {
    (shard.node.repl.is_replica()
        && spec.has(crate::commands::spec::flag::WRITE)
        && !shard.cluster.enabled())
    .then_some(b"-READONLY You can't write against a read only replica.".as_slice())
}

/// Drains the keyspace write log into ops (after any job that may have written).
pub fn drain(shard: &Shard) {
    capture::drain(shard);
}

/// Reads a `u64` config-free clock for stream bookkeeping.
fn now_ms() -> i64 {
    crate::shard::unix_ms()
}

/// Starts the replication listener of every shard (idempotent) and returns their ports.
pub async fn layout(via: crate::commands::multi::Via<'_>) -> Vec<u16> {
    let mut ports = Vec::with_capacity(via.shards());
    for t in 0..via.shards() {
        ports.push(via.call(t, primary::ensure_listener).await);
    }
    ports
}

/// Gives a shard its replication state at start-up: `replicaof` in the configuration.
pub fn boot(shard: &Rc<Shard>) {
    THIS_SHARD.with(|s| *s.borrow_mut() = Rc::downgrade(shard));
    if shard.id != 0 || shard.cluster.enabled() {
        return;
    }
    if let Some((host, port)) = shard.config().repl.replicaof.clone() {
        set_primary(shard, Some((host, port)));
    }
}

/// The replication directives (Valkey's names and defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `replicaof <host> <port>` at start-up (standalone mode).
    pub replicaof: Option<(String, u16)>,
    /// `repl-backlog-size`, for the whole node (each shard keeps its share).
    pub backlog_size: u64,
    /// `repl-timeout` in seconds: a replica drops a link its primary left silent this long.
    pub timeout_s: u64,
    /// `min-replicas-ack` (corekey's sync mode): replies to writes wait until this many
    /// replicas acknowledged them; 0 is off (Valkey's asynchronous replication).
    pub min_replicas_ack: usize,
    /// `min-replicas-ack-timeout` in ms: a write not acknowledged by then gets no reply, and
    /// its connection is closed (its outcome is unknown to the client, never falsely "OK").
    pub min_replicas_ack_timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            replicaof: None,
            backlog_size: 1024 * 1024,
            timeout_s: 60,
            min_replicas_ack: 0,
            min_replicas_ack_timeout_ms: 1000,
        }
    }
}

/// `replicaof` as written in a file or on the command line: `host port`, or `no one`/empty.
pub fn parse_replicaof(args: &[Vec<u8>]) -> Result<Option<(String, u16)>, String> {
    let words: Vec<String> = args
        .iter()
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .filter(|w| !w.is_empty())
        .collect();
    match words.as_slice() {
        [] => Ok(None),
        [no, one] if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") => Ok(None),
        [host, port] => {
            let port: u16 = port
                .parse()
                .map_err(|_| "Invalid master port".to_string())?;
            Ok(Some((host.clone(), port)))
        }
        _ => Err("wrong number of arguments".into()),
    }
}

thread_local! {
    /// The shard this thread runs, for tasks that outlive the call that started them.
    static THIS_SHARD: RefCell<std::rc::Weak<Shard>> = const { RefCell::new(std::rc::Weak::new()) };
}

/// The shard of the current thread (set by [`boot`]).
pub(crate) fn this_shard() -> Option<Rc<Shard>> {
    THIS_SHARD.with(|s| s.borrow().upgrade())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The acknowledgement gate: while held, no stream acknowledges (even what it applies
    /// meanwhile), and the offsets elections compare never fall below what was acknowledged
    /// on each stream, even when a stream's offset moves back (a full resync); released,
    /// streams acknowledge again. Same core count as the primary: shard k holds stream k.
    #[test]
    fn held_acknowledgements() {
        let r = NodeRepl::new(2);
        r.replica.store(true, Ordering::Release);
        r.offsets[0].store(100, Ordering::Relaxed);
        r.offsets[1].store(50, Ordering::Relaxed);
        assert_eq!(r.stream_applied(0, 100, true), Some(100));
        assert_eq!(r.stream_applied(1, 50, true), Some(50));
        assert!(r.hold());
        assert!(!r.hold(), "already held");
        assert_eq!(r.election_offsets(), [100, 50]);
        r.offsets[0].store(300, Ordering::Relaxed);
        assert_eq!(
            r.stream_applied(0, 300, true),
            Some(100),
            "held: only what was acknowledged already, again (a keep-alive)"
        );
        assert_eq!(r.election_offsets(), [300, 50], "what it holds, when more");
        r.offsets[0].store(20, Ordering::Relaxed);
        assert_eq!(
            r.election_offsets(),
            [100, 50],
            "what it acknowledged, when more"
        );
        assert!(r.release());
        assert!(!r.release(), "already released");
        assert_eq!(r.stream_applied(0, 300, true), Some(300));
        r.offsets[0].store(300, Ordering::Relaxed);
        assert_eq!(r.election_offsets(), [300, 50]);
        assert_eq!(
            r.stream_applied(1, 60, false),
            None,
            "no link: nothing to acknowledge on"
        );
    }

    /// The catch-up source: each change (a source, another, none) gets a new generation, so
    /// links of the older one close; setting the same source again changes nothing.
    #[test]
    fn catch_up_source_lifecycle() {
        let r = NodeRepl::new(2);
        assert_eq!(r.catch_up_source(), (0, None));
        assert_eq!(r.set_catch_up(None), None, "nothing to end");
        let from = CatchUpFrom {
            node: "b".repeat(40),
            ip: "127.0.0.1".into(),
            port: 7001,
            streams: vec![1],
        };
        assert_eq!(r.set_catch_up(Some(from.clone())), Some(1));
        assert_eq!(r.set_catch_up(Some(from.clone())), None, "the same source");
        assert_eq!(r.catch_up_source(), (1, Some(from.clone())));
        let more = CatchUpFrom {
            streams: vec![0, 1],
            ..from
        };
        assert_eq!(r.set_catch_up(Some(more)), Some(2), "more streams");
        assert_eq!(r.set_catch_up(None), Some(3));
        assert_eq!(r.catch_up_source(), (3, None));
        assert_eq!(r.catch_up_generation(), 3);
    }

    /// A primary with another core count (three streams into two shards): the offsets are
    /// per stream of the primary, from what each batch recorded, never the shards' sums, and
    /// each is at least what was acknowledged on that stream. A primary node gives its own
    /// shards' offsets, whatever it acknowledged as a replica before.
    #[test]
    fn election_offsets_follow_the_primarys_streams() {
        let r = NodeRepl::new(2);
        r.replica.store(true, Ordering::Release);
        r.set_primary_streams(3);
        assert_eq!(r.primary_streams(), 3);
        // Shard 0 receives streams 0 and 2: its own offset is their sum.
        r.offsets[0].store(70, Ordering::Relaxed);
        r.offsets[1].store(40, Ordering::Relaxed);
        assert_eq!(r.stream_applied(0, 30, true), Some(30));
        assert_eq!(r.stream_applied(1, 40, true), Some(40));
        assert_eq!(r.stream_applied(2, 40, true), Some(40));
        assert_eq!(r.election_offsets(), [30, 40, 40]);
        assert!(r.hold());
        // Stream 1 moves back (a full resync from a primary whose history we lost).
        assert_eq!(r.stream_applied(1, 10, true), Some(40));
        assert_eq!(r.stream_applied(2, 45, true), Some(40));
        assert_eq!(
            r.election_offsets(),
            [30, 40, 45],
            "acknowledged on 1, held on 2"
        );
        assert!(r.release());
        r.replica.store(false, Ordering::Release);
        assert_eq!(r.election_offsets(), [70, 40], "a primary: its own shards");
    }
}
