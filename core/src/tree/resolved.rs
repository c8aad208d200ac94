//! Applying a txn a foreign leader resolved ([`ResolvedTxn`]: Apache ZooKeeper's, INFORMed to
//! `ensemble zk-observe`): ZooKeeper's `DataTree.processTxn`, which takes every decision as the
//! record gives it (the sequential name, the new version, the parent's cversion) and checks
//! only what it must to stay a tree. It shares the primitives of Ensemble's own writes, so the
//! digest, the indexes, the quota stats, null data and the watch triggers (with the ACL each
//! event is checked against) are kept the same way.
//!
//! A record that does not fit the tree (a create whose parent is missing, a delete of a node
//! that is not there) changes nothing and answers the error ZooKeeper's tree throws there
//! (its processTxn logs it and goes on); the runtime compares ZooKeeper's digests to tell a
//! replica that went astray.

use super::{Batch, DataTree, Done, Fired, Meta, Node};
use crate::plant::{self, Plant};
use crate::txn::{ResolvedTxn, Txn};
use ensemble_proto::proto::{Acl, EventType, KeeperError, OpResult, Reply, Response, Stat};

impl DataTree {
    /// One resolved txn (its header is `txn`'s); `deleted` gets a closeSession's ephemerals.
    pub(super) fn apply_resolved(
        &mut self,
        txn: &Txn,
        r: &ResolvedTxn,
        triggers: &mut Fired,
        deleted: &mut Vec<String>,
    ) -> Reply {
        match r {
            ResolvedTxn::CreateSession { timeout_ms } => {
                self.put_session(txn.session, *timeout_ms);
                Ok(Response::Empty)
            }
            ResolvedTxn::CloseSession { paths } => {
                *deleted = self.close_resolved(txn, paths.as_deref(), triggers);
                Ok(Response::Empty)
            }
            ResolvedTxn::Error { err } => Err(error_of(*err)),
            ResolvedTxn::Multi(subs) => Ok(self.multi_resolved(txn, subs, triggers)),
            single => {
                let mut batch = Batch::single();
                let done = self.resolved_op(txn, single, &mut batch)?;
                self.commit(batch, triggers);
                Ok(match (single, done) {
                    (
                        ResolvedTxn::Create {
                            with_stat: false, ..
                        },
                        Done::Created { path, .. },
                    ) => Response::Create { path },
                    (_, Done::Created { path, stat }) => Response::Create2 { path, stat },
                    (_, Done::DataSet(stat) | Done::AclSet(stat)) => Response::Stat(stat),
                    (_, Done::Deleted | Done::Checked) => Response::Empty,
                })
            }
        }
    }

    /// A multi: all its subs, or (a failed multi, every sub an error) none.
    fn multi_resolved(
        &mut self,
        txn: &Txn,
        subs: &[ResolvedTxn],
        triggers: &mut Fired,
    ) -> Response {
        if subs.iter().any(|s| matches!(s, ResolvedTxn::Error { .. })) {
            return Response::Multi(
                subs.iter()
                    .map(|s| match s {
                        ResolvedTxn::Error { err } => OpResult::Error(*err),
                        _ => OpResult::Error(0),
                    })
                    .collect(),
            );
        }
        let mut batch = Batch::multi();
        let mut results = Vec::with_capacity(subs.len());
        for (i, sub) in subs.iter().enumerate() {
            match self.resolved_op(txn, sub, &mut batch) {
                Ok(Done::Created { path, stat }) => {
                    let with_stat = matches!(
                        sub,
                        ResolvedTxn::Create {
                            with_stat: true,
                            ..
                        }
                    );
                    let with_stat = with_stat
                        && !plant::active(self.opts.plant, Plant::ResolvedMultiCreateStatless);
                    results.push(OpResult::Create {
                        path,
                        stat: with_stat.then_some(stat),
                    });
                }
                Ok(Done::Deleted) => results.push(OpResult::Delete),
                Ok(Done::DataSet(stat)) => results.push(OpResult::SetData(stat)),
                Ok(Done::Checked | Done::AclSet(_)) => results.push(OpResult::Check),
                Err(e) => {
                    // the record does not fit this tree: nothing of the multi applies (the
                    // undo log puts back the null-data marks too)
                    if !plant::active(self.opts.plant, Plant::ResolvedMultiPartial) {
                        self.rollback(batch);
                    }
                    let mut errors = vec![OpResult::Error(0); i];
                    errors.push(OpResult::Error(e.code()));
                    errors.resize(
                        subs.len(),
                        OpResult::Error(KeeperError::RuntimeInconsistency.code()),
                    );
                    return Response::Multi(errors);
                }
            }
        }
        self.commit(batch, triggers);
        Response::Multi(results)
    }

