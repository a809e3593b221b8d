//! Malformed input: for each kind of bad request corekey must answer with Valkey's exact
//! protocol error, close the connection, and keep serving everyone else. Every case sends two
//! good commands first in the same write (their replies must come first), and ends by checking
//! that a fresh connection still gets PONG.

use corekey_tests::client::{encode, escape, parse_all, Exchange};
use corekey_tests::gen::SplitMix64;
use corekey_tests::server::Corekey;
use std::time::Duration;

/// How long a case may take from the first byte sent to the connection being closed.
const CASE_DEADLINE: Duration = Duration::from_secs(20);

/// Two good commands pipelined before the bad bytes, and their replies.
fn prefix() -> Vec<u8> {
    let mut p = encode(&["PING"]);
    p.extend(encode(&["SET", "before-bad-frame", "1"]));
    p
}
const PREFIX_REPLIES: [&[u8]; 2] = [b"+PONG\r\n", b"+OK\r\n"];

/// Checks an exchange: the prefix's replies, then `error` (a full `-ERR …\r\n` line), nothing
/// else, and the connection closed by the server; then that the server still serves.
fn check(server: &Corekey, x: &Exchange, error: &str) {
    let (frames, leftover) = parse_all(&x.received)
        .unwrap_or_else(|e| panic!("reply is not RESP ({e}): \"{}\"", escape(&x.received)));
    let got: Vec<Vec<u8>> = frames.iter().map(|f| f.raw.clone()).collect();
    let mut want: Vec<Vec<u8>> = PREFIX_REPLIES.iter().map(|r| r.to_vec()).collect();
    want.push(error.as_bytes().to_vec());
    assert!(
        got == want && leftover == 0,
        "expected replies {:?}, got \"{}\"",
        want.iter().map(|w| escape(w)).collect::<Vec<_>>(),
        escape(&x.received)
    );
    assert!(
        x.closed_by_peer,
        "the server did not close the connection within {CASE_DEADLINE:?} after \"{}\"",
        escape(error.as_bytes())
    );
    assert!(
        server.answers_ping(),
        "the server stopped answering PING after a protocol error"
    );
    let mut c = server.client();
    assert_eq!(
        c.call_text(&["GET", "before-bad-frame"]),
        "$1\r\n1\r\n",
        "the command before the bad frame was not applied"
    );
}

/// Sends prefix + `bad` in one write and checks the outcome.
fn case(bad: &[u8], error: &str) {
    let server = Corekey::start(&[]);
    let mut payload = prefix();
    payload.extend_from_slice(bad);
    let x = server
        .client()
        .write_while_reading(std::iter::once(payload), CASE_DEADLINE);
    check(&server, &x, error);
}

/// A bulk length of 2^40 (over proto-max-bulk-len) is refused before any allocation.
#[test]
fn bulk_length_2_pow_40() {
    case(
        b"*1\r\n$1099511627776\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
}

/// A negative bulk length is refused.
#[test]
fn negative_bulk_length() {
    case(
        b"*1\r\n$-5\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
}

/// An element of a multibulk that is not a bulk string is refused, naming the byte found.
#[test]
fn element_not_a_bulk_string() {
    case(
        b"*1\r\n:1\r\n",
        "-ERR Protocol error: expected '$', got ':'\r\n",
    );
}

/// A multibulk count that is not a number is refused.
#[test]
fn multibulk_count_not_a_number() {
    case(
        b"*abc\r\n",
        "-ERR Protocol error: invalid multibulk length\r\n",
    );
}

/// A multibulk of 2,000,000 arguments is refused up front (corekey caps the count at
/// 1,048,576; Valkey's cap is INT_MAX, so this case is corekey's own limit).
#[test]
fn two_million_arguments() {
    case(
        b"*2000000\r\n",
        "-ERR Protocol error: invalid multibulk length\r\n",
    );
}

/// An inline command with an unclosed quote is refused.
#[test]
fn inline_unbalanced_quotes() {
    case(
        b"set \"a\r\n",
        "-ERR Protocol error: unbalanced quotes in request\r\n",
    );
}

/// Random bytes with no newline, longer than 64 KiB, are refused as a too-big inline request.
#[test]
fn binary_garbage_without_newline() {
    let mut rng = SplitMix64::new(0x6a7b);
    let mut junk: Vec<u8> = (0..100 * 1024)
        .map(|_| rng.below(256) as u8)
        .filter(|&b| b != b'\n')
        .collect();
    // A leading '*' would make it a (bad) multibulk rather than an inline request.
    junk[0] = b'G';
    case(&junk, "-ERR Protocol error: too big inline request\r\n");
}

/// A gigabyte of inline junk streamed at the server is cut off after 64 KiB: the error comes and
/// the connection closes long before the gigabyte is sent (we stop writing once it closes).
#[test]
fn gigabyte_of_inline_junk() {
    const CHUNK: usize = 64 * 1024;
    const TOTAL: usize = 1 << 30;
    let server = Corekey::start(&[]);
    let chunks =
        std::iter::once(prefix()).chain(std::iter::repeat_n(vec![b'x'; CHUNK], TOTAL / CHUNK));
    let x = server.client().write_while_reading(chunks, CASE_DEADLINE);
    check(
        &server,
        &x,
        "-ERR Protocol error: too big inline request\r\n",
    );
    assert!(
        x.bytes_sent < 64 << 20,
        "{} bytes were accepted before the server hung up",
        x.bytes_sent
    );
}

/// A `*` followed by more than 64 KiB of digits and no CRLF is refused.
#[test]
fn too_big_multibulk_count_string() {
    let mut bad = b"*".to_vec();
    bad.extend(std::iter::repeat_n(b'1', 70 * 1024));
    case(&bad, "-ERR Protocol error: too big mbulk count string\r\n");
}

/// Half a frame followed by a close is not an error anyone sees: the server stays up and the
/// half-sent command is not executed.
#[test]
fn half_frame_then_close() {
    let server = Corekey::start(&[]);
    let mut c = server.client();
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$10\r\nhalf-frame\r\n$1")
        .expect("sending half a frame");
    drop(c);
    assert!(
        server.answers_ping(),
        "the server stopped answering after a half frame"
    );
    let mut c = server.client();
    assert_eq!(c.call_text(&["EXISTS", "half-frame"]), ":0\r\n");
    assert_eq!(c.call_text(&["DBSIZE"]), ":0\r\n");
}
