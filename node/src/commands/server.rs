//! The server family: INFO, CONFIG, DBSIZE, FLUSHALL, FLUSHDB, SWAPDB, TIME, SHUTDOWN and
//! COMMAND (rendered in `introspect.rs`).
//!
//! Node-wide commands gather from every shard through cross-shard calls; the ones that change
//! every shard's data lock all shards first, so no client sees a half-flushed node.

use super::connection::help_reply;
use super::introspect;
use super::multi::Via;
use super::spec::{acl, flag, CommandSpec, Exec, Group};
use super::{ConnCtx, NodeCmd, ERR_SYNTAX};
use crate::config::{self, Config};
use crate::resp::Out;
use crate::session::ClientState;
use crate::shard::stats::{CmdStat, Stats};
use crate::shard::{unix_ms, Shard};
use std::fmt::Write;
use std::rc::Rc;
use std::sync::Arc;

/// The Redis version corekey reports (`redis_version`, HELLO): a 7.2 server, so that
/// clients enable the features corekey has.
pub const REDIS_VERSION: &str = "7.2.4";

const ADMIN_CONF: u32 = flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: Exec::Node(NodeCmd::Info),
        tips: &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"],
        history: &[("7.0.0", "Added support for taking multiple section arguments.")],
        ..CommandSpec::new("info", -1, flag::LOADING | flag::STALE, acl::DANGEROUS, Group::Server, "1.0.0",
            "Returns information and statistics about the server.", "O(1)", "[section:string...]")
    },
    CommandSpec {
        subcommands: CONFIG_SUBCOMMANDS,
        ..CommandSpec::new("config", -2, 0, 0, Group::Server, "2.0.0",
            "A container for server configuration commands.", "Depends on subcommand.", "")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::DbSize),
        tips: &["request_policy:all_shards", "response_policy:agg_sum"],
        ..CommandSpec::new("dbsize", 1, flag::READONLY | flag::FAST, acl::KEYSPACE, Group::Server, "1.0.0",
            "Returns the number of keys in the database.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::FlushAll),
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        history: &[("4.0.0", "Added the `ASYNC` flushing mode modifier."), ("6.2.0", "Added the `SYNC` flushing mode modifier.")],
        ..CommandSpec::new("flushall", -1, flag::WRITE, acl::KEYSPACE | acl::DANGEROUS, Group::Server, "1.0.0",
            "Removes all keys from all databases.", "O(N) where N is the total number of keys in all databases",
            "[flush-type=ASYNC{since=4.0.0}|SYNC{since=6.2.0}]")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::FlushDb),
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        history: &[("4.0.0", "Added the `ASYNC` flushing mode modifier."), ("6.2.0", "Added the `SYNC` flushing mode modifier.")],
        ..CommandSpec::new("flushdb", -1, flag::WRITE, acl::KEYSPACE | acl::DANGEROUS, Group::Server, "1.0.0",
            "Remove all keys from the current database.", "O(N) where N is the number of keys in the selected database",
            "[flush-type=ASYNC{since=4.0.0}|SYNC{since=6.2.0}]")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::SwapDb),
        ..CommandSpec::new("swapdb", 3, flag::WRITE | flag::FAST, acl::KEYSPACE | acl::DANGEROUS, Group::Server, "4.0.0",
            "Swaps two databases.", "O(N) where N is the count of clients watching or blocking on keys from both databases.",
            "index1:integer index2:integer")
    },
    CommandSpec {
        exec: Exec::Conn(time),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("time", 1, flag::LOADING | flag::STALE | flag::FAST, 0, Group::Server, "2.6.0",
            "Returns the server time.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::Shutdown),
        history: &[("7.0.0", "Added the `NOW`, `FORCE` and `ABORT` modifiers.")],
        ..CommandSpec::new("shutdown", -1, ADMIN_CONF | flag::NO_MULTI | flag::ALLOW_BUSY, 0, Group::Server, "1.0.0",
            "Synchronously saves the database(s) to disk and shuts down the server.", "O(1) when not saving.",
            "[abort-selector=save-selector-block=([save-selector=NOSAVE|SAVE] [NOW]{since=7.0.0} [FORCE]{since=7.0.0})|ABORT{since=7.0.0}]")
    },
    CommandSpec {
        exec: Exec::Conn(introspect::command),
        subcommands: COMMAND_SUBCOMMANDS,
        tips: &["nondeterministic_output_order"],
        ..CommandSpec::new("command", -1, flag::LOADING | flag::STALE, acl::CONNECTION, Group::Server, "2.8.13",
            "Returns detailed information about all commands.", "O(N) where N is the total number of commands", "")
    },
];

static CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: Exec::Node(NodeCmd::ConfigGet),
        history: &[("7.0.0", "Added the option to pass multiple parameters.")],
        ..CommandSpec::new(
            "get",
            -3,
            ADMIN_CONF,
            0,
            Group::Server,
            "2.0.0",
            "Returns the effective values of configuration parameters.",
            "O(N) when N is the number of configuration parameters provided",
            "parameter:string...",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::ConfigSet),
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        history: &[(
            "7.0.0",
            "Added the ability to set multiple parameters in one call.",
        )],
        ..CommandSpec::new(
            "set",
            -4,
            ADMIN_CONF,
            0,
            Group::Server,
            "2.0.0",
            "Sets configuration parameters in-flight.",
            "O(N) when N is the number of configuration parameters provided",
            "data=(parameter:string value:string)...",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::ConfigResetStat),
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..CommandSpec::new(
            "resetstat",
            2,
            ADMIN_CONF,
            0,
            Group::Server,
            "2.0.0",
            "Resets the server's statistics.",
            "O(1)",
            "",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::ConfigRewrite),
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..CommandSpec::new(
            "rewrite",
            2,
            ADMIN_CONF,
            0,
            Group::Server,
            "2.8.0",
            "Persists the effective configuration to file.",
            "O(1)",
            "",
        )
    },
    CommandSpec {
        exec: Exec::Conn(config_help),
        ..CommandSpec::new(
            "help",
            2,
            flag::LOADING | flag::STALE,
            0,
            Group::Server,
            "5.0.0",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        )
    },
];

static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: Exec::Conn(introspect::command_count),
        ..CommandSpec::new("count", 2, flag::LOADING | flag::STALE, acl::CONNECTION, Group::Server, "2.8.13",
            "Returns a count of commands.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Conn(introspect::command_info_cmd),
        tips: &["nondeterministic_output_order"],
        history: &[("7.0.0", "Allowed to be called with no argument to get info on all commands.")],
        ..CommandSpec::new("info", -2, flag::LOADING | flag::STALE, acl::CONNECTION, Group::Server, "2.8.13",
            "Returns information about one, multiple or all commands.", "O(N) where N is the number of commands to look up",
            "[command-name:string...]")
    },
    CommandSpec {
        exec: Exec::Conn(introspect::command_docs_cmd),
        tips: &["nondeterministic_output_order"],
        ..CommandSpec::new("docs", -2, flag::LOADING | flag::STALE, acl::CONNECTION, Group::Server, "7.0.0",
            "Returns documentary information about one, multiple or all commands.", "O(N) where N is the number of commands to look up",
            "[command-name:string...]")
    },
    CommandSpec {
        exec: Exec::Conn(introspect::command_list),
        tips: &["nondeterministic_output_order"],
        ..CommandSpec::new("list", -2, flag::LOADING | flag::STALE, acl::CONNECTION, Group::Server, "7.0.0",
            "Returns a list of command names.", "O(N) where N is the total number of commands",
            "[FILTERBY filterby=(MODULE module-name:string|ACLCAT category:string|PATTERN pattern:pattern)]")
    },
    CommandSpec {
        exec: Exec::Conn(introspect::command_getkeys),
        ..CommandSpec::new("getkeys", -3, flag::LOADING | flag::STALE, acl::CONNECTION, Group::Server, "2.8.13",
            "Extracts the key names from an arbitrary command.", "O(N) where N is the number of arguments to the command",
            "command:string [arg:string...]")
    },
    CommandSpec {
        exec: Exec::Conn(introspect::command_getkeysandflags),
        ..CommandSpec::new("getkeysandflags", -3, flag::LOADING | flag::STALE, acl::CONNECTION, Group::Server, "7.0.0",
            "Extracts the key names and access flags for an arbitrary command.", "O(N) where N is the number of arguments to the command",
            "command:string [arg:string...]")
    },
    CommandSpec {
        exec: Exec::Conn(introspect::command_help),
        ..CommandSpec::new("help", 2, flag::LOADING | flag::STALE, acl::CONNECTION, Group::Server, "5.0.0",
            "Returns helpful text about the different subcommands.", "O(1)", "")
    },
];

fn time(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk_i64(t.as_secs() as i64);
    ctx.out.bulk_i64(i64::from(t.subsec_micros()));
}

