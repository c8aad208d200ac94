//! The load: many sessions, each keeping a fixed number of requests in flight (closed loop per
//! slot), recording each request's latency from send to answer.

use anyhow::{Context, Result, bail};
use ensemble_client::{Client, ClientError, ConnectOptions, TlsOptions};
use ensemble_proto::proto::{Acl, CreateMode};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// 100% setData of `value_size` bytes on random keys
    Write,
    /// 100% getData on random keys
    Read,
    /// 90% getData / 10% setData
    Mixed,
    /// create PERSISTENT_SEQUENTIAL children of one parent
    Create,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Write => "write (setData)",
            Workload::Read => "read (getData)",
            Workload::Mixed => "mixed 90/10",
            Workload::Create => "create sequential",
        }
    }
    pub fn parse(s: &str) -> Option<Workload> {
        Some(match s {
            "write" | "writes" => Workload::Write,
            "read" | "reads" => Workload::Read,
            "mixed" => Workload::Mixed,
            "create" | "creates" => Workload::Create,
            _ => return None,
        })
    }
}

pub const ROOT: &str = "/bench";
pub const SEQ_PARENT: &str = "/bench/seq";

pub fn key(i: usize) -> String {
    format!("{ROOT}/k{i:06}")
}

#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub workload: Workload,
    pub inflight: usize,
    pub value_size: usize,
    pub keys: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

#[derive(Debug)]
pub struct LoadResult {
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub hist: Histogram<u64>,
}

impl LoadResult {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    /// Latency quantile, milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Opens `n` sessions spread round-robin over `addrs` (each session to one server, as
/// ZooKeeper clients spread over an ensemble).
pub async fn connect_sessions(
    addrs: &[String],
    n: usize,
    tls: Option<&TlsOptions>,
) -> Result<Vec<Client>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let addr = &addrs[i % addrs.len()];
        let mut opts = ConnectOptions::new(addr, Duration::from_secs(30));
        opts.connect_timeout = Some(Duration::from_secs(20));
        opts.tls = tls.cloned();
        let c = Client::connect_with(opts)
            .await
            .with_context(|| format!("session {i} to {addr}"))?;
        out.push(c);
    }
    Ok(out)
}

/// Creates /bench, its keys (with `value_size`-byte values) and the parent of the sequential
/// nodes, pipelined, if they are not there yet.
pub async fn prepare(client: &Client, keys: usize, value_size: usize) -> Result<()> {
    let value = vec![b'v'; value_size];
    for p in [ROOT, SEQ_PARENT] {
        match client
            .create(p, b"", Acl::open_unsafe(), CreateMode::Persistent)
            .await
        {
            Ok(_) | Err(ClientError::Keeper(ensemble_proto::proto::KeeperError::NodeExists)) => {}
            Err(e) => bail!("create {p}: {e}"),
        }
    }
    let mut pending = FuturesUnordered::new();
    let mut next = 0;
    while next < keys || !pending.is_empty() {
        while next < keys && pending.len() < 200 {
            let c = client.clone();
            let v = value.clone();
            let path = key(next);
            pending.push(async move {
                c.create(&path, &v, Acl::open_unsafe(), CreateMode::Persistent)
                    .await
                    .map(|_| ())
                    .or_else(|e| match e {
                        ClientError::Keeper(ensemble_proto::proto::KeeperError::NodeExists) => {
                            Ok(())
                        }
                        e => Err(anyhow::anyhow!("create {path}: {e}")),
                    })
            });
            next += 1;
        }
        if let Some(r) = pending.next().await {
            r?;
        }
    }
    Ok(())
}

