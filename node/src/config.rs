//! Configuration: the directive table, valkey.conf-style files, the command line, and the
//! values CONFIG GET/SET read and write.
//!
//! Every directive is accepted in a file (`port 7000`) and as a flag (`--port 7000`), with
//! Valkey's names, defaults, value syntax (`512mb`, `yes`/`no`) and error texts. The command
//! line is turned into config lines appended after the file, as Valkey does, so a flag
//! overrides the file and both go through one parser. clap provides `--help`, `--version` and
//! the positional config file; directive flags are gathered before clap sees them because a
//! directive may take several values, some starting with `-` (`--bind 127.0.0.1 -::1`).
//!
//! This module reads files and the environment only in [`load`]; everything else is pure.

use std::path::{Path, PathBuf};

/// Valkey's default for `proto-max-bulk-len` (512 MB).
pub const PROTO_MAX_BULK_LEN_DEFAULT: u64 = 512 * 1024 * 1024;
/// Valkey's default for `client-query-buffer-limit` (1 GB).
pub const CLIENT_QUERY_BUFFER_LIMIT_DEFAULT: u64 = 1024 * 1024 * 1024;
/// Most shards one node runs: every shard owns at least one slot.
pub const CORES_MAX: usize = 1024;
/// Most databases (Valkey allows INT_MAX, but allocates them all up front as we do).
pub const DATABASES_MAX: usize = 1 << 20;
/// Most addresses in `bind` (Valkey's CONFIG_BINDADDR_MAX).
pub const BIND_ADDRS_MAX: usize = 16;
/// Deepest `include` nesting.
const INCLUDE_DEPTH_MAX: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
    Nothing,
}

impl LogLevel {
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "verbose",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Nothing => "nothing",
        }
    }

    /// The tracing filter for this level.
    pub fn filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "debug",
            LogLevel::Notice => "info",
            LogLevel::Warning => "warn",
            LogLevel::Nothing => "off",
        }
    }
}

/// The node's configuration. Shards hold it behind an `Arc` and get a new one on CONFIG SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub port: u16,
    pub bind: Vec<String>,
    pub cores: usize,
    /// The CPU of each shard, when given.
    pub cpu_list: Option<Vec<usize>>,
    pub dir: PathBuf,
    pub maxclients: u64,
    /// Empty: no password.
    pub requirepass: Vec<u8>,
    pub loglevel: LogLevel,
    pub databases: usize,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    /// Idle client timeout in seconds; 0 = never.
    pub timeout: u64,
    /// The file the configuration came from, if any (INFO `config_file`).
    pub config_file: Option<PathBuf>,
    /// Whether `cores` was given explicitly (then it must agree with `cpu-list`).
    pub cores_explicit: bool,
    /// When small collections leave their compact encodings.
    pub encoding: crate::keyspace::encoding::Limits,
    /// Cluster mode (`cluster-*` directives).
    pub cluster: crate::cluster::Settings,
    /// Commands slower than this many microseconds enter the slow log; -1 turns it off.
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: u64,
    /// Commands at least this slow (ms) are latency monitor events; 0 turns it off.
    pub latency_monitor_threshold_ms: u64,
    /// Per-command latency histograms (INFO latencystats, LATENCY HISTOGRAM).
    pub latency_tracking: bool,
    /// The percentiles INFO latencystats prints, as their shortest decimal text.
    pub latency_tracking_info_percentiles: Vec<String>,
    /// Port of the Prometheus `/metrics` endpoint; 0 = off.
    pub metrics_port: u16,
    /// Where the log goes; empty = standard output.
    pub logfile: String,
    pub log_format: LogFormat,
    /// Replication (`replicaof`, `repl-*`).
    pub repl: crate::repl::Settings,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Legacy,
    /// One JSON object per line, for log shippers.
    Json,
}

impl Config {
    /// The built-in defaults; `cores` is every CPU this process may run on.
    pub fn defaults() -> Config {
        Config {
            port: 6379,
            bind: vec!["127.0.0.1".into(), "-::1".into()],
            cores: available_cpus().len().max(1),
            cpu_list: None,
            dir: PathBuf::from("."),
            maxclients: 10000,
            requirepass: Vec::new(),
            loglevel: LogLevel::Notice,
            databases: 16,
            proto_max_bulk_len: PROTO_MAX_BULK_LEN_DEFAULT,
            client_query_buffer_limit: CLIENT_QUERY_BUFFER_LIMIT_DEFAULT,
            timeout: 0,
            config_file: None,
            cores_explicit: false,
            encoding: crate::keyspace::encoding::Limits::default(),
            cluster: crate::cluster::Settings::default(),
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
            latency_monitor_threshold_ms: 0,
            latency_tracking: true,
            latency_tracking_info_percentiles: vec!["50".into(), "99".into(), "99.9".into()],
            metrics_port: 0,
            logfile: String::new(),
            log_format: LogFormat::Legacy,
            repl: crate::repl::Settings::default(),
        }
    }

    /// The CPU each shard is pinned to: `cpu-list` when given, else the process's CPUs in
    /// order (wrapping around when `cores` exceeds them).
    pub fn shard_cpus(&self) -> Vec<usize> {
        if let Some(list) = &self.cpu_list {
            return list.clone();
        }
        let cpus = available_cpus();
        if cpus.is_empty() {
            return vec![0; self.cores];
        }
        (0..self.cores).map(|i| cpus[i % cpus.len()]).collect()
    }
}

/// The CPUs in this process's affinity mask.
pub fn available_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// How a directive's value is checked and stored.
#[derive(Clone, Copy)]
enum Kind {
    /// One integer within bounds.
    Int { min: i64, max: i64 },
    /// One memory value (`512mb`) within bounds.
    Memory { min: u64, max: u64 },
    /// One of these words.
    Enum(&'static [&'static str]),
    /// `yes` or `no`.
    Bool,
    /// Any single string.
    Str,
    /// Any number of words (one empty argument means none).
    List,
}

