//! Scripted failover scenarios (issue 7, point 6): the random runs in `Sim::run` mix every
//! fault, these aim one at a primary and then check that the cluster fails over, how fast, and
//! that nothing acknowledged is lost.
//!
//! Each scenario builds its cluster, lets replication run for a random 0.5–1.5 s, hits the
//! primary of slot 0 (and, for two failures, the primary of the last slot too) at `t0`, then
//! heals everything and waits for the cluster to converge. The per-step invariants of
//! `Checker` hold throughout (no two primaries claim a slot under one configEpoch, epochs never
//! go back while a node runs nor across a restart from its `nodes.conf`, one winner per
//! election epoch); on top of them:
//!
//! - **bounded promotion**: in the crash and partition scenarios, a replica of every victim
//!   wins an election within `Scenario::promotion_bound_ms` of `t0` (simulated time);
//! - **no acknowledged write lost**: every scenario runs in sync mode
//!   (`SimConfig::sync_replicas` = 1, replicas acknowledging as the node's driver does, holding
//!   their acknowledgements when the bus says so), every election winner must hold the greatest
//!   offset its old primary acknowledged, and the old primary must not acknowledge more than
//!   the winner held before it learns it was replaced. Flapping links are what needs the hold:
//!   a replica votes for its sibling, the cut to the primary heals for a moment, and without
//!   the hold it would catch up and acknowledge writes the sibling, which holds less, then
//!   wins without (`cluster::election`, "Sync mode");
//! - **one live primary per slot after heal**: the slot map converges (`Sim::converged`) and
//!   every slot's owner is alive, a primary in its own view, and holds the slot itself.
//!
//! # The single-shard quorum these runs exercise
//!
//! With one primary P and replicas R1, R2 the electorate is {P, R1, R2} (ReplicaSets mode,
//! `cluster::election`): failure reports and votes from any member count, the quorum is 2 of
//! 3, dead members included, and a candidate votes for itself. So when P dies or is cut off,
//! R1 and R2 agree it is FAIL and the first candidate wins with its own vote and the other
//! replica's; P alone on the minority side sees one member of three and stops serving. With
//! three or more primaries serving slots only primaries vote (Valkey's rule), so two failed
//! primaries need at least five of them: the two-failure scenario uses 5 × 1.
//!
//! Elections use the driver's delays scaled with the node timeout (`node/src/cluster`): with
//! the 500 ms timeout here, 50 ms fixed, up to 50 ms random, 100 ms per rank.

use super::{Ev, Faults, KillAtEnd, Sim, SimConfig};
use crate::cluster::{AdminOp, FailoverMode};
use crate::slot::Slot;

/// How long after a crash a replica must have won, in simulated ms. The node timeout (500 ms)
/// plus gossip of the FAIL, the scaled election delays and a vote round trip take about
/// 0.7–1.5 s; slow links (up to 300 ms a message) and clock drift account for the rest.
pub const PROMOTION_BOUND_MS: u64 = 2500;

/// Twice the election timeout (`max(2 × node timeout, 2 s)`): how long a replica whose
/// election failed waits before it tries again, as in Valkey.
const ELECTION_RETRY_MS: u64 = 4000;

/// The bound when the primary is only cut off: the same. In 3 × 1 a primary may still see the
/// old primary up when the vote request arrives (its FAIL has not reached it yet) and refuse;
/// the candidate asks again in the same epoch (`ClusterState::ask_again`) instead of waiting
/// `ELECTION_RETRY_MS` for the next election, which this bound once had to allow (seed 449).
pub const PARTITION_PROMOTION_BOUND_MS: u64 = PROMOTION_BOUND_MS;

