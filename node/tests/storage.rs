//! The txn log, snapshots and epochs: group commit, recovery, torn tails, corruption, reset,
//! truncation and purge.

use ensemble_core::txn::Origin;
use ensemble_core::{Epochs, Txn, TxnOp, Zxid};
use ensemble_node::storage::log::LogEvent;
use ensemble_node::storage::{Opened, Storage, StorageError, StorageOptions};
use ensemble_proto::proto::{Acl, CreateMode, CreateOp, Request};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ens-sto-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn opts(d: &Path) -> StorageOptions {
    StorageOptions {
        snap_dir: d.join("data/version-2"),
        log_dir: d.join("logs/version-2"),
        prealloc: 64 * 1024,
        force_sync: true,
        snap_retain: 3,
        compression: Default::default(),
        tree: None,
    }
}

fn txn(epoch: u32, n: u32) -> Arc<Txn> {
    Arc::new(Txn {
        zxid: Zxid::new(epoch, n),
        time: 1_700_000_000_000 + n as i64,
        session: 0x1000 + n as i64,
        cxid: n as i32,
        origin: Origin::NONE,
        op: TxnOp::Write {
            request: Request::Create {
                op: CreateOp::Create,
                path: format!("/node{n}"),
                data: vec![n as u8; (n % 50) as usize],
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl: 0,
            },
            auth: vec![],
        },
    })
}

type Events = Arc<Mutex<Vec<LogEvent>>>;

fn open(d: &Path) -> (Opened, Events) {
    let ev: Events = Arc::default();
    let e2 = ev.clone();
    let o = Storage::open(opts(d), move |e| e2.lock().unwrap().push(e)).unwrap();
    (o, ev)
}

fn zxids(txns: &[Txn]) -> Vec<u64> {
    txns.iter().map(|t| t.zxid.0).collect()
}

fn log_files(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d.join("logs/version-2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("log."))
        .collect();
    v.sort();
    v
}

/// The names of the files in `d`'s dataDir that start "snapshot" (temporary ones too), sorted.
fn snapshot_files(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.join("data/version-2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snapshot"))
        .collect();
    v.sort();
    v
}

/// A snapshot part of `n` bytes, told apart from others by `seed`.
fn part(n: usize, seed: u8) -> Arc<Vec<u8>> {
    Arc::new((0..n).map(|i| seed ^ i as u8).collect())
}

/// `parts` then `last`, as one snapshot's bytes.
fn joined(parts: &[Arc<Vec<u8>>], last: &Arc<Vec<u8>>) -> Vec<u8> {
    parts
        .iter()
        .chain([last])
        .flat_map(|p| p.iter().copied())
        .collect()
}

#[test]
fn group_commit_and_recovery() {
    let d = tmpdir("group");
    let (o, ev) = open(&d);
    assert!(o.recovered.log.is_empty() && o.recovered.snapshot.is_none());
    let s = o.storage;
    for n in 1..=1000 {
        s.append(vec![txn(1, n)]).unwrap();
    }
    s.sync().unwrap();
    let events = ev.lock().unwrap().clone();
    assert_eq!(
        events.last(),
        Some(&LogEvent::Persisted(Zxid::new(1, 1000)))
    );
    // Persisted only grows, and many appends share one fsync.
    let mut prev = Zxid::ZERO;
    for e in &events {
        let LogEvent::Persisted(z) = e else {
            panic!("{e:?}")
        };
        assert!(*z > prev);
        prev = *z;
    }
    eprintln!("1000 appends, {} fsyncs", events.len());
    assert!(events.len() < 1000);
    s.close().unwrap();

    let (o, _) = open(&d);
    assert_eq!(o.recovered.log.len(), 1000);
    assert_eq!(o.recovered.log[999], *txn(1, 1000));
    // Appends after a restart continue the same file.
    o.storage.append(vec![txn(1, 1001), txn(1, 1002)]).unwrap();
    o.storage.close().unwrap();
    let (o, _) = open(&d);
    assert_eq!(o.recovered.log.len(), 1002);
    assert_eq!(log_files(&d).len(), 1);
    o.storage.close().unwrap();
}

fn append_all(s: &Storage, range: std::ops::RangeInclusive<u32>) {
    for n in range {
        s.append(vec![txn(1, n)]).unwrap();
    }
    s.sync().unwrap();
}

