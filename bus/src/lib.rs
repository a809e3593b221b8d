//! corekey-bus: the cluster bus and the replication protocol, written sans-IO.
//!
//! This crate owns the logic nodes use to talk to each other, and nothing that touches the
//! outside world: it may not depend on `corekey-node`, on an async runtime, on sockets, files or
//! clocks. Every state machine takes `(state, now, input)` and returns actions, so the
//! deterministic simulator in [`sim`] can drive it exactly as a real driver does.
//!
//! Modules:
//! - [`slot`]: the 16384 hash slots and the key → slot function (used by the server's routing).
//! - [`topology`]: ids, node flags, slot bitmaps, and the immutable snapshot shards route with.
//! - [`wire`]: corekey's own bus message format (framed, versioned, checksummed, bounded).
//! - [`config`]: what a node persists (`nodes.conf`), rendered and parsed.
//! - [`cluster`]: the bus state machine: handshake, gossip, failure detection, epochs, slot
//!   ownership, elections, admin operations.
//! - [`rng`]: the seeded generator every random choice goes through.
//! - [`sim`] (tests, or feature `sim`): many state machines over a fake, faulty network, with
//!   invariant checks.

pub mod cluster;
pub mod config;
pub mod rng;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod slot;
pub mod topology;
pub mod wire;

pub use slot::{key_hash_slice, key_slot, Slot, SLOT_COUNT};
