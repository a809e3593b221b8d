//! The load generators `compare` can drive, behind one function: the built-in one (this very
//! binary's `run`, as a child process) or memtier_benchmark (`--driver memtier`, found in
//! PATH). Both get the same memtier options, run pinned to the client CPUs, write memtier's
//! JSON layout, and are measured the same way (their CPU time from `wait4`). Owns the child
//! process of one run.

use crate::keys::{KeyPattern, Ratio};
use crate::servers::{find_in_path, spawn_pinned};
use crate::stats::RunNumbers;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// How long a driver may run past its test time (connecting, draining, writing JSON).
pub const DRIVER_GRACE: Duration = Duration::from_secs(60);
/// How long a prefill may take.
pub const PREFILL_DEADLINE: Duration = Duration::from_secs(600);
/// Pause between two checks of a running driver.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// corekey-bench's own generator.
    Builtin,
    /// memtier_benchmark from PATH.
    Memtier,
}

/// A resolved driver: which program to run.
#[derive(Clone, Debug)]
pub struct Driver {
    pub kind: DriverKind,
    pub program: PathBuf,
}

impl Driver {
    pub fn new(kind: DriverKind) -> Result<Driver, String> {
        let program = match kind {
            DriverKind::Builtin => {
                std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?
            }
            DriverKind::Memtier => find_in_path("memtier_benchmark").ok_or(
                "--driver memtier: memtier_benchmark is not on PATH. Install it (Redis Ltd's \
                 memtier_benchmark, packaged by some distributions, or built from its source) \
                 and put it on PATH, or use --driver builtin.",
            )?,
        };
        Ok(Driver { kind, program })
    }

    /// The driver's version line, for reports.
    pub fn version(&self) -> String {
        match self.kind {
            DriverKind::Builtin => format!("corekey-bench {}", env!("CARGO_PKG_VERSION")),
            DriverKind::Memtier => std::process::Command::new(&self.program)
                .arg("--version")
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "memtier_benchmark (version unknown)".into()),
        }
    }
}

/// One load: the memtier options that `compare` varies.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Load {
    pub threads: usize,
    pub clients: usize,
    pub pipeline: usize,
    pub ratio: String,
    pub data_size: usize,
    pub key_maximum: u64,
    pub key_pattern: String,
    /// Run for this long, or (None) send every key once (`--requests allkeys`, P:P).
    pub test_time_s: Option<u64>,
}

impl Load {
    /// The prefill: every key 1..=keys written once, SETs only, pipelined.
    pub fn prefill(threads: usize, clients: usize, data_size: usize, keys: u64) -> Load {
        Load {
            threads,
            clients,
            pipeline: 32,
            ratio: Ratio { set: 1, get: 0 }.to_string(),
            data_size,
            key_maximum: keys,
            key_pattern: KeyPattern {
                set: crate::keys::Pattern::Parallel,
                get: crate::keys::Pattern::Parallel,
            }
            .to_string(),
            test_time_s: None,
        }
    }

    /// The memtier command line (without the program name).
    pub fn args(&self, addr: SocketAddr, json: &Path) -> Vec<OsString> {
        let mut a: Vec<String> = vec![
            "-s".into(),
            addr.ip().to_string(),
            "-p".into(),
            addr.port().to_string(),
            "-t".into(),
            self.threads.to_string(),
            "-c".into(),
            self.clients.to_string(),
            "--pipeline".into(),
            self.pipeline.to_string(),
            "--ratio".into(),
            self.ratio.clone(),
            "-d".into(),
            self.data_size.to_string(),
            "--key-prefix".into(),
            "memtier-".into(),
            "--key-minimum".into(),
            "1".into(),
            "--key-maximum".into(),
            self.key_maximum.to_string(),
            "--key-pattern".into(),
            self.key_pattern.clone(),
            "--distinct-client-seed".into(),
            "--hide-histogram".into(),
            "--print-percentiles".into(),
            "50,99,99.9,99.99".into(),
        ];
        match self.test_time_s {
            Some(t) => a.extend(["--test-time".into(), t.to_string()]),
            None => a.extend(["--requests".into(), "allkeys".into()]),
        }
        let mut args: Vec<OsString> = a.into_iter().map(OsString::from).collect();
        args.extend(["--json-out-file".into(), json.as_os_str().to_owned()]);
        args
    }
}

