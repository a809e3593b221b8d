//! The bus driver: runs the sans-IO [`ClusterState`] on shard 0 with real sockets, a real clock
//! and a real `nodes.conf`.
//!
//! Everything happens on shard 0's thread, in its runtime: the bus listeners' accept loops, one
//! reader and one writer task per link (`crate::net::link`), a connect task per outgoing link
//! being opened, and a ticker that sends [`Input::Tick`] every [`TICK_INTERVAL_MS`] (and
//! [`Input::Timer`] at the state's deadlines in between). Every
//! input goes through [`Driver::input`], which hands it to the state machine and then carries
//! out the returned actions before returning, in order:
//!
//! - `Persist`: `nodes.conf` is replaced (see `persist.rs`) before the next action runs; if
//!   that fails the process exits, as Valkey does, because carrying on would break the
//!   promise that no epoch or vote is acted on before it is durable. The write is fsynced when
//!   what the promise covers changed since the last fsync — currentEpoch, lastVoteEpoch, any
//!   node's configEpoch or role — and only written otherwise (an operator's slot assignment or
//!   migration state, a peer's address), as Valkey fsyncs only for those: an fsync of file and
//!   directory costs milliseconds, and `redis-cli --cluster reshard` changes slot states
//!   several times per slot.
//! - `Connect`: a connect task is spawned; its outcome comes back later as `LinkUp` or
//!   `LinkDown`, through `input` again (never from inside a batch, so batches never nest).
//! - `Send`: the message is encoded and queued on its link (no await: the writer task sends).
//! - `CloseLink`: the link's socket is shut down; the state has already forgotten it.
//! - `TopologyChanged`: a snapshot is built once and published to every shard: installed at
//!   once on shard 0, posted through the mesh to the others.
//! - `HoldAcks`/`ResumeAcks`: the replication streams hold their acknowledgements, or
//!   acknowledge again (`crate::repl::hold_acks`); after a hold the state machine is told the
//!   offsets votes must compare, one per stream, which cover everything acknowledged before it.
//! - `CatchUp`: the replication streams it lists are fetched from a sibling replica while
//!   the primary is unreachable, or no longer (`crate::repl::catch_up`); the offsets they
//!   bring reach the state machine at the next tick.
//! - `PauseWrites`: client writes are held (`super::pause`); a task waits until the writes
//!   admitted before have run and been sealed, then reports the final offset to the state
//!   machine (`ClusterState::writes_paused`), unless the pause ended meanwhile.
//! - `ResumeWrites`: carried out last in its batch, after the `TopologyChanged` that usually
//!   comes with it (the failover that ends a pause also moves the slots), so every shard has
//!   the new snapshot before its held writes are routed: they get MOVED to the new primary
//!   instead of running here.
//!
//! CLUSTER commands reach the driver with a cross-shard call to shard 0 ([`Driver::admin`] and
//! the read-only views), so they are ordered with the bus inputs by shard 0's single thread.

use super::persist::ConfFile;
use super::{bus_now_ms, Settings};
use crate::net::link::{self, Link, LinkEvent};
use crate::shard::Shard;
use corekey_bus::cluster::{
    Action, AdminError, AdminOk, AdminOp, CatchUpSource, ClusterState, Input, LinkId,
    TICK_INTERVAL_MS,
};
use corekey_bus::config::PersistedConfig;
use corekey_bus::topology::{NodeId, Topology};
use corekey_bus::wire::{self, Body, MAX_MESSAGE_BYTES};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

/// What [`super::boot`] prepared for shard 0.
pub struct Boot {
    pub state: ClusterState,
    pub listeners: Vec<std::net::TcpListener>,
    pub conf: ConfFile,
    pub topology: Arc<Topology>,
}

enum LinkSlot {
    Connecting,
    Up(Link),
}

/// Message kinds as `CLUSTER INFO` names them, in Valkey's type order.
pub const MESSAGE_KINDS: [&str; 10] = [
    "ping",
    "pong",
    "meet",
    "fail",
    "publish",
    "auth-req",
    "auth-ack",
    "update",
    "mfstart",
    "publishshard",
];

