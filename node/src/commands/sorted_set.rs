//! The sorted set family: ZADD and the other Z commands (the blocking BZPOPMIN, BZPOPMAX and
//! BZMPOP live with the blocking machinery and call [`pop_from`] here).
//!
//! Replies, error texts and the order in which errors are found follow Valkey 8's `t_zset.c`
//! (and `db.c` for ZSCAN): options are parsed before the key is looked up, except in the
//! ZUNION/ZINTER/ZDIFF family, which looks its keys up (WRONGTYPE) before reading WEIGHTS and
//! AGGREGATE. Scores print as Valkey 8 prints them (`zset/dtoa.rs`): RESP3 doubles, bulk
//! strings in RESP2.
//!
//! Commands that name several keys (ZRANGESTORE, ZUNION/ZINTER/ZDIFF and their STORE forms,
//! ZINTERCARD, ZMPOP) run as one handler when all their keys live on one shard, and through
//! a coordinator of this file when they do not: it parses the arguments, locks the shards in
//! order (`multi::lock`), copies the inputs out of their shards, computes, and writes the
//! destination on its shard, so the command stays atomic as in Valkey. Both paths share the
//! parsing and the algebra below.

use super::multi::{self, LocalFut, MultiCtx};
use super::spec::{
    acl, flag, key_at, keyflag as kf, BeginSearch, CommandSpec, Exec, FindKeys, Group, KeySpec,
};
use super::{
    arity_error, cstr, int_arg, opt_is, KeyCtx, ERR_NOT_INTEGER, ERR_SYNTAX, ERR_WRONGTYPE,
};
use crate::keyspace::set::SetVal;
use crate::keyspace::zset::{
    as_exact_i64, format_score, AddFlags, Added, LexEdge, LexRange, ScoreRange, ZRange, ZSetVal,
};
use crate::keyspace::{Entry, SmallBytes, Value};
use crate::resp::Out;
use crate::shard::{unix_ms, Shard};
use crate::util::glob_match;
use std::borrow::Cow;

/// Keys found by a count argument (`numkeys key [key ...]`) at `pos`.
const fn keynum(pos: i32, flags: u32) -> KeySpec {
    KeySpec {
        notes: None,
        flags,
        begin: BeginSearch::Index(pos),
        find: FindKeys::Keynum {
            keynumidx: 0,
            firstkey: 1,
            step: 1,
        },
    }
}

