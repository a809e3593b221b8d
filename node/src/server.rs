//! Starting and stopping a node: bind the listeners, start one pinned shard thread per core,
//! each with its own io_uring runtime, wait for SIGTERM/SIGINT (or SHUTDOWN), then let every
//! shard finish its in-flight replies and exit.

use crate::clients::ClientInfo;
use crate::config::Config;
use crate::net;
use crate::session::ClientSession;
use crate::shard::{build_mesh, unix_ms, MeshEnds, NodeShared, Shard};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Submission queue entries per shard ring.
const RING_ENTRIES: u32 = 1024;
/// Active expiry and client housekeeping run this often (Valkey's default `hz` of 10).
const CRON_PERIOD: Duration = Duration::from_millis(100);
/// Time an active expiry cycle may take per tick (25% of the period, as Valkey's slow cycle).
const EXPIRE_BUDGET: Duration = Duration::from_millis(25);
/// Longest a shutdown waits for clients to finish before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Which io_uring setup a shard got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingSetup {
    DeferTaskrun,
    CoopTaskrun,
    Plain,
}

type Runtime = monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>;

/// Builds a shard's runtime with `SINGLE_ISSUER | COOP_TASKRUN | DEFER_TASKRUN`, falling back
/// to `COOP_TASKRUN` (kernels before 6.1) and then to no flags.
fn build_runtime() -> std::io::Result<(Runtime, RingSetup)> {
    type Configure = fn(&mut io_uring::Builder);
    let attempts: [(RingSetup, Configure); 3] = [
        (RingSetup::DeferTaskrun, |b| {
            b.setup_single_issuer()
                .setup_coop_taskrun()
                .setup_defer_taskrun();
        }),
        (RingSetup::CoopTaskrun, |b| {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }),
        (RingSetup::Plain, |_| {}),
    ];
    let mut last_err = None;
    for (setup, configure) in attempts {
        let mut b = io_uring::IoUring::builder();
        configure(&mut b);
        match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(RING_ENTRIES)
            .uring_builder(b)
            .enable_timer()
            .build()
        {
            Ok(rt) => return Ok((rt, setup)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("io_uring setup failed")))
}

struct ShardStart {
    id: usize,
    cpu: usize,
    node: Arc<NodeShared>,
    config: Arc<Config>,
    mesh: MeshEnds,
    listeners: Vec<std::net::TcpListener>,
    /// The Prometheus endpoint's listeners (shard 0 serves them).
    metrics: Vec<std::net::TcpListener>,
    ready: mpsc::Sender<Result<RingSetup, String>>,
    cluster: Option<crate::cluster::ShardBoot>,
}

fn shard_thread(start: ShardStart) {
    let ShardStart {
        id,
        cpu,
        node,
        config,
        mesh,
        listeners,
        metrics,
        ready,
        cluster,
    } = start;
    if let Err(e) = monoio::utils::bind_to_cpu_set([cpu]) {
        tracing::warn!(shard = id, cpu, error = %e, "could not pin shard to its CPU");
    }
    let (mut rt, setup) = match build_runtime() {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(format!("shard {id}: io_uring unavailable: {e}")));
            return;
        }
    };
    let node2 = node.clone();
    rt.block_on(async move {
        let shard = Rc::new(Shard::new(id, node2, config, mesh));
        if let Some(boot) = cluster {
            crate::cluster::attach(&shard, boot);
        }
        crate::repl::boot(&shard);
        let canceller = monoio::io::Canceller::new();
        for l in listeners {
            let handle = canceller.handle();
            let shard = shard.clone();
            monoio::spawn(async move {
                let s2 = shard.clone();
                net::accept_loop(l, handle, move |stream, peer, local, fd| {
                    on_accept(&s2, stream, peer, local, fd)
                })
                .await;
            });
        }
        for l in metrics {
            let handle = canceller.handle();
            let shard = shard.clone();
            monoio::spawn(async move {
                net::accept_loop(l, handle, move |stream, _, _, _| {
                    let shard = shard.clone();
                    monoio::spawn(net::http::serve_one(stream, move |path| {
                        serve_http(shard, path)
                    }));
                })
                .await;
            });
        }
        *shard.accept_cancel.borrow_mut() = Some(canceller);
        monoio::spawn(cron(shard.clone()));
        monoio::spawn(shard.clone().flush_loop());
        let _ = ready.send(Ok(setup));
        shard.clone().inbox_loop().await;
    });
    // In-flight operations (the cancelled accepts) may still be held by the kernel; the
    // process is about to exit, so the runtime is not torn down.
    std::mem::forget(rt);
    node.shards_done.fetch_add(1, Ordering::SeqCst);
}