#[test]
fn torn_tail_is_truncated() {
    let d = tmpdir("torn");
    let (o, _) = open(&d);
    append_all(&o.storage, 1..=10);
    o.storage.close().unwrap();
    let f = &log_files(&d)[0];
    // Cut the last record in half: find its end by recovering, then zero part of it.
    let bytes = std::fs::read(f).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    let mut cut = bytes.clone();
    for b in &mut cut[end - 5..end] {
        *b = 0;
    }
    // ...and leave a few garbage bytes of a half-written next record after it.
    cut[end + 3] = 0x7f;
    std::fs::write(f, &cut).unwrap();

    let (o, _) = open(&d);
    assert_eq!(
        zxids(&o.recovered.log),
        zxids(&(1..=9).map(|n| Txn::clone(&txn(1, n))).collect::<Vec<_>>())
    );
    assert!(
        o.warnings.iter().any(|w| w.contains("torn tail")),
        "{:?}",
        o.warnings
    );
    append_all(&o.storage, 10..=12);
    o.storage.close().unwrap();
    let (o, _) = open(&d);
    assert_eq!(o.recovered.log.len(), 12);
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    o.storage.close().unwrap();
}

#[test]
fn a_version_1_log_still_reads_and_appends_go_on_in_a_new_file() {
    use ensemble_node::storage::log::{HEADER_LEN, place_record};
    let d = tmpdir("v1");
    let (o, _) = open(&d);
    append_all(&o.storage, 1..=10);
    o.storage.close().unwrap();
    // Made what an earlier build wrote: format version 1, sums without the record's offset.
    let f = &log_files(&d)[0];
    let mut bytes = std::fs::read(f).unwrap();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let mut pos = HEADER_LEN;
    loop {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        place_record(&mut bytes[pos..], pos as u64, 0);
        pos += 8 + len;
    }
    std::fs::write(f, &bytes).unwrap();

    let (o, _) = open(&d);
    assert_eq!(o.recovered.log.len(), 10);
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    append_all(&o.storage, 11..=12);
    o.storage.close().unwrap();
    let files = log_files(&d);
    assert_eq!(
        files.len(),
        2,
        "version-2 records go to a new file: {files:?}"
    );
    assert_eq!(std::fs::read(&files[1]).unwrap()[8], 2);
    let (o, _) = open(&d);
    assert_eq!(
        zxids(&o.recovered.log),
        zxids(&(1..=12).map(|n| Txn::clone(&txn(1, n))).collect::<Vec<_>>())
    );
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    o.storage.close().unwrap();
}

#[test]
fn corruption_before_the_tail_refuses_to_start() {
    let d = tmpdir("corrupt");
    let (o, _) = open(&d);
    append_all(&o.storage, 1..=10);
    o.storage.close().unwrap();
    let f = &log_files(&d)[0];
    let mut bytes = std::fs::read(f).unwrap();
    // Record 1 starts after the 16-byte header; flip a payload byte of record 2.
    let len1 = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let second = 16 + 8 + len1;
    bytes[second + 8 + 3] ^= 0xff;
    std::fs::write(f, &bytes).unwrap();
    match Storage::open(opts(&d), |_| {}) {
        Err(e @ StorageError::CorruptLog { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&f.display().to_string()), "{msg}");
            assert!(msg.contains(&format!("offset {second}")), "{msg}");
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("opened a corrupt log"),
    }
    // The file is untouched: the operator decides.
    assert_eq!(std::fs::read(f).unwrap(), bytes);
}

#[test]
fn snapshot_then_log() {
    let d = tmpdir("snap");
    let (o, _) = open(&d);
    append_all(&o.storage, 1..=5);
    o.storage
        .snapshot(Zxid::new(1, 5), 0, Arc::new(b"tree@5".to_vec()), false)
        .unwrap();
    append_all(&o.storage, 6..=9);
    o.storage.close().unwrap();
    assert_eq!(log_files(&d).len(), 2, "the log rolls at a snapshot");
    let (o, _) = open(&d);
    let (z, data) = o.recovered.snapshot.clone().unwrap();
    let data = data.to_bytes();
    assert_eq!(z, Zxid::new(1, 5));
    assert_eq!(&data[..], b"tree@5");
    assert_eq!(
        zxids(&o.recovered.log),
        (6..=9).map(|n| Zxid::new(1, n).0).collect::<Vec<_>>()
    );
    o.storage.close().unwrap();

    // A damaged newest snapshot: fall back to the older one (and the log still has it all).
    let (o, _) = open(&d);
    o.storage
        .snapshot(Zxid::new(1, 9), 0, Arc::new(b"tree@9".to_vec()), false)
        .unwrap();
    o.storage.close().unwrap();
    let p = d.join("data/version-2/snapshot.100000009");
    let mut b = std::fs::read(&p).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    std::fs::write(&p, b).unwrap();
    let (o, _) = open(&d);
    assert_eq!(o.recovered.snapshot.as_ref().unwrap().0, Zxid::new(1, 5));
    assert_eq!(o.recovered.log.len(), 4);
    assert!(
        o.warnings.iter().any(|w| w.contains("checksum")),
        "{:?}",
        o.warnings
    );
    o.storage.close().unwrap();
}

