//! The decoders and the restore against real files of Apache ZooKeeper 3.8
//! (`node/tests/zookeeper/`, written by a standalone server that kazoo and zkCli.sh loaded:
//! gz snapshots, four log files; `walk.json` is a client's walk of the tree before the stop).

use super::tree::ZkTree;
use super::*;
use ensemble_core::ResolvedTxn;
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/zookeeper/standalone-gz/version-2")
}

/// A copy of the fixture to damage.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ensemble-zkfiles-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    for e in std::fs::read_dir(fixture()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
    }
    d
}

#[test]
fn every_real_file_decodes() {
    let dir = fixture();
    let snaps = list(&dir, "snapshot").unwrap();
    assert_eq!(snaps.len(), 5);
    for (zxid, path) in &snaps {
        let s = read_snapshot(path).unwrap();
        let d = s.digest.expect("3.8 writes the digest");
        assert!(
            d.zxid >= *zxid,
            "{}: digest of {:#x}",
            path.display(),
            d.zxid
        );
        assert_eq!(s.nodes[0].path, "/");
        // decode(encode(s)) is s: the encoder writes what the decoder reads.
        let again = snapshot::decode(&snapshot::encode(&s)).unwrap();
        assert_eq!(again, s);
    }
    let mut kinds = std::collections::BTreeSet::new();
    for (start, path) in list(&dir, "log").unwrap() {
        let log = read_log(&path).unwrap();
        assert_eq!(log.end, txnlog::LogEnd::Clean, "{}", path.display());
        assert_eq!(log.records[0].hdr.zxid, start);
        for r in &log.records {
            assert!(r.digest.is_some(), "3.8 logs a digest per txn");
            kinds.insert(format!("{:?}", std::mem::discriminant(&r.txn)));
            if let ResolvedTxn::Multi(subs) = &r.txn {
                kinds.insert(format!("multi of {}", subs.len()));
            }
        }
    }
    // create, delete, setData, setACL, createSession, closeSession, multi (of 4) at least
    assert!(kinds.len() >= 7, "{kinds:?}");
    assert!(kinds.contains("multi of 4"), "{kinds:?}");
}

/// What a client sees of a node (`DataNode.copyStat`), in walk.json's order.
fn client_stat(n: &tree::ZNode) -> Vec<i64> {
    let s = &n.stat;
    let owner = match ensemble_core::tree::EphemeralType::of(s.ephemeral_owner, true) {
        ensemble_core::tree::EphemeralType::Normal(id) => id,
        _ => 0,
    };
    vec![
        s.czxid,
        s.mzxid,
        s.ctime,
        s.mtime,
        i64::from(s.version),
        2 * i64::from(s.cversion) - i64::from(n.children),
        i64::from(s.aversion),
        owner,
        n.data.as_ref().map_or(0, |d| d.len() as i64),
        i64::from(n.children),
        s.pzxid,
    ]
}

/// The restore equals the client's walk in every stat field, data and ACL (a digest's hash
/// is hidden from clients: its user is compared).
pub(super) fn assert_matches_walk(tree: &ZkTree, walk: &serde_json::Value) {
    let walk = walk.as_object().unwrap();
    let user = |id: &str| id.split(':').next().unwrap_or("").to_string();
    for (path, want) in walk {
        if path.starts_with("/zookeeper") {
            continue;
        }
        let n = tree
            .nodes
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing"));
        let stat: Vec<i64> = want["stat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(client_stat(n), stat, "{path}");
        let data = n
            .data
            .as_ref()
            .map(|d| d.iter().map(|b| format!("{b:02x}")).collect::<String>());
        assert_eq!(data.as_deref(), want["data"].as_str(), "{path}");
        let mut acl: Vec<(i64, String, String)> = n
            .acl
            .iter()
            .map(|a| (i64::from(a.perms), a.id.scheme.clone(), user(&a.id.id)))
            .collect();
        acl.sort();
        let want_acl: Vec<(i64, String, String)> = want["acl"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a[0].as_i64().unwrap(),
                    a[1].as_str().unwrap().to_string(),
                    user(a[2].as_str().unwrap()),
                )
            })
            .collect();
        assert_eq!(acl, want_acl, "{path}");
    }
    let ours = tree
        .nodes
        .keys()
        .filter(|p| !p.starts_with("/zookeeper"))
        .count();
    let theirs = walk.keys().filter(|p| !p.starts_with("/zookeeper")).count();
    assert_eq!(ours, theirs, "node counts");
}

