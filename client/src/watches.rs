//! The watches this session holds, as the server sees them (server paths), so they can be
//! re-registered with setWatches after a reconnect and dropped when they fire
//! (ZooKeeper's `ZKWatchManager`).

use std::collections::BTreeSet;

use ensemble_proto::proto::{AddWatchMode, EventType, Request, WatcherType};

/// What a successful (or NoNode) reply registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WatchReg {
    /// getData / exists on an existing node.
    Data(String),
    /// exists on a missing node.
    Exist(String),
    Child(String),
    Persistent(String),
    PersistentRecursive(String),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Watches {
    pub data: BTreeSet<String>,
    pub exist: BTreeSet<String>,
    pub child: BTreeSet<String>,
    pub persistent: BTreeSet<String>,
    pub recursive: BTreeSet<String>,
}

/// Bytes of paths per setWatches packet (`ClientCnxn.SET_WATCHES_MAX_LENGTH`).
const SET_WATCHES_MAX_LENGTH: usize = 128 * 1024;

impl Watches {
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }

    pub(crate) fn register(&mut self, reg: WatchReg) {
        match reg {
            WatchReg::Data(p) => self.data.insert(p),
            WatchReg::Exist(p) => self.exist.insert(p),
            WatchReg::Child(p) => self.child.insert(p),
            WatchReg::Persistent(p) => self.persistent.insert(p),
            WatchReg::PersistentRecursive(p) => self.recursive.insert(p),
        };
    }

    /// A notification arrived: one-shot watches it triggers are gone (persistent ones stay).
    pub(crate) fn fired(&mut self, kind: EventType, path: &str) {
        match kind {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.data.remove(path);
                self.exist.remove(path);
            }
            EventType::NodeDeleted => {
                self.data.remove(path);
                self.exist.remove(path);
                self.child.remove(path);
            }
            EventType::NodeChildrenChanged => {
                self.child.remove(path);
            }
            _ => {}
        }
    }

    /// removeWatches succeeded (or `-l` asked to forget them locally): drops what `kind`
    /// covers and says which "removed" events to deliver, as the Java client does.
    pub(crate) fn remove(&mut self, path: &str, kind: WatcherType) -> Vec<EventType> {
        let mut events = Vec::new();
        let data = matches!(kind, WatcherType::Data | WatcherType::Any);
        let child = matches!(kind, WatcherType::Children | WatcherType::Any);
        let persistent = matches!(
            kind,
            WatcherType::Any | WatcherType::Persistent | WatcherType::PersistentRecursive
        );
        if data && (self.data.remove(path) | self.exist.remove(path)) {
            events.push(EventType::DataWatchRemoved);
        }
        if child && self.child.remove(path) {
            events.push(EventType::ChildWatchRemoved);
        }
        if persistent {
            let p = matches!(kind, WatcherType::Any | WatcherType::Persistent)
                && self.persistent.remove(path);
            let r = matches!(kind, WatcherType::Any | WatcherType::PersistentRecursive)
                && self.recursive.remove(path);
            if p || r {
                events.push(EventType::PersistentWatchRemoved);
            }
        }
        events
    }

    /// The setWatches packets that restore these watches on a new connection: setWatches
    /// (101) when there are no persistent watches, so old servers understand it, else
    /// setWatches2 (105); split so no packet carries more than 128 KiB of paths.
    pub(crate) fn set_watches_requests(&self, relative_zxid: i64) -> Vec<Request> {
        let v2 = !self.persistent.is_empty() || !self.recursive.is_empty();
        let lists = [
            &self.data,
            &self.exist,
            &self.child,
            &self.persistent,
            &self.recursive,
        ];
        let mut out = Vec::new();
        let mut cur: [Vec<String>; 5] = Default::default();
        let mut bytes = 0;
        for (i, list) in lists.iter().enumerate() {
            for p in list.iter() {
                if bytes + p.len() > SET_WATCHES_MAX_LENGTH && bytes > 0 {
                    out.push(Self::packet(relative_zxid, std::mem::take(&mut cur), v2));
                    bytes = 0;
                }
                bytes += p.len();
                cur[i].push(p.clone());
            }
        }
        if bytes > 0 || cur.iter().any(|l| !l.is_empty()) {
            out.push(Self::packet(relative_zxid, cur, v2));
        }
        out
    }

    fn packet(relative_zxid: i64, lists: [Vec<String>; 5], v2: bool) -> Request {
        let [data, exist, child, persistent, persistent_recursive] = lists;
        Request::SetWatches {
            relative_zxid,
            data,
            exist,
            child,
            persistent,
            persistent_recursive,
            v2,
        }
    }
}

/// What a request registers if it succeeds (`exist_if_missing`: what it registers on NoNode).
pub(crate) fn registration(req: &Request) -> Option<(WatchReg, Option<WatchReg>)> {
    match req {
        Request::GetData { path, watch: true } => Some((WatchReg::Data(path.clone()), None)),
        Request::Exists { path, watch: true } => Some((
            WatchReg::Data(path.clone()),
            Some(WatchReg::Exist(path.clone())),
        )),
        Request::GetChildren { path, watch: true }
        | Request::GetChildren2 { path, watch: true } => {
            Some((WatchReg::Child(path.clone()), None))
        }
        Request::AddWatch {
            path,
            mode: AddWatchMode::Persistent,
        } => Some((WatchReg::Persistent(path.clone()), None)),
        Request::AddWatch {
            path,
            mode: AddWatchMode::PersistentRecursive,
        } => Some((WatchReg::PersistentRecursive(path.clone()), None)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_watches_fire_once_persistent_stay() {
        let mut w = Watches::default();
        w.register(WatchReg::Data("/a".into()));
        w.register(WatchReg::Child("/a".into()));
        w.register(WatchReg::Persistent("/a".into()));
        w.fired(EventType::NodeDataChanged, "/a");
        assert!(w.data.is_empty());
        assert!(w.child.contains("/a"));
        w.fired(EventType::NodeDeleted, "/a");
        assert!(w.child.is_empty());
        assert!(w.persistent.contains("/a"));
        assert_eq!(
            w.remove("/a", WatcherType::Any),
            vec![EventType::PersistentWatchRemoved]
        );
        assert!(w.is_empty());
    }

    #[test]
    fn set_watches_split_and_version() {
        let mut w = Watches::default();
        for i in 0..3000 {
            w.register(WatchReg::Data(format!("/{i:0>100}")));
        }
        let reqs = w.set_watches_requests(5);
        assert!(reqs.len() >= 3);
        let mut total = 0;
        for r in &reqs {
            match r {
                Request::SetWatches {
                    data,
                    v2,
                    relative_zxid,
                    ..
                } => {
                    assert!(!v2);
                    assert_eq!(*relative_zxid, 5);
                    total += data.len();
                }
                _ => panic!("not setWatches"),
            }
        }
        assert_eq!(total, 3000);
        w.register(WatchReg::PersistentRecursive("/r".into()));
        assert!(matches!(
            w.set_watches_requests(0).last(),
            Some(Request::SetWatches { v2: true, .. })
        ));
        assert!(Watches::default().set_watches_requests(0).is_empty());
    }
}
