//! Snapshot compression (`zookeeper.snapshot.compression.method`): the setting from zoo.cfg
//! and -D flags, files named as ZooKeeper names them, streamed parts compressed, and recovery
//! reading any method whatever the setting is now.

use ensemble_core::Zxid;
use ensemble_node::config::{self, ConfigError};
use ensemble_node::storage::compression::SnapshotCompression;
use ensemble_node::storage::{Storage, StorageOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ens-snapz-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn opts(d: &Path, compression: SnapshotCompression) -> StorageOptions {
    StorageOptions {
        snap_dir: d.join("data/version-2"),
        log_dir: d.join("logs/version-2"),
        prealloc: 64 * 1024,
        force_sync: true,
        snap_retain: 3,
        compression,
        tree: None,
    }
}

fn snapshot_names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.join("data/version-2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snapshot"))
        .collect();
    v.sort();
    v
}

/// Compressible bytes that are not all alike (a tree's paths and stats look like this).
fn part(n: usize, seed: u8) -> Arc<Vec<u8>> {
    Arc::new((0..n).map(|i| seed ^ ((i / 7) % 61) as u8).collect())
}

/// Each method writes its streamed parts into `snapshot.<zxid>.<ext>`, smaller than the plain
/// file; a server set to any other method (or none) recovers it.
#[test]
fn each_method_writes_its_file_and_any_setting_reads_it() {
    for (i, method) in SnapshotCompression::ALL.into_iter().enumerate() {
        let d = tmpdir(&format!("m{i}"));
        let o = Storage::open(opts(&d, method), |_| {}).unwrap();
        let z = Zxid::new(1, 5);
        let parts = [part(1 << 20, 1), part(300_001, 2)];
        for (k, p) in parts.iter().enumerate() {
            o.storage.snapshot_part(z, k as u32, Arc::clone(p)).unwrap();
        }
        let tail = part(777, 3);
        o.storage.snapshot(z, 2, Arc::clone(&tail), false).unwrap();
        o.storage.close().unwrap();
        let name = match method.extension() {
            None => "snapshot.100000005".to_string(),
            Some(ext) => format!("snapshot.100000005.{ext}"),
        };
        assert_eq!(snapshot_names(&d), vec![name.clone()], "{method}");
        let size = std::fs::metadata(d.join("data/version-2").join(&name))
            .unwrap()
            .len();
        let whole: Vec<u8> = parts
            .iter()
            .chain([&tail])
            .flat_map(|p| p.iter().copied())
            .collect();
        if method != SnapshotCompression::None {
            assert!(size < whole.len() as u64 / 4, "{method}: {size} bytes");
        }
        let other = SnapshotCompression::ALL[(i + 1) % 4];
        let o = Storage::open(opts(&d, other), |_| {}).unwrap();
        let (rz, data) = o.recovered.snapshot.clone().expect("recovered");
        let data = data.to_bytes();
        assert_eq!(rz, z);
        assert!(data[..] == whole[..], "{method} read back under {other}");
        o.storage.close().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// A damaged compressed snapshot is not trusted: recovery falls back to the older one and
/// says which file and why; a leader's SNAP (reset) replaces every older file, whatever its
/// method.
#[test]
fn a_damaged_compressed_snapshot_falls_back_and_reset_replaces_all() {
    let d = tmpdir("damage");
    let o = Storage::open(opts(&d, SnapshotCompression::Gz), |_| {}).unwrap();
    let (z1, z2) = (Zxid::new(1, 1), Zxid::new(1, 2));
    o.storage.snapshot(z1, 0, part(50_000, 1), false).unwrap();
    o.storage.snapshot(z2, 0, part(50_000, 2), false).unwrap();
    o.storage.close().unwrap();
    let newest = d.join("data/version-2/snapshot.100000002.gz");
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&newest, &bytes).unwrap();

    let o = Storage::open(opts(&d, SnapshotCompression::Zstd), |_| {}).unwrap();
    assert_eq!(o.recovered.snapshot.as_ref().map(|(z, _)| *z), Some(z1));
    assert!(
        o.warnings
            .iter()
            .any(|w| w.contains("snapshot.100000002.gz") && w.contains("older snapshot")),
        "{:?}",
        o.warnings
    );
    // A SNAP from a leader: durable on return, the only snapshot left.
    let z9 = Zxid::new(2, 9);
    o.storage.snapshot(z9, 0, part(1000, 9), true).unwrap();
    assert_eq!(
        snapshot_names(&d),
        vec!["snapshot.200000009.zst".to_string()]
    );
    o.storage.close().unwrap();
    std::fs::remove_dir_all(&d).unwrap();
}

fn cfg(d: &Path, extra: &str) -> PathBuf {
    let p = d.join("zoo.cfg");
    std::fs::write(
        &p,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort=2181\n{extra}",
            d.display()
        ),
    )
    .unwrap();
    p
}

/// From zoo.cfg as ZooKeeper takes it (the key without `zookeeper.`), or from a -D flag; zoo.cfg
/// wins; a value that is no method is refused naming the line.
#[test]
fn the_setting_comes_from_zoo_cfg_or_flags() {
    let d = tmpdir("cfg");
    let no_env = |_: &str| None;
    let c = config::load_with_env(&cfg(&d, ""), &no_env).unwrap();
    assert_eq!(c.snapshot_compression, SnapshotCompression::None);
    let c = config::load_with_env(&cfg(&d, "snapshot.compression.method=gz\n"), &no_env).unwrap();
    assert_eq!(c.snapshot_compression, SnapshotCompression::Gz);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    let flags = |v: &'static str| move |k: &str| (k == "SERVER_JVMFLAGS").then(|| v.to_string());
    let p = cfg(&d, "");
    let c = config::load_with_env(&p, &flags("-Dzookeeper.snapshot.compression.method=snappy"))
        .unwrap();
    assert_eq!(c.snapshot_compression, SnapshotCompression::Snappy);
    let p = cfg(&d, "snapshot.compression.method=zstd\n");
    let c = config::load_with_env(&p, &flags("-Dzookeeper.snapshot.compression.method=snappy"))
        .unwrap();
    assert_eq!(c.snapshot_compression, SnapshotCompression::Zstd);

    let p = cfg(&d, "snapshot.compression.method=lz4\n");
    match config::load_with_env(&p, &no_env) {
        Err(e @ ConfigError::Line { line: 4, .. }) => {
            assert!(e.to_string().contains("lz4"), "{e}")
        }
        other => panic!("expected an error at line 4, got {other:?}"),
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// The bytes streamed out (the AdminServer's `snapshot`) are a snapshot file's: decoded from
/// memory, or read from a file holding them, for every method; damage is refused.
#[test]
fn encoded_snapshots_decode_from_memory_and_files() {
    use ensemble_node::storage::snapshot::{decode_snapshot, encode_snapshot, read_snapshot_file};
    let d = tmpdir("encode");
    let data = part(200_000, 4);
    for m in SnapshotCompression::ALL {
        let mut bytes = Vec::new();
        encode_snapshot(&mut bytes, Zxid::new(3, 7), &data, m).unwrap();
        assert_eq!(
            decode_snapshot(&bytes).unwrap(),
            (Zxid::new(3, 7), data.to_vec()),
            "{m}"
        );
        let f = d.join(format!("backup-{m}"));
        std::fs::write(&f, &bytes).unwrap();
        assert_eq!(read_snapshot_file(&f).unwrap().1, data.to_vec(), "{m}");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        assert!(decode_snapshot(&bytes).is_err(), "{m}: damage decoded");
    }
    std::fs::remove_dir_all(&d).unwrap();
}
