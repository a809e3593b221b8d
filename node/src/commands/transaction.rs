//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! MULTI makes the session queue commands (the session answers `+QUEUED`, or flags the
//! transaction when a command is refused while queueing). EXEC locks every shard the queued
//! commands and the watched keys live on — all shards when a node-wide command is queued — as
//! one shard-ordered transaction (`crate::shard::txn`), checks the watched keys under that
//! lock, and runs the commands in order through it: no other client sees a state in between
//! and none can slip a write between the WATCH check and the commands, as in Valkey where
//! EXEC runs at once.
//!
//! WATCH registers the client on the shard of each key (`keyspace::signals::Watches`); a
//! write to a watched key marks its watchers dirty there. Which writes count: every command
//! with the `write` flag marks the keys it names, and the families mark what they change
//! (`KeyCtx::modified`); FLUSHALL, FLUSHDB and SWAPDB mark the watched keys they affect. A
//! watched key that was live when watched and has since passed its deadline fails EXEC too.

use super::multi::{MultiCtx, Via};
use super::spec::{acl, flag, keyflag as kf, keys_from, CommandSpec, Exec, Group};
use super::{ConnCtx, NodeCmd, Resolved};
use crate::dispatch::{self, Forward};
use crate::resp::Out;
use crate::session::ClientState;
use crate::shard::{unix_ms, Shard, Txn};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

const TXN: u32 = flag::NOSCRIPT | flag::LOADING | flag::STALE;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: Exec::Conn(multi),
        ..CommandSpec::new(
            "multi",
            1,
            TXN | flag::FAST | flag::NO_MULTI | flag::ALLOW_BUSY,
            acl::TRANSACTION,
            Group::Transactions,
            "1.2.0",
            "Starts a transaction.",
            "O(1)",
            "",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::Exec),
        ..CommandSpec::new(
            "exec",
            1,
            TXN | flag::SKIP_SLOWLOG,
            acl::TRANSACTION,
            Group::Transactions,
            "1.2.0",
            "Executes all commands in a transaction.",
            "Depends on commands in the transaction",
            "",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::Discard),
        ..CommandSpec::new(
            "discard",
            1,
            TXN | flag::FAST | flag::ALLOW_BUSY,
            acl::TRANSACTION,
            Group::Transactions,
            "2.0.0",
            "Discards a transaction.",
            "O(N), when N is the number of queued commands",
            "",
        )
    },
    CommandSpec {
        keys: &[keys_from(1, -1, 1, kf::RO)],
        exec: Exec::Node(NodeCmd::Watch),
        ..CommandSpec::new(
            "watch",
            -2,
            TXN | flag::FAST | flag::NO_MULTI | flag::ALLOW_BUSY,
            acl::TRANSACTION,
            Group::Transactions,
            "2.2.0",
            "Monitors changes to keys to determine the execution of a transaction.",
            "O(1) for every key.",
            "key:key...",
        )
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::Unwatch),
        ..CommandSpec::new(
            "unwatch",
            1,
            TXN | flag::FAST | flag::ALLOW_BUSY,
            acl::TRANSACTION,
            Group::Transactions,
            "2.2.0",
            "Forgets about watched keys of a transaction.",
            "O(1)",
            "",
        )
    },
];

/// A command queued by MULTI, with owned arguments.
pub struct Queued {
    pub r: &'static Resolved,
    pub args: Vec<Vec<u8>>,
}

/// A transaction being queued.
#[derive(Default)]
pub struct MultiState {
    pub cmds: Vec<Queued>,
    /// A command was refused while queueing: EXEC will answer EXECABORT (Valkey's
    /// `CLIENT_DIRTY_EXEC`).
    pub aborted: bool,
}