const RO_ACCESS: u32 = kf::RO | kf::ACCESS;
const RW_ACCESS_DELETE: u32 = kf::RW | kf::ACCESS | kf::DELETE;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::UPDATE)],
        exec: Exec::Key(zadd),
        history: &[("2.4.0", "Accepts multiple elements."), ("3.0.2", "Added the `XX`, `NX`, `CH` and `INCR` options."), ("6.2.0", "Added the `GT` and `LT` options.")],
        ..CommandSpec::new("zadd", -4, flag::WRITE | flag::DENYOOM | flag::FAST, acl::SORTEDSET, Group::SortedSet, "1.2.0",
            "Adds members with scores to a sorted set, or changes the scores of existing members; creates the key when missing.",
            "O(log(N)) per member added or updated, N being the size of the sorted set.",
            "key:key [condition=NX|XX]{since=3.0.2} [comparison=GT|LT]{since=6.2.0} [CH]{since=3.0.2} [INCR]{since=3.0.2} data=(score:double member:string)...")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::ACCESS | kf::UPDATE)],
        exec: Exec::Key(zincrby),
        ..CommandSpec::new("zincrby", 4, flag::WRITE | flag::DENYOOM | flag::FAST, acl::SORTEDSET, Group::SortedSet, "1.2.0",
            "Adds an increment to the score of a member (0 when it is missing) and returns the new score.",
            "O(log(N)), N being the size of the sorted set.", "key:key increment:integer member:string")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::DELETE)],
        exec: Exec::Key(zrem),
        history: &[("2.4.0", "Accepts multiple elements.")],
        ..CommandSpec::new("zrem", -3, flag::WRITE | flag::FAST, acl::SORTEDSET, Group::SortedSet, "1.2.0",
            "Removes members from a sorted set; deletes the key when none is left.",
            "O(M*log(N)), M being the members to remove and N the size of the sorted set.", "key:key member:string...")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zscore),
        ..CommandSpec::new("zscore", 3, flag::READONLY | flag::FAST, acl::SORTEDSET, Group::SortedSet, "1.2.0",
            "Returns the score of one member of a sorted set.", "O(1)", "key:key member:string")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zmscore),
        ..CommandSpec::new("zmscore", -3, flag::READONLY | flag::FAST, acl::SORTEDSET, Group::SortedSet, "6.2.0",
            "Returns the scores of several members of a sorted set.", "O(N), N being the members asked for.", "key:key member:string...")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO)],
        exec: Exec::Key(zcard),
        ..CommandSpec::new("zcard", 2, flag::READONLY | flag::FAST, acl::SORTEDSET, Group::SortedSet, "1.2.0",
            "Returns how many members a sorted set has.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zcount),
        ..CommandSpec::new("zcount", 4, flag::READONLY | flag::FAST, acl::SORTEDSET, Group::SortedSet, "2.0.0",
            "Counts the members whose scores lie in a range.", "O(log(N)), N being the size of the sorted set.",
            "key:key min:double max:double")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zlexcount),
        ..CommandSpec::new("zlexcount", 4, flag::READONLY | flag::FAST, acl::SORTEDSET, Group::SortedSet, "2.8.9",
            "Counts the members that lie in a lexicographic range.", "O(log(N)), N being the size of the sorted set.",
            "key:key min:string max:string")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zrange),
        history: &[("6.2.0", "Added the `REV`, `BYSCORE`, `BYLEX` and `LIMIT` options.")],
        ..CommandSpec::new("zrange", -4, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "1.2.0",
            "Returns the members in a range of ranks, scores or members, in either direction.",
            "O(log(N)+M), N being the size of the sorted set and M the members returned.",
            "key:key start:string stop:string [sortby=BYSCORE|BYLEX]{since=6.2.0} [REV]{since=6.2.0} [LIMIT limit=(offset:integer count:integer)]{since=6.2.0} [WITHSCORES]")
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::UPDATE), key_at(2, RO_ACCESS)],
        exec: Exec::Key(zrangestore),
        multi: Some(zrangestore_coord),
        ..CommandSpec::new("zrangestore", -5, flag::WRITE | flag::DENYOOM, acl::SORTEDSET, Group::SortedSet, "6.2.0",
            "Stores a range of a sorted set (by rank, score or member) in another key.",
            "O(log(N)+M), N being the size of the source and M the members stored.",
            "dst:key src:key min:string max:string [sortby=BYSCORE|BYLEX] [REV] [LIMIT limit=(offset:integer count:integer)]")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zrevrange),
        doc_flags: &["deprecated"],
        deprecated: Some(("6.2.0", "`ZRANGE` with the `REV` argument")),
        ..CommandSpec::new("zrevrange", -4, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "1.2.0",
            "Returns the members in a range of ranks, highest score first.",
            "O(log(N)+M), N being the size of the sorted set and M the members returned.",
            "key:key start:integer stop:integer [WITHSCORES]")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zrangebyscore),
        history: &[("2.0.0", "Added the `WITHSCORES` modifier.")],
        doc_flags: &["deprecated"],
        deprecated: Some(("6.2.0", "`ZRANGE` with the `BYSCORE` argument")),
        ..CommandSpec::new("zrangebyscore", -4, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "1.0.5",
            "Returns the members whose scores lie in a range, lowest first.",
            "O(log(N)+M), N being the size of the sorted set and M the members returned.",
            "key:key min:double max:double [WITHSCORES]{since=2.0.0} [LIMIT limit=(offset:integer count:integer)]")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zrevrangebyscore),
        history: &[("2.1.6", "`min` and `max` can be exclusive.")],
        doc_flags: &["deprecated"],
        deprecated: Some(("6.2.0", "`ZRANGE` with the `REV` and `BYSCORE` arguments")),
        ..CommandSpec::new("zrevrangebyscore", -4, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "2.2.0",
            "Returns the members whose scores lie in a range, highest first.",
            "O(log(N)+M), N being the size of the sorted set and M the members returned.",
            "key:key max:double min:double [WITHSCORES] [LIMIT limit=(offset:integer count:integer)]")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zrangebylex),
        doc_flags: &["deprecated"],
        deprecated: Some(("6.2.0", "`ZRANGE` with the `BYLEX` argument")),
        ..CommandSpec::new("zrangebylex", -4, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "2.8.9",
            "Returns the members in a lexicographic range, lowest first.",
            "O(log(N)+M), N being the size of the sorted set and M the members returned.",
            "key:key min:string max:string [LIMIT limit=(offset:integer count:integer)]")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zrevrangebylex),
        doc_flags: &["deprecated"],
        deprecated: Some(("6.2.0", "`ZRANGE` with the `REV` and `BYLEX` arguments")),
        ..CommandSpec::new("zrevrangebylex", -4, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "2.8.9",
            "Returns the members in a lexicographic range, highest first.",
            "O(log(N)+M), N being the size of the sorted set and M the members returned.",
            "key:key max:string min:string [LIMIT limit=(offset:integer count:integer)]")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zrank),
        history: &[("7.2.0", "Added the optional `WITHSCORE` argument.")],
        ..CommandSpec::new("zrank", -3, flag::READONLY | flag::FAST, acl::SORTEDSET, Group::SortedSet, "2.0.0",
            "Returns the position of a member, counting from the lowest score.", "O(log(N))",
            "key:key member:string [WITHSCORE]{since=7.2.0}")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zrevrank),
        history: &[("7.2.0", "Added the optional `WITHSCORE` argument.")],
        ..CommandSpec::new("zrevrank", -3, flag::READONLY | flag::FAST, acl::SORTEDSET, Group::SortedSet, "2.0.0",
            "Returns the position of a member, counting from the highest score.", "O(log(N))",
            "key:key member:string [WITHSCORE]{since=7.2.0}")
    },
    CommandSpec {
        keys: &[key_at(1, RW_ACCESS_DELETE)],
        exec: Exec::Key(zpopmin),
        ..CommandSpec::new("zpopmin", -2, flag::WRITE | flag::FAST, acl::SORTEDSET, Group::SortedSet, "5.0.0",
            "Removes and returns the members with the lowest scores; deletes the key when none is left.",
            "O(log(N)*M), N being the size of the sorted set and M the members popped.", "key:key [count:integer]")
    },
    CommandSpec {
        keys: &[key_at(1, RW_ACCESS_DELETE)],
        exec: Exec::Key(zpopmax),
        ..CommandSpec::new("zpopmax", -2, flag::WRITE | flag::FAST, acl::SORTEDSET, Group::SortedSet, "5.0.0",
            "Removes and returns the members with the highest scores; deletes the key when none is left.",
            "O(log(N)*M), N being the size of the sorted set and M the members popped.", "key:key [count:integer]")
    },
    CommandSpec {
        keys: &[keynum(1, RW_ACCESS_DELETE)],
        exec: Exec::Key(zmpop),
        multi: Some(zmpop_coord),
        ..CommandSpec::new("zmpop", -4, flag::WRITE, acl::SORTEDSET, Group::SortedSet, "7.0.0",
            "Pops the lowest or highest scoring members of the first non-empty sorted set among several keys.",
            "O(K) + O(M*log(N)), K being the keys given, N the size of the sorted set and M the members popped.",
            "numkeys:integer key:key... where=(MIN|MAX) [COUNT count:integer]")
    },
    CommandSpec {
        keys: &[keynum(1, RO_ACCESS)],
        exec: Exec::Key(zunion),
        multi: Some(zsetop_coord),
        ..CommandSpec::new("zunion", -3, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "6.2.0",
            "Returns the union of sorted sets, scores combined by a weighted sum, minimum or maximum.",
            "O(N)+O(M*log(M)), N being the total size of the inputs and M the size of the result.",
            "numkeys:integer key:key... [WEIGHTS weight:integer...] [AGGREGATE aggregate=(SUM|MIN|MAX)] [WITHSCORES]")
    },
    CommandSpec {
        keys: &[keynum(1, RO_ACCESS)],
        exec: Exec::Key(zinter),
        multi: Some(zsetop_coord),
        ..CommandSpec::new("zinter", -3, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "6.2.0",
            "Returns the intersection of sorted sets, scores combined by a weighted sum, minimum or maximum.",
            "O(N*K)+O(M*log(M)) at worst, N being the smallest input, K the number of inputs and M the size of the result.",
            "numkeys:integer key:key... [WEIGHTS weight:integer...] [AGGREGATE aggregate=(SUM|MIN|MAX)] [WITHSCORES]")
    },
    CommandSpec {
        keys: &[keynum(1, RO_ACCESS)],
        exec: Exec::Key(zdiff),
        multi: Some(zsetop_coord),
        ..CommandSpec::new("zdiff", -3, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "6.2.0",
            "Returns the members of the first sorted set that are in none of the others.",
            "O(L + (N-K)log(N)) at worst, L being the total size of the inputs, N the size of the first and K the size of the result.",
            "numkeys:integer key:key... [WITHSCORES]")
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::UPDATE), keynum(2, RO_ACCESS)],
        exec: Exec::Key(zunionstore),
        multi: Some(zsetop_coord),
        ..CommandSpec::new("zunionstore", -4, flag::WRITE | flag::DENYOOM, acl::SORTEDSET, Group::SortedSet, "2.0.0",
            "Stores the union of sorted sets in a key.",
            "O(N)+O(M log(M)), N being the total size of the inputs and M the size of the result.",
            "destination:key numkeys:integer key:key@1... [WEIGHTS weight:integer...] [AGGREGATE aggregate=(SUM|MIN|MAX)]")
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::UPDATE), keynum(2, RO_ACCESS)],
        exec: Exec::Key(zinterstore),
        multi: Some(zsetop_coord),
        ..CommandSpec::new("zinterstore", -4, flag::WRITE | flag::DENYOOM, acl::SORTEDSET, Group::SortedSet, "2.0.0",
            "Stores the intersection of sorted sets in a key.",
            "O(N*K)+O(M*log(M)) at worst, N being the smallest input, K the number of inputs and M the size of the result.",
            "destination:key numkeys:integer key:key@1... [WEIGHTS weight:integer...] [AGGREGATE aggregate=(SUM|MIN|MAX)]")
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::UPDATE), keynum(2, RO_ACCESS)],
        exec: Exec::Key(zdiffstore),
        multi: Some(zsetop_coord),
        ..CommandSpec::new("zdiffstore", -4, flag::WRITE | flag::DENYOOM, acl::SORTEDSET, Group::SortedSet, "6.2.0",
            "Stores in a key the members of the first sorted set that are in none of the others.",
            "O(L + (N-K)log(N)) at worst, L being the total size of the inputs, N the size of the first and K the size of the result.",
            "destination:key numkeys:integer key:key@1...")
    },
    CommandSpec {
        keys: &[keynum(1, RO_ACCESS)],
        exec: Exec::Key(zintercard),
        multi: Some(zsetop_coord),
        ..CommandSpec::new("zintercard", -3, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "7.0.0",
            "Counts the members of the intersection of sorted sets, optionally stopping at a limit.",
            "O(N*K) at worst, N being the smallest input and K the number of inputs.",
            "numkeys:integer key:key... [LIMIT limit:integer]")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zrandmember),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("zrandmember", -2, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "6.2.0",
            "Returns random members of a sorted set: distinct ones for a positive count, possibly repeated for a negative one.",
            "O(N), N being the members returned.", "key:key [options=(count:integer [WITHSCORES])]")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(zscan),
        tips: &["nondeterministic_output"],
        history: &[("8.0.0", "Added noscores option.")],
        ..CommandSpec::new("zscan", -3, flag::READONLY, acl::SORTEDSET, Group::SortedSet, "2.8.0",
            "Walks the members and scores of a sorted set a page at a time.",
            "O(1) per call; O(N) for a whole walk, N being the size of the sorted set.",
            "key:key cursor:integer [MATCH pattern:pattern] [COUNT count:integer] [NOSCORES]{since=8.0.0}")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::DELETE)],
        exec: Exec::Key(zremrangebyscore),
        ..CommandSpec::new("zremrangebyscore", 4, flag::WRITE, acl::SORTEDSET, Group::SortedSet, "1.2.0",
            "Removes the members whose scores lie in a range; deletes the key when none is left.",
            "O(log(N)+M), N being the size of the sorted set and M the members removed.", "key:key min:double max:double")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::DELETE)],
        exec: Exec::Key(zremrangebyrank),
        ..CommandSpec::new("zremrangebyrank", 4, flag::WRITE, acl::SORTEDSET, Group::SortedSet, "2.0.0",
            "Removes the members in a range of ranks; deletes the key when none is left.",
            "O(log(N)+M), N being the size of the sorted set and M the members removed.", "key:key start:integer stop:integer")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::DELETE)],
        exec: Exec::Key(zremrangebylex),
        ..CommandSpec::new("zremrangebylex", 4, flag::WRITE, acl::SORTEDSET, Group::SortedSet, "2.8.9",
            "Removes the members in a lexicographic range; deletes the key when none is left.",
            "O(log(N)+M), N being the size of the sorted set and M the members removed.", "key:key min:string max:string")
    },
];

// ---------------------------------------------------------------------------------------
// Argument parsing: numbers and ranges as Valkey reads them.
// ---------------------------------------------------------------------------------------

