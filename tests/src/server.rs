//! Server processes for tests: find the binary, lease a free loopback port, start the process,
//! wait until it answers PING, signal it, and always kill and reap it (on drop, even when the
//! test panics). Owns processes and their log files; knows nothing of commands beyond PING.
//!
//! Port choice must hold up with nextest running many test processes at once: a port is
//! leased with an exclusive `flock` on a per-port file in the temp dir (released by the kernel
//! when the test process dies, however it dies), checked free with a bind, and if the server
//! still fails with "address already in use" (a process outside the tests took it), the start
//! is retried on another port.

use crate::client::Conn;
use std::ffi::OsString;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Ports are leased from this range: below Linux's default ephemeral range (32768–60999), so
/// outgoing connections never hold them, and low enough that port + 10000 (the cluster bus
/// port) is still a valid port.
const PORT_MIN: u16 = 16000;
const PORT_MAX: u16 = 32000;
/// How many ports are tried before giving up on leasing one.
const PORT_LEASE_ATTEMPTS: usize = 200;
/// How many times a server is started on a new port after "address already in use".
const START_ATTEMPTS: usize = 10;
/// How long a server may take to answer PING after it is spawned.
pub const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long a killed process may take to be reaped.
const REAP_DEADLINE: Duration = Duration::from_secs(10);

/// A port held for this test process: nobody else using this module takes it while the lease
/// lives.
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
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let seed = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    crate::gen::SplitMix64::new(seed).next_u64()
}

/// Leases a loopback port that no other test holds and that is free right now.
pub fn lease_port() -> PortLease {
    let dir = std::env::temp_dir().join("corekey-tests-ports");
    std::fs::create_dir_all(&dir).expect("creating the port lease directory");
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
        // SAFETY: flock on a file descriptor we own; LOCK_NB makes it return at once.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if locked && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return PortLease { port, _lock: file };
        }
    }
    panic!("no free port in {PORT_MIN}..{PORT_MAX} after {PORT_LEASE_ATTEMPTS} attempts");
}

/// A child process whose stdout and stderr go to files; killed (SIGKILL) and reaped on drop.
/// When the test is panicking, the end of its output is printed, to explain the failure.
pub struct Process {
    child: Child,
    name: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, program: &Path, args: &[OsString]) -> Process {
        Self::spawn_with_env(name, program, args, &[])
    }

    /// [`Process::spawn`] with extra environment variables.
    pub fn spawn_with_env(
        name: &str,
        program: &Path,
        args: &[OsString],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Process {
        let dir = std::env::temp_dir().join("corekey-tests-logs");
        std::fs::create_dir_all(&dir).expect("creating the log directory");
        let stem = format!("{name}-{}-{:x}", std::process::id(), random_u64());
        let stdout_path = dir.join(format!("{stem}.out"));
        let stderr_path = dir.join(format!("{stem}.err"));
        let stdout = File::create(&stdout_path).expect("creating a stdout file");
        let stderr = File::create(&stderr_path).expect("creating a stderr file");
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Process {
            child,
            name: name.to_string(),
            stdout_path,
            stderr_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("waiting on a child")
    }

    /// Sends a signal (by pid; the child is not reaped yet, so the pid is still ours).
    pub fn signal(&mut self, signal: libc::c_int) {
        if self.exited().is_none() {
            // SAFETY: kill(2) on our own unreaped child's pid.
            unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        }
    }

    /// Stops one thread of the process, the one named `name` (as `/proc/<pid>/task/*/comm`
    /// shows it, e.g. corekey's `shard-0`), and only it: the others run on. Unlike SIGSTOP,
    /// which stops a whole process, this can stall one shard of a node. The thread is held in
    /// a ptrace(2) stop until the returned guard is dropped (or this test process ends).
    /// `None` when no thread has that name or ptrace is not allowed here.
    pub fn freeze_thread(&mut self, name: &str) -> Option<FrozenThread> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid())).ok()?;
        let tid: libc::pid_t = tasks
            .filter_map(|t| t.ok())
            .find(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
            })?
            .file_name()
            .to_str()?
            .parse()
            .ok()?;
        let none = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: ptrace(2) and waitpid(2) on a thread of our own child; no memory is shared.
        unsafe {
            if libc::ptrace(libc::PTRACE_SEIZE, tid, none, none) != 0 {
                return None;
            }
            if libc::ptrace(libc::PTRACE_INTERRUPT, tid, none, none) != 0 {
                libc::ptrace(libc::PTRACE_DETACH, tid, none, none);
                return None;
            }
            // The stop is in effect once reported.
            let mut status = 0;
            if libc::waitpid(tid, &mut status, libc::__WALL) != tid {
                return None;
            }
        }
        Some(FrozenThread {
            tid,
            _tracer: std::marker::PhantomData,
        })
    }

    /// Waits until the process exits; None if it is still running at the deadline.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        crate::wait::poll(deadline, || self.exited())
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            if self.wait_exit(REAP_DEADLINE).is_none() {
                eprintln!(
                    "{} (pid {}) did not die within {REAP_DEADLINE:?} of SIGKILL",
                    self.name,
                    self.pid()
                );
            }
        }
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read(&self.stdout_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read(&self.stderr_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last lines of stdout and stderr, for failure messages.
    pub fn output_tail(&self) -> String {
        fn tail(text: &str) -> String {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        }
        format!(
            "--- {} stdout ({}) ---\n{}\n--- {} stderr ({}) ---\n{}",
            self.name,
            self.stdout_path.display(),
            tail(&self.stdout_text()),
            self.name,
            self.stderr_path.display(),
            tail(&self.stderr_text())
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.output_tail());
        } else {
            let _ = std::fs::remove_file(&self.stdout_path);
            let _ = std::fs::remove_file(&self.stderr_path);
        }
    }
}

