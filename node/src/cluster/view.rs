//! One shard's routing snapshot: an immutable [`Topology`] from the driver, plus what routing
//! asks of it on every command precomputed once (each node's `ip:port` for redirects, our
//! primary, the slots in migration).

use corekey_bus::topology::{NodeFlags, NodeView, Topology, NO_OWNER};
use corekey_bus::Slot;
use std::collections::HashMap;
use std::sync::Arc;

/// A shard's view of the cluster at one topology version.
pub struct View {
    pub topology: Arc<Topology>,
    /// `ip:port` of each node, by index in `topology.nodes` (Valkey's preferred endpoint for a
    /// redirect is the IP).
    endpoints: Vec<String>,
    /// The index of the primary whose slots this node serves: itself, or its primary.
    serving_primary: Option<u16>,
    /// Slot → index of the node we migrate it to.
    migrating: HashMap<u16, u16>,
    /// Slot → index of the node we import it from.
    importing: HashMap<u16, u16>,
}

impl View {
    pub fn new(topology: Arc<Topology>) -> View {
        let index = |id| {
            topology
                .nodes
                .binary_search_by(|n: &NodeView| n.id.cmp(id))
                .ok()
                .map(|i| i as u16)
        };
        let endpoints = topology
            .nodes
            .iter()
            .map(|n| format!("{}:{}", n.ip, n.port))
            .collect();
        let me = topology.me();
        let serving_primary = if me.flags.contains(NodeFlags::REPLICA) {
            me.primary.as_ref().and_then(index)
        } else {
            Some(topology.myself_index as u16)
        };
        let migrating = topology
            .migrating
            .iter()
            .filter_map(|(s, id)| index(id).map(|i| (s.get(), i)))
            .collect();
        let importing = topology
            .importing
            .iter()
            .filter_map(|(s, id)| index(id).map(|i| (s.get(), i)))
            .collect();
        View {
            endpoints,
            serving_primary,
            migrating,
            importing,
            topology,
        }
    }

    /// The owner of `slot` (an index into the nodes), if any.
    pub fn owner(&self, slot: Slot) -> Option<u16> {
        let i = self.topology.slot_owner[usize::from(slot.get())];
        (i != NO_OWNER).then_some(i)
    }

    /// Index of the local node.
    pub fn me(&self) -> u16 {
        self.topology.myself_index as u16
    }

    /// Whether the local node is a primary.
    pub fn i_am_primary(&self) -> bool {
        self.topology.me().flags.contains(NodeFlags::PRIMARY)
    }

    /// The primary whose slots we serve (ourselves when we are one).
    pub fn serving_primary(&self) -> Option<u16> {
        self.serving_primary
    }

    /// Where we migrate `slot` to, if we do.
    pub fn migrating_to(&self, slot: Slot) -> Option<u16> {
        self.migrating.get(&slot.get()).copied()
    }

    /// Where we import `slot` from, if we do.
    pub fn importing_from(&self, slot: Slot) -> Option<u16> {
        self.importing.get(&slot.get()).copied()
    }

    /// `ip:port` of node `i`, for MOVED and ASK.
    pub fn endpoint(&self, i: u16) -> &str {
        self.endpoints
            .get(usize::from(i))
            .map_or("", String::as_str)
    }

    /// Node `i`.
    pub fn node(&self, i: u16) -> Option<&NodeView> {
        self.topology.nodes.get(usize::from(i))
    }

    /// `cluster_state:ok`.
    pub fn cluster_ok(&self) -> bool {
        self.topology.cluster_ok
    }
}
