//! The set family: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER,
//! SMOVE, SINTER, SINTERCARD, SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE, SSCAN.
//!
//! Replies, errors and encodings follow Valkey 8's `t_set.c`; the value type and the set
//! algebra live in `crate::keyspace::set`, this file parses arguments and writes replies.
//!
//! Several keys. SMOVE and the intersection, union and difference commands may name keys on
//! different shards (standalone mode). When all their keys share a shard the plain handler
//! runs there; otherwise the coordinators at the end of this file run the same steps inside
//! one shard-ordered transaction (`multi::lock`): the operand sets are copied out of their
//! shards, the result is computed on the coordinating shard, and a STORE writes it on the
//! destination's shard before the locks are released, so no client sees a state in between.

use super::multi::{self, LocalFut, MultiCtx, TxnHandle};
use super::spec::{
    acl, flag, key_at, keyflag as kf, keys_from, BeginSearch, CommandSpec, Exec, FindKeys, Group,
    KeySpec,
};
use super::{cstr, int_arg, opt_is, KeyCtx, ERR_SYNTAX, ERR_WRONGTYPE};
use crate::keyspace::encoding::Limits;
use crate::keyspace::set::{self as sets, Elem, Rng, SetOp, SetVal};
use crate::keyspace::{Entry, Keyspace, SmallBytes, Value};
use crate::resp::Out;
use crate::shard::{unix_ms, Shard};
use crate::util::parse_i64;

const RO_ACCESS: u32 = kf::RO | kf::ACCESS;

