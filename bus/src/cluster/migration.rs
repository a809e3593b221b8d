//! Replica migration: a replica moves to a primary that lost its last working replica, taken
//! from a primary that has replicas to spare (Valkey's `clusterHandleReplicaMigration`).
//!
//! # The rule (Valkey's, with one change)
//!
//! A primary is **orphaned** when it serves slots, is not FAIL, has no replica that is not
//! FAIL, and is a **migration target**: it used to have replicas, or it is a replica promoted
//! by a failover, or it got its first slot while some primary had replicas (Valkey's
//! `CLUSTER_NODE_MIGRATE_TO` flag; a primary that was never meant to have replicas is not
//! given one). Every tick, a replica migrates to an orphaned primary when all of these hold:
//!
//! 1. `cluster-allow-replica-migration` is on and `cluster_state` is ok;
//! 2. its own primary has the most working replicas of any primary (FAIL excluded), at least
//!    two;
//! 3. its own primary keeps more than `cluster-migration-barrier` working replicas (neither
//!    FAIL nor PFAIL) counting the migrant, so it is left with at least the barrier;
//! 4. it has the smallest node id among the replicas that are not FAIL of all the primaries
//!    with that greatest number of working replicas;
//! 5. the orphan has been orphaned for [`REPLICA_MIGRATION_DELAY_MS`] (after a failover the
//!    new primary's own replicas need a moment to announce that they follow it).
//!
//! The change: Valkey picks the smallest id among *all* replicas of those primaries, failed
//! ones included, so a dead replica with the smallest id blocks migration for as long as it is
//! dead. Here a FAIL replica is never the candidate.
//!
//! Two replicas may still migrate at once when their views differ for a moment (Valkey says
//! so too); the cost is a primary with one replica fewer than wanted, which the next orphan
//! check repairs, never a safety problem: a migrant replicates a new primary from scratch
//! (full sync), and the electorate (`election`) does not change, since it is still a replica
//! of a primary that serves slots.

use std::collections::{BTreeMap, BTreeSet};

use super::{ClusterState, Event, REPLICA_MIGRATION_DELAY_MS};
use crate::topology::{NodeFlags, NodeId};

/// What replica migration remembers between ticks.
#[derive(Debug, Clone, Default)]
pub(crate) struct MigrationState {
    /// Migration targets (Valkey's `MIGRATE_TO` flag): primaries a replica may move to.
    targets: BTreeSet<NodeId>,
    /// Replicas (failed ones included) of each primary at the last tick, to notice a primary
    /// losing its last one.
    replicas_seen: BTreeMap<NodeId, usize>,
    /// When each orphaned primary became orphaned (local ms).
    orphaned_since: BTreeMap<NodeId, u64>,
}

/// Replicas per primary (see `ClusterState::replica_counts`); primaries without any are
/// absent.
#[derive(Debug, Default)]
struct ReplicaCounts {
    /// Every replica, failed ones included (Valkey's `num_replicas`).
    all: BTreeMap<NodeId, usize>,
    /// Replicas not FAIL (Valkey's `clusterCountNonFailingReplicas`).
    ok: BTreeMap<NodeId, usize>,
    /// Replicas neither FAIL nor PFAIL (the barrier counts these).
    working: BTreeMap<NodeId, usize>,
}

impl ClusterState {
    /// A node we saw as a replica now acts as a primary (a failover): it may be given
    /// replicas.
    pub(super) fn note_promoted(&mut self, id: NodeId) {
        if id != self.myself {
            self.migration.targets.insert(id);
        }
    }

    /// A primary got its first slot: a target if some primary has replicas (a primary added
    /// and resharded into a cluster whose primaries have replicas should get one too; in a
    /// cluster without replicas nobody expects one).
    pub(super) fn note_first_slot(&mut self, id: NodeId) {
        if self
            .nodes
            .values()
            .any(|n| n.is_replica() && n.primary.is_some())
        {
            self.migration.targets.insert(id);
        }
    }

    /// Runs on every tick: keeps the targets and orphan times current, then migrates if this
    /// replica is the one that should (see the module docs).
    pub(super) fn replica_migration_tick(&mut self, now_ms: u64) {
        let counts = self.replica_counts();
        self.refresh_migration_targets(&counts);
        let Some(target) = self.track_orphans(now_ms, &counts) else {
            return;
        };
        if !self.should_migrate(now_ms, target, &counts) {
            return;
        }
        self.log(Event::MigratedToOrphan(target));
        self.set_my_primary(target);
        // Tell everyone at once, as CLUSTER REPLICATE does: the other replicas must stop
        // counting us as a replica of our old primary before they consider migrating too.
        self.broadcast_pong(now_ms, false);
    }

