//! INFO and CLIENT LIST carry every field a real redis-server reports (Debian package
//! redis-server; required under CI=true), so tools that read them by name find them.

use corekey_tests::client::Conn;
use corekey_tests::server::{Corekey, RedisServer};
use std::collections::BTreeSet;

/// Fields redis-server reports that corekey does not, each with the reason. Empty: corekey
/// reports them all (with Valkey's neutral values where it lacks the feature).
const NOT_APPLICABLE: &[(&str, &str)] = &[];

/// The same commands on both servers, so that the per-command lines (cmdstat_, latency
/// percentiles, errorstat_, db0) exist on both.
fn exercise(c: &mut Conn) {
    assert_eq!(c.call_text(&["SET", "info-k", "v"]), "+OK\r\n");
    assert_eq!(c.call_text(&["GET", "info-k"]), "$1\r\nv\r\n");
    assert!(c.call(&["INCR", "info-k"]).reply.is_error());
}

/// `(section, field)` of every line of an INFO text.
fn fields(text: &str) -> BTreeSet<(String, String)> {
    let mut section = String::new();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("# ") {
            section = name.trim().to_string();
            out.insert((section.clone(), String::new()));
        } else if let Some((field, _)) = line.split_once(':') {
            out.insert((section.clone(), field.to_string()));
        }
    }
    out
}

fn info_all(c: &mut Conn) -> String {
    let reply = c.call(&["INFO", "ALL"]).reply;
    String::from_utf8_lossy(reply.as_bytes().expect("INFO answers a string")).into_owned()
}

/// Every section and field of redis-server's INFO ALL is in corekey's INFO ALL, in the same
/// section, unless listed in NOT_APPLICABLE with its reason.
#[test]
fn info_all_has_every_redis_field() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let corekey = Corekey::start(&[]);
    let mut rc = redis.client();
    let mut cc = corekey.client();
    exercise(&mut rc);
    exercise(&mut cc);
    let theirs = fields(&info_all(&mut rc));
    let ours = fields(&info_all(&mut cc));
    let missing: Vec<String> = theirs
        .difference(&ours)
        .filter(|(_, f)| !NOT_APPLICABLE.iter().any(|(n, _)| n == f))
        .map(|(s, f)| format!("{s}/{f}"))
        .collect();
    assert!(
        missing.is_empty(),
        "corekey's INFO ALL lacks redis-server's fields: {missing:?}"
    );
    // Latencystats, commandstats and errorstats came from the same commands.
    for line in [
        "Latencystats/latency_percentiles_usec_set",
        "Commandstats/cmdstat_incr",
        "Errorstats/errorstat_ERR",
    ] {
        let (s, f) = line.split_once('/').expect("a section/field");
        assert!(ours.contains(&(s.into(), f.into())), "{line} missing");
    }
}

/// Every field of redis-server's CLIENT LIST line is in corekey's.
#[test]
fn client_list_has_every_redis_field() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let corekey = Corekey::start(&[]);
    let keys = |c: &mut Conn| -> BTreeSet<String> {
        let reply = c.call(&["CLIENT", "LIST"]).reply;
        let text = String::from_utf8_lossy(reply.as_bytes().expect("a string")).into_owned();
        text.lines()
            .next()
            .expect("one client")
            .split(' ')
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
            .collect()
    };
    let theirs = keys(&mut redis.client());
    let ours = keys(&mut corekey.client());
    let missing: Vec<&String> = theirs.difference(&ours).collect();
    assert!(missing.is_empty(), "CLIENT LIST lacks {missing:?}");
}
