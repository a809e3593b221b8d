//! Connection-level behaviour against a real node: authentication, idle timeouts, the client
//! limit, CLIENT KILL across shards, connection state that changes in the middle of a
//! pipeline, and active expiry.

use corekey_tests::client::Conn;
use corekey_tests::server::Corekey;
use corekey_tests::slot::key_slot;
use corekey_tests::wait::{poll, until};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(10);

/// One command's reply as text, without the final CRLF.
fn call(c: &mut Conn, args: &[&str]) -> String {
    c.call_text(args).trim_end_matches("\r\n").to_string()
}

/// A key whose slot lives on shard `shard` of a 2-shard node.
fn key_on(shard: u16, prefix: &str) -> String {
    (0..1000)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| key_slot(k.as_bytes()) % 2 == shard)
        .expect("a key for each shard")
}

/// With `requirepass`, commands need AUTH first (NOAUTH), a wrong password is refused
/// (WRONGPASS), and AUTH or HELLO … AUTH unlocks the connection.
#[test]
fn requirepass_gates_commands() {
    let node = Corekey::start(&["--requirepass", "s3cret"]);
    let mut c = node.client();
    assert_eq!(
        call(&mut c, &["GET", "k"]),
        "-NOAUTH Authentication required."
    );
    assert_eq!(
        call(&mut c, &["AUTH", "nope"]),
        "-WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(call(&mut c, &["AUTH", "s3cret"]), "+OK");
    assert_eq!(call(&mut c, &["SET", "k", "v"]), "+OK");

    let mut h = node.client();
    let reply = h.call(&["HELLO", "3", "AUTH", "default", "s3cret"]);
    assert!(!reply.reply.is_error(), "HELLO AUTH failed: {reply:?}");
    assert_eq!(call(&mut h, &["GET", "k"]), "$1\r\nv");
}

/// Before AUTH, a request may not announce more than 10 arguments (Valkey's limit for
/// unauthenticated clients): the connection gets the protocol error and is closed.
#[test]
fn unauthenticated_clients_get_small_limits() {
    let node = Corekey::start(&["--requirepass", "pw"]);
    let mut c = node.client();
    c.send_raw(b"*11\r\n").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&c.read_reply().unwrap().raw),
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    assert!(c.read_reply().unwrap_err().is_closed());
    let mut after = node.client();
    assert_eq!(call(&mut after, &["AUTH", "pw"]), "+OK");
    assert_eq!(call(&mut after, &["PING"]), "+PONG");
}

/// `timeout 1` closes a client that stays idle, and only that one.
#[test]
fn idle_clients_time_out() {
    let node = Corekey::start(&["--timeout", "1"]);
    let mut idle = node.client();
    assert_eq!(call(&mut idle, &["PING"]), "+PONG");
    idle.set_read_timeout(Duration::from_secs(8));
    // The server closes the connection: the read ends with EOF instead of a reply.
    let err = idle.read_reply().unwrap_err();
    assert!(
        err.is_closed(),
        "expected the idle connection to be closed, got {err:?}"
    );
    assert_eq!(call(&mut node.client(), &["PING"]), "+PONG");
}

/// `maxclients 2`: the third connection is told the limit is reached and closed; once a
/// client leaves, a new one is served again.
#[test]
fn maxclients_is_enforced() {
    let node = Corekey::start(&["--maxclients", "2"]);
    let mut a = node.client();
    // The start-up probe's connection may still be closing on the server: wait until `a` is
    // the only client, so that the limit counts exactly `a` and `b`.
    until("the start-up probe to leave", DEADLINE, || {
        let info = a.call(&["INFO", "clients"]);
        let text = String::from_utf8_lossy(info.reply.as_bytes()?).into_owned();
        text.contains("connected_clients:1\r\n").then_some(())
    });
    let mut b = node.client();
    assert_eq!(call(&mut a, &["PING"]), "+PONG");
    assert_eq!(call(&mut b, &["PING"]), "+PONG");
    let mut c = Conn::connect(node.addr()).unwrap();
    c.set_read_timeout(Duration::from_secs(5));
    assert_eq!(
        String::from_utf8_lossy(&c.read_reply().unwrap().raw),
        "-ERR max number of clients reached\r\n"
    );
    drop(a);
    until("a free client slot", DEADLINE, || {
        let mut d = Conn::connect(node.addr()).ok()?;
        d.set_read_timeout(Duration::from_secs(2));
        (d.try_call(&["PING"]).ok()?.raw == b"+PONG\r\n").then_some(())
    });
}

