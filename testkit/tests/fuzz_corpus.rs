//! Replays every checked-in corpus file of the core's fuzz targets (`fuzz/corpus/<target>/`)
//! through the same harness the fuzzer runs (`ensemble_testkit::fuzzing`), so each CI run
//! re-checks every seed and every crash ever found. See fuzz/README.md.

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
        // Name the input on failure: the panic message alone would not say which.
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
