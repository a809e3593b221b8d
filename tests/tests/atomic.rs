//! Cross-shard atomicity: with two shards, an MSET of two keys owned by different shards is
//! never seen half-applied by a concurrent MGET (DESIGN.md: multi-key commands lock the shards
//! involved, they are not a best-effort fan-out).

use corekey_tests::client::Reply;
use corekey_tests::server::Corekey;
use corekey_tests::slot::key_shard;

/// Iterations per thread: bounded, no timing involved.
const ITERATIONS: u64 = 20_000;
const WRITERS: u64 = 2;
const READERS: u64 = 2;

/// The first key named `prefix:<i>` that lives on `shard` of 2.
fn key_on_shard(prefix: &str, shard: u16) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}:{i}"))
        .find(|k| key_shard(k.as_bytes(), 2) == shard)
        .expect("a key on each shard")
}

/// Writers MSET both keys to the same increasing value while readers MGET both: every read
/// must see two equal values (or two nils before the first write), and the final state is
/// one writer's last value on both keys.
#[test]
fn cross_shard_mset_is_never_seen_half_applied() {
    let server = Corekey::start(&[]);
    let a = key_on_shard("atomic", 0);
    let b = key_on_shard("atomic", 1);
    assert_ne!(key_shard(a.as_bytes(), 2), key_shard(b.as_bytes(), 2));

    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (a, b, server) = (&a, &b, &server);
            s.spawn(move || {
                let mut c = server.client();
                for i in 0..ITERATIONS {
                    let x = (w * ITERATIONS + i).to_string();
                    assert_eq!(c.call_text(&["MSET", a, &x, b, &x]), "+OK\r\n");
                }
            });
        }
        for r in 0..READERS {
            let (a, b, server) = (&a, &b, &server);
            s.spawn(move || {
                let mut c = server.client();
                for i in 0..ITERATIONS {
                    let f = c.call(&["MGET", a, b]);
                    match &f.reply {
                        Reply::Array(v) if v.len() == 2 && v[0] == v[1] => {}
                        _ => panic!(
                            "reader {r}, read #{i}: MGET {a} {b} saw a half-applied MSET: \"{f}\""
                        ),
                    }
                }
            });
        }
    });

    let mut c = server.client();
    let f = c.call(&["MGET", &a, &b]);
    let Reply::Array(v) = &f.reply else {
        panic!("MGET: \"{f}\"")
    };
    assert_eq!(v[0], v[1], "final state differs: \"{f}\"");
    let last: Vec<Reply> = (0..WRITERS)
        .map(|w| Reply::Bulk(((w + 1) * ITERATIONS - 1).to_string().into_bytes()))
        .collect();
    assert!(
        last.contains(&v[0]),
        "final value is not a writer's last write: \"{f}\""
    );
}
