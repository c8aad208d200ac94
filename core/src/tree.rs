//! The data tree (ZooKeeper's DataTree): znodes with full Stat, ACLs, ephemerals, sequential
//! counters, containers and TTL nodes, and the session table. Applying a txn is deterministic.
//!
//! SKELETON: signatures are the contract the server relies on; bodies are being written.

use crate::plant::Plant;
use crate::proto::{EventType, Id, Reply, Request, SessionId, Stat};
use crate::txn::Txn;
use crate::zxid::Zxid;
use std::collections::BTreeMap;

/// What the tree needs to know from the configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeOptions {
    /// `zookeeper.extendedTypesEnabled`: TTL nodes allowed.
    pub extended_types: bool,
    pub plant: Option<Plant>,
}

/// A change that may fire watches: `NodeCreated`, `NodeDeleted`, `NodeDataChanged` on `path`,
/// or `NodeChildrenChanged` on a parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub path: String,
    pub kind: EventType,
}

/// The result of applying one txn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub reply: Reply,
    /// In the order ZooKeeper fires them.
    pub triggers: Vec<Trigger>,
}

#[derive(Debug, thiserror::Error)]
#[error("snapshot: {0}")]
pub struct SnapshotError(pub String);

#[derive(Clone, Debug)]
pub struct DataTree {
    _todo: (),
}

impl DataTree {
    pub fn new(_opts: TreeOptions) -> DataTree {
        todo!()
    }
    pub fn apply(&mut self, _txn: &Txn) -> ApplyOutcome {
        todo!()
    }
    pub fn read(&self, _request: &Request, _auth: &[Id]) -> Reply {
        todo!()
    }
    pub fn last_zxid(&self) -> Zxid {
        todo!()
    }
    pub fn stat(&self, _path: &str) -> Option<Stat> {
        todo!()
    }
    pub fn sessions(&self) -> &BTreeMap<SessionId, i32> {
        todo!()
    }
    pub fn session_ephemerals(&self, _session: SessionId) -> Vec<String> {
        todo!()
    }
    pub fn node_count(&self) -> usize {
        todo!()
    }
    pub fn ephemerals_count(&self) -> usize {
        todo!()
    }
    pub fn approximate_data_size(&self) -> u64 {
        todo!()
    }
    pub fn reapable(&self, _now: i64) -> Vec<String> {
        todo!()
    }
    pub fn to_snapshot(&self) -> Vec<u8> {
        todo!()
    }
    pub fn from_snapshot(_bytes: &[u8], _opts: TreeOptions) -> Result<DataTree, SnapshotError> {
        todo!()
    }
    pub fn ephemerals(&self, _s: SessionId, _p: &str) -> Vec<String> {
        todo!()
    }
    pub fn digest(&self) -> u64 {
        todo!()
    }
}
