//! What a replication source needs to know of a shard's writes that no command reply shows:
//! keys that expired (they replicate as deletes), databases flushed, and, while a write runs
//! outside a replayable command (a cross-shard step, serving a blocked client, a
//! nondeterministic command), every key it changed (they replicate as their new values).
//!
//! Owned by the keyspace, read and drained by `crate::repl::capture`. Costs nothing while
//! the shard is no replication source (`on` is false): every hook checks one flag.
//!
//! It also says how expiry behaves: a replica never expires keys on its own (its primary
//! sends the deletes), but hides from its clients keys whose deadline has passed, as Valkey's
//! replicas do.

use super::SmallBytes;
use std::cell::{Cell, RefCell};

/// How a database treats keys past their deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpiryMode {
    /// Remove them on access and in the active cycle (a primary, or standalone).
    #[default]
    Normal,
    /// A replica serving its clients: treat them as absent, never remove them.
    Hide,
    /// A replica applying its primary's stream: they are there until the primary deletes them.
    Off,
}

/// One logged event, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// The key was removed because its deadline passed.
    Expired(u32, SmallBytes),
    /// The key was written (its new state is read when the log is drained).
    Touched(u32, SmallBytes),
    /// The whole database was emptied.
    Flushed(u32),
}

/// The log, shared by every database of one shard.
#[derive(Debug, Default)]
pub struct WriteLog {
    /// This shard is a replication source: log.
    pub on: Cell<bool>,
    /// Record touched keys (off while a command that replicates as itself runs).
    pub record: Cell<bool>,
    pub expiry: Cell<ExpiryMode>,
    pub events: RefCell<Vec<LogEvent>>,
}

impl WriteLog {
    pub(super) fn expired(&self, db: usize, key: &[u8]) {
        if self.on.get() {
            self.events
                .borrow_mut()
                .push(LogEvent::Expired(db as u32, SmallBytes::new(key)));
        }
    }

    pub(super) fn touched(&self, db: usize, key: &[u8]) {
        if self.on.get() && self.record.get() {
            self.events
                .borrow_mut()
                .push(LogEvent::Touched(db as u32, SmallBytes::new(key)));
        }
    }

    pub(super) fn flushed(&self, db: usize) {
        if self.on.get() {
            self.events.borrow_mut().push(LogEvent::Flushed(db as u32));
        }
    }

    /// Whether anything waits to be drained.
    pub fn has_events(&self) -> bool {
        self.on.get() && !self.events.borrow().is_empty()
    }
}