/// SINTERCARD's keys: a count at argument 1, then that many keys.
const SINTERCARD_KEYS: KeySpec = KeySpec {
    notes: None,
    flags: RO_ACCESS,
    begin: BeginSearch::Index(1),
    find: FindKeys::Keynum {
        keynumidx: 0,
        firstkey: 1,
        step: 1,
    },
};

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::INSERT)],
        exec: Exec::Key(sadd),
        history: &[("2.4.0", "Takes several `member` arguments.")],
        ..CommandSpec::new("sadd", -3, flag::WRITE | flag::DENYOOM | flag::FAST, acl::SET, Group::Set, "1.0.0",
            "Adds one or more members to a set, creating the set if the key does not exist.",
            "O(1) per member added, so O(N) for N members.", "key:key member:string...")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::DELETE)],
        exec: Exec::Key(srem),
        history: &[("2.4.0", "Takes several `member` arguments.")],
        ..CommandSpec::new("srem", -3, flag::WRITE | flag::FAST, acl::SET, Group::Set, "1.0.0",
            "Removes one or more members from a set, deleting the key when the set becomes empty.",
            "O(N) where N is the number of members to remove.", "key:key member:string...")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(smembers),
        tips: &["nondeterministic_output_order"],
        ..CommandSpec::new("smembers", 2, flag::READONLY, acl::SET, Group::Set, "1.0.0",
            "Returns every member of a set.", "O(N) where N is the number of members of the set.", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO)],
        exec: Exec::Key(sismember),
        ..CommandSpec::new("sismember", 3, flag::READONLY | flag::FAST, acl::SET, Group::Set, "1.0.0",
            "Tells whether a value is a member of a set.", "O(1)", "key:key member:string")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(smismember),
        ..CommandSpec::new("smismember", -3, flag::READONLY | flag::FAST, acl::SET, Group::Set, "6.2.0",
            "Tells, for each of several values, whether it is a member of a set.",
            "O(N) where N is the number of values checked.", "key:key member:string...")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO)],
        exec: Exec::Key(scard),
        ..CommandSpec::new("scard", 2, flag::READONLY | flag::FAST, acl::SET, Group::Set, "1.0.0",
            "Returns the number of members of a set.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::ACCESS | kf::DELETE)],
        exec: Exec::Key(spop),
        tips: &["nondeterministic_output"],
        history: &[("3.2.0", "Takes an optional `count` argument.")],
        ..CommandSpec::new("spop", -2, flag::WRITE | flag::FAST, acl::SET, Group::Set, "1.0.0",
            "Removes and returns one or more random members of a set, deleting the key when the set becomes empty.",
            "O(1) without a count, else O(N) where N is the count.", "key:key [count:integer{since=3.2.0}]")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(srandmember),
        tips: &["nondeterministic_output"],
        history: &[("2.6.0", "Takes an optional `count` argument.")],
        ..CommandSpec::new("srandmember", -2, flag::READONLY, acl::SET, Group::Set, "1.0.0",
            "Returns one or more random members of a set, leaving the set unchanged.",
            "O(1) without a count, else O(N) where N is the absolute value of the count.",
            "key:key [count:integer{since=2.6.0}]")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::ACCESS | kf::DELETE), key_at(2, kf::RW | kf::INSERT)],
        exec: Exec::Key(smove),
        multi: Some(smove_coord),
        ..CommandSpec::new("smove", 4, flag::WRITE | flag::FAST, acl::SET, Group::Set, "1.0.0",
            "Moves a member from one set to another.", "O(1)",
            "source:key@0 destination:key@1 member:string")
    },
    CommandSpec {
        keys: &[keys_from(1, -1, 1, RO_ACCESS)],
        exec: Exec::Key(sinter),
        multi: Some(algebra_coord),
        tips: &["nondeterministic_output_order"],
        ..CommandSpec::new("sinter", -2, flag::READONLY, acl::SET, Group::Set, "1.0.0",
            "Returns the intersection of several sets.",
            "O(N*M) at worst, N being the size of the smallest set and M the number of sets.", "key:key...")
    },
    CommandSpec {
        keys: &[SINTERCARD_KEYS],
        exec: Exec::Key(sintercard),
        multi: Some(algebra_coord),
        ..CommandSpec::new("sintercard", -3, flag::READONLY, acl::SET, Group::Set, "7.0.0",
            "Returns the number of members in the intersection of several sets, optionally stopping at a limit.",
            "O(N*M) at worst, N being the size of the smallest set and M the number of sets.",
            "numkeys:integer key:key... [LIMIT limit:integer]")
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::UPDATE), keys_from(2, -1, 1, RO_ACCESS)],
        exec: Exec::Key(sinterstore),
        multi: Some(algebra_coord),
        ..CommandSpec::new("sinterstore", -3, flag::WRITE | flag::DENYOOM, acl::SET, Group::Set, "1.0.0",
            "Stores the intersection of several sets in a key, replacing what it held.",
            "O(N*M) at worst, N being the size of the smallest set and M the number of sets.",
            "destination:key@0 key:key@1...")
    },
    CommandSpec {
        keys: &[keys_from(1, -1, 1, RO_ACCESS)],
        exec: Exec::Key(sunion),
        multi: Some(algebra_coord),
        tips: &["nondeterministic_output_order"],
        ..CommandSpec::new("sunion", -2, flag::READONLY, acl::SET, Group::Set, "1.0.0",
            "Returns the union of several sets.", "O(N) where N is the total number of members of the sets.", "key:key...")
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::UPDATE), keys_from(2, -1, 1, RO_ACCESS)],
        exec: Exec::Key(sunionstore),
        multi: Some(algebra_coord),
        ..CommandSpec::new("sunionstore", -3, flag::WRITE | flag::DENYOOM, acl::SET, Group::Set, "1.0.0",
            "Stores the union of several sets in a key, replacing what it held.",
            "O(N) where N is the total number of members of the sets.", "destination:key@0 key:key@1...")
    },
    CommandSpec {
        keys: &[keys_from(1, -1, 1, RO_ACCESS)],
        exec: Exec::Key(sdiff),
        multi: Some(algebra_coord),
        tips: &["nondeterministic_output_order"],
        ..CommandSpec::new("sdiff", -2, flag::READONLY, acl::SET, Group::Set, "1.0.0",
            "Returns the members of the first set that are in none of the others.",
            "O(N) where N is the total number of members of the sets.", "key:key...")
    },
    CommandSpec {
        keys: &[key_at(1, kf::OW | kf::UPDATE), keys_from(2, -1, 1, RO_ACCESS)],
        exec: Exec::Key(sdiffstore),
        multi: Some(algebra_coord),
        ..CommandSpec::new("sdiffstore", -3, flag::WRITE | flag::DENYOOM, acl::SET, Group::Set, "1.0.0",
            "Stores the difference of the first set and the others in a key, replacing what it held.",
            "O(N) where N is the total number of members of the sets.", "destination:key@0 key:key@1...")
    },
    CommandSpec {
        keys: &[key_at(1, RO_ACCESS)],
        exec: Exec::Key(sscan),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("sscan", -3, flag::READONLY, acl::SET, Group::Set, "2.8.0",
            "Iterates over the members of a set.",
            "O(1) per call; O(N) for a whole iteration, N being the number of members.",
            "key:key cursor:integer [MATCH pattern:pattern] [COUNT count:integer]")
    },
];

