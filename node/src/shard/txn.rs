//! Shard-ordered transactions: how a command whose keys live on several shards stays atomic.
//!
//! The coordinator locks every shard involved, in ascending shard order, runs its steps on
//! them, then releases them all. A locked shard runs only the steps of the transaction that
//! holds it; every other call waits in arrival order (local tasks wait on the lock, remote
//! calls wait in the same queue). Because all transactions lock in the same order,
//! two of them can never wait on each other (no deadlock), and because each holds every lock
//! until its last step, no other client sees a state in between (strict two-phase locking).
//!
//! The shard's lock queue is one FIFO for remote calls and its own local tasks (`Shard::turn`):
//! when a transaction releases a shard, whatever asked first gets it next, so a steady stream
//! of transactions from other shards cannot starve a shard's own clients.
//!
//! Dropping a [`Txn`] (or its `lock` future, part-way) releases its locks and cancels an
//! acquire still waiting in a queue, so an abandoned coordinator cannot wedge a shard.

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
                shard.turn().await.into_lock(id);
                txn.held.push(t);
            } else {
                // Held from the moment the acquire leaves: if this future is dropped while
                // it waits, the Release that `Drop` sends cancels it over there.
                txn.held.push(t);
                shard.call_remote(t, Some(id), true, |_| ()).await;
            }
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

#[cfg(test)]
mod tests {
    use super::super::{build_mesh, Msg, NodeShared, Shard};
    use super::TxnId;
    use crate::config::Config;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    fn shard0() -> Shard {
        let config = Config::defaults();
        let node = Arc::new(NodeShared::new(&config, 2).expect("eventfds"));
        let mesh = build_mesh(2).into_iter().next().expect("shard 0's ends");
        Shard::new(0, node, Arc::new(config), mesh)
    }

    fn txn(seq: u64) -> TxnId {
        TxnId { shard: 1, seq }
    }

    /// A call from shard 1 that takes (`acquire`) or uses the lock for `t` and records the
    /// order in which it ran.
    fn call(t: TxnId, acquire: bool, order: &Arc<AtomicUsize>, mark: usize) -> Msg {
        let order = order.clone();
        Msg::Call {
            from: 1,
            ticket: 0,
            txn: Some(t),
            acquire,
            job: Box::new(move |_| {
                order.store(order.load(Ordering::SeqCst) * 10 + mark, Ordering::SeqCst);
                Box::new(())
            }),
        }
    }

    /// A local task that asked for the shard while a remote transaction held it gets it
    /// before a remote transaction that asked later: the shard's own clients cannot be
    /// starved by a stream of transactions from other shards (they once were, for seconds).
    #[test]
    fn a_local_turn_is_served_in_arrival_order_with_remote_calls() {
        let shard = shard0();
        let order = Arc::new(AtomicUsize::new(0));
        let mut cx = Context::from_waker(Waker::noop());

        shard.handle(call(txn(1), true, &order, 1));
        assert_eq!(shard.lock.get(), Some(txn(1)));
        let mut turn = pin!(shard.turn());
        assert!(
            turn.as_mut().poll(&mut cx).is_pending(),
            "the shard is held"
        );
        shard.handle(call(txn(2), true, &order, 2));
        assert_eq!(order.load(Ordering::SeqCst), 1, "the later acquire waits");

        shard.handle(Msg::Release { txn: txn(1) });
        assert_eq!(order.load(Ordering::SeqCst), 1, "the local task goes first");
        let Poll::Ready(t) = turn.as_mut().poll(&mut cx) else {
            panic!("the released shard was handed to the waiting local task");
        };
        assert!(
            shard.is_locked(),
            "held for the local task until its turn ends"
        );
        shard.handle(call(txn(3), true, &order, 3));
        drop(t);
        assert_eq!(shard.lock.get(), Some(txn(2)));
        assert_eq!(order.load(Ordering::SeqCst), 12);

        shard.handle(Msg::Release { txn: txn(2) });
        assert_eq!(shard.lock.get(), Some(txn(3)));
        shard.handle(Msg::Release { txn: txn(3) });
        assert_eq!(order.load(Ordering::SeqCst), 123);
        assert!(!shard.is_locked());
        assert!(shard.queue.borrow().is_empty() && shard.local_waits.borrow().is_empty());
    }

    /// A local task that stops waiting before its turn is skipped, and one that stops after
    /// its turn came gives the shard back: neither wedges it.
    #[test]
    fn an_abandoned_turn_never_wedges_the_shard() {
        let shard = shard0();
        let order = Arc::new(AtomicUsize::new(0));
        let mut cx = Context::from_waker(Waker::noop());

        shard.handle(call(txn(1), true, &order, 1));
        {
            let mut gone = pin!(shard.turn());
            assert!(gone.as_mut().poll(&mut cx).is_pending());
        }
        {
            let mut granted = pin!(shard.turn());
            assert!(granted.as_mut().poll(&mut cx).is_pending());
            shard.handle(call(txn(2), true, &order, 2));
            shard.handle(Msg::Release { txn: txn(1) });
            assert!(shard.is_locked(), "handed to the second waiter");
            assert_eq!(order.load(Ordering::SeqCst), 1);
        }
        assert_eq!(
            shard.lock.get(),
            Some(txn(2)),
            "the dropped turn passed it on"
        );
        assert_eq!(order.load(Ordering::SeqCst), 12);
        shard.handle(Msg::Release { txn: txn(2) });
        assert!(!shard.is_locked());
        assert!(shard.queue.borrow().is_empty() && shard.local_waits.borrow().is_empty());
    }

    /// A coordinator dropped while its acquire waited in this shard's queue sends a Release
    /// that cancels the acquire: it never takes the lock that nothing would release.
    #[test]
    fn an_abandoned_acquire_never_takes_the_lock() {
        let shard = shard0();
        let order = Arc::new(AtomicUsize::new(0));
        shard.handle(call(txn(1), true, &order, 1));
        shard.handle(call(txn(2), true, &order, 2));
        shard.handle(Msg::Release { txn: txn(2) });
        assert_eq!(shard.lock.get(), Some(txn(1)));
        assert!(
            shard.queue.borrow().is_empty(),
            "the acquire left the queue"
        );
        shard.handle(Msg::Release { txn: txn(1) });
        assert!(!shard.is_locked());
        assert_eq!(
            order.load(Ordering::SeqCst),
            1,
            "the cancelled acquire never ran"
        );
    }

    /// A turn taken on a free shard costs nothing and holds nothing.
    #[test]
    fn a_turn_on_a_free_shard_is_immediate() {
        let shard = shard0();
        let mut cx = Context::from_waker(Waker::noop());
        let mut turn = pin!(shard.turn());
        assert!(turn.as_mut().poll(&mut cx).is_ready());
        assert!(!shard.is_locked());
    }
}
