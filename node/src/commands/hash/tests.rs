//! Hash family tests: each command run against a keyspace directly, replies compared with the
//! bytes Valkey 8 sends (checked against a running valkey-server while writing them).

use crate::commands::{registry, Exec, KeyCtx, Lookup};
use crate::config::Config;
use crate::keyspace::encoding::Limits;
use crate::keyspace::Keyspace;
use crate::resp::Out;
use std::collections::BTreeSet;

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

struct Bench {
    ks: Keyspace,
    config: Config,
    now: i64,
    resp3: bool,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            ks: Keyspace::new(0, 1, 16),
            config: Config::defaults(),
            now: 1_700_000_000_000,
            resp3: false,
        }
    }

    fn run_bytes(&mut self, argv: &[&[u8]]) -> Vec<u8> {
        let Lookup::Found(r) = registry().lookup(argv) else {
            panic!("no command {:?}", argv[0])
        };
        let mut out = Out::new(self.resp3);
        if !r.spec.arity_ok(argv.len()) {
            out.err(crate::commands::arity_error(&r.fullname));
            return out.buf;
        }
        let Exec::Key(f) = r.spec.exec else {
            panic!("not a key command")
        };
        let mut ctx = KeyCtx {
            ks: &mut self.ks,
            db: 0,
            now_ms: self.now,
            out: &mut out,
            config: &self.config,
        };
        f(&mut ctx, argv);
        out.buf
    }

    fn run(&mut self, args: &[&str]) -> String {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        String::from_utf8_lossy(&self.run_bytes(&argv)).into_owned()
    }

    fn encoding(&mut self, key: &str) -> String {
        self.run(&["object", "encoding", key])
    }
}

/// A bulk string reply.
fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

/// An array of bulk strings.
fn bulks(items: &[&str]) -> String {
    let mut s = format!("*{}\r\n", items.len());
    for i in items {
        s += &bulk(i);
    }
    s
}

/// The bulk strings of a flat reply (array headers skipped), in order.
fn items(reply: &str) -> Vec<String> {
    let mut lines = reply.split("\r\n");
    let mut out = Vec::new();
    while let Some(l) = lines.next() {
        if l.starts_with('$') {
            out.push(lines.next().unwrap_or_default().to_string());
        }
    }
    out
}

/// HSET counts new fields, HMSET answers OK; whole-hash replies keep insertion order while the
/// hash is a listpack, and HGETALL is a map in RESP3.
#[test]
fn set_get_and_order() {
    let mut b = Bench::new();
    assert_eq!(
        b.run(&["hset", "h", "b", "1", "a", "2", "b", "3"]),
        ":2\r\n"
    );
    assert_eq!(b.run(&["hmset", "h", "c", "4"]), "+OK\r\n");
    assert_eq!(b.run(&["hget", "h", "b"]), bulk("3"));
    assert_eq!(b.run(&["hget", "h", "x"]), "$-1\r\n");
    assert_eq!(b.run(&["hget", "nokey", "x"]), "$-1\r\n");
    assert_eq!(
        b.run(&["hmget", "h", "a", "x", "c"]),
        "*3\r\n$1\r\n2\r\n$-1\r\n$1\r\n4\r\n"
    );
    assert_eq!(b.run(&["hmget", "nokey", "a", "b"]), "*2\r\n$-1\r\n$-1\r\n");
    assert_eq!(
        b.run(&["hgetall", "h"]),
        bulks(&["b", "3", "a", "2", "c", "4"])
    );
    assert_eq!(b.run(&["hkeys", "h"]), bulks(&["b", "a", "c"]));
    assert_eq!(b.run(&["hvals", "h"]), bulks(&["3", "2", "4"]));
    assert_eq!(b.run(&["hlen", "h"]), ":3\r\n");
    assert_eq!(b.run(&["hlen", "nokey"]), ":0\r\n");
    assert_eq!(b.run(&["hexists", "h", "a"]), ":1\r\n");
    assert_eq!(b.run(&["hexists", "h", "z"]), ":0\r\n");
    assert_eq!(b.run(&["hstrlen", "h", "a"]), ":1\r\n");
    assert_eq!(b.run(&["hstrlen", "h", "z"]), ":0\r\n");
    assert_eq!(b.run(&["hgetall", "nokey"]), "*0\r\n");
    b.resp3 = true;
    assert_eq!(
        b.run(&["hgetall", "h"]),
        "%3\r\n$1\r\nb\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n4\r\n"
    );
    assert_eq!(b.run(&["hgetall", "nokey"]), "%0\r\n");
    assert_eq!(b.run(&["hkeys", "nokey"]), "*0\r\n");
    assert_eq!(b.run(&["hget", "h", "x"]), "_\r\n");
    assert_eq!(b.run(&["hmget", "h", "x"]), "*1\r\n_\r\n");
    assert_eq!(b.run(&["hexists", "h", "a"]), ":1\r\n");
}