    /// One data op of a resolved txn (alone or in a multi).
    fn resolved_op(
        &mut self,
        txn: &Txn,
        r: &ResolvedTxn,
        batch: &mut Batch,
    ) -> Result<Done, KeeperError> {
        let zxid = txn.zxid.as_i64();
        match r {
            ResolvedTxn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
                ..
            } => self.create_resolved(
                zxid,
                txn.time,
                path,
                data.as_deref(),
                acl,
                *ephemeral_owner,
                *parent_cversion,
                batch,
            ),
            ResolvedTxn::Delete { path } => {
                let node = self.nodes.get(path.as_str()).ok_or(KeeperError::NoNode)?;
                if node.meta.num_children > 0 || crate::path::parent(path).is_none() {
                    return Err(KeeperError::NotEmpty);
                }
                self.unlink(zxid, path, batch);
                self.null_data.remove(path.as_str());
                Ok(Done::Deleted)
            }
            ResolvedTxn::SetData {
                path,
                data,
                version,
            } => {
                let node = self.nodes.get(path.as_str()).ok_or(KeeperError::NoNode)?;
                let old_meta = node.meta;
                let new: Box<[u8]> = data.as_deref().unwrap_or_default().into();
                let bytes_diff = new.len() as i64 - node.data.len() as i64;
                let old_data = self.replace_data(path, new);
                self.update_meta(path, |m| {
                    m.version = *version;
                    m.mzxid = zxid;
                    m.mtime = txn.time;
                });
                let null = self.is_null_data(path);
                self.mark_null(path, data.is_none());
                self.foreign_reconfig(path, *version);
                batch.record(|| super::Undo::DataSet {
                    path: path.as_str().into(),
                    data: old_data,
                    meta: old_meta,
                    null,
                });
                self.quota_changed(path, bytes_diff, 0, batch);
                let skip = plant::active(self.opts.plant, Plant::ResolvedSetDataUnwatched);
                if !skip {
                    batch.trigger(
                        path,
                        EventType::NodeDataChanged,
                        self.watch_acl(old_meta.acl),
                    );
                }
                Ok(Done::DataSet(self.stat(path).expect("just set")))
            }
            ResolvedTxn::SetAcl { path, acl, version } => {
                let old_slot = self
                    .nodes
                    .get(path.as_str())
                    .ok_or(KeeperError::NoNode)?
                    .meta
                    .acl;
                let slot = self.acls.intern_slice(acl);
                self.update_meta(path, |m| {
                    m.acl = slot;
                    m.aversion = *version;
                });
                self.acls.release(old_slot);
                Ok(Done::AclSet(self.stat(path).expect("just set")))
            }
            ResolvedTxn::Check { .. } => Ok(Done::Checked),
            // not data ops: a multi never holds them
            ResolvedTxn::CreateSession { .. }
            | ResolvedTxn::CloseSession { .. }
            | ResolvedTxn::Error { .. }
            | ResolvedTxn::Multi(_) => Err(KeeperError::BadArguments),
        }
    }

    /// `DataTree.createNode` with the record's decisions: the parent's cversion (and pzxid)
    /// move only forward, to the record's cversion (-1: one more, as a pre-3.3 record says).
    #[allow(clippy::too_many_arguments)]
    fn create_resolved(
        &mut self,
        zxid: i64,
        time: i64,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        batch: &mut Batch,
    ) -> Result<Done, KeeperError> {
        let parent_key: Box<str> = crate::path::parent(path)
            .ok_or(KeeperError::NodeExists)?
            .into();
        let parent_meta = self
            .nodes
            .get(&*parent_key)
            .ok_or(KeeperError::NoNode)?
            .meta;
        if self.nodes.contains_key(path) {
            return Err(KeeperError::NodeExists);
        }
        let slot = self.acls.intern_slice(acl);
        let cversion = if parent_cversion == -1 {
            parent_meta.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        self.update_meta(&parent_key, |m| {
            m.num_children += 1;
            if cversion > m.cversion {
                m.cversion = cversion;
                m.pzxid = zxid;
            }
        });
        let bytes = data.map_or(0, |d| d.len() as i64);
        let node = Node {
            data: data.unwrap_or_default().into(),
            meta: Meta::new(zxid, time, owner, slot),
        };
        let stat: Stat = self.client_stat(&node);
        let key: Box<str> = path.into();
        self.insert_node(key.clone(), node);
        self.mark_null(path, data.is_none());
        batch.record(|| super::Undo::Created {
            path: key,
            parent: parent_key.clone(),
            parent_meta,
        });
        self.quota_created(path, bytes, batch);
        batch.trigger(path, EventType::NodeCreated, self.watch_acl(slot));
        batch.trigger(
            &parent_key,
            EventType::NodeChildrenChanged,
            self.watch_acl(parent_meta.acl),
        );
        Ok(Done::Created {
            path: path.to_string(),
            stat,
        })
    }

    /// `killSession`: the session's ephemerals and any the record lists, deepest first, then
    /// the session forgotten. The paths deleted, in path order.
    fn close_resolved(
        &mut self,
        txn: &Txn,
        listed: Option<&[String]>,
        triggers: &mut Fired,
    ) -> Vec<String> {
        if let Some(timeout) = self.sessions.remove(&txn.session) {
            self.sessions_digest = self
                .sessions_digest
                .wrapping_sub(super::digest::session(txn.session, timeout));
        }
        let mut doomed: Vec<String> = self
            .ephemerals
            .get(&txn.session)
            .map(|set| set.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default();
        doomed.extend(listed.unwrap_or_default().iter().cloned());
        doomed.sort();
        doomed.dedup();
        let mut batch = Batch::single();
        let mut deleted = Vec::new();
        for p in doomed.iter().rev() {
            let fits = self
                .nodes
                .get(p.as_str())
                .is_some_and(|n| n.meta.num_children == 0);
            if fits && crate::path::parent(p).is_some() {
                self.unlink(txn.zxid.as_i64(), p, &mut batch);
                self.null_data.remove(p.as_str());
                deleted.push(p.clone());
            }
        }
        self.commit(batch, triggers);
        deleted.reverse();
        deleted
    }
}

/// A foreign error code as a client error (an unknown one as SystemError).
fn error_of(code: i32) -> KeeperError {
    KeeperError::from_code(code).unwrap_or(KeeperError::SystemError)
}
