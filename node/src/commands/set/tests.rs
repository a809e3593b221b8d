//! Set family tests: each command run against a keyspace directly, replies compared with the
//! bytes Valkey 8 sends (checked against a running valkey-server 8.0.1).

use crate::commands::{registry, Exec, KeyCtx, Lookup};
use crate::config::Config;
use crate::keyspace::{Keyspace, Value};
use crate::resp::Out;

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

    fn run_bytes(&mut self, argv: &[&[u8]]) -> String {
        let Lookup::Found(r) = registry().lookup(argv) else {
            panic!("no command {:?}", argv[0])
        };
        assert!(r.spec.arity_ok(argv.len()), "arity of {argv:?}");
        let Exec::Key(f) = r.spec.exec else {
            panic!("not a key command")
        };
        let mut out = Out::new(self.resp3);
        let mut ctx = KeyCtx {
            ks: &mut self.ks,
            db: 0,
            now_ms: self.now,
            out: &mut out,
            config: &self.config,
        };
        f(&mut ctx, argv);
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    fn run(&mut self, args: &[&str]) -> String {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.run_bytes(&argv)
    }

    /// Runs a command whose arguments are given as one string plus extra members.
    fn run_with(&mut self, args: &[&str], more: &[String]) -> String {
        let mut argv: Vec<&str> = args.to_vec();
        argv.extend(more.iter().map(String::as_str));
        self.run(&argv)
    }

    fn encoding(&mut self, key: &str) -> &'static str {
        let e = self.ks.dbs[0]
            .get(key.as_bytes(), self.now)
            .expect("key exists");
        e.value.encoding()
    }

    fn exists(&mut self, key: &str) -> bool {
        self.ks.dbs[0].contains(key.as_bytes(), self.now)
    }

    /// The members of a set reply, sorted (for replies in hash order).
    fn members(&mut self, args: &[&str]) -> Vec<String> {
        let reply = self.run(args);
        let mut v = bulks(&reply);
        v.sort();
        v
    }
}

/// The bulk strings of a flat array or set reply.
fn bulks(reply: &str) -> Vec<String> {
    let mut lines = reply.split("\r\n");
    let head = lines.next().unwrap_or_default();
    assert!(head.starts_with('*') || head.starts_with('~'), "{reply:?}");
    let mut v = Vec::new();
    while let Some(l) = lines.next() {
        if l.starts_with('$') {
            v.push(lines.next().unwrap_or_default().to_string());
        }
    }
    v
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// SADD counts new members only, SREM deletes the key with its last member, SCARD,
/// SISMEMBER and SMISMEMBER answer for missing keys too, and a string key is WRONGTYPE.
#[test]
fn add_remove_query() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["sadd", "s", "a", "b", "a"]), ":2\r\n");
    assert_eq!(b.run(&["sadd", "s", "b", "c"]), ":1\r\n");
    assert_eq!(b.run(&["scard", "s"]), ":3\r\n");
    assert_eq!(b.run(&["scard", "nokey"]), ":0\r\n");
    assert_eq!(b.run(&["sismember", "s", "a"]), ":1\r\n");
    assert_eq!(b.run(&["sismember", "s", "z"]), ":0\r\n");
    assert_eq!(b.run(&["sismember", "nokey", "a"]), ":0\r\n");
    assert_eq!(
        b.run(&["smismember", "s", "a", "z", "c"]),
        "*3\r\n:1\r\n:0\r\n:1\r\n"
    );
    assert_eq!(b.run(&["smismember", "nokey", "a"]), "*1\r\n:0\r\n");
    assert_eq!(b.run(&["srem", "s", "a", "z"]), ":1\r\n");
    assert_eq!(b.run(&["srem", "nokey", "a"]), ":0\r\n");
    assert_eq!(b.run(&["srem", "s", "b", "c", "d"]), ":2\r\n");
    assert!(!b.exists("s"));

    assert_eq!(b.run(&["set", "str", "v"]), "+OK\r\n");
    for cmd in [
        &["sadd", "str", "a"][..],
        &["srem", "str", "a"],
        &["scard", "str"],
        &["sismember", "str", "a"],
        &["smismember", "str", "a"],
        &["smembers", "str"],
        &["spop", "str"],
        &["spop", "str", "2"],
        &["srandmember", "str"],
        &["srandmember", "str", "-2"],
        &["sscan", "str", "0"],
    ] {
        assert_eq!(b.run(cmd), WRONGTYPE, "{cmd:?}");
    }
}

