//! Moving keys between servers: DUMP, RESTORE, RESTORE-ASKING and MIGRATE, with Valkey 8's
//! replies (`cluster.c`). Payloads are RDB objects (`crate::keyspace::rdb`).
//!
//! MIGRATE is a node command: it locks the shards holding its keys (one shard in cluster mode,
//! where the keys share a slot), dumps them, sends RESTORE (RESTORE-ASKING in cluster mode)
//! commands to the target over a cached connection, and deletes the keys the target accepted,
//! all under the lock, so no other client sees a key on both sides or on neither, as with
//! Valkey's blocking MIGRATE. Connections are cached per shard thread, per `host:port`, for
//! [`CONN_TTL`] (Valkey's `MIGRATE_SOCKET_CACHE_TTL`), at most [`CONN_CACHE_MAX`] of them.

use super::multi::Via;
use super::spec::{acl, flag, key_at, keyflag as kf, BeginSearch, CommandSpec, Exec, FindKeys};
use super::spec::{Group, KeySpec};
use super::{opt_is, KeyCtx, NodeCmd, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::commands::cluster::ClusterCmd;
use crate::keyspace::{lru_clock, rdb, Entry};
use crate::net::client::LineClient;
use crate::resp::Out;
use crate::session::ClientState;
use crate::shard::Shard;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long an idle MIGRATE connection stays cached.
pub const CONN_TTL: Duration = Duration::from_secs(10);
/// Most cached MIGRATE connections per shard.
pub const CONN_CACHE_MAX: usize = 64;

static MIGRATE_KEYS: [KeySpec; 2] = [
    key_at(3, kf::RW | kf::ACCESS | kf::DELETE),
    KeySpec {
        notes: None,
        flags: kf::RW | kf::ACCESS | kf::DELETE | kf::INCOMPLETE,
        begin: BeginSearch::Keyword {
            keyword: "KEYS",
            startfrom: -2,
        },
        find: FindKeys::Range {
            lastkey: -1,
            step: 1,
            limit: 0,
        },
    },
];

const RESTORE_HISTORY: &[(&str, &str)] = &[
    ("3.0.0", "Added the `REPLACE` modifier."),
    ("5.0.0", "Added the `ABSTTL` modifier."),
    ("5.0.0", "Added the `IDLETIME` and `FREQ` options."),
];
const RESTORE_SYNTAX: &str = "key:key ttl:integer serialized-value:string [REPLACE]{since=3.0.0} [ABSTTL]{since=5.0.0} [IDLETIME seconds:integer]{since=5.0.0} [FREQ frequency:integer]{since=5.0.0}";
const RESTORE_COMPLEXITY: &str = "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).";

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        keys: &[key_at(1, kf::RO | kf::ACCESS)],
        exec: Exec::Key(dump),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("dump", 2, flag::READONLY, acl::KEYSPACE, Group::Generic, "2.6.0",
            "Returns a serialized representation of the value stored at a key.",
            "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).",
            "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::UPDATE)],
        exec: Exec::Key(restore),
        history: RESTORE_HISTORY,
        ..CommandSpec::new("restore", -4, flag::WRITE | flag::DENYOOM, acl::KEYSPACE | acl::DANGEROUS, Group::Generic, "2.6.0",
            "Creates a key from the serialized representation of a value.", RESTORE_COMPLEXITY, RESTORE_SYNTAX)
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::UPDATE)],
        exec: Exec::Key(restore),
        history: RESTORE_HISTORY,
        doc_flags: &["syscmd"],
        ..CommandSpec::new("restore-asking", -4, flag::WRITE | flag::DENYOOM | flag::ASKING, acl::KEYSPACE | acl::DANGEROUS, Group::Server, "3.0.0",
            "An internal command for migrating keys in a cluster.", RESTORE_COMPLEXITY, RESTORE_SYNTAX)
    },
    CommandSpec {
        keys: &MIGRATE_KEYS,
        exec: Exec::Node(NodeCmd::Cluster(ClusterCmd::Migrate)),
        tips: &["nondeterministic_output"],
        history: &[
            ("3.0.0", "Added the `COPY` and `REPLACE` options."),
            ("3.0.6", "Added the `KEYS` option."),
            ("4.0.7", "Added the `AUTH` option."),
            ("6.0.0", "Added the `AUTH2` option."),
        ],
        ..CommandSpec::new("migrate", -6, flag::WRITE, acl::KEYSPACE | acl::DANGEROUS, Group::Generic, "2.6.0",
            "Atomically transfers a key from one instance to another.",
            "This command actually executes a DUMP+DEL in the source instance, and a RESTORE in the target instance. See the pages of these commands for time complexity. Also an O(N) data transfer between the two instances is performed.",
            "host:string port:integer key-selector=(key:key|\"\") destination-db:integer timeout:integer [COPY]{since=3.0.0} [REPLACE]{since=3.0.0} [authentication=AUTH auth:string{display=password,since=4.0.7}|AUTH2 auth2=(username:string password:string){since=6.0.0}] [KEYS keys:key...]{display=key,since=3.0.6}")
    },
];

