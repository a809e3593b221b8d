//! `corekey-bench run` against a real corekey: key patterns, the SET:GET ratio and pipelining
//! are checked by what the server ends up holding and counting, not by what the bench says
//! about itself alone.

mod common;

use common::*;
use std::collections::BTreeSet;

/// S:S with one client writes memtier-1 … memtier-200, each once, in order; the GET side keeps
/// its own position.
#[test]
fn sequential_pattern_writes_every_key_once() {
    let server = start_corekey();
    let doc = bench_run(
        server.port(),
        &[
            "-t",
            "1",
            "-c",
            "1",
            "--ratio",
            "1:0",
            "--key-pattern",
            "S:S",
            "--key-minimum",
            "1",
            "--key-maximum",
            "200",
            "--requests",
            "200",
        ],
    );
    assert_eq!(count(&doc, "sets.count"), 200);
    assert_eq!(count(&doc, "errors"), 0);
    let mut c = client(&server);
    let keys: BTreeSet<u64> = all_keys(&mut c).iter().map(|k| key_number(k)).collect();
    assert_eq!(keys, (1..=200).collect::<BTreeSet<u64>>());
    // A GET-only S:S run reads the same keys back: every GET hits.
    let doc = bench_run(
        server.port(),
        &[
            "-t",
            "1",
            "-c",
            "1",
            "--ratio",
            "0:1",
            "--key-pattern",
            "S:S",
            "--key-minimum",
            "1",
            "--key-maximum",
            "200",
            "--requests",
            "200",
        ],
    );
    assert_eq!(count(&doc, "gets.hits"), 200);
    assert_eq!(count(&doc, "gets.misses"), 0);
}

/// P:P with `--requests allkeys` splits the range among 2 threads x 3 clients, and together
/// they write every key exactly once (memtier's split).
#[test]
fn parallel_pattern_covers_the_range_once() {
    let server = start_corekey();
    let doc = bench_run(
        server.port(),
        &[
            "-t",
            "2",
            "-c",
            "3",
            "--ratio",
            "1:0",
            "--key-pattern",
            "P:P",
            "--key-minimum",
            "1",
            "--key-maximum",
            "600",
            "--requests",
            "allkeys",
        ],
    );
    assert_eq!(count(&doc, "sets.count"), 600);
    let mut c = client(&server);
    assert_eq!(call_int(&mut c, &["DBSIZE"]), 600);
    let keys: BTreeSet<u64> = all_keys(&mut c).iter().map(|k| key_number(k)).collect();
    assert_eq!(keys, (1..=600).collect::<BTreeSet<u64>>());
}

/// R:R draws keys uniformly inside the range; with one seed for all clients (memtier's
/// default) the clients repeat each other's keys, with `--distinct-client-seed` they do not.
#[test]
fn random_pattern_stays_in_range_and_seeds_like_memtier() {
    let distinct_keys = |extra: &[&str]| {
        let server = start_corekey();
        let mut args = vec![
            "-t",
            "1",
            "-c",
            "4",
            "--ratio",
            "1:0",
            "--key-pattern",
            "R:R",
            "--key-minimum",
            "1000",
            "--key-maximum",
            "1999",
            "--requests",
            "250",
        ];
        args.extend_from_slice(extra);
        let doc = bench_run(server.port(), &args);
        assert_eq!(count(&doc, "sets.count"), 1000);
        let mut c = client(&server);
        let keys: Vec<u64> = all_keys(&mut c).iter().map(|k| key_number(k)).collect();
        assert!(keys.iter().all(|k| (1000..=1999).contains(k)), "{keys:?}");
        keys.len()
    };
    let shared_seed = distinct_keys(&[]);
    let own_seeds = distinct_keys(&["--distinct-client-seed"]);
    // 250 draws from 1000 keys: about 221 distinct; 1000 draws: about 632.
    assert!(
        shared_seed <= 250,
        "shared seed: {shared_seed} distinct keys"
    );
    assert!(own_seeds > 500, "distinct seeds: {own_seeds} distinct keys");
}

/// G:G gathers keys around the middle of the range: the middle third (one standard deviation
/// either side of the median, by memtier's default shape) holds more distinct keys than the
/// two outer thirds together, and the mean is near the median.
#[test]
fn gaussian_pattern_centres_on_the_median() {
    let server = start_corekey();
    let doc = bench_run(
        server.port(),
        &[
            "-t",
            "1",
            "-c",
            "1",
            "--ratio",
            "1:0",
            "--key-pattern",
            "G:G",
            "--key-minimum",
            "1",
            "--key-maximum",
            "6000",
            "--requests",
            "3000",
        ],
    );
    assert_eq!(count(&doc, "sets.count"), 3000);
    let mut c = client(&server);
    let keys: Vec<u64> = all_keys(&mut c).iter().map(|k| key_number(k)).collect();
    assert!(keys.iter().all(|k| (1..=6000).contains(k)));
    let middle = keys.iter().filter(|&&k| (2001..=4000).contains(&k)).count();
    assert!(
        middle * 2 > keys.len(),
        "{middle} of {} in the middle third",
        keys.len()
    );
    let mean = keys.iter().sum::<u64>() as f64 / keys.len() as f64;
    assert!((mean - 3000.0).abs() < 250.0, "mean key {mean}");
}

