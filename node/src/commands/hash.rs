//! The hash family: HSET, HSETNX, HMSET, HGET, HMGET, HGETALL, HKEYS, HVALS, HDEL, HLEN,
//! HEXISTS, HSTRLEN, HINCRBY, HINCRBYFLOAT, HSCAN and HRANDFIELD.
//!
//! Each command names one key, so it always runs on the shard owning that key: no family
//! member needs a cross-shard coordinator. Replies, error texts and the order of checks
//! (which error wins when several apply) follow Valkey 8's `t_hash.c`; the value type and its
//! encodings live in `crate::keyspace::hash`.
//!
//! Writes that may create the hash go through [`write_hash`], which creates the key only when
//! the write leaves something in it (Valkey creates it first, but no write of this family can
//! fail after that point, so the difference cannot be seen) and reports the change to WATCH.

use super::spec::{acl, flag, key_at, keyflag as kf, CommandSpec, Exec, Group};
use super::{arity_error, int_arg, opt_is, KeyCtx, ERR_SYNTAX, ERR_WRONGTYPE};
use crate::keyspace::encoding::Limits;
use crate::keyspace::hash::HashVal;
use crate::keyspace::Value;
use crate::resp::Out;
use crate::util::{glob_match, i64_text, long_double_incr, parse_i64, LdIncrError};

