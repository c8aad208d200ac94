//! Path validation as ZooKeeper's PathUtils does it. SKELETON (being written).
/// PLACEHOLDER until path validation lands.
pub fn validate(_p: &str) -> Result<(), crate::proto::KeeperError> {
    Ok(())
}
