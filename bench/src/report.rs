//! How a comparison is shown: a Markdown report (the tables that go into RESULTS.md) and an
//! SVG chart (grouped bars, drawn by hand: SVG is text, and this avoids a plotting library and
//! its font dependencies). Owns presentation only; the numbers come from [`crate::compare`].

use crate::compare::{CompareResult, MemoryResult, Summary};
use std::fmt::Write;

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn mib(b: u64) -> String {
    format!("{:.0}", b as f64 / 1024.0 / 1024.0)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Marks a ratio against a target: ✅ met, ❌ missed.
fn against(r: Option<f64>, target: f64, higher_is_better: bool) -> String {
    match r {
        None => "–".into(),
        Some(r) => {
            let met = if higher_is_better {
                r >= target
            } else {
                r <= target
            };
            format!("{r:.2} {}", if met { "✅" } else { "❌" })
        }
    }
}

fn summary_row(s: &Summary, out: &mut String) {
    let _ = writeln!(
        out,
        "| {} | {} | {:.0} | {} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {} | {:.0}–{:.0} | {:.0}% | {:.2} |",
        s.workload,
        s.server,
        s.ops_per_sec,
        opt(s.p50_ms, 3),
        opt(s.p99_ms, 3),
        opt(s.p999_ms, 3),
        opt(s.p9999_ms, 3),
        s.cpu_s_per_mops,
        s.ops_per_cpu_s,
        s.cpus_busy_s_per_mops,
        mib(s.peak_rss_bytes),
        s.ops_per_sec_range.0,
        s.ops_per_sec_range.1,
        s.client_cpu_share * 100.0,
        s.other_load_cpus,
    );
}

const SUMMARY_HEADER: &str = "| workload | server | ops/s | p50 ms | p99 ms | p99.9 ms | p99.99 ms | server CPU-s per M ops | ops per server CPU-s | server cores busy-s per M ops | peak RSS MiB | ops/s range | driver CPU | other load (CPUs) |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|";

fn memory_row(m: &MemoryResult, out: &mut String) {
    let _ = writeln!(
        out,
        "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
        m.server,
        m.dbsize,
        m.used_per_key(),
        m.overhead_used(),
        m.rss_per_key(),
        m.overhead_rss(),
        m.prefill_ops_per_sec
    );
}

/// The Markdown report.
pub fn markdown(r: &CompareResult) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "## corekey-bench compare\n");
    let _ = writeln!(o, "- machine: {}", r.machine);
    let _ = writeln!(
        o,
        "- load average before / after: {} / {}",
        r.load_before, r.load_after
    );
    let _ = writeln!(o, "- command: `{}`", r.command);
    let _ = writeln!(
        o,
        "- driver: {}, pinned to CPUs {}; {} s per run, {} rounds per workload alternating between servers, medians shown ({:.0} s in all)",
        r.driver,
        r.client_cpus,
        r.test_time_s,
        r.summaries.first().map_or(0, |s| s.rounds),
        r.duration_s
    );
    for s in &r.servers {
        let _ = writeln!(
            o,
            "- {}: `{}` ({}), pinned to CPUs {}",
            s.name, s.path, s.version, s.cpus
        );
    }
    if let Some((_, l)) = r.loads.first() {
        let _ = writeln!(
            o,
            "- workload: {} threads x {} connections, ratio {}, {} B values, keys memtier-1..{} ({}), after a prefill of every key",
            l.threads, l.clients, l.ratio, l.data_size, l.key_maximum, l.key_pattern
        );
    }
    let _ = writeln!(o, "\n### Throughput and latency (medians)\n");
    let _ = writeln!(o, "{SUMMARY_HEADER}");
    for s in &r.summaries {
        summary_row(s, &mut o);
    }
    let corekey = r
        .servers
        .first()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    if r.servers.len() > 1 {
        let _ = writeln!(
            o,
            "\n### {corekey} / reference (targets: ops per server CPU-s >= 2, p99 <= 1)\n"
        );
        let _ = writeln!(
            o,
            "| workload | reference | ops/s | ops per server CPU-s | p50 | p99 | p99.9 | peak RSS |\n|---|---|--:|--:|--:|--:|--:|--:|"
        );
        for (workload, _) in &r.loads {
            let of = |name: &str| {
                r.summaries
                    .iter()
                    .find(|s| &s.workload == workload && s.server == name)
            };
            let Some(ck) = of(&corekey) else { continue };
            for reference in r.servers.iter().skip(1) {
                let Some(rf) = of(&reference.name) else {
                    continue;
                };
                let _ = writeln!(
                    o,
                    "| {workload} | {} | {} | {} | {} | {} | {} | {} |",
                    reference.name,
                    opt(ratio(Some(ck.ops_per_sec), Some(rf.ops_per_sec)), 2),
                    against(
                        ratio(Some(ck.ops_per_cpu_s), Some(rf.ops_per_cpu_s)),
                        2.0,
                        true
                    ),
                    opt(ratio(ck.p50_ms, rf.p50_ms), 2),
                    against(ratio(ck.p99_ms, rf.p99_ms), 1.0, false),
                    opt(ratio(ck.p999_ms, rf.p999_ms), 2),
                    opt(
                        ratio(
                            Some(ck.peak_rss_bytes as f64),
                            Some(rf.peak_rss_bytes as f64)
                        ),
                        2
                    ),
                );
            }
        }
    }
    if let Some(m) = r.memory.first() {
        let _ = writeln!(
            o,
            "\n### Memory: {} keys x {} B values (key + value = {:.1} B per key; target overhead <= 30 B)\n",
            m.keys,
            m.value_bytes,
            m.key_bytes_avg + m.value_bytes as f64
        );
        let _ = writeln!(
            o,
            "| server | DBSIZE | used_memory B/key | overhead B/key (used_memory) | RSS B/key | overhead B/key (RSS) | prefill ops/s |\n|---|--:|--:|--:|--:|--:|--:|"
        );
        for m in &r.memory {
            memory_row(m, &mut o);
        }
    }
    if !r.scaling.is_empty() {
        let _ = writeln!(
            o,
            "\n### Scaling: corekey alone, driver pinned to CPUs {}\n",
            r.scaling_client_cpus
        );
        let _ = writeln!(o, "{SUMMARY_HEADER}");
        for s in &r.scaling {
            summary_row(s, &mut o);
        }
    }
    let _ = writeln!(
        o,
        "\nColumns: server CPU-s is utime + stime of all the server's threads from /proc/<pid>/stat over the run; server cores busy-s is the busy time of the server's pinned CPUs from /proc/stat (adds the kernel's softirq network work there, and anything else that ran on them); driver CPU is the load generator's CPU time over wall time per driver CPU (near 100%: the driver may be the limit); other load is the CPU time the rest of the machine used during the run, in CPUs (other processes, plus kernel work charged to no process)."
    );
    if !r.notes.is_empty() {
        let _ = writeln!(o, "\nNotes:\n");
        for n in &r.notes {
            let _ = writeln!(o, "- {n}");
        }
    }
    o
}