/// One directive: its name, how it is parsed, whether CONFIG SET may change it at run time,
/// and how it is read from and written to a [`Config`].
pub struct Directive {
    pub name: &'static str,
    kind: Kind,
    pub mutable: bool,
    /// Set-time check that CONFIG SET refuses (Valkey's protected configs, like `dir`).
    pub protected: bool,
    set: fn(&mut Config, &[Vec<u8>]) -> Result<(), String>,
    get: fn(&Config) -> Vec<u8>,
}

/// The single argument of a directive as text (text that is not UTF-8 reads as a replacement
/// character, which no numeric or path check accepts).
fn one(args: &[Vec<u8>]) -> &str {
    args.first()
        .map_or("", |a| std::str::from_utf8(a).unwrap_or("\u{fffd}"))
}

/// A `yes`/`no` directive's value (already checked by [`Directive::apply`]).
fn yes(args: &[Vec<u8>]) -> bool {
    one(args).eq_ignore_ascii_case("yes")
}

fn yes_no(b: bool) -> Vec<u8> {
    if b {
        b"yes".to_vec()
    } else {
        b"no".to_vec()
    }
}

/// A yes/no directive kept in one `Config` field, not protected.
macro_rules! bool_directive {
    ($name:literal, mutable: $mutable:literal, $($field:ident).+) => {
        Directive {
            name: $name,
            kind: Kind::Bool,
            mutable: $mutable,
            protected: false,
            set: |c, a| {
                c.$($field).+ = yes(a);
                Ok(())
            },
            get: |c| yes_no(c.$($field).+),
        }
    };
}

