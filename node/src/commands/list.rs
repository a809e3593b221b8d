//! The list family: pushes and pops at both ends, ranges, LSET/LREM/LTRIM/LINSERT/LPOS, LMOVE
//! and LMPOP, and (in `blocking.rs`) their blocking forms.
//!
//! Replies and errors follow Valkey 8's `t_list.c`. Each operation is a function over one
//! shard's keyspace, so that the same code serves a plain command, a step of a cross-shard
//! coordinator, and the re-execution of a blocked command when its key becomes ready.

use super::multi::{self, MultiCtx};
use super::spec::{acl, flag, key_at, keyflag as kf, CommandSpec, Exec, FindKeys, Group, KeySpec};
use super::{int_arg, opt_is, positive_arg, range_arg, KeyCtx, ERR_SYNTAX, ERR_WRONGTYPE};
use crate::keyspace::list::{moved_element_bytes, End, ListVal};
use crate::keyspace::{Keyspace, SmallBytes, Value};
use crate::resp::Out;
use crate::shard::unix_ms;

const LPUSH_KEY: &[KeySpec] = &[key_at(1, kf::RW | kf::INSERT)];
const POP_KEY: &[KeySpec] = &[key_at(1, kf::RW | kf::ACCESS | kf::DELETE)];
const MOVE_KEYS: &[KeySpec] = &[
    key_at(1, kf::RW | kf::ACCESS | kf::DELETE),
    key_at(2, kf::RW | kf::INSERT),
];
const MPOP_KEYS: &[KeySpec] = &[KeySpec {
    notes: None,
    flags: kf::RW | kf::ACCESS | kf::DELETE,
    begin: super::spec::BeginSearch::Index(1),
    find: FindKeys::Keynum {
        keynumidx: 0,
        firstkey: 1,
        step: 1,
    },
}];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        keys: LPUSH_KEY,
        exec: Exec::Key(lpush),
        history: &[("2.4.0", "Accepts multiple `element` arguments.")],
        ..CommandSpec::new("lpush", -3, flag::WRITE | flag::DENYOOM | flag::FAST, acl::LIST, Group::List, "1.0.0",
            "Prepends one or more elements to a list. Creates the key if it doesn't exist.",
            "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
            "key:key element:string...")
    },
    CommandSpec {
        keys: LPUSH_KEY,
        exec: Exec::Key(rpush),
        history: &[("2.4.0", "Accepts multiple `element` arguments.")],
        ..CommandSpec::new("rpush", -3, flag::WRITE | flag::DENYOOM | flag::FAST, acl::LIST, Group::List, "1.0.0",
            "Appends one or more elements to a list. Creates the key if it doesn't exist.",
            "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
            "key:key element:string...")
    },
    CommandSpec {
        keys: LPUSH_KEY,
        exec: Exec::Key(lpushx),
        history: &[("4.0.0", "Accepts multiple `element` arguments.")],
        ..CommandSpec::new("lpushx", -3, flag::WRITE | flag::DENYOOM | flag::FAST, acl::LIST, Group::List, "2.2.0",
            "Prepends one or more elements to a list only when the list exists.",
            "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
            "key:key element:string...")
    },
    CommandSpec {
        keys: LPUSH_KEY,
        exec: Exec::Key(rpushx),
        history: &[("4.0.0", "Accepts multiple `element` arguments.")],
        ..CommandSpec::new("rpushx", -3, flag::WRITE | flag::DENYOOM | flag::FAST, acl::LIST, Group::List, "2.2.0",
            "Appends an element to a list only when the list exists.",
            "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
            "key:key element:string...")
    },
    CommandSpec {
        keys: POP_KEY,
        exec: Exec::Key(lpop),
        history: &[("6.2.0", "Added the `count` argument.")],
        ..CommandSpec::new("lpop", -2, flag::WRITE | flag::FAST, acl::LIST, Group::List, "1.0.0",
            "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.",
            "O(N) where N is the number of elements returned", "key:key [count:integer]{since=6.2.0}")
    },
    CommandSpec {
        keys: POP_KEY,
        exec: Exec::Key(rpop),
        history: &[("6.2.0", "Added the `count` argument.")],
        ..CommandSpec::new("rpop", -2, flag::WRITE | flag::FAST, acl::LIST, Group::List, "1.0.0",
            "Returns and removes the last elements of a list. Deletes the list if the last element was popped.",
            "O(N) where N is the number of elements returned", "key:key [count:integer]{since=6.2.0}")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO | kf::ACCESS)],
        exec: Exec::Key(lrange),
        ..CommandSpec::new("lrange", 4, flag::READONLY, acl::LIST, Group::List, "1.0.0",
            "Returns a range of elements from a list.",
            "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.",
            "key:key start:integer stop:integer")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO)],
        exec: Exec::Key(llen),
        ..CommandSpec::new("llen", 2, flag::READONLY | flag::FAST, acl::LIST, Group::List, "1.0.0",
            "Returns the length of a list.", "O(1)", "key:key")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO | kf::ACCESS)],
        exec: Exec::Key(lindex),
        ..CommandSpec::new("lindex", 3, flag::READONLY, acl::LIST, Group::List, "1.0.0",
            "Returns an element from a list by its index.",
            "O(N) where N is the number of elements to traverse to get to the element at index.",
            "key:key index:integer")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::UPDATE)],
        exec: Exec::Key(lset),
        ..CommandSpec::new("lset", 4, flag::WRITE | flag::DENYOOM, acl::LIST, Group::List, "1.0.0",
            "Sets the value of an element in a list by its index.", "O(N) where N is the length of the list.",
            "key:key index:integer element:string")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::DELETE)],
        exec: Exec::Key(lrem),
        ..CommandSpec::new("lrem", 4, flag::WRITE, acl::LIST, Group::List, "1.0.0",
            "Removes elements from a list. Deletes the list if the last element was removed.",
            "O(N+M) where N is the length of the list and M is the number of elements removed.",
            "key:key count:integer element:string")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::DELETE)],
        exec: Exec::Key(ltrim),
        ..CommandSpec::new("ltrim", 4, flag::WRITE, acl::LIST, Group::List, "1.0.0",
            "Removes elements from both ends a list. Deletes the list if all elements were trimmed.",
            "O(N) where N is the number of elements to be removed by the operation.",
            "key:key start:integer stop:integer")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RW | kf::INSERT)],
        exec: Exec::Key(linsert),
        ..CommandSpec::new("linsert", 5, flag::WRITE | flag::DENYOOM, acl::LIST, Group::List, "2.2.0",
            "Inserts an element before or after another element in a list.",
            "O(N) where N is the number of elements to traverse before seeing the value pivot.",
            "key:key where=(BEFORE|AFTER) pivot:string element:string")
    },
    CommandSpec {
        keys: &[key_at(1, kf::RO | kf::ACCESS)],
        exec: Exec::Key(lpos),
        ..CommandSpec::new("lpos", -3, flag::READONLY, acl::LIST, Group::List, "6.0.6",
            "Returns the index of matching elements in a list.",
            "O(N) where N is the number of elements in the list, for the average case.",
            "key:key element:string [RANK rank:integer] [COUNT num-matches:integer] [MAXLEN len:integer]")
    },
    CommandSpec {
        keys: MOVE_KEYS,
        exec: Exec::Key(lmove),
        multi: Some(lmove_coord),
        ..CommandSpec::new("lmove", 5, flag::WRITE | flag::DENYOOM, acl::LIST, Group::List, "6.2.0",
            "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
            "O(1)", "source:key destination:key wherefrom=(LEFT|RIGHT) whereto=(LEFT|RIGHT)")
    },
    CommandSpec {
        keys: MOVE_KEYS,
        exec: Exec::Key(rpoplpush),
        multi: Some(lmove_coord),
        doc_flags: &["deprecated"],
        deprecated: Some(("6.2.0", "`LMOVE` with the `RIGHT` and `LEFT` arguments")),
        ..CommandSpec::new("rpoplpush", 3, flag::WRITE | flag::DENYOOM, acl::LIST, Group::List, "1.2.0",
            "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
            "O(1)", "source:key destination:key")
    },
    CommandSpec {
        keys: MPOP_KEYS,
        exec: Exec::Key(lmpop),
        multi: Some(lmpop_coord),
        ..CommandSpec::new("lmpop", -4, flag::WRITE, acl::LIST, Group::List, "7.0.0",
            "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.",
            "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
            "numkeys:integer key:key... where=(LEFT|RIGHT) [COUNT count:integer]")
    },
];

