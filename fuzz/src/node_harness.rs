//! Fuzz harnesses for the node's decoders and parsers: the peer framing, `zoo.cfg`, and the
//! recovery of txn logs, snapshots and epoch files from arbitrary bytes on disk.
//!
//! Used by the cargo-fuzz targets (through `ensemble_fuzz::node_harness`) and by
//! `node/tests/fuzz_corpus.rs` (which includes this file with `#[path]`), so it depends only on
//! what the node's tests have: `ensemble_core`, `ensemble_node` and std. Each function panics
//! only on a real bug.

use ensemble_core::tree::DataTree;
use ensemble_core::{Ready, Recovered, RecoveredSnapshot, Server, Zxid};
use ensemble_node::runtime::wire::{self, Channel};
use ensemble_node::storage::{StorageError, epochs, log, snapshot};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh scratch directory (tmpfs when there is one: the file targets write on every run).
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("ensemble-fuzz-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- peer framing ----

/// The byte stream of one inbound peer connection, read the way `runtime::peers` reads it:
/// the 16-byte hello and the dialler's address after it (u16 length, text), then
/// `[u32 len][bincode PeerMsg]` frames. The first input byte picks the
/// channel and whether a hello comes first. Every message that decodes must re-encode to bytes
/// that decode to the same message.
pub fn peer_frame(data: &[u8]) {
    let Some((flags, mut rest)) = data.split_first() else {
        return;
    };
    let channel = if flags & 1 == 0 {
        Channel::Election
    } else {
        Channel::Quorum
    };
    if flags & 2 != 0 {
        let Some((hello, r)) = rest.split_first_chunk::<{ wire::HELLO_LEN }>() else {
            return;
        };
        if wire::parse_hello(wire::HELLO_MAGIC, hello).is_err() {
            return;
        }
        let Some((len, r)) = r.split_first_chunk::<2>() else {
            return;
        };
        let Ok(len) = wire::hello_addr_len(*len) else {
            return; // the node drops the connection
        };
        if r.len() < len {
            return;
        }
        rest = &r[len..];
    }
    while let Some((len, r)) = rest.split_first_chunk::<4>() {
        let Ok(len) = wire::check_len(u32::from_be_bytes(*len)) else {
            return; // the node drops the connection
        };
        if r.len() < len {
            return; // cut short: the node drops the connection
        }
        let (body, r) = r.split_at(len);
        rest = r;
        let Ok(msg) = wire::decode_body(body, channel) else {
            return;
        };
        let mut out = Vec::new();
        wire::encode_frame(&msg, &mut out).expect("a decoded message encodes");
        let again = wire::decode_body(&out[4..], channel).expect("own frame decodes");
        assert_eq!(again, msg, "peer message roundtrip");
    }
}

// ---- zoo.cfg ----

/// `config::parse` on arbitrary text. The first byte decides what `dataDir/myid` holds (none,
/// 1..4, or garbage); the text's `@DATA@` stands for that scratch dataDir, so seeds can reach
/// the whole parser. A config that parses must be one the core runs with.
pub fn zoo_cfg(data: &[u8]) {
    let Some((myid, text)) = data.split_first() else {
        return;
    };
    let dir = Scratch::new("cfg");
    match myid % 8 {
        0 => {}
        n @ 1..=4 => std::fs::write(dir.0.join("myid"), format!("{n}\n")).expect("myid"),
        5 => std::fs::write(dir.0.join("myid"), "x").expect("myid"),
        6 => std::fs::write(dir.0.join("myid"), "18446744073709551615").expect("myid"),
        _ => std::fs::write(dir.0.join("myid"), "0").expect("myid"),
    }
    let text = String::from_utf8_lossy(text).replace("@DATA@", &dir.0.to_string_lossy());
    let path = dir.0.join("zoo.cfg");
    let cfg = match ensemble_node::config::parse(&path, &text) {
        Ok(cfg) => cfg,
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&*path.to_string_lossy()),
                "a config error does not name the file: {msg}"
            );
            return;
        }
    };
    let core = &cfg.core;
    assert!(core.tick_time_ms > 0, "tickTime 0 accepted");
    assert!(
        core.min_session_timeout_ms <= core.max_session_timeout_ms,
        "session timeout bounds inverted"
    );
    assert!(
        core.members.contains_key(&core.my_id),
        "myid {} is not a member",
        core.my_id
    );
    assert!(core.voters().count() > 0, "no voter");
    // The core must take whatever the parser accepts.
    let now = 1_700_000_000_000;
    let mut s = match Server::new(core.clone(), Recovered::default(), now) {
        Ok(s) => s,
        Err(e) => panic!("the core refuses a parsed config: {e}"),
    };
    let mut ready = Ready::new();
    for i in 1..=3 {
        s.handle_ready(
            now + i * s.tick_interval(),
            ensemble_core::Event::Tick,
            &mut ready,
        );
    }
}

