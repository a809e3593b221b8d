//! The string family: GET, SET and its variants, counters, ranges, MGET/MSET, LCS.
//!
//! Each command parses its arguments, then works on the keyspace of the shard that owns the
//! key. Behaviour, replies and error texts follow Valkey 8's `t_string.c`. Multi-key commands
//! (MGET, MSET, MSETNX, LCS) also expose the per-shard steps that `multi.rs` uses when their
//! keys live on several shards.

use super::spec::{acl, flag, key_at, keyflag as kf, keys_from, CommandSpec, Exec, Group};
use super::{int_arg, multi, KeyCtx, ERR_SYNTAX, ERR_WRONGTYPE};
use crate::keyspace::{Db, Entry, StrVal, Value};
use crate::resp::Out;
use crate::util::{long_double_incr, parse_i64, LdIncrError};

const RO_ACCESS: u32 = kf::RO | kf::ACCESS;
const RW_ACCESS_UPDATE: u32 = kf::RW | kf::ACCESS | kf::UPDATE;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(get),
        ..CommandSpec::new("get", 2, flag::READONLY | flag::FAST, acl::STRING, Group::String, "1.0.0",
            "Returns the string value of a key.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[super::spec::KeySpec { notes: Some("RW and ACCESS due to the optional `GET` argument"), ..key_at(1, kf::RW | kf::ACCESS | kf::UPDATE | kf::VARIABLE_FLAGS) }],
        exec: Exec::Key(set),
        history: &[("2.6.12", "Added the `EX`, `PX`, `NX` and `XX` options."), ("6.0.0", "Added the `KEEPTTL` option."), ("6.2.0", "Added the `GET`, `EXAT` and `PXAT` option."), ("7.0.0", "Allowed the `NX` and `GET` options to be used together.")],
        ..CommandSpec::new("set", -3, flag::WRITE | flag::DENYOOM, acl::STRING, Group::String, "1.0.0",
            "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "O(1)",
            "key:key value:string [condition=NX|XX]{since=2.6.12} [GET]{since=6.2.0} [expiration=EX seconds:integer{since=2.6.12}|PX milliseconds:integer{since=2.6.12}|EXAT unix-time-seconds:unix-time{since=6.2.0}|PXAT unix-time-milliseconds:unix-time{since=6.2.0}|KEEPTTL{since=6.0.0}]")
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::INSERT)],
        exec: Exec::Key(setnx),
        doc_flags: &["deprecated"],
        deprecated: Some(("2.6.12", "`SET` with the `NX` argument")),
        ..CommandSpec::new("setnx", 3, flag::WRITE | flag::DENYOOM | flag::FAST, acl::STRING, Group::String, "1.0.0",
            "Set the string value of a key only when the key doesn't exist.", "O(1)", "key:key value:string")
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::UPDATE)],
        exec: Exec::Key(setex),
        doc_flags: &["deprecated"],
        deprecated: Some(("2.6.12", "`SET` with the `EX` argument")),
        ..CommandSpec::new("setex", 4, flag::WRITE | flag::DENYOOM, acl::STRING, Group::String, "2.0.0",
            "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", "O(1)",
            "key:key seconds:integer value:string")
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::UPDATE)],
        exec: Exec::Key(psetex),
        doc_flags: &["deprecated"],
        deprecated: Some(("2.6.12", "`SET` with the `PX` argument")),
        ..CommandSpec::new("psetex", 4, flag::WRITE | flag::DENYOOM, acl::STRING, Group::String, "2.6.0",
            "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", "O(1)",
            "key:key milliseconds:integer value:string")
    },
    CommandSpec {
        keys: &[key_at(1, RW_ACCESS_UPDATE)],
        exec: Exec::Key(getset),
        doc_flags: &["deprecated"],
        deprecated: Some(("6.2.0", "`SET` with the `!GET` argument")),
        ..CommandSpec::new("getset", 3, flag::WRITE | flag::DENYOOM | flag::FAST, acl::STRING, Group::String, "1.0.0",
            "Returns the previous string value of a key after setting it to a new value.", "O(1)", "key:key value:string")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::ACCESS | kf::DELETE)],
        exec: Exec::Key(getdel),
        ..CommandSpec::new("getdel", 2, flag::WRITE | flag::FAST, acl::STRING, Group::String, "6.2.0",
            "Returns the string value of a key after deleting the key.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[super::spec::KeySpec { notes: Some("RW and UPDATE because it changes the TTL"), ..key_at(1, RW_ACCESS_UPDATE) }],
        exec: Exec::Key(getex),
        ..CommandSpec::new("getex", -2, flag::WRITE | flag::FAST, acl::STRING, Group::String, "6.2.0",
            "Returns the string value of a key after setting its expiration time.", "O(1)",
            "key:key [expiration=EX seconds:integer|PX milliseconds:integer|EXAT unix-time-seconds:unix-time|PXAT unix-time-milliseconds:unix-time|PERSIST]")
    },
    CommandSpec {
        keys: &[keys_from(1, -1, 1, RO_ACCESS)],
        exec: Exec::Key(mget),
        multi: Some(multi::mget),
        tips: &["request_policy:multi_shard"],
        ..CommandSpec::new("mget", -2, flag::READONLY | flag::FAST, acl::STRING, Group::String, "1.0.0",
            "Atomically returns the string values of one or more keys.", "O(N) where N is the number of keys to retrieve.", "key:key...")
    },
    CommandSpec {
        keys: &[keys_from(1, -1, 2, kf::OW | kf::UPDATE)],
        exec: Exec::Key(mset),
        multi: Some(multi::mset),
        tips: &["request_policy:multi_shard", "response_policy:all_succeeded"],
        ..CommandSpec::new("mset", -3, flag::WRITE | flag::DENYOOM, acl::STRING, Group::String, "1.0.1",
            "Atomically creates or modifies the string values of one or more keys.", "O(N) where N is the number of keys to set.",
            "data=(key:key value:string)...")
    },
    CommandSpec {
        keys: &[keys_from(1, -1, 2, kf::OW | kf::INSERT)],
        exec: Exec::Key(msetnx),
        multi: Some(multi::mset),
        ..CommandSpec::new("msetnx", -3, flag::WRITE | flag::DENYOOM, acl::STRING, Group::String, "1.0.1",
            "Atomically modifies the string values of one or more keys only when all keys don't exist.",
            "O(N) where N is the number of keys to set.", "data=(key:key value:string)...")
    },
    CommandSpec {
        keys: &[key_at(1, RW_ACCESS_UPDATE)],
        exec: Exec::Key(incr),
        ..CommandSpec::new("incr", 2, flag::WRITE | flag::DENYOOM | flag::FAST, acl::STRING, Group::String, "1.0.0",
            "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, RW_ACCESS_UPDATE)],
        exec: Exec::Key(decr),
        ..CommandSpec::new("decr", 2, flag::WRITE | flag::DENYOOM | flag::FAST, acl::STRING, Group::String, "1.0.0",
            "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, RW_ACCESS_UPDATE)],
        exec: Exec::Key(incrby),
        ..CommandSpec::new("incrby", 3, flag::WRITE | flag::DENYOOM | flag::FAST, acl::STRING, Group::String, "1.0.0",
            "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "O(1)",
            "key:key increment:integer")
    },
    CommandSpec {
        keys: &[key_at(1, RW_ACCESS_UPDATE)],
        exec: Exec::Key(decrby),
        ..CommandSpec::new("decrby", 3, flag::WRITE | flag::DENYOOM | flag::FAST, acl::STRING, Group::String, "1.0.0",
            "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "O(1)",
            "key:key decrement:integer")
    },
    CommandSpec {
        keys: &[key_at(1, RW_ACCESS_UPDATE)],
        exec: Exec::Key(incrbyfloat),
        ..CommandSpec::new("incrbyfloat", 3, flag::WRITE | flag::DENYOOM | flag::FAST, acl::STRING, Group::String, "2.6.0",
            "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "O(1)",
            "key:key increment:double")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::INSERT)],
        exec: Exec::Key(append),
        ..CommandSpec::new("append", 3, flag::WRITE | flag::DENYOOM | flag::FAST, acl::STRING, Group::String, "2.0.0",
            "Appends a string to the value of a key. Creates the key if it doesn't exist.",
            "O(1), amortized: the value's buffer grows geometrically.", "key:key value:string")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO)],
        exec: Exec::Key(strlen),
        ..CommandSpec::new("strlen", 2, flag::READONLY | flag::FAST, acl::STRING, Group::String, "2.2.0",
            "Returns the length of a string value.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(getrange),
        ..CommandSpec::new("getrange", 4, flag::READONLY, acl::STRING, Group::String, "2.4.0",
            "Returns a substring of the string stored at a key.", "O(N) where N is the length of the returned string.",
            "key:key start:integer end:integer")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::UPDATE)],
        exec: Exec::Key(setrange),
        ..CommandSpec::new("setrange", 4, flag::WRITE | flag::DENYOOM, acl::STRING, Group::String, "2.2.0",
            "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
            "O(1), not counting the time taken to copy the new string in place (O(M) for a value of length M).",
            "key:key offset:integer value:string")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(getrange),
        doc_flags: &["deprecated"],
        deprecated: Some(("2.0.0", "`GETRANGE`")),
        ..CommandSpec::new("substr", 4, flag::READONLY, acl::STRING, Group::String, "1.0.0",
            "Returns a substring from a string value.", "O(N) where N is the length of the returned string.",
            "key:key start:integer end:integer")
    },
    CommandSpec {
        keys: &[keys_from(1, 1, 1, RO_ACCESS)],
        exec: Exec::Key(lcs),
        multi: Some(multi::lcs),
        ..CommandSpec::new("lcs", -3, flag::READONLY, acl::STRING, Group::String, "7.0.0",
            "Finds the longest common substring.", "O(N*M) where N and M are the lengths of s1 and s2, respectively",
            "key1:key@0 key2:key@0 [LEN] [IDX] [MINMATCHLEN min-match-len:integer] [WITHMATCHLEN]")
    },
];