/// C's `strtod` over `text` (which has no NUL): the value, how many bytes it read, and
/// whether it set `ERANGE`. Hex floats, `inf`, `infinity` and `nan` are read as C reads them.
fn c_strtod(text: &[u8]) -> (f64, usize, bool) {
    let mut buf: smallvec::SmallVec<[u8; 64]> = smallvec::SmallVec::from_slice(text);
    buf.push(0);
    let start = buf.as_ptr().cast::<libc::c_char>();
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `buf` is NUL-terminated and lives across the call; strtod reads up to the NUL
    // and stores a pointer into `buf` in `end`. errno is this thread's.
    let (value, erange) = unsafe {
        *libc::__errno_location() = 0;
        let v = libc::strtod(start, &mut end);
        (v, *libc::__errno_location() == libc::ERANGE)
    };
    let read = (end as usize).saturating_sub(start as usize);
    (value, read, erange)
}

/// Valkey's `string2d`: the whole argument is a double, no leading space, no overflow (or
/// underflow to zero), not NaN.
pub fn parse_double(arg: &[u8]) -> Option<f64> {
    let first = *arg.first()?;
    if matches!(first, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        return None;
    }
    // A NUL inside the argument stops strtod before the end: not a number.
    let (v, read, erange) = c_strtod(cstr(arg));
    if read != arg.len() || v.is_nan() || (erange && (v.is_infinite() || v == 0.0)) {
        return None;
    }
    Some(v)
}

/// One end of a score range (`zslParseRange`): `(` makes it exclusive; the rest (up to a NUL)
/// must be read whole by strtod, which allows leading spaces, an empty text (0) and
/// overflow to infinity, but not NaN.
fn parse_score_edge(arg: &[u8]) -> Option<(f64, bool)> {
    let text = cstr(arg);
    let (text, exclusive) = match text.split_first() {
        Some((b'(', rest)) => (rest, true),
        _ => (text, false),
    };
    let (v, read, _) = c_strtod(text);
    (read == text.len() && !v.is_nan()).then_some((v, exclusive))
}

const ERR_MINMAX_FLOAT: &str = "min or max is not a float";
const ERR_MINMAX_LEX: &str = "min or max not valid string range item";
const ERR_NOT_FLOAT: &str = "value is not a valid float";
const ERR_NAN: &str = "resulting score is not a number (NaN)";

/// A score range from its two arguments, or Valkey's error.
pub fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, &'static str> {
    match (parse_score_edge(min), parse_score_edge(max)) {
        (Some((min, min_ex)), Some((max, max_ex))) => Ok(ScoreRange {
            min,
            max,
            min_ex,
            max_ex,
        }),
        _ => Err(ERR_MINMAX_FLOAT),
    }
}

/// One end of a lexicographic range (`zslParseLexRangeItem`): `-`, `+`, `(member` or
/// `[member` (the member keeps any NUL bytes).
fn parse_lex_edge(arg: &[u8]) -> Option<(LexEdge, bool)> {
    let alone = arg.get(1).is_none_or(|&b| b == 0);
    match arg.first()? {
        b'+' if alone => Some((LexEdge::Highest, true)),
        b'-' if alone => Some((LexEdge::Lowest, true)),
        b'(' => Some((LexEdge::Member(arg[1..].to_vec()), true)),
        b'[' => Some((LexEdge::Member(arg[1..].to_vec()), false)),
        _ => None,
    }
}

/// A lexicographic range from its two arguments, or Valkey's error.
pub fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, &'static str> {
    match (parse_lex_edge(min), parse_lex_edge(max)) {
        (Some((min, min_ex)), Some((max, max_ex))) => Ok(LexRange {
            min,
            max,
            min_ex,
            max_ex,
        }),
        _ => Err(ERR_MINMAX_LEX),
    }
}

/// Valkey's `getPositiveLongFromObjectOrReply` without a message of its own: an integer of
/// at least 0; anything else, not an integer either, is "out of range".
fn positive_arg(out: &mut Out, arg: &[u8]) -> Option<i64> {
    let msg = Some("value is out of range, must be positive");
    range_arg(out, arg, 0, i64::MAX, msg, msg)
}

/// Valkey's `getRangeLongFromObjectOrReply`: an integer in `min..=max`. `range_msg` replaces
/// the out-of-range text, `int_msg` the not-an-integer text.
fn range_arg(
    out: &mut Out,
    arg: &[u8],
    min: i64,
    max: i64,
    range_msg: Option<&str>,
    int_msg: Option<&str>,
) -> Option<i64> {
    let Some(v) = crate::util::parse_i64(arg) else {
        out.err(int_msg.unwrap_or(ERR_NOT_INTEGER));
        return None;
    };
    if v < min || v > max {
        match range_msg {
            Some(m) => out.err(m),
            None => out.err(format!(
                "value is out of range, value must between {min} and {max}"
            )),
        }
        return None;
    }
    Some(v)
}

// ---------------------------------------------------------------------------------------
// Replies.
// ---------------------------------------------------------------------------------------

/// A score as Valkey's `addReplyDouble` sends it.
pub fn reply_score(out: &mut Out, score: f64) {
    out.double_text(format_score(score).as_bytes());
}

/// Members (with their scores when asked), as ZRANGE sends them: a flat array in RESP2, an
/// array of [member, score] pairs in RESP3.
fn reply_members(out: &mut Out, items: &[(&[u8], f64)], withscores: bool) {
    if withscores && !out.resp3 {
        out.array(items.len() * 2);
    } else {
        out.array(items.len());
    }
    for &(m, s) in items {
        if withscores && out.resp3 {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            reply_score(out, s);
        }
    }
}

/// The sorted set in an entry, or None after a WRONGTYPE reply.
fn as_zset<'e>(entry: &'e mut Entry, out: &mut Out) -> Option<&'e mut ZSetVal> {
    match &mut entry.value {
        Value::ZSet(z) => Some(z),
        _ => {
            out.err(ERR_WRONGTYPE);
            None
        }
    }
}

/// Looks `key` up for reading: Ok(None) when missing, Err after a WRONGTYPE reply.
fn read_zset<'c>(ctx: &'c mut KeyCtx<'_>, key: &[u8]) -> Result<Option<&'c ZSetVal>, ()> {
    match ctx.read_out(key) {
        (None, _) => Ok(None),
        (Some(e), out) => as_zset(e, out).map(|z| Some(&*z)).ok_or(()),
    }
}

/// Looks `key` up for writing: Ok(None) when missing, Err after a WRONGTYPE reply.
fn write_zset<'c>(ctx: &'c mut KeyCtx<'_>, key: &[u8]) -> Result<Option<&'c mut ZSetVal>, ()> {
    match ctx.write_out(key) {
        (None, _) => Ok(None),
        (Some(e), out) => as_zset(e, out).map(Some).ok_or(()),
    }
}

/// After a removal: deletes `key` when its set is now empty, and signals the write.
fn after_removal(ctx: &mut KeyCtx<'_>, key: &[u8], deleted: i64, empty: bool) {
    if empty {
        ctx.db().remove(key);
    }
    if deleted > 0 {
        ctx.modified(key);
    }
}

// ---------------------------------------------------------------------------------------
// ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT, ZRANK.
// ---------------------------------------------------------------------------------------