/// Values are binary-safe and empty ones are kept.
#[test]
fn binary_values() {
    let mut b = Bench::new();
    let argv: [&[u8]; 6] = [b"hset", b"h", b"\x00\xff", b"", b"", b"\r\n"];
    assert_eq!(b.run_bytes(&argv), b":2\r\n");
    assert_eq!(
        b.run_bytes(&[b"hgetall", b"h"]),
        b"*4\r\n$2\r\n\x00\xff\r\n$0\r\n\r\n$0\r\n\r\n$2\r\n\r\n\r\n"
    );
    assert_eq!(b.run(&["hstrlen", "h", ""]), ":2\r\n");
}

/// Every command answers WRONGTYPE on a string, except where Valkey checks an argument first:
/// HSET's pair count, HINCRBY's and HINCRBYFLOAT's increment, HSCAN's cursor and HRANDFIELD's
/// count and syntax.
#[test]
fn wrong_type_and_check_order() {
    let mut b = Bench::new();
    b.ks.dbs[0].set(
        b"s",
        crate::keyspace::Value::Str(crate::keyspace::StrVal::from_arg(b"x")),
        b.now,
        false,
    );
    for cmd in [
        &["hset", "s", "f", "v"][..],
        &["hmset", "s", "f", "v"],
        &["hsetnx", "s", "f", "v"],
        &["hget", "s", "f"],
        &["hmget", "s", "f"],
        &["hgetall", "s"],
        &["hkeys", "s"],
        &["hvals", "s"],
        &["hdel", "s", "f"],
        &["hlen", "s"],
        &["hexists", "s", "f"],
        &["hstrlen", "s", "f"],
        &["hincrby", "s", "f", "1"],
        &["hincrbyfloat", "s", "f", "1"],
        &["hscan", "s", "0"],
        &["hscan", "s", "0", "count", "0"],
        &["hrandfield", "s"],
        &["hrandfield", "s", "1"],
        &["hrandfield", "s", "-1", "withvalues"],
    ] {
        assert_eq!(b.run(cmd), WRONGTYPE, "{cmd:?}");
    }
    assert_eq!(
        b.run(&["hset", "s", "f", "v", "g"]),
        "-ERR wrong number of arguments for 'hset' command\r\n"
    );
    assert_eq!(
        b.run(&["hmset", "s", "f", "v", "g"]),
        "-ERR wrong number of arguments for 'hmset' command\r\n"
    );
    assert_eq!(
        b.run(&["hincrby", "s", "f", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        b.run(&["hincrbyfloat", "s", "f", "inf"]),
        "-ERR value is NaN or Infinity\r\n"
    );
    assert_eq!(b.run(&["hscan", "s", "-1"]), "-ERR invalid cursor\r\n");
    assert_eq!(
        b.run(&["hrandfield", "s", "1", "x"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        b.run(&["hrandfield", "s", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    // The string is untouched.
    assert_eq!(b.ks.dbs[0].len(), 1);
}

/// HSETNX sets only new fields; HDEL counts removed fields and deletes the key with its last
/// field.
#[test]
fn setnx_and_del() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["hsetnx", "h", "f", "1"]), ":1\r\n");
    assert_eq!(b.run(&["hsetnx", "h", "f", "2"]), ":0\r\n");
    assert_eq!(b.run(&["hget", "h", "f"]), bulk("1"));
    assert_eq!(b.run(&["hset", "h", "g", "2", "k", "3"]), ":2\r\n");
    assert_eq!(b.run(&["hdel", "h", "x", "g", "g"]), ":1\r\n");
    assert_eq!(b.run(&["hdel", "nokey", "g"]), ":0\r\n");
    assert_eq!(b.run(&["hdel", "h", "f", "k", "x"]), ":2\r\n");
    assert_eq!(b.ks.dbs[0].len(), 0);
    assert_eq!(b.run(&["hlen", "h"]), ":0\r\n");
}

/// HINCRBY: missing fields count as 0, the stored value must be a canonical integer, overflow
/// is refused and leaves the value alone.
#[test]
fn incrby() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["hincrby", "h", "n", "5"]), ":5\r\n");
    assert_eq!(b.run(&["hincrby", "h", "n", "-7"]), ":-2\r\n");
    assert_eq!(b.run(&["hget", "h", "n"]), bulk("-2"));
    b.run(&[
        "hset",
        "h",
        "s",
        "abc",
        "z",
        "01",
        "m",
        "9223372036854775807",
    ]);
    for f in ["s", "z"] {
        assert_eq!(
            b.run(&["hincrby", "h", f, "1"]),
            "-ERR hash value is not an integer\r\n"
        );
    }
    assert_eq!(
        b.run(&["hincrby", "h", "m", "1"]),
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(b.run(&["hget", "h", "m"]), bulk("9223372036854775807"));
    assert_eq!(
        b.run(&["hincrby", "h", "n", "1.5"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    // -2 + i64::MIN does not fit.
    assert_eq!(
        b.run(&["hincrby", "h", "n", "-9223372036854775808"]),
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(b.run(&["hincrby", "h", "n", "2"]), ":0\r\n");
    assert_eq!(
        b.run(&["hincrby", "h", "n", "-9223372036854775808"]),
        ":-9223372036854775808\r\n"
    );
}

/// HINCRBYFLOAT: long double sums printed as Valkey prints them, and its four errors.
#[test]
fn incrbyfloat() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["hincrbyfloat", "h", "f", "10.5"]), bulk("10.5"));
    assert_eq!(b.run(&["hincrbyfloat", "h", "f", "0.1"]), bulk("10.6"));
    // long double keeps 10.6's binary error visible at 17 digits, as in Valkey.
    assert_eq!(
        b.run(&["hincrbyfloat", "h", "f", "5.0e3"]),
        bulk("5010.60000000000000009")
    );
    b.run(&["hset", "h", "i", "3", "s", "x"]);
    assert_eq!(b.run(&["hincrbyfloat", "h", "i", "-3"]), bulk("0"));
    assert_eq!(
        b.run(&["hincrbyfloat", "h", "s", "1"]),
        "-ERR hash value is not a float\r\n"
    );
    assert_eq!(
        b.run(&["hincrbyfloat", "h", "f", "nan"]),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(
        b.run(&["hincrbyfloat", "h", "f", "-inf"]),
        "-ERR value is NaN or Infinity\r\n"
    );
    b.run(&["hset", "h", "big", "1e4932"]);
    assert_eq!(
        b.run(&["hincrbyfloat", "h", "big", "1e4932"]),
        "-ERR increment would produce NaN or Infinity\r\n"
    );
    // A failed increment on a missing key creates nothing.
    assert_eq!(
        b.run(&["hincrbyfloat", "new", "f", "abc"]),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(b.run(&["hlen", "new"]), ":0\r\n");
}

/// Conversions happen exactly at Valkey 8's default thresholds (512 entries, 64 bytes) and
/// through every path: HSET's pair count and lengths, HSETNX, HINCRBY's field length and the
/// entry count after an insert.
#[test]
fn encodings_at_thresholds() {
    assert_eq!(Limits::default().hash_max_listpack_entries, 512);
    assert_eq!(Limits::default().hash_max_listpack_value, 64);
    let mut b = Bench::new();
    let fields: Vec<String> = (0..512).map(|i| format!("f{i}")).collect();
    let mut argv = vec!["hset", "h"];
    for f in &fields {
        argv.push(f);
        argv.push("v");
    }
    assert_eq!(b.run(&argv), ":512\r\n");
    assert_eq!(b.encoding("h"), bulk("listpack"));
    b.run(&["hset", "h", "f0", "w"]);
    assert_eq!(b.encoding("h"), bulk("listpack"));
    b.run(&["hset", "h", "one-more", "w"]);
    assert_eq!(b.encoding("h"), bulk("hashtable"));

    // 513 pairs of the same field: converted before writing, though only one field results.
    let mut argv = vec!["hset", "same"];
    for _ in 0..513 {
        argv.extend(["f", "v"]);
    }
    assert_eq!(b.run(&argv), ":1\r\n");
    assert_eq!(b.encoding("same"), bulk("hashtable"));

    let v64 = "x".repeat(64);
    let v65 = "x".repeat(65);
    b.run(&["hset", "l", "f", &v64]);
    assert_eq!(b.encoding("l"), bulk("listpack"));
    b.run(&["hset", "l", "g", &v65]);
    assert_eq!(b.encoding("l"), bulk("hashtable"));
    b.run(&["hsetnx", "n", &v65, "1"]);
    assert_eq!(b.encoding("n"), bulk("hashtable"));
    b.run(&["hincrby", "i", &v65, "1"]);
    assert_eq!(b.encoding("i"), bulk("hashtable"));
    b.run(&["hincrbyfloat", "j", &v65, "1"]);
    assert_eq!(b.encoding("j"), bulk("hashtable"));
    // A configured value limit applies to HINCRBY's new value too.
    b.ks.limits.hash_max_listpack_value = 3;
    b.run(&["hset", "k", "f", "1"]);
    assert_eq!(b.encoding("k"), bulk("listpack"));
    b.run(&["hincrby", "k", "f", "1000"]);
    assert_eq!(b.encoding("k"), bulk("hashtable"));
    // An entry limit of 0 makes every hash a hashtable from its first write.
    b.ks.limits.hash_max_listpack_entries = 0;
    b.run(&["hset", "z", "f", "1"]);
    assert_eq!(b.encoding("z"), bulk("hashtable"));
}

/// HSCAN of a listpack hash returns every pair (or field, with NOVALUES) in order with cursor
/// 0, whatever the cursor and COUNT; MATCH filters fields; a missing key answers an empty page
/// before its options are read; option errors come in Valkey's texts.
#[test]
fn scan_small() {
    let mut b = Bench::new();
    b.run(&["hset", "h", "a1", "x", "b", "y", "a2", "z"]);
    let page = |items: &[&str]| format!("*2\r\n$1\r\n0\r\n{}", bulks(items));
    assert_eq!(
        b.run(&["hscan", "h", "0"]),
        page(&["a1", "x", "b", "y", "a2", "z"])
    );
    assert_eq!(
        b.run(&["hscan", "h", "12345", "COUNT", "1"]),
        page(&["a1", "x", "b", "y", "a2", "z"])
    );
    assert_eq!(
        b.run(&["hscan", "h", "0", "match", "a*"]),
        page(&["a1", "x", "a2", "z"])
    );
    assert_eq!(
        b.run(&["hscan", "h", "0", "novalues", "match", "a*"]),
        page(&["a1", "a2"])
    );
    assert_eq!(b.run(&["hscan", "nokey", "0", "count", "0"]), page(&[]));
    assert_eq!(
        b.run(&["hscan", "h", "18446744073709551615"]),
        page(&["a1", "x", "b", "y", "a2", "z"])
    );
    for (args, err) in [
        (&["hscan", "h", "x"][..], "-ERR invalid cursor\r\n"),
        (
            &["hscan", "h", "18446744073709551616"],
            "-ERR invalid cursor\r\n",
        ),
        (&["hscan", "h", "0", "count", "0"], "-ERR syntax error\r\n"),
        (
            &["hscan", "h", "0", "count", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["hscan", "h", "0", "count"], "-ERR syntax error\r\n"),
        (
            &["hscan", "h", "0", "type", "hash"],
            "-ERR syntax error\r\n",
        ),
        (
            &["hscan", "h", "0", "noscores"],
            "-ERR NOSCORES option can only be used in ZSCAN\r\n",
        ),
        (&["hscan", "h", "0", "foo"], "-ERR syntax error\r\n"),
    ] {
        assert_eq!(b.run(args), err, "{args:?}");
    }
    // Option words compare as C strings: a NUL ends them.
    let argv: [&[u8]; 4] = [b"hscan", b"h", b"0", b"novalues\0junk"];
    assert_eq!(
        String::from_utf8_lossy(&b.run_bytes(&argv)),
        page(&["a1", "b", "a2"])
    );
}

/// HSCAN of a hashtable hash walks it in COUNT-sized steps with a cursor and comes back to 0
/// having returned every pair; MATCH still filters.
#[test]
fn scan_large() {
    let mut b = Bench::new();
    for i in 0..600 {
        b.run(&["hset", "h", &format!("f{i}"), &i.to_string()]);
    }
    assert_eq!(b.encoding("h"), bulk("hashtable"));
    let mut cursor = "0".to_string();
    let mut seen = BTreeSet::new();
    let mut calls = 0;
    loop {
        let reply = b.run(&["hscan", "h", &cursor, "count", "50"]);
        let got = items(&reply);
        cursor = got[0].clone();
        assert_eq!(got.len() % 2, 1);
        for pair in got[1..].chunks(2) {
            assert_eq!(pair[0], format!("f{}", pair[1]));
            seen.insert(pair[0].clone());
        }
        calls += 1;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 600);
    assert_eq!(calls, 12);
    let reply = b.run(&[
        "hscan", "h", "0", "count", "1000", "match", "f1?", "novalues",
    ]);
    let got: BTreeSet<String> = items(&reply)[1..].iter().cloned().collect();
    let want: BTreeSet<String> = (10..20).map(|i| format!("f{i}")).collect();
    assert_eq!(got, want);
}

/// HRANDFIELD without a count: one field, or nil for a missing key.
#[test]
fn randfield_single() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["hrandfield", "h"]), "$-1\r\n");
    b.run(&["hset", "h", "a", "1", "b", "2"]);
    for _ in 0..20 {
        let r = b.run(&["hrandfield", "h"]);
        assert!(r == bulk("a") || r == bulk("b"), "{r}");
    }
    b.resp3 = true;
    assert_eq!(b.run(&["hrandfield", "nokey"]), "_\r\n");
}

/// HRANDFIELD with a count: empty for 0 or a missing key; the whole hash in order for a count
/// covering a listpack; distinct fields in listpack order for a smaller count; repeats for a
/// negative count; nested pairs with WITHVALUES in RESP3, flat in RESP2; range errors.
#[test]
fn randfield_counts() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["hrandfield", "nokey", "5", "withvalues"]), "*0\r\n");
    b.run(&["hset", "h", "a", "1", "b", "2", "c", "3", "d", "4"]);
    assert_eq!(b.run(&["hrandfield", "h", "0"]), "*0\r\n");
    assert_eq!(
        b.run(&["hrandfield", "h", "4"]),
        bulks(&["a", "b", "c", "d"])
    );
    assert_eq!(
        b.run(&["hrandfield", "h", "100", "withvalues"]),
        bulks(&["a", "1", "b", "2", "c", "3", "d", "4"])
    );
    let order = |s: &str| "abcd".find(s).unwrap_or(9);
    for _ in 0..50 {
        let got = items(&b.run(&["hrandfield", "h", "3"]));
        assert_eq!(got.len(), 3);
        assert!(
            got.windows(2).all(|w| order(&w[0]) < order(&w[1])),
            "{got:?}"
        );
    }
    let got = items(&b.run(&["hrandfield", "h", "-20", "withvalues"]));
    assert_eq!(got.len(), 40);
    for pair in got.chunks(2) {
        assert_eq!(order(&pair[0]) + 1, pair[1].parse::<usize>().unwrap());
    }
    // Over many draws every field shows up.
    let got: BTreeSet<String> = items(&b.run(&["hrandfield", "h", "-200"]))
        .into_iter()
        .collect();
    assert_eq!(got.len(), 4);
    b.resp3 = true;
    let r = b.run(&["hrandfield", "h", "-2", "withvalues"]);
    assert!(r.starts_with("*2\r\n*2\r\n$1\r\n"), "{r}");
    let r = b.run(&["hrandfield", "h", "1", "withvalues"]);
    assert!(r.starts_with("*1\r\n*2\r\n"), "{r}");
    b.resp3 = false;
    for (args, err) in [
        (
            &["hrandfield", "h", "-9223372036854775808"][..],
            "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n",
        ),
        (&["hrandfield", "h", "4611686018427387904", "withvalues"], "-ERR value is out of range\r\n"),
        (&["hrandfield", "h", "-4611686018427387904", "withvalues"], "-ERR value is out of range\r\n"),
        (&["hrandfield", "h", "1", "withvalues", "x"], "-ERR syntax error\r\n"),
        (&["hrandfield", "h", "1", "with"], "-ERR syntax error\r\n"),
    ] {
        assert_eq!(b.run(args), err, "{args:?}");
    }
    // In range for WITHVALUES, and the hash is small: the whole hash.
    assert_eq!(
        b.run(&["hrandfield", "h", "4611686018427387903", "withvalues"]),
        bulks(&["a", "1", "b", "2", "c", "3", "d", "4"])
    );
    // A repeating count whose reply would be gigabytes is refused, not built.
    assert!(b
        .run(&["hrandfield", "h", "-9223372036854775807"])
        .starts_with("-ERR count is too large"));
}

