//! What the benchmark reads from /proc: a process's CPU time (utime + stime, all threads), its
//! resident memory (VmRSS), the machine's load average; and signals to processes.

use std::time::Duration;

/// Clock ticks per second for /proc/PID/stat's utime/stime.
fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of a whole process (the kernel sums its threads for the thread-group leader).
/// `None` when the process is gone.
pub fn cpu_time(pid: i32) -> Option<Duration> {
    cpu_split(pid).map(|(u, s)| u + s)
}

/// (utime, stime) of a whole process: user and kernel CPU time.
pub fn cpu_split(pid: i32) -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name (field 2) is in parentheses and may hold spaces: split after the last ')'
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let t = clk_tck();
    Some((
        Duration::from_secs_f64(utime as f64 / t),
        Duration::from_secs_f64(stime as f64 / t),
    ))
}

/// Context switches (voluntary + involuntary) summed over a process's threads.
pub fn ctx_switches(pid: i32) -> u64 {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    rd.flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|s| {
            s.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// What the servers used: user CPU, kernel CPU, context switches; summed over processes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub user: Duration,
    pub sys: Duration,
    pub ctx: u64,
}

impl Usage {
    pub fn of(pids: &[i32]) -> Usage {
        let mut u = Usage::default();
        for p in pids {
            if let Some((user, sys)) = cpu_split(*p) {
                u.user += user;
                u.sys += sys;
            }
            u.ctx += ctx_switches(*p);
        }
        u
    }
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

/// A `VmXxx:` line of /proc/PID/status, in bytes.
fn status_kib(pid: i32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// Resident memory (VmRSS), bytes.
pub fn rss(pid: i32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && l.contains("Z (zombie)"))
        })
        .unwrap_or(false)
}

pub fn signal(pid: i32, sig: i32) {
    if pid > 1 {
        // SAFETY: plain kill(2) on a pid we started.
        unsafe { libc::kill(pid, sig) };
    }
}

/// The first three fields of /proc/loadavg.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The 1-minute load average.
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// The CPU model and count, and total memory, for the report.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "?".into());
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    format!(
        "{cpus} x {model}, {:.1} GiB RAM, kernel {}",
        mem as f64 / 1024.0 / 1024.0,
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    )
}

/// Sum of VmRSS over processes, bytes.
pub fn rss_sum(pids: &[i32]) -> u64 {
    pids.iter().filter_map(|p| rss(*p)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id() as i32;
        assert!(alive(me));
        assert!(rss(me).is_some_and(|r| r > 0));
        assert!(cpu_time(me).is_some());
        assert_eq!(
            Usage::of(&[i32::MAX]).cpu(),
            Duration::ZERO,
            "a missing process is 0"
        );
        assert!(Usage::of(&[me]).ctx > 0);
        assert!(!machine().is_empty());
    }
}
