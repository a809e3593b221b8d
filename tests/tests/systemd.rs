//! corekey under systemd: the `Type=notify` handshake, played from systemd's side with a unix
//! datagram socket as `NOTIFY_SOCKET`, and the shipped unit checked by `systemd-analyze
//! verify` (Debian package systemd; required under CI=true).

use corekey_tests::require_tool;
use corekey_tests::server::{answers_ping, lease_port, Corekey, Process};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NOTIFY_DEADLINE: Duration = Duration::from_secs(10);
const VERIFY_DEADLINE: Duration = Duration::from_secs(60);

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "corekey-systemd-{name}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

/// Waits for a datagram containing the line `state`; returns every line received before it.
fn wait_state(sock: &UnixDatagram, state: &str, p: &Process) -> Vec<String> {
    let end = Instant::now() + NOTIFY_DEADLINE;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded by the deadline: each receive waits at most until it.
    while Instant::now() < end {
        sock.set_read_timeout(Some(
            end.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
        .expect("setting a timeout");
        let Ok(n) = sock.recv(&mut buf) else { break };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let found = text.lines().any(|l| l == state);
        seen.push(text);
        if found {
            return seen;
        }
    }
    panic!(
        "no {state} within {NOTIFY_DEADLINE:?}; received {seen:?}\n{}",
        p.output_tail()
    );
}

/// Plays systemd: binds the notify socket (a path, then an abstract name), starts corekey with
/// `NOTIFY_SOCKET` pointing at it, and checks that READY=1 comes only once the port accepts
/// connections (a PING right after it, with no retry, gets PONG), then that SIGTERM brings
/// STOPPING=1 and a clean exit.
#[test]
fn notify_ready_after_listening_and_stopping_on_sigterm() {
    let dir = temp_dir("notify");
    for abstract_name in [false, true] {
        let (sock, env_value): (UnixDatagram, OsString) = if abstract_name {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("corekey-notify-{}", std::process::id());
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .expect("an abstract address");
            (
                UnixDatagram::bind_addr(&addr).expect("binding the abstract notify socket"),
                format!("@{name}").into(),
            )
        } else {
            let path = dir.join("notify.sock");
            let _ = std::fs::remove_file(&path);
            (
                UnixDatagram::bind(&path).expect("binding the notify socket"),
                path.into_os_string(),
            )
        };
        let lease = lease_port();
        let port = lease.port().to_string();
        let args: Vec<OsString> = [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--cores",
            "2",
            "--dir",
            dir.to_str().expect("a UTF-8 temp dir"),
        ]
        .map(OsString::from)
        .to_vec();
        let mut p = Process::spawn_with_env(
            "corekey",
            &Corekey::binary(),
            &args,
            &[("NOTIFY_SOCKET", env_value.as_os_str())],
        );
        let before = wait_state(&sock, "READY=1", &p);
        assert_eq!(before.len(), 1, "messages before READY=1: {before:?}");
        let addr = SocketAddr::from(([127, 0, 0, 1], lease.port()));
        assert!(
            answers_ping(addr),
            "READY=1 came but the port did not answer PING\n{}",
            p.output_tail()
        );
        p.signal(libc::SIGTERM);
        wait_state(&sock, "STOPPING=1", &p);
        let status = p
            .wait_exit(NOTIFY_DEADLINE)
            .expect("corekey to exit after SIGTERM");
        assert_eq!(status.code(), Some(0), "{}", p.output_tail());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The repository's root (the tests crate lives one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate has a parent")
        .to_path_buf()
}

/// `systemd-analyze verify` accepts an instance of the template unit without a single warning.
/// It runs against a scratch root that holds the unit, the system's own units (for the targets
/// it names) and the corekey binary at the unit's ExecStart path, so nothing is installed on
/// the machine.
#[test]
fn unit_passes_systemd_analyze_verify() {
    let Some(analyze) = require_tool("systemd-analyze", "systemd") else {
        return;
    };
    let root = temp_dir("verify");
    let units = root.join("etc/systemd/system");
    std::fs::create_dir_all(&units).expect("creating the unit dir");
    std::fs::copy(
        repo_root().join("tuning/systemd/corekey@.service"),
        units.join("corekey@.service"),
    )
    .expect("copying the unit");
    let lib = root.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&lib).expect("creating the system unit dir");
    for dir in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_file() && !lib.join(e.file_name()).exists() {
                std::fs::copy(&path, lib.join(e.file_name())).expect("copying a system unit");
            }
        }
    }
    let bin = root.join("usr/local/bin");
    std::fs::create_dir_all(&bin).expect("creating the bin dir");
    std::fs::copy(Corekey::binary(), bin.join("corekey")).expect("copying corekey");
    let root_arg = format!("--root={}", root.display());
    let done = corekey_tests::server::run_to_exit(
        "systemd-analyze",
        &analyze,
        &["verify", &root_arg, "corekey@7000.service"],
        VERIFY_DEADLINE,
    );
    let output = format!("{}{}", done.stdout, done.stderr);
    assert!(
        done.status.success() && output.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{output}",
        done.status
    );
    let _ = std::fs::remove_dir_all(&root);
}
