//! Replica elections, votes, and manual failover.
//!
//! # The rules (Valkey's, unchanged)
//!
//! A replica whose primary is FAIL waits `fixed + random + rank × rank_delay` ms (rank 0 is the
//! replica with the greatest replication offset), then increments currentEpoch to `E`, persists,
//! and asks every node for a vote in epoch `E`. A voter grants at most one vote per epoch
//! (`lastVoteEpoch`, persisted before the ack leaves), only for an epoch not older than its own
//! currentEpoch, only to a replica whose primary it sees FAIL (or on a manual failover), not
//! twice for replicas of the same primary within two node timeouts, and only if no slot the
//! candidate claims is served under a greater configEpoch. A candidate with a majority of the
//! electorate's votes for `E` takes `E` as its configEpoch and its primary's slots; everyone
//! else adopts the claim because `E` is greater than the old primary's configEpoch ("last
//! failover wins"). An election that does not finish within `max(2 × node_timeout, 2 s)` is
//! abandoned and may be retried after twice that.
//!
//! # Who votes: the electorate
//!
//! Valkey's electorate is the set of primaries that serve at least one slot. With one primary
//! and two replicas that set is the dead primary alone, so nothing can ever be elected; with two
//! primaries, losing one leaves one vote of two. corekey therefore uses, in each node's view:
//!
//! - **three or more voting primaries** (`ElectorateMode::Primaries`): the voting primaries, as
//!   Valkey;
//! - **one or two voting primaries** (`ElectorateMode::ReplicaSets`): the voting primaries *and
//!   every replica of them*. A candidate is a member and casts its own vote (recording it in
//!   `lastVoteEpoch`, so it cannot also vote for a rival in the same epoch).
//!
//! The quorum is a strict majority of the electorate, `members / 2 + 1`, dead members included.
//! The same electorate decides PFAIL → FAIL (its members' failure reports count) and whether a
//! node is on the majority side (`cluster_state`). With one primary P and replicas R1, R2, the
//! electorate is {P, R1, R2} and the quorum two: when P dies, R1 and R2 agree it failed, and
//! the first candidate gets its own vote and the other replica's.
//!
//! # Why at most one primary per slot per epoch still holds
//!
//! A primary serves a slot at configEpoch `E` only by winning the election for `E` (or through
//! the admin escape hatches below). Two winners of `E` would need two majorities of votes cast
//! in `E`. Each member votes at most once per epoch, and that vote survives crashes because it
//! is fsynced before the ack is sent. So two winners need two disjoint majorities, which cannot
//! exist within one electorate: any two majorities of the same set share a member.
//!
//! What remains is that the electorate is each node's *view*. Two rules make views agree or
//! make the election fail instead:
//!
//! 1. A vote request carries a digest of the candidate's electorate (mode and sorted member
//!    ids); a voter whose own electorate has another digest refuses. Every vote counted for a
//!    candidate was therefore cast by a member of the very set the candidate counts against, so
//!    "majority of the same set" above is exact for all votes counted under one digest.
//! 2. In ReplicaSets mode a failover does not change the membership (the old primary becomes a
//!    replica of the new one; both stay members), so views do not drift during the failovers
//!    the mode exists for. Membership changes only by operator actions (MEET + REPLICATE,
//!    ADDSLOTS on a new primary, FORGET), one node at a time, and for a change of one member the
//!    majorities of the old and the new set always intersect (`⌊n/2⌋+1 + ⌊(n+1)/2⌋ > n`), the
//!    argument Raft uses for single-server membership changes.
//!
//! The mode switch itself is such a membership change (it happens when a third primary gets its
//! first slot or one of three loses its last), so operators should add primaries one at a time
//! while no failover is under way, as they already must in Valkey. The admin commands that bump
//! an epoch without an election (BUMPEPOCH, FAILOVER TAKEOVER, SETSLOT … NODE finishing an
//! import) and configEpoch collision handling are outside the guarantee, exactly as in Valkey:
//! they are operator overrides, and the collision rule then moves colliding primaries apart.
//! The simulator checks the guarantee over thousands of seeded runs with crashes, partitions and
//! skewed clocks (`crate::sim`).
//!
//! # Two rules for replicas that vote (ReplicaSets mode only), found by the simulator
//!
//! - **Yield**: a candidate that holds only its own vote in the current epoch and receives a
//!   request in that epoch from a sibling replica (same primary) that ranks before it gives up
//!   its candidacy and votes for the sibling. Its self-vote was only ever counted in its own
//!   election, now abandoned, so each member's vote in an epoch is still counted once. Without
//!   it, two replicas of a single shard that start within one message delay split the votes
//!   and fail over only on retry, seconds later.
//! - **Up to date**: a replica refuses a sibling whose announced offset is below its own (sync
//!   mode's "only the most up-to-date replica wins"); in a single shard the other replica's vote
//!   is needed, so a lagging replica cannot win. If its own election is stuck in an older
//!   epoch, the refuser starts over at once instead of waiting for the retry.
//!
//! Availability: ReplicaSets mode needs a majority of all members of the one or two replica
//! sets, so {P, R1, R2} survives one failure of any node and a 2×(1+1) cluster survives one. A
//! minority-side primary sees fewer than a quorum of members and turns `cluster_state` to fail,
//! so it stops taking writes, which is what keeps a partitioned single-shard primary from
//! accepting writes the elected replica will never see.
//!
//! # Sync mode: a replica holds its acknowledgements while its primary may be replaced
//!
//! With `min-replicas-ack N` a primary acknowledges a write once N replicas acknowledged it on
//! the replication stream. The up-to-date rule compares offsets only at the moment of the vote:
//! under flapping links a voter could catch up on its primary's stream right after voting and
//! acknowledge more, while the sibling it voted for wins holding less (the simulator's
//! `FlappingLinks` scenario found it). So a replica of primary P **holds its
//! acknowledgements** (the driver acknowledges nothing of P's stream beyond what it already
//! acknowledged: [`Action::HoldAcks`]) while any of these is true:
//!
//! 1. P is FAIL in its view;
//! 2. it voted for (or stated to) a replica of P (`AckHold`) and that election may still be won or its win
//!    not yet known: until the election timeout has passed since the vote, plus a tenth for
//!    clocks that run at different rates, *and* a message from the candidate has arrived
//!    since then showing it still a replica of P (one that won would say so; a candidate we
//!    no longer know releases the hold);
//! 3. it restarted with a vote on record (it does not remember for whom): for the same window
//!    from the restart.
//!
//! When none is true it acknowledges again ([`Action::ResumeAcks`]), at once, so writes waiting
//! in sync mode go on. A replica that follows a new primary is under none of them for it.
//!
//! Why that is enough: a vote or statement for a replica of P needs P FAIL in the sender's
//! view (unless forced), so the hold is in force in an earlier batch than any vote or
//! statement it sends, and a sibling answers only while it holds (`acks_held`). The driver
//! then feeds offsets no smaller than anything it acknowledged
//! ([`ClusterState::set_replication`]), so the up-to-date rule compares everything the sibling
//! will ever have acknowledged to P by the time the election ends.
//!
//! # Streams: offsets compared stream by stream, and catch-up
//!
//! A node with several cores replicates one stream per shard of its primary, and a write is
//! acknowledged once enough replicas acknowledged its stream. Offsets are therefore compared
//! stream by stream: a sibling refuses a candidate that holds less of *any* stream than it
//! does (a sum could hide one stream's acknowledged writes behind another stream's surplus).
//! That alone is safe but not live: the replica holding every acknowledged write (the one that
//! acknowledged the last of them acknowledged every stream up to it) can be behind its sibling
//! on another stream, with writes not acknowledged yet, and then each refuses the other. So a
//! replica whose primary is FAIL fetches what a reachable sibling holds beyond it
//! ([`Action::CatchUp`]: a partial resync of those streams from the sibling's backlog, which
//! holds the primary's frames at the primary's offsets), and does not ask for votes while a
//! sibling it can reach is ahead. After the fetch it holds the maximum of both on every stream.
//! A sibling that refuses sends the candidate a pong, so it learns what to fetch.
//!
//! # Statements: every shape, not only the ones where siblings vote
//!
//! The up-to-date rule only binds the siblings whose answers the candidate needs. With one
//! primary and two or three replicas their votes are needed anyway; with three or more
//! primaries (only primaries vote) or more replicas, a sibling holding acknowledged writes
//! could be left out. So every sibling answers a candidate's request, with a vote when it is
//! a member of the electorate and a *statement* otherwise (`AuthAck` with `vote: false`, never
//! counted as a vote, needing no persisted epoch): the same checks as the up-to-date rule, and
//! the same acknowledgement hold. A candidate wins only with statements from enough replicas of
//! its primary, itself included: with `min-replicas-ack` k of r replicas, r − k + 1 (each
//! acknowledged write is on k replicas, so one of the r − k + 1 holds it, and the candidate
//! holds at least what that one holds); without sync mode, every sibling not FAIL in its view,
//! so writes acknowledged through `WAIT` survive a primary's failure (a primary and a replica
//! failing together then fail over as in Valkey). Where siblings do not vote, a candidate
//! first collects statements in a round of its own (a new epoch, so a late statement from an
//! earlier round is told apart), then asks for votes; a sibling that is a candidate itself
//! states only for one that ranks before it, and stands down. Without that round two siblings
//! asking at once split the primaries' votes and retry seconds later. Forced and manual
//! failovers need no statements and skip the up-to-date rule.

