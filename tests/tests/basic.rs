//! Basic client-visible behaviour of a 2-shard corekey: round trips, deep pipelines, inline
//! commands, keys on both shards, and the RESP3 HELLO reply.

use corekey_tests::client::{Frame, Reply};
use corekey_tests::server::Corekey;
use corekey_tests::slot::key_shard;

/// PING, ECHO, SET and GET answer as Valkey does, binary-safe.
#[test]
fn ping_echo_set_get() {
    let server = Corekey::start(&[]);
    let mut c = server.client();
    assert_eq!(c.call_text(&["PING"]), "+PONG\r\n");
    assert_eq!(c.call_text(&["PING", "hello"]), "$5\r\nhello\r\n");
    assert_eq!(c.call_text(&["ECHO", "a b"]), "$3\r\na b\r\n");
    assert_eq!(
        c.call(&[&b"ECHO"[..], b"\x00\r\n\xff"]).raw,
        b"$4\r\n\x00\r\n\xff\r\n"
    );
    assert_eq!(c.call_text(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.call_text(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(c.call_text(&["GET", "missing"]), "$-1\r\n");
    assert_eq!(c.call_text(&["SET", "empty", ""]), "+OK\r\n");
    assert_eq!(c.call_text(&["GET", "empty"]), "$0\r\n\r\n");
    assert_eq!(
        c.call(&[&b"SET"[..], b"bin\x00\r\nkey", b"\r\n\x00"]).raw,
        b"+OK\r\n"
    );
    assert_eq!(
        c.call(&[&b"GET"[..], b"bin\x00\r\nkey"]).raw,
        b"$3\r\n\r\n\x00\r\n"
    );
}

/// 10,000 commands written in one write come back in order, each with its own reply; per-key
/// order holds (SET, INCR, GET of one key) across keys of both shards.
#[test]
fn pipeline_of_10k_in_one_write() {
    const KEYS: usize = 3334;
    let server = Corekey::start(&[]);
    let mut c = server.client();
    let mut commands: Vec<Vec<String>> = Vec::new();
    let mut expected: Vec<String> = Vec::new();
    for i in 0..KEYS {
        let key = format!("pipe:{i}");
        commands.push(vec!["SET".into(), key.clone(), i.to_string()]);
        expected.push("+OK\r\n".into());
        commands.push(vec!["INCR".into(), key.clone()]);
        expected.push(format!(":{}\r\n", i + 1));
        commands.push(vec!["GET".into(), key]);
        let v = (i + 1).to_string();
        expected.push(format!("${}\r\n{v}\r\n", v.len()));
    }
    assert!(commands.len() >= 10_000);
    let replies = c
        .pipeline(&commands)
        .unwrap_or_else(|e| panic!("pipeline of {} commands: {e}", commands.len()));
    for (i, (got, want)) in replies.iter().zip(&expected).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(&got.raw),
            *want,
            "reply #{i} to {:?}",
            commands[i]
        );
    }
    assert_eq!(c.call_text(&["DBSIZE"]), format!(":{KEYS}\r\n"));
}

/// Inline commands (plain lines, as typed in telnet) work, with quotes, LF-only line ends and
/// empty lines ignored; several in one write are answered in order.
#[test]
fn inline_commands() {
    let server = Corekey::start(&[]);
    let mut c = server.client();
    c.send_raw(b"PING\r\n").unwrap();
    assert_eq!(c.read_reply().unwrap().raw, b"+PONG\r\n");
    c.send_raw(b"SET ik v\r\nGET ik\r\n").unwrap();
    assert_eq!(c.read_reply().unwrap().raw, b"+OK\r\n");
    assert_eq!(c.read_reply().unwrap().raw, b"$1\r\nv\r\n");
    c.send_raw(b"ECHO \"hello world\"\r\n").unwrap();
    assert_eq!(c.read_reply().unwrap().raw, b"$11\r\nhello world\r\n");
    c.send_raw(b"ECHO \"a\\x41\\n\"\r\n").unwrap();
    assert_eq!(c.read_reply().unwrap().raw, b"$3\r\naA\n\r\n");
    c.send_raw(b"\r\n\r\nPING\n").unwrap();
    assert_eq!(c.read_reply().unwrap().raw, b"+PONG\r\n");
    // Inline and multibulk mixed in one write.
    c.send_raw(b"PING x\r\n*1\r\n$4\r\nPING\r\n").unwrap();
    assert_eq!(c.read_reply().unwrap().raw, b"$1\r\nx\r\n");
    assert_eq!(c.read_reply().unwrap().raw, b"+PONG\r\n");
}

/// Keys spread over both shards are all stored and found: single-key and multi-key commands
/// (MSET, MGET, EXISTS, DEL, KEYS, DBSIZE) see the whole keyspace.
#[test]
fn keys_on_both_shards() {
    const N: usize = 2000;
    let server = Corekey::start(&[]);
    let mut c = server.client();
    let keys: Vec<String> = (0..N).map(|i| format!("spread:{i}")).collect();
    let on_shard_0 = keys
        .iter()
        .filter(|k| key_shard(k.as_bytes(), 2) == 0)
        .count();
    assert!(
        on_shard_0 > N / 4 && on_shard_0 < 3 * N / 4,
        "the keys are not spread: {on_shard_0} of {N} on shard 0"
    );

    // Half with SET, half with one cross-shard MSET.
    let sets: Vec<Vec<String>> = keys[..N / 2]
        .iter()
        .map(|k| vec!["SET".into(), k.clone(), format!("v-{k}")])
        .collect();
    let replies = c
        .pipeline(&sets)
        .unwrap_or_else(|e| panic!("pipeline of {} SETs: {e}", sets.len()));
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r.to_string(), "+OK\\r\\n", "reply #{i} to {:?}", sets[i]);
    }
    let mut mset = vec!["MSET".to_string()];
    for k in &keys[N / 2..] {
        mset.push(k.clone());
        mset.push(format!("v-{k}"));
    }
    assert_eq!(c.call_text(&mset), "+OK\r\n");

    let mut mget = vec!["MGET".to_string()];
    mget.extend(keys.iter().cloned());
    let Reply::Array(values) = c.call(&mget).reply else {
        panic!("MGET did not return an array")
    };
    let want: Vec<Reply> = keys
        .iter()
        .map(|k| Reply::Bulk(format!("v-{k}").into_bytes()))
        .collect();
    assert!(
        values == want,
        "MGET over both shards returned wrong values"
    );

    let mut exists = vec!["EXISTS".to_string()];
    exists.extend(keys.iter().cloned());
    assert_eq!(c.call_text(&exists), format!(":{N}\r\n"));
    assert_eq!(c.call_text(&["DBSIZE"]), format!(":{N}\r\n"));
    let Reply::Array(found) = c.call(&["KEYS", "spread:*"]).reply else {
        panic!("KEYS did not return an array")
    };
    assert_eq!(found.len(), N);
    let mut del = vec!["DEL".to_string()];
    del.extend(keys.iter().cloned());
    assert_eq!(c.call_text(&del), format!(":{N}\r\n"));
    assert_eq!(c.call_text(&["DBSIZE"]), ":0\r\n");
}

