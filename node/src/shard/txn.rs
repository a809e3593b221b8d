//! Shard-ordered transactions: how a command whose keys live on several shards stays atomic.
//!
//! The coordinator locks every shard involved, in ascending shard order, runs its steps on
//! them, then releases them all. A locked shard runs only the steps of the transaction that
//! holds it; every other call waits in arrival order (local tasks wait on the lock, remote
//! calls are deferred in the shard's inbox). Because all transactions lock in the same order,
//! two of them can never wait on each other (no deadlock), and because each holds every lock
//! until its last step, no other client sees a state in between (strict two-phase locking).
//!
//! Dropping a [`Txn`] releases its locks, so an abandoned coordinator cannot wedge a shard.

use super::{Msg, Shard};
use std::rc::Rc;

/// Identifies one transaction: the coordinating shard and a sequence number there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnId {
    pub shard: u32,
    pub seq: u64,
}

/// A held set of shard locks.
pub struct Txn {
    shard: Rc<Shard>,
    id: TxnId,
    held: Vec<usize>,
}

impl Txn {
    /// Locks `targets` (any order, duplicates allowed) in ascending order.
    pub async fn lock(shard: &Rc<Shard>, targets: impl IntoIterator<Item = usize>) -> Txn {
        let mut held: Vec<usize> = targets.into_iter().collect();
        held.sort_unstable();
        held.dedup();
        let id = shard.new_txn_id();
        let mut txn = Txn {
            shard: shard.clone(),
            id,
            held: Vec::with_capacity(held.len()),
        };
        for t in held {
            if t == shard.id {
                shard.wait_unlocked(None).await;
                shard.lock.set(Some(id));
            } else {
                shard.call_remote(t, Some(id), true, |_| ()).await;
            }
            txn.held.push(t);
        }
        txn
    }

    /// Runs `f` on `target`, which this transaction holds.
    pub async fn run<R, F>(&self, target: usize, f: F) -> R
    where
        F: FnOnce(&Shard) -> R + Send + 'static,
        R: Send + 'static,
    {
        assert!(
            self.held.contains(&target),
            "transaction step on a shard it does not hold"
        );
        if target == self.shard.id {
            let r = f(&self.shard);
            // What the step wrote replicates before anything after it.
            crate::repl::drain(&self.shard);
            return r;
        }
        self.shard
            .call_remote(target, Some(self.id), false, f)
            .await
    }

    /// The shards held, ascending.
    pub fn shards(&self) -> &[usize] {
        &self.held
    }

    /// The shard that coordinates the transaction.
    pub fn coordinator(&self) -> &Rc<Shard> {
        &self.shard
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        for &t in &self.held {
            if t == self.shard.id {
                self.shard.release_local(self.id);
            } else {
                self.shard.send(t, Msg::Release { txn: self.id });
            }
        }
    }
}