/// A thread held by [`Process::freeze_thread`]; released (it runs on) on drop. Drop it before
/// killing its process: a traced thread that dies waits for its tracer to reap it.
pub struct FrozenThread {
    tid: libc::pid_t,
    /// Not `Send`: ptrace answers only the thread that attached.
    _tracer: std::marker::PhantomData<*const ()>,
}

impl Drop for FrozenThread {
    fn drop(&mut self) {
        let none = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: as in `freeze_thread`. If the thread died meanwhile, detaching fails and
        // the wait reaps it, so its process can be reaped in turn.
        unsafe {
            if libc::ptrace(libc::PTRACE_DETACH, self.tid, none, none) != 0 {
                let mut status = 0;
                libc::waitpid(self.tid, &mut status, libc::__WALL | libc::WNOHANG);
            }
        }
    }
}

/// How a finished run of a program ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a program to its end; kills it and panics if it is still running after `deadline`.
pub fn run_to_exit(name: &str, program: &Path, args: &[&str], deadline: Duration) -> Finished {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let mut p = Process::spawn(name, program, &args);
    match p.wait_exit(deadline) {
        Some(status) => Finished {
            status,
            stdout: p.stdout_text(),
            stderr: p.stderr_text(),
        },
        None => panic!(
            "{name} {args:?} still running after {deadline:?}\n{}",
            p.output_tail()
        ),
    }
}