/// Recovery reads only the log files the newest snapshot does not cover (as ZooKeeper does):
/// an older file, even a damaged one, is not read, and the covered txns of the file the
/// snapshot falls in are not returned.
#[test]
fn recovery_reads_only_the_logs_after_the_snapshot() {
    let d = tmpdir("after-snap");
    let (o, _) = open(&d);
    append_all(&o.storage, 1..=5);
    o.storage
        .snapshot(Zxid::new(1, 3), 0, Arc::new(b"tree@3".to_vec()), false)
        .unwrap();
    append_all(&o.storage, 6..=9);
    o.storage
        .snapshot(Zxid::new(1, 7), 0, Arc::new(b"tree@7".to_vec()), false)
        .unwrap();
    append_all(&o.storage, 10..=12);
    o.storage.close().unwrap();
    let files = log_files(&d);
    assert_eq!(files.len(), 3, "{files:?}");
    // Damage the first file (txns 1..=5), which the snapshot at 7 covers wholly.
    let mut b = std::fs::read(&files[0]).unwrap();
    b[40] ^= 0xff;
    std::fs::write(&files[0], b).unwrap();
    let (o, _) = open(&d);
    assert_eq!(o.recovered.snapshot.as_ref().unwrap().0, Zxid::new(1, 7));
    assert_eq!(
        zxids(&o.recovered.log),
        (8..=12).map(|n| Zxid::new(1, n).0).collect::<Vec<_>>()
    );
    // Appends continue after the last logged txn.
    o.storage.append(vec![txn(1, 13)]).unwrap();
    o.storage.close().unwrap();
    let (o, _) = open(&d);
    assert_eq!(
        o.recovered.log.last().map(|t| t.zxid),
        Some(Zxid::new(1, 13))
    );
    o.storage.close().unwrap();
}

#[test]
fn reset_log_snapshot_replaces_everything() {
    let d = tmpdir("reset");
    let (o, _) = open(&d);
    append_all(&o.storage, 1..=20);
    o.storage
        .snapshot(Zxid::new(1, 10), 0, Arc::new(b"old".to_vec()), false)
        .unwrap();
    // A SNAP from a new leader at 2:5.
    o.storage
        .snapshot(Zxid::new(2, 5), 0, Arc::new(b"leader@2:5".to_vec()), true)
        .unwrap();
    o.storage.append(vec![txn(2, 6), txn(2, 7)]).unwrap();
    o.storage.close().unwrap();
    let (o, _) = open(&d);
    let (z, data) = o.recovered.snapshot.clone().unwrap();
    let data = data.to_bytes();
    assert_eq!((z, &data[..]), (Zxid::new(2, 5), &b"leader@2:5"[..]));
    assert_eq!(
        zxids(&o.recovered.log),
        vec![Zxid::new(2, 6).0, Zxid::new(2, 7).0]
    );
    o.storage.close().unwrap();
}

#[test]
fn truncate_drops_the_suffix() {
    let d = tmpdir("trunc");
    let (o, _) = open(&d);
    append_all(&o.storage, 1..=10);
    o.storage
        .snapshot(Zxid::new(1, 8), 0, Arc::new(b"s8".to_vec()), false)
        .unwrap();
    o.storage.flush_background().unwrap();
    append_all(&o.storage, 11..=12);
    o.storage.truncate(Zxid::new(1, 6)).unwrap();
    // The new leader's history continues in epoch 2.
    o.storage.append(vec![txn(2, 1)]).unwrap();
    o.storage.close().unwrap();
    let (o, _) = open(&d);
    assert!(
        o.recovered.snapshot.is_none(),
        "a snapshot past the truncation point is gone"
    );
    let mut want: Vec<u64> = (1..=6).map(|n| Zxid::new(1, n).0).collect();
    want.push(Zxid::new(2, 1).0);
    assert_eq!(zxids(&o.recovered.log), want);
    o.storage.close().unwrap();
}

#[test]
fn out_of_order_append_fails_the_log() {
    let d = tmpdir("order");
    let (o, ev) = open(&d);
    append_all(&o.storage, 1..=3);
    o.storage.append(vec![txn(1, 2)]).unwrap();
    assert!(o.storage.sync().is_err());
    assert!(
        ev.lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, LogEvent::Failed(_)))
    );
}

