//! What an observer of a ZooKeeper ensemble hands the core's foreign-leader role
//! (`ensemble_core::foreign`, `Config::foreign_leader`): the tree a sync brought, as an
//! Ensemble snapshot ([`synced`]), then each txn ZooKeeper's leader resolved ([`txn`]), its
//! header made the core's `Txn` and its record, decoded as the core's `ResolvedTxn`, applied
//! as it is. `zk-observe` feeds the node's core loop with it ([`CoreFeed`]): the one way
//! its clients are served. The translation is checked against real ZooKeeper traffic in the
//! tests.

use super::records::TxnHeader;
use super::tree::ZkTree;
use ensemble_core::foreign::Foreign;
use ensemble_core::tree::TreeOptions;
use ensemble_core::txn::{Origin, Txn, TxnOp};
use ensemble_core::{ResolvedTxn, Zxid};
use std::sync::Arc;

/// The sync with `leader` in `epoch` (its LEADERINFO's) that brought `tree`, its
/// /zookeeper/config ZooKeeper's (`migrate::to_ensemble_with`): clients read the ZooKeeper
/// ensemble's configuration there, as from ZooKeeper's own observers.
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
    let core = super::migrate::to_ensemble_with(tree, opts, true)?;
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

/// The observer's [`Serving`](super::observer::Serving) when the core serves the clients
/// (`zk-observe`): every sync and checked txn goes to the core loop as an
/// `Event::Foreign`, in order, through the runtime's input channel; the core's messages to
/// its leader leave through `link` ([`super::leader_link`]).
pub struct CoreFeed {
    pub input: tokio::sync::mpsc::Sender<crate::runtime::Input>,
    pub link: Arc<super::leader_link::ForeignLeaderLink>,
    pub opts: TreeOptions,
    /// Whether the core was handed a sync it serves from (it answers PINGs then).
    synced: bool,
}

impl CoreFeed {
    pub fn new(
        input: tokio::sync::mpsc::Sender<crate::runtime::Input>,
        link: Arc<super::leader_link::ForeignLeaderLink>,
        opts: TreeOptions,
    ) -> CoreFeed {
        CoreFeed {
            input,
            link,
            opts,
            synced: false,
        }
    }

    fn tell(&mut self, f: Foreign) {
        // blocking: the core loop's channel is bounded, and a txn is never dropped; a closed
        // channel is the node shutting down
        if self
            .input
            .blocking_send(crate::runtime::Input::Foreign(f))
            .is_err()
        {
            self.synced = false;
        }
    }
}

impl super::observer::Serving for CoreFeed {
    fn synced(
        &mut self,
        tree: &ZkTree,
        leader: i64,
        epoch: i64,
        stream: super::leader_link::LeaderStream,
    ) {
        match synced(tree, leader, epoch, self.opts) {
            Ok(f) => {
                self.link.set(stream);
                self.synced = true;
                self.tell(f);
            }
            Err(e) => {
                // never served: the core stays as it was (not serving until a sync)
                tracing::error!("the synced replica cannot be handed to the core: {e:#}");
                self.link.clear();
                self.synced = false;
                self.tell(Foreign::Lost {
                    why: format!("the synced replica is unusable: {e:#}"),
                });
            }
        }
    }

    fn applied(&mut self, hdr: &TxnHeader, t: &ResolvedTxn) {
        if self.synced {
            self.tell(txn(hdr, t.clone()));
        }
    }

    fn revalidated(&mut self, session: i64, valid: bool) {
        self.tell(Foreign::Revalidated { session, valid });
    }

    fn sync_done(&mut self) {
        self.tell(Foreign::SyncDone);
    }

    fn ping(&mut self, zxid: i64) -> Option<Vec<u8>> {
        if !self.synced {
            // during a sync the observer answers with no sessions, as the core serves none yet
            return Some(Vec::new());
        }
        self.link.pinged(zxid);
        self.tell(Foreign::Ping);
        None
    }

    fn lost(&mut self, why: &str) {
        self.link.clear();
        self.synced = false;
        self.tell(Foreign::Lost {
            why: why.to_string(),
        });
    }
}