/// Every directive corekey knows, with Valkey's names.
pub static DIRECTIVES: &[Directive] = &[
    Directive {
        name: "port",
        kind: Kind::Int { min: 0, max: 65535 },
        mutable: false,
        protected: false,
        set: |c, a| {
            let p: u16 = one(a)
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
            if p == 0 {
                return Err(
                    "port 0 (no TCP listener) is not supported: corekey has no unix socket".into(),
                );
            }
            c.port = p;
            Ok(())
        },
        get: |c| c.port.to_string().into_bytes(),
    },
    Directive {
        name: "bind",
        kind: Kind::List,
        mutable: false,
        protected: false,
        set: |c, a| {
            if a.len() > BIND_ADDRS_MAX {
                return Err("Too many bind addresses specified.".into());
            }
            let a: Vec<String> = a
                .iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            let addrs: Vec<String> = if a.len() == 1 && a[0].is_empty() {
                Vec::new()
            } else {
                a.to_vec()
            };
            for addr in &addrs {
                let bare = addr.strip_prefix('-').unwrap_or(addr);
                if bare != "*" && bare != "::*" && bare.parse::<std::net::IpAddr>().is_err() {
                    return Err(format!("Invalid bind address '{addr}'"));
                }
            }
            c.bind = addrs;
            Ok(())
        },
        get: |c| c.bind.join(" ").into_bytes(),
    },
    Directive {
        name: "cores",
        kind: Kind::Int {
            min: 1,
            max: CORES_MAX as i64,
        },
        mutable: false,
        protected: false,
        set: |c, a| {
            c.cores = parse_int(one(a), 1, CORES_MAX as i64)? as usize;
            c.cores_explicit = true;
            Ok(())
        },
        get: |c| c.cores.to_string().into_bytes(),
    },
    Directive {
        name: "cpu-list",
        kind: Kind::Str,
        mutable: false,
        protected: false,
        set: |c, a| {
            c.cpu_list = if one(a).is_empty() {
                None
            } else {
                Some(parse_cpu_list(one(a))?)
            };
            Ok(())
        },
        get: |c| {
            c.cpu_list
                .as_ref()
                .map(|l| format_cpu_list(l))
                .unwrap_or_default()
                .into_bytes()
        },
    },
    Directive {
        name: "dir",
        kind: Kind::Str,
        mutable: true,
        protected: true,
        set: |c, a| {
            let d = one(a);
            if d.is_empty() {
                return Err("dir can't be empty".into());
            }
            if !Path::new(d).is_dir() {
                return Err(format!("No such directory: {d}"));
            }
            c.dir = PathBuf::from(d);
            Ok(())
        },
        // Valkey answers the absolute working directory.
        get: |c| {
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| c.dir.display().to_string())
                .into_bytes()
        },
    },
    Directive {
        name: "maxclients",
        kind: Kind::Int {
            min: 1,
            max: u32::MAX as i64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.maxclients = parse_int(one(a), 1, u32::MAX as i64)? as u64;
            Ok(())
        },
        get: |c| c.maxclients.to_string().into_bytes(),
    },
    Directive {
        name: "requirepass",
        kind: Kind::Str,
        mutable: true,
        protected: false,
        set: |c, a| {
            c.requirepass = a.first().cloned().unwrap_or_default();
            Ok(())
        },
        get: |c| c.requirepass.clone(),
    },
    Directive {
        name: "loglevel",
        kind: Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]),
        mutable: true,
        protected: false,
        set: |c, a| {
            c.loglevel = match one(a).to_ascii_lowercase().as_str() {
                "debug" => LogLevel::Debug,
                "verbose" => LogLevel::Verbose,
                "notice" => LogLevel::Notice,
                "warning" => LogLevel::Warning,
                "nothing" => LogLevel::Nothing,
                _ => return Err("argument(s) must be one of the following: debug, verbose, notice, warning, nothing".into()),
            };
            Ok(())
        },
        get: |c| c.loglevel.name().as_bytes().to_vec(),
    },
    Directive {
        name: "databases",
        kind: Kind::Int {
            min: 1,
            max: DATABASES_MAX as i64,
        },
        mutable: false,
        protected: false,
        set: |c, a| {
            c.databases = parse_int(one(a), 1, DATABASES_MAX as i64)? as usize;
            Ok(())
        },
        get: |c| c.databases.to_string().into_bytes(),
    },
    Directive {
        name: "proto-max-bulk-len",
        kind: Kind::Memory {
            min: 1024 * 1024,
            max: i64::MAX as u64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.proto_max_bulk_len = parse_memory(one(a), 1024 * 1024, i64::MAX as u64)?;
            Ok(())
        },
        get: |c| c.proto_max_bulk_len.to_string().into_bytes(),
    },
    Directive {
        name: "client-query-buffer-limit",
        kind: Kind::Memory {
            min: 1024 * 1024,
            max: i64::MAX as u64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.client_query_buffer_limit = parse_memory(one(a), 1024 * 1024, i64::MAX as u64)?;
            Ok(())
        },
        get: |c| c.client_query_buffer_limit.to_string().into_bytes(),
    },
    // Persistence arrives with its own issue; until then these directives exist so that tools
    // which read them (redis-benchmark reads both) get the truth: no snapshots, no AOF.
    Directive {
        name: "save",
        kind: Kind::List,
        mutable: true,
        protected: false,
        set: |_, a| {
            if a.iter().all(Vec::is_empty) {
                Ok(())
            } else {
                Err("corekey has no persistence yet: only save \"\" is accepted".into())
            }
        },
        get: |_| Vec::new(),
    },
    Directive {
        name: "appendonly",
        kind: Kind::Bool,
        mutable: true,
        protected: false,
        set: |_, a| {
            if one(a).eq_ignore_ascii_case("no") {
                Ok(())
            } else {
                Err("corekey has no append-only file yet: only appendonly no is accepted".into())
            }
        },
        get: |_| b"no".to_vec(),
    },
    Directive {
        name: "timeout",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.timeout = parse_int(one(a), 0, i32::MAX as i64)? as u64;
            Ok(())
        },
        get: |c| c.timeout.to_string().into_bytes(),
    },
    // ---- Cluster mode (issue 6). Valkey's names, defaults and mutability. ----
    Directive {
        name: "replicaof",
        kind: Kind::List,
        mutable: false,
        protected: false,
        set: |c, a| {
            c.repl.replicaof = crate::repl::parse_replicaof(a)?;
            Ok(())
        },
        get: |c| {
            c.repl
                .replicaof
                .as_ref()
                .map_or_else(Vec::new, |(h, p)| format!("{h} {p}").into_bytes())
        },
    },
    // corekey's own sync mode (issue 7): a write is acknowledged to its client only once this
    // many replicas hold it.
    Directive {
        name: "min-replicas-ack",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.repl.min_replicas_ack = parse_int(one(a), 0, i32::MAX as i64)? as usize;
            Ok(())
        },
        get: |c| c.repl.min_replicas_ack.to_string().into_bytes(),
    },
    Directive {
        name: "min-replicas-ack-timeout",
        kind: Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.repl.min_replicas_ack_timeout_ms = parse_int(one(a), 1, i32::MAX as i64)? as u64;
            Ok(())
        },
        get: |c| c.repl.min_replicas_ack_timeout_ms.to_string().into_bytes(),
    },
    Directive {
        name: "repl-timeout",
        kind: Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.repl.timeout_s = parse_int(one(a), 1, i32::MAX as i64)? as u64;
            Ok(())
        },
        get: |c| c.repl.timeout_s.to_string().into_bytes(),
    },
    Directive {
        name: "repl-backlog-size",
        kind: Kind::Memory {
            min: 1,
            max: i64::MAX as u64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.repl.backlog_size = parse_memory(one(a), 1, i64::MAX as u64)?;
            Ok(())
        },
        get: |c| c.repl.backlog_size.to_string().into_bytes(),
    },
    bool_directive!("cluster-enabled", mutable: false, cluster.enabled),
    Directive {
        name: "cluster-config-file",
        kind: Kind::Str,
        mutable: false,
        protected: false,
        set: |c, a| {
            if one(a).is_empty() {
                return Err("cluster-config-file can't be empty".into());
            }
            c.cluster.config_file = one(a).to_string();
            Ok(())
        },
        get: |c| c.cluster.config_file.clone().into_bytes(),
    },
    Directive {
        name: "cluster-node-timeout",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.cluster.node_timeout_ms = parse_int(one(a), 0, i64::MAX)? as u64;
            Ok(())
        },
        get: |c| c.cluster.node_timeout_ms.to_string().into_bytes(),
    },
    Directive {
        name: "cluster-port",
        kind: Kind::Int { min: 0, max: 65535 },
        mutable: false,
        protected: false,
        set: |c, a| {
            c.cluster.port = parse_int(one(a), 0, 65535)? as u16;
            Ok(())
        },
        get: |c| c.cluster.port.to_string().into_bytes(),
    },
    Directive {
        name: "cluster-announce-ip",
        kind: Kind::Str,
        mutable: true,
        protected: false,
        set: |c, a| {
            let ip = one(a);
            if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("Invalid IP address '{ip}'"));
            }
            c.cluster.announce_ip = ip.to_string();
            Ok(())
        },
        get: |c| c.cluster.announce_ip.clone().into_bytes(),
    },
    Directive {
        name: "cluster-announce-port",
        kind: Kind::Int { min: 0, max: 65535 },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.cluster.announce_port = parse_int(one(a), 0, 65535)? as u16;
            Ok(())
        },
        get: |c| c.cluster.announce_port.to_string().into_bytes(),
    },
    Directive {
        name: "cluster-announce-bus-port",
        kind: Kind::Int { min: 0, max: 65535 },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.cluster.announce_bus_port = parse_int(one(a), 0, 65535)? as u16;
            Ok(())
        },
        get: |c| c.cluster.announce_bus_port.to_string().into_bytes(),
    },
    Directive {
        name: "cluster-announce-hostname",
        kind: Kind::Str,
        mutable: true,
        protected: false,
        set: |c, a| {
            let h = one(a);
            if !crate::cluster::valid_hostname(h) {
                return Err("Hostnames must be less than 256 characters and only contain alphanumeric characters, '-' or '.'".into());
            }
            c.cluster.announce_hostname = h.to_string();
            Ok(())
        },
        get: |c| c.cluster.announce_hostname.clone().into_bytes(),
    },
    bool_directive!("cluster-require-full-coverage", mutable: true, cluster.require_full_coverage),
    bool_directive!("cluster-allow-reads-when-down", mutable: true, cluster.allow_reads_when_down),
    bool_directive!("cluster-allow-pubsubshard-when-down", mutable: true, cluster.allow_pubsubshard_when_down),
    bool_directive!("cluster-replica-no-failover", mutable: true, cluster.replica_no_failover),
    Directive {
        name: "cluster-replica-validity-factor",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.cluster.replica_validity_factor = parse_int(one(a), 0, i32::MAX as i64)? as u64;
            Ok(())
        },
        get: |c| c.cluster.replica_validity_factor.to_string().into_bytes(),
    },
    Directive {
        name: "cluster-slave-validity-factor",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.cluster.replica_validity_factor = parse_int(one(a), 0, i32::MAX as i64)? as u64;
            Ok(())
        },
        get: |c| c.cluster.replica_validity_factor.to_string().into_bytes(),
    },
    bool_directive!("cluster-allow-replica-migration", mutable: true, cluster.allow_replica_migration),
    Directive {
        name: "cluster-migration-barrier",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.cluster.migration_barrier = parse_int(one(a), 0, i32::MAX as i64)? as u64;
            Ok(())
        },
        get: |c| c.cluster.migration_barrier.to_string().into_bytes(),
    },
    // ---- end of cluster mode ----
    // Compact-encoding thresholds (Valkey's names; the `ziplist` names are Valkey's aliases).
    Directive {
        name: "hash-max-listpack-entries",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.hash_max_listpack_entries = parse_int(one(a), 0, i64::MAX)? as usize;
            Ok(())
        },
        get: |c| {
            c.encoding
                .hash_max_listpack_entries
                .to_string()
                .into_bytes()
        },
    },
    Directive {
        name: "hash-max-ziplist-entries",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.hash_max_listpack_entries = parse_int(one(a), 0, i64::MAX)? as usize;
            Ok(())
        },
        get: |c| {
            c.encoding
                .hash_max_listpack_entries
                .to_string()
                .into_bytes()
        },
    },
    Directive {
        name: "hash-max-listpack-value",
        // A memory value in Valkey ("64", "1kb"…).
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX as u64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.hash_max_listpack_value = parse_memory(one(a), 0, i64::MAX as u64)? as usize;
            Ok(())
        },
        get: |c| c.encoding.hash_max_listpack_value.to_string().into_bytes(),
    },
    Directive {
        name: "hash-max-ziplist-value",
        // A memory value in Valkey ("64", "1kb"…).
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX as u64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.hash_max_listpack_value = parse_memory(one(a), 0, i64::MAX as u64)? as usize;
            Ok(())
        },
        get: |c| c.encoding.hash_max_listpack_value.to_string().into_bytes(),
    },
    Directive {
        name: "set-max-intset-entries",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.set_max_intset_entries = parse_int(one(a), 0, i64::MAX)? as usize;
            Ok(())
        },
        get: |c| c.encoding.set_max_intset_entries.to_string().into_bytes(),
    },
    Directive {
        name: "set-max-listpack-entries",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.set_max_listpack_entries = parse_int(one(a), 0, i64::MAX)? as usize;
            Ok(())
        },
        get: |c| c.encoding.set_max_listpack_entries.to_string().into_bytes(),
    },
    Directive {
        name: "set-max-listpack-value",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.set_max_listpack_value = parse_int(one(a), 0, i64::MAX)? as usize;
            Ok(())
        },
        get: |c| c.encoding.set_max_listpack_value.to_string().into_bytes(),
    },
    Directive {
        name: "zset-max-listpack-entries",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.zset_max_listpack_entries = parse_int(one(a), 0, i64::MAX)? as usize;
            Ok(())
        },
        get: |c| {
            c.encoding
                .zset_max_listpack_entries
                .to_string()
                .into_bytes()
        },
    },
    Directive {
        name: "zset-max-ziplist-entries",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.zset_max_listpack_entries = parse_int(one(a), 0, i64::MAX)? as usize;
            Ok(())
        },
        get: |c| {
            c.encoding
                .zset_max_listpack_entries
                .to_string()
                .into_bytes()
        },
    },
    Directive {
        name: "zset-max-listpack-value",
        // A memory value in Valkey ("64", "1kb"…).
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX as u64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.zset_max_listpack_value = parse_memory(one(a), 0, i64::MAX as u64)? as usize;
            Ok(())
        },
        get: |c| c.encoding.zset_max_listpack_value.to_string().into_bytes(),
    },
    Directive {
        name: "zset-max-ziplist-value",
        // A memory value in Valkey ("64", "1kb"…).
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX as u64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.zset_max_listpack_value = parse_memory(one(a), 0, i64::MAX as u64)? as usize;
            Ok(())
        },
        get: |c| c.encoding.zset_max_listpack_value.to_string().into_bytes(),
    },
    Directive {
        name: "list-max-listpack-size",
        // A C int in Valkey.
        kind: Kind::Int {
            min: i32::MIN as i64,
            max: i32::MAX as i64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.list_max_listpack_size =
                parse_int(one(a), i32::MIN as i64, i32::MAX as i64)?;
            Ok(())
        },
        get: |c| c.encoding.list_max_listpack_size.to_string().into_bytes(),
    },
    Directive {
        name: "list-max-ziplist-size",
        // A C int in Valkey.
        kind: Kind::Int {
            min: i32::MIN as i64,
            max: i32::MAX as i64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.encoding.list_max_listpack_size =
                parse_int(one(a), i32::MIN as i64, i32::MAX as i64)?;
            Ok(())
        },
        get: |c| c.encoding.list_max_listpack_size.to_string().into_bytes(),
    },
    // Observability (Valkey's names, except `metrics-port` and `log-format`, corekey's own).
    Directive {
        name: "slowlog-log-slower-than",
        kind: Kind::Int {
            min: -1,
            max: i64::MAX,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.slowlog_log_slower_than = parse_int(one(a), -1, i64::MAX)?;
            Ok(())
        },
        get: |c| c.slowlog_log_slower_than.to_string().into_bytes(),
    },
    Directive {
        name: "slowlog-max-len",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.slowlog_max_len = parse_int(one(a), 0, i64::from(i32::MAX))? as u64;
            Ok(())
        },
        get: |c| c.slowlog_max_len.to_string().into_bytes(),
    },
    Directive {
        name: "latency-monitor-threshold",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        mutable: true,
        protected: false,
        set: |c, a| {
            c.latency_monitor_threshold_ms = parse_int(one(a), 0, i64::MAX)? as u64;
            Ok(())
        },
        get: |c| c.latency_monitor_threshold_ms.to_string().into_bytes(),
    },
    Directive {
        name: "latency-tracking",
        kind: Kind::Bool,
        mutable: true,
        protected: false,
        set: |c, a| {
            c.latency_tracking = one(a).eq_ignore_ascii_case("yes");
            Ok(())
        },
        get: |c| yes_no(c.latency_tracking),
    },
    Directive {
        name: "latency-tracking-info-percentiles",
        kind: Kind::List,
        mutable: true,
        protected: false,
        set: |c, a| {
            // One argument may hold several words (CONFIG SET passes the value whole).
            let words: Vec<&[u8]> = a
                .iter()
                .flat_map(|w| w.split(|&b| b == b' '))
                .filter(|w| !w.is_empty())
                .collect();
            let mut out = Vec::with_capacity(words.len());
            for w in words {
                let v: f64 = std::str::from_utf8(w)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .filter(|v: &f64| (0.0..=100.0).contains(v))
                    .ok_or("latency-tracking-info-percentiles: percentile must be between 0.0 and 100.0")?;
                out.push(v.to_string());
            }
            c.latency_tracking_info_percentiles = out;
            Ok(())
        },
        get: |c| c.latency_tracking_info_percentiles.join(" ").into_bytes(),
    },
    Directive {
        name: "metrics-port",
        kind: Kind::Int { min: 0, max: 65535 },
        mutable: false,
        protected: false,
        set: |c, a| {
            c.metrics_port = parse_int(one(a), 0, 65535)? as u16;
            Ok(())
        },
        get: |c| c.metrics_port.to_string().into_bytes(),
    },
    Directive {
        name: "logfile",
        kind: Kind::Str,
        mutable: false,
        protected: false,
        set: |c, a| {
            c.logfile = one(a).to_string();
            Ok(())
        },
        get: |c| c.logfile.clone().into_bytes(),
    },
    Directive {
        name: "log-format",
        kind: Kind::Enum(&["legacy", "json"]),
        mutable: false,
        protected: false,
        set: |c, a| {
            c.log_format = if one(a).eq_ignore_ascii_case("json") {
                LogFormat::Json
            } else {
                LogFormat::Legacy
            };
            Ok(())
        },
        get: |c| match c.log_format {
            LogFormat::Legacy => b"legacy".to_vec(),
            LogFormat::Json => b"json".to_vec(),
        },
    },
];

