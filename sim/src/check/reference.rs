//! The committed history as the simulator knows it.
//!
//! The [`Reference`] replays, with a fresh `DataTree`, every txn that any server applies, in
//! zxid order: it is "the" committed history. Every server's applied state must match it at the
//! same zxid (agreement, total order, a tree equal to the replay of its log); every client reply
//! must match it (writes: the result of that txn; reads: the state at the reply's zxid); every
//! watch must fire before its client sees a zxid past the change that fired it.

use super::{Claim, Violation, violation};
use ensemble_core::plant::Plant;
use ensemble_core::tree::{DataTree, TreeOptions};
use ensemble_core::txn::{Txn, TxnOp};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{
    Acl, EventType, KeeperError, Reply, Request, Response, SessionId, Stat, perms,
};
use std::collections::BTreeMap;
use std::rc::Rc;

/// A znode as it stood after some zxid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSnap {
    pub data: Vec<u8>,
    pub stat: Stat,
    /// Its ACL; empty for `world:anyone` with every permission (the common case, kept
    /// without an allocation; an empty ACL grants everything, as in ZooKeeper).
    pub acl: Vec<Acl>,
    /// Its data is null, not empty (getData answers a null buffer).
    pub null: bool,
}

/// A path's states, oldest first, each from the zxid that made it (`None` = absent).
type PathHistory = Vec<(Zxid, Option<Rc<NodeSnap>>)>;

/// What the history knows of one committed txn.
#[derive(Clone, Debug)]
pub struct TxnInfo {
    pub session: SessionId,
    pub cxid: i32,
    pub client_write: bool,
    pub reply: Option<Reply>,
}

pub struct Reference {
    tree: DataTree,
    opts: TreeOptions,
    pub last: Zxid,
    /// The tree's digest after each committed zxid.
    digests: BTreeMap<Zxid, u64>,
    pub txns: BTreeMap<Zxid, TxnInfo>,
    /// Each path's states, oldest first; `None` = absent.
    paths: BTreeMap<String, PathHistory>,
    /// Children created (true) and deleted (false) under each parent, in commit order.
    child_events: BTreeMap<String, Vec<(Zxid, String, bool)>>,
    /// Each path's watch triggers in commit order.
    triggers: BTreeMap<String, Vec<(Zxid, EventType)>>,
    /// (session, cxid) of every committed client write, to catch a request committed twice.
    pub requests: BTreeMap<(SessionId, i32), Zxid>,
    /// When each zxid was first committed (simulated ms), in commit order.
    pub commit_times: Vec<(u64, Zxid)>,
    pub sessions_closed: BTreeMap<SessionId, Zxid>,
    pub sessions_created: BTreeMap<SessionId, Zxid>,
    /// History at or below this zxid came in a snapshot, not txn by txn.
    pub opaque_through: Zxid,
    /// The independent model of the tree (`tree.model`).
    model: crate::check::model::TreeModel,
    /// Each committed closeSession's ephemerals in the model just before it, in path order
    /// (`session.ephemerals-reported`).
    pub closed_ephemerals: BTreeMap<Zxid, Vec<String>>,
    /// The configuration in force after `last` (the run's initial one until a reconfig
    /// commits), and every configuration committed so far by version.
    pub membership: ensemble_core::membership::Membership,
    pub configs: BTreeMap<u64, ensemble_core::membership::Membership>,
    /// The tree's quotas as the last txn's check read them after it (the next txn's
    /// "before", not read twice); `None`: read them again.
    quotas: Option<super::quota::QuotaState>,
    /// Every path each session ever owned as an ephemeral (getEphemerals' answers).
    ephemeral_paths: BTreeMap<SessionId, std::collections::BTreeSet<String>>,
}

