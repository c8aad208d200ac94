//! Replays every checked-in corpus file of the node's fuzz targets (`fuzz/corpus/<target>/`)
//! through the harness the fuzzer runs (`fuzz/src/node_harness.rs`, included here), so each CI
//! run re-checks every seed and every crash ever found. See fuzz/README.md.

#[path = "../../fuzz/src/node_harness.rs"]
mod node_harness;

use ensemble_testkit::fuzzing::corpus;

/// Every input of `target`'s corpus through its harness (the kit's replay names a failing one).
fn replay(target: &str, harness: fn(&[u8])) {
    corpus::replay(&corpus::dir(target), harness);
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