fn kind_index(body: &Body) -> usize {
    match body {
        Body::Ping { .. } => 0,
        Body::Pong { .. } => 1,
        Body::Meet { .. } => 2,
        Body::Fail { .. } => 3,
        Body::Publish { sharded: false, .. } => 4,
        Body::AuthRequest { .. } => 5,
        Body::AuthAck { .. } => 6,
        Body::Update { .. } => 7,
        Body::MfStart => 8,
        Body::Publish { sharded: true, .. } => 9,
    }
}

/// Bus messages sent and received, per kind (`CLUSTER INFO`).
#[derive(Debug, Default, Clone, Copy)]
pub struct MessageStats {
    pub sent: [u64; 10],
    pub received: [u64; 10],
}

/// What of the configuration must survive a power loss before it is acted on: the epochs and
/// the vote, and every node's configEpoch and role (so what slots a claim wins or loses by
/// is never forgotten). Valkey fsyncs for the same changes and not for admin edits of slot
/// states.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Durable {
    current_epoch: u64,
    last_vote_epoch: u64,
    nodes: Vec<(NodeId, u64, Option<NodeId>)>,
}

impl Durable {
    fn of(p: &PersistedConfig) -> Durable {
        Durable {
            current_epoch: p.current_epoch,
            last_vote_epoch: p.last_vote_epoch,
            nodes: p
                .nodes
                .iter()
                .map(|n| (n.id, n.config_epoch, n.primary))
                .collect(),
        }
    }
}

/// One bus link as `CLUSTER LINKS` shows it.
#[derive(Debug, Clone)]
pub struct LinkReport {
    pub node: String,
    pub outbound: bool,
    pub created_ms: u64,
    pub queued_bytes: usize,
}

/// The driver of shard 0 (see the module docs).
pub struct Driver {
    shard: Weak<Shard>,
    state: RefCell<ClusterState>,
    links: RefCell<HashMap<LinkId, LinkSlot>>,
    conf: ConfFile,
    stats: Cell<MessageStats>,
    /// The settings last given to the state machine (cluster directives, port,
    /// `min-replicas-ack`), to notice CONFIG SET.
    applied: RefCell<(Settings, u16, usize)>,
    /// Scratch buffer for encoding.
    encode_buf: RefCell<Vec<u8>>,
    /// What the last fsynced `nodes.conf` held of what must survive a power loss.
    synced: RefCell<Option<Durable>>,
    /// The accept loops' canceller, kept so their handles stay valid (never cancelled: the
    /// listeners live as long as the process).
    accept_cancel: monoio::io::Canceller,
    /// When the ticker wakes next (bus clock), and its waker while it sleeps: an input that
    /// brings a state deadline before then wakes it early (see [`Driver::rearm`]).
    wake_at: Cell<u64>,
    ticker_waker: Cell<Option<std::task::Waker>>,
    rearmed: Cell<bool>,
    /// Bumped by every write pause and resume, so a quiesce task that finishes after its
    /// pause ended reports nothing.
    pause_generation: Cell<u64>,
}

