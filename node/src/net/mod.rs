//! Sockets: the listeners and the connection I/O loop. Nothing outside this module touches a
//! socket or the runtime's I/O types; the rest of the server sees request bytes in and reply
//! bytes out through [`Session`], so the I/O engine can change (provided-buffer rings,
//! multishot receive) without touching commands or the keyspace.

pub mod client;
pub mod http;
pub mod link;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, CancelHandle};
use monoio::net::TcpStream;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

/// The kernel's accept queue length (Valkey's `tcp-backlog` default).
pub const TCP_BACKLOG: i32 = 511;
/// Spare room kept in the read buffer before each read (Valkey's PROTO_IOBUF_LEN).
pub const READ_CHUNK: usize = 16 * 1024;

/// What a session wants after handling input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Write the replies and keep reading.
    Continue,
    /// Write the replies, then close.
    Close,
    /// Close at once, without writing (the query buffer limit was passed).
    Abort,
}

/// What a session may do with its socket while it handles input: write the replies so far
/// (before it waits, e.g. for a blocked BLPOP), and watch for more input or the peer leaving
/// without consuming anything the parser has not seen.
pub struct Peer<'a> {
    stream: &'a mut TcpStream,
    /// Bytes read while the session was busy; they follow the session's input.
    extra: Vec<u8>,
    closed: bool,
    written: usize,
}

impl Peer<'_> {
    /// Writes `buf` and clears it; false when the connection is broken.
    pub async fn flush(&mut self, buf: &mut Vec<u8>) -> bool {
        if buf.is_empty() {
            return !self.closed;
        }
        let (res, b) = self.stream.write_all(std::mem::take(buf)).await;
        *buf = b;
        self.written += buf.len();
        buf.clear();
        if res.is_err() {
            self.closed = true;
        }
        !self.closed
    }

    /// Resolves when there is input to read or the peer has closed. Cancel-safe: it only
    /// polls readiness, it consumes nothing.
    pub async fn readable(&self) {
        let _ = self.stream.readable(false).await;
    }

    /// Reads what is there (after [`Peer::readable`]); false when the peer closed.
    pub async fn read_more(&mut self) -> bool {
        self.extra.reserve(READ_CHUNK);
        let len = self.extra.len();
        let (res, buf) = self
            .stream
            .read(std::mem::take(&mut self.extra).slice_mut(len..))
            .await;
        self.extra = buf.into_inner();
        match res {
            Ok(0) | Err(_) => {
                self.closed = true;
                false
            }
            Ok(_) => true,
        }
    }

    /// Bytes read while waiting that are not yet in the session's input.
    pub fn pending_input(&self) -> usize {
        self.extra.len()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// The protocol side of a connection.
pub trait Session {
    /// `input` holds the bytes read so far (the session removes what it consumed); append
    /// replies to `output`. `peer` lets the session write early and watch the socket while
    /// it waits.
    fn on_input(
        &mut self,
        input: &mut Vec<u8>,
        output: &mut Vec<u8>,
        peer: &mut Peer<'_>,
    ) -> impl Future<Output = Flow>;
    /// Whether messages may arrive for the client without a request (pub/sub): the
    /// connection then also waits for [`Session::pushes_ready`] while idle.
    fn wants_pushes(&self) -> bool;
    /// Resolves when pushed messages are queued.
    fn pushes_ready(&self) -> impl Future<Output = ()>;
    /// Moves queued pushed messages into `output`.
    fn take_pushes(&mut self, output: &mut Vec<u8>);
    /// How many more bytes the session knows it needs (a big argument being read), if any.
    fn wanted(&self, input: &[u8]) -> Option<usize>;
    /// Whether the connection should stop reading (shutdown, CLIENT KILL).
    fn should_stop(&self) -> bool;
    /// Bytes moved, for statistics.
    fn on_io(&mut self, read: usize, written: usize, input_cap: usize);
}

/// Serves one connection until the peer closes, an I/O error, or the session asks to close.
pub async fn drive<S: Session>(mut stream: TcpStream, session: &mut S) {
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut output: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    // Input read while the session waited (a blocked command) must be handled before the
    // next read, which might never come.
    let mut unhandled = false;
    loop {
        if session.should_stop() {
            break;
        }
        if session.wants_pushes() && !unhandled {
            session.take_pushes(&mut output);
            if !output.is_empty() {
                let (res, buf) = stream.write_all(output).await;
                output = buf;
                output.clear();
                if res.is_err() {
                    break;
                }
            }
            // Idle with subscriptions: wake for input or for a message to deliver. Only
            // readiness is awaited here (cancel-safe); the read itself follows below.
            let mut got_push = false;
            monoio::select! {
                _ = stream.readable(false) => {}
                _ = session.pushes_ready() => { got_push = true; }
            }
            if got_push {
                continue;
            }
        }
        // Room for the next read: a chunk, or what a big argument still needs (growing
        // geometrically so a declared 512 MB argument is not allocated before it arrives).
        let want = match session.wanted(&input) {
            Some(missing) => missing.min(input.len().max(READ_CHUNK)).max(READ_CHUNK),
            None => READ_CHUNK,
        };
        if input.capacity() - input.len() < want {
            input.reserve(want);
        }
        // monoio reads a Vec from its start; a slice over the spare capacity appends instead,
        // keeping the bytes of a command that is still incomplete.
        let n = if unhandled {
            0
        } else {
            let len = input.len();
            let (res, buf) = stream.read(input.slice_mut(len..)).await;
            input = buf.into_inner();
            match res {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            }
        };
        let mut peer = Peer {
            stream: &mut stream,
            extra: Vec::new(),
            closed: false,
            written: 0,
        };
        let flow = session.on_input(&mut input, &mut output, &mut peer).await;
        let Peer {
            extra,
            closed,
            written: early,
            ..
        } = peer;
        if flow == Flow::Abort || closed {
            break;
        }
        input.extend_from_slice(&extra);
        unhandled = !extra.is_empty();
        let n = n + extra.len();
        let written = output.len() + early;
        if !output.is_empty() {
            let (res, buf) = stream.write_all(output).await;
            output = buf;
            output.clear();
            if res.is_err() {
                break;
            }
        }
        session.on_io(n, written, input.capacity());
        // Give back memory after a burst (a big argument or a huge pipeline).
        if input.is_empty() && input.capacity() > 4 * READ_CHUNK {
            input = Vec::with_capacity(READ_CHUNK);
        }
        if output.capacity() > 64 * READ_CHUNK {
            output = Vec::with_capacity(READ_CHUNK);
        }
        if flow == Flow::Close {
            break;
        }
    }
    // Half-close so the peer sees EOF after our last reply, then drop (close).
    let _ = stream.shutdown().await;
}

/// Shuts a socket down in both directions: a pending read on it returns 0 at once.
pub fn shutdown_fd(fd: i32) {
    // SAFETY: shutdown(2) on a descriptor number; at worst it fails with EBADF/ENOTSOCK.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// Accepts connections until cancelled, handing each to `on_conn`.
pub async fn accept_loop(
    listener: std::net::TcpListener,
    cancel: CancelHandle,
    mut on_conn: impl FnMut(TcpStream, SocketAddr, SocketAddr, i32),
) {
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "listener into the runtime");
            return;
        }
    };
    let mut errors_in_a_row = 0u32;
    loop {
        match listener.cancelable_accept(cancel.clone()).await {
            Ok((stream, peer)) => {
                errors_in_a_row = 0;
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().unwrap_or(peer);
                let fd = stream.as_raw_fd();
                on_conn(stream, peer, local, fd);
            }
            Err(e) => {
                if e.raw_os_error() == Some(libc::ECANCELED) || cancel_requested(&e) {
                    break;
                }
                // EMFILE and friends: log, back off a little, keep serving the others.
                errors_in_a_row += 1;
                if errors_in_a_row == 1 || errors_in_a_row.is_multiple_of(1000) {
                    tracing::warn!(error = %e, "accept failed");
                }
                monoio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

fn cancel_requested(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Interrupted || e.to_string().contains("cancel")
}

/// One address the node listens on, with the sockets of every shard.
pub struct Bound {
    pub addr: SocketAddr,
    /// One listener per shard (SO_REUSEPORT: the kernel spreads connections over them).
    pub per_shard: Vec<std::net::TcpListener>,
}

/// Resolves a `bind` entry (`*`, `::*`, an IP, with `-` meaning "skip if unavailable").
fn bind_target(entry: &str, port: u16) -> Result<(SocketAddr, bool), String> {
    let (optional, bare) = match entry.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, entry),
    };
    let ip: IpAddr = match bare {
        "*" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "::*" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        other => other
            .parse()
            .map_err(|_| format!("Invalid bind address '{entry}'"))?,
    };
    Ok((SocketAddr::new(ip, port), optional))
}

fn new_socket(addr: SocketAddr, reuse_port: bool) -> std::io::Result<Socket> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&SockAddr::from(addr))?;
    Ok(s)
}