const RO_ACCESS: u32 = kf::RO | kf::ACCESS;
const RW_ACCESS_UPDATE: u32 = kf::RW | kf::ACCESS | kf::UPDATE;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::UPDATE)],
        exec: Exec::Key(hset),
        history: &[("4.0.0", "Takes several field-value pairs in one call.")],
        ..CommandSpec::new("hset", -4, flag::WRITE | flag::DENYOOM | flag::FAST, acl::HASH, Group::Hash, "2.0.0",
            "Sets fields of a hash to values, creating the hash when it is missing.",
            "O(1) per field-value pair, so O(N) for N pairs.", "key:key data=(field:string value:string)...")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::INSERT)],
        exec: Exec::Key(hsetnx),
        ..CommandSpec::new("hsetnx", 4, flag::WRITE | flag::DENYOOM | flag::FAST, acl::HASH, Group::Hash, "2.0.0",
            "Sets a field of a hash only when the field does not exist yet.", "O(1)",
            "key:key field:string value:string")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::UPDATE)],
        exec: Exec::Key(hmset),
        doc_flags: &["deprecated"],
        deprecated: Some(("4.0.0", "`HSET` with multiple field-value pairs")),
        ..CommandSpec::new("hmset", -4, flag::WRITE | flag::DENYOOM | flag::FAST, acl::HASH, Group::Hash, "2.0.0",
            "Sets fields of a hash to values and answers OK (the older form of HSET).",
            "O(N) for N field-value pairs.", "key:key data=(field:string value:string)...")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(hget),
        ..CommandSpec::new("hget", 3, flag::READONLY | flag::FAST, acl::HASH, Group::Hash, "2.0.0",
            "Gets the value of one field of a hash.", "O(1)", "key:key field:string")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(hmget),
        ..CommandSpec::new("hmget", -3, flag::READONLY | flag::FAST, acl::HASH, Group::Hash, "2.0.0",
            "Gets the values of several fields of a hash, nil for each missing one.",
            "O(N) for N requested fields.", "key:key field:string...")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(hgetall),
        tips: &["nondeterministic_output_order"],
        ..CommandSpec::new("hgetall", 2, flag::READONLY, acl::HASH, Group::Hash, "2.0.0",
            "Gets every field of a hash with its value.", "O(N) for a hash of N fields.", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::DELETE)],
        exec: Exec::Key(hdel),
        history: &[("2.4.0", "Takes several fields in one call.")],
        ..CommandSpec::new("hdel", -3, flag::WRITE | flag::FAST, acl::HASH, Group::Hash, "2.0.0",
            "Removes fields from a hash; a hash left empty is deleted.", "O(N) for N fields to remove.",
            "key:key field:string...")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO)],
        exec: Exec::Key(hlen),
        ..CommandSpec::new("hlen", 2, flag::READONLY | flag::FAST, acl::HASH, Group::Hash, "2.0.0",
            "Counts the fields of a hash.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO)],
        exec: Exec::Key(hexists),
        ..CommandSpec::new("hexists", 3, flag::READONLY | flag::FAST, acl::HASH, Group::Hash, "2.0.0",
            "Tells whether a field exists in a hash.", "O(1)", "key:key field:string")
    },
    CommandSpec {
        keys: &[key_at(1, RW_ACCESS_UPDATE)],
        exec: Exec::Key(hincrby),
        ..CommandSpec::new("hincrby", 4, flag::WRITE | flag::DENYOOM | flag::FAST, acl::HASH, Group::Hash, "2.0.0",
            "Adds an integer to the integer value of a hash field; a missing field counts as 0.", "O(1)",
            "key:key field:string increment:integer")
    },
    CommandSpec {
        keys: &[key_at(1, RW_ACCESS_UPDATE)],
        exec: Exec::Key(hincrbyfloat),
        ..CommandSpec::new("hincrbyfloat", 4, flag::WRITE | flag::DENYOOM | flag::FAST, acl::HASH, Group::Hash, "2.6.0",
            "Adds a floating point number to the value of a hash field; a missing field counts as 0.", "O(1)",
            "key:key field:string increment:double")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(hkeys),
        tips: &["nondeterministic_output_order"],
        ..CommandSpec::new("hkeys", 2, flag::READONLY, acl::HASH, Group::Hash, "2.0.0",
            "Lists the fields of a hash.", "O(N) for a hash of N fields.", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(hvals),
        tips: &["nondeterministic_output_order"],
        ..CommandSpec::new("hvals", 2, flag::READONLY, acl::HASH, Group::Hash, "2.0.0",
            "Lists the values of a hash.", "O(N) for a hash of N fields.", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO)],
        exec: Exec::Key(hstrlen),
        ..CommandSpec::new("hstrlen", 3, flag::READONLY | flag::FAST, acl::HASH, Group::Hash, "3.2.0",
            "Gives the length in bytes of the value of a hash field.", "O(1)", "key:key field:string")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(hscan),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("hscan", -3, flag::READONLY, acl::HASH, Group::Hash, "2.8.0",
            "Walks the fields and values of a hash a few at a time with a cursor.",
            "O(1) per call; O(N) for a whole iteration over a hash of N fields.",
            "key:key cursor:integer [MATCH pattern:pattern] [COUNT count:integer] [NOVALUES]")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(hrandfield),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("hrandfield", -2, flag::READONLY, acl::HASH, Group::Hash, "6.2.0",
            "Picks random fields of a hash, distinct for a positive count, possibly repeated for a negative one.",
            "O(N) for N returned fields.", "key:key [options=(count:integer [WITHVALUES])]")
    },
];

/// The hash at `key` for reading, with the reply buffer: `Some((None, out))` when the key is
/// missing, `None` after a WRONGTYPE reply.
fn read_hash<'a>(
    ctx: &'a mut KeyCtx<'_>,
    key: &[u8],
) -> Option<(Option<&'a HashVal>, &'a mut Out)> {
    match ctx.read_out(key) {
        (None, out) => Some((None, out)),
        (Some(e), out) => match &e.value {
            Value::Hash(h) => Some((Some(&**h), out)),
            _ => {
                out.err(ERR_WRONGTYPE);
                None
            }
        },
    }
}

/// Runs a write on the hash at `key` (Valkey's `hashTypeLookupWriteOrCreate` and what
/// follows): a missing key starts as an empty hash, which is stored only if `write` leaves a
/// field in it; a key of another type gets WRONGTYPE. `write` replies and returns whether it
/// changed the hash, and then the key is reported modified (WATCH).
fn write_hash(
    ctx: &mut KeyCtx<'_>,
    key: &[u8],
    write: impl FnOnce(&mut HashVal, Limits, &mut Out) -> bool,
) {
    let limits = ctx.limits();
    let now = ctx.now_ms;
    let changed = match ctx.write_out(key) {
        (Some(e), out) => {
            let Value::Hash(h) = &mut e.value else {
                out.err(ERR_WRONGTYPE);
                return;
            };
            write(h, limits, out)
        }
        (None, out) => {
            let mut h = HashVal::new();
            let changed = write(&mut h, limits, out);
            if !h.is_empty() {
                ctx.db().set(key, Value::Hash(Box::new(h)), now, false);
            }
            changed
        }
    };
    if changed {
        ctx.modified(key);
    }
}

