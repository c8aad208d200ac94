//! A committed reconfig in the tree: `/zookeeper/config` takes the new configuration's text
//! (ZooKeeper's SetDataTxn of the config node, dataVersion -1), which fires its data watches;
//! the reply is that text with its Stat, as ZooKeeper answers a reconfig.

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
        .to_text()
        .into_bytes();
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

    /// The configuration a committed reconfig put in `/zookeeper/config`, if any.
    pub fn committed_membership(&self) -> Option<Membership> {
        let node = self.nodes.get(path::CONFIG)?;
        if node.data.is_empty() || node.meta.mzxid == 0 {
            return None;
        }
        Membership::parse(std::str::from_utf8(&node.data).ok()?).ok()
    }
}
