//! ensemble-node: the thin real-world shell around ensemble-core — sockets, files, clocks: the
//! runtime, storage, zoo.cfg, the daemon (`ensemble start|stop|status`) and the four-letter
//! words. The client library and `ensemble cli` are ensemble-client.

pub mod config;
pub mod daemon;
pub mod fourlw;
pub mod jaas;
pub mod jvmflags;
pub mod runtime;
pub mod sasl;
pub mod settings;
pub mod storage;