/// Writes a string value as a bulk reply.
pub fn reply_str(out: &mut Out, v: &StrVal) {
    match v {
        StrVal::Int(n) => out.bulk_i64(*n),
        StrVal::Emb(b) => out.bulk(b),
        StrVal::Raw(b) => out.bulk(b),
    }
}

/// The GET part shared by GET, GETSET, GETDEL and SET … GET: replies the value (or null).
/// Returns false after a WRONGTYPE error.
fn get_generic(ctx: &mut KeyCtx<'_>, key: &[u8]) -> bool {
    match ctx.read_out(key) {
        (None, out) => {
            out.null();
            true
        }
        (Some(e), out) => match e.value.as_str() {
            Some(s) => {
                reply_str(out, s);
                true
            }
            None => {
                out.err(ERR_WRONGTYPE);
                false
            }
        },
    }
}

fn get(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    get_generic(ctx, argv[1]);
}

/// Option flags of SET and GETEX.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SetFlags {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    ex: bool,
    px: bool,
    exat: bool,
    pxat: bool,
}

impl SetFlags {
    fn any_expire(&self) -> bool {
        self.ex || self.px || self.exat || self.pxat
    }
}

/// Valkey's `parseExtendedStringArgumentsOrReply`: options start at argument 3 (SET) or 2
/// (GETEX). Returns the flags and the expire argument, or `None` after a syntax error reply.
fn parse_extended<'a>(
    out: &mut Out,
    argv: &[&'a [u8]],
    is_set: bool,
) -> Option<(SetFlags, Option<&'a [u8]>)> {
    let mut f = SetFlags::default();
    let mut expire = None;
    let mut j = if is_set { 3 } else { 2 };
    while j < argv.len() {
        let opt = argv[j];
        let next = argv.get(j + 1).copied();
        let is = |s: &str| super::opt_is(opt, s);
        if is("nx") && !f.xx && is_set {
            f.nx = true;
        } else if is("xx") && !f.nx && is_set {
            f.xx = true;
        } else if is("get") && is_set {
            f.get = true;
        } else if is("keepttl") && !f.persist && !f.any_expire() && is_set {
            f.keepttl = true;
        } else if is("persist") && !is_set && !f.any_expire() && !f.keepttl {
            f.persist = true;
        } else if is("ex")
            && !f.keepttl
            && !f.persist
            && !f.exat
            && !f.px
            && !f.pxat
            && next.is_some()
        {
            f.ex = true;
            expire = next;
            j += 1;
        } else if is("px")
            && !f.keepttl
            && !f.persist
            && !f.ex
            && !f.exat
            && !f.pxat
            && next.is_some()
        {
            f.px = true;
            expire = next;
            j += 1;
        } else if is("exat")
            && !f.keepttl
            && !f.persist
            && !f.ex
            && !f.px
            && !f.pxat
            && next.is_some()
        {
            f.exat = true;
            expire = next;
            j += 1;
        } else if is("pxat")
            && !f.keepttl
            && !f.persist
            && !f.ex
            && !f.exat
            && !f.px
            && next.is_some()
        {
            f.pxat = true;
            expire = next;
            j += 1;
        } else {
            out.err(ERR_SYNTAX);
            return None;
        }
        j += 1;
    }
    Some((f, expire))
}