/// The directive named `name` (case-insensitive).
pub fn directive(name: &str) -> Option<&'static Directive> {
    DIRECTIVES
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(name))
}

impl Directive {
    /// Applies `args` to `config`, checking the value; the error says why it was refused.
    pub fn apply(&self, config: &mut Config, args: &[Vec<u8>]) -> Result<(), String> {
        match self.kind {
            Kind::List => {}
            _ if args.len() != 1 => return Err("wrong number of arguments".into()),
            Kind::Int { min, max } => {
                parse_int(one(args), min, max)?;
            }
            Kind::Memory { min, max } => {
                parse_memory(one(args), min, max)?;
            }
            Kind::Enum(options) => {
                if !options.iter().any(|o| o.eq_ignore_ascii_case(one(args))) {
                    return Err(format!(
                        "argument(s) must be one of the following: {}",
                        options.join(", ")
                    ));
                }
            }
            Kind::Bool => {
                if !["yes", "no"]
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(one(args)))
                {
                    return Err("argument must be 'yes' or 'no'".into());
                }
            }
            Kind::Str => {}
        }
        (self.set)(config, args)
    }

    /// The current value as CONFIG GET prints it.
    pub fn value(&self, config: &Config) -> Vec<u8> {
        (self.get)(config)
    }
}

