//! The deterministic simulator: N bus state machines over a fake network, driven by one seeded
//! generator, with invariant checks after every step and at the end of a run.
//!
//! It owns nothing a real node uses; it is the test bench for `cluster`. Everything random
//! (message delays, link resets, partitions, crashes, clock skew, the state machines' own seeds)
//! comes from the run's seed, and events at the same instant run in the order they were
//! scheduled, so a seed replays exactly: `BUS_SIM_SEED=<seed> cargo test -p corekey-bus
//! sim_replay -- --nocapture` reruns one seed and prints its trace.
//!
//! # Fault model
//!
//! - Connections are FIFO (like TCP) unless a run enables reordering, which lets messages on
//!   one connection overtake each other (harsher than TCP; every message must stand alone).
//! - Each message takes 1–20 ms, sometimes up to 300 ms (a slow link).
//! - A message may reset its connection (both ends see the link go down; the message is lost).
//! - Partitions split the nodes in two sides; messages across are silently dropped and new
//!   connections across time out, as a cut cable does. Partitions heal after a while.
//! - Nodes crash (losing everything in memory, including queued messages) and restart from the
//!   last `nodes.conf` they persisted, parsed from its text. A crash may hit in the middle of an
//!   action batch, after the persist but before some sends, or before the persist itself.
//! - Each node's clock has its own offset and drifts up to ±2 % from real time.
//!
//! # Invariants
//!
//! After every step: a node's currentEpoch, lastVoteEpoch and own configEpoch never decrease
//! while it runs, nor across a restart below any value it has sent; no two nodes ever claim the
//! same slot as primaries with the same configEpoch; no epoch has two election winners. At the
//! end, after every fault is healed and every node is up: all nodes agree on the slot map, the
//! owners' configEpochs, roles, currentEpoch and who is FAIL (nobody); every slot has an owner
//! and it holds the greatest configEpoch ever claimed for that slot ("last failover wins");
//! every node is `cluster_state:ok`. Runs that then kill one node for good also check that the
//! others agree it is failed and that its slots moved to one of its replicas when one can win.
//!
//! [`scenario`] scripts single failovers on top of this (crash, partition, flapping links, two
//! failures at once) and adds promotion-time bounds, sync mode's "no acknowledged write lost"
//! and one live primary per slot after heal; its seeds replay with `BUS_SIM_SEED=<seed>
//! BUS_SIM_SCENARIO=<name> cargo test -p corekey-bus scenario_replay -- --nocapture`.

mod check;
pub mod scenario;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;

use crate::cluster::{Action, AdminOp, ClusterConfig, ClusterState, Event, Input, LinkId};
use crate::config::PersistedConfig;
use crate::rng::Rng;
use crate::slot::{Slot, SLOT_COUNT};
use crate::topology::NodeId;
use crate::wire;

pub use check::Checker;

/// Deliberately broken rules, to prove the invariants catch real bugs. Thread-local, so tests
/// running in parallel do not see each other's switches.
pub mod broken_rules {
    use std::cell::Cell;

    thread_local! {
        static IGNORE_EPOCHS: Cell<bool> = const { Cell::new(false) };
        static NO_YIELD: Cell<bool> = const { Cell::new(false) };
        static RANK_IGNORES_OFFSETS: Cell<bool> = const { Cell::new(false) };
        static NO_ACK_HOLD: Cell<bool> = const { Cell::new(false) };
        static SUM_OFFSETS: Cell<bool> = const { Cell::new(false) };
        static NO_STATEMENTS: Cell<bool> = const { Cell::new(false) };
        static NO_CATCH_UP: Cell<bool> = const { Cell::new(false) };
    }

    /// Whether slot claims win without comparing configEpochs (broken on purpose).
    pub fn ignore_epochs() -> bool {
        IGNORE_EPOCHS.with(|c| c.get())
    }

    /// Runs `f` with epoch comparison disabled in slot ownership.
    pub fn with_ignored_epochs<R>(f: impl FnOnce() -> R) -> R {
        with(&IGNORE_EPOCHS, f)
    }

    /// Whether election candidates never yield to a better-ranked sibling replica (broken on
    /// purpose: single-shard elections then split their votes and fail over only on retry).
    pub fn no_yield() -> bool {
        NO_YIELD.with(|c| c.get())
    }

    /// Runs `f` with yielding disabled in elections.
    pub fn with_no_yield<R>(f: impl FnOnce() -> R) -> R {
        with(&NO_YIELD, f)
    }

    /// Whether elections ignore replication offsets in ranks, yielding and votes (broken on
    /// purpose: the least up-to-date replica may then win, losing acknowledged writes).
    pub fn rank_ignores_offsets() -> bool {
        RANK_IGNORES_OFFSETS.with(|c| c.get())
    }

    /// Runs `f` with offsets left out of elections.
    pub fn with_rank_ignoring_offsets<R>(f: impl FnOnce() -> R) -> R {
        with(&RANK_IGNORES_OFFSETS, f)
    }

    /// Whether replicas never hold their acknowledgements while their primary may be replaced
    /// (broken on purpose: a voter then acknowledges writes after its vote that the winner
    /// lacks).
    pub fn no_ack_hold() -> bool {
        NO_ACK_HOLD.with(|c| c.get())
    }

    /// Runs `f` with the acknowledgement hold disabled.
    pub fn with_no_ack_hold<R>(f: impl FnOnce() -> R) -> R {
        with(&NO_ACK_HOLD, f)
    }

    /// Whether votes compare the sum of the stream offsets instead of each stream (broken on
    /// purpose: a sibling with the larger sum can lack one stream's acknowledged writes).
    pub fn sum_offsets() -> bool {
        SUM_OFFSETS.with(|c| c.get())
    }

