//! Clients: what a shard knows about each connection it serves, for CLIENT LIST/INFO/KILL,
//! `timeout`, `maxclients` and INFO clients. The connection task owns its session; this record
//! is the part other tasks of the same shard may read or flag.

use std::cell::{Cell, RefCell};
use std::fmt::Write;

/// One connection's public record.
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub created_ms: i64,
    pub last_interaction_ms: Cell<i64>,
    pub name: RefCell<Vec<u8>>,
    pub lib_name: RefCell<Vec<u8>>,
    pub lib_ver: RefCell<Vec<u8>>,
    pub db: Cell<usize>,
    pub resp: Cell<u8>,
    /// Full name of the last command ("client|list").
    pub last_cmd: Cell<&'static str>,
    pub qbuf: Cell<usize>,
    pub qbuf_free: Cell<usize>,
    pub argv_mem: Cell<usize>,
    pub obuf: Cell<usize>,
    pub tot_net_in: Cell<u64>,
    pub tot_net_out: Cell<u64>,
    pub tot_cmds: Cell<u64>,
    /// CLIENT KILL, timeout or shutdown asked this connection to close.
    pub killed: Cell<bool>,
    /// The connection will close after its current reply (QUIT, protocol error).
    pub closing: Cell<bool>,
    /// The client waits in a blocking command.
    pub blocked: Cell<bool>,
    /// The client is in MONITOR mode.
    pub monitor: Cell<bool>,
    /// Commands queued after MULTI (-1 outside a transaction), and keys WATCHed.
    pub multi: Cell<i64>,
    pub watch: Cell<usize>,
    pub user: RefCell<String>,
    /// Pub/Sub subscriptions.
    pub subs: RefCell<crate::pubsub::Subscriptions>,
    /// Pub/Sub messages waiting to be written.
    pub pushes: crate::pubsub::PushQueue,
}

impl ClientInfo {
    pub fn new(id: u64, addr: String, laddr: String, fd: i32, now_ms: i64) -> ClientInfo {
        ClientInfo {
            id,
            addr,
            laddr,
            fd,
            created_ms: now_ms,
            last_interaction_ms: Cell::new(now_ms),
            name: RefCell::new(Vec::new()),
            lib_name: RefCell::new(Vec::new()),
            lib_ver: RefCell::new(Vec::new()),
            db: Cell::new(0),
            resp: Cell::new(2),
            last_cmd: Cell::new("NULL"),
            qbuf: Cell::new(0),
            qbuf_free: Cell::new(0),
            argv_mem: Cell::new(0),
            obuf: Cell::new(0),
            tot_net_in: Cell::new(0),
            tot_net_out: Cell::new(0),
            tot_cmds: Cell::new(0),
            killed: Cell::new(false),
            closing: Cell::new(false),
            blocked: Cell::new(false),
            monitor: Cell::new(false),
            multi: Cell::new(-1),
            watch: Cell::new(0),
            user: RefCell::new("default".into()),
            subs: RefCell::new(Default::default()),
            pushes: Default::default(),
        }
    }

    /// Closes the connection from outside its task: the pending read returns and the task ends.
    pub fn kill(&self) {
        self.killed.set(true);
        crate::net::shutdown_fd(self.fd);
    }

    /// The CLIENT LIST / CLIENT INFO line (without the trailing newline), in Valkey 8's format.
    pub fn info_line(&self, now_ms: i64) -> String {
        let mut s = String::with_capacity(300);
        let subs = self.subs.borrow();
        let mut flags = String::new();
        if subs.total() > 0 {
            flags.push('P');
        }
        if self.blocked.get() {
            flags.push('b');
        }
        if self.monitor.get() {
            flags.push('O');
        }
        if self.multi.get() >= 0 {
            flags.push('x');
        }
        if self.closing.get() {
            flags.push('c');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let obl = self.obuf.get() + self.pushes.bytes.borrow().len();
        let tot_mem = self.qbuf.get() + self.qbuf_free.get() + self.obuf.get() + 1024;
        let _ = write!(
            s,
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} watch={} qbuf={} qbuf-free={} argv-mem={} multi-mem=0 rbs=1024 rbp=0 obl={} oll=0 omem=0 tot-mem={} events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={} tot-net-in={} tot-net-out={} tot-cmds={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            String::from_utf8_lossy(&self.name.borrow()),
            (now_ms - self.created_ms).max(0) / 1000,
            (now_ms - self.last_interaction_ms.get()).max(0) / 1000,
            flags,
            self.db.get(),
            subs.channels.len(),
            subs.patterns.len(),
            subs.shard_channels.len(),
            self.multi.get(),
            self.watch.get(),
            self.qbuf.get(),
            self.qbuf_free.get(),
            self.argv_mem.get(),
            obl,
            tot_mem,
            self.last_cmd.get(),
            self.user.borrow(),
            self.resp.get(),
            String::from_utf8_lossy(&self.lib_name.borrow()),
            String::from_utf8_lossy(&self.lib_ver.borrow()),
            self.tot_net_in.get(),
            self.tot_net_out.get(),
            self.tot_cmds.get(),
        );
        s
    }
}

/// Whether a client name or library attribute is acceptable: printable ASCII without spaces,
/// so that CLIENT LIST stays splittable (Valkey's `validateClientAttr`).
pub fn valid_attr(v: &[u8]) -> bool {
    v.iter().all(|&b| (b'!'..=b'~').contains(&b))
}
