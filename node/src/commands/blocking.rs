//! Blocking commands: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP,
//! and how a connection waits for them.
//!
//! A blocking command is its non-blocking attempt plus a wait. The attempt runs where the keys
//! are; when it finds nothing, the client is registered as a waiter there in the same step
//! (no write can slip in between), the replies of the commands before it go out, and the
//! connection waits for one of: the reply (a write made a key ready and the command was re-run
//! on the key's shard — `crate::shard::block`), the timeout, or the client leaving. A timeout
//! or a departure first cancels the waiter on its shard; if the shard says it was already
//! served, the reply on its way is awaited instead, so nothing popped is ever dropped by a
//! race with the timer.
//!
//! Keys on several shards (standalone mode): the attempt runs as a shard-ordered transaction
//! over them, and waiters on each shard only wake this connection, which re-runs the attempt.
//!
//! Inside MULTI, as in Valkey, a blocking command does not block: it answers as if it had
//! timed out.

use super::list::{self, WrongType};
use super::multi;
use super::sorted_set as zset;
use super::spec::{
    acl, flag, key_at, keyflag as kf, keys_from, BeginSearch, CommandSpec, Exec, FindKeys, Group,
    KeySpec,
};
use super::{KeyCtx, Resolved, ERR_SYNTAX, ERR_WRONGTYPE};
use crate::keyspace::list::End;
use crate::net::Peer;
use crate::resp::Out;
use crate::session::ClientState;
use crate::shard::block::{AttemptFn, Waiter, WaiterKind};
use crate::shard::{unix_ms, Shard, Txn};
use std::rc::Rc;

/// How a blocking command is checked, attempted and timed out.
pub struct BlockSpec {
    /// Checks the arguments in Valkey's order; the timeout argument's index, or `None` after
    /// an error reply.
    pub prepare: fn(&mut Out, &[&[u8]]) -> Option<usize>,
    /// The non-blocking attempt (see [`AttemptFn`]).
    pub attempt: AttemptFn,
    /// The attempt over keys of several shards, inside a transaction holding them all.
    pub attempt_across: for<'a> fn(Across<'a>) -> multi::LocalFutOut<'a, bool>,
    /// The reply when the command may not wait (inside EXEC; Valkey's `deny_blocking`
    /// replies, which differ by command). A command that waited and timed out always answers
    /// a null array, as Valkey's `replyToBlockedClientTimedOut` does for lists and sorted
    /// sets (BLMOVE too, whose `deny_blocking` reply is a null bulk string).
    pub timeout_reply: fn(&mut Out),
    /// The value type whose keys can serve the command.
    pub type_name: &'static str,
}

/// What a cross-shard attempt gets.
pub struct Across<'a> {
    pub txn: &'a multi::TxnHandle<'a>,
    pub shard: &'a Rc<Shard>,
    pub db: usize,
    pub argv: &'a [Vec<u8>],
    pub out: &'a mut Out,
}

