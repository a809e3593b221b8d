//! The bare-metal kit in `tuning/`: its scripts pass `shellcheck` (Debian package shellcheck;
//! required under CI=true), `pin-irqs.sh` shows and sets affinities on a made-up /proc and
//! /sys, the example config starts a node, and `corekey --check-system` reports and exits as
//! documented.

use corekey_tests::require_tool;
use corekey_tests::server::{run_to_exit, Corekey};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TOOL_DEADLINE: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate has a parent")
        .to_path_buf()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "corekey-tuning-{name}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

/// Every shell script in tuning/ (and .ci/run) passes shellcheck without a finding.
#[test]
fn scripts_pass_shellcheck() {
    let Some(shellcheck) = require_tool("shellcheck", "shellcheck") else {
        return;
    };
    let root = repo_root();
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(root.join("tuning"))
        .expect("reading tuning/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .collect();
    scripts.push(root.join(".ci/run"));
    assert!(scripts.len() >= 2, "no scripts found: {scripts:?}");
    for s in scripts {
        let path = s.to_str().expect("a UTF-8 path");
        let done = run_to_exit("shellcheck", &shellcheck, &[path], TOOL_DEADLINE);
        assert!(
            done.status.success(),
            "shellcheck {path}:\n{}{}",
            done.stdout,
            done.stderr
        );
    }
}

/// A made-up host: 4 CPUs, a NIC `eth9` with four queue interrupts (40-43) and a
/// configuration interrupt that carries no traffic (39), all on CPUs 0-3.
fn fake_host() -> PathBuf {
    let root = temp_dir("irqs");
    let write = |p: &str, text: &str| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write("sys/devices/system/cpu/online", "0-3\n");
    write(
        "proc/interrupts",
        "           CPU0 CPU1 CPU2 CPU3\n 39: 0 0 0 0 PCI-MSIX 0-edge eth9-config\n 40: 5 0 0 0 PCI-MSIX 1-edge eth9-TxRx-0\n 41: 5 0 0 0 PCI-MSIX 2-edge eth9-TxRx-1\n 42: 5 0 0 0 PCI-MSIX 3-edge eth9-TxRx-2\n 43: 5 0 0 0 PCI-MSIX 4-edge eth9-TxRx-3\n 50: 1 0 0 0 IO-APIC 9-fasteoi eth90-other\n",
    );
    for irq in 39..=43 {
        write(&format!("proc/irq/{irq}/smp_affinity_list"), "0-3\n");
    }
    root
}

fn pin_irqs(root: &Path, args: &[&str]) -> (bool, String) {
    let script = repo_root().join("tuning/pin-irqs.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .args(args)
        .env("PIN_IRQS_ROOT", root)
        .output()
        .expect("running pin-irqs.sh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// With shards on CPUs 1-3, the dry run shows the queue interrupts going to CPU 0 and changes
/// nothing; --apply writes it; with shards on every CPU the queues spread round robin; the
/// configuration interrupt and other devices are left alone.
#[test]
fn pin_irqs_shows_then_sets() {
    let root = fake_host();
    let affinity = |irq: u32| {
        std::fs::read_to_string(root.join(format!("proc/irq/{irq}/smp_affinity_list")))
            .expect("reading an affinity")
            .trim()
            .to_string()
    };
    let (ok, out) = pin_irqs(&root, &["--shard-cpus", "1-3", "eth9"]);
    assert!(ok, "{out}");
    assert!(out.contains("4 interrupt(s)"), "{out}");
    assert!(out.contains("irq 40: 0-3 (would be 0)"), "{out}");
    assert!(!out.contains("irq 39") && !out.contains("irq 50"), "{out}");
    assert_eq!(affinity(40), "0-3", "a dry run must not write");
    let (ok, out) = pin_irqs(&root, &["--apply", "--shard-cpus", "1-3", "eth9"]);
    assert!(ok, "{out}");
    assert_eq!(
        (affinity(40), affinity(43), affinity(39)),
        ("0".into(), "0".into(), "0-3".into())
    );
    let (ok, out) = pin_irqs(&root, &["--apply", "eth9"]);
    assert!(ok, "{out}");
    assert_eq!(
        (40..=43).map(affinity).collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    let (ok, out) = pin_irqs(&root, &["nosuch0"]);
    assert!(!ok && out.contains("no interrupts found"), "{out}");
    let (ok, _) = pin_irqs(&root, &["--shard-cpus", "3-1", "eth9"]);
    assert!(!ok, "a reversed range is refused");
    let _ = std::fs::remove_dir_all(&root);
}

/// The example config for a 4 GB host is valid: a node starts from it (with the test's port,
/// address, directory and metrics port on top) and reports its settings. Its `dir`
/// (/var/lib/corekey/7000, made by the systemd unit) is the one line replaced, since corekey
/// checks at start-up that the directory exists.
#[test]
fn example_config_starts_a_node() {
    let text = std::fs::read_to_string(repo_root().join("tuning/corekey.conf"))
        .expect("reading the example config");
    assert!(text.contains("\ndir /var/lib/corekey/7000\n"));
    let dir = temp_dir("example");
    let config = dir.join("7000.conf");
    std::fs::write(
        &config,
        text.replace(
            "\ndir /var/lib/corekey/7000\n",
            &format!("\ndir {}\n", dir.display()),
        ),
    )
    .expect("writing the config");
    let metrics = corekey_tests::server::lease_port();
    let metrics_port = metrics.port().to_string();
    let server = Corekey::start_with_config_file(&config, &["--metrics-port", &metrics_port]);
    let mut c = server.client();
    let text = c.call_text(&["CONFIG", "GET", "latency-monitor-threshold"]);
    assert!(text.contains("\r\n5\r\n"), "{text}");
    let text = c.call_text(&["CONFIG", "GET", "metrics-port"]);
    assert!(text.contains(&metrics_port), "{text}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `corekey --check-system` prints a report (its findings, or that there are none) and
/// exits 0 exactly when it found nothing; a host with fewer CPUs than `cores` is a finding.
#[test]
fn check_system_reports() {
    let bin = Corekey::binary();
    let done = run_to_exit("corekey", &bin, &["--check-system"], TOOL_DEADLINE);
    assert!(
        done.stdout.starts_with("corekey --check-system:"),
        "{}",
        done.stdout
    );
    let clean = done.stdout.contains("no problem found");
    assert_eq!(done.status.success(), clean, "{}", done.stdout);
    let done = run_to_exit(
        "corekey",
        &bin,
        &["--check-system", "--cores", "1024"],
        TOOL_DEADLINE,
    );
    assert_eq!(done.status.code(), Some(1), "{}", done.stdout);
    assert!(
        done.stdout
            .contains("cores is 1024 but this process may run on"),
        "{}",
        done.stdout
    );
}
