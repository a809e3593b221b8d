//! The `compare` command: corekey against reference servers, measured the same way, on the
//! same pinned CPUs, in alternating rounds. Owns the order of the experiment; the numbers'
//! presentation is in [`crate::report`].
//!
//! The experiment, in order:
//! 1. Each server is started fresh, pinned to `--server-cpus` (corekey gets one shard per CPU).
//!    Its `used_memory` and RSS are read, `--keys` keys of `--data-size` bytes are written once
//!    (the prefill, `--ratio 1:0 --key-pattern P:P --requests allkeys`), and read again: that
//!    is the memory comparison. The prefill also makes every GET of the workloads a hit.
//! 2. For each workload (one per `--pipelines` entry), `--rounds` rounds; in each round every
//!    server runs the workload for `--test-time` seconds, in the same order (A B A B…), so a
//!    slow phase of a noisy machine hits every server rather than one. Each run records the
//!    driver's ops/s and latency percentiles, the server's CPU time (utime + stime of all its
//!    threads, `/proc/<pid>/stat`) before and after, its peak RSS (VmHWM), the driver's own
//!    CPU time, and the CPU time everything else on the machine used meanwhile (`/proc/stat`
//!    minus server minus driver), which says how noisy the round was.
//! 3. With `--scale-cores 1,2,…`, corekey alone with each number of shards, same workloads (a
//!    shard count whose CPUs and driver CPUs are those of step 2 reuses corekey's runs there).
//! 4. Medians over rounds, ratios corekey / reference, written as JSON, Markdown and SVG.
//!
//! Servers stay up from their prefill to the end (idle servers use no CPU: none of them spins),
//! and are killed when the command ends, however it ends.

use crate::driver::{self, Driver, DriverKind, Load};
use crate::keys::{KeyPattern, Ratio};
use crate::procfs;
use crate::report;
use crate::servers::{default_corekey, find_in_path, Flavor, ServerProcess, ServerSpec};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `corekey-bench compare`.
#[derive(clap::Args, Clone, Debug)]
pub struct CompareArgs {
    /// The corekey binary (default: `corekey` beside this executable, else in PATH).
    #[arg(long)]
    pub corekey: Option<PathBuf>,
    /// A reference server, NAME=PATH, with redis-server's command line; or
    /// NAME=corekey:PATH, another corekey build; either with @CPUS to pin it to its own CPUs
    /// (e.g. x1=corekey:/tmp/corekey@0 against --server-cpus 0,0 measures the cost of hops).
    /// Repeatable (default: redis=the redis-server found in PATH).
    #[arg(long = "ref", value_name = "NAME=PATH")]
    pub refs: Vec<ServerSpec>,
    /// CPUs of each server (corekey runs one shard on each).
    #[arg(long, default_value = "0")]
    pub server_cpus: String,
    /// CPUs of the load generator.
    #[arg(long, default_value = "1")]
    pub client_cpus: String,
    /// Load generator: the built-in one or memtier_benchmark from PATH.
    #[arg(long, value_enum, default_value = "builtin")]
    pub driver: DriverKind,
    /// Rounds per workload (each server once per round).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 8)]
    pub test_time: u64,
    /// One workload per pipeline depth.
    #[arg(long, default_value = "1,16")]
    pub pipelines: String,
    /// SET:GET ratio of the workloads.
    #[arg(long, default_value = "1:10")]
    pub ratio: Ratio,
    /// Value size in bytes (workloads and memory).
    #[arg(long, default_value_t = 100)]
    pub data_size: usize,
    /// Load generator threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Connections per load generator thread.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Keys written in the prefill (the memory comparison) and used by the workloads.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Key pattern of the workloads.
    #[arg(long, default_value = "R:R")]
    pub key_pattern: KeyPattern,
    /// Also run corekey alone with each of these shard counts (e.g. 1,2).
    #[arg(long)]
    pub scale_cores: Option<String>,
    /// CPUs for the scaling runs' shards, the first N for N shards (default: all CPUs).
    #[arg(long)]
    pub scale_server_cpus: Option<String>,
    /// CPUs of the load generator in the scaling runs (default: --client-cpus).
    #[arg(long)]
    pub scale_client_cpus: Option<String>,
    /// Where compare.json, compare.md, compare.svg and the runs' logs go.
    #[arg(long, default_value = "corekey-bench-results")]
    pub out_dir: PathBuf,
}

