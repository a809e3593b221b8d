//! The generic (keyspace) family: DEL, EXISTS, TYPE, the EXPIRE and TTL commands, PERSIST,
//! RENAME, COPY, MOVE, TOUCH, OBJECT, and the node-wide KEYS, SCAN and RANDOMKEY.
//!
//! Replies and errors follow Valkey 8's `db.c`, `expire.c` and `object.c`. The per-shard
//! steps of the multi-key commands (DEL, EXISTS, TOUCH, RENAME, COPY) are public so that
//! `multi.rs` can run them on each shard when the keys are spread out.

use super::connection::{help_reply, int32_arg};
use super::multi::Via;
use super::spec::{acl, flag, key_at, keyflag as kf, keys_from, CommandSpec, Exec, Group};
use super::{int_arg, multi, opt_is, KeyCtx, NodeCmd, ERR_SYNTAX};
use crate::keyspace::{lru_clock, Entry, Keyspace, ScanFilter, SmallBytes, StrVal, Value};
use crate::resp::Out;
use crate::session::ClientState;
use crate::shard::unix_ms;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        keys: &[keys_from(1, -1, 1, kf::RM | kf::DELETE)],
        exec: Exec::Key(del),
        multi: Some(multi::count),
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        ..CommandSpec::new("del", -2, flag::WRITE, acl::KEYSPACE, Group::Generic, "1.0.0",
            "Deletes one or more keys.", "O(N) where N is the number of keys that will be removed.", "key:key...")
    },
    CommandSpec {
        keys: &[keys_from(1, -1, 1, kf::RM | kf::DELETE)],
        exec: Exec::Key(del),
        multi: Some(multi::count),
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        ..CommandSpec::new("unlink", -2, flag::WRITE | flag::FAST, acl::KEYSPACE, Group::Generic, "4.0.0",
            "Asynchronously deletes one or more keys.", "O(1) for each key removed regardless of its size.", "key:key...")
    },
    CommandSpec {
        keys: &[keys_from(1, -1, 1, kf::RO)],
        exec: Exec::Key(exists),
        multi: Some(multi::count),
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        history: &[("3.0.3", "Accepts multiple `key` arguments.")],
        ..CommandSpec::new("exists", -2, flag::READONLY | flag::FAST, acl::KEYSPACE, Group::Generic, "1.0.0",
            "Determines whether one or more keys exist.", "O(N) where N is the number of keys to check.", "key:key...")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO)],
        exec: Exec::Key(type_cmd),
        ..CommandSpec::new("type", 2, flag::READONLY | flag::FAST, acl::KEYSPACE, Group::Generic, "1.0.0",
            "Determines the type of value stored at a key.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::UPDATE)],
        exec: Exec::Key(expire),
        history: &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")],
        ..CommandSpec::new("expire", -3, flag::WRITE | flag::FAST, acl::KEYSPACE, Group::Generic, "1.0.0",
            "Sets the expiration time of a key in seconds.", "O(1)", "key:key seconds:integer [condition=NX|XX|GT|LT]{since=7.0.0}")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::UPDATE)],
        exec: Exec::Key(pexpire),
        history: &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")],
        ..CommandSpec::new("pexpire", -3, flag::WRITE | flag::FAST, acl::KEYSPACE, Group::Generic, "2.6.0",
            "Sets the expiration time of a key in milliseconds.", "O(1)", "key:key milliseconds:integer [condition=NX|XX|GT|LT]{since=7.0.0}")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::UPDATE)],
        exec: Exec::Key(expireat),
        history: &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")],
        ..CommandSpec::new("expireat", -3, flag::WRITE | flag::FAST, acl::KEYSPACE, Group::Generic, "1.2.0",
            "Sets the expiration time of a key to a Unix timestamp.", "O(1)",
            "key:key unix-time-seconds:unix-time [condition=NX|XX|GT|LT]{since=7.0.0}")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::UPDATE)],
        exec: Exec::Key(pexpireat),
        history: &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")],
        ..CommandSpec::new("pexpireat", -3, flag::WRITE | flag::FAST, acl::KEYSPACE, Group::Generic, "2.6.0",
            "Sets the expiration time of a key to a Unix milliseconds timestamp.", "O(1)",
            "key:key unix-time-milliseconds:unix-time [condition=NX|XX|GT|LT]{since=7.0.0}")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO | kf::ACCESS)],
        exec: Exec::Key(ttl),
        tips: &["nondeterministic_output"],
        history: &[("2.8.0", "Added the -2 reply.")],
        ..CommandSpec::new("ttl", 2, flag::READONLY | flag::FAST, acl::KEYSPACE, Group::Generic, "1.0.0",
            "Returns the expiration time in seconds of a key.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO | kf::ACCESS)],
        exec: Exec::Key(pttl),
        tips: &["nondeterministic_output"],
        history: &[("2.8.0", "Added the -2 reply.")],
        ..CommandSpec::new("pttl", 2, flag::READONLY | flag::FAST, acl::KEYSPACE, Group::Generic, "2.6.0",
            "Returns the expiration time in milliseconds of a key.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO | kf::ACCESS)],
        exec: Exec::Key(expiretime),
        ..CommandSpec::new("expiretime", 2, flag::READONLY | flag::FAST, acl::KEYSPACE, Group::Generic, "7.0.0",
            "Returns the expiration time of a key as a Unix timestamp.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO | kf::ACCESS)],
        exec: Exec::Key(pexpiretime),
        ..CommandSpec::new("pexpiretime", 2, flag::READONLY | flag::FAST, acl::KEYSPACE, Group::Generic, "7.0.0",
            "Returns the expiration time of a key as a Unix milliseconds timestamp.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::UPDATE)],
        exec: Exec::Key(persist),
        ..CommandSpec::new("persist", 2, flag::WRITE | flag::FAST, acl::KEYSPACE, Group::Generic, "2.2.0",
            "Removes the expiration time of a key.", "O(1)", "key:key")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::Keys),
        tips: &["request_policy:all_shards", "nondeterministic_output_order"],
        ..CommandSpec::new("keys", 2, flag::READONLY, acl::KEYSPACE | acl::DANGEROUS, Group::Generic, "1.0.0",
            "Returns all key names that match a pattern.", "O(N) with N being the number of keys in the database.", "pattern:pattern")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::Scan),
        tips: &["nondeterministic_output", "request_policy:special", "response_policy:special"],
        history: &[("6.0.0", "Added the `TYPE` subcommand.")],
        ..CommandSpec::new("scan", -2, flag::READONLY | flag::TOUCHES_ARBITRARY_KEYS, acl::KEYSPACE, Group::Generic, "2.8.0",
            "Iterates over the key names in the database.",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
            "cursor:integer [MATCH pattern:pattern] [COUNT count:integer] [TYPE type:string]{since=6.0.0}")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::RandomKey),
        tips: &["request_policy:all_shards", "response_policy:special", "nondeterministic_output"],
        ..CommandSpec::new("randomkey", 1, flag::READONLY | flag::TOUCHES_ARBITRARY_KEYS, acl::KEYSPACE, Group::Generic, "1.0.0",
            "Returns a random key name from the database.", "O(1)", "")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::ACCESS | kf::DELETE), key_at(2, kf::OW | kf::UPDATE)],
        exec: Exec::Key(rename),
        multi: Some(multi::rename),
        ..CommandSpec::new("rename", 3, flag::WRITE, acl::KEYSPACE, Group::Generic, "1.0.0",
            "Renames a key and overwrites the destination.", "O(1)", "key:key newkey:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::ACCESS | kf::DELETE), key_at(2, kf::OW | kf::INSERT)],
        exec: Exec::Key(renamenx),
        multi: Some(multi::rename),
        history: &[("3.2.0", "The command no longer returns an error when source and destination names are the same.")],
        ..CommandSpec::new("renamenx", 3, flag::WRITE | flag::FAST, acl::KEYSPACE, Group::Generic, "1.0.0",
            "Renames a key only when the target key name doesn't exist.", "O(1)", "key:key newkey:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO | kf::ACCESS), key_at(2, kf::OW | kf::UPDATE)],
        exec: Exec::Key(copy),
        multi: Some(multi::copy),
        ..CommandSpec::new("copy", -3, flag::WRITE | flag::DENYOOM, acl::KEYSPACE, Group::Generic, "6.2.0",
            "Copies the value of a key to a new key.", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
            "source:key destination:key [DB destination-db:integer] [REPLACE]")
    },
    CommandSpec {
        keys: &[keys_from(1, -1, 1, kf::RO)],
        exec: Exec::Key(touch),
        multi: Some(multi::count),
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        ..CommandSpec::new("touch", -2, flag::READONLY | flag::FAST, acl::KEYSPACE, Group::Generic, "3.2.1",
            "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
            "O(N) where N is the number of keys that will be touched.", "key:key...")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::ACCESS | kf::UPDATE)],
        exec: Exec::Key(move_cmd),
        ..CommandSpec::new("move", 3, flag::WRITE | flag::FAST, acl::KEYSPACE, Group::Generic, "1.0.0",
            "Moves a key to another database.", "O(1)", "key:key db:integer")
    },
    CommandSpec {
        subcommands: OBJECT_SUBCOMMANDS,
        ..CommandSpec::new("object", -2, 0, 0, Group::Generic, "2.2.3",
            "A container for object introspection commands.", "Depends on subcommand.", "")
    },
];

