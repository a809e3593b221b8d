//! The cluster bus state machine: one [`ClusterState`] per node, driven by a driver (a real one on
//! shard 0 of `corekey-node`, or the simulator) with inputs and a clock value, answering with
//! [`Action`]s. It owns the node table, epochs, slot ownership, failure detection, elections and
//! the admin operations behind the CLUSTER commands. It owns no socket, file or clock.
//!
//! # How a driver uses it
//!
//! - Build it with [`ClusterState::new`] (fresh node, random id) or [`ClusterState::restore`]
//!   (from a parsed `nodes.conf`).
//! - Call [`ClusterState::handle`] with [`Input::Tick`] every [`TICK_INTERVAL_MS`], with
//!   [`Input::LinkUp`]/[`Input::LinkDown`] as outbound connections open and close, and with
//!   [`Input::Message`] for every frame decoded by [`crate::wire::decode`] (a decode error closes
//!   the link, then [`Input::LinkDown`]). Register every accepted connection with
//!   [`ClusterState::accept_link`] first. CLUSTER commands go through [`ClusterState::admin`].
//!   Feed replication progress with [`ClusterState::set_replication`].
//! - A replica holds its acknowledgements of its primary's stream from [`Action::HoldAcks`]
//!   to [`Action::ResumeAcks`] (sync mode's election rule, see [`election`]).
//!   Feed replication progress with [`ClusterState::set_replication`], and answer
//!   [`Action::PauseWrites`] with [`ClusterState::writes_paused`] once the pause holds.
//! - Carry out the returned actions **in order**, and batches in the order they were returned.
//!
//! # Persistence comes first
//!
//! A node must never act on a new epoch or vote that a crash could make it forget: a vote
//! forgotten is a second vote in the same epoch, and an epoch forgotten can be handed out twice.
//! So every batch that changed anything worth persisting starts with [`Action::Persist`], and the
//! driver must make [`ClusterState::persisted`] durable (write a temporary file, fsync, rename,
//! fsync the directory) before it carries out any later action of that batch or of any later
//! batch. The state machine has already applied the change in memory, but nothing that reveals
//! it (a message, a new topology snapshot) leaves the node before the fsync. If the driver
//! cannot persist, it must stop the node (Valkey exits too): carrying on would break the rule.
//! The simulator checks the rule by crashing nodes in the middle of a batch.
//!
//! Sends only name links that are up: an outbound link after [`Input::LinkUp`], an inbound link
//! from [`ClusterState::accept_link`] on. After [`Action::CloseLink`] the state has forgotten the
//! link; reporting it down afterwards is harmless.

mod admin;
mod election;
mod messages;
mod migration;
#[cfg(test)]
mod tests;
mod tick;

use std::collections::BTreeMap;
use std::fmt;

pub use admin::{AdminError, AdminOk, AdminOp, FailoverMode, SetSlotOp};
#[cfg(any(test, feature = "sim"))]
pub(crate) use election::covers;
pub use election::{Electorate, ElectorateMode};

use crate::config::{PersistedConfig, PersistedNode};
use crate::rng::Rng;
use crate::slot::{Slot, SLOT_COUNT};
use crate::topology::{NodeFlags, NodeId, NodeView, ShardId, SlotBitmap, Topology, NO_OWNER};
use crate::wire::{Body, Message, SenderInfo, MAX_PUBLISH_BYTES};

/// How often the driver should send [`Input::Tick`] (Valkey's cluster cron runs at 10 Hz).
pub const TICK_INTERVAL_MS: u64 = 100;
/// Most nodes in one table, handshakes included (Valkey's documented practical maximum).
pub const MAX_NODES: usize = 1000;
/// Most bus links at once, both directions (two per peer, plus room for reconnects).
pub const MAX_LINKS: usize = 4 * MAX_NODES;
/// Most ids on the FORGET ban list at once.
pub const MAX_BANNED: usize = 1000;
/// How long a manual failover may take (Valkey's `CLUSTER_MF_TIMEOUT`).
pub const MANUAL_FAILOVER_TIMEOUT_MS: u64 = 5000;
/// How long failure reports count, in node timeouts (`CLUSTER_FAIL_REPORT_VALIDITY_MULT`).
pub const FAIL_REPORT_VALIDITY_MULT: u64 = 2;
/// How long a failed primary that still serves slots stays FAIL once reachable again, in node
/// timeouts (`CLUSTER_FAIL_UNDO_TIME_MULT`).
pub const FAIL_UNDO_TIME_MULT: u64 = 2;
/// A primary waits this long after start before declaring the cluster ok
/// (`CLUSTER_WRITABLE_DELAY`).
pub const WRITABLE_DELAY_MS: u64 = 2000;
/// How long a primary must stay orphaned before a replica migrates to it, so that after a
/// failover the new primary's own replicas have time to announce it first
/// (`CLUSTER_REPLICA_MIGRATION_DELAY`).
pub const REPLICA_MIGRATION_DELAY_MS: u64 = 5000;

/// Identifies one bus connection, outbound or inbound. Allocated by the state machine (for both
/// directions), so a driver keeps a map from `LinkId` to its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

/// One link of a node, as [`ClusterState::node_links`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStat {
    /// The link.
    pub link: LinkId,
    /// When it was created (local clock).
    pub created_ms: u64,
    /// Whether it is established (an outbound link may still be connecting).
    pub up: bool,
}

/// The links of one node (see [`ClusterState::node_links`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLinks {
    /// The node.
    pub node: NodeId,
    /// Our link to it.
    pub outbound: Option<LinkStat>,
    /// Its link to us.
    pub inbound: Option<LinkStat>,
}