impl Driver {
    /// Starts the accept loops and the ticker on the current shard (shard 0).
    pub fn start(shard: &Rc<Shard>, boot: Boot) -> Rc<Driver> {
        let config = shard.config();
        // `boot` fsynced the file it loaded or created.
        let synced = Durable::of(&boot.state.persisted());
        // A replica restarted with a vote on record starts with its acknowledgements held; no
        // stream runs before the first topology is published, so this comes first.
        if boot.state.acks_held() {
            crate::repl::hold_acks(shard);
            tracing::info!("cluster: holding replication acknowledgements after a restart with a vote on record");
        }
        let d = Rc::new(Driver {
            shard: Rc::downgrade(shard),
            state: RefCell::new(boot.state),
            links: RefCell::new(HashMap::new()),
            conf: boot.conf,
            stats: Cell::new(MessageStats::default()),
            applied: RefCell::new((
                config.cluster.clone(),
                config.port,
                config.repl.min_replicas_ack,
            )),
            encode_buf: RefCell::new(Vec::with_capacity(4096)),
            synced: RefCell::new(Some(synced)),
            accept_cancel: monoio::io::Canceller::new(),
            wake_at: Cell::new(u64::MAX),
            ticker_waker: Cell::new(None),
            rearmed: Cell::new(false),
            pause_generation: Cell::new(0),
        });
        for l in boot.listeners {
            let d2 = d.clone();
            let handle = d.accept_cancel.handle();
            monoio::spawn(async move {
                crate::net::accept_loop(l, handle, move |stream, peer, local, _fd| {
                    d2.on_accept(stream, peer, local)
                })
                .await;
            });
        }
        let d2 = d.clone();
        monoio::spawn(async move { d2.ticker().await });
        d
    }

    fn now(&self) -> u64 {
        self.shard.upgrade().map_or(0, |s| bus_now_ms(&s.node))
    }

    /// Sends [`Input::Tick`] every [`TICK_INTERVAL_MS`] and, in between, [`Input::Timer`] at
    /// the state's next deadline (a PFAIL or an election start), so failure detection and
    /// elections are not rounded up to the next tick.
    async fn ticker(self: Rc<Self>) {
        let mut next_tick = self.now() + TICK_INTERVAL_MS;
        loop {
            let now = self.now();
            let deadline = self.state.borrow().next_deadline_ms(now);
            let wake_at = deadline.map_or(next_tick, |d| d.min(next_tick));
            self.wake_at.set(wake_at);
            self.rearmed.set(false);
            let sleep = monoio::time::sleep(Duration::from_millis(wake_at.saturating_sub(now)));
            let rearmed = std::future::poll_fn(|cx| {
                if self.rearmed.replace(false) {
                    std::task::Poll::Ready(())
                } else {
                    self.ticker_waker.set(Some(cx.waker().clone()));
                    std::task::Poll::Pending
                }
            });
            let mut woken_early = false;
            monoio::select! {
                _ = sleep => {}
                _ = rearmed => { woken_early = true; }
            }
            self.wake_at.set(u64::MAX);
            self.ticker_waker.set(None);
            let Some(shard) = self.shard.upgrade() else {
                return;
            };
            if shard.node.is_shutting_down() {
                return;
            }
            if woken_early {
                continue;
            }
            if self.now() < next_tick {
                drop(shard);
                self.input(Input::Timer);
                continue;
            }
            // Bounded catch-up: after a stall, tick once and count from now.
            next_tick = (next_tick + TICK_INTERVAL_MS).max(self.now() + 1);
            self.reconfigure(&shard);
            // Elections rank replicas by offset and refuse one whose data is too old.
            let repl = &shard.node.repl;
            let (offsets, contact) = (repl.election_offsets(), repl.last_contact_ms());
            self.state.borrow_mut().set_replication(&offsets, contact);
            drop(shard);
            self.input(Input::Tick);
        }
    }

    /// Gives the state machine settings changed by CONFIG SET.
    fn reconfigure(&self, shard: &Shard) {
        let config = shard.config();
        let mut applied = self.applied.borrow_mut();
        let sync_replicas = config.repl.min_replicas_ack;
        if applied.0 == config.cluster && applied.1 == config.port && applied.2 == sync_replicas {
            return;
        }
        *applied = (config.cluster.clone(), config.port, sync_replicas);
        // With no announced address the learnt one stays (see `ClusterState::reconfigure`).
        let cfg = config.cluster.bus_config(config.port, sync_replicas);
        self.state.borrow_mut().reconfigure(cfg);
    }

    /// Feeds one input to the state machine and carries out what it answers.
    pub fn input(self: &Rc<Self>, input: Input) {
        let now = self.now();
        let actions = self.state.borrow_mut().handle(now, input);
        self.carry_out(actions);
        self.rearm(now);
    }

