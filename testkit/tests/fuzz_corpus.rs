//! Replays every checked-in corpus file of the core's fuzz targets (`fuzz/corpus/<target>/`)
//! through the same harness the fuzzer runs (`ensemble_testkit::fuzzing`), so each CI run
//! re-checks every seed and every crash ever found. See fuzz/README.md.

use ensemble_testkit::fuzzing::corpus;

fn replay(target: &str, harness: fn(&[u8])) {
    corpus::replay(&corpus::dir(target), harness);
}

#[test]
fn jute_request() {
    replay("jute_request", ensemble_testkit::fuzzing::jute_request);
}

#[test]
fn jute_reply() {
    replay("jute_reply", ensemble_testkit::fuzzing::jute_reply);
}

#[test]
fn tree_snapshot() {
    replay("tree_snapshot", ensemble_testkit::fuzzing::tree_snapshot);
}

#[test]
fn ensemble() {
    replay("ensemble", ensemble_testkit::fuzzing::ensemble);
}

/// The harness must reach the interesting states, or a quiet fuzzer proves nothing: the
/// fault-free seed elects a leader, connects clients and commits writes.
#[test]
fn ensemble_harness_gets_somewhere() {
    for observer in [false, true] {
        let st = ensemble_testkit::fuzzing::ensemble_run(&ensemble_testkit::fuzzing::calm_program(
            observer,
        ));
        eprintln!("{st:?}");
        assert!(st.epochs >= 1, "no leader established: {st:?}");
        // 3 sessions, 4 creates, 4 setDatas
        assert!(st.ok_replies >= 11, "clients not served: {st:?}");
        assert!(
            st.max_applied.counter() >= 11,
            "writes not committed: {st:?}"
        );
    }
}

/// Debugging aid: `ENSEMBLE_FUZZ_TRACE=path/to/input cargo test -p ensemble-testkit --test
/// fuzz_corpus trace -- --nocapture` prints every step, event and effect of one input.
#[test]
fn trace() {
    if let Some(p) = std::env::var_os("ENSEMBLE_FUZZ_TRACE") {
        let data = std::fs::read(&p).expect("input");
        ensemble_testkit::fuzzing::ensemble_trace(&data);
    }
}