fn parse_int(s: &str, min: i64, max: i64) -> Result<i64, String> {
    let v = crate::util::parse_i64(s.as_bytes())
        .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
    if v < min || v > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(v)
}

/// Valkey's `memtoull`: digits with an optional unit b, k, kb, m, mb, g, gb (any case).
pub fn parse_memory(s: &str, min: u64, max: u64) -> Result<u64, String> {
    let bad = || "argument must be a memory value".to_string();
    let digits_end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let v = n.checked_mul(mul).ok_or_else(bad)?;
    if v < min || v > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(v)
}

/// Parses `0,2-3` into `[0, 2, 3]`. A CPU may repeat (two shards on one core).
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("invalid cpu-list '{s}': expected CPU numbers and ranges like 0,2-3");
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: usize = a.trim().parse().map_err(|_| bad())?;
        let b: usize = b.trim().parse().map_err(|_| bad())?;
        if a > b || b >= libc::CPU_SETSIZE as usize {
            return Err(bad());
        }
        out.extend(a..=b);
        if out.len() > CORES_MAX {
            return Err(format!("cpu-list names more than {CORES_MAX} shards"));
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

fn format_cpu_list(l: &[usize]) -> String {
    l.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// A configuration error: where it was found and why, printed the way Valkey prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// "the configuration file, at line 3" or "the command line".
    pub place: String,
    pub line: String,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "\n*** FATAL CONFIG FILE ERROR (corekey {}) ***",
            env!("CARGO_PKG_VERSION")
        )?;
        writeln!(f, "Reading {}", self.place)?;
        writeln!(f, ">>> '{}'", self.line)?;
        write!(f, "{}", self.reason)
    }
}