    /// Runs a CLUSTER admin operation.
    pub fn admin(self: &Rc<Self>, op: AdminOp) -> Result<AdminOk, AdminError> {
        let now = self.now();
        let result = self.state.borrow_mut().admin(now, op);
        let (ok, actions) = result?;
        self.carry_out(actions);
        self.rearm(now);
        Ok(ok)
    }

    /// Wakes the ticker if the state now has a deadline before the ticker's next wake-up.
    fn rearm(&self, now: u64) {
        let Some(deadline) = self.state.borrow().next_deadline_ms(now) else {
            return;
        };
        if deadline < self.wake_at.get() {
            self.wake_at.set(deadline);
            self.rearmed.set(true);
            if let Some(w) = self.ticker_waker.take() {
                w.wake();
            }
        }
    }

    /// A PUBLISH or SPUBLISH made on this node, for the other nodes of the cluster (or of the
    /// shard) to deliver to their subscribers.
    pub fn propagate_publish(self: &Rc<Self>, sharded: bool, channel: &[u8], message: &[u8]) {
        let now = self.now();
        let actions = self
            .state
            .borrow_mut()
            .publish(now, sharded, channel, message);
        self.carry_out(actions);
    }

    /// CLUSTER SAVECONFIG: writes and fsyncs `nodes.conf` now.
    pub fn save_config(&self) -> std::io::Result<()> {
        self.persist(true)
    }

    /// Writes `nodes.conf`, with an fsync when `force` or when what must survive a power loss
    /// changed (see the module docs).
    fn persist(&self, force: bool) -> std::io::Result<()> {
        let (text, durable) = {
            let p = self.state.borrow().persisted();
            (p.render(), Durable::of(&p))
        };
        let sync = force || self.synced.borrow().as_ref() != Some(&durable);
        self.conf.write(&text, sync)?;
        if sync {
            *self.synced.borrow_mut() = Some(durable);
        }
        Ok(())
    }

    /// A fresh snapshot (ping and pong times included) for the informational commands.
    pub fn topology(&self) -> Topology {
        self.state.borrow().topology()
    }

    /// Message counters.
    pub fn stats(&self) -> MessageStats {
        self.stats.get()
    }

    /// Valid failure reports about `id` (`None`: unknown node).
    pub fn failure_reports(&self, id: &NodeId) -> Option<usize> {
        let now = self.now();
        self.state.borrow().failure_report_count(now, id)
    }

    /// Whether `id` was forgotten within the ban period (FORGET answers OK for it).
    pub fn is_banned(&self, id: &NodeId) -> bool {
        let now = self.now();
        self.state.borrow().is_banned(now, id)
    }

    /// The links `CLUSTER LINKS` lists: for each other node, its outbound then inbound link.
    pub fn links(&self) -> Vec<LinkReport> {
        let state = self.state.borrow();
        let links = self.links.borrow();
        let queued = |l: LinkId| match links.get(&l) {
            Some(LinkSlot::Up(link)) => link.queued_bytes(),
            _ => 0,
        };
        let mut out = Vec::new();
        for n in state.node_links() {
            for (stat, outbound) in [(n.outbound, true), (n.inbound, false)] {
                if let Some(s) = stat {
                    out.push(LinkReport {
                        node: n.node.to_hex(),
                        outbound,
                        created_ms: s.created_ms,
                        queued_bytes: queued(s.link),
                    });
                }
            }
        }
        out
    }

