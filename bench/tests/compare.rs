//! `corekey-bench compare` end to end, shrunk to seconds: it starts corekey and redis-server
//! itself, prefills, runs both workloads in alternating rounds, and writes the JSON, the
//! Markdown table and the SVG chart. The numbers are not checked (speed is never asserted),
//! only that every part of the report is there and consistent. And `--driver memtier` without
//! memtier_benchmark on PATH fails with a message that says so.

mod common;

use common::*;

#[test]
fn compare_writes_table_json_and_chart() {
    let Some(redis) = redis_server() else { return };
    let corekey = corekey_bin();
    let out = std::env::temp_dir().join(format!(
        "corekey-bench-compare-{}-{:x}",
        std::process::id(),
        corekey_bench::servers::random_u64()
    ));
    let cpus = corekey_bench::procfs::available_cpus();
    let server_cpu = cpus[0].to_string();
    let client_cpu = cpus[cpus.len() - 1].to_string();
    let redis_ref = format!("redis={}", redis.display());
    let f = bench(
        &[
            "compare",
            "--corekey",
            &corekey.to_string_lossy(),
            "--ref",
            &redis_ref,
            "--server-cpus",
            &server_cpu,
            "--client-cpus",
            &client_cpu,
            "--keys",
            "2000",
            "--clients",
            "5",
            "--test-time",
            "1",
            "--rounds",
            "2",
            "--scale-cores",
            "1",
            // Not the comparison's CPU, so the scaling run is measured, not reused.
            "--scale-server-cpus",
            &client_cpu,
            "--out-dir",
            &out.to_string_lossy(),
        ],
        None,
    );
    assert!(
        f.success,
        "compare failed\nstdout:\n{}\nstderr:\n{}",
        f.stdout, f.stderr
    );
    let md = std::fs::read_to_string(out.join("compare.md")).expect("compare.md");
    assert_eq!(
        f.stdout.trim(),
        md.trim(),
        "the table printed is the one written"
    );
    for needle in [
        "| SET:GET 1:10 100 B P1 | corekey |",
        "| SET:GET 1:10 100 B P16 | redis |",
        "corekey / reference",
        "### Memory: 2000 keys x 100 B values",
        "| corekey x1 |",
    ] {
        assert!(md.contains(needle), "no {needle:?} in:\n{md}");
    }
    let svg = std::fs::read_to_string(out.join("compare.svg")).expect("compare.svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    // 2 workloads x 2 rounds x 2 servers, and 2 workloads x 2 rounds for the scaling run.
    assert_eq!(doc["rounds"].as_array().unwrap().len(), 12);
    assert_eq!(doc["summaries"].as_array().unwrap().len(), 4);
    for m in doc["memory"].as_array().unwrap() {
        assert_eq!(m["dbsize"].as_u64(), Some(2000), "{m}");
    }
    for r in doc["rounds"].as_array().unwrap() {
        assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
        assert!(r["server_cpu_s"].as_f64().unwrap() >= 0.0, "{r}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn memtier_driver_needs_memtier_on_path() {
    let empty =
        std::env::temp_dir().join(format!("corekey-bench-empty-path-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let f = bench(
        &[
            "compare",
            "--driver",
            "memtier",
            "--corekey",
            "/nonexistent",
        ],
        Some(&empty.to_string_lossy()),
    );
    assert!(!f.success);
    assert!(
        f.stderr.contains("memtier_benchmark is not on PATH"),
        "stderr: {}",
        f.stderr
    );
}