/// One run of one server in one round.
#[derive(Clone, Debug, Serialize)]
pub struct RoundResult {
    pub server: String,
    pub workload: String,
    pub round: usize,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub avg_ms: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub p9999_ms: Option<f64>,
    /// utime + stime of all the server's threads.
    pub server_cpu_s: f64,
    /// Busy time of the server's CPUs, including the kernel's softirq network work there.
    pub server_cpus_busy_s: f64,
    pub client_cpu_s: f64,
    /// CPU time the rest of the machine used during the run: other processes, and kernel work
    /// not charged to a process (softirq network processing on loopback).
    pub other_cpu_s: f64,
    pub wall_s: f64,
    pub peak_rss_bytes: u64,
}

impl RoundResult {
    pub fn cpu_s_per_mops(&self) -> f64 {
        self.server_cpu_s / (self.ops.max(1) as f64 / 1e6)
    }

    pub fn ops_per_cpu_s(&self) -> f64 {
        self.ops as f64 / self.server_cpu_s.max(1e-9)
    }
}

/// Medians over the rounds of one server and workload.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub server: String,
    pub workload: String,
    pub rounds: usize,
    pub ops_per_sec: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub p9999_ms: Option<f64>,
    pub cpu_s_per_mops: f64,
    pub ops_per_cpu_s: f64,
    /// Busy time of the server's CPUs per million ops (process time plus softirq and any
    /// other work that ran on those CPUs).
    pub cpus_busy_s_per_mops: f64,
    pub peak_rss_bytes: u64,
    /// Driver CPU time over wall time, per client CPU (near 1.0: the driver may be the limit).
    pub client_cpu_share: f64,
    /// Other processes' CPU time over wall time, in CPUs.
    pub other_load_cpus: f64,
    /// Lowest and highest ops/s of the rounds.
    pub ops_per_sec_range: (f64, f64),
}

/// Memory use of one server before and after the prefill.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryResult {
    pub server: String,
    pub keys: u64,
    pub dbsize: u64,
    pub key_bytes_avg: f64,
    pub value_bytes: usize,
    pub used_memory_before: u64,
    pub used_memory_after: u64,
    pub rss_before: u64,
    pub rss_after: u64,
    pub prefill_ops_per_sec: f64,
}

impl MemoryResult {
    pub fn used_per_key(&self) -> f64 {
        self.used_memory_after
            .saturating_sub(self.used_memory_before) as f64
            / self.keys as f64
    }

    pub fn rss_per_key(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.keys as f64
    }

    /// Bytes per key beyond the key's and the value's own bytes.
    pub fn overhead_used(&self) -> f64 {
        self.used_per_key() - self.key_bytes_avg - self.value_bytes as f64
    }

