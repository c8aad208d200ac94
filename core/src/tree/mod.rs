//! The data tree (ZooKeeper's DataTree): znodes with full Stat, ACLs, ephemerals, sequential
//! counters, containers and TTL nodes, and the session table. Applying a txn is deterministic.
//!
//! Txns carry the client's request; [`DataTree::apply`] resolves it the way ZooKeeper's
//! `PrepRequestProcessor` checks it and `DataTree.processTxn` applies it, in their order, so
//! every server applying the same txns computes the same replies and the same tree.
//!
//! Layout, for a million znodes in little memory: one ordered map from full path to node. A
//! node is its data plus a fixed-size stat block and a 4-byte index into the shared ACL table;
//! children are not stored per node (the ordered map lists them, sorted, by seeking over
//! descendants), only their count. The persisted `cversion` counts child creations, as in
//! ZooKeeper; clients see `2 * cversion - numChildren` (`DataNode.copyStat`).

mod acl_cache;
mod digest;
mod persisted;
mod quota;
mod read;
mod reconfig;
mod resolved;
mod snapshot;
mod snapshot_loader;
pub use persisted::PersistedNode;
pub use quota::{LIMIT_NODE, STAT_NODE, StatsTrack, limit_path, stat_path};
pub use snapshot::{PartsMissing, SNAPSHOT_PART, SnapshotAssembler, SnapshotParts, SnapshotPiece};
pub use snapshot_loader::SnapshotLoader;

use crate::acl;
use crate::path;
use crate::plant::{self, Plant};
use crate::txn::{Txn, TxnOp};
use crate::zxid::Zxid;
use acl_cache::AclCache;
use ensemble_proto::proto::{
    Acl, CreateMode, CreateOp, EventType, Id, KeeperError, MultiOp, OpResult, ReadOp, ReadResult,
    Reply, Request, Response, SessionId, Stat, perms,
};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

/// What the tree needs to know from the configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeOptions {
    /// `zookeeper.extendedTypesEnabled`: TTL nodes allowed.
    pub extended_types: bool,
    /// The `authProvider`s configured: which schemes' ACL ids are valid.
    pub auth_providers: crate::acl::AuthProviders,
    pub plant: Option<Plant>,
}

/// A change that may fire watches: `NodeCreated`, `NodeDeleted`, `NodeDataChanged` on `path`,
/// or `NodeChildrenChanged` on a parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub path: String,
    pub kind: EventType,
}

/// The ACL a watch event is checked against before it is delivered (ZooKeeper 3.8.4+, the
/// fix of CVE-2024-23944): the changed node's ACL as it stood at the change (a deleted node's
/// own), the parent's for NodeChildrenChanged. `None` when anyone may READ it.
pub type WatchAcl = Option<Arc<[Acl]>>;

/// The result of applying one txn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub reply: Reply,
    /// In the order ZooKeeper fires them.
    pub triggers: Vec<Trigger>,
    /// One per trigger: whom its event may reach.
    pub watch_acls: Vec<WatchAcl>,
    /// The ephemerals a closeSession deleted (ZooKeeper's `killSession`), in path order.
    pub ephemerals_deleted: Vec<String>,
}

/// Triggers as a txn fires them, each with its [`WatchAcl`].
#[derive(Default)]
struct Fired {
    triggers: Vec<Trigger>,
    acls: Vec<WatchAcl>,
}

#[derive(Debug, thiserror::Error)]
#[error("snapshot: {0}")]
pub struct SnapshotError(pub String);

/// `EphemeralOwner` of a container (`EphemeralType.CONTAINER_EPHEMERAL_OWNER`).
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;
/// `EphemeralType.EXTENDED_MASK`: the top byte set marks an extended type (TTL).
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
const RESERVED_BITS_MASK: i64 = 0x00ff_ff00_0000_0000;
/// `EphemeralType.TTL.maxValue()`: 2^40 - 1 ms (about 34 years).
pub const TTL_MAX: i64 = !(EXTENDED_MASK | RESERVED_BITS_MASK);

/// ZooKeeper's `EphemeralType`: what a node's ephemeralOwner field encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EphemeralType {
    /// A plain persistent node (owner 0).
    Void,
    /// An ephemeral node of this session.
    Normal(SessionId),
    Container,
    /// A TTL node and its TTL in ms.
    Ttl(i64),
}

impl EphemeralType {
    /// `EphemeralType.get`: with extended types off, a TTL owner reads as a session id, as in
    /// ZooKeeper.
    pub fn of(owner: i64, extended_types: bool) -> EphemeralType {
        if extended_types && owner & EXTENDED_MASK == EXTENDED_MASK {
            // Feature bits other than TTL's (0) are refused by ZooKeeper; none are ever made.
            return EphemeralType::Ttl(owner & TTL_MAX);
        }
        match owner {
            0 => EphemeralType::Void,
            CONTAINER_EPHEMERAL_OWNER => EphemeralType::Container,
            s => EphemeralType::Normal(s),
        }
    }

    /// `EphemeralType.TTL.toEphemeralOwner`.
    pub fn ttl_owner(ttl: i64) -> i64 {
        assert!(ttl > 0 && ttl <= TTL_MAX, "ttl {ttl} out of range");
        EXTENDED_MASK | ttl
    }
}

/// The fixed-size part of a znode: ZooKeeper's `StatPersisted` plus the ACL slot and the
/// child count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Meta {
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
    ephemeral_owner: i64,
    version: i32,
    /// Child creations (ZooKeeper's persisted cversion), the sequential-name counter.
    cversion: i32,
    aversion: i32,
    acl: u32,
    num_children: u32,
}

