//! ZooKeeper's data tree as its files rebuild it: a snapshot loaded, then logged txns applied
//! the way `DataTree.processTxn` and `FileTxnSnapLog.processTransaction` apply them — txns
//! are already resolved, and a fuzzy snapshot may hold some of their effects already, so a
//! create of an existing node or a delete of a missing one is skipped, and a parent's
//! cversion/pzxid only move forward. The digest is kept as `DigestCalculator` and the
//! `AdHash` of ZooKeeper's node map keep it, so it can be checked against the files'.

use super::records::{StatPersisted, TxnHeader};
use super::snapshot::{OPEN_ACL_INDEX, ZkNode, ZkSnapshot, ZxidDigest};
use ensemble_core::ResolvedTxn;
use ensemble_core::tree::EphemeralType;
use ensemble_proto::proto::Acl;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `DigestCalculator.DIGEST_VERSION`.
pub const DIGEST_VERSION: i32 = 2;
/// `ZooDefs.ZOOKEEPER_NODE_SUBTREE`: nodes under it are left out of the digest.
const ZOOKEEPER_SUBTREE: &str = "/zookeeper/";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZNode {
    pub data: Option<Vec<u8>>,
    pub acl: Arc<[Acl]>,
    pub stat: StatPersisted,
    pub children: u32,
}

/// `DigestCalculator.calculateDigest`: CRC32 of the path ("" for the root), the data and
/// the stat fields, as an unsigned 32-bit value in a long.
pub fn node_digest(path: &str, data: Option<&[u8]>, s: &StatPersisted) -> i64 {
    if path.starts_with(ZOOKEEPER_SUBTREE) {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let mut b = Vec::with_capacity(60);
    for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    for v in [s.version, s.cversion, s.aversion] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&s.ephemeral_owner.to_be_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(path.as_bytes());
    if let Some(d) = data {
        h.update(d);
    }
    h.update(&b);
    i64::from(h.finalize())
}

fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 { "/" } else { &path[..i] })
}

#[derive(Clone, Debug, Default)]
pub struct ZkTree {
    pub nodes: BTreeMap<String, ZNode>,
    /// Session id → timeout (ms).
    pub sessions: BTreeMap<i64, i32>,
    /// The last zxid applied (the snapshot's name until a txn is).
    pub last_zxid: i64,
    /// Σ node digests, wrapping (`AdHash`).
    digest: i64,
}

impl ZkTree {
    /// The tree of a decoded snapshot named for `zxid`.
    pub fn from_snapshot(snap: &ZkSnapshot, zxid: i64) -> Result<ZkTree, String> {
        let mut t = ZkTree {
            last_zxid: zxid,
            sessions: snap.sessions.iter().copied().collect(),
            ..ZkTree::default()
        };
        let mut acls: BTreeMap<i64, Arc<[Acl]>> = BTreeMap::new();
        for n in &snap.nodes {
            let acl = match acls.get(&n.acl) {
                Some(a) => Arc::clone(a),
                None => {
                    let a: Arc<[Acl]> = snap
                        .acl(n.acl)
                        .ok_or_else(|| format!("{}: ACL index {} unknown", n.path, n.acl))?
                        .into();
                    acls.insert(n.acl, Arc::clone(&a));
                    a
                }
            };
            if let Some(p) = parent_of(&n.path) {
                t.nodes
                    .get_mut(p)
                    .ok_or_else(|| format!("{}: its parent {p} is not before it", n.path))?
                    .children += 1;
            } else if !t.nodes.is_empty() {
                return Err("a second root".into());
            }
            let node = ZNode {
                data: n.data.clone(),
                acl,
                stat: n.stat,
                children: 0,
            };
            t.digest = t
                .digest
                .wrapping_add(node_digest(&n.path, node.data.as_deref(), &n.stat));
            if t.nodes.insert(n.path.clone(), node).is_some() {
                return Err(format!("{} twice", n.path));
            }
        }
        Ok(t)
    }

    /// A tree without nodes, to [`ZkTree::insert`] into.
    pub fn empty(last_zxid: i64, sessions: BTreeMap<i64, i32>) -> ZkTree {
        ZkTree {
            last_zxid,
            sessions,
            ..ZkTree::default()
        }
    }

    /// Add a node whose parent is in (a tree built node by node, parents first).
    pub fn insert(&mut self, path: String, node: ZNode) {
        if let Some(p) = parent_of(&path) {
            assert!(self.nodes.contains_key(p), "{path} before its parent");
            self.change(p, |p| p.children += 1);
        }
        self.nodes.insert(path.clone(), node);
        self.rehash(&path);
    }

    /// The tree digest (`DataTree.getTreeDigest`).
    pub fn digest(&self) -> i64 {
        self.digest
    }

    fn unhash(&mut self, path: &str) {
        if let Some(n) = self.nodes.get(path) {
            self.digest = self
                .digest
                .wrapping_sub(node_digest(path, n.data.as_deref(), &n.stat));
        }
    }

    fn rehash(&mut self, path: &str) {
        if let Some(n) = self.nodes.get(path) {
            self.digest = self
                .digest
                .wrapping_add(node_digest(path, n.data.as_deref(), &n.stat));
        }
    }

    /// Change `path`'s node, keeping the digest.
    fn change(&mut self, path: &str, f: impl FnOnce(&mut ZNode)) -> bool {
        if !self.nodes.contains_key(path) {
            return false;
        }
        self.unhash(path);
        if let Some(n) = self.nodes.get_mut(path) {
            f(n);
        }
        self.rehash(path);
        true
    }

