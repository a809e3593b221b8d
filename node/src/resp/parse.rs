//! The request parser: RESP multibulk (`*N\r\n$len\r\n...`) and inline commands, as Valkey's
//! `processMultibulkBuffer` and `processInlineBuffer` parse them, with the same errors.
//!
//! The parser is incremental. The connection appends bytes to its read buffer and calls
//! [`Parser::parse`]; complete commands are appended to the batch as argument ranges into that
//! buffer (inline arguments, which quoting may change, are copied into `inline_store`). A command
//! cut in the middle keeps its progress in the parser, so a 500 MB argument is scanned once, not
//! once per read. Every length read off the wire is checked against a limit before it is used.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

use super::split::split_args;

/// Longest inline command line, and longest `*N`/`$N` header line (Valkey's PROTO_INLINE_MAX_SIZE).
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;
/// Most arguments in one command. Valkey 8 allows up to INT_MAX; corekey keeps the classic
/// 1M bound (Redis before 7.0) so that a header cannot announce work the node will never do.
pub const MULTIBULK_MAX_ARGS: i64 = 1024 * 1024;
/// Most arguments a client that has not authenticated may send in one command (Valkey).
pub const UNAUTH_MULTIBULK_MAX: i64 = 10;
/// Longest argument a client that has not authenticated may send (Valkey).
pub const UNAUTH_BULK_MAX: i64 = 16384;
/// Arguments at least this long get a read buffer sized for them (Valkey's PROTO_MBULK_BIG_ARG).
pub const PROTO_MBULK_BIG_ARG: usize = 32 * 1024;

/// A malformed request. Each maps to Valkey's error text; the connection is closed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    BigInlineRequest,
    BigMultibulkCount,
    InvalidMultibulkLength,
    UnauthenticatedMultibulkLength,
    UnauthenticatedBulkLength,
    BigBulkCount,
    ExpectedDollar(u8),
    InvalidBulkLength,
    UnbalancedQuotes,
}

impl ProtoError {
    /// The error reply text, without the leading `-ERR ` and the trailing CRLF.
    pub fn message(self) -> String {
        match self {
            ProtoError::BigInlineRequest => "Protocol error: too big inline request".into(),
            ProtoError::BigMultibulkCount => "Protocol error: too big mbulk count string".into(),
            ProtoError::InvalidMultibulkLength => "Protocol error: invalid multibulk length".into(),
            ProtoError::UnauthenticatedMultibulkLength => {
                "Protocol error: unauthenticated multibulk length".into()
            }
            ProtoError::UnauthenticatedBulkLength => {
                "Protocol error: unauthenticated bulk length".into()
            }
            ProtoError::BigBulkCount => "Protocol error: too big bulk count string".into(),
            ProtoError::ExpectedDollar(c) => {
                format!("Protocol error: expected '$', got '{}'", char::from(c))
            }
            ProtoError::InvalidBulkLength => "Protocol error: invalid bulk length".into(),
            ProtoError::UnbalancedQuotes => "Protocol error: unbalanced quotes in request".into(),
        }
    }
}

/// The limits that apply while parsing, taken from the configuration and the client's state.
#[derive(Debug, Clone, Copy)]
pub struct ProtoLimits {
    /// `proto-max-bulk-len`.
    pub max_bulk_len: u64,
    /// Whether the client still has to authenticate (tighter limits apply).
    pub auth_required: bool,
}

/// One argument: a byte range in the read buffer, or (for inline commands) in `inline_store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    pub start: usize,
    pub end: usize,
    pub inline: bool,
}

/// One parsed command: `argc` arguments starting at `first` in [`Parser::args`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmd {
    pub first: usize,
    pub argc: usize,
}

