//! The result of one run as people and programs read it: memtier_benchmark's summary table
//! (`ALL STATS`), its latency distribution, and a JSON file with memtier's layout
//! (`"ALL STATS" → "Sets" | "Gets" | "Waits" | "Totals" → "Ops/sec", "Percentile Latencies" →
//! "p99.00"…, latencies in milliseconds), so that `compare` reads our runs and memtier's the
//! same way. Owns formatting only.

use crate::load::{LoadSpec, OpStats, Target, ThreadStats};
use serde_json::{json, Map, Value};
use std::io::{self, Write};
use std::time::Duration;

/// One finished run.
pub struct RunReport<'a> {
    pub spec: &'a LoadSpec,
    pub stats: ThreadStats,
    /// From the common start to the last reply.
    pub duration: Duration,
    /// Unix time of the start, in milliseconds.
    pub start_unix_ms: u64,
    pub percentiles: Vec<f64>,
}

/// The label of a percentile as memtier writes it in table headers: `p50`, `p99.9`.
pub fn percentile_label(q: f64) -> String {
    let s = format!("{q:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("p{s}")
}

/// The JSON key of a percentile as memtier writes it: `p50.00`, `p99.90`.
pub fn percentile_json_key(q: f64) -> String {
    format!("p{q:.2}")
}

fn ms(ns: f64) -> f64 {
    ns / 1e6
}

struct Row<'a> {
    name: &'a str,
    stats: &'a OpStats,
    with_hits: bool,
}

