//! The `ensemble` binary carries none of the simulator's planted bugs. Cargo unifies features
//! across everything one build sees, so a build that held the simulator too would compile the
//! core's `plants` feature into this binary; the simulator is therefore a cargo workspace of its
//! own (sim/), out of reach of any command run at the root. Were the feature turned on anyway
//! (`--features ensemble-core/plants`), the binary refuses to run and this test says why.

use std::process::Command;

#[test]
fn the_node_is_built_without_plants() {
    if ensemble_core::plant::COMPILED {
        panic!(
            "ensemble-core was built with `plants` in this build: the simulator's planted bugs \
             belong to its own workspace (cargo test --release --manifest-path sim/Cargo.toml); \
             build and test the node without them (cargo test --release --workspace)"
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