use std::collections::BTreeSet;

use super::{Action, CatchUpSource, ClusterState, Event, LinkId, MANUAL_FAILOVER_TIMEOUT_MS};
use crate::topology::{NodeFlags, NodeId};
use crate::wire::{Body, SenderInfo};

/// Which rule built an electorate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectorateMode {
    /// Primaries serving slots vote (three or more of them, or small-cluster voting off).
    Primaries,
    /// One or two primaries serve slots: they and their replicas vote.
    ReplicaSets,
}

/// The nodes whose votes and failure reports count, in one node's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Electorate {
    /// The rule used.
    pub mode: ElectorateMode,
    /// Members, dead ones included.
    pub members: BTreeSet<NodeId>,
}

impl Electorate {
    /// Votes (or failure reports) needed: a strict majority.
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// FNV-1a over the mode and the sorted member ids: equal for equal electorates on every node.
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: u8| {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        };
        eat(match self.mode {
            ElectorateMode::Primaries => 1,
            ElectorateMode::ReplicaSets => 2,
        });
        for id in &self.members {
            for b in id.as_bytes() {
                eat(*b);
            }
        }
        h
    }
}

/// A replica's election in progress (Valkey's `failover_auth_*` fields).
#[derive(Debug, Clone, Default)]
pub(crate) struct ElectionState {
    /// When the election starts or started (local ms); `None` before the first one.
    auth_time_ms: Option<u64>,
    rank: u32,
    /// Vote requests sent for `epoch`.
    sent: bool,
    /// Statement requests sent to our siblings, in `pre_epoch` (before the vote requests when
    /// our siblings do not vote; see "Statements" in the module docs).
    pre_sent: bool,
    /// The epoch our statement requests went out in; statements for another are stale.
    pre_epoch: u64,
    /// When the vote requests last went out (local ms).
    asked_ms: u64,
    expired_logged: bool,
    epoch: u64,
    electorate: Option<Electorate>,
    votes: BTreeSet<NodeId>,
    /// Sibling replicas that said they hold nothing of our primary's streams we lack.
    statements: BTreeSet<NodeId>,
}

impl ElectionState {
    /// When a scheduled election asks for votes, if it has not yet.
    pub(super) fn pending_start_ms(&self) -> Option<u64> {
        self.auth_time_ms.filter(|_| !self.sent && !self.pre_sent)
    }