    /// `FileTxnSnapLog.processTransaction`: the session table, then the tree. Errors a fuzzy
    /// snapshot causes (NoNode, NodeExists) are skipped, as ZooKeeper skips them.
    pub fn process(&mut self, hdr: &TxnHeader, txn: &ResolvedTxn) {
        match txn {
            ResolvedTxn::CreateSession { timeout_ms } => {
                self.sessions.insert(hdr.client_id, *timeout_ms);
            }
            ResolvedTxn::CloseSession { .. } => {
                self.sessions.remove(&hdr.client_id);
            }
            _ => {}
        }
        self.apply(hdr, txn);
        self.last_zxid = self.last_zxid.max(hdr.zxid);
    }

    /// `DataTree.processTxn`. The record's own decisions (the owner, the parent's cversion,
    /// the versions) are taken as they are.
    fn apply(&mut self, hdr: &TxnHeader, txn: &ResolvedTxn) {
        match txn {
            ResolvedTxn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
                with_stat: _,
            } => {
                self.create(
                    path,
                    data.clone(),
                    acl,
                    *ephemeral_owner,
                    *parent_cversion,
                    hdr,
                );
            }
            ResolvedTxn::Delete { path } => self.delete(path, hdr.zxid),
            ResolvedTxn::SetData {
                path,
                data,
                version,
            } => {
                self.change(path, |n| {
                    n.data = data.clone();
                    n.stat.version = *version;
                    n.stat.mtime = hdr.time;
                    n.stat.mzxid = hdr.zxid;
                });
            }
            ResolvedTxn::SetAcl { path, acl, version } => {
                self.change(path, |n| {
                    n.acl = acl.clone().into();
                    n.stat.aversion = *version;
                });
            }
            ResolvedTxn::CloseSession { paths } => {
                let mut doomed: Vec<String> = paths.clone().unwrap_or_default();
                doomed.extend(
                    self.nodes
                        .iter()
                        .filter(|(_, n)| n.stat.ephemeral_owner == hdr.client_id)
                        .filter(|(_, n)| {
                            matches!(
                                EphemeralType::of(n.stat.ephemeral_owner, true),
                                EphemeralType::Normal(_)
                            )
                        })
                        .map(|(p, _)| p.clone()),
                );
                for p in doomed {
                    self.delete(&p, hdr.zxid);
                }
            }
            ResolvedTxn::Multi(subs) => {
                // One error sub-txn means the multi failed: nothing of it applies.
                if subs.iter().any(|s| matches!(s, ResolvedTxn::Error { .. })) {
                    return;
                }
                for sub in subs {
                    self.apply(hdr, sub);
                }
            }
            ResolvedTxn::CreateSession { .. }
            | ResolvedTxn::Check { .. }
            | ResolvedTxn::Error { .. } => {}
        }
    }

    fn create(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        hdr: &TxnHeader,
    ) {
        let Some(parent) = parent_of(path) else {
            return;
        };
        if self.nodes.contains_key(path) || !self.nodes.contains_key(parent) {
            return;
        }
        let zxid = hdr.zxid;
        self.change(parent, |p| {
            let cv = if parent_cversion == -1 {
                p.stat.cversion + 1
            } else {
                parent_cversion
            };
            // A create replayed over a fuzzy snapshot whose node was deleted since must not
            // take the parent's counters back.
            if cv > p.stat.cversion {
                p.stat.cversion = cv;
                p.stat.pzxid = zxid;
            }
            p.children += 1;
        });
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: hdr.time,
            mtime: hdr.time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
        };
        self.nodes.insert(
            path.to_string(),
            ZNode {
                data,
                acl: acl.to_vec().into(),
                stat,
                children: 0,
            },
        );
        self.rehash(path);
    }

    fn delete(&mut self, path: &str, zxid: i64) {
        let Some(parent) = parent_of(path) else {
            return;
        };
        if !self.nodes.contains_key(path) {
            return;
        }
        self.unhash(path);
        self.nodes.remove(path);
        self.change(parent, |p| {
            p.children = p.children.saturating_sub(1);
            if zxid > p.stat.pzxid {
                p.stat.pzxid = zxid;
            }
        });
    }

    /// The tree as a snapshot (nodes in path order, which puts parents first; the ACL cache
    /// numbered from 1 in order of first use, the open ACL as -1), with its digest.
    pub fn to_snapshot(&self, dbid: i64) -> ZkSnapshot {
        let mut snap = ZkSnapshot {
            dbid,
            sessions: self.sessions.iter().map(|(s, t)| (*s, *t)).collect(),
            ..ZkSnapshot::default()
        };
        let open = Acl::open_unsafe();
        let mut index: BTreeMap<&[Acl], i64> = BTreeMap::new();
        for (path, n) in &self.nodes {
            let acl = if *n.acl == open[..] {
                OPEN_ACL_INDEX
            } else {
                let next = index.len() as i64 + 1;
                let i = *index.entry(&n.acl).or_insert(next);
                snap.acls.entry(i).or_insert_with(|| n.acl.to_vec());
                i
            };
            snap.nodes.push(ZkNode {
                path: path.clone(),
                data: n.data.clone(),
                acl,
                stat: n.stat,
            });
        }
        snap.digest = Some(ZxidDigest {
            zxid: self.last_zxid,
            version: DIGEST_VERSION,
            digest: self.digest,
        });
        snap
    }
}