fn on_accept(
    shard: &Rc<Shard>,
    stream: monoio::net::TcpStream,
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    fd: i32,
) {
    let maxclients = shard.config.borrow().maxclients;
    let connected = shard.node.connections.fetch_add(1, Ordering::SeqCst) + 1;
    if connected as u64 > maxclients || shard.node.is_shutting_down() {
        shard.node.connections.fetch_sub(1, Ordering::SeqCst);
        shard.stats.borrow_mut().rejected_connections += 1;
        monoio::spawn(async move {
            use monoio::io::AsyncWriteRentExt;
            let mut stream = stream;
            let _ = stream
                .write_all(b"-ERR max number of clients reached\r\n".to_vec())
                .await;
        });
        return;
    }
    let id = shard.new_client_id();
    let info = Rc::new(ClientInfo::new(
        id,
        fmt_addr(peer),
        fmt_addr(local),
        fd,
        unix_ms(),
    ));
    let key = shard.clients.borrow_mut().insert(info.clone());
    shard.stats.borrow_mut().total_connections += 1;
    let shard = shard.clone();
    monoio::spawn(async move {
        let mut session = ClientSession::new(shard.clone(), info);
        net::drive(stream, &mut session).await;
        crate::commands::pubsub::forget_client(&shard, &session.state);
        crate::commands::diagnostics::stop_monitor(&shard, &session.state.info);
        let via = crate::commands::multi::Via::direct(&shard);
        crate::commands::transaction::unwatch_all(via, &mut session.state).await;
        shard.clients.borrow_mut().remove(key);
        shard.node.connections.fetch_sub(1, Ordering::SeqCst);
        if shard.node.is_shutting_down() {
            // Another shard may be waiting for the last client to leave.
            for w in &shard.node.wakes {
                w.kick();
            }
        }
    });
}

/// Answers an HTTP request on the metrics port: `/metrics` is the Prometheus text of every
/// shard's report, gathered through cross-shard calls as INFO gathers it.
async fn serve_http(shard: Rc<Shard>, path: String) -> net::http::Response {
    match path.as_str() {
        "/metrics" => {
            let via = crate::commands::multi::Via::direct(&shard);
            let mut reports = Vec::with_capacity(shard.shards());
            for t in 0..shard.shards() {
                reports.push(via.call(t, crate::commands::server::gather).await);
            }
            use crate::commands::server as S;
            let used_memory = S::used_memory();
            let (allocator_active, allocator_resident) = S::allocator_active_resident();
            let (cpu_sys, cpu_user) = S::rusage(libc::RUSAGE_SELF);
            let facts = crate::metrics::Facts {
                used_memory,
                rss: S::rss_bytes(),
                peak: note_memory_peak(used_memory),
                allocator_active,
                allocator_resident,
                total_system_memory: S::total_system_memory(),
                cpu_sys,
                cpu_user,
                now_ms: unix_ms(),
                replication: crate::repl::info::section(via).await,
            };
            let text = crate::metrics::render(&shard.config(), &shard.node, &reports, &facts);
            net::http::Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: text.into_bytes(),
            }
        }
        "/" => net::http::Response::text(200, "corekey: Prometheus metrics are at /metrics\n"),
        _ => net::http::Response::text(404, "not found: metrics are at /metrics\n"),
    }
}