/// ZADD and ZINCRBY (Valkey's `zaddGenericCommand`). ZINCRBY reads its arguments like
/// `ZADD key INCR …`, so an increment that reads as an option word is taken as one.
fn zadd_generic(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], incr_cmd: bool) {
    let key = argv[1];
    let mut flags = AddFlags {
        incr: incr_cmd,
        ..AddFlags::default()
    };
    let mut ch = false;
    let mut idx = 2;
    while let Some(&opt) = argv.get(idx) {
        if opt_is(opt, "nx") {
            flags.nx = true;
        } else if opt_is(opt, "xx") {
            flags.xx = true;
        } else if opt_is(opt, "ch") {
            ch = true;
        } else if opt_is(opt, "incr") {
            flags.incr = true;
        } else if opt_is(opt, "gt") {
            flags.gt = true;
        } else if opt_is(opt, "lt") {
            flags.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let rest = &argv[idx..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        ctx.out.err(ERR_SYNTAX);
        return;
    }
    if flags.nx && flags.xx {
        ctx.out
            .err("XX and NX options at the same time are not compatible");
        return;
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        ctx.out
            .err("GT, LT, and/or NX options at the same time are not compatible");
        return;
    }
    let pairs = rest.len() / 2;
    if flags.incr && pairs > 1 {
        ctx.out
            .err("INCR option supports a single increment-element pair");
        return;
    }
    // Every score is read before anything changes: the command applies whole or not at all.
    let mut scores = Vec::with_capacity(pairs);
    let mut longest = 0;
    for pair in rest.chunks_exact(2) {
        let Some(s) = parse_double(pair[0]) else {
            ctx.out.err(ERR_NOT_FLOAT);
            return;
        };
        scores.push(s);
        longest = longest.max(pair[1].len());
    }
    let limits = ctx.limits();
    let mut fresh = None;
    let z: &mut ZSetVal = match write_zset(ctx, key) {
        Err(()) => return,
        Ok(Some(z)) => {
            z.reserve_for(pairs, longest, &limits);
            z
        }
        Ok(None) if flags.xx => {
            if flags.incr {
                ctx.out.null();
            } else {
                ctx.out.int(0);
            }
            return;
        }
        Ok(None) => fresh.insert(ZSetVal::with_hint(pairs, longest, &limits)),
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last = 0.0;
    let mut nan = false;
    for (pair, &score) in rest.chunks_exact(2).zip(&scores) {
        match z.add(score, pair[1], flags, &limits) {
            Added::Nan => {
                nan = true;
                break;
            }
            Added::Nop => {}
            Added::New(s) => {
                added += 1;
                processed += 1;
                last = s;
            }
            Added::Updated(s) => {
                updated += 1;
                processed += 1;
                last = s;
            }
            Added::Same(s) => {
                processed += 1;
                last = s;
            }
        }
    }
    if let Some(z) = fresh {
        // A new key: nothing can fail half-way for it (NaN needs an existing score).
        if !z.is_empty() {
            let now = ctx.now_ms;
            ctx.db().set(key, Value::ZSet(Box::new(z)), now, false);
        }
    }
    if nan {
        ctx.out.err(ERR_NAN);
    } else if flags.incr {
        if processed > 0 {
            reply_score(ctx.out, last);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out.int(if ch { added + updated } else { added });
    }
    if added > 0 || updated > 0 {
        ctx.modified(key);
        ctx.key_ready(key);
    }
}

fn zadd(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zadd_generic(ctx, argv, false);
}

fn zincrby(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zadd_generic(ctx, argv, true);
}

fn zrem(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let key = argv[1];
    let z = match write_zset(ctx, key) {
        Err(()) => return,
        Ok(None) => {
            ctx.out.int(0);
            return;
        }
        Ok(Some(z)) => z,
    };
    let mut deleted = 0;
    for m in &argv[2..] {
        if z.remove(m) {
            deleted += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    let empty = z.is_empty();
    after_removal(ctx, key, deleted, empty);
    ctx.out.int(deleted);
}

fn zscore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let score = match read_zset(ctx, argv[1]) {
        Err(()) => return,
        Ok(z) => z.and_then(|z| z.score(argv[2])),
    };
    match score {
        Some(s) => reply_score(ctx.out, s),
        None => ctx.out.null(),
    }
}

fn zmscore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let (e, out) = ctx.read_out(argv[1]);
    let z = match e {
        None => None,
        Some(e) => match as_zset(e, out) {
            Some(z) => Some(&*z),
            None => return,
        },
    };
    out.array(argv.len() - 2);
    for m in &argv[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => reply_score(out, s),
            None => out.null(),
        }
    }
}

fn zcard(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let n = match read_zset(ctx, argv[1]) {
        Err(()) => return,
        Ok(z) => z.map_or(0, ZSetVal::len),
    };
    ctx.out.int(n as i64);
}

/// ZCOUNT and ZLEXCOUNT once the range is parsed.
fn count_range(ctx: &mut KeyCtx<'_>, key: &[u8], range: &impl ZRange) {
    let n = match read_zset(ctx, key) {
        Err(()) => return,
        Ok(z) => z.map_or(0, |z| z.count_in(range)),
    };
    ctx.out.int(n as i64);
}

fn zcount(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match parse_score_range(argv[2], argv[3]) {
        Ok(r) => count_range(ctx, argv[1], &r),
        Err(e) => ctx.out.err(e),
    }
}

fn zlexcount(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match parse_lex_range(argv[2], argv[3]) {
        Ok(r) => count_range(ctx, argv[1], &r),
        Err(e) => ctx.out.err(e),
    }
}

fn zrank_generic(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], reverse: bool) {
    if argv.len() > 4 {
        let name = if reverse { "zrevrank" } else { "zrank" };
        ctx.out.err(arity_error(name));
        return;
    }
    let withscore = match argv.get(3) {
        None => false,
        Some(a) if opt_is(a, "withscore") => true,
        Some(_) => {
            ctx.out.err(ERR_SYNTAX);
            return;
        }
    };
    let found = match read_zset(ctx, argv[1]) {
        Err(()) => return,
        Ok(z) => z.and_then(|z| z.rank(argv[2], reverse)),
    };
    let out = &mut *ctx.out;
    match found {
        Some((rank, score)) => {
            if withscore {
                out.array(2);
            }
            out.int(rank as i64);
            if withscore {
                reply_score(out, score);
            }
        }
        None if withscore => out.null_array(),
        None => out.null(),
    }
}

fn zrank(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zrank_generic(ctx, argv, false);
}

fn zrevrank(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zrank_generic(ctx, argv, true);
}

// ---------------------------------------------------------------------------------------
// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
// ---------------------------------------------------------------------------------------

/// The ranks `start..=end` that a pair of rank arguments names in a set of `len`, after
/// Valkey's sanitizing (negative counts from the end), or None when empty.
fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut end = if end < 0 { end + len } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

/// What a ZREMRANGEBY* command removes.
enum RemoveSpan {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

fn zremrange(ctx: &mut KeyCtx<'_>, key: &[u8], span: RemoveSpan) {
    let z = match write_zset(ctx, key) {
        Err(()) => return,
        Ok(None) => {
            ctx.out.int(0);
            return;
        }
        Ok(Some(z)) => z,
    };
    let ranks = match &span {
        RemoveSpan::Rank(a, b) => rank_span(*a, *b, z.len()),
        RemoveSpan::Score(r) => z.first_in(r).map(|f| (f, f + z.count_in(r) - 1)),
        RemoveSpan::Lex(r) => z.first_in(r).map(|f| (f, f + z.count_in(r) - 1)),
    };
    let mut deleted = 0i64;
    if let Some((start, end)) = ranks {
        z.remove_ranks(start, end, |_, _| deleted += 1);
    }
    let empty = z.is_empty();
    after_removal(ctx, key, deleted, empty);
    ctx.out.int(deleted);
}

fn zremrangebyrank(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(start) = int_arg(ctx.out, argv[2]) else {
        return;
    };
    let Some(end) = int_arg(ctx.out, argv[3]) else {
        return;
    };
    zremrange(ctx, argv[1], RemoveSpan::Rank(start, end));
}

fn zremrangebyscore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match parse_score_range(argv[2], argv[3]) {
        Ok(r) => zremrange(ctx, argv[1], RemoveSpan::Score(r)),
        Err(e) => ctx.out.err(e),
    }
}

fn zremrangebylex(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match parse_lex_range(argv[2], argv[3]) {
        Ok(r) => zremrange(ctx, argv[1], RemoveSpan::Lex(r)),
        Err(e) => ctx.out.err(e),
    }
}

// ---------------------------------------------------------------------------------------
// ZRANGE and its variants, ZRANGESTORE.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

/// What a range reads.
#[derive(Debug, Clone, PartialEq)]
enum Bounds {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// A parsed ZRANGE-family request.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    bounds: Bounds,
    reverse: bool,
    offset: i64,
    /// Negative: no limit.
    limit: i64,
    withscores: bool,
}

/// Valkey's `zrangeGenericCommand` argument handling: `argv[src]` is the source key, then
/// min, max and the options. `store` is ZRANGESTORE (no WITHSCORES). Errors are returned as
/// their reply text.
fn parse_range_query(
    argv: &[&[u8]],
    src: usize,
    store: bool,
    mut kind: RangeKind,
    mut dir: Direction,
) -> Result<RangeQuery, Vec<u8>> {
    let mut withscores = false;
    let mut offset = 0i64;
    let mut limit = -1i64;
    let mut j = src + 3;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = argv[j];
        if !store && opt_is(a, "withscores") {
            withscores = true;
        } else if opt_is(a, "limit") && left >= 2 {
            match (
                crate::util::parse_i64(argv[j + 1]),
                crate::util::parse_i64(argv[j + 2]),
            ) {
                (Some(o), Some(l)) => {
                    offset = o;
                    limit = l;
                }
                _ => return Err(ERR_NOT_INTEGER.into()),
            }
            j += 2;
        } else if dir == Direction::Auto && opt_is(a, "rev") {
            dir = Direction::Reverse;
        } else if kind == RangeKind::Auto && opt_is(a, "bylex") {
            kind = RangeKind::Lex;
        } else if kind == RangeKind::Auto && opt_is(a, "byscore") {
            kind = RangeKind::Score;
        } else {
            return Err(ERR_SYNTAX.into());
        }
        j += 1;
    }
    let reverse = dir == Direction::Reverse;
    if kind == RangeKind::Auto {
        kind = RangeKind::Rank;
    }
    if limit != -1 && kind == RangeKind::Rank {
        return Err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
                .into(),
        );
    }
    if withscores && kind == RangeKind::Lex {
        return Err("syntax error, WITHSCORES not supported in combination with BYLEX".into());
    }
    let (mut lo, mut hi) = (argv[src + 1], argv[src + 2]);
    if reverse && kind != RangeKind::Rank {
        // The range is given as max, min.
        std::mem::swap(&mut lo, &mut hi);
    }
    let bounds = match kind {
        RangeKind::Score => Bounds::Score(parse_score_range(lo, hi).map_err(Vec::from)?),
        RangeKind::Lex => Bounds::Lex(parse_lex_range(lo, hi).map_err(Vec::from)?),
        _ => match (crate::util::parse_i64(lo), crate::util::parse_i64(hi)) {
            (Some(a), Some(b)) => Bounds::Rank(a, b),
            _ => return Err(ERR_NOT_INTEGER.into()),
        },
    };
    Ok(RangeQuery {
        bounds,
        reverse,
        offset,
        limit,
        withscores: withscores || store,
    })
}

