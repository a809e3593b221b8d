//! Admin operations: what the CLUSTER subcommands change in the bus state. The node parses the
//! command and its arguments, checks what only it can see (keys in a slot, an empty dataset for
//! REPLICATE and RESET), and calls [`ClusterState::admin`]. Errors carry Valkey's reply text.

use std::fmt;

use super::{ClusterState, Event, Node, MAX_BANNED, MAX_NODES};
use crate::rng::Rng;
use crate::slot::Slot;
use crate::topology::{NodeFlags, NodeId, ShardId};
use crate::wire::{valid_ip_byte, MAX_IP_LEN};

/// `CLUSTER SETSLOT <slot> <op>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetSlotOp {
    /// `MIGRATING <id>`.
    Migrating(NodeId),
    /// `IMPORTING <id>`.
    Importing(NodeId),
    /// `STABLE`.
    Stable,
    /// `NODE <id>`.
    Node(NodeId),
}

/// `CLUSTER FAILOVER [FORCE|TAKEOVER]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverMode {
    /// Coordinated with the primary: it pauses, we catch up, then an election with forced acks.
    Default,
    /// Without the primary: an election with forced acks at once.
    Force,
    /// Without an election: bump our configEpoch and take the slots.
    Takeover,
}

/// An admin operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOp {
    /// `CLUSTER MEET ip port [bus-port]`.
    Meet {
        /// Address.
        ip: String,
        /// Client port.
        port: u16,
        /// Bus port (port + 10000 when the command omits it).
        bus_port: u16,
    },
    /// `CLUSTER FORGET id`.
    Forget(NodeId),
    /// `CLUSTER ADDSLOTS` / `ADDSLOTSRANGE`: inclusive ranges.
    AddSlots(Vec<(Slot, Slot)>),
    /// `CLUSTER DELSLOTS` / `DELSLOTSRANGE`.
    DelSlots(Vec<(Slot, Slot)>),
    /// `CLUSTER FLUSHSLOTS` (the node checked that it holds no keys).
    FlushSlots,
    /// `CLUSTER SET-CONFIG-EPOCH epoch`.
    SetConfigEpoch(u64),
    /// `CLUSTER BUMPEPOCH`.
    BumpEpoch,
    /// `CLUSTER REPLICATE id` (the node checked that it holds no keys if it is a primary).
    Replicate(NodeId),
    /// `CLUSTER RESET [HARD|SOFT]` (the node checked that a primary holds no keys).
    Reset {
        /// HARD: new id, epochs back to zero.
        hard: bool,
    },
    /// `CLUSTER SETSLOT slot …` (for NODE the node checked the keys rule).
    SetSlot(Slot, SetSlotOp),
    /// `CLUSTER FAILOVER …`.
    Failover(FailoverMode),
}

/// A successful admin operation's result, when there is more to say than OK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOk {
    /// Done.
    Done,
    /// BUMPEPOCH: `BUMPED <epoch>` (true) or `STILL <epoch>`.
    Bump {
        /// Whether it moved.
        bumped: bool,
        /// Our configEpoch now.
        epoch: u64,
    },
}

