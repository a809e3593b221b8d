//! What Linux says about processes and the machine: CPU time of a process (all its threads,
//! from `/proc/<pid>/stat`), its resident and peak resident memory (`/proc/<pid>/status`),
//! the machine's busy CPU time (`/proc/stat`), CPU pinning (`sched_setaffinity`), and a short
//! description of the machine for reports. Linux only, like corekey.

use std::io;

/// Clock ticks per second of the `/proc` CPU times.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// User plus system CPU seconds used so far by process `pid`, all its threads (including
/// threads that have exited).
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed /proc/<pid>/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15); index = field number - 3.
    let field = |n: usize| -> io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no field {n} in /proc/{pid}/stat")))
    };
    Ok((field(14)? + field(15)?) as f64 / ticks_per_second())
}

/// A `kB` field of `/proc/<pid>/status` (VmRSS, VmHWM…), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| {
            let v = l.strip_prefix(field)?.strip_prefix(':')?;
            v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
        })
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::other(format!("no {field} in /proc/{pid}/status")))
}

/// Resident memory now.
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    status_bytes(pid, "VmRSS")
}

/// Peak resident memory since the process started.
pub fn peak_rss_bytes(pid: u32) -> io::Result<u64> {
    status_bytes(pid, "VmHWM")
}

/// Busy CPU seconds so far of the whole machine (`cpus` = None) or of the given CPUs: user,
/// nice, system, irq, softirq and steal time (everything but idle and iowait), from /proc/stat.
/// Unlike a process's own CPU time, this includes the kernel's network work (softirq) that
/// ran on those CPUs.
pub fn busy_seconds(cpus: Option<&[usize]>) -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let mut ticks = 0u64;
    let mut found = 0;
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        let wanted = match (cpus, name.strip_prefix("cpu")) {
            (None, Some("")) => true,
            (Some(list), Some(n)) if !n.is_empty() => {
                n.parse::<usize>().is_ok_and(|n| list.contains(&n))
            }
            _ => false,
        };
        if !wanted {
            continue;
        }
        found += 1;
        let v: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        ticks += v
            .iter()
            .take(8)
            .enumerate()
            .filter(|&(i, _)| i != 3 && i != 4)
            .map(|(_, x)| *x)
            .sum::<u64>();
    }
    if found == 0 {
        return Err(io::Error::other("no matching cpu line in /proc/stat"));
    }
    Ok(ticks as f64 / ticks_per_second())
}

/// Busy CPU seconds of the whole machine so far (see [`busy_seconds`]).
pub fn machine_busy_seconds() -> io::Result<f64> {
    busy_seconds(None)
}

/// Parses `0,2-3` into `[0, 2, 3]`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("invalid CPU list '{s}': expected CPU numbers and ranges like 0,2-3");
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.parse().map_err(|_| bad())?;
                let b: usize = b.parse().map_err(|_| bad())?;
                if a > b || b >= 4096 {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cpus.is_empty() || cpus.iter().any(|&c| c >= 4096) {
        return Err(bad());
    }
    Ok(cpus)
}

/// Formats CPUs as `0,1,2` (the form corekey's `--cpu-list` and taskset accept).
pub fn format_cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Pins thread or process `pid` (0: the calling thread) to `cpus`. Threads created afterwards
/// by that thread inherit the mask.
pub fn set_affinity(pid: libc::pid_t, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write inside it (indices checked
    // against CPU_SETSIZE below); sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &c in cpus {
            if c >= libc::CPU_SETSIZE as usize {
                return Err(io::Error::other(format!("CPU {c} is out of range")));
            }
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The CPUs this process may run on.
pub fn available_cpus() -> Vec<usize> {
    // SAFETY: as in set_affinity; sched_getaffinity fills the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// One line about the machine: CPU model, CPU count, memory, kernel, load average.
pub fn describe_machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                let kb: f64 = l
                    .strip_prefix("MemTotal:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                Some(kb / 1024.0 / 1024.0)
            })
        })
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!(
        "{model}, {online} CPUs, {mem_gib:.0} GiB RAM, Linux {kernel}, load average {}",
        load_average()
    )
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0,2-4"), Ok(vec![0, 2, 3, 4]));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("").is_err());
        assert_eq!(format_cpu_list(&[0, 2]), "0,2");
    }

    /// Our own process has CPU time, a resident set, and a peak at least as large.
    #[test]
    fn reads_our_own_process() {
        let pid = std::process::id();
        let mut x = 0u64;
        for i in 0..10_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        let rss = rss_bytes(pid).unwrap();
        assert!(rss > 0);
        assert!(peak_rss_bytes(pid).unwrap() >= rss);
        assert!(machine_busy_seconds().unwrap() > 0.0);
        let cpus = available_cpus();
        assert!(busy_seconds(Some(&cpus[..1])).unwrap() <= machine_busy_seconds().unwrap());
        assert!(!available_cpus().is_empty());
    }
}
