//! Shards: one pinned thread per core, each with its own monoio (io_uring) runtime, keyspace,
//! clients and statistics; and the mesh of queues between them, the only path across cores.
//!
//! A shard's state is `!Send` (`Rc`, `RefCell`); other shards reach it only by sending a
//! [`Msg`] through the bounded SPSC rings of `ring.rs`. A message owns everything it carries
//! (boxed closures that capture owned data, boxed results), so no pointer into one shard ever
//! reaches another.
//!
//! The inbox task. Each shard runs one task that drains its incoming rings, runs the calls it
//! finds and hands results to the tasks waiting for them. When the rings are empty it marks
//! itself sleeping and waits on an eventfd through io_uring; a producer writes that eventfd
//! only when it sees the sleeping mark, so a busy shard is never woken per message; and a
//! producer does not push per message either: what its tasks send during one loop iteration
//! waits in a per-target outbox that one flusher task moves into the rings, with at most one
//! wake-up per target per iteration (`Shard::flush_loop`). When work
//! remains after a bounded drain, the task wakes itself through the same eventfd rather than
//! yielding: with DEFER_TASKRUN, completions (network reads) are only reaped when the runtime
//! parks, and a task that yields forever would starve them.
//!
//! Shard-ordered transactions (`txn.rs`) lock a set of shards in ascending order so that a
//! multi-key command spanning shards is atomic, as in Valkey.

pub mod block;
pub mod latency;
pub mod ring;
pub mod stats;
pub mod txn;

use crate::clients::ClientInfo;
use crate::config::Config;
use crate::keyspace::Keyspace;
use ring::{Consumer, Producer};
use slab::Slab;
use stats::Stats;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, Waker};
pub use txn::{Txn, TxnId};

/// Messages one ring holds; beyond that the producer keeps them in its outbox.
pub const RING_CAPACITY: usize = 1024;
/// Most messages taken from one source ring per drain pass, so one busy peer cannot starve
/// the others or this shard's own connections.
const DRAIN_PER_RING: usize = 256;

/// A closure run on another shard; its result travels back boxed.
pub type Job = Box<dyn FnOnce(&Shard) -> Box<dyn Any + Send> + Send>;

/// What travels between shards.
pub enum Msg {
    /// Run `job` here (respecting the shard lock), send the result back to `from`.
    Call {
        from: usize,
        ticket: usize,
        txn: Option<TxnId>,
        acquire: bool,
        job: Job,
    },
    /// The result of a call this shard made.
    Done {
        ticket: usize,
        result: Box<dyn Any + Send>,
    },
    /// The transaction `txn` is over: unlock.
    Release { txn: TxnId },
    /// Run `job` here, whatever lock is held, and answer nothing. Posts never touch the
    /// keyspace: they wake a blocked client or deliver a message to a connection.
    Post { job: PostJob },
}

/// A fire-and-forget job for another shard (see [`Msg::Post`]).
pub type PostJob = Box<dyn FnOnce(&Shard) + Send>;

/// How one shard is woken: an eventfd, written only when the shard says it is asleep.
pub struct ShardWake {
    efd: OwnedFd,
    sleeping: AtomicBool,
}

