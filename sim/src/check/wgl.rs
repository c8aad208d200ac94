//! A linearizability search (Wing & Gong, with Lowe's memoisation) over small per-path
//! histories, as a cross-check of the zxid-order checks that does not trust zxids.
//!
//! Each top-level key path that only plain persistent create / setData / delete and synced
//! reads touched is cut at quiescent points (no operation open across the cut) into segments;
//! each segment is searched for a linearization starting from the committed state at the cut.
//! An operation whose outcome the client never learned takes effect at its commit time if it
//! committed, and not at all otherwise.
//!
//! Segments of at most [`MAX_OPS`] operations take the plain search. Longer ones (counted, and
//! reported with every run) take the same search over up to [`MAX_WIDE`] operations with a
//! larger budget; a segment longer still, or whose search runs out of budget (counted too), is
//! checked read by read instead ([`reads_explained`]): every value a read returned must have
//! been written by a write that could have taken effect before the read ended and that no
//! write known to follow it had overwritten before the read began. That is a necessary
//! condition of linearizability (values are unique), so it finds stale and invented reads in
//! any segment, however long.

use crate::check::{Claim, Reference, Violation, violation};
use crate::client::OpRecord;
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{CreateMode, KeeperError, Reply, Request, Response};
use std::collections::{BTreeMap, BTreeSet};

pub const MAX_OPS: usize = 14;
/// The longest segment the search takes on at all (the width of its bitset).
pub const MAX_WIDE: usize = 128;

/// How the per-key histories were checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WglStats {
    pub segments: u64,
    /// Segments longer than [`MAX_OPS`].
    pub long: u64,
    /// Segments checked read by read (too long for the search, or its budget ran out).
    pub by_reads: u64,
}

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
/// `None`: the search ran out of `budget` steps before it could say.
fn linearizable(ops: &[WOp], init: &State, budget: u32) -> Option<bool> {
    let n = ops.len();
    assert!(
        n <= MAX_WIDE,
        "the search's bitset holds {MAX_WIDE} operations"
    );
    let mut seen: BTreeSet<(u128, State)> = BTreeSet::new();
    fn go(
        ops: &[WOp],
        done: u128,
        s: &State,
        seen: &mut BTreeSet<(u128, State)>,
        budget: &mut u32,
    ) -> bool {
        let n = ops.len();
        if done.count_ones() as usize == n {
            return true;
        }
        if *budget == 0 {
            // out of budget: the caller sees it and checks another way
            return true;
        }
        *budget -= 1;
        if !seen.insert((done, s.clone())) {
            return false;
        }
        // an op can go next only if no other open op finished before it began
        let min_resp = (0..n)
            .filter(|i| done & (1u128 << i) == 0)
            .map(|i| ops[i].resp)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..n {
            if done & (1u128 << i) != 0 || ops[i].inv > min_resp {
                continue;
            }
            if let Some(next) = step(s, &ops[i])
                && go(ops, done | (1u128 << i), &next, seen, budget)
            {
                return true;
            }
        }
        false
    }
    let mut left = budget;
    let found = go(ops, 0, init, &mut seen, &mut left);
    if left == 0 { None } else { Some(found) }
}

/// The state a successful write leaves, if it changes the register (None: it does not, or
/// it failed).
fn written(op: &WOp) -> Option<State> {
    let Out::Known(reply) = &op.out;
    match (&op.kind, reply) {
        (Kind::Create(d), Ok(_)) => Some(Some((d.clone(), 0))),
        (Kind::Set(d, _), Ok(Response::Stat(st))) => Some(Some((d.clone(), st.version))),
        (Kind::Delete(_), Ok(_)) => Some(None),
        _ => None,
    }
}

/// The state a read returned; None if it is no state (an error other than NoNode).
fn read_state(op: &WOp) -> Option<State> {
    let Out::Known(reply) = &op.out;
    match reply {
        Ok(Response::GetData { data, stat }) => Some(Some((data.clone(), stat.version))),
        Err(KeeperError::NoNode) => Some(None),
        _ => None,
    }
}

/// A necessary condition of linearizability, checked read by read: the state each read
/// returned was left by the initial state or by a write that began before the read ended,
/// and no successful write that began after that one ended had itself ended before the read
/// began (it would have overwritten it first). Written data is unique per write, so the
/// writes that could have left a state are few. The first read nothing explains, if any.
fn reads_explained(ops: &[WOp], init: &State) -> Option<usize> {
    let writes: Vec<(&WOp, State)> = ops
        .iter()
        .filter_map(|o| written(o).map(|s| (o, s)))
        .collect();
    for (i, r) in ops.iter().enumerate() {
        if !matches!(r.kind, Kind::Read) {
            continue;
        }
        let Some(got) = read_state(r) else { continue };
        // a successful write wholly after `after` (began after it ended) and wholly before
        // the read (ended before it began) overwrote what `after` left
        let overwritten = |after_resp: Option<u64>| {
            writes
                .iter()
                .any(|(x, _)| x.resp < r.inv && after_resp.is_none_or(|a| x.inv > a))
        };
        let from_init = *init == got && !overwritten(None);
        let from_write = writes
            .iter()
            .any(|(w, s)| *s == got && w.inv <= r.resp && !overwritten(Some(w.resp)));
        if !from_init && !from_write {
            return Some(i);
        }
    }
    None
}

fn is_key(path: &str) -> bool {
    path.len() > 2 && path.starts_with("/k") && !path[1..].contains('/')
}