fn dump(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let (e, out) = ctx.read_out(argv[1]);
    let Some(e) = e else {
        out.null();
        return;
    };
    match rdb::dump(&e.value) {
        Some(p) => out.bulk(&p),
        None => out.err(format!(
            "DUMP of {} values is not supported yet",
            e.value.type_name()
        )),
    }
}

/// RESTORE and RESTORE-ASKING (the routing lets the latter into an importing slot).
fn restore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < argv.len() {
        let more = argv.len() - j - 1;
        if opt_is(argv[j], "replace") {
            replace = true;
        } else if opt_is(argv[j], "absttl") {
            absttl = true;
        } else if opt_is(argv[j], "idletime") && more >= 1 && freq.is_none() {
            let Some(v) = super::int_arg(ctx.out, argv[j + 1]) else {
                return;
            };
            if v < 0 {
                ctx.out.err("Invalid IDLETIME value, must be >= 0");
                return;
            }
            idle = Some(v);
            j += 1;
        } else if opt_is(argv[j], "freq") && more >= 1 && idle.is_none() {
            let Some(v) = super::int_arg(ctx.out, argv[j + 1]) else {
                return;
            };
            if !(0..=255).contains(&v) {
                ctx.out.err("Invalid FREQ value, must be >= 0 and <= 255");
                return;
            }
            freq = Some(v);
            j += 1;
        } else {
            ctx.out.err(ERR_SYNTAX);
            return;
        }
        j += 1;
    }
    let key = argv[1];
    if !replace && ctx.write(key).is_some() {
        ctx.out.err("-BUSYKEY Target key name already exists.");
        return;
    }
    let Some(mut ttl) = super::int_arg(ctx.out, argv[2]) else {
        return;
    };
    if ttl < 0 {
        ctx.out.err("Invalid TTL value, must be >= 0");
        return;
    }
    let payload = argv[3];
    if !rdb::verify(payload) {
        ctx.out.err("DUMP payload version or checksum are wrong");
        return;
    }
    let limits = ctx.limits();
    let Some(value) = rdb::restore(payload, limits) else {
        ctx.out.err("Bad data format");
        return;
    };
    let now = ctx.now_ms;
    let deleted = replace && ctx.db().remove(key).is_some();
    if ttl != 0 && !absttl {
        ttl = ttl.saturating_add(now);
    }
    if ttl != 0 && ttl <= now {
        // Already expired: nothing is created (a replaced key is gone all the same).
        if deleted {
            ctx.modified(key);
        }
        ctx.out.ok();
        return;
    }
    let mut entry = Entry::new(value, now);
    if let Some(idle_s) = idle {
        entry.lru = lru_clock(now.saturating_sub(idle_s.saturating_mul(1000)));
    }
    let _ = freq; // corekey keeps no LFU counters yet
    let is_list = matches!(entry.value, crate::keyspace::Value::List(_));
    ctx.db().insert_entry(key, entry, (ttl != 0).then_some(ttl));
    ctx.modified(key);
    if is_list {
        ctx.key_ready(key);
    }
    ctx.out.ok();
}

/// MIGRATE's options.
struct Opts<'a> {
    copy: bool,
    replace: bool,
    username: Option<&'a [u8]>,
    password: Option<&'a [u8]>,
    keys: Vec<&'a [u8]>,
}