/// Incremental request parser; see the module documentation.
#[derive(Debug, Default)]
pub struct Parser {
    /// Next byte of the buffer to look at.
    pos: usize,
    /// Where the command in progress started (everything before it may be dropped).
    cmd_start: usize,
    /// Arguments still to read for the multibulk command in progress; 0 when none is.
    mbulk_left: usize,
    /// Length of the bulk argument whose header has been read, if any.
    bulk_len: Option<usize>,
    /// Arguments of the command in progress.
    partial: Vec<Arg>,
    /// All arguments of the complete commands of this batch.
    pub args: Vec<Arg>,
    /// The complete commands of this batch, in order.
    pub cmds: Vec<Cmd>,
    /// Unquoted arguments of inline commands.
    pub inline_store: Vec<u8>,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Parses complete commands from `buf[pos..]`, appending them to the batch, until the
    /// buffer ends, `max_cmds` commands are in the batch, or a protocol error. On error the
    /// commands parsed before it stay in the batch (Valkey runs them before replying the error).
    pub fn parse(
        &mut self,
        buf: &[u8],
        limits: &ProtoLimits,
        max_cmds: usize,
    ) -> Result<(), ProtoError> {
        while self.pos < buf.len() && self.cmds.len() < max_cmds {
            let done = if self.mbulk_left > 0 {
                self.parse_multibulk_args(buf, limits)?
            } else {
                match buf.get(self.pos) {
                    Some(b'*') => self.parse_multibulk_header(buf, limits)?,
                    Some(_) => self.parse_inline(buf)?,
                    None => false,
                }
            };
            if !done {
                break;
            }
        }
        Ok(())
    }

    /// Bytes at the start of the buffer that no command needs any more.
    pub fn consumed(&self) -> usize {
        self.cmd_start
    }

    /// Whether a command is partly read (its bytes are still needed).
    pub fn in_progress(&self) -> bool {
        self.pos > self.cmd_start
    }

    /// The caller removed the first `n` bytes (at most [`Parser::consumed`]) of the buffer,
    /// after the batch was executed and cleared.
    pub fn drained(&mut self, n: usize) {
        assert!(n <= self.cmd_start, "drained bytes a command still needs");
        assert!(
            self.cmds.is_empty(),
            "drained while a batch refers to the buffer"
        );
        // Every position below is at least `cmd_start`, which is at least `n`.
        self.pos = self.pos.saturating_sub(n);
        self.cmd_start = self.cmd_start.saturating_sub(n);
        for a in &mut self.partial {
            a.start = a.start.saturating_sub(n);
            a.end = a.end.saturating_sub(n);
        }
    }

    /// Forgets the batch (after it was executed); the command in progress is kept.
    pub fn clear_batch(&mut self) {
        self.args.clear();
        self.cmds.clear();
        self.inline_store.clear();
    }

    /// How many more bytes the argument being read needs, when it is a big one (so that the
    /// caller can size its buffer once instead of growing it step by step).
    pub fn big_arg_missing(&self, buf_len: usize) -> Option<usize> {
        let want = self.bulk_len?;
        if want < PROTO_MBULK_BIG_ARG {
            return None;
        }
        let have = buf_len.saturating_sub(self.pos);
        want.saturating_add(2).checked_sub(have)
    }

    /// The bytes of argument `a` of this batch.
    pub fn arg<'a>(&'a self, buf: &'a [u8], a: Arg) -> &'a [u8] {
        let src = if a.inline {
            &self.inline_store[..]
        } else {
            buf
        };
        src.get(a.start..a.end).unwrap_or_default()
    }

    /// Returns `Ok(true)` when a command was completed (or an empty one skipped).
    fn parse_multibulk_header(
        &mut self,
        buf: &[u8],
        limits: &ProtoLimits,
    ) -> Result<bool, ProtoError> {
        let rest = buf.get(self.pos..).unwrap_or_default();
        let Some(cr) = memchr::memchr(b'\r', rest) else {
            if rest.len() > PROTO_INLINE_MAX_SIZE {
                return Err(ProtoError::BigMultibulkCount);
            }
            return Ok(false);
        };
        // The line must be followed by its '\n' (Valkey only checks that a byte is there).
        if cr.saturating_add(2) > rest.len() {
            return Ok(false);
        }
        let digits = rest.get(1..cr).unwrap_or_default();
        let count = match crate::util::parse_i64(digits) {
            Some(n) if n <= MULTIBULK_MAX_ARGS => n,
            _ => return Err(ProtoError::InvalidMultibulkLength),
        };
        if count > UNAUTH_MULTIBULK_MAX && limits.auth_required {
            return Err(ProtoError::UnauthenticatedMultibulkLength);
        }
        self.pos = self.pos.saturating_add(cr).saturating_add(2);
        if count <= 0 {
            // An empty command: nothing to run.
            self.cmd_start = self.pos;
            return Ok(true);
        }
        // `count` is bounded by MULTIBULK_MAX_ARGS above; reserve little, grow as args arrive.
        self.mbulk_left = usize::try_from(count).unwrap_or(0);
        self.partial.clear();
        self.partial.reserve(self.mbulk_left.min(1024));
        self.parse_multibulk_args(buf, limits)
    }

