//! Recovery streams the newest snapshot file into the tree (`snapshot_stream::load_tree`): the
//! file's data in 4 MiB pieces fed to the core's `SnapshotLoader`, never read whole. Same
//! rules as before: a file that fails its checksum, has bytes past its data, or passes its
//! checksum but does not load is not trusted, and recovery falls back to an older snapshot
//! naming the file and why; no snapshot trusted (when there are some) refuses to start.

use ensemble_core::tree::{DataTree, TreeOptions};
use ensemble_core::txn::Origin;
use ensemble_core::{RecoveredSnapshot, Txn, TxnOp, Zxid};
use ensemble_node::storage::compression::SnapshotCompression;
use ensemble_node::storage::snapshot::{SNAP_HEADER, write_snapshot, write_snapshot_with};
use ensemble_node::storage::snapshot_stream::LOAD_PIECE;
use ensemble_node::storage::{Storage, StorageOptions};
use ensemble_proto::proto::{Acl, CreateMode, CreateOp, Request};
use std::path::{Path, PathBuf};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ens-snaprec-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("data/version-2")).unwrap();
    d
}

fn opts(d: &Path) -> StorageOptions {
    StorageOptions {
        snap_dir: d.join("data/version-2"),
        log_dir: d.join("logs/version-2"),
        prealloc: 64 * 1024,
        force_sync: false,
        snap_retain: 3,
        compression: SnapshotCompression::None,
        tree: Some(tree_opts()),
    }
}

fn tree_opts() -> TreeOptions {
    TreeOptions {
        extended_types: true,
        ..TreeOptions::default()
    }
}

/// A tree of `n` znodes of `size` bytes under `/t` (with a TTL node, whose derived state
/// depends on the options), through `through`.
fn tree(n: u32, size: usize, tag: u8) -> DataTree {
    let mut t = DataTree::new(tree_opts());
    let mut zxid = Zxid::new(1, 0);
    let mut create = |t: &mut DataTree, path: String, data: Vec<u8>, mode: CreateMode| {
        zxid = zxid.next();
        let r = t.apply(&Txn {
            zxid,
            time: 1_700_000_000_000,
            session: 0,
            cxid: 0,
            origin: Origin::NONE,
            op: TxnOp::Write {
                request: Request::Create {
                    op: if mode == CreateMode::PersistentWithTtl {
                        CreateOp::Ttl
                    } else {
                        CreateOp::Create
                    },
                    path,
                    data,
                    acl: Acl::open_unsafe(),
                    mode,
                    ttl: if mode == CreateMode::PersistentWithTtl {
                        60_000
                    } else {
                        0
                    },
                },
                auth: vec![],
            },
        });
        assert!(r.reply.is_ok());
    };
    create(&mut t, "/t".into(), vec![], CreateMode::Persistent);
    create(
        &mut t,
        "/ttl".into(),
        vec![1],
        CreateMode::PersistentWithTtl,
    );
    for i in 0..n {
        let data = (0..size).map(|k| tag ^ (k as u8) ^ (i as u8)).collect();
        create(&mut t, format!("/t/n{i:05}"), data, CreateMode::Persistent);
    }
    t
}

fn loaded(d: &Path) -> (Zxid, DataTree, Vec<String>) {
    let o = Storage::open(opts(d), |_| {}).unwrap();
    let (z, snap) = o.recovered.snapshot.expect("a snapshot recovered");
    let RecoveredSnapshot::Tree(t) = snap else {
        panic!("the node hands the core a tree, not bytes");
    };
    o.storage.close().unwrap();
    (z, *t, o.warnings)
}

/// Plain and every compression: a tree larger than several pieces comes back node for node.
#[test]
fn every_method_loads_into_the_tree_in_pieces() {
    // ~10 MiB: the loader gets three pieces, records cut across their ends.
    let t = tree(2_500, 4_099, 7);
    let bytes = t.to_snapshot();
    assert!(bytes.len() > 2 * LOAD_PIECE);
    for method in SnapshotCompression::ALL {
        let d = tmpdir(&format!("m{method}"));
        write_snapshot_with(&d.join("data/version-2"), t.last_zxid(), &bytes, method).unwrap();
        let (z, got, warnings) = loaded(&d);
        assert_eq!(z, t.last_zxid(), "{method}");
        assert!(warnings.is_empty(), "{method}: {warnings:?}");
        assert!(got.to_snapshot() == bytes, "{method}: the same tree");
        assert_eq!(got.options(), tree_opts());
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// Each kind of damage to the newest file falls back to the older one, with the reason.
#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_older() {
    let old = tree(10, 100, 1);
    let new = tree(2_500, 4_099, 2);
    let new_bytes = new.to_snapshot();
    let name = format!("snapshot.{:x}", new.last_zxid().0);
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage, &str); 4] = [
        (
            "flip",
            |f| {
                let at = f.len() * 2 / 3;
                f[at] ^= 0x10
            },
            "checksum mismatch",
        ),
        ("trailing", |f| f.push(0), "header says"),
        (
            "cut",
            |f| {
                let n = f.len() - 5;
                f.truncate(n)
            },
            "header says",
        ),
        (
            // The checksum recomputed over damaged data: it passes, the tree does not load.
            "unloadable",
            |f| {
                // The tree's own header (its magic) overwritten.
                f[SNAP_HEADER..SNAP_HEADER + 8].fill(0xff);
                let sum = crc32fast::hash(&f[SNAP_HEADER..]);
                f[32..36].copy_from_slice(&sum.to_le_bytes());
            },
            "does not load",
        ),
    ];
    for (tag, damage, why) in damages {
        let d = tmpdir(tag);
        let dir = d.join("data/version-2");
        write_snapshot(&dir, old.last_zxid(), &old.to_snapshot()).unwrap();
        write_snapshot(&dir, new.last_zxid(), &new_bytes).unwrap();
        let mut f = std::fs::read(dir.join(&name)).unwrap();
        damage(&mut f);
        std::fs::write(dir.join(&name), &f).unwrap();
        let (z, got, warnings) = loaded(&d);
        assert_eq!(z, old.last_zxid(), "{tag}: the older snapshot");
        assert!(got.to_snapshot() == old.to_snapshot(), "{tag}");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&name) && w.contains(why) && w.contains("older snapshot")),
            "{tag}: {warnings:?}"
        );
        // With nothing to fall back on, the server refuses to start.
        std::fs::remove_file(dir.join(format!("snapshot.{:x}", old.last_zxid().0))).unwrap();
        let e = Storage::open(opts(&d), |_| {}).err().expect("refused");
        assert!(e.to_string().contains("passes its check"), "{tag}: {e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