/// The elements a range query selects, in reply order.
fn run_range<'z>(z: &'z ZSetVal, q: &RangeQuery) -> Vec<(&'z [u8], f64)> {
    fn walk<'z>(z: &'z ZSetVal, r: &impl ZRange, q: &RangeQuery) -> Vec<(&'z [u8], f64)> {
        let Some(start) = z.range_start(r, q.offset, q.reverse) else {
            return Vec::new();
        };
        let limit = usize::try_from(q.limit).unwrap_or(usize::MAX);
        z.iter_from(start, q.reverse)
            .take(limit)
            .take_while(|&(m, s)| {
                if q.reverse {
                    r.gte_min(s, m)
                } else {
                    r.lte_max(s, m)
                }
            })
            .collect()
    }
    match &q.bounds {
        Bounds::Rank(a, b) => match rank_span(*a, *b, z.len()) {
            Some((start, end)) => {
                let first = if q.reverse {
                    z.len() - 1 - start
                } else {
                    start
                };
                z.iter_from(first, q.reverse)
                    .take(end - start + 1)
                    .collect()
            }
            None => Vec::new(),
        },
        Bounds::Score(r) => {
            // An offset past the end answers at once (ZRANGEBYSCORE only, as in Valkey).
            if q.offset > 0 && q.offset as u64 >= z.len() as u64 {
                return Vec::new();
            }
            walk(z, r, q)
        }
        Bounds::Lex(r) => walk(z, r, q),
    }
}

/// ZRANGE and its older forms: parse, look up, reply.
fn zrange_reply(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], kind: RangeKind, dir: Direction) {
    let q = match parse_range_query(argv, 1, false, kind, dir) {
        Ok(q) => q,
        Err(e) => {
            ctx.out.err(e);
            return;
        }
    };
    let (e, out) = ctx.read_out(argv[1]);
    let z = match e {
        None => {
            out.array(0);
            return;
        }
        Some(e) => match as_zset(e, out) {
            Some(z) => &*z,
            None => return,
        },
    };
    let items = run_range(z, &q);
    reply_members(out, &items, q.withscores);
}

fn zrange(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zrange_reply(ctx, argv, RangeKind::Auto, Direction::Auto);
}

fn zrevrange(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zrange_reply(ctx, argv, RangeKind::Rank, Direction::Reverse);
}

fn zrangebyscore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zrange_reply(ctx, argv, RangeKind::Score, Direction::Forward);
}

fn zrevrangebyscore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zrange_reply(ctx, argv, RangeKind::Score, Direction::Reverse);
}

fn zrangebylex(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zrange_reply(ctx, argv, RangeKind::Lex, Direction::Forward);
}

fn zrevrangebylex(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zrange_reply(ctx, argv, RangeKind::Lex, Direction::Reverse);
}

/// Owned elements in ascending order, as a store command writes them.
type Items = Vec<(f64, SmallBytes)>;

/// The part of ZRANGESTORE that reads the source: its selected elements, ascending (None
/// when the source is missing), or Err when it holds another type.
fn range_source(ctx: &mut KeyCtx<'_>, key: &[u8], q: &RangeQuery) -> Result<Option<Items>, ()> {
    let Some(z) = read_zset(ctx, key)? else {
        return Ok(None);
    };
    let mut items: Items = run_range(z, q)
        .into_iter()
        .map(|(m, s)| (s, SmallBytes::new(m)))
        .collect();
    if q.reverse {
        items.reverse();
    }
    Ok(Some(items))
}

/// Writes a store command's result to `dst` (replacing whatever is there, TTL included) and
/// returns how many elements it has; an empty result deletes `dst` instead.
pub fn store_result(ctx: &mut KeyCtx<'_>, dst: &[u8], items: Items) -> usize {
    let now = ctx.now_ms;
    let n = items.len();
    if n > 0 {
        let limits = ctx.limits();
        let z = ZSetVal::from_sorted(items, &limits);
        ctx.db().set(dst, Value::ZSet(Box::new(z)), now, false);
        ctx.modified(dst);
        ctx.key_ready(dst);
    } else if ctx.db().delete(dst, now) {
        ctx.modified(dst);
    }
    n
}

fn zrangestore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let q = match parse_range_query(argv, 2, true, RangeKind::Auto, Direction::Auto) {
        Ok(q) => q,
        Err(e) => {
            ctx.out.err(e);
            return;
        }
    };
    let Ok(items) = range_source(ctx, argv[2], &q) else {
        return;
    };
    let n = store_result(ctx, argv[1], items.unwrap_or_default());
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------------------
// ZPOPMIN, ZPOPMAX, ZMPOP, and the pop step of the blocking forms.
// ---------------------------------------------------------------------------------------

/// The key holds another type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

/// Pops up to `count` members from the lowest end of the sorted set at `key` (the highest
/// when `max`), in pop order, deleting the key when it empties and signalling the write.
/// `Ok(None)` when the key does not exist. BZPOPMIN, BZPOPMAX and BZMPOP call this when a
/// key they wait on is ready.
pub fn pop_from(
    ctx: &mut KeyCtx<'_>,
    key: &[u8],
    max: bool,
    count: usize,
) -> Result<Option<Popped>, WrongType> {
    let z = match ctx.write(key) {
        None => return Ok(None),
        Some(Entry {
            value: Value::ZSet(z),
            ..
        }) => z,
        Some(_) => return Err(WrongType),
    };
    let popped = z.pop(max, count);
    let empty = z.is_empty();
    after_removal(ctx, key, popped.len() as i64, empty);
    Ok(Some(popped))
}

/// Members popped, with their scores, in pop order.
pub type Popped = Vec<(SmallBytes, f64)>;

/// Writes popped members as `[member, score]` pairs (nested) or flat.
pub fn reply_popped(out: &mut Out, popped: &Popped, nested: bool) {
    for (m, s) in popped {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        reply_score(out, *s);
    }
}

fn zpop_generic(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], max: bool) {
    if argv.len() > 3 {
        ctx.out.err(ERR_SYNTAX);
        return;
    }
    let count = match argv.get(2) {
        Some(a) => match positive_arg(ctx.out, a) {
            Some(c) => Some(c),
            None => return,
        },
        None => None,
    };
    // RESP3 nests [member, score] pairs when a count was given.
    let nested = ctx.out.resp3 && count.is_some();
    // Look first: a missing key answers an empty array whatever the count.
    match ctx.write_out(argv[1]) {
        (None, out) => {
            out.array(0);
            return;
        }
        (Some(e), out) => {
            if as_zset(e, out).is_none() {
                return;
            }
        }
    }
    if count == Some(0) {
        ctx.out.array(0);
        return;
    }
    let n = usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX);
    let Ok(Some(popped)) = pop_from(ctx, argv[1], max, n) else {
        return;
    };
    let out = &mut *ctx.out;
    if nested {
        out.array(popped.len());
    } else {
        out.array(popped.len() * 2);
    }
    reply_popped(out, &popped, nested);
}

fn zpopmin(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zpop_generic(ctx, argv, false);
}

fn zpopmax(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zpop_generic(ctx, argv, true);
}

/// A parsed ZMPOP: how many keys, which end, how many members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpopArgs {
    pub numkeys: usize,
    pub max: bool,
    pub count: usize,
}

/// ZMPOP's arguments (Valkey's `zmpopGenericCommand`), or None after an error reply.
fn parse_zmpop(out: &mut Out, argv: &[&[u8]]) -> Option<MpopArgs> {
    parse_mpop_at(out, argv, 1)
}

