//! Blocking list commands on a 2-shard corekey: a client blocked on a key that lives on the
//! other shard than its connection is woken by a push from any connection; clients blocked on
//! one key are served in the order they blocked; timeouts (fractional seconds) answer nil at
//! about the right time and 0 waits for good; a client that leaves while blocked takes
//! nothing with it; BLMOVE, BRPOPLPUSH and BLMPOP are woken across shards too.
//!
//! Tests never sleep blindly: they wait until INFO's `blocked_clients` shows a client blocked
//! before pushing (so the order of events is the one the test means).

use corekey_tests::client::{Conn, Reply};
use corekey_tests::server::Corekey;
use corekey_tests::slot::key_shard;
use corekey_tests::wait;
use std::time::{Duration, Instant};

const SHARDS: u16 = 2;
/// How long a test waits for something that should happen at once.
const DEADLINE: Duration = Duration::from_secs(10);

/// The shard a connection is served by: client ids are `shard + 1 + k * shards`.
fn shard_of(c: &mut Conn) -> u16 {
    let id = c.call(&["CLIENT", "ID"]).reply.as_int().expect("CLIENT ID");
    ((id - 1) % i64::from(SHARDS)) as u16
}

/// A new connection served by `shard` (bounded: the kernel spreads connections over the
/// shards' listeners, so a few dozen attempts find one).
fn conn_on(server: &Corekey, shard: u16) -> Conn {
    for _ in 0..256 {
        let mut c = server.client();
        if shard_of(&mut c) == shard {
            return c;
        }
    }
    panic!("256 connections and none on shard {shard}");
}

/// The first key named `prefix:<i>` that lives on `shard`.
fn key_on(prefix: &str, shard: u16) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}:{i}"))
        .find(|k| key_shard(k.as_bytes(), SHARDS) == shard)
        .expect("a key on each shard")
}

/// INFO's `blocked_clients` (over all shards).
fn blocked_clients(c: &mut Conn) -> i64 {
    let info = c.call_text(&["INFO", "clients"]);
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no blocked_clients in INFO: {info}"))
}

/// Waits until `n` clients are blocked.
fn wait_blocked(admin: &mut Conn, n: i64) {
    wait::until(&format!("{n} blocked clients"), DEADLINE, || {
        (blocked_clients(admin) == n).then_some(())
    });
}

/// Reads the reply a blocked client gets, failing after [`DEADLINE`].
fn woken(c: &mut Conn) -> String {
    c.set_read_timeout(DEADLINE);
    let f = c
        .read_reply()
        .unwrap_or_else(|e| panic!("a blocked client got no reply: {e}"));
    String::from_utf8_lossy(&f.raw).into_owned()
}

/// Whether `c` has no reply to read within `wait` (it is still blocked).
fn silent_for(c: &mut Conn, wait: Duration) -> bool {
    c.set_read_timeout(wait);
    let r = c.read_reply();
    c.set_read_timeout(DEADLINE);
    r.is_err()
}

/// A BLPOP served by either shard, on a key of the other shard, is woken by an LPUSH sent on
/// either shard: every combination of (blocked connection's shard, pusher's shard).
#[test]
fn blpop_is_woken_by_a_push_on_another_shard() {
    let server = Corekey::start(&[]);
    let mut admin = server.client();
    for blocked_shard in 0..SHARDS {
        let key = key_on("wake", 1 - blocked_shard);
        for pusher_shard in 0..SHARDS {
            let mut blocked = conn_on(&server, blocked_shard);
            let mut pusher = conn_on(&server, pusher_shard);
            blocked.send(&["BLPOP", "no-such-list", &key, "0"]).unwrap();
            wait_blocked(&mut admin, 1);
            assert_eq!(pusher.call_text(&["LPUSH", &key, "v"]), ":1\r\n");
            let want = format!("*2\r\n${}\r\n{key}\r\n$1\r\nv\r\n", key.len());
            assert_eq!(
                woken(&mut blocked),
                want,
                "blocked on shard {blocked_shard}, pushed on shard {pusher_shard}"
            );
            assert_eq!(pusher.call_text(&["LLEN", &key]), ":0\r\n");
            wait_blocked(&mut admin, 0);
        }
    }
}