/// Most members one SRANDMEMBER with a negative count may return. Valkey has no bound (it
/// builds the reply until the client's output limit, unlimited by default, or memory runs
/// out); corekey builds each reply in memory, so it refuses larger counts with an error.
const RANDOM_REPEATS_MAX: u64 = 1 << 24;

/// Writes one member as a bulk string.
fn reply_elem(out: &mut Out, e: Elem<'_>) {
    match e {
        Elem::Int(n) => out.bulk_i64(n),
        Elem::Str(s) => out.bulk(s),
    }
}

/// Writes members as a set reply (an array in RESP2).
fn reply_set_of<'a>(out: &mut Out, n: usize, elems: impl IntoIterator<Item = Elem<'a>>) {
    out.set(n);
    for e in elems {
        reply_elem(out, e);
    }
}

/// Writes owned members as a set reply.
fn reply_owned_set(out: &mut Out, members: &[SmallBytes]) {
    out.set(members.len());
    for m in members {
        out.bulk(m);
    }
}

/// What a lookup found, as a set (Valkey's `checkType`): `Ok(None)` when the key is
/// missing, `Err(())` after a WRONGTYPE reply.
type SetLookup<'c> = (Result<Option<&'c mut SetVal>, ()>, &'c mut Out);

fn as_set<'c>((found, out): (Option<&'c mut Entry>, &'c mut Out)) -> SetLookup<'c> {
    match found.map(|e| &mut e.value) {
        None => (Ok(None), out),
        Some(Value::Set(s)) => (Ok(Some(s)), out),
        Some(_) => {
            out.err(ERR_WRONGTYPE);
            (Err(()), out)
        }
    }
}

/// The set at `key` for a read (`lookupKeyRead`: counts a hit or a miss).
fn read_set<'c>(ctx: &'c mut KeyCtx<'_>, key: &[u8]) -> SetLookup<'c> {
    as_set(ctx.read_out(key))
}

/// The set at `key` for a write (`lookupKeyWrite`: no hit or miss counted).
fn write_set<'c>(ctx: &'c mut KeyCtx<'_>, key: &[u8]) -> SetLookup<'c> {
    as_set(ctx.write_out(key))
}

fn sadd(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let (key, members) = (argv[1], &argv[2..]);
    let limits = ctx.limits();
    let added = match write_set(ctx, key) {
        (Err(()), _) => return,
        (Ok(Some(s)), _) => {
            s.reserve_for(members.len(), &limits);
            members.iter().filter(|m| s.add(m, &limits)).count()
        }
        (Ok(None), _) => {
            let mut s = SetVal::create(members[0], members.len(), &limits);
            let added = members.iter().filter(|m| s.add(m, &limits)).count();
            let now = ctx.now_ms;
            ctx.db().set(key, Value::Set(Box::new(s)), now, false);
            added
        }
    };
    if added > 0 {
        ctx.modified(key);
    }
    ctx.out.int(added as i64);
}

fn srem(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let key = argv[1];
    let (deleted, emptied) = match write_set(ctx, key) {
        (Err(()), _) => return,
        (Ok(None), out) => {
            out.int(0);
            return;
        }
        (Ok(Some(s)), _) => {
            let mut deleted = 0;
            for m in &argv[2..] {
                if s.remove(m) {
                    deleted += 1;
                    if s.is_empty() {
                        break;
                    }
                }
            }
            (deleted, s.is_empty())
        }
    };
    if emptied {
        ctx.db().remove(key);
    }
    if deleted > 0 {
        ctx.modified(key);
    }
    ctx.out.int(deleted);
}

fn smembers(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match read_set(ctx, argv[1]) {
        (Err(()), _) => {}
        (Ok(None), out) => out.set(0),
        (Ok(Some(s)), out) => reply_set_of(out, s.len(), s.iter()),
    }
}

fn sismember(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match read_set(ctx, argv[1]) {
        (Err(()), _) => {}
        (Ok(s), out) => out.int(i64::from(s.is_some_and(|s| s.contains(argv[2])))),
    }
}