fn config_help(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    help_reply(
        ctx.out,
        argv[0],
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
}

/// DBSIZE: the selected database's keys on every shard.
pub async fn dbsize(shard: Via<'_>, client: &mut ClientState, out: &mut Out) {
    let db = client.db;
    let mut total = 0;
    for t in 0..shard.shards() {
        total += shard.call(t, move |s| s.ks.borrow().dbs[db].len()).await;
    }
    out.int(total as i64);
}

/// FLUSHALL/FLUSHDB's optional ASYNC|SYNC; false after a syntax error reply.
fn flush_flags_ok(argv: &[&[u8]], out: &mut Out) -> bool {
    match argv.len() {
        1 => true,
        2 if super::opt_is(argv[1], "sync") || super::opt_is(argv[1], "async") => true,
        _ => {
            out.err(ERR_SYNTAX);
            false
        }
    }
}

/// Marks the watched keys of database `emptied` that FLUSH*/SWAPDB changes: those it held,
/// and those the database swapped in (`replaced_with`) holds (Valkey's
/// `touchAllWatchedKeysInDb`).
fn flush_touch(ks: &mut crate::keyspace::Keyspace, emptied: usize, replaced_with: Option<usize>) {
    if ks.watches.is_empty() {
        return;
    }
    let now = unix_ms();
    let crate::keyspace::Keyspace { dbs, watches, .. } = ks;
    let (dbs, watches) = (&*dbs, watches);
    watches.touched_db(
        emptied,
        &mut |k| dbs[emptied].stored(k, now).is_some(),
        &mut |k| replaced_with.and_then(|r| dbs[r].stored(k, now).map(|(expired, _)| expired)),
    );
}

/// FLUSHALL: every database on every shard, under a lock of all shards.
pub async fn flushall(shard: Via<'_>, argv: &[&[u8]], out: &mut Out) {
    if !flush_flags_ok(argv, out) {
        return;
    }
    let txn = shard.lock(0..shard.shards()).await;
    for &t in txn.shards() {
        txn.run(t, |s| {
            let mut ks = s.ks.borrow_mut();
            for db in 0..ks.dbs.len() {
                flush_touch(&mut ks, db, None);
            }
            ks.dbs.iter_mut().for_each(|d| d.clear())
        })
        .await;
    }
    drop(txn);
    out.ok();
}

/// FLUSHDB: the selected database on every shard.
pub async fn flushdb(shard: Via<'_>, client: &mut ClientState, argv: &[&[u8]], out: &mut Out) {
    if !flush_flags_ok(argv, out) {
        return;
    }
    let db = client.db;
    let txn = shard.lock(0..shard.shards()).await;
    for &t in txn.shards() {
        txn.run(t, move |s| {
            let mut ks = s.ks.borrow_mut();
            flush_touch(&mut ks, db, None);
            ks.dbs[db].clear()
        })
        .await;
    }
    drop(txn);
    out.ok();
}

/// SWAPDB: swaps two databases on every shard, atomically for the node.
pub async fn swapdb(shard: Via<'_>, argv: &[&[u8]], out: &mut Out) {
    if shard.cluster.enabled() {
        out.err("SWAPDB is not allowed in cluster mode");
        return;
    }
    let parse = |arg: &[u8], msg: &str, out: &mut Out| -> Option<i64> {
        match crate::util::parse_i64(arg) {
            Some(v) if v >= i64::from(i32::MIN) && v <= i64::from(i32::MAX) => Some(v),
            _ => {
                out.err(msg);
                None
            }
        }
    };
    let Some(a) = parse(argv[1], "invalid first DB index", out) else {
        return;
    };
    let Some(b) = parse(argv[2], "invalid second DB index", out) else {
        return;
    };
    let databases = shard.config.borrow().databases as i64;
    if a < 0 || a >= databases || b < 0 || b >= databases {
        out.err("DB index is out of range");
        return;
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        let txn = shard.lock(0..shard.shards()).await;
        for &t in txn.shards() {
            txn.run(t, move |s| {
                let mut ks = s.ks.borrow_mut();
                flush_touch(&mut ks, a, Some(b));
                flush_touch(&mut ks, b, Some(a));
                ks.dbs.swap(a, b)
            })
            .await;
        }
    }
    out.ok();
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: stops the node gracefully (corekey has no
/// persistence yet, so there is nothing to save). The caller gets no reply: its connection
/// closes with the server, as with Valkey.
pub fn shutdown(shard: &Rc<Shard>, client: &mut ClientState, argv: &[&[u8]], out: &mut Out) {
    let mut abort = false;
    let (mut save, mut nosave, mut now_or_force) = (false, false, false);
    for &a in &argv[1..] {
        if super::opt_is(a, "nosave") {
            nosave = true;
        } else if super::opt_is(a, "save") {
            save = true;
        } else if super::opt_is(a, "now") || super::opt_is(a, "force") {
            now_or_force = true;
        } else if super::opt_is(a, "abort") {
            abort = true;
        } else {
            out.err(ERR_SYNTAX);
            return;
        }
    }
    // ABORT goes with no other flag (it may repeat); SAVE and NOSAVE exclude each other.
    if (abort && (save || nosave || now_or_force)) || (save && nosave) {
        out.err(ERR_SYNTAX);
        return;
    }
    if abort {
        out.err("No shutdown in progress.");
        return;
    }
    tracing::warn!(client = client.id, "user requested shutdown");
    client.close_after_reply = true;
    shard
        .node
        .exit_code
        .store(0, std::sync::atomic::Ordering::SeqCst);
    // The main thread waits for SIGTERM; send it to ourselves.
    // SAFETY: kill(2) on our own pid.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
}

/// CONFIG GET pattern [pattern ...]: a map of the matching directives.
pub fn config_get(shard: &Rc<Shard>, argv: &[&[u8]], out: &mut Out) {
    let config = shard.config();
    let hits = config_matches(&argv[2..]);
    out.map(hits.len());
    for (name, d) in hits {
        out.bulk(name);
        out.bulk(&d.value(&config));
    }
}

/// The directives CONFIG GET names, each once, as Valkey's `configGetCommand` finds them: a
/// name without glob characters is looked up (case-insensitively) and answered under the
/// spelling the client used; a pattern matches directive names, case-insensitively.
fn config_matches<'a>(patterns: &[&'a [u8]]) -> Vec<(&'a [u8], &'static config::Directive)> {
    let mut hits: Vec<(&'a [u8], &'static config::Directive)> = Vec::new();
    let seen = |hits: &[(&[u8], &config::Directive)], d: &config::Directive| {
        hits.iter().any(|(_, h)| std::ptr::eq(*h, d))
    };
    for &pat in patterns {
        let pat = super::cstr(pat);
        if !pat.iter().any(|b| matches!(b, b'[' | b'*' | b'?')) {
            let found = std::str::from_utf8(pat).ok().and_then(config::directive);
            if let Some(d) = found.filter(|d| !seen(&hits, d)) {
                hits.push((pat, d));
            }
            continue;
        }
        for d in config::DIRECTIVES {
            if !seen(&hits, d) && crate::util::glob_match(pat, d.name.as_bytes(), true) {
                hits.push((d.name.as_bytes(), d));
            }
        }
    }
    hits
}

/// Checks CONFIG SET's names before any value, as Valkey does: the first unknown name, or
/// the first immutable or repeated one, fails the whole command. Returns the directives with
/// their values, or the error text.
fn config_set_plan<'a>(
    pairs: &[&'a [u8]],
) -> Result<Vec<(&'static config::Directive, &'a [u8])>, Vec<u8>> {
    let mut plan: Vec<(&'static config::Directive, &'a [u8])> = Vec::new();
    for pair in pairs.chunks_exact(2) {
        let (name, value) = (pair[0], pair[1]);
        let failed = |why: &str| {
            super::quoted_err(
                "CONFIG SET failed (possibly related to argument '",
                name,
                &format!("') - {why}"),
            )
        };
        let Some(d) = std::str::from_utf8(name).ok().and_then(config::directive) else {
            return Err(super::quoted_err(
                "Unknown option or number of arguments for CONFIG SET - '",
                name,
                "'",
            ));
        };
        if d.protected {
            return Err(failed("can't set protected config"));
        }
        if !d.mutable {
            return Err(failed("can't set immutable config"));
        }
        if plan.iter().any(|(p, _)| std::ptr::eq(*p, d)) {
            return Err(failed("duplicate parameter"));
        }
        plan.push((d, value));
    }
    Ok(plan)
}

/// CONFIG SET param value [param value ...]: all or nothing; the new configuration goes to
/// every shard.
pub async fn config_set(shard: Via<'_>, argv: &[&[u8]], out: &mut Out) {
    // An odd number of words (a directive without its value) is a syntax error in Valkey, not
    // an arity error (the arity check only asks for at least one pair).
    if !argv.len().is_multiple_of(2) {
        out.err(ERR_SYNTAX);
        return;
    }
    let plan = match config_set_plan(&argv[2..]) {
        Ok(plan) => plan,
        Err(msg) => {
            out.err(msg);
            return;
        }
    };
    let mut next: Config = (*shard.config()).clone();
    for (d, value) in plan {
        let args: Vec<Vec<u8>> = if d.name == "bind" {
            value.split(|&b| b == b' ').map(<[u8]>::to_vec).collect()
        } else {
            vec![value.to_vec()]
        };
        // A value that fails names the directive by its own name, as Valkey does.
        if let Err(e) = d.apply(&mut next, &args) {
            out.err(format!(
                "CONFIG SET failed (possibly related to argument '{}') - {e}",
                d.name
            ));
            return;
        }
    }
    let old = shard.config();
    if next.loglevel != old.loglevel {
        crate::server::set_log_level(next.loglevel);
    }
    let next = Arc::new(next);
    if let Ok(mut g) = shard.node.config.write() {
        *g = next.clone();
    }
    for t in 0..shard.shards() {
        let c = next.clone();
        shard
            .call(t, move |s| {
                s.ks.borrow_mut().limits = c.encoding;
                *s.config.borrow_mut() = c;
            })
            .await;
    }
    out.ok();
}

/// CONFIG REWRITE: writes the configuration in force back to the file it came from, keeping
/// its comments and order (`config::rewrite`). The new text goes to a temporary file in the
/// same directory, is synced, and replaces the file by rename, so a crash leaves the old file
/// or the new one, never half of one.
pub fn config_rewrite(shard: Via<'_>, out: &mut Out) {
    let config = shard.config();
    let Some(path) = config.config_file.clone() else {
        out.err("The server is running without a config file");
        return;
    };
    let write = || -> std::io::Result<()> {
        let original = match std::fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let text = config::rewrite(&original, &config);
        let mut tmp = path.clone().into_os_string();
        tmp.push(format!(".rewrite-{}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    };
    match write() {
        Ok(()) => {
            tracing::info!(file = %path.display(), "CONFIG REWRITE executed with success");
            out.ok();
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "CONFIG REWRITE failed");
            out.err(format!("Rewriting config file: {e}"));
        }
    }
}

/// CONFIG RESETSTAT: zeroes the statistics of every shard.
pub async fn config_resetstat(shard: Via<'_>, out: &mut Out) {
    for t in 0..shard.shards() {
        shard
            .call(t, |s| {
                s.stats.borrow_mut().reset();
                let mut ks = s.ks.borrow_mut();
                ks.stats = Default::default();
                for d in ks.dbs.iter_mut() {
                    d.expired = 0;
                }
            })
            .await;
    }
    out.ok();
}

/// What INFO and the Prometheus metrics gather from one shard.
pub struct ShardReport {
    pub stats: Stats,
    pub clients: usize,
    pub keys: Vec<(usize, usize, usize, i64)>,
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
    pub locked: bool,
    pub blocked_clients: usize,
    pub watched_keys: usize,
    /// Sampled bytes and elements per value type (see `Db::sample_memory`).
    pub per_element: [(&'static str, u64, u64); 5],
    pub pubsub_clients: usize,
    /// Channels, shard channels and patterns with subscribers on the shard (a channel may
    /// have subscribers on several shards: the node's count is of the union).
    pub pubsub_channels: Vec<Vec<u8>>,
    pub pubsub_shard_channels: Vec<Vec<u8>>,
    pub pubsub_patterns: std::collections::HashSet<Vec<u8>>,
    /// Commands, input bytes, output bytes per second.
    pub rates: (f64, f64, f64),
    /// Messages waiting to reach each other shard.
    pub queue_depths: Vec<usize>,
    /// System and user CPU seconds of the shard's thread.
    pub cpu: (f64, f64),
    /// Query and reply buffers of the shard's clients.
    pub clients_mem: usize,
    /// Entries in the shard's slow log.
    pub slowlog_len: usize,
}

/// Keys sampled per database and shard for INFO's memory per element.
const MEMORY_SAMPLES: usize = 256;

pub fn gather(s: &Shard) -> ShardReport {
    let per_element = {
        let mut ks = s.ks.borrow_mut();
        let mut acc = [("", 0u64, 0u64); 5];
        for d in 0..ks.dbs.len() {
            let n = MEMORY_SAMPLES.min(ks.dbs[d].len());
            if n == 0 {
                continue;
            }
            let picks: Vec<u64> = (0..n).map(|_| ks.random()).collect();
            let mut it = picks.into_iter();
            let got = ks.dbs[d].sample_memory(|| it.next().unwrap_or(0), n);
            for (a, g) in acc.iter_mut().zip(got) {
                *a = (g.0, a.1 + g.1, a.2 + g.2);
            }
        }
        acc
    };
    let ks = s.ks.borrow();
    ShardReport {
        stats: s.stats.borrow().clone(),
        clients: s.clients.borrow().len(),
        keys: ks
            .dbs
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.is_empty())
            .map(|(i, d)| (i, d.len(), d.expires_len(), d.avg_ttl_ms))
            .collect(),
        hits: ks.stats.hits,
        misses: ks.stats.misses,
        expired: ks.dbs.iter().map(|d| d.expired).sum(),
        locked: s.is_locked(),
        blocked_clients: s
            .clients
            .borrow()
            .iter()
            .filter(|(_, c)| c.blocked.get())
            .count(),
        watched_keys: ks.watches.keys(),
        per_element,
        pubsub_clients: s.pubsub.borrow().clients(),
        pubsub_channels: s
            .pubsub
            .borrow()
            .channels(crate::pubsub::Kind::Channel, None),
        pubsub_shard_channels: s.pubsub.borrow().channels(crate::pubsub::Kind::Shard, None),
        pubsub_patterns: s.pubsub.borrow().patterns(),
        rates: s.stats.borrow().instantaneous(),
        queue_depths: s.queue_depths(),
        slowlog_len: s.slowlog.borrow().entries.len(),
        cpu: rusage(libc::RUSAGE_THREAD),
        clients_mem: s
            .clients
            .borrow()
            .iter()
            .map(|(_, c)| c.qbuf.get() + c.qbuf_free.get() + c.obuf.get())
            .sum(),
    }
}

/// How many distinct items the shards' lists hold together.
fn union_len<'a, I: Iterator<Item = &'a Vec<u8>>>(lists: impl Iterator<Item = I>) -> usize {
    lists
        .flatten()
        .collect::<std::collections::HashSet<_>>()
        .len()
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1024.0 {
        format!("{}B", n as u64)
    } else if n < 1024.0 * 1024.0 {
        format!("{:.2}K", n / 1024.0)
    } else if n < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", n / (1024.0 * 1024.0))
    } else if n < 1024.0f64.powi(4) {
        format!("{:.2}G", n / 1024.0f64.powi(3))
    } else {
        format!("{:.2}T", n / 1024.0f64.powi(4))
    }
}

/// Bytes the allocator has handed out (jemalloc's `stats.allocated`).
pub fn used_memory() -> u64 {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    tikv_jemalloc_ctl::stats::allocated::read()
        .map(|v| v as u64)
        .unwrap_or(0)
}

/// Bytes in the allocator's active pages and resident pages (jemalloc's `stats.active`,
/// `stats.resident`; read after `used_memory` advanced the statistics epoch).
pub fn allocator_active_resident() -> (u64, u64) {
    let active = tikv_jemalloc_ctl::stats::active::read().map_or(0, |v| v as u64);
    let resident = tikv_jemalloc_ctl::stats::resident::read().map_or(0, |v| v as u64);
    (active, resident)
}

/// Resident set size of the process, from /proc.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    pages * page
}

pub fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
        })
        .map_or(0, |kb| kb * 1024)
}

