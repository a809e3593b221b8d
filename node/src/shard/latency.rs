//! Latency bookkeeping of one shard: per-command latency histograms (INFO latencystats,
//! LATENCY HISTOGRAM, the Prometheus histograms), the latency monitor's events (LATENCY
//! LATEST/HISTORY/DOCTOR) and the slow log (SLOWLOG). Each shard keeps its own; the node-wide
//! commands merge them. Nothing here reads a clock: times are passed in.
//!
//! The histogram is log-linear, like the HdrHistogram Valkey uses: values below 64 ns have a
//! bucket each, and every power of two above is cut into 64 equal buckets, so a value is
//! known within 1/64 (1.6%) of itself, over 1 ns .. 2^40 ns (18 minutes; longer values count
//! in the last bucket). Powers of two start a bucket, so the power-of-two levels LATENCY
//! HISTOGRAM reports (1024 ns, 2048 ns, …) are exact bucket edges.

use std::collections::{BTreeMap, VecDeque};

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values at or above 2^MAX_BITS ns count in the last bucket.
const MAX_BITS: u32 = 40;
/// Buckets in one histogram: the linear ones below SUB, then SUB per power of two.
pub const BUCKETS: usize = (SUB as usize) * (1 + (MAX_BITS - SUB_BITS) as usize);

/// A latency histogram in nanoseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Histogram {{ total: {} }}", self.total)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }
}

/// The bucket of a value.
fn index(ns: u64) -> usize {
    let v = ns.clamp(1, (1 << MAX_BITS) - 1);
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    (SUB * u64::from(1 + shift) + ((v >> shift) - SUB)) as usize
}

/// The highest value that falls in bucket `i` (HdrHistogram's "highest equivalent value").
fn highest(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let lower = (SUB + i % SUB) << shift;
    lower + (1 << shift) - 1
}

impl Histogram {
    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.total += 1;
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.total += o.total;
    }

    /// The value (ns) at or below which `percentile`% of the values lie (0 when empty).
    pub fn value_at(&self, percentile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let wanted = ((percentile.clamp(0.0, 100.0) / 100.0) * self.total as f64).ceil() as u64;
        let wanted = wanted.max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= wanted {
                return highest(i);
            }
        }
        highest(BUCKETS - 1)
    }

    /// Values at most `ns` (counting whole buckets: the bucket holding `ns` is included).
    pub fn count_at_most(&self, ns: u64) -> u64 {
        self.counts[..=index(ns)].iter().sum()
    }

    /// Cumulative counts at the power-of-two levels 1024 ns, 2048 ns, … up to the largest
    /// value seen, as `(highest equivalent value in µs, count)`, skipping levels where the
    /// count does not grow (Valkey's LATENCY HISTOGRAM).
    pub fn power_of_two_cdf(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut prev = 0;
        let mut level: u64 = 1024;
        while prev < self.total && level < (1 << MAX_BITS) {
            let i = index(level);
            let cum: u64 = self.counts[..=i].iter().sum();
            if cum > prev {
                out.push((highest(i) / 1000, cum));
            }
            prev = cum;
            level <<= 1;
        }
        if prev < self.total {
            out.push((highest(BUCKETS - 1) / 1000, self.total));
        }
        out
    }

    /// Sum of the values, estimated from the buckets (their middles), in ns.
    pub fn approx_sum_ns(&self) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| {
                let lo = if i == 0 { 0 } else { highest(i - 1) + 1 };
                c * ((lo + highest(i)) / 2)
            })
            .sum()
    }
}

/// Samples the latency monitor keeps per event (Valkey's LATENCY_TS_LEN).
pub const LATENCY_SAMPLES_MAX: usize = 160;

/// One latency monitor event ("command", "fast-command"): its recent spikes, one sample per
/// second at most (the worst of that second), and the worst ever.
#[derive(Debug, Clone, Default)]
pub struct LatencyEvent {
    /// (Unix seconds, milliseconds), oldest first.
    pub samples: VecDeque<(i64, u64)>,
    pub max_ms: u64,
}

/// The latency monitor of one shard: events by name.
#[derive(Debug, Clone, Default)]
pub struct LatencyMonitor {
    pub events: BTreeMap<&'static str, LatencyEvent>,
}

impl LatencyMonitor {
    /// Records a spike of `ms` at `now_s` (Valkey's `latencyAddSample`).
    pub fn add(&mut self, event: &'static str, now_s: i64, ms: u64) {
        let e = self.events.entry(event).or_default();
        e.max_ms = e.max_ms.max(ms);
        if let Some(last) = e.samples.back_mut() {
            if last.0 == now_s {
                last.1 = last.1.max(ms);
                return;
            }
        }
        e.samples.push_back((now_s, ms));
        if e.samples.len() > LATENCY_SAMPLES_MAX {
            e.samples.pop_front();
        }
    }

    /// Folds another shard's events in: samples of the same second keep the worst.
    pub fn merge(&mut self, o: &LatencyMonitor) {
        for (name, ev) in &o.events {
            let e = self.events.entry(name).or_default();
            e.max_ms = e.max_ms.max(ev.max_ms);
            let mut all: BTreeMap<i64, u64> = e.samples.iter().copied().collect();
            for &(t, ms) in &ev.samples {
                let v = all.entry(t).or_insert(0);
                *v = (*v).max(ms);
            }
            let skip = all.len().saturating_sub(LATENCY_SAMPLES_MAX);
            e.samples = all.into_iter().skip(skip).collect();
        }
    }
}

