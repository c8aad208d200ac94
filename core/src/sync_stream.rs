//! A sync in bounded frames. The leader cuts its SNAP into `SnapPart`s of the one snapshot
//! buffer (ranges of it, not copies) with the SNAP itself carrying the last bytes, and groups a
//! long DIFF's txns into `SyncTxns` frames; the learner takes the SNAP strictly (one zxid,
//! parts in order from 0, the total checked), building the tree and writing the snapshot file
//! part by part, and installs nothing until it is whole.

use crate::peer::{PeerMsg, SnapBytes};
use crate::tree::{DataTree, SnapshotLoader, TreeOptions};
use crate::txn::Txn;
use crate::zxid::Zxid;
use std::sync::Arc;

/// Default bytes per sync frame: a few MiB, far below any peer frame limit, large enough
/// that a frame's overhead is nothing.
pub const SYNC_PART: usize = 4 << 20;

/// How a SNAP of `total` bytes is cut, in parts of about `part` bytes: the (clamped) part
/// size and the offset of the last bytes, which the SNAP message itself carries; the
/// `SnapPart`s are `[0, part)`, `[part, 2 part)`, ... up to that offset. The last part is never
/// empty (unless the snapshot is), so the SNAP always carries bytes. Every sender cuts this way:
/// the core from memory, a runtime from a snapshot file ([`crate::Action::SendSnapshot`]).
pub fn snap_layout(total: u64, part: usize) -> (u64, u64) {
    let part = part.max(1) as u64;
    let last = total.saturating_sub(1) / part * part;
    assert!(
        last.is_multiple_of(part),
        "the last part starts on a part boundary"
    );
    assert!(
        last < total || total == 0,
        "the last part holds at least one byte"
    );
    (part, last)
}

/// The messages of a SNAP of `snapshot` (taken at `zxid`): its `SnapPart`s, then the `Sync`
/// with its last bytes, `txns` and `committed`. For a runtime that holds the snapshot's data
/// (the simulator's disk) carrying out [`crate::Action::SendSnapshot`].
pub fn snap_messages(
    zxid: Zxid,
    snapshot: &Arc<Vec<u8>>,
    part: usize,
    txns: Vec<Arc<Txn>>,
    committed: Zxid,
) -> Vec<PeerMsg> {
    let (mut msgs, last) = snap_parts(zxid, snapshot, part);
    msgs.push(PeerMsg::Sync {
        mode: crate::peer::SyncMode::Snap {
            zxid,
            snapshot: last,
        },
        txns,
        committed,
    });
    msgs
}

/// The leader's SNAP of `snapshot` (taken at `zxid`) in parts of about `part` bytes: the
/// `SnapPart`s to send first, and the last bytes, for the SNAP message itself.
pub(crate) fn snap_parts(
    zxid: Zxid,
    snapshot: &Arc<Vec<u8>>,
    part: usize,
) -> (Vec<PeerMsg>, SnapBytes) {
    let total = snapshot.len();
    let (part, last_start) = snap_layout(total as u64, part);
    let (part, last_start) = (part as usize, last_start as usize);
    let parts: Vec<PeerMsg> = (0..last_start)
        .step_by(part)
        .map(|offset| PeerMsg::SnapPart {
            zxid,
            offset: offset as u64,
            total: total as u64,
            data: SnapBytes::slice(snapshot, offset..offset + part),
        })
        .collect();
    assert_eq!(
        parts.len(),
        last_start / part,
        "whole parts before the last"
    );
    (parts, SnapBytes::slice(snapshot, last_start..total))
}

/// About the bytes `t` takes in a frame.
fn encoded_len(t: &Txn) -> usize {
    bincode::serialized_size(t).map_or(usize::MAX, |n| n as usize)
}

/// `txns` in groups of about `part` bytes each (at least one txn a group; none when empty).
pub(crate) fn txn_groups(txns: Vec<Arc<Txn>>, part: usize) -> Vec<Vec<Arc<Txn>>> {
    let count = txns.len();
    let mut groups: Vec<Vec<Arc<Txn>>> = Vec::new();
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
    assert!(
        groups.iter().all(|g| !g.is_empty()),
        "an empty group of txns"
    );
    assert_eq!(
        groups.iter().map(Vec::len).sum::<usize>(),
        count,
        "grouping keeps every txn"
    );
    groups
}