fn smismember(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let (Ok(s), out) = read_set(ctx, argv[1]) else {
        return;
    };
    let members = &argv[2..];
    out.array(members.len());
    for m in members {
        out.int(i64::from(s.as_ref().is_some_and(|s| s.contains(m))));
    }
}

fn scard(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match read_set(ctx, argv[1]) {
        (Err(()), _) => {}
        (Ok(s), out) => out.int(s.map_or(0, |s| s.len() as i64)),
    }
}

/// A count argument that must be in `0..=i64::MAX` (Valkey's `getPositiveLongFromObjectOrReply`
/// with its default message, which covers non-integers too).
fn positive_count(out: &mut Out, arg: &[u8]) -> Option<u64> {
    match parse_i64(arg).and_then(|n| u64::try_from(n).ok()) {
        Some(n) => Some(n),
        None => {
            out.err("value is out of range, must be positive");
            None
        }
    }
}

fn spop(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match argv.len() {
        2 => {}
        3 => return spop_count(ctx, argv),
        _ => return ctx.out.err(ERR_SYNTAX),
    }
    let key = argv[1];
    let mut rng = Rng::new(ctx.ks.random());
    let (popped, emptied) = match write_set(ctx, key) {
        (Err(()), _) => return,
        (Ok(None), out) => return out.null(),
        (Ok(Some(s)), _) => (s.pop_random(&mut rng), s.is_empty()),
    };
    if emptied {
        ctx.db().remove(key);
    }
    ctx.modified(key);
    ctx.out.bulk(&popped);
}

fn spop_count(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let key = argv[1];
    let Some(count) = positive_count(ctx.out, argv[2]) else {
        return;
    };
    let limits = ctx.limits();
    let mut rng = Rng::new(ctx.ks.random());
    match write_set(ctx, key) {
        (Err(()), _) => {}
        (Ok(None), out) => out.set(0),
        (Ok(Some(_)), out) if count == 0 => out.set(0),
        (Ok(Some(s)), out) => {
            let size = s.len();
            if count >= size as u64 {
                // Everything: the reply is the whole set and the key goes.
                reply_set_of(out, size, s.iter());
                ctx.db().remove(key);
            } else {
                let popped = s.pop_some(count as usize, &limits, &mut rng);
                reply_owned_set(out, &popped);
            }
            ctx.modified(key);
        }
    }
}

fn srandmember(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match argv.len() {
        2 => {}
        3 => return srandmember_count(ctx, argv),
        _ => return ctx.out.err(ERR_SYNTAX),
    }
    let mut rng = Rng::new(ctx.ks.random());
    match read_set(ctx, argv[1]) {
        (Err(()), _) => {}
        (Ok(None), out) => out.null(),
        (Ok(Some(s)), out) => reply_elem(out, s.random(&mut rng)),
    }
}

fn srandmember_count(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(n) = int_arg(ctx.out, argv[2]) else {
        return;
    };
    if n == i64::MIN {
        ctx.out.err(format!(
            "value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        ));
        return;
    }
    let (count, repeats) = (n.unsigned_abs(), n < 0);
    let mut rng = Rng::new(ctx.ks.random());
    let (Ok(s), out) = read_set(ctx, argv[1]) else {
        return;
    };
    let Some(s) = s.filter(|_| count > 0) else {
        out.array(0);
        return;
    };
    if repeats || count == 1 {
        if count > RANDOM_REPEATS_MAX {
            out.err(format!(
                "count is out of range, a negative count may ask for at most {RANDOM_REPEATS_MAX} members"
            ));
            return;
        }
        out.array(count as usize);
        for _ in 0..count {
            reply_elem(out, s.random(&mut rng));
        }
    } else if count >= s.len() as u64 {
        out.array(s.len());
        for e in s.iter() {
            reply_elem(out, e);
        }
    } else {
        let picked = s.sample_distinct(count as usize, &mut rng);
        out.array(picked.len());
        for e in picked {
            reply_elem(out, e);
        }
    }
}

/// The outcome of SMOVE's checks on its two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Missing,
    Set,
    Other,
}

fn kind_of(v: Option<&Value>) -> KeyKind {
    match v {
        None => KeyKind::Missing,
        Some(Value::Set(_)) => KeyKind::Set,
        Some(_) => KeyKind::Other,
    }
}

/// What SMOVE's source side found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// The member left the source (which went if it emptied).
    Moved,
    /// The source is missing or lacks the member: the answer is 0.
    Absent,
    WrongType,
}

