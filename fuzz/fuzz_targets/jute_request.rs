//! See fuzz/README.md. The harness lives in `ensemble_testkit::fuzzing`, so that
//! `testkit/tests/fuzz_corpus.rs` replays this target's corpus under `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_testkit::fuzzing::jute_request(data));