    /// When a running election asks the members that have not voted again (before it expires
    /// after `auth_timeout_ms`).
    pub(super) fn next_ask_ms(&self, interval_ms: u64, auth_timeout_ms: u64) -> Option<u64> {
        let at = self.asked_ms + interval_ms;
        let end = self.auth_time_ms? + auth_timeout_ms;
        ((self.sent || self.pre_sent) && at <= end).then_some(at)
    }
}

/// Manual failover state, both sides.
#[derive(Debug, Clone, Default)]
pub(crate) struct ManualFailover {
    /// Replica side: deadline (local ms), `None` when none is running.
    end_ms: Option<u64>,
    /// Replica side: the election may start (offsets match, or FORCE).
    can_start: bool,
    /// Replica side: the offset the paused primary announced.
    primary_offset: Option<u64>,
    /// Replica side: when MFSTART last went to the primary (local ms).
    asked_ms: u64,
    /// Primary side: the replica we paused writes for.
    pub(crate) paused_for: Option<NodeId>,
    /// Primary side: the driver reported the pause in effect ([`ClusterState::writes_paused`]),
    /// so our offset is final and we announce it as paused.
    pub(crate) pause_confirmed: bool,
    /// Primary side: when we give up waiting.
    primary_end_ms: Option<u64>,
}

/// A vote we cast for a replica of our own primary (rule 2 of the sync-mode section of the
/// module docs), or a restart with a vote on record (rule 3: no candidate known).
#[derive(Debug, Clone)]
pub(crate) struct AckHold {
    /// The primary the election would replace.
    pub(crate) primary: NodeId,
    /// Who we voted for.
    pub(crate) candidate: Option<NodeId>,
    /// Local time after which the election we voted in can no longer be won.
    pub(crate) until_ms: u64,
}

impl ClusterState {
    /// The electorate in our current view (see the module docs).
    pub fn electorate(&self) -> Electorate {
        let primaries: BTreeSet<NodeId> = self
            .nodes
            .values()
            .filter(|n| !n.in_handshake() && n.is_voting_primary())
            .map(|n| n.id)
            .collect();
        if !self.cfg.small_cluster_voting || primaries.len() >= 3 {
            return Electorate {
                mode: ElectorateMode::Primaries,
                members: primaries,
            };
        }
        let mut members = primaries.clone();
        for n in self.nodes.values() {
            if !n.in_handshake()
                && n.is_replica()
                && n.primary.is_some_and(|p| primaries.contains(&p))
            {
                members.insert(n.id);
            }
        }
        Electorate {
            mode: ElectorateMode::ReplicaSets,
            members,
        }
    }

    /// Our rank among our primary's replicas: how many have a better offset (ties broken by the
    /// smaller id), not counting replicas that will not fail over.
    fn replica_rank(&self) -> u32 {
        let Some(primary) = self.me().primary else {
            return 0;
        };
        // The broken rule (simulator only) ranks by id alone.
        let mine = if broken_rules_rank_ignores_offsets() {
            0
        } else {
            self.repl_offset
        };
        let offset = |n: &super::Node| {
            if broken_rules_rank_ignores_offsets() {
                0
            } else {
                n.repl_offset
            }
        };
        self.nodes
            .values()
            .filter(|n| n.id != self.myself && n.is_replica() && n.primary == Some(primary))
            .filter(|n| !n.flags.contains(NodeFlags::NOFAILOVER))
            .filter(|n| offset(n) > mine || (offset(n) == mine && n.id < self.myself))
            .count() as u32
    }

