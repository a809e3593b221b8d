//! String family tests: each command run against a keyspace directly, replies compared with
//! the bytes Valkey sends.

use crate::commands::{registry, Exec, KeyCtx, Lookup};
use crate::config::Config;
use crate::keyspace::Keyspace;
use crate::resp::Out;

struct Bench {
    ks: Keyspace,
    config: Config,
    now: i64,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            ks: Keyspace::new(0, 1, 16),
            config: Config::defaults(),
            now: 1_700_000_000_000,
        }
    }

    fn run(&mut self, args: &[&str]) -> String {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let Lookup::Found(r) = registry().lookup(&argv) else {
            panic!("no command {}", args[0])
        };
        assert!(r.spec.arity_ok(argv.len()), "arity of {args:?}");
        let Exec::Key(f) = r.spec.exec else {
            panic!("not a key command")
        };
        let mut out = Out::new(false);
        let mut ctx = KeyCtx {
            ks: &mut self.ks,
            db: 0,
            now_ms: self.now,
            out: &mut out,
            config: &self.config,
        };
        f(&mut ctx, &argv);
        String::from_utf8_lossy(&out.buf).into_owned()
    }
}

/// SET with its options, and GET of the result.
#[test]
fn set_options() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["set", "k", "v"]), "+OK\r\n");
    assert_eq!(b.run(&["set", "k", "w", "nx"]), "$-1\r\n");
    assert_eq!(b.run(&["set", "k", "w", "xx", "get"]), "$1\r\nv\r\n");
    assert_eq!(b.run(&["get", "k"]), "$1\r\nw\r\n");
    assert_eq!(
        b.run(&["set", "k", "w", "nx", "xx"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        b.run(&["set", "k", "w", "ex", "0"]),
        "-ERR invalid expire time in 'set' command\r\n"
    );
    assert_eq!(
        b.run(&["set", "k", "w", "ex", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        b.run(&["set", "k", "w", "ex", "10", "px", "10"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(b.run(&["set", "k", "w", "ex"]), "-ERR syntax error\r\n");
    assert_eq!(b.run(&["set", "k", "x", "EX", "100"]), "+OK\r\n");
    assert_eq!(b.ks.dbs[0].expire_of(b"k"), Some(b.now + 100_000));
    assert_eq!(b.run(&["set", "k", "y", "keepttl"]), "+OK\r\n");
    assert_eq!(b.ks.dbs[0].expire_of(b"k"), Some(b.now + 100_000));
    assert_eq!(b.run(&["set", "k", "z"]), "+OK\r\n");
    assert_eq!(b.ks.dbs[0].expire_of(b"k"), None);
    // A deadline in the past deletes the key and still answers OK.
    assert_eq!(b.run(&["set", "k", "z", "pxat", "1"]), "+OK\r\n");
    assert_eq!(b.run(&["get", "k"]), "$-1\r\n");
    assert_eq!(b.run(&["set", "n", "1", "get"]), "$-1\r\n");
}

/// Counters: INCR family with Valkey's overflow and type errors.
#[test]
fn counters() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["incr", "c"]), ":1\r\n");
    assert_eq!(b.run(&["incrby", "c", "10"]), ":11\r\n");
    assert_eq!(
        b.run(&["decrby", "c", "-9223372036854775808"]),
        "-ERR decrement would overflow\r\n"
    );
    assert_eq!(b.run(&["set", "c", "9223372036854775807"]), "+OK\r\n");
    assert_eq!(
        b.run(&["incr", "c"]),
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(b.run(&["set", "c", " 1"]), "+OK\r\n");
    assert_eq!(
        b.run(&["incr", "c"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(b.run(&["incrbyfloat", "f", "10.5"]), "$4\r\n10.5\r\n");
    assert_eq!(b.run(&["incrbyfloat", "f", "0.1"]), "$4\r\n10.6\r\n");
    assert_eq!(
        b.run(&["incrbyfloat", "f", "abc"]),
        "-ERR value is not a valid float\r\n"
    );
}

/// APPEND, STRLEN, GETRANGE, SETRANGE on strings and integers.
#[test]
fn ranges() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["append", "s", "Hello"]), ":5\r\n");
    assert_eq!(b.run(&["append", "s", " World"]), ":11\r\n");
    assert_eq!(b.run(&["getrange", "s", "0", "3"]), "$4\r\nHell\r\n");
    assert_eq!(b.run(&["getrange", "s", "-3", "-1"]), "$3\r\nrld\r\n");
    assert_eq!(b.run(&["getrange", "s", "5", "3"]), "$0\r\n\r\n");
    assert_eq!(b.run(&["getrange", "s", "-1", "-5"]), "$0\r\n\r\n");
    assert_eq!(b.run(&["setrange", "s", "6", "Redis"]), ":11\r\n");
    assert_eq!(b.run(&["get", "s"]), "$11\r\nHello Redis\r\n");
    assert_eq!(b.run(&["setrange", "z", "3", "ab"]), ":5\r\n");
    assert_eq!(b.run(&["get", "z"]), "$5\r\n\0\0\0ab\r\n");
    assert_eq!(
        b.run(&["setrange", "z", "-1", "ab"]),
        "-ERR offset is out of range\r\n"
    );
    assert_eq!(b.run(&["setrange", "nokey", "10", ""]), ":0\r\n");
    assert_eq!(b.run(&["set", "i", "1234"]), "+OK\r\n");
    assert_eq!(b.run(&["strlen", "i"]), ":4\r\n");
    assert_eq!(b.run(&["getrange", "i", "1", "2"]), "$2\r\n23\r\n");
}

/// MGET/MSET/MSETNX on one shard.
#[test]
fn multi_on_one_shard() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["mset", "a", "1", "b", "2"]), "+OK\r\n");
    assert_eq!(
        b.run(&["mget", "a", "b", "c"]),
        "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"
    );
    assert_eq!(b.run(&["msetnx", "c", "3", "a", "9"]), ":0\r\n");
    assert_eq!(b.run(&["msetnx", "c", "3", "d", "4"]), ":1\r\n");
    assert_eq!(
        b.run(&["mset", "a", "1", "b"]),
        "-ERR wrong number of arguments for 'mset' command\r\n"
    );
}

/// LCS answers as Valkey's documentation example does.
#[test]
fn lcs_example() {
    let mut b = Bench::new();
    b.run(&["mset", "key1", "ohmytext", "key2", "mynewtext"]);
    assert_eq!(b.run(&["lcs", "key1", "key2"]), "$6\r\nmytext\r\n");
    assert_eq!(b.run(&["lcs", "key1", "key2", "len"]), ":6\r\n");
    assert_eq!(
        b.run(&["lcs", "key1", "key2", "idx", "minmatchlen", "4", "withmatchlen"]),
        "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(
        b.run(&["lcs", "key1", "key2", "len", "idx"]),
        "-ERR If you want both the length and indexes, please just use IDX.\r\n"
    );
}

/// GETEX and GETDEL change the TTL or remove the key after replying.
#[test]
fn getex_getdel() {
    let mut b = Bench::new();
    b.run(&["set", "k", "v"]);
    assert_eq!(b.run(&["getex", "k", "px", "5000"]), "$1\r\nv\r\n");
    assert_eq!(b.ks.dbs[0].expire_of(b"k"), Some(b.now + 5000));
    assert_eq!(b.run(&["getex", "k", "persist"]), "$1\r\nv\r\n");
    assert_eq!(b.ks.dbs[0].expire_of(b"k"), None);
    assert_eq!(
        b.run(&["getex", "k", "persist", "ex", "1"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(b.run(&["getdel", "k"]), "$1\r\nv\r\n");
    assert_eq!(b.run(&["get", "k"]), "$-1\r\n");
}

/// Options are compared as Valkey's C string functions compare them: a NUL ends the word, so
/// `NX\0junk` is NX and `EX\0` takes a value (Valkey's `opt[2] == '\0'`, `strcasecmp`).
#[test]
fn options_end_at_nul() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["set", "k", "v"]), "+OK\r\n");
    assert_eq!(b.run(&["set", "k", "w", "nx\0junk"]), "$-1\r\n");
    assert_eq!(
        b.run(&["set", "k", "w", "GET\0", "ex\0x", "100"]),
        "$1\r\nv\r\n"
    );
    assert_eq!(b.run(&["pttl", "k"]), ":100000\r\n");
    assert_eq!(b.run(&["set", "k", "w", "keepttl\0"]), "+OK\r\n");
    assert_eq!(b.run(&["getex", "k", "persist\0"]), "$1\r\nw\r\n");
    assert_eq!(b.run(&["ttl", "k"]), ":-1\r\n");
    assert_eq!(b.run(&["set", "k", "w", "\0nx"]), "-ERR syntax error\r\n");
    assert_eq!(b.run(&["lcs", "k", "k", "len\0"]), ":1\r\n");
}

/// INCR replaces the value with a fresh integer, which Valkey shares when it is small: a
/// COPY's private integer (refcount 1) becomes shared again after it.
#[test]
fn incr_after_copy_is_shared() {
    let mut b = Bench::new();
    b.run(&["set", "a", "5"]);
    assert_eq!(b.run(&["copy", "a", "b"]), ":1\r\n");
    assert_eq!(b.run(&["object", "refcount", "b"]), ":1\r\n");
    assert_eq!(b.run(&["incr", "b"]), ":6\r\n");
    assert_eq!(b.run(&["object", "refcount", "b"]), ":2147483647\r\n");
}

/// INCRBYFLOAT refuses a current value or an increment with a NUL byte, as Valkey's
/// string2ld does (the number would stop short of the text's length).
#[test]
fn incrbyfloat_nul() {
    let mut b = Bench::new();
    b.run(&["setrange", "k", "1", "-1"]);
    assert_eq!(
        b.run(&["incrbyfloat", "k", "1"]),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(
        b.run(&["incrbyfloat", "n", "1\0"]),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(b.run(&["incrbyfloat", "n", "1.5"]), "$3\r\n1.5\r\n");
}