/// Settings, with Valkey's directive names in the docs.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `cluster-node-timeout`.
    pub node_timeout_ms: u64,
    /// `cluster-announce-ip` (or the bind address); empty means "learn it from the first MEET".
    pub ip: String,
    /// Client port (`port` or `cluster-announce-port`).
    pub port: u16,
    /// Bus port (`cluster-port`, or port + 10000).
    pub bus_port: u16,
    /// `cluster-announce-hostname`.
    pub hostname: String,
    /// `cluster-require-full-coverage`.
    pub require_full_coverage: bool,
    /// `cluster-replica-validity-factor` (0 = always allowed to fail over).
    pub replica_validity_factor: u64,
    /// `repl-ping-replica-period`, in ms (part of the data-age limit).
    pub repl_ping_replica_period_ms: u64,
    /// `cluster-replica-no-failover`.
    pub replica_no_failover: bool,
    /// `cluster-allow-replica-migration`: a replica may move to an orphaned primary, and
    /// a primary whose last slot moved away follows the new owner as a replica.
    pub allow_replica_migration: bool,
    /// `cluster-migration-barrier`: a replica migrates only if its primary keeps more than
    /// this many working replicas without it.
    pub migration_barrier: u64,
    /// How long a forgotten id stays banned (Valkey: 60 s).
    pub forget_ban_ms: u64,
    /// Fixed wait before an election, so the FAIL message spreads first (Valkey: 500).
    pub failover_fixed_delay_ms: u64,
    /// Random extra wait before an election (Valkey: up to 500).
    pub failover_random_delay_ms: u64,
    /// Extra wait per rank (replicas with better offsets go first; Valkey: 1000).
    pub failover_rank_delay_ms: u64,
    /// Shortest time an election may collect votes (Valkey's `CLUSTER_OPERATION_TIMEOUT`).
    pub failover_min_auth_timeout_ms: u64,
    /// Let replicas vote when fewer than three primaries serve slots (see [`election`]). Off, the
    /// node behaves as Valkey: only primaries vote.
    pub small_cluster_voting: bool,
    /// `min-replicas-ack` (sync mode): a write is acknowledged once this many replicas hold
    /// it. Elections then need offset statements from enough replicas that one of them holds
    /// every acknowledged write (see [`election`]); 0 is no sync mode.
    pub sync_replicas: usize,
}

impl ClusterConfig {
    /// Valkey's defaults for a node announcing `ip:port` (bus port `port + 10000`).
    pub fn new(ip: &str, port: u16) -> ClusterConfig {
        ClusterConfig {
            node_timeout_ms: 15_000,
            ip: ip.to_string(),
            port,
            bus_port: port.wrapping_add(10_000),
            hostname: String::new(),
            require_full_coverage: true,
            replica_validity_factor: 10,
            repl_ping_replica_period_ms: 10_000,
            replica_no_failover: false,
            allow_replica_migration: true,
            migration_barrier: 1,
            forget_ban_ms: 60_000,
            failover_fixed_delay_ms: 500,
            failover_random_delay_ms: 500,
            failover_rank_delay_ms: 1000,
            failover_min_auth_timeout_ms: 2000,
            small_cluster_voting: true,
            sync_replicas: 0,
        }
    }
}

/// Something that happened to the node, for the state machine to react to.
#[derive(Debug, Clone)]
pub enum Input {
    /// Time passed; send every [`TICK_INTERVAL_MS`].
    Tick,
    /// An outbound connection asked for with [`Action::Connect`] is established.
    LinkUp(LinkId),
    /// A connection (either direction) failed or closed.
    LinkDown(LinkId),
    /// A message arrived on a link.
    Message(LinkId, Box<Message>),
    /// The time [`ClusterState::next_deadline_ms`] named has come (between two ticks).
    Timer,
}

/// What the driver must do, in order (see the module docs on persistence).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Make [`ClusterState::persisted`] durable before doing anything after this action. Always
    /// the first action of its batch.
    Persist,
    /// Open a bus connection to `ip:bus_port`; report [`Input::LinkUp`] or [`Input::LinkDown`].
    Connect {
        /// The id this connection will carry.
        link: LinkId,
        /// Address.
        ip: String,
        /// Bus port.
        bus_port: u16,
    },
    /// Encode and send a message on a link that is up.
    Send {
        /// Where.
        link: LinkId,
        /// What.
        msg: Box<Message>,
    },
    /// Close a link; the state has already forgotten it.
    CloseLink(LinkId),
    /// The topology changed: build [`ClusterState::topology`] and publish it to every shard.
    TopologyChanged,
    /// Manual failover, primary side: stop accepting client writes until `until_ms` (node clock)
    /// or [`Action::ResumeWrites`], whichever is first. Once no write can change the
    /// replication offset any more (writes already admitted have finished and been counted),
    /// the driver reports it with [`ClusterState::writes_paused`]; until then the replica is
    /// not told the offset to catch up to, so a driver that never reports it never completes
    /// a default-mode manual failover.
    PauseWrites {
        /// Local time at which the pause ends on its own.
        until_ms: u64,
    },
    /// End a pause started by [`Action::PauseWrites`].
    ResumeWrites,
    /// Replica: stop acknowledging the primary's replication stream beyond what was already
    /// acknowledged, until [`Action::ResumeAcks`] (sync mode's election rule, see
    /// [`election`]). Held before any later action is carried out; then feed
    /// [`ClusterState::set_replication`] an offset no smaller than anything acknowledged so far,
    /// before the next input. Always first in its batch, after [`Action::Persist`].
    HoldAcks,
    /// Acknowledge the stream again, at once (writes may be waiting for it in sync mode).
    ResumeAcks,
    /// Replica whose primary failed: fetch what a sibling replica holds beyond us on the
    /// listed streams of our primary, from that sibling's copy of those streams (a partial
    /// resync against its backlog; never a full one, which would drop what we hold), and keep
    /// following it there until the next `CatchUp`. `from: None` ends any catch-up. A sibling
    /// ahead on a stream refuses its vote (or statement) until we hold as much (see
    /// [`election`]): with more than one stream, two replicas can each hold acknowledged
    /// writes the other lacks, and this is how a candidate comes to hold both.
    CatchUp {
        /// The sibling's client address and port, and the streams to fetch.
        from: Option<CatchUpSource>,
    },
    /// A message PUBLISHed (SPUBLISHed when `sharded`) on another node: deliver it to this
    /// node's subscribers, on every shard, without sending it on.
    Deliver {
        /// A shard channel.
        sharded: bool,
        /// The channel.
        channel: Vec<u8>,
        /// The message.
        message: Vec<u8>,
    },
    /// Something worth a log line.
    Log(Event),
}