/// SMOVE's source side: checks both keys' types (the destination's was read already), then
/// removes `member` from the source, deleting the key if that empties it.
fn smove_take(ctx: &mut KeyCtx<'_>, src: &[u8], dst_kind: KeyKind, member: &[u8]) -> Take {
    let (found, emptied) = match ctx.write(src).map(|e| &mut e.value) {
        None => return Take::Absent,
        Some(Value::Set(_)) if dst_kind == KeyKind::Other => return Take::WrongType,
        Some(Value::Set(s)) => (s.remove(member), s.is_empty()),
        Some(_) => return Take::WrongType,
    };
    if !found {
        return Take::Absent;
    }
    if emptied {
        ctx.db().remove(src);
    }
    ctx.modified(src);
    Take::Moved
}

/// Writes SMOVE's answer when the member did not move.
fn reply_not_moved(out: &mut Out, take: Take) {
    match take {
        Take::WrongType => out.err(ERR_WRONGTYPE),
        _ => out.int(0),
    }
}

/// SMOVE's destination side: adds `member`, creating the set as Valkey does for one member.
fn smove_put(ctx: &mut KeyCtx<'_>, dst: &[u8], member: &[u8]) {
    let limits = ctx.limits();
    let now = ctx.now_ms;
    let added = match ctx.write(dst).map(|e| &mut e.value) {
        Some(Value::Set(s)) => s.add(member, &limits),
        Some(_) => unreachable!("SMOVE checked the destination's type under the same lock"),
        None => {
            let mut s = SetVal::create(member, 1, &limits);
            s.add(member, &limits);
            ctx.db().set(dst, Value::Set(Box::new(s)), now, false);
            true
        }
    };
    if added {
        ctx.modified(dst);
    }
}

fn smove(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let (src, dst, member) = (argv[1], argv[2], argv[3]);
    let dst_kind = kind_of(ctx.write(dst).map(|e| &e.value));
    if src == dst {
        // The same set: nothing moves; the answer is whether the member is there.
        match write_set(ctx, src) {
            (Err(()), _) => {}
            (Ok(None), out) => out.int(0),
            (Ok(Some(s)), out) => out.int(i64::from(s.contains(member))),
        }
        return;
    }
    let take = smove_take(ctx, src, dst_kind, member);
    if take != Take::Moved {
        return reply_not_moved(ctx.out, take);
    }
    smove_put(ctx, dst, member);
    ctx.out.int(1);
}

/// Looks up every operand key for a read, in order, as Valkey does before computing: an
/// expired key goes, hits and misses are counted. Returns false after a WRONGTYPE reply.
fn look_up_operands(ctx: &mut KeyCtx<'_>, keys: &[&[u8]]) -> bool {
    for k in keys {
        if let (Err(()), _) = read_set(ctx, k) {
            return false;
        }
    }
    true
}

/// Whether the first key is named again among the others while it holds a set (SDIFF's
/// "same set" shortcut: the difference is then empty).
fn first_repeated(keys: &[&[u8]], first_present: bool) -> bool {
    first_present && keys[1..].contains(&keys[0])
}

/// The intersection of `operands` written as a set reply.
fn inter_reply(out: &mut Out, operands: &[Option<&SetVal>]) {
    let Some(mut present) = operands.iter().copied().collect::<Option<Vec<&SetVal>>>() else {
        return out.set(0);
    };
    sets::sort_for_inter(&mut present);
    let members: Vec<Elem<'_>> = sets::inter(&present).collect();
    reply_set_of(out, members.len(), members);
}

/// The size of the intersection of `operands`, counting at most `limit` (0: no limit).
fn inter_card(operands: &[Option<&SetVal>], limit: u64) -> i64 {
    let Some(mut present) = operands.iter().copied().collect::<Option<Vec<&SetVal>>>() else {
        return 0;
    };
    sets::sort_for_inter(&mut present);
    let mut n: u64 = 0;
    for _ in sets::inter(&present) {
        n += 1;
        if limit != 0 && n >= limit {
            break;
        }
    }
    n as i64
}

/// What SINTERSTORE stores for `operands` (`None`: an empty result, the destination goes).
fn inter_store_value(operands: &[Option<&SetVal>], limits: &Limits) -> Option<SetVal> {
    let mut present = operands.iter().copied().collect::<Option<Vec<&SetVal>>>()?;
    sets::sort_for_inter(&mut present);
    Some(sets::inter_store(&present, limits)).filter(|s| !s.is_empty())
}