/// A key that holds another type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

pub fn end_word(arg: &[u8]) -> Option<End> {
    if opt_is(arg, "left") {
        Some(End::Left)
    } else if opt_is(arg, "right") {
        Some(End::Right)
    } else {
        None
    }
}

/// The list at `key` for writing: `Ok(None)` when missing, `Err` when another type.
pub fn list_mut<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: i64,
) -> Result<Option<&'a mut ListVal>, WrongType> {
    match ks.dbs[db].lookup_write(key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(WrongType),
        },
    }
}

/// Pushes `elems` at `end` of `key`, creating the list unless `only_existing`. Returns the
/// new length (0 when `only_existing` and the key is missing).
pub fn push(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    end: End,
    elems: &[&[u8]],
    only_existing: bool,
    now: i64,
) -> Result<usize, WrongType> {
    let fill = ks.limits.list_max_listpack_size;
    let exists = list_mut(ks, db, key, now)?.is_some();
    if !exists {
        if only_existing {
            return Ok(0);
        }
        ks.dbs[db].set(key, Value::List(Box::default()), now, false);
    }
    let Some(l) = list_mut(ks, db, key, now)? else {
        return Ok(0);
    };
    l.before_growing(elems.iter().copied(), fill);
    for e in elems {
        l.push(end, e);
    }
    let n = l.len();
    ks.watches.touched(db, key);
    ks.readiness.signal(db, key);
    Ok(n)
}