#[derive(Clone, Debug)]
struct Node {
    data: Box<[u8]>,
    meta: Meta,
}

impl Meta {
    fn new(zxid: i64, time: i64, ephemeral_owner: i64, acl: u32) -> Meta {
        Meta {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            ephemeral_owner,
            version: 0,
            cversion: 0,
            aversion: 0,
            acl,
            num_children: 0,
        }
    }
}

/// Who is writing: the txn's zxid, time, session and auth ids.
struct Ctx<'a> {
    zxid: i64,
    time: i64,
    session: SessionId,
    auth: &'a [Id],
    /// Hard quotas refuse what would pass them (the leader's `enforceQuota`).
    enforce_quota: bool,
}

/// How to take back one applied op of a multi that later failed.
enum Undo {
    Created {
        path: Box<str>,
        parent: Box<str>,
        parent_meta: Meta,
    },
    Deleted {
        path: Box<str>,
        node: Node,
        parent: Box<str>,
        parent_meta: Meta,
        /// Its null-data mark, put back with it.
        null: bool,
    },
    DataSet {
        path: Box<str>,
        data: Box<[u8]>,
        meta: Meta,
        /// Was the data null (a null-data mark) before: a quota's stats rewritten by a
        /// failed multi's sub must read null again.
        null: bool,
    },
}

/// The changes of one txn until it commits: triggers to fire, ACL references to drop, and for
/// a multi the undo log.
struct Batch {
    undo: Option<Vec<Undo>>,
    release: Vec<u32>,
    triggers: Vec<Trigger>,
    acls: Vec<WatchAcl>,
}

impl Batch {
    fn single() -> Batch {
        Batch {
            undo: None,
            release: Vec::new(),
            triggers: Vec::new(),
            acls: Vec::new(),
        }
    }
    fn multi() -> Batch {
        Batch {
            undo: Some(Vec::new()),
            release: Vec::new(),
            triggers: Vec::new(),
            acls: Vec::new(),
        }
    }
    fn record(&mut self, u: impl FnOnce() -> Undo) {
        if let Some(undo) = &mut self.undo {
            undo.push(u());
        }
    }
    fn trigger(&mut self, path: &str, kind: EventType, acl: WatchAcl) {
        self.triggers.push(Trigger {
            path: path.to_string(),
            kind,
        });
        self.acls.push(acl);
    }
}

/// What one write op did, before it is shaped into a `Response` or an `OpResult`.
enum Done {
    Created { path: String, stat: Stat },
    Deleted,
    DataSet(Stat),
    AclSet(Stat),
    Checked,
}

#[derive(Clone, Debug)]
pub struct DataTree {
    opts: TreeOptions,
    /// Boxed nodes keep the map's entries at 24 bytes: B-tree leaves run half empty under
    /// sequential inserts, and an empty slot then costs 24 bytes rather than 104.
    nodes: BTreeMap<Box<str>, Box<Node>>,
    acls: AclCache,
    sessions: BTreeMap<SessionId, i32>,
    /// Session → its ephemerals (sorted, the order closeSession deletes them in).
    ephemerals: BTreeMap<SessionId, BTreeSet<Box<str>>>,
    containers: BTreeSet<Box<str>>,
    ttls: BTreeSet<Box<str>>,
    last_zxid: Zxid,
    /// ZooKeeper's approximate data size: Σ path length (UTF-16) + data length.
    data_size: u64,
    /// Σ (wrapping) of every node's hash: the digest is kept up to date, never recomputed.
    nodes_digest: u64,
    sessions_digest: u64,
    /// Znodes whose data is null, not empty (a create or setData whose buffer was null on the
    /// wire: ZooKeeper's getData answers null for them). Their `Node::data` is empty.
    null_data: BTreeSet<Box<str>>,
    /// The quota'd paths: those whose `/zookeeper/quota<path>/zookeeper_limits` exists
    /// (ZooKeeper's pTrie), kept by `insert_node` / `remove_node`.
    quotas: BTreeSet<Box<str>>,
    /// The configuration the last committed reconfig made (its version that txn's zxid), if
    /// one did: state of its own, as ZooKeeper keeps its configuration in the dynamic file and
    /// not in `/zookeeper/config`, which the super user may write like any node.
    config: Option<crate::membership::Membership>,
    /// The snapshot being written a slice at a time, if one is.
    snap: Option<Box<snapshot::SnapshotWriter>>,
    /// Snapshot parts handed out recently: once the runtime has written and dropped one, its
    /// buffer takes the next part (fresh pages cost more than the serialisation itself).
    part_pool: Vec<std::sync::Arc<Vec<u8>>>,
}

impl DataTree {
    /// ZooKeeper's initial tree: `/`, `/zookeeper`, `/zookeeper/quota` (open ACL) and
    /// `/zookeeper/config` (read-only ACL, aversion -1), every Stat zero.
    pub fn new(opts: TreeOptions) -> DataTree {
        let mut t = DataTree::empty(opts);
        let open = t.acls.intern(Acl::open_unsafe());
        for _ in 0..2 {
            t.acls.intern(Acl::open_unsafe());
        }
        let read_only = t.acls.intern(vec![Acl {
            perms: perms::READ,
            id: Id::anyone(),
        }]);
        let meta = |acl, num_children| Meta {
            num_children,
            ..Meta::new(0, 0, 0, acl)
        };
        t.insert_node(
            path::ROOT.into(),
            Node {
                data: Box::new([]),
                meta: meta(open, 1),
            },
        );
        t.insert_node(
            path::ZOOKEEPER.into(),
            Node {
                data: Box::new([]),
                meta: meta(open, 2),
            },
        );
        t.insert_node(
            path::QUOTA.into(),
            Node {
                data: Box::new([]),
                meta: meta(open, 0),
            },
        );
        // `addConfigNode` sets the read-only ACL with version -1, leaving aversion -1.
        let config = Meta {
            aversion: -1,
            ..meta(read_only, 0)
        };
        t.insert_node(
            path::CONFIG.into(),
            Node {
                data: Box::new([]),
                meta: config,
            },
        );
        assert_eq!(t.acls.refs(open), 3);
        t
    }