#[test]
fn purge_keeps_retained_snapshots_and_their_logs() {
    let d = tmpdir("purge");
    let (o, _) = open(&d);
    for k in 0..5u32 {
        append_all(&o.storage, k * 10 + 1..=k * 10 + 10);
        o.storage
            .snapshot(Zxid::new(1, k * 10 + 5), 0, Arc::new(vec![k as u8]), false)
            .unwrap();
    }
    append_all(&o.storage, 51..=52);
    o.storage.flush_background().unwrap();
    assert_eq!(log_files(&d).len(), 6);
    o.storage.purge().unwrap();
    o.storage.flush_background().unwrap();
    o.storage.sync().unwrap();
    let snaps = snapshot_files(&d);
    assert_eq!(
        snaps,
        vec![
            "snapshot.100000019",
            "snapshot.100000023",
            "snapshot.10000002d"
        ]
    );
    // Oldest kept snapshot is 1:25, in the file that starts at 1:21; files before it go.
    let names: Vec<String> = log_files(&d)
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(names.first().map(String::as_str), Some("log.100000015"));
    o.storage.close().unwrap();
    let (o, _) = open(&d);
    assert_eq!(o.recovered.snapshot.as_ref().unwrap().0, Zxid::new(1, 45));
    assert_eq!(o.recovered.log.len(), 7);
    o.storage.close().unwrap();
}

#[test]
fn epochs_survive_restart() {
    let d = tmpdir("epochs");
    let (mut o, _) = open(&d);
    assert_eq!(o.recovered.epochs, Epochs::default());
    let e = Epochs {
        accepted_epoch: 5,
        accepted_from: 3,
        current_epoch: 4,
    };
    o.storage.persist_epochs(e).unwrap();
    o.storage.close().unwrap();
    // the number on the first line, as ZooKeeper reads it; then the last zxid handed to the
    // log (the history the epoch vouches for), then the file's checksum
    let current = std::fs::read_to_string(d.join("data/version-2/currentEpoch")).unwrap();
    assert!(current.starts_with("4\n0x0\n#crc32 "), "{current:?}");
    let (o, _) = open(&d);
    assert_eq!(o.recovered.epochs, e);
    o.storage.close().unwrap();
    std::fs::write(d.join("data/version-2/acceptedEpoch"), "five\n").unwrap();
    assert!(Storage::open(opts(&d), |_| {}).is_err());
}

/// Snapshot files go through direct I/O in whole blocks, the tail padded and cut back: every
/// length around the block and chunk sizes reads back exactly, and the file is no longer.
#[test]
fn snapshot_files_of_every_size_read_back() {
    use ensemble_node::storage::snapshot::{SNAP_HEADER, read_snapshot, write_snapshot};
    let d = tmpdir("snap-sizes");
    let sizes = [
        0,
        1,
        4096 - SNAP_HEADER,
        4096 - SNAP_HEADER + 1,
        (1 << 20) - SNAP_HEADER,
        (1 << 20) - SNAP_HEADER + 1,
        (1 << 20) + 4095,
        3 * (1 << 20) + 17,
    ];
    for (i, &len) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..len).map(|j| (j * 31 + i * 7) as u8).collect();
        let zxid = Zxid(i as u64 + 1);
        let path = write_snapshot(&d, zxid, &data).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            (SNAP_HEADER + len) as u64,
            "file length for {len} bytes"
        );
        assert_eq!(read_snapshot(&path, zxid).unwrap(), data, "{len} bytes");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A snapshot handed over in parts is written as they come: the file holds them all in order.
/// One whose parts did not all come in order is not written (no file, no temporary left),
/// and one abandoned half way (the leader's SNAP replaced the tree) leaves nothing either.
#[test]
fn snapshot_parts_are_streamed_into_one_file() {
    let d = tmpdir("snap-parts");
    let (o, _) = open(&d);
    append_all(&o.storage, 1..=9);
    let parts = [part(1 << 20, 1), part(700_001, 2), part(3 << 20, 3)];
    let z5 = Zxid::new(1, 5);
    for (i, p) in parts.iter().enumerate() {
        o.storage
            .snapshot_part(z5, i as u32, Arc::clone(p))
            .unwrap();
    }
    let tail = part(12_345, 4);
    o.storage.snapshot(z5, 3, Arc::clone(&tail), false).unwrap();
    // Parts out of order: this snapshot is lost, and the older one stays the newest.
    let z7 = Zxid::new(1, 7);
    o.storage.snapshot_part(z7, 0, part(10, 5)).unwrap();
    o.storage.snapshot_part(z7, 2, part(10, 6)).unwrap();
    o.storage.snapshot(z7, 3, part(10, 7), false).unwrap();
    // Begun and never ended.
    o.storage
        .snapshot_part(Zxid::new(1, 8), 0, part(5000, 8))
        .unwrap();
    o.storage.close().unwrap();
    assert_eq!(snapshot_files(&d), vec!["snapshot.100000005".to_string()]);
    let (o, _) = open(&d);
    let (z, data) = o.recovered.snapshot.clone().unwrap();
    let data = data.to_bytes();
    assert_eq!(z, z5);
    assert!(data[..] == joined(&parts, &tail)[..], "the parts, in order");
    o.storage.close().unwrap();
    std::fs::remove_dir_all(&d).unwrap();
}