    /// Replicas of each primary, in one pass over the table.
    fn replica_counts(&self) -> ReplicaCounts {
        let mut counts = ReplicaCounts::default();
        for n in self.nodes.values() {
            if let Some(p) = n.primary.filter(|_| n.is_replica()) {
                *counts.all.entry(p).or_default() += 1;
                if !n.failed() {
                    *counts.ok.entry(p).or_default() += 1;
                }
                if !n.flags.intersects(NodeFlags::FAIL.union(NodeFlags::PFAIL)) {
                    *counts.working.entry(p).or_default() += 1;
                }
            }
        }
        counts
    }

    /// A primary with replicas is a target; one that lost its last replica (moved away,
    /// promoted, forgotten) is no longer one; a replica is never one.
    fn refresh_migration_targets(&mut self, counts: &ReplicaCounts) {
        let m = &mut self.migration;
        for n in self.nodes.values() {
            let now = counts.all.get(&n.id).copied().unwrap_or(0);
            let before = m.replicas_seen.get(&n.id).copied().unwrap_or(0);
            if n.is_replica() || (now == 0 && before > 0) {
                m.targets.remove(&n.id);
            } else if now > 0 {
                m.targets.insert(n.id);
            }
        }
        let nodes = &self.nodes;
        m.targets.retain(|id| nodes.contains_key(id));
        m.replicas_seen.clone_from(&counts.all);
    }

    /// Updates when each orphaned primary became orphaned; returns the one orphaned longest
    /// (the smallest id among equals), if any.
    fn track_orphans(&mut self, now_ms: u64, counts: &ReplicaCounts) -> Option<NodeId> {
        let orphans: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.id != self.myself && n.is_primary() && !n.failed())
            .filter(|n| {
                !n.flags
                    .intersects(NodeFlags::HANDSHAKE.union(NodeFlags::NOADDR))
            })
            .filter(|n| !n.slots.is_empty() && self.migration.targets.contains(&n.id))
            .filter(|n| !counts.ok.contains_key(&n.id))
            .map(|n| n.id)
            .collect();
        let since = &mut self.migration.orphaned_since;
        since.retain(|id, _| orphans.contains(id));
        for id in &orphans {
            since.entry(*id).or_insert(now_ms);
        }
        since
            .iter()
            .min_by_key(|(id, t)| (**t, **id))
            .map(|(id, _)| *id)
    }

    /// Conditions 1–5 of the module docs, for migrating to `target`.
    fn should_migrate(&self, now_ms: u64, target: NodeId, counts: &ReplicaCounts) -> bool {
        let me = self.me();
        let Some(my_primary) = me.primary.filter(|_| me.is_replica()) else {
            return false;
        };
        if !self.cfg.allow_replica_migration || !self.cluster_ok {
            return false;
        }
        if self
            .migration
            .orphaned_since
            .get(&target)
            .is_none_or(|t| now_ms.saturating_sub(*t) <= REPLICA_MIGRATION_DELAY_MS)
        {
            return false;
        }
        // Working replicas per primary that is up (Valkey skips failed primaries and
        // unreachable addresses here).
        let ok: BTreeMap<NodeId, usize> = self
            .nodes
            .values()
            .filter(|n| n.is_primary() && !n.failed() && n.id != self.myself)
            .filter(|n| {
                !n.flags
                    .intersects(NodeFlags::HANDSHAKE.union(NodeFlags::NOADDR))
            })
            .map(|n| (n.id, counts.ok.get(&n.id).copied().unwrap_or(0)))
            .collect();
        let max = ok.values().copied().max().unwrap_or(0);
        if max < 2 || ok.get(&my_primary) != Some(&max) {
            return false;
        }
        let working = counts.working.get(&my_primary).copied().unwrap_or(0) as u64;
        if working <= self.cfg.migration_barrier {
            return false;
        }
        let candidate = self
            .nodes
            .values()
            .filter(|n| n.is_replica() && !n.failed())
            .filter(|n| n.primary.is_some_and(|p| ok.get(&p) == Some(&max)))
            .map(|n| n.id)
            .min();
        candidate == Some(self.myself)
    }
}