/// Commands that run at once even inside MULTI (Valkey's `processCommand` list).
pub fn runs_inside_multi(fullname: &str) -> bool {
    matches!(
        fullname,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

fn multi(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    // MULTI inside MULTI never gets here: its NO_MULTI flag has it refused.
    ctx.client.multi = Some(MultiState::default());
    ctx.out.ok();
}

/// DISCARD.
pub async fn discard(via: Via<'_>, client: &mut ClientState, out: &mut Out) {
    if client.multi.take().is_none() {
        out.err("DISCARD without MULTI");
        return;
    }
    unwatch_all(via, client).await;
    out.ok();
}

/// UNWATCH.
pub async fn unwatch(via: Via<'_>, client: &mut ClientState, out: &mut Out) {
    unwatch_all(via, client).await;
    out.ok();
}

/// The client's watched keys, by shard.
fn watched_by_shard(shard: &Shard, client: &ClientState) -> BTreeMap<usize, Vec<(usize, Vec<u8>)>> {
    let mut m: BTreeMap<usize, Vec<(usize, Vec<u8>)>> = BTreeMap::new();
    for (db, k) in &client.watched {
        m.entry(shard.shard_of_key(k))
            .or_default()
            .push((*db, k.clone()));
    }
    m
}

/// WATCH key [key ...].
pub async fn watch(via: Via<'_>, client: &mut ClientState, argv: &[&[u8]], out: &mut Out) {
    let db = client.db;
    let mut fresh: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
    for key in &argv[1..] {
        if client.watched.iter().any(|(d, k)| *d == db && k == key) {
            continue;
        }
        client.watched.push((db, key.to_vec()));
        fresh
            .entry(via.shard_of_key(key))
            .or_default()
            .push(key.to_vec());
    }
    if !fresh.is_empty() && client.watched.len() == fresh.values().map(Vec::len).sum::<usize>() {
        via.node.watching_clients.fetch_add(1, Ordering::Relaxed);
    }
    let id = client.id;
    for (t, keys) in fresh {
        via.call(t, move |s| {
            let now = unix_ms();
            let mut ks = s.ks.borrow_mut();
            for k in &keys {
                let (expired, deadline) = ks.dbs[db].stored(k, now).unwrap_or((false, None));
                ks.watches.watch_key(db, k, id, expired, deadline);
            }
        })
        .await;
    }
    out.ok();
}

/// Forgets every watch of the client (UNWATCH, EXEC, DISCARD, RESET, disconnect).
pub async fn unwatch_all(via: Via<'_>, client: &mut ClientState) {
    if client.watched.is_empty() {
        return;
    }
    let id = client.id;
    for (t, keys) in watched_by_shard(via.shard, client) {
        via.call(t, move |s| s.ks.borrow_mut().watches.unwatch(id, &keys))
            .await;
    }
    client.watched.clear();
    via.node.watching_clients.fetch_sub(1, Ordering::Relaxed);
}

/// EXEC.
pub async fn exec(shard: &Rc<Shard>, client: &mut ClientState, out: &mut Out) {
    let Some(m) = client.multi.take() else {
        out.err("EXEC without MULTI");
        return;
    };
    if m.aborted {
        unwatch_all(Via::direct(shard), client).await;
        out.err("-EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    // The shards involved: those of the queued commands' keys and of the watched keys; all
    // of them when a node-wide command is queued.
    let mut targets = BTreeSet::new();
    let mut pos = Vec::new();
    for q in &m.cmds {
        match q.r.spec.exec {
            Exec::Key(_) | Exec::Block(_) => {
                let argv: Vec<&[u8]> = q.args.iter().map(Vec::as_slice).collect();
                if super::key_positions(q.r.spec, &argv, &mut pos).is_some() {
                    targets.extend(pos.iter().map(|&p| shard.shard_of_key(argv[p])));
                }
            }
            Exec::Node(_) => targets.extend(0..shard.shards()),
            Exec::Conn(_) | Exec::Container => {}
        }
    }
    for (_, k) in &client.watched {
        targets.insert(shard.shard_of_key(k));
    }
    let txn = Txn::lock(shard, targets).await;
    let dirty = watched_dirty(shard, &txn, client).await;
    // Watches end here, before the commands run (Valkey unwatches as EXEC starts).
    unwatch_all(
        Via {
            shard,
            txn: Some(&txn),
        },
        client,
    )
    .await;
    if dirty {
        out.null_array();
        return;
    }
    out.array(m.cmds.len());
    for q in &m.cmds {
        run_queued(shard, &txn, client, q, out).await;
    }
}

/// Whether a watched key changed, checked on each shard under the EXEC's lock.
async fn watched_dirty(shard: &Rc<Shard>, txn: &Txn, client: &ClientState) -> bool {
    let id = client.id;
    for (t, keys) in watched_by_shard(shard, client) {
        let dirty = txn
            .run(t, move |s| {
                s.ks.borrow().watches.exec_dirty(id, &keys, unix_ms())
            })
            .await;
        if dirty {
            return true;
        }
    }
    false
}

/// Runs one queued command inside EXEC, through the transaction, appending its reply.
async fn run_queued(
    shard: &Rc<Shard>,
    txn: &Txn,
    client: &mut ClientState,
    q: &Queued,
    out: &mut Out,
) {
    let r = q.r;
    let argv: Vec<&[u8]> = q.args.iter().map(Vec::as_slice).collect();
    let t0 = Instant::now();
    let before = out.error_count();
    let now_ms = unix_ms();
    out.resp3 = client.resp3;
    if r.fullname == "monitor" {
        // A transaction expects one reply per command: it cannot turn into a monitor.
        out.err("MONITOR isn't allowed for DENY BLOCKING client");
        return;
    }
    match r.spec.exec {
        Exec::Conn(f) => f(
            &mut ConnCtx {
                shard,
                client,
                out,
                now_ms,
            },
            &argv,
        ),
        Exec::Key(f) => {
            let mut pos = Vec::new();
            let targets: BTreeSet<usize> = match super::key_positions(r.spec, &argv, &mut pos) {
                Some(()) => pos.iter().map(|&p| shard.shard_of_key(argv[p])).collect(),
                None => BTreeSet::new(),
            };
            if targets.len() <= 1 {
                let t = targets.first().copied().unwrap_or(shard.id);
                if t == shard.id {
                    // Statistics are recorded by `exec_key` itself.
                    let usec = dispatch::exec_key(shard, r, f, client.db, &argv, out, now_ms);
                    dispatch::check_slow(shard, &client.info, r, &argv, usec);
                } else {
                    let mut fwd = Forward::default();
                    fwd.push(r.id, client.db, client.resp3, &argv);
                    let replies = txn.run(t, move |s| dispatch::exec_forward(s, fwd)).await;
                    out.raw(replies.reply(0));
                    for e in replies.slow {
                        dispatch::log_slow(shard, &client.info, e);
                    }
                }
                dispatch::feed_monitors(shard, client, r, &argv);
                return;
            }
            match r.spec.multi {
                Some(coord) => {
                    touch_keys(txn, r, client.db, &argv, &pos).await;
                    coord(MultiCtx {
                        shard,
                        client,
                        cmd: r,
                        argv: &argv,
                        key_pos: &pos,
                        out,
                        txn: Some(txn),
                    })
                    .await
                }
                None => out.err("-CROSSSLOT Keys in request don't hash to the same slot"),
            }
        }
        Exec::Node(cmd) => {
            // Boxed: EXEC is itself a node command (EXEC is never queued, but the types
            // recurse).
            let via = Via {
                shard,
                txn: Some(txn),
            };
            Box::pin(dispatch::run_node(cmd, via, client, &argv, out)).await
        }
        Exec::Block(spec) => {
            let mut pos = Vec::new();
            let _ = super::key_positions(r.spec, &argv, &mut pos);
            super::blocking::run_in_multi(spec, shard, txn, client, &argv, &pos, out).await;
        }
        Exec::Container => out.err(super::arity_error(&r.fullname)),
    }
    let failed = out.error_count() > before;
    let codes = out.take_errors();
    let usec = dispatch::record(shard, r.id, t0, failed, codes);
    dispatch::check_slow(shard, &client.info, r, &argv, usec);
    dispatch::feed_monitors(shard, client, r, &argv);
}

/// A write command across shards marks its keys for their watchers, under the transaction
/// that holds their shards (so no EXEC can check in between).
pub async fn touch_keys(txn: &Txn, r: &Resolved, db: usize, argv: &[&[u8]], pos: &[usize]) {
    touch_keys_present(txn, r, db, argv, pos, None).await;
}

/// Whether each key at `pos` is present (live or expired), read under `txn`.
pub async fn keys_present(txn: &Txn, db: usize, argv: &[&[u8]], pos: &[usize]) -> Vec<bool> {
    let shard = txn.coordinator();
    let mut by: BTreeMap<usize, Vec<(usize, Vec<u8>)>> = BTreeMap::new();
    for (i, &p) in pos.iter().enumerate() {
        by.entry(shard.shard_of_key(argv[p]))
            .or_default()
            .push((i, argv[p].to_vec()));
    }
    let mut present = vec![false; pos.len()];
    for (t, keys) in by {
        let found: Vec<(usize, bool)> = txn
            .run(t, move |s| {
                let ks = s.ks.borrow();
                let now = unix_ms();
                keys.iter()
                    .map(|(i, k)| (*i, ks.dbs[db].stored(k, now).is_some()))
                    .collect()
            })
            .await;
        for (i, p) in found {
            present[i] = p;
        }
    }
    present
}

/// A key and, when known, whether it was present before the write.
type KeyPresence = (Vec<u8>, Option<bool>);

/// [`touch_keys`] after the write, given which keys were present before it (`before`, from
/// [`keys_present`]): only keys present before or after are marked, as Valkey signals no
/// change for a key that was never there.
pub async fn touch_keys_present(
    txn: &Txn,
    r: &Resolved,
    db: usize,
    argv: &[&[u8]],
    pos: &[usize],
    before: Option<&[bool]>,
) {
    if !r.spec.has(flag::WRITE) {
        return;
    }
    let shard = txn.coordinator();
    if shard.node.watching_clients.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut by: BTreeMap<usize, Vec<KeyPresence>> = BTreeMap::new();
    for (i, &p) in pos.iter().enumerate() {
        by.entry(shard.shard_of_key(argv[p]))
            .or_default()
            .push((argv[p].to_vec(), before.map(|b| b[i])));
    }
    for (t, keys) in by {
        txn.run(t, move |s| {
            let mut ks = s.ks.borrow_mut();
            let now = unix_ms();
            for (k, existed) in &keys {
                match existed {
                    None => ks.watches.touched(db, k),
                    Some(existed) => {
                        let exists = ks.dbs[db].stored(k, now).is_some();
                        if *existed || exists {
                            ks.watches.touched_exists(db, k, exists);
                        }
                    }
                }
            }
        })
        .await;
    }
}