    /// Runs on every tick of a replica and when a vote arrives (Valkey's
    /// `clusterHandleReplicaFailover`).
    pub(super) fn handle_replica_failover(&mut self, now_ms: u64) {
        let manual = self.manual.end_ms.is_some() && self.manual.can_start;
        let nt = self.cfg.node_timeout_ms;
        let Some(primary_id) = self.me().primary.filter(|_| self.me().is_replica()) else {
            return;
        };
        let Some(primary) = self.nodes.get(&primary_id) else {
            return;
        };
        let wanted = manual || (primary.failed() && !self.cfg.replica_no_failover);
        if !wanted || primary.slots.is_empty() {
            return;
        }
        // Data age: how long we have been without our primary, beyond the node timeout it took
        // to declare it failed. Too old, and we would lose too many writes.
        if let Some(contact) = self.repl_last_contact_ms {
            let mut data_age = now_ms.saturating_sub(contact);
            if data_age > nt {
                data_age -= nt;
            }
            let limit =
                self.cfg.repl_ping_replica_period_ms + nt * self.cfg.replica_validity_factor;
            if self.cfg.replica_validity_factor > 0 && data_age > limit && !manual {
                return;
            }
        }
        let auth_timeout = self.election_timeout_ms();
        let auth_retry = auth_timeout * 2;
        let auth_age = self.election.auth_time_ms.map(|t| now_ms as i64 - t as i64);

        if auth_age.is_none_or(|age| age > auth_retry as i64) {
            let rank = if self.manual.end_ms.is_some() {
                0
            } else {
                self.replica_rank()
            };
            // A retry (the last election expired unwon) spreads wider: two candidates that
            // split the votes once (two primaries failed together, so both asked in the same
            // epoch) would otherwise retry in step and split them again, election after
            // election, since both retry a fixed time after their last try.
            let spread = if self.election.sent {
                self.cfg.failover_random_delay_ms.max(auth_timeout / 2)
            } else {
                self.cfg.failover_random_delay_ms
            };
            let jitter = self.rng.below(spread + 1);
            let start = if self.manual.end_ms.is_some() {
                now_ms
            } else {
                now_ms
                    + self.cfg.failover_fixed_delay_ms
                    + jitter
                    + u64::from(rank) * self.cfg.failover_rank_delay_ms
            };
            self.election = ElectionState {
                auth_time_ms: Some(start),
                rank,
                ..ElectionState::default()
            };
            self.log(Event::ElectionScheduled {
                delay_ms: start - now_ms,
                rank,
            });
            // Tell the other replicas our offset, so their ranks are right.
            self.broadcast_pong(now_ms, true);
            if self.manual.end_ms.is_none() {
                return;
            }
        }
        let Some(auth_time) = self.election.auth_time_ms else {
            return;
        };

        // Better offsets may have arrived since we computed our delay.
        if !self.election.sent && !self.election.pre_sent && self.manual.end_ms.is_none() {
            let rank = self.replica_rank();
            if rank != self.election.rank {
                let delta = (i64::from(rank) - i64::from(self.election.rank))
                    * self.cfg.failover_rank_delay_ms as i64;
                let moved = (auth_time as i64 + delta).max(0) as u64;
                self.election.auth_time_ms = Some(moved);
                self.election.rank = rank;
            }
        }
        let Some(auth_time) = self.election.auth_time_ms else {
            return;
        };
        if now_ms < auth_time {
            return;
        }
        if now_ms - auth_time > auth_timeout {
            if !self.election.expired_logged {
                self.election.expired_logged = true;
                let epoch = self.election.epoch;
                self.log(Event::ElectionExpired { epoch });
            }
            return;
        }

        if !self.election.sent && self.catch_up.is_some() && self.manual.end_ms.is_none() {
            // A sibling holds more of some stream: it would refuse us until we fetched it,
            // and asking now could split the votes with that sibling's own election.
            return;
        }
        if !self.election.sent && self.statements_first() {
            if !self.election.pre_sent {
                // A round of its own, in a new epoch: a statement answers exactly this round.
                self.current_epoch += 1;
                self.dirty_persist = true;
                self.election.pre_sent = true;
                self.election.pre_epoch = self.current_epoch;
                self.ask_siblings(now_ms);
                return;
            }
            if !self.statements_suffice() {
                if now_ms.saturating_sub(self.election.asked_ms) >= self.cfg.failover_fixed_delay_ms
                {
                    self.ask_siblings(now_ms);
                }
                return;
            }
        }
        if !self.election.sent {
            if !self.election.pre_sent {
                self.election.pre_epoch = self.current_epoch + 1;
            }
            self.current_epoch += 1;
            let epoch = self.current_epoch;
            let electorate = self.electorate();
            let quorum = electorate.quorum();
            self.election.epoch = epoch;
            self.election.sent = true;
            if electorate.members.contains(&self.myself) && self.last_vote_epoch < epoch {
                self.last_vote_epoch = epoch;
                self.last_vote_for = Some(self.myself);
                self.election.votes.insert(self.myself);
            }
            let digest = electorate.digest();
            self.election.electorate = Some(electorate);
            self.dirty_persist = true;
            self.dirty_topology = true;
            self.log(Event::ElectionStarted { epoch, quorum });
            self.election.asked_ms = now_ms;
            self.broadcast(Body::AuthRequest {
                force_ack: self.manual.end_ms.is_some(),
                electorate_digest: digest,
            });
        } else if now_ms.saturating_sub(self.election.asked_ms) >= self.cfg.failover_fixed_delay_ms
        {
            self.ask_again(now_ms);
        }

        let quorum = self
            .election
            .electorate
            .as_ref()
            .map_or(usize::MAX, |e| e.quorum());
        if self.election.votes.len() >= quorum && self.statements_suffice() {
            let epoch = self.election.epoch;
            if self.me().config_epoch < epoch {
                self.me_mut().config_epoch = epoch;
            }
            self.log(Event::ElectionWon { epoch });
            self.replace_my_primary(now_ms);
        }
    }

    /// Whether our siblings must state their offsets before we ask for votes: they are not
    /// members of the electorate (three or more primaries vote), so their statements would
    /// otherwise race with the primaries' votes, and two siblings asking at once would split
    /// the primaries' votes between them (ranks only order them by gossiped offsets, which
    /// catch-up changes under way). Manual failovers skip statements.
    fn statements_first(&self) -> bool {
        self.manual.end_ms.is_none()
            && self.statements_needed() > 1
            && !self.electorate().members.contains(&self.myself)
    }

    /// Asks the siblings that have not stated yet, in `pre_epoch` (no member of the electorate
    /// hears it: it is not a vote request).
    fn ask_siblings(&mut self, now_ms: u64) {
        let digest = self.electorate().digest();
        let ask: BTreeSet<NodeId> = self.unanswered_siblings().collect();
        self.send_auth_requests(now_ms, &ask, digest);
    }

    /// Our siblings that have not stated for the running round yet.
    fn unanswered_siblings(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.siblings()
            .map(|n| n.id)
            .filter(|id| !self.election.statements.contains(id))
    }

    /// Sends a vote request (or, to a sibling that does not vote, a statement request) to each
    /// of `ask` we have a link up to.
    fn send_auth_requests(&mut self, now_ms: u64, ask: &BTreeSet<NodeId>, digest: u64) {
        let targets: Vec<LinkId> = ask
            .iter()
            .filter_map(|m| self.nodes.get(m)?.link)
            .filter(|l| self.links.get(l).is_some_and(|i| i.up))
            .collect();
        self.election.asked_ms = now_ms;
        let force_ack = self.manual.end_ms.is_some();
        for link in targets {
            self.send(
                link,
                Body::AuthRequest {
                    force_ack,
                    electorate_digest: digest,
                },
            );
        }
    }

    /// Asks the members of the electorate that have not voted for us once more, in the same
    /// epoch. A voter that had not yet seen our primary FAIL when the first request came
    /// refused it silently (the FAIL broadcast and our request race on different links, and
    /// the fixed election delay that gives the FAIL a head start is short here); Valkey then
    /// waits for the next election, twice the auth timeout later. Asking again is safe: a
    /// voter still grants at most one vote per epoch, under the same rules.
    fn ask_again(&mut self, now_ms: u64) {
        let Some(electorate) = self.election.electorate.as_ref() else {
            return;
        };
        let digest = electorate.digest();
        let mut ask: BTreeSet<NodeId> = electorate
            .members
            .iter()
            .copied()
            .filter(|m| *m != self.myself && !self.election.votes.contains(m))
            .collect();
        ask.extend(self.unanswered_siblings().collect::<Vec<_>>());
        self.send_auth_requests(now_ms, &ask, digest);
    }

