//! ACL checks and the digest scheme. SKELETON (being written).
