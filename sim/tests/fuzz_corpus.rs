//! Replays every checked-in corpus file of the scenario fuzz target (`fuzz/corpus/<target>/`)
//! through the harness the fuzzer runs (`fuzz/src/sim_harness.rs`, included here), so each CI
//! run re-checks every seed and every crash ever found. The replay is the test kit's. See
//! fuzz/README.md.

#[path = "../../fuzz/src/sim_harness.rs"]
mod sim_harness;

use ensemble_testkit::fuzzing::corpus;

#[test]
fn scenario() {
    corpus::replay(&corpus::dir("scenario"), sim_harness::scenario);
}
