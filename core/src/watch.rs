//! Watches as a server keeps them for its own connections (ZooKeeper's WatchManager pair,
//! `dataWatches` and `childWatches`, with 3.9's per-mode bookkeeping: a connection may hold a
//! one-shot and a persistent watch on the same path and removing one keeps the other).
//!
//! Which watch fires on what, at the trigger's path:
//! - Data (getData, exists): NodeCreated, NodeDeleted, NodeDataChanged; then removed.
//! - Child (getChildren): NodeChildrenChanged, NodeDeleted; then removed.
//! - Persistent (addWatch 0): all four; stays.
//! - PersistentRecursive (addWatch 1): NodeCreated, NodeDeleted, NodeDataChanged at the path or
//!   below it, never NodeChildrenChanged; stays.
//!
//! A connection gets at most one event per trigger (ZooKeeper suppresses the child manager's
//! delivery to watchers the data manager already told of a deletion). Events come out ordered
//! by connection id, so nothing depends on hash order.

use crate::plant::{self, Plant};
use crate::server::ConnId;
use crate::tree::Trigger;
use ensemble_proto::proto::{
    AddWatchMode, EventType, KeeperError, KeeperState, Reply, Request, Response, WatchedEvent,
    WatcherType,
};
use std::collections::{BTreeMap, BTreeSet};

/// Is a watch event withheld from a connection whose ids may not READ its znode (ZooKeeper
/// 3.9.2's fix of CVE-2024-23944)? Not under the planted bug `watch-ignores-acl`: the one
/// place the READ check on events asks, so the simulator can prove its claim catches it.
pub fn events_checked_for_read(configured: Option<Plant>) -> bool {
    !plant::active(configured, Plant::WatchIgnoresAcl)
}

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

impl WatchKind {
    pub const ALL: [WatchKind; 4] = [
        WatchKind::Data,
        WatchKind::Child,
        WatchKind::Persistent,
        WatchKind::PersistentRecursive,
    ];

    fn bit(self) -> u8 {
        match self {
            WatchKind::Data => DATA,
            WatchKind::Child => CHILD,
            WatchKind::Persistent => PERSISTENT,
            WatchKind::PersistentRecursive => RECURSIVE,
        }
    }
}

const DATA: u8 = 1;
const CHILD: u8 = 2;
const PERSISTENT: u8 = 4;
const RECURSIVE: u8 = 8;
const ALL_BITS: u8 = DATA | CHILD | PERSISTENT | RECURSIVE;

/// The bits a WatcherType of checkWatches/removeWatches names.
fn type_bits(t: WatcherType) -> u8 {
    match t {
        WatcherType::Children => CHILD,
        WatcherType::Data => DATA,
        WatcherType::Persistent => PERSISTENT,
        WatcherType::PersistentRecursive => RECURSIVE,
        WatcherType::Any => ALL_BITS,
    }
}

/// How many entries ZooKeeper's two managers hold for these bits: the data manager has the
/// path if any of data/persistent/recursive is set, the child manager if child/persistent is.
fn zk_entries(bits: u8) -> usize {
    usize::from(bits & (DATA | PERSISTENT | RECURSIVE) != 0)
        + usize::from(bits & (CHILD | PERSISTENT) != 0)
}

#[derive(Clone, Debug, Default)]
pub struct WatchManager {
    /// path → connection → the kinds it holds there (bits).
    by_path: BTreeMap<String, BTreeMap<ConnId, u8>>,
    /// connection → the paths it watches.
    by_conn: BTreeMap<ConnId, BTreeSet<String>>,
    /// How many (path, connection) pairs hold a recursive watch: when none, triggers skip
    /// the walk up the ancestors.
    recursive: usize,
    /// Σ zk_entries over all pairs (ZooKeeper's watch count).
    entries: usize,
}

impl WatchManager {
    pub fn new() -> WatchManager {
        WatchManager::default()
    }