    /// The end of every failover: become a primary, take our old primary's slots, tell everyone.
    pub(super) fn replace_my_primary(&mut self, now_ms: u64) {
        let Some(old) = self.me().primary.filter(|_| self.me().is_replica()) else {
            return;
        };
        let me = self.me_mut();
        me.flags.remove(NodeFlags::REPLICA);
        me.flags.insert(NodeFlags::PRIMARY);
        me.primary = None;
        let slots: Vec<_> = self
            .nodes
            .get(&old)
            .map(|n| n.slots.iter().collect())
            .unwrap_or_default();
        for slot in slots {
            self.del_slot(slot);
            self.add_slot(self.myself, slot);
        }
        self.election = ElectionState::default();
        self.reset_manual_failover();
        self.log(Event::BecamePrimary);
        self.changed();
        self.update_cluster_state(now_ms);
        self.broadcast_pong(now_ms, false);
    }

    /// A vote request (Valkey's `clusterSendFailoverAuthIfNeeded`), answered by members of the
    /// electorate with a vote and by the candidate's sibling replicas with a statement (an
    /// `AuthAck` too; see "Statements" in the module docs). Refusals are silent on the wire and
    /// logged.
    pub(super) fn maybe_vote(
        &mut self,
        now_ms: u64,
        link: LinkId,
        candidate: NodeId,
        hdr: &SenderInfo,
        force_ack: bool,
        digest: u64,
    ) {
        let electorate = self.electorate();
        let member = electorate.members.contains(&self.myself);
        let me = self.me();
        let sibling = me.is_replica() && me.primary.is_some() && hdr.primary == me.primary;
        if !member && !sibling {
            return; // neither votes nor states
        }
        let refuse = |s: &mut ClusterState, reason| {
            s.log(Event::VoteRefused { candidate, reason });
        };
        if hdr.current_epoch < self.current_epoch {
            return refuse(self, "request epoch is older than ours");
        }
        let yielding = member && self.yields_to_sibling(candidate, hdr);
        if member && self.last_vote_epoch >= self.current_epoch && !yielding {
            if self.last_vote_epoch == hdr.current_epoch && self.last_vote_for == Some(candidate) {
                // It asks again because our vote was lost (a reset link; the simulator's
                // `ManualFailover` found elections dying of it): the same vote, once more.
                // Valkey refuses, and the candidate waits for its next election.
                let epoch = self.last_vote_epoch;
                self.log(Event::VoteGranted { candidate, epoch });
                let target = self.nodes.get(&candidate).and_then(|n| n.link);
                let target = target.filter(|l| self.link_up(Some(*l))).unwrap_or(link);
                self.send(target, Body::AuthAck { epoch, vote: true });
                return;
            }
            return refuse(self, "already voted in this epoch");
        }
        let Some(cand) = self.nodes.get(&candidate) else {
            return;
        };
        if cand.is_primary() {
            return refuse(self, "it is a primary");
        }
        let Some(primary_id) = cand.primary else {
            return refuse(self, "its primary is unknown");
        };
        let Some(primary) = self.nodes.get(&primary_id) else {
            return refuse(self, "its primary is unknown");
        };
        if !primary.failed() && !force_ack {
            return refuse(self, "its primary is up");
        }
        // Sync mode's guarantee (no acknowledged write lost): a replica of the same primary
        // that holds more of any of its streams than the candidate refuses (see the module
        // docs). A replica that may not fail over itself compares too: it may hold
        // acknowledged writes, and the candidate can fetch them from it (`Action::CatchUp`).
        // A forced or manual failover does not compare.
        let me = self.me();
        let compares_offsets = !force_ack
            && me.is_replica()
            && me.primary == Some(primary_id)
            && !broken_rules_rank_ignores_offsets();
        // The offsets compared below must cover everything we will ever have acknowledged to
        // our primary: that holds once our acknowledgements are held (see the module docs),
        // which the FAIL this vote needs has done in an earlier batch.
        if compares_offsets && !self.acks_held && !broken_rules_no_ack_hold() {
            return refuse(self, "my acknowledgements to our primary are not held yet");
        }
        if compares_offsets && !self.candidate_covers_me(hdr) {
            // If our own election is stuck in an older epoch (our request came late; the
            // others moved on) and we hold all the candidate holds, start over now rather
            // than after the retry delay: we are a replica that can win.
            if self.election.sent
                && self.election.epoch < hdr.current_epoch
                && covers(&self.stream_offsets, &hdr.stream_offsets)
            {
                self.election = ElectionState::default();
            }
            // Tell the candidate what we hold now, so it can fetch it and ask again.
            if let Some(l) = self.nodes[&candidate]
                .link
                .filter(|l| self.link_up(Some(*l)))
            {
                self.send_ping(now_ms, l, candidate, false);
            }
            return refuse(self, "I hold more of our primary's stream");
        }
        // Two siblings that do not vote must not both collect statements (they would split
        // the primaries' votes): a candidate ourselves, we state only for one that ranks
        // before us, and then stand down.
        let rival = !member && sibling && self.election.auth_time_ms.is_some();
        if rival && !self.ranks_before_me(candidate, hdr) {
            return refuse(self, "I am a candidate too and rank before it");
        }
        if member
            && primary
                .voted_time_ms
                .is_some_and(|t| now_ms.saturating_sub(t) < self.cfg.node_timeout_ms * 2)
        {
            return refuse(self, "voted for a replica of this primary recently");
        }
        for slot in hdr.slots.iter() {
            if let Some(owner) = self.slot_owner[usize::from(slot.get())] {
                if self.nodes[&owner].config_epoch > hdr.config_epoch {
                    return refuse(self, "a claimed slot has a newer owner");
                }
            }
        }
        if member && digest != electorate.digest() {
            return refuse(self, "its electorate differs from ours");
        }
        let epoch = self.current_epoch;
        if member {
            if yielding {
                // Our own candidacy for this epoch ends here: the vote we gave ourselves is
                // never counted (no electorate, no votes), so this epoch's vote still counts
                // once.
                self.election.votes.clear();
                self.election.electorate = None;
                self.log(Event::ElectionYielded {
                    epoch,
                    to: candidate,
                });
            }
            self.last_vote_epoch = epoch;
            self.last_vote_for = Some(candidate);
            if let Some(p) = self.nodes.get_mut(&primary_id) {
                p.voted_time_ms = Some(now_ms);
            }
            self.dirty_persist = true;
            self.log(Event::VoteGranted { candidate, epoch });
        } else {
            if rival {
                // Our own election ends unwon; we may try again after the retry delay.
                self.election = ElectionState {
                    auth_time_ms: Some(now_ms),
                    sent: true,
                    expired_logged: true,
                    ..ElectionState::default()
                };
                self.log(Event::ElectionYielded {
                    epoch,
                    to: candidate,
                });
            }
            self.log(Event::StatementGiven { candidate, epoch });
        }
        if self.me().is_replica() && self.me().primary == Some(primary_id) {
            // Whatever the candidate announced, we hold our acknowledgements to our primary
            // until its election is over (sync mode; see the module docs).
            self.ack_hold = Some(AckHold {
                primary: primary_id,
                candidate: Some(candidate),
                until_ms: now_ms + self.ack_hold_ms(),
            });
        }
        let target = self.nodes[&candidate]
            .link
            .filter(|l| self.link_up(Some(*l)))
            .unwrap_or(link);
        self.send(
            target,
            Body::AuthAck {
                epoch,
                vote: member,
            },
        );
    }