/// HSET and HMSET (Valkey's `hsetCommand`): the pairs are checked for an odd count before
/// the key is looked at, so that error wins over WRONGTYPE.
fn hset_generic(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], name: &str, count_reply: bool) {
    if argv.len() % 2 == 1 {
        ctx.out.err(arity_error(name));
        return;
    }
    let args = &argv[2..];
    write_hash(ctx, argv[1], |h, limits, out| {
        h.prepare_for(args, limits);
        let mut created = 0i64;
        for pair in args.chunks_exact(2) {
            if h.set(pair[0], pair[1], limits) {
                created += 1;
            }
        }
        if count_reply {
            out.int(created);
        } else {
            out.ok();
        }
        true
    });
}

fn hset(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    hset_generic(ctx, argv, "hset", true);
}

fn hmset(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    hset_generic(ctx, argv, "hmset", false);
}

fn hsetnx(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let (field, value) = (argv[2], argv[3]);
    write_hash(ctx, argv[1], |h, limits, out| {
        if h.contains(field) {
            out.int(0);
            return false;
        }
        h.prepare_for(&[field, value], limits);
        h.set(field, value, limits);
        out.int(1);
        true
    });
}

fn hget(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some((h, out)) = read_hash(ctx, argv[1]) else {
        return;
    };
    match h.and_then(|h| h.get(argv[2])) {
        Some(v) => out.bulk(v),
        None => out.null(),
    }
}

