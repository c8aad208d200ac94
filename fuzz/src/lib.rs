//! Harnesses for the node's decoders and parsers (the core's live in `ensemble_core::fuzzing`).
pub mod node_harness;