static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        keys: &[key_at(2, kf::RO)],
        exec: Exec::Key(object_encoding),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new(
            "encoding",
            3,
            flag::READONLY,
            acl::KEYSPACE,
            Group::Generic,
            "2.2.3",
            "Returns the internal encoding of an object.",
            "O(1)",
            "key:key",
        )
    },
    CommandSpec {
        keys: &[key_at(2, kf::RO)],
        exec: Exec::Key(object_freq),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new(
            "freq",
            3,
            flag::READONLY,
            acl::KEYSPACE,
            Group::Generic,
            "4.0.0",
            "Returns the logarithmic access frequency counter of an object.",
            "O(1)",
            "key:key",
        )
    },
    CommandSpec {
        keys: &[key_at(2, kf::RO)],
        exec: Exec::Key(object_idletime),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new(
            "idletime",
            3,
            flag::READONLY,
            acl::KEYSPACE,
            Group::Generic,
            "2.2.3",
            "Returns the time since the last access to an object.",
            "O(1)",
            "key:key",
        )
    },
    CommandSpec {
        keys: &[key_at(2, kf::RO)],
        exec: Exec::Key(object_refcount),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new(
            "refcount",
            3,
            flag::READONLY,
            acl::KEYSPACE,
            Group::Generic,
            "2.2.3",
            "Returns the reference count of a value of a key.",
            "O(1)",
            "key:key",
        )
    },
    CommandSpec {
        exec: Exec::Conn(object_help),
        ..CommandSpec::new(
            "help",
            2,
            flag::LOADING | flag::STALE,
            acl::KEYSPACE,
            Group::Generic,
            "6.2.0",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        )
    },
];

