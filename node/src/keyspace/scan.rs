//! SCAN over one shard's tables.
//!
//! The cursor of one table is a position. Positions are visited from the end down to 0: keys
//! are appended at the end and removed with `swap_remove`, which moves the last key into the
//! hole. Walking downwards, a key that is moved by a removal comes from the end, which has
//! already been visited, so a key present for the whole scan is never skipped (it may be
//! returned twice, which SCAN allows) — the guarantee Valkey's reverse-binary cursor gives.
//!
//! The node-wide cursor packs (slot, position) — see `crate::commands::generic` — and visits
//! the slots of shard 0 first, then shard 1, and so on. One SCAN call starts on the shard of
//! its cursor and moves on to the next shard only while COUNT has not been reached.

use super::{Db, SmallBytes, Value};
use crate::util::glob_match;

/// What SCAN and KEYS keep: a MATCH pattern and a TYPE.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanFilter<'a> {
    pub pattern: Option<&'a [u8]>,
    pub type_name: Option<&'a [u8]>,
}

impl ScanFilter<'_> {
    pub fn accepts(&self, key: &[u8], value: &Value) -> bool {
        if let Some(t) = self.type_name {
            if !t.eq_ignore_ascii_case(value.type_name().as_bytes()) {
                return false;
            }
        }
        match self.pattern {
            // "*" matches everything: skip the matcher.
            Some(p) if p != b"*" => glob_match(p, key, false),
            _ => true,
        }
    }
}

/// Where one call of [`Db::scan_table`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableCursor {
    /// Continue this table from this position (exclusive upper bound).
    At(usize),
    /// The table is done.
    Done,
}

impl Db {
    /// Scans the table of local index `local` from `from` (0 means "from the start") down,
    /// examining at most `budget` keys; pushes the live keys that pass `filter`. Returns where
    /// it stopped and how many keys it examined.
    pub fn scan_table(
        &mut self,
        local: usize,
        from: usize,
        budget: usize,
        filter: &ScanFilter<'_>,
        now_ms: i64,
        out: &mut Vec<SmallBytes>,
    ) -> (TableCursor, usize) {
        let Some(table) = self.slots.get(local) else {
            return (TableCursor::Done, 0);
        };
        let mut pos = if from == 0 {
            table.len()
        } else {
            from.min(table.len())
        };
        let mut examined = Vec::new();
        while pos > 0 && examined.len() < budget {
            pos -= 1;
            if let Some((k, _)) = table.get_index(pos) {
                examined.push(k.clone());
            }
        }
        let count = examined.len();
        // Expired keys are removed only now: every key examined sits at or above `pos`, and
        // removing them moves only keys from above `pos`, so the unvisited part is untouched.
        for k in examined {
            if self.expire_if_needed(&k, now_ms) {
                continue;
            }
            let Some(e) = self.slots.get(local).and_then(|t| t.get(&k[..])) else {
                continue;
            };
            if filter.accepts(&k, &e.value) {
                out.push(k);
            }
        }
        let next = if pos == 0 {
            TableCursor::Done
        } else {
            TableCursor::At(pos)
        };
        (next, count)
    }

    /// Number of local tables (0 while the database has never held a key).
    pub fn table_count(&self) -> usize {
        self.slots.len()
    }
}