/// Why an admin operation was refused; `Display` is Valkey's error text without the `-ERR `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// Bad address for MEET.
    InvalidAddress(String),
    /// The node table is full.
    TooManyNodes,
    /// No such node.
    UnknownNode(NodeId),
    /// FORGET of ourselves.
    ForgetMyself,
    /// FORGET of our primary.
    ForgetMyPrimary,
    /// ADDSLOTS of a slot twice in one call.
    SlotRepeated(Slot),
    /// ADDSLOTS of an owned slot.
    SlotBusy(Slot),
    /// DELSLOTS of a free slot.
    SlotUnassigned(Slot),
    /// SET-CONFIG-EPOCH when other nodes are known.
    EpochNotAlone,
    /// SET-CONFIG-EPOCH when ours is not zero.
    EpochAlreadySet,
    /// REPLICATE ourselves.
    ReplicateMyself,
    /// REPLICATE a replica.
    ReplicateReplica,
    /// REPLICATE while we serve slots.
    PrimaryNotEmpty,
    /// ADDSLOTS/SETSLOT on a replica.
    NotAPrimary,
    /// SETSLOT MIGRATING of a slot we do not own.
    NotOwner(Slot),
    /// SETSLOT IMPORTING of a slot we own.
    AlreadyOwner(Slot),
    /// SETSLOT NODE to a replica.
    AssignToReplica(Slot),
    /// SETSLOT MIGRATING/IMPORTING to a replica.
    TargetNotPrimary,
    /// FAILOVER on a primary.
    FailoverOnPrimary,
    /// FAILOVER without a known primary.
    PrimaryUnknown,
    /// FAILOVER (default) while the primary is down.
    PrimaryDown,
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::InvalidAddress(a) => write!(f, "Invalid node address specified: {a}"),
            AdminError::TooManyNodes => write!(f, "Too many nodes in the cluster"),
            AdminError::UnknownNode(n) => write!(f, "Unknown node {n}"),
            AdminError::ForgetMyself => write!(f, "I tried hard but I can't forget myself..."),
            AdminError::ForgetMyPrimary => write!(f, "Can't forget my master!"),
            AdminError::SlotRepeated(s) => write!(f, "Slot {} specified multiple times", s.get()),
            AdminError::SlotBusy(s) => write!(f, "Slot {} is already busy", s.get()),
            AdminError::SlotUnassigned(s) => write!(f, "Slot {} is already unassigned", s.get()),
            AdminError::EpochNotAlone => write!(
                f,
                "The user can assign a config epoch only when the node does not know any other node."
            ),
            AdminError::EpochAlreadySet => write!(f, "Node config epoch is already non-zero"),
            AdminError::ReplicateMyself => write!(f, "Can't replicate myself"),
            AdminError::ReplicateReplica => {
                write!(f, "I can only replicate a master, not a replica.")
            }
            AdminError::PrimaryNotEmpty => write!(
                f,
                "To set a master the node must be empty and without assigned slots."
            ),
            AdminError::NotAPrimary => write!(f, "Please use SETSLOT only with masters."),
            AdminError::NotOwner(s) => {
                write!(f, "I'm not the owner of hash slot {}", s.get())
            }
            AdminError::AlreadyOwner(s) => {
                write!(f, "I'm already the owner of hash slot {}", s.get())
            }
            // Valkey 8's text (older versions named the slot).
            AdminError::AssignToReplica(_) => write!(f, "Target node is not a master"),
            AdminError::TargetNotPrimary => write!(f, "Target node is not a master"),
            AdminError::FailoverOnPrimary => {
                write!(f, "You should send CLUSTER FAILOVER to a replica")
            }
            AdminError::PrimaryUnknown => write!(f, "I'm a replica but my master is unknown to me"),
            AdminError::PrimaryDown => write!(
                f,
                "Master is down or failed, please use CLUSTER FAILOVER FORCE"
            ),
        }
    }
}

impl std::error::Error for AdminError {}

