//! The `run` command: memtier_benchmark's options (same names, same meanings and defaults,
//! except `--print-percentiles`, which adds p99.99), the worker threads, the progress line on
//! stderr once a second, and the summary on stdout. Owns the command line of a run.

use crate::keys::{all_keys_requests, KeyPattern, KeySpace, Ratio};
use crate::load::{self, LoadSpec, Shared, Target, ThreadStats, PIPELINE_MAX};
use crate::procfs;
use crate::resp::Client;
use crate::slots::SlotMap;
use crate::stats::RunReport;
use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest `--data-size`.
const DATA_SIZE_MAX: usize = 64 * 1024 * 1024;
/// Largest `--threads`.
const THREADS_MAX: usize = 1024;
/// Largest `--test-time`, in seconds (a day).
const TEST_TIME_MAX_S: u64 = 86_400;
/// The seed of every client's random draws unless `--randomize` (then the clock's).
const DEFAULT_SEED: u64 = 0x00c0_4e4b_e4c4_b00c;

/// `--requests`: a count per client, or `allkeys` (memtier: the key range's width, divided
/// among the clients under P:P).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requests {
    Count(u64),
    AllKeys,
}

impl std::str::FromStr for Requests {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "allkeys" {
            return Ok(Requests::AllKeys);
        }
        s.parse()
            .map(Requests::Count)
            .map_err(|_| format!("invalid requests '{s}': expected a number or allkeys"))
    }
}

/// Options of `corekey-bench run`, named as memtier_benchmark names them.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// Server address.
    #[arg(short = 's', long, default_value = "127.0.0.1")]
    pub server: String,
    /// Server port.
    #[arg(short = 'p', long, default_value_t = 6379)]
    pub port: u16,
    /// Number of threads.
    #[arg(short = 't', long, default_value_t = 4)]
    pub threads: usize,
    /// Number of clients per thread.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub clients: usize,
    /// Number of requests each client keeps in flight.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// SET:GET ratio.
    #[arg(long, default_value = "1:10")]
    pub ratio: Ratio,
    /// Value size in bytes.
    #[arg(short = 'd', long, default_value_t = 32)]
    pub data_size: usize,
    /// Prefix of every key.
    #[arg(long, default_value = "memtier-")]
    pub key_prefix: String,
    /// Smallest key number.
    #[arg(long, default_value_t = 0)]
    pub key_minimum: u64,
    /// Largest key number.
    #[arg(long, default_value_t = 10_000_000)]
    pub key_maximum: u64,
    /// SET:GET key patterns: R (random), S (sequential), G (Gaussian), P (parallel, P:P only).
    #[arg(long, default_value = "R:R")]
    pub key_pattern: KeyPattern,
    /// Standard deviation of the G pattern (default: a sixth of the key range).
    #[arg(long, default_value_t = 0.0)]
    pub key_stddev: f64,
    /// Median of the G pattern (default: the middle of the key range).
    #[arg(long, default_value_t = 0.0)]
    pub key_median: f64,
    /// Requests per client, or `allkeys` (default 10000 unless --test-time).
    #[arg(short = 'n', long)]
    pub requests: Option<Requests>,
    /// Run for this many seconds instead of a number of requests.
    #[arg(long)]
    pub test_time: Option<u64>,
    /// Read the slot map with CLUSTER SLOTS and follow MOVED and ASK.
    #[arg(long)]
    pub cluster_mode: bool,
    /// Write the results as JSON (memtier's layout) to this file.
    #[arg(long)]
    pub json_out_file: Option<PathBuf>,
    /// Do not print the latency distribution.
    #[arg(long)]
    pub hide_histogram: bool,
    /// Percentiles of the summary table and JSON.
    #[arg(long, default_value = "50,99,99.9,99.99")]
    pub print_percentiles: String,
    /// Give each client its own random seed (memtier's default is one seed for all).
    #[arg(long)]
    pub distinct_client_seed: bool,
    /// Seed from the clock instead of a fixed seed.
    #[arg(long)]
    pub randomize: bool,
    /// Protocol: only `redis` (RESP2) is supported.
    #[arg(short = 'P', long, default_value = "redis")]
    pub protocol: String,
    /// corekey-bench only: pin the load generator to these CPUs (e.g. `1` or `2-5`).
    #[arg(long)]
    pub cpu_list: Option<String>,
}

fn parse_percentiles(s: &str) -> Result<Vec<f64>, String> {
    let mut v = Vec::new();
    for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let q: f64 = p
            .parse()
            .map_err(|_| format!("invalid percentile '{p}' in --print-percentiles"))?;
        if !(0.0..=100.0).contains(&q) {
            return Err(format!("percentile {q} is outside 0..100"));
        }
        v.push(q);
    }
    Ok(v)
}