/// HRANDFIELD on a hashtable: distinct fields for both strategies (most of the hash, a small
/// part of it), each paired with its own value.
#[test]
fn randfield_large() {
    let mut b = Bench::new();
    for i in 0..600 {
        b.run(&["hset", "h", &format!("f{i}"), &i.to_string()]);
    }
    for count in ["500", "30", "599", "600", "1000"] {
        let got = items(&b.run(&["hrandfield", "h", count, "withvalues"]));
        let want = count.parse::<usize>().unwrap().min(600);
        assert_eq!(got.len(), want * 2, "count {count}");
        let fields: BTreeSet<&String> = got.iter().step_by(2).collect();
        assert_eq!(fields.len(), want);
        for pair in got.chunks(2) {
            assert_eq!(pair[0], format!("f{}", pair[1]));
        }
    }
}

/// Writes that change a hash mark WATCHers dirty; writes that change nothing (HSETNX on an
/// existing field, HDEL of missing fields, failed increments) do not.
#[test]
fn writes_signal_watchers() {
    let mut b = Bench::new();
    let dirty_after = |b: &mut Bench, args: &[&str]| {
        b.ks.watches = Default::default();
        b.ks.watches.watch(0, b"h", 7);
        b.run(args);
        b.ks.watches.is_dirty(7)
    };
    assert!(dirty_after(&mut b, &["hset", "h", "f", "1"]));
    assert!(dirty_after(&mut b, &["hmset", "h", "f", "1"]));
    assert!(dirty_after(&mut b, &["hsetnx", "h", "g", "1"]));
    assert!(!dirty_after(&mut b, &["hsetnx", "h", "g", "2"]));
    assert!(dirty_after(&mut b, &["hincrby", "h", "f", "1"]));
    assert!(dirty_after(&mut b, &["hincrbyfloat", "h", "f", "1"]));
    b.run(&["hset", "h", "s", "x"]);
    assert!(!dirty_after(&mut b, &["hincrby", "h", "s", "1"]));
    assert!(!dirty_after(&mut b, &["hdel", "h", "nope"]));
    assert!(dirty_after(&mut b, &["hdel", "h", "f"]));
    assert!(!dirty_after(&mut b, &["hget", "h", "g"]));
}

