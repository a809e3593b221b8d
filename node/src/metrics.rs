//! Prometheus metrics: the text exposition format (version 0.0.4) served at `GET /metrics` on
//! `metrics-port`, from the same per-shard reports INFO reads (`commands::server::gather`).
//!
//! Node-wide series use redis_exporter's names and labels, so dashboards built for it work
//! unchanged; corekey's own per-shard series are prefixed `corekey_shard_`. README.md lists
//! every series. Rendering is pure: it is given the reports and the facts it prints.

use crate::commands::server::ShardReport;
use crate::config::Config;
use crate::shard::latency::Histogram;
use crate::shard::stats::Stats;
use crate::shard::NodeShared;
use std::fmt::Write;

/// Power-of-two latency buckets of the per-shard histograms, in nanoseconds: 1024 ns (about
/// 1 µs) to 2^30 ns (about 1.07 s); exact edges of `Histogram`'s buckets.
const LATENCY_BUCKETS_NS: [u64; 21] = {
    let mut b = [0u64; 21];
    let mut i = 0;
    while i < 21 {
        b[i] = 1024 << i;
        i += 1;
    }
    b
};

/// Facts about the node and the process that the reports do not carry.
pub struct Facts {
    pub used_memory: u64,
    pub rss: u64,
    pub peak: u64,
    pub allocator_active: u64,
    pub allocator_resident: u64,
    pub total_system_memory: u64,
    pub cpu_sys: f64,
    pub cpu_user: f64,
    pub now_ms: i64,
    /// The text of `INFO replication`.
    pub replication: String,
}

/// One metric family being written: its HELP and TYPE lines go out once, before its first
/// sample.
struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = write!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// A family with a single unlabelled sample.
    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: integers without a fraction, others as Rust prints them, NaN and
