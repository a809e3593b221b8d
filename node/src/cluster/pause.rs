//! The write pause of a manual failover, primary side (Valkey pauses client writes with
//! `PAUSE_DURING_FAILOVER` when a replica sends MFSTART).
//!
//! The replica may only win once it holds every write the primary acknowledged, so the
//! primary must stop taking writes and then announce an offset that no write will move any
//! more. In Valkey both happen in one thread at once. Here a write runs on the shard that owns
//! its key, possibly one hop away from the connection that admitted it, and its ops are sealed
//! into the stream after the event-loop turn that ran it; so the offset is final only once
//!
//! 1. no connection starts a write any more: every client write passes [`gate`] before it is
//!    routed, and waits there while the node-wide deadline
//!    ([`NodeShared::write_pause_until_ms`]) is ahead (then it is routed again, and after the
//!    failover the slot's new owner answers with MOVED);
//! 2. every write admitted before that has run: [`gate`] counts it on the connection's shard
//!    (an [`Admission`]) until the command is over, or for a command sent to another shard
//!    until its reply is back (`ClientSession::flush`), so when a shard's count is zero its
//!    connections have no write left running anywhere;
//! 3. what those writes changed is sealed into frames: after every shard's count has been
//!    zero once with the deadline set, [`quiesce`] drains and seals every shard and sums
//!    their offsets.
//!
//! The driver then reports that offset to the bus (`ClusterState::writes_paused`), which
//! announces it to the replica. A connection that must wait first finishes the writes it
//! already sent to other shards, so it never holds the count up while waiting.
//!
//! A blocking pop (BLPOP and friends) is counted during its first attempt only: while it
//! waits it may wait forever, and when a push serves it the pop runs inside that push, which
//! was counted.

use super::bus_now_ms;
use crate::keyspace::log::ExpiryMode;
use crate::shard::{NodeShared, Shard};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Poll, Waker};
use std::time::Duration;

/// One shard's side of the pause.
#[derive(Default)]
pub struct ShardPause {
    /// Writes admitted on this shard that have not finished.
    in_flight: Cell<usize>,
    /// [`quiesce`] waiting for `in_flight` to reach zero.
    idle: RefCell<Vec<Waker>>,
    /// Connections waiting for the pause to end.
    held: RefCell<Vec<Waker>>,
}

impl ShardPause {
    fn release(&self) {
        let left = self.in_flight.get().saturating_sub(1);
        self.in_flight.set(left);
        if left == 0 {
            for w in self.idle.borrow_mut().drain(..) {
                w.wake();
            }
        }
    }
}

/// A write counted as running on its connection's shard; dropping it ends the count.
pub struct Admission {
    shard: Rc<Shard>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.shard.cluster.pause.release();
    }
}

/// Whether client writes are paused now.
pub fn paused(node: &NodeShared) -> bool {
    let until = node.write_pause_until_ms.load(Ordering::Acquire);
    until != 0 && bus_now_ms(node) < until
}

/// Admits a client write: at once, or once the pause ends. The caller must have nothing of its
/// own admitted still running when it calls this (see the module docs). No await lies between
/// the last check of the deadline and the count, so [`quiesce`] sees every write that got
/// through.
pub async fn gate(shard: &Rc<Shard>) -> Admission {
    loop {
        // No clock read on the fast path: a pause is rare, writes are not.
        let until = shard.node.write_pause_until_ms.load(Ordering::Acquire);
        if until == 0 {
            break;
        }
        let now = bus_now_ms(&shard.node);
        if now >= until {
            break;
        }
        let mut deadline = std::pin::pin!(monoio::time::sleep(Duration::from_millis(until - now)));
        std::future::poll_fn(|cx| {
            if !paused(&shard.node) || deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            shard
                .cluster
                .pause
                .held
                .borrow_mut()
                .push(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
    let p = &shard.cluster.pause;
    p.in_flight.set(p.in_flight.get() + 1);
    Admission {
        shard: shard.clone(),
    }
}

/// Starts the pause, until `until_ms` on the bus clock (or [`resume`]).
pub fn pause(node: &NodeShared, until_ms: u64) {
    node.write_pause_until_ms
        .store(until_ms.max(1), Ordering::Release);
}

/// Ends the pause: every shard lets its waiting connections go (and a [`quiesce`] still
/// waiting gives up). Call it only after the new topology was sent to the shards, so that
/// they route the held writes with it.
pub fn resume(shard: &Shard) {
    shard.node.write_pause_until_ms.store(0, Ordering::Release);
    for t in 0..shard.shards() {
        shard.post(
            t,
            Box::new(|s: &Shard| {
                if !s.node.repl.is_replica() {
                    set_expiry(s, ExpiryMode::Hide, ExpiryMode::Normal);
                }
                let p = &s.cluster.pause;
                let woken: Vec<Waker> = p.held.borrow_mut().drain(..).collect();
                let idle: Vec<Waker> = p.idle.borrow_mut().drain(..).collect();
                woken.into_iter().chain(idle).for_each(Waker::wake);
            }),
        );
    }
}

/// Waits until the writes admitted before the pause have run everywhere, seals them, and
/// returns the node's replication offset, final while the pause lasts (see the module docs).
pub async fn quiesce(shard: &Rc<Shard>) -> u64 {
    let home = shard.id;
    let mut idle = Vec::with_capacity(shard.shards());
    for t in 0..shard.shards() {
        let (ticket, done) = shard.new_ticket();
        shard.post(
            t,
            Box::new(move |s: &Shard| match crate::repl::this_shard() {
                Some(me) => {
                    monoio::spawn(async move {
                        wait_idle(&me).await;
                        me.complete(home, ticket, Box::new(()));
                    });
                }
                None => s.complete(home, ticket, Box::new(())),
            }),
        );
        idle.push(done);
    }
    for done in idle {
        done.await;
    }
    for t in 0..shard.shards() {
        shard
            .call(t, |s: &Shard| {
                // From here a read of an expired key hides it instead of deleting it (as a
                // replica does; Valkey's PAUSE_ACTIONS_EXPIRE): a delete would move the offset
                // past the one the replica is told to catch up to. Active expiry waits too
                // (`server::cron`). Deletes before this are in the offset sealed here.
                set_expiry(s, ExpiryMode::Normal, ExpiryMode::Hide);
                crate::repl::drain(s);
                crate::repl::seal(s);
            })
            .await;
    }
    shard.node.repl.offset()
}

/// Sets the shard's expiry mode to `to` if it is `from` (a primary's own mode is Normal; a
/// replica's, Hide or Off, is never touched by the pause).
fn set_expiry(shard: &Shard, from: ExpiryMode, to: ExpiryMode) {
    if let Some(log) = shard.ks.borrow().log() {
        if log.expiry.get() == from {
            log.expiry.set(to);
        }
    }
}

/// Resolves once no admitted write of this shard is running, or the pause is over (then the
/// offset is of no use, and under load the count might not reach zero for a while).
fn wait_idle(shard: &Shard) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| {
        let p = &shard.cluster.pause;
        if p.in_flight.get() == 0 || !paused(&shard.node) {
            Poll::Ready(())
        } else {
            p.idle.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        }
    })
}
