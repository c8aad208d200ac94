//! The simulator's own checking: what it measures and refuses (issue 11, item 7).

use ensemble_sim::runner::{TraceMode, run_seed};

fn scenario(text: &str) -> ensemble_sim::params::Params {
    ensemble_sim::scenario::parse(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// A leader whose quorum side stalls keeps believing it leads (and keeps serving its clients)
/// while its followers time out and elect another: that time is leaderless. It used to count
/// as led, since the stalled server was still an established leader.
#[test]
fn a_stalled_leader_is_no_leader() {
    ensemble_sim::world::install_panic_hook();
    let p = scenario(
        r#"
name = "stalled-leader"
duration_ms = 40000
fault_phase_ms = 25000
[topology]
voters = 3
[timing]
tick_ms = 100
sync_limit = 5
init_limit = 10
[workload]
clients = [{ role = "random", count = 5 }]
[[fault]]
at_ms = 10000
action = "stall"
target = "leader"
ms = 8000
"#,
    );
    for seed in 0..3 {
        let r = run_seed(seed, Some(&p), None, TraceMode::Hash);
        assert!(r.violation.is_none(), "seed {seed}: {:?}", r.violation);
        // the followers need syncLimit ticks to notice, then an election
        assert!(
            r.stats.max_unavailable_ms >= 5 * 100,
            "seed {seed}: longest leaderless window {} ms with the leader stalled 8 s",
            r.stats.max_unavailable_ms
        );
    }
}
