//! The foreign leader of `ensemble-sim foreign`: a stand-in for Apache ZooKeeper's leader. It
//! resolves each request (its own clients' and the ones the observing core forwards) the way
//! ZooKeeper's PrepRequestProcessor does — here by applying it to a reference `DataTree`, the
//! one that resolves Ensemble's own txns — and hands the observer the result as ZooKeeper
//! INFORMs it: a [`ResolvedTxn`] (sequential name, new version, parent cversion, error code,
//! decided). Every state the reference passes through is kept in a [`History`], against which
//! the claims judge what the observer's clients read and hear.

use ensemble_core::tree::{CONTAINER_EPHEMERAL_OWNER, DataTree, EphemeralType};
use ensemble_core::txn::{Origin, ResolvedTxn, Txn, TxnOp};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{
    Acl, CreateOp, MultiOp, OpResult, Reply, Request, Response, SessionId, Stat,
};
use std::collections::BTreeMap;

/// One znode as a client could read it at some zxid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    pub data: Vec<u8>,
    pub stat: Stat,
    pub acl: Vec<Acl>,
    pub children: Vec<String>,
    /// Its data is null (a null buffer written), which getData answers as null, not empty.
    pub null: bool,
}

/// Which watches a change fires: a data watch (getData, exists) or a child watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchClass {
    Data,
    Child,
}

/// Every state each znode went through, by zxid (a `None` while it does not exist).
#[derive(Default)]
pub struct History {
    by_path: BTreeMap<String, Vec<(Zxid, Option<NodeState>)>>,
}

impl History {
    /// The tree after the txn at `zxid`: each znode whose state moved gets an entry.
    pub fn record(&mut self, zxid: Zxid, tree: &DataTree) {
        let mut paths: Vec<String> = tree.paths().map(str::to_string).collect();
        paths.extend(self.by_path.keys().cloned());
        paths.sort();
        paths.dedup();
        for p in paths {
            let now = state_of(tree, &p);
            let entries = self.by_path.entry(p).or_default();
            if entries.last().map(|(_, s)| s) != Some(&now) {
                entries.push((zxid, now));
            }
        }
    }

    /// The state of `path` once everything through `zxid` was applied.
    pub fn at(&self, path: &str, zxid: Zxid) -> Option<&NodeState> {
        let entries = self.by_path.get(path)?;
        let i = entries.partition_point(|(z, _)| *z <= zxid);
        if i == 0 {
            return None;
        }
        entries[i - 1].1.as_ref()
    }

    /// The state just before the txn at `zxid`.
    pub fn before(&self, path: &str, zxid: Zxid) -> Option<&NodeState> {
        let entries = self.by_path.get(path)?;
        let i = entries.partition_point(|(z, _)| *z < zxid);
        if i == 0 {
            return None;
        }
        entries[i - 1].1.as_ref()
    }

    /// The first txn after `since` that fires a watch of `class` set on `path` at `since`.
    pub fn first_change_after(&self, path: &str, since: Zxid, class: WatchClass) -> Option<Zxid> {
        let entries = self.by_path.get(path)?;
        let mut prev = self.at(path, since);
        let start = entries.partition_point(|(z, _)| *z <= since);
        for (z, s) in &entries[start..] {
            let fired = match (prev, s.as_ref()) {
                (None, None) => false,
                (Some(_), None) | (None, Some(_)) => true,
                (Some(a), Some(b)) => match class {
                    WatchClass::Data => a.stat.mzxid != b.stat.mzxid,
                    WatchClass::Child => a.stat.pzxid != b.stat.pzxid,
                },
            };
            if fired {
                return Some(*z);
            }
            prev = s.as_ref();
        }
        None
    }
}

/// `path` as a client could read it from `tree` (the leader's, or the observer's to compare).
pub fn state_of(tree: &DataTree, path: &str) -> Option<NodeState> {
    let (data, stat) = tree.get_data(path)?;
    let mut children = tree.get_children(path).unwrap_or_default();
    children.sort();
    Some(NodeState {
        data: data.to_vec(),
        stat,
        acl: tree.get_acl(path).map(<[Acl]>::to_vec).unwrap_or_default(),
        children,
        null: tree.is_null_data(path),
    })
}

/// The leader: its tree, its zxids, its clock.
pub struct ForeignLeader {
    pub tree: DataTree,
    pub epoch: u32,
    counter: u32,
    pub time: i64,
    pub history: History,
    /// Txns resolved so far.
    pub txns: u64,
    /// What the reference tree answered the last write it resolved (the reply ZooKeeper's
    /// leader would give the client through its own server).
    pub last_reply: Option<Reply>,
}

impl ForeignLeader {
    pub fn new(tree: DataTree, epoch: u32) -> ForeignLeader {
        let mut history = History::default();
        history.record(tree.last_zxid(), &tree);
        ForeignLeader {
            tree,
            epoch,
            counter: 0,
            time: 1_700_000_000_000,
            history,
            txns: 0,
            last_reply: None,
        }
    }