/// `ip:port`, with brackets around IPv6 addresses (Valkey's format).
pub fn fmt_addr(a: std::net::SocketAddr) -> String {
    match a {
        std::net::SocketAddr::V4(v4) => format!("{}:{}", v4.ip(), v4.port()),
        std::net::SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// Periodic housekeeping: active expiry and idle-client timeouts.
async fn cron(shard: Rc<Shard>) {
    let mut ticks: u64 = 0;
    while !shard.node.is_shutting_down() {
        monoio::time::sleep(CRON_PERIOD).await;
        ticks += 1;
        shard.stats.borrow_mut().sample(unix_ms());
        // Not during a manual failover's write pause (Valkey's PAUSE_ACTIONS_EXPIRE): the
        // deletes would move the offset the replica was told to catch up to.
        if !shard.is_locked() && !crate::cluster::pause::paused(&shard.node) {
            active_expire(&shard);
        }
        if ticks.is_multiple_of(10) {
            client_timeouts(&shard);
        }
    }
}

fn active_expire(shard: &Shard) {
    let started = std::time::Instant::now();
    let now = unix_ms();
    let mut ks = shard.ks.borrow_mut();
    let mut out_of_time = || started.elapsed() >= EXPIRE_BUDGET;
    let mut capped = false;
    for db in ks.dbs.iter_mut() {
        if db.expires_len() == 0 {
            continue;
        }
        let report = db.active_expire(now, &mut out_of_time);
        if report.out_of_time {
            capped = true;
            break;
        }
    }
    drop(ks);
    let mut stats = shard.stats.borrow_mut();
    stats.expire_cycle_us += started.elapsed().as_micros() as u64;
    stats.expire_time_cap_reached += u64::from(capped);
}

fn client_timeouts(shard: &Shard) {
    let timeout_s = shard.config.borrow().timeout;
    if timeout_s == 0 {
        return;
    }
    let now = unix_ms();
    for (_, c) in shard.clients.borrow().iter() {
        if now - c.last_interaction_ms.get() > timeout_s as i64 * 1000 {
            tracing::debug!(client = c.id, "closing idle client");
            c.kill();
        }
    }
}

/// Called by each shard's inbox task when shutdown begins: stop accepting, and stop reading
/// from clients (a client in the middle of a batch still gets its replies).
pub fn begin_shard_shutdown(shard: &Shard) {
    if let Some(c) = shard.accept_cancel.borrow_mut().take() {
        c.cancel();
    }
    for (_, c) in shard.clients.borrow().iter() {
        // SAFETY: shutdown(2) on the client's descriptor; SHUT_RD lets the reply go out.
        unsafe { libc::shutdown(c.fd, libc::SHUT_RD) };
    }
}

/// Blocks SIGINT and SIGTERM in this thread (and the threads it starts), so that only the
/// main thread's `sigwait` sees them.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain signal-mask calls on a zeroed, initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Runs a node until it is told to stop; returns the process exit code.
pub fn run(config: Config) -> i32 {
    let shards = config.cores;
    let cpus = config.shard_cpus();
    let bound = match net::bind_all(&config.bind, config.port, shards) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("{e}");
            return 1;
        }
    };
    let metrics = if config.metrics_port == 0 {
        Vec::new()
    } else {
        match net::bind_all(&config.bind, config.metrics_port, 1) {
            Ok(b) => b.into_iter().flat_map(|b| b.per_shard).collect(),
            Err(e) => {
                let e = format!("metrics-port: {e}");
                tracing::error!("{e}");
                eprintln!("{e}");
                return 1;
            }
        }
    };
    let mut metrics = Some(metrics);
    if let Err(e) = std::env::set_current_dir(&config.dir) {
        eprintln!("Can't chdir to '{}': {e}", config.dir.display());
        return 1;
    }
    let node = match NodeShared::new(&config, shards) {
        Ok(n) => Arc::new(n),
        Err(e) => {
            eprintln!("Can't create eventfds: {e}");
            return 1;
        }
    };
    let mut cluster_boot = match crate::cluster::boot(&config, &node) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("{e}");
            return 1;
        }
    };
    let sigset = block_signals();
    let config = Arc::new(config);
    let mut per_shard: Vec<Vec<std::net::TcpListener>> = (0..shards).map(|_| Vec::new()).collect();
    let addrs: Vec<String> = bound.iter().map(|b| fmt_addr(b.addr)).collect();
    for b in bound {
        for (i, l) in b.per_shard.into_iter().enumerate() {
            per_shard[i].push(l);
        }
    }
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut threads = Vec::with_capacity(shards);
    for (id, (mesh, listeners)) in build_mesh(shards).into_iter().zip(per_shard).enumerate() {
        let start = ShardStart {
            id,
            cpu: cpus[id],
            node: node.clone(),
            config: config.clone(),
            mesh,
            listeners,
            // Shard 0 serves the metrics port.
            metrics: metrics.take().unwrap_or_default(),
            ready: ready_tx.clone(),
            cluster: cluster_boot[id].take(),
        };
        match std::thread::Builder::new()
            .name(format!("shard-{id}"))
            .spawn(move || shard_thread(start))
        {
            Ok(t) => threads.push(t),
            Err(e) => {
                eprintln!("Can't start shard {id}: {e}");
                return 1;
            }
        }
    }
    drop(ready_tx);
    let mut setups = Vec::new();
    for _ in 0..shards {
        match ready_rx.recv() {
            Ok(Ok(s)) => setups.push(s),
            Ok(Err(e)) => {
                eprintln!("{e}");
                return 1;
            }
            Err(_) => {
                eprintln!("a shard failed to start");
                return 1;
            }
        }
    }
    tracing::info!(
        pid = std::process::id(),
        shards,
        cpus = ?cpus,
        io_uring = ?setups[0],
        listen = ?addrs,
        "corekey {} ready to accept connections tcp",
        env!("CARGO_PKG_VERSION")
    );
    MEMORY_STARTUP.store(crate::commands::server::used_memory(), Ordering::Relaxed);
    crate::systemd_notify("READY=1");
    // Wait for SIGINT/SIGTERM (SHUTDOWN sends SIGTERM to this process).
    let mut sig: libc::c_int = 0;
    // SAFETY: sigwait on the set blocked above; writes the signal number into `sig`.
    unsafe { libc::sigwait(&sigset, &mut sig) };
    tracing::info!(
        signal = sig,
        "received signal, shutting down: finishing in-flight replies"
    );
    crate::systemd_notify("STOPPING=1");
    node.request_shutdown();
    let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
    while node.shards_done.load(Ordering::SeqCst) < shards && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if node.shards_done.load(Ordering::SeqCst) < shards {
        tracing::warn!("clients did not finish within the grace period; exiting");
    } else {
        for t in threads {
            let _ = t.join();
        }
    }
    tracing::info!("corekey is now ready to exit, bye bye...");
    node.exit_code.load(Ordering::SeqCst) as i32
}