    /// Runs `f` with votes comparing sums of offsets.
    pub fn with_sum_offsets<R>(f: impl FnOnce() -> R) -> R {
        with(&SUM_OFFSETS, f)
    }

    /// Whether candidates win on votes alone, without their siblings' statements (broken on
    /// purpose: with several replicas per primary among three primaries, a sibling that did
    /// not vote may hold acknowledged writes the winner lacks).
    pub fn no_statements() -> bool {
        NO_STATEMENTS.with(|c| c.get())
    }

    /// Runs `f` without statements.
    pub fn with_no_statements<R>(f: impl FnOnce() -> R) -> R {
        with(&NO_STATEMENTS, f)
    }

    /// Whether replicas never fetch from a sibling (broken on purpose: with crossing streams no
    /// candidate can then win, so the shard stays down).
    pub fn no_catch_up() -> bool {
        NO_CATCH_UP.with(|c| c.get())
    }

    /// Runs `f` without catch-up.
    pub fn with_no_catch_up<R>(f: impl FnOnce() -> R) -> R {
        with(&NO_CATCH_UP, f)
    }

    fn with<R>(flag: &'static std::thread::LocalKey<Cell<bool>>, f: impl FnOnce() -> R) -> R {
        flag.with(|c| c.set(true));
        let out = f();
        flag.with(|c| c.set(false));
        out
    }
}

/// Which faults a run injects.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Split the nodes in two sides now and then.
    pub partitions: bool,
    /// Crash and restart nodes.
    pub crashes: bool,
    /// Crash nodes in the middle of an action batch.
    pub mid_batch_crashes: bool,
    /// Per-mille chance that a message resets its connection.
    pub reset_per_mille: u32,
    /// Let messages on one connection overtake each other.
    pub reorder: bool,
    /// Clock offsets and drift.
    pub skew: bool,
    /// Crash node 0 (the first primary) when faults start, and restart it this much later.
    pub crash_first_primary_ms: Option<u64>,
}

impl Faults {
    /// No fault at all.
    pub fn none() -> Faults {
        Faults {
            partitions: false,
            crashes: false,
            mid_batch_crashes: false,
            reset_per_mille: 0,
            reorder: false,
            skew: false,
            crash_first_primary_ms: None,
        }
    }
}

/// Which node a run kills for good once the healed cluster has converged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillAtEnd {
    /// Nobody.
    Nobody,
    /// A random node whose loss the cluster can survive: a replica, or a primary with a replica.
    Random,
    /// The primary that serves slot 0 (it has a replica in the shapes that use this).
    PrimaryOfSlotZero,
}

/// The shape of one run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Replicas of each primary (its length is the number of primaries).
    pub replicas: Vec<usize>,
    /// `cluster-node-timeout`.
    pub node_timeout_ms: u64,
    /// How long faults are injected.
    pub fault_ms: u64,
    /// How long the healed cluster gets to converge.
    pub settle_ms: u64,
    /// After converging, kill one node for good and check the failover.
    pub kill_at_end: KillAtEnd,
    /// What goes wrong.
    pub faults: Faults,
    /// `ClusterConfig::small_cluster_voting` on every node (off: Valkey's primaries-only votes).
    pub small_cluster_voting: bool,
    /// Sync mode (`min-replicas-ack N`) in the replication model: 0 is off (replicas copy
    /// their primary's offset exactly, as before); N > 0 makes replicas lag by a random amount
    /// and counts a primary's write as acknowledged once N of its replicas acknowledged it, and
    /// every election win is checked against it (see `feed_replication`).
    pub sync_replicas: usize,
    /// Replication streams per primary (cores per node): each grows, lags and is acknowledged
    /// on its own, and elections compare them stream by stream.
    pub streams: usize,
    /// The driver's election delays scaled with the node timeout (`node/src/cluster`), instead
    /// of Valkey's fixed ones.
    pub scaled_election_delays: bool,
}

impl SimConfig {
    /// A random shape: one to three primaries, three to six nodes, a random mix of faults.
    pub fn random(rng: &mut Rng) -> SimConfig {
        let replicas = match rng.below(6) {
            0 | 1 => vec![2],   // single shard: the case Valkey cannot fail over
            2 => vec![1, 1],    // two shards
            3 => vec![1, 1, 1], // three primaries, one replica each
            4 => vec![0, 1, 0], // three primaries, one replica
            _ => vec![1, 0],    // two primaries, one replica
        };
        SimConfig {
            replicas,
            node_timeout_ms: 500,
            fault_ms: 4000 + rng.below(4000),
            settle_ms: 9000,
            kill_at_end: if rng.chance(300) {
                KillAtEnd::Random
            } else {
                KillAtEnd::Nobody
            },
            faults: Faults {
                partitions: rng.chance(600),
                crashes: rng.chance(700),
                mid_batch_crashes: rng.chance(400),
                reset_per_mille: if rng.chance(400) {
                    1 + rng.below(8) as u32
                } else {
                    0
                },
                reorder: rng.chance(200),
                skew: rng.chance(600),
                crash_first_primary_ms: rng.chance(150).then(|| 1000 + rng.below(3000)),
            },
            small_cluster_voting: true,
            sync_replicas: 0,
            streams: 1 + rng.below(2) as usize,
            scaled_election_delays: false,
        }
    }

    fn node_count(&self) -> usize {
        self.replicas.len() + self.replicas.iter().sum::<usize>()
    }
}

#[derive(Debug)]
enum Ev {
    Tick(usize),
    /// The node's next deadline (`ClusterState::next_deadline_ms`), as the driver's timer.
    Timer(usize),
    ConnectArrive {
        from: usize,
        link: LinkId,
        to: usize,
    },
    LinkUp(usize, LinkId),
    LinkDown(usize, LinkId),
    Deliver {
        to: usize,
        link: LinkId,
        bytes: Vec<u8>,
    },
    Restart(usize),
    Fault,
    /// A primary's write pause (`Action::PauseWrites`) is in effect: report it with
    /// `ClusterState::writes_paused`, as the node's driver does once writes have quiesced.
    WritesPaused(usize),
}

