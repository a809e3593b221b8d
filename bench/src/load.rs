//! The load generator: `threads` OS threads, each running one readiness loop (mio, that is
//! epoll, edge-triggered) over its `clients` connections. Owns sockets, in-flight requests and
//! the per-thread measurements; knows nothing of how results are printed.
//!
//! Each client keeps up to `pipeline` requests in flight, like memtier: a reply frees a place,
//! and the places freed by one read are refilled and sent with one write per connection. A
//! request's latency is the time from the moment its batch was handed to the socket to the
//! moment the read that carried its reply returned (one clock read per batch on each side, so
//! the clock costs nothing per request).
//!
//! In cluster mode a client has one connection to each primary; each request goes to the
//! owner of its key's slot in the thread's slot map. `-MOVED` corrects the map and sends the
//! request again; `-ASK` sends `ASKING` and the request to the named node once, without
//! changing the map. A redirected request keeps its first send time.
//!
//! Nothing here spins: the loop blocks in `poll` with a timeout of at most [`TICK`], and every
//! wait has a bound ([`STALL_TIMEOUT`] without any reply while requests are in flight fails
//! the run, and so does a request redirected more than [`REDIRECTS_MAX`] times).

use crate::keys::{KeyGen, KeyPattern, KeySpace, Op, Ratio, RatioCycle};
use crate::resp::{self, ReplyKind};
use crate::slots::{self, RedirectKind, SlotMap, NO_NODE};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// The longest a worker blocks in `poll` before it looks at the clock and the abort flag.
pub const TICK: Duration = Duration::from_millis(100);
/// A run fails when no reply arrives for this long while requests are in flight.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Read buffer per connection; it grows (up to [`READ_BUFFER_MAX`]) only for a reply larger
/// than itself.
const READ_BUFFER_BYTES: usize = 64 * 1024;
const READ_BUFFER_MAX: usize = resp::BULK_LEN_MAX + 1024 * 1024;
/// Latencies are recorded in nanoseconds, from 1 ns to this bound, with 3 significant digits.
pub const LATENCY_MAX_NS: u64 = 60_000_000_000;
/// A client may not keep more requests than this in flight.
pub const PIPELINE_MAX: usize = 1 << 16;
/// Connections per worker thread (clients times cluster nodes).
pub const CONNECTIONS_PER_THREAD_MAX: usize = 60_000;
/// Redirects one request may follow before the run fails (a redirect loop between nodes that
/// disagree would otherwise never end).
pub const REDIRECTS_MAX: u8 = 16;

/// Where the requests go.
#[derive(Clone, Debug)]
pub enum Target {
    Standalone(SocketAddr),
    Cluster(SlotMap),
}

/// Everything a run needs (the `run` command's options, parsed).
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub target: Target,
    pub threads: usize,
    /// Clients per thread.
    pub clients: usize,
    pub pipeline: usize,
    pub ratio: Ratio,
    pub pattern: KeyPattern,
    pub space: KeySpace,
    pub key_prefix: String,
    pub data_size: usize,
    /// Requests per client, or None to run for `test_time`.
    pub requests: Option<u64>,
    pub test_time: Option<Duration>,
    pub seed: u64,
    pub distinct_client_seed: bool,
}

impl LoadSpec {
    pub fn total_clients(&self) -> u64 {
        (self.threads * self.clients) as u64
    }
}

/// Counters and latencies of one command type.
#[derive(Clone, Debug)]
pub struct OpStats {
    pub count: u64,
    pub hits: u64,
    pub misses: u64,
    pub moved: u64,
    pub ask: u64,
    pub errors: u64,
    pub bytes_tx: u64,
    pub bytes_rx: u64,
    pub latency_sum_ns: u64,
    pub hist: Histogram<u64>,
}

