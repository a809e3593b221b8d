//! corekey's integration-test harness: it starts real `corekey` (and `redis-server`) processes
//! on loopback ports and talks to them over sockets only. It must never depend on the server's
//! crates: what it knows about corekey is what a client can see.
//!
//! - [`client`]: a small synchronous RESP client that keeps every reply's raw bytes.
//! - [`cluster`]: cluster-mode nodes, `redis-cli --cluster` runs, waiting for agreement.
//! - [`server`]: start, find, signal and reap `corekey` / `redis-server` processes.
//! - [`gen`]: a seeded generator of command sequences for the differential test.
//! - [`gen_list`]: the same for the list family (blocking commands included).
//! - [`gen_mixed`]: every family at once on one key space, with transactions and pub/sub.
//! - [`gen_set`]: the same for the set family.
//! - [`gen_zset`]: the same for the sorted set family.
//! - [`diff`]: decides whether two servers' replies to one command are "the same".
//! - [`slot`]: CRC16-XMODEM hash slots, to pick keys on chosen shards.
//! - [`wait`]: polling with a deadline (tests never sleep blindly).
//!
//! To check a test itself, run it against `redis-server` in corekey's place:
//! `COREKEY_BIN=$PWD/tests/redis-as-corekey cargo nextest run -p corekey-tests` (all pass except
//! the ones about corekey's own limits, such as `malformed::two_million_arguments`).

pub mod client;
pub mod cluster;
pub mod diff;
pub mod gen;
pub mod gen_hash;
pub mod gen_list;
pub mod gen_mixed;
pub mod gen_set;
pub mod gen_zset;
pub mod http;
pub mod server;
pub mod slot;
pub mod wait;

/// Whether we run under CI (`CI=true`): there, a missing tool fails a test instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds an executable in `PATH`.
pub fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Finds a tool a test needs; outside CI a missing tool skips the test (None, with a notice),
/// under CI it fails the test.
pub fn require_tool(name: &str, package: &str) -> Option<std::path::PathBuf> {
    match find_in_path(name) {
        Some(p) => Some(p),
        None if in_ci() => {
            panic!("`{name}` is not installed but CI=true: install the Debian package {package} (.ci/run does)")
        }
        None => {
            eprintln!("SKIPPED: `{name}` not found in PATH (install the Debian package {package})");
            None
        }
    }
}
