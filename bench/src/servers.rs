//! Server processes under test: corekey, and reference servers that take redis-server's command
//! line (redis-server, valkey-server). Starts each on a leased loopback port in its own temp
//! directory, pinned to chosen CPUs, waits until it answers PING, and kills it (by pid, never by
//! name) and removes its directory on drop. Knows nothing of workloads.
//!
//! Ports are leased like the integration tests lease them (same lock directory and range), so
//! that the bench's tests and corekey-tests can run side by side under nextest: an exclusive
//! `flock` on a per-port file, released by the kernel when the process dies, plus a bind check.

use crate::procfs;
use crate::resp::{info_field, Client, Value};
use std::ffi::OsString;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Leased ports: below Linux's default ephemeral range and with room for port + 10000 (the
/// cluster bus port).
const PORT_MIN: u16 = 16000;
const PORT_MAX: u16 = 32000;
const PORT_LEASE_ATTEMPTS: usize = 200;
/// Starts retried on another port after "address already in use".
const START_ATTEMPTS: usize = 5;
/// How long a server may take to answer PING.
pub const START_DEADLINE: Duration = Duration::from_secs(20);
/// Pause between two readiness checks.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How a server takes its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `corekey --port P --bind 127.0.0.1 [--cores N --cpu-list …] --dir D`.
    Corekey,
    /// `redis-server --port P --bind 127.0.0.1 --save "" --appendonly no --dir D` (Valkey too).
    Redis,
}

/// A server to start: a name for reports, its flavor, its binary, and (for a reference that
/// must not run on the comparison's `--server-cpus`) its own CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    pub name: String,
    pub flavor: Flavor,
    pub path: PathBuf,
    pub cpus: Option<Vec<usize>>,
}

impl FromStr for ServerSpec {
    type Err = String;
    /// `NAME=[corekey:]PATH[@CPUS]`: a reference server with redis-server's command line, or
    /// with `corekey:` another corekey build (an A/B of two builds, or of two shard layouts:
    /// `@0,0` runs two shards on CPU 0). `@CPUS` pins this server to its own CPU list instead
    /// of `--server-cpus` (for corekey, one shard per entry).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("invalid --ref '{s}': expected NAME=[corekey:]PATH[@CPUS], e.g. redis=/usr/bin/redis-server or base=corekey:/tmp/corekey@0")
        };
        let (name, rest) = s
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            .ok_or_else(bad)?;
        if name == "corekey" {
            return Err("--ref: the name corekey is taken by the server under test".into());
        }
        let (flavor, rest) = match rest.strip_prefix("corekey:") {
            Some(r) => (Flavor::Corekey, r),
            None => (Flavor::Redis, rest),
        };
        let (path, cpus) = match rest.rsplit_once('@') {
            Some((p, c)) => (p, Some(procfs::parse_cpu_list(c)?)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(bad());
        }
        Ok(ServerSpec {
            name: name.to_string(),
            flavor,
            path: PathBuf::from(path),
            cpus,
        })
    }
}

impl ServerSpec {
    /// The first line of `<binary> --version`.
    pub fn version(&self) -> String {
        Command::new(&self.path)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            })
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| "version unknown".into())
    }
}

/// A port held by this process.
pub struct PortLease {
    port: u16,
    _lock: File,
}

impl PortLease {
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A different pseudo-random number on every call, in every process.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut rng = crate::keys::Rng::new(
        nanos
            ^ (u64::from(std::process::id()) << 32)
            ^ COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    rng.next_u64()
}

/// Leases a loopback port that no other lease holder has and that is free now (the port and
/// port + 10000, for a cluster bus).
pub fn lease_port() -> Result<PortLease, String> {
    let dir = std::env::temp_dir().join("corekey-tests-ports");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for _ in 0..PORT_LEASE_ATTEMPTS {
        let port = PORT_MIN + (random_u64() % u64::from(PORT_MAX - PORT_MIN)) as u16;
        let Ok(file) = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{port}.lock")))
        else {
            continue;
        };
        // SAFETY: flock on a descriptor we own; LOCK_NB returns at once.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if locked
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok()
        {
            return Ok(PortLease { port, _lock: file });
        }
    }
    Err(format!(
        "no free port in {PORT_MIN}..{PORT_MAX} after {PORT_LEASE_ATTEMPTS} attempts"
    ))
}

/// A running server; killed and reaped on drop.
pub struct ServerProcess {
    pub name: String,
    child: Child,
    lease: PortLease,
    dir: PathBuf,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `spec` pinned to `cpus` (corekey: one shard per CPU) with `extra` arguments
    /// appended, and waits until it answers PING.
    pub fn start(
        spec: &ServerSpec,
        cpus: &[usize],
        extra: &[&str],
    ) -> Result<ServerProcess, String> {
        if !spec.path.is_file() {
            return Err(format!(
                "{}: no executable at {}",
                spec.name,
                spec.path.display()
            ));
        }
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let lease = lease_port()?;
            let dir = std::env::temp_dir().join("corekey-bench").join(format!(
                "{}-{}-{:x}",
                spec.name,
                std::process::id(),
                random_u64()
            ));
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let log = dir.join("server.log");
            let args = server_args(spec.flavor, lease.port(), cpus, &dir, extra);
            let child = spawn_pinned(&spec.path, &args, cpus, &log)
                .map_err(|e| format!("cannot start {}: {e}", spec.path.display()))?;
            let mut server = ServerProcess {
                name: spec.name.clone(),
                child,
                lease,
                dir,
                log,
            };
            match server.wait_ready(START_DEADLINE) {
                Ok(()) => return Ok(server),
                Err(e) => {
                    last = format!("{e}\n{}", server.log_tail());
                    if !last.to_ascii_lowercase().contains("already in use") {
                        return Err(last);
                    }
                }
            }
        }
        Err(format!(
            "{}: port in use {START_ATTEMPTS} times; last:\n{last}",
            spec.name
        ))
    }