impl OpStats {
    pub fn new() -> OpStats {
        OpStats {
            count: 0,
            hits: 0,
            misses: 0,
            moved: 0,
            ask: 0,
            errors: 0,
            bytes_tx: 0,
            bytes_rx: 0,
            latency_sum_ns: 0,
            hist: Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    pub fn add(&mut self, o: &OpStats) {
        self.count += o.count;
        self.hits += o.hits;
        self.misses += o.misses;
        self.moved += o.moved;
        self.ask += o.ask;
        self.errors += o.errors;
        self.bytes_tx += o.bytes_tx;
        self.bytes_rx += o.bytes_rx;
        self.latency_sum_ns += o.latency_sum_ns;
        self.hist
            .add(&o.hist)
            .expect("histograms with the same bounds add");
    }
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats::new()
    }
}

/// What one worker thread measured.
#[derive(Clone, Debug, Default)]
pub struct ThreadStats {
    pub set: OpStats,
    pub get: OpStats,
    /// From the common start to this thread's last reply.
    pub elapsed: Duration,
    /// The first error reply seen (not a redirect), for the report.
    pub first_error: Option<String>,
    pub connections: usize,
}

impl ThreadStats {
    pub fn add(&mut self, o: &ThreadStats) {
        self.set.add(&o.set);
        self.get.add(&o.get);
        self.elapsed = self.elapsed.max(o.elapsed);
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
        self.connections += o.connections;
    }
}

/// What the workers publish for the progress line, updated once per read batch.
#[derive(Default)]
pub struct Progress {
    pub ops: AtomicU64,
    pub latency_ns: AtomicU64,
    pub finished: AtomicBool,
}

/// State shared by the workers of one run.
pub struct Shared {
    pub progress: Vec<Progress>,
    /// Set by anyone to stop every worker at its next tick (an error elsewhere).
    pub abort: AtomicBool,
    start: Barrier,
}

impl Shared {
    pub fn new(threads: usize) -> Shared {
        Shared {
            progress: (0..threads).map(|_| Progress::default()).collect(),
            abort: AtomicBool::new(false),
            start: Barrier::new(threads),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Set,
    Get,
    /// The `ASKING` sent before an ASK-redirected request; its reply is not counted.
    Asking,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    kind: Kind,
    key: u64,
    sent_ns: u64,
    /// MOVED and ASK replies this request has followed so far.
    redirects: u8,
}

struct Conn {
    stream: TcpStream,
    addr: SocketAddr,
    client: usize,
    rbuf: Vec<u8>,
    /// Unparsed bytes are `rbuf[rpos..rlen]`.
    rpos: usize,
    rlen: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    pending: VecDeque<Pending>,
    /// Whether this connection is in the worker's list of connections to flush.
    dirty: bool,
}

struct Client {
    keys: KeyGen,
    ratio: RatioCycle,
    generated: u64,
    in_flight: usize,
    /// The connection to each node of the slot map, if open.
    conns: Vec<Option<usize>>,
}

struct Worker<'a> {
    spec: &'a LoadSpec,
    map: SlotMap,
    cluster: bool,
    poll: Poll,
    conns: Vec<Conn>,
    clients: Vec<Client>,
    dirty: Vec<usize>,
    /// `\r\n$<size>\r\n<value>\r\n`: the end of every SET.
    set_tail: Vec<u8>,
    key: Vec<u8>,
    epoch: Instant,
    stopping: bool,
    stats: ThreadStats,
    published_ops: u64,
    published_latency: u64,
    last_reply: Instant,
}

/// Runs one worker thread to its end; `index` is its number among the run's threads.
pub fn run_worker(spec: &LoadSpec, index: usize, shared: &Shared) -> Result<ThreadStats, String> {
    let prepared = Worker::new(spec, index);
    // Every worker waits at the barrier, even one that failed to connect, so that none
    // waits forever; a failed one raises the abort flag first.
    let mut worker = match prepared {
        Ok(w) => w,
        Err(e) => {
            shared.abort.store(true, Ordering::Relaxed);
            shared.start.wait();
            return Err(e);
        }
    };
    shared.start.wait();
    if shared.abort.load(Ordering::Relaxed) {
        return Err("aborted: another worker failed to start".into());
    }
    let result = worker.run(&shared.progress[index], &shared.abort);
    shared.progress[index]
        .finished
        .store(true, Ordering::Relaxed);
    if result.is_err() {
        shared.abort.store(true, Ordering::Relaxed);
    }
    result.map(|()| worker.stats)
}

impl<'a> Worker<'a> {
    fn new(spec: &'a LoadSpec, index: usize) -> Result<Worker<'a>, String> {
        let (map, cluster) = match &spec.target {
            Target::Standalone(addr) => (SlotMap::single(*addr), false),
            Target::Cluster(map) => (map.clone(), true),
        };
        let total = spec.total_clients();
        let clients = (0..spec.clients)
            .map(|c| {
                let global = (index * spec.clients + c) as u64;
                let seed = if spec.distinct_client_seed {
                    spec.seed ^ (global + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                } else {
                    spec.seed
                };
                Client {
                    keys: KeyGen::new(spec.space, spec.pattern, global, total, seed),
                    ratio: RatioCycle::new(spec.ratio),
                    generated: 0,
                    in_flight: 0,
                    conns: vec![None; map.nodes.len()],
                }
            })
            .collect();
        let mut set_tail = Vec::with_capacity(spec.data_size + 16);
        set_tail.extend_from_slice(b"\r\n");
        resp::push_header(&mut set_tail, b'$', spec.data_size);
        set_tail.resize(set_tail.len() + spec.data_size, b'x');
        set_tail.extend_from_slice(b"\r\n");
        let mut w = Worker {
            spec,
            map,
            cluster,
            poll: Poll::new().map_err(|e| format!("creating the poller: {e}"))?,
            conns: Vec::new(),
            clients,
            dirty: Vec::new(),
            set_tail,
            key: Vec::with_capacity(spec.key_prefix.len() + 20),
            epoch: Instant::now(),
            stopping: false,
            stats: ThreadStats::default(),
            published_ops: 0,
            published_latency: 0,
            last_reply: Instant::now(),
        };
        // Connect every client to every node before the clock starts.
        for c in 0..w.clients.len() {
            for node in 0..w.map.nodes.len() {
                if !w.cluster || w.map.owner.contains(&(node as u16)) {
                    w.conn_for(c, node)?;
                }
            }
        }
        w.stats.connections = w.conns.len();
        Ok(w)
    }

    /// The connection of client `c` to `node`, opened if needed.
    fn conn_for(&mut self, c: usize, node: usize) -> Result<usize, String> {
        if let Some(Some(i)) = self.clients[c].conns.get(node) {
            return Ok(*i);
        }
        if self.conns.len() >= CONNECTIONS_PER_THREAD_MAX {
            return Err(format!(
                "more than {CONNECTIONS_PER_THREAD_MAX} connections in one thread"
            ));
        }
        let addr = self.map.nodes[node];
        let std_stream = std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        std_stream
            .set_nodelay(true)
            .and_then(|()| std_stream.set_nonblocking(true))
            .map_err(|e| format!("configuring the socket to {addr}: {e}"))?;
        let mut stream = TcpStream::from_std(std_stream);
        let i = self.conns.len();
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| format!("registering the socket to {addr}: {e}"))?;
        self.conns.push(Conn {
            stream,
            addr,
            client: c,
            rbuf: vec![0; READ_BUFFER_BYTES],
            rpos: 0,
            rlen: 0,
            wbuf: Vec::with_capacity(16 * 1024),
            wpos: 0,
            pending: VecDeque::new(),
            dirty: false,
        });
        let conns = &mut self.clients[c].conns;
        if conns.len() <= node {
            conns.resize(node + 1, None);
        }
        conns[node] = Some(i);
        Ok(i)
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn run(&mut self, progress: &Progress, abort: &AtomicBool) -> Result<(), String> {
        self.epoch = Instant::now();
        self.last_reply = self.epoch;
        let test_end = self.spec.test_time.map(|t| self.epoch + t);
        let now = self.now_ns();
        for c in 0..self.clients.len() {
            self.refill(c, now)?;
        }
        self.flush_dirty()?;
        let mut events = Events::with_capacity(1024);
        // Bounded: ends when every client is done, on the abort flag, or after STALL_TIMEOUT
        // without a reply; each pass blocks in poll for at most TICK.
        loop {
            let now = Instant::now();
            if let Some(end) = test_end {
                if now >= end && !self.stopping {
                    self.stopping = true;
                }
            }
            if self.clients.iter().all(|c| c.in_flight == 0) && !self.can_generate_any() {
                break;
            }
            if abort.load(Ordering::Relaxed) {
                return Err("aborted".into());
            }
            if now.duration_since(self.last_reply) > STALL_TIMEOUT {
                return Err(format!(
                    "no reply for {} s with requests in flight (server stuck or gone?)",
                    STALL_TIMEOUT.as_secs()
                ));
            }
            let mut timeout = TICK;
            if let Some(end) = test_end {
                if end > now {
                    timeout = timeout.min(end - now);
                }
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            for ev in events.iter() {
                let i = ev.token().0;
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.on_readable(i)?;
                }
                if ev.is_writable() {
                    self.mark_dirty(i);
                }
            }
            self.flush_dirty()?;
            self.publish(progress);
        }
        self.stats.elapsed = self.last_reply.duration_since(self.epoch);
        self.publish(progress);
        Ok(())
    }

    fn publish(&mut self, progress: &Progress) {
        let ops = self.stats.set.count + self.stats.get.count;
        let lat = self.stats.set.latency_sum_ns + self.stats.get.latency_sum_ns;
        progress
            .ops
            .fetch_add(ops - self.published_ops, Ordering::Relaxed);
        progress
            .latency_ns
            .fetch_add(lat - self.published_latency, Ordering::Relaxed);
        self.published_ops = ops;
        self.published_latency = lat;
    }

    fn can_generate(&self, c: usize) -> bool {
        !self.stopping
            && self
                .spec
                .requests
                .is_none_or(|r| self.clients[c].generated < r)
    }

    fn can_generate_any(&self) -> bool {
        (0..self.clients.len()).any(|c| self.can_generate(c))
    }

    /// Tops client `c` up to `pipeline` requests in flight.
    fn refill(&mut self, c: usize, now_ns: u64) -> Result<(), String> {
        // Bounded by the pipeline depth.
        while self.clients[c].in_flight < self.spec.pipeline && self.can_generate(c) {
            let client = &mut self.clients[c];
            let op = client.ratio.next_op();
            let key = client.keys.next_key(op);
            client.generated += 1;
            client.in_flight += 1;
            let kind = match op {
                Op::Set => Kind::Set,
                Op::Get => Kind::Get,
            };
            self.send(c, kind, key, now_ns, 0, None)?;
        }
        Ok(())
    }

    /// Writes the key of `index` into `self.key`.
    fn format_key(&mut self, index: u64) {
        self.key.clear();
        self.key.extend_from_slice(self.spec.key_prefix.as_bytes());
        self.key
            .extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
    }

    /// Queues one request of client `c`: to `node` if given (an ASK target), else to the owner
    /// of the key's slot.
    fn send(
        &mut self,
        c: usize,
        kind: Kind,
        key: u64,
        sent_ns: u64,
        redirects: u8,
        node: Option<usize>,
    ) -> Result<(), String> {
        self.format_key(key);
        let node = match node {
            Some(n) => n,
            None if self.cluster => {
                let slot = slots::key_slot(&self.key);
                let owner = self.map.owner[usize::from(slot)];
                if owner == NO_NODE {
                    return Err(format!(
                        "slot {slot} (key {}) is served by no node",
                        String::from_utf8_lossy(&self.key)
                    ));
                }
                usize::from(owner)
            }
            None => 0,
        };
        let i = self.conn_for(c, node)?;
        let conn = &mut self.conns[i];
        let before = conn.wbuf.len();
        match kind {
            Kind::Set => {
                conn.wbuf.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
                resp::push_header(&mut conn.wbuf, b'$', self.key.len());
                conn.wbuf.extend_from_slice(&self.key);
                conn.wbuf.extend_from_slice(&self.set_tail);
            }
            Kind::Get => {
                conn.wbuf.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
                resp::push_bulk(&mut conn.wbuf, &self.key);
            }
            Kind::Asking => conn.wbuf.extend_from_slice(b"*1\r\n$6\r\nASKING\r\n"),
        }
        let bytes = (conn.wbuf.len() - before) as u64;
        conn.pending.push_back(Pending {
            kind,
            key,
            sent_ns,
            redirects,
        });
        match kind {
            Kind::Set => self.stats.set.bytes_tx += bytes,
            Kind::Get => self.stats.get.bytes_tx += bytes,
            Kind::Asking => {}
        }
        self.mark_dirty(i);
        Ok(())
    }

    fn mark_dirty(&mut self, i: usize) {
        if !self.conns[i].dirty {
            self.conns[i].dirty = true;
            self.dirty.push(i);
        }
    }

    fn flush_dirty(&mut self) -> Result<(), String> {
        // Bounded by the number of connections: each is in the list at most once.
        while let Some(i) = self.dirty.pop() {
            self.conns[i].dirty = false;
            self.flush(i)?;
        }
        Ok(())
    }

    /// Writes what the connection has queued, until the socket would block.
    fn flush(&mut self, i: usize) -> Result<(), String> {
        let conn = &mut self.conns[i];
        // Bounded: each pass writes at least one byte or stops.
        while conn.wpos < conn.wbuf.len() {
            match conn.stream.write(&conn.wbuf[conn.wpos..]) {
                Ok(0) => return Err(format!("{}: connection closed on write", conn.addr)),
                Ok(n) => conn.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{}: write: {e}", conn.addr)),
            }
        }
        conn.wbuf.clear();
        conn.wpos = 0;
        Ok(())
    }

    /// Reads until the socket would block, handling every complete reply, then refills the
    /// connection's client.
    fn on_readable(&mut self, i: usize) -> Result<(), String> {
        // Bounded: each pass reads at least one byte, or returns.
        loop {
            let client_done = !self.can_generate(self.conns[i].client);
            let conn = &mut self.conns[i];
            if conn.rpos == conn.rlen {
                conn.rpos = 0;
                conn.rlen = 0;
            } else if conn.rlen == conn.rbuf.len() {
                if conn.rpos > 0 {
                    conn.rbuf.copy_within(conn.rpos..conn.rlen, 0);
                    conn.rlen -= conn.rpos;
                    conn.rpos = 0;
                } else if conn.rbuf.len() < READ_BUFFER_MAX {
                    // One reply larger than the buffer.
                    let grown = (conn.rbuf.len() * 2).min(READ_BUFFER_MAX);
                    conn.rbuf.resize(grown, 0);
                } else {
                    return Err(format!(
                        "{}: reply larger than {READ_BUFFER_MAX} bytes",
                        conn.addr
                    ));
                }
            }
            let n = match conn.stream.read(&mut conn.rbuf[conn.rlen..]) {
                Ok(0) if conn.pending.is_empty() && client_done => {
                    // Closed after its last reply, when we need it no more: not an error.
                    let _ = self.poll.registry().deregister(&mut conn.stream);
                    return Ok(());
                }
                Ok(0) => {
                    return Err(format!(
                        "{}: server closed the connection{}",
                        conn.addr,
                        if conn.pending.is_empty() {
                            String::new()
                        } else {
                            format!(" with {} requests in flight", conn.pending.len())
                        }
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("{}: read: {e}", conn.addr)),
            };
            conn.rlen += n;
            self.last_reply = Instant::now();
            let now = self.last_reply.duration_since(self.epoch).as_nanos() as u64;
            self.handle_replies(i, now)?;
        }
        let c = self.conns[i].client;
        let now = self.now_ns();
        self.refill(c, now)
    }

    fn handle_replies(&mut self, i: usize, now_ns: u64) -> Result<(), String> {
        // Bounded by the bytes read: each pass consumes one reply.
        loop {
            let conn = &mut self.conns[i];
            let unparsed = &conn.rbuf[conn.rpos..conn.rlen];
            let (len, kind) = match resp::scan_reply(unparsed) {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("{}: {e}", conn.addr)),
            };
            let Some(p) = conn.pending.pop_front() else {
                return Err(format!(
                    "{}: a reply arrived with no request in flight: {:?}",
                    conn.addr,
                    String::from_utf8_lossy(&unparsed[..len.min(100)])
                ));
            };
            let start = conn.rpos;
            conn.rpos += len;
            let addr = conn.addr;
            let client = conn.client;
            if kind == ReplyKind::Error {
                // Without the leading '-' and the trailing CRLF.
                let text_range = start + 1..start + len - 2;
                let redirect = if self.cluster {
                    slots::parse_redirect(&self.conns[i].rbuf[text_range.clone()], addr)
                } else {
                    None
                };
                if let (Some(r), Kind::Set | Kind::Get) = (redirect, p.kind) {
                    self.redirect(client, p, r, len as u64)?;
                    continue;
                }
                if self.stats.first_error.is_none() {
                    self.stats.first_error =
                        Some(String::from_utf8_lossy(&self.conns[i].rbuf[text_range]).into_owned());
                }
            }
            let stats = match p.kind {
                Kind::Asking => {
                    if kind == ReplyKind::Error {
                        self.stats.get.errors += 1;
                    }
                    continue;
                }
                Kind::Set => &mut self.stats.set,
                Kind::Get => &mut self.stats.get,
            };
            let latency = now_ns.saturating_sub(p.sent_ns).max(1);
            stats.count += 1;
            stats.bytes_rx += len as u64;
            stats.latency_sum_ns += latency;
            // Latencies above LATENCY_MAX_NS are recorded as LATENCY_MAX_NS.
            stats.hist.saturating_record(latency);
            match kind {
                ReplyKind::Error => stats.errors += 1,
                ReplyKind::Null if p.kind == Kind::Get => stats.misses += 1,
                _ if p.kind == Kind::Get => stats.hits += 1,
                _ => {}
            }
            self.clients[client].in_flight -= 1;
        }
    }

    /// Follows a MOVED (fix the map, send again) or ASK (ASKING + request to the named node).
    fn redirect(
        &mut self,
        c: usize,
        p: Pending,
        r: slots::Redirect,
        reply_bytes: u64,
    ) -> Result<(), String> {
        if p.redirects >= REDIRECTS_MAX {
            return Err(format!(
                "a request for slot {} was redirected {REDIRECTS_MAX} times (last to {}): the nodes disagree on who serves it",
                r.slot, r.addr
            ));
        }
        let redirects = p.redirects + 1;
        let node = usize::from(self.map.node_index(r.addr));
        let stats = if p.kind == Kind::Set {
            &mut self.stats.set
        } else {
            &mut self.stats.get
        };
        stats.bytes_rx += reply_bytes;
        match r.kind {
            RedirectKind::Moved => {
                stats.moved += 1;
                self.map.owner[usize::from(r.slot)] = node as u16;
                self.send(c, p.kind, p.key, p.sent_ns, redirects, None)
            }
            RedirectKind::Ask => {
                stats.ask += 1;
                self.send(c, Kind::Asking, p.key, p.sent_ns, redirects, Some(node))?;
                self.send(c, p.kind, p.key, p.sent_ns, redirects, Some(node))
            }
        }
    }
}