/// Pops up to `count` elements from `end` of the list at `key` (deleting it when emptied).
/// `Ok(None)` when the key is missing.
pub fn pop(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    end: End,
    count: usize,
    now: i64,
) -> Result<Option<Vec<SmallBytes>>, WrongType> {
    let fill = ks.limits.list_max_listpack_size;
    let Some(l) = list_mut(ks, db, key, now)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(count.min(l.len()));
    for _ in 0..count {
        match l.pop(end) {
            Some(e) => out.push(e),
            None => break,
        }
    }
    let empty = l.is_empty();
    if !empty {
        l.after_shrinking(fill);
    }
    if empty {
        ks.dbs[db].remove(key);
    }
    if !out.is_empty() {
        ks.watches.touched(db, key);
    }
    Ok(Some(out))
}

fn push_cmd(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], end: End, only_existing: bool) {
    let now = ctx.now_ms;
    match push(ctx.ks, ctx.db, argv[1], end, &argv[2..], only_existing, now) {
        Ok(n) => ctx.out.int(n as i64),
        Err(WrongType) => ctx.out.err(ERR_WRONGTYPE),
    }
}

fn lpush(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    push_cmd(ctx, argv, End::Left, false);
}

fn rpush(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    push_cmd(ctx, argv, End::Right, false);
}

fn lpushx(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    push_cmd(ctx, argv, End::Left, true);
}

fn rpushx(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    push_cmd(ctx, argv, End::Right, true);
}

