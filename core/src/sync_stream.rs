//! A sync in bounded frames. The leader cuts its SNAP into `SnapPart`s of the one snapshot
//! buffer (ranges of it, not copies) with the SNAP itself carrying the last bytes, and groups a
//! long DIFF's txns into `SyncTxns` frames; the learner assembles the SNAP strictly (one zxid,
//! parts in order from 0, the total checked) and builds nothing from it until it is whole.

use crate::peer::{PeerMsg, SnapBytes};
use crate::txn::Txn;
use crate::zxid::Zxid;
use std::sync::Arc;

/// Default bytes per sync frame: a few MiB, far below any peer frame limit, large enough
/// that a frame's overhead is nothing.
pub const SYNC_PART: usize = 4 << 20;

/// The leader's SNAP of `snapshot` (taken at `zxid`) in parts of about `part` bytes: the
/// `SnapPart`s to send first, and the last bytes, for the SNAP message itself.
pub(crate) fn snap_parts(
    zxid: Zxid,
    snapshot: &Arc<Vec<u8>>,
    part: usize,
) -> (Vec<PeerMsg>, SnapBytes) {
    let part = part.max(1);
    let total = snapshot.len();
    // The last part is never empty (unless the snapshot is), so the SNAP always carries bytes.
    let last_start = total.saturating_sub(1) / part * part;
    let parts = (0..last_start)
        .step_by(part)
        .map(|offset| PeerMsg::SnapPart {
            zxid,
            offset: offset as u64,
            total: total as u64,
            data: SnapBytes::slice(snapshot, offset..offset + part),
        })
        .collect();
    (parts, SnapBytes::slice(snapshot, last_start..total))
}

/// About the bytes `t` takes in a frame.
fn encoded_len(t: &Txn) -> usize {
    bincode::serialized_size(t).map_or(usize::MAX, |n| n as usize)
}

/// `txns` in groups of about `part` bytes each (at least one txn a group; none when empty).
pub(crate) fn txn_groups(txns: Vec<Arc<Txn>>, part: usize) -> Vec<Vec<Arc<Txn>>> {
    let mut groups = Vec::new();
    let mut group = Vec::new();
    let mut bytes = 0usize;
    for t in txns {
        let n = encoded_len(&t);
        if !group.is_empty() && bytes.saturating_add(n) > part {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
        bytes = bytes.saturating_add(n);
        group.push(t);
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// Why a SNAP stream was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// A part of another snapshot, or at another offset than the next byte.
    OutOfOrder,
    /// The bytes do not add up to the total announced.
    Total,
}

/// The learner's SNAP being received: the parts so far, of one snapshot.
#[derive(Debug)]
pub(crate) struct SnapAssembly {
    pub zxid: Zxid,
    pub total: u64,
    pub bytes: Vec<u8>,
}

impl SnapAssembly {
    /// Take the part at `offset` of the `total`-byte snapshot at `zxid` (the first when
    /// `this` is `None`).
    pub(crate) fn part(
        this: &mut Option<SnapAssembly>,
        zxid: Zxid,
        offset: u64,
        total: u64,
        data: &[u8],
    ) -> Result<(), StreamError> {
        let a = match this {
            None if offset == 0 => this.insert(SnapAssembly {
                zxid,
                total,
                bytes: Vec::new(),
            }),
            Some(a) if a.zxid == zxid && a.total == total && a.bytes.len() as u64 == offset => a,
            _ => return Err(StreamError::OutOfOrder),
        };
        let end = offset.checked_add(data.len() as u64);
        // Parts never end the snapshot: the SNAP carries its last bytes.
        if data.is_empty() || end.is_none_or(|e| e >= total) {
            return Err(StreamError::Total);
        }
        a.bytes.extend_from_slice(data);
        Ok(())
    }

    /// The whole snapshot at `zxid`: the parts so far (if any) and the SNAP's `last` bytes.
    pub(crate) fn finish(
        this: Option<SnapAssembly>,
        zxid: Zxid,
        last: SnapBytes,
    ) -> Result<Arc<Vec<u8>>, StreamError> {
        let Some(mut a) = this else {
            return Ok(last.into_arc());
        };
        if a.zxid != zxid {
            return Err(StreamError::OutOfOrder);
        }
        if a.bytes.len() as u64 + last.len() as u64 != a.total {
            return Err(StreamError::Total);
        }
        a.bytes.extend_from_slice(last.as_slice());
        Ok(Arc::new(a.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reassemble(snapshot: &Arc<Vec<u8>>, part: usize) -> Arc<Vec<u8>> {
        let (parts, last) = snap_parts(Zxid(9), snapshot, part);
        let mut a = None;
        for p in parts {
            let PeerMsg::SnapPart {
                zxid,
                offset,
                total,
                data,
            } = p
            else {
                panic!("a SNAP part");
            };
            assert!(data.len() <= part);
            SnapAssembly::part(&mut a, zxid, offset, total, data.as_slice()).expect("in order");
        }
        assert!(!last.is_empty() && last.len() <= part);
        SnapAssembly::finish(a, Zxid(9), last).expect("whole")
    }

    #[test]
    fn parts_reassemble_whatever_the_sizes() {
        for len in [1usize, 2, 7, 8, 9, 64, 100] {
            let snap = Arc::new((0..len).map(|i| i as u8).collect::<Vec<u8>>());
            for part in [1usize, 3, 8, 64, 1000] {
                assert_eq!(reassemble(&snap, part), snap, "len {len} part {part}");
            }
        }
    }

    #[test]
    fn a_stream_with_a_gap_or_of_two_snapshots_is_refused() {
        let z = Zxid(5);
        let mut a = None;
        assert_eq!(
            SnapAssembly::part(&mut a, z, 4, 10, b"abcd"),
            Err(StreamError::OutOfOrder),
            "a stream starts at 0"
        );
        SnapAssembly::part(&mut a, z, 0, 10, b"abcd").expect("first");
        assert_eq!(
            SnapAssembly::part(&mut a, z, 8, 10, b"ab"),
            Err(StreamError::OutOfOrder),
            "a gap"
        );
        assert_eq!(
            SnapAssembly::part(&mut a, Zxid(6), 4, 10, b"ab"),
            Err(StreamError::OutOfOrder),
            "another snapshot"
        );
        assert_eq!(
            SnapAssembly::part(&mut a, z, 4, 10, b"abcdef"),
            Err(StreamError::Total),
            "a part reaching the total"
        );
        let short = SnapBytes::from(Arc::new(b"ab".to_vec()));
        assert_eq!(
            SnapAssembly::finish(a, z, short),
            Err(StreamError::Total),
            "bytes short of the total"
        );
    }

    #[test]
    fn txns_group_by_size_in_order() {
        use crate::txn::{Origin, TxnOp};
        let txns: Vec<Arc<Txn>> = (1..=50)
            .map(|i| {
                Arc::new(Txn {
                    zxid: Zxid(i),
                    time: 0,
                    session: 1,
                    cxid: 0,
                    origin: Origin::NONE,
                    op: TxnOp::DeleteContainer {
                        path: "/x".repeat(i as usize),
                    },
                })
            })
            .collect();
        let groups = txn_groups(txns.clone(), 200);
        assert!(groups.len() > 1);
        for g in &groups {
            let bytes: usize = g.iter().map(|t| encoded_len(t)).sum();
            assert!(g.len() == 1 || bytes <= 200, "{bytes}");
        }
        assert_eq!(groups.concat(), txns);
        assert!(txn_groups(Vec::new(), 200).is_empty());
    }
}
