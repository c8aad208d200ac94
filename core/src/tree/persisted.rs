//! The tree node by node with everything a snapshot keeps — ZooKeeper's `StatPersisted`,
//! data (null or not) and ACL — for other serialisations of the same state: ZooKeeper's own
//! snapshot files (`ensemble import` builds a tree from them, `ensemble export` writes one).

use super::{DataTree, Meta, Node, SnapshotError, TreeOptions};
use crate::plant::Plant;
use crate::zxid::Zxid;
use ensemble_proto::proto::{Acl, SessionId};
use std::collections::BTreeMap;

/// One znode as persisted. `cversion` is the persisted count of child creations (clients
/// see `2 * cversion - numChildren`); the child count itself is derived, never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistedNode {
    pub path: String,
    /// `None`: null data (ZooKeeper's getData answers null).
    pub data: Option<Vec<u8>>,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub ephemeral_owner: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub acl: Vec<Acl>,
}

impl DataTree {
    /// Every znode in path order (parents first).
    pub fn persisted_nodes(&self) -> impl Iterator<Item = PersistedNode> + '_ {
        self.nodes.iter().map(|(path, n)| {
            let m = &n.meta;
            PersistedNode {
                path: path.to_string(),
                data: if self.null_data.contains(path) {
                    None
                } else {
                    Some(n.data.to_vec())
                },
                czxid: m.czxid,
                mzxid: m.mzxid,
                pzxid: m.pzxid,
                ctime: m.ctime,
                mtime: m.mtime,
                ephemeral_owner: m.ephemeral_owner,
                version: m.version,
                cversion: m.cversion,
                aversion: m.aversion,
                acl: self.acls.get(m.acl).to_vec(),
            }
        })
    }

    /// The tree at `last_zxid` holding exactly `nodes` (any order) and `sessions`, checked as
    /// a snapshot is: valid paths, every parent present, no zxid beyond `last_zxid`, the
    /// special nodes (`/zookeeper`, its quota and config nodes) there.
    pub fn from_persisted(
        last_zxid: Zxid,
        sessions: &BTreeMap<SessionId, i32>,
        nodes: &[PersistedNode],
        opts: TreeOptions,
    ) -> Result<DataTree, SnapshotError> {
        let bytes = DataTree::persisted_snapshot(last_zxid, sessions, nodes, opts)?;
        DataTree::from_snapshot(&bytes, opts)
    }

    /// The snapshot bytes [`DataTree::from_persisted`] loads its tree from, not yet checked
    /// (paths, parents, zxids: [`DataTree::from_snapshot`] checks them). Equal to a snapshot
    /// already loaded, they are known to load into the same tree without decoding them again.
    pub fn persisted_snapshot(
        last_zxid: Zxid,
        sessions: &BTreeMap<SessionId, i32>,
        nodes: &[PersistedNode],
        opts: TreeOptions,
    ) -> Result<Vec<u8>, SnapshotError> {
        let mut table: BTreeMap<&[Acl], u32> = nodes.iter().map(|n| (&n.acl[..], 0)).collect();
        for (i, slot) in table.values_mut().enumerate() {
            *slot = u32::try_from(i).map_err(|_| SnapshotError("too many ACL lists".into()))?;
        }
        assert!(table.len() <= nodes.len(), "an ACL list no node uses");
        let mut sorted: Vec<&PersistedNode> = nodes.iter().collect();
        sorted.sort_by(|a, b| a.path.cmp(&b.path));
        if sorted.windows(2).any(|w| w[0].path == w[1].path) {
            return Err(SnapshotError("a path twice".into()));
        }
        let loses_cversion = crate::plant::active(opts.plant, Plant::PersistedLosesCversion);
        let nulls: Vec<&str> = sorted
            .iter()
            .filter(|n| n.data.is_none())
            .map(|n| n.path.as_str())
            .collect();
        assert!(
            nulls.windows(2).all(|w| w[0] < w[1]),
            "null-data paths in order"
        );
        let with_nodes = sorted.iter().map(|n| {
            let meta = Meta {
                czxid: n.czxid,
                mzxid: n.mzxid,
                pzxid: n.pzxid,
                ctime: n.ctime,
                mtime: n.mtime,
                ephemeral_owner: n.ephemeral_owner,
                version: n.version,
                cversion: if loses_cversion { 0 } else { n.cversion },
                aversion: n.aversion,
                acl: table[&n.acl[..]],
                num_children: 0,
            };
            let data = n.data.clone().unwrap_or_default().into_boxed_slice();
            (n.path.as_str(), Node { data, meta })
        });
        let acls: Vec<Vec<Acl>> = table.keys().map(|a| a.to_vec()).collect();
        Ok(DataTree::snapshot_from_parts(
            last_zxid,
            sessions.iter().map(|(s, t)| (*s, *t)).collect(),
            acls,
            with_nodes,
            &nulls,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Origin, Txn, TxnOp};
    use ensemble_proto::proto::{CreateMode, CreateOp, Id, Request, perms};

    #[test]
    fn a_tree_comes_back_from_its_persisted_nodes() {
        let mut t = DataTree::new(TreeOptions::default());
        let session = 0x77;
        let mut zxid = Zxid(0);
        let mut apply = |t: &mut DataTree, op: TxnOp| {
            zxid = zxid.next();
            t.apply(&Txn {
                zxid,
                time: 1000 + zxid.0 as i64,
                session,
                cxid: 1,
                origin: Origin::NONE,
                op,
            });
        };
        apply(&mut t, TxnOp::CreateSession { timeout_ms: 5000 });
        let read_only = vec![Acl {
            perms: perms::READ,
            id: Id::anyone(),
        }];
        for (path, mode, acl) in [
            ("/a", CreateMode::Persistent, Acl::open_unsafe()),
            ("/a/s", CreateMode::PersistentSequential, read_only),
            ("/e", CreateMode::Ephemeral, Acl::open_unsafe()),
        ] {
            let request = Request::Create {
                op: CreateOp::Create2,
                path: path.into(),
                data: path.as_bytes().to_vec(),
                acl,
                mode,
                ttl: -1,
            };
            apply(
                &mut t,
                TxnOp::Write {
                    request,
                    auth: vec![],
                },
            );
        }
        let nodes: Vec<PersistedNode> = t.persisted_nodes().collect();
        assert!(
            nodes
                .iter()
                .any(|n| n.path == "/a/s0000000000" && n.acl.len() == 1)
        );
        assert!(
            nodes
                .iter()
                .any(|n| n.path == "/e" && n.ephemeral_owner == session)
        );
        let mut shuffled = nodes.clone();
        shuffled.reverse();
        let back = DataTree::from_persisted(t.last_zxid(), t.sessions(), &shuffled, t.options())
            .expect("valid");
        assert_eq!(back.to_snapshot(), t.to_snapshot());
        assert_eq!(back.digest(), t.digest());
        // A missing parent is refused, as in any snapshot.
        let orphan: Vec<PersistedNode> = nodes.into_iter().filter(|n| n.path != "/a").collect();
        assert!(
            DataTree::from_persisted(t.last_zxid(), t.sessions(), &orphan, t.options()).is_err()
        );
    }
}