/// `--ratio 1:3` sends exactly one SET per three GETs per client, as the server's own
/// command statistics confirm.
#[test]
fn ratio_is_exact() {
    let server = start_corekey();
    let doc = bench_run(
        server.port(),
        &[
            "-t",
            "1",
            "-c",
            "2",
            "--ratio",
            "1:3",
            "--key-minimum",
            "1",
            "--key-maximum",
            "100",
            "--requests",
            "400",
        ],
    );
    assert_eq!(count(&doc, "sets.count"), 200);
    assert_eq!(count(&doc, "gets.count"), 600);
    assert_eq!(count(&doc, "gets.hits") + count(&doc, "gets.misses"), 600);
    let mut c = client(&server);
    assert_eq!(command_calls(&mut c, "set"), 200);
    assert_eq!(command_calls(&mut c, "get"), 600);
    let sets = &doc["ALL STATS"]["Sets"];
    assert_eq!(sets["Count"].as_u64(), Some(200));
    assert!(doc["ALL STATS"]["Totals"]["Percentile Latencies"]["p99.00"].is_number());
}

/// With `--pipeline 16` every request is answered and counted, and the server reads them in
/// batches: far fewer reads than commands (at pipeline 1 there is about one read per command).
#[test]
fn pipelining_batches_requests() {
    let server = start_corekey();
    let mut c = client(&server);
    let reads_before = info_u64(&mut c, "stats", "total_reads_processed");
    let doc = bench_run(
        server.port(),
        &[
            "-t",
            "1",
            "-c",
            "2",
            "--pipeline",
            "16",
            "--ratio",
            "1:1",
            "--key-minimum",
            "1",
            "--key-maximum",
            "1000",
            "--requests",
            "3200",
        ],
    );
    assert_eq!(count(&doc, "sets.count"), 3200);
    assert_eq!(count(&doc, "gets.count"), 3200);
    assert_eq!(count(&doc, "errors"), 0);
    assert_eq!(command_calls(&mut c, "set"), 3200);
    assert_eq!(command_calls(&mut c, "get"), 3200);
    let reads = info_u64(&mut c, "stats", "total_reads_processed") - reads_before;
    assert!(
        reads * 4 < 6400,
        "{reads} reads for 6400 pipelined commands: requests were not batched"
    );
}

/// The pipeline depth is exact: a gate server that answers only when 16 requests are
/// outstanding sees at most, and each time exactly, 16 requests in flight.
#[test]
fn pipeline_depth_is_exact() {
    use corekey_bench::resp::scan_reply;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    const DEPTH: usize = 16;
    const TOTAL: usize = 64;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let gate = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let (mut buf, mut outstanding, mut served, mut max_seen) = (Vec::new(), 0, 0, 0);
        let mut chunk = [0u8; 4096];
        let end = Instant::now() + Duration::from_secs(60);
        // Bounded by TOTAL requests, the read timeout and the deadline.
        while served < TOTAL && Instant::now() < end {
            let n = s.read(&mut chunk).expect("read from the bench");
            assert!(n > 0, "the bench closed the connection early");
            buf.extend_from_slice(&chunk[..n]);
            while let Some((len, _)) = scan_reply(&buf).expect("valid RESP requests") {
                buf.drain(..len);
                outstanding += 1;
            }
            max_seen = max_seen.max(outstanding);
            if outstanding == DEPTH {
                s.write_all(&b"+OK\r\n".repeat(DEPTH)).unwrap();
                served += DEPTH;
                outstanding = 0;
            }
        }
        (served, max_seen)
    });
    let doc = bench_run(
        port,
        &[
            "-t",
            "1",
            "-c",
            "1",
            "--pipeline",
            "16",
            "--ratio",
            "1:0",
            "--requests",
            "64",
        ],
    );
    let (served, max_seen) = gate.join().expect("gate thread");
    assert_eq!(served, TOTAL);
    assert_eq!(max_seen, DEPTH);
    assert_eq!(count(&doc, "sets.count"), TOTAL as u64);
}

/// `--test-time` ends a run by the clock, and the JSON reports a positive rate.
#[test]
fn test_time_ends_the_run() {
    let server = start_corekey();
    let doc = bench_run(
        server.port(),
        &[
            "-t",
            "2",
            "-c",
            "2",
            "--test-time",
            "1",
            "--key-maximum",
            "1000",
        ],
    );
    assert!(doc["ALL STATS"]["Totals"]["Ops/sec"].as_f64().unwrap() > 0.0);
    assert_eq!(count(&doc, "errors"), 0);
}
