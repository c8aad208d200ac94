//! A linearizability search (Wing & Gong, with Lowe's memoisation) over small per-path
//! histories, as a cross-check of the zxid-order checks that does not trust zxids.
//!
//! Each top-level key path that only plain persistent create / setData / delete and synced
//! reads touched is cut at quiescent points (no operation open across the cut) into segments;
//! each segment of at most [`MAX_OPS`] operations is searched for a linearization starting from
//! the committed state at the cut. An operation whose outcome the client never learned takes
//! effect at its commit time if it committed, and not at all otherwise.

use crate::check::{Reference, Violation, violation};
use crate::client::OpRecord;
use ensemble_core::proto::{CreateMode, KeeperError, Reply, Request, Response};
use ensemble_core::zxid::Zxid;
use std::collections::{BTreeMap, BTreeSet};

pub const MAX_OPS: usize = 14;

type State = Option<(Vec<u8>, i32)>;

#[derive(Clone, Debug)]
enum Kind {
    Create(Vec<u8>),
    Set(Vec<u8>, i32),
    Delete(i32),
    Read,
}

/// The result: as the client saw it, or (for a write whose reply was lost) as the committed
/// history has it.
#[derive(Clone, Debug)]
enum Out {
    Known(Reply),
}

#[derive(Clone, Debug)]
struct WOp {
    inv: u64,
    resp: u64,
    kind: Kind,
    out: Out,
    client: usize,
}

/// Apply `op` to `s`; None if its recorded outcome is impossible from `s`.
fn step(s: &State, op: &WOp) -> Option<State> {
    let out_err = |e: KeeperError| match &op.out {
        Out::Known(r) => *r == Err(e),
    };
    let out_ok = || match &op.out {
        Out::Known(r) => r.is_ok(),
    };
    match (&op.kind, s) {
        (Kind::Create(d), None) => out_ok().then(|| Some((d.clone(), 0))),
        (Kind::Create(_), Some(_)) => out_err(KeeperError::NodeExists).then(|| s.clone()),
        (Kind::Set(_, _), None) => out_err(KeeperError::NoNode).then_some(None),
        (Kind::Set(d, v), Some((_, ver))) => {
            if *v != -1 && v != ver {
                out_err(KeeperError::BadVersion).then(|| s.clone())
            } else {
                let ok = match &op.out {
                    Out::Known(Ok(Response::Stat(st))) => st.version == ver + 1,
                    Out::Known(_) => false,
                };
                ok.then(|| Some((d.clone(), ver + 1)))
            }
        }
        (Kind::Delete(_), None) => out_err(KeeperError::NoNode).then_some(None),
        (Kind::Delete(v), Some((_, ver))) => {
            if *v != -1 && v != ver {
                out_err(KeeperError::BadVersion).then(|| s.clone())
            } else if matches!(op.out, Out::Known(Err(KeeperError::NotEmpty))) {
                // children we do not model: no effect
                Some(s.clone())
            } else {
                out_ok().then_some(None)
            }
        }
        (Kind::Read, None) => out_err(KeeperError::NoNode).then_some(None),
        (Kind::Read, Some((d, ver))) => match &op.out {
            Out::Known(Ok(Response::GetData { data, stat })) => {
                (data == d && stat.version == *ver).then(|| s.clone())
            }
            _ => None,
        },
    }
}

/// Is there an order of `ops`, consistent with real time, that the register explains?
fn linearizable(ops: &[WOp], init: &State) -> bool {
    let n = ops.len();
    let mut seen: BTreeSet<(u32, State)> = BTreeSet::new();
    fn go(
        ops: &[WOp],
        done: u32,
        s: &State,
        seen: &mut BTreeSet<(u32, State)>,
        budget: &mut u32,
    ) -> bool {
        let n = ops.len();
        if done.count_ones() as usize == n {
            return true;
        }
        if *budget == 0 {
            // inconclusive: do not fail a run on a search we could not finish
            return true;
        }
        *budget -= 1;
        if !seen.insert((done, s.clone())) {
            return false;
        }
        // an op can go next only if no other open op finished before it began
        let min_resp = (0..n)
            .filter(|i| done & (1 << i) == 0)
            .map(|i| ops[i].resp)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..n {
            if done & (1 << i) != 0 || ops[i].inv > min_resp {
                continue;
            }
            if let Some(next) = step(s, &ops[i])
                && go(ops, done | (1 << i), &next, seen, budget)
            {
                return true;
            }
        }
        false
    }
    let mut budget = 200_000;
    let _ = n;
    go(ops, 0, init, &mut seen, &mut budget)
}

