//! Links and received messages: the MEET handshake, PING/PONG with gossip, FAIL, UPDATE, role
//! changes, "last failover wins" slot ownership and configEpoch collisions.
//!
//! The order of the steps for a ping, pong or meet follows Valkey's `clusterProcessPacket`,
//! because later steps read what earlier ones set: epochs first, then the handshake, then
//! liveness, then roles, then slots (which need the roles), then collisions, then gossip.

use super::{Action, ClusterState, Event, LinkId, LinkInfo, Node, FAIL_UNDO_TIME_MULT, MAX_NODES};
use crate::slot::Slot;
use crate::topology::{NodeFlags, NodeId, SlotBitmap};
use crate::wire::{Body, GossipEntry, Message, SenderInfo, MAX_GOSSIP_ENTRIES};

impl ClusterState {
    pub(super) fn on_link_up(&mut self, now_ms: u64, link: LinkId) {
        let Some(info) = self.links.get_mut(&link) else {
            return;
        };
        if !info.outbound || info.up {
            return;
        }
        info.up = true;
        let Some(node) = info.node.and_then(|id| self.nodes.get(&id)) else {
            return;
        };
        // Ping at once: a connection that carries nothing would hide a failure.
        let meet = node.flags.contains(NodeFlags::MEET);
        let old_ping = node.ping_sent_ms;
        let id = node.id;
        self.send_ping(now_ms, link, id, meet);
        if old_ping != 0 {
            if let Some(n) = self.nodes.get_mut(&id) {
                n.ping_sent_ms = old_ping;
            }
        }
    }

    pub(super) fn on_link_down(&mut self, now_ms: u64, link: LinkId) {
        if let Some(info) = self.links.remove(&link) {
            if let Some(node) = info.node.and_then(|id| self.nodes.get_mut(&id)) {
                if node.link == Some(link) {
                    node.link = None;
                    // Our link to the node broke while it was up: from now on we wait to hear
                    // from the node, as if a ping were out (the reconnect's first ping keeps
                    // this start, see `on_link_up`, and its pong clears it). Counting from the
                    // next tick's reconnect instead adds up to a tick to the detection of a
                    // crashed process. Only our own link: a ping must follow on it, or
                    // nothing would ever clear the mark.
                    if info.up && node.ping_sent_ms == 0 && !node.in_handshake() {
                        node.ping_sent_ms = now_ms;
                    }
                }
                if node.inbound_link == Some(link) {
                    node.inbound_link = None;
                }
            }
        }
    }

    /// Sends a ping (or meet) with gossip on `link` to `to`, and starts its pong timer.
    pub(super) fn send_ping(&mut self, now_ms: u64, link: LinkId, to: NodeId, meet: bool) {
        let gossip = self.build_gossip(now_ms, Some(to));
        let outbound = self.links.get(&link).is_some_and(|l| l.outbound);
        if outbound {
            if let Some(n) = self.nodes.get_mut(&to) {
                n.ping_sent_ms = now_ms;
            }
        }
        let body = if meet {
            Body::Meet { gossip }
        } else {
            Body::Ping { gossip }
        };
        self.send(link, body);
    }

    pub(super) fn send_pong(&mut self, now_ms: u64, link: LinkId, to: Option<NodeId>) {
        let gossip = self.build_gossip(now_ms, to);
        self.send(link, Body::Pong { gossip });
    }

    /// Pongs every connected node (after a change others must learn quickly).
    pub(super) fn broadcast_pong(&mut self, now_ms: u64, only_my_shard: bool) {
        let my_primary = self.me().primary;
        let targets: Vec<(LinkId, NodeId)> = self
            .nodes
            .values()
            .filter(|n| n.id != self.myself && !n.in_handshake())
            .filter(|n| !only_my_shard || (n.is_replica() && n.primary == my_primary))
            .filter_map(|n| {
                n.link
                    .filter(|l| self.links.get(l).is_some_and(|i| i.up))
                    .map(|l| (l, n.id))
            })
            .collect();
        for (link, id) in targets {
            self.send_pong(now_ms, link, Some(id));
        }
    }