pub fn rusage(who: i32) -> (f64, f64) {
    // SAFETY: getrusage fills a zeroed struct.
    unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut r);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        (tv(r.ru_stime), tv(r.ru_utime))
    }
}

/// The sections `INFO` prints without arguments, and with `all`/`everything`.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    "shards",
];

/// INFO [section ...]: Valkey's sections and field names, summed over the shards.
pub async fn info(shard: Via<'_>, _client: &mut ClientState, argv: &[&[u8]], out: &mut Out) {
    let mut wanted: Vec<String> = Vec::new();
    for a in &argv[1..] {
        let s = String::from_utf8_lossy(super::cstr(a)).to_ascii_lowercase();
        match s.as_str() {
            "default" => wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
            "all" | "everything" => wanted.extend(ALL_SECTIONS.iter().map(|s| s.to_string())),
            _ => wanted.push(s),
        }
    }
    if wanted.is_empty() {
        wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
    }
    let mut reports = Vec::with_capacity(shard.shards());
    for t in 0..shard.shards() {
        reports.push(shard.call(t, gather).await);
    }
    // Replication gathers its own per-shard facts (streams, backlogs, acknowledgements).
    let repl = if wanted.iter().any(|w| w == "replication") {
        crate::repl::info::section(shard).await
    } else {
        String::new()
    };
    let sync = if wanted.iter().any(|w| w == "stats") {
        crate::repl::info::sync_stats(shard).await
    } else {
        crate::repl::SyncStats::default()
    };
    let text = render_info(shard.shard, &reports, &wanted, &repl, sync);
    out.verbatim(text.as_bytes());
}