/// Parses options as Valkey's `migrateCommand` does; `Err` is the error reply.
fn parse<'a>(argv: &[&'a [u8]]) -> Result<Opts<'a>, Vec<u8>> {
    let mut o = Opts {
        copy: false,
        replace: false,
        username: None,
        password: None,
        keys: vec![argv[3]],
    };
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if opt_is(argv[j], "copy") {
            o.copy = true;
        } else if opt_is(argv[j], "replace") {
            o.replace = true;
        } else if opt_is(argv[j], "auth") {
            if more == 0 {
                return Err(ERR_SYNTAX.into());
            }
            j += 1;
            o.password = Some(argv[j]);
        } else if opt_is(argv[j], "auth2") {
            if more < 2 {
                return Err(ERR_SYNTAX.into());
            }
            o.username = Some(argv[j + 1]);
            o.password = Some(argv[j + 2]);
            j += 2;
        } else if opt_is(argv[j], "keys") {
            if !argv[3].is_empty() {
                return Err(b"When using MIGRATE KEYS option, the key argument must be set to the empty string".to_vec());
            }
            o.keys = argv[j + 1..].to_vec();
            break;
        } else {
            return Err(ERR_SYNTAX.into());
        }
        j += 1;
    }
    Ok(o)
}

/// The keys MIGRATE names, for routing (Valkey's `migrateGetKeys`): the key argument, or the
/// keys after KEYS when it is empty.
pub fn key_positions(argv: &[&[u8]], out: &mut Vec<usize>) {
    out.clear();
    if argv.len() < 6 {
        return;
    }
    if argv[3].is_empty() {
        if let Some(k) = (6..argv.len()).find(|&i| opt_is(argv[i], "keys")) {
            out.extend(k + 1..argv.len());
        }
    } else {
        out.push(3);
    }
}

struct Cached {
    conn: LineClient,
    last_db: Option<i64>,
    last_use: Instant,
}

thread_local! {
    /// This shard's MIGRATE connections (shard state lives on its thread; see the module docs).
    static CONNS: RefCell<HashMap<Vec<u8>, Cached>> = RefCell::new(HashMap::new());
}

fn take_cached(name: &[u8]) -> Option<Cached> {
    CONNS.with(|c| {
        let mut c = c.borrow_mut();
        c.retain(|_, v| v.last_use.elapsed() < CONN_TTL);
        c.remove(name)
    })
}

fn put_cached(name: Vec<u8>, conn: Cached) {
    CONNS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CONN_CACHE_MAX {
            if let Some(k) = c.keys().next().cloned() {
                c.remove(&k);
            }
        }
        c.insert(name, conn);
    });
}

fn push_bulk(buf: &mut Vec<u8>, arg: &[u8]) {
    buf.push(b'$');
    buf.extend_from_slice(itoa::Buffer::new().format(arg.len()).as_bytes());
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(arg);
    buf.extend_from_slice(b"\r\n");
}

fn push_cmd(buf: &mut Vec<u8>, args: &[&[u8]]) {
    buf.push(b'*');
    buf.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    buf.extend_from_slice(b"\r\n");
    for a in args {
        push_bulk(buf, a);
    }
}

/// What a shard answers for one key: its TTL left (0: none) and payload, if it exists.
type Dumped = Result<Option<(i64, Vec<u8>)>, String>;

