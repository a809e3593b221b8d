//! A small synchronous RESP client over `std::net::TcpStream`, for tests.
//!
//! Every reply comes back twice: its raw bytes exactly as the server sent them (the
//! differential test compares those byte for byte) and a parsed [`Reply`]. The parser reads
//! replies of servers under test, so it trusts nothing: every line, bulk, aggregate and nesting
//! level has a limit, it never allocates on a length it has not received, and bad bytes are an
//! error, never a panic.
//!
//! It owns the socket and the byte stream; it knows nothing of commands or servers.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest line (simple string, error, number or header) a reply may have.
pub const LINE_BYTES_MAX: usize = 1 << 20;
/// Longest bulk string (Valkey's `proto-max-bulk-len` default).
pub const BULK_BYTES_MAX: i64 = 512 * 1024 * 1024;
/// Most elements in one aggregate (array, map, set, push, attribute).
pub const AGGREGATE_LEN_MAX: i64 = 1 << 26;
/// Deepest nesting of aggregates.
pub const DEPTH_MAX: usize = 64;
/// How much is read from the socket at once.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Read and write timeout of a new connection: a server that stops answering fails the test.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One parsed reply, RESP2 or RESP3.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(Vec<u8>),
    /// Both `-` and the RESP3 blob error `!`.
    Error(Vec<u8>),
    Integer(i64),
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` and RESP3 `_` (the raw bytes tell them apart).
    Null,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(f64),
    Boolean(bool),
    Verbatim {
        format: Vec<u8>,
        text: Vec<u8>,
    },
    Push(Vec<Reply>),
    BigNumber(Vec<u8>),
    /// RESP3 attributes and the reply they annotate.
    Attribute {
        attributes: Vec<(Reply, Reply)>,
        reply: Box<Reply>,
    },
}

impl Reply {
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The bytes of a simple string, bulk string, error or verbatim string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Simple(b) | Reply::Bulk(b) | Reply::Error(b) | Reply::BigNumber(b) => Some(b),
            Reply::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// The elements of an array, set or push.
    pub fn as_list(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => Some(v),
            _ => None,
        }
    }
}

/// A reply with the exact bytes it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub raw: Vec<u8>,
    pub reply: Reply,
}

impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&escape(&self.raw))
    }
}

/// Why no reply could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection before the first byte of a reply.
    Closed,
    /// The peer closed the connection in the middle of a reply.
    Truncated,
    /// A socket error, including a timeout.
    Io(io::Error),
    /// Bytes that are not RESP.
    Protocol(String),
}

impl ReadError {
    /// Whether the peer closed the connection (cleanly or with a reset).
    pub fn is_closed(&self) -> bool {
        match self {
            ReadError::Closed | ReadError::Truncated => true,
            ReadError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ),
            ReadError::Protocol(_) => false,
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => f.write_str("connection closed by the server"),
            ReadError::Truncated => f.write_str("connection closed in the middle of a reply"),
            ReadError::Io(e) => write!(f, "I/O error: {e}"),
            ReadError::Protocol(m) => write!(f, "not RESP: {m}"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

fn protocol<T>(msg: impl Into<String>) -> Result<T, ReadError> {
    Err(ReadError::Protocol(msg.into()))
}

/// Encodes a command as a RESP multibulk.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, args);
    out
}

/// Appends a command, encoded as a RESP multibulk, to `out`.
pub fn encode_into<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Runs of one byte at least this long are shown as `[x × n]` by [`escape`].
const RUN_SHOWN_SHORT: usize = 32;

/// Shows bytes as readable text: printable ASCII as is, `\r`, `\n`, `\\`, `"` and others
/// escaped, and a long run of one byte as `[x × n]` (so a report with 9000-byte values stays
/// readable).
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().min(4096));
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let run = bytes[i..]
            .iter()
            .take(RUN_SHOWN_SHORT)
            .take_while(|&&x| x == b)
            .count();
        let run = if run == RUN_SHOWN_SHORT {
            bytes[i..].iter().take_while(|&&x| x == b).count()
        } else {
            run
        };
        if run >= RUN_SHOWN_SHORT {
            s.push('[');
            escape_byte(&mut s, b);
            s.push_str(&format!(" × {run}]"));
            i += run;
        } else {
            escape_byte(&mut s, b);
            i += 1;
        }
    }
    s
}

