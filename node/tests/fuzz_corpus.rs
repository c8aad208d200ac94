//! Replays every checked-in corpus file of the node's fuzz targets (`fuzz/corpus/<target>/`)
//! through the harness the fuzzer runs (`fuzz/src/node_harness.rs`, included here), so each CI
//! run re-checks every seed and every crash ever found. See fuzz/README.md.

#[path = "../../fuzz/src/node_harness.rs"]
mod node_harness;

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    files
}

fn replay(target: &str, harness: fn(&[u8])) {
    let files = corpus(target);
    for f in &files {
        let data = std::fs::read(f).expect("read corpus file");
        let r = std::panic::catch_unwind(|| harness(&data));
        if let Err(e) = r {
            std::panic::resume_unwind(Box::new(format!(
                "{}: {}",
                f.display(),
                e.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
                    .unwrap_or("panic")
            )));
        }
    }
    eprintln!("{target}: {} inputs replayed", files.len());
}

#[test]
fn peer_frame() {
    replay("peer_frame", node_harness::peer_frame);
}

#[test]
fn zoo_cfg() {
    replay("zoo_cfg", node_harness::zoo_cfg);
}

#[test]
fn txn_log() {
    replay("txn_log", node_harness::txn_log);
}

#[test]
fn snapshot_file() {
    replay("snapshot_file", node_harness::snapshot_file);
}

#[test]
fn zk_snapshot() {
    replay("zk_snapshot", node_harness::zk_snapshot);
}

#[test]
fn zk_txn_log() {
    replay("zk_txn_log", node_harness::zk_txn_log);
}

#[test]
fn quorum_packet() {
    replay("quorum_packet", node_harness::quorum_packet);
}

#[test]
fn zk_election() {
    replay("zk_election", node_harness::zk_election);
}