fn dump_on_shard(s: &Shard, db: usize, key: &[u8]) -> Dumped {
    let now = s.now_ms();
    let mut ks = s.ks.borrow_mut();
    let crate::keyspace::Keyspace { dbs, stats, .. } = &mut *ks;
    let d = &mut dbs[db];
    let Some(e) = d.lookup_read(stats, key, now) else {
        return Ok(None);
    };
    let Some(payload) = rdb::dump(&e.value) else {
        return Err(format!(
            "MIGRATE of {} values is not supported yet",
            e.value.type_name()
        ));
    };
    let ttl = match d.expire_of(key) {
        Some(at) if at - now < 0 => return Ok(None),
        Some(at) => (at - now).max(1),
        None => 0,
    };
    Ok(Some((ttl, payload)))
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password | AUTH2
/// username password] [KEYS key ...].
pub async fn migrate(shard: Via<'_>, client: &ClientState, argv: &[&[u8]], out: &mut Out) {
    let opts = match parse(argv) {
        Ok(o) => o,
        Err(e) => {
            out.err(e);
            return;
        }
    };
    let (Some(timeout), Some(dbid)) = (
        crate::util::parse_i64(argv[5]),
        crate::util::parse_i64(argv[4]),
    ) else {
        out.err(ERR_NOT_INTEGER);
        return;
    };
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    let db = client.db;
    let owners: Vec<usize> = opts.keys.iter().map(|k| shard.shard_of_key(k)).collect();
    let txn = shard.lock(owners.iter().copied()).await;
    let mut found: Vec<(&[u8], usize, i64, Vec<u8>)> = Vec::new();
    for (k, &owner) in opts.keys.iter().zip(&owners) {
        let key = k.to_vec();
        match txn.run(owner, move |s| dump_on_shard(s, db, &key)).await {
            Ok(Some((ttl, payload))) => found.push((k, owner, ttl, payload)),
            Ok(None) => {}
            Err(e) => {
                out.err(e);
                return;
            }
        }
    }
    if found.is_empty() {
        out.simple("NOKEY");
        return;
    }
    let restore_cmd: &[u8] = if shard.cluster.enabled() {
        b"RESTORE-ASKING"
    } else {
        b"RESTORE"
    };
    let name = [argv[1], b":", argv[2]].concat();
    let host = String::from_utf8_lossy(argv[1]).into_owned();
    let port = std::str::from_utf8(argv[2])
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    let mut may_retry = true;
    loop {
        let cached = take_cached(&name);
        let reused = cached.is_some();
        let mut c = match cached {
            Some(c) => c,
            None => match LineClient::connect(&host, port, timeout).await {
                Ok(conn) => Cached {
                    conn,
                    last_db: None,
                    last_use: Instant::now(),
                },
                Err(_) => {
                    out.err("-IOERR error or timeout connecting to the client");
                    return;
                }
            },
        };
        let mut buf = Vec::new();
        if let Some(pw) = opts.password {
            match opts.username {
                Some(u) => push_cmd(&mut buf, &[b"AUTH", u, pw]),
                None => push_cmd(&mut buf, &[b"AUTH", pw]),
            }
        }
        let select = c.last_db != Some(dbid);
        if select {
            push_cmd(
                &mut buf,
                &[b"SELECT", itoa::Buffer::new().format(dbid).as_bytes()],
            );
        }
        for (k, _, ttl, payload) in &found {
            let ttl = itoa::Buffer::new().format(*ttl).as_bytes().to_vec();
            if opts.replace {
                push_cmd(&mut buf, &[restore_cmd, k, &ttl, payload, b"REPLACE"]);
            } else {
                push_cmd(&mut buf, &[restore_cmd, k, &ttl, payload]);
            }
        }
        if let Err(e) = c.conn.write_all(buf, timeout).await {
            let timed_out = e.kind() == std::io::ErrorKind::TimedOut;
            if may_retry && reused && !timed_out {
                may_retry = false;
                continue;
            }
            out.err("-IOERR error or timeout writing to target instance");
            return;
        }
        let mut first_error: Option<Vec<u8>> = None;
        let mut socket_error = None;
        if opts.password.is_some() {
            match c.conn.read_line(timeout).await {
                Ok(l) if l.first() == Some(&b'-') => first_error = Some(l),
                Ok(_) => {}
                Err(e) => socket_error = Some(e),
            }
        }
        if select && socket_error.is_none() {
            match c.conn.read_line(timeout).await {
                Ok(l) if l.first() == Some(&b'-') => {
                    first_error.get_or_insert(l);
                }
                Ok(_) => {}
                Err(e) => socket_error = Some(e),
            }
        }
        let mut replies = 0usize;
        if socket_error.is_none() {
            for (k, owner, _, _) in &found {
                match c.conn.read_line(timeout).await {
                    Ok(l) => {
                        replies += 1;
                        if first_error.is_some() || l.first() == Some(&b'-') {
                            first_error.get_or_insert(l);
                        } else if !opts.copy {
                            {
                                let key = k.to_vec();
                                txn.run(*owner, move |s| {
                                    s.ks.borrow_mut().dbs[db].remove(&key);
                                    s.ks.borrow_mut().watches.touched(db, &key);
                                })
                                .await;
                            }
                        }
                    }
                    Err(e) => {
                        socket_error = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(e) = socket_error {
            let timed_out = e.kind() == std::io::ErrorKind::TimedOut;
            if first_error.is_none() && replies == 0 && may_retry && reused && !timed_out {
                may_retry = false;
                continue;
            }
            if first_error.is_none() {
                out.err("-IOERR error or timeout reading to target instance");
                return;
            }
        } else if first_error.is_none() {
            c.last_db = Some(dbid);
            c.last_use = Instant::now();
            put_cached(name, c);
        } else {
            c.last_db = None;
            c.last_use = Instant::now();
            put_cached(name, c);
        }
        match first_error {
            Some(e) => out.err(super::quoted_err(
                "Target instance replied with error: ",
                e.get(1..).unwrap_or_default(),
                "",
            )),
            None => out.ok(),
        }
        return;
    }
}