impl ClusterState {
    pub(super) fn run_admin(&mut self, now_ms: u64, op: AdminOp) -> Result<AdminOk, AdminError> {
        match op {
            AdminOp::Meet { ip, port, bus_port } => {
                if ip.is_empty()
                    || ip.len() > MAX_IP_LEN
                    || !ip.bytes().all(valid_ip_byte)
                    || port == 0
                    || bus_port == 0
                {
                    return Err(AdminError::InvalidAddress(format!("{ip}:{port}")));
                }
                if self.nodes.len() >= MAX_NODES {
                    return Err(AdminError::TooManyNodes);
                }
                // Valkey answers OK when a handshake to the address is already under way.
                if !self.handshake_in_progress(&ip, port, bus_port) {
                    let temp = NodeId::random(&mut self.rng);
                    let mut node = Node::new(
                        temp,
                        NodeFlags::HANDSHAKE
                            .union(NodeFlags::MEET)
                            .union(NodeFlags::PRIMARY),
                        now_ms,
                    );
                    node.ip = ip;
                    node.port = port;
                    node.bus_port = bus_port;
                    self.nodes.insert(temp, node);
                    self.dirty_topology = true;
                }
                Ok(AdminOk::Done)
            }
            AdminOp::Forget(id) => {
                if id == self.myself {
                    return Err(AdminError::ForgetMyself);
                }
                if !self.nodes.contains_key(&id) {
                    return Err(AdminError::UnknownNode(id));
                }
                if self.me().is_replica() && self.me().primary == Some(id) {
                    return Err(AdminError::ForgetMyPrimary);
                }
                self.ban(now_ms, id);
                self.del_node(id);
                self.log(Event::NodeRemoved(id));
                Ok(AdminOk::Done)
            }
            AdminOp::AddSlots(ranges) => {
                if !self.me().is_primary() {
                    return Err(AdminError::NotAPrimary);
                }
                let slots = expand(&ranges)?;
                if let Some(busy) = slots.iter().find(|s| self.slot_owner(**s).is_some()) {
                    return Err(AdminError::SlotBusy(*busy));
                }
                for slot in slots {
                    self.importing.remove(&slot);
                    self.add_slot(self.myself, slot);
                }
                self.changed();
                Ok(AdminOk::Done)
            }
            AdminOp::DelSlots(ranges) => {
                let slots = expand(&ranges)?;
                if let Some(free) = slots.iter().find(|s| self.slot_owner(**s).is_none()) {
                    return Err(AdminError::SlotUnassigned(*free));
                }
                for slot in slots {
                    self.del_slot(slot);
                    self.migrating.remove(&slot);
                    self.importing.remove(&slot);
                }
                self.changed();
                Ok(AdminOk::Done)
            }
            AdminOp::FlushSlots => {
                self.del_node_slots(self.myself);
                self.changed();
                Ok(AdminOk::Done)
            }
            AdminOp::SetConfigEpoch(epoch) => {
                if self.nodes.len() > 1 {
                    return Err(AdminError::EpochNotAlone);
                }
                if self.me().config_epoch != 0 {
                    return Err(AdminError::EpochAlreadySet);
                }
                self.me_mut().config_epoch = epoch;
                if self.current_epoch < epoch {
                    self.current_epoch = epoch;
                }
                self.log(Event::ConfigEpochBumped(epoch));
                self.changed();
                Ok(AdminOk::Done)
            }
            AdminOp::BumpEpoch => {
                let bumped = self.bump_epoch_without_consensus();
                Ok(AdminOk::Bump {
                    bumped,
                    epoch: self.me().config_epoch,
                })
            }
            AdminOp::Replicate(id) => {
                if id == self.myself {
                    return Err(AdminError::ReplicateMyself);
                }
                let Some(target) = self.nodes.get(&id).filter(|n| !n.in_handshake()) else {
                    return Err(AdminError::UnknownNode(id));
                };
                if target.is_replica() {
                    return Err(AdminError::ReplicateReplica);
                }
                if self.me().is_primary() && !self.me().slots.is_empty() {
                    return Err(AdminError::PrimaryNotEmpty);
                }
                self.set_my_primary(id);
                // Tell everyone at once, as Valkey does, rather than at the next ping: tools
                // such as `redis-cli --cluster` wait for all nodes to agree on the new role.
                self.broadcast_pong(now_ms, false);
                Ok(AdminOk::Done)
            }
            AdminOp::Reset { hard } => {
                self.reset(now_ms, hard);
                Ok(AdminOk::Done)
            }
            AdminOp::SetSlot(slot, op) => self.set_slot(now_ms, slot, op),
            AdminOp::Failover(mode) => {
                if self.me().is_primary() {
                    return Err(AdminError::FailoverOnPrimary);
                }
                let Some(primary) = self.me().primary.and_then(|p| self.nodes.get(&p)) else {
                    return Err(AdminError::PrimaryUnknown);
                };
                let primary_down = primary.failed() || !self.link_up(primary.link);
                match mode {
                    FailoverMode::Takeover => {
                        self.bump_epoch_without_consensus();
                        let epoch = self.me().config_epoch;
                        self.log(Event::TakeoverDone { epoch });
                        self.replace_my_primary(now_ms);
                    }
                    FailoverMode::Force => self.start_manual_failover(now_ms, true),
                    FailoverMode::Default => {
                        if primary_down {
                            return Err(AdminError::PrimaryDown);
                        }
                        self.start_manual_failover(now_ms, false);
                    }
                }
                Ok(AdminOk::Done)
            }
        }
    }