struct SimNode {
    ip: String,
    cfg: ClusterConfig,
    state: Option<ClusterState>,
    /// The last persisted `nodes.conf` text.
    disk: Option<String>,
    /// Bumped at every crash and restart; events for an older generation are dropped.
    generation: u64,
    clock_offset_ms: u64,
    drift_ppm: i64,
    /// Per stream of the primary it follows (or its own, as a primary).
    repl_offset: Vec<u64>,
    last_primary_contact_ms: u64,
    /// Simulated time of the pending `Ev::Timer`, if one is scheduled.
    timer_at: Option<u64>,
    /// The driver's acknowledgement gate: held between `HoldAcks` and `ResumeAcks`.
    acks_held: bool,
    /// The offsets this node last acknowledged, and to which primary (by index).
    acked: (Option<usize>, Vec<u64>),
    /// The sibling this node fetches from (`Action::CatchUp`), by index, and the streams.
    catch_up: Option<(usize, Vec<usize>)>,
    /// A primary's client writes are paused until this local time (`Action::PauseWrites`).
    paused_until: Option<u64>,
}

/// A simulated cluster.
pub struct Sim {
    seed: u64,
    cfg: SimConfig,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: BTreeMap<u64, (u64, Ev)>,
    nodes: Vec<SimNode>,
    ids: Vec<NodeId>,
    /// (node, link) → (peer node, peer link).
    conns: BTreeMap<(usize, LinkId), (usize, LinkId)>,
    /// Last scheduled delivery per sending end (for FIFO links).
    last_delivery: BTreeMap<(usize, LinkId), u64>,
    /// Partition side of each node; all equal when healed.
    side: Vec<u8>,
    faults_on: bool,
    /// The node killed for good at the end, if any.
    dead_for_good: Option<usize>,
    checker: Checker,
    trace: Option<String>,
    /// Sync mode: per node and stream, the greatest offset acknowledged to clients while it
    /// was a primary (carried over to the replica that replaces it).
    acked: Vec<Vec<u64>>,
    /// Sync mode: per primary replaced by an election it has not heard of yet, the offsets the
    /// winner held; acknowledging more on a stream after that is a lost write too.
    deposed: Vec<Option<Vec<u64>>>,
    /// Per node, the primary (by index) it replicated at its last tick.
    follows: Vec<Option<usize>>,
    /// Every election win: (sim ms, winner, the primary it replaced when known).
    pub promotions: Vec<(u64, usize, Option<usize>)>,
    /// Statistics for the report.
    pub stats: SimStats,
}

/// Counters from one run.
#[derive(Debug, Default, Clone)]
pub struct SimStats {
    /// Messages delivered.
    pub delivered: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Partitions injected.
    pub partitions: u64,
    /// Elections won.
    pub elections_won: u64,
}

const TRACE_LIMIT_BYTES: usize = 4 << 20;