/// Most arguments a slow log entry keeps (Valkey's SLOWLOG_ENTRY_MAX_ARGC).
pub const SLOWLOG_ARGS_MAX: usize = 32;
/// Longest argument a slow log entry keeps whole (Valkey's SLOWLOG_ENTRY_MAX_STRING).
pub const SLOWLOG_ARG_BYTES_MAX: usize = 128;

/// One SLOWLOG entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowEntry {
    /// Node-wide, increasing.
    pub id: u64,
    pub time_s: i64,
    pub usec: u64,
    pub argv: Vec<Vec<u8>>,
    pub addr: String,
    pub name: Vec<u8>,
}

/// The arguments a slow log entry keeps: at most 32 (the last one then says how many more
/// there were), each at most 128 bytes (then saying how many more bytes it had), as Valkey.
pub fn slowlog_args(argv: &[&[u8]]) -> Vec<Vec<u8>> {
    let keep = argv.len().min(SLOWLOG_ARGS_MAX);
    let mut out = Vec::with_capacity(keep);
    for (j, a) in argv.iter().take(keep).enumerate() {
        if keep != argv.len() && j == keep - 1 {
            out.push(format!("... ({} more arguments)", argv.len() - keep + 1).into_bytes());
        } else if a.len() > SLOWLOG_ARG_BYTES_MAX {
            let mut s = a[..SLOWLOG_ARG_BYTES_MAX].to_vec();
            s.extend_from_slice(
                format!("... ({} more bytes)", a.len() - SLOWLOG_ARG_BYTES_MAX).as_bytes(),
            );
            out.push(s);
        } else {
            out.push(a.to_vec());
        }
    }
    out
}

/// One shard's slow log, newest first.
#[derive(Debug, Default)]
pub struct SlowLog {
    pub entries: VecDeque<SlowEntry>,
}

impl SlowLog {
    pub fn push(&mut self, e: SlowEntry, max_len: usize) {
        self.entries.push_front(e);
        self.entries.truncate(max_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value lands in a bucket whose range holds it, and buckets are within 1/64 of
    /// their values.
    #[test]
    fn buckets_hold_their_values() {
        for v in (1..5000u64).chain([65_535, 65_536, 1 << 20, (1 << 40) - 1]) {
            let i = index(v);
            assert!(highest(i) >= v, "{v}");
            if i > 0 {
                assert!(highest(i - 1) < v, "{v}");
            }
            assert!((highest(i) - v) as f64 <= v as f64 / 64.0 + 1.0, "{v}");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    /// Percentiles and the power-of-two CDF read back what was recorded.
    #[test]
    fn percentiles_and_cdf() {
        let mut h = Histogram::default();
        for _ in 0..99 {
            h.record(10_000);
        }
        h.record(1_000_000);
        let p50 = h.value_at(50.0);
        assert!((10_000..10_200).contains(&p50), "{p50}");
        let p100 = h.value_at(100.0);
        assert!((1_000_000..1_016_000).contains(&p100), "{p100}");
        let cdf = h.power_of_two_cdf();
        assert_eq!(cdf.first(), Some(&(16, 99)));
        assert_eq!(cdf.last().map(|c| c.1), Some(100));
        let mut m = h.clone();
        m.merge(&h);
        assert_eq!(m.total(), 200);
        assert_eq!(m.count_at_most(20_000), 198);
    }

    /// The monitor keeps one sample per second (the worst) and at most 160; merging keeps
    /// the worst of each second.
    #[test]
    fn monitor_samples() {
        let mut m = LatencyMonitor::default();
        m.add("command", 10, 5);
        m.add("command", 10, 7);
        m.add("command", 10, 3);
        m.add("command", 11, 2);
        let e = &m.events["command"];
        assert_eq!(e.samples, [(10, 7), (11, 2)]);
        assert_eq!(e.max_ms, 7);
        for t in 0..200 {
            m.add("command", 100 + t, 1);
        }
        assert_eq!(m.events["command"].samples.len(), LATENCY_SAMPLES_MAX);
        let mut a = LatencyMonitor::default();
        a.add("command", 1, 4);
        let mut b = LatencyMonitor::default();
        b.add("command", 1, 9);
        b.add("fast-command", 2, 1);
        a.merge(&b);
        assert_eq!(a.events["command"].samples, [(1, 9)]);
        assert_eq!(a.events.len(), 2);
    }

    /// Slow log arguments are cut as Valkey cuts them.
    #[test]
    fn slowlog_arguments() {
        let long = vec![b'x'; 130];
        let args = slowlog_args(&[b"set", &long]);
        assert_eq!(args[1].len(), 128 + "... (2 more bytes)".len());
        let many: Vec<&[u8]> = (0..40).map(|_| b"a".as_slice()).collect();
        let args = slowlog_args(&many);
        assert_eq!(args.len(), 32);
        assert_eq!(args[31], b"... (9 more arguments)");
        let mut log = SlowLog::default();
        for id in 0..5 {
            log.push(
                SlowEntry {
                    id,
                    time_s: 0,
                    usec: 1,
                    argv: vec![],
                    addr: String::new(),
                    name: vec![],
                },
                3,
            );
        }
        assert_eq!(
            log.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
            [4, 3, 2]
        );
    }
}
