//! Shared by the bench's integration tests: where the binaries are, starting corekey and
//! redis-server (through the crate's own `servers` module, killed on drop), running
//! `corekey-bench` to its end with a deadline, and reading its JSON. Tests talk to servers
//! over loopback sockets only and wait on conditions, never on bare sleeps.

#![allow(dead_code)]

use corekey_bench::resp::{info_field, Client, Value};
use corekey_bench::servers::{find_in_path, Flavor, ServerProcess, ServerSpec};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one `corekey-bench` invocation in a test may take.
pub const BENCH_DEADLINE: Duration = Duration::from_secs(180);

/// Whether we run under CI (`CI=true`): there, a missing tool fails a test instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The corekey binary: `COREKEY_BIN`, else `corekey` in the target directory this test was
/// built into (`target/<profile>/deps/<test>` → `target/<profile>/corekey`).
pub fn corekey_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("COREKEY_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .join("corekey");
    assert!(
        bin.is_file(),
        "corekey binary not found at {}: run `cargo build -p corekey-node` first (or set COREKEY_BIN)",
        bin.display()
    );
    bin
}

pub fn bench_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_corekey-bench"))
}

/// redis-server from PATH; outside CI a missing one skips the test (None, with a notice),
/// under CI it fails the test.
pub fn redis_server() -> Option<PathBuf> {
    match find_in_path("redis-server") {
        Some(p) => Some(p),
        None if in_ci() => panic!(
            "redis-server is not installed but CI=true: install the Debian package redis-server (.ci/run does)"
        ),
        None => {
            eprintln!("SKIPPED: redis-server not found in PATH (install the Debian package redis-server)");
            None
        }
    }
}

/// redis-cli from PATH; outside CI a missing one skips the test (None, with a notice), under
/// CI it fails the test.
pub fn redis_cli() -> Option<PathBuf> {
    match find_in_path("redis-cli") {
        Some(p) => Some(p),
        None if in_ci() => panic!(
            "redis-cli is not installed but CI=true: install the Debian package redis-tools (.ci/run does)"
        ),
        None => {
            eprintln!("SKIPPED: redis-cli not found in PATH (install the Debian package redis-tools)");
            None
        }
    }
}

/// How long a helper tool (redis-cli) may run in a test.
pub const TOOL_DEADLINE: Duration = Duration::from_secs(120);

/// Runs `tool <args>` to its end and returns its stdout and stderr; panics with them if it
/// fails or outlives `TOOL_DEADLINE` (then it is killed).
pub fn run_tool(tool: &Path, args: &[&str]) -> String {
    let dir = std::env::temp_dir().join("corekey-bench-tests");
    std::fs::create_dir_all(&dir).expect("creating the log directory");
    let log = dir.join(format!(
        "tool-{}-{:x}.log",
        std::process::id(),
        corekey_bench::servers::random_u64()
    ));
    let file = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", tool.display()));
    let end = Instant::now() + TOOL_DEADLINE;
    // Bounded by the deadline.
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting on the tool") {
            break Some(s);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(
        status.is_some_and(|s| s.success()),
        "{} {args:?} failed or timed out ({status:?}):\n{out}",
        tool.display()
    );
    out
}

/// A fresh corekey with two shards (not pinned).
pub fn start_corekey() -> ServerProcess {
    start_corekey_with(&["--cores", "2"])
}

/// A fresh corekey (not pinned) with `extra` arguments.
pub fn start_corekey_with(extra: &[&str]) -> ServerProcess {
    let spec = ServerSpec {
        name: "corekey".into(),
        flavor: Flavor::Corekey,
        path: corekey_bin(),
        cpus: None,
    };
    ServerProcess::start(&spec, &[], extra).unwrap_or_else(|e| panic!("{e}"))
}

pub fn start_redis(path: &Path, extra: &[&str]) -> ServerProcess {
    let spec = ServerSpec {
        name: "redis".into(),
        flavor: Flavor::Redis,
        path: path.to_path_buf(),
        cpus: None,
    };
    ServerProcess::start(&spec, &[], extra).unwrap_or_else(|e| panic!("{e}"))
}

pub fn client(server: &ServerProcess) -> Client {
    server.client().unwrap_or_else(|e| panic!("{e}"))
}