impl RunReport<'_> {
    fn secs(&self) -> f64 {
        self.duration.as_secs_f64().max(1e-9)
    }

    fn totals(&self) -> OpStats {
        let mut t = self.stats.set.clone();
        t.add(&self.stats.get);
        t
    }

    fn cluster(&self) -> bool {
        matches!(self.spec.target, Target::Cluster(_))
    }

    /// The `ALL STATS` table.
    pub fn print_table(&self, out: &mut dyn Write) -> io::Result<()> {
        let totals = self.totals();
        let rows = [
            Row {
                name: "Sets",
                stats: &self.stats.set,
                with_hits: false,
            },
            Row {
                name: "Gets",
                stats: &self.stats.get,
                with_hits: true,
            },
            Row {
                name: "Totals",
                stats: &totals,
                with_hits: true,
            },
        ];
        let mut header = format!(
            "{:<7}{:>13}{:>13}{:>13}",
            "Type", "Ops/sec", "Hits/sec", "Misses/sec"
        );
        if self.cluster() {
            header += &format!("{:>13}{:>13}", "MOVED/sec", "ASK/sec");
        }
        header += &format!("{:>16}", "Avg. Latency");
        for &q in &self.percentiles {
            header += &format!("{:>16}", format!("{} Latency", percentile_label(q)));
        }
        header += &format!("{:>13}", "KB/sec");
        writeln!(out)?;
        writeln!(out, "ALL STATS")?;
        writeln!(out, "{}", "=".repeat(header.len()))?;
        writeln!(out, "{header}")?;
        writeln!(out, "{}", "-".repeat(header.len()))?;
        let secs = self.secs();
        for row in &rows {
            let s = row.stats;
            let mut line = format!("{:<7}{:>13.2}", row.name, s.count as f64 / secs);
            if row.with_hits {
                line += &format!(
                    "{:>13.2}{:>13.2}",
                    s.hits as f64 / secs,
                    s.misses as f64 / secs
                );
            } else {
                line += &format!("{:>13}{:>13}", "---", "---");
            }
            if self.cluster() {
                line += &format!(
                    "{:>13.2}{:>13.2}",
                    s.moved as f64 / secs,
                    s.ask as f64 / secs
                );
            }
            if s.count > 0 {
                line += &format!("{:>16.5}", ms(s.latency_sum_ns as f64 / s.count as f64));
                for &q in &self.percentiles {
                    line += &format!("{:>16.5}", ms(s.hist.value_at_quantile(q / 100.0) as f64));
                }
            } else {
                line += &format!("{:>16}", "---");
                for _ in &self.percentiles {
                    line += &format!("{:>16}", "---");
                }
            }
            line += &format!("{:>13.2}", (s.bytes_rx + s.bytes_tx) as f64 / 1024.0 / secs);
            writeln!(out, "{line}")?;
            if row.name == "Gets" {
                // memtier's WAIT row, always empty here.
                let mut wait = format!("{:<7}{:>13.2}{:>13}{:>13}", "Waits", 0.0, "---", "---");
                if self.cluster() {
                    wait += &format!("{:>13}{:>13}", "---", "---");
                }
                wait += &format!("{:>16}", "---");
                for _ in &self.percentiles {
                    wait += &format!("{:>16}", "---");
                }
                wait += &format!("{:>13}", "---");
                writeln!(out, "{wait}")?;
            }
        }
        let errors = totals.errors;
        if errors > 0 {
            writeln!(
                out,
                "\n{errors} error replies; the first: {}",
                self.stats.first_error.as_deref().unwrap_or("?")
            )?;
        }
        Ok(())
    }

    /// memtier's "Request Latency Distribution": for each type, the latency (msec) below which
    /// each share of requests finished.
    pub fn print_histogram(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out)?;
        writeln!(out, "Request Latency Distribution")?;
        writeln!(out, "{:<7}{:>16}{:>16}", "Type", "<= msec", "Percent")?;
        writeln!(out, "{}", "-".repeat(39))?;
        for (name, s) in [("SET", &self.stats.set), ("GET", &self.stats.get)] {
            if s.count == 0 {
                continue;
            }
            for v in s.hist.iter_quantiles(1) {
                writeln!(
                    out,
                    "{:<7}{:>16.3}{:>16.3}",
                    name,
                    ms(v.value_iterated_to() as f64),
                    v.quantile_iterated_to() * 100.0
                )?;
            }
            writeln!(out, "---")?;
        }
        Ok(())
    }

    fn type_json(&self, s: &OpStats, with_hits: bool) -> Value {
        let secs = self.secs();
        let mut pct = Map::new();
        for &q in &self.percentiles {
            let v = if s.count > 0 {
                ms(s.hist.value_at_quantile(q / 100.0) as f64)
            } else {
                0.0
            };
            pct.insert(percentile_json_key(q), json!(round3(v)));
        }
        let avg = if s.count > 0 {
            ms(s.latency_sum_ns as f64 / s.count as f64)
        } else {
            0.0
        };
        let mut o = Map::new();
        o.insert("Count".into(), json!(s.count));
        o.insert("Ops/sec".into(), json!(round2(s.count as f64 / secs)));
        let (hits, misses) = if with_hits {
            (s.hits as f64 / secs, s.misses as f64 / secs)
        } else {
            (0.0, 0.0)
        };
        o.insert("Hits/sec".into(), json!(round2(hits)));
        o.insert("Misses/sec".into(), json!(round2(misses)));
        if self.cluster() {
            o.insert("MOVED/sec".into(), json!(round2(s.moved as f64 / secs)));
            o.insert("ASK/sec".into(), json!(round2(s.ask as f64 / secs)));
        }
        o.insert("Latency".into(), json!(round3(avg)));
        o.insert("Average Latency".into(), json!(round3(avg)));
        let (min, max) = if s.count > 0 {
            (ms(s.hist.min() as f64), ms(s.hist.max() as f64))
        } else {
            (0.0, 0.0)
        };
        o.insert("Min Latency".into(), json!(round3(min)));
        o.insert("Max Latency".into(), json!(round3(max)));
        o.insert(
            "KB/sec".into(),
            json!(round2((s.bytes_rx + s.bytes_tx) as f64 / 1024.0 / secs)),
        );
        o.insert(
            "KB/sec RX".into(),
            json!(round2(s.bytes_rx as f64 / 1024.0 / secs)),
        );
        o.insert(
            "KB/sec TX".into(),
            json!(round2(s.bytes_tx as f64 / 1024.0 / secs)),
        );
        o.insert("Percentile Latencies".into(), Value::Object(pct));
        Value::Object(o)
    }

    /// The JSON document (`--json-out-file`).
    pub fn to_json(&self) -> Value {
        let spec = self.spec;
        let totals = self.totals();
        let counts = |s: &OpStats| {
            json!({
                "count": s.count, "hits": s.hits, "misses": s.misses, "moved": s.moved,
                "ask": s.ask, "errors": s.errors, "bytes_tx": s.bytes_tx, "bytes_rx": s.bytes_rx,
            })
        };
        let (server, cluster) = match &spec.target {
            Target::Standalone(a) => (a.to_string(), false),
            Target::Cluster(m) => (
                m.nodes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                true,
            ),
        };
        json!({
            "configuration": {
                "server": server,
                "cluster_mode": cluster,
                "threads": spec.threads,
                "clients": spec.clients,
                "pipeline": spec.pipeline,
                "ratio": spec.ratio.to_string(),
                "data_size": spec.data_size,
                "key_prefix": spec.key_prefix,
                "key_minimum": spec.space.min,
                "key_maximum": spec.space.max,
                "key_pattern": spec.pattern.to_string(),
                "requests": spec.requests,
                "test_time": spec.test_time.map(|t| t.as_secs()),
                "distinct_client_seed": spec.distinct_client_seed,
            },
            "ALL STATS": {
                "Sets": self.type_json(&self.stats.set, false),
                "Gets": self.type_json(&self.stats.get, true),
                "Waits": self.type_json(&OpStats::new(), false),
                "Totals": self.type_json(&totals, true),
                "Runtime": {
                    "Start time": self.start_unix_ms,
                    "Finish time": self.start_unix_ms + self.duration.as_millis() as u64,
                    "Total duration": self.duration.as_millis() as u64,
                    "Time unit": "MILLISECONDS",
                },
            },
            "corekey-bench": {
                "sets": counts(&self.stats.set),
                "gets": counts(&self.stats.get),
                "errors": totals.errors,
                "first_error": self.stats.first_error,
                "connections": self.stats.connections,
            },
        })
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The numbers `compare` takes from a run's JSON (ours or memtier's).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunNumbers {
    pub ops: u64,
    pub ops_per_sec: f64,
    pub avg_ms: f64,
    /// (percentile, milliseconds), as found in the file.
    pub percentiles_ms: Vec<(f64, f64)>,
    /// Error replies, when the driver reports them (memtier does not).
    pub errors: Option<u64>,
    pub duration_ms: u64,
}