/// Deletes the keys (on this shard); returns how many existed.
pub fn del_keys(ks: &mut Keyspace, db: usize, keys: &[&[u8]], now_ms: i64) -> i64 {
    keys.iter().filter(|k| ks.dbs[db].delete(k, now_ms)).count() as i64
}

/// Counts the keys that exist, duplicates included (EXISTS); counts hits and misses.
pub fn exists_count(ks: &mut Keyspace, db: usize, keys: &[&[u8]], now_ms: i64) -> i64 {
    let Keyspace { dbs, stats, .. } = ks;
    let mut n = 0;
    for k in keys {
        if dbs[db].get(k, now_ms).is_some() {
            n += 1;
            stats.hits += 1;
        } else {
            stats.misses += 1;
        }
    }
    n
}

/// Touches the keys (updating their access time); returns how many exist.
pub fn touch_count(ks: &mut Keyspace, db: usize, keys: &[&[u8]], now_ms: i64) -> i64 {
    let Keyspace { dbs, stats, .. } = ks;
    keys.iter()
        .filter(|k| dbs[db].lookup_read(stats, k, now_ms).is_some())
        .count() as i64
}

fn del(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let n = del_keys(ctx.ks, ctx.db, &argv[1..], ctx.now_ms);
    ctx.out.int(n);
}

fn exists(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let n = exists_count(ctx.ks, ctx.db, &argv[1..], ctx.now_ms);
    ctx.out.int(n);
}

fn touch(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let n = touch_count(ctx.ks, ctx.db, &argv[1..], ctx.now_ms);
    ctx.out.int(n);
}

fn type_cmd(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match ctx.peek_out(argv[1]) {
        (Some(e), out) => out.simple(e.value.type_name()),
        (None, out) => out.simple("none"),
    }
}

