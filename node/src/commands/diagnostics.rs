//! The diagnostics family: SLOWLOG, LATENCY and MONITOR (Valkey's "server" group).
//!
//! Every shard keeps its own slow log, latency monitor events and latency histograms
//! (`crate::shard::latency`), filled where commands run (`crate::dispatch::record`). These
//! commands visit every shard through [`Via`] (so they also work inside EXEC) and merge what
//! they find: slow log entries by their node-wide id, latency samples by second, histograms
//! by adding their counts. MONITOR registers the client on its own shard; every shard that
//! runs a command posts the line to the shards that have monitors (`dispatch::feed_monitors`).

use super::connection::help_reply;
use super::multi::Via;
use super::spec::{flag, CommandSpec, Exec, Group};
use super::{ConnCtx, NodeCmd};
use crate::clients::ClientInfo;
use crate::resp::Out;
use crate::shard::latency::{Histogram, LatencyMonitor, SlowEntry};
use crate::shard::Shard;
use std::sync::atomic::Ordering;

const ADMIN: u32 = flag::ADMIN | flag::LOADING | flag::STALE;
const ADMIN_NOSCRIPT: u32 = ADMIN | flag::NOSCRIPT;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        subcommands: SLOWLOG_SUBCOMMANDS,
        ..CommandSpec::new(
            "slowlog",
            -2,
            0,
            0,
            Group::Server,
            "2.2.12",
            "A container for slow log commands.",
            "Depends on subcommand.",
            "",
        )
    },
    CommandSpec {
        subcommands: LATENCY_SUBCOMMANDS,
        ..CommandSpec::new(
            "latency",
            -2,
            0,
            0,
            Group::Server,
            "2.8.13",
            "A container for latency diagnostics commands.",
            "Depends on subcommand.",
            "",
        )
    },
    CommandSpec {
        exec: Exec::Conn(monitor),
        ..CommandSpec::new(
            "monitor",
            1,
            ADMIN_NOSCRIPT,
            0,
            Group::Server,
            "1.0.0",
            "Listens for all requests received by the server in real-time.",
            "",
            "",
        )
    },
];

static SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: Exec::Node(NodeCmd::SlowlogGet),
        tips: &["request_policy:all_nodes", "nondeterministic_output"],
        history: &[(
            "4.0.0",
            "Added client IP address, port and name to the reply.",
        )],
        ..CommandSpec::new(
            "get",
            -2,
            ADMIN,
            0,
            Group::Server,
            "2.2.12",
            "Returns the slow log's entries.",
            "O(N) where N is the number of entries returned",
            "[count:integer]",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::SlowlogLen),
        tips: &[
            "request_policy:all_nodes",
            "response_policy:agg_sum",
            "nondeterministic_output",
        ],
        ..CommandSpec::new(
            "len",
            2,
            ADMIN,
            0,
            Group::Server,
            "2.2.12",
            "Returns the number of entries in the slow log.",
            "O(1)",
            "",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::SlowlogReset),
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..CommandSpec::new(
            "reset",
            2,
            ADMIN,
            0,
            Group::Server,
            "2.2.12",
            "Clears all entries from the slow log.",
            "O(N) where N is the number of entries in the slowlog",
            "",
        )
    },
    CommandSpec {
        exec: Exec::Conn(slowlog_help),
        ..CommandSpec::new(
            "help",
            2,
            flag::LOADING | flag::STALE,
            0,
            Group::Server,
            "6.2.0",
            "Show helpful text about the different subcommands",
            "O(1)",
            "",
        )
    },
];