/// CLIENT KILL ID closes a connection whichever shard serves it, and CLIENT LIST sees the
/// clients of every shard.
#[test]
fn client_kill_reaches_every_shard() {
    let node = Corekey::start(&[]);
    let mut admin = node.client();
    // Several connections, so both shards (SO_REUSEPORT spreads them) have clients.
    let mut others: Vec<(Conn, i64)> = (0..8)
        .map(|_| {
            let mut c = node.client();
            let id = c.call(&["CLIENT", "ID"]).reply.as_int().unwrap();
            (c, id)
        })
        .collect();
    let list = admin.call(&["CLIENT", "LIST"]).reply;
    let list = String::from_utf8_lossy(list.as_bytes().unwrap()).into_owned();
    for (_, id) in &others {
        assert!(
            list.contains(&format!("id={id} ")),
            "CLIENT LIST misses {id}:\n{list}"
        );
    }
    for (c, id) in others.iter_mut() {
        assert_eq!(
            call(&mut admin, &["CLIENT", "KILL", "ID", &id.to_string()]),
            ":1"
        );
        c.set_read_timeout(Duration::from_secs(5));
        assert!(
            c.try_call(&["PING"]).is_err(),
            "client {id} still served after CLIENT KILL"
        );
    }
}

/// SELECT and HELLO take effect for the commands after them in the same pipeline, also for
/// commands that run on the other shard.
#[test]
fn connection_state_changes_mid_pipeline() {
    let node = Corekey::start(&[]);
    let mut c = node.client();
    let k0 = key_on(0, "k");
    let k1 = key_on(1, "k");
    let replies = c
        .pipeline(&[
            vec!["SELECT", "1"],
            vec!["SET", k0.as_str(), "in-db1"],
            vec!["SET", k1.as_str(), "in-db1"],
            vec!["SELECT", "0"],
            vec!["GET", k0.as_str()],
            vec!["GET", k1.as_str()],
            vec!["HELLO", "3"],
            vec!["GET", k1.as_str()],
            vec!["SELECT", "1"],
            vec!["GET", k0.as_str()],
            vec!["GET", k1.as_str()],
        ])
        .unwrap();
    let raw: Vec<String> = replies
        .iter()
        .map(|f| String::from_utf8_lossy(&f.raw).into_owned())
        .collect();
    assert_eq!(raw[4], "$-1\r\n");
    assert_eq!(raw[5], "$-1\r\n");
    // After HELLO 3 a missing key is RESP3's null.
    assert_eq!(raw[7], "_\r\n");
    assert_eq!(raw[9], "$6\r\nin-db1\r\n");
    assert_eq!(raw[10], "$6\r\nin-db1\r\n");
}

/// Keys with a short TTL disappear without being touched (the active expiry cycle), on both
/// shards.
#[test]
fn active_expiry_removes_untouched_keys() {
    let node = Corekey::start(&[]);
    let mut c = node.client();
    for i in 0..200 {
        assert_eq!(
            call(&mut c, &["SET", &format!("t{i}"), "v", "PX", "50"]),
            "+OK"
        );
    }
    call(&mut c, &["SET", "keep", "v"]);
    let left = poll(DEADLINE, || {
        let n = c.call(&["DBSIZE"]).reply.as_int().unwrap();
        (n == 1).then_some(n)
    });
    assert_eq!(
        left,
        Some(1),
        "expired keys were not removed by the active cycle"
    );
    let info = c.call(&["INFO", "stats"]).reply;
    let info = String::from_utf8_lossy(info.as_bytes().unwrap()).into_owned();
    assert!(info.contains("expired_keys:200"), "INFO stats:\n{info}");
}