impl ShardWake {
    fn new() -> std::io::Result<ShardWake> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that we own.
        Ok(ShardWake {
            efd: unsafe { OwnedFd::from_raw_fd(fd) },
            sleeping: AtomicBool::new(false),
        })
    }

    /// Wakes the shard if it sleeps (after a message was pushed to it).
    pub fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
            self.kick();
        }
    }

    /// Writes the eventfd unconditionally.
    pub fn kick(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd; a full counter (EAGAIN) only
        // means the shard is already due to wake.
        unsafe { libc::write(self.efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// What every shard of the node shares: fixed facts and a few counters touched only when a
/// client connects or leaves, never per request.
pub struct NodeShared {
    pub shards: usize,
    pub wakes: Vec<ShardWake>,
    pub shutdown: AtomicBool,
    /// Connected clients on all shards (for `maxclients`).
    pub connections: AtomicUsize,
    /// Shards whose runtime has finished.
    pub shards_done: AtomicUsize,
    pub start_unix_ms: i64,
    pub start: std::time::Instant,
    pub run_id: String,
    pub executable: String,
    pub tcp_port: u16,
    /// Client ids are unique per node: shard `s` hands out `s + 1 + k * shards`.
    pub next_client_hint: AtomicU64,
    /// The latest configuration, for threads that are not shards (logging reload).
    pub config: RwLock<Arc<Config>>,
    /// Set by SHUTDOWN to the exit code wanted.
    pub exit_code: AtomicUsize,
    /// Clients with watched keys (INFO `watching_clients`); while there are none, writes
    /// across shards skip marking their keys.
    pub watching_clients: AtomicUsize,
    /// MONITOR clients on each shard, and on all: while there are none, commands skip
    /// formatting their monitor line (one relaxed load per command).
    pub monitors: Vec<AtomicUsize>,
    pub monitors_total: AtomicUsize,
    /// The id of the next SLOWLOG entry (node-wide, so entries of all shards sort by it).
    pub slowlog_next_id: AtomicU64,
    /// The node's replication identity and offsets (`crate::repl`).
    pub repl: crate::repl::NodeRepl,
    /// Manual failover: client writes wait until this bus-clock ms (0: no pause), see
    /// `crate::cluster::pause`.
    pub write_pause_until_ms: AtomicU64,
}

impl NodeShared {
    pub fn new(config: &Config, shards: usize) -> std::io::Result<NodeShared> {
        let wakes = (0..shards)
            .map(|_| ShardWake::new())
            .collect::<std::io::Result<_>>()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Ok(NodeShared {
            shards,
            wakes,
            shutdown: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            shards_done: AtomicUsize::new(0),
            start_unix_ms: now,
            start: std::time::Instant::now(),
            run_id: random_hex40(),
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            tcp_port: config.port,
            next_client_hint: AtomicU64::new(0),
            config: RwLock::new(Arc::new(config.clone())),
            exit_code: AtomicUsize::new(0),
            watching_clients: AtomicUsize::new(0),
            monitors: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
            monitors_total: AtomicUsize::new(0),
            slowlog_next_id: AtomicU64::new(0),
            repl: crate::repl::NodeRepl::new(shards),
            write_pause_until_ms: AtomicU64::new(0),
        })
    }

    /// Asks every shard to stop: they stop accepting, finish in-flight replies and exit.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for w in &self.wakes {
            w.kick();
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }
}

/// 40 random hex characters (run id), from the kernel's random source.
pub fn random_hex40() -> String {
    let mut b = [0u8; 20];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = t.as_nanos() as u64 ^ u64::from(std::process::id());
        for (i, x) in b.iter_mut().enumerate() {
            *x = (seed.rotate_left(i as u32 * 7) >> 8) as u8;
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One entry of the lock queue (see [`Shard::turn`]).
enum Queued {
    Remote(Msg),
    Local(usize),
}

/// A local task waiting for its turn: the turn's id once granted, its waker, and whether
/// the task stopped waiting.
#[derive(Default)]
struct LocalWait {
    granted: Option<TxnId>,
    waker: Option<Waker>,
    gone: bool,
}

enum Pending {
    Waiting(Option<Waker>),
    Ready(Box<dyn Any + Send>),
    /// The waiting future was dropped; discard the result when it comes.
    Abandoned,
}

/// The endpoints of the mesh that one shard owns.
pub struct MeshEnds {
    pub to: Vec<Option<Producer<Msg>>>,
    pub from: Vec<Option<Consumer<Msg>>>,
}

/// Builds the full mesh for `n` shards: a ring for every ordered pair.
pub fn build_mesh(n: usize) -> Vec<MeshEnds> {
    let mut ends: Vec<MeshEnds> = (0..n)
        .map(|_| MeshEnds {
            to: (0..n).map(|_| None).collect(),
            from: (0..n).map(|_| None).collect(),
        })
        .collect();
    for a in 0..n {
        for b in 0..n {
            if a != b {
                let (p, c) = ring::ring(RING_CAPACITY);
                ends[a].to[b] = Some(p);
                ends[b].from[a] = Some(c);
            }
        }
    }
    ends
}

/// One shard's state. Lives in an `Rc` on its own thread.
pub struct Shard {
    pub id: usize,
    pub node: Arc<NodeShared>,
    pub ks: RefCell<Keyspace>,
    pub stats: RefCell<Stats>,
    pub clients: RefCell<Slab<Rc<ClientInfo>>>,
    pub config: RefCell<Arc<Config>>,
    to: RefCell<Vec<Option<Producer<Msg>>>>,
    from: RefCell<Vec<Option<Consumer<Msg>>>>,
    /// Messages sent this loop iteration, per target, until the flusher moves them into the
    /// rings (also holds what a full ring refused; order per target is kept).
    outbox: RefCell<Vec<VecDeque<Msg>>>,
    /// Whether the outbox has messages the flusher has not yet seen.
    flush_due: Cell<bool>,
    /// The flusher task, while it waits for `flush_due`.
    flusher: Cell<Option<Waker>>,
    pending: RefCell<Slab<Pending>>,
    /// Posts this shard made to itself, run by the inbox task.
    self_posts: RefCell<VecDeque<PostJob>>,
    /// Clients blocked on keys of this shard (BLPOP and friends).
    pub blocked: RefCell<block::BlockTable>,
    /// Pub/Sub subscriptions of this shard's clients.
    pub pubsub: RefCell<crate::pubsub::Registry>,
    /// This shard's MONITOR clients.
    pub monitors: RefCell<Vec<Rc<ClientInfo>>>,
    /// This shard's latency monitor events and slow log entries.
    pub latency_monitor: RefCell<latency::LatencyMonitor>,
    pub slowlog: RefCell<latency::SlowLog>,
    /// Wake-ups for this shard's clients blocked on keys of several shards.
    wakes: RefCell<Slab<WakeSlot>>,
    /// The transaction holding this shard, or the turn of a local task that waited for it.
    lock: Cell<Option<TxnId>>,
    /// What waits for the lock, remote calls and local tasks alike, in arrival order.
    queue: RefCell<VecDeque<Queued>>,
    /// The local tasks in `queue`.
    local_waits: RefCell<Slab<LocalWait>>,
    next_txn: Cell<u64>,
    next_client: Cell<u64>,
    /// Cancels the accept loops at shutdown.
    pub accept_cancel: RefCell<Option<monoio::io::Canceller>>,
    /// Cluster mode: this shard's topology snapshot (and on shard 0 the bus driver).
    pub cluster: crate::cluster::ShardCluster,
    /// This shard's replication streams (`crate::repl`).
    pub repl: crate::repl::ShardRepl,
}

impl Shard {
    pub fn new(id: usize, node: Arc<NodeShared>, config: Arc<Config>, mesh: MeshEnds) -> Shard {
        let shards = node.shards;
        Shard {
            id,
            ks: RefCell::new({
                let mut ks = Keyspace::new(id, shards, config.databases);
                ks.limits = config.encoding;
                ks
            }),
            stats: RefCell::new(Stats::new()),
            clients: RefCell::new(Slab::new()),
            config: RefCell::new(config),
            to: RefCell::new(mesh.to),
            from: RefCell::new(mesh.from),
            outbox: RefCell::new((0..shards).map(|_| VecDeque::new()).collect()),
            flush_due: Cell::new(false),
            flusher: Cell::new(None),
            pending: RefCell::new(Slab::new()),
            self_posts: RefCell::new(VecDeque::new()),
            blocked: RefCell::new(block::BlockTable::default()),
            pubsub: RefCell::new(Default::default()),
            monitors: RefCell::new(Vec::new()),
            latency_monitor: RefCell::new(Default::default()),
            slowlog: RefCell::new(Default::default()),
            wakes: RefCell::new(Slab::new()),
            lock: Cell::new(None),
            queue: RefCell::new(VecDeque::new()),
            local_waits: RefCell::new(Slab::new()),
            next_txn: Cell::new(0),
            next_client: Cell::new(0),
            accept_cancel: RefCell::new(None),
            cluster: crate::cluster::ShardCluster::default(),
            repl: crate::repl::ShardRepl::default(),
            node,
        }
    }

    pub fn shards(&self) -> usize {
        self.node.shards
    }

    /// The shard that owns `slot`.
    pub fn shard_of_slot(&self, slot: u16) -> usize {
        usize::from(slot) % self.node.shards
    }

    /// The shard that owns `key`.
    pub fn shard_of_key(&self, key: &[u8]) -> usize {
        self.shard_of_slot(corekey_bus::key_slot(key).get())
    }

    /// A node-unique client id.
    pub fn new_client_id(&self) -> u64 {
        let k = self.next_client.get();
        self.next_client.set(k + 1);
        self.id as u64 + 1 + k * self.node.shards as u64
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// Sends `msg` to shard `target`: queued in the outbox and pushed into the ring, with at
    /// most one wake-up per target, by the flusher later in this loop iteration (never blocks;
    /// order per target is kept).
    fn send(&self, target: usize, msg: Msg) {
        assert_ne!(target, self.id, "a shard never messages itself");
        self.outbox.borrow_mut()[target].push_back(msg);
        if !self.flush_due.replace(true) {
            if let Some(w) = self.flusher.take() {
                w.wake();
            }
        }
    }

    /// Messages waiting to reach each other shard: in its ring and in the local outbox
    /// (0 for this shard itself).
    pub fn queue_depths(&self) -> Vec<usize> {
        let to = self.to.borrow();
        let outbox = self.outbox.borrow();
        to.iter()
            .zip(outbox.iter())
            .map(|(p, q)| p.as_ref().map_or(0, |p| p.len()) + q.len())
            .collect()
    }

    /// The outbox flusher task: once per loop iteration in which something was sent, moves
    /// every target's queued messages into its ring and wakes each target (if it sleeps) once
    /// for the whole batch. It runs after the tasks that were ready when the first message of
    /// the batch was queued (monoio runs ready tasks in order), so all the hops that the
    /// connections read in one completion batch travel together. Never returns; the runtime
    /// is dropped without polling it at shutdown.
    pub async fn flush_loop(self: Rc<Self>) {
        loop {
            std::future::poll_fn(|cx| {
                if self.flush_due.get() {
                    Poll::Ready(())
                } else {
                    self.flusher.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            })
            .await;
            self.flush_due.set(false);
            if self.flush_outbox() {
                // A ring is full: the inbox task retries on every pass; make sure it runs.
                self.node.wakes[self.id].kick();
            }
        }
    }

    /// Moves queued messages into the rings and wakes each target that got some (once);
    /// returns whether any remain (a full ring).
    fn flush_outbox(&self) -> bool {
        let mut outbox = self.outbox.borrow_mut();
        let mut to = self.to.borrow_mut();
        let mut left = false;
        for (target, queue) in outbox.iter_mut().enumerate() {
            let mut pushed = false;
            while let Some(msg) = queue.pop_front() {
                let Some(p) = to[target].as_mut() else { break };
                match p.push(msg) {
                    Ok(()) => pushed = true,
                    Err(msg) => {
                        queue.push_front(msg);
                        break;
                    }
                }
            }
            if pushed {
                self.node.wakes[target].wake();
            }
            left |= !queue.is_empty();
        }
        left
    }

    /// Runs `f` on shard `target` and returns its result. On this shard it runs at once
    /// (after any transaction that holds this shard has finished).
    pub async fn call<R, F>(self: &Rc<Self>, target: usize, f: F) -> R
    where
        F: FnOnce(&Shard) -> R + Send + 'static,
        R: Send + 'static,
    {
        if target == self.id {
            let _turn = self.turn().await;
            let r = f(self);
            // What the job wrote replicates before anything after it.
            crate::repl::drain(self);
            return r;
        }
        self.call_remote(target, None, false, f).await
    }

    async fn call_remote<R, F>(
        self: &Rc<Self>,
        target: usize,
        txn: Option<TxnId>,
        acquire: bool,
        f: F,
    ) -> R
    where
        F: FnOnce(&Shard) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.start_remote(target, txn, acquire, f).await
    }

    /// Sends `f` to the other shard `target` now and returns a future of its result, so that
    /// calls to several shards travel at once.
    pub fn start_call<R, F>(
        self: &Rc<Self>,
        target: usize,
        f: F,
    ) -> impl Future<Output = R> + use<R, F>
    where
        F: FnOnce(&Shard) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.start_remote(target, None, false, f)
    }

    fn start_remote<R, F>(
        self: &Rc<Self>,
        target: usize,
        txn: Option<TxnId>,
        acquire: bool,
        f: F,
    ) -> impl Future<Output = R> + use<R, F>
    where
        F: FnOnce(&Shard) -> R + Send + 'static,
        R: Send + 'static,
    {
        let ticket = self.pending.borrow_mut().insert(Pending::Waiting(None));
        let job: Job = Box::new(move |s: &Shard| Box::new(f(s)) as Box<dyn Any + Send>);
        self.send(
            target,
            Msg::Call {
                from: self.id,
                ticket,
                txn,
                acquire,
                job,
            },
        );
        let fut = CallFuture {
            shard: self.clone(),
            ticket,
            done: false,
        };
        async move {
            match fut.await.downcast::<R>() {
                Ok(r) => *r,
                Err(_) => unreachable!("a call's result has the type its closure returns"),
            }
        }
    }

    /// Waits until this shard is free for a local step and holds it for the returned
    /// [`Turn`]. Local tasks and remote calls get the shard in arrival order: when a
    /// transaction releases it, the next in the queue gets it, before anything that arrives
    /// later (so a stream of remote transactions cannot starve this shard's own clients).
    /// Hold the turn only across synchronous work.
    pub async fn turn(&self) -> Turn<'_> {
        if self.lock.get().is_none() {
            return Turn {
                shard: self,
                id: None,
            };
        }
        let key = self.local_waits.borrow_mut().insert(LocalWait::default());
        self.queue.borrow_mut().push_back(Queued::Local(key));
        let id = GrantFuture {
            shard: self,
            key,
            taken: false,
        }
        .await;
        Turn {
            shard: self,
            id: Some(id),
        }
    }

    /// Whether a transaction holds this shard.
    pub fn is_locked(&self) -> bool {
        self.lock.get().is_some()
    }

    fn new_txn_id(&self) -> TxnId {
        let n = self.next_txn.get();
        self.next_txn.set(n + 1);
        TxnId {
            shard: self.id as u32,
            seq: n,
        }
    }

    fn release_local(&self, txn: TxnId) {
        if self.lock.get() != Some(txn) {
            // A coordinator dropped while its acquire still waited here: that acquire must
            // never take the lock (nothing would release it). Its result was abandoned.
            let mut gone = Vec::new();
            self.queue.borrow_mut().retain_mut(|q| match q {
                Queued::Remote(Msg::Call {
                    from,
                    ticket,
                    txn: Some(t),
                    ..
                }) if *t == txn => {
                    gone.push((*from, *ticket));
                    false
                }
                _ => true,
            });
            for (from, ticket) in gone {
                self.send(
                    from,
                    Msg::Done {
                        ticket,
                        result: Box::new(()),
                    },
                );
            }
            return;
        }
        self.lock.set(None);
        // Serve what waited, in arrival order, until one of them holds the lock again.
        loop {
            if self.lock.get().is_some() {
                break;
            }
            let Some(next) = self.queue.borrow_mut().pop_front() else {
                break;
            };
            match next {
                Queued::Remote(msg) => self.handle(msg),
                Queued::Local(key) => {
                    let mut waits = self.local_waits.borrow_mut();
                    if waits[key].gone {
                        waits.remove(key);
                        continue;
                    }
                    let id = self.new_txn_id();
                    self.lock.set(Some(id));
                    waits[key].granted = Some(id);
                    if let Some(w) = waits[key].waker.take() {
                        w.wake();
                    }
                }
            }
        }
        if self.lock.get().is_none() {
            // What the transaction pushed may serve blocked clients now that it is over.
            block::serve_ready(self);
        }
    }

    /// Handles one incoming message.
    fn handle(&self, msg: Msg) {
        match msg {
            Msg::Call {
                from,
                ticket,
                txn,
                acquire,
                job,
            } => {
                let runnable = match self.lock.get() {
                    None => true,
                    Some(held) => Some(held) == txn,
                };
                if !runnable {
                    self.queue.borrow_mut().push_back(Queued::Remote(Msg::Call {
                        from,
                        ticket,
                        txn,
                        acquire,
                        job,
                    }));
                    return;
                }
                if acquire {
                    self.lock.set(txn);
                }
                let result = job(self);
                // What the job wrote replicates before anything after it.
                crate::repl::drain(self);
                self.send(from, Msg::Done { ticket, result });
            }
            Msg::Done { ticket, result } => {
                let mut pending = self.pending.borrow_mut();
                let Some(slot) = pending.get_mut(ticket) else {
                    return;
                };
                match std::mem::replace(slot, Pending::Ready(result)) {
                    Pending::Waiting(Some(w)) => w.wake(),
                    Pending::Waiting(None) => {}
                    Pending::Abandoned => {
                        pending.remove(ticket);
                    }
                    Pending::Ready(_) => unreachable!("a ticket completes once"),
                }
            }
            Msg::Release { txn } => self.release_local(txn),
            Msg::Post { job } => job(self),
        }
    }

    /// Runs `job` on shard `target` without waiting for it (see [`Msg::Post`]).
    pub fn post(&self, target: usize, job: PostJob) {
        if target == self.id {
            self.self_posts.borrow_mut().push_back(job);
            self.node.wakes[self.id].wake();
        } else {
            self.send(target, Msg::Post { job });
        }
    }

    /// A ticket for a result another shard will deliver later with [`Shard::complete`]
    /// (a blocked command's reply), and the future that receives it.
    pub fn new_ticket(self: &Rc<Self>) -> (usize, Ticket) {
        let ticket = self.pending.borrow_mut().insert(Pending::Waiting(None));
        (
            ticket,
            Ticket(CallFuture {
                shard: self.clone(),
                ticket,
                done: false,
            }),
        )
    }

    /// Delivers `result` for `ticket` of shard `home`.
    pub fn complete(&self, home: usize, ticket: usize, result: Box<dyn Any + Send>) {
        if home == self.id {
            self.handle(Msg::Done { ticket, result });
        } else {
            self.send(home, Msg::Done { ticket, result });
        }
    }

    /// A wake-up slot for a client blocked on keys of several shards.
    pub fn new_wake(self: &Rc<Self>) -> Wake {
        let id = self.wakes.borrow_mut().insert(WakeSlot::default());
        Wake {
            shard: self.clone(),
            id,
        }
    }

    /// Wakes slot `id` (a key it waits on may be ready); a gone slot is ignored.
    pub fn wake_slot(&self, id: usize) {
        if let Some(w) = self.wakes.borrow_mut().get_mut(id) {
            w.woken = true;
            if let Some(waker) = w.waker.take() {
                waker.wake();
            }
        }
    }

    /// Drains the incoming rings (bounded per ring); returns how many messages it handled.
    fn drain_inbox(&self) -> usize {
        let mut handled = 0;
        // Bounded by what was queued when the drain began.
        let queued = self.self_posts.borrow().len();
        for _ in 0..queued {
            let Some(job) = self.self_posts.borrow_mut().pop_front() else {
                break;
            };
            job(self);
            handled += 1;
        }
        for src in 0..self.node.shards {
            for _ in 0..DRAIN_PER_RING {
                let msg = {
                    let mut from = self.from.borrow_mut();
                    match from[src].as_mut().and_then(Consumer::pop) {
                        Some(m) => m,
                        None => break,
                    }
                };
                self.handle(msg);
                handled += 1;
            }
        }
        handled
    }

    fn inbox_has_items(&self) -> bool {
        !self.self_posts.borrow().is_empty()
            || self.from.borrow().iter().flatten().any(Consumer::has_items)
    }

    /// The inbox task; see the module documentation. Returns at shutdown, once no client is
    /// connected to any shard (so no shard still needs this one).
    pub async fn inbox_loop(self: Rc<Self>) {
        let wake = &self.node.wakes[self.id];
        // SAFETY: dup gives a new descriptor for the same eventfd, owned by the File below.
        let dup = unsafe { libc::dup(wake.efd.as_raw_fd()) };
        assert!(
            dup >= 0,
            "dup(eventfd) failed: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: dup is a fresh descriptor we own.
        let efd = monoio::fs::File::from_std(unsafe { std::fs::File::from_raw_fd(dup) })
            .expect("eventfd into the runtime");
        let mut buf: Vec<u8> = Vec::with_capacity(8);
        let mut shutdown_started = false;
        loop {
            self.drain_inbox();
            let spilled = self.flush_outbox();
            if self.node.is_shutting_down() {
                if !shutdown_started {
                    shutdown_started = true;
                    crate::server::begin_shard_shutdown(&self);
                }
                if self.node.connections.load(Ordering::SeqCst) == 0 && !spilled {
                    break;
                }
            }
            wake.sleeping.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if spilled
                || self.inbox_has_items()
                || (shutdown_started && self.node.connections.load(Ordering::SeqCst) > 0)
            {
                wake.sleeping.store(false, Ordering::SeqCst);
                if shutdown_started {
                    // Poll gently while other shards finish their clients.
                    monoio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                }
                wake.kick();
            }
            let (res, b) = efd.read_at(buf, 0).await;
            buf = b;
            buf.clear();
            if let Err(e) = res {
                tracing::warn!(shard = self.id, error = %e, "eventfd read failed");
            }
            wake.sleeping.store(false, Ordering::SeqCst);
        }
    }

    /// The current Unix time in milliseconds (the shard driver reads the clock; logic is
    /// given the value).
    pub fn now_ms(&self) -> i64 {
        unix_ms()
    }
}

/// Wall-clock Unix milliseconds.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct CallFuture {
    shard: Rc<Shard>,
    ticket: usize,
    done: bool,
}

impl Future for CallFuture {
    type Output = Box<dyn Any + Send>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut pending = self.shard.pending.borrow_mut();
        let ticket = self.ticket;
        match pending.get_mut(ticket) {
            Some(Pending::Ready(_)) => {
                let Pending::Ready(r) = pending.remove(ticket) else {
                    unreachable!()
                };
                drop(pending);
                self.done = true;
                Poll::Ready(r)
            }
            Some(Pending::Waiting(w)) => {
                *w = Some(cx.waker().clone());
                Poll::Pending
            }
            _ => unreachable!("a live call future owns its ticket"),
        }
    }
}

impl Drop for CallFuture {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut pending = self.shard.pending.borrow_mut();
        if let Some(slot) = pending.get_mut(self.ticket) {
            if matches!(slot, Pending::Ready(_)) {
                pending.remove(self.ticket);
            } else {
                *slot = Pending::Abandoned;
            }
        }
    }
}

/// This shard held for a local step (see [`Shard::turn`]); released on drop.
pub struct Turn<'a> {
    shard: &'a Shard,
    /// The lock id when the task had to wait (the lock was handed to it); `None` when the
    /// shard was free and nothing runs until the task awaits.
    id: Option<TxnId>,
}