    fn parse_multibulk_args(
        &mut self,
        buf: &[u8],
        limits: &ProtoLimits,
    ) -> Result<bool, ProtoError> {
        while self.mbulk_left > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let rest = buf.get(self.pos..).unwrap_or_default();
                    let Some(cr) = memchr::memchr(b'\r', rest) else {
                        if rest.len() > PROTO_INLINE_MAX_SIZE {
                            return Err(ProtoError::BigBulkCount);
                        }
                        return Ok(false);
                    };
                    if cr.saturating_add(2) > rest.len() {
                        return Ok(false);
                    }
                    match rest.first() {
                        Some(b'$') => {}
                        Some(&c) => return Err(ProtoError::ExpectedDollar(c)),
                        None => return Ok(false),
                    }
                    let digits = rest.get(1..cr).unwrap_or_default();
                    let len = match crate::util::parse_i64(digits) {
                        Some(n) if n >= 0 && (n as u64) <= limits.max_bulk_len => n,
                        _ => return Err(ProtoError::InvalidBulkLength),
                    };
                    if len > UNAUTH_BULK_MAX && limits.auth_required {
                        return Err(ProtoError::UnauthenticatedBulkLength);
                    }
                    self.pos = self.pos.saturating_add(cr).saturating_add(2);
                    let len = usize::try_from(len).map_err(|_| ProtoError::InvalidBulkLength)?;
                    self.bulk_len = Some(len);
                    len
                }
            };
            let end = self.pos.saturating_add(len);
            // The argument and its trailing CRLF (which, like Valkey, we skip unchecked).
            if end.saturating_add(2) > buf.len() {
                return Ok(false);
            }
            self.partial.push(Arg {
                start: self.pos,
                end,
                inline: false,
            });
            self.pos = end.saturating_add(2);
            self.bulk_len = None;
            self.mbulk_left = self.mbulk_left.saturating_sub(1);
        }
        let first = self.args.len();
        let argc = self.partial.len();
        self.args.append(&mut self.partial);
        self.cmds.push(Cmd { first, argc });
        self.cmd_start = self.pos;
        Ok(true)
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<bool, ProtoError> {
        let rest = buf.get(self.pos..).unwrap_or_default();
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            if rest.len() > PROTO_INLINE_MAX_SIZE {
                return Err(ProtoError::BigInlineRequest);
            }
            return Ok(false);
        };
        let mut line = rest.get(..nl).unwrap_or_default();
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        let words = split_args(line).ok_or(ProtoError::UnbalancedQuotes)?;
        self.pos = self.pos.saturating_add(nl).saturating_add(1);
        self.cmd_start = self.pos;
        if words.is_empty() {
            return Ok(true);
        }
        let first = self.args.len();
        for w in &words {
            let start = self.inline_store.len();
            self.inline_store.extend_from_slice(w);
            self.args.push(Arg {
                start,
                end: self.inline_store.len(),
                inline: true,
            });
        }
        self.cmds.push(Cmd {
            first,
            argc: words.len(),
        });
        Ok(true)
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    const LIMITS: ProtoLimits = ProtoLimits {
        max_bulk_len: 512 * 1024 * 1024,
        auth_required: false,
    };

    fn parse_all(input: &[u8]) -> (Vec<Vec<Vec<u8>>>, Result<(), ProtoError>) {
        let mut p = Parser::new();
        let r = p.parse(input, &LIMITS, usize::MAX);
        let cmds = p
            .cmds
            .iter()
            .map(|c| {
                p.args[c.first..c.first + c.argc]
                    .iter()
                    .map(|&a| p.arg(input, a).to_vec())
                    .collect()
            })
            .collect();
        (cmds, r)
    }

    fn words(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    /// A pipeline of multibulk and inline commands parses into the same argument lists.
    #[test]
    fn pipeline_of_both_kinds() {
        let (cmds, r) = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\nset k \"v w\"\n");
        assert_eq!(r, Ok(()));
        assert_eq!(
            cmds,
            vec![
                words(&["GET", "a"]),
                words(&["PING"]),
                words(&["set", "k", "v w"])
            ]
        );
    }

    /// Empty commands (`*0`, `*-1`, blank inline lines) are skipped, not run.
    #[test]
    fn empty_commands_are_skipped() {
        let (cmds, r) = parse_all(b"*0\r\n*-1\r\n\r\n\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(r, Ok(()));
        assert_eq!(cmds, vec![words(&["PING"])]);
    }

    /// Feeding the input one byte at a time gives the same commands: progress is kept.
    #[test]
    fn byte_at_a_time() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nECHO x\r\n";
        let mut p = Parser::new();
        for end in 1..=input.len() {
            p.parse(&input[..end], &LIMITS, usize::MAX).unwrap();
        }
        assert_eq!(p.cmds.len(), 2);
        assert_eq!(p.consumed(), input.len());
    }

    /// Each malformed header gets Valkey's error.
    #[test]
    fn protocol_errors() {
        let cases: &[(&[u8], ProtoError)] = &[
            (b"*1\r\n$1099511627776\r\n", ProtoError::InvalidBulkLength),
            (b"*1\r\n$-1\r\n", ProtoError::InvalidBulkLength),
            (b"*1\r\n$abc\r\n", ProtoError::InvalidBulkLength),
            (b"*-\r\n", ProtoError::InvalidMultibulkLength),
            (b"*2000000\r\n", ProtoError::InvalidMultibulkLength),
            (
                b"*99999999999999999999\r\n",
                ProtoError::InvalidMultibulkLength,
            ),
            (b"*1\r\n:1\r\n", ProtoError::ExpectedDollar(b':')),
            (b"set \"a\r\n", ProtoError::UnbalancedQuotes),
        ];
        for (input, want) in cases {
            let (cmds, r) = parse_all(input);
            assert!(cmds.is_empty());
            assert_eq!(r, Err(*want), "input {:?}", String::from_utf8_lossy(input));
        }
    }

    /// Header lines and inline lines longer than 64 KiB without a line end are refused.
    #[test]
    fn oversized_lines() {
        let junk = vec![b'x'; PROTO_INLINE_MAX_SIZE + 1];
        assert_eq!(parse_all(&junk).1, Err(ProtoError::BigInlineRequest));
        let mut star = b"*".to_vec();
        star.extend_from_slice(&junk);
        assert_eq!(parse_all(&star).1, Err(ProtoError::BigMultibulkCount));
        let mut bulk = b"*1\r\n".to_vec();
        bulk.extend_from_slice(&junk);
        assert_eq!(parse_all(&bulk).1, Err(ProtoError::BigBulkCount));
    }

    /// Before AUTH, a command may have at most 10 arguments of at most 16 KiB.
    #[test]
    fn unauthenticated_limits() {
        let lim = ProtoLimits {
            auth_required: true,
            ..LIMITS
        };
        let mut p = Parser::new();
        assert_eq!(
            p.parse(b"*11\r\n", &lim, usize::MAX),
            Err(ProtoError::UnauthenticatedMultibulkLength)
        );
        let mut p = Parser::new();
        assert_eq!(
            p.parse(b"*1\r\n$16385\r\n", &lim, usize::MAX),
            Err(ProtoError::UnauthenticatedBulkLength)
        );
    }

    /// Commands before an error in the same buffer are kept, so they run before the error reply.
    #[test]
    fn commands_before_an_error_are_kept() {
        let (cmds, r) = parse_all(b"PING\r\n*1\r\n$x\r\n");
        assert_eq!(cmds, vec![words(&["PING"])]);
        assert_eq!(r, Err(ProtoError::InvalidBulkLength));
    }

    /// After draining consumed bytes, a half-read command continues where it stopped.
    #[test]
    fn drain_keeps_partial_command() {
        let mut buf = b"PING\r\n*2\r\n$4\r\nECHO\r\n$5\r\nhel".to_vec();
        let mut p = Parser::new();
        p.parse(&buf, &LIMITS, usize::MAX).unwrap();
        assert_eq!(p.cmds.len(), 1);
        p.clear_batch();
        let n = p.consumed();
        buf.drain(..n);
        p.drained(n);
        buf.extend_from_slice(b"lo\r\n");
        p.parse(&buf, &LIMITS, usize::MAX).unwrap();
        assert_eq!(p.cmds.len(), 1);
        let c = p.cmds[0];
        let got: Vec<&[u8]> = p.args[c.first..c.first + c.argc]
            .iter()
            .map(|&a| p.arg(&buf, a))
            .collect();
        assert_eq!(got, vec![&b"ECHO"[..], &b"hello"[..]]);
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the parser, whatever way they are cut.
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512), cut in 0usize..512) {
            let mut p = Parser::new();
            let cut = cut.min(data.len());
            if p.parse(&data[..cut], &LIMITS, usize::MAX).is_ok() {
                let _ = p.parse(&data, &LIMITS, usize::MAX);
            }
        }
    }
}
