//! The standard tools work against corekey unchanged: redis-benchmark and redis-cli (Debian
//! package redis-tools; required under CI=true, skipped with a notice elsewhere).

use corekey_tests::require_tool;
use corekey_tests::server::{run_to_exit, Corekey};
use std::time::Duration;

/// redis-benchmark's own run is bounded by its request count; this is only a backstop.
const BENCHMARK_DEADLINE: Duration = Duration::from_secs(300);
const CLI_DEADLINE: Duration = Duration::from_secs(10);

/// redis-benchmark runs its SET, GET, INCR, MSET and PING tests to the end (exit 0), pipelined
/// from 50 clients, and reports no error.
#[test]
fn redis_benchmark_runs_clean() {
    let Some(bench) = require_tool("redis-benchmark", "redis-tools") else {
        return;
    };
    let server = Corekey::start(&[]);
    let port = server.port().to_string();
    let args = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "set,get,incr,mset,ping",
        "-P",
        "16",
        "-c",
        "50",
        "-n",
        "100000",
        "-q",
    ];
    let done = run_to_exit("redis-benchmark", &bench, &args, BENCHMARK_DEADLINE);
    let output = format!("{}\n{}", done.stdout, done.stderr);
    assert!(
        done.status.success(),
        "redis-benchmark exited with {:?}:\n{output}",
        done.status
    );
    // -q rewrites a progress line with '\r'; every piece is checked.
    let errors: Vec<&str> = output
        .split(['\r', '\n'])
        .filter(|l| l.to_ascii_lowercase().contains("err"))
        .collect();
    assert!(
        errors.is_empty(),
        "redis-benchmark reported errors: {errors:#?}"
    );
    for test in [
        "PING_INLINE:",
        "PING_MBULK:",
        "SET:",
        "GET:",
        "INCR:",
        "MSET (10 keys):",
    ] {
        assert!(output.contains(test), "no result for {test} in:\n{output}");
    }
}

/// redis-benchmark's data-type tests (lists, sets, hashes, sorted sets, LRANGE of 100
/// elements), pipelined 16 deep, run to the end with no error: none in its output, and none
/// counted by the server (INFO stats `total_error_replies`). Under CI=true a missing
/// redis-benchmark fails the test.
#[test]
fn redis_benchmark_data_types_run_clean() {
    let Some(bench) = require_tool("redis-benchmark", "redis-tools") else {
        return;
    };
    let server = Corekey::start(&[]);
    let port = server.port().to_string();
    let args = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100",
        "-P",
        "16",
        "-n",
        "20000",
        "-q",
    ];
    let done = run_to_exit("redis-benchmark", &bench, &args, BENCHMARK_DEADLINE);
    let output = format!("{}\n{}", done.stdout, done.stderr);
    assert!(
        done.status.success(),
        "redis-benchmark exited with {:?}:\n{output}",
        done.status
    );
    let errors: Vec<&str> = output
        .split(['\r', '\n'])
        .filter(|l| l.to_ascii_lowercase().contains("err"))
        .collect();
    assert!(
        errors.is_empty(),
        "redis-benchmark reported errors: {errors:#?}"
    );
    for test in [
        "LPUSH:",
        "RPUSH:",
        "LPOP:",
        "RPOP:",
        "SADD:",
        "HSET:",
        "SPOP:",
        "ZADD:",
        "ZPOPMIN:",
        "LPUSH (needed to benchmark LRANGE):",
        "LRANGE_100 (first 100 elements):",
    ] {
        assert!(output.contains(test), "no result for {test} in:\n{output}");
    }
    let stats = server.client().call_text(&["INFO", "stats"]);
    assert!(
        stats.contains("total_error_replies:0\r\n"),
        "corekey answered errors during the benchmark:\n{stats}"
    );
}

/// redis-cli, non-interactive, can set and read a key.
#[test]
fn redis_cli_set_get() {
    let Some(cli) = require_tool("redis-cli", "redis-tools") else {
        return;
    };
    let server = Corekey::start(&[]);
    let port = server.port().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["-h", "127.0.0.1", "-p", &port];
        all.extend_from_slice(args);
        let done = run_to_exit("redis-cli", &cli, &all, CLI_DEADLINE);
        assert!(
            done.status.success(),
            "redis-cli {args:?} exited with {:?}: {}",
            done.status,
            done.stderr
        );
        done.stdout
    };
    assert_eq!(run(&["set", "cli-key", "cli value"]), "OK\n");
    assert_eq!(run(&["get", "cli-key"]), "cli value\n");
    assert_eq!(run(&["ping"]), "PONG\n");
}
