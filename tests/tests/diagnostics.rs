//! SLOWLOG, LATENCY, MONITOR, CONFIG REWRITE and the log settings, end to end: commands run on
//! both shards (a connection's own and the other, reached by a hop) show up wherever Valkey
//! shows them, with the client that sent them.

use corekey_tests::client::{Conn, Reply};
use corekey_tests::server::{run_to_exit, Corekey};
use corekey_tests::slot::key_shard;
use std::time::Duration;

/// A key on each of the two shards.
fn keys_on_both_shards() -> [String; 2] {
    let find = |shard: u16| {
        (0..1000)
            .map(|i| format!("diag-{i}"))
            .find(|k| key_shard(k.as_bytes(), 2) == shard)
            .expect("a key for the shard")
    };
    [find(0), find(1)]
}

fn list(r: &Reply) -> &[Reply] {
    r.as_list().unwrap_or_else(|| panic!("not a list: {r:?}"))
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(
        r.as_bytes()
            .unwrap_or_else(|| panic!("not a string: {r:?}")),
    )
    .into_owned()
}

/// The `addr=` of a connection, from CLIENT INFO.
fn my_addr(c: &mut Conn) -> String {
    let info = text(&c.call(&["CLIENT", "INFO"]).reply);
    info.split(' ')
        .find_map(|kv| kv.strip_prefix("addr="))
        .expect("addr= in CLIENT INFO")
        .to_string()
}

/// With every command slow enough to log, SETs on both shards enter SLOWLOG with their
/// arguments, the client's address and name, newest first; passwords are redacted; LEN and
/// RESET work across the shards.
#[test]
fn slowlog_across_shards() {
    let server = Corekey::start(&["--slowlog-log-slower-than", "0"]);
    let mut c = server.client();
    assert_eq!(c.call_text(&["CLIENT", "SETNAME", "slowpoke"]), "+OK\r\n");
    let addr = my_addr(&mut c);
    let keys = keys_on_both_shards();
    for k in &keys {
        assert_eq!(c.call_text(&["SET", k, "v"]), "+OK\r\n");
    }
    c.call(&["AUTH", "secret"]);
    let entries = c.call(&["SLOWLOG", "GET", "-1"]).reply;
    let entries = list(&entries);
    let ids: Vec<i64> = entries
        .iter()
        .map(|e| list(e)[0].as_int().expect("an id"))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "ids not newest first: {ids:?}"
    );
    for k in &keys {
        let e = entries
            .iter()
            .find(|e| {
                let args: Vec<String> = list(&list(e)[3]).iter().map(text).collect();
                args == ["SET", k.as_str(), "v"]
            })
            .unwrap_or_else(|| panic!("no SLOWLOG entry for SET {k}: {entries:?}"));
        let e = list(e);
        assert_eq!(e.len(), 6);
        assert_eq!(text(&e[4]), addr);
        assert_eq!(text(&e[5]), "slowpoke");
    }
    let auth = entries
        .iter()
        .find(|e| text(&list(&list(e)[3])[0]).eq_ignore_ascii_case("auth"))
        .expect("the AUTH entry");
    assert_eq!(text(&list(&list(auth)[3])[1]), "(redacted)");
    assert_eq!(list(&c.call(&["SLOWLOG", "GET", "1"]).reply).len(), 1);
    assert!(c.call(&["SLOWLOG", "LEN"]).reply.as_int().expect("a count") >= 4);
    assert_eq!(c.call_text(&["SLOWLOG", "RESET"]), "+OK\r\n");
    // The RESET itself is the one entry left (it ran slower than 0 µs).
    assert!(c.call(&["SLOWLOG", "LEN"]).reply.as_int().expect("a count") <= 1);
    assert_eq!(
        c.call_text(&["SLOWLOG", "GET", "-2"]),
        "-ERR count should be greater than or equal to -1\r\n"
    );
}

/// A MONITOR client sees the commands of another client, on both shards, in Valkey's line
/// format with the database and address, and keeps working as a connection; RESET ends it.
#[test]
fn monitor_sees_commands_of_other_clients() {
    let server = Corekey::start(&[]);
    let mut m = server.client();
    assert_eq!(m.call_text(&["MONITOR"]), "+OK\r\n");
    let mut c = server.client();
    let addr = my_addr(&mut c);
    assert_eq!(c.call_text(&["SELECT", "3"]), "+OK\r\n");
    let keys = keys_on_both_shards();
    for k in &keys {
        assert_eq!(c.call_text(&["SET", k, "a b"]), "+OK\r\n");
    }
    // Valkey's shapes: the arguments as sent, the database after the command ran.
    let mut wanted = vec![format!("[3 {addr}] \"SELECT\" \"3\"")];
    wanted.extend(
        keys.iter()
            .map(|k| format!("[3 {addr}] \"SET\" \"{k}\" \"a b\"")),
    );
    let mut lines = Vec::new();
    // Bounded: at most 10 lines are read (CLIENT INFO, SELECT, two SETs are expected).
    for _ in 0..10 {
        if wanted
            .iter()
            .all(|w| lines.iter().any(|l: &String| l.ends_with(w)))
        {
            break;
        }
        let f = m.read_reply().expect("a MONITOR line");
        lines.push(text(&f.reply));
    }
    for w in &wanted {
        let line = lines
            .iter()
            .find(|l| l.ends_with(w))
            .unwrap_or_else(|| panic!("no {w} in {lines:?}"));
        let stamp = line.split(' ').next().expect("a time stamp");
        let (secs, micros) = stamp.split_once('.').expect("seconds.micros");
        assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{line}");
    }
    assert_eq!(m.call_text(&["RESET"]), "+RESET\r\n");
    assert_eq!(c.call_text(&["SET", &keys[0], "x"]), "+OK\r\n");
    assert_eq!(
        m.call_text(&["PING"]),
        "+PONG\r\n",
        "no monitor line after RESET"
    );
}