    fn empty(opts: TreeOptions) -> DataTree {
        DataTree {
            opts,
            nodes: BTreeMap::new(),
            acls: AclCache::default(),
            sessions: BTreeMap::new(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            last_zxid: Zxid::ZERO,
            data_size: 0,
            nodes_digest: 0,
            sessions_digest: 0,
            null_data: BTreeSet::new(),
            quotas: BTreeSet::new(),
            config: None,
            snap: None,
            part_pool: Vec::new(),
        }
    }

    pub fn options(&self) -> TreeOptions {
        self.opts
    }

    // ------------------------------------------------------------------ apply

    /// Apply one committed txn. Its zxid must be above every zxid applied before.
    pub fn apply(&mut self, txn: &Txn) -> ApplyOutcome {
        assert!(
            txn.zxid > self.last_zxid,
            "txn {} applied after {}: zxids must strictly increase",
            txn.zxid,
            self.last_zxid
        );
        self.last_zxid = txn.zxid;
        let mut triggers = Fired::default();
        let mut ephemerals_deleted = Vec::new();
        let reply = match &txn.op {
            TxnOp::CreateSession { timeout_ms } => {
                self.put_session(txn.session, *timeout_ms);
                Ok(Response::Empty)
            }
            TxnOp::CloseSession => {
                ephemerals_deleted = self.close_session(txn, &mut triggers);
                Ok(Response::Empty)
            }
            TxnOp::Write { request, auth } | TxnOp::EnforcedWrite { request, auth } => {
                let cx = Ctx {
                    zxid: txn.zxid.as_i64(),
                    time: txn.time,
                    session: txn.session,
                    auth,
                    enforce_quota: matches!(txn.op, TxnOp::EnforcedWrite { .. }),
                };
                self.apply_write(&cx, request, &mut triggers)
            }
            TxnOp::DeleteContainer { path } => self.delete_container(txn, path, &mut triggers),
            TxnOp::Reconfig { outcome } => {
                self.apply_reconfig(txn.zxid, txn.time, outcome, &mut triggers)
            }
            TxnOp::Resolved(r) => {
                self.apply_resolved(txn, r, &mut triggers, &mut ephemerals_deleted)
            }
        };
        assert!(
            reply.is_ok() || triggers.triggers.is_empty(),
            "a failed txn fired watches"
        );
        assert_eq!(triggers.triggers.len(), triggers.acls.len());
        assert!(
            reply.is_ok() || ephemerals_deleted.is_empty(),
            "a failed txn deleted ephemerals"
        );
        assert_eq!(self.last_zxid, txn.zxid, "the tree is at the txn applied");
        ApplyOutcome {
            reply,
            triggers: triggers.triggers,
            watch_acls: triggers.acls,
            ephemerals_deleted,
        }
    }

    fn put_session(&mut self, session: SessionId, timeout_ms: i32) {
        if let Some(old) = self.sessions.insert(session, timeout_ms) {
            self.sessions_digest = self
                .sessions_digest
                .wrapping_sub(digest::session(session, old));
        }
        self.sessions_digest = self
            .sessions_digest
            .wrapping_add(digest::session(session, timeout_ms));
    }

    /// `DataTree.killSession`: delete the session's ephemerals (sorted), then forget it.
    /// The paths deleted, in order.
    fn close_session(&mut self, txn: &Txn, triggers: &mut Fired) -> Vec<String> {
        if let Some(timeout) = self.sessions.remove(&txn.session) {
            self.sessions_digest = self
                .sessions_digest
                .wrapping_sub(digest::session(txn.session, timeout));
        }
        if plant::active(self.opts.plant, Plant::EphemeralSurvivesExpiry) {
            return Vec::new();
        }
        let paths: Vec<Box<str>> = match self.ephemerals.get(&txn.session) {
            Some(set) => set.iter().cloned().collect(),
            None => return Vec::new(),
        };
        let mut batch = Batch::single();
        for p in &paths {
            assert_eq!(
                self.nodes.get(p).map(|n| n.meta.num_children),
                Some(0),
                "ephemeral {p} has children"
            );
            self.unlink(txn.zxid.as_i64(), p, &mut batch);
            self.null_data.remove(p);
        }
        assert!(!self.ephemerals.contains_key(&txn.session));
        self.commit(batch, triggers);
        paths.into_iter().map(String::from).collect()
    }

    fn apply_write(&mut self, cx: &Ctx, request: &Request, triggers: &mut Fired) -> Reply {
        let (request, nulls) = match request {
            Request::NullData { request, ops } => (&**request, &ops[..]),
            r => (r, &[][..]),
        };
        let reply = self.apply_write_op(cx, request, triggers);
        if let Ok(response) = &reply
            && (!nulls.is_empty() || !self.null_data.is_empty())
        {
            self.track_null_data(request, nulls, response);
        }
        reply
    }

    /// After a write succeeded: the znodes it gave data to are null-data exactly when their
    /// buffer was null (`nulls`, by op index); the ones it deleted are forgotten.
    fn track_null_data(&mut self, request: &Request, nulls: &[u32], response: &Response) {
        let null = |i: usize| nulls.contains(&(i as u32));
        let mark = |tree: &mut DataTree, path: &str, is_null: bool| {
            // A quota stats node gets its counts as it is created, whatever was sent.
            if is_null && tree.nodes.get(path).is_some_and(|n| n.data.is_empty()) {
                tree.null_data.insert(path.into());
            } else {
                tree.null_data.remove(path);
            }
        };
        match (request, response) {
            (
                Request::Create { .. },
                Response::Create { path } | Response::Create2 { path, .. },
            ) => mark(self, path, null(0)),
            (Request::SetData { path, .. }, _) => mark(self, path, null(0)),
            (Request::Delete { path, .. }, _) => mark(self, path, false),
            (Request::Multi(ops), Response::Multi(results)) => {
                if results.iter().any(|r| matches!(r, OpResult::Error(_))) {
                    return; // rolled back
                }
                for (i, (op, result)) in ops.iter().zip(results).enumerate() {
                    match (op, result) {
                        (MultiOp::Create { .. }, OpResult::Create { path, .. }) => {
                            mark(self, path, null(i))
                        }
                        (MultiOp::SetData { path, .. }, _) => mark(self, path, null(i)),
                        (MultiOp::Delete { path, .. }, _) => mark(self, path, false),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// Is this znode's data null rather than empty?
    pub fn is_null_data(&self, path: &str) -> bool {
        !self.null_data.is_empty() && self.null_data.contains(path)
    }

    fn apply_write_op(&mut self, cx: &Ctx, request: &Request, triggers: &mut Fired) -> Reply {
        if let Request::Multi(ops) = request {
            return Ok(self.multi(cx, ops, triggers));
        }
        let mut batch = Batch::single();
        let done = match request {
            Request::Create {
                op,
                path,
                data,
                acl,
                mode,
                ttl,
            } => self.create(cx, *op, path, data, acl, *mode, *ttl, &mut batch),
            Request::Delete { path, version } => self.delete(cx, path, *version, &mut batch),
            Request::SetData {
                path,
                data,
                version,
            } => self.set_data(cx, path, data, *version, &mut batch),
            Request::SetAcl { path, acl, version } => self.set_acl(cx, path, acl, *version),
            Request::Check { path, version } => self.check(cx, path, *version),
            // Not a write: the server never makes a txn of it.
            _ => Err(KeeperError::Unimplemented),
        };
        // Single ops check everything before they change anything.
        let done = match done {
            Ok(d) => d,
            Err(e) => {
                assert!(batch.triggers.is_empty() && batch.release.is_empty());
                return Err(e);
            }
        };
        self.commit(batch, triggers);
        Ok(match done {
            Done::Created { path, stat } => match request {
                Request::Create {
                    op: CreateOp::Create,
                    ..
                } => Response::Create { path },
                _ => Response::Create2 { path, stat },
            },
            Done::Deleted | Done::Checked => Response::Empty,
            Done::DataSet(stat) | Done::AclSet(stat) => Response::Stat(stat),
        })
    }

    /// All or nothing. On failure every op reports an error as ZooKeeper's multi does: 0 for
    /// the ops before the failing one, its code for it, RuntimeInconsistency after it.
    fn multi(&mut self, cx: &Ctx, ops: &[MultiOp], triggers: &mut Fired) -> Response {
        let mut batch = Batch::multi();
        let mut results = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let done = match op {
                MultiOp::Create {
                    op,
                    path,
                    data,
                    acl,
                    mode,
                    ttl,
                } => self.create(cx, *op, path, data, acl, *mode, *ttl, &mut batch),
                MultiOp::Delete { path, version } => self.delete(cx, path, *version, &mut batch),
                MultiOp::SetData {
                    path,
                    data,
                    version,
                } => self.set_data(cx, path, data, *version, &mut batch),
                MultiOp::Check { path, version } => self.check(cx, path, *version),
            };
            match done {
                Ok(Done::Created { path, stat }) => {
                    let with_stat = !matches!(
                        op,
                        MultiOp::Create {
                            op: CreateOp::Create,
                            ..
                        }
                    );
                    results.push(OpResult::Create {
                        path,
                        stat: with_stat.then_some(stat),
                    });
                }
                Ok(Done::Deleted) => results.push(OpResult::Delete),
                Ok(Done::DataSet(stat)) => results.push(OpResult::SetData(stat)),
                Ok(Done::Checked) => results.push(OpResult::Check),
                Ok(Done::AclSet(_)) => unreachable!("setACL is not a multi op"),
                Err(e) => {
                    self.rollback(batch);
                    let mut errors = vec![OpResult::Error(0); i];
                    errors.push(OpResult::Error(e.code()));
                    errors.resize(
                        ops.len(),
                        OpResult::Error(KeeperError::RuntimeInconsistency.code()),
                    );
                    return Response::Multi(errors);
                }
            }
        }
        self.commit(batch, triggers);
        assert_eq!(results.len(), ops.len());
        Response::Multi(results)
    }

    fn commit(&mut self, batch: Batch, triggers: &mut Fired) {
        assert_eq!(
            batch.triggers.len(),
            batch.acls.len(),
            "an event without its ACL"
        );
        for acl in batch.release {
            self.acls.release(acl);
        }
        // most txns are one op: its batch's vectors are taken whole, not copied
        if triggers.triggers.is_empty() {
            triggers.triggers = batch.triggers;
            triggers.acls = batch.acls;
        } else {
            triggers.triggers.extend(batch.triggers);
            triggers.acls.extend(batch.acls);
        }
    }

    /// Take back a multi's applied ops, newest first. Nodes it deleted keep their ACL
    /// references (released only at commit), so they go back exactly as they were.
    fn rollback(&mut self, batch: Batch) {
        let undo = batch.undo.expect("only a multi rolls back");
        for u in undo.into_iter().rev() {
            match u {
                Undo::Created {
                    path,
                    parent,
                    parent_meta,
                } => {
                    let node = self.remove_node(&path);
                    // Newest first: what the multi created under it is gone already.
                    assert_eq!(
                        node.meta.num_children, 0,
                        "{path} rolled back with children"
                    );
                    self.acls.release(node.meta.acl);
                    self.update_meta(&parent, |m| *m = parent_meta);
                    self.restore_null(&path, false);
                }
                Undo::Deleted {
                    path,
                    node,
                    parent,
                    parent_meta,
                    null,
                } => {
                    self.restore_null(&path, null);
                    self.insert_node(path, node);
                    self.update_meta(&parent, |m| *m = parent_meta);
                }
                Undo::DataSet {
                    path,
                    data,
                    meta,
                    null,
                } => {
                    self.replace_data(&path, data);
                    self.update_meta(&path, |m| *m = meta);
                    self.restore_null(&path, null);
                }
            }
        }
    }

    /// A rolled-back op's node gets back the null-data mark it had before the multi (none
    /// for one the multi created).
    fn restore_null(&mut self, path: &str, null: bool) {
        if !plant::active(self.opts.plant, Plant::RollbackForgetsNull) {
            self.mark_null(path, null);
        }
    }

    /// Mark `path`'s data null, or not.
    fn mark_null(&mut self, path: &str, null: bool) {
        if null {
            self.null_data.insert(path.into());
        } else if !self.null_data.is_empty() {
            self.null_data.remove(path);
        }
    }

    // -------------------------------------------------------------- write ops

    /// create / create2 / createContainer / createTTL, checked in `pRequest2TxnCreate`'s order.
    /// The opcode decides a container or TTL node (as the txn type does in ZooKeeper); the mode
    /// decides ephemeral and sequential. `ttl` is only read for createTTL (the other opcodes
    /// carry none on the wire: ZooKeeper sees -1).
    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        cx: &Ctx,
        op: CreateOp,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
        ttl: i64,
        batch: &mut Batch,
    ) -> Result<Done, KeeperError> {
        // validateCreateRequest
        let ttl = if op == CreateOp::Ttl { ttl } else { -1 };
        if mode.is_ttl() && !self.opts.extended_types {
            return Err(KeeperError::Unimplemented);
        }
        validate_ttl(mode, ttl)?;
        if op == CreateOp::Ttl && !mode.is_ttl() {
            // ZooKeeper would fail applying a createTTL txn with ttl -1; refuse it up front.
            return Err(KeeperError::BadArguments);
        }
        if mode.is_ephemeral() && !self.sessions.contains_key(&cx.session) {
            // checkGlobalSession: an unknown or closed session (this includes session 0).
            return Err(KeeperError::SessionExpired);
        }
        // validatePathForCreate
        let Some(slash) = path.rfind('/') else {
            return Err(KeeperError::BadArguments);
        };
        if path.contains('\0') {
            return Err(KeeperError::BadArguments);
        }
        let parent_path = &path[..slash];
        let fixed_acl = acl::fixup_cow(acl, cx.auth, self.opts.auth_providers)?;
        let parent = self.lookup(parent_path).ok_or(KeeperError::NoNode)?;
        if !acl::check(self.acls.get(parent.meta.acl), perms::CREATE, cx.auth) {
            return Err(KeeperError::NoAuth);
        }
        let parent_meta = parent.meta;
        let path = if mode.is_sequential() {
            sequential_name(path, parent_meta.cversion)
        } else {
            path.to_string()
        };
        path::validate(&path)?;
        if self.nodes.contains_key(path.as_str()) {
            return Err(KeeperError::NodeExists);
        }
        if matches!(
            self.ephemeral_type(parent_meta.ephemeral_owner),
            EphemeralType::Normal(_)
        ) {
            return Err(KeeperError::NoChildrenForEphemerals);
        }
        let owner = match op {
            CreateOp::Container => CONTAINER_EPHEMERAL_OWNER,
            CreateOp::Ttl => EphemeralType::ttl_owner(ttl),
            CreateOp::Create | CreateOp::Create2 if mode.is_ephemeral() => cx.session,
            CreateOp::Create | CreateOp::Create2 => 0,
        };
        self.check_quota(cx, &path, data.len() as i64, 1)?;

        // Checked: from here on nothing fails.
        let parent_key: Box<str> = (if parent_path.is_empty() {
            path::ROOT
        } else {
            parent_path
        })
        .into();
        let acl_slot = self.acls.intern_slice(&fixed_acl);
        let new_cversion = parent_meta.cversion.wrapping_add(1);
        self.update_meta(&parent_key, |m| {
            m.num_children += 1;
            // DataTree.createNode only moves cversion (and pzxid) forward.
            if new_cversion > m.cversion {
                m.cversion = new_cversion;
                m.pzxid = cx.zxid;
            }
        });
        let node = Node {
            data: data.into(),
            meta: Meta::new(cx.zxid, cx.time, owner, acl_slot),
        };
        let stat = self.client_stat(&node);
        let key: Box<str> = path.as_str().into();
        self.insert_node(key.clone(), node);
        batch.record(|| Undo::Created {
            path: key,
            parent: parent_key.clone(),
            parent_meta,
        });
        self.quota_created(&path, data.len() as i64, batch);
        let node_acl = self.watch_acl(acl_slot);
        let parent_acl = self.watch_acl(parent_meta.acl);
        batch.trigger(&path, EventType::NodeCreated, node_acl);
        batch.trigger(&parent_key, EventType::NodeChildrenChanged, parent_acl);
        Ok(Done::Created { path, stat })
    }

    fn delete(
        &mut self,
        cx: &Ctx,
        path: &str,
        version: i32,
        batch: &mut Batch,
    ) -> Result<Done, KeeperError> {
        let parent_path = parent_for_delete(path)?;
        let parent = self.lookup(parent_path).ok_or(KeeperError::NoNode)?;
        if !acl::check(self.acls.get(parent.meta.acl), perms::DELETE, cx.auth) {
            return Err(KeeperError::NoAuth);
        }
        let node = self.nodes.get(path).ok_or(KeeperError::NoNode)?;
        check_version(node.meta.version, version)?;
        if node.meta.num_children > 0 {
            return Err(KeeperError::NotEmpty);
        }
        self.unlink(cx.zxid, path, batch);
        assert!(
            !self.nodes.contains_key(path),
            "{path} deleted, still there"
        );
        Ok(Done::Deleted)
    }

    /// The leader's reaper (ZooKeeper's deleteContainer), checked as `pRequest2Txn` does, and
    /// stricter on one point: the node must still be a container or TTL node that qualifies at
    /// the txn's time, so a node recreated or refreshed since the reaper looked survives.
    fn delete_container(&mut self, txn: &Txn, path: &str, triggers: &mut Fired) -> Reply {
        parent_for_delete(path)?;
        let node = self.nodes.get(path).ok_or(KeeperError::NoNode)?;
        if node.meta.num_children > 0 {
            return Err(KeeperError::NotEmpty);
        }
        if !self.is_reapable(node, txn.time) {
            return Err(KeeperError::BadVersion);
        }
        let mut batch = Batch::single();
        self.unlink(txn.zxid.as_i64(), path, &mut batch);
        assert!(!self.nodes.contains_key(path), "{path} reaped, still there");
        self.commit(batch, triggers);
        self.null_data.remove(path);
        Ok(Response::Empty)
    }

    fn set_data(
        &mut self,
        cx: &Ctx,
        path: &str,
        data: &[u8],
        version: i32,
        batch: &mut Batch,
    ) -> Result<Done, KeeperError> {
        self.preserve(path);
        // One lookup: the checks, the change, the digest and the Stat all on the node found.
        // (a setData changes the null mark only once its whole request succeeds)
        let null = self.is_null_data(path);
        let Some(node) = self.nodes.get_mut(path) else {
            path::validate(path)?;
            return Err(KeeperError::NoNode);
        };
        if !acl::check(self.acls.get(node.meta.acl), perms::WRITE, cx.auth) {
            return Err(KeeperError::NoAuth);
        }
        let bytes_diff = data.len() as i64 - node.data.len() as i64;
        let node = if self.quotas.is_empty() {
            node
        } else {
            self.check_quota(cx, path, bytes_diff, 0)?;
            self.nodes.get_mut(path).expect("found above")
        };
        let new_version = check_version(node.meta.version, version)?;
        let old_meta = node.meta;
        let before =
            meta_hash(&self.acls, path, &old_meta).wrapping_add(data_hash(path, &node.data));
        node.meta.version = new_version;
        node.meta.mzxid = cx.zxid;
        node.meta.mtime = cx.time;
        let old_data = std::mem::replace(&mut node.data, data.into());
        let after =
            meta_hash(&self.acls, path, &node.meta).wrapping_add(data_hash(path, &node.data));
        self.nodes_digest = self.nodes_digest.wrapping_sub(before).wrapping_add(after);
        assert!(
            self.data_size >= old_data.len() as u64,
            "{path}: data size below zero"
        );
        self.data_size = self.data_size - old_data.len() as u64 + node.data.len() as u64;
        let stat = stat_of(self.opts.extended_types, node);
        batch.record(|| Undo::DataSet {
            path: path.into(),
            data: old_data,
            meta: old_meta,
            null,
        });
        let acl_slot = node.meta.acl;
        self.quota_changed(path, bytes_diff, 0, batch);
        batch.trigger(path, EventType::NodeDataChanged, self.watch_acl(acl_slot));
        Ok(Done::DataSet(stat))
    }

    /// setACL: no watch fires, mzxid stays (only aversion moves).
    fn set_acl(
        &mut self,
        cx: &Ctx,
        path: &str,
        acl: &[Acl],
        version: i32,
    ) -> Result<Done, KeeperError> {
        path::validate(path)?;
        let fixed_acl = acl::fixup(acl, cx.auth, self.opts.auth_providers)?;
        let node = self.nodes.get(path).ok_or(KeeperError::NoNode)?;
        let old_slot = node.meta.acl;
        if !acl::check(self.acls.get(old_slot), perms::ADMIN, cx.auth) {
            return Err(KeeperError::NoAuth);
        }
        let new_aversion = check_version(node.meta.aversion, version)?;
        let slot = self.acls.intern(fixed_acl);
        self.update_meta(path, |m| {
            m.acl = slot;
            m.aversion = new_aversion;
        });
        self.acls.release(old_slot);
        assert!(self.acls.refs(slot) > 0, "{path}: its new ACL unreferenced");
        Ok(Done::AclSet(self.stat(path).expect("just set")))
    }

    fn check(&self, cx: &Ctx, path: &str, version: i32) -> Result<Done, KeeperError> {
        let node = self.node_at(path)?;
        if !acl::check(self.acls.get(node.meta.acl), perms::READ, cx.auth) {
            return Err(KeeperError::NoAuth);
        }
        check_version(node.meta.version, version)?;
        Ok(Done::Checked)
    }

    /// `DataTree.deleteNode` of a checked, childless node.
    fn unlink(&mut self, zxid: i64, path: &str, batch: &mut Batch) {
        let parent: Box<str> = path::parent(path).expect("never the root").into();
        let skew = plant::active(self.opts.plant, Plant::TreeCversionSkew);
        let parent_meta = self.update_meta(&parent, |m| {
            assert!(m.num_children > 0, "{path}'s parent counts no children");
            m.num_children -= 1;
            if skew {
                m.cversion = m.cversion.wrapping_add(1);
            }
            // Only forward, as DataTree.deleteNode.
            if zxid > m.pzxid {
                m.pzxid = zxid;
            }
        });
        let node = self.remove_node(path);
        assert_eq!(node.meta.num_children, 0, "deleting {path} with children");
        self.quota_changed(path, -(node.data.len() as i64), -1, batch);
        // Still referenced (released at commit): its watch events are checked against it.
        let node_acl = node.meta.acl;
        batch.release.push(node.meta.acl);
        let null = self.is_null_data(path);
        batch.record(|| Undo::Deleted {
            path: path.into(),
            node,
            parent: parent.clone(),
            parent_meta,
            null,
        });
        batch.trigger(path, EventType::NodeDeleted, self.watch_acl(node_acl));
        batch.trigger(
            &parent,
            EventType::NodeChildrenChanged,
            self.watch_acl(parent_meta.acl),
        );
    }

    // ------------------------------------------------ primitives (keep indexes and digest)

    /// Every change of a node goes through here first: a snapshot being written keeps the
    /// node's state from before it.
    fn preserve(&mut self, path: &str) {
        if let Some(w) = self.snap.as_mut() {
            w.preserve(path, &self.nodes);
        }
    }

    fn insert_node(&mut self, path: Box<str>, node: Node) {
        // No `preserve`: a node created since a snapshot began is not in it, and one that was
        // there and was deleted since was kept by `remove_node`.
        assert!(
            self.acls.refs(node.meta.acl) > 0,
            "{path} refers to a free ACL slot"
        );
        self.nodes_digest = self
            .nodes_digest
            .wrapping_add(node_hash(&self.acls, &path, &node));
        self.data_size += path::java_len(&path) + node.data.len() as u64;
        self.index_owner(&path, node.meta.ephemeral_owner, true);
        self.index_quota(&path, true);
        let previous = self.nodes.insert(path, Box::new(node));
        assert!(previous.is_none(), "inserting over an existing node");
    }

    fn remove_node(&mut self, path: &str) -> Node {
        self.preserve(path);
        let node = *self.nodes.remove(path).expect("removing a missing node");
        let size = path::java_len(path) + node.data.len() as u64;
        assert!(self.data_size >= size, "{path}: data size below zero");
        self.nodes_digest = self
            .nodes_digest
            .wrapping_sub(node_hash(&self.acls, path, &node));
        self.data_size -= size;
        self.index_owner(path, node.meta.ephemeral_owner, false);
        self.index_quota(path, false);
        node
    }

    /// Change a node's stat block; returns the old one.
    fn update_meta(&mut self, path: &str, f: impl FnOnce(&mut Meta)) -> Meta {
        self.preserve(path);
        let node = self.nodes.get_mut(path).expect("updating a missing node");
        let old = node.meta;
        f(&mut node.meta);
        assert_eq!(
            old.ephemeral_owner, node.meta.ephemeral_owner,
            "a node's owner never changes"
        );
        let before = meta_hash(&self.acls, path, &old);
        let after = meta_hash(&self.acls, path, &node.meta);
        self.nodes_digest = self.nodes_digest.wrapping_sub(before).wrapping_add(after);
        old
    }

    /// Swap a node's data; returns the old data.
    fn replace_data(&mut self, path: &str, data: Box<[u8]>) -> Box<[u8]> {
        self.preserve(path);
        let node = self
            .nodes
            .get_mut(path)
            .expect("setting data of a missing node");
        let before = data_hash(path, &node.data);
        let after = data_hash(path, &data);
        assert!(
            self.data_size >= node.data.len() as u64,
            "{path}: data size below zero"
        );
        self.data_size = self.data_size - node.data.len() as u64 + data.len() as u64;
        self.nodes_digest = self.nodes_digest.wrapping_sub(before).wrapping_add(after);
        std::mem::replace(&mut node.data, data)
    }

    fn index_owner(&mut self, path: &str, owner: i64, add: bool) {
        let set = match self.ephemeral_type(owner) {
            EphemeralType::Void => return,
            EphemeralType::Container => &mut self.containers,
            EphemeralType::Ttl(_) => &mut self.ttls,
            EphemeralType::Normal(session) => {
                if add {
                    self.ephemerals.entry(session).or_default()
                } else {
                    let set = self.ephemerals.get_mut(&session).expect("ephemeral index");
                    assert!(
                        set.remove(path),
                        "{path} missing from its session's ephemerals"
                    );
                    if set.is_empty() {
                        self.ephemerals.remove(&session);
                    }
                    return;
                }
            }
        };
        if add {
            assert!(set.insert(path.into()), "{path} indexed twice");
        } else {
            assert!(set.remove(path), "{path} missing from its index");
        }
    }

    fn ephemeral_type(&self, owner: i64) -> EphemeralType {
        EphemeralType::of(owner, self.opts.extended_types)
    }

    /// A node by path, with ZooKeeper's `""` alias for the root (a create's parent of `/a`).
    fn lookup(&self, path: &str) -> Option<&Node> {
        self.nodes
            .get(if path.is_empty() { path::ROOT } else { path })
            .map(|n| &**n)
    }

    fn client_stat(&self, node: &Node) -> Stat {
        stat_of(self.opts.extended_types, node)
    }

    /// A node by a client's path: BadArguments if the path is invalid, NoNode if it is missing.
    /// Every stored path was validated when it was created, so a path found needs no check.
    fn node_at(&self, path: &str) -> Result<&Node, KeeperError> {
        match self.nodes.get(path) {
            Some(n) => Ok(n),
            None => {
                path::validate(path)?;
                Err(KeeperError::NoNode)
            }
        }
    }

    fn is_reapable(&self, node: &Node, now: i64) -> bool {
        if node.meta.num_children > 0 {
            return false;
        }
        let kind = self.ephemeral_type(node.meta.ephemeral_owner);
        let planted = |p| plant::active(self.opts.plant, p);
        if matches!(kind, EphemeralType::Ttl(_)) && planted(Plant::TtlNeverReaped) {
            return false;
        }
        if kind == EphemeralType::Container && planted(Plant::ContainerReapedUnused) {
            return true;
        }
        // the millisecond ZooKeeper's `elapsed > ttl` keeps the node and `>=` would not
        if let EphemeralType::Ttl(ttl) = kind
            && ttl != 0
            && now.saturating_sub(node.meta.mtime) == ttl
        {
            crate::probe!("tree.ttl-at-boundary");
            if planted(Plant::TtlReapedAtBoundary) {
                return true;
            }
        }
        match kind {
            // A container that never had a child is kept (ContainerManager).
            EphemeralType::Container => node.meta.cversion > 0,
            EphemeralType::Ttl(ttl) => ttl != 0 && now.saturating_sub(node.meta.mtime) > ttl,
            _ => false,
        }
    }

    // ------------------------------------------------------------------ reads
}

/// `path` and the parent's counter as ZooKeeper's `%010d` (a negative counter, after a wrap,
/// prints as `-` and 9 digits, as Java's formatter does).
fn sequential_name(path: &str, counter: i32) -> String {
    let mut s = String::with_capacity(path.len() + 11);
    s.push_str(path);
    if counter < 0 {
        use std::fmt::Write;
        let _ = write!(s, "{counter:010}");
        return s;
    }
    let mut digits = [b'0'; 10];
    let mut n = counter as u32;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    s.extend(digits.iter().map(|&d| d as char));
    s
}

/// `DataNode.copyStat`: containers and TTL nodes show owner 0; cversion counts changes.
fn stat_of(extended_types: bool, node: &Node) -> Stat {
    let m = &node.meta;
    let n = m.num_children as i32;
    Stat {
        czxid: m.czxid,
        mzxid: m.mzxid,
        ctime: m.ctime,
        mtime: m.mtime,
        version: m.version,
        cversion: m.cversion.wrapping_mul(2).wrapping_sub(n),
        aversion: m.aversion,
        ephemeral_owner: match EphemeralType::of(m.ephemeral_owner, extended_types) {
            EphemeralType::Normal(s) => s,
            _ => 0,
        },
        data_length: node.data.len() as i32,
        num_children: n,
        pzxid: m.pzxid,
    }
}

/// Hash of what setData changes.
fn data_hash(path: &str, data: &[u8]) -> u64 {
    digest::Hasher::new(digest::TAG_DATA)
        .bytes(path.as_bytes())
        .bytes(data)
        .finish()
}

/// Hash of the stat block, with the ACL's content (slots differ between servers).
fn meta_hash(acls: &AclCache, path: &str, m: &Meta) -> u64 {
    let mut h = digest::Hasher::new(digest::TAG_META);
    h.bytes(path.as_bytes())
        .i64(m.czxid)
        .i64(m.mzxid)
        .i64(m.pzxid)
        .i64(m.ctime)
        .i64(m.mtime)
        .i64(m.ephemeral_owner)
        .i64(m.version as i64)
        .i64(m.cversion as i64)
        .i64(m.aversion as i64)
        .u64(m.num_children as u64)
        .u64(acls.hash(m.acl));
    h.finish()
}

fn node_hash(acls: &AclCache, path: &str, node: &Node) -> u64 {
    data_hash(path, &node.data).wrapping_add(meta_hash(acls, path, &node.meta))
}

/// `EphemeralType.validateTTL`: TTL modes need 0 < ttl <= max; other modes no ttl (< 0).
fn validate_ttl(mode: CreateMode, ttl: i64) -> Result<(), KeeperError> {
    let ok = if mode.is_ttl() {
        ttl > 0 && ttl <= TTL_MAX
    } else {
        ttl < 0
    };
    if ok {
        Ok(())
    } else {
        Err(KeeperError::BadArguments)
    }
}

/// `checkAndIncVersion`: -1 matches any version; returns the next one.
fn check_version(current: i32, expected: i32) -> Result<i32, KeeperError> {
    if expected != -1 && expected != current {
        return Err(KeeperError::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

/// `getParentPathAndValidate`: a `/`, no NUL, not one of ZooKeeper's own nodes.
fn parent_for_delete(path: &str) -> Result<&str, KeeperError> {
    match path.rfind('/') {
        Some(slash) if !path.contains('\0') && !path::is_special(path) => Ok(&path[..slash]),
        _ => Err(KeeperError::BadArguments),
    }
}

/// The first string after every string starting with `prefix` (which ends with `/`): the same
/// with its last `/` replaced by `0`, the next character.
fn prefix_end(prefix: &str) -> String {
    assert!(prefix.ends_with('/'));
    let mut end = prefix[..prefix.len() - 1].to_string();
    end.push('0');
    end
}

#[cfg(test)]
mod tests;
