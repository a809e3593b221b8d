//! MULTI/EXEC/WATCH on two shards: an EXEC whose commands span shards is never seen half
//! applied; optimistic increments under WATCH lose no update; the queueing rules and the
//! replies are Valkey's.

use corekey_tests::client::{Conn, Reply};
use corekey_tests::server::Corekey;
use corekey_tests::slot::key_shard;

/// Iterations per thread: bounded, no timing involved.
const ITERATIONS: u64 = 3_000;

/// The first key named `prefix:<i>` that lives on `shard` of 2.
fn key_on_shard(prefix: &str, shard: u16) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}:{i}"))
        .find(|k| key_shard(k.as_bytes(), 2) == shard)
        .expect("a key on each shard")
}

fn text(c: &mut Conn, args: &[&str]) -> String {
    c.call_text(args)
}

/// Writers run MULTI; INCR a; INCR b; EXEC with a and b on different shards while readers
/// MGET both: every read sees two equal values.
#[test]
fn exec_across_shards_is_atomic() {
    let server = Corekey::start(&[]);
    let a = key_on_shard("txa", 0);
    let b = key_on_shard("txb", 1);
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (a, b, server) = (&a, &b, &server);
            s.spawn(move || {
                let mut c = server.client();
                for _ in 0..ITERATIONS {
                    let replies = c
                        .pipeline(&[
                            vec!["MULTI"],
                            vec!["INCR", a],
                            vec!["INCR", b],
                            vec!["EXEC"],
                        ])
                        .expect("pipeline");
                    let exec = &replies[3].reply;
                    match exec.as_list() {
                        Some(v) if v.len() == 2 && v[0] == v[1] => {}
                        _ => panic!("EXEC answered {}", replies[3]),
                    }
                }
            });
        }
        for _ in 0..2 {
            let (a, b, server) = (&a, &b, &server);
            s.spawn(move || {
                let mut c = server.client();
                for i in 0..ITERATIONS {
                    let f = c.call(&["MGET", a, b]);
                    match f.reply.as_list() {
                        Some(v) if v.len() == 2 && v[0] == v[1] => {}
                        _ => panic!("read #{i}: MGET saw a half-applied EXEC: {f}"),
                    }
                }
            });
        }
    });
    let mut c = server.client();
    let want = (2 * ITERATIONS).to_string();
    assert_eq!(
        c.call(&["MGET", &a, &b]).reply,
        Reply::Array(vec![
            Reply::Bulk(want.clone().into_bytes()),
            Reply::Bulk(want.into_bytes())
        ])
    );
}

