//! Waiting on a condition with a deadline: tests poll what they wait for, they never sleep
//! blindly, and every wait ends.

use std::time::{Duration, Instant};

/// How long to rest between two checks of a condition.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Polls `check` until it returns `Some`, or returns `None` once `deadline` has passed.
pub fn poll<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    // Bounded by the deadline.
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Polls `check` until it returns `Some`; panics naming `what` if `deadline` passes first.
pub fn until<T>(what: &str, deadline: Duration, check: impl FnMut() -> Option<T>) -> T {
    match poll(deadline, check) {
        Some(v) => v,
        None => panic!("timed out after {deadline:?} waiting for {what}"),
    }
}