    /// A new leader, a new epoch: zxids go on from its first counter.
    pub fn new_epoch(&mut self) {
        self.epoch += 1;
        self.counter = 0;
    }

    /// The zxid the next txn gets.
    pub fn next_zxid(&self) -> Zxid {
        Zxid::new(self.epoch, self.counter + 1)
    }

    pub fn last_zxid(&self) -> Zxid {
        self.tree.last_zxid()
    }

    /// Resolve one request of `session` (`cxid` as the client sent it) into the txn ZooKeeper
    /// would INFORM, applying it to the reference tree.
    pub fn resolve(&mut self, session: SessionId, cxid: i32, op: TxnOp) -> Txn {
        self.counter += 1;
        self.time += 7;
        let zxid = Zxid::new(self.epoch, self.counter);
        let mut ens = Txn {
            zxid,
            time: self.time,
            session,
            cxid,
            origin: Origin::NONE,
            op,
        };
        self.last_reply = None;
        let resolved = match &ens.op {
            TxnOp::CreateSession { timeout_ms } => {
                let timeout_ms = *timeout_ms;
                self.tree.apply(&ens);
                ResolvedTxn::CreateSession { timeout_ms }
            }
            TxnOp::CloseSession => {
                let paths = self.tree.session_ephemerals(session);
                self.tree.apply(&ens);
                ResolvedTxn::CloseSession { paths: Some(paths) }
            }
            TxnOp::Write { request, .. } | TxnOp::EnforcedWrite { request, .. } => {
                let request = request.clone();
                let cversions = self.parent_cversions();
                let before = matches!(request, Request::Multi(_)).then(|| self.tree.clone());
                let outcome = self.tree.apply(&ens);
                self.last_reply = Some(outcome.reply.clone());
                let mut r = self.resolved_write(&request, &outcome.reply, cversions.clone());
                if let (Some(before), ResolvedTxn::Multi(subs)) = (before, &mut r) {
                    self.failed_multi_records(before, &ens, subs, cversions);
                }
                r
            }
            // decided already (a reconfig's setData of /zookeeper/config)
            TxnOp::Resolved(r) => {
                let r = r.clone();
                self.tree.apply(&ens);
                r
            }
            other => panic!("the foreign leader resolves no {other:?}"),
        };
        ens.op = TxnOp::Resolved(resolved);
        self.txns += 1;
        self.history.record(zxid, &self.tree);
        ens
    }

    /// A failed multi as PrepRequestProcessor logs it: the subs before the failing one as
    /// the records they made (DataTree.processTxn turns them into ErrorTxn(0)), the failing
    /// one and the rest ErrorTxns. The records are the prefix's, resolved on the tree as it
    /// stood before the multi (`before`).
    fn failed_multi_records(
        &mut self,
        before: DataTree,
        ens: &Txn,
        subs: &mut [ResolvedTxn],
        mut cversions: BTreeMap<String, i32>,
    ) {
        let TxnOp::Write {
            request: Request::Multi(ops),
            auth,
        } = &ens.op
        else {
            return;
        };
        let inconsistent = ensemble_proto::proto::KeeperError::RuntimeInconsistency.code();
        let Some(failing) = subs.iter().position(
            |s| matches!(s, ResolvedTxn::Error { err } if *err != 0 && *err != inconsistent),
        ) else {
            return; // a multi that succeeded
        };
        if failing == 0 {
            return;
        }
        let mut prefix = ens.clone();
        prefix.op = TxnOp::Write {
            request: Request::Multi(ops[..failing].to_vec()),
            auth: auth.clone(),
        };
        let mut scratch = before;
        let outcome = scratch.apply(&prefix);
        let Ok(Response::Multi(results)) = &outcome.reply else {
            panic!(
                "the ops before a multi's failing one failed alone: {:?}",
                outcome.reply
            );
        };
        // resolved against the prefix's tree (the ACLs and owners it made)
        let tree = std::mem::replace(&mut self.tree, scratch);
        for (i, (op, result)) in ops.iter().zip(results).enumerate() {
            subs[i] = self.resolved_op(op, result, &mut cversions);
        }
        self.tree = tree;
    }

    /// Every node's persisted cversion before a txn (a multi's creates count on from them).
    fn parent_cversions(&self) -> BTreeMap<String, i32> {
        self.tree
            .paths()
            .filter_map(|p| {
                let s = self.tree.stat(p)?;
                Some((p.to_string(), persisted_cversion(&s)))
            })
            .collect()
    }

