//! corekey-node: a Valkey-compatible key-value node, one shard per CPU core.
//!
//! Module map (DESIGN.md has the architecture):
//!
//! - `config`: directives, valkey.conf files, the command line.
//! - `server`: start-up and shutdown; one pinned thread and io_uring runtime per shard.
//! - `shard`: a shard's state, the mesh of SPSC rings between shards, cross-shard calls and
//!   shard-ordered transactions.
//! - `net`: every socket (listeners, the connection I/O loop). Nothing else touches sockets.
//! - `session`: one client's protocol session: parse, route each command, reply in order.
//! - `dispatch`: running commands on shards, forwarded batches, node-wide commands.
//! - `commands`: the command table and one file per command family.
//! - `keyspace`: a shard's data (per-slot tables, expiry). No I/O, no clock.
//! - `resp`: the wire protocol (request parser, reply writer).
//! - `pubsub`: channel and pattern subscriptions, delivering messages.
//! - `clients`: what a shard knows about its connections (CLIENT LIST/KILL).
//! - `cluster`: cluster mode: the bus driver on shard 0, topology snapshots, routing.
//! - `metrics`: the Prometheus text served on `metrics-port`.
//! - `check`: `corekey --check-system`, the host checks.
//! - `repl`: replication streams per shard, backlogs, full and partial resync, WAIT, roles.
//! - `util`: exact ports of Valkey's number and pattern helpers.

pub mod check;
pub mod clients;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod dispatch;
pub mod keyspace;
pub mod metrics;
pub mod net;
pub mod pubsub;
pub mod repl;
pub mod resp;
pub mod server;
pub mod session;
pub mod shard;
pub mod util;

/// Sends a state line to systemd when started as a `Type=notify` unit (no-op otherwise).
/// Speaks the datagram protocol directly: a unix datagram to `$NOTIFY_SOCKET`.
pub fn systemd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let result = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}