/// EXPIRE options.
#[derive(Debug, Default, Clone, Copy)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_flags(out: &mut Out, argv: &[&[u8]]) -> Option<ExpireFlags> {
    let mut f = ExpireFlags::default();
    for &opt in &argv[3..] {
        if opt_is(opt, "nx") {
            f.nx = true;
        } else if opt_is(opt, "xx") {
            f.xx = true;
        } else if opt_is(opt, "gt") {
            f.gt = true;
        } else if opt_is(opt, "lt") {
            f.lt = true;
        } else {
            out.err(super::quoted_err("Unsupported option ", opt, ""));
            return None;
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        out.err("NX and XX, GT or LT options at the same time are not compatible");
        return None;
    }
    if f.gt && f.lt {
        out.err("GT and LT options at the same time are not compatible");
        return None;
    }
    Some(f)
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (Valkey's `expireGenericCommand`).
fn expire_generic(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], relative: bool, seconds: bool, name: &str) {
    let Some(f) = parse_expire_flags(ctx.out, argv) else {
        return;
    };
    let Some(mut when) = int_arg(ctx.out, argv[2]) else {
        return;
    };
    let bad = |out: &mut Out| out.err(format!("invalid expire time in '{name}' command"));
    if seconds {
        match when.checked_mul(1000) {
            Some(ms) => when = ms,
            None => {
                bad(ctx.out);
                return;
            }
        }
    }
    let base = if relative { ctx.now_ms } else { 0 };
    if when > i64::MAX - base {
        bad(ctx.out);
        return;
    }
    when += base;
    let key = argv[1];
    if ctx.write(key).is_none() {
        ctx.out.int(0);
        return;
    }
    let current = ctx.db().expire_of(key);
    if (f.nx && current.is_some())
        || (f.xx && current.is_none())
        || (f.gt && current.is_none_or(|c| when <= c))
        || (f.lt && current.is_some_and(|c| when >= c))
    {
        ctx.out.int(0);
        return;
    }
    if when <= ctx.now_ms {
        ctx.db().remove(key);
    } else {
        ctx.db().set_expire(key, when);
    }
    ctx.out.int(1);
}

fn expire(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    expire_generic(ctx, argv, true, true, "expire");
}

fn pexpire(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    expire_generic(ctx, argv, true, false, "pexpire");
}

fn expireat(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    expire_generic(ctx, argv, false, true, "expireat");
}

fn pexpireat(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    expire_generic(ctx, argv, false, false, "pexpireat");
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME (Valkey's `ttlGenericCommand`).
fn ttl_generic(ctx: &mut KeyCtx<'_>, key: &[u8], ms: bool, absolute: bool) {
    let now = ctx.now_ms;
    if ctx.peek_out(key).0.is_none() {
        ctx.out.int(-2);
        return;
    }
    let Some(at) = ctx.db().expire_of(key) else {
        ctx.out.int(-1);
        return;
    };
    ctx.out.int(ttl_reply(at, now, ms, absolute));
}

/// The number TTL, PTTL, EXPIRETIME or PEXPIRETIME reply for a deadline `at`. Seconds are
/// rounded to the nearest; near `i64::MAX` (PEXPIREAT accepts it) the rounding must not
/// overflow, and Valkey's build gives the exact quotient there, so that is what we give.
fn ttl_reply(at: i64, now_ms: i64, ms: bool, absolute: bool) -> i64 {
    let t = if absolute {
        at
    } else {
        at.saturating_sub(now_ms)
    }
    .max(0);
    if ms {
        t
    } else {
        // 0 <= t <= i64::MAX, so the sum fits in u64 and the quotient in i64.
        ((t as u64 + 500) / 1000) as i64
    }
}

fn ttl(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    ttl_generic(ctx, argv[1], false, false);
}

fn pttl(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    ttl_generic(ctx, argv[1], true, false);
}

fn expiretime(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    ttl_generic(ctx, argv[1], false, true);
}

fn pexpiretime(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    ttl_generic(ctx, argv[1], true, true);
}

fn persist(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let key = argv[1];
    if ctx.write(key).is_none() {
        ctx.out.int(0);
        return;
    }
    let had = ctx.db().persist(key);
    ctx.out.int(i64::from(had));
}

/// Why a rename could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameRefusal {
    NoSuchKey,
}

/// Takes the source of a rename out of this shard: its entry and deadline.
pub fn rename_take(
    ks: &mut Keyspace,
    db: usize,
    src: &[u8],
    now_ms: i64,
) -> Result<(Entry, Option<i64>), RenameRefusal> {
    if ks.dbs[db].lookup_write(src, now_ms).is_none() {
        return Err(RenameRefusal::NoSuchKey);
    }
    ks.dbs[db].remove(src).ok_or(RenameRefusal::NoSuchKey)
}

/// Whether `key` exists (a write lookup, which expires a stale key first).
pub fn exists_for_write(ks: &mut Keyspace, db: usize, key: &[u8], now_ms: i64) -> bool {
    ks.dbs[db].lookup_write(key, now_ms).is_some()
}

/// Puts the renamed (or copied) entry at `dst`, replacing whatever was there.
pub fn rename_put(
    ks: &mut Keyspace,
    db: usize,
    dst: &[u8],
    entry: Entry,
    expire_at: Option<i64>,
    now_ms: i64,
) {
    let d = &mut ks.dbs[db];
    if d.lookup_write(dst, now_ms).is_some() {
        d.remove(dst);
    }
    d.insert_entry(dst, entry, expire_at);
}

/// RENAME and RENAMENX with both keys on this shard (Valkey's `renameGenericCommand`).
fn rename_generic(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], nx: bool) {
    let (src, dst) = (argv[1], argv[2]);
    let now = ctx.now_ms;
    if ctx.write(src).is_none() {
        ctx.out.err("no such key");
        return;
    }
    if src == dst {
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return;
    }
    if nx && ctx.write(dst).is_some() {
        ctx.out.int(0);
        return;
    }
    let Ok((entry, at)) = rename_take(ctx.ks, ctx.db, src, now) else {
        return;
    };
    rename_put(ctx.ks, ctx.db, dst, entry, at, now);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
}

fn rename(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    rename_generic(ctx, argv, false);
}

fn renamenx(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    rename_generic(ctx, argv, true);
}

/// COPY's options.
#[derive(Debug, Clone, Copy)]
pub struct CopyOpts {
    pub dst_db: usize,
    pub replace: bool,
}

/// Parses COPY's options; `None` after an error reply.
pub fn copy_opts(
    out: &mut Out,
    argv: &[&[u8]],
    src_db: usize,
    databases: usize,
) -> Option<CopyOpts> {
    let mut o = CopyOpts {
        dst_db: src_db,
        replace: false,
    };
    let mut j = 3;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if opt_is(argv[j], "replace") {
            o.replace = true;
        } else if opt_is(argv[j], "db") && more >= 1 {
            let id = int32_arg(out, argv[j + 1])?;
            if id < 0 || id as usize >= databases {
                out.err("DB index is out of range");
                return None;
            }
            o.dst_db = id as usize;
            j += 1;
        } else {
            out.err(ERR_SYNTAX);
            return None;
        }
        j += 1;
    }
    if o.dst_db == src_db && argv[1] == argv[2] {
        out.err("source and destination objects are the same");
        return None;
    }
    Some(o)
}