/// Stores `result` at `dst` (replacing any value and TTL), or deletes `dst` when there is no
/// result; returns the size stored.
fn store_result(ctx: &mut KeyCtx<'_>, dst: &[u8], result: Option<SetVal>) -> usize {
    let now = ctx.now_ms;
    match result {
        Some(s) if !s.is_empty() => {
            let n = s.len();
            ctx.db().set(dst, Value::Set(Box::new(s)), now, false);
            ctx.modified(dst);
            n
        }
        _ => {
            if ctx.db().delete(dst, now) {
                ctx.modified(dst);
            }
            0
        }
    }
}

/// The operand sets of `keys` in database `db` of this shard, after [`look_up_operands`].
fn operands_here<'k>(ks: &'k Keyspace, db: usize, keys: &[&[u8]]) -> Vec<Option<&'k SetVal>> {
    keys.iter().map(|k| ks.dbs[db].set_at(k)).collect()
}

fn sinter(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let keys = &argv[1..];
    if !look_up_operands(ctx, keys) {
        return;
    }
    inter_reply(ctx.out, &operands_here(ctx.ks, ctx.db, keys));
}

/// SINTERCARD's arguments: how many keys, and the LIMIT (0: none).
fn intercard_args(out: &mut Out, argv: &[&[u8]]) -> Option<(usize, u64)> {
    const NUMKEYS_ERR: &str = "numkeys should be greater than 0";
    let Some(numkeys) = parse_i64(argv[1]).filter(|&n| n >= 1) else {
        out.err(NUMKEYS_ERR);
        return None;
    };
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > argv.len() - 2 {
        out.err("Number of keys can't be greater than number of args");
        return None;
    }
    let mut limit = 0;
    let mut j = 2 + numkeys;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if opt_is(argv[j], "limit") && more > 0 {
            j += 1;
            match parse_i64(argv[j]).and_then(|n| u64::try_from(n).ok()) {
                Some(n) => limit = n,
                None => {
                    out.err("LIMIT can't be negative");
                    return None;
                }
            }
        } else {
            out.err(ERR_SYNTAX);
            return None;
        }
        j += 1;
    }
    Some((numkeys, limit))
}

fn sintercard(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some((numkeys, limit)) = intercard_args(ctx.out, argv) else {
        return;
    };
    let keys = &argv[2..2 + numkeys];
    if !look_up_operands(ctx, keys) {
        return;
    }
    let n = inter_card(&operands_here(ctx.ks, ctx.db, keys), limit);
    ctx.out.int(n);
}

fn sinterstore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let (dst, keys) = (argv[1], &argv[2..]);
    if !look_up_operands(ctx, keys) {
        return;
    }
    let limits = ctx.limits();
    let result = inter_store_value(&operands_here(ctx.ks, ctx.db, keys), &limits);
    let n = store_result(ctx, dst, result);
    ctx.out.int(n as i64);
}

/// SUNION/SDIFF and their STORE forms on this shard.
fn union_diff_here(ctx: &mut KeyCtx<'_>, dst: Option<&[u8]>, keys: &[&[u8]], op: SetOp) {
    if !look_up_operands(ctx, keys) {
        return;
    }
    let limits = ctx.limits();
    let operands = operands_here(ctx.ks, ctx.db, keys);
    let repeated = first_repeated(keys, operands[0].is_some());
    let result = sets::union_diff(&operands, op, dst.is_some(), repeated, &limits);
    match dst {
        None => reply_set_of(ctx.out, result.len(), result.iter()),
        Some(dst) => {
            let n = store_result(ctx, dst, Some(result));
            ctx.out.int(n as i64);
        }
    }
}

fn sunion(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    union_diff_here(ctx, None, &argv[1..], SetOp::Union);
}

fn sunionstore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    union_diff_here(ctx, Some(argv[1]), &argv[2..], SetOp::Union);
}

fn sdiff(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    union_diff_here(ctx, None, &argv[1..], SetOp::Diff);
}

fn sdiffstore(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    union_diff_here(ctx, Some(argv[1]), &argv[2..], SetOp::Diff);
}