    pub fn overhead_rss(&self) -> f64 {
        self.rss_per_key() - self.key_bytes_avg - self.value_bytes as f64
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ServerInfo {
    pub name: String,
    pub path: String,
    pub version: String,
    pub cpus: String,
}

/// Everything one compare measured.
#[derive(Clone, Debug, Serialize)]
pub struct CompareResult {
    pub command: String,
    pub machine: String,
    pub load_before: String,
    pub load_after: String,
    pub started_unix_s: u64,
    pub duration_s: f64,
    pub driver: String,
    pub client_cpus: String,
    pub servers: Vec<ServerInfo>,
    pub loads: Vec<(String, Load)>,
    pub test_time_s: u64,
    pub rounds: Vec<RoundResult>,
    pub summaries: Vec<Summary>,
    pub memory: Vec<MemoryResult>,
    pub scaling: Vec<Summary>,
    pub scaling_client_cpus: String,
    pub notes: Vec<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn median_opt(v: Vec<Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = v.into_iter().collect::<Option<_>>()?;
    Some(median(v))
}

/// Medians of `rounds` (all of one server and workload).
pub fn summarize(
    server: &str,
    workload: &str,
    rounds: &[&RoundResult],
    client_cpus: usize,
) -> Summary {
    let m = |f: &dyn Fn(&RoundResult) -> f64| median(rounds.iter().map(|r| f(r)).collect());
    let mo =
        |f: &dyn Fn(&RoundResult) -> Option<f64>| median_opt(rounds.iter().map(|r| f(r)).collect());
    let ops: Vec<f64> = rounds.iter().map(|r| r.ops_per_sec).collect();
    Summary {
        server: server.to_string(),
        workload: workload.to_string(),
        rounds: rounds.len(),
        ops_per_sec: median(ops.clone()),
        p50_ms: mo(&|r| r.p50_ms),
        p99_ms: mo(&|r| r.p99_ms),
        p999_ms: mo(&|r| r.p999_ms),
        p9999_ms: mo(&|r| r.p9999_ms),
        cpu_s_per_mops: m(&|r| r.cpu_s_per_mops()),
        ops_per_cpu_s: m(&|r| r.ops_per_cpu_s()),
        cpus_busy_s_per_mops: m(&|r| r.server_cpus_busy_s / (r.ops.max(1) as f64 / 1e6)),
        peak_rss_bytes: rounds.iter().map(|r| r.peak_rss_bytes).max().unwrap_or(0),
        client_cpu_share: m(&|r| r.client_cpu_s / r.wall_s.max(1e-9) / client_cpus.max(1) as f64),
        other_load_cpus: m(&|r| r.other_cpu_s / r.wall_s.max(1e-9)),
        ops_per_sec_range: (
            ops.iter().copied().fold(f64::INFINITY, f64::min),
            ops.iter().copied().fold(0.0, f64::max),
        ),
    }
}

/// The average length of the keys `memtier-1` … `memtier-<keys>`.
pub fn average_key_bytes(prefix: &str, keys: u64) -> f64 {
    if keys == 0 {
        return 0.0;
    }
    let mut digits_total = 0u64;
    let mut lo = 1u64;
    let mut digits = 1u64;
    // Bounded: at most 20 decades in a u64.
    while lo <= keys {
        let hi = lo.saturating_mul(10).saturating_sub(1).min(keys);
        digits_total += (hi - lo + 1) * digits;
        if hi == keys {
            break;
        }
        lo = hi + 1;
        digits += 1;
    }
    prefix.len() as f64 + digits_total as f64 / keys as f64
}

struct Context<'a> {
    args: &'a CompareArgs,
    driver: Driver,
    client_cpus: Vec<usize>,
    work_dir: PathBuf,
    notes: Vec<String>,
}

impl Context<'_> {
    fn workloads(&self) -> Result<Vec<(String, Load)>, String> {
        let mut v = Vec::new();
        for p in self
            .args
            .pipelines
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let pipeline: usize = p
                .parse()
                .ok()
                .filter(|&n| (1..=crate::load::PIPELINE_MAX).contains(&n))
                .ok_or_else(|| format!("invalid pipeline depth '{p}' in --pipelines"))?;
            let name = format!(
                "SET:GET {} {} B P{}",
                self.args.ratio, self.args.data_size, pipeline
            );
            v.push((
                name,
                Load {
                    threads: self.args.threads,
                    clients: self.args.clients,
                    pipeline,
                    ratio: self.args.ratio.to_string(),
                    data_size: self.args.data_size,
                    key_maximum: self.args.keys,
                    key_pattern: self.args.key_pattern.to_string(),
                    test_time_s: Some(self.args.test_time),
                },
            ));
        }
        if v.is_empty() {
            return Err("--pipelines names no workload".into());
        }
        Ok(v)
    }

