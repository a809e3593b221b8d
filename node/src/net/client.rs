//! A small outgoing client connection for commands the server sends to another server
//! (MIGRATE's RESTORE commands): connect, write a whole request buffer, read one-line replies,
//! each step bounded by a timeout. Blocking DNS is avoided: hosts must be IP addresses, or
//! names the system resolver answers from its files (as `localhost`).

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Longest reply line accepted (Valkey reads MIGRATE's replies into 1024-byte buffers).
pub const LINE_MAX: usize = 64 * 1024;

/// A connection to another server.
pub struct LineClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out")
}

impl LineClient {
    /// Connects to `host:port` within `timeout`.
    pub async fn connect(host: &str, port: u16, timeout: Duration) -> std::io::Result<LineClient> {
        let addr = match host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => (host, port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| std::io::Error::other("no address for host"))?,
        };
        let stream = super::link::connect(addr, timeout).await?;
        let _ = stream.set_nodelay(true);
        Ok(LineClient {
            stream,
            buf: Vec::with_capacity(1024),
        })
    }

    /// Writes all of `data` within `timeout`.
    pub async fn write_all(&mut self, data: Vec<u8>, timeout: Duration) -> std::io::Result<()> {
        match monoio::time::timeout(timeout, self.stream.write_all(data)).await {
            Ok((r, _)) => r.map(|_| ()),
            Err(_) => Err(timed_out()),
        }
    }

    /// Reads one reply line (without its CR LF) within `timeout`.
    pub async fn read_line(&mut self, timeout: Duration) -> std::io::Result<Vec<u8>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > LINE_MAX {
                return Err(std::io::Error::other("reply line too long"));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            self.buf.reserve(4096);
            let len = self.buf.len();
            let buf = std::mem::take(&mut self.buf);
            match monoio::time::timeout(left, self.stream.read(buf.slice_mut(len..))).await {
                Ok((Ok(0), b)) => {
                    self.buf = b.into_inner();
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                Ok((Ok(_), b)) => self.buf = b.into_inner(),
                Ok((Err(e), b)) => {
                    self.buf = b.into_inner();
                    return Err(e);
                }
                // The read was cancelled with its buffer: the connection cannot be reused.
                Err(_) => return Err(timed_out()),
            }
        }
    }
}
