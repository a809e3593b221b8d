//! RESP on the client side: request encoding for the load path, a reply scanner that finds the
//! end of one reply without allocating (the load path only needs its kind and length), a full
//! reply decoder, and a small blocking client for set-up and inspection (PING, INFO, CLUSTER
//! SLOTS, DBSIZE…). Knows nothing of the load generator or of servers' processes.
//!
//! Replies come from the server under test, so the scanner never panics on them: a malformed
//! reply is a [`ProtocolError`], and every length is checked before it is used.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Nesting of aggregate replies the scanner follows; deeper is a protocol error (our replies
/// of interest are at most two levels deep: CLUSTER SLOTS).
const NESTING_MAX: usize = 16;
/// Largest bulk reply accepted (Valkey's default `proto-max-bulk-len`).
pub const BULK_LEN_MAX: usize = 512 * 1024 * 1024;
/// Largest aggregate element count accepted.
const AGGREGATE_LEN_MAX: usize = 64 * 1024 * 1024;

/// What a reply was, as far as the load generator cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// `+…`, `:…` and the other one-line, non-error types.
    Line,
    /// `-…` or a RESP3 blob error.
    Error,
    /// A non-null bulk string.
    Bulk,
    /// A null bulk, null array or RESP3 null.
    Null,
    /// An array, set, map, push or attribute.
    Aggregate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "protocol error in reply: {}", self.0)
    }
}

/// Appends one command as a RESP array of bulk strings.
pub fn push_command(buf: &mut Vec<u8>, args: &[&[u8]]) {
    push_header(buf, b'*', args.len());
    for a in args {
        push_bulk(buf, a);
    }
}

/// Appends `$<len>\r\n<bytes>\r\n`.
pub fn push_bulk(buf: &mut Vec<u8>, bytes: &[u8]) {
    push_header(buf, b'$', bytes.len());
    buf.extend_from_slice(bytes);
    buf.extend_from_slice(b"\r\n");
}

/// Appends `<kind><n>\r\n`.
pub fn push_header(buf: &mut Vec<u8>, kind: u8, n: usize) {
    buf.push(kind);
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// The position of the `\r\n` that ends the line starting at `from`: `Ok(None)` if it is not
/// in `buf` yet; a bare LF is a protocol error (no reply line contains one).
fn line_end(buf: &[u8], from: usize) -> Result<Option<usize>, ProtocolError> {
    let Some(rest) = buf.get(from..) else {
        return Ok(None);
    };
    match memchr::memchr(b'\n', rest) {
        None => Ok(None),
        Some(nl) if nl > 0 && rest[nl - 1] == b'\r' => Ok(Some(from + nl - 1)),
        Some(_) => Err(ProtocolError("line ends in LF without CR".into())),
    }
}

/// Parses the signed decimal of a header line.
fn parse_int(line: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            ProtocolError(format!(
                "bad integer {:?}",
                String::from_utf8_lossy(&line[..line.len().min(32)])
            ))
        })
}

/// Finds the end of the one reply at the start of `buf`: `Ok(None)` when more bytes are needed,
/// else the reply's length in bytes and its kind.
pub fn scan_reply(buf: &[u8]) -> Result<Option<(usize, ReplyKind)>, ProtocolError> {
    scan_at(buf, 0, 0)
}

