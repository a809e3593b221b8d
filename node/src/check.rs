//! `corekey --check-system`: what on this host would cost corekey throughput or stability,
//! each finding with the reason and the fix. Exit code 0 when nothing is found.
//!
//! [`Host::read`] is the only part that looks at the machine (/proc, /sys, rlimits, an
//! io_uring probe); [`findings`] is pure, so every rule is unit-tested on made-up hosts.

use crate::config::Config;

/// The listen backlog corekey asks for (`net::TCP_BACKLOG`, Valkey's `tcp-backlog`).
const BACKLOG: u64 = crate::net::TCP_BACKLOG as u64;
/// Descriptors corekey needs besides its clients: Valkey keeps 32 in reserve; each shard adds
/// its io_uring, its eventfd and one listener per bind address.
const RESERVED_FDS: u64 = 32;

/// What the checks read from the machine. `None`: the file is absent or unreadable.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// `/sys/kernel/mm/transparent_hugepage/enabled`, e.g. `always [madvise] never`.
    pub thp_enabled: Option<String>,
    pub somaxconn: Option<u64>,
    pub tcp_max_syn_backlog: Option<u64>,
    pub overcommit_memory: Option<u64>,
    /// `/proc/sys/kernel/io_uring_disabled` (Linux 6.6+): 0 on, 1 restricted, 2 off.
    pub io_uring_disabled: Option<u64>,
    /// Why a plain io_uring could not be set up, if it could not.
    pub io_uring_error: Option<String>,
    /// Whether a ring with DEFER_TASKRUN (Linux 6.1+) could be set up.
    pub defer_taskrun: bool,
    /// Soft RLIMIT_NOFILE.
    pub nofile: u64,
    /// CPUs this process may run on.
    pub cpus: Vec<usize>,
}

impl Host {
    /// Reads this machine.
    pub fn read() -> Host {
        let text = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
        };
        let num = |p: &str| text(p).and_then(|s| s.parse().ok());
        let io_uring_error = io_uring::IoUring::<io_uring::squeue::Entry>::new(8)
            .err()
            .map(|e| e.to_string());
        let defer_taskrun = io_uring::IoUring::<io_uring::squeue::Entry>::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .setup_defer_taskrun()
            .build(8)
            .is_ok();
        // SAFETY: getrlimit fills a zeroed struct.
        let nofile = unsafe {
            let mut r: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
                r.rlim_cur
            } else {
                0
            }
        };
        Host {
            thp_enabled: text("/sys/kernel/mm/transparent_hugepage/enabled"),
            somaxconn: num("/proc/sys/net/core/somaxconn"),
            tcp_max_syn_backlog: num("/proc/sys/net/ipv4/tcp_max_syn_backlog"),
            overcommit_memory: num("/proc/sys/vm/overcommit_memory"),
            io_uring_disabled: num("/proc/sys/kernel/io_uring_disabled"),
            io_uring_error,
            defer_taskrun,
            nofile,
            cpus: crate::config::available_cpus(),
        }
    }
}

/// One problem: what is wrong, why it matters, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub problem: String,
    pub why: String,
    pub fix: String,
}

fn finding(problem: String, why: &str, fix: String) -> Finding {
    Finding {
        problem,
        why: why.to_string(),
        fix,
    }
}