/// Applies config text (valkey.conf syntax) to `config`. `place` names the source in errors.
pub fn apply_text(
    config: &mut Config,
    text: &[u8],
    place: &str,
    depth: usize,
) -> Result<(), ConfigError> {
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = raw.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let err = |reason: String| ConfigError {
            place: format!("{place}, at line {}", i + 1),
            line: String::from_utf8_lossy(line).into_owned(),
            reason,
        };
        let Some(words) = crate::resp::split::split_args(line) else {
            return Err(err("Unbalanced quotes in configuration line".into()));
        };
        let Some((name, args)) = words.split_first() else {
            continue;
        };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if name == "include" && args.len() == 1 {
            if depth >= INCLUDE_DEPTH_MAX {
                return Err(err("include nested too deeply".into()));
            }
            let path = String::from_utf8_lossy(&args[0]).into_owned();
            let text = std::fs::read(&path)
                .map_err(|e| err(format!("Fatal error, can't open config file '{path}': {e}")))?;
            apply_text(
                config,
                &text,
                &format!("the configuration file {path}"),
                depth + 1,
            )?;
            continue;
        }
        let Some(d) = directive(&name) else {
            return Err(err("Bad directive or wrong number of arguments".into()));
        };
        // Like Valkey: a multi-word directive given as one argument is split at spaces.
        let split;
        let args = if matches!(d.kind, Kind::List) && args.len() == 1 && !args[0].is_empty() {
            split = crate::resp::split::split_args(&args[0]).unwrap_or_default();
            &split[..]
        } else {
            args
        };
        d.apply(config, args).map_err(err)?;
    }
    Ok(())
}

/// Old names that Valkey still accepts for a directive (CONFIG REWRITE writes the new name).
const ALIASES: &[(&str, &str)] = &[
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
];

/// The line that starts what CONFIG REWRITE appends (Valkey's signature line).
pub const REWRITE_SIGNATURE: &str = "# Generated by CONFIG REWRITE";

/// A directive's line as CONFIG REWRITE writes it: strings quoted as `sdscatrepr` quotes
/// them, lists as their words, numbers and words bare.
fn rewrite_line(d: &Directive, config: &Config) -> String {
    let value = d.value(config);
    let text = String::from_utf8_lossy(&value).into_owned();
    match d.kind {
        Kind::Str => format!("{} {}", d.name, repr(&text)),
        Kind::List if text.is_empty() => format!("{} \"\"", d.name),
        _ => format!("{} {text}", d.name),
    }
}

