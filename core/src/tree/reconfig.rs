//! A committed reconfig in the tree: `/zookeeper/config` takes the new configuration's text
//! (ZooKeeper's SetDataTxn of the config node, dataVersion -1), which fires its data watches;
//! the reply is that text with its Stat, as ZooKeeper answers a reconfig.
//!
//! The configuration itself is kept apart from the node (`DataTree::config`): the super user
//! may setData the node (its ACL is world READ, super passes every ACL, and ZooKeeper's
//! PrepRequestProcessor does not refuse it), which changes the node only. ZooKeeper's
//! configuration lives in its dynamic file, never read back from the node.

use super::{Batch, DataTree, Fired, data_hash, meta_hash, stat_of};
use crate::membership::Membership;
use crate::path;
use crate::zxid::Zxid;
use ensemble_proto::proto::{EventType, KeeperError, Response};

impl DataTree {
    pub(super) fn apply_reconfig(
        &mut self,
        zxid: Zxid,
        time: i64,
        outcome: &Result<Membership, i32>,
        triggers: &mut Fired,
    ) -> ensemble_proto::proto::Reply {
        let m = match outcome {
            Ok(m) => m,
            Err(code) => {
                return Err(KeeperError::from_code(*code).unwrap_or(KeeperError::SystemError));
            }
        };
        // The version is the txn's zxid, whatever the leader wrote in it.
        let text = Membership {
            version: zxid.0,
            ..m.clone()
        }
        .to_text();
        // kept as its text reads (as a restart from the node read it before), so that the
        // node shows it exactly until a client writes there
        self.config = Some(Membership::parse(&text).expect("a configuration's text parses"));
        let text = text.into_bytes();
        self.preserve(path::CONFIG);
        let node = self
            .nodes
            .get_mut(path::CONFIG)
            .expect("the config node is always there");
        let before = meta_hash(&self.acls, path::CONFIG, &node.meta)
            .wrapping_add(data_hash(path::CONFIG, &node.data));
        assert!(node.meta.mzxid < zxid.as_i64(), "txns apply in zxid order");
        node.meta.version = -1;
        node.meta.mzxid = zxid.as_i64();
        node.meta.mtime = time;
        let old = std::mem::replace(&mut node.data, text.clone().into());
        let after = meta_hash(&self.acls, path::CONFIG, &node.meta)
            .wrapping_add(data_hash(path::CONFIG, &node.data));
        self.nodes_digest = self.nodes_digest.wrapping_sub(before).wrapping_add(after);
        assert!(self.data_size >= old.len() as u64, "data size below zero");
        self.data_size = self.data_size - old.len() as u64 + node.data.len() as u64;
        let stat = stat_of(self.opts.extended_types, node);
        let acl_slot = node.meta.acl;
        self.null_data.remove(path::CONFIG);
        let mut batch = Batch::single();
        batch.trigger(
            path::CONFIG,
            EventType::NodeDataChanged,
            self.watch_acl(acl_slot),
        );
        self.commit(batch, triggers);
        Ok(Response::GetData { data: text, stat })
    }

    /// The configuration the last committed reconfig made, if any: what a restarted server
    /// runs under, whatever clients wrote into `/zookeeper/config` since.
    pub fn committed_membership(&self) -> Option<Membership> {
        self.config.clone()
    }

    /// The configuration `/zookeeper/config`'s data reads as, if a txn wrote one there. Where
    /// the node shows the committed configuration (no client wrote it since), a snapshot
    /// carries only the node, and the configuration is read back from it.
    pub fn config_in_node(&self) -> Option<Membership> {
        let node = self.nodes.get(path::CONFIG)?;
        if node.data.is_empty() || node.meta.mzxid == 0 {
            return None;
        }
        Membership::parse(std::str::from_utf8(&node.data).ok()?).ok()
    }

    /// Does the node show the committed configuration (so a snapshot need not carry it)?
    pub(super) fn config_shown(&self) -> bool {
        self.config_in_node() == self.config
    }

    /// A foreign (ZooKeeper) leader's reconfig arrives as the SetDataTxn it carries: one of
    /// `/zookeeper/config` at version -1 (a client's setData always makes a version of 0 or
    /// more: ZooKeeper's checkAndIncVersion) whose text is the configuration it makes.
    pub(super) fn foreign_reconfig(&mut self, path: &str, version: i32) {
        if path != path::CONFIG || version != -1 {
            return;
        }
        if let Some(m) = self.config_in_node() {
            self.config = Some(m);
        }
    }

    /// The committed configuration a snapshot carried (format 3), or, from one that carries
    /// none, the one its node shows.
    pub(super) fn set_config(&mut self, config: Option<Membership>) {
        self.config = config;
    }

    /// Put back the committed configuration of a tree built from its persisted nodes
    /// ([`DataTree::from_persisted`]: ZooKeeper's snapshot format, which keeps the
    /// configuration in the dynamic file, not beside the nodes), as `from` had it.
    pub fn restore_committed_membership(&mut self, from: &DataTree) {
        self.config = from.config.clone();
    }
}