/// Clients increment one counter with WATCH/GET/MULTI/SET/EXEC, retrying when EXEC answers
/// nil: the final value is exactly the number of successful EXECs (no lost update), for a
/// key on either shard.
#[test]
fn watch_loses_no_update() {
    let server = Corekey::start(&[]);
    for shard in 0..2 {
        let key = key_on_shard("counter", shard);
        let successes: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let (key, server) = (&key, &server);
                    s.spawn(move || {
                        let mut c = server.client();
                        let mut done = 0u64;
                        for _ in 0..ITERATIONS / 3 {
                            assert_eq!(text(&mut c, &["WATCH", key]), "+OK\r\n");
                            let v = match c.call(&["GET", key]).reply {
                                Reply::Bulk(b) => String::from_utf8(b).unwrap().parse().unwrap(),
                                _ => 0u64,
                            };
                            let next = (v + 1).to_string();
                            let r = c
                                .pipeline(&[vec!["MULTI"], vec!["SET", key, &next], vec!["EXEC"]])
                                .expect("pipeline");
                            match &r[2].reply {
                                Reply::Null => {}
                                Reply::Array(v) if v.len() == 1 => done += 1,
                                _ => panic!("EXEC answered {}", r[2]),
                            }
                        }
                        done
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert!(successes > 0);
        let mut c = server.client();
        assert_eq!(
            c.call(&["GET", &key]).reply,
            Reply::Bulk(successes.to_string().into_bytes()),
            "shard {shard}"
        );
    }
}

/// The queueing rules and replies, as Valkey's.
#[test]
fn queueing_rules() {
    let server = Corekey::start(&[]);
    let mut c = server.client();
    let mut o = server.client();
    assert_eq!(text(&mut c, &["EXEC"]), "-ERR EXEC without MULTI\r\n");
    assert_eq!(text(&mut c, &["DISCARD"]), "-ERR DISCARD without MULTI\r\n");

    // A command refused while queueing dooms the transaction.
    assert_eq!(text(&mut c, &["MULTI"]), "+OK\r\n");
    assert_eq!(text(&mut c, &["SET", "x", "1"]), "+QUEUED\r\n");
    assert_eq!(
        text(&mut c, &["GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        text(&mut c, &["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(text(&mut c, &["EXISTS", "x"]), ":0\r\n");

    // Nested MULTI and WATCH inside MULTI are refused (and doom it too).
    c.call(&["MULTI"]);
    assert_eq!(
        text(&mut c, &["WATCH", "x"]),
        "-ERR Command not allowed inside a transaction\r\n"
    );
    assert!(text(&mut c, &["EXEC"]).starts_with("-EXECABORT"));

    // Errors while running are replies in the array; the other commands still run.
    c.call(&["MULTI"]);
    c.call(&["SET", "s", "str"]);
    c.call(&["LPUSH", "s", "x"]);
    c.call(&["INCR", "n"]);
    assert_eq!(
        text(&mut c, &["EXEC"]),
        "*3\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:1\r\n"
    );

    // DISCARD drops the queue.
    c.call(&["MULTI"]);
    c.call(&["SET", "d", "1"]);
    assert_eq!(text(&mut c, &["DISCARD"]), "+OK\r\n");
    assert_eq!(text(&mut c, &["EXISTS", "d"]), ":0\r\n");

    // A blocking command inside MULTI does not block.
    c.call(&["MULTI"]);
    c.call(&["BLPOP", "nolist", "0"]);
    assert_eq!(text(&mut c, &["EXEC"]), "*1\r\n*-1\r\n");

    // WATCH: a write by another client fails EXEC with a nil reply; UNWATCH forgets.
    c.call(&["SET", "w", "0"]);
    c.call(&["WATCH", "w"]);
    o.call(&["SET", "w", "1"]);
    c.call(&["MULTI"]);
    c.call(&["SET", "w", "2"]);
    assert_eq!(text(&mut c, &["EXEC"]), "*-1\r\n");
    assert_eq!(text(&mut c, &["GET", "w"]), "$1\r\n1\r\n");
    c.call(&["WATCH", "w"]);
    c.call(&["UNWATCH"]);
    o.call(&["SET", "w", "3"]);
    c.call(&["MULTI"]);
    assert_eq!(text(&mut c, &["EXEC"]), "*0\r\n");

    // FLUSHALL touches watched keys that existed, not the others.
    c.call(&["WATCH", "w"]);
    o.call(&["FLUSHALL"]);
    c.call(&["MULTI"]);
    assert_eq!(text(&mut c, &["EXEC"]), "*-1\r\n");
    c.call(&["WATCH", "absent"]);
    o.call(&["FLUSHALL"]);
    c.call(&["MULTI"]);
    assert_eq!(text(&mut c, &["EXEC"]), "*0\r\n");

    // Node-wide commands run inside EXEC, atomically with the rest.
    c.call(&["MSET", "k1", "1", "k2", "2"]);
    c.call(&["MULTI"]);
    c.call(&["DBSIZE"]);
    c.call(&["FLUSHDB"]);
    c.call(&["DBSIZE"]);
    assert_eq!(text(&mut c, &["EXEC"]), "*3\r\n:2\r\n+OK\r\n:0\r\n");

    // INFO counts watching clients and watched keys.
    c.call(&["WATCH", "a", "b"]);
    let info = o.call(&["INFO", "clients"]);
    let info = String::from_utf8_lossy(info.reply.as_bytes().unwrap()).into_owned();
    assert!(info.contains("watching_clients:1\r\n"), "{info}");
    assert!(info.contains("total_watched_keys:2\r\n"), "{info}");
}

/// A write by another client that changes nothing does not abort a WATCHer's EXEC, as in
/// Valkey (no signalModifiedKey): one that fails (WRONGTYPE), a condition that does not hold
/// (PERSIST without a TTL, SETNX, HSETNX of a present field, SREM of a missing member,
/// RENAMENX onto a present key), a pop from an empty source across shards, DEL of a missing
/// watched key across shards, a COPY from the watched key. Each write that does change the
/// key aborts it, MOVE and COPY ... DB included (in the database they write to).
#[test]
fn watch_ignores_writes_that_change_nothing() {
    let server = Corekey::start(&[]);
    let mut w = server.client();
    let mut o = server.client();
    let (k, other) = (key_on_shard("w", 0), key_on_shard("w-other", 1));
    let exec_runs = |w: &mut Conn, o: &mut Conn, setup: &[&str], write: &[&str]| -> bool {
        text(o, &["FLUSHALL"]);
        if !setup.is_empty() {
            text(o, setup);
        }
        assert_eq!(text(w, &["WATCH", &k]), "+OK\r\n");
        text(o, write);
        assert_eq!(text(w, &["MULTI"]), "+OK\r\n");
        assert_eq!(text(w, &["PING"]), "+QUEUED\r\n");
        let r = text(w, &["EXEC"]);
        assert!(r == "*1\r\n+PONG\r\n" || r == "*-1\r\n", "EXEC: {r}");
        r == "*1\r\n+PONG\r\n"
    };
    let unchanged: &[(&[&str], &[&str])] = &[
        (&["RPUSH", &k, "x"], &["HSETNX", &k, "f", "v"]),
        (&["RPUSH", &k, "x"], &["PERSIST", &k]),
        (&["SET", &k, "x"], &["SETNX", &k, "y"]),
        (&["HSET", &k, "f", "v"], &["HSETNX", &k, "f", "w"]),
        (&["SADD", &k, "m"], &["SREM", &k, "nope"]),
        (&["SET", &k, "x"], &["LMOVE", &other, &k, "LEFT", "LEFT"]),
        (&["MSET", &k, "x", &other, "y"], &["RENAMENX", &other, &k]),
        (&[], &["DEL", &k, &other]),
        (&["SET", &k, "x"], &["COPY", &k, &other]),
        (&["SET", &k, "x"], &["SET", &k, "y", "NX"]),
    ];
    for (setup, write) in unchanged {
        assert!(
            exec_runs(&mut w, &mut o, setup, write),
            "EXEC aborted after {write:?} (set up with {setup:?})"
        );
    }
    let changed: &[(&[&str], &[&str])] = &[
        (&["SET", &k, "x"], &["SET", &k, "x"]),
        (&["HSET", &k, "f", "v"], &["HSETNX", &k, "g", "w"]),
        (
            &["RPUSH", &other, "x"],
            &["LMOVE", &other, &k, "LEFT", "LEFT"],
        ),
        (&["SET", &k, "x"], &["DEL", &k, &other]),
        (&["SET", &other, "x"], &["COPY", &other, &k]),
        (&["SET", &k, "x"], &["EXPIRE", &k, "100"]),
    ];
    for (setup, write) in changed {
        assert!(
            !exec_runs(&mut w, &mut o, setup, write),
            "EXEC ran after {write:?} (set up with {setup:?})"
        );
    }
    // MOVE and COPY ... DB change the key in the other database, where it is watched (COPY
    // from a key of either shard).
    let src = [key_on_shard("src", 0), key_on_shard("src", 1)];
    let writes: [Vec<&str>; 3] = [
        vec!["MOVE", &k, "2"],
        vec!["COPY", &src[0], &k, "DB", "2"],
        vec!["COPY", &src[1], &k, "DB", "2"],
    ];
    for write in &writes {
        text(&mut o, &["FLUSHALL"]);
        text(&mut o, &["MSET", &k, "v", &src[0], "v", &src[1], "v"]);
        assert_eq!(text(&mut w, &["SELECT", "2"]), "+OK\r\n");
        assert_eq!(text(&mut w, &["WATCH", &k]), "+OK\r\n");
        assert_eq!(text(&mut o, write), ":1\r\n", "{write:?}");
        assert_eq!(text(&mut w, &["MULTI"]), "+OK\r\n");
        assert_eq!(text(&mut w, &["PING"]), "+QUEUED\r\n");
        assert_eq!(
            text(&mut w, &["EXEC"]),
            "*-1\r\n",
            "EXEC ran after {write:?}"
        );
        assert_eq!(text(&mut w, &["SELECT", "0"]), "+OK\r\n");
    }
}
