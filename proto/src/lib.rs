//! ensemble-proto: ZooKeeper's client wire protocol, shared by the server's core, the node
//! runtime and the client library.
//!
//! [`proto`] is the vocabulary as plain Rust values (requests, responses, errors, Stat, ACLs,
//! watch events; ZooKeeper's `org.apache.zookeeper.proto` records and `ZooDefs`); [`jute`] is its
//! byte encoding, both directions (ZooKeeper's `org.apache.jute`). Pure: no I/O, no state.

pub mod jute;
pub mod proto;