/// The problems of `host` for a node configured as `config`.
pub fn findings(host: &Host, config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(thp) = &host.thp_enabled {
        if thp.contains("[always]") {
            out.push(finding(
                "transparent huge pages are set to 'always'".into(),
                "the kernel then backs small allocations with 2 MB pages and compacts memory to find them: latency spikes and resident memory well above what is stored",
                "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled (and add transparent_hugepage=madvise to the kernel command line to keep it after a reboot)".into(),
            ));
        }
    }
    if let Some(n) = host.somaxconn.filter(|&n| n < BACKLOG) {
        out.push(finding(
            format!("net.core.somaxconn is {n}, below corekey's listen backlog of {BACKLOG}"),
            "the kernel cuts every listen queue to somaxconn: a burst of new connections overflows it and clients wait for SYN retries (a second or more)",
            "sysctl -w net.core.somaxconn=4096, and install tuning/sysctl/90-corekey.conf to keep it".into(),
        ));
    }
    if let Some(n) = host.tcp_max_syn_backlog.filter(|&n| n < BACKLOG) {
        out.push(finding(
            format!("net.ipv4.tcp_max_syn_backlog is {n}, below corekey's listen backlog of {BACKLOG}"),
            "half-open connections beyond it are dropped during a connection burst",
            "sysctl -w net.ipv4.tcp_max_syn_backlog=4096, and install tuning/sysctl/90-corekey.conf to keep it".into(),
        ));
    }
    if let Some(n) = host.overcommit_memory.filter(|&n| n != 1) {
        out.push(finding(
            format!("vm.overcommit_memory is {n}, not 1"),
            "with heuristic (0) or strict (2) overcommit the kernel may refuse an allocation while memory is still free, and a refused allocation aborts the node; Valkey asks for 1 for the same reason",
            "sysctl -w vm.overcommit_memory=1, and install tuning/sysctl/90-corekey.conf to keep it".into(),
        ));
    }
    match host.io_uring_disabled {
        Some(2) => out.push(finding(
            "io_uring is disabled (kernel.io_uring_disabled = 2)".into(),
            "corekey does all its I/O through io_uring and cannot start without it",
            "sysctl -w kernel.io_uring_disabled=0".into(),
        )),
        Some(1) => out.push(finding(
            "io_uring is restricted to one group (kernel.io_uring_disabled = 1)".into(),
            "only members of the group named by kernel.io_uring_group (and root) may create rings; corekey fails to start as any other user",
            "sysctl -w kernel.io_uring_disabled=0, or add corekey's user to the group in kernel.io_uring_group".into(),
        )),
        _ => {}
    }
    if let Some(e) = &host.io_uring_error {
        out.push(finding(
            format!("an io_uring cannot be set up here: {e}"),
            "corekey does all its I/O through io_uring (a seccomp profile, a container runtime or an old kernel may forbid it)",
            "allow the io_uring_setup, io_uring_enter and io_uring_register system calls (containers: a seccomp profile that permits them), on Linux 5.19 or later".into(),
        ));
    } else if !host.defer_taskrun {
        out.push(finding(
            "the kernel refuses io_uring's DEFER_TASKRUN".into(),
            "corekey then falls back to COOP_TASKRUN alone, which costs CPU per request (completions interrupt the shard)",
            "run Linux 6.1 or later".into(),
        ));
    }
    let listeners = config.bind.len().max(1) as u64;
    let shards = config.cores as u64;
    let needed = config.maxclients + RESERVED_FDS + shards * (2 + listeners);
    if host.nofile < needed {
        out.push(finding(
            format!(
                "the open files limit is {}, below the {needed} that maxclients {} needs",
                host.nofile, config.maxclients
            ),
            "every client is a descriptor; past the limit new connections fail (accept: too many open files)",
            format!("LimitNOFILE={} or more in the systemd unit (tuning/systemd/corekey@.service), or ulimit -n before starting", needed.max(65536)),
        ));
    }
    if host.cpus.len() < config.cores {
        out.push(finding(
            format!(
                "cores is {} but this process may run on {} CPUs",
                config.cores,
                host.cpus.len()
            ),
            "shards would share CPUs and take turns, each waiting for the other",
            format!(
                "set cores to {} or less, or widen the CPU set (taskset, CPUAffinity= in the unit)",
                host.cpus.len()
            ),
        ));
    }
    if let Some(list) = &config.cpu_list {
        let missing: Vec<String> = list
            .iter()
            .filter(|c| !host.cpus.contains(c))
            .map(usize::to_string)
            .collect();
        if !missing.is_empty() {
            out.push(finding(
                format!(
                    "cpu-list names CPUs this process may not run on: {}",
                    missing.join(",")
                ),
                "a shard cannot be pinned there and runs unpinned",
                "name CPUs of the process's affinity mask (see taskset -p <pid>, CPUAffinity= in the unit)".into(),
            ));
        }
    }
    out
}