/// CONFIG REWRITE's new text for a config file: every directive line of `original` is kept
/// in its place with the current value (a repeated directive keeps only its first line);
/// comments, blank lines and `include` lines stay as they were; directives that the file
/// does not name are appended after a signature line when their value is not the default.
pub fn rewrite(original: &str, config: &Config) -> String {
    let defaults = Config::defaults();
    let canonical = |name: &str| -> Option<&'static Directive> {
        let name = ALIASES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
            .map_or(name, |(_, to)| to);
        directive(name)
    };
    let mut done: Vec<&'static str> = Vec::new();
    let mut out: Vec<String> = Vec::new();
    for line in original.lines() {
        let trimmed = line.trim();
        let words = crate::resp::split::split_args(trimmed.as_bytes()).unwrap_or_default();
        let Some(d) = words
            .first()
            .and_then(|w| canonical(&String::from_utf8_lossy(w)))
        else {
            // Comments, blank lines, `include`, and anything we do not own stay.
            out.push(line.to_string());
            continue;
        };
        if !done.contains(&d.name) {
            done.push(d.name);
            out.push(rewrite_line(d, config));
        }
    }
    // Trailing blank lines would pile up at every rewrite.
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    let mut signed = out.iter().any(|l| l.trim() == REWRITE_SIGNATURE);
    for d in DIRECTIVES {
        if done.contains(&d.name) || ALIASES.iter().any(|(alias, _)| *alias == d.name) {
            continue;
        }
        let is_default = match d.name {
            // CONFIG GET dir answers the absolute working directory; compare what was set.
            "dir" => config.dir == defaults.dir,
            // The default depends on the machine: written only when set explicitly.
            "cores" => !config.cores_explicit,
            _ => d.value(config) == d.value(&defaults),
        };
        if is_default {
            continue;
        }
        if !signed {
            out.push(REWRITE_SIGNATURE.to_string());
            signed = true;
        }
        out.push(rewrite_line(d, config));
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// Quotes one command-line value the way Valkey's `sdscatrepr` does, so that the config line
/// built from the command line splits back into the same words.
fn repr(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(char::from(b)),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run the server with this configuration.
    Run(Box<Config>),
    /// Print this (help or version) and exit 0.
    Print(String),
    /// Check the host for a node with this configuration (`--check-system`) and exit.
    CheckSystem(Box<Config>),
}

/// Parses the command line (`corekey [config-file] [--directive value ...]`), reading the
/// config file if one is named.
pub fn load(args: &[String]) -> Result<Invocation, ConfigError> {
    let cli_err = |line: String, reason: String| ConfigError {
        place: "the command line".into(),
        line,
        reason,
    };
    // Split: leading words before the first `--flag` go to clap (config file, -h, -v);
    // each `--name` and the words after it (up to the next `--`) form one config line.
    let mut head: Vec<String> = vec![args.first().cloned().unwrap_or_else(|| "corekey".into())];
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    for a in args.iter().skip(1) {
        if let Some(name) = a.strip_prefix("--").filter(|n| !n.is_empty()) {
            if matches!(name, "help" | "version" | "check-system") {
                head.push(a.clone());
                continue;
            }
            lines.push((name.to_string(), Vec::new()));
        } else if let Some((_, vals)) = lines.last_mut() {
            vals.push(a.clone());
        } else {
            head.push(a.clone());
        }
    }
    let mut cmd = clap::Command::new("corekey")
        .version(env!("CARGO_PKG_VERSION"))
        .about("corekey: a thread-per-core, io_uring, Valkey-compatible key-value node")
        .after_help(directive_help())
        .arg(
            clap::Arg::new("config")
                .help("valkey.conf-style configuration file ('-' reads standard input)")
                .value_name("CONFIG-FILE")
                .allow_hyphen_values(true),
        )
        .arg(
            clap::Arg::new("check-system")
                .long("check-system")
                .action(clap::ArgAction::SetTrue)
                .help("Check this host for settings that hurt corekey (THP, somaxconn, overcommit, open files, io_uring, CPUs), print each problem with its fix, and exit (0 when none)"),
        );
    let matches = match cmd.try_get_matches_from_mut(&head) {
        Ok(m) => m,
        Err(e) => {
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) {
                return Ok(Invocation::Print(e.to_string()));
            }
            return Err(cli_err(
                head[1..].join(" "),
                e.to_string().trim().to_string(),
            ));
        }
    };
    let mut config = Config::defaults();
    if let Some(path) = matches.get_one::<String>("config") {
        let text = if path == "-" {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut s).map_err(|e| {
                cli_err(
                    path.clone(),
                    format!("Fatal error, can't read standard input: {e}"),
                )
            })?;
            s
        } else {
            std::fs::read(path).map_err(|e| {
                cli_err(
                    path.clone(),
                    format!("Fatal error, can't open config file '{path}': {e}"),
                )
            })?
        };
        apply_text(&mut config, &text, "the configuration file", 0)?;
        if path != "-" {
            config.config_file =
                Some(std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path)));
        }
    }
    for (name, vals) in &lines {
        let line = format!(
            "{name} {}",
            vals.iter().map(|v| repr(v)).collect::<Vec<_>>().join(" ")
        );
        if directive(name).is_none() {
            return Err(cli_err(
                format!("--{name}"),
                format!("unknown directive '{name}'"),
            ));
        }
        apply_text(&mut config, line.as_bytes(), "the command line", 0).map_err(|mut e| {
            e.place = format!("the command line (--{name})");
            e
        })?;
    }
    if let Some(list) = &config.cpu_list {
        if config.cores_explicit && config.cores != list.len() {
            return Err(cli_err(
                format!("cores {}", config.cores),
                format!(
                    "cores is {} but cpu-list names {} CPUs",
                    config.cores,
                    list.len()
                ),
            ));
        }
        config.cores = list.len();
    }
    // Valkey: in cluster mode there is only database 0.
    if config.cluster.enabled && config.databases != 1 {
        config.databases = 1;
    }
    if matches.get_flag("check-system") {
        return Ok(Invocation::CheckSystem(Box::new(config)));
    }
    Ok(Invocation::Run(Box::new(config)))
}