/// Binds every `bind` address for `shards` shards. First probes each address with a plain
/// socket (no SO_REUSEPORT): if another process holds the port, SO_REUSEPORT would let us
/// bind anyway and silently share its connections, so we fail with a clear message instead.
pub fn bind_all(bind: &[String], port: u16, shards: usize) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    for entry in bind {
        let (addr, optional) = bind_target(entry, port)?;
        match new_socket(addr, false) {
            Ok(probe) => drop(probe),
            Err(e) => {
                let unavailable = matches!(
                    e.raw_os_error(),
                    Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT)
                );
                if optional && unavailable {
                    tracing::info!(%addr, "optional bind address unavailable, skipped");
                    continue;
                }
                if e.raw_os_error() == Some(libc::EADDRINUSE) {
                    return Err(format!("Could not create server TCP listening socket {addr}: address already in use (another process listens on port {port})"));
                }
                return Err(format!(
                    "Could not create server TCP listening socket {addr}: {e}"
                ));
            }
        }
        let mut per_shard = Vec::with_capacity(shards);
        for _ in 0..shards {
            let s = new_socket(addr, true)
                .map_err(|e| format!("Could not create server TCP listening socket {addr}: {e}"))?;
            s.listen(TCP_BACKLOG)
                .map_err(|e| format!("listen on {addr}: {e}"))?;
            s.set_nonblocking(true)
                .map_err(|e| format!("listener on {addr}: {e}"))?;
            per_shard.push(std::net::TcpListener::from(s));
        }
        out.push(Bound { addr, per_shard });
    }
    if out.is_empty() {
        return Err("Failed listening on port: no bind address could be used".into());
    }
    Ok(out)
}