    fn ban(&mut self, now_ms: u64, id: NodeId) {
        if self.banned.len() >= MAX_BANNED && !self.banned.contains_key(&id) {
            // Full: drop the entry that expires first, a ban that is about to lapse anyway.
            if let Some(first) = self
                .banned
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(id, _)| *id)
            {
                self.banned.remove(&first);
            }
        }
        self.banned.insert(id, now_ms + self.cfg.forget_ban_ms);
    }

    /// Whether `id` is on the FORGET ban list.
    pub fn is_banned(&self, now_ms: u64, id: &NodeId) -> bool {
        self.banned.get(id).is_some_and(|until| *until > now_ms)
    }

    fn reset(&mut self, now_ms: u64, hard: bool) {
        if self.me().is_replica() {
            let me = self.me_mut();
            me.flags.remove(NodeFlags::REPLICA);
            me.flags.insert(NodeFlags::PRIMARY);
            me.primary = None;
        }
        self.election = Default::default();
        self.reset_manual_failover();
        self.migrating.clear();
        self.importing.clear();
        self.del_node_slots(self.myself);
        let others: Vec<NodeId> = self
            .nodes
            .keys()
            .copied()
            .filter(|id| *id != self.myself)
            .collect();
        for id in others {
            self.del_node(id);
        }
        self.banned.clear();
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            self.last_vote_for = None;
            let mut rng = Rng::new(self.rng.next_u64());
            let new_id = NodeId::random(&mut rng);
            if let Some(mut me) = self.nodes.remove(&self.myself) {
                me.id = new_id;
                me.config_epoch = 0;
                me.shard_id = ShardId::random(&mut rng);
                self.nodes.insert(new_id, me);
                self.myself = new_id;
            }
        }
        let _ = now_ms;
        self.changed();
    }

    fn set_slot(&mut self, now_ms: u64, slot: Slot, op: SetSlotOp) -> Result<AdminOk, AdminError> {
        if !self.me().is_primary() {
            return Err(AdminError::NotAPrimary);
        }
        let target_primary = |s: &ClusterState, id: &NodeId| -> Result<(), AdminError> {
            match s.nodes.get(id) {
                None => Err(AdminError::UnknownNode(*id)),
                Some(n) if !n.is_primary() => Err(AdminError::TargetNotPrimary),
                Some(_) => Ok(()),
            }
        };
        match op {
            SetSlotOp::Migrating(id) => {
                if self.slot_owner(slot) != Some(self.myself) {
                    return Err(AdminError::NotOwner(slot));
                }
                target_primary(self, &id)?;
                self.migrating.insert(slot, id);
            }
            SetSlotOp::Importing(id) => {
                if self.slot_owner(slot) == Some(self.myself) {
                    return Err(AdminError::AlreadyOwner(slot));
                }
                target_primary(self, &id)?;
                self.importing.insert(slot, id);
            }
            SetSlotOp::Stable => {
                self.migrating.remove(&slot);
                self.importing.remove(&slot);
            }
            SetSlotOp::Node(id) => {
                let Some(target) = self.nodes.get(&id) else {
                    return Err(AdminError::UnknownNode(id));
                };
                if target.is_replica() {
                    return Err(AdminError::AssignToReplica(slot));
                }
                // Our slot moved away and we have no keys left in it (the node checked): the
                // migration is over on our side.
                if self.slot_owner(slot) == Some(self.myself) && id != self.myself {
                    self.migrating.remove(&slot);
                }
                let was_importing = self.importing.remove(&slot).is_some();
                self.del_slot(slot);
                self.add_slot(id, slot);
                // Finishing an import: take a new configEpoch without an election so the rest of
                // the cluster adopts the new owner (Valkey does the same; an operator override).
                if id == self.myself && was_importing {
                    self.bump_epoch_without_consensus();
                    // Let the other nodes learn the new owner now (Valkey broadcasts too).
                    self.broadcast_pong(now_ms, false);
                }
            }
        }
        self.changed();
        Ok(AdminOk::Done)
    }
}

/// The slots of inclusive ranges; a slot named twice is an error.
fn expand(ranges: &[(Slot, Slot)]) -> Result<Vec<Slot>, AdminError> {
    let mut seen = crate::topology::SlotBitmap::new();
    let mut out = Vec::new();
    for (first, last) in ranges {
        for n in first.get()..=last.get() {
            let Some(slot) = Slot::new(n) else { continue };
            if !seen.insert(slot) {
                return Err(AdminError::SlotRepeated(slot));
            }
            out.push(slot);
        }
    }
    Ok(out)
}
