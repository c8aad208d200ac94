//! ensemble-node: the thin real-world shell around ensemble-core — sockets, files, clocks.

pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod fourlw;
pub mod jvmflags;
pub mod runtime;
pub mod settings;
pub mod storage;
