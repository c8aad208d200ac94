//! The side-by-side table and the ratios (Ensemble / ZooKeeper) against issue 5's targets.

use crate::cluster::System;
use crate::load::Workload;
use crate::scale::ScaleResult;
use crate::{Args, mib, procfs};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Clone, Debug)]
pub struct Measured {
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// Server CPU (utime + stime summed over the three processes) per operation.
    pub cpu_us_per_op: f64,
    /// The kernel's share of that CPU time (stime / (utime + stime)).
    pub sys_share: f64,
    /// Context switches of the servers' threads per operation.
    pub ctx_per_op: f64,
    /// The benchmark's own CPU per operation (the client), for context.
    pub client_cpu_us_per_op: f64,
    /// Summed VmRSS of the three servers at the end of the workload.
    pub rss: u64,
    pub errors: u64,
    pub load: String,
}

/// What a ratio must be to meet its target.
#[derive(Clone, Copy)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
    None,
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::AtLeast(x) => format!(">= {x}x"),
            Target::AtMost(x) => format!("<= {x}x"),
            Target::None => String::new(),
        }
    }
    fn verdict(self, ratio: f64) -> &'static str {
        if !ratio.is_finite() {
            return "";
        }
        match self {
            Target::AtLeast(x) if ratio >= x => "met",
            Target::AtMost(x) if ratio <= x => "met",
            Target::None => "",
            _ => "NOT MET",
        }
    }
}

pub struct Report {
    settings: String,
    workloads: Vec<Workload>,
    rows: BTreeMap<(u8, u8), Vec<Measured>>,
    idle: BTreeMap<u8, u64>,
    scale: BTreeMap<u8, ScaleResult>,
}

fn sys_key(s: System) -> u8 {
    match s {
        System::Ensemble => 0,
        System::ZooKeeper => 1,
    }
}

fn wl_key(w: Workload) -> u8 {
    w as u8
}

fn throughput_target(w: Workload) -> Target {
    match w {
        Workload::Write | Workload::Create => Target::AtLeast(2.0),
        Workload::Read | Workload::Mixed => Target::AtLeast(1.5),
    }
}

