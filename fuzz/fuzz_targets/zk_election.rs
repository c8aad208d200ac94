//! See fuzz/README.md. The harness lives in `fuzz/src/node_harness.rs`, which
//! `node/tests/fuzz_corpus.rs` includes to replay this target's corpus under `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::node_harness::zk_election(data));