impl Sim {
    /// A cluster of fresh nodes for `cfg`; nothing has run yet.
    pub fn new(seed: u64, cfg: SimConfig, trace: bool) -> Sim {
        let streams = cfg.streams.max(1);
        let mut rng = Rng::new(seed);
        let n = cfg.node_count();
        let mut nodes = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let ip = format!("127.0.0.{}", i + 1);
            let mut c = ClusterConfig::new(&ip, 7000);
            c.node_timeout_ms = cfg.node_timeout_ms;
            // Offsets are synthetic here; the data-age rule would only add noise.
            c.replica_validity_factor = 0;
            c.small_cluster_voting = cfg.small_cluster_voting;
            c.sync_replicas = cfg.sync_replicas;
            if cfg.scaled_election_delays {
                // The same formula as `node/src/cluster` (the bus cannot depend on the node).
                let t = cfg.node_timeout_ms;
                c.failover_fixed_delay_ms = (t / 40).clamp(50, 500);
                c.failover_random_delay_ms = (t / 40).clamp(50, 500);
                c.failover_rank_delay_ms = (t / 10).clamp(100, 1000);
            }
            let (offset, drift) = if cfg.faults.skew {
                (rng.below(5000), rng.below(40_001) as i64 - 20_000)
            } else {
                (0, 0)
            };
            let state = ClusterState::new(c.clone(), offset, rng.next_u64());
            ids.push(state.myself());
            nodes.push(SimNode {
                ip,
                cfg: c,
                state: Some(state),
                disk: None,
                generation: 0,
                clock_offset_ms: offset,
                drift_ppm: drift,
                repl_offset: vec![0; streams],
                last_primary_contact_ms: 0,
                timer_at: None,
                acks_held: false,
                acked: (None, vec![0; streams]),
                catch_up: None,
                paused_until: None,
            });
        }
        Sim {
            seed,
            checker: Checker::new(&ids),
            cfg,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            side: vec![0; n],
            nodes,
            ids,
            conns: BTreeMap::new(),
            last_delivery: BTreeMap::new(),
            faults_on: false,
            dead_for_good: None,
            trace: trace.then(String::new),
            acked: vec![vec![0; streams]; n],
            deposed: vec![None; n],
            follows: vec![None; n],
            promotions: Vec::new(),
            stats: SimStats::default(),
        }
    }

    /// The trace, when tracing was asked for.
    pub fn trace(&self) -> Option<&str> {
        self.trace.as_deref()
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = self.trace.as_mut() {
            if t.len() < TRACE_LIMIT_BYTES {
                let _ = writeln!(t, "{:>7} {}", self.now, line());
            }
        }
    }

    fn local_now(&self, i: usize) -> u64 {
        let n = &self.nodes[i];
        let drift = self.now as i64 * n.drift_ppm / 1_000_000;
        (self.now as i64 + drift) as u64 + n.clock_offset_ms
    }

    fn schedule(&mut self, delay_ms: u64, ev: Ev) {
        let generation = match &ev {
            Ev::Tick(i)
            | Ev::Timer(i)
            | Ev::WritesPaused(i)
            | Ev::LinkUp(i, _)
            | Ev::LinkDown(i, _)
            | Ev::Deliver { to: i, .. }
            | Ev::ConnectArrive { from: i, .. } => self.nodes[*i].generation,
            Ev::Restart(_) | Ev::Fault => 0,
        };
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay_ms, self.seq)));
        self.events.insert(self.seq, (generation, ev));
    }

    fn alive(&self, i: usize) -> bool {
        self.nodes[i].state.is_some()
    }

    fn partitioned(&self, a: usize, b: usize) -> bool {
        self.side[a] != self.side[b]
    }

    /// Builds the cluster the way `redis-cli --cluster create` does: distinct config epochs, slots
    /// split among the primaries, MEET, REPLICATE; then waits for everyone to agree.
    pub fn setup(&mut self) -> Result<(), String> {
        let primaries = self.cfg.replicas.len();
        for i in 0..self.nodes.len() {
            self.schedule(1 + i as u64 * 7, Ev::Tick(i));
        }
        let share = u32::from(SLOT_COUNT) / primaries as u32;
        for p in 0..primaries {
            let first = p as u32 * share;
            let last = if p + 1 == primaries {
                u32::from(SLOT_COUNT) - 1
            } else {
                first + share - 1
            };
            let range = (
                Slot::new(first as u16).expect("in range"),
                Slot::new(last as u16).expect("in range"),
            );
            self.admin(p, AdminOp::SetConfigEpoch(p as u64 + 1))?;
            self.admin(p, AdminOp::AddSlots(vec![range]))?;
        }
        for i in 1..self.nodes.len() {
            let ip = self.nodes[i].ip.clone();
            self.admin(
                0,
                AdminOp::Meet {
                    ip,
                    port: 7000,
                    bus_port: 17000,
                },
            )?;
        }
        let n = self.nodes.len();
        self.run_until_cond(self.now + 20_000, |s| {
            (0..n).all(|i| s.state(i).node_ids().count() == n && s.knows_all(i))
        })
        .map_err(|e| format!("setup: nodes did not all meet: {e}"))?;
        let mut next = primaries;
        for p in 0..primaries {
            for _ in 0..self.cfg.replicas[p] {
                let id = self.ids[p];
                self.admin(next, AdminOp::Replicate(id))?;
                next += 1;
            }
        }
        self.run_until_cond(self.now + 20_000, |s| s.converged().is_ok())
            .map_err(|e| format!("setup did not converge: {e}"))?;
        Ok(())
    }

    fn knows_all(&self, i: usize) -> bool {
        let st = self.state(i);
        self.ids.iter().all(|id| {
            st.node_flags(id)
                .is_some_and(|f| !f.contains(crate::topology::NodeFlags::HANDSHAKE))
        })
    }

    fn state(&self, i: usize) -> &ClusterState {
        self.nodes[i].state.as_ref().expect("node is alive")
    }

    /// Whether node `i`'s client writes are paused now (a manual failover's primary side).
    fn writes_paused(&self, i: usize) -> bool {
        self.nodes[i]
            .paused_until
            .is_some_and(|until| self.local_now(i) < until)
    }

    pub(super) fn admin(&mut self, i: usize, op: AdminOp) -> Result<(), String> {
        let now = self.local_now(i);
        let st = self.nodes[i].state.as_mut().ok_or("admin on a dead node")?;
        let (_, actions) = st
            .admin(now, op.clone())
            .map_err(|e| format!("admin {op:?} on node {i}: {e}"))?;
        self.execute(i, actions)
    }

    /// Full run: setup, faults, heal, converge, and optionally one permanent death.
    pub fn run(&mut self) -> Result<(), String> {
        self.setup()?;
        self.faults_on = true;
        self.schedule(100, Ev::Fault);
        if let Some(down_ms) = self.cfg.faults.crash_first_primary_ms {
            self.crash(0);
            self.schedule(down_ms, Ev::Restart(0));
        }
        let fault_end = self.now + self.cfg.fault_ms;
        self.run_until_cond(fault_end, |_| false)?;
        self.faults_on = false;
        self.heal_all();
        let settle_end = self.now + self.cfg.settle_ms;
        self.run_until_cond(settle_end, |s| s.converged().is_ok())?;
        self.converged().map_err(|e| {
            format!(
                "no convergence {} ms after healing: {e}",
                self.cfg.settle_ms
            )
        })?;
        if let Some(victim) = self.pick_victim() {
            self.note(|| format!("killing node {victim} for good"));
            self.crash(victim);
            self.dead_for_good = Some(victim);
            let end = self.now + self.cfg.settle_ms;
            self.run_until_cond(end, |s| s.converged().is_ok())?;
            self.converged()
                .map_err(|e| format!("no convergence after killing node {victim} for good: {e}"))?;
        }
        Ok(())
    }

    fn pick_victim(&mut self) -> Option<usize> {
        let view = self.state(0);
        let index = |id: &NodeId| self.ids.iter().position(|x| x == id);
        match self.cfg.kill_at_end {
            KillAtEnd::Nobody => None,
            KillAtEnd::PrimaryOfSlotZero => view.slot_owner(Slot::new(0)?).and_then(|o| index(&o)),
            KillAtEnd::Random => {
                let t = view.topology();
                let survivable: Vec<usize> = t
                    .nodes
                    .iter()
                    .filter(|n| {
                        n.primary.is_some() || t.nodes.iter().any(|r| r.primary == Some(n.id))
                    })
                    .filter_map(|n| index(&n.id))
                    .collect();
                if survivable.is_empty() {
                    return None;
                }
                let k = self.rng.below(survivable.len() as u64) as usize;
                Some(survivable[k])
            }
        }
    }

    fn heal_all(&mut self) {
        self.note(|| "heal: partitions removed, crashed nodes restarting".into());
        self.side.iter_mut().for_each(|s| *s = 0);
        for i in 0..self.nodes.len() {
            if !self.alive(i) {
                let d = 1 + self.rng.below(50);
                self.schedule(d, Ev::Restart(i));
            }
        }
    }

    /// Processes events until `deadline` or until `done` holds (checked after each event).
    pub fn run_until_cond(
        &mut self,
        deadline: u64,
        done: impl Fn(&Sim) -> bool,
    ) -> Result<(), String> {
        // The condition can be costly (a full slot-map comparison): look at most every 50 ms.
        let mut next_check = self.now;
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > deadline {
                break;
            }
            self.queue.pop();
            self.now = at;
            let (generation, ev) = self.events.remove(&seq).expect("queued event");
            self.step(generation, ev)?;
            if self.now >= next_check {
                next_check = self.now + 50;
                if done(self) {
                    return Ok(());
                }
            }
        }
        self.now = self.now.max(deadline);
        Ok(())
    }

    fn step(&mut self, generation: u64, ev: Ev) -> Result<(), String> {
        let stale = |s: &Sim, i: usize| !s.alive(i) || s.nodes[i].generation != generation;
        match ev {
            Ev::Tick(i) => {
                if stale(self, i) {
                    return Ok(());
                }
                self.schedule(100, Ev::Tick(i));
                self.feed_replication(i)?;
                let now = self.local_now(i);
                let actions = self.nodes[i]
                    .state
                    .as_mut()
                    .expect("alive")
                    .handle(now, Input::Tick);
                self.execute(i, actions)?;
            }
            Ev::WritesPaused(i) => {
                if stale(self, i) || !self.writes_paused(i) {
                    return Ok(());
                }
                let now = self.local_now(i);
                let offset = self.nodes[i].repl_offset.iter().sum();
                let actions = self.nodes[i]
                    .state
                    .as_mut()
                    .expect("alive")
                    .writes_paused(now, offset);
                self.execute(i, actions)?;
            }
            Ev::Timer(i) => {
                if stale(self, i) {
                    return Ok(());
                }
                self.nodes[i].timer_at = None;
                self.input(i, Input::Timer)?;
            }
            Ev::ConnectArrive { from, link, to } => {
                if stale(self, from) {
                    return Ok(());
                }
                if !self.alive(to) {
                    self.schedule(1, Ev::LinkDown(from, link));
                } else if self.partitioned(from, to) {
                    let timeout = 200 + self.rng.below(800);
                    self.schedule(timeout, Ev::LinkDown(from, link));
                } else {
                    let now = self.local_now(to);
                    let (peer_ip, local_ip) =
                        (self.nodes[from].ip.clone(), self.nodes[to].ip.clone());
                    let Some(peer_link) = self.nodes[to]
                        .state
                        .as_mut()
                        .expect("alive")
                        .accept_link(now, &peer_ip, &local_ip)
                    else {
                        return Err(format!("node {to} refused a link: too many"));
                    };
                    self.conns.insert((from, link), (to, peer_link));
                    self.conns.insert((to, peer_link), (from, link));
                    let d = self.delay();
                    self.schedule(d, Ev::LinkUp(from, link));
                }
            }
            Ev::LinkUp(i, link) => {
                if stale(self, i) || !self.conns.contains_key(&(i, link)) {
                    return Ok(());
                }
                self.input(i, Input::LinkUp(link))?;
            }
            Ev::LinkDown(i, link) => {
                if stale(self, i) {
                    return Ok(());
                }
                self.input(i, Input::LinkDown(link))?;
            }
            Ev::Deliver { to, link, bytes } => {
                if stale(self, to) || !self.conns.contains_key(&(to, link)) {
                    return Ok(());
                }
                let (msg, used) = match wire::decode(&bytes) {
                    Ok(Some(m)) => m,
                    other => return Err(format!("our own frame did not decode: {other:?}")),
                };
                if used != bytes.len() {
                    return Err("our own frame left bytes over".into());
                }
                self.stats.delivered += 1;
                self.input(to, Input::Message(link, Box::new(msg)))?;
            }
            Ev::Restart(i) => {
                if self.alive(i) || Some(i) == self.dead_for_good {
                    return Ok(());
                }
                self.restart(i)?;
            }
            Ev::Fault => {
                if self.faults_on {
                    self.inject_fault();
                    self.schedule(100, Ev::Fault);
                }
            }
        }
        Ok(())
    }

    fn input(&mut self, i: usize, input: Input) -> Result<(), String> {
        let now = self.local_now(i);
        let actions = self.nodes[i]
            .state
            .as_mut()
            .expect("alive")
            .handle(now, input);
        self.execute(i, actions)
    }

    /// Carries out a batch in order, possibly crashing the node in the middle of it, then checks
    /// the per-step invariants.
    fn execute(&mut self, i: usize, actions: Vec<Action>) -> Result<(), String> {
        let crash_at = if self.faults_on
            && self.cfg.faults.mid_batch_crashes
            && matches!(actions.first(), Some(Action::Persist))
            && self.rng.chance(20)
        {
            Some(self.rng.below(actions.len() as u64 + 1) as usize)
        } else {
            None
        };
        for (k, action) in actions.into_iter().enumerate() {
            if crash_at == Some(k) {
                self.note(|| format!("node {i} crashes in the middle of a batch, at action {k}"));
                self.crash(i);
                return Ok(());
            }
            self.carry_out(i, action)?;
        }
        if let Some(st) = self.nodes[i].state.as_ref() {
            self.checker.after_step(i, st)?;
        }
        self.arm_timer(i);
        Ok(())
    }

    /// As the driver's ticker: an `Ev::Timer` at the node's next deadline when it comes
    /// before the next tick (and before a timer already pending).
    fn arm_timer(&mut self, i: usize) {
        let now = self.local_now(i);
        let Some(deadline) = self.nodes[i]
            .state
            .as_ref()
            .and_then(|st| st.next_deadline_ms(now))
        else {
            return;
        };
        let delay = deadline - now;
        if delay >= 100 {
            return;
        }
        let at = self.now + delay;
        if self.nodes[i]
            .timer_at
            .is_some_and(|t| t <= at && t >= self.now)
        {
            return;
        }
        self.nodes[i].timer_at = Some(at);
        self.schedule(delay, Ev::Timer(i));
    }

    fn carry_out(&mut self, i: usize, action: Action) -> Result<(), String> {
        match action {
            Action::Persist => {
                let st = self.nodes[i].state.as_ref().expect("alive");
                let persisted = st.persisted();
                let text = persisted.render();
                self.checker.on_persist(i, st)?;
                self.nodes[i].disk = Some(text);
            }
            Action::Connect { link, ip, .. } => {
                let Some(to) = self.nodes.iter().position(|n| n.ip == ip) else {
                    self.schedule(1, Ev::LinkDown(i, link));
                    return Ok(());
                };
                let d = self.delay();
                self.schedule(d, Ev::ConnectArrive { from: i, link, to });
            }
            Action::Send { link, msg } => {
                self.checker.on_send(i, &msg)?;
                let Some(&(to, peer_link)) = self.conns.get(&(i, link)) else {
                    return Ok(());
                };
                if self.partitioned(i, to) {
                    return Ok(());
                }
                if self.faults_on
                    && self.rng.below(1000) < u64::from(self.cfg.faults.reset_per_mille)
                {
                    self.note(|| format!("link {i}->{to} reset"));
                    self.reset_conn(i, link);
                    return Ok(());
                }
                self.note(|| format!("{i} -> {to} {}", msg.body.name()));
                let bytes = wire::encode_to_vec(&msg);
                let mut at = self.now + self.delay();
                if !self.cfg.faults.reorder {
                    let last = self.last_delivery.entry((i, link)).or_insert(0);
                    at = at.max(*last);
                    *last = at;
                }
                let delay = at - self.now;
                self.schedule(
                    delay,
                    Ev::Deliver {
                        to,
                        link: peer_link,
                        bytes,
                    },
                );
            }
            Action::CloseLink(link) => {
                if let Some((peer, peer_link)) = self.conns.remove(&(i, link)) {
                    self.conns.remove(&(peer, peer_link));
                    if !self.partitioned(i, peer) {
                        self.schedule(1, Ev::LinkDown(peer, peer_link));
                    }
                }
            }
            Action::TopologyChanged => {
                // Building a snapshot is the driver's job; do it sometimes to exercise it.
                if self.rng.chance(5) {
                    let t = self.nodes[i].state.as_ref().expect("alive").topology();
                    if t.me().id != self.ids[i] {
                        return Err("topology snapshot lost myself".into());
                    }
                }
            }
            Action::HoldAcks => self.nodes[i].acks_held = true,
            Action::ResumeAcks => self.nodes[i].acks_held = false,
            Action::CatchUp { from } => {
                self.nodes[i].catch_up = from.and_then(|c| {
                    let at = self.ids.iter().position(|id| *id == c.node)?;
                    Some((at, c.streams))
                });
            }
            Action::PauseWrites { until_ms } => {
                self.nodes[i].paused_until = Some(until_ms);
                // Writes already admitted finish first, as in the node.
                let d = 1 + self.rng.below(20);
                self.schedule(d, Ev::WritesPaused(i));
            }
            Action::ResumeWrites => self.nodes[i].paused_until = None,
            Action::Deliver { .. } => {}
            Action::Log(event) => {
                if let Event::ElectionWon { epoch } = &event {
                    self.stats.elections_won += 1;
                    self.checker.on_election_won(i, *epoch)?;
                    self.on_promotion(i)?;
                }
                if self.trace.is_some() {
                    let id = self.ids[i];
                    self.note(|| format!("node {i} ({id:?}): {event}"));
                }
            }
        }
        Ok(())
    }

    fn delay(&mut self) -> u64 {
        if self.faults_on && self.rng.chance(30) {
            20 + self.rng.below(280)
        } else {
            1 + self.rng.below(20)
        }
    }

    fn reset_conn(&mut self, i: usize, link: LinkId) {
        if let Some((peer, peer_link)) = self.conns.remove(&(i, link)) {
            self.conns.remove(&(peer, peer_link));
            self.schedule(1, Ev::LinkDown(peer, peer_link));
        }
        self.schedule(1, Ev::LinkDown(i, link));
    }

    fn crash(&mut self, i: usize) {
        self.note(|| format!("node {i} crashes"));
        self.stats.crashes += 1;
        self.nodes[i].state = None;
        self.nodes[i].generation += 1;
        self.nodes[i].timer_at = None;
        let ends: Vec<(usize, LinkId)> = self
            .conns
            .keys()
            .filter(|(n, _)| *n == i)
            .copied()
            .collect();
        for end in ends {
            if let Some((peer, peer_link)) = self.conns.remove(&end) {
                self.conns.remove(&(peer, peer_link));
                // The kernel resets the peer's connection, unless a partition eats the reset.
                if !self.partitioned(i, peer) {
                    self.schedule(1, Ev::LinkDown(peer, peer_link));
                }
            }
        }
        self.checker.on_crash(i);
    }

    fn restart(&mut self, i: usize) -> Result<(), String> {
        let text = self.nodes[i]
            .disk
            .clone()
            .ok_or_else(|| format!("node {i} restarts without a nodes.conf"))?;
        let persisted =
            PersistedConfig::parse(&text).map_err(|e| format!("node {i} nodes.conf: {e}"))?;
        if persisted.render() != text {
            return Err(format!("node {i}: nodes.conf does not round-trip"));
        }
        self.nodes[i].generation += 1;
        self.nodes[i].timer_at = None;
        let now = self.local_now(i);
        let seed = self.rng.next_u64();
        let state = ClusterState::restore(self.nodes[i].cfg.clone(), &persisted, now, seed)
            .map_err(|e| format!("node {i} restore: {e}"))?;
        self.checker.on_restart(i, &state)?;
        // A new process: its gate starts as the restored state says.
        self.nodes[i].acks_held = state.acks_held();
        self.nodes[i].catch_up = None;
        self.nodes[i].paused_until = None;
        self.nodes[i].state = Some(state);
        self.note(|| format!("node {i} restarts"));
        let d = 1 + self.rng.below(100);
        self.schedule(d, Ev::Tick(i));
        Ok(())
    }

    /// Replication stand-in, per stream (`SimConfig::streams`): primaries' offsets grow,
    /// replicas copy their primary's offsets while they can reach it. In sync mode
    /// (`SimConfig::sync_replicas` = N > 0) a replica that reaches its primary holds all but a
    /// random 0–200 bytes of each stream, independently (a stream ahead of the primary's, as
    /// an old primary rejoining has, full-syncs to the primary's offset), and acknowledges what
    /// it holds unless the bus told it to hold its acknowledgements (`Action::HoldAcks`, as the
    /// node's driver does); a primary's acknowledged offset on a stream is the N-th greatest
    /// offset acknowledged on it by the replicas that reach it. That is weaker than the node
    /// (where N replica nodes must each acknowledge every stream), so a rule safe here is safe
    /// there. A primary that acknowledges more than the replica that replaced it holds (before
    /// it learns it was replaced) loses a write. A replica that cannot reach its primary and
    /// was told to catch up (`Action::CatchUp`) copies the listed streams from that sibling
    /// when it reaches it, as the node's partial resync from the sibling's backlog does.
    fn feed_replication(&mut self, i: usize) -> Result<(), String> {
        let now = self.local_now(i);
        let sync = self.cfg.sync_replicas;
        let streams = self.nodes[i].repl_offset.len();
        let st = self.nodes[i].state.as_ref().expect("alive");
        if st.is_primary() {
            self.follows[i] = None;
            self.nodes[i].catch_up = None;
            if !self.writes_paused(i) {
                for o in self.nodes[i].repl_offset.iter_mut() {
                    *o += 100;
                }
            }
            if sync > 0 {
                let me = self.ids[i];
                let acking: Vec<usize> = (0..self.nodes.len())
                    .filter(|r| {
                        self.nodes[*r]
                            .state
                            .as_ref()
                            .is_some_and(|s| s.my_primary() == Some(me))
                            && !self.partitioned(i, *r)
                            && self.nodes[*r].acked.0 == Some(i)
                    })
                    .collect();
                for k in 0..streams {
                    let mut held: Vec<u64> = acking
                        .iter()
                        .map(|&r| {
                            let a = self.nodes[r].acked.1.get(k).copied().unwrap_or(0);
                            a.min(self.nodes[i].repl_offset[k])
                        })
                        .collect();
                    held.sort_unstable_by(|a, b| b.cmp(a));
                    if let Some(&acked) = held.get(sync - 1) {
                        self.acked[i][k] = self.acked[i][k].max(acked);
                    }
                    if let Some(limit) =
                        self.deposed[i].as_ref().filter(|l| self.acked[i][k] > l[k])
                    {
                        return Err(format!(
                            "acknowledged write lost: node {i} acknowledged up to {} on stream {k} after a replica holding {} replaced it",
                            self.acked[i][k], limit[k]
                        ));
                    }
                }
            }
        } else if let Some(p) = st.my_primary() {
            self.deposed[i] = None;
            if let Some(pi) = self.ids.iter().position(|id| *id == p) {
                self.follows[i] = Some(pi);
                if self.alive(pi) && !self.partitioned(i, pi) {
                    for k in 0..streams {
                        let po = self.nodes[pi].repl_offset.get(k).copied().unwrap_or(0);
                        let mine = self.nodes[i].repl_offset[k];
                        self.nodes[i].repl_offset[k] = if sync > 0 {
                            let lag = self.rng.below(3) * 100;
                            if mine > po {
                                po
                            } else {
                                mine.max(po.saturating_sub(lag))
                            }
                        } else {
                            mine.max(po)
                        };
                    }
                    let node = &mut self.nodes[i];
                    node.last_primary_contact_ms = now;
                    if !node.acks_held {
                        node.acked = (Some(pi), node.repl_offset.clone());
                    }
                } else if let Some((from, list)) = self.nodes[i].catch_up.clone() {
                    let same_primary = self.nodes[from]
                        .state
                        .as_ref()
                        .is_some_and(|s| s.my_primary() == Some(p));
                    if same_primary && !self.partitioned(i, from) {
                        for k in list.into_iter().filter(|k| *k < streams) {
                            let theirs = self.nodes[from].repl_offset[k];
                            let mine = &mut self.nodes[i].repl_offset[k];
                            *mine = (*mine).max(theirs);
                        }
                    }
                }
            }
        }
        let node = &mut self.nodes[i];
        let contact = (!node.state.as_ref().expect("alive").is_primary())
            .then_some(node.last_primary_contact_ms);
        let offsets = node.repl_offset.clone();
        node.state
            .as_mut()
            .expect("alive")
            .set_replication(&offsets, contact);
        Ok(())
    }

    /// An election win: remember it, and in sync mode check that the winner holds every write
    /// its old primary acknowledged; the acknowledged offset then carries over to the winner.
    fn on_promotion(&mut self, i: usize) -> Result<(), String> {
        let old = self.follows[i];
        self.promotions.push((self.now, i, old));
        if let Some(p) = old {
            let held = &self.nodes[i].repl_offset;
            if self.cfg.sync_replicas > 0 && !crate::cluster::covers(held, &self.acked[p]) {
                return Err(format!(
                    "acknowledged write lost: node {i} won the election with offsets {held:?}, but its primary {p} acknowledged up to {:?}",
                    self.acked[p]
                ));
            }
            self.acked[i] = self.acked[p].clone();
            self.deposed[p] = Some(held.clone());
        }
        Ok(())
    }

    fn inject_fault(&mut self) {
        let n = self.nodes.len();
        let f = self.cfg.faults.clone();
        if f.partitions && self.rng.chance(40) {
            if self.side.iter().all(|s| *s == 0) {
                for s in self.side.iter_mut() {
                    *s = 0;
                }
                let mut changed = false;
                for i in 0..n {
                    if self.rng.chance(500) {
                        self.side[i] = 1;
                        changed = true;
                    }
                }
                if changed {
                    self.stats.partitions += 1;
                    let side = self.side.clone();
                    self.note(|| format!("partition {side:?}"));
                }
            } else {
                self.side.iter_mut().for_each(|s| *s = 0);
                self.note(|| "partition healed".into());
            }
        }
        if f.crashes && self.rng.chance(25) {
            let down = (0..n).filter(|i| !self.alive(*i)).count();
            let i = self.rng.below(n as u64) as usize;
            if self.alive(i) && down < 2 {
                self.crash(i);
                let back = 300 + self.rng.below(3000);
                self.schedule(back, Ev::Restart(i));
            }
        }
    }

    /// Whether the live nodes agree (see the module docs); the reason when they do not.
    pub fn converged(&self) -> Result<(), String> {
        if let Some(down) =
            (0..self.nodes.len()).find(|i| !self.alive(*i) && Some(*i) != self.dead_for_good)
        {
            return Err(format!("node {down} is down"));
        }
        let live: Vec<usize> = (0..self.nodes.len()).filter(|i| self.alive(*i)).collect();
        let Some(&first) = live.first() else {
            return Err("no live node".into());
        };
        let a = self.state(first);
        for &i in &live {
            let b = self.state(i);
            if !b.cluster_ok() {
                return Err(format!("node {i} is not cluster_state:ok"));
            }
            if b.current_epoch() != a.current_epoch() {
                return Err(format!("node {i} has another currentEpoch"));
            }
            for id in &self.ids {
                let (fa, fb) = (a.node_flags(id), b.node_flags(id));
                let (Some(fa), Some(fb)) = (fa, fb) else {
                    return Err(format!("node {i} or {first} does not know {id:?}"));
                };
                use crate::topology::NodeFlags as F;
                let role = F::PRIMARY.union(F::REPLICA).union(F::FAIL);
                if (fa.bits() & role.bits()) != (fb.bits() & role.bits()) {
                    return Err(format!(
                        "nodes {first} and {i} disagree on {id:?}: {fa:?} vs {fb:?}"
                    ));
                }
                let dead = Some(*id) == self.dead_for_good.map(|d| self.ids[d]);
                if fb.contains(F::FAIL) != dead {
                    return Err(format!("node {i} sees {id:?} as {fb:?}"));
                }
            }
            if b.node_ids().count() != self.ids.len() {
                return Err(format!("node {i} knows extra nodes"));
            }
            let mut owners = std::collections::BTreeSet::new();
            for s in Slot::all() {
                let (oa, ob) = (a.slot_owner(s), b.slot_owner(s));
                if oa != ob {
                    return Err(format!(
                        "nodes {first} and {i} disagree on slot {}",
                        s.get()
                    ));
                }
                let Some(owner) = ob else {
                    return Err(format!("slot {} has no owner", s.get()));
                };
                owners.insert(owner);
            }
            let dead = self.dead_for_good.map(|d| self.ids[d]);
            if let Some(d) = dead.filter(|d| owners.contains(d)) {
                return Err(format!("slots are still served by the dead node {d:?}"));
            }
            for owner in owners {
                if a.node_config_epoch(&owner) != b.node_config_epoch(&owner) {
                    return Err(format!(
                        "nodes {first} and {i} disagree on {owner:?}'s configEpoch"
                    ));
                }
            }
        }
        self.checker.check_final(self, a)?;
        Ok(())
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// Runs one seed with a random configuration; `Err` carries a replay hint.
pub fn run_seed(seed: u64, trace: bool) -> (Result<(), String>, Sim) {
    let cfg = SimConfig::random(&mut Rng::new(seed ^ 0xC0FF_EE00));
    run_config(seed, cfg, trace)
}

/// Runs one seed with the given configuration.
pub fn run_config(seed: u64, cfg: SimConfig, trace: bool) -> (Result<(), String>, Sim) {
    let mut sim = Sim::new(seed, cfg, trace);
    let result = sim.run().map_err(|e| {
        format!(
            "seed {seed} failed at t={} ms: {e}\n  config: {:?}\n  replay: BUS_SIM_SEED={seed} cargo test -p corekey-bus sim_replay -- --nocapture",
            sim.now, sim.cfg
        )
    });
    (result, sim)
}