fn resolve(server: &str, port: u16) -> Result<SocketAddr, String> {
    (server, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {server}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{server}:{port} resolves to no address"))
}

/// Reads the slot map from the node at `seed`.
pub fn fetch_slot_map(seed: SocketAddr) -> Result<SlotMap, String> {
    let mut c = Client::connect(seed).map_err(|e| format!("cannot connect to {seed}: {e}"))?;
    let reply = c
        .call(&["CLUSTER", "SLOTS"])
        .map_err(|e| format!("CLUSTER SLOTS on {seed}: {e}"))?;
    if let crate::resp::Value::Error(e) = &reply {
        return Err(format!(
            "CLUSTER SLOTS on {seed}: {e} (is it a cluster node?)"
        ));
    }
    let map = SlotMap::from_cluster_slots(&reply, seed)?;
    let unserved = map.unserved();
    if unserved > 0 {
        eprintln!("warning: {unserved} slots are served by no node");
    }
    Ok(map)
}

impl RunArgs {
    /// Checks the options and turns them into a load spec (reading the slot map in cluster
    /// mode).
    pub fn to_spec(&self) -> Result<LoadSpec, String> {
        if !(1..=THREADS_MAX).contains(&self.threads) {
            return Err(format!("--threads must be 1..={THREADS_MAX}"));
        }
        if self.clients == 0 || self.clients > load::CONNECTIONS_PER_THREAD_MAX {
            return Err(format!(
                "--clients must be 1..={}",
                load::CONNECTIONS_PER_THREAD_MAX
            ));
        }
        if !(1..=PIPELINE_MAX).contains(&self.pipeline) {
            return Err(format!("--pipeline must be 1..={PIPELINE_MAX}"));
        }
        if self.data_size > DATA_SIZE_MAX {
            return Err(format!("--data-size must be at most {DATA_SIZE_MAX}"));
        }
        if self.key_minimum > self.key_maximum {
            return Err("--key-minimum must not exceed --key-maximum".into());
        }
        if self.protocol != "redis" && self.protocol != "resp2" {
            return Err(format!(
                "--protocol {}: only redis (RESP2) is supported",
                self.protocol
            ));
        }
        if self
            .test_time
            .is_some_and(|t| t == 0 || t > TEST_TIME_MAX_S)
        {
            return Err(format!("--test-time must be 1..={TEST_TIME_MAX_S}"));
        }
        let uses_gaussian =
            [self.key_pattern.set, self.key_pattern.get].contains(&crate::keys::Pattern::Gaussian);
        if (self.key_stddev > 0.0 || self.key_median > 0.0) && !uses_gaussian {
            return Err("--key-stddev and --key-median need the G key pattern".into());
        }
        if self.key_median > 0.0
            && !(self.key_minimum as f64..=self.key_maximum as f64).contains(&self.key_median)
        {
            return Err("--key-median must be between --key-minimum and --key-maximum".into());
        }
        let total_clients = (self.threads * self.clients) as u64;
        let mut space = KeySpace::new(self.key_minimum, self.key_maximum);
        space.stddev = self.key_stddev;
        space.median = self.key_median;
        if self.key_pattern.set == crate::keys::Pattern::Parallel
            && self.key_maximum - self.key_minimum + 1 < total_clients
        {
            return Err(format!(
                "P:P needs at least one key per client: {total_clients} clients, {} keys",
                self.key_maximum - self.key_minimum + 1
            ));
        }
        let requests = match (self.requests, self.test_time) {
            (Some(Requests::Count(0)), _) => return Err("--requests must be at least 1".into()),
            (Some(Requests::Count(n)), _) => Some(n),
            (Some(Requests::AllKeys), _) => {
                Some(all_keys_requests(&space, self.key_pattern, total_clients).max(1))
            }
            (None, Some(_)) => None,
            (None, None) => Some(10_000),
        };
        let addr = resolve(&self.server, self.port)?;
        let target = if self.cluster_mode {
            Target::Cluster(fetch_slot_map(addr)?)
        } else {
            Target::Standalone(addr)
        };
        let seed = if self.randomize {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(DEFAULT_SEED, |d| d.as_nanos() as u64)
        } else {
            DEFAULT_SEED
        };
        Ok(LoadSpec {
            target,
            threads: self.threads,
            clients: self.clients,
            pipeline: self.pipeline,
            ratio: self.ratio,
            pattern: self.key_pattern,
            space,
            key_prefix: self.key_prefix.clone(),
            data_size: self.data_size,
            requests,
            test_time: self.test_time.map(Duration::from_secs),
            seed,
            distinct_client_seed: self.distinct_client_seed,
        })
    }
}

/// Runs the load described by `spec`; prints a progress line on stderr every second when
/// `progress` is set.
pub fn run_load(spec: &LoadSpec, progress: bool) -> Result<(ThreadStats, Duration, u64), String> {
    let shared = Shared::new(spec.threads);
    let start_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let started = Instant::now();
    let results: Vec<Result<ThreadStats, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..spec.threads)
            .map(|i| {
                let shared = &shared;
                std::thread::Builder::new()
                    .name(format!("load-{i}"))
                    .spawn_scoped(scope, move || load::run_worker(spec, i, shared))
                    .map_err(|e| format!("cannot start a thread: {e}"))
            })
            .collect();
        if handles.iter().all(Result::is_ok) {
            let all_done = || {
                handles
                    .iter()
                    .all(|h| h.as_ref().map_or(true, |h| h.is_finished()))
            };
            report_progress(spec, &shared, started, progress, &all_done);
        } else {
            shared.abort.store(true, Ordering::Relaxed);
        }
        handles
            .into_iter()
            .map(|h| {
                h?.join()
                    .unwrap_or_else(|_| Err("a load thread panicked".into()))
            })
            .collect()
    });
    let mut total = ThreadStats::default();
    let mut first_error = None;
    for r in results {
        match r {
            Ok(s) => total.add(&s),
            Err(e) => {
                if first_error.is_none() || first_error.as_deref() == Some("aborted") {
                    first_error = Some(e);
                }
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let duration = total.elapsed;
    Ok((total, duration, start_unix_ms))
}

/// Prints the progress line once a second until every worker has finished (or `all_done`
/// says the threads have ended, even without saying so).
fn report_progress(
    spec: &LoadSpec,
    shared: &Shared,
    started: Instant,
    enabled: bool,
    all_done: &dyn Fn() -> bool,
) {
    let tty = std::io::stderr().is_terminal();
    let connections = spec.total_clients();
    let expected_ops = spec.requests.map(|r| r * spec.total_clients());
    let (mut last_ops, mut last_lat, mut last_t) = (0u64, 0u64, started);
    let mut next_print = started + Duration::from_secs(1);
    // Bounded: the workers end by themselves (test time, request count, or STALL_TIMEOUT).
    while !shared
        .progress
        .iter()
        .all(|p| p.finished.load(Ordering::Relaxed))
    {
        if shared.abort.load(Ordering::Relaxed) || all_done() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if !enabled || now < next_print {
            continue;
        }
        next_print += Duration::from_secs(1);
        let ops: u64 = shared
            .progress
            .iter()
            .map(|p| p.ops.load(Ordering::Relaxed))
            .sum();
        let lat: u64 = shared
            .progress
            .iter()
            .map(|p| p.latency_ns.load(Ordering::Relaxed))
            .sum();
        let elapsed = now.duration_since(started).as_secs_f64();
        let dt = now.duration_since(last_t).as_secs_f64().max(1e-9);
        let rate = (ops - last_ops) as f64 / dt;
        let avg_rate = ops as f64 / elapsed.max(1e-9);
        let lat_now = if ops > last_ops {
            (lat - last_lat) as f64 / (ops - last_ops) as f64 / 1e6
        } else {
            0.0
        };
        let lat_avg = if ops > 0 {
            lat as f64 / ops as f64 / 1e6
        } else {
            0.0
        };
        let percent = match (spec.test_time, expected_ops) {
            (Some(t), _) => elapsed / t.as_secs_f64() * 100.0,
            (None, Some(n)) if n > 0 => ops as f64 / n as f64 * 100.0,
            _ => 0.0,
        }
        .min(100.0);
        let end = if tty { "\r" } else { "\n" };
        eprint!(
            "[RUN #1 {percent:.0}%, {:>3} secs] {:>2} threads {:>5} conns: {ops:>11} ops, {rate:>9.0} (avg: {avg_rate:>9.0}) ops/sec, {lat_now:.3} (avg: {lat_avg:.3}) msec latency{end}",
            elapsed as u64, spec.threads, connections
        );
        (last_ops, last_lat, last_t) = (ops, lat, now);
    }
    if enabled && tty {
        eprintln!();
    }
}

/// `corekey-bench run`.
pub fn execute(args: &RunArgs) -> Result<(), String> {
    let percentiles = parse_percentiles(&args.print_percentiles)?;
    if let Some(list) = &args.cpu_list {
        let cpus = procfs::parse_cpu_list(list)?;
        procfs::set_affinity(0, &cpus).map_err(|e| format!("pinning to CPUs {list}: {e}"))?;
    }
    let spec = args.to_spec()?;
    eprintln!(
        "corekey-bench run: {} threads x {} clients, pipeline {}, ratio {}, {} B values, keys {}{}..{} ({}), {}",
        spec.threads,
        spec.clients,
        spec.pipeline,
        spec.ratio,
        spec.data_size,
        spec.key_prefix,
        spec.space.min,
        spec.space.max,
        spec.pattern,
        match (spec.requests, spec.test_time) {
            (_, Some(t)) => format!("{} s", t.as_secs()),
            (Some(n), None) => format!("{n} requests per client"),
            (None, None) => String::new(),
        }
    );
    if let Target::Cluster(map) = &spec.target {
        eprintln!(
            "cluster mode: {} primaries: {}",
            map.nodes.len(),
            map.nodes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (stats, duration, start_unix_ms) = run_load(&spec, true)?;
    let report = RunReport {
        spec: &spec,
        stats,
        duration,
        start_unix_ms,
        percentiles,
    };
    let mut out = std::io::stdout().lock();
    report
        .print_table(&mut out)
        .and_then(|()| {
            if args.hide_histogram {
                Ok(())
            } else {
                report.print_histogram(&mut out)
            }
        })
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing the summary: {e}"))?;
    if let Some(path) = &args.json_out_file {
        let text = serde_json::to_string_pretty(&report.to_json())
            .map_err(|e| format!("encoding JSON: {e}"))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}
