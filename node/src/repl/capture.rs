//! Turning a shard's writes into replication ops (see the module docs of `crate::repl` for
//! which writes become commands and which become effects).

use super::frame::{self, Op, ALL_DBS, NO_EXPIRE};
use crate::commands::{self, Resolved};
use crate::keyspace::log::LogEvent;
use crate::keyspace::{rdb, Keyspace};
use crate::shard::Shard;
use corekey_bus::key_slot;

/// Whether this shard logs its writes for replication.
pub fn on(shard: &Shard) -> bool {
    shard.ks.borrow().log().is_some_and(|l| l.on.get())
}

/// Before a key command runs: flushes what earlier work logged (so ops keep their order) and
/// stops recording touched keys while the command runs (it may replicate as itself).
pub fn before_key_cmd(shard: &Shard) -> bool {
    if !on(shard) {
        return false;
    }
    drain(shard);
    if let Some(l) = shard.ks.borrow().log() {
        l.record.set(false);
    }
    true
}

/// After a key command ran (and before blocked clients are served): its expiry deletes, then
/// the command itself, or its effects.
pub fn after_key_cmd(
    shard: &Shard,
    r: &Resolved,
    db: usize,
    argv: &[&[u8]],
    now_ms: i64,
    failed: bool,
) {
    if let Some(l) = shard.ks.borrow().log() {
        l.record.set(true);
    }
    // Expired keys noticed by the command go first.
    drain(shard);
    if failed || !r.spec.has(commands::spec::flag::WRITE) {
        return;
    }
    let mut pos = Vec::new();
    if commands::key_positions(r.spec, argv, &mut pos).is_none() || pos.is_empty() {
        return;
    }
    let slot = key_slot(argv[pos[0]]).get();
    let one_slot = pos[1..].iter().all(|&p| key_slot(argv[p]).get() == slot);
    if one_slot && replayable(r) {
        let mut args = Vec::with_capacity(argv.iter().map(|a| a.len() + 4).sum());
        for a in argv {
            frame::push_arg(&mut args, a);
        }
        super::emit(
            shard,
            Op::Cmd {
                db: db as u32,
                slot,
                now_ms,
                args,
            },
        );
    } else {
        // Each key's new state, one slot at a time.
        let ks = shard.ks.borrow();
        let mut ops = Vec::with_capacity(pos.len());
        for &p in &pos {
            ops.push(effect(&ks, db as u32, argv[p]));
        }
        drop(ks);
        for op in ops {
            super::emit(shard, op);
        }
    }
}

/// Whether replaying the command's arguments with the primary's clock on the same data gives
/// the same result. SPOP picks at random.
fn replayable(r: &Resolved) -> bool {
    !matches!(r.spec.name, "spop")
}

/// The op that makes a replica's `key` what it is here now.
fn effect(ks: &Keyspace, db: u32, key: &[u8]) -> Op {
    let slot = key_slot(key).get();
    let Some(d) = ks.dbs.get(db as usize) else {
        return Op::Del {
            db,
            slot,
            key: key.to_vec(),
        };
    };
    match d.raw(key) {
        Some((entry, at)) => match rdb::dump(&entry.value) {
            Some(payload) => Op::Put {
                db,
                slot,
                key: key.to_vec(),
                payload,
                expire_at: at.unwrap_or(NO_EXPIRE),
            },
            None => {
                // Every value type has a payload (`rdb.rs`); a new type without one must get
                // one before it can be replicated.
                panic!(
                    "no replication payload for a {} value",
                    entry.value.type_name()
                )
            }
        },
        None => Op::Del {
            db,
            slot,
            key: key.to_vec(),
        },
    }
}

/// Turns the write log's events (and a SWAPDB seen since) into ops.
pub fn drain(shard: &Shard) {
    let ops = {
        let mut ks = shard.ks.borrow_mut();
        let Some(log) = ks.log().cloned() else {
            return;
        };
        if !log.on.get() {
            return;
        }
        let mut ops = Vec::new();
        // SWAPDB exchanged whole databases (their ids with them).
        for i in 0..ks.dbs.len() {
            let other = ks.dbs[i].id;
            if other != i {
                if other > i {
                    ops.push(Op::SwapDb {
                        a: i as u32,
                        b: other as u32,
                    });
                }
                ks.dbs[i].id = i;
            }
        }
        let events = std::mem::take(&mut *log.events.borrow_mut());
        for ev in events {
            ops.push(match ev {
                LogEvent::Expired(db, key) => Op::Del {
                    db,
                    slot: key_slot(&key).get(),
                    key: key.to_vec(),
                },
                LogEvent::Touched(db, key) => effect(&ks, db, &key),
                LogEvent::Flushed(db) => Op::Flush { db },
            });
        }
        ops
    };
    // FLUSHALL logs one flush per database: send one.
    let all_flushed = shard.ks.borrow().dbs.len();
    let mut ops = ops;
    let flushes = ops.iter().filter(|o| matches!(o, Op::Flush { .. })).count();
    if flushes == all_flushed && all_flushed > 1 && ops.len() == flushes {
        ops.retain(|o| !matches!(o, Op::Flush { .. }));
        ops.insert(0, Op::Flush { db: ALL_DBS });
    }
    for op in ops {
        super::emit(shard, op);
    }
}