/// Memory accounting grows with the hash and counts long fields and values.
#[test]
fn heap_bytes_grow() {
    let mut b = Bench::new();
    b.run(&["hset", "h", "f", "v"]);
    let small = b.ks.dbs[0].get(b"h", b.now).map(|e| e.value.heap_bytes());
    b.run(&["hset", "h", "g", &"x".repeat(60)]);
    let larger = b.ks.dbs[0].get(b"h", b.now).map(|e| e.value.heap_bytes());
    assert!(larger.unwrap_or(0) >= small.unwrap_or(0) + 60);
    assert_eq!(
        b.ks.dbs[0]
            .get(b"h", b.now)
            .map(|e| e.value.element_count()),
        Some(2)
    );
}

mod model {
    use super::{bulk, items, Bench};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Cmd {
        Hset(Vec<(u8, u8)>),
        Hdel(Vec<u8>),
        Hget(u8),
        Hincrby(u8, i8),
        Hgetall,
        Hlen,
    }

    fn field(f: u8) -> String {
        format!("f{f}")
    }

    /// Values of one to twelve characters, so some pass the small value limit used below.
    fn value(v: u8) -> String {
        "v".repeat(usize::from(v % 12) + 1)
    }

    fn cmd() -> impl Strategy<Value = Cmd> {
        prop_oneof![
            4 => proptest::collection::vec((0u8..12, any::<u8>()), 1..4).prop_map(Cmd::Hset),
            2 => proptest::collection::vec(0u8..14, 1..3).prop_map(Cmd::Hdel),
            2 => (0u8..14).prop_map(Cmd::Hget),
            1 => (0u8..14, any::<i8>()).prop_map(|(f, n)| Cmd::Hincrby(f, n)),
            1 => Just(Cmd::Hgetall),
            1 => Just(Cmd::Hlen),
        ]
    }

