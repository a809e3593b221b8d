//! Pub/Sub across shards: a message published on any shard reaches subscribers on every
//! shard, once per matching subscription; the subscribed-mode rules and the introspection
//! commands behave as Valkey's; a client that leaves stops counting.

use corekey_tests::client::{Conn, Reply};
use corekey_tests::server::Corekey;
use corekey_tests::wait;
use std::time::Duration;

const SHARDS: i64 = 2;

/// The shard a connection is served by: client ids are `shard + 1 + k * shards`.
fn shard_of(c: &mut Conn) -> i64 {
    let id = c.call(&["CLIENT", "ID"]).reply.as_int().expect("CLIENT ID");
    (id - 1) % SHARDS
}

/// One connection served by each shard (bounded: the kernel spreads connections over the
/// shards' listeners, so a few dozen attempts find both).
fn one_per_shard(server: &Corekey) -> Vec<Conn> {
    let mut found: Vec<Option<Conn>> = (0..SHARDS).map(|_| None).collect();
    for _ in 0..256 {
        let mut c = server.client();
        let s = shard_of(&mut c) as usize;
        if found[s].is_none() {
            found[s] = Some(c);
        }
        if found.iter().all(Option::is_some) {
            return found.into_iter().map(Option::unwrap).collect();
        }
    }
    panic!("256 connections all landed on the same shard");
}

fn texts(r: &Reply) -> Vec<Vec<u8>> {
    r.as_list()
        .expect("an array")
        .iter()
        .map(|e| match e {
            Reply::Integer(n) => n.to_string().into_bytes(),
            other => other.as_bytes().unwrap_or(b"nil").to_vec(),
        })
        .collect()
}