/// Valkey's `getExpireMillisecondsOrReply`: the absolute deadline in ms, or `None` after
/// the "invalid expire time" error.
fn expire_ms(
    out: &mut Out,
    arg: &[u8],
    seconds: bool,
    relative: bool,
    now_ms: i64,
    cmd: &str,
) -> Option<i64> {
    let v = int_arg(out, arg)?;
    let bad = |out: &mut Out| out.err(format!("invalid expire time in '{cmd}' command"));
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        bad(out);
        return None;
    }
    let mut ms = if seconds { v * 1000 } else { v };
    if relative {
        ms = ms.wrapping_add(now_ms);
    }
    if ms <= 0 {
        bad(out);
        return None;
    }
    Some(ms)
}

/// The shared core of SET, SETNX, SETEX, PSETEX (Valkey's `setGenericCommand`).
fn set_generic(
    ctx: &mut KeyCtx<'_>,
    f: SetFlags,
    key: &[u8],
    val: &[u8],
    expire: Option<(&[u8], bool)>,
    cmd: &str,
    ok_nx: bool,
) {
    let now = ctx.now_ms;
    let deadline = match expire {
        Some((arg, seconds)) => match expire_ms(ctx.out, arg, seconds, f.ex || f.px, now, cmd) {
            Some(ms) => Some(ms),
            None => return,
        },
        None => None,
    };
    if f.get && !get_generic(ctx, key) {
        return;
    }
    let found = ctx.write(key).is_some();
    if (f.nx && found) || (f.xx && !found) {
        if !f.get {
            if ok_nx {
                ctx.out.int(0);
            } else {
                ctx.out.null();
            }
        }
        return;
    }
    // A deadline already in the past: the key ends up absent.
    if let Some(ms) = deadline {
        if ms <= now {
            if found {
                ctx.db().remove(key);
            }
            if !f.get {
                ctx.out.ok();
            }
            return;
        }
    }
    let keep = f.keepttl || deadline.is_some();
    ctx.db()
        .set(key, Value::Str(StrVal::from_arg(val)), now, keep);
    if let Some(ms) = deadline {
        ctx.db().set_expire(key, ms);
    }
    if !f.get {
        if ok_nx {
            ctx.out.int(1);
        } else {
            ctx.out.ok();
        }
    }
}