fn escape_byte(s: &mut String, b: u8) {
    match b {
        b'\r' => s.push_str("\\r"),
        b'\n' => s.push_str("\\n"),
        b'\t' => s.push_str("\\t"),
        b'\\' => s.push_str("\\\\"),
        b'"' => s.push_str("\\\""),
        0x20..=0x7e => s.push(char::from(b)),
        _ => s.push_str(&format!("\\x{b:02x}")),
    }
}

/// Shows a command as `"SET" "k" "v"`.
pub fn show_command<A: AsRef<[u8]>>(args: &[A]) -> String {
    args.iter()
        .map(|a| format!("\"{}\"", escape(a.as_ref())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses one reply at the start of `bytes`: `Ok(None)` if it is incomplete, else the reply and
/// how many bytes it took.
pub fn parse(bytes: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    let mut input = Input::new(bytes);
    match input.frame() {
        Ok(frame) => Ok(Some((frame, input.pos))),
        Err(ReadError::Closed | ReadError::Truncated) => Ok(None),
        Err(ReadError::Protocol(m)) => Err(m),
        Err(ReadError::Io(e)) => Err(e.to_string()),
    }
}

/// Parses every complete reply in `bytes`; also returns how many bytes are left over (an
/// incomplete last reply).
pub fn parse_all(bytes: &[u8]) -> Result<(Vec<Frame>, usize), String> {
    let mut frames = Vec::new();
    let mut at = 0;
    // Each reply takes at least 3 bytes, so this loop ends.
    while at < bytes.len() {
        match parse(&bytes[at..])? {
            Some((frame, used)) => {
                frames.push(frame);
                at += used;
            }
            None => break,
        }
    }
    Ok((frames, bytes.len() - at))
}

/// A buffered reader of replies. `buf[pos..]` is unparsed; a reply being parsed started at
/// `start`, and `scanned` is how far a line search has already looked (so long lines arriving
/// in pieces are scanned once).
struct Input<R> {
    src: R,
    buf: Vec<u8>,
    start: usize,
    pos: usize,
    scanned: usize,
}

impl<R: Read> Input<R> {
    fn new(src: R) -> Self {
        Input {
            src,
            buf: Vec::new(),
            start: 0,
            pos: 0,
            scanned: 0,
        }
    }

    /// Reads more bytes; EOF is `Closed` at a reply boundary and `Truncated` inside one.
    fn fill(&mut self) -> Result<(), ReadError> {
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        let mut attempts = 0;
        let n = loop {
            match self.src.read(&mut chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted && attempts < 100 => attempts += 1,
                Err(e) => return Err(ReadError::Io(e)),
            }
        };
        if n == 0 {
            return Err(if self.buf.len() == self.start {
                ReadError::Closed
            } else {
                ReadError::Truncated
            });
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads one whole reply and returns it with its raw bytes.
    fn frame(&mut self) -> Result<Frame, ReadError> {
        // Drop what earlier replies used, but not on every reply (that would be quadratic).
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > READ_CHUNK_BYTES {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.start = self.pos;
        self.scanned = self.pos;
        match self.value(0) {
            Ok(reply) => {
                let raw = self.buf[self.start..self.pos].to_vec();
                self.start = self.pos;
                Ok(Frame { raw, reply })
            }
            Err(e) => {
                // A later call starts again at the beginning of this reply.
                self.pos = self.start;
                Err(e)
            }
        }
    }

    /// One line without its CRLF.
    fn line(&mut self) -> Result<Vec<u8>, ReadError> {
        self.scanned = self.scanned.max(self.pos);
        // Bounded: every round reads at least one byte or fails, and the line is limited.
        loop {
            if let Some(i) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + i;
                if end == self.pos || self.buf[end - 1] != b'\r' {
                    return protocol("a line ends with a bare LF");
                }
                let line = self.buf[self.pos..end - 1].to_vec();
                self.pos = end + 1;
                self.scanned = self.pos;
                return Ok(line);
            }
            self.scanned = self.buf.len();
            if self.buf.len() - self.pos > LINE_BYTES_MAX {
                return protocol(format!("a line longer than {LINE_BYTES_MAX} bytes"));
            }
            self.fill()?;
        }
    }

    /// `n` bytes followed by CRLF.
    fn bulk(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        // `n` is bounded by BULK_BYTES_MAX, so this cannot overflow.
        let need = n + 2;
        // Bounded: every round reads at least one byte or fails.
        while self.buf.len() - self.pos < need {
            self.fill()?;
        }
        let body = &self.buf[self.pos..self.pos + n];
        if &self.buf[self.pos + n..self.pos + need] != b"\r\n" {
            return protocol("a bulk string is not followed by CRLF");
        }
        let body = body.to_vec();
        self.pos += need;
        self.scanned = self.pos;
        Ok(body)
    }

    fn value(&mut self, depth: usize) -> Result<Reply, ReadError> {
        if depth > DEPTH_MAX {
            return protocol(format!("aggregates nested deeper than {DEPTH_MAX}"));
        }
        let line = self.line()?;
        let Some((&tag, rest)) = line.split_first() else {
            return protocol("an empty line where a reply should start");
        };
        match tag {
            b'+' => Ok(Reply::Simple(rest.to_vec())),
            b'-' => Ok(Reply::Error(rest.to_vec())),
            b':' => Ok(Reply::Integer(integer(rest)?)),
            b'$' => match length(rest, BULK_BYTES_MAX)? {
                None => Ok(Reply::Null),
                Some(n) => Ok(Reply::Bulk(self.bulk(n)?)),
            },
            b'!' => match length(rest, BULK_BYTES_MAX)? {
                None => protocol("a null blob error"),
                Some(n) => Ok(Reply::Error(self.bulk(n)?)),
            },
            b'=' => match length(rest, BULK_BYTES_MAX)? {
                None => protocol("a null verbatim string"),
                Some(n) => {
                    let body = self.bulk(n)?;
                    if body.len() < 4 || body[3] != b':' {
                        return protocol("a verbatim string without its 3-byte format");
                    }
                    Ok(Reply::Verbatim {
                        format: body[..3].to_vec(),
                        text: body[4..].to_vec(),
                    })
                }
            },
            b'*' => match length(rest, AGGREGATE_LEN_MAX)? {
                None => Ok(Reply::Null),
                Some(n) => Ok(Reply::Array(self.list(n, depth)?)),
            },
            b'~' => match length(rest, AGGREGATE_LEN_MAX)? {
                None => protocol("a null set"),
                Some(n) => Ok(Reply::Set(self.list(n, depth)?)),
            },
            b'>' => match length(rest, AGGREGATE_LEN_MAX)? {
                None => protocol("a null push"),
                Some(n) => Ok(Reply::Push(self.list(n, depth)?)),
            },
            b'%' => match length(rest, AGGREGATE_LEN_MAX)? {
                None => protocol("a null map"),
                Some(n) => Ok(Reply::Map(self.pairs(n, depth)?)),
            },
            b'|' => match length(rest, AGGREGATE_LEN_MAX)? {
                None => protocol("a null attribute"),
                Some(n) => {
                    let attributes = self.pairs(n, depth)?;
                    let reply = Box::new(self.value(depth + 1)?);
                    Ok(Reply::Attribute { attributes, reply })
                }
            },
            b'_' if rest.is_empty() => Ok(Reply::Null),
            b'#' => match rest {
                b"t" => Ok(Reply::Boolean(true)),
                b"f" => Ok(Reply::Boolean(false)),
                _ => protocol(format!("a bad boolean \"{}\"", escape(rest))),
            },
            b',' => match std::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
            {
                Some(d) => Ok(Reply::Double(d)),
                None => protocol(format!("a bad double \"{}\"", escape(rest))),
            },
            b'(' => {
                let digits = rest.strip_prefix(b"-").unwrap_or(rest);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return protocol(format!("a bad big number \"{}\"", escape(rest)));
                }
                Ok(Reply::BigNumber(rest.to_vec()))
            }
            _ => protocol(format!(
                "a line that starts no reply: \"{}\"",
                escape(&line)
            )),
        }
    }

    fn list(&mut self, n: usize, depth: usize) -> Result<Vec<Reply>, ReadError> {
        // Never reserve on a count the server sent: grow as elements arrive.
        let mut items = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }

    fn pairs(&mut self, n: usize, depth: usize) -> Result<Vec<(Reply, Reply)>, ReadError> {
        let mut items = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            items.push((k, v));
        }
        Ok(items)
    }
}

/// A strict RESP integer: an optional `-` and decimal digits that fit an i64.
fn integer(text: &[u8]) -> Result<i64, ReadError> {
    let ok = !text.is_empty()
        && text != b"-"
        && text
            .iter()
            .enumerate()
            .all(|(i, &b)| b.is_ascii_digit() || (i == 0 && b == b'-'));
    match std::str::from_utf8(text)
        .ok()
        .filter(|_| ok)
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(n) => Ok(n),
        None => protocol(format!("a bad integer \"{}\"", escape(text))),
    }
}

/// A length header: -1 is null (`None`), otherwise 0..=max.
fn length(text: &[u8], max: i64) -> Result<Option<usize>, ReadError> {
    match integer(text)? {
        -1 => Ok(None),
        n if (0..=max).contains(&n) => Ok(Some(n as usize)),
        n => protocol(format!("a length {n} outside -1..={max}")),
    }
}

/// A pipeline that did not get all its replies: the ones it got, and why it stopped.
#[derive(Debug)]
pub struct PipelineError {
    pub expected: usize,
    pub replies: Vec<Frame>,
    pub error: ReadError,
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last: Vec<&Frame> = self.replies.iter().rev().take(3).collect();
        write!(
            f,
            "{} after {} of {} replies; the last ones, newest first: {}",
            self.error,
            self.replies.len(),
            self.expected,
            show_frames_ref(&last)
        )
    }
}

/// What [`Conn::write_while_reading`] saw.
#[derive(Debug)]
pub struct Exchange {
    /// Every byte the server sent.
    pub received: Vec<u8>,
    /// How many bytes were written before the writer stopped.
    pub bytes_sent: u64,
    /// Whether the server closed the connection (EOF or reset) before the deadline.
    pub closed_by_peer: bool,
}

/// One client connection.
pub struct Conn {
    input: Input<TcpStream>,
    /// A second handle on the same socket, so a pipeline can be written while replies are read.
    writer: TcpStream,
    addr: SocketAddr,
}

impl Conn {
    /// Connects with [`IO_TIMEOUT`] for connecting, reading and writing.
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let writer = stream.try_clone()?;
        Ok(Conn {
            input: Input::new(stream),
            writer,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The socket, to change options or shut it down.
    pub fn stream(&self) -> &TcpStream {
        &self.writer
    }

    /// Sets the read timeout (None: block forever — avoid).
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.writer
            .set_read_timeout(Some(timeout))
            .expect("setting a read timeout");
    }

    /// Sends one command as a multibulk.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.writer.write_all(&encode(args))
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> Result<Frame, ReadError> {
        self.input.frame()
    }

    /// Sends a command and reads its reply.
    pub fn try_call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame, ReadError> {
        self.send(args)?;
        self.read_reply()
    }

    /// Sends a command and reads its reply; panics (failing the test) if there is none.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Frame {
        match self.try_call(args) {
            Ok(f) => f,
            Err(e) => panic!("{} to {}: {e}", show_command(args), self.addr),
        }
    }

    /// Sends a command and returns the raw reply as text, for short assertions.
    pub fn call_text<A: AsRef<[u8]>>(&mut self, args: &[A]) -> String {
        String::from_utf8_lossy(&self.call(args).raw).into_owned()
    }

    /// Writes all commands in one write (from another thread, so a large pipeline cannot
    /// deadlock on full socket buffers) and reads one reply per command, in order.
    pub fn pipeline<C: AsRef<[A]>, A: AsRef<[u8]>>(
        &mut self,
        commands: &[C],
    ) -> Result<Vec<Frame>, PipelineError> {
        let mut bytes = Vec::new();
        for c in commands {
            encode_into(&mut bytes, c.as_ref());
        }
        self.pipeline_raw(&bytes, commands.len())
    }

    /// Writes `bytes` (from another thread) and reads `replies` replies.
    pub fn pipeline_raw(
        &mut self,
        bytes: &[u8],
        replies: usize,
    ) -> Result<Vec<Frame>, PipelineError> {
        let writer = &mut self.writer;
        let input = &mut self.input;
        std::thread::scope(|s| {
            let write = s.spawn(move || writer.write_all(bytes));
            let mut frames = Vec::with_capacity(replies);
            let mut failure = None;
            for _ in 0..replies {
                match input.frame() {
                    Ok(f) => frames.push(f),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if failure.is_some() {
                // Unblock the writer if the server stopped reading.
                let _ = input.src.shutdown(Shutdown::Both);
            }
            let written = write.join().expect("the pipeline writer panicked");
            let error = match (failure, written) {
                (None, Ok(())) => return Ok(frames),
                (Some(e), _) => e,
                (None, Err(e)) => ReadError::Io(e),
            };
            Err(PipelineError {
                expected: replies,
                replies: frames,
                error,
            })
        })
    }

    /// Reads until the server closes the connection (replies already sent are returned), or
    /// fails when `deadline` passes or the bytes are not RESP.
    pub fn read_until_closed(&mut self, deadline: Duration) -> Result<Vec<Frame>, String> {
        let end = Instant::now() + deadline;
        let mut frames = Vec::new();
        // Bounded by the deadline: every read waits at most until `end`.
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "the connection was still open after {deadline:?}; replies so far: {}",
                    show_frames(&frames)
                ));
            }
            self.writer
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            match self.input.frame() {
                Ok(f) => frames.push(f),
                Err(e) if e.is_closed() => return Ok(frames),
                Err(e) => return Err(format!("{e}; replies so far: {}", show_frames(&frames))),
            }
        }
    }

    /// Writes `chunks` from another thread, stopping at the first failed write or once the
    /// server closed the connection, while this thread collects every byte the server sends
    /// until it closes the connection or `deadline` passes. For floods of bad input, where the
    /// server is expected to answer with an error and hang up while we are still writing.
    pub fn write_while_reading<I>(mut self, chunks: I, deadline: Duration) -> Exchange
    where
        I: Iterator<Item = Vec<u8>> + Send,
    {
        let stop = AtomicBool::new(false);
        let end = Instant::now() + deadline;
        let mut received = self.input.buf[self.input.pos..].to_vec();
        let mut closed_by_peer = false;
        let reader = &mut self.input.src;
        let writer = &mut self.writer;
        let stop_ref = &stop;
        let bytes_sent = std::thread::scope(|s| {
            let write = s.spawn(move || {
                let mut sent = 0u64;
                for chunk in chunks {
                    if stop_ref.load(Ordering::Relaxed) || writer.write_all(&chunk).is_err() {
                        break;
                    }
                    sent += chunk.len() as u64;
                }
                sent
            });
            let mut chunk = vec![0u8; READ_CHUNK_BYTES];
            // Bounded by the deadline: each read waits at most 100 ms.
            while Instant::now() < end {
                let _ = reader.set_read_timeout(Some(Duration::from_millis(100)));
                match reader.read(&mut chunk) {
                    Ok(0) => {
                        closed_by_peer = true;
                        break;
                    }
                    Ok(n) => received.extend_from_slice(&chunk[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => {
                        closed_by_peer = ReadError::Io(e).is_closed();
                        break;
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
            // Unblock a writer stuck on a full socket buffer.
            let _ = reader.shutdown(Shutdown::Both);
            write.join().expect("the flood writer panicked")
        });
        Exchange {
            received,
            bytes_sent,
            closed_by_peer,
        }
    }
}

fn show_frames(frames: &[Frame]) -> String {
    show_frames_ref(&frames.iter().collect::<Vec<_>>())
}

fn show_frames_ref(frames: &[&Frame]) -> String {
    frames
        .iter()
        .map(|f| format!("\"{f}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Reply {
        let (frame, used) = parse(bytes).expect("valid RESP").expect("complete");
        assert_eq!(used, bytes.len());
        assert_eq!(frame.raw, bytes);
        frame.reply
    }

    /// Every RESP2 and RESP3 type parses into its variant and keeps its raw bytes.
    #[test]
    fn parses_every_type() {
        assert_eq!(one(b"+OK\r\n"), Reply::Simple(b"OK".to_vec()));
        assert_eq!(one(b"-ERR x\r\n"), Reply::Error(b"ERR x".to_vec()));
        assert_eq!(one(b":-12\r\n"), Reply::Integer(-12));
        assert_eq!(one(b"$3\r\na\r\n\r\n"), Reply::Bulk(b"a\r\n".to_vec()));
        assert_eq!(one(b"$0\r\n\r\n"), Reply::Bulk(Vec::new()));
        assert_eq!(one(b"$-1\r\n"), Reply::Null);
        assert_eq!(one(b"*-1\r\n"), Reply::Null);
        assert_eq!(one(b"_\r\n"), Reply::Null);
        assert_eq!(
            one(b"*2\r\n:1\r\n*0\r\n"),
            Reply::Array(vec![Reply::Integer(1), Reply::Array(vec![])])
        );
        assert_eq!(
            one(b"%1\r\n+a\r\n#t\r\n"),
            Reply::Map(vec![(Reply::Simple(b"a".to_vec()), Reply::Boolean(true))])
        );
        assert_eq!(
            one(b"~1\r\n#f\r\n"),
            Reply::Set(vec![Reply::Boolean(false)])
        );
        assert_eq!(one(b",1.5\r\n"), Reply::Double(1.5));
        assert_eq!(one(b",-inf\r\n"), Reply::Double(f64::NEG_INFINITY));
        assert_eq!(
            one(b"=7\r\ntxt:abc\r\n"),
            Reply::Verbatim {
                format: b"txt".to_vec(),
                text: b"abc".to_vec()
            }
        );
        assert_eq!(
            one(b">2\r\n+a\r\n:1\r\n"),
            Reply::Push(vec![Reply::Simple(b"a".to_vec()), Reply::Integer(1)])
        );
        assert_eq!(
            one(b"(-123456789012345678901234567890\r\n"),
            Reply::BigNumber(b"-123456789012345678901234567890".to_vec())
        );
        assert_eq!(one(b"!3\r\nERR\r\n"), Reply::Error(b"ERR".to_vec()));
        assert_eq!(
            one(b"|1\r\n+k\r\n:1\r\n:2\r\n"),
            Reply::Attribute {
                attributes: vec![(Reply::Simple(b"k".to_vec()), Reply::Integer(1))],
                reply: Box::new(Reply::Integer(2))
            }
        );
    }

    /// Incomplete input asks for more, and several replies in one buffer are split exactly.
    #[test]
    fn incomplete_and_pipelined() {
        for cut in 0..b"*2\r\n$1\r\na\r\n:1\r\n".len() {
            assert_eq!(
                parse(&b"*2\r\n$1\r\na\r\n:1\r\n"[..cut]),
                Ok(None),
                "cut at {cut}"
            );
        }
        let (frames, rest) = parse_all(b"+OK\r\n:1\r\n$1\r\nx\r\n$5\r\nab").unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2].raw, b"$1\r\nx\r\n");
        assert_eq!(rest, 6);
    }

    /// Bytes that are not RESP are errors, not panics or huge allocations.
    #[test]
    fn rejects_garbage() {
        for bad in [
            &b"hello\r\n"[..],
            b":12a\r\n",
            b":\r\n",
            b":-\r\n",
            b":99999999999999999999\r\n",
            b"$-2\r\n",
            b"$1099511627776\r\n",
            b"*-5\r\n",
            b"$1\r\nab\r\n",
            b"+OK\n",
            b"#x\r\n",
            b",abc\r\n",
            b"=2\r\nab\r\n",
            b"(12x\r\n",
            b"\r\n",
        ] {
            assert!(parse(bad).is_err(), "{} should be rejected", escape(bad));
        }
        let deep = b"*1\r\n".repeat(DEPTH_MAX + 2);
        assert!(parse(&deep).is_err());
        let long = vec![b'+'; LINE_BYTES_MAX + 2];
        assert!(parse(&long).is_err());
    }

    /// A command is encoded as a multibulk of bulk strings, binary-safe.
    #[test]
    fn encodes_multibulk() {
        assert_eq!(
            encode(&["SET", "k", ""]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
        );
        assert_eq!(encode(&[&b"a\r\nb"[..]]), b"*1\r\n$4\r\na\r\nb\r\n");
        assert_eq!(escape(b"a\r\n\x00\"\\"), "a\\r\\n\\x00\\\"\\\\");
    }
}