static LATENCY_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: Exec::Node(NodeCmd::LatencyLatest),
        tips: &[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ],
        ..CommandSpec::new(
            "latest",
            2,
            ADMIN_NOSCRIPT,
            0,
            Group::Server,
            "2.8.13",
            "Returns the latest latency samples for all events.",
            "O(1)",
            "",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::LatencyHistory),
        tips: &[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ],
        ..CommandSpec::new(
            "history",
            3,
            ADMIN_NOSCRIPT,
            0,
            Group::Server,
            "2.8.13",
            "Returns timestamp-latency samples for an event.",
            "O(1)",
            "event:string",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::LatencyReset),
        tips: &["request_policy:all_nodes", "response_policy:agg_sum"],
        ..CommandSpec::new(
            "reset",
            -2,
            ADMIN_NOSCRIPT,
            0,
            Group::Server,
            "2.8.13",
            "Resets the latency data for one or more events.",
            "O(1)",
            "[event:string...]",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::LatencyHistogram),
        tips: &[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ],
        ..CommandSpec::new(
            "histogram",
            -2,
            ADMIN_NOSCRIPT,
            0,
            Group::Server,
            "7.0.0",
            "Returns the cumulative distribution of latencies of a subset or all commands.",
            "O(N) where N is the number of commands with latency information being retrieved.",
            "[command:string...]",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::LatencyDoctor),
        tips: &[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ],
        ..CommandSpec::new(
            "doctor",
            2,
            ADMIN_NOSCRIPT,
            0,
            Group::Server,
            "2.8.13",
            "Returns a human-readable latency analysis report.",
            "O(1)",
            "",
        )
    },
    CommandSpec {
        exec: Exec::Conn(latency_help),
        ..CommandSpec::new(
            "help",
            2,
            flag::LOADING | flag::STALE,
            0,
            Group::Server,
            "2.8.13",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        )
    },
];

/// MONITOR: from now on the client receives a line for every command the node runs.
fn monitor(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    let info = &ctx.client.info;
    // A second MONITOR is ignored without a reply, as in Valkey.
    if info.monitor.replace(true) {
        return;
    }
    ctx.shard.monitors.borrow_mut().push(info.clone());
    let node = &ctx.shard.node;
    node.monitors[ctx.shard.id].fetch_add(1, Ordering::Relaxed);
    node.monitors_total.fetch_add(1, Ordering::Relaxed);
    ctx.out.ok();
}

/// Ends a client's MONITOR (RESET, disconnect); nothing when it does not monitor.
pub fn stop_monitor(shard: &Shard, info: &ClientInfo) {
    if !info.monitor.replace(false) {
        return;
    }
    shard.monitors.borrow_mut().retain(|c| c.id != info.id);
    shard.node.monitors[shard.id].fetch_sub(1, Ordering::Relaxed);
    shard.node.monitors_total.fetch_sub(1, Ordering::Relaxed);
}

