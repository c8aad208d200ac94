//! The `ensemble` binary carries none of the simulator's planted bugs. Cargo unifies features
//! per build, so `cargo test --workspace` (which builds the simulator too) would compile the
//! core's `plants` feature into this binary; scripts/test.sh therefore tests the simulator in a
//! build of its own. Built that way, the binary refuses to run and this test says why.

use std::process::Command;

#[test]
fn the_node_is_built_without_plants() {
    if ensemble_core::plant::COMPILED {
        panic!(
            "ensemble-core was built with `plants` in this build: test the node apart from the \
             simulator (cargo test --release --workspace --exclude ensemble-sim)"
        );
    }
}

#[test]
fn the_binary_runs_and_has_no_plants() {
    let out = Command::new(env!("CARGO_BIN_EXE_ensemble"))
        .arg("--version")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("ensemble "), "{stdout}");
}