impl Turn<'_> {
    /// Turns this turn into the lock of transaction `txn` (which releases it).
    pub fn into_lock(mut self, txn: TxnId) {
        self.id = None;
        self.shard.lock.set(Some(txn));
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.shard.release_local(id);
        }
    }
}

/// Resolves when the lock is handed to a queued local task; gives it back if dropped after.
struct GrantFuture<'a> {
    shard: &'a Shard,
    key: usize,
    taken: bool,
}

impl Future for GrantFuture<'_> {
    type Output = TxnId;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TxnId> {
        let mut waits = self.shard.local_waits.borrow_mut();
        let w = &mut waits[self.key];
        match w.granted {
            Some(id) => {
                waits.remove(self.key);
                drop(waits);
                self.taken = true;
                Poll::Ready(id)
            }
            None => {
                w.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for GrantFuture<'_> {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        let granted = {
            let mut waits = self.shard.local_waits.borrow_mut();
            match waits[self.key].granted {
                Some(id) => {
                    waits.remove(self.key);
                    Some(id)
                }
                None => {
                    waits[self.key].gone = true;
                    None
                }
            }
        };
        if let Some(id) = granted {
            self.shard.release_local(id);
        }
    }
}

/// The future of a [`Shard::new_ticket`] result. Dropping it before the result came is only
/// right when no result will come ([`Ticket::discard`]); otherwise the result is dropped on
/// arrival.
pub struct Ticket(CallFuture);

impl Ticket {
    /// Gives up a ticket whose result will never be sent.
    pub fn discard(&mut self) {
        if !self.0.done {
            self.0.shard.pending.borrow_mut().try_remove(self.0.ticket);
            self.0.done = true;
        }
    }
}

impl Future for Ticket {
    type Output = Box<dyn Any + Send>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

#[derive(Default)]
struct WakeSlot {
    woken: bool,
    waker: Option<Waker>,
}

/// A wake-up slot (see [`Shard::new_wake`]); freed on drop.
pub struct Wake {
    shard: Rc<Shard>,
    id: usize,
}

impl Wake {
    pub fn id(&self) -> usize {
        self.id
    }

    /// Resolves once the slot was woken since the last call.
    pub async fn woken(&self) {
        std::future::poll_fn(|cx| {
            let mut wakes = self.shard.wakes.borrow_mut();
            let Some(w) = wakes.get_mut(self.id) else {
                return Poll::Ready(());
            };
            if w.woken {
                w.woken = false;
                Poll::Ready(())
            } else {
                w.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        self.shard.wakes.borrow_mut().try_remove(self.id);
    }
}