pub fn call(c: &mut Client, args: &[&str]) -> Value {
    c.call(args)
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")))
}

pub fn call_int(c: &mut Client, args: &[&str]) -> i64 {
    match call(c, args) {
        Value::Int(i) => i,
        other => panic!("{}: expected an integer, got {other:?}", args.join(" ")),
    }
}

/// Every key in the server (small test data sets only).
pub fn all_keys(c: &mut Client) -> Vec<String> {
    match call(c, &["KEYS", "*"]) {
        Value::Array(items) => items.iter().filter_map(Value::as_text).collect(),
        other => panic!("KEYS: {other:?}"),
    }
}

/// The number in `memtier-<n>`.
pub fn key_number(key: &str) -> u64 {
    key.strip_prefix("memtier-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected key {key}"))
}

/// An INFO field as a number.
pub fn info_u64(c: &mut Client, section: &str, field: &str) -> u64 {
    let info = call(c, &["INFO", section]).as_text().unwrap_or_default();
    info_field(&info, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{info}"))
}

/// The `calls=` of one command in INFO commandstats (0 if it was never called).
pub fn command_calls(c: &mut Client, command: &str) -> u64 {
    let info = call(c, &["INFO", "commandstats"])
        .as_text()
        .unwrap_or_default();
    info_field(&info, &format!("cmdstat_{command}"))
        .and_then(|v| {
            v.split(',')
                .find_map(|kv| kv.strip_prefix("calls=")?.parse().ok())
        })
        .unwrap_or(0)
}

/// How a finished `corekey-bench` ended.
pub struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `corekey-bench <args>` to its end; kills it and panics after `BENCH_DEADLINE`.
pub fn bench(args: &[&str], env_path: Option<&str>) -> Finished {
    let dir = std::env::temp_dir().join("corekey-bench-tests");
    std::fs::create_dir_all(&dir).expect("creating the log directory");
    let stem = format!(
        "{}-{:x}",
        std::process::id(),
        corekey_bench::servers::random_u64()
    );
    let out_path = dir.join(format!("{stem}.out"));
    let err_path = dir.join(format!("{stem}.err"));
    let mut cmd = Command::new(bench_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    if let Some(p) = env_path {
        cmd.env("PATH", p);
    }
    let mut child = cmd.spawn().expect("starting corekey-bench");
    let end = Instant::now() + BENCH_DEADLINE;
    // Bounded by the deadline.
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting on corekey-bench") {
            break s;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "corekey-bench {args:?} still running after {BENCH_DEADLINE:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let f = Finished {
        success: status.success(),
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    f
}

/// Runs `corekey-bench run <args> -s 127.0.0.1 -p <port> --json-out-file …` and returns its
/// JSON; panics with its output if it fails.
pub fn bench_run(port: u16, args: &[&str]) -> serde_json::Value {
    let json = std::env::temp_dir().join(format!(
        "corekey-bench-test-{}-{:x}.json",
        std::process::id(),
        corekey_bench::servers::random_u64()
    ));
    let port = port.to_string();
    let mut all = vec!["run", "-s", "127.0.0.1", "-p", &port, "--hide-histogram"];
    all.extend_from_slice(args);
    let json_arg = json.to_string_lossy().into_owned();
    all.extend(["--json-out-file", &json_arg]);
    let f = bench(&all, None);
    assert!(
        f.success,
        "corekey-bench {all:?} failed\nstdout:\n{}\nstderr:\n{}",
        f.stdout, f.stderr
    );
    assert!(
        f.stdout.contains("ALL STATS"),
        "no summary table:\n{}",
        f.stdout
    );
    let text = std::fs::read_to_string(&json).expect("the JSON output");
    let _ = std::fs::remove_file(&json);
    serde_json::from_str(&text).expect("valid JSON")
}

/// A count from the JSON's `corekey-bench` section: `sets.count`, `gets.moved`, `errors`…
pub fn count(doc: &serde_json::Value, path: &str) -> u64 {
    path.split('.')
        .fold(&doc["corekey-bench"], |v, k| &v[k])
        .as_u64()
        .unwrap_or_else(|| panic!("no corekey-bench.{path} in {doc}"))
}