    /// Starts `spec` and prefills it; returns the server and its memory numbers.
    fn start_and_prefill(
        &mut self,
        spec: &ServerSpec,
        cpus: &[usize],
        tag: &str,
    ) -> Result<(ServerProcess, MemoryResult), String> {
        eprintln!(
            "== starting {} on CPUs {}",
            spec.name,
            procfs::format_cpu_list(cpus)
        );
        let server = ServerProcess::start(spec, cpus, &[])?;
        let used_before = server.info_u64("memory", "used_memory")?;
        let rss_before = procfs::rss_bytes(server.pid()).map_err(|e| e.to_string())?;
        let a = self.args;
        let load = Load::prefill(a.threads, a.clients, a.data_size, a.keys);
        eprintln!(
            "   prefill: {} keys x {} B (ratio 1:0, P:P, pipeline {})",
            a.keys, a.data_size, load.pipeline
        );
        let run = driver::run(
            &self.driver,
            &load,
            server.addr(),
            &self.client_cpus,
            &self.work_dir,
            &format!("{tag}-prefill"),
        )?;
        let dbsize = server
            .client()?
            .call_ok(&["DBSIZE"])
            .map_err(|e| format!("{}: {e}", spec.name))?
            .as_int()
            .unwrap_or(-1);
        if dbsize != a.keys as i64 {
            self.notes.push(format!(
                "{}: DBSIZE after the prefill is {dbsize}, expected {}",
                spec.name, a.keys
            ));
        }
        let memory = MemoryResult {
            server: spec.name.clone(),
            keys: a.keys,
            dbsize: dbsize.max(0) as u64,
            key_bytes_avg: average_key_bytes("memtier-", a.keys),
            value_bytes: a.data_size,
            used_memory_before: used_before,
            used_memory_after: server.info_u64("memory", "used_memory")?,
            rss_before,
            rss_after: procfs::rss_bytes(server.pid()).map_err(|e| e.to_string())?,
            prefill_ops_per_sec: run.numbers.ops_per_sec,
        };
        eprintln!(
            "   {:.0} ops/s; used_memory {:.1} B/key, RSS {:.1} B/key",
            run.numbers.ops_per_sec,
            memory.used_per_key(),
            memory.rss_per_key()
        );
        Ok((server, memory))
    }