    pub fn add(&mut self, path: &str, conn: ConnId, kind: WatchKind) {
        let conns = self.by_path.entry(path.to_string()).or_default();
        let bits = conns.entry(conn).or_insert(0);
        let old = *bits;
        *bits |= kind.bit();
        let new = *bits;
        assert!(new & ALL_BITS == new, "unknown watch bits {new:#x}");
        if old == 0 {
            self.by_conn
                .entry(conn)
                .or_default()
                .insert(path.to_string());
        }
        self.account(old, new);
        assert!(
            self.by_conn.get(&conn).is_some_and(|p| p.contains(path)),
            "a watch not indexed by its connection"
        );
    }

    /// Keep the counters in step with one pair's bits going from `old` to `new`.
    fn account(&mut self, old: u8, new: u8) {
        assert!(
            self.entries + zk_entries(new) >= zk_entries(old),
            "watch count below zero"
        );
        self.entries = self.entries + zk_entries(new) - zk_entries(old);
        match (old & RECURSIVE != 0, new & RECURSIVE != 0) {
            (false, true) => self.recursive += 1,
            (true, false) => {
                assert!(self.recursive > 0, "recursive watch count below zero");
                self.recursive -= 1
            }
            _ => {}
        }
        // Every holder of a recursive watch, every path watched, counts for at least one entry.
        assert!(
            self.recursive <= self.entries,
            "more recursive watches than watches"
        );
        assert!(
            self.by_path.len() <= self.entries,
            "more watched paths than watches"
        );
    }