/// ZMPOP's or BZMPOP's arguments with the key count at `numkeys_idx` (keys follow it).
pub fn parse_mpop_at(out: &mut Out, argv: &[&[u8]], numkeys_idx: usize) -> Option<MpopArgs> {
    let numkeys = range_arg(
        out,
        argv[numkeys_idx],
        1,
        i64::MAX,
        Some("numkeys should be greater than 0"),
        Some("numkeys should be greater than 0"),
    )?;
    let where_idx = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_idx + 1));
    let Some(where_idx) = where_idx.filter(|&w| w < argv.len()) else {
        out.err(ERR_SYNTAX);
        return None;
    };
    let max = if opt_is(argv[where_idx], "min") {
        false
    } else if opt_is(argv[where_idx], "max") {
        true
    } else {
        out.err(ERR_SYNTAX);
        return None;
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if count.is_none() && opt_is(argv[j], "count") && more > 0 {
            j += 1;
            let msg = Some("count should be greater than 0");
            count = Some(range_arg(out, argv[j], 1, i64::MAX, msg, msg)?);
        } else {
            out.err(ERR_SYNTAX);
            return None;
        }
        j += 1;
    }
    Some(MpopArgs {
        numkeys: where_idx - numkeys_idx - 1,
        max,
        count: usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX),
    })
}

/// ZMPOP's reply: the key and its popped [member, score] pairs, or a null array.
pub fn reply_mpop(out: &mut Out, found: Option<(&[u8], &Popped)>) {
    match found {
        None => out.null_array(),
        Some((key, popped)) => {
            out.array(2);
            out.bulk(key);
            out.array(popped.len());
            reply_popped(out, popped, true);
        }
    }
}

/// What looking at one ZMPOP key found.
enum MpopStep {
    Missing,
    WrongType,
    Popped(Popped),
}

fn mpop_step(ctx: &mut KeyCtx<'_>, key: &[u8], a: MpopArgs) -> MpopStep {
    match pop_from(ctx, key, a.max, a.count) {
        Ok(None) => MpopStep::Missing,
        Err(WrongType) => MpopStep::WrongType,
        Ok(Some(p)) => MpopStep::Popped(p),
    }
}

fn zmpop(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(a) = parse_zmpop(ctx.out, argv) else {
        return;
    };
    for &key in &argv[2..2 + a.numkeys] {
        match mpop_step(ctx, key, a) {
            MpopStep::Missing => continue,
            MpopStep::WrongType => {
                ctx.out.err(ERR_WRONGTYPE);
                return;
            }
            MpopStep::Popped(p) => {
                reply_mpop(ctx.out, Some((key, &p)));
                return;
            }
        }
    }
    reply_mpop(ctx.out, None);
}

// ---------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Which of the family a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpCmd {
    op: SetOp,
    /// ZUNIONSTORE and friends: argv[1] is the destination.
    store: bool,
    /// ZINTERCARD.
    card: bool,
}

impl OpCmd {
    fn of(name: &str) -> OpCmd {
        let (op, store, card) = match name {
            "zunion" => (SetOp::Union, false, false),
            "zinter" => (SetOp::Inter, false, false),
            "zdiff" => (SetOp::Diff, false, false),
            "zunionstore" => (SetOp::Union, true, false),
            "zinterstore" => (SetOp::Inter, true, false),
            "zdiffstore" => (SetOp::Diff, true, false),
            _ => (SetOp::Inter, false, true),
        };
        OpCmd { op, store, card }
    }

    fn numkeys_idx(self) -> usize {
        if self.store {
            2
        } else {
            1
        }
    }

    fn name(self) -> &'static str {
        match (self.op, self.store, self.card) {
            (_, _, true) => "zintercard",
            (SetOp::Union, false, _) => "zunion",
            (SetOp::Inter, false, _) => "zinter",
            (SetOp::Diff, false, _) => "zdiff",
            (SetOp::Union, true, _) => "zunionstore",
            (SetOp::Inter, true, _) => "zinterstore",
            (SetOp::Diff, true, _) => "zdiffstore",
        }
    }
}

/// The options after the keys.
#[derive(Debug, Clone, PartialEq)]
struct OpOpts {
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: usize,
}

/// The number of input keys (before the keys are looked up), or None after an error reply.
fn parse_numkeys(out: &mut Out, argv: &[&[u8]], cmd: OpCmd) -> Option<usize> {
    let idx = cmd.numkeys_idx();
    let n = int_arg(out, argv[idx])?;
    if n < 1 {
        out.err(format!(
            "at least 1 input key is needed for '{}' command",
            cmd.name()
        ));
        return None;
    }
    match usize::try_from(n) {
        Ok(n) if n <= argv.len() - (idx + 1) => Some(n),
        _ => {
            out.err(ERR_SYNTAX);
            None
        }
    }
}

/// The options after the keys (read after the keys were looked up, as Valkey does); Err
/// carries the error text.
fn parse_op_opts(argv: &[&[u8]], cmd: OpCmd, setnum: usize) -> Result<OpOpts, Vec<u8>> {
    let mut o = OpOpts {
        weights: vec![1.0; setnum],
        aggregate: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = cmd.numkeys_idx() + 1 + setnum;
    while j < argv.len() {
        let remaining = argv.len() - j;
        let a = argv[j];
        if cmd.op != SetOp::Diff && !cmd.card && remaining > setnum && opt_is(a, "weights") {
            for (i, w) in argv[j + 1..=j + setnum].iter().enumerate() {
                o.weights[i] = parse_double(w).ok_or(b"weight value is not a float".to_vec())?;
            }
            j += 1 + setnum;
        } else if cmd.op != SetOp::Diff && !cmd.card && remaining >= 2 && opt_is(a, "aggregate") {
            let w = argv[j + 1];
            o.aggregate = if opt_is(w, "sum") {
                Aggregate::Sum
            } else if opt_is(w, "min") {
                Aggregate::Min
            } else if opt_is(w, "max") {
                Aggregate::Max
            } else {
                return Err(ERR_SYNTAX.into());
            };
            j += 2;
        } else if !cmd.store && !cmd.card && opt_is(a, "withscores") {
            o.withscores = true;
            j += 1;
        } else if cmd.card && remaining >= 2 && opt_is(a, "limit") {
            let l = crate::util::parse_i64(argv[j + 1])
                .filter(|&l| l >= 0)
                .ok_or(b"LIMIT can't be negative".to_vec())?;
            o.limit = usize::try_from(l).unwrap_or(usize::MAX);
            j += 2;
        } else {
            return Err(ERR_SYNTAX.into());
        }
    }
    Ok(o)
}

/// The members of a plain set as an input of this family (each counts with score 1);
/// integers of an intset as their decimal text.
fn set_members<'a>(s: &'a SetVal, f: &mut dyn FnMut(Cow<'a, [u8]>)) {
    for e in s.iter() {
        f(match e {
            crate::keyspace::set::Elem::Str(b) => Cow::Borrowed(b),
            crate::keyspace::set::Elem::Int(n) => Cow::Owned(n.to_string().into_bytes()),
        })
    }
}

fn set_contains(s: &SetVal, member: &[u8]) -> bool {
    s.contains(member)
}

fn set_len(s: &SetVal) -> usize {
    s.len()
}

/// One input of the algebra: a sorted set, a plain set or nothing, with its weight.
#[derive(Clone, Copy)]
struct Operand<'a> {
    value: Option<&'a Value>,
    weight: f64,
}

impl<'a> Operand<'a> {
    fn len(&self) -> usize {
        match self.value {
            Some(Value::ZSet(z)) => z.len(),
            Some(Value::Set(s)) => set_len(s),
            _ => 0,
        }
    }

    /// Every member with its score, in the input's order.
    fn for_each(&self, mut f: impl FnMut(Cow<'a, [u8]>, f64)) {
        match self.value {
            Some(Value::ZSet(z)) => z.iter().for_each(|(m, s)| f(Cow::Borrowed(m), s)),
            Some(Value::Set(s)) => set_members(s, &mut |m| f(m, 1.0)),
            _ => {}
        }
    }

    fn find(&self, member: &[u8]) -> Option<f64> {
        match self.value {
            Some(Value::ZSet(z)) => z.score(member),
            Some(Value::Set(s)) => set_contains(s, member).then_some(1.0),
            _ => None,
        }
    }
}

/// Valkey's `zunionInterAggregate`; a sum of -inf and +inf counts as 0.
fn aggregate(target: &mut f64, v: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += v;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => *target = if v < *target { v } else { *target },
        Aggregate::Max => *target = if v > *target { v } else { *target },
    }
}

