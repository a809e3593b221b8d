//! Clients blocked on keys of this shard (BLPOP, BLMOVE, BZPOPMIN…), and serving them when a
//! write makes one of their keys ready.
//!
//! As in Valkey, a blocked command is re-run when a key it waits on becomes ready (after the
//! write that made it ready has finished, never in the middle of a transaction), clients
//! being served in the order they blocked. Two kinds of waiters:
//!
//! - **local**: all the command's keys live on this shard. The command is re-run here, at
//!   once, and its reply sent to the client's shard with [`Shard::complete`]. Nothing else
//!   can run in between, so no other client can take the element first.
//! - **remote**: the keys live on several shards (standalone mode only). This shard only
//!   tells the client's shard that a key may be ready ([`Shard::wake_slot`]); that shard
//!   re-runs the command as a shard-ordered transaction over all the keys and removes the
//!   waiters when it is served.
//!
//! A waiter leaves by being served, or by its client's shard cancelling it (timeout, the
//! client left): [`BlockTable::cancel`] says whether it was still here, so that a reply
//! already on its way is not mistaken for a timeout.

use super::Shard;
use crate::commands::KeyCtx;
use crate::keyspace::{Keyspace, SmallBytes};
use crate::resp::Out;
use slab::Slab;
use std::collections::{HashMap, VecDeque};

/// Re-runs a blocked command without blocking: writes the reply and returns true when it was
/// served, writes nothing and returns false when it would block again.
pub type AttemptFn = fn(&mut KeyCtx<'_>, &[&[u8]]) -> bool;

/// Most rounds of serving per call (serving may make other keys ready, e.g. BLMOVE pushes).
const SERVE_ROUNDS_MAX: usize = 1000;

/// How a waiter is served.
pub enum WaiterKind {
    Local {
        argv: Vec<Vec<u8>>,
        resp3: bool,
        attempt: AttemptFn,
        /// Where the reply goes on the client's shard.
        ticket: usize,
    },
    Remote {
        /// The wake slot on the client's shard.
        wake: usize,
    },
}

/// A client blocked on keys of this shard.
pub struct Waiter {
    /// The shard serving the client.
    pub home: usize,
    pub db: usize,
    /// The keys of this shard it waits on.
    pub keys: Vec<Vec<u8>>,
    /// The value type it waits for ("list", "zset"): a key of another type does not serve it.
    pub type_name: &'static str,
    pub kind: WaiterKind,
}

/// This shard's waiters, by key in blocking order.
#[derive(Default)]
pub struct BlockTable {
    waiters: Slab<Waiter>,
    by_key: HashMap<(usize, SmallBytes), VecDeque<usize>>,
}

impl BlockTable {
    /// Adds a waiter; returns its id.
    pub fn register(&mut self, ks: &mut Keyspace, w: Waiter) -> usize {
        let db = w.db;
        let keys = w.keys.clone();
        let id = self.waiters.insert(w);
        for k in keys {
            ks.readiness.wait(db, &k);
            self.by_key
                .entry((db, SmallBytes::new(&k)))
                .or_default()
                .push_back(id);
        }
        id
    }

    /// Removes waiter `id`; returns whether it was still here.
    pub fn cancel(&mut self, ks: &mut Keyspace, id: usize) -> bool {
        let Some(w) = self.waiters.try_remove(id) else {
            return false;
        };
        for k in &w.keys {
            ks.readiness.unwait(w.db, k);
            let key = (w.db, SmallBytes::new(k));
            if let Some(q) = self.by_key.get_mut(&key) {
                q.retain(|&x| x != id);
                if q.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
        true
    }

    /// Waiters on `key`, in blocking order.
    fn waiting_on(&self, db: usize, key: &[u8]) -> Vec<usize> {
        self.by_key
            .get(&(db, SmallBytes::new(key)))
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }
}

/// Serves the waiters of the keys writes made ready, in blocking order. Runs after a command
/// or a transaction finished; does nothing while a transaction holds the shard.
pub fn serve_ready(shard: &Shard) {
    if shard.is_locked() {
        return;
    }
    serve_rounds(shard);
    // The pops replicate as their effects, right after the write that allowed them.
    crate::repl::drain(shard);
}

fn serve_rounds(shard: &Shard) {
    for _ in 0..SERVE_ROUNDS_MAX {
        let ready = {
            let mut ks = shard.ks.borrow_mut();
            if !ks.readiness.has_ready() {
                return;
            }
            ks.readiness.take_ready()
        };
        for (db, key) in ready {
            let ids = shard.blocked.borrow().waiting_on(db, &key);
            for id in ids {
                serve_one(shard, id, db, &key);
            }
        }
    }
    tracing::warn!(
        shard = shard.id,
        "blocked clients still ready after {SERVE_ROUNDS_MAX} rounds"
    );
}

/// Tries to serve waiter `id`, which waits on `key`.
fn serve_one(shard: &Shard, id: usize, db: usize, key: &[u8]) {
    let (home, type_name) = {
        let table = shard.blocked.borrow();
        let Some(w) = table.waiters.get(id) else {
            return;
        };
        (w.home, w.type_name)
    };
    // Only a key of the awaited type can serve the waiter (Valkey's check before re-running).
    let ready = {
        let mut ks = shard.ks.borrow_mut();
        let now = super::unix_ms();
        ks.dbs[db]
            .get(key, now)
            .is_some_and(|e| e.value.type_name() == type_name)
    };
    if !ready {
        return;
    }
    let remote_wake = match &shard.blocked.borrow().waiters[id].kind {
        WaiterKind::Remote { wake } => Some(*wake),
        WaiterKind::Local { .. } => None,
    };
    if let Some(wake) = remote_wake {
        shard.post(home, Box::new(move |s: &Shard| s.wake_slot(wake)));
        return;
    }
    let served = {
        let table = shard.blocked.borrow();
        let w = &table.waiters[id];
        let WaiterKind::Local {
            argv,
            resp3,
            attempt,
            ..
        } = &w.kind
        else {
            return;
        };
        let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let mut out = Out::new(*resp3);
        let mut ks = shard.ks.borrow_mut();
        let config = shard.config.borrow();
        let mut ctx = KeyCtx {
            ks: &mut ks,
            db: w.db,
            now_ms: super::unix_ms(),
            out: &mut out,
            config: &config,
        };
        attempt(&mut ctx, &argv).then_some(out)
    };
    let Some(mut out) = served else { return };
    let errors = out.take_errors();
    if !errors.is_empty() {
        shard.stats.borrow_mut().add_errors(errors);
    }
    let ticket = {
        let mut table = shard.blocked.borrow_mut();
        let ticket = match &table.waiters[id].kind {
            WaiterKind::Local { ticket, .. } => *ticket,
            WaiterKind::Remote { .. } => return,
        };
        table.cancel(&mut shard.ks.borrow_mut(), id);
        ticket
    };
    shard.complete(home, ticket, Box::new(out.buf));
}
