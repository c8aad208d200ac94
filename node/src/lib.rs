//! ensemble-node: the thin real-world shell around ensemble-core — sockets, files, clocks: the
//! runtime, storage, zoo.cfg, the daemon (`ensemble start|stop|status`), the four-letter
//! words and the offline tools over a server's files (`tools`). The client library and `ensemble cli` are ensemble-client.

pub mod admin;
pub mod audit;
pub mod civil;
pub mod config;
pub mod daemon;
pub mod dynamic_config;
pub mod fourlw;
pub mod jaas;
pub mod jvmflags;
pub mod limits;
pub mod metrics;
pub mod runtime;
pub mod sasl;
pub mod settings;
pub mod storage;
pub mod tls;
pub mod tools;
pub mod zookeeper;