fn directive_help() -> String {
    let mut s =
        String::from("Directives (valkey.conf names), each also accepted as --name value:\n");
    for d in DIRECTIVES {
        s.push_str(&format!(
            "  --{:<28} default: {}\n",
            d.name,
            String::from_utf8_lossy(&d.value(&Config::defaults()))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, ConfigError> {
        let mut v = vec!["corekey".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        match load(&v)? {
            Invocation::Run(c) => Ok(*c),
            Invocation::Print(p) => panic!("printed {p}"),
            Invocation::CheckSystem(_) => panic!("asked for --check-system"),
        }
    }

    /// Defaults are Valkey's where Valkey has the directive.
    #[test]
    fn defaults() {
        let c = run(&[]).unwrap();
        assert_eq!(c.port, 6379);
        assert_eq!(c.bind, ["127.0.0.1", "-::1"]);
        assert_eq!(c.databases, 16);
        assert_eq!(c.proto_max_bulk_len, 512 * 1024 * 1024);
        assert_eq!(c.client_query_buffer_limit, 1024 * 1024 * 1024);
        assert_eq!(c.maxclients, 10000);
        assert_eq!(c.timeout, 0);
        assert!(c.cores >= 1);
    }

    /// Flags take several values, including ones that start with '-', and override the file.
    #[test]
    fn flags() {
        let c = run(&[
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "7000",
            "--cpu-list",
            "0,0",
        ])
        .unwrap();
        assert_eq!(c.bind, ["127.0.0.1", "-::1"]);
        assert_eq!(c.port, 7000);
        assert_eq!(c.cpu_list, Some(vec![0, 0]));
        assert_eq!(c.cores, 2);
        let c = run(&["--requirepass", "a b\"c", "--proto-max-bulk-len", "2mb"]).unwrap();
        assert_eq!(c.requirepass, b"a b\"c");
        assert_eq!(c.proto_max_bulk_len, 2 * 1024 * 1024);
    }

    /// A file is read first, then flags override it; comments and quotes work as in valkey.conf.
    #[test]
    fn file_then_flags() {
        let dir = std::env::temp_dir().join(format!("corekey-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.conf");
        std::fs::write(
            &path,
            "# comment\n  port 7001\nrequirepass \"p w\"\nbind 127.0.0.1\nmaxclients 5\r\n",
        )
        .unwrap();
        let c = run(&[path.to_str().unwrap(), "--port", "7002"]).unwrap();
        assert_eq!(c.port, 7002);
        assert_eq!(c.requirepass, b"p w");
        assert_eq!(c.bind, ["127.0.0.1"]);
        assert_eq!(c.maxclients, 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Unknown directives and bad values are refused with a message naming them.
    #[test]
    fn errors_name_the_directive() {
        let e = run(&["--nosuch", "1"]).unwrap_err();
        assert!(e.to_string().contains("nosuch"), "{e}");
        let e = run(&["--port", "abc"]).unwrap_err();
        assert!(
            e.to_string().contains("port") && e.to_string().contains("integer"),
            "{e}"
        );
        let e = run(&["--port", "70000"]).unwrap_err();
        assert!(e.to_string().contains("between 0 and 65535"), "{e}");
        let e = run(&["--proto-max-bulk-len", "12xb"]).unwrap_err();
        assert!(e.to_string().contains("memory value"), "{e}");
        let e = run(&["--cores", "3", "--cpu-list", "0,1"]).unwrap_err();
        assert!(e.to_string().contains("cpu-list"), "{e}");
        let mut c = Config::defaults();
        let e = apply_text(&mut c, b"port 1\nfoo bar\n", "the configuration file", 0).unwrap_err();
        assert_eq!(e.place, "the configuration file, at line 2");
        assert_eq!(e.reason, "Bad directive or wrong number of arguments");
    }

    /// The replica migration directives (Valkey's defaults: allowed, barrier 1) reach the bus
    /// state machine's settings.
    #[test]
    fn replica_migration_directives_reach_the_bus() {
        let c = run(&[]).unwrap();
        let bus = c.cluster.bus_config(c.port, c.repl.min_replicas_ack);
        assert!(bus.allow_replica_migration);
        assert_eq!(bus.migration_barrier, 1);
        let c = run(&[
            "--cluster-allow-replica-migration",
            "no",
            "--cluster-migration-barrier",
            "3",
        ])
        .unwrap();
        let bus = c.cluster.bus_config(c.port, c.repl.min_replicas_ack);
        assert!(!bus.allow_replica_migration);
        assert_eq!(bus.migration_barrier, 3);
        let e = run(&["--cluster-migration-barrier", "-1"]).unwrap_err();
        assert!(e.to_string().contains("cluster-migration-barrier"), "{e}");
    }

    /// `min-replicas-ack` (sync mode) reaches the bus state machine as `sync_replicas`: its
    /// elections then need offsets from enough replicas (0, the default, is no sync mode).
    #[test]
    fn min_replicas_ack_reaches_the_bus() {
        let c = run(&[]).unwrap();
        assert_eq!(
            c.cluster
                .bus_config(c.port, c.repl.min_replicas_ack)
                .sync_replicas,
            0
        );
        let c = run(&["--min-replicas-ack", "2"]).unwrap();
        assert_eq!(
            c.cluster
                .bus_config(c.port, c.repl.min_replicas_ack)
                .sync_replicas,
            2
        );
    }

    /// Memory values accept Valkey's units.
    #[test]
    fn memory_units() {
        let m = |s| parse_memory(s, 0, u64::MAX);
        assert_eq!(m("1k"), Ok(1000));
        assert_eq!(m("1KB"), Ok(1024));
        assert_eq!(m("3mb"), Ok(3 * 1024 * 1024));
        assert_eq!(m("2g"), Ok(2_000_000_000));
        assert!(m("-1").is_err());
        assert!(m("1tb").is_err());
    }

    /// CPU lists expand ranges and keep repeats.
    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0,2-3"), Ok(vec![0, 2, 3]));
        assert_eq!(parse_cpu_list("1,1"), Ok(vec![1, 1]));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("x").is_err());
    }

    /// CONFIG REWRITE keeps comments, order and includes, updates values in place, drops
    /// repeated lines, writes an alias under its new name, and appends what the file lacks.
    #[test]
    fn rewrite_keeps_the_file() {
        let original = "# my node\nport 7000\n\n# memory\nhash-max-ziplist-entries 64\ninclude /etc/x.conf\nport 7001\nrequirepass \"a b\"\n";
        let mut c = Config::defaults();
        apply_text(
            &mut c,
            b"port 7002\ntimeout 30\nrequirepass x\nhash-max-listpack-entries 100\n",
            "t",
            0,
        )
        .unwrap();
        let text = rewrite(original, &c);
        assert_eq!(
            text,
            "# my node\nport 7002\n\n# memory\nhash-max-listpack-entries 100\ninclude /etc/x.conf\nrequirepass \"x\"\n# Generated by CONFIG REWRITE\ntimeout 30\n"
        );
        // A second rewrite changes nothing, and the result reads back to the same values.
        assert_eq!(rewrite(&text, &c), text);
        let mut back = Config::defaults();
        apply_text(
            &mut back,
            text.replace("include /etc/x.conf\n", "").as_bytes(),
            "t",
            0,
        )
        .unwrap();
        assert_eq!(back.port, 7002);
        assert_eq!(back.timeout, 30);
        assert_eq!(back.requirepass, b"x");
    }

    /// --check-system takes the configuration it checks against, from a file and flags.
    #[test]
    fn check_system_flag() {
        let v: Vec<String> = [
            "corekey",
            "--check-system",
            "--cores",
            "3",
            "--maxclients",
            "5",
        ]
        .map(String::from)
        .to_vec();
        match load(&v) {
            Ok(Invocation::CheckSystem(c)) => assert_eq!((c.cores, c.maxclients), (3, 5)),
            other => panic!("{other:?}"),
        }
    }

    /// --help and --version print and exit 0.
    #[test]
    fn help_and_version() {
        let v = vec!["corekey".to_string(), "--version".to_string()];
        assert!(matches!(load(&v), Ok(Invocation::Print(_))));
        let v = vec!["corekey".to_string(), "--help".to_string()];
        match load(&v) {
            Ok(Invocation::Print(p)) => assert!(p.contains("--proto-max-bulk-len")),
            other => panic!("{other:?}"),
        }
    }
}
