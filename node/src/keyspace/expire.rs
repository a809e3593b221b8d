//! The active expiry cycle: a walk over the keys with a TTL, removing those whose deadline has
//! passed, under a time budget.
//!
//! Valkey samples 20 random keys with a TTL per round and repeats while more than 10% of a
//! sample had expired and time remains. We walk `expires` in order with a cursor instead of
//! sampling (positions make that cheap, and a walk reaches every key within a bounded number of
//! cycles); the adaptive repeat rule and the budget are Valkey's.

use super::Db;

/// Keys examined per round (Valkey's ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP).
pub const KEYS_PER_ROUND: usize = 20;
/// Keep going while more than this percentage of a round had expired.
pub const ACCEPTABLE_STALE_PERCENT: usize = 10;

/// What one cycle did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpireReport {
    pub examined: usize,
    pub expired: usize,
    /// The budget ran out while the cycle still found many expired keys.
    pub out_of_time: bool,
}

impl Db {
    /// One active expiry cycle on this database. `out_of_time` is asked between rounds; time
    /// itself is `now_ms`.
    pub fn active_expire(
        &mut self,
        now_ms: i64,
        out_of_time: &mut dyn FnMut() -> bool,
    ) -> ExpireReport {
        let mut report = ExpireReport::default();
        if self.log.expiry.get() != super::log::ExpiryMode::Normal {
            // Replicas never expire keys on their own: their primary sends the deletes.
            return report;
        }
        // Bound the cycle by the table size too, so that a full table walk is the most one
        // cycle ever does.
        let max_rounds = self.expires.len() / KEYS_PER_ROUND + 1;
        let mut ttl_sum: i64 = 0;
        let mut ttl_samples: i64 = 0;
        for _ in 0..max_rounds {
            if self.expires.is_empty() {
                break;
            }
            let mut examined = 0;
            let mut expired = 0;
            while examined < KEYS_PER_ROUND && !self.expires.is_empty() {
                if self.expire_cursor >= self.expires.len() {
                    self.expire_cursor = 0;
                }
                let Some((key, &when)) = self.expires.get_index(self.expire_cursor) else {
                    break;
                };
                examined += 1;
                if when <= now_ms {
                    let key = key.clone();
                    // The last key moves into the cursor's position: look at it next.
                    self.remove_quiet(&key);
                    self.expired += 1;
                    self.log.expired(self.id, &key);
                    expired += 1;
                } else {
                    ttl_sum = ttl_sum.saturating_add(when - now_ms);
                    ttl_samples += 1;
                    self.expire_cursor += 1;
                }
            }
            report.examined += examined;
            report.expired += expired;
            if expired * 100 <= examined * ACCEPTABLE_STALE_PERCENT {
                break;
            }
            if out_of_time() {
                report.out_of_time = true;
                break;
            }
        }
        if ttl_samples > 0 {
            // Valkey's running average: weight the old estimate 98%, then move toward the sample.
            let sample_avg = ttl_sum / ttl_samples;
            self.avg_ttl_ms = if self.avg_ttl_ms == 0 {
                sample_avg
            } else {
                (self.avg_ttl_ms / 50) * 49 + sample_avg / 50
            };
        }
        if self.expires.is_empty() {
            self.avg_ttl_ms = 0;
        }
        report
    }
}