    /// Whether a sibling candidate that announced `hdr` ranks before us: it holds at least what
    /// we hold on every stream, and more in all, or as much and has the smaller id.
    fn ranks_before_me(&self, candidate: NodeId, hdr: &SenderInfo) -> bool {
        let (theirs, mine) = if broken_rules_rank_ignores_offsets() {
            (0, 0)
        } else {
            (hdr.repl_offset, self.repl_offset)
        };
        self.candidate_covers_me(hdr)
            && (theirs > mine || (theirs == mine && candidate < self.myself))
    }

    /// Whether a candidate that announced `hdr` holds at least what we hold of our primary's
    /// streams, stream by stream.
    fn candidate_covers_me(&self, hdr: &SenderInfo) -> bool {
        if broken_rules_sum_offsets() {
            hdr.repl_offset >= self.repl_offset
        } else {
            covers(&hdr.stream_offsets, &self.stream_offsets)
        }
    }

    /// The other replicas of our primary (none when we are a primary).
    pub(super) fn siblings(&self) -> impl Iterator<Item = &super::Node> {
        let me = self.me();
        let primary = me.primary.filter(|_| me.is_replica());
        let myself = self.myself;
        self.nodes.values().filter(move |n| {
            primary.is_some()
                && n.id != myself
                && !n.in_handshake()
                && n.is_replica()
                && n.primary == primary
        })
    }

    /// How many replicas of our primary, ourselves included, must have stated they hold
    /// nothing of its streams we lack before our election may end in a win ("Statements" in
    /// the module docs).
    fn statements_needed(&self) -> usize {
        if self.manual.end_ms.is_some() || broken_rules_no_statements() {
            return 1;
        }
        let r = self.siblings().count() + 1;
        match self.cfg.sync_replicas {
            0 => 1 + self.siblings().filter(|n| !n.failed()).count(),
            k => (r + 1 - k.min(r)).max(1),
        }
    }

    fn statements_suffice(&self) -> bool {
        self.election.statements.len() + 1 >= self.statements_needed()
    }

    /// Whether we are a candidate in the current epoch, holding only our own vote so far, and
    /// `candidate` is a replica of our primary that ranks before us (greater offset, or the same
    /// and a smaller id, as `replica_rank` orders them). Then we give up our candidacy and vote
    /// for it. Without this, two replicas of a single shard that start within one message delay
    /// of each other both vote for themselves, neither reaches the quorum of two, and the
    /// failover waits for the retry (twice the election timeout: seconds). The simulator's
    /// `PrimaryCrash` scenario found it. The self-vote counts only in our own election, so
    /// abandoning that election first frees it without a second vote ever being counted.
    fn yields_to_sibling(&self, candidate: NodeId, hdr: &SenderInfo) -> bool {
        let me = self.me();
        let sibling = me.is_replica() && me.primary.is_some() && hdr.primary == me.primary;
        sibling
            && self.ranks_before_me(candidate, hdr)
            && !broken_rules_no_yield()
            && self.election.sent
            && self.election.epoch == self.current_epoch
            && self.last_vote_epoch == self.current_epoch
            && self.election.votes.len() == 1
            && self.election.votes.contains(&self.myself)
    }

    /// An answer to our vote request arrived: a vote counts if it is for our running election
    /// and from a member of the electorate we count against; a statement counts if it is from
    /// a sibling replica (the same answer may be both).
    pub(super) fn on_vote(&mut self, now_ms: u64, voter: NodeId, epoch: u64, vote: bool) {
        let for_votes = self.election.sent && epoch == self.election.epoch;
        // Every request of this round went out in `pre_epoch` or later (our epoch only
        // grows), every earlier round's before it: a statement's epoch tells which it answers.
        let for_statements =
            (self.election.sent || self.election.pre_sent) && epoch >= self.election.pre_epoch;
        if !for_votes && !for_statements {
            return;
        }
        let member = for_votes
            && vote
            && self
                .election
                .electorate
                .as_ref()
                .is_some_and(|e| e.members.contains(&voter));
        let sibling = for_statements && self.siblings().any(|n| n.id == voter);
        let voted = member && self.election.votes.insert(voter);
        let stated = sibling && self.election.statements.insert(voter);
        if voted || stated {
            self.handle_replica_failover(now_ms);
        }
    }