const BPOP_KEYS: &[KeySpec] = &[keys_from(1, -2, 1, kf::RW | kf::ACCESS | kf::DELETE)];
const BMOVE_KEYS: &[KeySpec] = &[
    key_at(1, kf::RW | kf::ACCESS | kf::DELETE),
    key_at(2, kf::RW | kf::INSERT),
];
const BLMPOP_KEYS: &[KeySpec] = &[KeySpec {
    notes: None,
    flags: kf::RW | kf::ACCESS | kf::DELETE,
    begin: BeginSearch::Index(2),
    find: FindKeys::Keynum {
        keynumidx: 0,
        firstkey: 1,
        step: 1,
    },
}];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        keys: BPOP_KEYS,
        exec: Exec::Block(&BLPOP),
        history: &[("6.0.0", "`timeout` is interpreted as a double instead of an integer.")],
        ..CommandSpec::new("blpop", -3, flag::WRITE | flag::BLOCKING, acl::LIST, Group::List, "2.0.0",
            "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
            "O(N) where N is the number of provided keys.", "key:key... timeout:double")
    },
    CommandSpec {
        keys: BPOP_KEYS,
        exec: Exec::Block(&BRPOP),
        history: &[("6.0.0", "`timeout` is interpreted as a double instead of an integer.")],
        ..CommandSpec::new("brpop", -3, flag::WRITE | flag::BLOCKING, acl::LIST, Group::List, "2.0.0",
            "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
            "O(N) where N is the number of provided keys.", "key:key... timeout:double")
    },
    CommandSpec {
        keys: BMOVE_KEYS,
        exec: Exec::Block(&BLMOVE),
        ..CommandSpec::new("blmove", 6, flag::WRITE | flag::DENYOOM | flag::BLOCKING, acl::LIST, Group::List, "6.2.0",
            "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.",
            "O(1)", "source:key destination:key wherefrom=(LEFT|RIGHT) whereto=(LEFT|RIGHT) timeout:double")
    },
    CommandSpec {
        keys: BMOVE_KEYS,
        exec: Exec::Block(&BRPOPLPUSH),
        doc_flags: &["deprecated"],
        deprecated: Some(("6.2.0", "`BLMOVE` with the `RIGHT` and `LEFT` arguments")),
        history: &[("6.0.0", "`timeout` is interpreted as a double instead of an integer.")],
        ..CommandSpec::new("brpoplpush", 4, flag::WRITE | flag::DENYOOM | flag::BLOCKING, acl::LIST, Group::List, "2.2.0",
            "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.",
            "O(1)", "source:key destination:key timeout:double")
    },
    CommandSpec {
        keys: BLMPOP_KEYS,
        exec: Exec::Block(&BLMPOP),
        ..CommandSpec::new("blmpop", -5, flag::WRITE | flag::BLOCKING, acl::LIST, Group::List, "7.0.0",
            "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
            "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
            "timeout:double numkeys:integer key:key... where=(LEFT|RIGHT) [COUNT count:integer]")
    },
    CommandSpec {
        keys: BPOP_KEYS,
        exec: Exec::Block(&BZPOPMIN),
        history: &[("6.0.0", "`timeout` is interpreted as a double instead of an integer.")],
        ..CommandSpec::new("bzpopmin", -3, flag::WRITE | flag::FAST | flag::BLOCKING, acl::SORTEDSET, Group::SortedSet, "5.0.0",
            "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
            "O(log(N)) with N being the number of elements in the sorted set.", "key:key... timeout:double")
    },
    CommandSpec {
        keys: BPOP_KEYS,
        exec: Exec::Block(&BZPOPMAX),
        history: &[("6.0.0", "`timeout` is interpreted as a double instead of an integer.")],
        ..CommandSpec::new("bzpopmax", -3, flag::WRITE | flag::FAST | flag::BLOCKING, acl::SORTEDSET, Group::SortedSet, "5.0.0",
            "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.",
            "O(log(N)) with N being the number of elements in the sorted set.", "key:key... timeout:double")
    },
    CommandSpec {
        keys: BLMPOP_KEYS,
        exec: Exec::Block(&BZMPOP),
        ..CommandSpec::new("bzmpop", -5, flag::WRITE | flag::BLOCKING, acl::SORTEDSET, Group::SortedSet, "7.0.0",
            "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
            "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
            "timeout:double numkeys:integer key:key... where=(MIN|MAX) [COUNT count:integer]")
    },
];

fn null_array(out: &mut Out) {
    out.null_array();
}

fn null(out: &mut Out) {
    out.null();
}

/// Checks a timeout argument; false after Valkey's error reply.
fn timeout_ok(out: &mut Out, arg: &[u8]) -> bool {
    match crate::util::timeout_ms(arg, unix_ms()) {
        Ok(_) => true,
        Err(e) => {
            out.err(e.text());
            false
        }
    }
}

// ---- BLPOP / BRPOP ----

fn bpop_prepare(out: &mut Out, argv: &[&[u8]]) -> Option<usize> {
    let t = argv.len() - 1;
    timeout_ok(out, argv[t]).then_some(t)
}

fn bpop_attempt(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], end: End) -> bool {
    let now = ctx.now_ms;
    for key in &argv[1..argv.len() - 1] {
        match list::pop(ctx.ks, ctx.db, key, end, 1, now) {
            Err(WrongType) => {
                ctx.out.err(ERR_WRONGTYPE);
                return true;
            }
            Ok(Some(mut v)) if !v.is_empty() => {
                let e = v.remove(0);
                ctx.out.array(2);
                ctx.out.bulk(key);
                ctx.out.bulk(&e);
                return true;
            }
            _ => continue,
        }
    }
    false
}

fn blpop_attempt(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) -> bool {
    bpop_attempt(ctx, argv, End::Left)
}

fn brpop_attempt(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) -> bool {
    bpop_attempt(ctx, argv, End::Right)
}