/// The bound for two failures at once. Both replicas often ask for votes in the same epoch;
/// each live primary votes once per epoch, so with three voters left of five (quorum three)
/// neither wins, and each retries after `ELECTION_RETRY_MS`, as in Valkey. The bound allows
/// three such collisions.
pub const TWO_FAILURES_PROMOTION_BOUND_MS: u64 = PROMOTION_BOUND_MS + 3 * ELECTION_RETRY_MS;

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The primary of slot 0 crashes; it restarts 0.5–2.5 s after a replica replaced it (or
    /// the bound passed) and must rejoin as a replica.
    PrimaryCrash,
    /// The primary of slot 0 is cut off from every other node until a replica replaces it
    /// (or the bound passes), then 0–2.5 s more, then healed.
    PrimaryPartitioned,
    /// For 4 s the primary of slot 0 is cut off and rejoined every 50–400 ms, and 2 % of the
    /// messages reset their connection; a failover may or may not happen.
    FlappingLinks,
    /// The primaries of slot 0 and of the last slot (two shards of 5 × 1) crash at the same
    /// instant and restart 0.5–2.5 s after both were replaced (or the bound passed).
    TwoPrimariesCrash,
    /// A replica of slot 0's primary runs `CLUSTER FAILOVER` (default mode: the primary
    /// pauses its writes, the replica catches up, then wins an election with forced acks),
    /// with 2 % of the messages resetting their connection; the old primary must end as a
    /// replica and nothing it acknowledged may be lost.
    ManualFailover,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 5] = [
        Scenario::PrimaryCrash,
        Scenario::PrimaryPartitioned,
        Scenario::FlappingLinks,
        Scenario::TwoPrimariesCrash,
        Scenario::ManualFailover,
    ];

    /// Parses a name as `Debug` prints it (for `BUS_SIM_SCENARIO`).
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL
            .into_iter()
            .find(|s| format!("{s:?}").eq_ignore_ascii_case(name))
    }

    /// The promotion bound for this scenario.
    pub fn promotion_bound_ms(self) -> u64 {
        match self {
            Scenario::PrimaryCrash | Scenario::FlappingLinks | Scenario::ManualFailover => {
                PROMOTION_BOUND_MS
            }
            Scenario::PrimaryPartitioned => PARTITION_PROMOTION_BOUND_MS,
            Scenario::TwoPrimariesCrash => TWO_FAILURES_PROMOTION_BOUND_MS,
        }
    }

    /// Whether a replica of each victim must be promoted within `promotion_bound_ms`.
    fn must_promote(self) -> bool {
        self != Scenario::FlappingLinks
    }
}

/// The cluster a scenario runs on, by seed: a single shard (one primary, two replicas) when
/// `seed % 4` is 0 or 2, three primaries with one replica each when it is 1, three primaries
/// with two replicas each when it is 3 (the shape where a sibling that does not vote must
/// still state its offsets); five primaries with one replica each for two failures. Every
/// other group of four seeds runs two streams per primary (two cores per node), where each of
/// two replicas can be ahead of the other on a different stream.
pub fn scenario_config(scenario: Scenario, seed: u64) -> SimConfig {
    let replicas = match (scenario, seed % 4) {
        (Scenario::TwoPrimariesCrash, _) => vec![1; 5],
        (_, 0 | 2) => vec![2],
        (_, 1) => vec![1, 1, 1],
        _ => vec![2, 2, 2],
    };
    let streams = if (seed / 4).is_multiple_of(2) { 2 } else { 1 };
    SimConfig {
        replicas,
        node_timeout_ms: 500,
        fault_ms: 0,
        settle_ms: 9000,
        kill_at_end: KillAtEnd::Nobody,
        faults: Faults {
            skew: true,
            reset_per_mille: if matches!(
                scenario,
                Scenario::FlappingLinks | Scenario::ManualFailover
            ) {
                20
            } else {
                0
            },
            ..Faults::none()
        },
        small_cluster_voting: true,
        sync_replicas: 1,
        streams,
        scaled_election_delays: true,
    }
}

/// What a passing run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Per victim whose replica won, simulated ms from the failure to the win.
    pub promotion_ms: Vec<u64>,
}

/// Runs one seed of a scenario; `Err` carries the seed and the replay command.
pub fn run_scenario(seed: u64, scenario: Scenario, trace: bool) -> (Result<Outcome, String>, Sim) {
    let cfg = scenario_config(scenario, seed);
    let mut sim = Sim::new(seed, cfg, trace);
    let result = drive(&mut sim, scenario).map_err(|e| {
        format!(
            "seed {seed} of {scenario:?} failed at t={} ms: {e}\n  config: {:?}\n  replay: BUS_SIM_SEED={seed} BUS_SIM_SCENARIO={scenario:?} cargo test -p corekey-bus scenario_replay -- --nocapture",
            sim.now, sim.cfg
        )
    });
    (result, sim)
}