fn sscan(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    // Valkey reads the cursor as a C string: it ends at a NUL byte.
    let Some(cursor) = super::generic::parse_cursor(cstr(argv[2])) else {
        return ctx.out.err("invalid cursor");
    };
    let (s, out) = match read_set(ctx, argv[1]) {
        (Err(()), _) => return,
        (Ok(None), out) => {
            out.array(2);
            out.bulk(b"0");
            out.array(0);
            return;
        }
        (Ok(Some(s)), out) => (&*s, out),
    };
    let mut count: usize = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - i;
        let opt = argv[i];
        if opt_is(opt, "count") && more >= 2 {
            let Some(n) = int_arg(out, argv[i + 1]) else {
                return;
            };
            if n < 1 {
                return out.err(ERR_SYNTAX);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
            i += 2;
        } else if opt_is(opt, "match") && more >= 2 {
            // The pattern is used whole (NUL bytes included); "*" alone matches everything.
            pattern = Some(argv[i + 1]).filter(|p| *p != b"*");
            i += 2;
        } else if opt_is(opt, "novalues") {
            return out.err("NOVALUES option can only be used in HSCAN");
        } else if opt_is(opt, "noscores") {
            return out.err("NOSCORES option can only be used in ZSCAN");
        } else {
            return out.err(ERR_SYNTAX);
        }
    }
    let mut found = Vec::new();
    let next = s.scan(cursor, count, pattern, &mut found);
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(found.len());
    for m in &found {
        out.bulk(m);
    }
}

// ---- Coordinators: the same commands when their keys live on several shards. ----

/// One operand key as its shard saw it.
enum Operand {
    Missing,
    WrongType,
    Set(Box<SetVal>),
}

/// Runs `f` on shard `s` with a [`KeyCtx`] for database `db` (replies go nowhere).
fn with_ctx<R>(s: &Shard, db: usize, f: impl FnOnce(&mut KeyCtx<'_>) -> R) -> R {
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

/// Reads `keys` on this shard as [`look_up_operands`] does, copying the sets out.
fn fetch_operands(ks: &mut Keyspace, db: usize, keys: &[Vec<u8>], now_ms: i64) -> Vec<Operand> {
    let Keyspace { dbs, stats, .. } = ks;
    keys.iter()
        .map(|k| match dbs[db].lookup_read(stats, k, now_ms) {
            None => Operand::Missing,
            Some(e) => match &e.value {
                Value::Set(s) => Operand::Set(s.clone()),
                _ => Operand::WrongType,
            },
        })
        .collect()
}

/// Copies the sets at argument positions `positions` out of their shards (which `txn`
/// holds), in argument order.
async fn gather(
    shard: &Shard,
    txn: &TxnHandle<'_>,
    db: usize,
    argv: &[&[u8]],
    positions: &[usize],
) -> Vec<Operand> {
    let mut got: Vec<Option<Operand>> = positions.iter().map(|_| None).collect();
    let groups = multi::by_shard(shard, argv, positions);
    for (&t, ps) in &groups {
        let keys = multi::owned(argv, ps);
        let fetched = txn
            .run(t, move |s| {
                fetch_operands(&mut s.ks.borrow_mut(), db, &keys, unix_ms())
            })
            .await;
        for (&p, op) in ps.iter().zip(fetched) {
            let i = positions
                .iter()
                .position(|&q| q == p)
                .expect("a gathered position");
            got[i] = Some(op);
        }
    }
    got.into_iter()
        .map(|o| o.expect("every position gathered"))
        .collect()
}

/// The sets of gathered operands, or `None` after a WRONGTYPE reply.
fn operand_sets<'a>(out: &mut Out, ops: &'a [Operand]) -> Option<Vec<Option<&'a SetVal>>> {
    let mut v = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Operand::Missing => v.push(None),
            Operand::Set(s) => v.push(Some(&**s)),
            Operand::WrongType => {
                out.err(ERR_WRONGTYPE);
                return None;
            }
        }
    }
    Some(v)
}

/// Which intersection, union or difference command a coordinator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algebra {
    Inter,
    InterCard { limit: u64 },
    InterStore,
    UnionDiff { op: SetOp, store: bool },
}