/// Why a SNAP stream was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// A part of another snapshot, or at another offset than the next byte.
    OutOfOrder,
    /// The bytes do not add up to the total announced.
    Total,
    /// The bytes are not a snapshot (or not one of the zxid announced).
    Unreadable(String),
}

/// The learner's SNAP being received in parts: each part goes into the tree being built (a
/// [`SnapshotLoader`]) and to disk as it comes (a `SnapshotPart` the runtime writes to a
/// snapshot file of its own, made the snapshot only by the `Snapshot` that ends it), so the
/// learner never holds the serialized image. Nothing is installed until the SNAP's last bytes
/// complete it; dropped (a new leader, a cut stream, a crash) it leaves no state behind.
#[derive(Debug)]
pub(crate) struct SnapReceiver {
    pub zxid: Zxid,
    pub total: u64,
    /// The parts taken so far: `SnapshotPart`s 0..parts went to disk (or to `held`).
    pub parts: u32,
    loader: SnapshotLoader,
    /// Plant zk-3642 only: the parts kept in memory, to be written at NEWLEADER.
    pub held: Vec<Arc<Vec<u8>>>,
}

/// A SNAP received whole: the tree, and the `parts` parts already handed to disk before `last`.
pub(crate) struct SnapTaken {
    pub tree: DataTree,
    pub parts: u32,
    pub last: Arc<Vec<u8>>,
    pub held: Vec<Arc<Vec<u8>>>,
}

impl SnapReceiver {
    /// Take the part at `offset` of the `total`-byte snapshot at `zxid` (the first when
    /// `this` is `None`) into the tree being built. Returns the part's index for its
    /// `SnapshotPart`.
    pub(crate) fn part(
        this: &mut Option<SnapReceiver>,
        opts: TreeOptions,
        zxid: Zxid,
        offset: u64,
        total: u64,
        data: &[u8],
    ) -> Result<u32, StreamError> {
        let r = match this {
            None if offset == 0 => this.insert(SnapReceiver {
                zxid,
                total,
                parts: 0,
                loader: SnapshotLoader::new(opts, total),
                held: Vec::new(),
            }),
            Some(r) if r.zxid == zxid && r.total == total && r.loader.fed() == offset => r,
            _ => return Err(StreamError::OutOfOrder),
        };
        let end = offset.checked_add(data.len() as u64);
        // Parts never end the snapshot: the SNAP carries its last bytes.
        if data.is_empty() || end.is_none_or(|e| e >= total) {
            return Err(StreamError::Total);
        }
        r.loader
            .feed(data)
            .map_err(|e| StreamError::Unreadable(e.0))?;
        assert_eq!(
            r.loader.fed(),
            offset + data.len() as u64,
            "a part fed whole"
        );
        assert!(r.loader.fed() < r.total, "the last part is still to come");
        if r.loader.zxid().is_some_and(|z| z != zxid) {
            return Err(StreamError::Unreadable(format!(
                "a snapshot of another zxid than {zxid}"
            )));
        }
        r.parts += 1;
        Ok(r.parts - 1)
    }