/// A copy of `src`'s entry and deadline, if it exists (a read lookup).
pub fn copy_read(
    ks: &mut Keyspace,
    db: usize,
    src: &[u8],
    now_ms: i64,
) -> Option<(Entry, Option<i64>)> {
    let Keyspace { dbs, stats, .. } = ks;
    let e = dbs[db].lookup_read(stats, src, now_ms)?.clone();
    let at = dbs[db].expire_of(src);
    Some((e, at))
}

/// Writes a copy at `dst` unless it exists and `replace` is off; returns whether it wrote.
pub fn copy_write(
    ks: &mut Keyspace,
    db: usize,
    dst: &[u8],
    mut entry: Entry,
    at: Option<i64>,
    replace: bool,
    now_ms: i64,
) -> bool {
    if ks.dbs[db].lookup_write(dst, now_ms).is_some() {
        if !replace {
            return false;
        }
        ks.dbs[db].remove(dst);
    }
    // Valkey duplicates the value: a copied small integer is no longer a shared object.
    entry.unshared = true;
    entry.lru = lru_clock(now_ms);
    ks.dbs[db].insert_entry(dst, entry, at);
    true
}

fn copy(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let databases = ctx.ks.dbs.len();
    let Some(o) = copy_opts(ctx.out, argv, ctx.db, databases) else {
        return;
    };
    let now = ctx.now_ms;
    let Some((entry, at)) = copy_read(ctx.ks, ctx.db, argv[1], now) else {
        ctx.out.int(0);
        return;
    };
    let wrote = copy_write(ctx.ks, o.dst_db, argv[2], entry, at, o.replace, now);
    ctx.out.int(i64::from(wrote));
}

fn move_cmd(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    if ctx.config.cluster.enabled {
        ctx.out.err("MOVE is not allowed in cluster mode");
        return;
    }
    let key = argv[1];
    let Some(dst) = int32_arg(ctx.out, argv[2]) else {
        return;
    };
    if dst < 0 || dst as usize >= ctx.ks.dbs.len() {
        ctx.out.err("DB index is out of range");
        return;
    }
    let dst = dst as usize;
    if dst == ctx.db {
        ctx.out.err("source and destination objects are the same");
        return;
    }
    let now = ctx.now_ms;
    if ctx.write(key).is_none() {
        ctx.out.int(0);
        return;
    }
    if ctx.ks.dbs[dst].lookup_write(key, now).is_some() {
        ctx.out.int(0);
        return;
    }
    let Some((entry, at)) = ctx.db().remove(key) else {
        return;
    };
    ctx.ks.dbs[dst].insert_entry(key, entry, at);
    ctx.out.int(1);
}

// OBJECT looks keys up without touching them (Valkey's `objectCommandLookup`): asking
// about a key must not change the idle time it reports.