    /// One run of `load` against `server`, with the server's and the machine's CPU time.
    fn measure(
        &self,
        server: &mut ServerProcess,
        cpus: &[usize],
        workload: &str,
        load: &Load,
        round: usize,
        tag: &str,
    ) -> Result<RoundResult, String> {
        let pid = server.pid();
        let name = server.name.clone();
        let io = |e: std::io::Error| format!("{name}: /proc: {e}");
        let cpu0 = procfs::cpu_seconds(pid).map_err(io)?;
        let busy0 = procfs::machine_busy_seconds().map_err(|e| e.to_string())?;
        let cores0 = procfs::busy_seconds(Some(cpus)).map_err(|e| e.to_string())?;
        let run = driver::run(
            &self.driver,
            load,
            server.addr(),
            &self.client_cpus,
            &self.work_dir,
            tag,
        );
        let busy1 = procfs::machine_busy_seconds().map_err(|e| e.to_string())?;
        let cores1 = procfs::busy_seconds(Some(cpus)).map_err(|e| e.to_string())?;
        if !server.alive() {
            return Err(format!(
                "{} died during {tag}\n{}",
                server.name,
                server.log_tail()
            ));
        }
        let run = run?;
        let cpu1 = procfs::cpu_seconds(pid).map_err(io)?;
        let server_cpu_s = cpu1 - cpu0;
        let n = &run.numbers;
        let r = RoundResult {
            server: server.name.clone(),
            workload: workload.to_string(),
            round,
            ops: if n.ops > 0 {
                n.ops
            } else {
                (n.ops_per_sec * n.duration_ms as f64 / 1000.0) as u64
            },
            ops_per_sec: n.ops_per_sec,
            avg_ms: n.avg_ms,
            p50_ms: n.percentile(50.0),
            p99_ms: n.percentile(99.0),
            p999_ms: n.percentile(99.9),
            p9999_ms: n.percentile(99.99),
            server_cpu_s,
            server_cpus_busy_s: cores1 - cores0,
            client_cpu_s: run.client_cpu_s,
            other_cpu_s: (busy1 - busy0 - server_cpu_s - run.client_cpu_s).max(0.0),
            wall_s: run.wall_s,
            peak_rss_bytes: procfs::peak_rss_bytes(pid).map_err(io)?,
        };
        eprintln!(
            "   round {} {:<8} {:>10.0} ops/s  p50 {:>7.3} ms  p99 {:>7.3} ms  server {:>6.2} CPU-s/M ops  client CPU {:>4.0}%  other load {:.2} CPUs",
            round + 1,
            r.server,
            r.ops_per_sec,
            r.p50_ms.unwrap_or(0.0),
            r.p99_ms.unwrap_or(0.0),
            r.cpu_s_per_mops(),
            r.client_cpu_s / r.wall_s.max(1e-9) * 100.0,
            r.other_cpu_s / r.wall_s.max(1e-9)
        );
        Ok(r)
    }
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// `corekey-bench compare`.
pub fn execute(args: &CompareArgs) -> Result<(), String> {
    let started = Instant::now();
    let started_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let driver = Driver::new(args.driver)?;
    let server_cpus = procfs::parse_cpu_list(&args.server_cpus)?;
    let client_cpus = procfs::parse_cpu_list(&args.client_cpus)?;
    if args.rounds == 0 || args.test_time == 0 || args.keys == 0 {
        return Err("--rounds, --test-time and --keys must be at least 1".into());
    }
    let corekey_path = match &args.corekey {
        Some(p) => p.clone(),
        None => default_corekey().ok_or(
            "no corekey binary beside this executable or in PATH: build it (cargo build --release -p corekey-node) or pass --corekey PATH",
        )?,
    };
    let mut specs = vec![ServerSpec {
        name: "corekey".into(),
        flavor: Flavor::Corekey,
        path: corekey_path,
        cpus: None,
    }];
    if args.refs.is_empty() {
        let redis = find_in_path("redis-server")
            .ok_or("no --ref given and no redis-server in PATH: pass --ref NAME=PATH")?;
        specs.push(ServerSpec {
            name: "redis".into(),
            flavor: Flavor::Redis,
            path: redis,
            cpus: None,
        });
    } else {
        specs.extend(args.refs.iter().cloned());
    }
    for (i, s) in specs.iter().enumerate() {
        if specs[..i].iter().any(|o| o.name == s.name) {
            return Err(format!("two servers are named {}", s.name));
        }
    }
    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| format!("creating {}: {e}", args.out_dir.display()))?;
    let work_dir = args.out_dir.join("runs");
    std::fs::create_dir_all(&work_dir)
        .map_err(|e| format!("creating {}: {e}", work_dir.display()))?;
    let mut ctx = Context {
        args,
        driver,
        client_cpus: client_cpus.clone(),
        work_dir,
        notes: Vec::new(),
    };
    let workloads = ctx.workloads()?;
    for spec in &specs {
        let cpus = spec.cpus.as_deref().unwrap_or(&server_cpus);
        if cpus.iter().any(|c| client_cpus.contains(c)) {
            ctx.notes.push(format!(
                "the load generator (CPUs {}) shares CPUs with {} (CPUs {})",
                args.client_cpus,
                spec.name,
                procfs::format_cpu_list(cpus)
            ));
        }
    }
    let machine = procfs::describe_machine();
    let load_before = procfs::load_average();
    eprintln!("corekey-bench compare: {machine}");
    eprintln!(
        "driver {} pinned to CPUs {}; servers pinned to CPUs {}; {} workloads x {} rounds x {} servers x {} s",
        ctx.driver.version(),
        args.client_cpus,
        args.server_cpus,
        workloads.len(),
        args.rounds,
        specs.len(),
        args.test_time
    );

    // 1. Start and prefill every server; memory numbers.
    let mut servers = Vec::new();
    let mut memory = Vec::new();
    let mut infos = Vec::new();
    for spec in &specs {
        let cpus = spec.cpus.clone().unwrap_or_else(|| server_cpus.clone());
        infos.push(ServerInfo {
            name: spec.name.clone(),
            path: spec.path.display().to_string(),
            version: spec.version(),
            cpus: procfs::format_cpu_list(&cpus),
        });
        let (server, mem) = ctx.start_and_prefill(spec, &cpus, &slug(&spec.name))?;
        servers.push((server, cpus));
        memory.push(mem);
    }

    // 2. Alternating rounds.
    let mut rounds = Vec::new();
    for (name, load) in &workloads {
        eprintln!("== {name}");
        for round in 0..args.rounds {
            for (server, cpus) in servers.iter_mut() {
                let tag = format!("{}-{}-r{}", slug(&server.name), slug(name), round + 1);
                rounds.push(ctx.measure(server, cpus, name, load, round, &tag)?);
            }
        }
    }
    drop(servers);
    let mut summaries = Vec::new();
    for (name, _) in &workloads {
        for spec in &specs {
            let rs: Vec<&RoundResult> = rounds
                .iter()
                .filter(|r| &r.workload == name && r.server == spec.name)
                .collect();
            summaries.push(summarize(&spec.name, name, &rs, client_cpus.len()));
        }
    }

