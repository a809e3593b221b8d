//! corekey-bus: the cluster bus and the replication protocol, written sans-IO.
//!
//! This crate owns the wire-level and state-machine logic that nodes use to talk to each other.
//! It may not depend on `corekey-node`, on any async runtime or on sockets: every state machine
//! takes `(state, now, input)` and returns actions, so that a simulator can drive it.
//!
//! Today it holds the hash-slot model that both the server and (later) the bus share.

pub mod slot;

pub use slot::{key_hash_slice, key_slot, Slot, SLOT_COUNT};
