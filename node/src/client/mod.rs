//! An async ZooKeeper client over the jute codec (used by `ensemble cli` and the benchmark).