fn set(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some((f, expire)) = parse_extended(ctx.out, argv, true) else {
        return;
    };
    let expire = expire.map(|e| (e, f.ex || f.exat));
    set_generic(ctx, f, argv[1], argv[2], expire, "set", false);
}

fn setnx(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    set_generic(
        ctx,
        SetFlags {
            nx: true,
            ..SetFlags::default()
        },
        argv[1],
        argv[2],
        None,
        "setnx",
        true,
    );
}

fn setex(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    set_generic(
        ctx,
        SetFlags {
            ex: true,
            ..SetFlags::default()
        },
        argv[1],
        argv[3],
        Some((argv[2], true)),
        "setex",
        false,
    );
}

fn psetex(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    set_generic(
        ctx,
        SetFlags {
            px: true,
            ..SetFlags::default()
        },
        argv[1],
        argv[3],
        Some((argv[2], false)),
        "psetex",
        false,
    );
}

fn getset(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    if !get_generic(ctx, argv[1]) {
        return;
    }
    let now = ctx.now_ms;
    ctx.db()
        .set(argv[1], Value::Str(StrVal::from_arg(argv[2])), now, false);
}

fn getdel(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    if !get_generic(ctx, argv[1]) {
        return;
    }
    ctx.db().remove(argv[1]);
}