/// Where [`Action::CatchUp`] fetches from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUpSource {
    /// The sibling replica.
    pub node: NodeId,
    /// Its client address.
    pub ip: String,
    /// Its client port.
    pub port: u16,
    /// Our primary's streams (indexes) on which it holds more than we do.
    pub streams: Vec<usize>,
}

/// Log-worthy events (the driver maps them to `tracing`). Tests and the simulator read them too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A handshake finished and the node is known by its id.
    HandshakeDone(NodeId),
    /// A node was learnt from gossip.
    NodeAdded(NodeId),
    /// A node was removed (FORGET, handshake timeout, or replaced by its real id).
    NodeRemoved(NodeId),
    /// A node's address changed.
    AddressUpdated(NodeId),
    /// A node is possibly failing (no pong within the node timeout).
    PFail(NodeId),
    /// A node is failed, by our quorum or by another node's FAIL message.
    Fail(NodeId),
    /// A node's FAIL flag was cleared.
    FailCleared(NodeId),
    /// Our configEpoch collided with a primary of greater id: we moved to a new one.
    ConfigEpochCollision {
        /// The other node.
        with: NodeId,
        /// Our new configEpoch.
        epoch: u64,
    },
    /// Our configEpoch was raised without an election (BUMPEPOCH, TAKEOVER, slot import).
    ConfigEpochBumped(u64),
    /// Slots changed owner in our view.
    SlotsTakenOver {
        /// New owner.
        by: NodeId,
        /// Under this configEpoch.
        epoch: u64,
        /// How many slots.
        count: usize,
    },
    /// We became a replica of this node.
    BecameReplica(NodeId),
    /// We became a primary.
    BecamePrimary,
    /// Replica migration: we left our primary for this orphaned one.
    MigratedToOrphan(NodeId),
    /// An election is scheduled.
    ElectionScheduled {
        /// In how long.
        delay_ms: u64,
        /// Our rank among the replicas.
        rank: u32,
    },
    /// An election started (vote requests sent).
    ElectionStarted {
        /// Its epoch.
        epoch: u64,
        /// Votes needed.
        quorum: usize,
    },
    /// We voted for a candidate.
    VoteGranted {
        /// The candidate.
        candidate: NodeId,
        /// The epoch voted in.
        epoch: u64,
    },
    /// We refused a vote.
    VoteRefused {
        /// The candidate.
        candidate: NodeId,
        /// Why.
        reason: &'static str,
    },
    /// We won an election and took over our primary's slots.
    ElectionWon {
        /// The epoch won (now our configEpoch).
        epoch: u64,
    },
    /// We took over without an election (CLUSTER FAILOVER TAKEOVER).
    TakeoverDone {
        /// Our new configEpoch.
        epoch: u64,
    },
    /// An election ran out of time.
    ElectionExpired {
        /// Its epoch.
        epoch: u64,
    },
    /// We gave up our candidacy in an epoch to a better-ranked replica of our primary.
    ElectionYielded {
        /// The epoch.
        epoch: u64,
        /// Who got our vote.
        to: NodeId,
    },
    /// `cluster_state` changed.
    ClusterState {
        /// ok (true) or fail.
        ok: bool,
    },
    /// A peer sent something we could not use (mismatching id on a pong, etc.).
    PeerMismatch(NodeId),
    /// Manual failover progress.
    ManualFailover(&'static str),
    /// We hold our acknowledgements of our primary's stream: it may be being replaced.
    AcksHeld,
    /// A sibling replica told a candidate it holds nothing of their primary's streams the
    /// candidate lacks (sync mode's statement; a vote too when it is a member).
    StatementGiven {
        /// The candidate.
        candidate: NodeId,
        /// The election's epoch.
        epoch: u64,
    },
    /// We fetch what a sibling holds beyond us (see [`Action::CatchUp`]); `None`: no more.
    CatchUp(Option<CatchUpSource>),
    /// We acknowledge our primary's stream again.
    AcksResumed,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::HandshakeDone(n) => write!(f, "handshake with node {n} completed"),
            Event::NodeAdded(n) => write!(f, "node {n} added from gossip"),
            Event::NodeRemoved(n) => write!(f, "node {n} removed"),
            Event::AddressUpdated(n) => write!(f, "address updated for node {n}"),
            Event::PFail(n) => write!(f, "node {n} possibly failing"),
            Event::Fail(n) => write!(f, "marking node {n} as failing"),
            Event::FailCleared(n) => write!(f, "clear FAIL state for node {n}"),
            Event::ConfigEpochCollision { with, epoch } => write!(
                f,
                "configEpoch collision with node {with}; configEpoch set to {epoch}"
            ),
            Event::ConfigEpochBumped(e) => write!(f, "new configEpoch set to {e}"),
            Event::SlotsTakenOver { by, epoch, count } => {
                write!(f, "{count} slots now served by {by} (configEpoch {epoch})")
            }
            Event::BecameReplica(p) => write!(f, "reconfigured as a replica of {p}"),
            Event::BecamePrimary => write!(f, "now a primary"),
            Event::MigratedToOrphan(p) => write!(f, "migrating to orphaned primary {p}"),
            Event::ElectionScheduled { delay_ms, rank } => write!(
                f,
                "start of election delayed for {delay_ms} milliseconds (rank #{rank})"
            ),
            Event::ElectionStarted { epoch, quorum } => write!(
                f,
                "starting a failover election for epoch {epoch} ({quorum} votes needed)"
            ),
            Event::VoteGranted { candidate, epoch } => {
                write!(f, "failover auth granted to {candidate} for epoch {epoch}")
            }
            Event::VoteRefused { candidate, reason } => {
                write!(f, "failover auth denied to {candidate}: {reason}")
            }
            Event::ElectionWon { epoch } => {
                write!(
                    f,
                    "failover election won for epoch {epoch}: I'm the new primary"
                )
            }
            Event::TakeoverDone { epoch } => write!(f, "took over my primary at epoch {epoch}"),
            Event::ElectionExpired { epoch } => write!(f, "failover attempt {epoch} expired"),
            Event::ElectionYielded { epoch, to } => write!(
                f,
                "failover attempt {epoch} given up for {to}, a replica with a better rank"
            ),
            Event::ClusterState { ok } => {
                write!(
                    f,
                    "cluster state changed: {}",
                    if *ok { "ok" } else { "fail" }
                )
            }
            Event::PeerMismatch(n) => write!(f, "pong with mismatching sender id from {n}"),
            Event::ManualFailover(what) => write!(f, "manual failover: {what}"),
            Event::AcksHeld => write!(
                f,
                "holding replication acknowledgements: my primary may be being replaced"
            ),
            Event::AcksResumed => write!(f, "acknowledging replication again"),
            Event::StatementGiven { candidate, epoch } => write!(
                f,
                "told sibling {candidate} it holds all of our primary's stream I hold (epoch {epoch})"
            ),
            Event::CatchUp(Some(c)) => write!(
                f,
                "fetching streams {:?} of our primary from sibling {} ({}:{})",
                c.streams, c.node, c.ip, c.port
            ),
            Event::CatchUp(None) => write!(f, "no sibling holds more than we do: catch-up ends"),
        }
    }
}