fn bpop_across(a: Across<'_>, end: End) -> multi::LocalFutOut<'_, bool> {
    Box::pin(async move {
        let keys = &a.argv[1..a.argv.len() - 1];
        match list::mpop_in_txn(a.txn, a.shard, a.db, keys, end, 1).await {
            Err(WrongType) => {
                a.out.err(ERR_WRONGTYPE);
                true
            }
            Ok(Some((key, items))) => {
                a.out.array(2);
                a.out.bulk(&key);
                a.out.bulk(&items[0]);
                true
            }
            Ok(None) => false,
        }
    })
}

fn blpop_across(a: Across<'_>) -> multi::LocalFutOut<'_, bool> {
    bpop_across(a, End::Left)
}

fn brpop_across(a: Across<'_>) -> multi::LocalFutOut<'_, bool> {
    bpop_across(a, End::Right)
}

pub static BLPOP: BlockSpec = BlockSpec {
    prepare: bpop_prepare,
    attempt: blpop_attempt,
    attempt_across: blpop_across,
    timeout_reply: null_array,
    type_name: "list",
};

pub static BRPOP: BlockSpec = BlockSpec {
    prepare: bpop_prepare,
    attempt: brpop_attempt,
    attempt_across: brpop_across,
    timeout_reply: null_array,
    type_name: "list",
};

// ---- BLMOVE / BRPOPLPUSH ----

fn move_ends(argv: &[&[u8]]) -> Option<(End, End)> {
    if argv.len() == 4 {
        return Some((End::Right, End::Left));
    }
    Some((list::end_word(argv[3])?, list::end_word(argv[4])?))
}

fn bmove_prepare(out: &mut Out, argv: &[&[u8]]) -> Option<usize> {
    if move_ends(argv).is_none() {
        out.err(ERR_SYNTAX);
        return None;
    }
    let t = argv.len() - 1;
    timeout_ok(out, argv[t]).then_some(t)
}

fn bmove_attempt(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) -> bool {
    let Some(ends) = move_ends(argv) else {
        return false;
    };
    let now = ctx.now_ms;
    match list::list_mut(ctx.ks, ctx.db, argv[1], now) {
        Err(WrongType) => {
            ctx.out.err(ERR_WRONGTYPE);
            true
        }
        Ok(None) => false,
        Ok(Some(_)) => {
            list::lmove_local(ctx.ks, ctx.db, argv[1], argv[2], ends, now, ctx.out);
            true
        }
    }
}

fn bmove_across(a: Across<'_>) -> multi::LocalFutOut<'_, bool> {
    Box::pin(async move {
        let argv: Vec<&[u8]> = a.argv.iter().map(Vec::as_slice).collect();
        let Some(ends) = move_ends(&argv) else {
            return false;
        };
        list::lmove_in_txn(a.txn, a.shard, a.db, &a.argv[1], &a.argv[2], ends, a.out).await
    })
}

pub static BLMOVE: BlockSpec = BlockSpec {
    prepare: bmove_prepare,
    attempt: bmove_attempt,
    attempt_across: bmove_across,
    timeout_reply: null,
    type_name: "list",
};

pub static BRPOPLPUSH: BlockSpec = BlockSpec {
    prepare: bmove_prepare,
    attempt: bmove_attempt,
    attempt_across: bmove_across,
    timeout_reply: null,
    type_name: "list",
};

// ---- BLMPOP ----

fn blmpop_prepare(out: &mut Out, argv: &[&[u8]]) -> Option<usize> {
    list::parse_mpop(out, argv, 2)?;
    timeout_ok(out, argv[1]).then_some(1)
}

fn blmpop_attempt(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) -> bool {
    let mut sink = Out::new(false);
    let Some(a) = list::parse_mpop(&mut sink, argv, 2) else {
        return false;
    };
    let now = ctx.now_ms;
    for key in &a.keys {
        match list::mpop_step(ctx.ks, ctx.db, key, a.end, a.count, now) {
            list::MpopStep::Next => continue,
            list::MpopStep::WrongType => {
                ctx.out.err(ERR_WRONGTYPE);
                return true;
            }
            list::MpopStep::Popped(items) => {
                list::mpop_reply(ctx.out, key, &items);
                return true;
            }
        }
    }
    false
}

fn blmpop_across(a: Across<'_>) -> multi::LocalFutOut<'_, bool> {
    Box::pin(async move {
        let argv: Vec<&[u8]> = a.argv.iter().map(Vec::as_slice).collect();
        let mut sink = Out::new(false);
        let Some(p) = list::parse_mpop(&mut sink, &argv, 2) else {
            return false;
        };
        match list::mpop_in_txn(a.txn, a.shard, a.db, &p.keys, p.end, p.count).await {
            Err(WrongType) => {
                a.out.err(ERR_WRONGTYPE);
                true
            }
            Ok(Some((key, items))) => {
                list::mpop_reply(a.out, &key, &items);
                true
            }
            Ok(None) => false,
        }
    })
}

pub static BLMPOP: BlockSpec = BlockSpec {
    prepare: blmpop_prepare,
    attempt: blmpop_attempt,
    attempt_across: blmpop_across,
    timeout_reply: null_array,
    type_name: "list",
};

// ---- BZPOPMIN / BZPOPMAX / BZMPOP ----

/// Pops from the first of `keys` that holds members, through a transaction holding their
/// shards: the key and what was popped, `Ok(None)` when none does.
async fn zpop_in_txn(
    txn: &multi::TxnHandle<'_>,
    shard: &Shard,
    db: usize,
    keys: &[Vec<u8>],
    max: bool,
    count: usize,
) -> Result<Option<(Vec<u8>, zset::Popped)>, zset::WrongType> {
    for key in keys {
        let k = key.clone();
        let got = txn
            .run(shard.shard_of_key(key), move |s| {
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
                zset::pop_from(&mut ctx, &k, max, count)
            })
            .await?;
        if let Some(popped) = got {
            return Ok(Some((key.clone(), popped)));
        }
    }
    Ok(None)
}

/// BZPOPMIN/BZPOPMAX's reply: `[key, member, score]`.
fn bzpop_reply(out: &mut Out, key: &[u8], popped: &zset::Popped) {
    out.array(popped.len() * 2 + 1);
    out.bulk(key);
    zset::reply_popped(out, popped, false);
}

fn bzpop_attempt(ctx: &mut KeyCtx<'_>, argv: &[&[u8]], max: bool) -> bool {
    for key in &argv[1..argv.len() - 1] {
        match zset::pop_from(ctx, key, max, 1) {
            Err(zset::WrongType) => {
                ctx.out.err(ERR_WRONGTYPE);
                return true;
            }
            Ok(Some(popped)) => {
                bzpop_reply(ctx.out, key, &popped);
                return true;
            }
            Ok(None) => continue,
        }
    }
    false
}

fn bzpopmin_attempt(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) -> bool {
    bzpop_attempt(ctx, argv, false)
}

fn bzpopmax_attempt(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) -> bool {
    bzpop_attempt(ctx, argv, true)
}

fn bzpop_across(a: Across<'_>, max: bool) -> multi::LocalFutOut<'_, bool> {
    Box::pin(async move {
        let keys = &a.argv[1..a.argv.len() - 1];
        match zpop_in_txn(a.txn, a.shard, a.db, keys, max, 1).await {
            Err(zset::WrongType) => {
                a.out.err(ERR_WRONGTYPE);
                true
            }
            Ok(Some((key, popped))) => {
                bzpop_reply(a.out, &key, &popped);
                true
            }
            Ok(None) => false,
        }
    })
}

fn bzpopmin_across(a: Across<'_>) -> multi::LocalFutOut<'_, bool> {
    bzpop_across(a, false)
}

fn bzpopmax_across(a: Across<'_>) -> multi::LocalFutOut<'_, bool> {
    bzpop_across(a, true)
}

pub static BZPOPMIN: BlockSpec = BlockSpec {
    prepare: bpop_prepare,
    attempt: bzpopmin_attempt,
    attempt_across: bzpopmin_across,
    timeout_reply: null_array,
    type_name: "zset",
};

pub static BZPOPMAX: BlockSpec = BlockSpec {
    prepare: bpop_prepare,
    attempt: bzpopmax_attempt,
    attempt_across: bzpopmax_across,
    timeout_reply: null_array,
    type_name: "zset",
};

fn bzmpop_prepare(out: &mut Out, argv: &[&[u8]]) -> Option<usize> {
    zset::parse_mpop_at(out, argv, 2)?;
    timeout_ok(out, argv[1]).then_some(1)
}

fn bzmpop_attempt(ctx: &mut KeyCtx<'_>, argv: &[&[u8]]) -> bool {
    let mut sink = Out::new(false);
    let Some(a) = zset::parse_mpop_at(&mut sink, argv, 2) else {
        return false;
    };
    for &key in &argv[3..3 + a.numkeys] {
        match zset::pop_from(ctx, key, a.max, a.count) {
            Err(zset::WrongType) => {
                ctx.out.err(ERR_WRONGTYPE);
                return true;
            }
            Ok(Some(popped)) => {
                zset::reply_mpop(ctx.out, Some((key, &popped)));
                return true;
            }
            Ok(None) => continue,
        }
    }
    false
}

fn bzmpop_across(a: Across<'_>) -> multi::LocalFutOut<'_, bool> {
    Box::pin(async move {
        let argv: Vec<&[u8]> = a.argv.iter().map(Vec::as_slice).collect();
        let mut sink = Out::new(false);
        let Some(p) = zset::parse_mpop_at(&mut sink, &argv, 2) else {
            return false;
        };
        let keys = &a.argv[3..3 + p.numkeys];
        match zpop_in_txn(a.txn, a.shard, a.db, keys, p.max, p.count).await {
            Err(zset::WrongType) => {
                a.out.err(ERR_WRONGTYPE);
                true
            }
            Ok(Some((key, popped))) => {
                zset::reply_mpop(a.out, Some((&key, &popped)));
                true
            }
            Ok(None) => false,
        }
    })
}

pub static BZMPOP: BlockSpec = BlockSpec {
    prepare: bzmpop_prepare,
    attempt: bzmpop_attempt,
    attempt_across: bzmpop_across,
    timeout_reply: null_array,
    type_name: "zset",
};

// ---- waiting ----

/// How a blocking command ended for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The reply is in `out`.
    Replied,
    /// The client left while waiting.
    ClientGone,
}

/// The result of an attempt on the keys' shard.
enum Attempt {
    Replied(Vec<u8>),
    Blocked(usize),
}

/// Runs a blocking command for a connection: attempt, and if nothing is there, wait (see the
/// module documentation). `key_pos` are the positions of its keys in `argv`. `admission`
/// counts the command for a manual failover's write pause (`crate::cluster::pause`) during its
/// first attempt only, the one that may pop at once: while it waits it holds nothing up, and
/// once served its pop is part of the push that served it.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    spec: &'static BlockSpec,
    shard: &Rc<Shard>,
    client: &ClientState,
    _r: &Resolved,
    argv: &[&[u8]],
    key_pos: &[usize],
    out: &mut Out,
    peer: &mut Peer<'_>,
    admission: Option<crate::cluster::pause::Admission>,
) -> Ended {
    let Some(t_idx) = (spec.prepare)(out, argv) else {
        return Ended::Replied;
    };
    let timeout = crate::util::timeout_ms(argv[t_idx], unix_ms()).unwrap_or(0);
    let deadline = (timeout > 0)
        .then(|| std::time::Instant::now() + std::time::Duration::from_millis(timeout as u64));
    let mut targets: Vec<usize> = key_pos
        .iter()
        .map(|&p| shard.shard_of_key(argv[p]))
        .collect();
    targets.sort_unstable();
    targets.dedup();
    let owned: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    let db = client.db;
    let resp3 = client.resp3;
    if targets.len() <= 1 {
        let target = targets.first().copied().unwrap_or(shard.id);
        let (ticket, mut reply) = shard.new_ticket();
        let home = shard.id;
        let keys: Vec<Vec<u8>> = key_pos.iter().map(|&p| argv[p].to_vec()).collect();
        let attempt = shard
            .call(target, move |s| {
                let argv: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
                let mut o = Out::new(resp3);
                let served = {
                    let mut ks = s.ks.borrow_mut();
                    let config = s.config.borrow();
                    let mut ctx = KeyCtx {
                        ks: &mut ks,
                        db,
                        now_ms: unix_ms(),
                        out: &mut o,
                        config: &config,
                    };
                    (spec.attempt)(&mut ctx, &argv)
                };
                if served {
                    let errors = o.take_errors();
                    s.stats.borrow_mut().add_errors(errors);
                    crate::shard::block::serve_ready(s);
                    return Attempt::Replied(o.buf);
                }
                let w = Waiter {
                    home,
                    db,
                    keys,
                    type_name: spec.type_name,
                    kind: WaiterKind::Local {
                        argv: owned,
                        resp3,
                        attempt: spec.attempt,
                        ticket,
                    },
                };
                let id = s.blocked.borrow_mut().register(&mut s.ks.borrow_mut(), w);
                Attempt::Blocked(id)
            })
            .await;
        drop(admission);
        let waiter = match attempt {
            Attempt::Replied(bytes) => {
                reply.discard();
                if bytes.is_empty() {
                    (spec.timeout_reply)(out);
                } else {
                    out.raw(&bytes);
                }
                return Ended::Replied;
            }
            Attempt::Blocked(id) => id,
        };
        client.info.blocked.set(true);
        let ended = wait_local(shard, target, waiter, &mut reply, deadline, out, peer).await;
        client.info.blocked.set(false);
        return ended;
    }
    // Keys on several shards: standalone mode only (cluster mode refuses CROSSSLOT), where
    // writes are never paused.
    drop(admission);
    wait_across(
        spec, shard, db, &owned, key_pos, &targets, deadline, out, peer, client,
    )
    .await
}

/// A blocking command inside EXEC never waits (Valkey's `deny_blocking`): it is served at
/// once through the EXEC's transaction, or gets its timeout reply.
pub async fn run_in_multi(
    spec: &'static BlockSpec,
    shard: &Rc<Shard>,
    txn: &Txn,
    client: &ClientState,
    argv: &[&[u8]],
    key_pos: &[usize],
    out: &mut Out,
) {
    if (spec.prepare)(out, argv).is_none() {
        return;
    }
    let mut targets: Vec<usize> = key_pos
        .iter()
        .map(|&p| shard.shard_of_key(argv[p]))
        .collect();
    targets.sort_unstable();
    targets.dedup();
    let owned: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    let (db, resp3) = (client.db, client.resp3);
    if targets.len() > 1 {
        let held = multi::TxnHandle::Shared(txn);
        let served = (spec.attempt_across)(Across {
            txn: &held,
            shard,
            db,
            argv: &owned,
            out,
        })
        .await;
        if !served {
            (spec.timeout_reply)(out);
        }
        return;
    }
    let attempt = move |s: &Shard| {
        let argv: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let mut o = Out::new(resp3);
        let served = {
            let mut ks = s.ks.borrow_mut();
            let config = s.config.borrow();
            let mut ctx = KeyCtx {
                ks: &mut ks,
                db,
                now_ms: unix_ms(),
                out: &mut o,
                config: &config,
            };
            (spec.attempt)(&mut ctx, &argv)
        };
        let errors = o.take_errors();
        s.stats.borrow_mut().add_errors(errors);
        served.then_some(o.buf)
    };
    let target = targets.first().copied().unwrap_or(shard.id);
    let reply = if txn.shards().contains(&target) {
        txn.run(target, attempt).await
    } else {
        attempt(shard)
    };
    match reply {
        Some(bytes) => out.raw(&bytes),
        None => (spec.timeout_reply)(out),
    }
}

/// A deadline as a future (never, without one).
async fn until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => {
            monoio::time::sleep(d.saturating_duration_since(std::time::Instant::now())).await
        }
        None => std::future::pending::<()>().await,
    }
}

async fn wait_local(
    shard: &Rc<Shard>,
    target: usize,
    waiter: usize,
    reply: &mut crate::shard::Ticket,
    deadline: Option<std::time::Instant>,
    out: &mut Out,
    peer: &mut Peer<'_>,
) -> Ended {
    // The replies of the commands before this one go out now.
    if !peer.flush(&mut out.buf).await {
        return cancel_local(shard, target, waiter, reply, out, Ended::ClientGone).await;
    }
    let timer = until(deadline);
    let mut timer = std::pin::pin!(timer);
    // Bounded by the client: every turn either ends or reads input the client sent.
    loop {
        let mut timed_out = false;
        let mut readable = false;
        let mut got: Option<Box<dyn std::any::Any + Send>> = None;
        monoio::select! {
            r = &mut *reply => { got = Some(r); }
            _ = &mut timer => { timed_out = true; }
            _ = peer.readable() => { readable = true; }
        }
        if let Some(r) = got {
            write_reply(out, r);
            return Ended::Replied;
        }
        if timed_out {
            let ended = cancel_local(shard, target, waiter, reply, out, Ended::Replied).await;
            if out.buf.is_empty() {
                out.null_array();
            }
            return ended;
        }
        if readable && !peer.read_more().await {
            return cancel_local(shard, target, waiter, reply, out, Ended::ClientGone).await;
        }
    }
}

fn write_reply(out: &mut Out, r: Box<dyn std::any::Any + Send>) {
    if let Ok(bytes) = r.downcast::<Vec<u8>>() {
        out.raw(&bytes);
    }
}

/// Cancels waiter `waiter` on `target`; when it had already been served, takes the reply that
/// is on its way (into `out`, or dropped when the client is gone).
async fn cancel_local(
    shard: &Rc<Shard>,
    target: usize,
    waiter: usize,
    reply: &mut crate::shard::Ticket,
    out: &mut Out,
    ended: Ended,
) -> Ended {
    let removed = shard
        .call(target, move |s| {
            s.blocked
                .borrow_mut()
                .cancel(&mut s.ks.borrow_mut(), waiter)
        })
        .await;
    if removed {
        // No reply will come: give the ticket back.
        reply.discard();
        return ended;
    }
    let r = (&mut *reply).await;
    if ended == Ended::Replied {
        write_reply(out, r);
        return Ended::Replied;
    }
    ended
}

/// Keys on several shards: attempt as a transaction; register wake-only waiters; re-attempt
/// on every wake.
#[allow(clippy::too_many_arguments)]
async fn wait_across(
    spec: &'static BlockSpec,
    shard: &Rc<Shard>,
    db: usize,
    argv: &[Vec<u8>],
    key_pos: &[usize],
    targets: &[usize],
    deadline: Option<std::time::Instant>,
    out: &mut Out,
    peer: &mut Peer<'_>,
    client: &ClientState,
) -> Ended {
    let wake = shard.new_wake();
    let mut registered: Vec<(usize, usize)> = Vec::new();
    let timer = until(deadline);
    let mut timer = std::pin::pin!(timer);
    // Bounded by the client: every turn serves, times out, ends, or follows a wake-up.
    loop {
        {
            let txn = multi::TxnHandle::Own(Txn::lock(shard, targets.iter().copied()).await);
            let served = (spec.attempt_across)(Across {
                txn: &txn,
                shard,
                db,
                argv,
                out,
            })
            .await;
            if served {
                unregister(&txn, &registered).await;
                client.info.blocked.set(false);
                return Ended::Replied;
            }
            if registered.is_empty() {
                for &t in targets {
                    let keys: Vec<Vec<u8>> = key_pos
                        .iter()
                        .filter(|&&p| shard.shard_of_key(&argv[p]) == t)
                        .map(|&p| argv[p].clone())
                        .collect();
                    let (home, wake_id, type_name) = (shard.id, wake.id(), spec.type_name);
                    let id = txn
                        .run(t, move |s| {
                            let w = Waiter {
                                home,
                                db,
                                keys,
                                type_name,
                                kind: WaiterKind::Remote { wake: wake_id },
                            };
                            s.blocked.borrow_mut().register(&mut s.ks.borrow_mut(), w)
                        })
                        .await;
                    registered.push((t, id));
                }
            }
        }
        client.info.blocked.set(true);
        if !peer.flush(&mut out.buf).await {
            return leave_across(shard, targets, &registered, client, Ended::ClientGone).await;
        }
        let mut timed_out = false;
        let mut readable = false;
        monoio::select! {
            _ = wake.woken() => {}
            _ = &mut timer => { timed_out = true; }
            _ = peer.readable() => { readable = true; }
        }
        if timed_out {
            out.null_array();
            return leave_across(shard, targets, &registered, client, Ended::Replied).await;
        }
        if readable && !peer.read_more().await {
            return leave_across(shard, targets, &registered, client, Ended::ClientGone).await;
        }
    }
}

async fn unregister(txn: &multi::TxnHandle<'_>, registered: &[(usize, usize)]) {
    for &(t, id) in registered {
        txn.run(t, move |s| {
            s.blocked.borrow_mut().cancel(&mut s.ks.borrow_mut(), id)
        })
        .await;
    }
}

async fn leave_across(
    shard: &Rc<Shard>,
    targets: &[usize],
    registered: &[(usize, usize)],
    client: &ClientState,
    ended: Ended,
) -> Ended {
    let txn = multi::TxnHandle::Own(Txn::lock(shard, targets.iter().copied()).await);
    unregister(&txn, registered).await;
    client.info.blocked.set(false);
    ended
}