fn object_encoding(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match ctx.peek_out(argv[2]) {
        (Some(e), out) => out.bulk(e.value.encoding().as_bytes()),
        (None, out) => out.null(),
    }
}

fn object_freq(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match ctx.peek_out(argv[2]) {
        (Some(_), out) => out.err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
        (None, out) => out.null(),
    }
}

fn object_idletime(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let now = ctx.now_ms;
    match ctx.peek_out(argv[2]) {
        (Some(e), out) => out.int(i64::from(lru_clock(now).wrapping_sub(e.lru))),
        (None, out) => out.null(),
    }
}

fn object_refcount(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match ctx.peek_out(argv[2]) {
        (Some(e), out) => {
            let shared = matches!(e.value, Value::Str(StrVal::Int(n)) if (0..10000).contains(&n))
                && !e.unshared;
            out.int(if shared { i64::from(i32::MAX) } else { 1 });
        }
        (None, out) => out.null(),
    }
}

fn object_help(ctx: &mut super::ConnCtx<'_>, argv: &[&[u8]]) {
    help_reply(
        ctx.out,
        argv[0],
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
}

/// KEYS pattern: every shard's matching keys, read while all shards are locked (so a
/// concurrent cross-shard RENAME is seen entirely or not at all).
pub async fn keys(shard: Via<'_>, client: &mut ClientState, argv: &[&[u8]], out: &mut Out) {
    let pattern = argv[1].to_vec();
    let db = client.db;
    let txn = shard.lock(0..shard.shards()).await;
    let mut all: Vec<SmallBytes> = Vec::new();
    for &t in txn.shards() {
        let pattern = pattern.clone();
        let mut part = txn
            .run(t, move |s| {
                let now = unix_ms();
                let mut v = Vec::new();
                let filter = ScanFilter {
                    pattern: Some(&pattern),
                    type_name: None,
                };
                s.ks.borrow_mut().dbs[db].keys_matching(&filter, now, &mut v);
                v
            })
            .await;
        all.append(&mut part);
    }
    drop(txn);
    out.array(all.len());
    for k in &all {
        out.bulk(k);
    }
}

/// Valkey's `string2ull` (via `strtoull` when `string2ll` fails): the SCAN cursor parser.
pub fn parse_cursor(s: &[u8]) -> Option<u64> {
    if let Some(v) = crate::util::parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Bits of the cursor that hold the slot; the rest hold the position in the slot's table.
const CURSOR_SLOT_BITS: u32 = 14;

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. The cursor packs (slot, position);
/// a call starts on the shard owning the cursor's slot (see `keyspace/scan.rs`) and, when that
/// shard runs out of keys before COUNT, goes on with the next shards, one hop each.
pub async fn scan(shard: Via<'_>, client: &mut ClientState, argv: &[&[u8]], out: &mut Out) {
    let Some(cursor) = parse_cursor(argv[1]) else {
        out.err("invalid cursor");
        return;
    };
    let mut count: usize = 10;
    let mut pattern: Option<Vec<u8>> = None;
    let mut type_name: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - i;
        let opt = argv[i];
        if opt_is(opt, "count") && more >= 2 {
            let Some(c) = int_arg(out, argv[i + 1]) else {
                return;
            };
            if c < 1 {
                out.err(ERR_SYNTAX);
                return;
            }
            count = usize::try_from(c).unwrap_or(usize::MAX);
            i += 2;
        } else if opt_is(opt, "match") && more >= 2 {
            pattern = Some(argv[i + 1].to_vec());
            i += 2;
        } else if opt_is(opt, "type") && more >= 2 {
            let t = argv[i + 1];
            let Some(&name) = ["string", "list", "set", "zset", "hash", "stream"]
                .iter()
                .find(|n| opt_is(t, n))
            else {
                out.err(super::quoted_err("unknown type name '", t, "'"));
                return;
            };
            type_name = Some(name.as_bytes().to_vec());
            i += 2;
        } else if opt_is(opt, "novalues") {
            out.err("NOVALUES option can only be used in HSCAN");
            return;
        } else if opt_is(opt, "noscores") {
            out.err("NOSCORES option can only be used in ZSCAN");
            return;
        } else {
            out.err(ERR_SYNTAX);
            return;
        }
    }
    let mut slot = (cursor & ((1 << CURSOR_SLOT_BITS) - 1)) as usize;
    let mut pos = (cursor >> CURSOR_SLOT_BITS) as usize;
    let shards = shard.shards();
    let db = client.db;
    let mut keys = Vec::new();
    let mut examined = 0;
    // A shard that runs out of keys before COUNT is reached hands over to the next one in the
    // same call, so that a small keyspace comes back whole with cursor 0, as from Valkey.
    let next = loop {
        let target = slot % shards;
        let budget = count.saturating_sub(examined).max(1);
        let (pattern, type_name) = (pattern.clone(), type_name.clone());
        let (mut part, stop, n) = shard
            .call(target, move |s| {
                let now = unix_ms();
                let filter = ScanFilter {
                    pattern: pattern.as_deref(),
                    type_name: type_name.as_deref(),
                };
                let mut ks = s.ks.borrow_mut();
                scan_shard(&mut ks, db, shards, slot, pos, budget, &filter, now)
            })
            .await;
        keys.append(&mut part);
        examined += n;
        match stop {
            ScanStop::At(cursor) => break cursor,
            ScanStop::ShardDone if target + 1 >= shards => break 0,
            // The next shard's first slot is its own index.
            ScanStop::ShardDone if examined >= count => break (target + 1) as u64,
            ScanStop::ShardDone => {
                slot = target + 1;
                pos = 0;
            }
        }
    };
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(keys.len());
    for k in &keys {
        out.bulk(k);
    }
}

/// Where one shard's part of a SCAN call stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanStop {
    /// COUNT was reached: the call's cursor, inside this shard.
    At(u64),
    /// Every slot of this shard has been visited.
    ShardDone,
}