/// SMEMBERS answers a set (RESP3 `~`), intsets ascending and listpacks in insertion order.
#[test]
fn members_order_and_resp3() {
    let mut b = Bench::new();
    b.run(&["sadd", "i", "3", "1", "2"]);
    assert_eq!(
        b.run(&["smembers", "i"]),
        "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    b.run(&["sadd", "i", "x", "0"]);
    assert_eq!(b.encoding("i"), "listpack");
    assert_eq!(bulks(&b.run(&["smembers", "i"])), ["1", "2", "3", "x", "0"]);
    b.resp3 = true;
    assert_eq!(b.run(&["smembers", "nokey"]), "~0\r\n");
    assert!(b.run(&["smembers", "i"]).starts_with("~5\r\n"));
    assert_eq!(b.run(&["spop", "nokey"]), "_\r\n");
    assert_eq!(b.run(&["spop", "nokey", "3"]), "~0\r\n");
    assert_eq!(b.run(&["spop", "i", "0"]), "~0\r\n");
    assert_eq!(b.run(&["srandmember", "nokey"]), "_\r\n");
    assert_eq!(b.run(&["srandmember", "nokey", "3"]), "*0\r\n");
    assert_eq!(b.run(&["sinter", "i", "nokey"]), "~0\r\n");
    assert_eq!(b.run(&["smismember", "i", "x"]), "*1\r\n:1\r\n");
}

/// OBJECT ENCODING follows Valkey through SADD: intset, listpack, hashtable, with the size
/// hint of a many-member SADD deciding up front.
#[test]
fn encodings_through_sadd() {
    let mut b = Bench::new();
    b.run_with(
        &["sadd", "i"],
        &(0..512).map(|i| i.to_string()).collect::<Vec<_>>(),
    );
    assert_eq!(b.encoding("i"), "intset");
    b.run(&["sadd", "i", "512"]);
    assert_eq!(b.encoding("i"), "hashtable");
    // 129 arguments, even if only duplicates: the hint converts first.
    b.run(&["sadd", "p", "a"]);
    let dup: Vec<String> = (0..129).map(|_| "a".to_string()).collect();
    assert_eq!(b.run_with(&["sadd", "p"], &dup), ":0\r\n");
    assert_eq!(b.encoding("p"), "hashtable");
    b.run_with(&["sadd", "q"], &numbered("m", 129));
    assert_eq!(b.encoding("q"), "hashtable");
    b.run_with(&["sadd", "r"], &numbered("m", 128));
    assert_eq!(b.encoding("r"), "listpack");
    b.run_with(
        &["sadd", "n"],
        &(0..513).map(|i| i.to_string()).collect::<Vec<_>>(),
    );
    assert_eq!(b.encoding("n"), "hashtable");
}

/// The limits come from the configuration the keyspace holds (CONFIG SET updates it).
#[test]
fn encodings_follow_limits() {
    let mut b = Bench::new();
    b.ks.limits.set_max_intset_entries = 2;
    b.ks.limits.set_max_listpack_entries = 3;
    b.run(&["sadd", "s", "1", "2"]);
    assert_eq!(b.encoding("s"), "intset");
    b.run(&["sadd", "s", "3"]);
    assert_eq!(b.encoding("s"), "hashtable");
    b.run(&["sadd", "t", "a", "b", "c"]);
    assert_eq!(b.encoding("t"), "listpack");
    b.run(&["sadd", "t", "d"]);
    assert_eq!(b.encoding("t"), "hashtable");
}

/// SPOP: without a count one member (nil for a missing key), with a count a set of distinct
/// members; popping everything deletes the key; bad counts and extra arguments are errors.
#[test]
fn spop_forms() {
    let mut b = Bench::new();
    b.run(&["sadd", "s", "a", "b", "c", "d", "e"]);
    let one = b.run(&["spop", "s"]);
    assert!(one.starts_with("$1\r\n"), "{one}");
    let two = bulks(&b.run(&["spop", "s", "2"]));
    assert_eq!(two.len(), 2);
    assert_ne!(two[0], two[1]);
    assert_eq!(b.run(&["scard", "s"]), ":2\r\n");
    assert_eq!(bulks(&b.run(&["spop", "s", "10"])).len(), 2);
    assert!(!b.exists("s"));
    assert_eq!(b.run(&["spop", "s"]), "$-1\r\n");
    assert_eq!(b.run(&["spop", "s", "1"]), "*0\r\n");
    b.run(&["sadd", "i", "3", "1", "2"]);
    assert_eq!(
        b.run(&["spop", "i", "3"]),
        "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    b.run(&["sadd", "s", "a"]);
    assert_eq!(b.run(&["spop", "s", "0"]), "*0\r\n");
    assert_eq!(b.run(&["scard", "s"]), ":1\r\n");
    for bad in ["-1", "x", "1.5", "-9223372036854775808"] {
        assert_eq!(
            b.run(&["spop", "s", bad]),
            "-ERR value is out of range, must be positive\r\n"
        );
    }
    assert_eq!(b.run(&["spop", "s", "1", "2"]), "-ERR syntax error\r\n");
    // The count is checked before the key.
    assert_eq!(
        b.run(&["spop", "nokey", "-1"]),
        "-ERR value is out of range, must be positive\r\n"
    );
    b.run(&["set", "str", "v"]);
    assert_eq!(b.run(&["spop", "str", "0"]), WRONGTYPE);
}

/// SPOP of most of a large set leaves the survivors in a compact encoding, as Valkey does.
#[test]
fn spop_survivors_encoding() {
    let mut b = Bench::new();
    b.run_with(
        &["sadd", "h"],
        &(0..600).map(|i| i.to_string()).collect::<Vec<_>>(),
    );
    assert_eq!(b.encoding("h"), "hashtable");
    assert_eq!(bulks(&b.run(&["spop", "h", "550"])).len(), 550);
    assert_eq!(b.encoding("h"), "listpack");
    b.run_with(
        &["sadd", "i"],
        &(0..100).map(|i| i.to_string()).collect::<Vec<_>>(),
    );
    b.run(&["spop", "i", "95"]);
    assert_eq!(b.encoding("i"), "intset");
}

/// SRANDMEMBER: distinct members for a positive count (the whole set when it is larger),
/// repeats for a negative one, an array (never a set), and Valkey's range error.
#[test]
fn srandmember_forms() {
    let mut b = Bench::new();
    b.run(&["sadd", "s", "a", "b", "c"]);
    assert!(b.run(&["srandmember", "s"]).starts_with("$1\r\n"));
    assert_eq!(b.run(&["srandmember", "s", "0"]), "*0\r\n");
    assert_eq!(b.members(&["srandmember", "s", "5"]), ["a", "b", "c"]);
    let two = bulks(&b.run(&["srandmember", "s", "2"]));
    assert_eq!(two.len(), 2);
    assert_ne!(two[0], two[1]);
    let many = bulks(&b.run(&["srandmember", "s", "-20"]));
    assert_eq!(many.len(), 20);
    assert!(many.iter().all(|m| ["a", "b", "c"].contains(&m.as_str())));
    b.resp3 = true;
    assert!(b.run(&["srandmember", "s", "2"]).starts_with("*2\r\n"));
    b.resp3 = false;
    assert_eq!(b.run(&["srandmember", "nokey", "-5"]), "*0\r\n");
    assert_eq!(b.run(&["srandmember", "nokey"]), "$-1\r\n");
    assert_eq!(
        b.run(&["srandmember", "s", "-9223372036854775808"]),
        "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
    );
    assert_eq!(
        b.run(&["srandmember", "s", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        b.run(&["srandmember", "s", "1", "2"]),
        "-ERR syntax error\r\n"
    );
    assert!(b
        .run(&["srandmember", "s", "-9223372036854775807"])
        .starts_with("-ERR count is out of range"));
    // A listpack answers distinct picks in its own order.
    b.run_with(&["sadd", "p"], &numbered("m", 100));
    let picked = bulks(&b.run(&["srandmember", "p", "30"]));
    let pos: Vec<usize> = picked.iter().map(|m| m[1..].parse().expect("mN")).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]));
}

/// SMOVE: Valkey's order of checks (a missing source answers 0 even when the destination has
/// the wrong type), the same key as both ends, and deletion of an emptied source.
#[test]
fn smove_cases() {
    let mut b = Bench::new();
    b.run(&["set", "str", "v"]);
    assert_eq!(b.run(&["smove", "nokey", "str", "a"]), ":0\r\n");
    b.run(&["sadd", "src", "a", "b"]);
    assert_eq!(b.run(&["smove", "src", "str", "a"]), WRONGTYPE);
    assert_eq!(b.run(&["smove", "str", "src", "a"]), WRONGTYPE);
    assert_eq!(b.run(&["smove", "src", "dst", "z"]), ":0\r\n");
    assert!(!b.exists("dst"));
    assert_eq!(b.run(&["smove", "src", "src", "a"]), ":1\r\n");
    assert_eq!(b.run(&["smove", "src", "src", "z"]), ":0\r\n");
    assert_eq!(b.run(&["smove", "str", "str", "a"]), WRONGTYPE);
    assert_eq!(b.run(&["smove", "src", "dst", "a"]), ":1\r\n");
    assert_eq!(b.encoding("dst"), "listpack");
    assert_eq!(b.run(&["sadd", "dst", "b"]), ":1\r\n");
    // Already in the destination: still 1, and the source loses it.
    assert_eq!(b.run(&["smove", "src", "dst", "b"]), ":1\r\n");
    assert!(!b.exists("src"));
    assert_eq!(b.members(&["smembers", "dst"]), ["a", "b"]);
    b.run(&["sadd", "n", "7"]);
    assert_eq!(b.run(&["smove", "n", "ni", "7"]), ":1\r\n");
    assert_eq!(b.encoding("ni"), "intset");
}

/// SINTER, SUNION and SDIFF: missing keys are empty sets, every key is type-checked, and
/// the first key repeated makes SDIFF empty.
#[test]
fn algebra_replies() {
    let mut b = Bench::new();
    b.run(&["sadd", "a", "1", "2", "3", "x"]);
    b.run(&["sadd", "b", "2", "3", "4", "y"]);
    b.run(&["set", "str", "v"]);
    assert_eq!(b.members(&["sinter", "a", "b"]), ["2", "3"]);
    assert_eq!(b.run(&["sinter", "a", "nokey"]), "*0\r\n");
    assert_eq!(b.run(&["sinter", "nokey", "str"]), WRONGTYPE);
    assert_eq!(
        b.members(&["sunion", "a", "nokey", "b"]),
        ["1", "2", "3", "4", "x", "y"]
    );
    assert_eq!(b.members(&["sdiff", "a", "b"]), ["1", "x"]);
    assert_eq!(b.run(&["sdiff", "a", "a"]), "*0\r\n");
    assert_eq!(b.run(&["sdiff", "nokey", "a"]), "*0\r\n");
    assert_eq!(b.run(&["sdiff", "a", "str"]), WRONGTYPE);
    assert_eq!(b.run(&["sunion", "str"]), WRONGTYPE);
    // Intsets only: the reply comes from an intset, ascending.
    b.run(&["sadd", "i", "5", "3"]);
    b.run(&["sadd", "j", "4", "1"]);
    assert_eq!(
        b.run(&["sunion", "i", "j"]),
        "*4\r\n$1\r\n1\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n"
    );
}

/// SINTERCARD's argument checks and LIMIT, with Valkey's error texts.
#[test]
fn sintercard_args() {
    let mut b = Bench::new();
    b.run(&["sadd", "a", "1", "2", "3"]);
    b.run(&["sadd", "b", "1", "2", "3", "4"]);
    assert_eq!(b.run(&["sintercard", "2", "a", "b"]), ":3\r\n");
    assert_eq!(
        b.run(&["sintercard", "2", "a", "b", "LIMIT", "2"]),
        ":2\r\n"
    );
    assert_eq!(
        b.run(&["sintercard", "2", "a", "b", "limit", "0"]),
        ":3\r\n"
    );
    assert_eq!(
        b.run(&["sintercard", "2", "a", "b", "limit", "1", "limit", "5"]),
        ":3\r\n"
    );
    assert_eq!(b.run(&["sintercard", "2", "a", "nokey"]), ":0\r\n");
    for (args, err) in [
        (
            &["sintercard", "0", "a"][..],
            "-ERR numkeys should be greater than 0\r\n",
        ),
        (
            &["sintercard", "x", "a"],
            "-ERR numkeys should be greater than 0\r\n",
        ),
        (
            &["sintercard", "3", "a", "b"],
            "-ERR Number of keys can't be greater than number of args\r\n",
        ),
        (&["sintercard", "1", "a", "limit"], "-ERR syntax error\r\n"),
        (
            &["sintercard", "1", "a", "limit", "-1"],
            "-ERR LIMIT can't be negative\r\n",
        ),
        (
            &["sintercard", "1", "a", "limit", "x"],
            "-ERR LIMIT can't be negative\r\n",
        ),
        (&["sintercard", "1", "a", "b"], "-ERR syntax error\r\n"),
    ] {
        assert_eq!(b.run(args), err, "{args:?}");
    }
    let argv: [&[u8]; 5] = [b"sintercard", b"1", b"a", b"LIMIT\0x", b"1"];
    assert_eq!(b.run_bytes(&argv), ":1\r\n");
}

/// The STORE forms replace any value (a string too) and drop its TTL, delete the destination
/// when the result is empty, answer the size, and store Valkey's encoding.
#[test]
fn store_forms() {
    let mut b = Bench::new();
    b.run(&["sadd", "a", "1", "2", "x"]);
    b.run(&["sadd", "b", "2", "1", "y"]);
    b.run(&["set", "d", "v"]);
    b.ks.dbs[0].set_expire(b"d", b.now + 100_000);
    assert_eq!(b.run(&["sinterstore", "d", "a", "b"]), ":2\r\n");
    assert_eq!(b.encoding("d"), "intset");
    assert_eq!(b.ks.dbs[0].expire_of(b"d"), None);
    assert_eq!(b.run(&["sunionstore", "d", "a", "b"]), ":4\r\n");
    assert_eq!(b.encoding("d"), "listpack");
    assert_eq!(b.run(&["sdiffstore", "d", "a", "b"]), ":1\r\n");
    assert_eq!(b.members(&["smembers", "d"]), ["x"]);
    assert_eq!(b.run(&["sdiffstore", "d", "a", "a"]), ":0\r\n");
    assert!(!b.exists("d"));
    b.run(&["set", "d", "v"]);
    assert_eq!(b.run(&["sinterstore", "d", "a", "nokey"]), ":0\r\n");
    assert!(!b.exists("d"));
    b.run(&["set", "str", "v"]);
    b.run(&["set", "d", "v"]);
    assert_eq!(b.run(&["sunionstore", "d", "a", "str"]), WRONGTYPE);
    assert!(matches!(
        b.ks.dbs[0].get(b"d", b.now).map(|e| &e.value),
        Some(Value::Str(_))
    ));
    // The destination may be an operand.
    assert_eq!(b.run(&["sunionstore", "a", "a", "b"]), ":4\r\n");
    assert_eq!(b.members(&["smembers", "a"]), ["1", "2", "x", "y"]);
}

/// Writes mark their keys modified for WATCH; reads and no-op writes do not.
#[test]
fn watch_signals() {
    let mut b = Bench::new();
    let dirty_after = |b: &mut Bench, key: &str, cmd: &[&str]| {
        b.ks.watches.watch(0, key.as_bytes(), 1);
        b.run(cmd);
        let dirty = b.ks.watches.is_dirty(1);
        b.ks.watches.unwatch(1, &[(0, key.as_bytes().to_vec())]);
        dirty
    };
    b.run(&["sadd", "s", "a", "b"]);
    assert!(!dirty_after(&mut b, "s", &["sadd", "s", "a"]));
    assert!(dirty_after(&mut b, "s", &["sadd", "s", "c"]));
    assert!(!dirty_after(&mut b, "s", &["srem", "s", "z"]));
    assert!(dirty_after(&mut b, "s", &["srem", "s", "c"]));
    assert!(!dirty_after(&mut b, "s", &["smembers", "s"]));
    assert!(!dirty_after(&mut b, "s", &["spop", "s", "0"]));
    assert!(dirty_after(&mut b, "s", &["spop", "s", "1"]));
    assert!(dirty_after(&mut b, "d", &["sunionstore", "d", "s"]));
    assert!(!dirty_after(
        &mut b,
        "nokey",
        &["sinterstore", "nokey", "s", "zz"]
    ));
    b.run(&["sadd", "t", "q"]);
    assert!(dirty_after(&mut b, "t", &["smove", "t", "u", "q"]));
    assert!(!dirty_after(&mut b, "u", &["smove", "nokey", "u", "q"]));
}

/// SSCAN: compact sets come back whole with cursor 0; a hashtable pages with COUNT and
/// the pages add up to the set; Valkey's option errors, and an empty scan for a missing key.
#[test]
fn sscan_cases() {
    let mut b = Bench::new();
    b.run(&["sadd", "p", "a", "b", "ab"]);
    assert_eq!(
        b.run(&["sscan", "p", "0", "COUNT", "1"]),
        "*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\nab\r\n"
    );
    assert_eq!(
        b.run(&["sscan", "p", "99", "match", "a*"]),
        "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$2\r\nab\r\n"
    );
    assert_eq!(
        b.run(&["sscan", "nokey", "0", "count", "0"]),
        "*2\r\n$1\r\n0\r\n*0\r\n"
    );
    for (args, err) in [
        (&["sscan", "p", "x"][..], "-ERR invalid cursor\r\n"),
        (&["sscan", "p", "-1"], "-ERR invalid cursor\r\n"),
        (&["sscan", "p", "0", "count", "0"], "-ERR syntax error\r\n"),
        (
            &["sscan", "p", "0", "count", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["sscan", "p", "0", "count"], "-ERR syntax error\r\n"),
        (&["sscan", "p", "0", "match"], "-ERR syntax error\r\n"),
        (&["sscan", "p", "0", "type", "set"], "-ERR syntax error\r\n"),
        (
            &["sscan", "p", "0", "novalues"],
            "-ERR NOVALUES option can only be used in HSCAN\r\n",
        ),
        (
            &["sscan", "p", "0", "noscores"],
            "-ERR NOSCORES option can only be used in ZSCAN\r\n",
        ),
    ] {
        assert_eq!(b.run(args), err, "{args:?}");
    }
    b.run_with(&["sadd", "h"], &numbered("m", 300));
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        let reply = b.run(&["sscan", "h", &cursor, "count", "50"]);
        let mut lines = reply.split("\r\n").skip(2);
        cursor = lines.next().expect("cursor").to_string();
        let page = bulks(&lines.collect::<Vec<_>>().join("\r\n"));
        assert!(page.len() <= 50);
        seen.extend(page);
        calls += 1;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(calls, 6);
    seen.sort();
    let mut want = numbered("m", 300);
    want.sort();
    assert_eq!(seen, want);
}

/// Members and option words are bytes: NUL bytes and binary members round-trip, and option
/// words compare like C strings.
#[test]
fn binary_members() {
    let mut b = Bench::new();
    let argv: [&[u8]; 4] = [b"sadd", b"s", b"a\0b", b"\xff"];
    assert_eq!(b.run_bytes(&argv), ":2\r\n");
    let argv: [&[u8]; 3] = [b"sismember", b"s", b"a\0b"];
    assert_eq!(b.run_bytes(&argv), ":1\r\n");
    let argv: [&[u8]; 3] = [b"sismember", b"s", b"a"];
    assert_eq!(b.run_bytes(&argv), ":0\r\n");
    let argv: [&[u8]; 5] = [b"sscan", b"s", b"0", b"COUNT\0", b"5"];
    assert!(b.run_bytes(&argv).starts_with("*2\r\n$1\r\n0\r\n*2\r\n"));
    // The cursor is read as a C string too.
    let argv: [&[u8]; 3] = [b"sscan", b"s", b"0\0junk"];
    assert!(b.run_bytes(&argv).starts_with("*2\r\n$1\r\n0\r\n*2\r\n"));
}