/// What the algebra computes: a count (ZINTERCARD) or the members with their scores.
enum OpResult<'a> {
    Card(usize),
    Items(Vec<(f64, Cow<'a, [u8]>)>),
}

/// The union, intersection or difference of the inputs, with Valkey's score arithmetic
/// (`zunionInterDiffGenericCommand`). The inputs of a union or intersection are taken
/// smallest first, in a stable order (as glibc's qsort gives for a few keys), which decides
/// the order of floating-point sums. The members come back in score order.
fn compute<'a>(cmd: OpCmd, mut ops: Vec<Operand<'a>>, o: &OpOpts) -> OpResult<'a> {
    if cmd.op != SetOp::Diff {
        ops.sort_by_key(Operand::len);
    }
    let mut items: Vec<(f64, Cow<'a, [u8]>)> = Vec::new();
    let mut card = 0usize;
    match (cmd.op, ops.split_first()) {
        (_, None) => {}
        (SetOp::Inter, Some((first, rest))) => {
            let mut done = false;
            first.for_each(|m, s| {
                if done {
                    return;
                }
                let mut score = first.weight * s;
                if score.is_nan() {
                    score = 0.0;
                }
                for op in rest {
                    match op.find(&m) {
                        Some(v) => aggregate(&mut score, v * op.weight, o.aggregate),
                        None => return,
                    }
                }
                if cmd.card {
                    card += 1;
                    // LIMIT stops the search once reached (0: no limit).
                    done = o.limit > 0 && card >= o.limit;
                } else {
                    items.push((score, m));
                }
            });
        }
        (SetOp::Union, Some(_)) => {
            let mut acc: indexmap::IndexMap<Cow<'a, [u8]>, f64, crate::keyspace::KeyHasher> =
                indexmap::IndexMap::with_hasher(crate::keyspace::KeyHasher);
            for op in &ops {
                op.for_each(|m, s| {
                    let mut score = op.weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(&m) {
                        Some(t) => aggregate(t, score, o.aggregate),
                        None => {
                            acc.insert(m, score);
                        }
                    }
                });
            }
            items = acc.into_iter().map(|(m, s)| (s, m)).collect();
        }
        (SetOp::Diff, Some((first, rest))) => {
            first.for_each(|m, s| {
                if rest.iter().all(|op| op.find(&m).is_none()) {
                    items.push((s, m));
                }
            });
        }
    }
    if cmd.card {
        return OpResult::Card(card);
    }
    items.sort_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.1.cmp(&b.1))
    });
    OpResult::Items(items)
}

/// Whether a value can be an input of this family (missing, a sorted set or a set).
fn is_op_input(v: &Value) -> bool {
    matches!(v, Value::ZSet(_) | Value::Set(_))
}

/// The result as owned elements (for a store, whose destination may be an input).
fn owned_items(items: &[(f64, Cow<'_, [u8]>)]) -> Items {
    items
        .iter()
        .map(|(s, m)| (*s, SmallBytes::new(m)))
        .collect()
}

/// Writes the reply of a non-store command of the family.
fn reply_op(out: &mut Out, result: &OpResult<'_>, withscores: bool) {
    match result {
        OpResult::Card(n) => out.int(*n as i64),
        OpResult::Items(items) => {
            let v: Vec<(&[u8], f64)> = items.iter().map(|(s, m)| (&m[..], *s)).collect();
            reply_members(out, &v, withscores);
        }
    }
}

/// The whole command on one shard.
fn zsetop(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], cmd: OpCmd) {
    let Some(setnum) = parse_numkeys(ctx.out, argv, cmd) else {
        return;
    };
    let first = cmd.numkeys_idx() + 1;
    let keys = &argv[first..first + setnum];
    for &k in keys {
        if let (Some(e), out) = ctx.read_out(k) {
            if !is_op_input(&e.value) {
                out.err(ERR_WRONGTYPE);
                return;
            }
        }
    }
    let o = match parse_op_opts(argv, cmd, setnum) {
        Ok(o) => o,
        Err(e) => {
            ctx.out.err(e);
            return;
        }
    };
    let db = &ctx.ks.dbs[ctx.db];
    let ops: Vec<Operand<'_>> = keys
        .iter()
        .zip(&o.weights)
        .map(|(k, &weight)| Operand {
            value: db.zset_input_at(k),
            weight,
        })
        .collect();
    let result = compute(cmd, ops, &o);
    if !cmd.store {
        reply_op(ctx.out, &result, o.withscores);
        return;
    }
    let items = match &result {
        OpResult::Items(items) => owned_items(items),
        OpResult::Card(_) => Vec::new(),
    };
    let n = store_result(ctx, argv[1], items);
    ctx.out.int(n as i64);
}

fn zunion(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zsetop(ctx, argv, OpCmd::of("zunion"));
}

fn zinter(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zsetop(ctx, argv, OpCmd::of("zinter"));
}

fn zdiff(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zsetop(ctx, argv, OpCmd::of("zdiff"));
}

fn zunionstore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zsetop(ctx, argv, OpCmd::of("zunionstore"));
}

fn zinterstore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zsetop(ctx, argv, OpCmd::of("zinterstore"));
}

fn zdiffstore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zsetop(ctx, argv, OpCmd::of("zdiffstore"));
}

fn zintercard(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    zsetop(ctx, argv, OpCmd::of("zintercard"));
}

// ---------------------------------------------------------------------------------------
// ZRANDMEMBER, ZSCAN.
// ---------------------------------------------------------------------------------------

/// Most elements one ZRANDMEMBER reply may carry. Valkey has no such bound and builds
/// whatever a negative count asks for (`ZRANDMEMBER k -1000000000000` exhausts its memory);
/// corekey refuses counts past this with Valkey's out-of-range error instead.
pub const RANDMEMBER_REPLY_MAX: u64 = 1 << 27;

fn zrandmember(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    if argv.len() < 3 {
        let r = ctx.ks.random();
        let (e, out) = ctx.read_out(argv[1]);
        match e {
            None => out.null(),
            Some(e) => {
                if let Some(z) = as_zset(e, out) {
                    match z.random(r) {
                        Some((m, _)) => out.bulk(m),
                        None => out.null(),
                    }
                }
            }
        }
        return;
    }
    let Some(l) = range_arg(ctx.out, argv[2], -i64::MAX, i64::MAX, None, None) else {
        return;
    };
    if argv.len() > 4 || (argv.len() == 4 && !opt_is(argv[3], "withscores")) {
        ctx.out.err(ERR_SYNTAX);
        return;
    }
    let withscores = argv.len() == 4;
    if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
        ctx.out.err("value is out of range");
        return;
    }
    let count = l.unsigned_abs();
    let unique = l >= 0;
    // Random numbers come from the keyspace's generator; take what we may need up front so
    // the set can be borrowed meanwhile.
    let mut seed = ctx.ks.random();
    let (e, out) = ctx.read_out(argv[1]);
    let z = match e {
        None => {
            out.array(0);
            return;
        }
        Some(e) => match as_zset(e, out) {
            Some(z) => &*z,
            None => return,
        },
    };
    let mut next = move || {
        // SplitMix64 from the keyspace's seed.
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = seed;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    };
    if count == 0 {
        out.array(0);
        return;
    }
    if !unique && count.saturating_mul(1 + u64::from(withscores)) > RANDMEMBER_REPLY_MAX {
        out.err("value is out of range");
        return;
    }
    let size = z.len() as u64;
    let picked: Vec<(&[u8], f64)> = if !unique || count == 1 {
        (0..count).filter_map(|_| z.random(next())).collect()
    } else if count >= size {
        // The whole set, highest first (Valkey's set-operation iterator walks a sorted set
        // backwards).
        z.iter_from(z.len().saturating_sub(1), true).collect()
    } else if z.is_listpack() {
        // Distinct members in the set's order (selection sampling, as Valkey's listpack
        // sampler).
        let mut need = count;
        let mut left = size;
        let mut v = Vec::with_capacity(count as usize);
        for e in z.iter() {
            if next() % left < need {
                v.push(e);
                need -= 1;
            }
            left -= 1;
        }
        v
    } else if count * 3 > size {
        // Distinct members in random order, most of the set: a partial shuffle of positions.
        let mut pos: Vec<u64> = (0..size).collect();
        let mut v = Vec::with_capacity(count as usize);
        for i in 0..count {
            let j = i + next() % (size - i);
            pos.swap(i as usize, j as usize);
            v.extend(z.random(pos[i as usize]));
        }
        v
    } else {
        // A few distinct members of a large set: draw until enough are distinct.
        let mut taken = std::collections::HashSet::with_capacity(count as usize);
        let mut v = Vec::with_capacity(count as usize);
        while (v.len() as u64) < count {
            let p = next() % size;
            if taken.insert(p) {
                v.extend(z.random(p));
            }
        }
        v
    };
    reply_members(out, &picked, withscores);
}

/// A skiplist's ZSCAN score: Valkey formats it with "%.17Lg" (not as other replies do).
fn score_17g(score: f64) -> Vec<u8> {
    if score.is_infinite() {
        return if score > 0.0 {
            b"inf".to_vec()
        } else {
            b"-inf".to_vec()
        };
    }
    if score.is_nan() {
        return b"nan".to_vec();
    }
    let mut buf = [0u8; 64];
    // SAFETY: the format is NUL-terminated and takes one double; snprintf writes at most
    // `buf.len()` bytes, NUL included, and returns the length it wanted.
    let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), score) };
    let n = usize::try_from(n).unwrap_or(0).min(buf.len() - 1);
    buf[..n].to_vec()
}