/// One shard's part of a SCAN call: from (slot, pos), until `count` keys are examined or the
/// shard's slots run out. Returns the keys kept, where it stopped and how many it examined.
#[allow(clippy::too_many_arguments)]
fn scan_shard(
    ks: &mut Keyspace,
    db: usize,
    shards: usize,
    slot: usize,
    pos: usize,
    count: usize,
    filter: &ScanFilter<'_>,
    now_ms: i64,
) -> (Vec<SmallBytes>, ScanStop, usize) {
    use crate::keyspace::TableCursor;
    let d = &mut ks.dbs[db];
    let mut keys = Vec::new();
    let mut examined = 0;
    let mut local = slot / shards;
    let mut from = pos;
    let tables = d.table_count();
    while local < tables {
        let (next, n) = d.scan_table(
            local,
            from,
            count.saturating_sub(examined).max(1),
            filter,
            now_ms,
            &mut keys,
        );
        examined += n;
        match next {
            TableCursor::At(p) => {
                return (
                    keys,
                    ScanStop::At(encode_cursor(d.slot_of_local(local), p)),
                    examined,
                );
            }
            TableCursor::Done => {
                local += 1;
                from = 0;
            }
        }
        if examined >= count && local < tables {
            return (
                keys,
                ScanStop::At(encode_cursor(d.slot_of_local(local), 0)),
                examined,
            );
        }
    }
    (keys, ScanStop::ShardDone, examined)
}

fn encode_cursor(slot: usize, pos: usize) -> u64 {
    ((pos as u64) << CURSOR_SLOT_BITS) | slot as u64
}

/// RANDOMKEY: a shard chosen in proportion to its key count, then a random key there.
pub async fn randomkey(shard: Via<'_>, client: &mut ClientState, out: &mut Out) {
    let db = client.db;
    let shards = shard.shards();
    // A few rounds: keys may vanish between counting and picking.
    for _ in 0..8 {
        let mut counts = Vec::with_capacity(shards);
        for t in 0..shards {
            counts.push(shard.call(t, move |s| s.ks.borrow().dbs[db].len()).await);
        }
        let total: usize = counts.iter().sum();
        if total == 0 {
            out.null();
            return;
        }
        let mut r = (shard.ks.borrow_mut().random() % total as u64) as usize;
        let mut target = 0;
        for (t, &c) in counts.iter().enumerate() {
            if r < c {
                target = t;
                break;
            }
            r -= c;
        }
        let key = shard
            .call(target, move |s| {
                let now = unix_ms();
                let mut ks = s.ks.borrow_mut();
                let mut seed = ks.random();
                let rng = move || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                };
                ks.dbs[db].random_key(rng, now, 100)
            })
            .await;
        if let Some(k) = key {
            out.bulk(&k);
            return;
        }
    }
    out.null();
}

#[cfg(test)]
mod tests {
    use super::{parse_cursor, parse_expire_flags, scan_shard, ttl_reply, ScanStop};
    use crate::keyspace::{Keyspace, ScanFilter, StrVal, Value};
    use crate::resp::Out;

