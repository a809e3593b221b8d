//! The reply writer: RESP2 and RESP3 replies appended to one output buffer.
//!
//! Commands never format protocol by hand; they call these methods, which shape the reply for
//! the connection's protocol as Valkey does (a map is `%` in RESP3 and a flat array in RESP2, a
//! null is `_` or `$-1`/`*-1`, and so on). Error replies are counted so that the caller can keep
//! `errorstats` and `failed_calls`.

use crate::util::push_i64;

/// An output buffer for one connection (or one batch of commands run for it on another shard).
#[derive(Debug, Default)]
pub struct Out {
    pub buf: Vec<u8>,
    /// RESP3 when true (HELLO 3), else RESP2.
    pub resp3: bool,
    /// Error codes ("ERR", "WRONGTYPE"…) of the error replies written since the last
    /// [`Out::take_errors`].
    errors: Vec<Box<str>>,
}

impl Out {
    pub fn new(resp3: bool) -> Out {
        Out {
            buf: Vec::new(),
            resp3,
            errors: Vec::new(),
        }
    }

    pub fn with_buf(buf: Vec<u8>, resp3: bool) -> Out {
        Out {
            buf,
            resp3,
            errors: Vec::new(),
        }
    }

    fn line(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        push_i64(&mut self.buf, n);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn len_line(&mut self, prefix: u8, n: usize) {
        self.line(prefix, i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string; `s` must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        debug_assert!(!s.contains(['\r', '\n']));
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error reply. Like Valkey's addReplyError: a message that does not start with `-`
    /// gets the `-ERR ` prefix; one that does carries its own code (`-WRONGTYPE …`). CR and LF
    /// inside the message become spaces so the protocol stays intact. The message is bytes, so
    /// that a client's argument quoted in it comes back exactly as sent, as in Valkey.
    pub fn err(&mut self, msg: impl AsRef<[u8]>) {
        let msg = msg.as_ref();
        let end = msg
            .iter()
            .rposition(|&b| b != b'\r' && b != b'\n')
            .map_or(0, |i| i + 1);
        let body = &msg[..end];
        let code = if let Some(rest) = body.strip_prefix(b"-") {
            self.buf.push(b'-');
            self.push_sanitized(rest);
            let word = rest.split(|&b| b == b' ').next().unwrap_or_default();
            String::from_utf8_lossy(word).into()
        } else {
            self.buf.extend_from_slice(b"-ERR ");
            self.push_sanitized(body);
            "ERR".into()
        };
        self.buf.extend_from_slice(b"\r\n");
        self.errors.push(code);
    }

    fn push_sanitized(&mut self, s: &[u8]) {
        self.buf.extend(
            s.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }

    /// The error codes written since the last call, oldest first.
    pub fn take_errors(&mut self) -> Vec<Box<str>> {
        std::mem::take(&mut self.errors)
    }

    /// How many error replies were written since the last [`Out::take_errors`].
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// An integer reply.
    pub fn int(&mut self, n: i64) {
        self.line(b':', n);
    }

    /// A bulk string.
    pub fn bulk(&mut self, data: &[u8]) {
        self.len_line(b'$', data.len());
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding the decimal text of `n`.
    pub fn bulk_i64(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// The null bulk string (`$-1` in RESP2, `_` in RESP3).
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The null array (`*-1` in RESP2, `_` in RESP3).
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    /// The header of an array of `n` elements.
    pub fn array(&mut self, n: usize) {
        self.len_line(b'*', n);
    }

    /// The header of a map of `n` key/value pairs (a flat array of 2n in RESP2).
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.len_line(b'%', n);
        } else {
            self.len_line(b'*', n.saturating_mul(2));
        }
    }

    /// The header of a set of `n` elements (an array in RESP2).
    pub fn set(&mut self, n: usize) {
        if self.resp3 {
            self.len_line(b'~', n);
        } else {
            self.len_line(b'*', n);
        }
    }

    /// The header of a push message of `n` elements (an array in RESP2).
    pub fn push(&mut self, n: usize) {
        if self.resp3 {
            self.len_line(b'>', n);
        } else {
            self.len_line(b'*', n);
        }
    }

    /// A boolean (`#t`/`#f` in RESP3, `:1`/`:0` in RESP2).
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(i64::from(b));
        }
    }

    /// A double already formatted as Valkey formats it (`,` in RESP3, a bulk string in RESP2).
    pub fn double_text(&mut self, text: &[u8]) {
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// A verbatim string of format `txt` (RESP3), or a bulk string (RESP2).
    pub fn verbatim(&mut self, text: &[u8]) {
        if self.resp3 {
            self.len_line(b'=', text.len().saturating_add(4));
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// Bytes already encoded as RESP (a reply produced on another shard).
    pub fn raw(&mut self, encoded: &[u8]) {
        self.buf.extend_from_slice(encoded);
    }

    /// Records errors that were written elsewhere (on another shard) into this buffer's count.
    pub fn add_errors(&mut self, codes: impl IntoIterator<Item = Box<str>>) {
        self.errors.extend(codes);
    }
}

#[cfg(test)]
mod tests {
    use super::Out;

    fn both(f: impl Fn(&mut Out)) -> (String, String) {
        let mut two = Out::new(false);
        let mut three = Out::new(true);
        f(&mut two);
        f(&mut three);
        (
            String::from_utf8(two.buf).unwrap(),
            String::from_utf8(three.buf).unwrap(),
        )
    }

    /// Each reply type is shaped per protocol as Valkey shapes it.
    #[test]
    fn shapes() {
        assert_eq!(both(|o| o.null()), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|o| o.null_array()), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|o| o.map(2)), ("*4\r\n".into(), "%2\r\n".into()));
        assert_eq!(both(|o| o.set(3)), ("*3\r\n".into(), "~3\r\n".into()));
        assert_eq!(
            both(|o| o.boolean(true)),
            (":1\r\n".into(), "#t\r\n".into())
        );
        assert_eq!(
            both(|o| o.double_text(b"1.5")),
            ("$3\r\n1.5\r\n".into(), ",1.5\r\n".into())
        );
        assert_eq!(
            both(|o| o.verbatim(b"hi")),
            ("$2\r\nhi\r\n".into(), "=6\r\ntxt:hi\r\n".into())
        );
        assert_eq!(
            both(|o| o.bulk(b"")),
            ("$0\r\n\r\n".into(), "$0\r\n\r\n".into())
        );
        assert_eq!(both(|o| o.int(-5)), (":-5\r\n".into(), ":-5\r\n".into()));
    }

    /// Errors get `-ERR ` unless they carry a code, lose inner newlines, and are counted.
    #[test]
    fn errors() {
        let mut o = Out::new(false);
        o.err("syntax error");
        o.err("-WRONGTYPE Operation against a key holding the wrong kind of value");
        o.err("bad\r\nthing\n");
        assert_eq!(
            String::from_utf8(o.buf.clone()).unwrap(),
            "-ERR syntax error\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-ERR bad  thing\r\n"
        );
        let codes: Vec<String> = o.take_errors().into_iter().map(String::from).collect();
        assert_eq!(codes, ["ERR", "WRONGTYPE", "ERR"]);
    }

    /// Bytes that are not UTF-8 (a client's argument quoted in an error) come back exactly as
    /// sent, as Valkey sends them; a message of only newlines is an empty `-ERR `.
    #[test]
    fn binary_errors() {
        let mut o = Out::new(false);
        o.err(b"unknown command 'x\xff'".as_slice());
        o.err("\r\n");
        assert_eq!(o.buf, b"-ERR unknown command 'x\xff'\r\n-ERR \r\n");
    }
}