fn words(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// Subscribers on both shards, publishers on both shards: every publish reaches every
/// subscription (channel and pattern) and answers how many.
#[test]
fn publish_reaches_subscribers_on_every_shard() {
    let server = Corekey::start(&[]);
    let mut subs = one_per_shard(&server);
    for s in subs.iter_mut() {
        assert_eq!(
            texts(&s.call(&["SUBSCRIBE", "news"]).reply),
            words(&["subscribe", "news", "1"])
        );
        assert_eq!(
            texts(&s.call(&["PSUBSCRIBE", "n*"]).reply),
            words(&["psubscribe", "n*", "2"])
        );
    }
    let mut pubs = one_per_shard(&server);
    for (i, p) in pubs.iter_mut().enumerate() {
        let msg = format!("m{i}");
        assert_eq!(p.call(&["PUBLISH", "news", &msg]).reply, Reply::Integer(4));
        for s in subs.iter_mut() {
            assert_eq!(
                texts(&s.read_reply().unwrap().reply),
                words(&["message", "news", &msg])
            );
            assert_eq!(
                texts(&s.read_reply().unwrap().reply),
                words(&["pmessage", "n*", "news", &msg])
            );
        }
    }
    // Only the pattern matches "nope"; nothing matches "other".
    assert_eq!(
        pubs[0].call(&["PUBLISH", "nope", "x"]).reply,
        Reply::Integer(2)
    );
    assert_eq!(
        pubs[1].call(&["PUBLISH", "other", "x"]).reply,
        Reply::Integer(0)
    );
    for s in subs.iter_mut() {
        assert_eq!(
            texts(&s.read_reply().unwrap().reply),
            words(&["pmessage", "n*", "nope", "x"])
        );
    }

    let p = &mut pubs[0];
    assert_eq!(
        texts(&p.call(&["PUBSUB", "NUMSUB", "news", "other"]).reply),
        words(&["news", "2", "other", "0"])
    );
    assert_eq!(p.call(&["PUBSUB", "NUMPAT"]).reply, Reply::Integer(1));
    assert_eq!(
        texts(&p.call(&["PUBSUB", "CHANNELS"]).reply),
        words(&["news"])
    );
    assert_eq!(
        texts(&p.call(&["PUBSUB", "CHANNELS", "x*"]).reply),
        Vec::<Vec<u8>>::new()
    );
    let info = p.call(&["INFO", "clients"]);
    assert!(
        String::from_utf8_lossy(info.reply.as_bytes().unwrap()).contains("pubsub_clients:2\r\n")
    );

    // A subscriber that leaves stops counting, on its shard.
    drop(subs.pop());
    wait::until("NUMSUB to drop", Duration::from_secs(5), || {
        let n = texts(&p.call(&["PUBSUB", "NUMSUB", "news"]).reply);
        (n[1] == b"1").then_some(())
    });
    assert_eq!(p.call(&["PUBLISH", "news", "y"]).reply, Reply::Integer(2));
}

/// Shard channels have their own registry and their own counts.
#[test]
fn shard_channels() {
    let server = Corekey::start(&[]);
    let mut subs = one_per_shard(&server);
    for s in subs.iter_mut() {
        assert_eq!(
            texts(&s.call(&["SSUBSCRIBE", "sc"]).reply),
            words(&["ssubscribe", "sc", "1"])
        );
    }
    let mut p = server.client();
    assert_eq!(p.call(&["PUBLISH", "sc", "x"]).reply, Reply::Integer(0));
    assert_eq!(p.call(&["SPUBLISH", "sc", "x"]).reply, Reply::Integer(2));
    for s in subs.iter_mut() {
        assert_eq!(
            texts(&s.read_reply().unwrap().reply),
            words(&["smessage", "sc", "x"])
        );
    }
    assert_eq!(
        texts(&p.call(&["PUBSUB", "SHARDNUMSUB", "sc"]).reply),
        words(&["sc", "2"])
    );
    assert_eq!(
        texts(&p.call(&["PUBSUB", "SHARDCHANNELS"]).reply),
        words(&["sc"])
    );
    assert_eq!(
        texts(&p.call(&["PUBSUB", "CHANNELS"]).reply),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(
        texts(&subs[0].call(&["SUNSUBSCRIBE"]).reply),
        words(&["sunsubscribe", "sc", "0"])
    );
}

/// Valkey's subscribed-mode rules: RESP2 allows only (un)subscribing, PING, QUIT and RESET;
/// unsubscribing needs a subscription; RESET leaves every channel.
#[test]
fn subscribed_mode_rules() {
    let server = Corekey::start(&[]);
    let mut c = server.client();
    assert_eq!(
        c.call_text(&["UNSUBSCRIBE"]),
        "-NOSUB 'unsubscribe' command executed not in subscribed mode\r\n"
    );
    c.call(&["SUBSCRIBE", "a"]);
    assert_eq!(
        c.call_text(&["GET", "k"]),
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    assert_eq!(c.call_text(&["PING"]), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    // Unsubscribing from everything, with nothing left to name, still answers once.
    assert_eq!(
        texts(&c.call(&["PUNSUBSCRIBE"]).reply),
        vec![b"punsubscribe".to_vec(), b"nil".to_vec(), b"1".to_vec()]
    );
    assert_eq!(c.call_text(&["RESET"]), "+RESET\r\n");
    assert_eq!(c.call_text(&["PING"]), "+PONG\r\n");
    let mut p = server.client();
    assert_eq!(p.call(&["PUBLISH", "a", "x"]).reply, Reply::Integer(0));

    // RESP3: any command runs, confirmations and messages are pushes, and a message to the
    // publishing client itself follows the PUBLISH reply.
    let mut r = server.client();
    r.call(&["HELLO", "3"]);
    assert_eq!(
        r.call_text(&["SUBSCRIBE", "b"]),
        ">3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:1\r\n"
    );
    assert_eq!(r.call_text(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(r.call_text(&["PUBLISH", "b", "self"]), ":1\r\n");
    assert_eq!(
        r.read_reply().unwrap().raw,
        b">3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$4\r\nself\r\n"
    );
}
