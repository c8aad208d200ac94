//! ACL checks and the digest scheme. SKELETON (being written).
/// PLACEHOLDER until the ACL module lands.
pub fn digest_id(s: &str) -> String {
    s.to_string()
}
