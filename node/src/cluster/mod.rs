//! Cluster mode on the node side: the driver that runs the bus state machine of `corekey-bus`
//! on shard 0's runtime, the topology snapshot every shard routes with, the routing rules
//! (MOVED, ASK, TRYAGAIN, CROSSSLOT, CLUSTERDOWN) and the text of the CLUSTER replies.
//!
//! It owns the bus's sockets only through `crate::net::link`, and `nodes.conf` through
//! [`persist`]. It never touches the keyspace itself: counting or listing the keys of a slot is
//! asked of the shard that owns the slot, as any cross-shard work is.
//!
//! How the pieces meet:
//!
//! - At start-up (before any shard runs) [`boot`] loads or creates the node's identity from
//!   `nodes.conf`, writes it back, binds the bus port and builds the first topology snapshot.
//!   Shard 0 gets the state machine and the bus listeners ([`driver`]); every shard gets the
//!   first snapshot, so no client is ever routed without one.
//! - The driver feeds the state machine (ticks, links, messages, CLUSTER admin operations) and
//!   carries out its actions in order: `nodes.conf` is fsynced before anything after a
//!   `Persist` happens, and every `TopologyChanged` publishes a new immutable snapshot to every
//!   shard (an `Arc<Topology>` travels through the mesh; each shard wraps it in its own
//!   `Rc<View>`). Routing reads only the shard's own snapshot; it never asks shard 0.
//! - `session.rs` calls [`routing::check`] once per command; the CLUSTER subcommands live in
//!   `crate::commands::cluster`.

pub mod driver;
pub mod pause;
pub mod persist;
pub mod render;
pub mod routing;
pub mod view;

use crate::config::Config;
use crate::shard::{NodeShared, Shard};
use corekey_bus::cluster::{ClusterConfig, ClusterState};
use corekey_bus::topology::Topology;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
pub use view::View;

/// Valkey's distance between the client port and the bus port when `cluster-port` is 0.
pub const BUS_PORT_OFFSET: u16 = 10_000;

/// The `cluster-*` directives (Valkey's names and defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `cluster-enabled`.
    pub enabled: bool,
    /// `cluster-config-file`, relative to `dir`.
    pub config_file: String,
    /// `cluster-node-timeout`.
    pub node_timeout_ms: u64,
    /// `cluster-port`; 0 means the client port + 10000.
    pub port: u16,
    /// `cluster-announce-ip`; empty means "learn it from the bus".
    pub announce_ip: String,
    /// `cluster-announce-port`; 0 means the client port.
    pub announce_port: u16,
    /// `cluster-announce-bus-port`; 0 means the bus port.
    pub announce_bus_port: u16,
    /// `cluster-announce-hostname`.
    pub announce_hostname: String,
    /// `cluster-require-full-coverage`.
    pub require_full_coverage: bool,
    /// `cluster-allow-reads-when-down`.
    pub allow_reads_when_down: bool,
    /// `cluster-allow-pubsubshard-when-down`.
    pub allow_pubsubshard_when_down: bool,
    /// `cluster-replica-no-failover`: as a replica, never start an election.
    pub replica_no_failover: bool,
    /// `cluster-replica-validity-factor`.
    pub replica_validity_factor: u64,
    /// `cluster-allow-replica-migration`.
    pub allow_replica_migration: bool,
    /// `cluster-migration-barrier`.
    pub migration_barrier: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            enabled: false,
            config_file: "nodes.conf".into(),
            node_timeout_ms: 15_000,
            port: 0,
            announce_ip: String::new(),
            announce_port: 0,
            announce_bus_port: 0,
            announce_hostname: String::new(),
            require_full_coverage: true,
            allow_reads_when_down: false,
            allow_pubsubshard_when_down: true,
            replica_no_failover: false,
            replica_validity_factor: 10,
            allow_replica_migration: true,
            migration_barrier: 1,
        }
    }
}

impl Settings {
    /// The port the bus listens on.
    pub fn bus_port(&self, client_port: u16) -> u16 {
        if self.port != 0 {
            self.port
        } else {
            client_port.wrapping_add(BUS_PORT_OFFSET)
        }
    }

    /// The state machine's settings for a node on `client_port` whose sync mode waits for
    /// `min_replicas_ack` replicas (`min-replicas-ack`: elections must hear from enough
    /// replicas that one holds every acknowledged write).
    pub fn bus_config(&self, client_port: u16, min_replicas_ack: usize) -> ClusterConfig {
        let port = if self.announce_port != 0 {
            self.announce_port
        } else {
            client_port
        };
        let mut c = ClusterConfig::new(&self.announce_ip, port);
        c.bus_port = if self.announce_bus_port != 0 {
            self.announce_bus_port
        } else {
            self.bus_port(client_port)
        };
        c.node_timeout_ms = self.node_timeout_ms;
        c.hostname = self.announce_hostname.clone();
        c.require_full_coverage = self.require_full_coverage;
        c.replica_validity_factor = self.replica_validity_factor;
        c.replica_no_failover = self.replica_no_failover;
        c.allow_replica_migration = self.allow_replica_migration;
        c.migration_barrier = self.migration_barrier;
        c.sync_replicas = min_replicas_ack;
        // Election delays scale with the node timeout (issue 7: promotion within node timeout
        // + 500 ms). They only let the FAIL broadcast land before votes are asked (one hop:
        // whoever declares FAIL sends it to every node) and let the most up-to-date replica
        // ask first; on a network where a node timeout of 2 s makes sense that takes
        // milliseconds. Safety does not rest on them (votes do). From a 20 s node timeout up
        // they are Valkey's: 500 ms, up to 500 ms more, 1 s per rank.
        let t = self.node_timeout_ms;
        c.failover_fixed_delay_ms = (t / 40).clamp(50, 500);
        c.failover_random_delay_ms = (t / 40).clamp(50, 500);
        c.failover_rank_delay_ms = (t / 10).clamp(100, 1000);
        c
    }
}