/// One node in the table, with the run-time fields Valkey keeps in `clusterNode`.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) id: NodeId,
    pub(crate) flags: NodeFlags,
    pub(crate) ip: String,
    pub(crate) port: u16,
    pub(crate) bus_port: u16,
    pub(crate) hostname: String,
    pub(crate) shard_id: ShardId,
    pub(crate) primary: Option<NodeId>,
    pub(crate) config_epoch: u64,
    pub(crate) slots: SlotBitmap,
    pub(crate) created_ms: u64,
    pub(crate) ping_sent_ms: u64,
    pub(crate) pong_received_ms: u64,
    pub(crate) data_received_ms: u64,
    pub(crate) fail_time_ms: u64,
    pub(crate) voted_time_ms: Option<u64>,
    pub(crate) repl_offset: u64,
    /// Its offset on each stream of its primary (replicas), as it last announced them.
    pub(crate) stream_offsets: Vec<u64>,
    /// Our outbound link to it.
    pub(crate) link: Option<LinkId>,
    /// Its latest inbound link to us.
    pub(crate) inbound_link: Option<LinkId>,
    /// Who reported it PFAIL or FAIL, and when (our clock).
    pub(crate) fail_reports: BTreeMap<NodeId, u64>,
}

impl Node {
    fn new(id: NodeId, flags: NodeFlags, now_ms: u64) -> Node {
        Node {
            id,
            flags,
            ip: String::new(),
            port: 0,
            bus_port: 0,
            hostname: String::new(),
            shard_id: ShardId::from_bytes(*id.as_bytes()),
            primary: None,
            config_epoch: 0,
            slots: SlotBitmap::new(),
            created_ms: now_ms,
            ping_sent_ms: 0,
            pong_received_ms: 0,
            data_received_ms: 0,
            fail_time_ms: 0,
            voted_time_ms: None,
            repl_offset: 0,
            stream_offsets: Vec::new(),
            link: None,
            inbound_link: None,
            fail_reports: BTreeMap::new(),
        }
    }

    pub(crate) fn is_primary(&self) -> bool {
        self.flags.contains(NodeFlags::PRIMARY)
    }
    pub(crate) fn is_replica(&self) -> bool {
        self.flags.contains(NodeFlags::REPLICA)
    }
    pub(crate) fn failed(&self) -> bool {
        self.flags.contains(NodeFlags::FAIL)
    }
    pub(crate) fn timed_out(&self) -> bool {
        self.flags.contains(NodeFlags::PFAIL)
    }
    pub(crate) fn in_handshake(&self) -> bool {
        self.flags.contains(NodeFlags::HANDSHAKE)
    }
    /// When this node becomes PFAIL if nothing arrives from it: a ping (or a broken link) is
    /// out and no traffic came for the node timeout `nt` (any traffic proves liveness, not
    /// only pongs). `None` for ourselves, handshakes, nodes already failing, or no ping out.
    pub(crate) fn times_out_at(&self, nt: u64) -> Option<u64> {
        let skip = NodeFlags::MYSELF
            .union(NodeFlags::NOADDR)
            .union(NodeFlags::HANDSHAKE)
            .union(NodeFlags::PFAIL)
            .union(NodeFlags::FAIL);
        if self.flags.intersects(skip) || self.ping_sent_ms == 0 {
            return None;
        }
        Some(self.ping_sent_ms.max(self.data_received_ms) + nt + 1)
    }
    /// A primary serving at least one slot: Valkey's only voters.
    pub(crate) fn is_voting_primary(&self) -> bool {
        self.is_primary() && !self.slots.is_empty()
    }
}

#[derive(Debug, Clone)]
struct LinkInfo {
    /// The node this link belongs to, once known.
    node: Option<NodeId>,
    outbound: bool,
    /// Outbound: after LinkUp. Inbound: always.
    up: bool,
    created_ms: u64,
    /// Inbound: the peer's address as the socket reports it.
    peer_ip: String,
}

