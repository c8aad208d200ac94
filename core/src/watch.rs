//! Watches as a server keeps them for its own connections (ZooKeeper's WatchManager).
//!
//! SKELETON: signatures are the contract the server relies on; bodies are being written.

use crate::proto::{WatchedEvent, WatcherType};
use crate::server::ConnId;
use crate::tree::Trigger;

/// What a read or addWatch registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WatchKind {
    /// getData / exists: fires on created, deleted, data changed.
    Data,
    /// getChildren: fires on children changed and on the node's deletion.
    Child,
    /// addWatch PERSISTENT: data and child events on the path, not removed when fired.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE: data events on the path and every descendant.
    PersistentRecursive,
}

#[derive(Clone, Debug, Default)]
pub struct WatchManager {
    _todo: (),
}

impl WatchManager {
    pub fn new() -> WatchManager {
        todo!()
    }
    pub fn add(&mut self, _path: &str, _conn: ConnId, _kind: WatchKind) {
        todo!()
    }
    /// Fire the watches `trigger` touches, appending (connection, event) in delivery order and
    /// removing one-shot watches. Each connection gets at most one event per trigger.
    pub fn trigger(&mut self, _trigger: &Trigger, _out: &mut Vec<(ConnId, WatchedEvent)>) {
        todo!()
    }
    pub fn remove_conn(&mut self, _conn: ConnId) {
        todo!()
    }
    /// removeWatches: true if any watch of that type was removed.
    pub fn remove(&mut self, _path: &str, _conn: ConnId, _kind: WatcherType) -> bool {
        todo!()
    }
    /// checkWatches: does `conn` hold a watch of that type on `path`?
    pub fn contains(&self, _path: &str, _conn: ConnId, _kind: WatcherType) -> bool {
        todo!()
    }
    pub fn watch_count(&self) -> usize {
        todo!()
    }
    pub fn path_count(&self) -> usize {
        todo!()
    }
    /// wchc: each connection's watched paths, sorted.
    pub fn by_conn(&self) -> Vec<(ConnId, Vec<String>)> {
        todo!()
    }
    /// wchp: each watched path's connections, sorted.
    pub fn by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        todo!()
    }
}