fn field<'a>(map: &'a [(Reply, Reply)], name: &str) -> &'a Reply {
    &map.iter()
        .find(|(k, _)| k.as_bytes() == Some(name.as_bytes()))
        .unwrap_or_else(|| panic!("HELLO has no field {name}"))
        .1
}

/// HELLO 3 answers a RESP3 map with Valkey's fields in Valkey's order and switches the
/// connection to RESP3 (nil becomes `_`); HELLO 2 switches back and answers a flat array.
#[test]
fn hello_3_map_shape() {
    let server = Corekey::start(&[]);
    let mut c = server.client();
    let Frame { reply, raw } = c.call(&["HELLO", "3"]);
    let Reply::Map(map) = reply else {
        panic!(
            "HELLO 3 did not answer a map: \"{}\"",
            String::from_utf8_lossy(&raw)
        )
    };
    let names: Vec<String> = map
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k.as_bytes().unwrap_or(b"?")).into_owned())
        .collect();
    assert_eq!(
        names,
        ["server", "version", "proto", "id", "mode", "role", "modules"]
    );
    assert_eq!(*field(&map, "proto"), Reply::Integer(3));
    assert!(matches!(field(&map, "id"), Reply::Integer(_)));
    assert!(matches!(field(&map, "server"), Reply::Bulk(_)));
    assert!(matches!(field(&map, "version"), Reply::Bulk(_)));
    assert_eq!(*field(&map, "mode"), Reply::Bulk(b"standalone".to_vec()));
    assert_eq!(*field(&map, "role"), Reply::Bulk(b"master".to_vec()));
    assert_eq!(*field(&map, "modules"), Reply::Array(vec![]));
    assert_eq!(c.call_text(&["GET", "missing"]), "_\r\n");

    let Reply::Array(flat) = c.call(&["HELLO", "2"]).reply else {
        panic!("HELLO 2 did not answer an array")
    };
    assert_eq!(flat.len(), 14);
    assert_eq!(flat[4], Reply::Bulk(b"proto".to_vec()));
    assert_eq!(flat[5], Reply::Integer(2));
    assert_eq!(c.call_text(&["GET", "missing"]), "$-1\r\n");
    assert_eq!(
        c.call_text(&["HELLO", "4"]),
        "-NOPROTO unsupported protocol version\r\n"
    );
}

/// INFO memory reports memory per element for each value type present (sampled keys).
#[test]
fn info_reports_memory_per_element() {
    let server = Corekey::start(&[]);
    let mut c = server.client();
    for i in 0..50 {
        let (h, l) = (format!("h{i}"), format!("l{i}"));
        c.call(&["HSET", &h, "f1", "v1", "f2", "v2"]);
        c.call(&["RPUSH", &l, "a", "b", "c"]);
    }
    let info = c.call(&["INFO", "memory"]);
    let text = String::from_utf8_lossy(info.reply.as_bytes().expect("INFO text")).into_owned();
    for ty in ["hash", "list"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("mem_per_element_{ty}:")))
            .unwrap_or_else(|| panic!("no mem_per_element_{ty} in {text}"));
        let v: f64 = line.split(':').nth(1).unwrap().trim().parse().unwrap();
        assert!(v > 0.0, "{line}");
    }
    assert!(!text.contains("mem_per_element_zset"), "{text}");
}
