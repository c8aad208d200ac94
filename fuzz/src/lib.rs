//! Harnesses for the node's decoders and parsers and the simulator's scenario files (the core's live in `ensemble_testkit::fuzzing`).
pub mod node_harness;
pub mod sim_harness;