// ---- files on disk ----

/// Does an error say which file it is about?
fn assert_names(e: &StorageError, dir: &Path) {
    let msg = e.to_string();
    assert!(
        msg.contains(&*dir.to_string_lossy()),
        "a storage error does not name the file: {msg}"
    );
}

/// Recompute the checksum of every record whose length fits, so the fuzzer's bytes get past
/// the CRC to the record decoder.
fn fix_log_crcs(buf: &mut [u8]) {
    let mut pos = log::HEADER_LEN;
    while pos + 8 <= buf.len() {
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        if len == 0 || pos + 8 + len > buf.len() {
            return;
        }
        // a record's sum names its offset (format version 2)
        let sum = ensemble_node::storage::codec::crc(&buf[pos + 8..pos + 8 + len]) ^ pos as u32;
        buf[pos + 4..pos + 8].copy_from_slice(&sum.to_le_bytes());
        pos += 8 + len;
    }
}

/// Recovery of the txn log from an arbitrary file. First byte: bit 0 fixes record checksums,
/// bit 1 writes a valid file header first, bit 2 adds a later (empty, valid) log file, bit 3
/// an earlier one. Recovery either names the bad file in its error or returns txns in zxid
/// order that the core accepts; and a second recovery finds exactly what the first left.
pub fn txn_log(data: &[u8]) {
    let Some((flags, body)) = data.split_first() else {
        return;
    };
    let dir = Scratch::new("log");
    let mut buf = Vec::with_capacity(body.len() + 16);
    if flags & 2 != 0 {
        buf.extend_from_slice(log::LOG_MAGIC);
        buf.extend_from_slice(&log::LOG_VERSION.to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
    }
    buf.extend_from_slice(body);
    if flags & 1 != 0 {
        fix_log_crcs(&mut buf);
    }
    let mut header = Vec::new();
    header.extend_from_slice(log::LOG_MAGIC);
    header.extend_from_slice(&log::LOG_VERSION.to_le_bytes());
    header.extend_from_slice(&[0; 4]);
    let first = Zxid(0x1_0000_0001);
    std::fs::write(dir.0.join(log::log_file_name(first)), &buf).expect("write log");
    if flags & 4 != 0 {
        std::fs::write(dir.0.join(log::log_file_name(Zxid(0x7_0000_0001))), &header)
            .expect("write log");
    }
    if flags & 8 != 0 {
        std::fs::write(dir.0.join(log::log_file_name(Zxid(1))), &header).expect("write log");
    }
    let rec = match log::recover(&dir.0) {
        Ok(rec) => rec,
        Err(e) => {
            assert_names(&e, &dir.0);
            return;
        }
    };
    assert!(
        rec.txns.windows(2).all(|w| w[0].zxid < w[1].zxid),
        "recovered log out of zxid order"
    );
    // Recovery repaired any torn tail: doing it again finds the same txns and nothing to fix.
    let again = match log::recover(&dir.0) {
        Ok(r) => r,
        Err(e) => panic!("recovery is not idempotent: second pass fails: {e}"),
    };
    assert_eq!(again.txns, rec.txns, "second recovery differs");
    assert!(
        again.warnings.is_empty(),
        "second recovery still repairs: {:?}",
        again.warnings
    );
    let recovered = Recovered {
        log: rec.txns,
        ..Recovered::default()
    };
    start_core(recovered);
}

/// The configuration the harness's servers run.
fn core_config() -> ensemble_core::Config {
    let mut members = std::collections::BTreeMap::new();
    for id in 1..=3 {
        members.insert(id, ensemble_core::LearnerType::Participant);
    }
    ensemble_core::Config::new(1, members)
}

/// A server over what recovery found must start (or refuse with an error), never panic.
fn start_core(recovered: Recovered) {
    let cfg = core_config();
    let now = 1_700_000_000_000;
    if let Ok(mut s) = Server::new(cfg, recovered, now) {
        s.handle_ready(now + 1, ensemble_core::Event::Tick, &mut Ready::new());
    }
}

/// Recovery of snapshot and epoch files from arbitrary bytes, in the order `Storage::open`
/// does it. First byte: bit 0 writes a valid header for the rest (magic, version, zxid, length,
/// checksum), so the fuzzer's bytes reach the tree decoder; bit 1 writes the first 24 bytes of
/// the rest as `acceptedEpoch` and bit 2 as `currentEpoch`; bit 3 adds an older valid snapshot
/// to fall back on.
pub fn snapshot_file(data: &[u8]) {
    let Some((flags, body)) = data.split_first() else {
        return;
    };
    let dir = Scratch::new("snap");
    let zxid = Zxid(0x2_0000_0005);
    let file = if flags & 1 != 0 {
        let mut h = Vec::with_capacity(snapshot::SNAP_HEADER + body.len());
        h.extend_from_slice(snapshot::SNAP_MAGIC);
        h.extend_from_slice(&snapshot::SNAP_VERSION.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&zxid.0.to_le_bytes());
        h.extend_from_slice(&(body.len() as u64).to_le_bytes());
        h.extend_from_slice(&ensemble_node::storage::codec::crc(body).to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(body);
        h
    } else {
        body.to_vec()
    };
    std::fs::write(dir.0.join(snapshot::snapshot_file_name(zxid)), &file).expect("write");
    let epoch_text = &body[..body.len().min(24)];
    if flags & 2 != 0 {
        std::fs::write(dir.0.join(epochs::ACCEPTED), epoch_text).expect("write");
    }
    if flags & 4 != 0 {
        std::fs::write(dir.0.join(epochs::CURRENT), epoch_text).expect("write");
    }
    if flags & 8 != 0 {
        let empty = ensemble_core::tree::DataTree::new(ensemble_core::tree::TreeOptions {
            extended_types: true,
            auth_providers: Default::default(),
            plant: None,
        });
        snapshot::write_snapshot(&dir.0, Zxid(0), &empty.to_snapshot()).expect("write");
    }
    if flags & 16 != 0 {
        std::fs::write(dir.0.join("snapshot.1.tmp"), body).expect("write");
    }

    if let Err(e) = snapshot::remove_temporaries(&dir.0) {
        panic!("cannot remove temporaries: {e}");
    }
    let ep = match epochs::read_epochs(&dir.0) {
        Ok(e) => e,
        Err(e) => {
            assert_names(&e, &dir.0);
            return;
        }
    };
    let mut snap = None;
    let list = snapshot::list_snapshots(&dir.0).expect("list");
    let opts = core_config().tree_options();
    for (z, path) in list {
        // As Storage::open loads it: streamed into a tree; the whole-file reader agrees.
        let whole = snapshot::read_snapshot(&path, z);
        match ensemble_node::storage::snapshot_stream::load_tree(&path, opts) {
            Ok((lz, tree)) => {
                assert_eq!(lz, z);
                let bytes = whole.expect("a file that loads streamed reads whole");
                assert!(
                    bytes == tree.to_snapshot(),
                    "the streamed tree serialises to the file's data"
                );
                snap = Some((z, RecoveredSnapshot::Tree(Box::new(tree))));
                break;
            }
            Err(_) => {
                if let Ok(bytes) = whole {
                    // Checksum passes: only a snapshot whose data does not load (or holds
                    // another zxid's state) falls back.
                    assert!(
                        !DataTree::from_snapshot(&bytes, opts).is_ok_and(|t| t.last_zxid() == z)
                    );
                }
            }
        }
    }
    start_core(Recovered {
        epochs: ep,
        snapshot: snap,
        log: Vec::new(),
    });
}

/// Apache ZooKeeper's snapshot files (`ensemble import`): byte 0 bit 0 gzips the rest first
/// (the `.gz` path). What decodes re-encodes to a snapshot that decodes the same; a tree built
/// from it (or refused by name) comes back from its own snapshot with the same nodes and digest.
pub fn zk_snapshot(data: &[u8]) {
    use ensemble_node::zookeeper::{snapshot as zks, tree::ZkTree};
    use std::io::Write;
    let Some((flags, body)) = data.split_first() else {
        return;
    };
    let file = if flags & 1 != 0 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body).expect("gzip to memory");
        gz.finish().expect("gzip to memory")
    } else {
        body.to_vec()
    };
    let Ok(stream) = zks::decompress(&file) else {
        return;
    };
    let Ok(snap) = zks::decode(&stream) else {
        return;
    };
    let again = zks::decode(&zks::encode(&snap)).expect("an encoded snapshot decodes");
    assert_eq!(again, snap);
    let Ok(tree) = ZkTree::from_snapshot(&snap, 0) else {
        return;
    };
    let out = tree.to_snapshot(0);
    let back = ZkTree::from_snapshot(&zks::decode(&zks::encode(&out)).expect("decodes"), 0)
        .expect("a tree's own snapshot loads");
    assert_eq!(back.nodes, tree.nodes);
    assert_eq!(back.digest(), tree.digest());
}

