//! The timer: reconnecting links, pinging, PFAIL after the node timeout, PFAIL → FAIL by quorum,
//! handshake and ban expiry, `cluster_state`, and the election clock (Valkey's `clusterCron`).

use super::{
    Action, ClusterState, Event, LinkId, LinkInfo, FAIL_REPORT_VALIDITY_MULT, WRITABLE_DELAY_MS,
};
use crate::slot::SLOT_COUNT;
use crate::topology::{NodeFlags, NodeId, SlotBitmap};
use crate::wire::Body;

impl ClusterState {
    pub(super) fn on_tick(&mut self, now_ms: u64) {
        self.tick_count += 1;
        let nt = self.cfg.node_timeout_ms;
        let handshake_timeout = nt.max(1000);

        self.banned.retain(|_, until| *until > now_ms);

        // Handshakes that never completed are dropped; other nodes get a link if they lack one.
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in &ids {
            let Some(n) = self.nodes.get(id) else {
                continue;
            };
            if n.id == self.myself || n.flags.contains(NodeFlags::NOADDR) {
                continue;
            }
            if n.in_handshake() && now_ms.saturating_sub(n.created_ms) > handshake_timeout {
                self.del_node(*id);
                self.log(Event::NodeRemoved(*id));
                continue;
            }
            if n.link.is_none()
                && !n.ip.is_empty()
                && n.bus_port != 0
                && self.links.len() < super::MAX_LINKS
            {
                let (ip, bus_port) = (n.ip.clone(), n.bus_port);
                let link = self.alloc_link();
                self.links.insert(
                    link,
                    LinkInfo {
                        node: Some(*id),
                        outbound: true,
                        up: false,
                        created_ms: now_ms,
                        peer_ip: ip.clone(),
                    },
                );
                let n = self.nodes.get_mut(id).expect("present");
                n.link = Some(link);
                // The ping goes out as soon as the link is up; count from now so a node we can
                // never connect to still times out.
                if n.ping_sent_ms == 0 {
                    n.ping_sent_ms = now_ms;
                }
                self.out.push(Action::Connect { link, ip, bus_port });
            }
        }

        // About once a second, ping the node with the oldest pong among five random ones.
        if self.tick_count.is_multiple_of(10) && !ids.is_empty() {
            let mut best: Option<(u64, NodeId)> = None;
            for _ in 0..5 {
                let id = ids[self.rng.below(ids.len() as u64) as usize];
                let Some(n) = self.nodes.get(&id) else {
                    continue;
                };
                if !self.link_up(n.link)
                    || n.ping_sent_ms != 0
                    || n.flags
                        .intersects(NodeFlags::MYSELF.union(NodeFlags::HANDSHAKE))
                {
                    continue;
                }
                if best.is_none_or(|(t, _)| n.pong_received_ms < t) {
                    best = Some((n.pong_received_ms, id));
                }
            }
            if let Some((_, id)) = best {
                if let Some(link) = self.nodes[&id].link {
                    self.send_ping(now_ms, link, id, false);
                }
            }
        }

        let ping_interval = nt / 2;
        let mf_replica = self.manual.paused_for;
        for id in &ids {
            let Some(n) = self.nodes.get(id) else {
                continue;
            };
            if n.flags.intersects(
                NodeFlags::MYSELF
                    .union(NodeFlags::NOADDR)
                    .union(NodeFlags::HANDSHAKE),
            ) {
                continue;
            }
            let ping_delay = now_ms.saturating_sub(n.ping_sent_ms);
            let data_delay = now_ms.saturating_sub(n.data_received_ms);
            // Connected, pinged, but silent for half the timeout: reconnect, the link may be bad
            // even though the node is alive.
            if let Some(link) = n.link {
                let age = self
                    .links
                    .get(&link)
                    .map_or(0, |l| now_ms.saturating_sub(l.created_ms));
                if self.link_up(Some(link))
                    && age > nt
                    && n.ping_sent_ms != 0
                    && ping_delay > nt / 2
                    && data_delay > nt / 2
                {
                    self.close_link(link);
                }
            }
            let Some(n) = self.nodes.get(id) else {
                continue;
            };
            if self.link_up(n.link)
                && n.ping_sent_ms == 0
                && now_ms.saturating_sub(n.pong_received_ms) > ping_interval
            {
                let link = n.link.expect("link is up");
                self.send_ping(now_ms, link, *id, false);
                continue;
            }
            // During a manual failover the primary pings the replica every tick, so the replica
            // learns the paused offset quickly.
            if mf_replica == Some(*id) && self.me().is_primary() && self.link_up(n.link) {
                let link = n.link.expect("link is up");
                self.send_ping(now_ms, link, *id, false);
                continue;
            }
        }
        self.detect_failures(now_ms);

        self.manual_failover_tick(now_ms);
        if self.me().is_replica() {
            self.handle_replica_failover(now_ms);
        }
        self.replica_migration_tick(now_ms);
        self.update_cluster_state(now_ms);
    }