/// A listpack's ZSCAN score: the entry as stored, an integer entry when the score is one.
fn score_listpack_entry(score: f64) -> Vec<u8> {
    match as_exact_i64(score) {
        Some(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
        None => format_score(score).as_bytes().to_vec(),
    }
}

fn zscan(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(cursor) = super::generic::parse_cursor(argv[2]) else {
        ctx.out.err("invalid cursor");
        return;
    };
    let (e, out) = ctx.read_out(argv[1]);
    let z = match e {
        None => {
            out.array(2);
            out.bulk(b"0");
            out.array(0);
            return;
        }
        Some(e) => match as_zset(e, out) {
            Some(z) => &*z,
            None => return,
        },
    };
    // Options come after the lookup, as in Valkey's scanGenericCommand.
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut noscores = false;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - i;
        let a = argv[i];
        if opt_is(a, "count") && more >= 2 {
            let Some(c) = int_arg(out, argv[i + 1]) else {
                return;
            };
            if c < 1 {
                out.err(ERR_SYNTAX);
                return;
            }
            count = usize::try_from(c).unwrap_or(usize::MAX);
            i += 2;
        } else if opt_is(a, "match") && more >= 2 {
            let p = argv[i + 1];
            pattern = (p != b"*").then_some(p);
            i += 2;
        } else if opt_is(a, "novalues") {
            out.err("NOVALUES option can only be used in HSCAN");
            return;
        } else if opt_is(a, "noscores") {
            noscores = true;
            i += 1;
        } else {
            out.err(ERR_SYNTAX);
            return;
        }
    }
    let listpack = z.is_listpack();
    let mut found: Vec<(&[u8], f64)> = Vec::new();
    let next = z.scan_step(cursor, count, |m, s| {
        if pattern.is_none_or(|p| glob_match(p, m, false)) {
            found.push((m, s));
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(found.len() * if noscores { 1 } else { 2 });
    for (m, s) in found {
        out.bulk(m);
        if !noscores {
            let text = if listpack {
                score_listpack_entry(s)
            } else {
                score_17g(s)
            };
            out.bulk(&text);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Coordinators: the multi-key commands when their keys live on several shards.
// ---------------------------------------------------------------------------------------

/// Runs `f` on shard `s` with a key context for database `db` (its reply is discarded: the
/// coordinator writes the reply).
fn on_shard<R>(s: &Shard, db: usize, f: impl FnOnce(&mut KeyCtx<'_>) -> R) -> R {
    let mut ks = s.ks.borrow_mut();
    let config = s.config.borrow();
    let mut sink = Out::new(false);
    let mut ctx = KeyCtx {
        ks: &mut ks,
        db,
        now_ms: unix_ms(),
        out: &mut sink,
        config: &config,
    };
    f(&mut ctx)
}

async fn zrangestore_async(ctx: MultiCtx<'_>) {
    let MultiCtx {
        shard,
        client,
        argv,
        out,
        txn: held,
        ..
    } = ctx;
    let db = client.db;
    let q = match parse_range_query(argv, 2, true, RangeKind::Auto, Direction::Auto) {
        Ok(q) => q,
        Err(e) => {
            out.err(e);
            return;
        }
    };
    let (dst, src) = (argv[1].to_vec(), argv[2].to_vec());
    let (td, ts) = (shard.shard_of_key(&dst), shard.shard_of_key(&src));
    let txn = multi::lock(shard, held, [td, ts]).await;
    let read = txn
        .run(ts, move |s| {
            on_shard(s, db, |ctx| range_source(ctx, &src, &q))
        })
        .await;
    let Ok(items) = read else {
        out.err(ERR_WRONGTYPE);
        return;
    };
    let items = items.unwrap_or_default();
    let n = txn
        .run(td, move |s| {
            on_shard(s, db, |ctx| store_result(ctx, &dst, items))
        })
        .await;
    drop(txn);
    out.int(n as i64);
}

/// The coordinator of ZRANGESTORE (see [`multi::Coord`]).
pub fn zrangestore_coord(ctx: MultiCtx<'_>) -> LocalFut<'_> {
    Box::pin(zrangestore_async(ctx))
}

async fn zmpop_async(ctx: MultiCtx<'_>) {
    let MultiCtx {
        shard,
        client,
        argv,
        out,
        txn: held,
        ..
    } = ctx;
    let db = client.db;
    let Some(a) = parse_zmpop(out, argv) else {
        return;
    };
    let keys: Vec<Vec<u8>> = argv[2..2 + a.numkeys].iter().map(|k| k.to_vec()).collect();
    let txn = multi::lock(shard, held, keys.iter().map(|k| shard.shard_of_key(k))).await;
    for key in keys {
        let t = shard.shard_of_key(&key);
        let k = key.clone();
        let step = txn
            .run(t, move |s| on_shard(s, db, |ctx| mpop_step(ctx, &k, a)))
            .await;
        match step {
            MpopStep::Missing => continue,
            MpopStep::WrongType => {
                out.err(ERR_WRONGTYPE);
                return;
            }
            MpopStep::Popped(p) => {
                reply_mpop(out, Some((&key, &p)));
                return;
            }
        }
    }
    reply_mpop(out, None);
}

/// The coordinator of ZMPOP (see [`multi::Coord`]).
pub fn zmpop_coord(ctx: MultiCtx<'_>) -> LocalFut<'_> {
    Box::pin(zmpop_async(ctx))
}

/// What reading one input on its shard found: a copy of its value, nothing, or another type.
enum Input {
    Missing,
    Found(Value),
    WrongType,
}

fn read_input(ctx: &mut KeyCtx<'_>, key: &[u8]) -> Input {
    match ctx.read(key) {
        None => Input::Missing,
        Some(e) if is_op_input(&e.value) => Input::Found(e.value.clone()),
        Some(_) => Input::WrongType,
    }
}

async fn zsetop_async(ctx: MultiCtx<'_>) {
    let MultiCtx {
        shard,
        client,
        cmd: r,
        argv,
        out,
        txn: held,
        ..
    } = ctx;
    let db = client.db;
    let cmd = OpCmd::of(r.spec.name);
    let Some(setnum) = parse_numkeys(out, argv, cmd) else {
        return;
    };
    let first = cmd.numkeys_idx() + 1;
    let keys: Vec<Vec<u8>> = argv[first..first + setnum]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    let dst = cmd.store.then(|| argv[1].to_vec());
    let targets: Vec<usize> = keys
        .iter()
        .chain(dst.iter())
        .map(|k| shard.shard_of_key(k))
        .collect();
    let txn = multi::lock(shard, held, targets).await;
    // Read the inputs shard by shard, keeping the order of the keys.
    let mut inputs: Vec<Option<Input>> = (0..setnum).map(|_| None).collect();
    let mut by_shard: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, k) in keys.iter().enumerate() {
        by_shard.entry(shard.shard_of_key(k)).or_default().push(i);
    }
    for (t, idxs) in by_shard {
        let ks: Vec<Vec<u8>> = idxs.iter().map(|&i| keys[i].clone()).collect();
        let got = txn
            .run(t, move |s| {
                on_shard(s, db, |ctx| {
                    ks.iter().map(|k| read_input(ctx, k)).collect::<Vec<_>>()
                })
            })
            .await;
        for (i, v) in idxs.into_iter().zip(got) {
            inputs[i] = Some(v);
        }
    }
    if inputs.iter().any(|v| matches!(v, Some(Input::WrongType))) {
        out.err(ERR_WRONGTYPE);
        return;
    }
    let o = match parse_op_opts(argv, cmd, setnum) {
        Ok(o) => o,
        Err(e) => {
            out.err(e);
            return;
        }
    };
    let values: Vec<Option<&Value>> = inputs
        .iter()
        .map(|v| match v {
            Some(Input::Found(v)) => Some(v),
            _ => None,
        })
        .collect();
    let ops: Vec<Operand<'_>> = values
        .iter()
        .zip(&o.weights)
        .map(|(&value, &weight)| Operand { value, weight })
        .collect();
    let result = compute(cmd, ops, &o);
    let Some(dst) = dst else {
        drop(txn);
        reply_op(out, &result, o.withscores);
        return;
    };
    let items = match &result {
        OpResult::Items(items) => owned_items(items),
        OpResult::Card(_) => Vec::new(),
    };
    let t = shard.shard_of_key(&dst);
    let n = txn
        .run(t, move |s| {
            on_shard(s, db, |ctx| store_result(ctx, &dst, items))
        })
        .await;
    drop(txn);
    out.int(n as i64);
}

/// The coordinator of ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD.
pub fn zsetop_coord(ctx: MultiCtx<'_>) -> LocalFut<'_> {
    Box::pin(zsetop_async(ctx))
}

#[cfg(test)]
mod tests;