/// Colors of the series, in server order.
const COLORS: [&str; 6] = [
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// Short number: 1.2M, 350k, 12.5, 0.123.
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One grouped bar chart at (x, y): `values[group][series]`.
#[allow(clippy::too_many_arguments)]
fn panel(
    o: &mut String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    title: &str,
    groups: &[String],
    series: usize,
    values: &[Vec<Option<f64>>],
) {
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
        x + w / 2.0,
        y + 18.0,
        esc(title)
    );
    let (top, bottom, left) = (y + 40.0, y + h - 40.0, x + 10.0);
    let plot_w = w - 20.0;
    let max = values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let _ = writeln!(
        o,
        r##"<line x1="{left:.1}" y1="{bottom:.1}" x2="{:.1}" y2="{bottom:.1}" stroke="#444"/>"##,
        left + plot_w
    );
    let group_w = plot_w / groups.len().max(1) as f64;
    let bar_w = (group_w * 0.8) / series.max(1) as f64;
    for (g, label) in groups.iter().enumerate() {
        let gx = left + g as f64 * group_w + group_w * 0.1;
        for s in 0..series {
            let Some(v) = values.get(g).and_then(|row| row.get(s)).copied().flatten() else {
                continue;
            };
            let bh = (bottom - top) * v / max;
            let bx = gx + s as f64 * bar_w;
            let _ = writeln!(
                o,
                r#"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}"/>"#,
                bottom - bh,
                bar_w * 0.92,
                COLORS[s % COLORS.len()]
            );
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
                bx + bar_w * 0.46,
                bottom - bh - 4.0,
                short(v)
            );
        }
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            left + g as f64 * group_w + group_w / 2.0,
            bottom + 18.0,
            esc(label)
        );
    }
}