/// LPOP/RPOP key [count].
fn pop_cmd(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], end: End, name: &str) {
    if argv.len() > 3 {
        ctx.out.err(super::arity_error(name));
        return;
    }
    let count = match argv.get(2) {
        Some(a) => match positive_arg(ctx.out, a, None) {
            Some(c) => Some(c as usize),
            None => return,
        },
        None => None,
    };
    let now = ctx.now_ms;
    // A count of 0 pops nothing: answer without touching the list.
    let exists = match list_mut(ctx.ks, ctx.db, argv[1], now) {
        Err(WrongType) => {
            ctx.out.err(ERR_WRONGTYPE);
            return;
        }
        Ok(l) => l.is_some(),
    };
    if !exists {
        if count.is_some() {
            ctx.out.null_array();
        } else {
            ctx.out.null();
        }
        return;
    }
    if count == Some(0) {
        ctx.out.array(0);
        return;
    }
    let Ok(Some(items)) = pop(ctx.ks, ctx.db, argv[1], end, count.unwrap_or(1), now) else {
        return;
    };
    match count {
        None => ctx.out.bulk(&items[0]),
        Some(_) => {
            ctx.out.array(items.len());
            for e in &items {
                ctx.out.bulk(e);
            }
        }
    }
}

fn lpop(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    pop_cmd(ctx, argv, End::Left, "lpop");
}

fn rpop(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    pop_cmd(ctx, argv, End::Right, "rpop");
}

/// The list at `key` for reading (counts a hit or miss).
fn read_list<'a>(
    ctx: &'a mut KeyCtx<'_>,
    key: &[u8],
) -> (Result<Option<&'a ListVal>, WrongType>, &'a mut Out) {
    match ctx.read_out(key) {
        (None, out) => (Ok(None), out),
        (Some(e), out) => match &e.value {
            Value::List(l) => (Ok(Some(l)), out),
            _ => (Err(WrongType), out),
        },
    }
}

fn lrange(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(start) = int_arg(ctx.out, argv[2]) else {
        return;
    };
    let Some(stop) = int_arg(ctx.out, argv[3]) else {
        return;
    };
    match read_list(ctx, argv[1]) {
        (Err(WrongType), out) => out.err(ERR_WRONGTYPE),
        (Ok(None), out) => out.array(0),
        (Ok(Some(l)), out) => match l.range(start, stop) {
            None => out.array(0),
            Some((a, b)) => {
                out.array(b - a + 1);
                for e in l.iter().skip(a).take(b - a + 1) {
                    out.bulk(e);
                }
            }
        },
    }
}

fn llen(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    match read_list(ctx, argv[1]) {
        (Err(WrongType), out) => out.err(ERR_WRONGTYPE),
        (Ok(None), out) => out.int(0),
        (Ok(Some(l)), out) => out.int(l.len() as i64),
    }
}

fn lindex(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    // Valkey looks the key up before parsing the index.
    let key = argv[1];
    let index_arg = argv[2];
    match read_list(ctx, key) {
        (Err(WrongType), out) => out.err(ERR_WRONGTYPE),
        (Ok(None), out) => out.null(),
        (Ok(Some(l)), out) => {
            let Some(i) = int_arg(out, index_arg) else {
                return;
            };
            match l.get(i) {
                Some(e) => out.bulk(e),
                None => out.null(),
            }
        }
    }
}

fn lset(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let now = ctx.now_ms;
    let fill = ctx.ks.limits.list_max_listpack_size;
    let l = match list_mut(ctx.ks, ctx.db, argv[1], now) {
        Err(WrongType) => return ctx.out.err(ERR_WRONGTYPE),
        Ok(None) => return ctx.out.err("no such key"),
        Ok(Some(l)) => l,
    };
    let Some(index) = int_arg(ctx.out, argv[2]) else {
        return;
    };
    // Valkey converts a listpack that the new element would overflow before replacing.
    l.before_growing([argv[3]], fill);
    if l.set(index, argv[3]) {
        l.after_shrinking(fill);
        ctx.modified(argv[1]);
        ctx.out.ok();
    } else {
        ctx.out.err("index out of range");
    }
}