fn render_info(
    shard: &Shard,
    reports: &[ShardReport],
    wanted: &[String],
    repl: &str,
    sync: crate::repl::SyncStats,
) -> String {
    let config = shard.config();
    let node = &shard.node;
    let mut stats = Stats::new();
    for r in reports {
        stats.merge(&r.stats);
    }
    let now = unix_ms();
    let uptime_s = (now - node.start_unix_ms).max(0) / 1000;
    let clients: usize = reports.iter().map(|r| r.clients).sum();
    let mut s = String::new();
    let section = |name: &str, s: &mut String| -> bool {
        if !wanted.iter().any(|w| w == name) {
            return false;
        }
        if !s.is_empty() {
            s.push_str("\r\n");
        }
        let title = match name {
            "commandstats" => "Commandstats".to_string(),
            "errorstats" => "Errorstats".to_string(),
            "latencystats" => "Latencystats".to_string(),
            "cpu" => "CPU".to_string(),
            other => {
                let mut c = other.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            }
        };
        let _ = write!(s, "# {title}\r\n");
        true
    };
    if section("server", &mut s) {
        // SAFETY: uname fills a zeroed struct.
        let uts = unsafe {
            let mut u: libc::utsname = std::mem::zeroed();
            libc::uname(&mut u);
            let f = |b: &[libc::c_char]| {
                std::ffi::CStr::from_ptr(b.as_ptr())
                    .to_string_lossy()
                    .into_owned()
            };
            format!("{} {} {}", f(&u.sysname), f(&u.release), f(&u.machine))
        };
        let listeners = config.bind.join(",bind=");
        let _ = write!(
            s,
            "redis_version:{REDIS_VERSION}\r\nserver_name:corekey\r\ncorekey_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nserver_mode:standalone\r\nos:{uts}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:io_uring\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime_s}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\navailability_zone:\r\nshards:{}\r\nlistener0:name=tcp,bind={listeners},port={}\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            if std::env::var_os("NOTIFY_SOCKET").is_some() { "systemd" } else { "no" },
            node.run_id,
            node.tcp_port,
            now * 1000,
            uptime_s / 86400,
            (now / 1000) & ((1 << 24) - 1),
            node.executable,
            config.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            node.shards,
            node.tcp_port,
        );
    }
    if section("clients", &mut s) {
        let _ = write!(
            s,
            "connected_clients:{clients}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{}\r\nclient_recent_max_output_buffer:{}\r\nblocked_clients:{}\r\ntracking_clients:0\r\npubsub_clients:{}\r\nwatching_clients:{}\r\nclients_in_timeout_table:0\r\ntotal_watched_keys:{}\r\ntotal_blocking_keys:0\r\ntotal_blocking_keys_on_nokey:0\r\n",
            config.maxclients, stats.client_recent_max_input_buffer, stats.client_recent_max_output_buffer,
            reports.iter().map(|r| r.blocked_clients).sum::<usize>(),
            reports.iter().map(|r| r.pubsub_clients).sum::<usize>(),
            node.watching_clients.load(std::sync::atomic::Ordering::Relaxed),
            reports.iter().map(|r| r.watched_keys).sum::<usize>(),
        );
    }
    if section("memory", &mut s) {
        // corekey's own: memory per element of each value type, estimated from up to
        // MEMORY_SAMPLES random keys per database and shard (key, entry and value bytes
        // over elements; a string is one element).
        let mut per_element = String::new();
        for i in 0..5 {
            let name = reports
                .iter()
                .map(|r| r.per_element[i].0)
                .find(|n| !n.is_empty());
            let bytes: u64 = reports.iter().map(|r| r.per_element[i].1).sum();
            let elements: u64 = reports.iter().map(|r| r.per_element[i].2).sum();
            if let (Some(name), true) = (name, elements > 0) {
                let _ = write!(
                    per_element,
                    "mem_per_element_{name}:{:.2}\r\n",
                    bytes as f64 / elements as f64
                );
            }
        }
        let used = used_memory();
        let rss = rss_bytes();
        let total = total_system_memory();
        let peak = crate::server::note_memory_peak(used);
        let (active, resident) = allocator_active_resident();
        let startup = crate::server::memory_startup().min(used);
        let dataset = used - startup;
        let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        let diff = |a: u64, b: u64| a as i64 - b as i64;
        let clients_mem: usize = reports.iter().map(|r| r.clients_mem).sum();
        let _ = write!(
            s,
            "used_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{startup}\r\nused_memory_startup:{startup}\r\nused_memory_dataset:{dataset}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{used}\r\nallocator_active:{active}\r\nallocator_resident:{resident}\r\nallocator_muzzy:0\r\ntotal_system_memory:{total}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:0\r\nused_memory_vm_eval:0\r\nused_memory_lua_human:0B\r\nused_memory_scripts_eval:0\r\nnumber_of_cached_scripts:0\r\nnumber_of_functions:0\r\nnumber_of_libraries:0\r\nused_memory_vm_functions:0\r\nused_memory_vm_total:0\r\nused_memory_vm_total_human:0B\r\nused_memory_functions:0\r\nused_memory_scripts:0\r\nused_memory_scripts_human:0B\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\nallocator_frag_ratio:{:.2}\r\nallocator_frag_bytes:{}\r\nallocator_rss_ratio:{:.2}\r\nallocator_rss_bytes:{}\r\nrss_overhead_ratio:{:.2}\r\nrss_overhead_bytes:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:0\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:0\r\nmem_clients_normal:{clients_mem}\r\nmem_cluster_links:0\r\nmem_aof_buffer:0\r\nmem_allocator:jemalloc-5.3.0\r\nmem_overhead_db_hashtable_rehashing:0\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n{per_element}",
            human_bytes(used),
            human_bytes(rss),
            human_bytes(peak),
            ratio(used * 100, peak),
            ratio(dataset * 100, used - startup),
            human_bytes(total),
            ratio(active, used),
            diff(active, used),
            ratio(resident, active),
            diff(resident, active),
            ratio(rss, resident),
            diff(rss, resident),
            ratio(rss, used),
            diff(rss, used),
        );
    }
    if section("persistence", &mut s) {
        let _ = write!(
            s,
            "loading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\nrdb_last_bgsave_time_sec:-1\r\nrdb_current_bgsave_time_sec:-1\r\nrdb_saves:0\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:0\r\nrdb_last_load_keys_loaded:0\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:ok\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
            node.start_unix_ms / 1000
        );
    }
    if section("stats", &mut s) {
        let hits: u64 = reports.iter().map(|r| r.hits).sum();
        let misses: u64 = reports.iter().map(|r| r.misses).sum();
        let expired: u64 = reports.iter().map(|r| r.expired).sum();
        let rate =
            |f: fn(&(f64, f64, f64)) -> f64| reports.iter().map(|r| f(&r.rates)).sum::<f64>();
        let ops = rate(|r| r.0).round() as u64;
        let _ = write!(
            s,
            "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{ops}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{expired}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:{}\r\nexpire_cycle_cpu_milliseconds:{}\r\nevicted_keys:0\r\nevicted_clients:0\r\nevicted_scripts:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{hits}\r\nkeyspace_misses:{misses}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:0\r\ntracking_total_items:0\r\ntracking_total_prefixes:0\r\nunexpected_error_replies:{}\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nio_threaded_freed_objects:0\r\nio_threaded_poll_processed:0\r\nio_threaded_total_prefetch_batches:0\r\nio_threaded_total_prefetch_entries:0\r\nclient_query_buffer_limit_disconnections:0\r\nclient_output_buffer_limit_disconnections:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\neventloop_cycles:0\r\neventloop_duration_sum:0\r\neventloop_duration_cmd_sum:0\r\ninstantaneous_eventloop_cycles_per_sec:0\r\ninstantaneous_eventloop_duration_usec:0\r\nacl_access_denied_auth:0\r\nacl_access_denied_cmd:0\r\nacl_access_denied_key:0\r\nacl_access_denied_channel:0\r\n",
            stats.total_connections,
            stats.total_commands,
            stats.net_input_bytes,
            stats.net_output_bytes,
            rate(|r| r.1) / 1024.0,
            rate(|r| r.2) / 1024.0,
            stats.rejected_connections,
            sync.sync_full,
            sync.sync_partial_ok,
            sync.sync_partial_err,
            stats.expire_time_cap_reached,
            stats.expire_cycle_us / 1000,
            union_len(reports.iter().map(|r| r.pubsub_channels.iter())),
            union_len(reports.iter().map(|r| r.pubsub_patterns.iter())),
            union_len(reports.iter().map(|r| r.pubsub_shard_channels.iter())),
            stats.unexpected_error_replies,
            stats.total_error_replies,
            stats.reads_processed,
            stats.writes_processed,
        );
    }
    if section("replication", &mut s) {
        s.push_str(repl);
    }
    if section("cpu", &mut s) {
        let (sys, user) = rusage(libc::RUSAGE_SELF);
        let (csys, cuser) = rusage(libc::RUSAGE_CHILDREN);
        // corekey has no main thread: the shard thread answering INFO stands for it.
        let (tsys, tuser) = rusage(libc::RUSAGE_THREAD);
        let _ = write!(s, "used_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:{csys:.6}\r\nused_cpu_user_children:{cuser:.6}\r\nused_cpu_sys_main_thread:{tsys:.6}\r\nused_cpu_user_main_thread:{tuser:.6}\r\n");
    }
    section("modules", &mut s);
    if section("commandstats", &mut s) {
        for (r, st) in super::registry().all.iter().zip(&stats.commands) {
            if st.calls == 0 && st.rejected == 0 && st.failed == 0 {
                continue;
            }
            let per = if st.calls > 0 {
                st.usec as f64 / st.calls as f64
            } else {
                0.0
            };
            let _ = write!(
                s,
                "cmdstat_{}:calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}\r\n",
                r.fullname, st.calls, st.usec, st.rejected, st.failed
            );
        }
    }
    if section("errorstats", &mut s) {
        let mut errs: Vec<(&Box<str>, &u64)> = stats.errors.iter().collect();
        errs.sort();
        for (code, n) in errs {
            let _ = write!(s, "errorstat_{code}:count={n}\r\n");
        }
    }
    if section("latencystats", &mut s) {
        for (r, h) in super::registry().all.iter().zip(&stats.latency) {
            let Some(h) = h.as_ref().filter(|h| h.total() > 0) else {
                continue;
            };
            let _ = write!(s, "latency_percentiles_usec_{}:", r.fullname);
            for (i, p) in config.latency_tracking_info_percentiles.iter().enumerate() {
                let v = h.value_at(p.parse().unwrap_or(0.0)) as f64 / 1000.0;
                let _ = write!(s, "{}p{p}={v:.3}", if i > 0 { "," } else { "" });
            }
            s.push_str("\r\n");
        }
    }
    if section("cluster", &mut s) {
        let enabled = u8::from(shard.cluster.enabled());
        let _ = write!(s, "cluster_enabled:{enabled}\r\n");
    }
    if section("keyspace", &mut s) {
        let mut dbs: std::collections::BTreeMap<usize, (usize, usize, i64, usize)> =
            std::collections::BTreeMap::new();
        for r in reports {
            for &(db, keys, expires, avg) in &r.keys {
                let e = dbs.entry(db).or_default();
                e.0 += keys;
                e.1 += expires;
                if avg > 0 {
                    e.2 += avg;
                    e.3 += 1;
                }
            }
        }
        for (db, (keys, expires, avg_sum, avg_n)) in dbs {
            let avg = if avg_n > 0 { avg_sum / avg_n as i64 } else { 0 };
            let _ = write!(s, "db{db}:keys={keys},expires={expires},avg_ttl={avg}\r\n");
        }
    }
    if section("shards", &mut s) {
        for (i, r) in reports.iter().enumerate() {
            let keys: usize = r.keys.iter().map(|k| k.1).sum();
            let calls: u64 = r.stats.commands.iter().map(|c: &CmdStat| c.calls).sum();
            let _ = write!(
                s,
                "shard{i}:clients={},keys={keys},commands={calls},forwarded_commands={},hops={},locked={},queue_depth={},net_input_bytes={},net_output_bytes={},used_cpu_sys={:.6},used_cpu_user={:.6}\r\n",
                r.clients,
                r.stats.forwarded_commands,
                r.stats.hops,
                u8::from(r.locked),
                r.queue_depths.iter().sum::<usize>(),
                r.stats.net_input_bytes,
                r.stats.net_output_bytes,
                r.cpu.0,
                r.cpu.1,
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{config_matches, config_set_plan};

    /// CONFIG GET answers an exact name under the client's spelling, once, and a pattern under
    /// the directive's own names, as Valkey's `configGetCommand`.
    #[test]
    fn config_get_names() {
        let names = |pats: &[&[u8]]| -> Vec<Vec<u8>> {
            config_matches(pats)
                .into_iter()
                .map(|(n, _)| n.to_vec())
                .collect()
        };
        assert_eq!(names(&[b"TIMEOUT", b"timeout"]), [b"TIMEOUT".to_vec()]);
        assert_eq!(names(&[b"TimeOut", b"time*"]), [b"TimeOut".to_vec()]);
        assert_eq!(names(&[b"TIME*"]), [b"timeout".to_vec()]);
        assert_eq!(names(&[b"nosuch"]), Vec::<Vec<u8>>::new());
    }

    /// CONFIG SET checks every name before any value: an unknown name anywhere wins over a bad
    /// value before it; the first immutable or repeated name fails the command.
    #[test]
    fn config_set_names_first() {
        let err = |args: &[&[u8]]| {
            config_set_plan(args)
                .err()
                .map(|e| String::from_utf8(e).unwrap())
        };
        assert_eq!(
            err(&[b"timeout", b"abc", b"nosuch", b"1"]).as_deref(),
            Some("Unknown option or number of arguments for CONFIG SET - 'nosuch'")
        );
        assert_eq!(
            err(&[b"timeout", b"abc", b"databases", b"5", b"nosuch", b"1"]).as_deref(),
            Some("CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config")
        );
        assert_eq!(
            err(&[b"timeout", b"1", b"TIMEOUT", b"2"]).as_deref(),
            Some(
                "CONFIG SET failed (possibly related to argument 'TIMEOUT') - duplicate parameter"
            )
        );
        assert_eq!(
            config_set_plan(&[b"no\xff", b"1"]).err(),
            Some(b"Unknown option or number of arguments for CONFIG SET - 'no\xff'".to_vec())
        );
        assert!(config_set_plan(&[b"timeout", b"abc"]).is_ok());
    }
}