fn getex(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some((f, expire)) = parse_extended(ctx.out, argv, false) else {
        return;
    };
    let key = argv[1];
    let now = ctx.now_ms;
    let value = match ctx.read_out(key) {
        (None, out) => {
            out.null();
            return;
        }
        (Some(e), out) => match e.value.as_str() {
            Some(s) => s.clone(),
            None => {
                out.err(ERR_WRONGTYPE);
                return;
            }
        },
    };
    let deadline = match expire {
        Some(arg) => match expire_ms(ctx.out, arg, f.ex || f.exat, f.ex || f.px, now, "getex") {
            Some(ms) => Some(ms),
            None => return,
        },
        None => None,
    };
    reply_str(ctx.out, &value);
    if (f.exat || f.pxat) && deadline.is_some_and(|ms| ms <= now) {
        ctx.db().remove(key);
    } else if let Some(ms) = deadline {
        ctx.db().set_expire(key, ms);
    } else if f.persist {
        ctx.db().persist(key);
    }
}

/// The value of `key` for MGET: its bytes when it is a string, else nothing.
pub fn mget_value(ctx: &mut KeyCtx<'_>, key: &[u8]) -> Option<Vec<u8>> {
    ctx.read(key)
        .and_then(|e| e.value.as_str().map(|s| s.bytes().into_owned()))
}

fn mget(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    ctx.out.array(argv.len() - 1);
    for key in &argv[1..] {
        match ctx.read_out(key) {
            (Some(e), out) => match e.value.as_str() {
                Some(s) => reply_str(out, s),
                None => out.null(),
            },
            (None, out) => out.null(),
        }
    }
}

/// Sets every (key, value) pair, in order (the keys must be on this shard).
pub fn mset_pairs(db: &mut Db, pairs: &[(&[u8], &[u8])], now_ms: i64) {
    for (k, v) in pairs {
        db.set(k, Value::Str(StrVal::from_arg(v)), now_ms, false);
    }
}

fn pairs<'a>(argv: &[&'a [u8]]) -> Vec<(&'a [u8], &'a [u8])> {
    argv[1..].chunks_exact(2).map(|c| (c[0], c[1])).collect()
}

fn mset(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    if argv.len().is_multiple_of(2) {
        ctx.out.err(super::arity_error("mset"));
        return;
    }
    let now = ctx.now_ms;
    mset_pairs(ctx.db(), &pairs(argv), now);
    ctx.out.ok();
}