/// Whether `h` may be announced as a hostname (Valkey's rule: letters, digits, `-` and `.`,
/// fewer than 256 bytes; empty means none).
pub fn valid_hostname(h: &str) -> bool {
    h.len() < 256 && h.bytes().all(corekey_bus::wire::valid_hostname_byte)
}

/// A client's cluster flags (Valkey's `CLIENT_ASKING` and `CLIENT_READONLY`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClientFlags {
    /// ASKING was the previous command: the next one may touch an importing slot.
    pub asking: bool,
    /// READONLY: reads of our primary's slots are served here, on a replica.
    pub readonly: bool,
}

/// What one shard holds of the cluster: its routing snapshot, its part of a write pause, and
/// on shard 0 the driver.
#[derive(Default)]
pub struct ShardCluster {
    view: RefCell<Option<Rc<View>>>,
    driver: RefCell<Option<Rc<driver::Driver>>>,
    /// This shard's part of a manual failover's write pause.
    pub pause: pause::ShardPause,
}

impl ShardCluster {
    /// The current snapshot; `None` in standalone mode.
    pub fn view(&self) -> Option<Rc<View>> {
        self.view.borrow().clone()
    }

    /// Whether the node runs in cluster mode.
    pub fn enabled(&self) -> bool {
        self.view.borrow().is_some()
    }

    /// The driver, on shard 0 in cluster mode.
    pub fn driver(&self) -> Option<Rc<driver::Driver>> {
        self.driver.borrow().clone()
    }

    /// Replaces the snapshot (a newer one never loses to an older one that arrives late).
    pub fn install(&self, topology: Arc<Topology>) {
        let mut view = self.view.borrow_mut();
        if view
            .as_ref()
            .is_some_and(|v| v.topology.version > topology.version)
        {
            return;
        }
        *view = Some(Rc::new(View::new(topology)));
    }
}

/// The bus clock: Unix milliseconds as of start-up, moved on by a monotonic clock, so that
/// timeouts never jump with the wall clock while `CLUSTER NODES` still shows Unix times.
pub fn bus_now_ms(node: &NodeShared) -> u64 {
    (node.start_unix_ms.max(0) as u64).saturating_add(node.start.elapsed().as_millis() as u64)
}

/// What a shard is given at start-up in cluster mode.
pub enum ShardBoot {
    /// Shard 0: the state machine, its listeners and its `nodes.conf`.
    Driver(Box<driver::Boot>),
    /// Other shards: the first snapshot.
    View(Arc<Topology>),
}

/// Loads (or creates) the node's cluster identity, persists it and binds the bus port: one
/// [`ShardBoot`] per shard, or `None` per shard in standalone mode. Runs on the main thread,
/// in `dir`, before any shard starts.
pub fn boot(config: &Config, node: &NodeShared) -> Result<Vec<Option<ShardBoot>>, String> {
    let shards = node.shards;
    if !config.cluster.enabled {
        return Ok((0..shards).map(|_| None).collect());
    }
    let now = bus_now_ms(node);
    let (conf, persisted) = persist::ConfFile::open(&config.cluster.config_file)?;
    let bus_cfg = config
        .cluster
        .bus_config(config.port, config.repl.min_replicas_ack);
    let seed = random_seed();
    let state = match &persisted {
        Some(p) => ClusterState::restore(bus_cfg, p, now, seed).map_err(|e| {
            format!(
                "Unrecoverable error: corrupted cluster config file \"{}\": {e}",
                config.cluster.config_file
            )
        })?,
        None => ClusterState::new(bus_cfg, now, seed),
    };
    conf.write(&state.persisted().render(), true).map_err(|e| {
        format!(
            "Fatal: can't write the cluster config file \"{}\": {e}",
            config.cluster.config_file
        )
    })?;
    let bus_port = config.cluster.bus_port(config.port);
    let listeners = crate::net::link::bind(&config.bind, bus_port)?;
    tracing::info!(
        node_id = %state.myself(),
        bus_port,
        loaded = persisted.is_some(),
        "cluster mode: {} this node",
        if persisted.is_some() { "loaded" } else { "created" }
    );
    let topology = Arc::new(state.topology());
    let mut out: Vec<Option<ShardBoot>> = (1..shards)
        .map(|_| Some(ShardBoot::View(topology.clone())))
        .collect();
    out.insert(
        0,
        Some(ShardBoot::Driver(Box::new(driver::Boot {
            state,
            listeners,
            conf,
            topology,
        }))),
    );
    Ok(out)
}

/// Installs a shard's start-up cluster state; on shard 0 also starts the driver. Called on the
/// shard's thread before its listeners accept anything.
pub fn attach(shard: &Rc<Shard>, boot: ShardBoot) {
    match boot {
        ShardBoot::View(t) => shard.cluster.install(t),
        ShardBoot::Driver(b) => {
            shard.cluster.install(b.topology.clone());
            let d = driver::Driver::start(shard, *b);
            *shard.cluster.driver.borrow_mut() = Some(d);
        }
    }
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == b.len() as isize {
        u64::from_le_bytes(b)
    } else {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)
    }
}