    /// A deadline of [`ClusterState::next_deadline_ms`] came between two ticks: the checks
    /// that depend on time alone, without the tick's pings and reconnects.
    pub(super) fn on_timer(&mut self, now_ms: u64) {
        self.detect_failures(now_ms);
        if self.me().is_replica() {
            self.handle_replica_failover(now_ms);
        }
        self.update_cluster_state(now_ms);
    }

    /// PFAIL for every node pinged (or cut off) and silent for longer than the node timeout;
    /// new ones are reported to the electorate at once.
    fn detect_failures(&mut self, now_ms: u64) {
        let nt = self.cfg.node_timeout_ms;
        let single_voter = {
            let e = self.electorate();
            e.members.len() == 1 && e.members.contains(&self.myself)
        };
        let ids: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.times_out_at(nt).is_some_and(|at| now_ms >= at))
            .map(|n| n.id)
            .collect();
        for id in &ids {
            self.nodes
                .get_mut(id)
                .expect("present")
                .flags
                .insert(NodeFlags::PFAIL);
            self.log(Event::PFail(*id));
            self.dirty_topology = true;
            if single_voter {
                self.mark_failing_if_needed(now_ms, *id);
            }
        }
        if !ids.is_empty() {
            self.spread_failure_reports(now_ms);
        }
    }

    /// The next local time at which something happens without any input, if it is before the
    /// next regular tick would see it: a node's PFAIL, or the start of our election. The
    /// driver then sends [`super::Input::Timer`], so detection and elections do not wait for a
    /// tick (up to [`super::TICK_INTERVAL_MS`] each). Only times after `now_ms` are returned.
    pub fn next_deadline_ms(&self, now_ms: u64) -> Option<u64> {
        let nt = self.cfg.node_timeout_ms;
        let pfail = self.nodes.values().filter_map(|n| n.times_out_at(nt));
        let replica = self.me().is_replica();
        let election = self.election.pending_start_ms().filter(|_| replica);
        let auth_timeout = (nt * 2).max(self.cfg.failover_min_auth_timeout_ms);
        let ask = self
            .election
            .next_ask_ms(self.cfg.failover_fixed_delay_ms, auth_timeout)
            .filter(|_| replica);
        pfail
            .chain(election)
            .chain(ask)
            .filter(|&t| t > now_ms)
            .min()
    }

    /// A new PFAIL goes at once to the other members of the electorate, in the gossip of a
    /// pong (which leaves their ping timers alone), instead of with the next regular ping up
    /// to half a node timeout later: FAIL needs a quorum of their reports (in a single replica
    /// set, both replicas'). Valkey waits for the regular gossip, which is most of why its
    /// failovers take well over the node timeout. One pong per member and new failure.
    fn spread_failure_reports(&mut self, now_ms: u64) {
        let electorate = self.electorate();
        let targets: Vec<(LinkId, NodeId)> = electorate
            .members
            .iter()
            .filter(|m| **m != self.myself)
            .filter_map(|m| {
                let n = self.nodes.get(m)?;
                if n.flags.intersects(NodeFlags::PFAIL.union(NodeFlags::FAIL)) {
                    return None;
                }
                n.link.filter(|l| self.link_up(Some(*l))).map(|l| (l, *m))
            })
            .collect();
        for (link, id) in targets {
            self.send_pong(now_ms, link, Some(id));
        }
    }

    /// PFAIL → FAIL: when we see the node timed out and a majority of the electorate (counting
    /// us, if we are a member) reported it PFAIL or FAIL within the validity window, flag it FAIL
    /// and tell everyone. Either the FAIL reaches the majority side, or there was no majority and
    /// no replica can be elected anyway; FAIL is undone later if the node comes back.
    pub(super) fn mark_failing_if_needed(&mut self, now_ms: u64, id: NodeId) {
        let validity = self.cfg.node_timeout_ms * FAIL_REPORT_VALIDITY_MULT;
        let electorate = self.electorate();
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if !n.timed_out() || n.failed() {
            return;
        }
        n.fail_reports
            .retain(|_, t| now_ms.saturating_sub(*t) <= validity);
        let mut failures = n
            .fail_reports
            .keys()
            .filter(|r| electorate.members.contains(r))
            .count();
        if electorate.members.contains(&self.myself) {
            failures += 1;
        }
        if failures < electorate.quorum() {
            return;
        }
        n.flags.remove(NodeFlags::PFAIL);
        n.flags.insert(NodeFlags::FAIL);
        n.fail_time_ms = now_ms;
        self.log(Event::Fail(id));
        self.broadcast(Body::Fail { node: id });
        self.changed();
        self.primary_failed(now_ms, id);
    }

    /// `id` was just flagged FAIL: if it is our primary, schedule the election now rather
    /// than at the next tick.
    pub(super) fn primary_failed(&mut self, now_ms: u64, id: NodeId) {
        if self.me().is_replica() && self.me().primary == Some(id) {
            self.handle_replica_failover(now_ms);
        }
    }

    /// `cluster_state`: fail when a slot is unserved (with full coverage required) or when we
    /// cannot reach a majority of the electorate (we are on the minority side of a partition,
    /// and our writes could be overruled). A primary waits a little before going back to ok, so
    /// a configuration update can reach it first.
    pub(super) fn update_cluster_state(&mut self, now_ms: u64) {
        let first = *self.first_state_update_ms.get_or_insert(now_ms);
        if self.me().is_primary()
            && !self.cluster_ok
            && now_ms.saturating_sub(first) < WRITABLE_DELAY_MS
        {
            return;
        }
        let mut ok = true;
        if self.cfg.require_full_coverage {
            let mut covered = SlotBitmap::new();
            let mut words = *covered.words();
            for n in self.nodes.values().filter(|n| !n.failed()) {
                for (w, s) in words.iter_mut().zip(n.slots.words().iter()) {
                    *w |= *s;
                }
            }
            covered = SlotBitmap::from_words(words);
            ok = covered.count() == usize::from(SLOT_COUNT);
        }
        let electorate = self.electorate();
        let reachable = electorate
            .members
            .iter()
            .filter(|id| {
                self.nodes
                    .get(id)
                    .is_some_and(|n| !n.flags.intersects(NodeFlags::PFAIL.union(NodeFlags::FAIL)))
            })
            .count();
        if reachable < electorate.quorum() {
            ok = false;
            self.among_minority_ms = now_ms;
        }
        if ok != self.cluster_ok {
            let rejoin_delay = self.cfg.node_timeout_ms.clamp(500, 5000);
            if ok
                && self.me().is_primary()
                && now_ms.saturating_sub(self.among_minority_ms) < rejoin_delay
            {
                return;
            }
            self.cluster_ok = ok;
            self.log(Event::ClusterState { ok });
            self.dirty_topology = true;
        }
    }
}