impl Reference {
    pub fn new(plant: Option<Plant>) -> Reference {
        let opts = TreeOptions {
            extended_types: true,
            auth_providers: crate::client::PROVIDERS,
            plant,
        };
        let tree = DataTree::new(opts);
        let mut r = Reference {
            digests: BTreeMap::new(),
            last: tree.last_zxid(),
            tree,
            opts,
            txns: BTreeMap::new(),
            paths: BTreeMap::new(),
            child_events: BTreeMap::new(),
            triggers: BTreeMap::new(),
            requests: BTreeMap::new(),
            commit_times: Vec::new(),
            sessions_closed: BTreeMap::new(),
            sessions_created: BTreeMap::new(),
            opaque_through: Zxid::ZERO,
            model: crate::check::model::TreeModel::default(),
            closed_ephemerals: BTreeMap::new(),
            membership: Default::default(),
            configs: BTreeMap::new(),
            quotas: None,
            ephemeral_paths: BTreeMap::new(),
        };
        r.model = crate::check::model::TreeModel::from_tree(&r.tree);
        r.digests.insert(r.last, r.tree.digest());
        for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            for c in r.tree_children(p) {
                r.child_events
                    .entry(p.to_string())
                    .or_default()
                    .push((Zxid::ZERO, c, true));
            }
            let snap = r.snap(p);
            r.paths
                .entry(p.to_string())
                .or_default()
                .push((r.last, snap));
        }
        r
    }

    /// A node as it stands, read without an ACL check (the history must know nodes no
    /// identity of the simulator's may read).
    fn snap(&self, path: &str) -> Option<Rc<NodeSnap>> {
        let (data, stat) = self.tree.get_data(path)?;
        let acl = self.tree.get_acl(path).unwrap_or_default();
        let open = matches!(acl, [a] if a.perms == perms::ALL && a.id.scheme == "world" && a.id.id == "anyone");
        Some(Rc::new(NodeSnap {
            data: data.to_vec(),
            stat,
            acl: if open { Vec::new() } else { acl.to_vec() },
            null: self.tree.is_null_data(path),
        }))
    }

    fn tree_children(&self, path: &str) -> Vec<String> {
        self.tree.get_children(path).unwrap_or_default()
    }

    /// Every state `path` had in the committed history, oldest first (`None` = absent).
    pub fn path_history(&self, path: &str) -> &[(Zxid, Option<Rc<NodeSnap>>)] {
        self.paths.get(path).map(Vec::as_slice).unwrap_or_default()
    }

    /// A node's children as of zxid `at`, sorted (from the creations and deletions under it,
    /// so a parent with many children costs nothing per change).
    pub fn children_at(&self, path: &str, at: Zxid) -> Vec<String> {
        let mut set = std::collections::BTreeSet::new();
        if let Some(evs) = self.child_events.get(path) {
            for (z, name, added) in evs {
                if *z > at {
                    break;
                }
                if *added {
                    set.insert(name.clone());
                } else {
                    set.remove(name);
                }
            }
        }
        set.into_iter().collect()
    }

    pub fn digest_at(&self, z: Zxid) -> Option<u64> {
        self.digests.get(&z).copied()
    }

    pub fn knows(&self, z: Zxid) -> bool {
        self.digests.contains_key(&z)
    }

    /// The highest committed zxid below `z`.
    pub fn last_below(&self, z: Zxid) -> Option<Zxid> {
        self.digests
            .range(..z)
            .next_back()
            .map(|(k, _)| *k)
            .filter(|k| *k > Zxid::ZERO)
    }

    /// The last zxid committed at or before time `t`.
    pub fn zxid_at_time(&self, t: u64) -> Zxid {
        let i = self.commit_times.partition_point(|(ct, _)| *ct <= t);
        if i == 0 {
            Zxid::ZERO
        } else {
            self.commit_times[i - 1].1
        }
    }

    pub fn commit_time(&self, z: Zxid) -> Option<u64> {
        let i = self.commit_times.partition_point(|(_, cz)| *cz < z);
        self.commit_times
            .get(i)
            .filter(|(_, cz)| *cz == z)
            .map(|(t, _)| *t)
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// A path's state as of zxid `at`, if the history covers it.
    pub fn node_at(&self, path: &str, at: Zxid) -> Option<Rc<NodeSnap>> {
        let hist = self.paths.get(path)?;
        let i = hist.partition_point(|(z, _)| *z <= at);
        if i == 0 { None } else { hist[i - 1].1.clone() }
    }

    /// The first trigger on `path` after `after` whose kind is in `kinds`.
    pub fn first_trigger_after(
        &self,
        path: &str,
        after: Zxid,
        kinds: &[EventType],
    ) -> Option<(Zxid, EventType)> {
        let hist = self.triggers.get(path)?;
        let i = hist.partition_point(|(z, _)| *z <= after);
        hist[i..].iter().find(|(_, k)| kinds.contains(k)).copied()
    }

    /// Apply one committed txn. Returns a violation if the history itself breaks a claim
    /// (a request committed twice, an ephemeral outliving or predating its session's end).
    pub fn apply(&mut self, txn: &Txn, now: u64) -> Result<(), Violation> {
        // the caller replays a server's log range after `last`: in order by construction
        // (`zab.total-order` is checked on what each server delivers, see `check_delivery`)
        assert!(
            txn.zxid > self.last,
            "the reference replays in zxid order: {} after {}",
            txn.zxid,
            self.last
        );
        if matches!(txn.op, TxnOp::CloseSession) {
            let mine = self
                .model
                .nodes
                .iter()
                .filter(|(_, n)| n.owner == txn.session)
                .map(|(p, _)| p.clone())
                .collect();
            self.closed_ephemerals.insert(txn.zxid, mine);
        }
        // ephemeral owners of paths about to be deleted (to judge who deleted them)
        let quotas_before = self
            .quotas
            .take()
            .unwrap_or_else(|| super::quota::QuotaState::read(&self.tree));
        let outcome = self.tree.apply(txn);
        self.last = txn.zxid;
        if let Some(m) = txn.op.new_membership() {
            self.set_membership(ensemble_core::membership::Membership {
                version: txn.zxid.0,
                ..m.clone()
            });
        }
        self.digests.insert(txn.zxid, self.tree.digest());
        self.commit_times.push((now, txn.zxid));
        let client_write = txn.op.client_write().is_some();
        if client_write && let Some(prev) = self.requests.insert((txn.session, txn.cxid), txn.zxid)
        {
            return Err(violation(
                Claim::ClientDuplicateCommit,
                now,
                format!(
                    "request cxid {} of session 0x{:x} committed twice: {} and {}",
                    txn.cxid, txn.session, prev, txn.zxid
                ),
            ));
        }
        self.txns.insert(
            txn.zxid,
            TxnInfo {
                session: txn.session,
                cxid: txn.cxid,
                client_write,
                reply: client_write.then(|| outcome.reply.clone()),
            },
        );
        match &txn.op {
            TxnOp::CreateSession { .. } => {
                self.sessions_created.insert(txn.session, txn.zxid);
            }
            TxnOp::CloseSession => {
                self.sessions_closed.insert(txn.session, txn.zxid);
            }
            _ => {}
        }
        for t in &outcome.triggers {
            if t.kind == EventType::NodeDeleted {
                let before = self.node_at(&t.path, Zxid(txn.zxid.0 - 1));
                if let Some(b) = before {
                    let owner = b.stat.ephemeral_owner;
                    let by_owner_close =
                        matches!(txn.op, TxnOp::CloseSession) && txn.session == owner;
                    // a container's or TTL node's owner is no session: the reaper's
                    // deletes are `tree.model`'s to judge
                    let session = matches!(
                        ensemble_core::tree::EphemeralType::of(owner, true),
                        ensemble_core::tree::EphemeralType::Normal(_)
                    );
                    if session && !client_write && !by_owner_close {
                        return Err(violation(
                            Claim::ClientEphemeralLifetime,
                            now,
                            format!(
                                "ephemeral {} of session 0x{:x} deleted at {} while its session lives",
                                t.path, owner, txn.zxid
                            ),
                        ));
                    }
                }
            }
            self.triggers
                .entry(t.path.clone())
                .or_default()
                .push((txn.zxid, t.kind));
        }
        for t in &outcome.triggers {
            let added = match t.kind {
                EventType::NodeCreated => true,
                EventType::NodeDeleted => false,
                _ => continue,
            };
            if let Some((parent, name)) = t.path.rsplit_once('/') {
                let parent = if parent.is_empty() { "/" } else { parent };
                self.child_events
                    .entry(parent.to_string())
                    .or_default()
                    .push((txn.zxid, name.to_string(), added));
            }
        }
        let mut touched: Vec<&str> = outcome.triggers.iter().map(|t| t.path.as_str()).collect();
        touched.sort();
        touched.dedup();
        for p in touched {
            let s = self.snap(p);
            if let Some(n) = &s
                && n.stat.ephemeral_owner != 0
            {
                self.ephemeral_paths
                    .entry(n.stat.ephemeral_owner)
                    .or_default()
                    .insert(p.to_string());
            }
            self.paths
                .entry(p.to_string())
                .or_default()
                .push((txn.zxid, s));
        }
        // Quota stats change with no trigger (ZooKeeper fires no watch for them).
        let stats: Vec<String> = self
            .tree
            .quotas()
            .map(ensemble_core::tree::stat_path)
            .collect();
        for p in stats {
            let s = self.snap(&p);
            let hist = self.paths.entry(p).or_default();
            if hist.last().map(|(_, last)| last) != Some(&s) {
                hist.push((txn.zxid, s));
            }
        }
        if matches!(txn.op, TxnOp::CloseSession) {
            let left = self.tree.session_ephemerals(txn.session);
            if !left.is_empty() {
                return Err(violation(
                    Claim::ClientEphemeralLifetime,
                    now,
                    format!(
                        "session 0x{:x} closed at {} but its ephemerals remain: {:?}",
                        txn.session, txn.zxid, left
                    ),
                ));
            }
        }
        self.quotas = Some(super::quota::check(
            &quotas_before,
            &self.tree,
            txn,
            &outcome.reply,
            now,
        )?);
        self.check_model(txn, &outcome.reply, &outcome.triggers, now)
    }

    /// `tree.model`: the independent model, given the same txn, answers the same and leaves
    /// every znode the txn touched as the tree did (every znode, every 1024 txns).
    fn check_model(
        &mut self,
        txn: &Txn,
        reply: &Reply,
        triggers: &[ensemble_core::tree::Trigger],
        now: u64,
    ) -> Result<(), Violation> {
        let fail = |d: String| {
            Err(violation(
                Claim::TreeModel,
                now,
                format!(
                    "after txn {} ({}): {d}",
                    txn.zxid,
                    crate::lines::txn_kind(txn)
                ),
            ))
        };
        if matches!(txn.op, TxnOp::EnforcedWrite { .. }) && quota_refused(reply) {
            self.model.take(&self.tree);
        } else if let Some(mine) = self.model.apply(txn, &self.tree)
            && normalize(&mine) != normalize(reply)
        {
            return fail(format!("the tree answered {reply:?}, the model {mine:?}"));
        }
        for t in triggers {
            let children = t.kind == EventType::NodeChildrenChanged;
            if let Some(d) = self.model.diff(&self.tree, &t.path, children) {
                return fail(d);
            }
        }
        if self.txns.len().is_multiple_of(1024)
            && let Some(d) = self.model.diff_all(&self.tree)
        {
            return fail(d);
        }
        Ok(())
    }

    /// The configuration now in force.
    pub fn set_membership(&mut self, m: ensemble_core::membership::Membership) {
        self.configs.insert(m.version, m.clone());
        self.membership = m;
    }

    /// The voters of the configuration in force.
    pub fn voters(&self) -> std::collections::BTreeSet<ensemble_core::txn::ServerId> {
        self.membership.voters().collect()
    }

    /// Continue the history from a snapshot (a server got SNAP beyond what we had replayed).
    pub fn reset_to_snapshot(&mut self, zxid: Zxid, data: &[u8]) -> Result<(), String> {
        let tree = DataTree::from_snapshot(data, self.opts).map_err(|e| e.to_string())?;
        self.tree = tree;
        self.quotas = None;
        if let Some(m) = self.tree.committed_membership() {
            self.set_membership(m);
        }
        self.model = crate::check::model::TreeModel::from_tree(&self.tree);
        self.last = zxid;
        self.opaque_through = zxid;
        self.digests.insert(zxid, self.tree.digest());
        let paths: Vec<String> = self.paths.keys().cloned().collect();
        self.child_events.clear();
        for p in paths {
            for c in self.tree_children(&p) {
                self.child_events
                    .entry(p.clone())
                    .or_default()
                    .push((zxid, c, true));
            }
            let s = self.snap(&p);
            self.paths.entry(p).or_default().push((zxid, s));
        }
        Ok(())
    }

    /// Start the history from a tree imported from ZooKeeper's files (every server's dataDir
    /// holds it as its only snapshot, as `ensemble import` leaves it): every node of it is
    /// known from `zxid` on, and its live sessions count as created there.
    pub fn import(&mut self, zxid: Zxid, data: &[u8]) -> Result<(), String> {
        self.reset_to_snapshot(zxid, data)?;
        let paths: Vec<String> = self.tree.paths().map(str::to_string).collect();
        for p in paths {
            if self.paths.contains_key(&p) {
                continue;
            }
            for c in self.tree_children(&p) {
                self.child_events
                    .entry(p.clone())
                    .or_default()
                    .push((zxid, c, true));
            }
            let s = self.snap(&p);
            self.paths.entry(p).or_default().push((zxid, s));
        }
        let sessions: Vec<SessionId> = self.tree.sessions().keys().copied().collect();
        for s in sessions {
            self.sessions_created.insert(s, zxid);
        }
        Ok(())
    }

    /// What a read should have answered at zxid `at`; None if the history cannot say.
    pub fn expected_read(&self, req: &Request, at: Zxid) -> Option<Reply> {
        if at <= self.opaque_through && self.opaque_through > Zxid::ZERO {
            return None;
        }
        let (path, kind) = match req {
            Request::GetData { path, .. } => (path, 0),
            Request::Exists { path, .. } => (path, 1),
            Request::GetChildren { path, .. } => (path, 2),
            Request::GetChildren2 { path, .. } => (path, 3),
            Request::GetAllChildrenNumber { path } => return self.all_children_number(path, at),
            _ => return None,
        };
        // ZooKeeper's DataTree keeps the root under "" as well as "/", and its read ops look
        // the path up as sent: "" reads the root
        let path = if path.is_empty() { "/" } else { path.as_str() };
        let n = self.node_at(path, at);
        Some(match (n, kind) {
            (None, _) => Err(KeeperError::NoNode),
            (Some(n), 0) if n.null => Ok(Response::GetDataNull { stat: n.stat }),
            (Some(n), 0) => Ok(Response::GetData {
                data: n.data.clone(),
                stat: n.stat,
            }),
            (Some(n), 1) => Ok(Response::Stat(n.stat)),
            (Some(_), 2) => Ok(Response::GetChildren {
                children: self.children_at(path, at),
            }),
            (Some(n), _) => Ok(Response::GetChildren2 {
                children: self.children_at(path, at),
                stat: n.stat,
            }),
        })
    }
}