    /// How long an election may collect votes (Valkey: `max(2 × node timeout, 2 s)`).
    fn election_timeout_ms(&self) -> u64 {
        (self.cfg.node_timeout_ms * 2).max(self.cfg.failover_min_auth_timeout_ms)
    }

    /// How long after a vote the election it was cast in may still be won, in our clock: the
    /// candidate counts votes for an election timeout after it started, which was before our
    /// vote; a tenth more covers clocks that run at rates a few percent apart.
    pub(super) fn ack_hold_ms(&self) -> u64 {
        let t = self.election_timeout_ms();
        t + t / 10
    }

    /// Whether we must hold our acknowledgements to our primary now (rules 1–3 of the
    /// sync-mode section of the module docs). Forgets a hold that no longer applies.
    fn acks_must_hold(&mut self, now_ms: u64) -> bool {
        let me = self.me();
        let Some(primary) = me.primary.filter(|_| me.is_replica()) else {
            self.ack_hold = None;
            return false;
        };
        if let Some(hold) = &self.ack_hold {
            let released = hold.primary != primary
                || (now_ms > hold.until_ms
                    && hold.candidate.is_none_or(|c| {
                        self.nodes.get(&c).is_none_or(|n| {
                            n.data_received_ms > hold.until_ms
                                && n.is_replica()
                                && n.primary == Some(primary)
                        })
                    }));
            if released {
                self.ack_hold = None;
            }
        }
        if broken_rules_no_ack_hold() {
            return false;
        }
        self.ack_hold.is_some() || self.nodes.get(&primary).is_some_and(|p| p.failed())
    }

    /// Tells the driver when to hold or resume acknowledgements (called as each batch ends).
    /// A hold goes first in the batch, before any vote it sends; a resume goes last.
    pub(super) fn update_ack_hold(&mut self, now_ms: u64) {
        let hold = self.acks_must_hold(now_ms);
        if hold == self.acks_held {
            return;
        }
        self.acks_held = hold;
        if hold {
            self.out.insert(0, Action::HoldAcks);
            self.log(Event::AcksHeld);
        } else {
            self.log(Event::AcksResumed);
            self.out.push(Action::ResumeAcks);
        }
    }

    /// Tells the driver which sibling to fetch from (called as each batch ends): while our
    /// primary is FAIL, the sibling replica we can reach that holds the most beyond us on
    /// streams where it is ahead. A source keeps its place while it is still ahead on any
    /// stream (the streams it is ahead on are added to it), so the driver does not restart
    /// a fetch at every gossip.
    pub(super) fn update_catch_up(&mut self, now_ms: u64) {
        let want = self.catch_up_source();
        if want == self.catch_up {
            return;
        }
        let caught_up = want.is_none();
        self.catch_up.clone_from(&want);
        self.log(Event::CatchUp(want.clone()));
        self.out.push(Action::CatchUp { from: want });
        if caught_up && self.me().is_replica() {
            // Our offsets grew: tell the siblings, so their ranks (and ours in their eyes)
            // are right before anyone asks for votes.
            self.broadcast_pong(now_ms, true);
        }
    }

    fn catch_up_source(&self) -> Option<CatchUpSource> {
        let me = self.me();
        let primary = me.primary.filter(|_| me.is_replica())?;
        // (The broken offset rule leaves catch-up out too: it would hide the lagging winner.)
        if !self.nodes.get(&primary).is_some_and(|p| p.failed())
            || broken_rules_no_catch_up()
            || broken_rules_rank_ignores_offsets()
        {
            return None;
        }
        let ahead = |n: &super::Node| -> Vec<usize> {
            n.stream_offsets
                .iter()
                .enumerate()
                .filter(|(i, o)| **o > self.stream_offsets.get(*i).copied().unwrap_or(0))
                .map(|(i, _)| i)
                .collect()
        };
        let reachable = |n: &&super::Node| !n.failed() && self.link_up(n.link);
        if let Some(current) = &self.catch_up {
            if let Some(n) = self
                .siblings()
                .filter(reachable)
                .find(|n| n.id == current.node)
            {
                let more = ahead(n);
                if !more.is_empty() {
                    let mut streams = current.streams.clone();
                    streams.extend(more);
                    streams.sort_unstable();
                    streams.dedup();
                    return Some(CatchUpSource {
                        streams,
                        ..current.clone()
                    });
                }
            }
        }
        self.siblings()
            .filter(reachable)
            .filter_map(|n| {
                let streams = ahead(n);
                let gap: u64 = streams
                    .iter()
                    .map(|&i| {
                        n.stream_offsets[i] - self.stream_offsets.get(i).copied().unwrap_or(0)
                    })
                    .sum();
                (gap > 0).then_some((gap, n, streams))
            })
            .max_by_key(|(gap, n, _)| (*gap, std::cmp::Reverse(n.id)))
            .map(|(_, n, streams)| CatchUpSource {
                node: n.id,
                ip: n.ip.clone(),
                port: n.port,
                streams,
            })
    }

    // -----------------------------------------------------------------------------------------
    // Manual failover

    /// CLUSTER FAILOVER (default): ask the primary to pause, then wait for its offset.
    pub(super) fn start_manual_failover(&mut self, now_ms: u64, force: bool) {
        self.reset_manual_failover();
        self.manual.end_ms = Some(now_ms + MANUAL_FAILOVER_TIMEOUT_MS);
        if force {
            self.manual.can_start = true;
            self.log(Event::ManualFailover("forced, starting election now"));
            return;
        }
        self.ask_primary_to_pause(now_ms);
        self.log(Event::ManualFailover("asked the primary to pause writes"));
    }