/// LATENCY: per-command histograms for every shard's commands; a slow command (a union of a
/// 200,000-member sorted set) with the monitor threshold at 1 ms is an event that LATEST,
/// HISTORY and DOCTOR report and RESET forgets.
#[test]
fn latency_histogram_and_events() {
    let server = Corekey::start(&[]);
    let mut c = server.client();
    for k in keys_on_both_shards() {
        assert_eq!(c.call_text(&["SET", &k, "v"]), "+OK\r\n");
    }
    let h = c.call(&["LATENCY", "HISTOGRAM", "set", "nosuch"]).reply;
    let items = list(&h);
    assert_eq!(items.len(), 2, "one command, as name and details: {h:?}");
    assert_eq!(text(&items[0]), "set");
    let details = list(&items[1]);
    assert_eq!(text(&details[0]), "calls");
    assert_eq!(details[1].as_int(), Some(2));
    assert_eq!(text(&details[2]), "histogram_usec");
    assert!(!list(&details[3]).is_empty());
    assert!(text(&c.call(&["LATENCY", "DOCTOR"]).reply).contains("not in the slightest bit"));

    let members: Vec<Vec<String>> = (0..200)
        .map(|b| {
            let mut cmd = vec!["ZADD".to_string(), "{big}z".into()];
            for i in 0..1000 {
                cmd.push((b * 1000 + i).to_string());
                cmd.push(format!("m{}", b * 1000 + i));
            }
            cmd
        })
        .collect();
    c.pipeline(&members).expect("building the sorted set");
    assert_eq!(
        c.call_text(&["CONFIG", "SET", "latency-monitor-threshold", "1"]),
        "+OK\r\n"
    );
    c.set_read_timeout(Duration::from_secs(30));
    assert_eq!(
        c.call_text(&["ZUNIONSTORE", "{big}copy", "1", "{big}z"]),
        ":200000\r\n"
    );
    let latest = c.call(&["LATENCY", "LATEST"]).reply;
    let event = list(&latest)
        .iter()
        .find(|e| text(&list(e)[0]) == "command")
        .unwrap_or_else(|| panic!("no 'command' event: {latest:?}"));
    assert!(list(event)[2].as_int().expect("ms") >= 1);
    assert!(!list(&c.call(&["LATENCY", "HISTORY", "command"]).reply).is_empty());
    assert!(text(&c.call(&["LATENCY", "DOCTOR"]).reply).contains("command:"));
    assert!(
        c.call(&["LATENCY", "RESET"])
            .reply
            .as_int()
            .expect("a count")
            >= 1
    );
    assert!(list(&c.call(&["LATENCY", "HISTORY", "command"]).reply).is_empty());
}

/// CONFIG REWRITE writes the values in force into the config file, keeping its comments and
/// order, and the result starts a node (it is read by `--check-system`, which parses it).
#[test]
fn config_rewrite_keeps_comments() {
    let dir = std::env::temp_dir().join(format!("corekey-rewrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let file = dir.join("node.conf");
    std::fs::write(
        &file,
        "# the test node\ntimeout 5\n\n# keep me\nmaxclients 100\n",
    )
    .expect("writing");
    let server = Corekey::start_with_config_file(&file, &[]);
    let mut c = server.client();
    assert_eq!(c.call_text(&["CONFIG", "SET", "timeout", "77"]), "+OK\r\n");
    assert_eq!(c.call_text(&["CONFIG", "REWRITE"]), "+OK\r\n");
    let text = std::fs::read_to_string(&file).expect("reading the rewritten file");
    assert!(
        text.starts_with("# the test node\ntimeout 77\n\n# keep me\nmaxclients 100\n# Generated by CONFIG REWRITE\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("\nport {}\n", server.port())),
        "{text}"
    );
    let done = run_to_exit(
        "corekey",
        &Corekey::binary(),
        &[file.to_str().expect("a UTF-8 path"), "--check-system"],
        Duration::from_secs(30),
    );
    assert!(
        done.stdout.starts_with("corekey --check-system"),
        "{}{}",
        done.stdout,
        done.stderr
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without a config file, CONFIG REWRITE says so, as Valkey does.
#[test]
fn config_rewrite_without_a_file() {
    let server = Corekey::start(&[]);
    assert_eq!(
        server.client().call_text(&["CONFIG", "REWRITE"]),
        "-ERR The server is running without a config file\r\n"
    );
}

/// With `logfile` and `log-format json`, the log is a file of JSON objects, one per line.
#[test]
fn json_log_file() {
    let dir = std::env::temp_dir().join(format!("corekey-jsonlog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let log = dir.join("corekey.log");
    let server = Corekey::start(&[
        "--logfile",
        log.to_str().expect("a UTF-8 path"),
        "--log-format",
        "json",
    ]);
    // The start-up line may follow the first PONG by a moment.
    let text = corekey_tests::wait::until("the start-up log line", Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("ready to accept connections"))
    });
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty(), "nothing logged");
    for l in &lines {
        assert!(
            l.starts_with('{')
                && l.ends_with('}')
                && l.contains("\"level\":\"INFO\"")
                && l.contains("\"message\":"),
            "not a JSON log line: {l}"
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