    fn carry_out(self: &Rc<Self>, actions: Vec<Action>) {
        let mut resume = false;
        for action in actions {
            match action {
                Action::Persist => {
                    if let Err(e) = self.persist(false) {
                        tracing::error!(
                            path = %self.conf.path().display(),
                            error = %e,
                            "Fatal: can't update cluster config file"
                        );
                        std::process::exit(1);
                    }
                }
                Action::Connect { link, ip, bus_port } => self.connect(link, ip, bus_port),
                Action::Send { link, msg } => {
                    let links = self.links.borrow();
                    if let Some(LinkSlot::Up(l)) = links.get(&link) {
                        let mut buf = self.encode_buf.borrow_mut();
                        buf.clear();
                        wire::encode(&msg, &mut buf);
                        l.send(&buf);
                        let mut stats = self.stats.get();
                        stats.sent[kind_index(&msg.body)] += 1;
                        self.stats.set(stats);
                    }
                }
                Action::CloseLink(link) => {
                    if let Some(LinkSlot::Up(l)) = self.links.borrow_mut().remove(&link) {
                        l.close();
                    }
                }
                Action::TopologyChanged => self.publish(),
                Action::PauseWrites { until_ms } => self.pause_writes(until_ms),
                Action::ResumeWrites => resume = true,
                Action::HoldAcks => self.hold_acks(),
                Action::ResumeAcks => {
                    if let Some(shard) = self.shard.upgrade() {
                        crate::repl::resume_acks(&shard);
                    }
                }
                Action::Deliver {
                    sharded,
                    channel,
                    message,
                } => self.deliver(sharded, channel, message),
                Action::CatchUp { from } => self.catch_up(from),
                Action::Log(event) => tracing::info!("cluster: {event}"),
            }
        }
        if resume {
            self.resume_writes();
        }
    }

    /// Manual failover, primary side: holds client writes, and once the writes admitted
    /// before have run and been sealed, tells the state machine the final offset.
    fn pause_writes(self: &Rc<Self>, until_ms: u64) {
        let Some(shard) = self.shard.upgrade() else {
            return;
        };
        let generation = self.pause_generation.get() + 1;
        self.pause_generation.set(generation);
        super::pause::pause(&shard.node, until_ms);
        let d = self.clone();
        monoio::spawn(async move {
            let offset = super::pause::quiesce(&shard).await;
            if d.pause_generation.get() != generation || !super::pause::paused(&shard.node) {
                return;
            }
            tracing::info!(offset, "manual failover: client writes paused");
            let now = d.now();
            let actions = d.state.borrow_mut().writes_paused(now, offset);
            d.carry_out(actions);
        });
    }

    fn resume_writes(&self) {
        self.pause_generation.set(self.pause_generation.get() + 1);
        if let Some(shard) = self.shard.upgrade() {
            super::pause::resume(&shard);
            tracing::info!("manual failover: client writes resumed");
        }
    }

    /// Holds the replication acknowledgements, then tells the state machine what votes must
    /// compare: at least everything acknowledged (the gate is taken by every acknowledgement,
    /// so none recorded after this can be missing).
    fn hold_acks(&self) {
        let Some(shard) = self.shard.upgrade() else {
            return;
        };
        let offsets = crate::repl::hold_acks(&shard);
        let contact = shard.node.repl.last_contact_ms();
        self.state.borrow_mut().set_replication(&offsets, contact);
    }

    /// Fetches the listed streams from a sibling replica while our primary is unreachable,
    /// or stops (`None`); the tick feeds the offsets it brings to the state machine.
    fn catch_up(&self, from: Option<CatchUpSource>) {
        let Some(shard) = self.shard.upgrade() else {
            return;
        };
        let from = from.map(|f| crate::repl::CatchUpFrom {
            node: f.node.to_hex(),
            ip: f.ip,
            port: f.port,
            streams: f.streams,
        });
        crate::repl::catch_up(&shard, from);
    }

    /// A message published on another node: every shard delivers it to its subscribers.
    fn deliver(&self, sharded: bool, channel: Vec<u8>, message: Vec<u8>) {
        let Some(shard) = self.shard.upgrade() else {
            return;
        };
        let kind = if sharded {
            crate::pubsub::Kind::Shard
        } else {
            crate::pubsub::Kind::Channel
        };
        let msg = Arc::new((channel, message));
        for t in (0..shard.shards()).filter(|&t| t != shard.id) {
            let msg = msg.clone();
            shard.post(
                t,
                Box::new(move |s| {
                    s.pubsub.borrow().publish(kind, &msg.0, &msg.1);
                }),
            );
        }
        shard.pubsub.borrow().publish(kind, &msg.0, &msg.1);
    }