fn msetnx(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    if argv.len().is_multiple_of(2) {
        ctx.out.err(super::arity_error("msetnx"));
        return;
    }
    let pairs = pairs(argv);
    if pairs.iter().any(|(k, _)| ctx.write(k).is_some()) {
        ctx.out.int(0);
        return;
    }
    let now = ctx.now_ms;
    mset_pairs(ctx.db(), &pairs, now);
    ctx.out.int(1);
}

/// INCR/DECR/INCRBY/DECRBY (Valkey's `incrDecrCommand`).
fn incr_decr(ctx: &mut KeyCtx<'_>, key: &[u8], by: i64) {
    let now = ctx.now_ms;
    let current = match ctx.write(key) {
        None => None,
        Some(e) => match e.value.as_str() {
            None => {
                ctx.out.err(ERR_WRONGTYPE);
                return;
            }
            Some(s) => match s.as_i64() {
                Some(n) => Some(n),
                None => {
                    ctx.out.err(super::ERR_NOT_INTEGER);
                    return;
                }
            },
        },
    };
    let old = current.unwrap_or(0);
    let Some(new) = old.checked_add(by) else {
        ctx.out.err("increment or decrement would overflow");
        return;
    };
    match ctx.write(key) {
        // Overwrite in place: the TTL stays, as with Valkey's dbReplaceValue. The new value is
        // a fresh integer object, which Valkey shares when it is small (OBJECT REFCOUNT), even
        // if the old one was a COPY's private object.
        Some(e) => {
            e.value = Value::Str(StrVal::Int(new));
            e.unshared = false;
        }
        None => ctx.db().set(key, Value::Str(StrVal::Int(new)), now, false),
    }
    ctx.out.int(new);
}

fn incr(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    incr_decr(ctx, argv[1], 1);
}

fn decr(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    incr_decr(ctx, argv[1], -1);
}

fn incrby(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(by) = int_arg(ctx.out, argv[2]) else {
        return;
    };
    incr_decr(ctx, argv[1], by);
}

fn decrby(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(by) = int_arg(ctx.out, argv[2]) else {
        return;
    };
    if by == i64::MIN {
        ctx.out.err("decrement would overflow");
        return;
    }
    incr_decr(ctx, argv[1], -by);
}

fn incrbyfloat(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let key = argv[1];
    let now = ctx.now_ms;
    let current: Option<Vec<u8>> = match ctx.write(key) {
        None => None,
        Some(e) => match e.value.as_str() {
            None => {
                ctx.out.err(ERR_WRONGTYPE);
                return;
            }
            Some(s) => Some(s.bytes().into_owned()),
        },
    };
    let text = match long_double_incr(current.as_deref(), argv[2]) {
        Ok(t) => t,
        Err(LdIncrError::Current) | Err(LdIncrError::Increment) => {
            ctx.out.err("value is not a valid float");
            return;
        }
        Err(LdIncrError::NanOrInfinity) => {
            ctx.out.err("increment would produce NaN or Infinity");
            return;
        }
    };
    let value = Value::Str(StrVal::created(&text));
    match ctx.write(key) {
        Some(e) => e.value = value,
        None => ctx.db().set(key, value, now, false),
    }
    ctx.out.bulk(&text);
}

/// Valkey's `checkStringLength`: a string may not grow past `proto-max-bulk-len`.
fn check_string_length(ctx: &mut KeyCtx<'_>, size: u64, append: u64) -> bool {
    match size.checked_add(append) {
        Some(total) if total <= ctx.config.proto_max_bulk_len => true,
        _ => {
            ctx.out
                .err("string exceeds maximum allowed size (proto-max-bulk-len)");
            false
        }
    }
}