/// Three clients (on both shards) blocked on one key are served in the order they blocked:
/// each single push wakes the longest-waiting one, and the others stay blocked.
#[test]
fn blocked_clients_are_served_in_fifo_order() {
    let server = Corekey::start(&[]);
    let mut admin = server.client();
    let key = key_on("fifo", 1);
    // Blocking order: shard 0, shard 1, shard 0 (so the order is not the shards').
    let mut clients: Vec<Conn> = [0, 1, 0].iter().map(|&s| conn_on(&server, s)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&["BLPOP", &key, "0"]).unwrap();
        wait_blocked(&mut admin, i as i64 + 1);
    }
    let mut pusher = conn_on(&server, 0);
    for i in 0..clients.len() {
        let elem = format!("e{i}");
        assert_eq!(pusher.call_text(&["RPUSH", &key, &elem]), ":1\r\n");
        let want = format!("*2\r\n${}\r\n{key}\r\n$2\r\n{elem}\r\n", key.len());
        assert_eq!(woken(&mut clients[i]), want, "client {i} (blocked #{i})");
        for (j, later) in clients.iter_mut().enumerate().skip(i + 1) {
            assert!(
                silent_for(later, Duration::from_millis(100)),
                "client {j} was answered before its turn"
            );
        }
        wait_blocked(&mut admin, (clients.len() - i - 1) as i64);
    }
    // One push of three elements serves three new waiters in their order too.
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&["BRPOP", &key, "0"]).unwrap();
        wait_blocked(&mut admin, i as i64 + 1);
    }
    assert_eq!(pusher.call_text(&["LPUSH", &key, "x", "y", "z"]), ":3\r\n");
    for (c, elem) in clients.iter_mut().zip(["x", "y", "z"]) {
        let want = format!("*2\r\n${}\r\n{key}\r\n$1\r\n{elem}\r\n", key.len());
        assert_eq!(woken(c), want);
    }
}

/// A BLPOP with a fractional timeout on empty keys answers nil (`*-1` in RESP2, `_` in RESP3)
/// after about that long: not before, and not much after.
#[test]
fn fractional_timeout_answers_nil_on_time() {
    let server = Corekey::start(&[]);
    for (resp3, nil) in [(false, "*-1\r\n"), (true, "_\r\n")] {
        for shard in 0..SHARDS {
            let mut c = conn_on(&server, shard);
            if resp3 {
                assert!(c.call_text(&["HELLO", "3"]).starts_with('%'));
            }
            let key = key_on("timeout", 1 - shard);
            let started = Instant::now();
            assert_eq!(c.call_text(&["BLPOP", &key, "0.35"]), nil);
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(340) && took < Duration::from_millis(1500),
                "BLPOP with timeout 0.35 answered after {took:?} (RESP3: {resp3})"
            );
            // Several keys over both shards, and a timeout under 100 ms.
            let started = Instant::now();
            let (k0, k1) = (key_on("t", 0), key_on("t", 1));
            assert_eq!(c.call_text(&["BRPOP", &k0, &k1, "0.05"]), nil);
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(45) && took < Duration::from_millis(1000),
                "BRPOP with timeout 0.05 answered after {took:?} (RESP3: {resp3})"
            );
        }
    }
}

/// Timeout 0 waits for good: nothing comes for well over a second, then a push wakes it.
#[test]
fn zero_timeout_waits_until_woken() {
    let server = Corekey::start(&[]);
    let mut admin = server.client();
    let mut blocked = conn_on(&server, 0);
    let key = key_on("forever", 1);
    blocked.send(&["BLPOP", &key, "0"]).unwrap();
    wait_blocked(&mut admin, 1);
    assert!(
        silent_for(&mut blocked, Duration::from_millis(1500)),
        "BLPOP with timeout 0 answered without a push"
    );
    assert_eq!(blocked_clients(&mut admin), 1);
    assert_eq!(admin.call_text(&["RPUSH", &key, "late"]), ":1\r\n");
    let want = format!("*2\r\n${}\r\n{key}\r\n$4\r\nlate\r\n", key.len());
    assert_eq!(woken(&mut blocked), want);
}

