//! Framed TCP links: long-lived connections that carry length-prefixed frames both ways, for
//! the cluster bus (and later the replication streams). The caller says how long a frame is
//! from its first bytes and gets whole frames back; it sends owned frames and never sees the
//! socket.
//!
//! Each link runs two tasks on the current shard's runtime: a reader that fills a buffer, cuts
//! it into frames with the caller's `frame_len` and hands each one to `on_frame`, and a writer
//! that drains the queue of outgoing frames, many per `write_all`. Closing a link shuts the
//! socket down, which ends a pending read (it returns 0) and any pending write; the reader then
//! reports [`LinkEvent::Closed`] exactly once, whoever closed it.
//!
//! Limits: a frame is at most `max_frame` bytes (checked by `frame_len` before the body is
//! read), and a link whose outgoing queue holds more than [`SEND_QUEUE_MAX_BYTES`] is closed
//! rather than left to grow without bound (a peer that stopped reading).

use super::{bind_target, new_socket, shutdown_fd, TCP_BACKLOG};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

/// Most bytes queued for sending on one link before it is closed (Valkey's
/// `cluster-link-sendbuf-limit` is unlimited by default; we bound it).
pub const SEND_QUEUE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;

/// What the reader reports.
pub enum LinkEvent<'a> {
    /// One whole frame.
    Frame(&'a [u8]),
    /// The link is gone (peer closed, I/O error, bad frame, or [`Link::close`]).
    Closed,
}

struct Inner {
    fd: i32,
    queue: RefCell<Vec<u8>>,
    writer: RefCell<Option<Waker>>,
    closed: Cell<bool>,
}

impl Inner {
    fn close(&self) {
        if !self.closed.replace(true) {
            shutdown_fd(self.fd);
        }
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }
}

/// The sending side of a running link; cheap to clone. Dropping it does not close the link.
#[derive(Clone)]
pub struct Link {
    inner: Rc<Inner>,
}

impl Link {
    /// Queues a frame; false (and the link is closed) when the queue is over its limit or the
    /// link is already closed.
    pub fn send(&self, frame: &[u8]) -> bool {
        if self.inner.closed.get() {
            return false;
        }
        let over = {
            let mut q = self.inner.queue.borrow_mut();
            q.extend_from_slice(frame);
            q.len() > SEND_QUEUE_MAX_BYTES
        };
        if over {
            tracing::warn!(
                limit = SEND_QUEUE_MAX_BYTES,
                "closing a link whose peer does not read"
            );
            self.close();
            return false;
        }
        if let Some(w) = self.inner.writer.borrow_mut().take() {
            w.wake();
        }
        true
    }

    /// Closes the link; the reader reports [`LinkEvent::Closed`] soon after.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.inner.queue.borrow().len()
    }
}

/// Starts the reader and writer tasks of a connected stream. `frame_len` returns the total
/// length of the frame at the start of its argument once it can tell (`Ok(None)` until then);
/// an error, or a length above `max_frame`, closes the link.
pub fn start<E: std::fmt::Display + 'static>(
    stream: TcpStream,
    max_frame: usize,
    frame_len: fn(&[u8]) -> Result<Option<usize>, E>,
    mut on_event: impl FnMut(LinkEvent<'_>) + 'static,
) -> Link {
    let _ = stream.set_nodelay(true);
    let inner = Rc::new(Inner {
        fd: stream.as_raw_fd(),
        queue: RefCell::new(Vec::new()),
        writer: RefCell::new(None),
        closed: Cell::new(false),
    });
    let (mut rd, mut wr) = stream.into_split();
    let writer = inner.clone();
    monoio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            std::future::poll_fn(|cx| {
                if writer.closed.get() || !writer.queue.borrow().is_empty() {
                    Poll::Ready(())
                } else {
                    *writer.writer.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            if writer.closed.get() {
                break;
            }
            std::mem::swap(&mut buf, &mut *writer.queue.borrow_mut());
            let (res, b) = wr.write_all(buf).await;
            buf = b;
            buf.clear();
            if res.is_err() {
                writer.close();
                break;
            }
        }
    });
    let reader = inner.clone();
    monoio::spawn(async move {
        let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        'read: loop {
            if input.capacity() - input.len() < READ_CHUNK {
                input.reserve(READ_CHUNK);
            }
            let len = input.len();
            let (res, b) = rd.read(input.slice_mut(len..)).await;
            input = b.into_inner();
            match res {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let mut start = 0;
            loop {
                let rest = &input[start..];
                match frame_len(rest) {
                    Ok(Some(n)) if n > max_frame || n == 0 => break 'read,
                    Ok(Some(n)) if n <= rest.len() => {
                        on_event(LinkEvent::Frame(&rest[..n]));
                        start += n;
                        if reader.closed.get() {
                            break 'read;
                        }
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "bad frame, closing link");
                        break 'read;
                    }
                }
            }
            input.drain(..start);
            if input.is_empty() && input.capacity() > 4 * READ_CHUNK {
                input = Vec::with_capacity(READ_CHUNK);
            }
        }
        reader.close();
        on_event(LinkEvent::Closed);
    });
    Link { inner }
}

/// Connects to `addr` within `timeout`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    match monoio::time::timeout(timeout, TcpStream::connect_addr(addr)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        )),
    }
}

/// Binds one listener per `bind` entry on `port` (no SO_REUSEPORT: one shard accepts them).
/// Entries marked optional (`-addr`) that are unavailable are skipped, as for the client port.
pub fn bind(bind: &[String], port: u16) -> Result<Vec<std::net::TcpListener>, String> {
    let mut out = Vec::new();
    for entry in bind {
        let (addr, optional) = bind_target(entry, port)?;
        let s = match new_socket(addr, false) {
            Ok(s) => s,
            Err(e) => {
                let unavailable = matches!(
                    e.raw_os_error(),
                    Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT)
                );
                if optional && unavailable {
                    continue;
                }
                return Err(format!("Could not bind cluster bus port {addr}: {e}"));
            }
        };
        s.listen(TCP_BACKLOG)
            .map_err(|e| format!("listen on cluster bus {addr}: {e}"))?;
        s.set_nonblocking(true)
            .map_err(|e| format!("cluster bus listener on {addr}: {e}"))?;
        out.push(std::net::TcpListener::from(s));
    }
    if out.is_empty() {
        return Err("no bind address could be used for the cluster bus".into());
    }
    Ok(out)
}