impl Reference {
    /// Did `path` exist at `at`? (`path_history`'s states, as `node_at`, without the clone.)
    fn existed(hist: &PathHistory, at: Zxid) -> bool {
        let i = hist.partition_point(|(z, _)| *z <= at);
        i > 0 && hist[i - 1].1.is_some()
    }

    /// getAllChildrenNumber at `at`: the descendants of `path` then (all znodes but the root,
    /// `/zookeeper` and its nodes included, for `/`). `None` once a snapshot replaced the
    /// history (paths it brought are not all known here).
    fn all_children_number(&self, path: &str, at: Zxid) -> Option<Reply> {
        if self.opaque_through > Zxid::ZERO {
            return None;
        }
        if self.node_at(path, at).is_none() {
            return Some(Err(KeeperError::NoNode));
        }
        let n = if path == "/" {
            self.paths
                .iter()
                .filter(|(p, h)| p.as_str() != "/" && Self::existed(h, at))
                .count()
        } else {
            let under = format!("{path}/");
            self.paths
                .range(under.clone()..)
                .take_while(|(p, _)| p.starts_with(&under))
                .filter(|(_, h)| Self::existed(h, at))
                .count()
        };
        Some(Ok(Response::AllChildrenNumber(n as i32)))
    }

    /// getEphemerals by `session` at `at`, sorted: its ephemerals then whose path starts with
    /// `prefix` as sent, or all of them when the prefix is blank or `/` once trimmed (Java's
    /// `trim`: every char up to U+0020 off both ends; FinalRequestProcessor). `None` once a
    /// snapshot replaced the history.
    pub fn expected_ephemerals(&self, session: SessionId, prefix: &str, at: Zxid) -> Option<Reply> {
        if self.opaque_through > Zxid::ZERO {
            return None;
        }
        let blank = |c: char| c as u32 <= 0x20;
        let trimmed = prefix.trim_start_matches(blank).trim_end_matches(blank);
        let all = trimmed.is_empty() || trimmed == "/";
        let paths = self
            .ephemeral_paths
            .get(&session)
            .into_iter()
            .flatten()
            .filter(|p| all || p.starts_with(prefix))
            .filter(|p| {
                self.node_at(p, at)
                    .is_some_and(|n| n.stat.ephemeral_owner == session)
            })
            .cloned()
            .collect();
        Some(Ok(Response::GetEphemerals { paths }))
    }
}

/// A write refused by a hard quota (a multi: one of its ops).
pub fn quota_refused(reply: &Reply) -> bool {
    let code = KeeperError::QuotaExceeded.code();
    match reply {
        Err(KeeperError::QuotaExceeded) => true,
        Ok(Response::Multi(results)) => results
            .iter()
            .any(|r| matches!(r, ensemble_proto::proto::OpResult::Error(c) if *c == code)),
        _ => false,
    }
}

/// Sort child lists so replies compare as sets (ZooKeeper gives no order).
pub fn normalize(reply: &Reply) -> Reply {
    match reply {
        Ok(Response::GetChildren { children }) => {
            let mut c = children.clone();
            c.sort();
            Ok(Response::GetChildren { children: c })
        }
        Ok(Response::GetChildren2 { children, stat }) => {
            let mut c = children.clone();
            c.sort();
            Ok(Response::GetChildren2 {
                children: c,
                stat: *stat,
            })
        }
        Ok(Response::GetEphemerals { paths }) => {
            let mut p = paths.clone();
            p.sort();
            Ok(Response::GetEphemerals { paths: p })
        }
        other => other.clone(),
    }
}