/// Apache ZooKeeper's txn logs: byte 0 bit 0 feeds the rest as one log entry (header, txn,
/// digest: past the checksum a mutated file rarely gets by), else as a log file. Records come
/// back in zxid order at offsets inside the file; replaying them over an empty tree never
/// panics.
pub fn zk_txn_log(data: &[u8]) {
    use ensemble_node::zookeeper::{records, snapshot as zks, tree::ZkTree, txnlog};
    let Some((flags, body)) = data.split_first() else {
        return;
    };
    let mut tree = ZkTree::from_snapshot(
        &zks::ZkSnapshot {
            nodes: vec![zks::ZkNode {
                path: "/".into(),
                data: None,
                acl: zks::OPEN_ACL_INDEX,
                stat: Default::default(),
            }],
            ..Default::default()
        },
        0,
    )
    .expect("a root alone");
    if flags & 1 != 0 {
        if let Ok((hdr, txn, _)) = records::decode_txn_entry(body, 0) {
            tree.process(&hdr, &txn);
        }
        return;
    }
    let Ok(log) = txnlog::decode(body) else {
        return;
    };
    for w in log.records.windows(2) {
        assert!(w[0].hdr.zxid < w[1].hdr.zxid && w[0].offset < w[1].offset);
    }
    for r in &log.records {
        assert!((r.offset as usize) < body.len());
        tree.process(&r.hdr, &r.txn);
    }
}