    proptest! {
        /// Random command sequences on one key give the replies of a model hash (a list of
        /// pairs in insertion order): exact while the hash is a listpack, the same pairs in
        /// some order once it is a hashtable; HDEL of the last field removes the key.
        #[test]
        fn commands_match_model(cmds in proptest::collection::vec(cmd(), 1..80)) {
            let mut b = Bench::new();
            b.ks.limits.hash_max_listpack_entries = 6;
            b.ks.limits.hash_max_listpack_value = 8;
            let mut model: Vec<(String, String)> = Vec::new();
            for c in cmds {
                match c {
                    Cmd::Hset(pairs) => {
                        let mut args = vec!["hset".to_string(), "h".to_string()];
                        let mut created = 0;
                        for (f, v) in pairs {
                            let (f, v) = (field(f), value(v));
                            args.push(f.clone());
                            args.push(v.clone());
                            match model.iter_mut().find(|(mf, _)| *mf == f) {
                                Some(slot) => slot.1 = v,
                                None => {
                                    model.push((f, v));
                                    created += 1;
                                }
                            }
                        }
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        prop_assert_eq!(b.run(&args), format!(":{created}\r\n"));
                    }
                    Cmd::Hdel(fields) => {
                        let mut args = vec!["hdel".to_string(), "h".to_string()];
                        let mut deleted = 0;
                        for f in fields {
                            let f = field(f);
                            if let Some(i) = model.iter().position(|(mf, _)| *mf == f) {
                                model.remove(i);
                                deleted += 1;
                            }
                            args.push(f);
                        }
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        prop_assert_eq!(b.run(&args), format!(":{deleted}\r\n"));
                    }
                    Cmd::Hget(f) => {
                        let f = field(f);
                        let want = model
                            .iter()
                            .find(|(mf, _)| *mf == f)
                            .map_or("$-1\r\n".to_string(), |(_, v)| bulk(v));
                        prop_assert_eq!(b.run(&["hget", "h", &f]), want);
                    }
                    Cmd::Hincrby(f, n) => {
                        let f = field(f);
                        let reply = b.run(&["hincrby", "h", &f, &n.to_string()]);
                        match model.iter_mut().find(|(mf, _)| *mf == f) {
                            Some((_, v)) => match v.parse::<i64>() {
                                Ok(old) => {
                                    *v = (old + i64::from(n)).to_string();
                                    prop_assert_eq!(reply, format!(":{v}\r\n"));
                                }
                                Err(_) => prop_assert_eq!(
                                    reply,
                                    "-ERR hash value is not an integer\r\n"
                                ),
                            },
                            None => {
                                model.push((f, n.to_string()));
                                prop_assert_eq!(reply, format!(":{n}\r\n"));
                            }
                        }
                    }
                    Cmd::Hgetall => {
                        let got = items(&b.run(&["hgetall", "h"]));
                        let want: Vec<String> =
                            model.iter().flat_map(|(f, v)| [f.clone(), v.clone()]).collect();
                        if b.encoding("h") == bulk("hashtable") {
                            let pairs = |v: &[String]| {
                                let mut p: Vec<Vec<String>> =
                                    v.chunks(2).map(<[String]>::to_vec).collect();
                                p.sort();
                                p
                            };
                            prop_assert_eq!(pairs(&got), pairs(&want));
                        } else {
                            prop_assert_eq!(&got, &want);
                        }
                    }
                    Cmd::Hlen => {
                        prop_assert_eq!(b.run(&["hlen", "h"]), format!(":{}\r\n", model.len()));
                    }
                }
                prop_assert_eq!(b.ks.dbs[0].len(), usize::from(!model.is_empty()));
            }
        }
    }
}