    /// Fire the watches `trigger` touches, appending (connection, event) in delivery order and
    /// removing one-shot watches. Each connection gets at most one event per trigger.
    pub fn trigger(&mut self, trigger: &Trigger, out: &mut Vec<(ConnId, WatchedEvent)>) {
        let kind = trigger.kind;
        // What fires at the path itself, and which of those bits are one-shot.
        let (fires, one_shot) = match kind {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                (DATA | PERSISTENT | RECURSIVE, DATA)
            }
            EventType::NodeDeleted => (ALL_BITS, DATA | CHILD),
            EventType::NodeChildrenChanged => (CHILD | PERSISTENT, CHILD),
            _ => return,
        };
        let mut fired: BTreeSet<ConnId> = BTreeSet::new();
        let mut changes: Vec<(ConnId, u8, u8)> = Vec::new();
        if let Some(conns) = self.by_path.get_mut(&trigger.path) {
            for (conn, bits) in conns.iter_mut() {
                if *bits & fires != 0 {
                    fired.insert(*conn);
                    let old = *bits;
                    *bits &= !one_shot;
                    if *bits != old {
                        changes.push((*conn, old, *bits));
                    }
                }
            }
            conns.retain(|_, bits| *bits != 0);
            if conns.is_empty() {
                self.by_path.remove(&trigger.path);
            }
        }
        for (conn, old, new) in changes {
            self.account(old, new);
            if new == 0 {
                self.forget_path(conn, &trigger.path);
            }
        }
        if self.recursive > 0 && kind != EventType::NodeChildrenChanged {
            for ancestor in crate::path::ancestors(&trigger.path) {
                if let Some(conns) = self.by_path.get(ancestor) {
                    fired.extend(
                        conns
                            .iter()
                            .filter(|(_, b)| **b & RECURSIVE != 0)
                            .map(|(c, _)| *c),
                    );
                }
            }
        }
        out.extend(fired.into_iter().map(|conn| {
            (
                conn,
                WatchedEvent {
                    kind,
                    state: KeeperState::SyncConnected,
                    path: trigger.path.clone(),
                },
            )
        }));
    }

    fn forget_path(&mut self, conn: ConnId, path: &str) {
        let paths = self
            .by_conn
            .get_mut(&conn)
            .expect("a watching connection is indexed");
        assert!(
            paths.remove(path),
            "{path} missing from connection {conn}'s paths"
        );
        if paths.is_empty() {
            self.by_conn.remove(&conn);
        }
    }

    /// The connection closed: drop all its watches.
    pub fn remove_conn(&mut self, conn: ConnId) {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return;
        };
        assert!(!paths.is_empty(), "connection {conn} indexed without paths");
        for p in paths {
            let conns = self.by_path.get_mut(&p).expect("a watched path is indexed");
            let bits = conns
                .remove(&conn)
                .expect("the connection watches the path");
            assert_ne!(bits, 0, "{p}: connection {conn} held no watch kind");
            if conns.is_empty() {
                self.by_path.remove(&p);
            }
            self.account(bits, 0);
        }
    }

    /// removeWatches: true if any watch of that type was removed.
    pub fn remove(&mut self, path: &str, conn: ConnId, kind: WatcherType) -> bool {
        let Some(conns) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(bits) = conns.get_mut(&conn) else {
            return false;
        };
        let old = *bits;
        *bits &= !type_bits(kind);
        let new = *bits;
        if new == old {
            return false;
        }
        if new == 0 {
            conns.remove(&conn);
            if conns.is_empty() {
                self.by_path.remove(path);
            }
            self.forget_path(conn, path);
        }
        self.account(old, new);
        assert!(
            !self.contains(path, conn, kind),
            "a removed watch still held"
        );
        true
    }

    /// checkWatches: does `conn` hold a watch of that type on `path`?
    pub fn contains(&self, path: &str, conn: ConnId, kind: WatcherType) -> bool {
        self.by_path
            .get(path)
            .and_then(|c| c.get(&conn))
            .is_some_and(|bits| bits & type_bits(kind) != 0)
    }

    /// The watch requests a server answers from its watches alone (addWatch, checkWatches,
    /// removeWatches; setWatches with [`WatchManager::set_watches`]); `None` for any other.
    /// ZooKeeper checks no path on addWatch: a watch on a path no znode can have never fires.
    pub fn answer(&mut self, conn: ConnId, request: &Request) -> Option<Reply> {
        let found = |yes: bool| {
            if yes {
                Ok(Response::Empty)
            } else {
                Err(KeeperError::NoWatcher)
            }
        };
        Some(match request {
            Request::AddWatch { path, mode } => {
                let kind = match mode {
                    AddWatchMode::Persistent => WatchKind::Persistent,
                    AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
                };
                self.add(path, conn, kind);
                Ok(Response::Empty)
            }
            Request::CheckWatches { path, kind } => found(self.contains(path, conn, *kind)),
            Request::RemoveWatches { path, kind } => found(self.remove(path, conn, *kind)),
            _ => return None,
        })
    }

    /// setWatches after a reconnect (ZooKeeper's DataTree.setWatches): each one-shot watch
    /// whose znode changed since `relative_zxid` (the last zxid the client saw) is answered
    /// with its event now instead of being set; the rest, and every persistent watch, are set.
    /// `stat` gives a znode's (mzxid, pzxid), `None` if it does not exist. Returns the events.
    #[allow(clippy::too_many_arguments)]
    pub fn set_watches(
        &mut self,
        conn: ConnId,
        relative_zxid: i64,
        data: Vec<String>,
        exist: Vec<String>,
        child: Vec<String>,
        persistent: Vec<String>,
        persistent_recursive: Vec<String>,
        stat: impl Fn(&str) -> Option<(i64, i64)>,
    ) -> Vec<WatchedEvent> {
        let mut fire = Vec::new();
        let ev = |kind, path: &str| WatchedEvent {
            kind,
            state: KeeperState::SyncConnected,
            path: path.to_string(),
        };
        for path in data {
            match stat(&path) {
                None => fire.push(ev(EventType::NodeDeleted, &path)),
                Some((mzxid, _)) if mzxid > relative_zxid => {
                    fire.push(ev(EventType::NodeDataChanged, &path))
                }
                Some(_) => self.add(&path, conn, WatchKind::Data),
            }
        }
        for path in exist {
            match stat(&path) {
                Some(_) => fire.push(ev(EventType::NodeCreated, &path)),
                None => self.add(&path, conn, WatchKind::Data),
            }
        }
        for path in child {
            match stat(&path) {
                None => fire.push(ev(EventType::NodeDeleted, &path)),
                Some((_, pzxid)) if pzxid > relative_zxid => {
                    fire.push(ev(EventType::NodeChildrenChanged, &path))
                }
                Some(_) => self.add(&path, conn, WatchKind::Child),
            }
        }
        for path in persistent {
            self.add(&path, conn, WatchKind::Persistent);
        }
        for path in persistent_recursive {
            self.add(&path, conn, WatchKind::PersistentRecursive);
        }
        fire
    }

    /// The kinds `conn` holds on `path`.
    pub fn kinds(&self, path: &str, conn: ConnId) -> Vec<WatchKind> {
        let bits = self
            .by_path
            .get(path)
            .and_then(|c| c.get(&conn))
            .copied()
            .unwrap_or(0);
        WatchKind::ALL
            .into_iter()
            .filter(|k| bits & k.bit() != 0)
            .collect()
    }

    /// Recount what the counters keep (the watch count, the recursive pairs) and the
    /// per-connection index from the watches themselves: the simulator's `tree.consistent`
    /// checks every server's at the end of a run (mntr reports these counts).
    pub fn check_counts(&self) -> Result<(), String> {
        let mut entries = 0;
        let mut recursive = 0;
        let mut by_conn: BTreeMap<ConnId, BTreeSet<&str>> = BTreeMap::new();
        for (path, conns) in &self.by_path {
            for (conn, bits) in conns {
                if *bits == 0 {
                    return Err(format!("{path}: a connection holds no watch kind"));
                }
                entries += zk_entries(*bits);
                recursive += usize::from(bits & RECURSIVE != 0);
                by_conn.entry(*conn).or_default().insert(path);
            }
        }
        if entries != self.entries || recursive != self.recursive {
            return Err(format!(
                "watch count {} ({} recursive) but {entries} ({recursive}) watches held",
                self.entries, self.recursive
            ));
        }
        let indexed: BTreeMap<ConnId, BTreeSet<&str>> = self
            .by_conn
            .iter()
            .filter(|(_, paths)| !paths.is_empty())
            .map(|(c, paths)| (*c, paths.iter().map(|p| &**p).collect()))
            .collect();
        if indexed != by_conn {
            return Err("the per-connection watch index differs from the watches".into());
        }
        Ok(())
    }

    /// ZooKeeper's watch count (`zk_watch_count`, wchs "Total watches"): entries of its data
    /// and child managers, so a persistent watch, held by both, counts twice.
    pub fn watch_count(&self) -> usize {
        self.entries
    }

    /// Watched paths.
    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    /// Connections holding at least one watch.
    pub fn conn_count(&self) -> usize {
        self.by_conn.len()
    }

    /// Does connection `conn` hold any watch?
    pub fn holds(&self, conn: ConnId) -> bool {
        self.by_conn.contains_key(&conn)
    }

    /// wchc: each connection's watched paths, sorted.
    pub fn by_conn(&self) -> Vec<(ConnId, Vec<String>)> {
        self.by_conn
            .iter()
            .map(|(c, paths)| (*c, paths.iter().cloned().collect()))
            .collect()
    }

    /// wchp: each watched path's connections, sorted.
    pub fn by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        self.by_path
            .iter()
            .map(|(p, conns)| (p.clone(), conns.keys().copied().collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(path: &str, kind: EventType) -> Trigger {
        Trigger {
            path: path.to_string(),
            kind,
        }
    }

    fn fire(w: &mut WatchManager, path: &str, kind: EventType) -> Vec<ConnId> {
        let mut out = Vec::new();
        w.trigger(&t(path, kind), &mut out);
        for (_, e) in &out {
            assert_eq!(e.kind, kind);
            assert_eq!(e.state, KeeperState::SyncConnected);
            assert_eq!(e.path, path);
        }
        out.into_iter().map(|(c, _)| c).collect()
    }

    use EventType::{
        NodeChildrenChanged as Children, NodeCreated as Created, NodeDataChanged as Changed,
        NodeDeleted as Deleted,
    };

    #[test]
    fn data_watch_fires_once_on_data_events() {
        for kind in [Created, Deleted, Changed] {
            let mut w = WatchManager::new();
            w.add("/a", 1, WatchKind::Data);
            assert_eq!(
                fire(&mut w, "/a", Children),
                Vec::<ConnId>::new(),
                "data watch ignores children"
            );
            assert_eq!(fire(&mut w, "/b", kind), Vec::<ConnId>::new(), "other path");
            assert_eq!(
                fire(&mut w, "/a/x", kind),
                Vec::<ConnId>::new(),
                "child path"
            );
            assert_eq!(fire(&mut w, "/a", kind), vec![1]);
            assert_eq!(fire(&mut w, "/a", kind), Vec::<ConnId>::new(), "one-shot");
            assert_eq!((w.watch_count(), w.path_count(), w.conn_count()), (0, 0, 0));
        }
    }

    #[test]
    fn child_watch_fires_on_children_changed_and_deleted() {
        let mut w = WatchManager::new();
        w.add("/a", 1, WatchKind::Child);
        assert!(fire(&mut w, "/a", Created).is_empty());
        assert!(fire(&mut w, "/a", Changed).is_empty());
        assert_eq!(fire(&mut w, "/a", Children), vec![1]);
        assert!(fire(&mut w, "/a", Children).is_empty());
        w.add("/a", 1, WatchKind::Child);
        assert_eq!(fire(&mut w, "/a", Deleted), vec![1]);
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn data_and_child_watch_give_one_event_on_delete() {
        let mut w = WatchManager::new();
        w.add("/a", 7, WatchKind::Data);
        w.add("/a", 7, WatchKind::Child);
        assert_eq!(w.watch_count(), 2);
        assert_eq!(fire(&mut w, "/a", Deleted), vec![7]);
        assert_eq!(w.watch_count(), 0);
        assert!(w.by_conn().is_empty() && w.by_path().is_empty());
    }

    #[test]
    fn persistent_watch_fires_on_everything_and_stays() {
        let mut w = WatchManager::new();
        w.add("/a", 3, WatchKind::Persistent);
        assert_eq!(w.watch_count(), 2, "held by both of ZooKeeper's managers");
        for kind in [Created, Changed, Children, Deleted, Created] {
            assert_eq!(fire(&mut w, "/a", kind), vec![3], "{kind:?}");
        }
        assert!(fire(&mut w, "/a/b", Created).is_empty(), "not recursive");
        assert!(w.contains("/a", 3, WatcherType::Persistent));
    }

    #[test]
    fn recursive_watch_fires_below_but_never_children_changed() {
        let mut w = WatchManager::new();
        w.add("/a", 4, WatchKind::PersistentRecursive);
        for kind in [Created, Changed, Deleted] {
            assert_eq!(fire(&mut w, "/a", kind), vec![4]);
            assert_eq!(fire(&mut w, "/a/b", kind), vec![4]);
            assert_eq!(fire(&mut w, "/a/b/c/d", kind), vec![4]);
            assert!(
                fire(&mut w, "/ab", kind).is_empty(),
                "a sibling with a common prefix"
            );
            assert!(fire(&mut w, "/", kind).is_empty(), "the parent");
        }
        assert!(fire(&mut w, "/a", Children).is_empty());
        assert!(fire(&mut w, "/a/b", Children).is_empty());
        assert_eq!(w.watch_count(), 1);
        // On the root it sees everything.
        w.add("/", 5, WatchKind::PersistentRecursive);
        assert_eq!(fire(&mut w, "/a/b", Created), vec![4, 5]);
        assert_eq!(fire(&mut w, "/x", Created), vec![5]);
    }

    #[test]
    fn one_event_per_connection_and_ordered_by_connection() {
        let mut w = WatchManager::new();
        for conn in [9, 2, 5] {
            w.add("/a/b", conn, WatchKind::Data);
        }
        w.add("/a/b", 2, WatchKind::Persistent);
        w.add("/a", 2, WatchKind::PersistentRecursive);
        w.add("/", 2, WatchKind::PersistentRecursive);
        w.add("/", 1, WatchKind::PersistentRecursive);
        assert_eq!(fire(&mut w, "/a/b", Changed), vec![1, 2, 5, 9]);
        // The one-shots went; 2's persistent and the recursives stay.
        assert_eq!(fire(&mut w, "/a/b", Changed), vec![1, 2]);
    }

    #[test]
    fn one_shot_next_to_persistent_on_the_same_path() {
        let mut w = WatchManager::new();
        w.add("/a", 1, WatchKind::Persistent);
        w.add("/a", 1, WatchKind::Data);
        assert_eq!(
            w.kinds("/a", 1),
            vec![WatchKind::Data, WatchKind::Persistent]
        );
        assert_eq!(fire(&mut w, "/a", Changed), vec![1]);
        assert_eq!(w.kinds("/a", 1), vec![WatchKind::Persistent]);
        assert!(!w.contains("/a", 1, WatcherType::Data));
        assert!(w.contains("/a", 1, WatcherType::Any));
    }

    #[test]
    fn remove_and_contains_by_watcher_type() {
        let mut w = WatchManager::new();
        w.add("/a", 1, WatchKind::Data);
        w.add("/a", 1, WatchKind::Child);
        w.add("/p", 1, WatchKind::Persistent);
        w.add("/r", 1, WatchKind::PersistentRecursive);
        assert!(w.contains("/a", 1, WatcherType::Data));
        assert!(w.contains("/a", 1, WatcherType::Children));
        assert!(!w.contains("/a", 2, WatcherType::Any));
        assert!(
            !w.contains("/p", 1, WatcherType::Children),
            "a persistent watch is not a child watch"
        );
        assert!(!w.contains("/p", 1, WatcherType::Data));
        assert!(w.contains("/p", 1, WatcherType::Persistent));
        assert!(!w.contains("/p", 1, WatcherType::PersistentRecursive));
        assert!(w.contains("/r", 1, WatcherType::PersistentRecursive));
        assert!(
            !w.contains("/r/x", 1, WatcherType::Any),
            "checkWatches looks at the path only"
        );

        assert!(!w.remove("/a", 1, WatcherType::Persistent));
        assert!(w.remove("/a", 1, WatcherType::Children));
        assert!(!w.remove("/a", 1, WatcherType::Children));
        assert!(w.contains("/a", 1, WatcherType::Data));
        assert!(w.remove("/a", 1, WatcherType::Any));
        assert!(!w.remove("/a", 1, WatcherType::Any));
        assert!(!w.remove("/p", 1, WatcherType::Data));
        assert!(w.remove("/p", 1, WatcherType::Persistent));
        assert!(w.remove("/r", 1, WatcherType::PersistentRecursive));
        assert!(fire(&mut w, "/r/x", Created).is_empty());
        assert_eq!((w.watch_count(), w.path_count(), w.conn_count()), (0, 0, 0));
    }

    #[test]
    fn remove_conn_and_listings() {
        let mut w = WatchManager::new();
        w.add("/b", 2, WatchKind::Data);
        w.add("/a", 2, WatchKind::Child);
        w.add("/a", 1, WatchKind::Data);
        w.add("/a", 1, WatchKind::Data); // twice is once
        w.add("/c", 3, WatchKind::PersistentRecursive);
        assert_eq!(w.watch_count(), 4);
        assert_eq!(
            w.by_conn(),
            vec![
                (1, vec!["/a".to_string()]),
                (2, vec!["/a".into(), "/b".into()]),
                (3, vec!["/c".into()])
            ]
        );
        assert_eq!(
            w.by_path(),
            vec![
                ("/a".to_string(), vec![1, 2]),
                ("/b".into(), vec![2]),
                ("/c".into(), vec![3])
            ]
        );
        w.remove_conn(2);
        w.remove_conn(2);
        assert_eq!(
            w.by_path(),
            vec![("/a".to_string(), vec![1]), ("/c".into(), vec![3])]
        );
        w.remove_conn(3);
        assert!(
            fire(&mut w, "/c/x", Created).is_empty(),
            "recursive watch gone with its connection"
        );
        assert_eq!((w.watch_count(), w.path_count(), w.conn_count()), (1, 1, 1));
    }

    #[test]
    fn other_event_types_fire_nothing() {
        let mut w = WatchManager::new();
        for k in WatchKind::ALL {
            w.add("/a", 1, k);
        }
        assert!(fire(&mut w, "/a", EventType::None).is_empty());
        assert!(fire(&mut w, "/a", EventType::DataWatchRemoved).is_empty());
        assert_eq!(w.kinds("/a", 1).len(), 4);
    }
}