/// The median of one metric over the rounds (the mean of the middle two for an even count).
fn median(v: &[Measured], f: fn(&Measured) -> f64) -> f64 {
    let mut xs: Vec<f64> = v.iter().map(f).collect();
    xs.sort_by(|a, b| a.total_cmp(b));
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

impl Report {
    pub fn new(args: &Args, workloads: &[Workload]) -> Report {
        Report {
            settings: format!(
                "{} sessions x {} in flight, {}-byte values over {} keys, {} s measured per \
                 workload after {} s of warm-up ({} s of warm-up per ensemble first), fsync on \
                 (forceSync=yes), client threads {}, servers {}, {} round(s) alternating the \
                 systems (medians reported), clients over {}",
                args.sessions,
                args.inflight,
                args.value_size,
                args.keys,
                args.duration,
                args.warmup,
                args.jvm_warmup,
                args.client_threads,
                if args.same_session {
                    "in the benchmark's session (--same-session)"
                } else {
                    "each in its own session (ensemble start; ZooKeeper after setsid)"
                },
                args.rounds.max(1),
                if args.tls.is_some() {
                    "TLS (secureClientPort; ZooKeeper with NettyServerCnxnFactory)"
                } else if args.zk_netty {
                    "plaintext (clientPort; ZooKeeper with NettyServerCnxnFactory)"
                } else {
                    "plaintext (clientPort)"
                }
            ),
            workloads: workloads.to_vec(),
            rows: BTreeMap::new(),
            idle: BTreeMap::new(),
            scale: BTreeMap::new(),
        }
    }

    pub fn settings_line(&self) -> &str {
        &self.settings
    }

    pub fn record(&mut self, s: System, w: Workload, m: Measured) {
        self.rows
            .entry((sys_key(s), wl_key(w)))
            .or_default()
            .push(m);
    }

    pub fn idle_rss(&mut self, s: System, rss: u64) {
        self.idle.insert(sys_key(s), rss);
    }

    pub fn scale(&mut self, s: System, r: ScaleResult) {
        self.scale.insert(sys_key(s), r);
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "RESULTS ({})", self.settings);
        let _ = writeln!(o, "machine: {}", procfs::machine());
        let _ = writeln!(o, "load average at the end: {}", procfs::loadavg());
        let _ = writeln!(
            o,
            "\n{:<18} {:<16} {:>12} {:>12} {:>9} {:>9}  verdict",
            "workload", "metric", "Ensemble", "ZooKeeper", "E/ZK", "target"
        );
        let _ = writeln!(o, "{}", "-".repeat(92));
        let line = |o: &mut String,
                    wl: &str,
                    metric: &str,
                    e: Option<f64>,
                    z: Option<f64>,
                    prec: usize,
                    t: Target| {
            let ratio = match (e, z) {
                (Some(e), Some(z)) if z > 0.0 => e / z,
                _ => f64::NAN,
            };
            let f = |v: Option<f64>| {
                v.map(|v| format!("{v:.prec$}"))
                    .unwrap_or_else(|| "-".into())
            };
            let r = if ratio.is_finite() {
                format!("{ratio:.2}")
            } else {
                "-".into()
            };
            let _ = writeln!(
                o,
                "{:<18} {:<16} {:>12} {:>12} {:>9} {:>9}  {}",
                wl,
                metric,
                f(e),
                f(z),
                r,
                t.text(),
                t.verdict(ratio)
            );
        };
        for &w in &self.workloads {
            let e = self.rows.get(&(0, wl_key(w)));
            let z = self.rows.get(&(1, wl_key(w)));
            let g = |f: fn(&Measured) -> f64| (e.map(|v| median(v, f)), z.map(|v| median(v, f)));
            let (a, b) = g(|m| m.ops_per_sec);
            line(&mut o, w.name(), "ops/s", a, b, 0, throughput_target(w));
            let (a, b) = g(|m| m.p50_ms);
            line(&mut o, "", "p50 ms", a, b, 2, Target::None);
            let (a, b) = g(|m| m.p99_ms);
            line(&mut o, "", "p99 ms", a, b, 2, Target::AtMost(0.5));
            let (a, b) = g(|m| m.p999_ms);
            line(&mut o, "", "p999 ms", a, b, 2, Target::None);
            let (a, b) = g(|m| m.cpu_us_per_op);
            line(
                &mut o,
                "",
                "server CPU us/op",
                a,
                b,
                1,
                Target::AtMost(0.25),
            );
            let (a, b) = g(|m| m.sys_share * 100.0);
            line(&mut o, "", " of it kernel %", a, b, 0, Target::None);
            let (a, b) = g(|m| m.ctx_per_op);
            line(&mut o, "", "ctx switches/op", a, b, 2, Target::None);
            let (a, b) = g(|m| mib(m.rss));
            line(&mut o, "", "server RSS MiB", a, b, 0, Target::AtMost(0.1));
            let (a, b) = g(|m| m.client_cpu_us_per_op);
            line(&mut o, "", "client CPU us/op", a, b, 1, Target::None);
            let (a, b) = g(|m| m.errors as f64);
            line(&mut o, "", "errors", a, b, 0, Target::None);
        }
        if !self.idle.is_empty() {
            let e = self.idle.get(&0).map(|r| mib(*r));
            let z = self.idle.get(&1).map(|r| mib(*r));
            line(
                &mut o,
                "idle, empty tree",
                "server RSS MiB",
                e,
                z,
                0,
                Target::AtMost(0.1),
            );
        }
        if !self.scale.is_empty() {
            let e = self.scale.get(&0);
            let z = self.scale.get(&1);
            let n = e.or(z).map(|r| r.znodes).unwrap_or(0);
            let title = format!("{n} znodes");
            let g = |f: fn(&ScaleResult) -> f64| (e.map(f), z.map(f));
            let (a, b) = g(|r| mib(r.rss));
            line(
                &mut o,
                &title,
                "server RSS MiB",
                a,
                b,
                0,
                Target::AtMost(0.1),
            );
            let (a, b) = g(|r| mib(r.disk));
            line(&mut o, "", "data dirs MiB", a, b, 0, Target::None);
            let (a, b) = g(|r| r.znodes as f64 / r.load_secs);
            line(&mut o, "", "load creates/s", a, b, 0, Target::None);
            let (a, b) = g(|r| r.mode_secs());
            line(&mut o, "", "restart->Mode s", a, b, 2, Target::None);
            let (a, b) = g(|r| r.recovery_secs());
            line(&mut o, "", "restart->serve s", a, b, 2, Target::AtMost(0.5));
            let (a, b) = g(|r| mib(r.restarted_rss));
            line(&mut o, "", "restarted RSS MiB", a, b, 0, Target::None);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ops: f64) -> Measured {
        Measured {
            ops_per_sec: ops,
            p50_ms: 0.0,
            p99_ms: 0.0,
            p999_ms: 0.0,
            cpu_us_per_op: 0.0,
            sys_share: 0.0,
            ctx_per_op: 0.0,
            client_cpu_us_per_op: 0.0,
            rss: 0,
            errors: 0,
            load: String::new(),
        }
    }

    #[test]
    fn medians_over_rounds() {
        let f: fn(&Measured) -> f64 = |x| x.ops_per_sec;
        assert_eq!(median(&[m(3.0), m(1.0), m(2.0)], f), 2.0);
        assert_eq!(median(&[m(4.0), m(1.0)], f), 2.5);
        assert!(median(&[], f).is_nan());
    }

    #[test]
    fn verdicts() {
        assert_eq!(Target::AtLeast(2.0).verdict(2.0), "met");
        assert_eq!(Target::AtLeast(2.0).verdict(1.9), "NOT MET");
        assert_eq!(Target::AtMost(0.5).verdict(0.5), "met");
        assert_eq!(Target::AtMost(0.5).verdict(0.51), "NOT MET");
        assert_eq!(Target::AtMost(0.5).verdict(f64::NAN), "");
    }
}