    fn resolved_write(
        &self,
        request: &Request,
        reply: &Reply,
        mut cversions: BTreeMap<String, i32>,
    ) -> ResolvedTxn {
        let response = match reply {
            Err(e) => return ResolvedTxn::Error { err: e.code() },
            Ok(r) => r,
        };
        match (request, response) {
            // ZooKeeper's txn carries the null buffer as null: the observer marks the node so
            (Request::NullData { request, ops }, _) => {
                match self.resolved_write(request, reply, cversions) {
                    ResolvedTxn::Create {
                        path,
                        acl,
                        ephemeral_owner,
                        parent_cversion,
                        with_stat,
                        ..
                    } if ops.contains(&0) => ResolvedTxn::Create {
                        path,
                        data: None,
                        acl,
                        ephemeral_owner,
                        parent_cversion,
                        with_stat,
                    },
                    ResolvedTxn::SetData { path, version, .. } if ops.contains(&0) => {
                        ResolvedTxn::SetData {
                            path,
                            data: None,
                            version,
                        }
                    }
                    other => other,
                }
            }
            (Request::Multi(ops), Response::Multi(results)) => {
                if results.iter().any(|r| matches!(r, OpResult::Error(_))) {
                    return ResolvedTxn::Multi(
                        results
                            .iter()
                            .map(|r| match r {
                                OpResult::Error(e) => ResolvedTxn::Error { err: *e },
                                _ => ResolvedTxn::Error { err: 0 },
                            })
                            .collect(),
                    );
                }
                let subs = ops
                    .iter()
                    .zip(results)
                    .map(|(op, result)| self.resolved_op(op, result, &mut cversions))
                    .collect();
                ResolvedTxn::Multi(subs)
            }
            (
                Request::Create {
                    op,
                    data,
                    acl,
                    mode,
                    ttl,
                    ..
                },
                Response::Create { path } | Response::Create2 { path, .. },
            ) => {
                let sub = MultiOp::Create {
                    op: *op,
                    path: path.clone(),
                    data: data.clone(),
                    acl: acl.clone(),
                    mode: *mode,
                    ttl: *ttl,
                };
                let result = OpResult::Create {
                    path: path.clone(),
                    stat: None,
                };
                self.resolved_op(&sub, &result, &mut cversions)
            }
            (Request::Delete { path, .. }, _) => ResolvedTxn::Delete { path: path.clone() },
            (Request::SetData { path, data, .. }, Response::Stat(stat)) => ResolvedTxn::SetData {
                path: path.clone(),
                data: Some(data.clone()),
                version: stat.version,
            },
            (Request::SetAcl { path, .. }, Response::Stat(stat)) => ResolvedTxn::SetAcl {
                path: path.clone(),
                acl: self
                    .tree
                    .get_acl(path)
                    .map(<[Acl]>::to_vec)
                    .unwrap_or_default(),
                version: stat.aversion,
            },
            (Request::Check { path, .. }, _) => ResolvedTxn::Check { path: path.clone() },
            (r, resp) => panic!("the foreign leader cannot resolve {r:?} answered {resp:?}"),
        }
    }

    /// One op of a successful write (a multi's, or a lone create's).
    fn resolved_op(
        &self,
        op: &MultiOp,
        result: &OpResult,
        cversions: &mut BTreeMap<String, i32>,
    ) -> ResolvedTxn {
        match (op, result) {
            (MultiOp::Create { op, data, acl, .. }, OpResult::Create { path, .. }) => {
                let parent = ensemble_core::path::parent(path).unwrap_or("/").to_string();
                let cv = cversions.entry(parent).or_insert(0);
                *cv += 1;
                // the ACL as stored (an `auth` id fixed up); a node deleted again in the same
                // multi keeps the one sent
                let acl = self
                    .tree
                    .get_acl(path)
                    .map(<[Acl]>::to_vec)
                    .unwrap_or_else(|| acl.clone());
                let owner = match self.tree.ephemeral_type_of(path) {
                    Some(EphemeralType::Normal(s)) => s,
                    Some(EphemeralType::Container) => CONTAINER_EPHEMERAL_OWNER,
                    Some(EphemeralType::Ttl(t)) => EphemeralType::ttl_owner(t),
                    Some(EphemeralType::Void) | None => 0,
                };
                ResolvedTxn::Create {
                    path: path.clone(),
                    data: Some(data.clone()),
                    acl,
                    ephemeral_owner: owner,
                    parent_cversion: *cv,
                    with_stat: *op != CreateOp::Create,
                }
            }
            (MultiOp::Delete { path, .. }, _) => ResolvedTxn::Delete { path: path.clone() },
            (MultiOp::SetData { path, data, .. }, OpResult::SetData(stat)) => {
                ResolvedTxn::SetData {
                    path: path.clone(),
                    data: Some(data.clone()),
                    version: stat.version,
                }
            }
            (MultiOp::Check { path, .. }, _) => ResolvedTxn::Check { path: path.clone() },
            (op, r) => panic!("the foreign leader cannot resolve {op:?} answered {r:?}"),
        }
    }
}

/// ZooKeeper's persisted cversion from a client's Stat (`2 * cversion - numChildren`).
fn persisted_cversion(s: &Stat) -> i32 {
    (s.cversion + s.num_children) / 2
}