/// `quorum_packet`: byte 0 bit 0 says the rest is what a ZooKeeper leader sent (a SNAP then
/// carries the database), else what a learner sent. Every packet decoded re-encodes to exactly
/// its bytes, and its payload decodes or is refused by offset, never a panic.
pub fn quorum_packet(data: &[u8]) {
    use ensemble_node::zookeeper::jute::OutputArchive;
    use ensemble_node::zookeeper::quorum_packet::{Frame, decode_stream};
    let Some((flags, body)) = data.split_first() else {
        return;
    };
    let from_leader = flags & 1 != 0;
    let Ok((frames, end)) = decode_stream(body, from_leader) else {
        return;
    };
    assert!(end <= body.len());
    for (range, frame) in frames {
        if let Frame::Packet(p) = frame {
            let mut o = OutputArchive::default();
            p.write(&mut o);
            assert_eq!(
                o.out,
                body[range].to_vec(),
                "{:?} re-encodes differently",
                p.kind
            );
            let _ = p.payload_of(from_leader);
        }
    }
}

/// `zk_election`: byte 0 bit 0: the rest opens an election connection (ZooKeeper's initial
/// message, then notifications), else it is notifications alone (a voter's answers).
pub fn zk_election(data: &[u8]) {
    use ensemble_node::zookeeper::election::{
        Notification, decode_notifications, initial_message, leader_of, parse_initial_message,
    };
    let Some((flags, mut body)) = data.split_first() else {
        return;
    };
    if flags & 1 != 0 {
        let Ok((sid, addrs, used)) = parse_initial_message(body) else {
            return;
        };
        assert!(used <= body.len());
        // one address in protocol version 1 re-encodes to its bytes
        if addrs.len() == 1 && body[..8] == (-65536i64).to_be_bytes() {
            assert_eq!(initial_message(sid, &addrs[0]), body[..used].to_vec());
        }
        body = &body[used..];
    }
    let (notes, used) = decode_notifications(body);
    assert!(used <= body.len());
    let mut answers = Vec::new();
    for (i, n) in notes.into_iter().enumerate() {
        let Ok(n) = n else { continue };
        // the 40-byte form (version 1, no configuration) is the one this side writes
        if n.version == 1 && n.config.is_empty() {
            let again = Notification::decode(&n.encode40()[4..]).expect("re-decodes");
            assert_eq!(again, n);
        }
        answers.push((i as i64 % 4, Ok(n)));
    }
    if let Some((leader, epoch)) = leader_of(&[1, 2, 3], &answers) {
        assert!(
            answers
                .iter()
                .any(|(sid, a)| *sid == leader && a.as_ref().is_ok_and(|n| n.peer_epoch == epoch))
        );
    }
}