/// Runs the checks on this host and prints the report; returns the exit code.
pub fn run(config: &Config) -> i32 {
    let host = Host::read();
    let found = findings(&host, config);
    print!("{}", report(&host, config, &found));
    i32::from(!found.is_empty())
}

/// The printed report.
pub fn report(host: &Host, config: &Config, found: &[Finding]) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "corekey --check-system: {} shard(s), maxclients {}, {} CPU(s) available\n",
        config.cores,
        config.maxclients,
        host.cpus.len()
    );
    if found.is_empty() {
        s.push_str("no problem found\n");
        return s;
    }
    for (i, f) in found.iter().enumerate() {
        let _ = write!(
            s,
            "\n{}. {}\n   why: {}\n   fix: {}\n",
            i + 1,
            f.problem,
            f.why,
            f.fix
        );
    }
    let _ = write!(s, "\n{} problem(s) found\n", found.len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_host() -> Host {
        Host {
            thp_enabled: Some("always [madvise] never".into()),
            somaxconn: Some(4096),
            tcp_max_syn_backlog: Some(4096),
            overcommit_memory: Some(1),
            io_uring_disabled: Some(0),
            io_uring_error: None,
            defer_taskrun: true,
            nofile: 100_000,
            cpus: vec![0, 1, 2, 3],
        }
    }

    fn config(cores: usize) -> Config {
        Config {
            cores,
            ..Config::defaults()
        }
    }

    /// A well-tuned host has nothing to report, and the report says so.
    #[test]
    fn clean_host() {
        let f = findings(&good_host(), &config(4));
        assert_eq!(f, []);
        assert!(report(&good_host(), &config(4), &f).contains("no problem found"));
    }

    /// Each rule fires on its own bad setting and names the fix.
    #[test]
    fn each_problem_is_found() {
        let cases: Vec<(Host, &str)> = vec![
            (
                Host {
                    thp_enabled: Some("[always] madvise never".into()),
                    ..good_host()
                },
                "transparent_hugepage",
            ),
            (
                Host {
                    somaxconn: Some(128),
                    ..good_host()
                },
                "net.core.somaxconn=4096",
            ),
            (
                Host {
                    overcommit_memory: Some(0),
                    ..good_host()
                },
                "vm.overcommit_memory=1",
            ),
            (
                Host {
                    io_uring_disabled: Some(2),
                    ..good_host()
                },
                "io_uring_disabled=0",
            ),
            (
                Host {
                    io_uring_error: Some("Operation not permitted".into()),
                    ..good_host()
                },
                "seccomp",
            ),
            (
                Host {
                    defer_taskrun: false,
                    ..good_host()
                },
                "6.1",
            ),
            (
                Host {
                    nofile: 1024,
                    ..good_host()
                },
                "LimitNOFILE=",
            ),
            (
                Host {
                    cpus: vec![0, 1],
                    ..good_host()
                },
                "set cores to 2",
            ),
        ];
        for (host, fix) in cases {
            let f = findings(&host, &config(4));
            assert_eq!(f.len(), 1, "{host:?}: {f:?}");
            assert!(f[0].fix.contains(fix), "{:?} lacks {fix}", f[0]);
        }
        let c = Config {
            cpu_list: Some(vec![0, 9]),
            ..config(2)
        };
        let f = findings(&good_host(), &c);
        assert_eq!(f.len(), 1);
        assert!(f[0].problem.contains('9'));
    }
}