async fn algebra_async(ctx: MultiCtx<'_>) {
    let MultiCtx {
        shard,
        client,
        cmd,
        argv,
        out,
        txn: held,
        ..
    } = ctx;
    let db = client.db;
    let (what, first_key, last_key) = match cmd.spec.name {
        "sinter" => (Algebra::Inter, 1, argv.len()),
        "sintercard" => {
            let Some((numkeys, limit)) = intercard_args(out, argv) else {
                return;
            };
            (Algebra::InterCard { limit }, 2, 2 + numkeys)
        }
        "sinterstore" => (Algebra::InterStore, 2, argv.len()),
        "sunion" => (
            Algebra::UnionDiff {
                op: SetOp::Union,
                store: false,
            },
            1,
            argv.len(),
        ),
        "sunionstore" => (
            Algebra::UnionDiff {
                op: SetOp::Union,
                store: true,
            },
            2,
            argv.len(),
        ),
        "sdiff" => (
            Algebra::UnionDiff {
                op: SetOp::Diff,
                store: false,
            },
            1,
            argv.len(),
        ),
        "sdiffstore" => (
            Algebra::UnionDiff {
                op: SetOp::Diff,
                store: true,
            },
            2,
            argv.len(),
        ),
        other => unreachable!("{other} has no set-algebra coordinator"),
    };
    let positions: Vec<usize> = (first_key..last_key).collect();
    let stores = matches!(
        what,
        Algebra::InterStore | Algebra::UnionDiff { store: true, .. }
    );
    let dst = stores.then(|| argv[1].to_vec());
    let dst_shard = dst.as_ref().map(|d| shard.shard_of_key(d));
    let targets = positions
        .iter()
        .map(|&p| shard.shard_of_key(argv[p]))
        .chain(dst_shard);
    let txn = multi::lock(shard, held, targets).await;
    let ops = gather(shard, &txn, db, argv, &positions).await;
    let Some(operands) = operand_sets(out, &ops) else {
        return;
    };
    let limits = shard.ks.borrow().limits;
    let result = match what {
        Algebra::Inter => return inter_reply(out, &operands),
        Algebra::InterCard { limit } => return out.int(inter_card(&operands, limit)),
        Algebra::InterStore => inter_store_value(&operands, &limits),
        Algebra::UnionDiff { op, store } => {
            let keys: Vec<&[u8]> = positions.iter().map(|&p| argv[p]).collect();
            let repeated = first_repeated(&keys, operands[0].is_some());
            let r = sets::union_diff(&operands, op, store, repeated, &limits);
            if !store {
                return reply_set_of(out, r.len(), r.iter());
            }
            Some(r)
        }
    };
    let (Some(dst), Some(t)) = (dst, dst_shard) else {
        unreachable!("only the STORE forms get here");
    };
    let n = txn
        .run(t, move |s| {
            with_ctx(s, db, |ctx| store_result(ctx, &dst, result))
        })
        .await;
    drop(txn);
    out.int(n as i64);
}

async fn smove_async(ctx: MultiCtx<'_>) {
    let MultiCtx {
        shard,
        client,
        argv,
        out,
        txn: held,
        ..
    } = ctx;
    let db = client.db;
    let (src, dst, member) = (argv[1].to_vec(), argv[2].to_vec(), argv[3].to_vec());
    let (ts, td) = (shard.shard_of_key(&src), shard.shard_of_key(&dst));
    let txn = multi::lock(shard, held, [ts, td]).await;
    let d = dst.clone();
    let dst_kind = txn
        .run(td, move |s| {
            with_ctx(s, db, |ctx| kind_of(ctx.write(&d).map(|e| &e.value)))
        })
        .await;
    let m = member.clone();
    let take = txn
        .run(ts, move |s| {
            with_ctx(s, db, |ctx| smove_take(ctx, &src, dst_kind, &m))
        })
        .await;
    if take != Take::Moved {
        return reply_not_moved(out, take);
    }
    txn.run(td, move |s| {
        with_ctx(s, db, |ctx| smove_put(ctx, &dst, &member))
    })
    .await;
    drop(txn);
    out.int(1);
}

/// The coordinator of SMOVE across shards (see `multi::Coord`).
fn smove_coord(ctx: MultiCtx<'_>) -> LocalFut<'_> {
    Box::pin(smove_async(ctx))
}

/// The coordinator of SINTER, SINTERCARD, SINTERSTORE, SUNION, SUNIONSTORE, SDIFF and
/// SDIFFSTORE across shards (see `multi::Coord`).
fn algebra_coord(ctx: MultiCtx<'_>) -> LocalFut<'_> {
    Box::pin(algebra_async(ctx))
}

#[cfg(test)]
mod tests;