#[test]
fn restore_equals_the_clients_walk_and_checks_every_digest() {
    let r = restore(&fixture(), &fixture()).unwrap();
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert_eq!(r.snapshot_zxid, 0x7e);
    // the snapshot's own digest and each logged one after it
    assert!(r.digests_checked >= 2, "{}", r.digests_checked);
    let walk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("../walk.json")).unwrap())
            .unwrap();
    assert_matches_walk(&r.tree, &walk);
    // the loader's session is live, with its ephemerals; the short one's closed
    let live = r.tree.nodes["/live/leader"].stat.ephemeral_owner;
    // 30 s asked, capped at maxSessionTimeout (20 ticks of 500 ms)
    assert_eq!(r.tree.sessions.get(&live), Some(&10_000));
    assert!(!r.tree.nodes.contains_key("/live/short"));
    // A restore from the oldest snapshot replays every log: the same tree.
    let d = scratch("oldest");
    for (z, p) in list(&d, "snapshot").unwrap() {
        if z != 0 {
            std::fs::remove_file(p).unwrap();
        }
    }
    let from_start = restore(&d, &d).unwrap();
    assert_eq!(from_start.tree.nodes, r.tree.nodes);
    assert_eq!(from_start.tree.digest(), r.tree.digest());
    assert!(from_start.digests_checked > 50);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn damage_is_named_with_its_offset() {
    // A flipped byte inside a record of a log that has records after it: corruption.
    let d = scratch("flip");
    let log = d.join("log.5a");
    let mut b = std::fs::read(&log).unwrap();
    let rec = txnlog::decode(&b).unwrap().records[3].clone();
    b[rec.offset as usize + 20] ^= 0x40;
    std::fs::write(&log, &b).unwrap();
    let e = restore(&d, &d).unwrap_err().to_string();
    assert!(
        e.contains("log.5a") && e.contains(&format!("offset {}", rec.offset)),
        "{e}"
    );
    // The newest snapshot cut short: named, and the one before it is used with more log.
    let d = scratch("cut");
    let snap = d.join("snapshot.7e.gz");
    let b = std::fs::read(&snap).unwrap();
    std::fs::write(&snap, &b[..b.len() / 2]).unwrap();
    let r = restore(&d, &d).unwrap();
    assert_eq!(r.snapshot_zxid, 0x58);
    assert!(r.notes[0].contains("snapshot.7e.gz"), "{:?}", r.notes);
    // The last log cut inside its last record: a torn tail, as ZooKeeper reads it.
    let last = d.join("log.80");
    let b = std::fs::read(&last).unwrap();
    let end = b.len() - 64;
    std::fs::write(&last, &b[..end - 5]).unwrap();
    let torn = restore(&d, &d).unwrap();
    assert!(
        torn.notes
            .iter()
            .any(|n| n.contains("log.80") && n.contains("offset")),
        "{:?}",
        torn.notes
    );
    assert!(torn.tree.last_zxid < r.tree.last_zxid);
    // A log missing from the middle: the gap is refused.
    let d = scratch("gap");
    std::fs::remove_file(d.join("snapshot.7e.gz")).unwrap();
    std::fs::remove_file(d.join("snapshot.58.gz")).unwrap();
    std::fs::remove_file(d.join("log.5a")).unwrap();
    let e = restore(&d, &d).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn snappy_java_streams_decode() {
    // snappy-java's stream: its header, then (length, raw snappy block)s.
    let plain =
        snapshot::decompress(&std::fs::read(fixture().join("snapshot.7e.gz")).unwrap()).unwrap();
    let mut file = vec![
        0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
    ];
    for chunk in plain.chunks(300) {
        let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
        file.extend_from_slice(&(block.len() as i32).to_be_bytes());
        file.extend_from_slice(&block);
    }
    assert_eq!(snapshot::decompress(&file).unwrap(), plain);
    file.truncate(file.len() - 3);
    assert!(snapshot::decompress(&file).is_err());
}

#[test]
fn the_tree_as_a_snapshot_carries_its_digest() {
    let r = restore(&fixture(), &fixture()).unwrap();
    let snap = r.tree.to_snapshot(0);
    let bytes = snapshot::encode(&snap);
    let back = snapshot::decode(&bytes).unwrap();
    let t = ZkTree::from_snapshot(&back, r.tree.last_zxid).unwrap();
    assert_eq!(t.nodes, r.tree.nodes);
    assert_eq!(back.digest.unwrap().digest, r.tree.digest());
}

fn config_for(dir: &std::path::Path) -> crate::config::NodeConfig {
    let cfg = dir.join("zoo.cfg");
    let text = format!(
        "tickTime=500\ndataDir={}\nclientPort=2181\nextendedTypesEnabled=true\n",
        dir.join("data").display()
    );
    std::fs::write(&cfg, &text).unwrap();
    crate::config::parse(&cfg, &text).unwrap()
}

#[test]
fn the_cut_over_installs_a_replica_that_vouches_for_nothing() {
    // The live observer's cut-over: ZooKeeper's epochs go to acceptedEpoch (the new ensemble's
    // epoch is above them), and no currentEpoch is written, so the new ensemble's first
    // election waits for every voter and elects the newest replica (migrate::Vouch::Nobody).
    let restored = restore(&fixture(), &fixture()).unwrap();
    let zk_epochs = migrate::ZkEpochs {
        accepted: Some(7),
        current: Some(6),
    };
    let root = scratch("cut-over-install");
    for d in ["cut", "import", "behind"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let cut = config_for(&root.join("cut"));
    let (zxid, _, _, epochs) =
        migrate::install(&cut, &restored.tree, zk_epochs, migrate::Vouch::Nobody).unwrap();
    assert_eq!(zxid.as_i64(), restored.tree.last_zxid);
    assert_eq!((epochs.accepted_epoch, epochs.current_epoch), (7, 0));
    let on_disk = crate::storage::epochs::read_epochs(&cut.snap_dir()).unwrap();
    assert_eq!((on_disk.accepted_epoch, on_disk.current_epoch), (7, 0));
    assert!(!cut.snap_dir().join("currentEpoch").exists());
    // The import keeps ZooKeeper's currentEpoch: a quorum of imported servers vouches.
    let imported = config_for(&root.join("import"));
    let (_, _, _, epochs) = migrate::install(
        &imported,
        &restored.tree,
        zk_epochs,
        migrate::Vouch::ZooKeepersEpochs,
    )
    .unwrap();
    assert_eq!((epochs.accepted_epoch, epochs.current_epoch), (7, 6));
    let on_disk = crate::storage::epochs::read_epochs(&imported.snap_dir()).unwrap();
    assert_eq!(on_disk.current_epoch, 6);
    // acceptedEpoch is never below the currentEpoch ZooKeeper's observer took.
    let behind = config_for(&root.join("behind"));
    let odd = migrate::ZkEpochs {
        accepted: Some(2),
        current: Some(4),
    };
    let (_, _, _, epochs) =
        migrate::install(&behind, &restored.tree, odd, migrate::Vouch::Nobody).unwrap();
    assert_eq!((epochs.accepted_epoch, epochs.current_epoch), (4, 0));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn import_then_export_keeps_every_node_and_writes_nothing_on_failure() {
    let root = scratch("import");
    let cfg = config_for(&root);
    let r = migrate::import(&cfg, &fixture(), None).unwrap();
    assert_eq!(r.zxid.as_i64(), r.restored.tree.last_zxid);
    // The imported epochs are ZooKeeper's, at least the imported zxid's epoch: a quorum
    // ZooKeeper's files vouch for their history at once. This fixture is a standalone
    // server's (zxids of epoch 0, no currentEpoch file): the imported server vouches for
    // nothing, so an ensemble of such servers first forms with every voter up, the imported
    // history (the highest zxid) winning (node/README.md, "Disk loss").
    let epochs = crate::storage::epochs::read_epochs(&cfg.snap_dir()).unwrap();
    assert_eq!(r.zxid.epoch(), 0);
    assert_eq!(epochs.current_epoch, 0);
    // Ensemble's own snapshot holds the same tree.
    let (_, tree) = crate::storage::dump::load_snapshot(&r.snapshot).unwrap();
    let same = migrate::to_ensemble(&r.restored.tree, tree.options()).unwrap();
    assert_eq!(tree.to_snapshot(), same.to_snapshot());
    // A second import refuses the filled dataDir, and leaves it as it was.
    let e = migrate::import(&cfg, &fixture(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not empty"), "{e}");
    // Export: ZooKeeper's snapshot of the same tree, digest included.
    let out = root.join("zk-out");
    let x = migrate::export(&cfg, &out).unwrap();
    let snap = read_snapshot(&x.snapshot).unwrap();
    let back = ZkTree::from_snapshot(&snap, x.zxid.as_i64()).unwrap();
    assert_eq!(back.nodes, r.restored.tree.nodes);
    assert_eq!(snap.digest.unwrap().digest, r.restored.tree.digest());
    assert_eq!(back.sessions, r.restored.tree.sessions);
    assert!(out.join("version-2/currentEpoch").exists());
    // A damaged ZooKeeper log: an error naming it, and no dataDir written.
    let bad = scratch("import-bad");
    let log = bad.join("log.34");
    let mut b = std::fs::read(&log).unwrap();
    b[200] ^= 1;
    std::fs::write(&log, &b).unwrap();
    for f in ["snapshot.32.gz", "snapshot.58.gz", "snapshot.7e.gz"] {
        std::fs::remove_file(bad.join(f)).unwrap();
    }
    let cfg = config_for(&bad);
    let e = migrate::import(&cfg, &bad, None).unwrap_err().to_string();
    assert!(e.contains("log.34") && e.contains("offset"), "{e}");
    assert!(!cfg.snap_dir().exists());
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(bad);
}

/// Real ZooKeeper 3.8 quorum traffic (`interop/migrate/capture_quorum.py`: an observer joining
/// a two-participant ensemble whose leader forces a SNAP, then a client writing through the
/// observer) decodes whole, packet by packet, and every packet re-encodes to its bytes.
#[test]
fn real_quorum_traffic_decodes() {
    use super::jute::OutputArchive;
    use super::quorum_packet::{Frame, PacketType, Payload, decode_stream};
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/quorum_packet");
    let read = |name: &str| std::fs::read(corpus.join(name)).expect("captured file")[1..].to_vec();
    let decode = |bytes: &[u8], from_leader: bool| {
        let (frames, end) = decode_stream(bytes, from_leader).expect("decodes");
        assert_eq!(end, bytes.len(), "all of it");
        for (r, f) in &frames {
            if let Frame::Packet(p) = f {
                let mut o = OutputArchive::default();
                p.write(&mut o);
                assert_eq!(o.out, bytes[r.clone()].to_vec());
            }
        }
        frames
    };
    let kinds = |frames: &[(std::ops::Range<usize>, Frame)]| -> Vec<Option<PacketType>> {
        frames
            .iter()
            .map(|(_, f)| match f {
                Frame::Packet(p) => Some(p.kind),
                Frame::Snapshot(_) => None,
            })
            .collect()
    };
    let up = decode(&read("zk38-observer-to-leader"), false);
    let Frame::Packet(first) = &up[0].1 else {
        panic!("a packet first")
    };
    match first.payload_of(false).expect("decodes") {
        Payload::Learner(l) => {
            assert_eq!(
                (first.kind, l.server_id, l.protocol_version),
                (PacketType::ObserverInfo, 3, 0x10000)
            )
        }
        other => panic!("{other:?}"),
    }
    let up_kinds = kinds(&up);
    assert_eq!(up_kinds[1], Some(PacketType::AckEpoch));
    assert!(up_kinds.contains(&Some(PacketType::Request)));
    assert!(up_kinds.contains(&Some(PacketType::Ping)));
    let down = decode(&read("zk38-observer-sync-from-leader"), true);
    let down_kinds = kinds(&down);
    assert_eq!(
        &down_kinds[..3],
        &[Some(PacketType::LeaderInfo), Some(PacketType::Snap), None]
    );
    assert!(down_kinds.contains(&Some(PacketType::NewLeader)));
    assert!(down_kinds.contains(&Some(PacketType::UpToDate)));
    let Frame::Snapshot(db) = &down[2].1 else {
        panic!("the database after SNAP")
    };
    assert!(db.nodes.iter().any(|n| n.path == "/before"));
    // the writes the observer's client made come back as INFORMs of resolved txns
    let informed: Vec<String> = down
        .iter()
        .filter_map(|(_, f)| match f {
            Frame::Packet(p) if p.kind == PacketType::Inform => Some(p),
            _ => None,
        })
        .map(|p| format!("{:?}", p.payload_of(true).expect("a txn")))
        .collect();
    assert!(
        informed.iter().any(|t| t.contains("/through-observer")),
        "{informed:?}"
    );
}

/// The leader's side of a real 3.8 sync, arriving cut at every byte: decoding what has come
/// and keeping the rest (as the observer's connection does) gives the same frames as the
/// whole, a SNAP always together with its database.
#[test]
fn leader_stream_cut_anywhere_decodes_the_same() {
    use super::quorum_packet::{Frame, PacketType, decode_stream};
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/quorum_packet");
    let bytes = std::fs::read(corpus.join("zk38-observer-sync-from-leader")).expect("captured")
        [1..]
        .to_vec();
    let (whole, end) = decode_stream(&bytes, true).expect("decodes");
    assert_eq!(end, bytes.len());
    let whole: Vec<Frame> = whole.into_iter().map(|(_, f)| f).collect();
    for step in [1usize, 7, 64, 500] {
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for chunk in bytes.chunks(step) {
            buf.extend_from_slice(chunk);
            let (frames, used) = decode_stream(&buf, true).expect("a prefix decodes");
            for (i, (_, f)) in frames.iter().enumerate() {
                if let Frame::Packet(p) = f
                    && p.kind == PacketType::Snap
                {
                    assert!(
                        matches!(frames.get(i + 1), Some((_, Frame::Snapshot(_)))),
                        "a SNAP without its database (step {step})"
                    );
                }
            }
            got.extend(frames.into_iter().map(|(_, f)| f));
            buf.drain(..used);
        }
        assert!(buf.is_empty(), "step {step}: {} bytes left", buf.len());
        assert_eq!(got, whole, "step {step}");
    }
}

/// The election port as real ZooKeeper 3.8 speaks it (fuzz/corpus/zk_election: a 3.8
/// observer's opening recorded by capture_quorum.py, and 3.8 voters answering Ensemble's
/// observer vote): the initial message is protocol version 1 with one address, notifications
/// are version 2 with the configuration, and the leader is learned from the answers.
#[test]
fn real_election_traffic_decodes() {
    use super::election::{
        PeerState, decode_notifications, initial_message, leader_of, parse_initial_message,
    };
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/zk_election");
    let read = |name: &str| std::fs::read(corpus.join(name)).expect("captured file")[1..].to_vec();
    let opens = read("zk38-observer-opens-election");
    let (sid, addrs, used) = parse_initial_message(&opens).expect("ZooKeeper's opening");
    assert_eq!(sid, 3);
    assert_eq!(initial_message(sid, &addrs[0]), opens[..used].to_vec());
    let (notes, end) = decode_notifications(&opens[used..]);
    assert_eq!(end, opens.len() - used);
    let vote = notes[0].as_ref().expect("a vote");
    // ZooKeeper's observer votes LOOKING while it searches; Ensemble's says OBSERVING, which a
    // looking voter files as an observer's and never counts (both are answered)
    assert_eq!((vote.state, vote.version), (PeerState::Looking, 2));
    assert!(vote.config.contains("server.1="), "{:?}", vote.config);
    let mut answers = Vec::new();
    for (sid, name) in [
        (1, "zk38-follower-answers-ensemble"),
        (3, "zk38-leader-answers-ensemble"),
    ] {
        let (notes, end) = decode_notifications(&read(name));
        assert_eq!(end, read(name).len());
        let n = notes[0].clone().expect("an answer");
        assert_eq!(n.version, 2);
        answers.push((sid, Ok(n)));
    }
    assert_eq!(answers[1].1.as_ref().unwrap().state, PeerState::Leading);
    assert_eq!(leader_of(&[1, 2, 3], &answers), Some((3, 1)));
    // ours, as a 3.8 voter took it (it answered)
    let ours = read("ensemble-observer-opens-election");
    let (sid, _, used) = parse_initial_message(&ours).expect("our opening");
    assert_eq!(sid, 4);
    let (notes, _) = decode_notifications(&ours[used..]);
    let n = notes[0].as_ref().expect("our vote");
    assert_eq!(
        (n.state, n.version, n.config.as_str()),
        (PeerState::Observing, 1, "")
    );
}

/// The observer against a leader that replays what a real 3.8 leader sent its observer
/// (registration answered, a SNAP, NEWLEADER/UPTODATE, then INFORMs of the writes a client
/// made through that observer, and PINGs): it syncs by SNAP, applies every INFORM with its
/// digest agreeing, and ends when the leader goes.
#[test]
fn observer_follows_a_recorded_leader() {
    use super::observer::{Observer, Settings, SyncKind, Voter};
    use std::io::{Read, Write};
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/quorum_packet");
    let bytes = std::fs::read(corpus.join("zk38-observer-sync-from-leader")).expect("captured")
        [1..]
        .to_vec();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let leader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("the observer connects");
        let mut info = [0u8; 16];
        s.read_exact(&mut info).expect("OBSERVERINFO");
        assert_eq!(&info[..4], &16i32.to_be_bytes(), "OBSERVERINFO first");
        s.write_all(&bytes).expect("replay");
        // the leader goes: FIN, then what the observer still says is read to its end (an
        // unread byte at close would be a reset instead)
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let mut set = Settings {
        me: 3,
        my_election: "127.0.0.1:1".into(),
        voters: Vec::new(),
        observers: Vec::new(),
        config_version: 0,
        read_timeout: std::time::Duration::from_secs(5),
    };
    let voter = Voter {
        sid: 1,
        election: String::new(),
        quorum: addr.to_string(),
    };
    let mut obs = Observer::default();
    let mut zxids = Vec::new();
    let end = obs.follow(&mut set, &voter, &|| false, &mut |t, _| {
        zxids.push(t.last_zxid)
    });
    leader.join().expect("leader thread");
    assert!(end.as_ref().is_err_and(|e| e.contains("closed")), "{end:?}");
    let p = &obs.progress;
    assert_eq!(p.syncs.len(), 1);
    assert_eq!(p.syncs[0].1, SyncKind::Snap);
    assert!(p.txns_applied >= 4, "{p:?}");
    assert!(p.digests_checked >= 1, "{p:?}");
    assert!(zxids.windows(2).all(|w| w[0] <= w[1]), "{zxids:?}");
    let tree = obs.tree.as_ref().expect("a replica");
    for path in ["/before", "/through-observer", "/multi"] {
        assert!(tree.nodes.contains_key(path), "{path} missing");
    }
    assert!(
        !tree.nodes.contains_key("/through-observer/e"),
        "the multi deleted it"
    );
    assert_eq!(
        tree.nodes["/through-observer"].data.as_deref(),
        Some(&b"y"[..])
    );
}

/// The configuration a ZooKeeper leader activates (the data of its reconfig txn, as
/// `QuorumMaj.toString` writes it) becomes the voters the observer asks; an older one is
/// ignored; one that drops this observer, or makes it a voter, is refused.
#[test]
fn observer_settings_follow_an_activated_configuration() {
    use super::observer::Settings;
    let text = |version: &str, me: &str| {
        format!(
            "server.1=127.0.0.1:2001:3001:participant;127.0.0.1:4001\n\
             server.2=127.0.0.1:2002:3002:participant;127.0.0.1:4002\n\
             {me}version={version}"
        )
    };
    let mut set = Settings {
        me: 4,
        my_election: String::new(),
        voters: Vec::new(),
        observers: Vec::new(),
        config_version: 0x1_0000_0000,
        read_timeout: std::time::Duration::from_secs(5),
    };
    let me = "server.4=127.0.0.1:2004:3004:observer;127.0.0.1:4004\n";
    set.adopt(text("100000003", me).as_bytes(), "reconfig")
        .expect("a newer configuration");
    assert_eq!(set.config_version, 0x1_0000_0003);
    let sids: Vec<i64> = set.voters.iter().map(|v| v.sid).collect();
    assert_eq!(sids, [1, 2]);
    assert_eq!(set.voters[1].election, "127.0.0.1:3002");
    assert_eq!(set.voters[1].quorum, "127.0.0.1:2002");
    assert_eq!(set.my_election, "127.0.0.1:3004");
    assert_eq!(set.observers.len(), 1);
    // an older configuration (NEWLEADER's after a reconfig) changes nothing
    let older = "server.9=127.0.0.1:2009:3009:participant\nserver.4=127.0.0.1:2004:3004:observer\n\
                 version=100000001";
    set.adopt(older.as_bytes(), "NEWLEADER").expect("ignored");
    assert_eq!(set.voters.len(), 2);
    let removed = set.adopt(text("100000005", "").as_bytes(), "reconfig");
    assert!(
        removed.as_ref().is_err_and(|e| e.contains("removed")),
        "{removed:?}"
    );
    let voter = "server.4=127.0.0.1:2004:3004:participant\n";
    let promoted = set.adopt(text("100000006", voter).as_bytes(), "reconfig");
    assert!(
        promoted.as_ref().is_err_and(|e| e.contains("participant")),
        "{promoted:?}"
    );
    let bad = set.adopt(b"server.x=nonsense\nversion=100000007", "reconfig");
    assert!(bad.is_err(), "{bad:?}");
    assert_eq!(
        set.config_version, 0x1_0000_0003,
        "a refused one is not taken"
    );
}

/// The cut-over's config: every setting of the observer's, its ZooKeeper voters dropped, the
/// observers as Ensemble's participants, and it parses as an Ensemble config.
#[test]
fn cut_over_config_makes_the_observers_voters() {
    use super::observer::Settings;
    let dir = std::env::temp_dir().join(format!("cut-over-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dataDir");
    std::fs::write(dir.join("myid"), "4\n").expect("myid");
    let observer_cfg = format!(
        "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort=4004\npeerType=observer\n\
         server.1=127.0.0.1:2001:3001:participant;127.0.0.1:4001\n\
         server.4=127.0.0.1:2004:3004:observer;127.0.0.1:4004\n\
         server.5=127.0.0.1:2005:3005:observer;4005\n",
        dir.display()
    );
    let path = dir.join("zoo.cfg");
    let cfg = crate::config::parse(&path, &observer_cfg).expect("the observer's config");
    let set = Settings::from_config(&cfg).expect("settings");
    let text = crate::tools::cut_over_config(&observer_cfg, &set.observers);
    // How the new ensemble forms is said; a setting that gives up the wait is warned about.
    let note = crate::tools::cut_over_start_note(&cfg, &set.observers).expect("two servers");
    assert!(
        note.contains("forms once every one of servers 4,5 is up"),
        "{note}"
    );
    let trusting = format!("{observer_cfg}ensemble.trustEmptyDataDirs=true\n");
    let trusting = crate::config::parse(&path, &trusting).expect("the observer's config");
    let note = crate::tools::cut_over_start_note(&trusting, &set.observers).expect("a note");
    assert!(
        note.starts_with("WARNING: ensemble.trustEmptyDataDirs=true"),
        "{note}"
    );
    assert!(text.contains("tickTime=500\n") && text.contains("clientPort=4004\n"));
    assert!(
        !text.contains("server.1=") && !text.contains("peerType"),
        "{text}"
    );
    assert!(
        text.contains("server.4=127.0.0.1:2004:3004:participant;127.0.0.1:4004\n"),
        "{text}"
    );
    assert!(
        text.contains("server.5=127.0.0.1:2005:3005:participant;4005\n"),
        "{text}"
    );
    let next = crate::config::parse(&path, &text).expect("an Ensemble config");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(next.servers.len(), 2);
    assert!(
        next.servers
            .values()
            .all(|s| s.kind == ensemble_core::LearnerType::Participant)
    );
}

/// The records of every txn type, as ZooKeeper encodes them, decoded into the core's
/// `ResolvedTxn` and applied by both the import's replica of ZooKeeper's DataTree (checked
/// against ZooKeeper's digests by the restore and the interop runs) and the core's tree give
/// the same tree after each: the one type, applied alike on both sides.
#[test]
fn the_core_applies_decoded_records_as_the_replica_does() {
    use super::jute::OutputArchive;
    use super::records::{TxnHeader, decode_txn_entry, op, write_acls};
    use ensemble_core::tree::{CONTAINER_EPHEMERAL_OWNER, DataTree, EphemeralType, TreeOptions};
    use ensemble_core::txn::{Origin, Txn, TxnOp};
    use ensemble_core::zxid::Zxid;
    use ensemble_proto::proto::Acl;
    const S: i64 = 0x0100_0000_0000_0007;

    fn create_body(o: &mut OutputArchive, path: &str, kind: i32, ttl: i64, cv: i32) {
        o.ustring(path);
        o.buffer(Some(path.as_bytes()));
        write_acls(o, &Acl::open_unsafe());
        match kind {
            op::CREATE | op::CREATE2 => {
                o.bool(path.ends_with('e'));
                o.int(cv);
            }
            op::CREATE_CONTAINER => o.int(cv),
            _ => {
                o.int(cv);
                o.long(ttl);
            }
        }
    }
    // (opcode, body)
    let mut records: Vec<(i32, Vec<u8>)> = Vec::new();
    let mut rec = |kind: i32, f: &dyn Fn(&mut OutputArchive)| {
        let mut o = OutputArchive::default();
        f(&mut o);
        records.push((kind, o.out));
    };
    rec(op::CREATE_SESSION, &|o| o.int(30_000));
    rec(op::CREATE, &|o| create_body(o, "/a", op::CREATE, 0, 1));
    rec(op::CREATE2, &|o| create_body(o, "/a/e", op::CREATE2, 0, 1));
    rec(op::CREATE_CONTAINER, &|o| {
        create_body(o, "/c", op::CREATE_CONTAINER, 0, 2)
    });
    rec(op::CREATE_TTL, &|o| {
        create_body(o, "/t", op::CREATE_TTL, 5_000, 3)
    });
    rec(op::SET_DATA, &|o| {
        o.ustring("/a");
        o.buffer(None);
        o.int(1);
    });
    rec(op::SET_ACL, &|o| {
        o.ustring("/t");
        write_acls(o, &Acl::open_unsafe());
        o.int(1);
    });
    rec(op::CHECK, &|o| {
        o.ustring("/a");
        o.int(1);
    });
    let sub = |kind: i32, f: &dyn Fn(&mut OutputArchive)| {
        let mut o = OutputArchive::default();
        f(&mut o);
        (kind, o.out)
    };
    let multi = |subs: Vec<(i32, Vec<u8>)>| {
        move |o: &mut OutputArchive| {
            o.int(subs.len() as i32);
            for (k, b) in &subs {
                o.int(*k);
                o.buffer(Some(b));
            }
        }
    };
    let good = multi(vec![
        sub(op::CREATE, &|o| create_body(o, "/a/m", op::CREATE, 0, 2)),
        sub(op::DELETE, &|o| o.ustring("/t")),
    ]);
    rec(op::MULTI, &good);
    let failed = multi(vec![sub(op::ERROR, &|o| o.int(-101))]);
    rec(op::MULTI, &failed);
    rec(op::ERROR, &|o| o.int(-110));
    rec(op::CLOSE_SESSION, &|o| {
        o.int(1);
        o.ustring("/a/e");
    });

    let opts = TreeOptions {
        extended_types: true,
        ..TreeOptions::default()
    };
    // ZooKeeper's initial tree, on both sides
    let mut core = DataTree::new(opts);
    let snap = migrate::to_zookeeper(&core);
    let mut zk = ZkTree::from_snapshot(&snap, 0).expect("reads back");
    for (i, (kind, body)) in records.iter().enumerate() {
        let hdr = TxnHeader {
            client_id: S,
            cxid: i as i32,
            zxid: 0x1_0000_0001 + i as i64,
            time: 1_700_000_000_000 + i as i64,
            kind: *kind,
        };
        let mut o = OutputArchive::default();
        o.long(hdr.client_id);
        o.int(hdr.cxid);
        o.long(hdr.zxid);
        o.long(hdr.time);
        o.int(hdr.kind);
        o.out.extend_from_slice(body);
        let (got, txn, digest) = decode_txn_entry(&o.out, 0).expect("decodes");
        assert_eq!((got, digest), (hdr, None));
        zk.process(&hdr, &txn);
        core.apply(&Txn {
            zxid: Zxid(hdr.zxid as u64),
            time: hdr.time,
            session: S,
            cxid: hdr.cxid,
            origin: Origin::NONE,
            op: TxnOp::Resolved(txn),
        });
        let want = migrate::to_ensemble(&zk, opts).expect("converts");
        assert_eq!(
            core.to_snapshot(),
            want.to_snapshot(),
            "after record {i} ({kind})"
        );
    }
    assert!(!core.exists("/a/e") && core.exists("/a/m") && !core.exists("/t"));
    let owner = |p: &str| zk.nodes[p].stat.ephemeral_owner;
    assert_eq!(owner("/c"), CONTAINER_EPHEMERAL_OWNER);
    assert!(matches!(
        EphemeralType::of(owner("/a"), true),
        EphemeralType::Void
    ));
}

/// The core's foreign-leader role fed what a real ZooKeeper 3.8 leader sent an observer
/// (the recorded SNAP, the sync's PROPOSAL/COMMIT pairs, the INFORMs after UPTODATE) through
/// [`to_core`] serves the same tree as the import's replica fed the same packets, after every
/// txn: the translation `zk-observe` will feed the core with.
#[test]
fn the_core_follows_a_recorded_leader_as_the_replica_does() {
    use super::quorum_packet::{Frame, PacketType, Payload, decode_stream};
    use ensemble_core::config::Config;
    use ensemble_core::{Event, LearnerType, Ready, Recovered, Server, ServerState};
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/quorum_packet");
    let bytes = std::fs::read(corpus.join("zk38-observer-sync-from-leader")).expect("captured");
    let (frames, used) = decode_stream(&bytes[1..], true).expect("decodes");
    assert_eq!(used, bytes.len() - 1, "whole packets");
    const LEADER: u64 = 1;
    const ME: u64 = 3;
    let mut members = std::collections::BTreeMap::new();
    members.insert(LEADER, LearnerType::Participant);
    members.insert(ME, LearnerType::Observer);
    let mut cfg = Config::new(ME, members);
    cfg.foreign_leader = true;
    let opts = cfg.tree_options();
    let mut core = Server::new(cfg, Recovered::default(), 0).expect("starts");
    let feed = |core: &mut Server, f| {
        let mut out = Ready::default();
        core.handle_ready(0, Event::Foreign(f), &mut out);
    };
    let mut epoch = 0;
    let mut zk: Option<ZkTree> = None;
    let mut proposals = std::collections::VecDeque::new();
    let mut snap_zxid = None;
    let mut applied = 0;
    for (_, frame) in frames {
        let p = match frame {
            Frame::Snapshot(db) => {
                let tree = ZkTree::from_snapshot(&db, snap_zxid.expect("after SNAP")).unwrap();
                feed(
                    &mut core,
                    to_core::synced(&tree, LEADER as i64, epoch, opts).expect("converts"),
                );
                assert_eq!(core.state(), ServerState::Observing);
                zk = Some(tree);
                continue;
            }
            Frame::Packet(p) => p,
        };
        let txn = match p.kind {
            PacketType::LeaderInfo => {
                epoch = p.zxid >> 32;
                continue;
            }
            PacketType::Snap => {
                snap_zxid = Some(p.zxid);
                continue;
            }
            PacketType::Proposal => {
                proposals.push_back(p);
                continue;
            }
            PacketType::Commit => proposals.pop_front().expect("its PROPOSAL"),
            PacketType::Inform => p,
            _ => continue,
        };
        let Ok(Payload::Txn(hdr, txn, _)) = txn.payload_of(true) else {
            panic!("{:?} of no txn", txn.kind);
        };
        let tree = zk.as_mut().expect("synced first");
        if hdr.zxid <= tree.last_zxid {
            continue;
        }
        tree.process(&hdr, &txn);
        feed(&mut core, to_core::txn(&hdr, txn));
        applied += 1;
        let want = migrate::to_ensemble_with(tree, opts, true).expect("converts");
        assert_eq!(core.tree().last_zxid().as_i64(), hdr.zxid);
        assert!(
            core.tree().to_snapshot() == want.to_snapshot(),
            "the trees differ after txn {:#x}",
            hdr.zxid
        );
    }
    assert!(applied >= 4, "{applied} txns");
    assert!(core.tree().exists("/multi") && !core.tree().exists("/through-observer/e"));
}

#[test]
fn the_cut_over_continues_the_replica_from_the_newest_zookeeper_log() {
    // A replica behind ZooKeeper's files (as an observer the leader never sent its last
    // INFORMs): the fixture's files up to log.34.
    let behind = std::env::temp_dir().join(format!("ensemble-zkfiles-{}-tail", std::process::id()));
    let _ = std::fs::remove_dir_all(&behind);
    std::fs::create_dir_all(&behind).unwrap();
    for f in [
        "snapshot.0.gz",
        "snapshot.18.gz",
        "snapshot.32.gz",
        "snapshot.58.gz",
        "log.1",
        "log.1a",
        "log.34",
    ] {
        std::fs::copy(fixture().join(f), behind.join(f)).unwrap();
    }
    let all = restore(&fixture(), &fixture()).unwrap().tree;
    let mut replica = restore(&behind, &behind).unwrap().tree;
    let base = replica.last_zxid;
    assert!(base < all.last_zxid, "{base:#x}");
    // The newest of the dirs given (the behind copy and the full one) continues it, each txn
    // digest-checked: the replica becomes ZooKeeper's whole tree.
    let dirs = [behind.clone(), fixture()];
    let x = log_tail::extend(&mut replica, &dirs).unwrap();
    assert_eq!(x.from, fixture());
    assert_eq!(x.last_zxid, all.last_zxid);
    assert_eq!(x.txns as i64, all.last_zxid - base);
    assert_eq!(replica.nodes, all.nodes);
    assert_eq!(replica.sessions, all.sessions);
    assert_eq!(replica.digest(), all.digest());
    // Nothing beyond it: nothing added.
    let x = log_tail::extend(&mut replica, &dirs).unwrap();
    assert_eq!((x.txns, x.last_zxid), (0, all.last_zxid));
    // A damaged log: an error naming it and its offset, the replica unchanged.
    let bad = scratch("tail-bad");
    let log = bad.join("log.5a");
    let mut b = std::fs::read(&log).unwrap();
    b[200] ^= 1;
    std::fs::write(&log, &b).unwrap();
    let mut replica = restore(&behind, &behind).unwrap().tree;
    let e = log_tail::extend(&mut replica, std::slice::from_ref(&bad))
        .unwrap_err()
        .to_string();
    assert!(e.contains("log.5a") && e.contains("offset"), "{e}");
    assert_eq!(replica.last_zxid, base);
    // Another history at the replica's zxid (a node the logs never made): refused, unchanged.
    let mut other = restore(&behind, &behind).unwrap().tree;
    let path = other
        .nodes
        .keys()
        .rfind(|p| p.as_str() != "/" && !p.starts_with("/zookeeper"))
        .cloned()
        .unwrap();
    let version = other.nodes[&path].stat.version + 1;
    let last = read_log(&behind.join("log.34"))
        .unwrap()
        .records
        .pop()
        .unwrap();
    assert_eq!(last.hdr.zxid, base);
    let other_txn = ResolvedTxn::SetData {
        path,
        data: Some(b"another history".to_vec()),
        version,
    };
    other.process(&last.hdr, &other_txn);
    let e = log_tail::extend(&mut other, std::slice::from_ref(&fixture()))
        .expect_err("a replica of another history was continued")
        .to_string();
    assert!(e.contains("not the replica's history"), "{e}");
    assert_eq!(other.last_zxid, base);
    // A directory without ZooKeeper logs is refused at start.
    let empty = behind.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(log_tail::check_dirs(&[empty]).is_err());
    assert!(log_tail::check_dirs(&[fixture()]).is_ok());
    let _ = std::fs::remove_dir_all(behind);
    let _ = std::fs::remove_dir_all(bad);
}
