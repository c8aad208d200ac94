//! What an observer of a ZooKeeper ensemble hands the core's foreign-leader role
//! (`ensemble_core::foreign`, `Config::foreign_leader`): the tree a sync brought, as an
//! Ensemble snapshot ([`synced`]), then each txn ZooKeeper's leader resolved ([`txn`]), its
//! header made the core's `Txn` and its record, decoded as the core's `ResolvedTxn`, applied
//! as it is. `zk-observe`'s runtime does not feed the core yet (it serves from
//! [`super::serve`]); this is the translation it will use, checked against real ZooKeeper
//! traffic in the tests.

use super::records::TxnHeader;
use super::tree::ZkTree;
use ensemble_core::foreign::Foreign;
use ensemble_core::tree::TreeOptions;
use ensemble_core::txn::{Origin, Txn, TxnOp};
use ensemble_core::{ResolvedTxn, Zxid};
use std::sync::Arc;

/// The sync with `leader` in `epoch` (its LEADERINFO's) that brought `tree`. Its
/// /zookeeper/config is left empty, as the import leaves it (`migrate::to_ensemble`): serving
/// ZooKeeper's configuration there is part of the wiring still to do.
pub fn synced(
    tree: &ZkTree,
    leader: i64,
    epoch: i64,
    opts: TreeOptions,
) -> anyhow::Result<Foreign> {
    let leader = u64::try_from(leader)
        .map_err(|_| anyhow::anyhow!("leader sid {leader} is not a server id"))?;
    let epoch =
        u32::try_from(epoch).map_err(|_| anyhow::anyhow!("epoch {epoch} is out of range"))?;
    let core = super::migrate::to_ensemble(tree, opts)?;
    // the core serves from the zxid the replica holds
    assert_eq!(core.last_zxid().as_i64(), tree.last_zxid);
    Ok(Foreign::Synced {
        leader,
        epoch,
        snapshot: Arc::new(core.to_snapshot()),
    })
}

/// One resolved txn (an INFORM's, a committed PROPOSAL of the sync), as the core applies it.
/// The origin is the core's to set: it matches a forwarded write by session and cxid.
pub fn txn(hdr: &TxnHeader, txn: ResolvedTxn) -> Foreign {
    Foreign::Txn(Txn {
        zxid: Zxid(hdr.zxid as u64),
        time: hdr.time,
        session: hdr.client_id,
        cxid: hdr.cxid,
        origin: Origin::NONE,
        op: TxnOp::Resolved(txn),
    })
}