    /// Sends MFSTART to our primary. Valkey sends it once; a reset link then loses it and the
    /// failover times out (the simulator's `ManualFailover` scenario found it), so until the
    /// paused offset arrives we ask again every tick.
    fn ask_primary_to_pause(&mut self, now_ms: u64) {
        self.manual.asked_ms = now_ms;
        let Some(primary) = self.me().primary else {
            return;
        };
        if let Some(link) = self.nodes.get(&primary).and_then(|p| p.link) {
            if self.link_up(Some(link)) {
                self.send(link, Body::MfStart);
            }
        }
    }

    /// Primary side: a replica of ours asks for a manual failover.
    pub(super) fn on_mf_start(&mut self, now_ms: u64, link: LinkId, sender: NodeId) {
        if self.nodes.get(&sender).and_then(|n| n.primary) != Some(self.myself)
            || !self.me().is_primary()
        {
            return;
        }
        if self.manual.paused_for == Some(sender) {
            // Asked again (the answer may have been lost): the pause stands; announce the
            // offset again once it holds.
            if self.manual.pause_confirmed {
                let target = self.nodes[&sender]
                    .link
                    .filter(|l| self.link_up(Some(*l)))
                    .unwrap_or(link);
                self.send_ping(now_ms, target, sender, false);
            }
            return;
        }
        self.reset_manual_failover();
        self.manual.paused_for = Some(sender);
        self.manual.primary_end_ms = Some(now_ms + MANUAL_FAILOVER_TIMEOUT_MS);
        self.out.push(Action::PauseWrites {
            until_ms: now_ms + MANUAL_FAILOVER_TIMEOUT_MS * 2,
        });
        self.log(Event::ManualFailover("replica asked, pausing writes"));
        let target = self.nodes[&sender]
            .link
            .filter(|l| self.link_up(Some(*l)))
            .unwrap_or(link);
        self.send_ping(now_ms, target, sender, false);
    }

    /// Primary side: the pause asked for with [`Action::PauseWrites`] is in effect and no
    /// client write will move `offset` until it ends. Only now is our offset announced as the
    /// paused one: announced earlier, it could miss writes that were already acknowledged but
    /// not yet counted, and the replica would win without them.
    pub(super) fn on_writes_paused(&mut self, now_ms: u64, offset: u64) {
        let Some(replica) = self
            .manual
            .paused_for
            .filter(|_| !self.manual.pause_confirmed)
        else {
            return;
        };
        self.manual.pause_confirmed = true;
        self.repl_offset = offset;
        self.log(Event::ManualFailover("writes paused"));
        if let Some(link) = self.nodes.get(&replica).and_then(|n| n.link) {
            if self.link_up(Some(link)) {
                self.send_ping(now_ms, link, replica, false);
            }
        }
    }

    /// Replica side: our primary announced its offset while paused.
    pub(super) fn note_manual_failover_offset(&mut self, sender: NodeId, hdr: &SenderInfo) {
        if self.manual.end_ms.is_some()
            && self.me().is_replica()
            && self.me().primary == Some(sender)
            && hdr.paused
            && self.manual.primary_offset.is_none()
        {
            self.manual.primary_offset = Some(hdr.repl_offset);
        }
    }

    pub(super) fn manual_failover_tick(&mut self, now_ms: u64) {
        if self.manual.end_ms.is_some_and(|end| now_ms > end)
            || self.manual.primary_end_ms.is_some_and(|end| now_ms > end)
        {
            self.log(Event::ManualFailover("timed out"));
            self.reset_manual_failover();
            return;
        }
        if self.manual.end_ms.is_some()
            && !self.manual.can_start
            && self
                .manual
                .primary_offset
                .is_some_and(|o| self.repl_offset >= o)
        {
            self.manual.can_start = true;
            self.log(Event::ManualFailover("caught up with the paused primary"));
        }
        if self.manual.end_ms.is_some()
            && !self.manual.can_start
            && self.manual.primary_offset.is_none()
            && now_ms.saturating_sub(self.manual.asked_ms) >= super::TICK_INTERVAL_MS
        {
            self.ask_primary_to_pause(now_ms);
        }
    }

    pub(super) fn reset_manual_failover(&mut self) {
        if self.manual.paused_for.is_some() {
            self.out.push(Action::ResumeWrites);
        }
        self.manual = ManualFailover::default();
    }
}

/// Defines `fn $name() -> bool`: the simulator's switch `sim::broken_rules::$switch` in test
/// and simulator builds (a rule deliberately broken, to show the simulator catches it), and
/// always `false` otherwise.
macro_rules! broken_rule {
    ($(#[$doc:meta])* $name:ident => $switch:ident) => {
        $(#[$doc])*
        fn $name() -> bool {
            #[cfg(any(test, feature = "sim"))]
            {
                crate::sim::broken_rules::$switch()
            }
            #[cfg(not(any(test, feature = "sim")))]
            {
                false
            }
        }
    };
}

broken_rule!(
    /// Candidates never yield to a better-ranked sibling.
    broken_rules_no_yield => no_yield
);
broken_rule!(
    /// Replicas never hold their acknowledgements (and vote without them held).
    broken_rules_no_ack_hold => no_ack_hold
);
broken_rule!(
    /// Elections ignore offsets (ranks, yielding, the up-to-date vote check, catch-up).
    broken_rules_rank_ignores_offsets => rank_ignores_offsets
);
broken_rule!(
    /// Votes compare the sum of the stream offsets, as corekey did before (a sibling with a
    /// larger sum can lack one stream's acknowledged writes).
    broken_rules_sum_offsets => sum_offsets
);
broken_rule!(
    /// A candidate wins on votes alone, without its siblings' statements.
    broken_rules_no_statements => no_statements
);
broken_rule!(
    /// Replicas never fetch from a sibling.
    broken_rules_no_catch_up => no_catch_up
);

/// Whether `a` holds at least `b` on every stream (a stream missing from `a` is 0).
pub(crate) fn covers(a: &[u64], b: &[u64]) -> bool {
    b.iter()
        .enumerate()
        .all(|(i, &o)| a.get(i).copied().unwrap_or(0) >= o)
}
