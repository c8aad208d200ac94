//! Path validation as ZooKeeper's PathUtils does it. SKELETON (being written).