    // 3. Scaling.
    let mut scaling = Vec::new();
    let scale_client_cpus = match &args.scale_client_cpus {
        Some(l) => procfs::parse_cpu_list(l)?,
        None => client_cpus.clone(),
    };
    if let Some(list) = &args.scale_cores {
        let scale_cpus = match &args.scale_server_cpus {
            Some(l) => procfs::parse_cpu_list(l)?,
            None => procfs::available_cpus(),
        };
        ctx.client_cpus = scale_client_cpus.clone();
        for n in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let n: usize = n
                .parse()
                .ok()
                .filter(|&n| n >= 1 && n <= scale_cpus.len())
                .ok_or_else(|| {
                    format!(
                        "--scale-cores {n}: need 1..={} (the scaling CPUs {})",
                        scale_cpus.len(),
                        procfs::format_cpu_list(&scale_cpus)
                    )
                })?;
            let cpus = &scale_cpus[..n];
            if cpus.iter().any(|c| scale_client_cpus.contains(c)) {
                ctx.notes.push(format!(
                    "scaling with {n} cores: the load generator (CPUs {}) shares CPUs with corekey (CPUs {})",
                    procfs::format_cpu_list(&scale_client_cpus),
                    procfs::format_cpu_list(cpus)
                ));
            }
            let label = format!("corekey x{n}");
            if cpus == &server_cpus[..] && scale_client_cpus == client_cpus {
                // The same set-up as corekey's runs in the comparison: reuse them.
                for s in summaries.iter().filter(|s| s.server == specs[0].name) {
                    scaling.push(Summary {
                        server: label.clone(),
                        ..s.clone()
                    });
                }
                continue;
            }
            let spec = ServerSpec {
                name: label.clone(),
                cpus: None,
                ..specs[0].clone()
            };
            let (mut server, _) = ctx.start_and_prefill(&spec, cpus, &format!("scale{n}"))?;
            for (name, load) in &workloads {
                eprintln!("== {label}: {name}");
                let mut rs = Vec::new();
                for round in 0..args.rounds {
                    let tag = format!("scale{n}-{}-r{}", slug(name), round + 1);
                    rs.push(ctx.measure(&mut server, cpus, name, load, round, &tag)?);
                }
                let refs: Vec<&RoundResult> = rs.iter().collect();
                scaling.push(summarize(&label, name, &refs, scale_client_cpus.len()));
                rounds.extend(rs);
            }
        }
    }

    let result = CompareResult {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine,
        load_before,
        load_after: procfs::load_average(),
        started_unix_s,
        duration_s: started.elapsed().as_secs_f64(),
        driver: ctx.driver.version(),
        client_cpus: procfs::format_cpu_list(&client_cpus),
        servers: infos,
        loads: workloads,
        test_time_s: args.test_time,
        rounds,
        summaries,
        memory,
        scaling,
        scaling_client_cpus: procfs::format_cpu_list(&scale_client_cpus),
        notes: ctx.notes,
    };
    write_outputs(&result, &args.out_dir)
}

fn write_outputs(result: &CompareResult, dir: &Path) -> Result<(), String> {
    let md = report::markdown(result);
    let json = serde_json::to_string_pretty(result).map_err(|e| format!("encoding JSON: {e}"))?;
    let svg = report::svg_chart(result);
    for (name, text) in [
        ("compare.json", json),
        ("compare.md", md.clone()),
        ("compare.svg", svg),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    println!("{md}");
    eprintln!(
        "wrote {0}/compare.json, {0}/compare.md, {0}/compare.svg ({1:.0} s)",
        dir.display(),
        result.duration_s
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lengths_average_exactly() {
        // memtier-1 … memtier-9: 9 bytes each; memtier-10: 10 bytes.
        assert!((average_key_bytes("memtier-", 10) - 9.1).abs() < 1e-9);
        assert!((average_key_bytes("k", 1) - 2.0).abs() < 1e-9);
        let avg = average_key_bytes("memtier-", 1_000_000);
        assert!((avg - 13.888_896).abs() < 1e-9, "{avg}");
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median_opt(vec![Some(1.0), None]), None);
    }
}