/// A leader's SNAP taken in parts: each part is written as it comes, and the `reset_log`
/// snapshot that ends them makes them, with its last bytes, the one snapshot on disk (durable
/// on return, the log reset after it). One a part short fails the write (the server stops)
/// and leaves the old state; one cut half way (a new leader) and a crash before its end leave
/// nothing of it.
#[test]
fn a_leaders_snap_in_parts_replaces_everything_when_whole() {
    let d = tmpdir("snap-reset-parts");
    let (o, _) = open(&d);
    append_all(&o.storage, 1..=20);
    // Our own snapshot half written when the SNAP begins: its parts are dropped.
    o.storage
        .snapshot_part(Zxid::new(1, 12), 0, part(300, 9))
        .unwrap();
    let z = Zxid::new(2, 5);
    // A first stream of the same SNAP cut after two parts (the leader's connection broke),
    // then the whole of it again: the second must not lose its file to the first's cleanup.
    o.storage.snapshot_part(z, 0, part(4 << 20, 1)).unwrap();
    o.storage.snapshot_part(z, 1, part(4 << 20, 2)).unwrap();
    let parts = [part(4 << 20, 1), part(4 << 20, 2), part(1000, 3)];
    for (i, p) in parts.iter().enumerate() {
        o.storage.snapshot_part(z, i as u32, Arc::clone(p)).unwrap();
    }
    let last = part(77, 4);
    o.storage.snapshot(z, 3, Arc::clone(&last), true).unwrap();
    o.storage.append(vec![txn(2, 6)]).unwrap();
    // A later SNAP a part short is refused: the write fails.
    let z2 = Zxid::new(3, 1);
    o.storage.snapshot_part(z2, 0, part(10, 5)).unwrap();
    assert!(o.storage.snapshot(z2, 2, part(10, 6), true).is_err());
    // One cut (parts, then no end) and the store closed as a crash would leave it.
    o.storage
        .snapshot_part(Zxid::new(3, 2), 0, part(5000, 7))
        .unwrap();
    o.storage.close().unwrap();
    assert_eq!(snapshot_files(&d), vec!["snapshot.200000005".to_string()]);
    let (o, _) = open(&d);
    let (rz, data) = o.recovered.snapshot.clone().unwrap();
    let data = data.to_bytes();
    assert_eq!(rz, z);
    assert!(
        data[..] == joined(&parts, &last)[..],
        "the parts and the last bytes, in order"
    );
    assert_eq!(zxids(&o.recovered.log), vec![Zxid::new(2, 6).0]);
    o.storage.close().unwrap();
    std::fs::remove_dir_all(&d).unwrap();
}

/// A background snapshot that cannot be written is reported to the core loop, which stops the
/// server (ZooKeeper's takeSnapshot exits on an IOException): the core already counts it as on
/// disk, and a leader's SNAP would otherwise wait for a file that never comes.
#[test]
fn a_failed_background_snapshot_is_reported_as_fatal() {
    let d = tmpdir("snapfail");
    let (o, ev) = open(&d);
    let z = Zxid::new(1, 5);
    // Its temporary's name taken by a directory: creating the file fails, as a full or
    // read-only disk would make it.
    let tmp = d.join("data/version-2/snapshot.100000005.tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    o.storage
        .snapshot(z, 0, Arc::new(b"tree@5".to_vec()), false)
        .unwrap();
    o.storage.flush_background().unwrap();
    let events = ev.lock().unwrap();
    let failed: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            LogEvent::SnapshotFailed(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert!(
        failed[0].contains("snapshot at") && failed[0].contains("snapshot.100000005"),
        "{}",
        failed[0]
    );
    drop(events);
    o.storage.close().unwrap();
    std::fs::remove_dir_all(&d).unwrap();
}
