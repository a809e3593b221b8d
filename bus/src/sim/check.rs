//! The simulator's invariant checker. It sees every batch boundary, every persist, every message
//! sent, every crash and restart, and the final state; it keeps only what it needs to compare.

use std::collections::BTreeMap;

use super::Sim;
use crate::cluster::ClusterState;
use crate::slot::{Slot, SLOT_COUNT};
use crate::topology::{NodeId, SlotBitmap};
use crate::wire::{Body, Message};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Epochs {
    current: u64,
    vote: u64,
    config: u64,
}

impl Epochs {
    fn of(st: &ClusterState) -> Epochs {
        Epochs {
            current: st.current_epoch(),
            vote: st.last_vote_epoch(),
            config: st.my_config_epoch(),
        }
    }

    fn at_least(&self, older: &Epochs) -> bool {
        self.current >= older.current && self.vote >= older.vote && self.config >= older.config
    }
}

/// Tracks the history the invariants talk about.
pub struct Checker {
    ids: Vec<NodeId>,
    /// In-memory epochs at the last step, while the node runs.
    running: Vec<Option<Epochs>>,
    /// Epochs at the last persist.
    durable: Vec<Epochs>,
    /// The greatest epochs each node has revealed in a message.
    sent: Vec<Epochs>,
    /// configEpoch → node → slots it durably claimed as primary under that epoch.
    claims: BTreeMap<u64, BTreeMap<usize, SlotBitmap>>,
    last_claim: Vec<Option<(u64, SlotBitmap)>>,
    /// Per slot, the greatest configEpoch any primary durably claimed it with.
    max_claim_epoch: Vec<u64>,
    /// Election epoch → winner.
    winners: BTreeMap<u64, usize>,
}

impl Checker {
    /// A checker for these nodes (by index).
    pub fn new(ids: &[NodeId]) -> Checker {
        let n = ids.len();
        Checker {
            ids: ids.to_vec(),
            running: vec![Some(Epochs::default()); n],
            durable: vec![Epochs::default(); n],
            sent: vec![Epochs::default(); n],
            claims: BTreeMap::new(),
            last_claim: vec![None; n],
            max_claim_epoch: vec![0; usize::from(SLOT_COUNT)],
            winners: BTreeMap::new(),
        }
    }

    /// After a batch: in-memory epochs never decrease while the node runs.
    pub fn after_step(&mut self, i: usize, st: &ClusterState) -> Result<(), String> {
        let now = Epochs::of(st);
        if let Some(before) = self.running[i] {
            if !now.at_least(&before) {
                return Err(format!("node {i}: epochs went back: {before:?} -> {now:?}"));
            }
        }
        self.running[i] = Some(now);
        Ok(())
    }

    /// A persist: durable epochs never decrease, and a primary's slots become a claim that no
    /// other primary may hold under the same configEpoch.
    pub fn on_persist(&mut self, i: usize, st: &ClusterState) -> Result<(), String> {
        let now = Epochs::of(st);
        if !now.at_least(&self.durable[i]) {
            return Err(format!(
                "node {i}: persisted epochs went back: {:?} -> {now:?}",
                self.durable[i]
            ));
        }
        self.durable[i] = now;
        if !st.is_primary() || st.my_slots().is_empty() {
            return Ok(());
        }
        let epoch = now.config;
        let slots = st.my_slots();
        if self.last_claim[i]
            .as_ref()
            .is_some_and(|(e, s)| *e == epoch && s == slots)
        {
            return Ok(());
        }
        self.last_claim[i] = Some((epoch, slots.clone()));
        let at_epoch = self.claims.entry(epoch).or_default();
        for (other, theirs) in at_epoch.iter() {
            if *other != i && theirs.intersects(slots) {
                let shared = theirs.iter().find(|s| slots.contains(*s)).map(Slot::get);
                return Err(format!(
                    "nodes {other} and {i} both claim slot {shared:?} as primaries with configEpoch {epoch}"
                ));
            }
        }
        let mine = at_epoch.entry(i).or_default();
        let mut words = *mine.words();
        for (w, s) in words.iter_mut().zip(slots.words().iter()) {
            *w |= *s;
        }
        *mine = SlotBitmap::from_words(words);
        for slot in slots.iter() {
            let m = &mut self.max_claim_epoch[usize::from(slot.get())];
            *m = (*m).max(epoch);
        }
        Ok(())
    }

    /// A message leaves a node: what it reveals must already be durable (persist comes first).
    pub fn on_send(&mut self, i: usize, msg: &Message) -> Result<(), String> {
        let h = &msg.sender;
        let d = self.durable[i];
        if h.current_epoch > d.current {
            return Err(format!(
                "node {i} sent currentEpoch {} before persisting it (durable {})",
                h.current_epoch, d.current
            ));
        }
        self.sent[i].current = self.sent[i].current.max(h.current_epoch);
        if h.primary.is_none() {
            if h.config_epoch > d.config {
                return Err(format!(
                    "node {i} sent configEpoch {} before persisting it",
                    h.config_epoch
                ));
            }
            self.sent[i].config = self.sent[i].config.max(h.config_epoch);
        }
        if let Body::AuthAck { epoch, vote: true } = msg.body {
            if epoch > d.vote {
                return Err(format!(
                    "node {i} voted in epoch {epoch} before persisting the vote"
                ));
            }
            self.sent[i].vote = self.sent[i].vote.max(epoch);
        }
        Ok(())
    }

    /// A node crashed: it has no in-memory state to compare until it restarts.
    pub fn on_crash(&mut self, i: usize) {
        self.running[i] = None;
    }

    /// A node restarted: it comes back with exactly what it persisted, which covers everything
    /// it ever revealed.
    pub fn on_restart(&mut self, i: usize, st: &ClusterState) -> Result<(), String> {
        let back = Epochs::of(st);
        if back != self.durable[i] {
            return Err(format!(
                "node {i} restarted with {back:?}, persisted {:?}",
                self.durable[i]
            ));
        }
        if !back.at_least(&self.sent[i]) {
            return Err(format!(
                "node {i} restarted below what it had sent: {back:?} < {:?}",
                self.sent[i]
            ));
        }
        if st.myself() != self.ids[i] {
            return Err(format!("node {i} restarted with another id"));
        }
        self.running[i] = Some(back);
        Ok(())
    }

    /// One winner per election epoch.
    pub fn on_election_won(&mut self, i: usize, epoch: u64) -> Result<(), String> {
        match self.winners.insert(epoch, i) {
            Some(other) if other != i => Err(format!(
                "nodes {other} and {i} both won the election for epoch {epoch}"
            )),
            _ => Ok(()),
        }
    }

    /// Final check on a converged view: every slot's owner holds the greatest configEpoch ever
    /// claimed for it ("last failover wins").
    pub fn check_final(&self, _sim: &Sim, view: &ClusterState) -> Result<(), String> {
        let mut epochs: BTreeMap<NodeId, u64> = BTreeMap::new();
        for slot in Slot::all() {
            let Some(owner) = view.slot_owner(slot) else {
                continue;
            };
            let epoch = *epochs
                .entry(owner)
                .or_insert_with(|| view.node_config_epoch(&owner).unwrap_or(0));
            let max = self.max_claim_epoch[usize::from(slot.get())];
            if epoch < max {
                return Err(format!(
                    "slot {} ended with an owner at configEpoch {epoch}, but it was claimed at {max}: last failover did not win",
                    slot.get()
                ));
            }
        }
        Ok(())
    }
}