fn drive(sim: &mut Sim, scenario: Scenario) -> Result<Outcome, String> {
    sim.setup()?;
    sim.faults_on = true;
    let warm_up = 500 + sim.rng.below(1000);
    sim.run_until_cond(sim.now + warm_up, |_| false)?;

    let owner_of = |sim: &Sim, slot: u16| -> Result<usize, String> {
        let id = Slot::new(slot)
            .and_then(|s| sim.state(0).slot_owner(s))
            .ok_or("a slot has no owner before the failure")?;
        sim.index_of(&id).ok_or_else(|| "unknown owner".into())
    };
    let mut victims = vec![owner_of(sim, 0)?];
    if scenario == Scenario::TwoPrimariesCrash {
        victims.push(owner_of(sim, crate::SLOT_COUNT - 1)?);
    }
    let t0 = sim.now;
    sim.note(|| format!("scenario {scenario:?} hits {victims:?}"));
    match scenario {
        Scenario::PrimaryCrash | Scenario::TwoPrimariesCrash => {
            for &v in &victims {
                sim.crash(v);
            }
            // Back only once replaced (or after the bound), so a restart never hides a slow
            // failover; then long enough for the rejoin to be tested under faults.
            let bound = scenario.promotion_bound_ms();
            sim.run_until_cond(t0 + bound, |s| {
                victims.iter().all(|v| s.promoted_since(t0, *v).is_some())
            })?;
            let back = 500 + sim.rng.below(2000);
            for &v in &victims {
                sim.schedule(back, Ev::Restart(v));
            }
            sim.run_until_cond(sim.now + back + 500, |_| false)?;
        }
        Scenario::PrimaryPartitioned => {
            let v = victims[0];
            sim.side[v] = 1;
            // Healed only once replaced (or after the bound), then 0–2.5 s later.
            let bound = scenario.promotion_bound_ms();
            sim.run_until_cond(t0 + bound, |s| s.promoted_since(t0, v).is_some())?;
            let hold = sim.rng.below(2500);
            sim.run_until_cond(sim.now + hold, |_| false)?;
            sim.side[v] = 0;
            sim.note(|| "partition healed".into());
        }
        Scenario::ManualFailover => {
            let v = victims[0];
            let me = sim.ids[v];
            let replica = (0..sim.nodes.len())
                .find(|&r| sim.alive(r) && sim.state(r).my_primary() == Some(me))
                .ok_or("slot 0's primary has no replica")?;
            // Refused while the replica's link to its primary is down (a reset): an operator
            // tries again.
            let mut tries = 0;
            while let Err(e) = sim.admin(replica, AdminOp::Failover(FailoverMode::Default)) {
                tries += 1;
                if tries == 20 {
                    return Err(e);
                }
                sim.run_until_cond(sim.now + 50, |_| false)?;
            }
            let bound = scenario.promotion_bound_ms();
            sim.run_until_cond(t0 + bound, |s| s.promoted_since(t0, v).is_some())?;
            if let Some((_, winner, _)) = sim.promotions.iter().find(|(at, _, _)| *at >= t0) {
                if *winner != replica {
                    return Err(format!(
                        "node {replica} ran CLUSTER FAILOVER but node {winner} won"
                    ));
                }
            }
        }
        Scenario::FlappingLinks => {
            while sim.now < t0 + 4000 {
                let cut = sim.side[victims[0]] == 0;
                sim.side[victims[0]] = u8::from(cut);
                sim.note(|| format!("flap: node {} cut {cut}", victims[0]));
                let hold = 50 + sim.rng.below(350);
                sim.run_until_cond(sim.now + hold, |_| false)?;
            }
        }
    }

    let bound = scenario.promotion_bound_ms();
    let mut promotion_ms = Vec::new();
    for &v in &victims {
        let won = sim.promoted_since(t0, v);
        match won {
            Some(ms) if ms <= bound || !scenario.must_promote() => promotion_ms.push(ms),
            Some(ms) => {
                return Err(format!(
                    "node {v}'s replica was promoted after {ms} ms, over the bound of {bound} ms"
                ))
            }
            None if scenario.must_promote() => {
                return Err(format!(
                    "no replica of node {v} was promoted within {} ms",
                    sim.now - t0
                ))
            }
            None => {}
        }
    }

    sim.faults_on = false;
    sim.heal_all();
    let settle_end = sim.now + sim.cfg.settle_ms;
    sim.run_until_cond(settle_end, |s| s.converged().is_ok())?;
    sim.converged()
        .map_err(|e| format!("no convergence {} ms after healing: {e}", sim.cfg.settle_ms))?;
    sim.check_live_owners()?;
    Ok(Outcome { promotion_ms })
}

impl Sim {
    /// Simulated ms from `t0` to the first election a replica of `primary` won after `t0`.
    fn promoted_since(&self, t0: u64, primary: usize) -> Option<u64> {
        self.promotions
            .iter()
            .find(|(at, _, old)| *at >= t0 && *old == Some(primary))
            .map(|(at, _, _)| at - t0)
    }

    fn index_of(&self, id: &crate::topology::NodeId) -> Option<usize> {
        self.ids.iter().position(|x| x == id)
    }

    /// Every slot's owner (in the converged view, read from the first live node) is alive, a primary in its own view,
    /// and holds the slot itself: exactly one live primary per slot.
    pub(super) fn check_live_owners(&self) -> Result<(), String> {
        let first_live = (0..self.nodes.len())
            .find(|i| self.alive(*i))
            .ok_or("no live node")?;
        let view = self.state(first_live);
        for slot in Slot::all() {
            let owner = view
                .slot_owner(slot)
                .and_then(|id| self.index_of(&id))
                .ok_or_else(|| format!("slot {} has no known owner", slot.get()))?;
            let Some(st) = self.nodes[owner].state.as_ref() else {
                return Err(format!("slot {} is owned by dead node {owner}", slot.get()));
            };
            if !st.is_primary() || !st.my_slots().contains(slot) {
                return Err(format!(
                    "slot {}: node {owner} is its owner for the others but not in its own view",
                    slot.get()
                ));
            }
        }
        Ok(())
    }
}
