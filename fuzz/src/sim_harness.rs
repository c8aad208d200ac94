//! Fuzz harness for scenario files (`scenarios/*.toml`): the simulator's parser, then a short
//! run of whatever parses. Used by the `scenario` target and included by
//! `sim/tests/fuzz_corpus.rs` (with `#[path]`), so it depends only on `ensemble_sim` and std.

use ensemble_sim::runner::{TraceMode, run_seed};

/// Longest virtual run per input: keeps one execution to milliseconds.
const MAX_RUN_MS: u64 = 3000;

/// `scenario::parse` on arbitrary text: an error must name the file; a scenario that parses
/// must run (shortened to a few virtual seconds) without the simulator panicking.
pub fn scenario(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut params = match ensemble_sim::scenario::parse(&text, "fuzz.toml") {
        Ok(p) => p,
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("fuzz.toml"),
                "error does not name the file: {msg}"
            );
            return;
        }
    };
    params.duration_ms = params.duration_ms.min(MAX_RUN_MS);
    params.fault_phase_ms = params.fault_phase_ms.min(params.duration_ms);
    params.clients.truncate(4);
    let _ = run_seed(1, Some(&params), None, TraceMode::Hash);
}