    /// The whole snapshot at `zxid`, built: the parts so far (if any) and the SNAP's `last`
    /// bytes.
    pub(crate) fn finish(
        this: Option<SnapReceiver>,
        opts: TreeOptions,
        zxid: Zxid,
        last: SnapBytes,
    ) -> Result<SnapTaken, StreamError> {
        let mut r = match this {
            None => SnapReceiver {
                zxid,
                total: last.len() as u64,
                parts: 0,
                loader: SnapshotLoader::new(opts, last.len() as u64),
                held: Vec::new(),
            },
            Some(r) if r.zxid != zxid => return Err(StreamError::OutOfOrder),
            Some(r) => r,
        };
        if r.loader.fed() + last.len() as u64 != r.total {
            return Err(StreamError::Total);
        }
        r.loader
            .feed(last.as_slice())
            .map_err(|e| StreamError::Unreadable(e.0))?;
        assert_eq!(r.loader.fed(), r.total, "every byte of the snapshot fed");
        let tree = r
            .loader
            .finish()
            .map_err(|e| StreamError::Unreadable(e.0))?;
        if tree.last_zxid() != zxid {
            return Err(StreamError::Unreadable(format!(
                "a snapshot of {} for a SNAP of {zxid}",
                tree.last_zxid()
            )));
        }
        Ok(SnapTaken {
            tree,
            parts: r.parts,
            last: last.into_arc(),
            held: r.held,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with a few znodes (one with data longer than the smallest parts) at zxid 4.
    fn tree() -> DataTree {
        use crate::txn::{Origin, TxnOp};
        use ensemble_proto::proto::{Acl, CreateMode, CreateOp, Request};
        let mut t = DataTree::new(TreeOptions::default());
        for (i, (path, len)) in [("/a", 3usize), ("/a/b", 300), ("/c", 0)]
            .iter()
            .enumerate()
        {
            t.apply(&Txn {
                zxid: Zxid(i as u64 + 1),
                time: 1000,
                session: 0,
                cxid: 1,
                origin: Origin::NONE,
                op: TxnOp::Write {
                    request: Request::Create {
                        op: CreateOp::Create2,
                        path: (*path).into(),
                        data: vec![7; *len],
                        acl: Acl::open_unsafe(),
                        mode: CreateMode::Persistent,
                        ttl: -1,
                    },
                    auth: vec![],
                },
            });
        }
        t
    }

    fn receive(snapshot: &Arc<Vec<u8>>, zxid: Zxid, part: usize) -> Result<SnapTaken, StreamError> {
        let opts = TreeOptions::default();
        let (parts, last) = snap_parts(zxid, snapshot, part);
        let mut r = None;
        for (i, p) in parts.into_iter().enumerate() {
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
            let index = SnapReceiver::part(&mut r, opts, zxid, offset, total, data.as_slice())?;
            assert_eq!(index as usize, i, "parts numbered in order");
        }
        assert!(!last.is_empty() && last.len() <= part);
        SnapReceiver::finish(r, opts, zxid, last)
    }

    #[test]
    fn parts_build_the_tree_whatever_the_sizes() {
        let t = tree();
        let snap = Arc::new(t.to_snapshot());
        for part in [1usize, 3, 8, 64, 100, 1000, 1 << 20] {
            let taken = receive(&snap, t.last_zxid(), part).expect("whole");
            assert_eq!(taken.tree.to_snapshot(), *snap, "part {part}");
            assert_eq!(taken.tree.digest(), t.digest());
            assert_eq!(taken.parts as usize, (snap.len() - 1) / part, "part {part}");
            assert!(taken.last.len() <= part);
        }
    }

    #[test]
    fn a_snap_of_another_zxid_or_not_a_snapshot_is_refused() {
        let t = tree();
        let snap = Arc::new(t.to_snapshot());
        for part in [8usize, 1 << 20] {
            assert!(matches!(
                receive(&snap, Zxid(99), part),
                Err(StreamError::Unreadable(_))
            ));
            let mut bad = (*snap).clone();
            bad[0] ^= 0xff; // the magic
            assert!(matches!(
                receive(&Arc::new(bad), t.last_zxid(), part),
                Err(StreamError::Unreadable(_))
            ));
            let mut short = (*snap).clone();
            short.truncate(snap.len() - 5);
            assert!(receive(&Arc::new(short), t.last_zxid(), part).is_err());
        }
    }

    #[test]
    fn a_stream_with_a_gap_or_of_two_snapshots_is_refused() {
        let t = tree();
        let snap = t.to_snapshot();
        let (z, total) = (t.last_zxid(), snap.len() as u64);
        let opts = TreeOptions::default();
        let mut r = None;
        assert_eq!(
            SnapReceiver::part(&mut r, opts, z, 4, total, &snap[4..8]),
            Err(StreamError::OutOfOrder),
            "a stream starts at 0"
        );
        assert_eq!(
            SnapReceiver::part(&mut r, opts, z, 0, total, &snap[..4]),
            Ok(0)
        );
        assert_eq!(
            SnapReceiver::part(&mut r, opts, z, 8, total, &snap[8..12]),
            Err(StreamError::OutOfOrder),
            "a gap"
        );
        assert_eq!(
            SnapReceiver::part(&mut r, opts, Zxid(6), 4, total, &snap[4..8]),
            Err(StreamError::OutOfOrder),
            "another snapshot"
        );
        assert_eq!(
            SnapReceiver::part(&mut r, opts, z, 4, total, &snap[4..]),
            Err(StreamError::Total),
            "a part reaching the total"
        );
        let short = SnapBytes::from(Arc::new(snap[4..8].to_vec()));
        assert!(
            matches!(
                SnapReceiver::finish(r, opts, z, short),
                Err(StreamError::Total)
            ),
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