/// SLOWLOG GET [count]: the newest `count` entries (10 by default, all with -1) of the node.
pub async fn slowlog_get(via: Via<'_>, argv: &[&[u8]], out: &mut Out) {
    let count = match argv.get(2) {
        None => 10,
        Some(a) => match super::range_arg(
            out,
            a,
            -1,
            i64::MAX,
            Some("count should be greater than or equal to -1"),
        ) {
            Some(-1) => usize::MAX,
            Some(n) => n as usize,
            None => return,
        },
    };
    let mut all: Vec<SlowEntry> = Vec::new();
    for t in 0..via.shards() {
        let mut part = via
            .call(t, move |s| {
                s.slowlog
                    .borrow()
                    .entries
                    .iter()
                    .take(count)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .await;
        all.append(&mut part);
    }
    let max_len = via.config.borrow().slowlog_max_len as usize;
    all.sort_by_key(|e| std::cmp::Reverse(e.id));
    all.truncate(count.min(max_len));
    out.array(all.len());
    for e in &all {
        out.array(6);
        out.int(e.id as i64);
        out.int(e.time_s);
        out.int(e.usec as i64);
        out.array(e.argv.len());
        for a in &e.argv {
            out.bulk(a);
        }
        out.bulk(e.addr.as_bytes());
        out.bulk(&e.name);
    }
}

/// SLOWLOG LEN: entries kept node-wide (each shard keeps up to `slowlog-max-len`; the node
/// shows the newest `slowlog-max-len` of them all).
pub async fn slowlog_len(via: Via<'_>, out: &mut Out) {
    let mut n = 0;
    for t in 0..via.shards() {
        n += via.call(t, |s| s.slowlog.borrow().entries.len()).await;
    }
    let max_len = via.config.borrow().slowlog_max_len as usize;
    out.int(n.min(max_len) as i64);
}

/// SLOWLOG RESET.
pub async fn slowlog_reset(via: Via<'_>, out: &mut Out) {
    for t in 0..via.shards() {
        via.call(t, |s| s.slowlog.borrow_mut().entries.clear())
            .await;
    }
    out.ok();
}

/// Every shard's latency monitor, merged.
async fn merged_monitor(via: Via<'_>) -> LatencyMonitor {
    let mut m = LatencyMonitor::default();
    for t in 0..via.shards() {
        m.merge(&via.call(t, |s| s.latency_monitor.borrow().clone()).await);
    }
    m
}

/// LATENCY LATEST: per event, the time and latency of its latest spike and its worst.
pub async fn latency_latest(via: Via<'_>, out: &mut Out) {
    let m = merged_monitor(via).await;
    out.array(m.events.len());
    for (name, e) in &m.events {
        let (t, ms) = e.samples.back().copied().unwrap_or((0, 0));
        out.array(4);
        out.bulk(name.as_bytes());
        out.int(t);
        out.int(ms as i64);
        out.int(e.max_ms as i64);
    }
}

/// LATENCY HISTORY event: its samples, oldest first.
pub async fn latency_history(via: Via<'_>, argv: &[&[u8]], out: &mut Out) {
    let m = merged_monitor(via).await;
    let name = String::from_utf8_lossy(argv[2]);
    match m.events.get(name.as_ref()) {
        None => out.array(0),
        Some(e) => {
            out.array(e.samples.len());
            for &(t, ms) in &e.samples {
                out.array(2);
                out.int(t);
                out.int(ms as i64);
            }
        }
    }
}

/// LATENCY RESET [event ...]: forgets the events named (all without names); answers how
/// many events the node forgot.
pub async fn latency_reset(via: Via<'_>, argv: &[&[u8]], out: &mut Out) {
    let names: Vec<String> = argv[2..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut reset = std::collections::BTreeSet::new();
    for t in 0..via.shards() {
        let names = names.clone();
        let gone = via
            .call(t, move |s| {
                let mut m = s.latency_monitor.borrow_mut();
                let mut gone = Vec::new();
                m.events.retain(|name, _| {
                    let drop = names.is_empty() || names.iter().any(|n| n == name);
                    if drop {
                        gone.push(*name);
                    }
                    !drop
                });
                gone
            })
            .await;
        reset.extend(gone);
    }
    out.int(reset.len() as i64);
}

/// LATENCY HISTOGRAM [command ...]: per command, its calls and the cumulative distribution
/// of its latencies at power-of-two microsecond levels. A container names its subcommands.
pub async fn latency_histogram(via: Via<'_>, argv: &[&[u8]], out: &mut Out) {
    let registry = super::registry();
    let mut merged: Vec<Option<Histogram>> = vec![None; registry.all.len()];
    for t in 0..via.shards() {
        let part = via
            .call(t, |s| {
                s.stats
                    .borrow()
                    .latency
                    .iter()
                    .enumerate()
                    .filter_map(|(i, h)| h.as_ref().map(|h| (i, h.clone())))
                    .collect::<Vec<_>>()
            })
            .await;
        for (i, h) in part {
            merged[i].get_or_insert_with(Default::default).merge(&h);
        }
    }
    let mut wanted: Vec<usize> = Vec::new();
    if argv.len() == 2 {
        wanted.extend((0..merged.len()).filter(|&i| merged[i].is_some()));
    } else {
        for a in &argv[2..] {
            let Some(r) = registry.by_fullname(a) else {
                continue;
            };
            wanted.push(r.id);
            wanted.extend(registry.subcommands_of(r).map(|s| s.id));
        }
        wanted.retain(|&i| merged[i].is_some());
    }
    out.map(wanted.len());
    for i in wanted {
        let Some(h) = &merged[i] else { continue };
        out.bulk(registry.all[i].fullname.as_bytes());
        out.map(2);
        out.bulk(b"calls");
        out.int(h.total() as i64);
        out.bulk(b"histogram_usec");
        let cdf = h.power_of_two_cdf();
        out.map(cdf.len());
        for (usec, count) in cdf {
            out.int(usec as i64);
            out.int(count as i64);
        }
    }
}

/// LATENCY DOCTOR: a report of the node's latency spikes, with advice.
pub async fn latency_doctor(via: Via<'_>, out: &mut Out) {
    let m = merged_monitor(via).await;
    let threshold = via.config.borrow().latency_monitor_threshold_ms;
    out.verbatim(doctor_report(&m, threshold).as_bytes());
}

/// The text of LATENCY DOCTOR.
pub fn doctor_report(m: &LatencyMonitor, threshold_ms: u64) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if m.events.is_empty() {
        s.push_str("No latency spike was observed during the lifetime of this corekey instance, not in the slightest bit.\n");
        if threshold_ms == 0 {
            s.push_str("\nThe latency monitor is off (latency-monitor-threshold is 0): enable it with CONFIG SET latency-monitor-threshold <milliseconds> to record spikes.\n");
        }
        return s;
    }
    s.push_str("I have observed latency spikes in this corekey instance.\n\n");
    let mut slow_commands = false;
    let mut fast_commands = false;
    for (n, (name, e)) in m.events.iter().enumerate() {
        let samples: Vec<u64> = e.samples.iter().map(|x| x.1).collect();
        let count = samples.len().max(1) as f64;
        let avg = samples.iter().sum::<u64>() as f64 / count;
        let mad = samples.iter().map(|&v| (v as f64 - avg).abs()).sum::<f64>() / count;
        let period = match (e.samples.front(), e.samples.back()) {
            (Some(a), Some(b)) if samples.len() > 1 => (b.0 - a.0) as f64 / (count - 1.0),
            _ => 0.0,
        };
        let _ = writeln!(
            s,
            "{}. {name}: {} latency spikes (average {avg:.0}ms, mean deviation {mad:.0}ms, period {period:.2} sec). Worst all time event {}ms.",
            n + 1,
            samples.len(),
            e.max_ms
        );
        match *name {
            "command" => slow_commands = true,
            "fast-command" => fast_commands = true,
            _ => {}
        }
    }
    s.push_str("\nI have a few advices for you:\n\n");
    if slow_commands {
        s.push_str("- Check your slow log (SLOWLOG GET) to find which commands are too slow to execute; commands over large collections (KEYS, SMEMBERS of a big set, ZRANGE over many members) block their shard while they run.\n");
    }
    if fast_commands {
        s.push_str("- Commands that should take constant time were slow: the shard's CPU was probably busy with something else. Pin the shards to isolated CPUs (cpu-list, isolcpus), keep NIC interrupts off them (tuning/pin-irqs.sh), and run `corekey --check-system`.\n");
    }
    s.push_str("- Transparent huge pages set to 'always' cause latency spikes when memory is allocated: set them to 'madvise' or 'never' (`corekey --check-system` checks).\n");
    s
}

fn slowlog_help(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    help_reply(
        ctx.out,
        argv[0],
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
}

fn latency_help(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    help_reply(
        ctx.out,
        argv[0],
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::doctor_report;
    use crate::shard::latency::LatencyMonitor;

    /// The doctor says when there is nothing to report, and summarises each event otherwise.
    #[test]
    fn doctor() {
        let m = LatencyMonitor::default();
        assert!(doctor_report(&m, 0).contains("not in the slightest bit"));
        let mut m = LatencyMonitor::default();
        m.add("command", 100, 10);
        m.add("command", 110, 30);
        let r = doctor_report(&m, 5);
        assert!(
            r.contains("1. command: 2 latency spikes (average 20ms, mean deviation 10ms, period 10.00 sec). Worst all time event 30ms."),
            "{r}"
        );
        assert!(r.contains("SLOWLOG GET"), "{r}");
    }
}