/// What one driver run measured.
#[derive(Clone, Debug)]
pub struct DriverRun {
    pub numbers: RunNumbers,
    /// CPU seconds of the load generator process.
    pub client_cpu_s: f64,
    pub wall_s: f64,
}

/// Runs `load` against `addr` with the driver pinned to `cpus`; `work_dir` receives its JSON
/// and log. Fails if the driver fails, times out, or reports error replies.
pub fn run(
    driver: &Driver,
    load: &Load,
    addr: SocketAddr,
    cpus: &[usize],
    work_dir: &Path,
    tag: &str,
) -> Result<DriverRun, String> {
    let json = work_dir.join(format!("{tag}.json"));
    let log = work_dir.join(format!("{tag}.log"));
    let _ = std::fs::remove_file(&json);
    let mut args = load.args(addr, &json);
    if driver.kind == DriverKind::Builtin {
        args.insert(0, "run".into());
    }
    let started = Instant::now();
    let child = spawn_pinned(&driver.program, &args, cpus, &log)
        .map_err(|e| format!("cannot start {}: {e}", driver.program.display()))?;
    let deadline = load
        .test_time_s
        .map_or(PREFILL_DEADLINE, |t| Duration::from_secs(t) + DRIVER_GRACE);
    let tail = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    let (code, client_cpu_s) = wait_with_rusage(child, deadline)
        .map_err(|e| format!("{} ({tag}): {e}\n{}", driver.program.display(), tail()))?;
    let wall_s = started.elapsed().as_secs_f64();
    if code != 0 {
        return Err(format!(
            "{} ({tag}) exited with status {code}; its log {}:\n{}",
            driver.program.display(),
            log.display(),
            tail()
        ));
    }
    let text = std::fs::read_to_string(&json)
        .map_err(|e| format!("{tag}: reading {}: {e}", json.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{tag}: {} is not valid JSON: {e}", json.display()))?;
    let numbers = RunNumbers::from_json(&doc).map_err(|e| format!("{tag}: {e}"))?;
    if let Some(errors) = numbers.errors.filter(|&e| e > 0) {
        return Err(format!(
            "{tag}: {errors} error replies (see {})",
            json.display()
        ));
    }
    Ok(DriverRun {
        numbers,
        client_cpu_s,
        wall_s,
    })
}

/// Waits for `child` with `wait4`, which also reports its CPU time; kills it at the deadline.
/// Returns the exit code (128 + signal if killed by one) and user + system CPU seconds.
fn wait_with_rusage(child: Child, deadline: Duration) -> Result<(i32, f64), String> {
    let pid = child.id() as libc::pid_t;
    // The child is reaped here by wait4; `Child` must not wait on or signal it afterwards
    // (its pid could be reused), so it is dropped without either.
    drop(child);
    let end = Instant::now() + deadline;
    let mut killed = false;
    // Bounded: the deadline kills the child, and a killed child is reaped at once.
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if killed { 0 } else { libc::WNOHANG };
        // SAFETY: wait4 on our own child's pid with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            if killed {
                return Err(format!("did not finish within {deadline:?}; killed"));
            }
            let cpu = tv_secs(usage.ru_utime) + tv_secs(usage.ru_stime);
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            return Ok((code, cpu));
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("wait4: {e}"));
        }
        if Instant::now() >= end {
            // SAFETY: kill(2) on our own child, not reaped yet (wait4 returned 0).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
            continue;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn tv_secs(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}