/// infinities as Prometheus spells them.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The `/metrics` page.
pub fn render(config: &Config, node: &NodeShared, reports: &[ShardReport], f: &Facts) -> String {
    let mut w = Writer {
        out: String::with_capacity(16 * 1024),
    };
    let mut stats = Stats::new();
    for r in reports {
        stats.merge(&r.stats);
    }
    let sum = |g: fn(&ShardReport) -> u64| reports.iter().map(g).sum::<u64>() as f64;
    let uptime_s = ((f.now_ms - node.start_unix_ms).max(0) / 1000) as f64;

    w.one(
        "redis_up",
        "gauge",
        "Whether the node answers (1 whenever it does)",
        1.0,
    );
    w.family(
        "redis_instance_info",
        "gauge",
        "Information about the Redis instance",
    );
    let pid = std::process::id().to_string();
    let port = node.tcp_port.to_string();
    let role = f
        .replication
        .lines()
        .find_map(|l| l.strip_prefix("role:"))
        .map_or("master", str::trim);
    let mode = if config.cluster.enabled {
        "cluster"
    } else {
        "standalone"
    };
    w.sample(
        "redis_instance_info",
        &[
            ("role", role),
            ("redis_version", crate::commands::server::REDIS_VERSION),
            ("redis_build_id", "0"),
            ("redis_mode", mode),
            ("os", std::env::consts::OS),
            ("maxmemory_policy", "noeviction"),
            ("tcp_port", &port),
            ("run_id", &node.run_id),
            ("process_id", &pid),
            ("corekey_version", env!("CARGO_PKG_VERSION")),
        ],
        1.0,
    );
    w.one(
        "redis_start_time_seconds",
        "gauge",
        "Start time of the Redis instance since unix epoch in seconds.",
        (node.start_unix_ms / 1000) as f64,
    );
    w.one(
        "redis_uptime_in_seconds",
        "gauge",
        "uptime_in_seconds metric",
        uptime_s,
    );
    w.one(
        "redis_process_id",
        "gauge",
        "process_id metric",
        f64::from(std::process::id()),
    );

    // Clients.
    w.one(
        "redis_connected_clients",
        "gauge",
        "connected_clients metric",
        reports.iter().map(|r| r.clients).sum::<usize>() as f64,
    );
    w.one(
        "redis_blocked_clients",
        "gauge",
        "blocked_clients metric",
        reports.iter().map(|r| r.blocked_clients).sum::<usize>() as f64,
    );
    w.one(
        "redis_pubsub_clients",
        "gauge",
        "pubsub_clients metric",
        reports.iter().map(|r| r.pubsub_clients).sum::<usize>() as f64,
    );
    w.one(
        "redis_config_maxclients",
        "gauge",
        "config_maxclients metric",
        config.maxclients as f64,
    );
    w.one(
        "redis_client_recent_max_input_buffer_bytes",
        "gauge",
        "client_recent_max_input_buffer metric",
        stats.client_recent_max_input_buffer as f64,
    );
    w.one(
        "redis_client_recent_max_output_buffer_bytes",
        "gauge",
        "client_recent_max_output_buffer metric",
        stats.client_recent_max_output_buffer as f64,
    );

    // Memory.
    for (name, help, v) in [
        (
            "redis_memory_used_bytes",
            "used_memory metric",
            f.used_memory,
        ),
        (
            "redis_memory_used_rss_bytes",
            "used_memory_rss metric",
            f.rss,
        ),
        (
            "redis_memory_used_peak_bytes",
            "used_memory_peak metric",
            f.peak,
        ),
        ("redis_memory_max_bytes", "maxmemory metric", 0),
        (
            "redis_total_system_memory_bytes",
            "total_system_memory metric",
            f.total_system_memory,
        ),
        (
            "redis_allocator_allocated_bytes",
            "allocator_allocated metric",
            f.used_memory,
        ),
        (
            "redis_allocator_active_bytes",
            "allocator_active metric",
            f.allocator_active,
        ),
        (
            "redis_allocator_resident_bytes",
            "allocator_resident metric",
            f.allocator_resident,
        ),
    ] {
        w.one(name, "gauge", help, v as f64);
    }
    w.one(
        "redis_mem_fragmentation_ratio",
        "gauge",
        "mem_fragmentation_ratio metric",
        if f.used_memory > 0 {
            f.rss as f64 / f.used_memory as f64
        } else {
            0.0
        },
    );

    // Stats.
    for (name, help, v) in [
        (
            "redis_commands_processed_total",
            "total_commands_processed metric",
            stats.total_commands as f64,
        ),
        (
            "redis_connections_received_total",
            "total_connections_received metric",
            stats.total_connections as f64,
        ),
        (
            "redis_rejected_connections_total",
            "rejected_connections metric",
            stats.rejected_connections as f64,
        ),
        (
            "redis_net_input_bytes_total",
            "total_net_input_bytes metric",
            stats.net_input_bytes as f64,
        ),
        (
            "redis_net_output_bytes_total",
            "total_net_output_bytes metric",
            stats.net_output_bytes as f64,
        ),
        (
            "redis_keyspace_hits_total",
            "keyspace_hits metric",
            sum(|r| r.hits),
        ),
        (
            "redis_keyspace_misses_total",
            "keyspace_misses metric",
            sum(|r| r.misses),
        ),
        (
            "redis_expired_keys_total",
            "expired_keys metric",
            sum(|r| r.expired),
        ),
        ("redis_evicted_keys_total", "evicted_keys metric", 0.0),
        (
            "redis_expired_time_cap_reached_total",
            "expired_time_cap_reached_count metric",
            stats.expire_time_cap_reached as f64,
        ),
        (
            "redis_cpu_sys_seconds_total",
            "used_cpu_sys metric",
            f.cpu_sys,
        ),
        (
            "redis_cpu_user_seconds_total",
            "used_cpu_user metric",
            f.cpu_user,
        ),
    ] {
        w.one(name, "counter", help, v);
    }
    // redis_exporter's `redis_instantaneous_ops_per_sec` is left out: promtool's lint refuses
    // its name, and `rate(redis_commands_processed_total[1m])` says the same.
    let distinct = |g: fn(&ShardReport) -> Vec<&Vec<u8>>| {
        reports
            .iter()
            .flat_map(g)
            .collect::<std::collections::HashSet<_>>()
            .len() as f64
    };
    w.one(
        "redis_pubsub_channels",
        "gauge",
        "pubsub_channels metric",
        distinct(|r| r.pubsub_channels.iter().collect()),
    );
    w.one(
        "redis_pubsub_patterns",
        "gauge",
        "pubsub_patterns metric",
        distinct(|r| r.pubsub_patterns.iter().collect()),
    );
    w.one(
        "redis_pubsub_shard_channels",
        "gauge",
        "pubsubshard_channels metric",
        distinct(|r| r.pubsub_shard_channels.iter().collect()),
    );
    replication(&mut w, &f.replication);
    w.one(
        "redis_slowlog_length",
        "gauge",
        "Total slowlog",
        (reports.iter().map(|r| r.slowlog_len).sum::<usize>() as u64).min(config.slowlog_max_len)
            as f64,
    );

    // Commandstats, errorstats, latencystats.
    let registry = crate::commands::registry();
    let used: Vec<usize> = (0..stats.commands.len())
        .filter(|&i| {
            let c = &stats.commands[i];
            c.calls + c.rejected + c.failed > 0
        })
        .collect();
    let per_cmd = |w: &mut Writer, name: &str, help: &str, v: &dyn Fn(usize) -> f64| {
        w.family(name, "counter", help);
        for &i in &used {
            w.sample(name, &[("cmd", &registry.all[i].fullname)], v(i));
        }
    };
    per_cmd(
        &mut w,
        "redis_commands_total",
        "Total number of calls per command",
        &|i| stats.commands[i].calls as f64,
    );
    per_cmd(
        &mut w,
        "redis_commands_duration_seconds_total",
        "Total amount of time in seconds spent per command",
        &|i| stats.commands[i].usec as f64 / 1e6,
    );
    per_cmd(
        &mut w,
        "redis_commands_rejected_calls_total",
        "Total number of errors prior command execution per command",
        &|i| stats.commands[i].rejected as f64,
    );
    per_cmd(
        &mut w,
        "redis_commands_failed_calls_total",
        "Total number of errors within command execution per command",
        &|i| stats.commands[i].failed as f64,
    );
    w.family(
        "redis_errors_total",
        "counter",
        "Total number of errors per error type",
    );
    let mut errs: Vec<(&Box<str>, &u64)> = stats.errors.iter().collect();
    errs.sort();
    for (code, n) in errs {
        w.sample("redis_errors_total", &[("err", code)], *n as f64);
    }
    w.family(
        "redis_latency_percentiles_usec",
        "summary",
        "A summary of latency percentile distribution per command",
    );
    for (i, h) in stats.latency.iter().enumerate() {
        let Some(h) = h.as_ref().filter(|h| h.total() > 0) else {
            continue;
        };
        let cmd = registry.all[i].fullname.as_str();
        for p in &config.latency_tracking_info_percentiles {
            let pv: f64 = p.parse().unwrap_or(0.0);
            let q = number(pv / 100.0);
            w.sample(
                "redis_latency_percentiles_usec",
                &[("cmd", cmd), ("quantile", &q)],
                h.value_at(pv) as f64 / 1000.0,
            );
        }
        w.sample(
            "redis_latency_percentiles_usec_sum",
            &[("cmd", cmd)],
            h.approx_sum_ns() as f64 / 1000.0,
        );
        w.sample(
            "redis_latency_percentiles_usec_count",
            &[("cmd", cmd)],
            h.total() as f64,
        );
    }

    // Keyspace.
    let mut dbs: std::collections::BTreeMap<usize, (usize, usize, i64, usize)> = Default::default();
    for r in reports {
        for &(db, keys, expires, avg) in &r.keys {
            let e = dbs.entry(db).or_default();
            e.0 += keys;
            e.1 += expires;
            if avg > 0 {
                e.2 += avg;
                e.3 += 1;
            }
        }
    }
    for (name, help, pick) in [
        (
            "redis_db_keys",
            "Total number of keys by DB",
            (|e: &(usize, usize, i64, usize)| e.0 as f64) as fn(&_) -> f64,
        ),
        (
            "redis_db_keys_expiring",
            "Total number of expiring keys by DB",
            |e| e.1 as f64,
        ),
        ("redis_db_avg_ttl_seconds", "Avg TTL in seconds", |e| {
            if e.3 > 0 {
                (e.2 / e.3 as i64) as f64 / 1000.0
            } else {
                0.0
            }
        }),
    ] {
        w.family(name, "gauge", help);
        for (db, e) in &dbs {
            w.sample(name, &[("db", &format!("db{db}"))], pick(e));
        }
    }

    // corekey's own, per shard.
    type Series = (
        &'static str,
        &'static str,
        &'static str,
        fn(&ShardReport) -> f64,
    );
    let shard_series: [Series; 7] = [
        (
            "corekey_shard_connected_clients",
            "gauge",
            "Clients connected to the shard",
            |r| r.clients as f64,
        ),
        (
            "corekey_shard_keys",
            "gauge",
            "Keys the shard holds, in all databases",
            |r| r.keys.iter().map(|k| k.1).sum::<usize>() as f64,
        ),
        (
            "corekey_shard_commands_total",
            "counter",
            "Commands executed on the shard",
            |r| r.stats.commands.iter().map(|c| c.calls).sum::<u64>() as f64,
        ),
        (
            "corekey_shard_forwarded_commands_total",
            "counter",
            "Commands the shard's clients sent to another shard",
            |r| r.stats.forwarded_commands as f64,
        ),
        (
            "corekey_shard_hops_total",
            "counter",
            "Batches (hops) the shard sent to other shards for its clients",
            |r| r.stats.hops as f64,
        ),
        (
            "corekey_shard_net_input_bytes_total",
            "counter",
            "Bytes read from the shard's clients",
            |r| r.stats.net_input_bytes as f64,
        ),
        (
            "corekey_shard_net_output_bytes_total",
            "counter",
            "Bytes written to the shard's clients",
            |r| r.stats.net_output_bytes as f64,
        ),
    ];
    for (name, kind, help, pick) in shard_series {
        w.family(name, kind, help);
        for (i, r) in reports.iter().enumerate() {
            w.sample(name, &[("shard", &i.to_string())], pick(r));
        }
    }
    w.family(
        "corekey_shard_locked",
        "gauge",
        "Whether a shard-ordered transaction holds the shard",
    );
    for (i, r) in reports.iter().enumerate() {
        w.sample(
            "corekey_shard_locked",
            &[("shard", &i.to_string())],
            f64::from(u8::from(r.locked)),
        );
    }
    w.family(
        "corekey_shard_cpu_seconds_total",
        "counter",
        "CPU time of the shard's thread",
    );
    for (i, r) in reports.iter().enumerate() {
        let shard = i.to_string();
        w.sample(
            "corekey_shard_cpu_seconds_total",
            &[("shard", &shard), ("mode", "sys")],
            r.cpu.0,
        );
        w.sample(
            "corekey_shard_cpu_seconds_total",
            &[("shard", &shard), ("mode", "user")],
            r.cpu.1,
        );
    }
    w.family(
        "corekey_shard_queue_depth",
        "gauge",
        "Messages waiting to go from the shard to another shard",
    );
    for (i, r) in reports.iter().enumerate() {
        for (t, &d) in r.queue_depths.iter().enumerate() {
            if t != i {
                w.sample(
                    "corekey_shard_queue_depth",
                    &[("shard", &i.to_string()), ("to", &t.to_string())],
                    d as f64,
                );
            }
        }
    }
    w.family(
        "corekey_shard_command_duration_seconds",
        "histogram",
        "Time commands took to run on the shard (blocking commands excluded)",
    );
    for (i, r) in reports.iter().enumerate() {
        let mut h = Histogram::default();
        for c in r.stats.latency.iter().flatten() {
            h.merge(c);
        }
        let shard = i.to_string();
        for ns in LATENCY_BUCKETS_NS {
            let le = number(ns as f64 / 1e9);
            w.sample(
                "corekey_shard_command_duration_seconds_bucket",
                &[("shard", &shard), ("le", &le)],
                h.count_at_most(ns - 1) as f64,
            );
        }
        w.sample(
            "corekey_shard_command_duration_seconds_bucket",
            &[("shard", &shard), ("le", "+Inf")],
            h.total() as f64,
        );
        w.sample(
            "corekey_shard_command_duration_seconds_sum",
            &[("shard", &shard)],
            h.approx_sum_ns() as f64 / 1e9,
        );
        w.sample(
            "corekey_shard_command_duration_seconds_count",
            &[("shard", &shard)],
            h.total() as f64,
        );
    }
    w.out
}