/// The bus state machine of one node. See the module docs.
pub struct ClusterState {
    cfg: ClusterConfig,
    rng: Rng,
    myself: NodeId,
    nodes: BTreeMap<NodeId, Node>,
    /// Owner of each slot; kept equal to the union of the nodes' bitmaps.
    slot_owner: Vec<Option<NodeId>>,
    current_epoch: u64,
    last_vote_epoch: u64,
    /// Whom this process voted for in `last_vote_epoch` (not persisted: after a restart we do
    /// not know, and refuse as Valkey does).
    last_vote_for: Option<NodeId>,
    migrating: BTreeMap<Slot, NodeId>,
    importing: BTreeMap<Slot, NodeId>,
    /// FORGET ban list: id → local time when it may be re-added.
    banned: BTreeMap<NodeId, u64>,
    links: BTreeMap<LinkId, LinkInfo>,
    next_link: u64,
    tick_count: u64,
    /// Replication offset of this node (driver-fed): the sum of `stream_offsets`.
    repl_offset: u64,
    /// Our offset on each of our primary's streams (driver-fed; elections compare these).
    stream_offsets: Vec<u64>,
    /// Replica: last time we heard from our primary's replication stream (driver-fed).
    repl_last_contact_ms: Option<u64>,
    election: election::ElectionState,
    manual: election::ManualFailover,
    /// Replica: a vote that keeps our acknowledgements held (see [`election`]).
    ack_hold: Option<election::AckHold>,
    /// Whether the driver holds our acknowledgements (the last of HoldAcks/ResumeAcks sent).
    acks_held: bool,
    /// The last [`Action::CatchUp`] source sent.
    catch_up: Option<CatchUpSource>,
    migration: migration::MigrationState,
    cluster_ok: bool,
    first_state_update_ms: Option<u64>,
    among_minority_ms: u64,
    topology_version: u64,
    // Output being assembled for the current input.
    out: Vec<Action>,
    dirty_persist: bool,
    dirty_topology: bool,
}

impl ClusterState {
    /// A fresh node: a random id and shard id, a primary with no slots, epochs at zero.
    /// `seed` feeds every random choice (the driver takes it from the OS).
    pub fn new(cfg: ClusterConfig, now_ms: u64, seed: u64) -> ClusterState {
        let mut rng = Rng::new(seed);
        let id = NodeId::random(&mut rng);
        let mut me = Node::new(id, NodeFlags::MYSELF.union(NodeFlags::PRIMARY), now_ms);
        me.shard_id = ShardId::random(&mut rng);
        let mut state = ClusterState::empty(cfg, rng, id, now_ms);
        state.apply_my_address(&mut me);
        state.nodes.insert(id, me);
        state
    }

