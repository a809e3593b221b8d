//! List family tests: commands run against a one-shard keyspace, replies compared with the
//! bytes Valkey 8 sends for the same commands.

use crate::commands::{registry, Exec, KeyCtx, Lookup};
use crate::config::Config;
use crate::keyspace::Keyspace;
use crate::resp::Out;

struct Bench {
    ks: Keyspace,
    config: Config,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            ks: Keyspace::new(0, 1, 16),
            config: Config::defaults(),
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
            now_ms: 1_700_000_000_000,
            out: &mut out,
            config: &self.config,
        };
        f(&mut ctx, &argv);
        String::from_utf8_lossy(&out.buf).into_owned()
    }
}

/// Pushes, pops with and without count, and the empty list disappearing.
#[test]
fn push_pop() {
    let mut b = Bench::new();
    assert_eq!(b.run(&["rpush", "l", "a", "b", "c"]), ":3\r\n");
    assert_eq!(b.run(&["lpush", "l", "z"]), ":4\r\n");
    assert_eq!(b.run(&["lpop", "l"]), "$1\r\nz\r\n");
    assert_eq!(b.run(&["rpop", "l", "2"]), "*2\r\n$1\r\nc\r\n$1\r\nb\r\n");
    assert_eq!(b.run(&["lpop", "l", "0"]), "*0\r\n");
    assert_eq!(
        b.run(&["lpop", "l", "-1"]),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(
        b.run(&["lpop", "l", "x"]),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(b.run(&["lpop", "l", "5"]), "*1\r\n$1\r\na\r\n");
    assert_eq!(b.run(&["type", "l"]), "+none\r\n");
    assert_eq!(b.run(&["lpop", "l"]), "$-1\r\n");
    assert_eq!(b.run(&["lpop", "l", "1"]), "*-1\r\n");
    assert_eq!(b.run(&["lpushx", "l", "a"]), ":0\r\n");
    assert_eq!(b.run(&["set", "s", "x"]), "+OK\r\n");
    assert_eq!(
        b.run(&["lpush", "s", "a"]),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
}

/// LRANGE, LINDEX, LSET, LTRIM index arithmetic.
#[test]
fn positions() {
    let mut b = Bench::new();
    b.run(&["rpush", "l", "a", "b", "c", "d", "e"]);
    assert_eq!(
        b.run(&["lrange", "l", "-2", "100"]),
        "*2\r\n$1\r\nd\r\n$1\r\ne\r\n"
    );
    assert_eq!(b.run(&["lrange", "l", "3", "1"]), "*0\r\n");
    assert_eq!(b.run(&["lindex", "l", "-1"]), "$1\r\ne\r\n");
    assert_eq!(b.run(&["lindex", "l", "9"]), "$-1\r\n");
    assert_eq!(
        b.run(&["lset", "l", "9", "x"]),
        "-ERR index out of range\r\n"
    );
    assert_eq!(b.run(&["lset", "nokey", "0", "x"]), "-ERR no such key\r\n");
    assert_eq!(b.run(&["lset", "l", "0", "A"]), "+OK\r\n");
    assert_eq!(b.run(&["ltrim", "l", "1", "-2"]), "+OK\r\n");
    assert_eq!(
        b.run(&["lrange", "l", "0", "-1"]),
        "*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"
    );
    assert_eq!(b.run(&["ltrim", "l", "5", "1"]), "+OK\r\n");
    assert_eq!(b.run(&["exists", "l"]), ":0\r\n");
}

/// LREM from both ends, LINSERT, LPOS with RANK, COUNT and MAXLEN.
#[test]
fn search_and_edit() {
    let mut b = Bench::new();
    b.run(&["rpush", "l", "a", "b", "a", "c", "a"]);
    assert_eq!(b.run(&["lpos", "l", "a"]), ":0\r\n");
    assert_eq!(b.run(&["lpos", "l", "a", "rank", "-1"]), ":4\r\n");
    assert_eq!(
        b.run(&["lpos", "l", "a", "count", "0"]),
        "*3\r\n:0\r\n:2\r\n:4\r\n"
    );
    assert_eq!(
        b.run(&["lpos", "l", "a", "rank", "2", "count", "1"]),
        "*1\r\n:2\r\n"
    );
    assert_eq!(
        b.run(&["lpos", "l", "a", "maxlen", "2", "count", "0"]),
        "*1\r\n:0\r\n"
    );
    assert_eq!(b.run(&["lpos", "l", "z"]), "$-1\r\n");
    assert!(b
        .run(&["lpos", "l", "a", "rank", "0"])
        .starts_with("-ERR RANK can't be zero"));
    assert_eq!(
        b.run(&["lpos", "l", "a", "count", "-1"]),
        "-ERR COUNT can't be negative\r\n"
    );
    assert_eq!(b.run(&["lrem", "l", "-2", "a"]), ":2\r\n");
    assert_eq!(
        b.run(&["lrange", "l", "0", "-1"]),
        "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
    assert_eq!(b.run(&["linsert", "l", "before", "b", "x"]), ":4\r\n");
    assert_eq!(b.run(&["linsert", "l", "after", "zz", "x"]), ":-1\r\n");
    assert_eq!(
        b.run(&["linsert", "l", "middle", "b", "x"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(b.run(&["linsert", "nokey", "after", "b", "x"]), ":0\r\n");
}

/// LMOVE and LMPOP on one shard, with their type checks.
#[test]
fn moves() {
    let mut b = Bench::new();
    b.run(&["rpush", "{t}a", "1", "2", "3"]);
    assert_eq!(
        b.run(&["lmove", "{t}a", "{t}b", "left", "right"]),
        "$1\r\n1\r\n"
    );
    assert_eq!(b.run(&["rpoplpush", "{t}a", "{t}b"]), "$1\r\n3\r\n");
    assert_eq!(
        b.run(&["lrange", "{t}b", "0", "-1"]),
        "*2\r\n$1\r\n3\r\n$1\r\n1\r\n"
    );
    assert_eq!(
        b.run(&["lmove", "{t}a", "{t}b", "up", "right"]),
        "-ERR syntax error\r\n"
    );
    b.run(&["set", "{t}s", "x"]);
    assert_eq!(
        b.run(&["lmove", "{t}a", "{t}s", "left", "left"]),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(
        b.run(&["lmove", "{t}none", "{t}s", "left", "left"]),
        "$-1\r\n"
    );
    assert_eq!(
        b.run(&["lmpop", "2", "{t}x", "{t}b", "left", "count", "5"]),
        "*2\r\n$4\r\n{t}b\r\n*2\r\n$1\r\n3\r\n$1\r\n1\r\n"
    );
    assert_eq!(b.run(&["lmpop", "1", "{t}b", "left"]), "*-1\r\n");
    assert_eq!(
        b.run(&["lmpop", "0", "{t}b", "left"]),
        "-ERR numkeys should be greater than 0\r\n"
    );
    assert_eq!(
        b.run(&["lmpop", "2", "{t}b", "left"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        b.run(&["lmpop", "1", "{t}b", "left", "count", "0"]),
        "-ERR count should be greater than 0\r\n"
    );
}