/// HMGET: a missing key is an empty hash (one nil per field), not an error.
fn hmget(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some((h, out)) = read_hash(ctx, argv[1]) else {
        return;
    };
    let fields = &argv[2..];
    out.array(fields.len());
    for f in fields {
        match h.and_then(|h| h.get(f)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
}

/// HGETALL, HKEYS and HVALS (Valkey's `genericHgetallCommand`): a map when both fields and
/// values are asked for, else an array; the encoding's order.
fn getall(ctx: &mut KeyCtx<'_>, key: &[u8], fields: bool, values: bool) {
    let Some((h, out)) = read_hash(ctx, key) else {
        return;
    };
    let len = h.map_or(0, HashVal::len);
    if fields && values {
        out.map(len);
    } else {
        out.array(len);
    }
    for (f, v) in h.into_iter().flat_map(HashVal::iter) {
        if fields {
            out.bulk(f);
        }
        if values {
            out.bulk(v);
        }
    }
}

fn hgetall(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    getall(ctx, argv[1], true, true);
}

fn hkeys(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    getall(ctx, argv[1], true, false);
}

fn hvals(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    getall(ctx, argv[1], false, true);
}

/// HDEL: stops at the field that empties the hash, and deletes the key then.
fn hdel(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let key = argv[1];
    let (deleted, emptied) = match ctx.write_out(key) {
        (None, out) => {
            out.int(0);
            return;
        }
        (Some(e), out) => {
            let Value::Hash(h) = &mut e.value else {
                out.err(ERR_WRONGTYPE);
                return;
            };
            let mut deleted = 0i64;
            for f in &argv[2..] {
                if h.remove(f) {
                    deleted += 1;
                    if h.is_empty() {
                        break;
                    }
                }
            }
            out.int(deleted);
            (deleted, h.is_empty())
        }
    };
    if emptied {
        ctx.db().remove(key);
    }
    if deleted > 0 {
        ctx.modified(key);
    }
}

fn hlen(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    if let Some((h, out)) = read_hash(ctx, argv[1]) {
        out.int(h.map_or(0, HashVal::len) as i64);
    }
}

fn hexists(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    if let Some((h, out)) = read_hash(ctx, argv[1]) {
        out.int(i64::from(h.is_some_and(|h| h.contains(argv[2]))));
    }
}

fn hstrlen(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    if let Some((h, out)) = read_hash(ctx, argv[1]) {
        out.int(h.and_then(|h| h.get(argv[2])).map_or(0, <[u8]>::len) as i64);
    }
}

/// HINCRBY: the increment is checked before the key (so its error wins over WRONGTYPE),
/// the stored value must be an integer as `string2ll` reads it.
fn hincrby(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(by) = int_arg(ctx.out, argv[3]) else {
        return;
    };
    let field = argv[2];
    write_hash(ctx, argv[1], |h, limits, out| {
        let current = match h.get(field) {
            None => 0,
            Some(v) => match parse_i64(v) {
                Some(n) => n,
                None => {
                    out.err("hash value is not an integer");
                    return false;
                }
            },
        };
        let Some(new) = current.checked_add(by) else {
            out.err("increment or decrement would overflow");
            return false;
        };
        h.set(field, &i64_text(new), limits);
        out.int(new);
        true
    });
}

/// HINCRBYFLOAT: `long double` arithmetic and printing as Valkey's (through
/// `util::long_double_incr`). The increment is checked first — not a float, then infinite —
/// then the key, then the stored value and the sum.
fn hincrbyfloat(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let incr = argv[3];
    // 0 + incr fails exactly when incr is not a float or is infinite.
    match long_double_incr(None, incr) {
        Ok(_) => {}
        Err(LdIncrError::NanOrInfinity) => {
            ctx.out.err("value is NaN or Infinity");
            return;
        }
        Err(LdIncrError::Increment | LdIncrError::Current) => {
            ctx.out.err("value is not a valid float");
            return;
        }
    }
    let field = argv[2];
    write_hash(ctx, argv[1], |h, limits, out| {
        let text = match long_double_incr(h.get(field), incr) {
            Ok(text) => text,
            Err(LdIncrError::Current) => {
                out.err("hash value is not a float");
                return false;
            }
            Err(LdIncrError::NanOrInfinity) => {
                out.err("increment would produce NaN or Infinity");
                return false;
            }
            Err(LdIncrError::Increment) => {
                out.err("value is not a valid float");
                return false;
            }
        };
        h.set(field, &text, limits);
        out.bulk(&text);
        true
    });
}

/// HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]. The cursor is checked first,
/// then the key (a missing one answers an empty page without looking at the options), then
/// the options. A listpack-encoded hash comes back whole with cursor 0, whatever the cursor
/// and COUNT; a hashtable uses the position cursor of [`HashVal::scan_table`].
fn hscan(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(cursor) = super::generic::parse_cursor(argv[2]) else {
        ctx.out.err("invalid cursor");
        return;
    };
    let Some((h, out)) = read_hash(ctx, argv[1]) else {
        return;
    };
    let Some(h) = h else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return;
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut novalues = false;
    let mut i = 3;
    while i < argv.len() {
        let (opt, more) = (argv[i], argv.len() - i);
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
            // "*" matches everything: Valkey skips the matcher.
            pattern = Some(argv[i + 1]).filter(|p| *p != b"*");
            i += 2;
        } else if opt_is(opt, "novalues") {
            novalues = true;
            i += 1;
        } else if opt_is(opt, "noscores") {
            out.err("NOSCORES option can only be used in ZSCAN");
            return;
        } else {
            out.err(ERR_SYNTAX);
            return;
        }
    }
    let mut next = 0;
    let pairs: Vec<(&[u8], &[u8])> = if h.is_listpack() {
        h.iter().collect()
    } else {
        let (positions, after) = h.scan_table(cursor, count);
        next = after;
        positions.rev().filter_map(|i| h.get_index(i)).collect()
    };
    let mut items: Vec<&[u8]> = Vec::with_capacity(pairs.len() * 2);
    for (f, v) in pairs {
        if pattern.is_some_and(|p| !glob_match(p, f, false)) {
            continue;
        }
        items.push(f);
        if !novalues {
            items.push(v);
        }
    }
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(items.len());
    for item in items {
        out.bulk(item);
    }
}

/// A repeating HRANDFIELD whose reply would pass this size is refused. Valkey has no such
/// limit and builds the reply until the client is dropped or memory runs out; we answer an
/// error instead (a reply this large is never what a client wants).
const RANDOM_REPLY_BYTES_MAX: u64 = 512 << 20;

/// A small PRNG for one HRANDFIELD call, seeded from the shard's generator (whose borrow
/// would otherwise overlap the hash's).
struct CallRng(u64);

impl CallRng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0), by multiply-shift.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// HRANDFIELD key [count [WITHVALUES]]: the count is checked (integer, range, then the
/// syntax of the rest, then WITHVALUES's tighter range) before the key.
fn hrandfield(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let mut rng = CallRng(ctx.ks.random());
    if argv.len() == 2 {
        let Some((h, out)) = read_hash(ctx, argv[1]) else {
            return;
        };
        match h.and_then(|h| h.get_index(rng.below(h.len()))) {
            Some((f, _)) => out.bulk(f),
            None => out.null(),
        }
        return;
    }
    let Some(count) = int_arg(ctx.out, argv[2]) else {
        return;
    };
    if count == i64::MIN {
        ctx.out.err(format!(
            "value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        ));
        return;
    }
    if argv.len() > 4 || (argv.len() == 4 && !opt_is(argv[3], "withvalues")) {
        ctx.out.err(ERR_SYNTAX);
        return;
    }
    let withvalues = argv.len() == 4;
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        ctx.out.err("value is out of range");
        return;
    }
    let resp3 = ctx.out.resp3;
    let Some((h, out)) = read_hash(ctx, argv[1]) else {
        return;
    };
    let Some(h) = h.filter(|_| count != 0) else {
        out.array(0);
        return;
    };
    let size = h.len();
    let reply_pair = |out: &mut Out, i: usize| {
        if let Some((f, v)) = h.get_index(i) {
            if withvalues && resp3 {
                out.array(2);
            }
            out.bulk(f);
            if withvalues {
                out.bulk(v);
            }
        }
    };
    let header = |out: &mut Out, n: usize| {
        out.array(if withvalues && !resp3 { n * 2 } else { n });
    };
    let wanted = count.unsigned_abs();
    // A negative count (or 1) picks independently, repeats allowed, in pick order.
    if count < 0 || count == 1 {
        let per_item = (h.payload_bytes() / size) as u64 + 24;
        if wanted.saturating_mul(per_item) > RANDOM_REPLY_BYTES_MAX {
            out.err(format!(
                "count is too large: the reply would exceed {RANDOM_REPLY_BYTES_MAX} bytes"
            ));
            return;
        }
        // The check above bounds `wanted` far below usize::MAX.
        let wanted = wanted as usize;
        header(out, wanted);
        for _ in 0..wanted {
            reply_pair(out, rng.below(size));
        }
        return;
    }
    // Distinct fields: the whole hash when the count covers it, in the encoding's order.
    let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
    if wanted >= size {
        header(out, size);
        (0..size).for_each(|i| reply_pair(out, i));
        return;
    }
    header(out, wanted);
    if h.is_listpack() {
        // Valkey samples a listpack in order (`lpRandomPairsUnique`): selection sampling,
        // each position taken with probability needed / remaining.
        let mut needed = wanted;
        for i in 0..size {
            if needed == 0 {
                break;
            }
            if rng.below(size - i) < needed {
                reply_pair(out, i);
                needed -= 1;
            }
        }
    } else if wanted * 3 > size {
        // Most of the hash: a partial shuffle of all positions.
        let mut picks: Vec<usize> = (0..size).collect();
        for k in 0..wanted {
            let j = k + rng.below(size - k);
            picks.swap(k, j);
        }
        picks[..wanted].iter().for_each(|&i| reply_pair(out, i));
    } else {
        // A small part of a large hash: random picks, repeats skipped.
        let mut seen = std::collections::HashSet::with_capacity(wanted);
        while seen.len() < wanted {
            let i = rng.below(size);
            if seen.insert(i) {
                reply_pair(out, i);
            }
        }
    }
}

#[cfg(test)]
mod tests;