    /// A node restarted from its persisted configuration. Run-time fields (pings, links, failure
    /// reports) start empty; PFAIL is dropped; our own address comes from `cfg` when set there.
    /// A replica with a vote on record starts with its acknowledgements held
    /// ([`ClusterState::acks_held`]).
    pub fn restore(
        cfg: ClusterConfig,
        persisted: &PersistedConfig,
        now_ms: u64,
        seed: u64,
    ) -> Result<ClusterState, &'static str> {
        let me = persisted.myself().ok_or("no myself line")?;
        if persisted.nodes.len() > MAX_NODES {
            return Err("too many nodes");
        }
        let rng = Rng::new(seed);
        let mut state = ClusterState::empty(cfg, rng, me.id, now_ms);
        state.current_epoch = persisted.current_epoch;
        state.last_vote_epoch = persisted.last_vote_epoch;
        for p in &persisted.nodes {
            let mut node = Node::new(p.id, p.flags, now_ms);
            node.flags
                .remove(NodeFlags::PFAIL.union(NodeFlags::HANDSHAKE));
            node.ip = p.ip.clone();
            node.port = p.port;
            node.bus_port = p.bus_port;
            node.hostname = p.hostname.clone();
            node.shard_id = p.shard_id;
            node.primary = p.primary;
            node.config_epoch = p.config_epoch;
            node.fail_time_ms = now_ms;
            if node.id == me.id {
                state.apply_my_address(&mut node);
            }
            state.nodes.insert(node.id, node);
        }
        // Slots last, so a file that gives one slot to two nodes keeps the higher configEpoch.
        for p in &persisted.nodes {
            for slot in p.slots.iter() {
                let keep = match state.slot_owner[usize::from(slot.get())] {
                    None => true,
                    Some(other) => state.node_epoch_of(&other) < p.config_epoch,
                };
                if keep {
                    state.del_slot(slot);
                    state.add_slot(p.id, slot);
                }
            }
        }
        for (slot, id) in &persisted.migrating {
            if state.nodes.contains_key(id) {
                state.migrating.insert(*slot, *id);
            }
        }
        for (slot, id) in &persisted.importing {
            if state.nodes.contains_key(id) {
                state.importing.insert(*slot, *id);
            }
        }
        // A replica whose primary is not in the file is a replica of nobody: make it a primary.
        let my_primary = state.me().primary;
        if state.me().is_replica() && my_primary.is_none_or(|p| !state.nodes.contains_key(&p)) {
            let me = state.me_mut();
            me.flags.remove(NodeFlags::REPLICA);
            me.flags.insert(NodeFlags::PRIMARY);
            me.primary = None;
        }
        // Sync mode: a vote on record may be for a sibling whose election is still running, and
        // whom we do not remember; hold our acknowledgements for as long as it could (see
        // `election`). The driver starts with them held when `acks_held` says so.
        let me = state.me();
        if let Some(primary) = me
            .primary
            .filter(|_| me.is_replica() && state.last_vote_epoch > 0)
        {
            state.ack_hold = Some(election::AckHold {
                primary,
                candidate: None,
                until_ms: now_ms + state.ack_hold_ms(),
            });
            state.acks_held = true;
        }
        Ok(state)
    }

    fn empty(cfg: ClusterConfig, rng: Rng, id: NodeId, now_ms: u64) -> ClusterState {
        let _ = now_ms;
        ClusterState {
            cfg,
            rng,
            myself: id,
            nodes: BTreeMap::new(),
            slot_owner: vec![None; usize::from(SLOT_COUNT)],
            current_epoch: 0,
            last_vote_epoch: 0,
            last_vote_for: None,
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            banned: BTreeMap::new(),
            links: BTreeMap::new(),
            next_link: 1,
            tick_count: 0,
            repl_offset: 0,
            stream_offsets: Vec::new(),
            repl_last_contact_ms: None,
            election: election::ElectionState::default(),
            manual: election::ManualFailover::default(),
            ack_hold: None,
            acks_held: false,
            catch_up: None,
            migration: migration::MigrationState::default(),
            cluster_ok: false,
            first_state_update_ms: None,
            among_minority_ms: 0,
            topology_version: 0,
            out: Vec::new(),
            dirty_persist: false,
            dirty_topology: false,
        }
    }

    fn apply_my_address(&self, me: &mut Node) {
        if !self.cfg.ip.is_empty() {
            me.ip = self.cfg.ip.clone();
        }
        me.port = self.cfg.port;
        me.bus_port = self.cfg.bus_port;
        me.hostname = self.cfg.hostname.clone();
    }

    // -----------------------------------------------------------------------------------------
    // Entry points

    /// Handles one input at local time `now_ms` and returns what to do, in order.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Action> {
        match input {
            Input::Tick => self.on_tick(now_ms),
            Input::LinkUp(link) => self.on_link_up(now_ms, link),
            Input::LinkDown(link) => self.on_link_down(now_ms, link),
            Input::Timer => self.on_timer(now_ms),
            Input::Message(link, msg) => self.on_message(now_ms, link, *msg),
        }
        self.finish(now_ms)
    }

    /// Registers an accepted inbound connection from `peer_ip`, reached at our `local_ip`, and
    /// returns the id the driver reports its messages with; `None` when [`MAX_LINKS`] are open
    /// (the driver closes the connection).
    pub fn accept_link(&mut self, now_ms: u64, peer_ip: &str, local_ip: &str) -> Option<LinkId> {
        if self.links.len() >= MAX_LINKS {
            return None;
        }
        let link = self.alloc_link();
        self.links.insert(
            link,
            LinkInfo {
                node: None,
                outbound: false,
                up: true,
                created_ms: now_ms,
                peer_ip: peer_ip.to_string(),
            },
        );
        // Valkey learns its own address from the socket a MEET arrives on; remember the local
        // address of the link for that moment.
        if self.cfg.ip.is_empty() && self.me().ip.is_empty() && !local_ip.is_empty() {
            self.me_mut().ip = local_ip.to_string();
            // Our address shows in CLUSTER NODES/SLOTS and in redirects: publish it too.
            self.changed();
        }
        Some(link)
    }

    /// Manual failover, primary side: the pause of the last [`Action::PauseWrites`] is in
    /// effect and the replication offset is final at `offset` (see there). Ignored when no
    /// pause is pending (it ended, or was already reported).
    pub fn writes_paused(&mut self, now_ms: u64, offset: u64) -> Vec<Action> {
        self.on_writes_paused(now_ms, offset);
        self.finish(now_ms)
    }

    /// Tells the state machine this node's replication offsets, one per stream of its primary
    /// (a primary: of its own streams; one stream is a node of one core), and, for a replica,
    /// when it last heard from its primary (`None`: not tracked, the data-age rule is skipped).
    /// While acknowledgements are held ([`Action::HoldAcks`]) each offset must be at least
    /// everything acknowledged to the primary on that stream: votes compare them with the
    /// candidate's, stream by stream.
    pub fn set_replication(&mut self, offsets: &[u64], last_primary_contact_ms: Option<u64>) {
        self.stream_offsets.clear();
        self.stream_offsets.extend_from_slice(offsets);
        self.repl_offset = offsets.iter().sum();
        self.repl_last_contact_ms = last_primary_contact_ms;
    }

    /// A PUBLISH (SPUBLISH when `sharded`) on this node, for the other nodes: every known node
    /// with a link up gets it, or for a shard channel only the nodes of our shard, as Valkey's
    /// `clusterPropagatePublish` and `clusterPropagatePublishShard` do. A channel and message
    /// over [`MAX_PUBLISH_BYTES`] together stay on this node.
    pub fn publish(
        &mut self,
        now_ms: u64,
        sharded: bool,
        channel: &[u8],
        message: &[u8],
    ) -> Vec<Action> {
        if channel.len().saturating_add(message.len()) <= MAX_PUBLISH_BYTES {
            let me = self.myself;
            let links: Vec<LinkId> = if sharded {
                self.nodes
                    .values()
                    .filter(|n| n.id != me && !n.in_handshake() && self.in_same_shard(&me, &n.id))
                    .filter_map(|n| n.link.filter(|l| self.links.get(l).is_some_and(|i| i.up)))
                    .collect()
            } else {
                self.connected_links(None)
            };
            let body = Body::Publish {
                sharded,
                channel: channel.to_vec(),
                message: message.to_vec(),
            };
            for link in links {
                self.send(link, body.clone());
            }
        }
        self.finish(now_ms)
    }

    /// Runs an admin operation (a CLUSTER subcommand). On error nothing changed.
    pub fn admin(
        &mut self,
        now_ms: u64,
        op: AdminOp,
    ) -> Result<(AdminOk, Vec<Action>), AdminError> {
        // On error nothing changed, so nothing is collected: flags left dirty by an earlier
        // call (an accepted link that taught us our address) stay for the next batch instead
        // of being dropped with the error.
        let ok = self.run_admin(now_ms, op)?;
        Ok((ok, self.finish(now_ms)))
    }

    /// Replaces the settings (CONFIG SET of a `cluster-*` directive). Our own address, port,
    /// bus port and hostname follow the new settings; an empty IP keeps the one we have.
    pub fn reconfigure(&mut self, cfg: ClusterConfig) {
        self.cfg = cfg;
        let mut me = self
            .nodes
            .remove(&self.myself)
            .expect("myself is always in the table");
        let before = (me.ip.clone(), me.port, me.bus_port, me.hostname.clone());
        self.apply_my_address(&mut me);
        let after = (me.ip.clone(), me.port, me.bus_port, me.hostname.clone());
        self.nodes.insert(self.myself, me);
        if before != after {
            self.changed();
        }
        // Coverage or timeouts may decide cluster_state differently now.
        self.dirty_topology = true;
    }

    /// The bus links of every other known node, for `CLUSTER LINKS`: its outbound link (ours
    /// to it) and its inbound link (its to us), when they exist.
    pub fn node_links(&self) -> Vec<NodeLinks> {
        let stat = |l: Option<LinkId>| {
            l.and_then(|l| {
                self.links.get(&l).map(|i| LinkStat {
                    link: l,
                    created_ms: i.created_ms,
                    up: i.up,
                })
            })
        };
        self.nodes
            .values()
            .filter(|n| n.id != self.myself)
            .map(|n| NodeLinks {
                node: n.id,
                outbound: stat(n.link),
                inbound: stat(n.inbound_link),
            })
            .collect()
    }

    fn finish(&mut self, now_ms: u64) -> Vec<Action> {
        // Flags, roles or slots changed: `cluster_state` may have too (Valkey recomputes it
        // before sleeping for the same reason).
        if self.dirty_topology {
            self.update_cluster_state(now_ms);
        }
        self.update_ack_hold(now_ms);
        self.update_catch_up(now_ms);
        let mut actions = Vec::with_capacity(self.out.len() + 2);
        if self.dirty_persist {
            actions.push(Action::Persist);
        }
        actions.append(&mut self.out);
        if self.dirty_topology {
            self.topology_version += 1;
            actions.push(Action::TopologyChanged);
        }
        self.dirty_persist = false;
        self.dirty_topology = false;
        actions
    }

    // -----------------------------------------------------------------------------------------
    // Read-only views

    /// Our node id.
    pub fn myself(&self) -> NodeId {
        self.myself
    }

    /// The cluster's currentEpoch as we know it.
    pub fn current_epoch(&self) -> u64 {
        self.current_epoch
    }

    /// The last epoch we voted in.
    pub fn last_vote_epoch(&self) -> u64 {
        self.last_vote_epoch
    }

    /// Our configEpoch (a replica's own, which is not the one it announces).
    pub fn my_config_epoch(&self) -> u64 {
        self.me().config_epoch
    }

    /// Whether the driver was last told to hold acknowledgements ([`Action::HoldAcks`]); for a
    /// state just built by [`ClusterState::restore`], whether the driver must start with them
    /// held (no [`Action::HoldAcks`] comes for that).
    pub fn acks_held(&self) -> bool {
        self.acks_held
    }

    /// Whether we are a primary.
    pub fn is_primary(&self) -> bool {
        self.me().is_primary()
    }

    /// Our primary, when we are a replica.
    pub fn my_primary(&self) -> Option<NodeId> {
        self.me().primary
    }

    /// The slots we serve.
    pub fn my_slots(&self) -> &SlotBitmap {
        &self.me().slots
    }

    /// `cluster_state:ok`.
    pub fn cluster_ok(&self) -> bool {
        self.cluster_ok
    }

    /// The owner of `slot` in our view.
    pub fn slot_owner(&self, slot: Slot) -> Option<NodeId> {
        self.slot_owner[usize::from(slot.get())]
    }

    /// Flags of a known node.
    pub fn node_flags(&self, id: &NodeId) -> Option<NodeFlags> {
        self.nodes.get(id).map(|n| n.flags)
    }

    /// The configEpoch we know for a node.
    pub fn node_config_epoch(&self, id: &NodeId) -> Option<u64> {
        self.nodes.get(id).map(|n| n.config_epoch)
    }

    /// The ids of every known node (handshakes included), in order.
    pub fn node_ids(&self) -> impl Iterator<Item = &NodeId> {
        self.nodes.keys()
    }

    /// `CLUSTER COUNT-FAILURE-REPORTS`: valid failure reports about `id`.
    pub fn failure_report_count(&self, now_ms: u64, id: &NodeId) -> Option<usize> {
        let validity = self.cfg.node_timeout_ms * FAIL_REPORT_VALIDITY_MULT;
        self.nodes.get(id).map(|n| {
            n.fail_reports
                .values()
                .filter(|t| now_ms.saturating_sub(**t) <= validity)
                .count()
        })
    }

    /// The settings.
    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    /// What to write to `nodes.conf` (handshake nodes are not persisted, as in Valkey).
    pub fn persisted(&self) -> PersistedConfig {
        PersistedConfig {
            current_epoch: self.current_epoch,
            last_vote_epoch: self.last_vote_epoch,
            nodes: self
                .nodes
                .values()
                .filter(|n| !n.in_handshake())
                .map(|n| PersistedNode {
                    id: n.id,
                    ip: n.ip.clone(),
                    port: n.port,
                    bus_port: n.bus_port,
                    hostname: n.hostname.clone(),
                    shard_id: n.shard_id,
                    flags: n.flags,
                    primary: n.primary,
                    ping_sent_ms: n.ping_sent_ms,
                    pong_received_ms: n.pong_received_ms,
                    config_epoch: n.config_epoch,
                    connected: n.id == self.myself || self.link_up(n.link),
                    slots: n.slots.clone(),
                })
                .collect(),
            migrating: self.migrating.iter().map(|(s, n)| (*s, *n)).collect(),
            importing: self.importing.iter().map(|(s, n)| (*s, *n)).collect(),
        }
    }

    /// An immutable snapshot for routing and the CLUSTER commands.
    pub fn topology(&self) -> Topology {
        let nodes: Vec<NodeView> = self
            .nodes
            .values()
            .map(|n| NodeView {
                id: n.id,
                ip: n.ip.clone(),
                port: n.port,
                bus_port: n.bus_port,
                hostname: n.hostname.clone(),
                shard_id: n.shard_id,
                flags: n.flags,
                primary: n.primary,
                config_epoch: n.config_epoch,
                slots: n.slots.clone(),
                ping_sent_ms: n.ping_sent_ms,
                pong_received_ms: n.pong_received_ms,
                link_connected: n.id == self.myself || self.link_up(n.link),
                repl_offset: if n.id == self.myself {
                    self.repl_offset
                } else {
                    n.repl_offset
                },
            })
            .collect();
        let index: BTreeMap<NodeId, u16> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id, i as u16))
            .collect();
        // From the nodes' bitmaps (equal to `self.slot_owner` by invariant), a word at a time:
        // a lookup per slot made every snapshot cost about a millisecond.
        let mut slot_owner = vec![NO_OWNER; usize::from(SLOT_COUNT)];
        for (i, n) in nodes.iter().enumerate() {
            for slot in n.slots.iter() {
                slot_owner[usize::from(slot.get())] = i as u16;
            }
        }

        Topology {
            version: self.topology_version,
            myself: self.myself,
            myself_index: usize::from(index.get(&self.myself).copied().unwrap_or(0)),
            current_epoch: self.current_epoch,
            last_vote_epoch: self.last_vote_epoch,
            cluster_ok: self.cluster_ok,
            size: self
                .nodes
                .values()
                .filter(|n| n.is_voting_primary())
                .count(),
            nodes,
            slot_owner,
            migrating: self.migrating.iter().map(|(s, n)| (*s, *n)).collect(),
            importing: self.importing.iter().map(|(s, n)| (*s, *n)).collect(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Helpers shared by the submodules

    fn me(&self) -> &Node {
        // MYSELF is inserted at construction and never removed (RESET HARD renames it in place).
        &self.nodes[&self.myself]
    }

    fn me_mut(&mut self) -> &mut Node {
        let id = self.myself;
        self.nodes
            .get_mut(&id)
            .expect("myself is always in the node table")
    }

    fn alloc_link(&mut self) -> LinkId {
        let link = LinkId(self.next_link);
        self.next_link += 1;
        link
    }

    fn link_up(&self, link: Option<LinkId>) -> bool {
        link.and_then(|l| self.links.get(&l)).is_some_and(|l| l.up)
    }

    fn log(&mut self, event: Event) {
        self.out.push(Action::Log(event));
    }

    fn send(&mut self, link: LinkId, body: Body) {
        let msg = Message {
            sender: self.sender_info(),
            body,
        };
        self.out.push(Action::Send {
            link,
            msg: Box::new(msg),
        });
    }

    /// Marks the persisted view and the topology as changed.
    fn changed(&mut self) {
        self.dirty_persist = true;
        self.dirty_topology = true;
    }

    /// The configEpoch a node announces: its own for a primary, its primary's for a replica.
    fn node_epoch_of(&self, id: &NodeId) -> u64 {
        match self.nodes.get(id) {
            Some(n) if n.is_replica() => n
                .primary
                .and_then(|p| self.nodes.get(&p))
                .map_or(n.config_epoch, |p| p.config_epoch),
            Some(n) => n.config_epoch,
            None => 0,
        }
    }

    fn sender_info(&self) -> SenderInfo {
        let me = self.me();
        let primary = me
            .primary
            .filter(|_| me.is_replica())
            .and_then(|p| self.nodes.get(&p));
        let mut flags = me.flags;
        flags.remove(NodeFlags::MYSELF.union(NodeFlags::MEET));
        SenderInfo {
            id: self.myself,
            current_epoch: self.current_epoch,
            config_epoch: self.node_epoch_of(&self.myself),
            repl_offset: self.repl_offset,
            stream_offsets: self.stream_offsets.clone(),
            flags,
            primary: primary.map(|p| p.id),
            shard_id: me.shard_id,
            ip: me.ip.clone(),
            port: me.port,
            bus_port: me.bus_port,
            hostname: me.hostname.clone(),
            paused: self.manual.paused_for.is_some() && self.manual.pause_confirmed,
            slots: primary.map_or_else(|| me.slots.clone(), |p| p.slots.clone()),
        }
    }

    fn add_slot(&mut self, id: NodeId, slot: Slot) {
        debug_assert!(self.slot_owner[usize::from(slot.get())].is_none());
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let first = node.slots.is_empty();
        node.slots.insert(slot);
        self.slot_owner[usize::from(slot.get())] = Some(id);
        if first {
            self.note_first_slot(id);
        }
    }

    fn del_slot(&mut self, slot: Slot) {
        if let Some(owner) = self.slot_owner[usize::from(slot.get())].take() {
            if let Some(node) = self.nodes.get_mut(&owner) {
                node.slots.remove(slot);
            }
        }
    }

    fn del_node_slots(&mut self, id: NodeId) -> usize {
        let slots: Vec<Slot> = match self.nodes.get(&id) {
            Some(n) => n.slots.iter().collect(),
            None => return 0,
        };
        for slot in &slots {
            self.del_slot(*slot);
        }
        slots.len()
    }

    /// Removes a node and everything pointing at it (links, slots, reports, replicas' primary).
    fn del_node(&mut self, id: NodeId) {
        if id == self.myself {
            return;
        }
        self.del_node_slots(id);
        self.migrating.retain(|_, n| *n != id);
        self.importing.retain(|_, n| *n != id);
        if let Some(node) = self.nodes.remove(&id) {
            for link in [node.link, node.inbound_link].into_iter().flatten() {
                if self.links.remove(&link).is_some() {
                    self.out.push(Action::CloseLink(link));
                }
            }
        }
        for n in self.nodes.values_mut() {
            n.fail_reports.remove(&id);
            if n.primary == Some(id) && n.id != self.myself {
                n.primary = None;
            }
        }
        self.changed();
    }

    fn close_link(&mut self, link: LinkId) {
        if let Some(info) = self.links.remove(&link) {
            if let Some(node) = info.node.and_then(|id| self.nodes.get_mut(&id)) {
                if node.link == Some(link) {
                    node.link = None;
                }
                if node.inbound_link == Some(link) {
                    node.inbound_link = None;
                }
            }
            self.out.push(Action::CloseLink(link));
        }
    }

    fn in_same_shard(&self, a: &NodeId, b: &NodeId) -> bool {
        let (Some(na), Some(nb)) = (self.nodes.get(a), self.nodes.get(b)) else {
            return false;
        };
        na.primary == Some(*b)
            || nb.primary == Some(*a)
            || (na.primary.is_some() && na.primary == nb.primary)
            || na.shard_id == nb.shard_id
    }

    /// Raises currentEpoch (never lowers it).
    fn observe_epoch(&mut self, epoch: u64) {
        if epoch > self.current_epoch {
            self.current_epoch = epoch;
            self.dirty_persist = true;
        }
    }

    /// Every node with an up outbound link, except `skip`.
    fn connected_links(&self, skip: Option<NodeId>) -> Vec<LinkId> {
        self.nodes
            .values()
            .filter(|n| n.id != self.myself && Some(n.id) != skip && !n.in_handshake())
            .filter_map(|n| n.link.filter(|l| self.links.get(l).is_some_and(|i| i.up)))
            .collect()
    }

    fn broadcast(&mut self, body: Body) {
        for link in self.connected_links(None) {
            self.send(link, body.clone());
        }
    }
}
