//! Pub/Sub: who is subscribed to what on one shard, and delivering messages to them.
//!
//! A client's subscriptions live with its connection, on its shard. PUBLISH runs on every
//! shard (a hop each): each delivers to its own subscribers — channel subscribers, then
//! pattern subscribers whose pattern matches, as Valkey — by appending the encoded message to
//! the client's push queue and waking its connection, and answers how many it reached.
//!
//! Shard channels (SSUBSCRIBE/SPUBLISH) have their own registry, as in Valkey.

use crate::clients::ClientInfo;
use crate::resp::Out;
use crate::util::glob_match;
use indexmap::IndexSet;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::task::Waker;

/// Most bytes of pushed messages waiting for a client before it is disconnected (Valkey's
/// default `client-output-buffer-limit pubsub` hard limit, 32 MB).
pub const PUSH_QUEUE_MAX: usize = 32 * 1024 * 1024;

/// Which kind of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Shard,
}

/// A client's subscriptions (sets: subscribing twice to a channel is one subscription).
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub channels: IndexSet<Vec<u8>>,
    pub patterns: IndexSet<Vec<u8>>,
    pub shard_channels: IndexSet<Vec<u8>>,
}

impl Subscriptions {
    /// Valkey's `clientSubscriptionsCount`: channels and patterns.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    pub fn shard_count(&self) -> usize {
        self.shard_channels.len()
    }

    pub fn total(&self) -> usize {
        self.count() + self.shard_count()
    }

    pub fn set(&mut self, kind: Kind) -> &mut IndexSet<Vec<u8>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Shard => &mut self.shard_channels,
        }
    }
}

/// A connection's queue of pushed messages.
#[derive(Debug, Default)]
pub struct PushQueue {
    pub bytes: RefCell<Vec<u8>>,
    pub waker: RefCell<Option<Waker>>,
}

impl PushQueue {
    /// Appends an encoded message and wakes the connection; false when the queue is over
    /// its limit (the caller disconnects the client).
    pub fn push(&self, encoded: &[u8]) -> bool {
        let mut b = self.bytes.borrow_mut();
        if b.len() + encoded.len() > PUSH_QUEUE_MAX {
            return false;
        }
        b.extend_from_slice(encoded);
        drop(b);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
        true
    }
}

/// One shard's subscriptions, by channel and pattern.
#[derive(Default)]
pub struct Registry {
    channels: HashMap<Vec<u8>, Vec<Rc<ClientInfo>>>,
    shard_channels: HashMap<Vec<u8>, Vec<Rc<ClientInfo>>>,
    patterns: Vec<(Vec<u8>, Rc<ClientInfo>)>,
}

impl Registry {
    fn map(&mut self, kind: Kind) -> &mut HashMap<Vec<u8>, Vec<Rc<ClientInfo>>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    pub fn subscribe(&mut self, kind: Kind, channel: &[u8], c: &Rc<ClientInfo>) {
        self.map(kind)
            .entry(channel.to_vec())
            .or_default()
            .push(c.clone());
    }

    pub fn unsubscribe(&mut self, kind: Kind, channel: &[u8], id: u64) {
        let map = self.map(kind);
        if let Some(v) = map.get_mut(channel) {
            v.retain(|c| c.id != id);
            if v.is_empty() {
                map.remove(channel);
            }
        }
    }

    pub fn psubscribe(&mut self, pattern: &[u8], c: &Rc<ClientInfo>) {
        self.patterns.push((pattern.to_vec(), c.clone()));
    }

    pub fn punsubscribe(&mut self, pattern: &[u8], id: u64) {
        self.patterns.retain(|(p, c)| !(c.id == id && p == pattern));
    }

    /// Delivers a message; returns how many subscriptions received it.
    pub fn publish(&self, kind: Kind, channel: &[u8], message: &[u8]) -> usize {
        let mut n = 0;
        let (map, word): (&HashMap<_, _>, &[u8]) = match kind {
            Kind::Channel => (&self.channels, b"message"),
            Kind::Shard => (&self.shard_channels, b"smessage"),
        };
        if let Some(subs) = map.get(channel) {
            for c in subs {
                let mut o = Out::new(c.resp.get() == 3);
                o.push(3);
                o.bulk(word);
                o.bulk(channel);
                o.bulk(message);
                deliver(c, &o.buf);
                n += 1;
            }
        }
        if kind == Kind::Channel {
            for (pattern, c) in &self.patterns {
                if glob_match(pattern, channel, false) {
                    let mut o = Out::new(c.resp.get() == 3);
                    o.push(4);
                    o.bulk(b"pmessage");
                    o.bulk(pattern);
                    o.bulk(channel);
                    o.bulk(message);
                    deliver(c, &o.buf);
                    n += 1;
                }
            }
        }
        n
    }

    /// Channels with subscribers on this shard, matching `pattern` if given.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let map = match kind {
            Kind::Channel => &self.channels,
            Kind::Shard => &self.shard_channels,
        };
        map.keys()
            .filter(|ch| pattern.is_none_or(|p| glob_match(p, ch, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` on this shard.
    pub fn numsub(&self, kind: Kind, channel: &[u8]) -> usize {
        let map = match kind {
            Kind::Channel => &self.channels,
            Kind::Shard => &self.shard_channels,
        };
        map.get(channel).map_or(0, Vec::len)
    }

    /// The distinct patterns subscribed on this shard (PUBSUB NUMPAT counts distinct
    /// patterns across the node, as Valkey counts its pattern dictionary).
    pub fn patterns(&self) -> HashSet<Vec<u8>> {
        self.patterns.iter().map(|(p, _)| p.clone()).collect()
    }

    /// Clients with at least one subscription on this shard (INFO `pubsub_clients`).
    pub fn clients(&self) -> usize {
        let mut ids = HashSet::new();
        for subs in self.channels.values().chain(self.shard_channels.values()) {
            ids.extend(subs.iter().map(|c| c.id));
        }
        ids.extend(self.patterns.iter().map(|(_, c)| c.id));
        ids.len()
    }

    /// Channels with subscribers on this shard, of each kind (INFO `pubsub_channels`).
    pub fn channel_count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel => self.channels.len(),
            Kind::Shard => self.shard_channels.len(),
        }
    }

    /// Drops every subscription of a client that left.
    pub fn forget(&mut self, c: &ClientInfo) {
        let subs = c.subs.borrow();
        for ch in &subs.channels {
            self.unsubscribe(Kind::Channel, ch, c.id);
        }
        for ch in &subs.shard_channels {
            self.unsubscribe(Kind::Shard, ch, c.id);
        }
        self.patterns.retain(|(_, x)| x.id != c.id);
    }
}

/// Queues a message for a client; a client that lets its queue grow past the limit is
/// disconnected, as Valkey does with its pub/sub output buffer limit.
fn deliver(c: &ClientInfo, encoded: &[u8]) {
    if !c.pushes.push(encoded) {
        tracing::warn!(client = %c.addr, "closing client whose pub/sub output passed the limit");
        c.kill();
    }
}