/// Scans the reply starting at `at`; returns the offset just past it.
fn scan_at(
    buf: &[u8],
    at: usize,
    depth: usize,
) -> Result<Option<(usize, ReplyKind)>, ProtocolError> {
    if depth > NESTING_MAX {
        return Err(ProtocolError("replies nested too deeply".into()));
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some(eol) = line_end(buf, at + 1)? else {
        return Ok(None);
    };
    let line = &buf[at + 1..eol];
    let after_line = eol + 2;
    match kind {
        b'+' | b':' | b',' | b'#' | b'(' => Ok(Some((after_line, ReplyKind::Line))),
        b'-' => Ok(Some((after_line, ReplyKind::Error))),
        b'_' => Ok(Some((after_line, ReplyKind::Null))),
        b'$' | b'=' | b'!' => {
            let n = parse_int(line)?;
            if n == -1 && kind == b'$' {
                return Ok(Some((after_line, ReplyKind::Null)));
            }
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= BULK_LEN_MAX)
                .ok_or_else(|| ProtocolError(format!("bad bulk length {n}")))?;
            let end = after_line + n + 2;
            if buf.len() < end {
                return Ok(None);
            }
            if &buf[end - 2..end] != b"\r\n" {
                return Err(ProtocolError("bulk string not followed by CRLF".into()));
            }
            let kind = if kind == b'!' {
                ReplyKind::Error
            } else {
                ReplyKind::Bulk
            };
            Ok(Some((end, kind)))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = parse_int(line)?;
            if n == -1 && kind == b'*' {
                return Ok(Some((after_line, ReplyKind::Null)));
            }
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= AGGREGATE_LEN_MAX)
                .ok_or_else(|| ProtocolError(format!("bad aggregate length {n}")))?;
            let elements = if kind == b'%' || kind == b'|' {
                n * 2
            } else {
                n
            };
            let mut pos = after_line;
            for _ in 0..elements {
                match scan_at(buf, pos, depth + 1)? {
                    Some((end, _)) => pos = end,
                    None => return Ok(None),
                }
            }
            if kind == b'|' {
                // An attribute precedes the real reply: the pair is one reply.
                return scan_at(buf, pos, depth + 1);
            }
            Ok(Some((pos, ReplyKind::Aggregate)))
        }
        other => Err(ProtocolError(format!(
            "unknown reply type byte 0x{other:02x}"
        ))),
    }
}

/// A decoded reply (RESP2 types; RESP3 one-line types are kept as `Simple` text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Value>),
}

impl Value {
    /// The text of a simple or bulk string.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Simple(s) => Some(s.clone()),
            Value::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// Decodes one complete reply (as found by [`scan_reply`]).
pub fn decode(buf: &[u8]) -> Result<Option<(Value, usize)>, ProtocolError> {
    let Some((end, _)) = scan_reply(buf)? else {
        return Ok(None);
    };
    let (v, used) = decode_at(&buf[..end], 0)?;
    Ok(Some((v, used)))
}

/// Decodes the reply at `at` in a buffer that is known to hold it whole.
fn decode_at(buf: &[u8], at: usize) -> Result<(Value, usize), ProtocolError> {
    let incomplete = || ProtocolError("reply ended early".into());
    let kind = *buf.get(at).ok_or_else(incomplete)?;
    let eol = line_end(buf, at + 1)?.ok_or_else(incomplete)?;
    let line = &buf[at + 1..eol];
    let after = eol + 2;
    let text = || String::from_utf8_lossy(line).into_owned();
    Ok(match kind {
        b'+' | b',' | b'#' | b'(' => (Value::Simple(text()), after),
        b'-' => (Value::Error(text()), after),
        b':' => (Value::Int(parse_int(line)?), after),
        b'_' => (Value::Null, after),
        b'$' | b'=' | b'!' => {
            let n = parse_int(line)?;
            if n < 0 {
                return Ok((Value::Null, after));
            }
            let n = n as usize;
            let body = buf.get(after..after + n).ok_or_else(incomplete)?.to_vec();
            if kind == b'!' {
                (
                    Value::Error(String::from_utf8_lossy(&body).into_owned()),
                    after + n + 2,
                )
            } else {
                (Value::Bulk(body), after + n + 2)
            }
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = parse_int(line)?;
            if n < 0 {
                return Ok((Value::Null, after));
            }
            let count = if kind == b'%' { n * 2 } else { n } as usize;
            let mut items = Vec::with_capacity(count.min(1024));
            let mut pos = after;
            for _ in 0..count {
                let (v, next) = decode_at(buf, pos)?;
                items.push(v);
                pos = next;
            }
            (Value::Array(items), pos)
        }
        b'|' => {
            // An attribute: skip its pairs, the reply is what follows.
            let n = usize::try_from(parse_int(line)?).unwrap_or(0);
            let mut pos = after;
            for _ in 0..n * 2 {
                pos = decode_at(buf, pos)?.1;
            }
            decode_at(buf, pos)?
        }
        other => {
            return Err(ProtocolError(format!(
                "unknown reply type byte 0x{other:02x}"
            )))
        }
    })
}

/// How long the blocking client waits for one reply.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A blocking connection for set-up and inspection; not for the load path.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        stream.set_write_timeout(Some(CALL_TIMEOUT))?;
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn set_timeout(&mut self, t: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(t))?;
        self.stream.set_write_timeout(Some(t))
    }

    /// Sends one command and reads its reply (a server error is `Ok(Value::Error)`).
    pub fn call(&mut self, args: &[&str]) -> io::Result<Value> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call_bytes(&args)
    }

    pub fn call_bytes(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        let mut req = Vec::new();
        push_command(&mut req, args);
        self.stream.write_all(&req)?;
        self.read_reply()
    }

    /// Sends several commands in one write and reads all their replies.
    pub fn pipeline(&mut self, commands: &[Vec<Vec<u8>>]) -> io::Result<Vec<Value>> {
        let mut req = Vec::new();
        for c in commands {
            let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            push_command(&mut req, &args);
        }
        self.stream.write_all(&req)?;
        (0..commands.len()).map(|_| self.read_reply()).collect()
    }

    /// Like `call`, but a server error becomes an `io::Error` naming the command.
    pub fn call_ok(&mut self, args: &[&str]) -> io::Result<Value> {
        match self.call(args)? {
            Value::Error(e) => Err(io::Error::other(format!("{}: {e}", args.join(" ")))),
            v => Ok(v),
        }
    }

    fn read_reply(&mut self) -> io::Result<Value> {
        let mut chunk = [0u8; 16 * 1024];
        // Bounded: every pass either returns or reads at least one byte, and the read times
        // out after CALL_TIMEOUT.
        loop {
            match decode(&self.buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.0))? {
                Some((v, used)) => {
                    self.buf.drain(..used);
                    return Ok(v);
                }
                None => {
                    let n = self.stream.read(&mut chunk)?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "server closed the connection",
                        ));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
}

