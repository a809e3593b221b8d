//! Per-shard statistics. Each shard counts its own events; INFO adds the shards up. Nothing
//! here is shared between threads.

use std::collections::HashMap;

/// Calls of one command (INFO commandstats).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

impl CmdStat {
    pub fn add(&mut self, o: &CmdStat) {
        self.calls += o.calls;
        self.usec += o.usec;
        self.rejected += o.rejected;
        self.failed += o.failed;
    }
}

#[derive(Debug, Clone)]
pub struct Stats {
    /// Indexed by command id (`crate::commands::CmdId`).
    pub commands: Vec<CmdStat>,
    /// Error replies by code ("ERR", "WRONGTYPE"…).
    pub errors: HashMap<Box<str>, u64>,
    pub total_commands: u64,
    pub total_connections: u64,
    pub rejected_connections: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub total_error_replies: u64,
    pub unexpected_error_replies: u64,
    /// Commands sent to another shard, and batches (hops) that carried them.
    pub forwarded_commands: u64,
    pub hops: u64,
    pub client_recent_max_input_buffer: u64,
    pub client_recent_max_output_buffer: u64,
    pub reads_processed: u64,
    pub writes_processed: u64,
    /// Time spent in active expiry cycles.
    pub expire_cycle_us: u64,
    /// Active expiry cycles that stopped at their time budget.
    pub expire_time_cap_reached: u64,
    /// Latency of each command (by command id), made on its first call while
    /// `latency-tracking` is on.
    pub latency: Vec<Option<super::latency::Histogram>>,
    /// Ring of (time ms, commands, input bytes, output bytes) taken every cron tick, for the
    /// instantaneous rates of INFO (Valkey keeps 16 samples too).
    samples: [(i64, u64, u64, u64); SAMPLES],
    sample_next: usize,
}

const SAMPLES: usize = 16;

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            commands: vec![CmdStat::default(); crate::commands::count()],
            errors: HashMap::new(),
            total_commands: 0,
            total_connections: 0,
            rejected_connections: 0,
            net_input_bytes: 0,
            net_output_bytes: 0,
            total_error_replies: 0,
            unexpected_error_replies: 0,
            forwarded_commands: 0,
            hops: 0,
            client_recent_max_input_buffer: 0,
            client_recent_max_output_buffer: 0,
            reads_processed: 0,
            writes_processed: 0,
            expire_cycle_us: 0,
            expire_time_cap_reached: 0,
            latency: vec![None; crate::commands::count()],
            samples: [(0, 0, 0, 0); SAMPLES],
            sample_next: 0,
        }
    }

    /// Records a sample for the instantaneous rates (called every cron tick).
    pub fn sample(&mut self, now_ms: i64) {
        self.samples[self.sample_next % SAMPLES] = (
            now_ms,
            self.total_commands,
            self.net_input_bytes,
            self.net_output_bytes,
        );
        self.sample_next += 1;
    }

    /// Commands, input bytes and output bytes per second over the sampled window.
    pub fn instantaneous(&self) -> (f64, f64, f64) {
        let n = self.sample_next.min(SAMPLES);
        if n < 2 {
            return (0.0, 0.0, 0.0);
        }
        let newest = self.samples[(self.sample_next - 1) % SAMPLES];
        let oldest = self.samples[(self.sample_next - n) % SAMPLES];
        let dt = (newest.0 - oldest.0) as f64 / 1000.0;
        if dt <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
        (
            rate(newest.1, oldest.1),
            rate(newest.2, oldest.2),
            rate(newest.3, oldest.3),
        )
    }

    /// Records error replies with these codes.
    pub fn add_errors(&mut self, codes: impl IntoIterator<Item = Box<str>>) {
        for code in codes {
            self.total_error_replies += 1;
            *self.errors.entry(code).or_insert(0) += 1;
        }
    }

    /// Adds another shard's counters into these.
    pub fn merge(&mut self, o: &Stats) {
        for (a, b) in self.commands.iter_mut().zip(&o.commands) {
            a.add(b);
        }
        for (a, b) in self.latency.iter_mut().zip(&o.latency) {
            if let Some(b) = b {
                a.get_or_insert_with(Default::default).merge(b);
            }
        }
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_insert(0) += v;
        }
        self.total_commands += o.total_commands;
        self.total_connections += o.total_connections;
        self.rejected_connections += o.rejected_connections;
        self.net_input_bytes += o.net_input_bytes;
        self.net_output_bytes += o.net_output_bytes;
        self.total_error_replies += o.total_error_replies;
        self.unexpected_error_replies += o.unexpected_error_replies;
        self.forwarded_commands += o.forwarded_commands;
        self.hops += o.hops;
        self.reads_processed += o.reads_processed;
        self.writes_processed += o.writes_processed;
        self.expire_cycle_us += o.expire_cycle_us;
        self.expire_time_cap_reached += o.expire_time_cap_reached;
        self.client_recent_max_input_buffer = self
            .client_recent_max_input_buffer
            .max(o.client_recent_max_input_buffer);
        self.client_recent_max_output_buffer = self
            .client_recent_max_output_buffer
            .max(o.client_recent_max_output_buffer);
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&mut self) {
        *self = Stats::new();
    }
}