fn lrem(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(count) = range_arg(ctx.out, argv[2], -i64::MAX, i64::MAX, None) else {
        return;
    };
    let now = ctx.now_ms;
    let fill = ctx.ks.limits.list_max_listpack_size;
    let l = match list_mut(ctx.ks, ctx.db, argv[1], now) {
        Err(WrongType) => return ctx.out.err(ERR_WRONGTYPE),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(l)) => l,
    };
    let removed = l.remove_equal(argv[3], count);
    let empty = l.is_empty();
    if removed > 0 {
        if empty {
            ctx.db().remove(argv[1]);
        } else {
            l.after_shrinking(fill);
        }
        ctx.modified(argv[1]);
    }
    ctx.out.int(removed as i64);
}

fn ltrim(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(start) = int_arg(ctx.out, argv[2]) else {
        return;
    };
    let Some(stop) = int_arg(ctx.out, argv[3]) else {
        return;
    };
    let now = ctx.now_ms;
    let fill = ctx.ks.limits.list_max_listpack_size;
    let l = match list_mut(ctx.ks, ctx.db, argv[1], now) {
        Err(WrongType) => return ctx.out.err(ERR_WRONGTYPE),
        Ok(None) => return ctx.out.ok(),
        Ok(Some(l)) => l,
    };
    match l.range(start, stop) {
        Some((a, b)) => l.keep_range(a, b - a + 1),
        None => l.keep_range(0, 0),
    }
    let empty = l.is_empty();
    if empty {
        ctx.db().remove(argv[1]);
    } else {
        l.after_shrinking(fill);
    }
    ctx.modified(argv[1]);
    ctx.out.ok();
}

fn linsert(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let after = if opt_is(argv[2], "after") {
        true
    } else if opt_is(argv[2], "before") {
        false
    } else {
        return ctx.out.err(ERR_SYNTAX);
    };
    let now = ctx.now_ms;
    let fill = ctx.ks.limits.list_max_listpack_size;
    let l = match list_mut(ctx.ks, ctx.db, argv[1], now) {
        Err(WrongType) => return ctx.out.err(ERR_WRONGTYPE),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(l)) => l,
    };
    // Valkey converts first, assuming the element will be inserted.
    l.before_growing([argv[4]], fill);
    let Some(pos) = l.iter().position(|e| **e == *argv[3]) else {
        return ctx.out.int(-1);
    };
    l.insert(pos, after, argv[4]);
    let n = l.len();
    ctx.modified(argv[1]);
    ctx.out.int(n as i64);
}

fn lpos(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let (mut rank, mut count, mut maxlen) = (1i64, -1i64, 0i64);
    let mut j = 3;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let opt = argv[j];
        if opt_is(opt, "rank") && more > 0 {
            j += 1;
            let Some(r) = range_arg(ctx.out, argv[j], -i64::MAX, i64::MAX, None) else {
                return;
            };
            if r == 0 {
                return ctx.out.err("RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
            }
            rank = r;
        } else if opt_is(opt, "count") && more > 0 {
            j += 1;
            let Some(c) = positive_arg(ctx.out, argv[j], Some("COUNT can't be negative")) else {
                return;
            };
            count = c;
        } else if opt_is(opt, "maxlen") && more > 0 {
            j += 1;
            let Some(m) = positive_arg(ctx.out, argv[j], Some("MAXLEN can't be negative")) else {
                return;
            };
            maxlen = m;
        } else {
            return ctx.out.err(ERR_SYNTAX);
        }
        j += 1;
    }
    let from_tail = rank < 0;
    let rank = rank.unsigned_abs();
    let target = argv[2];
    match read_list(ctx, argv[1]) {
        (Err(WrongType), out) => out.err(ERR_WRONGTYPE),
        (Ok(None), out) => {
            if count != -1 {
                out.array(0);
            } else {
                out.null();
            }
        }
        (Ok(Some(l)), out) => {
            let len = l.len();
            let mut found: Vec<i64> = Vec::new();
            let mut matches = 0u64;
            let limit = if maxlen == 0 {
                len
            } else {
                (maxlen as usize).min(len)
            };
            let positions: Box<dyn Iterator<Item = usize>> = if from_tail {
                Box::new((0..len).rev())
            } else {
                Box::new(0..len)
            };
            for (scanned, i) in positions.enumerate() {
                if scanned >= limit {
                    break;
                }
                if **l.get(i as i64).expect("in range") == *target {
                    matches += 1;
                    if matches >= rank {
                        found.push(i as i64);
                        if count == -1 || (count != 0 && found.len() as i64 >= count) {
                            break;
                        }
                    }
                }
            }
            if count != -1 {
                out.array(found.len());
                for i in found {
                    out.int(i);
                }
            } else {
                match found.first() {
                    Some(&i) => out.int(i),
                    None => out.null(),
                }
            }
        }
    }
}

