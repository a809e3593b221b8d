//! Sorted set family tests: each command run against a keyspace directly (one shard, so the
//! multi-key commands take their single-shard path; the coordinators run in the
//! differential test on two shards), replies compared with the bytes Valkey 8 sends.

use super::{parse_double, parse_lex_range, parse_score_range, pop_from, WrongType};
use crate::commands::{registry, Exec, KeyCtx, Lookup};
use crate::config::Config;
use crate::keyspace::encoding::Limits;
use crate::keyspace::Keyspace;
use crate::resp::Out;

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
        if !r.spec.arity_ok(argv.len()) {
            return format!(
                "-ERR wrong number of arguments for '{}' command\r\n",
                r.fullname
            );
        }
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

    /// Runs a command line split at spaces.
    fn cmd(&mut self, line: &str) -> String {
        let args: Vec<&str> = line.split(' ').collect();
        self.run(&args)
    }

    fn encoding(&mut self, key: &str) -> String {
        self.run(&["object", "encoding", key])
    }
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

/// ZADD's options behave as Valkey's: NX, XX, GT, LT, CH, INCR, their conflicts and errors,
/// and a score list that is read whole before anything changes.
#[test]
fn zadd_options() {
    let mut b = Bench::new();
    assert_eq!(b.cmd("zadd z 1 a 2 b"), ":2\r\n");
    assert_eq!(b.cmd("zadd z 3 a 4 c"), ":1\r\n");
    assert_eq!(b.cmd("zadd z ch 5 a 4 c 1 d"), ":2\r\n");
    assert_eq!(b.cmd("zadd z nx 9 a 9 e"), ":1\r\n");
    assert_eq!(b.cmd("zscore z a"), bulk("5"));
    assert_eq!(b.cmd("zadd z xx ch 6 a 7 f"), ":1\r\n");
    assert_eq!(b.cmd("zscore z f"), "$-1\r\n");
    assert_eq!(b.cmd("zadd z gt ch 1 a 10 b"), ":1\r\n");
    assert_eq!(b.cmd("zadd z lt ch 1 a 10 b"), ":1\r\n");
    assert_eq!(b.cmd("zscore z a"), bulk("1"));
    assert_eq!(b.cmd("zadd z incr 2.5 a"), bulk("3.5"));
    assert_eq!(b.cmd("zadd z nx incr 1 a"), "$-1\r\n");
    assert_eq!(b.cmd("zadd z xx incr 1 nope"), "$-1\r\n");
    assert_eq!(b.cmd("zadd z gt incr -1 a"), "$-1\r\n");
    assert_eq!(
        b.cmd("zadd z nx xx 1 a"),
        "-ERR XX and NX options at the same time are not compatible\r\n"
    );
    for bad in ["zadd z gt lt 1 a", "zadd z nx gt 1 a", "zadd z lt nx 1 a"] {
        assert_eq!(
            b.cmd(bad),
            "-ERR GT, LT, and/or NX options at the same time are not compatible\r\n"
        );
    }
    assert_eq!(
        b.cmd("zadd z incr 1 a 2 b"),
        "-ERR INCR option supports a single increment-element pair\r\n"
    );
    assert_eq!(b.cmd("zadd z 1 a 2"), "-ERR syntax error\r\n");
    assert_eq!(b.cmd("zadd z nx 1"), "-ERR syntax error\r\n");
    // A bad score anywhere: nothing is added.
    assert_eq!(
        b.cmd("zadd z 1 new nan b"),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(b.cmd("zscore z new"), "$-1\r\n");
    // XX on a missing key creates nothing.
    assert_eq!(b.cmd("zadd nokey xx 1 a"), ":0\r\n");
    assert_eq!(b.cmd("exists nokey"), ":0\r\n");
    assert_eq!(b.cmd("set s x"), "+OK\r\n");
    assert_eq!(
        b.cmd("zadd s 1 a"),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    // A bad score is found before the wrong type.
    assert_eq!(b.cmd("zadd s x a"), "-ERR value is not a valid float\r\n");
}

/// ZINCRBY reads its increment like ZADD INCR, so NaN results and odd words behave the same.
#[test]
fn zincrby() {
    let mut b = Bench::new();
    assert_eq!(b.cmd("zincrby z 1.5 a"), bulk("1.5"));
    assert_eq!(b.cmd("zincrby z 0.1 a"), bulk("1.6"));
    assert_eq!(b.cmd("zincrby z +inf b"), bulk("inf"));
    assert_eq!(
        b.cmd("zincrby z -inf b"),
        "-ERR resulting score is not a number (NaN)\r\n"
    );
    assert_eq!(b.cmd("zscore z b"), bulk("inf"));
    assert_eq!(
        b.cmd("zincrby z x b"),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(b.cmd("zincrby z nx b"), "-ERR syntax error\r\n");
    b.resp3 = true;
    assert_eq!(b.cmd("zincrby z 1 c"), ",1\r\n");
}

/// Scores print as Valkey 8 prints them: integers, inf, shortest round-trip decimals; in
/// RESP3 as doubles. A listpack stores -0 as 0 (an integer entry) while a skiplist keeps it.
#[test]
fn score_text() {
    let mut b = Bench::new();
    b.cmd("zadd z 0.1 a 1e20 b -inf c 123456789 d 5e-324 e");
    assert_eq!(
        b.cmd("zrange z 0 -1 withscores"),
        "*10\r\n$1\r\nc\r\n$4\r\n-inf\r\n$1\r\ne\r\n$6\r\n5e-324\r\n$1\r\na\r\n$3\r\n0.1\r\n$1\r\nd\r\n$9\r\n123456789\r\n$1\r\nb\r\n$5\r\n1e+20\r\n"
    );
    assert_eq!(b.cmd("zadd n incr -0 a"), bulk("-0"));
    assert_eq!(b.cmd("zscore n a"), bulk("0"));
    let long = "x".repeat(65);
    b.run(&["zadd", "sk", "-0", "a", "1", &long]);
    assert_eq!(b.encoding("sk"), bulk("skiplist"));
    assert_eq!(b.cmd("zscore sk a"), bulk("-0"));
    b.resp3 = true;
    assert_eq!(b.cmd("zscore z a"), ",0.1\r\n");
    assert_eq!(b.cmd("zmscore z a nope c"), "*3\r\n,0.1\r\n_\r\n,-inf\r\n");
}

/// Encodings follow Valkey 8: sized by the first ZADD, converted when a member or the count
/// outgrows the listpack (even by a ZADD that ends up adding nothing), never back by
/// removals, and store results sized by their content.
#[test]
fn encodings() {
    let mut b = Bench::new();
    let many: Vec<String> = (0..129).map(|i| format!("m{i}")).collect();
    let mut args = vec!["zadd", "big"];
    for m in &many {
        args.push("1");
        args.push(m);
    }
    b.run(&args);
    assert_eq!(b.encoding("big"), bulk("skiplist"));
    // 129 pairs of one member: a skiplist from the start, with one element.
    let mut args = vec!["zadd", "dup"];
    for _ in 0..129 {
        args.extend(["1", "a"]);
    }
    b.run(&args);
    assert_eq!(b.encoding("dup"), bulk("skiplist"));
    assert_eq!(b.cmd("zcard dup"), ":1\r\n");
    b.cmd("zadd small 1 a");
    let long = "y".repeat(65);
    assert_eq!(b.run(&["zadd", "small", "xx", "1", &long]), ":0\r\n");
    assert_eq!(b.encoding("small"), bulk("skiplist"));
    b.cmd("zadd lp 1 a 2 b");
    b.run(&["zadd", "lp", "3", &"z".repeat(64)]);
    assert_eq!(b.encoding("lp"), bulk("listpack"));
    b.run(&["zadd", "lp", "4", &long]);
    assert_eq!(b.encoding("lp"), bulk("skiplist"));
    b.run(&["zrem", "lp", &long]);
    assert_eq!(b.encoding("lp"), bulk("skiplist"));
    assert_eq!(b.cmd("zunionstore u 1 lp"), ":3\r\n");
    assert_eq!(b.encoding("u"), bulk("listpack"));
    assert_eq!(b.cmd("zrangestore r big 0 127"), ":128\r\n");
    assert_eq!(b.encoding("r"), bulk("listpack"));
    assert_eq!(b.cmd("zrangestore r big 0 128"), ":129\r\n");
    assert_eq!(b.encoding("r"), bulk("skiplist"));
    assert_eq!(b.cmd("copy big big2"), ":1\r\n");
    assert_eq!(b.encoding("big2"), bulk("skiplist"));
    assert_eq!(b.cmd("type big2"), "+zset\r\n");
    // The thresholds come from the configuration.
    b.ks.limits = Limits {
        zset_max_listpack_entries: 2,
        ..Limits::default()
    };
    b.cmd("zadd c 1 a 2 b");
    assert_eq!(b.encoding("c"), bulk("listpack"));
    b.cmd("zadd c 3 c");
    assert_eq!(b.encoding("c"), bulk("skiplist"));
}

/// ZRANGE by rank, score and member, with REV, LIMIT and WITHSCORES, in both protocols, and
/// the older forms; the error texts and the order they are found in.
#[test]
fn ranges() {
    let mut b = Bench::new();
    b.cmd("zadd z 1 a 2 b 3 c 4 d 5 e");
    assert_eq!(b.cmd("zrange z 0 1"), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(b.cmd("zrange z -2 -1 rev"), "*2\r\n$1\r\nb\r\n$1\r\na\r\n");
    assert_eq!(b.cmd("zrange z 5 10"), "*0\r\n");
    assert_eq!(
        b.cmd("zrevrange z 0 0 withscores"),
        "*2\r\n$1\r\ne\r\n$1\r\n5\r\n"
    );
    assert_eq!(
        b.cmd("zrange z (1 3 byscore withscores"),
        "*4\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n"
    );
    assert_eq!(
        b.cmd("zrange z 3 (1 byscore rev"),
        "*2\r\n$1\r\nc\r\n$1\r\nb\r\n"
    );
    assert_eq!(b.cmd("zrange z (1 3 byscore rev"), "*0\r\n");
    assert_eq!(
        b.cmd("zrangebyscore z -inf +inf limit 1 2"),
        "*2\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
    assert_eq!(
        b.cmd("zrevrangebyscore z +inf -inf limit 1 -1"),
        "*4\r\n$1\r\nd\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n"
    );
    // A negative offset walks off a listpack.
    assert_eq!(b.cmd("zrangebyscore z -inf +inf limit -1 2"), "*0\r\n");
    assert_eq!(b.cmd("zrangebylex z [b (d"), "*2\r\n$1\r\nb\r\n$1\r\nc\r\n");
    assert_eq!(b.cmd("zrevrangebylex z + - limit 1 1"), "*1\r\n$1\r\nd\r\n");
    assert_eq!(b.cmd("zrange z - + bylex limit 0 1"), "*1\r\n$1\r\na\r\n");
    assert_eq!(
        b.cmd("zrange z 0 -1 limit 0 1"),
        "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX\r\n"
    );
    // LIMIT 0 -1 is "no limit", so a rank range takes it.
    assert_eq!(b.cmd("zrange z 0 0 limit 0 -1"), "*1\r\n$1\r\na\r\n");
    assert_eq!(
        b.cmd("zrange z - + bylex withscores"),
        "-ERR syntax error, WITHSCORES not supported in combination with BYLEX\r\n"
    );
    assert_eq!(b.cmd("zrange z 0 1 rev rev"), "-ERR syntax error\r\n");
    assert_eq!(b.cmd("zrevrange z 0 1 rev"), "-ERR syntax error\r\n");
    assert_eq!(
        b.cmd("zrange z x 1"),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        b.cmd("zrange z x 1 byscore"),
        "-ERR min or max is not a float\r\n"
    );
    assert_eq!(
        b.cmd("zrange z a b bylex"),
        "-ERR min or max not valid string range item\r\n"
    );
    assert_eq!(
        b.cmd("zrangebyscore z 1 2 limit x 1"),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        b.cmd("zrangebyscore z 1 2 limit 1"),
        "-ERR syntax error\r\n"
    );
    assert_eq!(b.cmd("zrange nokey 0 -1 withscores"), "*0\r\n");
    b.resp3 = true;
    assert_eq!(
        b.cmd("zrange z 0 1 withscores"),
        "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n"
    );
    assert_eq!(b.cmd("zrange nokey 0 -1 withscores"), "*0\r\n");
}

/// Valkey 8 counts a negative LIMIT offset from the other end of the range on a skiplist
/// (its `zslNthInRange`), while a listpack walks off the end.
#[test]
fn skiplist_negative_offsets() {
    let mut b = Bench::new();
    let mut args = vec!["zadd".to_string(), "big".to_string()];
    for i in 0..200 {
        args.push(i.to_string());
        args.push(format!("m{i:03}"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    b.run(&argv);
    assert_eq!(
        b.cmd("zrangebyscore big -inf +inf limit -1 2"),
        "*1\r\n$4\r\nm199\r\n"
    );
    assert_eq!(
        b.cmd("zrangebyscore big -inf +inf limit -3 2"),
        "*2\r\n$4\r\nm197\r\n$4\r\nm198\r\n"
    );
    assert_eq!(
        b.cmd("zrevrangebyscore big +inf -inf limit -1 2"),
        "*1\r\n$4\r\nm000\r\n"
    );
    assert_eq!(
        b.cmd("zrevrangebylex big + - limit -2 2"),
        "*2\r\n$4\r\nm001\r\n$4\r\nm000\r\n"
    );
    assert_eq!(
        b.cmd("zrangebyscore big 5 10 limit -1 3"),
        "*1\r\n$4\r\nm010\r\n"
    );
    assert_eq!(b.cmd("zrangebyscore big 5 10 limit -7 3"), "*0\r\n");
    assert_eq!(
        b.cmd("zrangebyscore big 5 10 limit -9223372036854775808 3"),
        "*0\r\n"
    );
    assert_eq!(b.cmd("zcount big (5 10"), ":5\r\n");
    assert_eq!(b.cmd("zlexcount big [m005 (m010"), ":5\r\n");
}

/// ZRANK and ZREVRANK, with Valkey 8's WITHSCORE; a fifth argument is an arity error.
#[test]
fn ranks() {
    let mut b = Bench::new();
    b.cmd("zadd z 1 a 2 b 3 c");
    assert_eq!(b.cmd("zrank z b"), ":1\r\n");
    assert_eq!(b.cmd("zrevrank z a"), ":2\r\n");
    assert_eq!(b.cmd("zrank z b withscore"), "*2\r\n:1\r\n$1\r\n2\r\n");
    assert_eq!(b.cmd("zrank z nope withscore"), "*-1\r\n");
    assert_eq!(b.cmd("zrank nokey a"), "$-1\r\n");
    assert_eq!(b.cmd("zrank z a withscores"), "-ERR syntax error\r\n");
    assert_eq!(
        b.cmd("zrank z a withscore x"),
        "-ERR wrong number of arguments for 'zrank' command\r\n"
    );
    b.resp3 = true;
    assert_eq!(b.cmd("zrevrank z c withscore"), "*2\r\n:0\r\n,3\r\n");
    assert_eq!(b.cmd("zrank z nope withscore"), "_\r\n");
}

/// ZPOPMIN/ZPOPMAX: flat pairs in RESP2 and without a count, nested with a count in RESP3;
/// the key goes when it empties; counts are checked as Valkey checks them.
#[test]
fn pops() {
    let mut b = Bench::new();
    b.cmd("zadd z 1 a 2 b 3 c");
    assert_eq!(b.cmd("zpopmin z"), "*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(
        b.cmd("zpopmax z 5"),
        "*4\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(b.cmd("exists z"), ":0\r\n");
    assert_eq!(b.cmd("zpopmin z"), "*0\r\n");
    assert_eq!(b.cmd("zpopmin z 0"), "*0\r\n");
    assert_eq!(
        b.cmd("zpopmin z -1"),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(
        b.cmd("zpopmin z x"),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(b.cmd("zpopmin z 1 2"), "-ERR syntax error\r\n");
    b.resp3 = true;
    b.cmd("zadd z 1 a 2 b");
    assert_eq!(b.cmd("zpopmin z"), "*2\r\n$1\r\na\r\n,1\r\n");
    assert_eq!(b.cmd("zpopmax z 1"), "*1\r\n*2\r\n$1\r\nb\r\n,2\r\n");
}

/// ZMPOP takes the first non-empty key, answers a null array when there is none, and checks
/// numkeys, MIN|MAX and COUNT as Valkey does.
#[test]
fn zmpop() {
    let mut b = Bench::new();
    b.cmd("zadd z 1 a 2 b 3 c");
    assert_eq!(
        b.cmd("zmpop 2 nokey z max count 2"),
        "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(b.cmd("zmpop 1 nokey min"), "*-1\r\n");
    b.cmd("set s x");
    assert_eq!(
        b.cmd("zmpop 2 s z min"),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    // A wrong type after the first non-empty key is never looked at.
    assert_eq!(
        b.cmd("zmpop 2 z s min"),
        "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(b.cmd("exists z"), ":0\r\n");
    for (line, err) in [
        ("zmpop 0 z min", "numkeys should be greater than 0"),
        ("zmpop x z min", "numkeys should be greater than 0"),
        ("zmpop 1 z foo", "syntax error"),
        ("zmpop 2 z min", "syntax error"),
        ("zmpop 1 z min count 0", "count should be greater than 0"),
        ("zmpop 1 z min count x", "count should be greater than 0"),
        ("zmpop 1 z min count 1 count 1", "syntax error"),
        ("zmpop 1 z min count", "syntax error"),
    ] {
        assert_eq!(b.cmd(line), format!("-ERR {err}\r\n"), "{line}");
    }
    b.resp3 = true;
    assert_eq!(b.cmd("zmpop 1 nokey min"), "_\r\n");
}

/// The blocking commands' pop step: owned pairs in pop order, the key deleted when empty,
/// a wrong type reported, a missing key told apart.
#[test]
fn pop_step() {
    let mut b = Bench::new();
    b.cmd("zadd z 1 a 2 b 3 c");
    b.cmd("set s x");
    let mut out = Out::new(false);
    let mut ctx = KeyCtx {
        ks: &mut b.ks,
        db: 0,
        now_ms: b.now,
        out: &mut out,
        config: &b.config,
    };
    let popped = pop_from(&mut ctx, b"z", true, 2).unwrap().unwrap();
    let got: Vec<(&[u8], f64)> = popped.iter().map(|(m, s)| (&m[..], *s)).collect();
    assert_eq!(got, [(&b"c"[..], 3.0), (&b"b"[..], 2.0)]);
    assert_eq!(
        pop_from(&mut ctx, b"z", false, 5).unwrap().unwrap().len(),
        1
    );
    assert_eq!(pop_from(&mut ctx, b"z", false, 1), Ok(None));
    assert_eq!(pop_from(&mut ctx, b"s", false, 1), Err(WrongType));
    assert!(out.buf.is_empty(), "the step writes no reply");
}

/// ZUNION, ZINTER and ZDIFF with weights and aggregates, Valkey's NaN-to-0 rule, the STORE
/// forms (an empty result deletes the destination), and WRONGTYPE found before bad options.
#[test]
fn set_algebra() {
    let mut b = Bench::new();
    b.cmd("zadd a 1 x 2 y 3 z");
    b.cmd("zadd b 2 y 3 z 4 w");
    b.cmd("zadd c 0.5 x -1 q");
    assert_eq!(
        b.cmd("zunion 3 a b c weights 1 2 0.5 withscores"),
        "*10\r\n$1\r\nq\r\n$4\r\n-0.5\r\n$1\r\nx\r\n$4\r\n1.25\r\n$1\r\ny\r\n$1\r\n6\r\n$1\r\nw\r\n$1\r\n8\r\n$1\r\nz\r\n$1\r\n9\r\n"
    );
    assert_eq!(
        b.cmd("zinter 2 a b aggregate max withscores"),
        "*4\r\n$1\r\ny\r\n$1\r\n2\r\n$1\r\nz\r\n$1\r\n3\r\n"
    );
    assert_eq!(
        b.cmd("zinter 2 a b aggregate min"),
        "*2\r\n$1\r\ny\r\n$1\r\nz\r\n"
    );
    assert_eq!(
        b.cmd("zdiff 2 a b withscores"),
        "*2\r\n$1\r\nx\r\n$1\r\n1\r\n"
    );
    assert_eq!(b.cmd("zdiff 2 a a"), "*0\r\n");
    // inf * 0 is NaN: counted as 0; inf + -inf is NaN: counted as 0.
    assert_eq!(
        b.cmd("zunion 1 a weights 0 withscores"),
        "*6\r\n$1\r\nx\r\n$1\r\n0\r\n$1\r\ny\r\n$1\r\n0\r\n$1\r\nz\r\n$1\r\n0\r\n"
    );
    b.cmd("zadd i inf m");
    b.cmd("zadd j -inf m");
    assert_eq!(
        b.cmd("zunion 2 i j withscores"),
        "*2\r\n$1\r\nm\r\n$1\r\n0\r\n"
    );
    assert_eq!(
        b.cmd("zunion 1 i weights 0 withscores"),
        "*2\r\n$1\r\nm\r\n$1\r\n0\r\n"
    );
    assert_eq!(b.cmd("zunionstore d 2 a b"), ":4\r\n");
    assert_eq!(b.cmd("zrange d 0 -1 withscores"), "*8\r\n$1\r\nx\r\n$1\r\n1\r\n$1\r\nw\r\n$1\r\n4\r\n$1\r\ny\r\n$1\r\n4\r\n$1\r\nz\r\n$1\r\n6\r\n");
    b.cmd("expire d 100");
    assert_eq!(b.cmd("zinterstore d 2 a b"), ":2\r\n");
    assert_eq!(b.cmd("ttl d"), ":-1\r\n");
    assert_eq!(b.cmd("zdiffstore d 2 a a"), ":0\r\n");
    assert_eq!(b.cmd("exists d"), ":0\r\n");
    // The destination may be an input.
    assert_eq!(b.cmd("zunionstore a 2 a b"), ":4\r\n");
    b.cmd("set s v");
    let wrong = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    assert_eq!(b.cmd("zunion 2 a s weights x"), wrong);
    assert_eq!(
        b.cmd("zunion 2 a nokey weights 1 x"),
        "-ERR weight value is not a float\r\n"
    );
    assert_eq!(b.cmd("zunion 2 a b weights 1"), "-ERR syntax error\r\n");
    assert_eq!(b.cmd("zinter 1 a aggregate avg"), "-ERR syntax error\r\n");
    assert_eq!(b.cmd("zinter 1 a aggregate"), "-ERR syntax error\r\n");
    assert_eq!(b.cmd("zdiff 1 a weights 1"), "-ERR syntax error\r\n");
    assert_eq!(
        b.cmd("zunionstore d 1 a withscores"),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        b.cmd("zunion 0 a"),
        "-ERR at least 1 input key is needed for 'zunion' command\r\n"
    );
    assert_eq!(
        b.cmd("zdiffstore d -1 a"),
        "-ERR at least 1 input key is needed for 'zdiffstore' command\r\n"
    );
    assert_eq!(b.cmd("zunion 3 a b"), "-ERR syntax error\r\n");
    assert_eq!(
        b.cmd("zunion x a"),
        "-ERR value is not an integer or out of range\r\n"
    );
    b.resp3 = true;
    assert_eq!(b.cmd("zinter 2 b c withscores"), "*0\r\n");
    assert_eq!(
        b.cmd("zdiff 2 b c withscores"),
        "*3\r\n*2\r\n$1\r\ny\r\n,2\r\n*2\r\n$1\r\nz\r\n,3\r\n*2\r\n$1\r\nw\r\n,4\r\n"
    );
}

/// ZINTERCARD counts, stops at LIMIT, and refuses a negative or non-integer LIMIT.
#[test]
fn zintercard() {
    let mut b = Bench::new();
    b.cmd("zadd a 1 x 2 y 3 z");
    b.cmd("zadd b 2 y 3 z 4 w");
    assert_eq!(b.cmd("zintercard 2 a b"), ":2\r\n");
    assert_eq!(b.cmd("zintercard 2 a b limit 1"), ":1\r\n");
    assert_eq!(b.cmd("zintercard 2 a b limit 0"), ":2\r\n");
    assert_eq!(b.cmd("zintercard 2 a nokey"), ":0\r\n");
    assert_eq!(
        b.cmd("zintercard 2 a b limit -1"),
        "-ERR LIMIT can't be negative\r\n"
    );
    assert_eq!(
        b.cmd("zintercard 2 a b limit x"),
        "-ERR LIMIT can't be negative\r\n"
    );
    assert_eq!(b.cmd("zintercard 1 a withscores"), "-ERR syntax error\r\n");
    assert_eq!(
        b.cmd("zintercard 0 a"),
        "-ERR at least 1 input key is needed for 'zintercard' command\r\n"
    );
}

/// ZRANDMEMBER's shapes and counts: distinct members for a positive count (the whole set,
/// highest first, when the count covers it), repeats allowed for a negative one, and
/// Valkey's range checks.
#[test]
fn zrandmember() {
    let mut b = Bench::new();
    assert_eq!(b.cmd("zrandmember nokey"), "$-1\r\n");
    assert_eq!(b.cmd("zrandmember nokey 3"), "*0\r\n");
    b.cmd("zadd z 1 a 2 b 3 c");
    assert!(
        ["$1\r\na\r\n", "$1\r\nb\r\n", "$1\r\nc\r\n"].contains(&b.cmd("zrandmember z").as_str())
    );
    assert_eq!(
        b.cmd("zrandmember z 10 withscores"),
        "*6\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(b.cmd("zrandmember z 0"), "*0\r\n");
    let r = b.cmd("zrandmember z -7");
    assert!(r.starts_with("*7\r\n"), "{r}");
    let r = b.cmd("zrandmember z 2");
    assert!(r.starts_with("*2\r\n"));
    let parts: Vec<&str> = r.split("\r\n").collect();
    assert_ne!(parts[2], parts[4], "distinct members: {r}");
    assert_eq!(b.cmd("zrandmember z 1 foo"), "-ERR syntax error\r\n");
    assert_eq!(
        b.cmd("zrandmember z x"),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        b.cmd("zrandmember z -9223372036854775808"),
        "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
    );
    assert_eq!(
        b.cmd("zrandmember z 9223372036854775807 withscores"),
        "-ERR value is out of range\r\n"
    );
    assert_eq!(
        b.cmd("zrandmember z -1000000000000"),
        "-ERR value is out of range\r\n"
    );
    // A skiplist: distinct picks, any order.
    let mut args = vec!["zadd".to_string(), "big".to_string()];
    for i in 0..300 {
        args.push(i.to_string());
        args.push(format!("m{i}"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    b.run(&argv);
    for count in ["5", "150", "299"] {
        let r = b.run(&["zrandmember", "big", count]);
        let members: Vec<&str> = r
            .split("\r\n")
            .skip(2)
            .step_by(2)
            .filter(|s| !s.is_empty())
            .collect();
        let distinct: std::collections::HashSet<&&str> = members.iter().collect();
        assert_eq!(members.len().to_string(), count);
        assert_eq!(distinct.len(), members.len());
    }
    b.resp3 = true;
    let r = b.cmd("zrandmember z -2 withscores");
    assert!(r.starts_with("*2\r\n*2\r\n$1\r\n"), "{r}");
}

/// ZSCAN: a listpack comes back whole with its stored score texts; a skiplist pages through
/// to cursor 0 with "%.17g" scores; options are read after the key (a missing key ignores
/// bad ones), and NOSCORES drops the scores.
#[test]
fn zscan() {
    let mut b = Bench::new();
    assert_eq!(b.cmd("zscan nokey 0 foo"), "*2\r\n$1\r\n0\r\n*0\r\n");
    b.cmd("zadd z 0.1 a 2 b");
    assert_eq!(
        b.cmd("zscan z 0"),
        "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$3\r\n0.1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(
        b.cmd("zscan z 0 match b* noscores"),
        "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nb\r\n"
    );
    assert_eq!(b.cmd("zscan z 0 count 0"), "-ERR syntax error\r\n");
    assert_eq!(b.cmd("zscan z 0 type zset"), "-ERR syntax error\r\n");
    assert_eq!(
        b.cmd("zscan z 0 novalues"),
        "-ERR NOVALUES option can only be used in HSCAN\r\n"
    );
    assert_eq!(b.cmd("zscan z x"), "-ERR invalid cursor\r\n");
    assert_eq!(b.cmd("zscan z -1"), "-ERR invalid cursor\r\n");
    let mut args = vec!["zadd".to_string(), "big".to_string()];
    for i in 0..200 {
        args.push(format!("{}.1", i));
        args.push(format!("m{i}"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    b.run(&argv);
    let mut cursor = "0".to_string();
    let mut seen = std::collections::HashMap::new();
    for _ in 0..100 {
        let r = b.run(&["zscan", "big", &cursor, "count", "7"]);
        let parts: Vec<&str> = r.split("\r\n").collect();
        cursor = parts[2].to_string();
        let items: Vec<&str> = parts[4..].iter().copied().skip(1).step_by(2).collect();
        for pair in items.chunks(2) {
            if pair.len() == 2 {
                seen.insert(pair[0].to_string(), pair[1].to_string());
            }
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0");
    assert_eq!(seen.len(), 200);
    assert_eq!(seen["m1"], "1.1000000000000001");
    assert_eq!(seen["m0"], "0.10000000000000001");
}

/// ZREMRANGEBYRANK/SCORE/LEX remove what they name, delete an emptied key, and check their
/// arguments before the key.
#[test]
fn remove_ranges() {
    let mut b = Bench::new();
    b.cmd("zadd z 1 a 2 b 3 c 4 d 5 e");
    assert_eq!(b.cmd("zremrangebyrank z 1 -2"), ":3\r\n");
    assert_eq!(b.cmd("zrange z 0 -1"), "*2\r\n$1\r\na\r\n$1\r\ne\r\n");
    assert_eq!(b.cmd("zremrangebyrank z 5 10"), ":0\r\n");
    assert_eq!(b.cmd("zremrangebyscore z (1 +inf"), ":1\r\n");
    assert_eq!(b.cmd("zremrangebylex z - +"), ":1\r\n");
    assert_eq!(b.cmd("exists z"), ":0\r\n");
    b.cmd("set s v");
    assert_eq!(
        b.cmd("zremrangebyscore s x 1"),
        "-ERR min or max is not a float\r\n"
    );
    assert_eq!(
        b.cmd("zremrangebylex s a b"),
        "-ERR min or max not valid string range item\r\n"
    );
    assert_eq!(
        b.cmd("zremrangebyrank s 0 x"),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(b.cmd("zremrangebyrank nokey 0 1"), ":0\r\n");
}

/// ZREM, ZCARD, ZCOUNT and ZLEXCOUNT, and the key going when the last member does.
#[test]
fn small_commands() {
    let mut b = Bench::new();
    b.cmd("zadd z 0 a 0 b 0 c 0 d");
    assert_eq!(b.cmd("zcard z"), ":4\r\n");
    assert_eq!(b.cmd("zcount z -inf +inf"), ":4\r\n");
    assert_eq!(b.cmd("zcount z (0 +inf"), ":0\r\n");
    assert_eq!(b.cmd("zlexcount z (a [c"), ":2\r\n");
    assert_eq!(b.cmd("zlexcount z + -"), ":0\r\n");
    assert_eq!(b.cmd("zlexcount z - -"), ":0\r\n");
    assert_eq!(b.cmd("zrem z a x b"), ":2\r\n");
    assert_eq!(b.cmd("zrem z c d e"), ":2\r\n");
    assert_eq!(b.cmd("exists z"), ":0\r\n");
    assert_eq!(b.cmd("zcard z"), ":0\r\n");
    assert_eq!(b.cmd("zmscore z a"), "*1\r\n$-1\r\n");
}

/// Writes tell WATCH they changed the key; commands that change nothing do not.
#[test]
fn watch_signals() {
    let mut b = Bench::new();
    b.ks.watches.watch(0, b"z", 7);
    b.cmd("zadd z xx 1 a");
    assert!(!b.ks.watches.is_dirty(7));
    b.cmd("zadd z 1 a");
    assert!(b.ks.watches.is_dirty(7));
    b.ks.watches.unwatch(7, &[(0, b"z".to_vec())]);
    b.ks.watches.watch(0, b"z", 8);
    b.cmd("zrem z nope");
    b.cmd("zadd z 1 a");
    assert!(!b.ks.watches.is_dirty(8));
    b.cmd("zincrby z 1 a");
    assert!(b.ks.watches.is_dirty(8));
    b.ks.watches.watch(0, b"d", 9);
    b.cmd("zunionstore d 1 z");
    assert!(b.ks.watches.is_dirty(9));
}

/// Scores and ranges are read as Valkey reads them: strtod's forms (hex, inf, exponents), no
/// leading space or NUL for a score; a range end may have a space, be empty (0) or overflow
/// to infinity, and a lexicographic end keeps its NUL bytes.
#[test]
fn parsing() {
    assert_eq!(parse_double(b"0x10"), Some(16.0));
    assert_eq!(parse_double(b"-Infinity"), Some(f64::NEG_INFINITY));
    assert_eq!(parse_double(b"1e-320"), Some(1e-320));
    assert_eq!(parse_double(b".5"), Some(0.5));
    for bad in [
        &b""[..],
        b" 1",
        b"1 ",
        b"nan",
        b"1e400",
        b"1e-400",
        b"1\x00",
        b"abc",
    ] {
        assert_eq!(parse_double(bad), None, "{bad:?}");
    }
    let r = parse_score_range(b"(1", b" 2").unwrap();
    assert!(r.min_ex && !r.max_ex && r.min == 1.0 && r.max == 2.0);
    let r = parse_score_range(b"", b"1e400").unwrap();
    assert!(r.min == 0.0 && r.max == f64::INFINITY);
    assert!(parse_score_range(b"(", b"1\x00x").is_ok());
    assert!(parse_score_range(b"nan", b"1").is_err());
    assert!(parse_score_range(b"[1", b"1").is_err());
    assert!(parse_lex_range(b"[a\x00b", b"+\x00junk").is_ok());
    assert!(parse_lex_range(b"", b"+").is_err());
    assert!(parse_lex_range(b"+x", b"+").is_err());
}
