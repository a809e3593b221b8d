//! Cross-shard set commands are atomic: with two shards, an SMOVE between sets owned by
//! different shards is never seen half done by a concurrent SUNION of both (each runs as one
//! shard-ordered transaction, DESIGN.md), and a STORE whose destination lives on another
//! shard than its operands writes the result before anyone can read the operands changed.

use corekey_tests::client::Reply;
use corekey_tests::server::Corekey;
use corekey_tests::slot::key_shard;

/// Iterations per thread: bounded, no timing involved.
const ITERATIONS: usize = 5_000;

/// The first key named `prefix:<i>` that lives on `shard` of 2.
fn key_on_shard(prefix: &str, shard: u16) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}:{i}"))
        .find(|k| key_shard(k.as_bytes(), 2) == shard)
        .expect("a key on each shard")
}

/// The members of a set reply.
fn members(f: &Reply) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = f
        .as_list()
        .unwrap_or_else(|| panic!("not a list: {f:?}"))
        .iter()
        .map(|r| r.as_bytes().expect("a bulk member").to_vec())
        .collect();
    v.sort();
    v
}

/// Two writers move one member back and forth between a set on each shard while readers
/// take SUNION and SINTERCARD of both: the member is always in exactly one of them.
#[test]
fn smove_across_shards_is_never_seen_half_done() {
    let server = Corekey::start(&[]);
    let a = key_on_shard("smove", 0);
    let b = key_on_shard("smove", 1);
    let mut c = server.client();
    assert_eq!(c.call_text(&["SADD", &a, "x", "stay"]), ":2\r\n");

    std::thread::scope(|s| {
        for w in 0..2 {
            let (a, b, server) = (&a, &b, &server);
            s.spawn(move || {
                let mut c = server.client();
                for i in 0..ITERATIONS {
                    let (from, to) = if (i + w) % 2 == 0 { (a, b) } else { (b, a) };
                    let r = c.call_text(&["SMOVE", from, to, "x"]);
                    assert!(r == ":1\r\n" || r == ":0\r\n", "SMOVE: {r}");
                }
            });
        }
        for r in 0..2 {
            let (a, b, server) = (&a, &b, &server);
            s.spawn(move || {
                let mut c = server.client();
                for i in 0..ITERATIONS {
                    let f = c.call(&["SUNION", a, b]);
                    assert_eq!(
                        members(&f.reply),
                        [b"stay".to_vec(), b"x".to_vec()],
                        "reader {r}, read #{i}: SUNION saw a half-done SMOVE"
                    );
                    let n = c.call_text(&["SINTERCARD", "2", a, b]);
                    assert_eq!(n, ":0\r\n", "reader {r}, read #{i}: x in both sets");
                }
            });
        }
    });
}

/// SUNIONSTORE into a key on the other shard, raced by SREM on an operand: a reader taking
/// SDIFF of the destination and the operands (all three locked together) always sees the
/// stored result made of the operands' members at one moment, never a mix.
#[test]
fn store_across_shards_is_atomic() {
    let server = Corekey::start(&[]);
    let src = key_on_shard("src", 1);
    let other = key_on_shard("other", 1);
    let dst = key_on_shard("dst", 0);
    let mut c = server.client();
    assert_eq!(c.call_text(&["SADD", &src, "a", "b"]), ":2\r\n");
    assert_eq!(c.call_text(&["SADD", &other, "c"]), ":1\r\n");

    std::thread::scope(|s| {
        let (src, other, dst, server) = (&src, &other, &dst, &server);
        s.spawn(move || {
            let mut c = server.client();
            for i in 0..ITERATIONS {
                let n = c.call_text(&["SUNIONSTORE", dst, src, other]);
                assert!(n == ":3\r\n" || n == ":2\r\n", "SUNIONSTORE #{i}: {n}");
            }
        });
        s.spawn(move || {
            let mut c = server.client();
            for _ in 0..ITERATIONS {
                c.call_text(&["SREM", src, "b"]);
                c.call_text(&["SADD", src, "b"]);
            }
        });
        s.spawn(move || {
            let mut c = server.client();
            for i in 0..ITERATIONS {
                // Everything stored came from the operands.
                let f = c.call(&["SDIFF", dst, src, other]);
                let extra = members(&f.reply);
                assert!(
                    extra.is_empty() || extra == [b"b".to_vec()],
                    "read #{i}: the destination holds {extra:?} that no operand had"
                );
            }
        });
    });
    let stored = c.call(&["SMEMBERS", &dst]);
    let got = members(&stored.reply);
    assert!(
        got == [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
            || got == [b"a".to_vec(), b"c".to_vec()],
        "final destination {got:?}"
    );
}