impl RunNumbers {
    /// The latency at percentile `q`, if the run reported it.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        self.percentiles_ms
            .iter()
            .find(|(p, _)| (p - q).abs() < 1e-6)
            .map(|&(_, v)| v)
    }

    /// Reads a memtier-layout JSON document.
    pub fn from_json(doc: &Value) -> Result<RunNumbers, String> {
        let totals = doc
            .get("ALL STATS")
            .and_then(|a| a.get("Totals"))
            .ok_or("no \"ALL STATS\".\"Totals\" in the JSON")?;
        let num = |k: &str| totals.get(k).and_then(Value::as_f64);
        let mut percentiles_ms = Vec::new();
        if let Some(Value::Object(p)) = totals.get("Percentile Latencies") {
            for (k, v) in p {
                // memtier writes p50.00, p99.90 (and p99.99 for 99.99 and 99.999).
                if let (Some(q), Some(v)) = (
                    k.strip_prefix('p').and_then(|s| s.parse::<f64>().ok()),
                    v.as_f64(),
                ) {
                    percentiles_ms.push((q, v));
                }
            }
        }
        percentiles_ms.sort_by(|a, b| a.0.total_cmp(&b.0));
        let duration_ms = doc
            .get("ALL STATS")
            .and_then(|a| a.get("Runtime"))
            .and_then(|r| r.get("Total duration"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(RunNumbers {
            ops: num("Count").map(|c| c as u64).unwrap_or(0),
            ops_per_sec: num("Ops/sec").ok_or("no Totals.\"Ops/sec\" in the JSON")?,
            avg_ms: num("Average Latency").or(num("Latency")).unwrap_or(0.0),
            percentiles_ms,
            errors: doc
                .get("corekey-bench")
                .and_then(|c| c.get("errors"))
                .and_then(Value::as_u64),
            duration_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_names_match_memtier() {
        assert_eq!(percentile_label(50.0), "p50");
        assert_eq!(percentile_label(99.9), "p99.9");
        assert_eq!(percentile_label(99.99), "p99.99");
        assert_eq!(percentile_json_key(99.9), "p99.90");
        assert_eq!(percentile_json_key(50.0), "p50.00");
    }

    /// A document in memtier 2.x's layout (trimmed) is read the same way as ours.
    #[test]
    fn reads_memtier_json() {
        let doc: Value = serde_json::from_str(
            r#"{"ALL STATS": {"Totals": {"Count": 1000, "Ops/sec": 99.5, "Latency": 0.5,
               "Average Latency": 0.5, "Percentile Latencies": {"p50.00": 0.4, "p99.00": 1.2,
               "p99.90": 2.0}}, "Runtime": {"Total duration": 10050}}}"#,
        )
        .unwrap();
        let n = RunNumbers::from_json(&doc).unwrap();
        assert_eq!(n.ops, 1000);
        assert_eq!(n.percentile(99.9), Some(2.0));
        assert_eq!(n.percentile(99.99), None);
        assert_eq!(n.duration_ms, 10050);
        assert_eq!(n.errors, None);
    }
}