/// Reads one field of an INFO reply (`name:value` lines).
pub fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scanner finds each reply's end, asks for more bytes on every strict prefix, and
    /// classifies hits, misses and errors the way the load generator counts them.
    #[test]
    fn scanner_handles_every_prefix() {
        let replies: &[(&[u8], ReplyKind)] = &[
            (b"+OK\r\n", ReplyKind::Line),
            (b"-MOVED 12 127.0.0.1:7000\r\n", ReplyKind::Error),
            (b"$5\r\nhello\r\n", ReplyKind::Bulk),
            (b"$-1\r\n", ReplyKind::Null),
            (b":42\r\n", ReplyKind::Line),
            (b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", ReplyKind::Aggregate),
            (b"_\r\n", ReplyKind::Null),
            (b"%1\r\n+a\r\n:1\r\n", ReplyKind::Aggregate),
        ];
        for (bytes, kind) in replies {
            for cut in 0..bytes.len() {
                assert_eq!(
                    scan_reply(&bytes[..cut]),
                    Ok(None),
                    "{bytes:?} cut at {cut}"
                );
            }
            assert_eq!(scan_reply(bytes), Ok(Some((bytes.len(), *kind))));
            let mut two = bytes.to_vec();
            two.extend_from_slice(bytes);
            assert_eq!(scan_reply(&two), Ok(Some((bytes.len(), *kind))));
        }
    }

    /// Malformed replies are errors, never panics.
    #[test]
    fn scanner_rejects_garbage() {
        assert!(scan_reply(b"?\r\n").is_err());
        assert!(scan_reply(b"$abc\r\n").is_err());
        assert!(scan_reply(b"$-7\r\n").is_err());
        assert!(scan_reply(b"$2\r\nabcd").is_err());
        assert!(scan_reply(b"*-5\r\n").is_err());
    }

    /// The decoder rebuilds nested arrays such as CLUSTER SLOTS replies.
    #[test]
    fn decoder_builds_values() {
        let input = b"*2\r\n*3\r\n:0\r\n:5460\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n$-1\r\nrest";
        let (v, n) = decode(input).unwrap().unwrap();
        assert_eq!(n, input.len() - 4);
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Array(vec![
                    Value::Int(0),
                    Value::Int(5460),
                    Value::Array(vec![Value::Bulk(b"127.0.0.1".to_vec()), Value::Int(7000)])
                ]),
                Value::Null
            ])
        );
    }

    #[test]
    fn requests_are_resp_arrays() {
        let mut b = Vec::new();
        push_command(&mut b, &[b"SET", b"k", b"vv"]);
        assert_eq!(b, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n");
    }
}