    /// A few random nodes, then every PFAIL node, as Valkey's `clusterSendPing` picks them:
    /// max(3, nodes / 10) healthy entries so failure reports reach a majority within the report
    /// validity window, plus all PFAIL nodes so reports spread fast; never more than
    /// [`MAX_GOSSIP_ENTRIES`].
    fn build_gossip(&mut self, now_ms: u64, receiver: Option<NodeId>) -> Vec<GossipEntry> {
        let candidates: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.id != self.myself && Some(n.id) != receiver)
            .filter(|n| {
                !n.flags
                    .intersects(NodeFlags::HANDSHAKE.union(NodeFlags::NOADDR))
            })
            .filter(|n| !n.timed_out())
            .filter(|n| n.link.is_some() || !n.slots.is_empty())
            .map(|n| n.id)
            .collect();
        let wanted = (self.nodes.len() / 10)
            .max(3)
            .min(candidates.len())
            .min(MAX_GOSSIP_ENTRIES);
        let mut picked: Vec<NodeId> = Vec::with_capacity(wanted);
        let mut pool = candidates;
        while picked.len() < wanted && !pool.is_empty() {
            let i = self.rng.below(pool.len() as u64) as usize;
            picked.push(pool.swap_remove(i));
        }
        let pfail: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.timed_out() && n.id != self.myself)
            .filter(|n| {
                !n.flags
                    .intersects(NodeFlags::HANDSHAKE.union(NodeFlags::NOADDR))
            })
            .map(|n| n.id)
            .collect();
        for id in pfail {
            if picked.len() >= MAX_GOSSIP_ENTRIES {
                break;
            }
            picked.push(id);
        }
        picked
            .iter()
            .filter_map(|id| self.nodes.get(id))
            .map(|n| {
                let mut flags = n.flags;
                flags.remove(NodeFlags::MYSELF.union(NodeFlags::MEET));
                GossipEntry {
                    id: n.id,
                    ip: n.ip.clone(),
                    port: n.port,
                    bus_port: n.bus_port,
                    flags,
                    pong_age_ms: now_ms.saturating_sub(n.pong_received_ms),
                }
            })
            .collect()
    }

    pub(super) fn on_message(&mut self, now_ms: u64, link: LinkId, msg: Message) {
        let Some(info) = self.links.get(&link).cloned() else {
            return; // a link we already closed
        };
        let hdr = msg.sender;
        let sender_id = hdr.id;
        let sender_known = self
            .nodes
            .get(&sender_id)
            .is_some_and(|n| !n.in_handshake() && n.id != self.myself);
        let sender = sender_known.then_some(sender_id);
        let claims_primary = hdr.primary.is_none();
        let was_replica = sender.is_some_and(|s| self.nodes[&s].is_replica());
        let was_primary = sender.is_some_and(|s| self.nodes[&s].is_primary());

        if let Some(s) = sender {
            let node = self.nodes.get_mut(&s).expect("sender is known");
            node.data_received_ms = now_ms;
            node.repl_offset = hdr.repl_offset;
            node.stream_offsets.clone_from(&hdr.stream_offsets);
            if !info.outbound && node.inbound_link != Some(link) {
                node.inbound_link = Some(link);
                if let Some(l) = self.links.get_mut(&link) {
                    l.node = Some(s);
                }
            }
            self.observe_epoch(hdr.current_epoch);
            let node = self.nodes.get_mut(&s).expect("sender is known");
            if claims_primary && hdr.config_epoch > node.config_epoch {
                node.config_epoch = hdr.config_epoch;
                self.changed();
            }
            self.note_manual_failover_offset(s, &hdr);
        }

        match msg.body {
            Body::Ping { gossip } => {
                self.on_ping_like(now_ms, link, &info, &hdr, sender, false, &gossip);
                self.on_config_message(
                    now_ms,
                    link,
                    &info,
                    &hdr,
                    sender,
                    PingKind::Ping,
                    was_primary,
                    was_replica,
                    &gossip,
                );
            }
            Body::Meet { gossip } => {
                self.on_ping_like(now_ms, link, &info, &hdr, sender, true, &gossip);
                self.on_config_message(
                    now_ms,
                    link,
                    &info,
                    &hdr,
                    sender,
                    PingKind::Meet,
                    was_primary,
                    was_replica,
                    &gossip,
                );
            }
            Body::Pong { gossip } => {
                self.on_config_message(
                    now_ms,
                    link,
                    &info,
                    &hdr,
                    sender,
                    PingKind::Pong,
                    was_primary,
                    was_replica,
                    &gossip,
                );
            }
            Body::Fail { node } => {
                if sender.is_none() || node == self.myself {
                    return;
                }
                if let Some(n) = self.nodes.get_mut(&node) {
                    if !n.failed() {
                        n.flags.insert(NodeFlags::FAIL);
                        n.flags.remove(NodeFlags::PFAIL);
                        n.fail_time_ms = now_ms;
                        self.log(Event::Fail(node));
                        self.changed();
                        self.primary_failed(now_ms, node);
                    }
                }
            }
            Body::Update {
                node,
                config_epoch,
                slots,
            } => {
                if sender.is_none() {
                    return;
                }
                let Some(n) = self.nodes.get(&node) else {
                    return;
                };
                if n.config_epoch >= config_epoch {
                    return;
                }
                if n.is_replica() {
                    self.set_node_as_primary(node);
                }
                if let Some(n) = self.nodes.get_mut(&node) {
                    n.config_epoch = config_epoch;
                }
                self.changed();
                self.update_slots_config_with(node, config_epoch, &slots);
            }
            Body::AuthRequest {
                force_ack,
                electorate_digest,
            } => {
                if let Some(s) = sender {
                    self.maybe_vote(now_ms, link, s, &hdr, force_ack, electorate_digest);
                }
            }
            Body::AuthAck { epoch, vote } => {
                if let Some(s) = sender {
                    self.on_vote(now_ms, s, epoch, vote);
                }
            }
            Body::MfStart => {
                if let Some(s) = sender {
                    self.on_mf_start(now_ms, link, s);
                }
            }
            Body::Publish {
                sharded,
                channel,
                message,
            } => {
                // Only from a node we know, as Valkey (a handshake may not publish).
                if sender.is_some() {
                    self.out.push(Action::Deliver {
                        sharded,
                        channel,
                        message,
                    });
                }
            }
        }
    }

    /// PING and MEET: learn our address, add an unknown MEET sender as a handshake, answer PONG.
    #[allow(clippy::too_many_arguments)]
    fn on_ping_like(
        &mut self,
        now_ms: u64,
        link: LinkId,
        info: &LinkInfo,
        hdr: &SenderInfo,
        sender: Option<NodeId>,
        meet: bool,
        gossip: &[GossipEntry],
    ) {
        if sender.is_none() && meet && self.nodes.len() < MAX_NODES {
            // We cannot trust the id in the header yet: add the address as a handshake node and
            // learn the id from the pong to our own ping, as Valkey does.
            let ip = if hdr.ip.is_empty() {
                info.peer_ip.clone()
            } else {
                hdr.ip.clone()
            };
            if !self.handshake_in_progress(&ip, hdr.port, hdr.bus_port) && !ip.is_empty() {
                let temp = NodeId::random(&mut self.rng);
                let mut node =
                    Node::new(temp, NodeFlags::HANDSHAKE.union(NodeFlags::PRIMARY), now_ms);
                node.ip = ip;
                node.port = hdr.port;
                node.bus_port = hdr.bus_port;
                self.nodes.insert(temp, node);
                self.dirty_topology = true;
            }
            // A MEET sender is trusted by the message type: take its gossip too.
            self.process_gossip(now_ms, Some(hdr.id), gossip, true);
        }
        self.send_pong(now_ms, link, sender);
    }

    pub(super) fn handshake_in_progress(&self, ip: &str, port: u16, bus_port: u16) -> bool {
        self.nodes
            .values()
            .any(|n| n.in_handshake() && n.ip == ip && n.port == port && n.bus_port == bus_port)
    }

    #[allow(clippy::too_many_arguments)]
    fn on_config_message(
        &mut self,
        now_ms: u64,
        link: LinkId,
        info: &LinkInfo,
        hdr: &SenderInfo,
        sender: Option<NodeId>,
        kind: PingKind,
        was_primary: bool,
        was_replica: bool,
        gossip: &[GossipEntry],
    ) {
        if let Some(s) = sender {
            let node = self.nodes.get_mut(&s).expect("sender is known");
            if node.flags.contains(NodeFlags::MEET) {
                node.flags.remove(NodeFlags::MEET);
            }
        }

        // Our outbound link: the handshake completes, or the peer is not who we thought.
        if info.outbound {
            let Some(link_node) = info.node else { return };
            let in_handshake = self.nodes.get(&link_node).is_some_and(|n| n.in_handshake());
            if in_handshake {
                if let Some(known) = sender {
                    // We already know this node by id: maybe it moved; drop the handshake.
                    self.update_address(known, &hdr.ip, info, hdr, true);
                    self.del_node(link_node);
                    return;
                }
                if hdr.id == self.myself || self.banned.contains_key(&hdr.id) {
                    self.del_node(link_node);
                    return;
                }
                self.rename_handshake(link_node, hdr, now_ms);
                // From here on the sender is known.
                return self.on_config_message(
                    now_ms,
                    link,
                    &LinkInfo {
                        node: Some(hdr.id),
                        ..info.clone()
                    },
                    hdr,
                    Some(hdr.id),
                    kind,
                    hdr.primary.is_none(),
                    hdr.primary.is_some(),
                    gossip,
                );
            } else if link_node != hdr.id {
                // The address now answers with another id: forget the address.
                if let Some(n) = self.nodes.get_mut(&link_node) {
                    n.flags.insert(NodeFlags::NOADDR);
                    n.ip.clear();
                    n.port = 0;
                    n.bus_port = 0;
                }
                self.log(Event::PeerMismatch(link_node));
                self.close_link(link);
                self.changed();
                return;
            }
        }

        let Some(s) = sender else { return };

        // The nofailover flag is dynamic: trust the latest announcement.
        if let Some(n) = self.nodes.get_mut(&s) {
            let nofailover = hdr.flags.contains(NodeFlags::NOFAILOVER);
            if n.flags.contains(NodeFlags::NOFAILOVER) != nofailover {
                n.flags.set(NodeFlags::NOFAILOVER, nofailover);
                self.dirty_topology = true;
            }
        }

        // So is the announced hostname (Valkey sends it in a ping extension): without this a
        // peer's `cluster-announce-hostname` never reached CLUSTER NODES/SLOTS/SHARDS here.
        if let Some(n) = self.nodes.get_mut(&s) {
            if n.hostname != hdr.hostname {
                n.hostname.clone_from(&hdr.hostname);
                self.changed();
            }
        }

        if kind == PingKind::Ping && !info.outbound {
            self.update_address(s, &hdr.ip, info, hdr, false);
        }

        if info.outbound && kind == PingKind::Pong {
            let node = self.nodes.get_mut(&s).expect("sender is known");
            node.pong_received_ms = now_ms;
            node.ping_sent_ms = 0;
            if node.timed_out() {
                node.flags.remove(NodeFlags::PFAIL);
                self.dirty_topology = true;
            } else if node.failed() {
                self.clear_failure_if_needed(now_ms, s);
            }
        }

        // The sender's shard id: a primary's is authoritative; ours follows our primary's.
        if self.nodes[&s].shard_id != hdr.shard_id {
            self.nodes.get_mut(&s).expect("known").shard_id = hdr.shard_id;
            self.changed();
        }
        if self.me().primary == Some(s) && self.me().shard_id != hdr.shard_id {
            self.me_mut().shard_id = hdr.shard_id;
            self.changed();
        }

        self.apply_role(s, hdr, was_primary);

        let slots_differ = self.nodes[&s].slots != hdr.slots;
        if hdr.primary.is_none() && (was_replica || slots_differ) {
            self.update_slots_config_with(s, hdr.config_epoch, &hdr.slots);
            self.send_update_if_stale(link, s, hdr);
        }

        // Our configEpoch collides with another primary's: the smaller id moves.
        if self.me().is_primary()
            && hdr.primary.is_none()
            && hdr.config_epoch == self.me().config_epoch
        {
            self.handle_epoch_collision(s);
        }

        self.process_gossip(now_ms, Some(s), gossip, false);
    }

    fn rename_handshake(&mut self, temp: NodeId, hdr: &SenderInfo, now_ms: u64) {
        let Some(mut node) = self.nodes.remove(&temp) else {
            return;
        };
        node.id = hdr.id;
        node.flags
            .remove(NodeFlags::HANDSHAKE.union(NodeFlags::PRIMARY));
        node.flags.insert(if hdr.primary.is_none() {
            NodeFlags::PRIMARY
        } else {
            NodeFlags::REPLICA
        });
        node.created_ms = now_ms;
        // This pong is the first message we take from the node: its epochs count already, or
        // the slots it claims would be bound at configEpoch 0.
        if hdr.primary.is_none() {
            node.config_epoch = hdr.config_epoch;
        }
        node.repl_offset = hdr.repl_offset;
        node.stream_offsets.clone_from(&hdr.stream_offsets);
        node.data_received_ms = now_ms;
        self.observe_epoch(hdr.current_epoch);
        for link in [node.link, node.inbound_link].into_iter().flatten() {
            if let Some(l) = self.links.get_mut(&link) {
                l.node = Some(hdr.id);
            }
        }
        self.nodes.insert(hdr.id, node);
        self.log(Event::HandshakeDone(hdr.id));
        self.changed();
    }

    /// Takes the address the node announces (or the one its inbound link comes from).
    fn update_address(
        &mut self,
        id: NodeId,
        announced_ip: &str,
        info: &LinkInfo,
        hdr: &SenderInfo,
        from_handshake: bool,
    ) {
        let ip = if !announced_ip.is_empty() {
            announced_ip.to_string()
        } else if from_handshake {
            // The handshake link was made to the address we were given.
            match info.node.and_then(|h| self.nodes.get(&h)) {
                Some(h) => h.ip.clone(),
                None => return,
            }
        } else {
            info.peer_ip.clone()
        };
        if ip.is_empty() {
            return;
        }
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        if node.ip == ip && node.port == hdr.port && node.bus_port == hdr.bus_port {
            return;
        }
        node.ip = ip;
        node.port = hdr.port;
        node.bus_port = hdr.bus_port;
        node.flags.remove(NodeFlags::NOADDR);
        let old = node.link.take();
        if let Some(l) = old {
            self.links.remove(&l);
            self.out.push(Action::CloseLink(l));
        }
        self.log(Event::AddressUpdated(id));
        self.changed();
    }

    /// The sender's role as it announces it (Valkey: "role switch" handling).
    fn apply_role(&mut self, s: NodeId, hdr: &SenderInfo, was_primary: bool) {
        let Some(claimed) = hdr.primary else {
            self.set_node_as_primary(s);
            return;
        };
        if claimed == s {
            return; // nonsense; ignore
        }
        if was_primary {
            let same_shard = self.nodes.contains_key(&claimed) && self.in_same_shard(&claimed, &s);
            if same_shard {
                // A failover happened in the sender's replica set: its new primary is `claimed`,
                // at the epoch the sender announces for it (unless that is stale).
                if self.nodes[&s].config_epoch <= hdr.config_epoch {
                    self.set_node_as_primary(claimed);
                    let c = self.nodes.get_mut(&claimed).expect("checked");
                    if c.config_epoch < hdr.config_epoch {
                        c.config_epoch = hdr.config_epoch;
                    }
                }
            } else {
                self.del_node_slots(s);
            }
            let n = self.nodes.get_mut(&s).expect("sender is known");
            n.flags.remove(NodeFlags::PRIMARY);
            n.flags.insert(NodeFlags::REPLICA);
            self.changed();
        }
        if self.nodes.contains_key(&claimed) && self.nodes[&s].primary != Some(claimed) {
            let n = self.nodes.get_mut(&s).expect("sender is known");
            n.primary = Some(claimed);
            n.flags.remove(NodeFlags::PRIMARY);
            n.flags.insert(NodeFlags::REPLICA);
            self.changed();
            // We replicate the sender, which now replicates someone else: follow the chain up,
            // a replica of a replica is not allowed.
            if self.me().primary == Some(s) && claimed != self.myself {
                self.set_my_primary(claimed);
            }
        }
    }

    pub(super) fn set_node_as_primary(&mut self, id: NodeId) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if n.is_primary() && n.primary.is_none() {
            return;
        }
        let followed = n.primary.is_some();
        n.flags.remove(NodeFlags::REPLICA);
        n.flags.insert(NodeFlags::PRIMARY);
        n.primary = None;
        if followed {
            self.note_promoted(id);
        }
        self.changed();
    }

    /// If the sender claims slots that we know are served under a greater configEpoch, tell it
    /// (it may be a primary back from a partition).
    fn send_update_if_stale(&mut self, link: LinkId, s: NodeId, hdr: &SenderInfo) {
        let mut newer: Option<NodeId> = None;
        for slot in hdr.slots.iter() {
            match self.slot_owner[usize::from(slot.get())] {
                Some(owner) if owner != s && self.nodes[&owner].config_epoch > hdr.config_epoch => {
                    newer = Some(owner);
                    break;
                }
                _ => {}
            }
        }
        let Some(owner) = newer else { return };
        let owner_node = &self.nodes[&owner];
        let body = Body::Update {
            node: owner,
            config_epoch: owner_node.config_epoch,
            slots: owner_node.slots.clone(),
        };
        let target = self.nodes[&s]
            .link
            .filter(|l| self.links.get(l).is_some_and(|i| i.up))
            .unwrap_or(link);
        self.send(target, body);
    }

    /// "Last failover wins": a primary's claim on slots replaces ours where its configEpoch is
    /// greater (or the slot is free). If our replica set loses all its slots to the sender, we
    /// follow it as a replica. Valkey's `clusterUpdateSlotsConfigWith`.
    pub(super) fn update_slots_config_with(
        &mut self,
        sender: NodeId,
        sender_epoch: u64,
        slots: &SlotBitmap,
    ) {
        if sender == self.myself || !self.nodes.contains_key(&sender) {
            return;
        }
        let cur_primary = if self.me().is_primary() {
            Some(self.myself)
        } else {
            self.me().primary
        };
        let same_shard = self.in_same_shard(&sender, &self.myself);
        let mut new_primary: Option<NodeId> = None;
        let mut sender_slots = 0usize;
        let mut taken = 0usize;
        for slot in slots.iter() {
            sender_slots += 1;
            let owner = self.slot_owner[usize::from(slot.get())];
            if owner == Some(sender) {
                continue;
            }
            let wins = match owner {
                None => true,
                Some(o) => self.nodes[&o].config_epoch < sender_epoch || self.rule_override(),
            };
            if !wins {
                continue;
            }
            if owner.is_some() && owner == cur_primary {
                new_primary = Some(sender);
            }
            if let Some(target) = self.migrating.get(&slot).copied() {
                if !same_shard {
                    let _ = target;
                    self.migrating.remove(&slot);
                }
            }
            if let Some(src) = self.importing.get(&slot).copied() {
                if src != sender {
                    if self.in_same_shard(&sender, &src) {
                        self.importing.insert(slot, sender);
                    } else {
                        self.importing.remove(&slot);
                    }
                }
            }
            self.del_slot(slot);
            self.add_slot(sender, slot);
            taken += 1;
        }
        if taken > 0 {
            self.log(Event::SlotsTakenOver {
                by: sender,
                epoch: sender_epoch,
                count: taken,
            });
            self.changed();
        }

        // Slots the sender does not claim: follow a failover in a migration target, and finish
        // an import the source has given up on.
        let sender_is_replica_or_older = |s: &ClusterState, t: &NodeId| {
            s.nodes
                .get(t)
                .is_some_and(|n| n.config_epoch < sender_epoch || n.is_replica())
        };
        let moves: Vec<Slot> = self
            .migrating
            .iter()
            .filter(|(slot, target)| {
                !slots.contains(**slot)
                    && **target != sender
                    && sender_is_replica_or_older(self, target)
                    && self.in_same_shard(target, &sender)
            })
            .map(|(slot, _)| *slot)
            .collect();
        for slot in moves {
            self.migrating.insert(slot, sender);
            self.changed();
        }
        if self.me().is_primary() {
            let done: Vec<Slot> = self
                .importing
                .iter()
                .filter(|(slot, src)| !slots.contains(**slot) && **src == sender)
                .map(|(slot, _)| *slot)
                .collect();
            for slot in done {
                self.importing.remove(&slot);
                if self.slot_owner[usize::from(slot.get())] != Some(self.myself) {
                    self.del_slot(slot);
                    self.add_slot(self.myself, slot);
                    self.bump_epoch_without_consensus();
                }
                self.changed();
            }
        }

        if new_primary.is_none()
            && self.me().primary != Some(sender)
            && sender_slots == 0
            && self.me().slots.is_empty()
            && self.node_epoch_of(&self.myself) < sender_epoch
            && same_shard
        {
            new_primary = Some(sender);
        }

        let cur_primary_empty = cur_primary
            .and_then(|p| self.nodes.get(&p))
            .is_some_and(|p| p.slots.is_empty());
        // Without replica migration, a primary whose last slot an operator moved to another
        // replica set stays an empty primary, as Valkey does.
        if let Some(np) = new_primary {
            if cur_primary_empty && (self.cfg.allow_replica_migration || same_shard) {
                self.set_my_primary(np);
            }
        }
    }

    /// The simulator's deliberately broken rule (see `sim`): when set, slot claims win without
    /// comparing configEpochs.
    fn rule_override(&self) -> bool {
        #[cfg(any(test, feature = "sim"))]
        {
            crate::sim::broken_rules::ignore_epochs()
        }
        #[cfg(not(any(test, feature = "sim")))]
        {
            false
        }
    }

    /// Makes us a replica of `primary`, dropping our slots and migrations, and cancelling any
    /// election (Valkey's `clusterSetPrimary`).
    pub(super) fn set_my_primary(&mut self, primary: NodeId) {
        if primary == self.myself || !self.nodes.contains_key(&primary) {
            return;
        }
        let same_shard = self.in_same_shard(&primary, &self.myself);
        if self.me().is_primary() {
            self.del_node_slots(self.myself);
            if !same_shard {
                self.migrating.clear();
                self.importing.clear();
            }
        }
        let shard = self.nodes[&primary].shard_id;
        let me = self.me_mut();
        me.flags.remove(NodeFlags::PRIMARY);
        me.flags.insert(NodeFlags::REPLICA);
        me.primary = Some(primary);
        me.shard_id = shard;
        self.election = Default::default();
        self.reset_manual_failover();
        self.log(Event::BecameReplica(primary));
        self.changed();
    }

    fn handle_epoch_collision(&mut self, sender: NodeId) {
        let Some(s) = self.nodes.get(&sender) else {
            return;
        };
        if s.config_epoch != self.me().config_epoch || !s.is_primary() || !self.me().is_primary() {
            return;
        }
        // The node with the greater id never moves, so collisions end.
        if sender <= self.myself {
            return;
        }
        self.current_epoch += 1;
        let epoch = self.current_epoch;
        self.me_mut().config_epoch = epoch;
        self.log(Event::ConfigEpochCollision {
            with: sender,
            epoch,
        });
        self.changed();
    }

    /// Without an election: currentEpoch + 1 becomes our configEpoch, unless ours is already the
    /// unique greatest. Returns whether it moved (BUMPEPOCH's BUMPED/STILL).
    pub(super) fn bump_epoch_without_consensus(&mut self) -> bool {
        let max_epoch = self
            .nodes
            .values()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
            .max(self.current_epoch);
        let mine = self.me().config_epoch;
        if mine == 0 || mine != max_epoch {
            self.current_epoch += 1;
            let epoch = self.current_epoch;
            self.me_mut().config_epoch = epoch;
            self.log(Event::ConfigEpochBumped(epoch));
            self.changed();
            true
        } else {
            false
        }
    }

    /// The gossip section: failure reports from electorate members, fresher pong times, new
    /// nodes (only from a known sender: an unknown one could pull us into another cluster).
    fn process_gossip(
        &mut self,
        now_ms: u64,
        sender: Option<NodeId>,
        gossip: &[GossipEntry],
        meet_sender: bool,
    ) {
        let reporter_counts = sender.is_some_and(|s| self.electorate().members.contains(&s));
        for g in gossip {
            if g.id == self.myself {
                continue;
            }
            let failing = g.flags.intersects(NodeFlags::PFAIL.union(NodeFlags::FAIL));
            if let Some(node) = self.nodes.get(&g.id) {
                if node.in_handshake() {
                    continue;
                }
                if reporter_counts {
                    let s = sender.expect("reporter implies sender");
                    if failing {
                        self.nodes
                            .get_mut(&g.id)
                            .expect("known")
                            .fail_reports
                            .insert(s, now_ms);
                        self.mark_failing_if_needed(now_ms, g.id);
                    } else {
                        self.nodes
                            .get_mut(&g.id)
                            .expect("known")
                            .fail_reports
                            .remove(&s);
                    }
                }
                // Someone heard from it more recently than we did: postpone our own ping. Not
                // for a node we flag FAIL: only our own pong may clear that.
                let node = self.nodes.get_mut(&g.id).expect("known");
                let heard = now_ms.saturating_sub(g.pong_age_ms);
                if !failing
                    && !node.failed()
                    && node.ping_sent_ms == 0
                    && node.fail_reports.is_empty()
                    && g.pong_age_ms <= now_ms
                    && heard > node.pong_received_ms
                {
                    node.pong_received_ms = heard;
                }
                // We cannot reach it, someone else can, at another address: try that one.
                let unreachable = node
                    .flags
                    .intersects(NodeFlags::PFAIL.union(NodeFlags::FAIL));
                if unreachable
                    && !g.flags.contains(NodeFlags::NOADDR)
                    && !failing
                    && !g.ip.is_empty()
                    && (node.ip != g.ip || node.port != g.port || node.bus_port != g.bus_port)
                {
                    node.ip = g.ip.clone();
                    node.port = g.port;
                    node.bus_port = g.bus_port;
                    node.flags.remove(NodeFlags::NOADDR);
                    let old = node.link.take();
                    if let Some(l) = old {
                        self.links.remove(&l);
                        self.out.push(Action::CloseLink(l));
                    }
                    self.log(Event::AddressUpdated(g.id));
                    self.changed();
                }
            } else if (sender.is_some() || meet_sender)
                && !g.flags.contains(NodeFlags::NOADDR)
                && !g.ip.is_empty()
                && !self.banned.contains_key(&g.id)
                && self.nodes.len() < MAX_NODES
            {
                let mut flags = NodeFlags::empty();
                flags.insert(if g.flags.contains(NodeFlags::REPLICA) {
                    NodeFlags::REPLICA
                } else {
                    NodeFlags::PRIMARY
                });
                let mut node = Node::new(g.id, flags, now_ms);
                node.ip = g.ip.clone();
                node.port = g.port;
                node.bus_port = g.bus_port;
                self.nodes.insert(g.id, node);
                self.log(Event::NodeAdded(g.id));
                self.changed();
            }
        }
    }

    /// We can reach a FAIL node again: clear the flag for a replica or a primary without slots at
    /// once, and for a primary still serving slots once nobody replaced it for a while.
    pub(super) fn clear_failure_if_needed(&mut self, now_ms: u64, id: NodeId) {
        let undo_ms = self.cfg.node_timeout_ms * FAIL_UNDO_TIME_MULT;
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if !n.failed() {
            return;
        }
        if !n.is_voting_primary() || now_ms.saturating_sub(n.fail_time_ms) > undo_ms {
            n.flags.remove(NodeFlags::FAIL);
            self.log(Event::FailCleared(id));
            self.changed();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PingKind {
    Ping,
    Pong,
    Meet,
}
