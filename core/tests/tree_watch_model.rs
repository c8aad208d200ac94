//! The watch manager against a naive model: a set of (path, connection, kind) triples and the
//! firing rules written out plainly. Random adds, triggers, removals and disconnects must
//! give the same events (in the same order) and the same listings and counts.

use ensemble_core::tree::Trigger;
use ensemble_core::watch::{WatchKind, WatchManager};
use ensemble_proto::proto::{EventType, KeeperState, WatcherType};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

type Conn = u64;

#[derive(Clone, Debug)]
enum Step {
    Add(&'static str, Conn, WatchKind),
    Fire(&'static str, EventType),
    Remove(&'static str, Conn, WatcherType),
    Disconnect(Conn),
}

const PATHS: [&str; 7] = ["/", "/a", "/a/b", "/a/b/c", "/ab", "/b", "/a/bc"];
const TYPES: [WatcherType; 5] = [
    WatcherType::Children,
    WatcherType::Data,
    WatcherType::Any,
    WatcherType::Persistent,
    WatcherType::PersistentRecursive,
];

fn step() -> impl Strategy<Value = Step> {
    let path = prop::sample::select(&PATHS[..]);
    let conn = 1..5u64;
    let kind = prop::sample::select(&WatchKind::ALL[..]);
    let event = prop::sample::select(vec![
        EventType::NodeCreated,
        EventType::NodeDeleted,
        EventType::NodeDataChanged,
        EventType::NodeChildrenChanged,
    ]);
    prop_oneof![
        4 => (path.clone(), conn.clone(), kind).prop_map(|(p, c, k)| Step::Add(p, c, k)),
        4 => (path.clone(), event).prop_map(|(p, e)| Step::Fire(p, e)),
        1 => (path, conn.clone(), prop::sample::select(&TYPES[..])).prop_map(|(p, c, t)| Step::Remove(p, c, t)),
        1 => conn.prop_map(Step::Disconnect),
    ]
}

fn fires(kind: WatchKind, event: EventType) -> bool {
    use EventType::*;
    match kind {
        WatchKind::Data => matches!(event, NodeCreated | NodeDeleted | NodeDataChanged),
        WatchKind::Child => matches!(event, NodeChildrenChanged | NodeDeleted),
        WatchKind::Persistent => true,
        WatchKind::PersistentRecursive => event != NodeChildrenChanged,
    }
}

fn one_shot(kind: WatchKind) -> bool {
    matches!(kind, WatchKind::Data | WatchKind::Child)
}

fn is_proper_ancestor(a: &str, p: &str) -> bool {
    a != p && (a == "/" || p.starts_with(&format!("{a}/")))
}

fn matches_type(kind: WatchKind, t: WatcherType) -> bool {
    match t {
        WatcherType::Children => kind == WatchKind::Child,
        WatcherType::Data => kind == WatchKind::Data,
        WatcherType::Persistent => kind == WatchKind::Persistent,
        WatcherType::PersistentRecursive => kind == WatchKind::PersistentRecursive,
        WatcherType::Any => true,
    }
}

proptest! {
    #[test]
    fn watch_manager_matches_the_model(steps in prop::collection::vec(step(), 1..80)) {
        let mut w = WatchManager::new();
        let mut model: BTreeSet<(&'static str, Conn, WatchKind)> = BTreeSet::new();
        for s in steps {
            match s {
                Step::Add(p, c, k) => {
                    w.add(p, c, k);
                    model.insert((p, c, k));
                }
                Step::Fire(p, e) => {
                    let mut out = Vec::new();
                    w.trigger(&Trigger { path: p.to_string(), kind: e }, &mut out);
                    let mut expect = BTreeSet::new();
                    for &(wp, c, k) in &model {
                        let here = wp == p && fires(k, e);
                        let below = k == WatchKind::PersistentRecursive && fires(k, e) && is_proper_ancestor(wp, p);
                        if here || below {
                            expect.insert(c);
                        }
                    }
                    model.retain(|&(wp, _, k)| !(wp == p && one_shot(k) && fires(k, e)));
                    let got: Vec<Conn> = out.iter().map(|(c, _)| *c).collect();
                    prop_assert_eq!(got, expect.into_iter().collect::<Vec<_>>());
                    for (_, ev) in &out {
                        prop_assert_eq!(ev.kind, e);
                        prop_assert_eq!(ev.state, KeeperState::SyncConnected);
                        prop_assert_eq!(ev.path.as_str(), p);
                    }
                }
                Step::Remove(p, c, t) => {
                    let before = model.len();
                    model.retain(|&(wp, wc, k)| !(wp == p && wc == c && matches_type(k, t)));
                    prop_assert_eq!(w.remove(p, c, t), model.len() != before);
                }
                Step::Disconnect(c) => {
                    w.remove_conn(c);
                    model.retain(|&(_, wc, _)| wc != c);
                }
            }
            // Listings, counts and checkWatches agree.
            let mut by_conn: BTreeMap<Conn, BTreeSet<String>> = BTreeMap::new();
            let mut by_path: BTreeMap<String, BTreeSet<Conn>> = BTreeMap::new();
            let mut bits: BTreeMap<(&str, Conn), Vec<WatchKind>> = BTreeMap::new();
            for &(p, c, k) in &model {
                by_conn.entry(c).or_default().insert(p.to_string());
                by_path.entry(p.to_string()).or_default().insert(c);
                bits.entry((p, c)).or_default().push(k);
            }
            let want_conn: Vec<(Conn, Vec<String>)> = by_conn.into_iter().map(|(c, s)| (c, s.into_iter().collect())).collect();
            let want_path: Vec<(String, Vec<Conn>)> = by_path.into_iter().map(|(p, s)| (p, s.into_iter().collect())).collect();
            prop_assert_eq!(w.by_conn(), want_conn.clone());
            prop_assert_eq!(w.by_path(), want_path.clone());
            prop_assert_eq!(w.conn_count(), want_conn.len());
            prop_assert_eq!(w.path_count(), want_path.len());
            // ZooKeeper's count: the data manager holds data/persistent/recursive, the child
            // manager child/persistent, one entry per (path, connection) each.
            let count: usize = bits
                .values()
                .map(|ks| {
                    let data = ks.iter().any(|k| *k != WatchKind::Child);
                    let child = ks.iter().any(|k| matches!(k, WatchKind::Child | WatchKind::Persistent));
                    usize::from(data) + usize::from(child)
                })
                .sum();
            prop_assert_eq!(w.watch_count(), count);
            for p in PATHS {
                for c in 1..5 {
                    let kinds: Vec<WatchKind> = WatchKind::ALL.into_iter().filter(|k| model.contains(&(p, c, *k))).collect();
                    prop_assert_eq!(w.kinds(p, c), kinds.clone());
                    for t in TYPES {
                        prop_assert_eq!(w.contains(p, c, t), kinds.iter().any(|k| matches_type(*k, t)));
                    }
                }
            }
        }
    }
}