    /// Builds one snapshot and gives it to every shard.
    fn publish(&self) {
        let Some(shard) = self.shard.upgrade() else {
            return;
        };
        let topology = Arc::new(self.state.borrow().topology());
        // The replication streams follow the topology: a replica streams from its primary
        // (CLUSTER REPLICATE, a failover elsewhere), a primary from nobody (promotion).
        let me = topology.me();
        let primary = me
            .flags
            .contains(corekey_bus::topology::NodeFlags::REPLICA)
            .then_some(me.primary.as_ref())
            .flatten()
            .and_then(|id| topology.nodes.iter().find(|n| &n.id == id))
            .map(|n| (n.ip.clone(), n.port));
        crate::repl::set_primary(&shard, primary);
        for t in 0..shard.shards() {
            if t == shard.id {
                shard.cluster.install(topology.clone());
            } else {
                let topology = topology.clone();
                shard.post(t, Box::new(move |s| s.cluster.install(topology)));
            }
        }
    }

    fn connect(self: &Rc<Self>, link: LinkId, ip: String, bus_port: u16) {
        self.links.borrow_mut().insert(link, LinkSlot::Connecting);
        let timeout = Duration::from_millis(self.state.borrow().config().node_timeout_ms.max(1000));
        let d = self.clone();
        monoio::spawn(async move {
            let result = match ip.parse::<IpAddr>() {
                Ok(addr) => link::connect(SocketAddr::new(addr, bus_port), timeout).await,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not an IP address",
                )),
            };
            let still_wanted = matches!(d.links.borrow().get(&link), Some(LinkSlot::Connecting));
            if !still_wanted {
                return; // closed while connecting: the state forgot it
            }
            match result {
                Ok(stream) => {
                    let l = d.start_link(link, stream);
                    d.links.borrow_mut().insert(link, LinkSlot::Up(l));
                    d.input(Input::LinkUp(link));
                }
                Err(e) => {
                    tracing::debug!(%ip, bus_port, error = %e, "cluster bus connect failed");
                    d.links.borrow_mut().remove(&link);
                    d.input(Input::LinkDown(link));
                }
            }
        });
    }

    fn on_accept(
        self: &Rc<Self>,
        stream: monoio::net::TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
    ) {
        let now = self.now();
        let accepted = self.state.borrow_mut().accept_link(
            now,
            &peer.ip().to_string(),
            &local.ip().to_string(),
        );
        let Some(link) = accepted else {
            tracing::warn!(%peer, "cluster bus: too many links, refusing a connection");
            return;
        };
        let l = self.start_link(link, stream);
        self.links.borrow_mut().insert(link, LinkSlot::Up(l));
    }

    fn start_link(self: &Rc<Self>, link: LinkId, stream: monoio::net::TcpStream) -> Link {
        let d = self.clone();
        link::start(
            stream,
            MAX_MESSAGE_BYTES,
            wire::frame_len,
            move |event| match event {
                LinkEvent::Frame(bytes) => match wire::decode(bytes) {
                    Ok(Some((msg, _))) => {
                        let mut stats = d.stats.get();
                        stats.received[kind_index(&msg.body)] += 1;
                        d.stats.set(stats);
                        d.input(Input::Message(link, Box::new(msg)));
                    }
                    Ok(None) | Err(_) => {
                        tracing::debug!(?link, "undecodable bus frame, closing the link");
                        if let Some(LinkSlot::Up(l)) = d.links.borrow().get(&link) {
                            l.close();
                        }
                    }
                },
                LinkEvent::Closed => {
                    let known = d.links.borrow_mut().remove(&link).is_some();
                    if known {
                        d.input(Input::LinkDown(link));
                    }
                }
            },
        )
    }
}