/// A server process listening on a leased loopback port, with its own working directory
/// (`--dir`) so whatever it writes (snapshots, AOF) stays out of the source tree; the
/// directory is removed on drop unless the test failed.
pub struct Server {
    process: Process,
    lease: PortLease,
    data_dir: PathBuf,
    /// How it was started, for [`Server::restart`].
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.process.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

impl Server {
    /// Starts `program` with the arguments `args(port)` on a leased port and waits until it
    /// answers PING; retries on another port if it reports "address already in use".
    fn start(name: &str, program: &Path, args: impl Fn(u16, &Path) -> Vec<OsString>) -> Server {
        let mut last_output = String::new();
        for _ in 0..START_ATTEMPTS {
            let lease = lease_port();
            let data_dir = std::env::temp_dir()
                .join("corekey-tests-data")
                .join(format!("{name}-{}-{:x}", std::process::id(), random_u64()));
            std::fs::create_dir_all(&data_dir).expect("creating the server's directory");
            let argv = args(lease.port(), &data_dir);
            let mut process = Process::spawn(name, program, &argv);
            let addr = SocketAddr::from(([127, 0, 0, 1], lease.port()));
            let ready = crate::wait::poll(START_DEADLINE, || {
                if process.exited().is_some() {
                    return Some(false);
                }
                answers_ping(addr).then_some(true)
            });
            match ready {
                // The PONG may have come from someone else if our process died meanwhile.
                Some(true) if process.exited().is_none() => {
                    return Server {
                        process,
                        lease,
                        data_dir,
                        name: name.to_string(),
                        program: program.to_path_buf(),
                        args: argv,
                    }
                }
                Some(_) => {
                    last_output = format!("{}{}", process.stdout_text(), process.stderr_text());
                    if last_output.to_ascii_lowercase().contains("already in use") {
                        let _ = std::fs::remove_dir_all(&data_dir);
                        continue;
                    }
                    panic!(
                        "{name} exited at start-up with {:?}\n{}",
                        process.exited(),
                        process.output_tail()
                    );
                }
                None => panic!(
                    "{name} did not answer PING on {addr} within {START_DEADLINE:?}\n{}",
                    process.output_tail()
                ),
            }
        }
        panic!("{name} found its port in use {START_ATTEMPTS} times; last output:\n{last_output}");
    }

    pub fn port(&self) -> u16 {
        self.lease.port()
    }

    /// The server's working directory (`--dir`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Kills the process (SIGKILL) if it still runs, starts it again with the same arguments,
    /// port and directory, and waits until it answers PING. A killed process's listening
    /// sockets can outlive it for a moment (io_uring tears its ring down asynchronously and the
    /// ring's pending accepts hold the sockets), so "address already in use" is retried on the
    /// same port until the start deadline.
    pub fn restart(&mut self) {
        self.process.kill();
        let addr = self.addr();
        let deadline = std::time::Instant::now() + START_DEADLINE;
        loop {
            let mut process = Process::spawn(&self.name, &self.program, &self.args);
            let ready = crate::wait::poll(START_DEADLINE, || {
                if process.exited().is_some() {
                    return Some(false);
                }
                answers_ping(addr).then_some(true)
            });
            if ready == Some(true) && process.exited().is_none() {
                self.process = process;
                return;
            }
            let output = format!("{}{}", process.stdout_text(), process.stderr_text());
            if output.to_ascii_lowercase().contains("already in use")
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            panic!(
                "{} did not come back on {addr} after a restart\n{}",
                self.name,
                process.output_tail()
            );
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port()))
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// A new client connection; panics (with the server's output) if it cannot connect.
    pub fn client(&self) -> Conn {
        Conn::connect(self.addr()).unwrap_or_else(|e| {
            panic!(
                "cannot connect to {}: {e}\n{}",
                self.addr(),
                self.process.output_tail()
            )
        })
    }

    /// Whether a new connection gets +PONG to PING.
    pub fn answers_ping(&self) -> bool {
        answers_ping(self.addr())
    }

    /// Sends SIGTERM without waiting.
    pub fn send_sigterm(&mut self) {
        self.process.signal(libc::SIGTERM);
    }

    /// Sends SIGTERM and waits for the process to exit: its status, or None at the deadline.
    pub fn terminate(&mut self, deadline: Duration) -> Option<ExitStatus> {
        self.send_sigterm();
        self.process.wait_exit(deadline)
    }
}

/// Whether a new connection to `addr` gets +PONG (or NOAUTH) to PING within a second.
pub fn answers_ping(addr: SocketAddr) -> bool {
    let Ok(mut c) = Conn::connect(addr) else {
        return false;
    };
    c.set_read_timeout(Duration::from_secs(1));
    // A node with `requirepass` answers NOAUTH: it is up all the same.
    matches!(c.try_call(&["PING"]), Ok(f) if f.raw == b"+PONG\r\n" || f.raw.starts_with(b"-NOAUTH"))
}

/// A running `corekey` with `--cores 2`, killed on drop.
pub struct Corekey(Server);

impl Corekey {
    /// The corekey binary: `COREKEY_BIN`, else `corekey` in the target directory this test
    /// binary was built into (`target/<profile>/deps/<test>` → `target/<profile>/corekey`).
    pub fn binary() -> PathBuf {
        if let Some(bin) = std::env::var_os("COREKEY_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in target/<profile>/deps");
        let bin = profile_dir.join("corekey");
        assert!(
            bin.is_file(),
            "corekey binary not found at {}: run `cargo build -p corekey-node` first (or set COREKEY_BIN)",
            bin.display()
        );
        bin
    }