fn append(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let (key, add) = (argv[1], argv[2]);
    let now = ctx.now_ms;
    let len = match ctx.write(key) {
        None => {
            ctx.db()
                .set(key, Value::Str(StrVal::from_arg(add)), now, false);
            add.len()
        }
        Some(e) => {
            let Some(s) = e.value.as_str() else {
                ctx.out.err(ERR_WRONGTYPE);
                return;
            };
            let cur = s.len() as u64;
            if !check_string_length(ctx, cur, add.len() as u64) {
                return;
            }
            let Some(Value::Str(s)) = ctx.write(key).map(|e| &mut e.value) else {
                return;
            };
            let raw = s.make_raw();
            raw.extend_from_slice(add);
            raw.len()
        }
    };
    ctx.out.int(len as i64);
}

fn strlen(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match ctx.read_out(argv[1]) {
        (None, out) => out.int(0),
        (Some(e), out) => match e.value.as_str() {
            Some(s) => out.int(s.len() as i64),
            None => out.err(ERR_WRONGTYPE),
        },
    }
}

/// GETRANGE's index arithmetic: the byte range `start..=end` of a string of `len` bytes.
fn range_of(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len_i = len as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let mut start = if start < 0 { len_i + start } else { start };
    let mut end = if end < 0 { len_i + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len_i {
        end = len_i - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

fn getrange(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(start) = int_arg(ctx.out, argv[2]) else {
        return;
    };
    let Some(end) = int_arg(ctx.out, argv[3]) else {
        return;
    };
    match ctx.read_out(argv[1]) {
        (None, out) => out.bulk(b""),
        (Some(e), out) => match e.value.as_str() {
            None => out.err(ERR_WRONGTYPE),
            Some(s) => {
                let bytes = s.bytes();
                match range_of(start, end, bytes.len()) {
                    Some((a, b)) => out.bulk(&bytes[a..=b]),
                    None => out.bulk(b""),
                }
            }
        },
    }
}

fn setrange(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let (key, value) = (argv[1], argv[3]);
    let Some(offset) = int_arg(ctx.out, argv[2]) else {
        return;
    };
    if offset < 0 {
        ctx.out.err("offset is out of range");
        return;
    }
    let offset = offset as u64;
    let now = ctx.now_ms;
    let exists = match ctx.write(key) {
        None => false,
        Some(e) => match e.value.as_str() {
            None => {
                ctx.out.err(ERR_WRONGTYPE);
                return;
            }
            Some(s) => {
                if value.is_empty() {
                    let n = s.len() as i64;
                    ctx.out.int(n);
                    return;
                }
                true
            }
        },
    };
    if !exists && value.is_empty() {
        ctx.out.int(0);
        return;
    }
    if !check_string_length(ctx, offset, value.len() as u64) {
        return;
    }
    let offset = offset as usize;
    if !exists {
        ctx.db()
            .set(key, Value::Str(StrVal::Raw(Vec::new())), now, false);
    }
    let Some(Value::Str(s)) = ctx.write(key).map(|e| &mut e.value) else {
        return;
    };
    let raw = s.make_raw();
    if raw.len() < offset + value.len() {
        raw.resize(offset + value.len(), 0);
    }
    raw[offset..offset + value.len()].copy_from_slice(value);
    let n = raw.len() as i64;
    ctx.out.int(n);
}

/// LCS options.
#[derive(Debug, Default, Clone, Copy)]
pub struct LcsOpts {
    len: bool,
    idx: bool,
    withmatchlen: bool,
    minmatchlen: i64,
}

/// Parses LCS options (after the two keys); `None` after an error reply.
pub fn lcs_opts(out: &mut Out, argv: &[&[u8]]) -> Option<LcsOpts> {
    let mut o = LcsOpts::default();
    let mut j = 3;
    while j < argv.len() {
        let opt = argv[j];
        let more = argv.len() - 1 - j;
        if super::opt_is(opt, "idx") {
            o.idx = true;
        } else if super::opt_is(opt, "len") {
            o.len = true;
        } else if super::opt_is(opt, "withmatchlen") {
            o.withmatchlen = true;
        } else if super::opt_is(opt, "minmatchlen") && more > 0 {
            o.minmatchlen = int_arg(out, argv[j + 1])?.max(0);
            j += 1;
        } else {
            out.err(ERR_SYNTAX);
            return None;
        }
        j += 1;
    }
    if o.len && o.idx {
        out.err("If you want both the length and indexes, please just use IDX.");
        return None;
    }
    Some(o)
}

/// LCS was given a key that does not hold a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAString;

/// Reads LCS's operand: its bytes (empty when missing), or [`NotAString`].
pub fn lcs_operand(ctx: &mut KeyCtx<'_>, key: &[u8]) -> Result<Vec<u8>, NotAString> {
    match ctx.read(key) {
        None => Ok(Vec::new()),
        Some(Entry { value, .. }) => value
            .as_str()
            .map(|s| s.bytes().into_owned())
            .ok_or(NotAString),
    }
}

/// The LCS computation and reply, given both strings (Valkey's `lcsCommand`).
pub fn lcs_reply(out: &mut Out, a: &[u8], b: &[u8], o: LcsOpts, max_bytes: u64) {
    if a.len() as u64 >= u64::from(u32::MAX) - 1 || b.len() as u64 >= u64::from(u32::MAX) - 1 {
        out.err("String too long for LCS");
        return;
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells.saturating_mul(4) > max_bytes {
        out.err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
        return;
    }
    let w = blen + 1;
    let mut t = vec![0u32; cells as usize];
    for i in 1..=alen {
        for j in 1..=blen {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let total = t[alen * w + blen];
    let compute = o.idx || !o.len;
    let mut result = vec![0u8; total as usize];
    let mut ranges: Vec<(u32, u32, u32, u32)> = Vec::new();
    let (mut i, mut j, mut idx) = (alen, blen, total as usize);
    let none = alen as u32;
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (none, 0u32, 0u32, 0u32);
    while compute && i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == none {
                a_start = (i - 1) as u32;
                a_end = (i - 1) as u32;
                b_start = (j - 1) as u32;
                b_end = (j - 1) as u32;
            } else if a_start == i as u32 && b_start == j as u32 {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != none {
                emit = true;
            }
        }
        if emit {
            let match_len = a_end.wrapping_sub(a_start).wrapping_add(1);
            if o.minmatchlen == 0 || i64::from(match_len) >= o.minmatchlen {
                ranges.push((a_start, a_end, b_start, b_end));
            }
            a_start = none;
        }
    }
    if o.idx {
        out.map(2);
        out.bulk(b"matches");
        out.array(ranges.len());
        for (a0, a1, b0, b1) in ranges {
            out.array(2 + usize::from(o.withmatchlen));
            out.array(2);
            out.int(i64::from(a0));
            out.int(i64::from(a1));
            out.array(2);
            out.int(i64::from(b0));
            out.int(i64::from(b1));
            if o.withmatchlen {
                out.int(i64::from(a1.wrapping_sub(a0).wrapping_add(1)));
            }
        }
        out.bulk(b"len");
        out.int(i64::from(total));
    } else if o.len {
        out.int(i64::from(total));
    } else {
        out.bulk(&result);
    }
}

fn lcs(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let a = lcs_operand(ctx, argv[1]);
    let b = lcs_operand(ctx, argv[2]);
    let (Ok(a), Ok(b)) = (a, b) else {
        ctx.out.err("The specified keys must contain string values");
        return;
    };
    let Some(o) = lcs_opts(ctx.out, argv) else {
        return;
    };
    let max = ctx.config.proto_max_bulk_len;
    lcs_reply(ctx.out, &a, &b, o, max);
}

/// Whether `v` is a string whose bytes parse as an integer (for tests and OBJECT).
pub fn is_int_string(v: &[u8]) -> bool {
    parse_i64(v).is_some()
}

#[cfg(test)]
mod tests;