fn is_key(path: &str) -> bool {
    path.len() > 2 && path.starts_with("/k") && !path[1..].contains('/')
}

pub fn check_history(ops: &[OpRecord], r: &Reference, now: u64) -> Option<Violation> {
    let mut per_path: BTreeMap<String, Vec<WOp>> = BTreeMap::new();
    let mut excluded: BTreeSet<String> = BTreeSet::new();
    for o in ops {
        let (path, kind) = match &o.request {
            Request::Create {
                path,
                data,
                mode: CreateMode::Persistent,
                ..
            } => (path, Kind::Create(data.clone())),
            Request::Create { path, .. } => {
                excluded.insert(path.clone());
                continue;
            }
            Request::SetData {
                path,
                data,
                version,
            } => (path, Kind::Set(data.clone(), *version)),
            Request::Delete { path, version } => (path, Kind::Delete(*version)),
            Request::GetData { path, .. } if o.synced_since.is_some() => (path, Kind::Read),
            Request::Multi(_) => {
                // a multi touches several paths at once: leave those paths to the zxid checks
                if let Request::Multi(mops) = &o.request {
                    for m in mops {
                        let p = match m {
                            ensemble_core::proto::MultiOp::Create { path, .. }
                            | ensemble_core::proto::MultiOp::Delete { path, .. }
                            | ensemble_core::proto::MultiOp::SetData { path, .. }
                            | ensemble_core::proto::MultiOp::Check { path, .. } => path,
                        };
                        excluded.insert(p.clone());
                    }
                }
                continue;
            }
            _ => continue,
        };
        if !is_key(path) {
            continue;
        }
        let inv = if matches!(kind, Kind::Read) {
            o.synced_since.unwrap_or(o.invoked)
        } else {
            o.invoked
        };
        let (resp, out) = match (&o.result, o.done) {
            (Some((_, reply)), Some(done)) => {
                let state_related = matches!(
                    reply,
                    Ok(_)
                        | Err(KeeperError::NoNode)
                        | Err(KeeperError::NodeExists)
                        | Err(KeeperError::BadVersion)
                        | Err(KeeperError::NotEmpty)
                );
                if !state_related {
                    continue;
                }
                (done, Out::Known(reply.clone()))
            }
            _ => {
                if matches!(kind, Kind::Read) {
                    continue;
                }
                // it committed or not; if it did, the history knows its result
                let Some(z) = r.requests.get(&(o.session, o.xid)) else {
                    continue;
                };
                let (Some(t), Some(reply)) = (
                    r.commit_time(*z),
                    r.txns.get(z).and_then(|i| i.reply.clone()),
                ) else {
                    continue;
                };
                (t.max(o.invoked), Out::Known(reply))
            }
        };
        per_path.entry(path.clone()).or_default().push(WOp {
            inv,
            resp,
            kind,
            out,
            client: o.client,
        });
    }
    for (path, mut wops) in per_path {
        if excluded.contains(&path) {
            continue;
        }
        wops.sort_by_key(|o| (o.inv, o.resp));
        // cut into quiescent segments
        let mut start = 0;
        let mut max_resp = 0;
        let mut segments = Vec::new();
        for (i, o) in wops.iter().enumerate() {
            if i > start && o.inv > max_resp {
                segments.push((start, i));
                start = i;
            }
            max_resp = max_resp.max(o.resp);
        }
        segments.push((start, wops.len()));
        for (a, b) in segments {
            let seg = &wops[a..b];
            if seg.len() > MAX_OPS || seg.is_empty() {
                continue;
            }
            // the committed state just before the segment began
            let t0 = seg[0].inv.saturating_sub(1);
            let z = r.zxid_at_time(t0);
            if z <= r.opaque_through && r.opaque_through > Zxid::ZERO {
                continue;
            }
            let init: State = r
                .node_at(&path, z)
                .map(|n| (n.data.clone(), n.stat.version));
            if !linearizable(seg, &init) {
                let desc: Vec<String> = seg
                    .iter()
                    .map(|o| {
                        format!(
                            "c{} {:?} [{}..{}] -> {:?}",
                            o.client, o.kind, o.inv, o.resp, o.out
                        )
                    })
                    .collect();
                return Some(violation(
                    "client.linearizable-wgl",
                    now,
                    format!(
                        "no linearization of {path} from {:?}: {}",
                        init.map(|(d, v)| (String::from_utf8_lossy(&d).to_string(), v)),
                        desc.join("; ")
                    ),
                ));
            }
        }
    }
    None
}