    /// Starts `corekey --port P --bind 127.0.0.1 --cores 2 --dir <temp dir> <extra>` and waits
    /// until it answers.
    pub fn start(extra_args: &[&str]) -> Corekey {
        Self::start_inner(None, extra_args)
    }

    /// Same, with a config file as the first argument (flags after it override it).
    pub fn start_with_config_file(path: &Path, extra_args: &[&str]) -> Corekey {
        Self::start_inner(Some(path), extra_args)
    }

    fn start_inner(config_file: Option<&Path>, extra_args: &[&str]) -> Corekey {
        let bin = Self::binary();
        Corekey(Server::start("corekey", &bin, |port, dir| {
            let mut args: Vec<OsString> = config_file
                .map(|p| p.as_os_str().to_owned())
                .into_iter()
                .collect();
            args.extend(
                [
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cores",
                    "2",
                ]
                .map(OsString::from),
            );
            args.extend(["--dir".into(), dir.as_os_str().to_owned()]);
            args.extend(extra_args.iter().map(OsString::from));
            args
        }))
    }
}

impl std::ops::Deref for Corekey {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.0
    }
}

impl std::ops::DerefMut for Corekey {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.0
    }
}

/// A running `redis-server` (the reference for differential tests), killed on drop.
pub struct RedisServer(Server);

impl RedisServer {
    /// Starts `redis-server` without persistence. None (after printing a notice) when it is
    /// not installed outside CI; under `CI=true` a missing redis-server fails the test.
    pub fn start() -> Option<RedisServer> {
        Self::start_with(&[])
    }

    /// Same, with more configuration flags (`--hz 100`, …).
    pub fn start_with(extra_args: &[&str]) -> Option<RedisServer> {
        let bin = crate::require_tool("redis-server", "redis-server")?;
        Some(Self::start_program("redis-server", &bin, extra_args))
    }

    /// Starts a Valkey 8 server (valkey-server takes redis-server's flags) for the tests that
    /// check corekey against Valkey itself where redis 7.0 differs: `COREKEY_VALKEY_BIN`, else
    /// `valkey-server` in `PATH`. None (after printing a notice) when there is none, also under
    /// CI: Valkey 8 is not a package of the CI image, so these checks are for a developer's
    /// machine.
    pub fn start_valkey(extra_args: &[&str]) -> Option<RedisServer> {
        let bin = std::env::var_os("COREKEY_VALKEY_BIN")
            .map(PathBuf::from)
            .or_else(|| crate::find_in_path("valkey-server"));
        let Some(bin) = bin else {
            eprintln!(
                "SKIPPED: no Valkey server (set COREKEY_VALKEY_BIN or put valkey-server in PATH)"
            );
            return None;
        };
        Some(Self::start_program("valkey-server", &bin, extra_args))
    }

    fn start_program(name: &str, bin: &Path, extra_args: &[&str]) -> RedisServer {
        RedisServer(Server::start(name, bin, |port, dir| {
            let mut args = [
                "--port",
                &port.to_string(),
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
            .to_vec();
            args.extend(["--dir".into(), dir.as_os_str().to_owned()]);
            args.extend(extra_args.iter().map(OsString::from));
            args
        }))
    }
}

impl std::ops::Deref for RedisServer {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.0
    }
}

impl std::ops::DerefMut for RedisServer {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.0
    }
}