/// Check one quiescent segment from `init`, the way its length allows.
fn segment_ok(seg: &[WOp], init: &State, stats: &mut WglStats) -> bool {
    stats.segments += 1;
    let long = seg.len() > MAX_OPS;
    stats.long += u64::from(long);
    let searched = if seg.len() > MAX_WIDE {
        None
    } else {
        linearizable(seg, init, if long { 2_000_000 } else { 200_000 })
    };
    match searched {
        Some(ok) => ok,
        None => {
            stats.by_reads += 1;
            reads_explained(seg, init).is_none()
        }
    }
}

/// A getData answered with a null buffer, as the empty data it is to a register.
fn denull(reply: &Reply) -> Reply {
    match reply {
        Ok(Response::GetDataNull { stat }) => Ok(Response::GetData {
            data: Vec::new(),
            stat: *stat,
        }),
        r => r.clone(),
    }
}

pub fn check_history(
    ops: &[OpRecord],
    r: &Reference,
    now: u64,
    stats: &mut WglStats,
) -> Option<Violation> {
    let mut per_path: BTreeMap<String, Vec<WOp>> = BTreeMap::new();
    let mut excluded: BTreeSet<String> = BTreeSet::new();
    for o in ops {
        // a null buffer is empty data to a register (`client.read-value` tells them apart)
        let request = match &*o.request {
            Request::NullData { request, .. } => &**request,
            r => r,
        };
        let (path, kind) = match request {
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
                if let Request::Multi(mops) = request {
                    for m in mops {
                        let p = match m {
                            ensemble_proto::proto::MultiOp::Create { path, .. }
                            | ensemble_proto::proto::MultiOp::Delete { path, .. }
                            | ensemble_proto::proto::MultiOp::SetData { path, .. }
                            | ensemble_proto::proto::MultiOp::Check { path, .. } => path,
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
                (done, Out::Known(denull(reply)))
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
                (t.max(o.invoked), Out::Known(denull(&reply)))
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
            if seg.is_empty() {
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
            if !segment_ok(seg, &init, stats) {
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
                    Claim::ClientLinearizableWgl,
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

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_proto::proto::Stat;

    fn set(t: u64, n: i32) -> WOp {
        WOp {
            inv: t,
            resp: t + 15,
            kind: Kind::Set(format!("v{n}").into_bytes(), -1),
            out: Out::Known(Ok(Response::Stat(Stat {
                version: n,
                ..Stat::default()
            }))),
            client: 0,
        }
    }

    fn read(t: u64, n: i32) -> WOp {
        WOp {
            inv: t,
            resp: t + 15,
            kind: Kind::Read,
            out: Out::Known(Ok(Response::GetData {
                data: format!("v{n}").into_bytes(),
                stat: Stat {
                    version: n,
                    ..Stat::default()
                },
            })),
            client: 1,
        }
    }

    /// One segment of `writes` setData, each overlapping the next (so no quiescent cut), with
    /// a read of the value current at each write; `stale` makes one read return a value
    /// overwritten long before it began.
    fn segment(writes: i32, stale: Option<i32>) -> Vec<WOp> {
        let mut v = Vec::new();
        for n in 1..=writes {
            let t = n as u64 * 10;
            v.push(set(t, n));
            let seen = match stale {
                Some(s) if s == n => n - 5,
                _ => n,
            };
            v.push(read(t + 12, seen));
        }
        v.sort_by_key(|o| (o.inv, o.resp));
        v
    }

    fn init() -> State {
        Some((b"v0".to_vec(), 0))
    }

    #[test]
    fn a_long_segment_is_searched_and_its_violation_found() {
        let good = segment(20, None);
        assert!(good.len() > MAX_OPS);
        let mut st = WglStats::default();
        assert!(segment_ok(&good, &init(), &mut st));
        assert_eq!((st.segments, st.long), (1, 1));
        let bad = segment(20, Some(12));
        let mut st = WglStats::default();
        assert!(
            !segment_ok(&bad, &init(), &mut st),
            "the stale read is found"
        );
        assert_eq!(st.long, 1);
    }

    #[test]
    fn a_segment_too_long_to_search_is_checked_read_by_read() {
        let good = segment(100, None);
        assert!(good.len() > MAX_WIDE);
        let mut st = WglStats::default();
        assert!(segment_ok(&good, &init(), &mut st));
        assert_eq!(st.by_reads, 1);
        let bad = segment(100, Some(77));
        let mut st = WglStats::default();
        assert!(
            !segment_ok(&bad, &init(), &mut st),
            "the stale read is found"
        );
        assert_eq!(st.by_reads, 1);
        // the read that nothing explains is the stale one
        let i = reads_explained(&bad, &init()).expect("found");
        assert!(
            matches!(&bad[i].out, Out::Known(Ok(Response::GetData { data, .. })) if data == b"v72")
        );
    }

    #[test]
    fn reads_explained_accepts_a_read_racing_its_write() {
        // the read overlaps the write: old or new value both fine
        let ops = vec![set(10, 1), read(12, 0)];
        assert_eq!(reads_explained(&ops, &init()), None);
        let ops = vec![set(10, 1), read(12, 1)];
        assert_eq!(reads_explained(&ops, &init()), None);
        // but after the write ended, the old value is stale
        let ops = vec![set(10, 1), read(40, 0)];
        assert_eq!(reads_explained(&ops, &init()), Some(1));
    }
}