/// The chart: ops/s, ops per server CPU-second and p99 per workload, and memory per key.
pub fn svg_chart(r: &CompareResult) -> String {
    let names: Vec<String> = r.servers.iter().map(|s| s.name.clone()).collect();
    let groups: Vec<String> = r.loads.iter().map(|(n, _)| n.clone()).collect();
    let metric = |f: &dyn Fn(&Summary) -> Option<f64>| -> Vec<Vec<Option<f64>>> {
        groups
            .iter()
            .map(|g| {
                names
                    .iter()
                    .map(|n| {
                        r.summaries
                            .iter()
                            .find(|s| &s.workload == g && &s.server == n)
                            .and_then(f)
                    })
                    .collect()
            })
            .collect()
    };
    let (pw, ph) = (520.0, 320.0);
    let width = pw * 2.0 + 30.0;
    let height = ph * 2.0 + 90.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans, Arial, sans-serif">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="24" font-size="17" font-weight="bold" text-anchor="middle">corekey-bench compare (driver {}, {} s runs, medians of {} rounds)</text>"#,
        width / 2.0,
        esc(&r.driver),
        r.test_time_s,
        r.summaries.first().map_or(0, |s| s.rounds)
    );
    for (i, n) in names.iter().enumerate() {
        let lx = 20.0 + i as f64 * 160.0;
        let _ = writeln!(
            o,
            r#"<rect x="{lx:.1}" y="38" width="14" height="14" fill="{}"/><text x="{:.1}" y="50" font-size="13">{}</text>"#,
            COLORS[i % COLORS.len()],
            lx + 20.0,
            esc(n)
        );
    }
    let y0 = 60.0;
    panel(
        &mut o,
        10.0,
        y0,
        pw,
        ph,
        "ops/s",
        &groups,
        names.len(),
        &metric(&|s| Some(s.ops_per_sec)),
    );
    panel(
        &mut o,
        20.0 + pw,
        y0,
        pw,
        ph,
        "ops per server CPU-second",
        &groups,
        names.len(),
        &metric(&|s| Some(s.ops_per_cpu_s)),
    );
    panel(
        &mut o,
        10.0,
        y0 + ph,
        pw,
        ph,
        "p99 latency, ms (lower is better)",
        &groups,
        names.len(),
        &metric(&|s| s.p99_ms),
    );
    let mem_groups = vec!["used_memory".to_string(), "RSS".to_string()];
    let mem_values: Vec<Vec<Option<f64>>> = vec![
        names
            .iter()
            .map(|n| {
                r.memory
                    .iter()
                    .find(|m| &m.server == n)
                    .map(MemoryResult::used_per_key)
            })
            .collect(),
        names
            .iter()
            .map(|n| {
                r.memory
                    .iter()
                    .find(|m| &m.server == n)
                    .map(MemoryResult::rss_per_key)
            })
            .collect(),
    ];
    let mem_title = r.memory.first().map_or("bytes per key".to_string(), |m| {
        format!(
            "bytes per key ({} keys, {:.0} B key + value)",
            m.keys,
            m.key_bytes_avg + m.value_bytes as f64
        )
    });
    panel(
        &mut o,
        20.0 + pw,
        y0 + ph,
        pw,
        ph,
        &mem_title,
        &mem_groups,
        names.len(),
        &mem_values,
    );
    let _ = writeln!(o, "</svg>");
    o
}