/// A client that disconnects while blocked is cleaned up: it stops counting as blocked, and a
/// later push stays in the list instead of going to it; a client blocked after it on the same
/// key is served as if it had never been there.
#[test]
fn disconnected_blocked_client_takes_nothing() {
    let server = Corekey::start(&[]);
    let mut admin = server.client();
    for blocked_shard in 0..SHARDS {
        let key = key_on("gone", 1 - blocked_shard);
        let other = key_on("gone-other", blocked_shard);
        let mut leaver = conn_on(&server, blocked_shard);
        leaver.send(&["BLPOP", &other, &key, "0"]).unwrap();
        wait_blocked(&mut admin, 1);
        drop(leaver);
        wait_blocked(&mut admin, 0);
        assert_eq!(admin.call_text(&["LPUSH", &key, "kept"]), ":1\r\n");
        assert_eq!(admin.call_text(&["LLEN", &key]), ":1\r\n");
        assert_eq!(admin.call_text(&["LPOP", &key]), "$4\r\nkept\r\n");

        // Blocked before a second client that stays: the push goes to the one that stayed.
        let mut leaver = conn_on(&server, blocked_shard);
        leaver.send(&["BLPOP", &key, "0"]).unwrap();
        wait_blocked(&mut admin, 1);
        let mut stayer = conn_on(&server, 1 - blocked_shard);
        stayer.send(&["BLPOP", &key, "0"]).unwrap();
        wait_blocked(&mut admin, 2);
        drop(leaver);
        wait_blocked(&mut admin, 1);
        assert_eq!(admin.call_text(&["RPUSH", &key, "a", "b"]), ":2\r\n");
        let want = format!("*2\r\n${}\r\n{key}\r\n$1\r\na\r\n", key.len());
        assert_eq!(woken(&mut stayer), want);
        assert_eq!(
            admin.call_text(&["LRANGE", &key, "0", "-1"]),
            "*1\r\n$1\r\nb\r\n"
        );
        assert_eq!(admin.call_text(&["DEL", &key]), ":1\r\n");
    }
}

/// BLMOVE, BRPOPLPUSH and BLMPOP blocked on a connection of one shard, with source and
/// destination keys on different shards, are woken by a push from a connection of the other
/// shard, and move (or pop) exactly what they should.
#[test]
fn blmove_brpoplpush_blmpop_are_woken_across_shards() {
    let server = Corekey::start(&[]);
    let mut admin = server.client();
    for blocked_shard in 0..SHARDS {
        let src = key_on("src", 1 - blocked_shard);
        let dst = key_on("dst", blocked_shard);
        let mut blocked = conn_on(&server, blocked_shard);
        let mut pusher = conn_on(&server, 1 - blocked_shard);

        blocked
            .send(&["BLMOVE", &src, &dst, "RIGHT", "LEFT", "0"])
            .unwrap();
        wait_blocked(&mut admin, 1);
        assert_eq!(pusher.call_text(&["RPUSH", &src, "m1"]), ":1\r\n");
        assert_eq!(woken(&mut blocked), "$2\r\nm1\r\n");
        assert_eq!(pusher.call_text(&["LLEN", &src]), ":0\r\n");
        assert_eq!(
            pusher.call_text(&["LRANGE", &dst, "0", "-1"]),
            "*1\r\n$2\r\nm1\r\n"
        );

        blocked.send(&["BRPOPLPUSH", &src, &dst, "0"]).unwrap();
        wait_blocked(&mut admin, 1);
        assert_eq!(pusher.call_text(&["LPUSH", &src, "m2"]), ":1\r\n");
        assert_eq!(woken(&mut blocked), "$2\r\nm2\r\n");
        assert_eq!(pusher.call_text(&["EXISTS", &src]), ":0\r\n");
        assert_eq!(
            pusher.call_text(&["LRANGE", &dst, "0", "-1"]),
            "*2\r\n$2\r\nm2\r\n$2\r\nm1\r\n"
        );

        // BLMPOP over two empty keys, one on each shard; the push reaches the second.
        let first = key_on("mpop", blocked_shard);
        blocked
            .send(&["BLMPOP", "0", "2", &first, &src, "LEFT", "COUNT", "2"])
            .unwrap();
        wait_blocked(&mut admin, 1);
        assert_eq!(pusher.call_text(&["RPUSH", &src, "p", "q", "r"]), ":3\r\n");
        let f = {
            blocked.set_read_timeout(DEADLINE);
            blocked.read_reply().expect("BLMPOP woken")
        };
        assert_eq!(
            f.reply,
            Reply::Array(vec![
                Reply::Bulk(src.as_bytes().to_vec()),
                Reply::Array(vec![Reply::Bulk(b"p".to_vec()), Reply::Bulk(b"q".to_vec())]),
            ])
        );
        assert_eq!(
            pusher.call_text(&["LRANGE", &src, "0", "-1"]),
            "*1\r\n$1\r\nr\r\n"
        );
        assert_eq!(pusher.call_text(&["DEL", &src, &dst]), ":2\r\n");
        wait_blocked(&mut admin, 0);
    }
}