type LogReload = Box<dyn Fn(&str) + Send + Sync>;
static LOG_RELOAD: std::sync::OnceLock<LogReload> = std::sync::OnceLock::new();
static MEMORY_PEAK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Allocated bytes once every shard was up (INFO `used_memory_startup`).
static MEMORY_STARTUP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Allocated bytes once every shard was up.
pub fn memory_startup() -> u64 {
    MEMORY_STARTUP.load(Ordering::Relaxed)
}

/// Sets up `tracing` output at `loglevel`: to `logfile` (appended to) or, when it is empty,
/// standard output, as Valkey logs by default; as human-readable lines, or with `log-format
/// json` one JSON object per line for log shippers. Colours only on a terminal.
pub fn init_logging(config: &Config) -> Result<(), String> {
    use std::io::IsTerminal;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    use tracing_subscriber::prelude::*;
    let (writer, ansi) = if config.logfile.is_empty() {
        (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
        )
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.logfile)
            .map_err(|e| format!("Can't open the log file '{}': {e}", config.logfile))?;
        (BoxMakeWriter::new(Arc::new(file)), false)
    };
    let (filter, handle) = tracing_subscriber::reload::Layer::new(
        tracing_subscriber::EnvFilter::new(config.loglevel.filter()),
    );
    let json = config.log_format == crate::config::LogFormat::Json;
    let (legacy_writer, json_writer) = if json {
        (None, Some(writer))
    } else {
        (Some(writer), None)
    };
    let legacy = legacy_writer.map(|w| {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_thread_names(true)
            .with_ansi(ansi)
            .with_writer(w)
    });
    let json = json_writer.map(|w| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_target(false)
            .with_thread_names(true)
            .with_ansi(false)
            .with_writer(w)
    });
    if tracing_subscriber::registry()
        .with(filter)
        .with(legacy)
        .with(json)
        .try_init()
        .is_ok()
    {
        let _ = LOG_RELOAD.set(Box::new(move |f: &str| {
            let _ = handle.modify(|x| *x = tracing_subscriber::EnvFilter::new(f));
        }));
    }
    Ok(())
}

/// Changes the log level at run time (CONFIG SET loglevel).
pub fn set_log_level(level: crate::config::LogLevel) {
    if let Some(reload) = LOG_RELOAD.get() {
        reload(level.filter());
    }
}

/// Records `used` as a memory peak candidate; returns the peak so far.
pub fn note_memory_peak(used: u64) -> u64 {
    MEMORY_PEAK.fetch_max(used, Ordering::Relaxed).max(used)
}