    pub fn port(&self) -> u16 {
        self.lease.port()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn wait_ready(&mut self, deadline: Duration) -> Result<(), String> {
        let end = Instant::now() + deadline;
        // Bounded by the deadline.
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited at start-up with {status}", self.name));
            }
            if answers_ping(self.addr()) {
                // The PONG could have come from a stranger if ours just died.
                if self.alive() {
                    return Ok(());
                }
            }
            if Instant::now() >= end {
                return Err(format!(
                    "{} did not answer PING on {} within {deadline:?}",
                    self.name,
                    self.addr()
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    pub fn client(&self) -> Result<Client, String> {
        Client::connect(self.addr()).map_err(|e| format!("{}: cannot connect: {e}", self.name))
    }

    /// One INFO field (e.g. `used_memory`) as a number.
    pub fn info_u64(&self, section: &str, field: &str) -> Result<u64, String> {
        let mut c = self.client()?;
        let info = c
            .call_ok(&["INFO", section])
            .map_err(|e| format!("{}: {e}", self.name))?
            .as_text()
            .unwrap_or_default();
        info_field(&info, field)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{}: no numeric {field} in INFO {section}", self.name))
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- {} log ({}) ---\n{}",
            self.name,
            self.log.display(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn server_args(
    flavor: Flavor,
    port: u16,
    cpus: &[usize],
    dir: &Path,
    extra: &[&str],
) -> Vec<OsString> {
    let port = port.to_string();
    let mut args: Vec<OsString> = match flavor {
        Flavor::Corekey => {
            let mut a: Vec<OsString> = ["--port", &port, "--bind", "127.0.0.1"]
                .map(OsString::from)
                .to_vec();
            // Unpinned (no CPUs given): corekey's own default, or `--cores` in `extra`.
            if !cpus.is_empty() {
                a.extend([
                    "--cores".into(),
                    cpus.len().to_string().into(),
                    "--cpu-list".into(),
                    procfs::format_cpu_list(cpus).into(),
                ]);
            }
            a
        }
        Flavor::Redis => [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        .map(OsString::from)
        .to_vec(),
    };
    args.extend(["--dir".into(), dir.as_os_str().to_owned()]);
    args.extend(extra.iter().map(OsString::from));
    args
}

/// Spawns `program` with stdout and stderr into `log`, pinned to `cpus` from its first
/// instruction (so every thread it creates inherits the mask).
pub fn spawn_pinned(
    program: &Path,
    args: &[OsString],
    cpus: &[usize],
    log: &Path,
) -> std::io::Result<Child> {
    let out = File::create(log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    if !cpus.is_empty() {
        // SAFETY: cpu_set_t is plain data, filled before fork; CPU indices are checked.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in cpus {
            if c >= libc::CPU_SETSIZE as usize {
                return Err(std::io::Error::other(format!("CPU {c} is out of range")));
            }
            // SAFETY: c < CPU_SETSIZE.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        // SAFETY: the closure runs between fork and exec and only calls sched_setaffinity,
        // which is async-signal-safe, on a set prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn()
}

/// Whether a new connection to `addr` gets +PONG to PING within a second.
pub fn answers_ping(addr: SocketAddr) -> bool {
    let Ok(mut c) = Client::connect(addr) else {
        return false;
    };
    if c.set_timeout(Duration::from_secs(1)).is_err() {
        return false;
    }
    matches!(c.call(&["PING"]), Ok(Value::Simple(s)) if s == "PONG")
}

/// Finds an executable in `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The corekey binary beside this executable (`target/<profile>/corekey`), else in PATH.
pub fn default_corekey() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("corekey"), dir.parent()?.join("corekey")]
        .into_iter()
        .find(|p| p.is_file())
        .or_else(|| find_in_path("corekey"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--ref` takes a plain reference, another corekey build, and either with its own CPUs.
    #[test]
    fn ref_specs() {
        let r: ServerSpec = "redis=/usr/bin/redis-server".parse().unwrap();
        assert_eq!(
            (r.flavor, r.path, r.cpus),
            (Flavor::Redis, PathBuf::from("/usr/bin/redis-server"), None)
        );
        let b: ServerSpec = "x1=corekey:/tmp/ck@0".parse().unwrap();
        assert_eq!(
            (b.name.as_str(), b.flavor, b.path, b.cpus),
            (
                "x1",
                Flavor::Corekey,
                PathBuf::from("/tmp/ck"),
                Some(vec![0])
            )
        );
        let two: ServerSpec = "x2=corekey:/tmp/ck@0,0".parse().unwrap();
        assert_eq!(two.cpus, Some(vec![0, 0]));
        assert!("corekey=/x".parse::<ServerSpec>().is_err());
        assert!("x=corekey:@0".parse::<ServerSpec>().is_err());
        assert!("x=/y@z".parse::<ServerSpec>().is_err());
    }
}