/// One request of the workload on session `c`; `rng` picks keys and the mix.
async fn one_op(
    c: Client,
    w: Workload,
    rng: u64,
    keys: usize,
    value: Arc<Vec<u8>>,
) -> (Instant, Result<(), ClientError>) {
    let t0 = Instant::now();
    let k = key((rng % keys as u64) as usize);
    let write = match w {
        Workload::Write => true,
        Workload::Read => false,
        Workload::Mixed => (rng >> 32).is_multiple_of(10),
        Workload::Create => {
            let r = c
                .create(
                    &format!("{SEQ_PARENT}/n-"),
                    &value,
                    Acl::open_unsafe(),
                    CreateMode::PersistentSequential,
                )
                .await
                .map(|_| ());
            return (t0, r);
        }
    };
    let r = if write {
        c.set_data(&k, &value, None).await.map(|_| ())
    } else {
        c.get_data(&k, false).await.map(|_| ())
    };
    (t0, r)
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

struct SessionOutcome {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    hist: Histogram<u64>,
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

async fn session_loop(
    c: Client,
    spec: LoadSpec,
    seed: u64,
    phase: Arc<AtomicU8>,
    value: Arc<Vec<u8>>,
) -> SessionOutcome {
    let mut rng = seed | 1;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds");
    let (mut ops, mut errors, mut first_error) = (0u64, 0u64, None);
    let mut inflight = FuturesUnordered::new();
    for _ in 0..spec.inflight {
        inflight.push(one_op(
            c.clone(),
            spec.workload,
            xorshift(&mut rng),
            spec.keys,
            value.clone(),
        ));
    }
    while let Some((t0, r)) = inflight.next().await {
        let p = phase.load(Ordering::Acquire);
        if p == MEASURE {
            match r {
                Ok(()) => {
                    ops += 1;
                    let us = t0.elapsed().as_micros() as u64;
                    hist.saturating_record(us.max(1));
                }
                Err(e) => {
                    errors += 1;
                    if first_error.is_none() {
                        first_error = Some(e.to_string());
                    }
                }
            }
        }
        if p != STOP {
            inflight.push(one_op(
                c.clone(),
                spec.workload,
                xorshift(&mut rng),
                spec.keys,
                value.clone(),
            ));
        }
    }
    SessionOutcome {
        ops,
        errors,
        first_error,
        hist,
    }
}

/// Runs one workload over all sessions: `warmup` unmeasured, then `duration` measured; calls
/// `at_start` / `at_end` at the edges of the measured window (for CPU readings).
pub async fn run(
    clients: &[Client],
    spec: &LoadSpec,
    mut at_start: impl FnMut(),
    mut at_end: impl FnMut(),
) -> Result<LoadResult> {
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let value = Arc::new(vec![b'x'; spec.value_size]);
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        tasks.push(tokio::spawn(session_loop(
            c.clone(),
            spec.clone(),
            0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1),
            phase.clone(),
            value.clone(),
        )));
    }
    tokio::time::sleep(spec.warmup).await;
    at_start();
    let t0 = Instant::now();
    phase.store(MEASURE, Ordering::Release);
    tokio::time::sleep(spec.duration).await;
    phase.store(STOP, Ordering::Release);
    let elapsed = t0.elapsed();
    at_end();
    let mut out = LoadResult {
        ops: 0,
        errors: 0,
        first_error: None,
        elapsed,
        hist: Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds"),
    };
    // the requests still in flight drain; bounded by the session timeout
    let drain = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(tasks))
        .await
        .context("requests still unanswered 60 s after the end of the run")?;
    for t in drain {
        let s = t.context("a session task panicked")?;
        out.ops += s.ops;
        out.errors += s.errors;
        if out.first_error.is_none() {
            out.first_error = s.first_error;
        }
        out.hist.add(&s.hist).expect("same bounds");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_parse() {
        for w in [
            Workload::Write,
            Workload::Read,
            Workload::Mixed,
            Workload::Create,
        ] {
            let short = w.name().split_whitespace().next().unwrap_or_default();
            assert_eq!(Workload::parse(short), Some(w));
        }
        assert_eq!(Workload::parse("delete"), None);
    }

    #[test]
    fn the_mix_is_about_ninety_ten() {
        let mut s = 12345u64;
        let writes = (0..100_000)
            .filter(|_| (xorshift(&mut s) >> 32).is_multiple_of(10))
            .count();
        assert!((9_000..11_000).contains(&writes), "{writes}");
    }
}