/// The replication series, with redis_exporter's names, from the text of `INFO replication`.
fn replication(w: &mut Writer, info: &str) {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let num = |name: &str| field(name).and_then(|v| v.parse::<f64>().ok());
    for (name, field_name) in [
        ("redis_connected_slaves", "connected_slaves"),
        ("redis_master_repl_offset", "master_repl_offset"),
        ("redis_repl_backlog_is_active", "repl_backlog_active"),
        ("redis_repl_backlog_size", "repl_backlog_size"),
        ("redis_repl_backlog_history_bytes", "repl_backlog_histlen"),
        ("redis_slave_repl_offset", "slave_repl_offset"),
        (
            "redis_master_last_io_seconds_ago",
            "master_last_io_seconds_ago",
        ),
        ("redis_master_sync_in_progress", "master_sync_in_progress"),
    ] {
        if let Some(v) = num(field_name) {
            w.one(name, "gauge", &format!("{field_name} metric"), v);
        }
    }
    if let Some(status) = field("master_link_status") {
        w.one(
            "redis_master_link_up",
            "gauge",
            "master_link_status metric (1: up)",
            if status == "up" { 1.0 } else { 0.0 },
        );
    }
    // slaveN:ip=…,port=…,state=…,offset=…,lag=…
    let replicas: Vec<Vec<(&str, &str)>> = info
        .lines()
        .filter(|l| {
            l.strip_prefix("slave")
                .and_then(|r| r.split(':').next())
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|l| l.split_once(':'))
        .map(|(_, v)| v.split(',').filter_map(|kv| kv.split_once('=')).collect())
        .collect();
    if replicas.is_empty() {
        return;
    }
    fn get<'a>(r: &[(&'a str, &'a str)], k: &str) -> &'a str {
        r.iter().find(|(key, _)| *key == k).map_or("", |(_, v)| *v)
    }
    for (name, key, help) in [
        (
            "redis_connected_slave_offset_bytes",
            "offset",
            "offset of each connected replica",
        ),
        (
            "redis_connected_slave_lag_seconds",
            "lag",
            "lag of each connected replica",
        ),
    ] {
        w.family(name, "gauge", help);
        for r in &replicas {
            let labels = [
                ("slave_ip", get(r, "ip")),
                ("slave_port", get(r, "port")),
                ("slave_state", get(r, "state")),
            ];
            w.sample(name, &labels, get(r, key).parse::<f64>().unwrap_or(0.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{escape_label, number, LATENCY_BUCKETS_NS};

    /// Values and label values are written the way the text format wants them.
    #[test]
    fn formatting() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(LATENCY_BUCKETS_NS[0], 1024);
        assert_eq!(LATENCY_BUCKETS_NS[20], 1 << 30);
    }
}