/// Step 1 of LMOVE: the source must be a list (`Ok(false)` when missing) and the
/// destination must not be another type. Both keys are on this shard.
pub fn lmove_local(
    ks: &mut Keyspace,
    db: usize,
    src: &[u8],
    dst: &[u8],
    (from, to): (End, End),
    now: i64,
    out: &mut Out,
) {
    let from_quicklist = match list_mut(ks, db, src, now) {
        Err(WrongType) => return out.err(ERR_WRONGTYPE),
        Ok(None) => return out.null(),
        Ok(Some(l)) => l.is_quicklist(),
    };
    if list_mut(ks, db, dst, now).is_err() {
        return out.err(ERR_WRONGTYPE);
    }
    if src == dst {
        // Valkey pops and pushes on the same list, and only then checks whether it shrank
        // back to a listpack (checking in between can decide differently).
        let fill = ks.limits.list_max_listpack_size;
        let Ok(Some(l)) = list_mut(ks, db, src, now) else {
            return out.null();
        };
        let Some(v) = l.pop(from) else {
            return out.null();
        };
        l.before_growing_by(moved_element_bytes(&v, from_quicklist), 1, fill);
        l.push(to, &v);
        l.after_shrinking(fill);
        ks.watches.touched(db, src);
        ks.readiness.signal(db, src);
        return out.bulk(&v);
    }
    let Ok(Some(mut items)) = pop(ks, db, src, from, 1, now) else {
        return;
    };
    let Some(v) = items.pop() else {
        return out.null();
    };
    push_moved(ks, db, dst, to, &v, from_quicklist, now);
    out.bulk(&v);
}

/// Pushes an element LMOVE took from another list; `from_quicklist` says whether that list
/// was a quicklist (see [`moved_element_bytes`]).
fn push_moved(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    end: End,
    elem: &[u8],
    from_quicklist: bool,
    now: i64,
) {
    let fill = ks.limits.list_max_listpack_size;
    if let Ok(None) = list_mut(ks, db, key, now) {
        ks.dbs[db].set(key, Value::List(Box::default()), now, false);
    }
    let Ok(Some(l)) = list_mut(ks, db, key, now) else {
        return;
    };
    l.before_growing_by(moved_element_bytes(elem, from_quicklist), 1, fill);
    l.push(end, elem);
    ks.watches.touched(db, key);
    ks.readiness.signal(db, key);
}

fn lmove(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(from) = end_word(argv[3]) else {
        return ctx.out.err(ERR_SYNTAX);
    };
    let Some(to) = end_word(argv[4]) else {
        return ctx.out.err(ERR_SYNTAX);
    };
    let now = ctx.now_ms;
    lmove_local(ctx.ks, ctx.db, argv[1], argv[2], (from, to), now, ctx.out);
}

fn rpoplpush(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let now = ctx.now_ms;
    lmove_local(
        ctx.ks,
        ctx.db,
        argv[1],
        argv[2],
        (End::Right, End::Left),
        now,
        ctx.out,
    );
}

/// What source of a move looks like from its shard.
enum SrcState {
    Missing,
    WrongType,
    Ready,
}