    /// TTL, TYPE and OBJECT read a key without touching its access time (Valkey's
    /// LOOKUP_NOTOUCH), but still count keyspace hits; a real read then resets the idle time.
    #[test]
    fn lookups_without_touch() {
        use super::{object_encoding, object_idletime, ttl, type_cmd};
        use crate::commands::{KeyCtx, KeyFn};
        let mut ks = Keyspace::new(0, 1, 16);
        ks.dbs[0].set(b"k", Value::Str(StrVal::created(b"v")), 1_000, false);
        let config = crate::config::Config::defaults();
        let mut out = Out::new(false);
        let run = |ks: &mut Keyspace, f: KeyFn, argv: &[&[u8]], out: &mut Out| {
            out.buf.clear();
            let mut ctx = KeyCtx {
                ks,
                db: 0,
                now_ms: 5_000,
                out,
                config: &config,
            };
            f(&mut ctx, argv);
        };
        run(&mut ks, ttl, &[b"ttl", b"k"], &mut out);
        run(&mut ks, type_cmd, &[b"type", b"k"], &mut out);
        run(
            &mut ks,
            object_encoding,
            &[b"object", b"encoding", b"k"],
            &mut out,
        );
        run(
            &mut ks,
            object_idletime,
            &[b"object", b"idletime", b"k"],
            &mut out,
        );
        assert_eq!(out.buf, b":4\r\n");
        assert_eq!(ks.stats.hits, 4);
        let crate::commands::Exec::Key(get) = crate::commands::string::COMMANDS[0].exec else {
            panic!("GET is a key command");
        };
        run(&mut ks, get, &[b"get", b"k"], &mut out);
        run(
            &mut ks,
            object_idletime,
            &[b"object", b"idletime", b"k"],
            &mut out,
        );
        assert_eq!(out.buf, b":0\r\n");
    }

    /// TTL rounding does not overflow at the largest deadline PEXPIREAT accepts, and gives what
    /// Valkey gives there (the exact rounded quotient); past deadlines read as 0.
    #[test]
    fn ttl_rounding() {
        assert_eq!(ttl_reply(i64::MAX, 0, false, true), 9_223_372_036_854_776);
        assert_eq!(ttl_reply(i64::MAX, 0, true, true), i64::MAX);
        assert_eq!(ttl_reply(10_499, 0, false, false), 10);
        assert_eq!(ttl_reply(10_500, 0, false, false), 11);
        assert_eq!(ttl_reply(5, 10, true, false), 0);
        assert_eq!(ttl_reply(i64::MAX, -5, true, false), i64::MAX);
    }

    /// EXPIRE's options compare as C strings (a NUL ends the word), and an unknown one is
    /// quoted as sent, bytes that are not UTF-8 included.
    #[test]
    fn expire_options() {
        let mut out = Out::new(false);
        let f = parse_expire_flags(&mut out, &[b"expire", b"k", b"1", b"NX\0junk"]);
        assert!(f.is_some_and(|f| f.nx));
        assert!(parse_expire_flags(&mut out, &[b"expire", b"k", b"1", b"x\xffy"]).is_none());
        assert!(parse_expire_flags(&mut out, &[b"expire", b"k", b"1", b"ab\0cd"]).is_none());
        assert_eq!(
            out.buf,
            b"-ERR Unsupported option x\xffy\r\n-ERR Unsupported option ab\r\n"
        );
    }

    /// One shard's part of a SCAN reports whether COUNT stopped it or its keys ran out (then
    /// the call goes on with the next shard).
    #[test]
    fn scan_shard_stops() {
        // b, d and f hash to shard 0 of 2.
        let mut ks = Keyspace::new(0, 2, 16);
        for k in ["b", "d", "f"] {
            ks.dbs[0].set(k.as_bytes(), Value::Str(StrVal::Int(1)), 0, false);
        }
        let all = ScanFilter::default();
        let (keys, stop, n) = scan_shard(&mut ks, 0, 2, 0, 0, 10, &all, 0);
        assert_eq!((keys.len(), stop, n), (3, ScanStop::ShardDone, 3));
        let (keys, stop, n) = scan_shard(&mut ks, 0, 2, 0, 0, 2, &all, 0);
        assert_eq!((keys.len(), n), (2, 2));
        assert!(matches!(stop, ScanStop::At(c) if c != 0));
    }

    /// SCAN cursors parse like Valkey's string2ull (strtoull fallback included).
    #[test]
    fn cursors() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"123"), Some(123));
        assert_eq!(parse_cursor(b"-1"), None);
        assert_eq!(parse_cursor(b"007"), Some(7));
        assert_eq!(parse_cursor(b"+5"), Some(5));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"abc"), None);
        assert_eq!(parse_cursor(b""), None);
        assert_eq!(parse_cursor(b"1x"), None);
    }
}