fn lmove_coord(ctx: MultiCtx<'_>) -> multi::LocalFut<'_> {
    Box::pin(async move {
        let MultiCtx {
            shard,
            client,
            cmd,
            argv,
            out,
            txn: held,
            ..
        } = ctx;
        let ends = if cmd.spec.name == "rpoplpush" {
            (End::Right, End::Left)
        } else {
            let Some(from) = end_word(argv[3]) else {
                return out.err(ERR_SYNTAX);
            };
            let Some(to) = end_word(argv[4]) else {
                return out.err(ERR_SYNTAX);
            };
            (from, to)
        };
        let (ts, td) = (shard.shard_of_key(argv[1]), shard.shard_of_key(argv[2]));
        let txn = multi::lock(shard, held, [ts, td]).await;
        if !lmove_in_txn(&txn, shard, client.db, argv[1], argv[2], ends, out).await {
            out.null();
        }
    })
}

/// LMOVE between keys of different shards, inside a transaction that holds both. Returns
/// false, writing nothing, when the source does not exist (a blocked BLMOVE keeps waiting).
pub async fn lmove_in_txn(
    txn: &multi::TxnHandle<'_>,
    shard: &crate::shard::Shard,
    db: usize,
    src: &[u8],
    dst: &[u8],
    (from, to): (End, End),
    out: &mut Out,
) -> bool {
    let (src, dst) = (src.to_vec(), dst.to_vec());
    let (ts, td) = (shard.shard_of_key(&src), shard.shard_of_key(&dst));
    let s2 = src.clone();
    let state = txn
        .run(ts, move |s| {
            match list_mut(&mut s.ks.borrow_mut(), db, &s2, unix_ms()) {
                Err(WrongType) => SrcState::WrongType,
                Ok(None) => SrcState::Missing,
                Ok(Some(_)) => SrcState::Ready,
            }
        })
        .await;
    match state {
        SrcState::WrongType => {
            out.err(ERR_WRONGTYPE);
            return true;
        }
        SrcState::Missing => return false,
        SrcState::Ready => {}
    }
    let d2 = dst.clone();
    let dst_ok = txn
        .run(td, move |s| {
            list_mut(&mut s.ks.borrow_mut(), db, &d2, unix_ms()).is_ok()
        })
        .await;
    if !dst_ok {
        out.err(ERR_WRONGTYPE);
        return true;
    }
    let popped = txn
        .run(ts, move |s| {
            let ks = &mut s.ks.borrow_mut();
            let now = unix_ms();
            let from_quicklist =
                matches!(list_mut(ks, db, &src, now), Ok(Some(l)) if l.is_quicklist());
            pop(ks, db, &src, from, 1, now)
                .ok()
                .flatten()
                .and_then(|mut v| v.pop())
                .map(|v| (v, from_quicklist))
        })
        .await;
    let Some((v, from_quicklist)) = popped else {
        return false;
    };
    let v2 = v.to_vec();
    txn.run(td, move |s| {
        push_moved(
            &mut s.ks.borrow_mut(),
            db,
            &dst,
            to,
            &v2,
            from_quicklist,
            unix_ms(),
        );
    })
    .await;
    out.bulk(&v);
    true
}

/// LMPOP's parsed arguments.
#[derive(Debug, Clone)]
pub struct MpopArgs {
    pub keys: Vec<Vec<u8>>,
    pub end: End,
    pub count: usize,
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT n]` from `argv[first..]` (Valkey's
/// `lmpopGenericCommand`); `None` after an error reply.
pub fn parse_mpop(out: &mut Out, argv: &[&[u8]], numkeys_idx: usize) -> Option<MpopArgs> {
    let numkeys = range_arg(
        out,
        argv[numkeys_idx],
        1,
        i64::MAX,
        Some("numkeys should be greater than 0"),
    )?;
    let where_idx = numkeys_idx
        .checked_add(usize::try_from(numkeys).ok()?)?
        .checked_add(1);
    let Some(where_idx) = where_idx.filter(|&w| w < argv.len()) else {
        out.err(ERR_SYNTAX);
        return None;
    };
    let Some(end) = end_word(argv[where_idx]) else {
        out.err(ERR_SYNTAX);
        return None;
    };
    let mut count: Option<usize> = None;
    let mut j = where_idx + 1;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if count.is_none() && opt_is(argv[j], "count") && more > 0 {
            j += 1;
            count = Some(range_arg(
                out,
                argv[j],
                1,
                i64::MAX,
                Some("count should be greater than 0"),
            )? as usize);
        } else {
            out.err(ERR_SYNTAX);
            return None;
        }
        j += 1;
    }
    let keys = argv[numkeys_idx + 1..where_idx]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    Some(MpopArgs {
        keys,
        end,
        count: count.unwrap_or(1),
    })
}

/// What an LMPOP-like pop found on one key.
pub enum MpopStep {
    /// Missing or empty: try the next key.
    Next,
    WrongType,
    Popped(Vec<SmallBytes>),
}

/// One key of LMPOP on its shard.
pub fn mpop_step(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    end: End,
    count: usize,
    now: i64,
) -> MpopStep {
    match pop(ks, db, key, end, count, now) {
        Err(WrongType) => MpopStep::WrongType,
        Ok(None) => MpopStep::Next,
        Ok(Some(v)) if v.is_empty() => MpopStep::Next,
        Ok(Some(v)) => MpopStep::Popped(v),
    }
}

/// LMPOP's reply: `[key, [elements…]]`.
pub fn mpop_reply(out: &mut Out, key: &[u8], items: &[SmallBytes]) {
    out.array(2);
    out.bulk(key);
    out.array(items.len());
    for e in items {
        out.bulk(e);
    }
}

fn lmpop(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) {
    let Some(a) = parse_mpop(ctx.out, argv, 1) else {
        return;
    };
    let now = ctx.now_ms;
    for key in &a.keys {
        match mpop_step(ctx.ks, ctx.db, key, a.end, a.count, now) {
            MpopStep::Next => continue,
            MpopStep::WrongType => return ctx.out.err(ERR_WRONGTYPE),
            MpopStep::Popped(items) => return mpop_reply(ctx.out, key, &items),
        }
    }
    ctx.out.null_array();
}

fn lmpop_coord(ctx: MultiCtx<'_>) -> multi::LocalFut<'_> {
    Box::pin(async move {
        let MultiCtx {
            shard,
            client,
            argv,
            out,
            txn: held,
            ..
        } = ctx;
        let Some(a) = parse_mpop(out, argv, 1) else {
            return;
        };
        let targets: Vec<usize> = a.keys.iter().map(|k| shard.shard_of_key(k)).collect();
        let txn = multi::lock(shard, held, targets.iter().copied()).await;
        match mpop_in_txn(&txn, shard, client.db, &a.keys, a.end, a.count).await {
            Err(WrongType) => out.err(ERR_WRONGTYPE),
            Ok(Some((key, items))) => mpop_reply(out, &key, &items),
            Ok(None) => out.null_array(),
        }
    })
}

/// LMPOP over keys of several shards, inside a transaction that holds them: the first
/// non-empty list in key order gives up to `count` elements.
pub async fn mpop_in_txn(
    txn: &multi::TxnHandle<'_>,
    shard: &crate::shard::Shard,
    db: usize,
    keys: &[Vec<u8>],
    end: End,
    count: usize,
) -> Result<Option<(Vec<u8>, Vec<SmallBytes>)>, WrongType> {
    for key in keys {
        let k = key.clone();
        let step = txn
            .run(shard.shard_of_key(key), move |s| {
                match mpop_step(&mut s.ks.borrow_mut(), db, &k, end, count, unix_ms()) {
                    MpopStep::Next => Ok(None),
                    MpopStep::WrongType => Err(WrongType),
                    MpopStep::Popped(v) => Ok(Some(v)),
                }
            })
            .await?;
        if let Some(items) = step {
            return Ok(Some((key.clone(), items)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
