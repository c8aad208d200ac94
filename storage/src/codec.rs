//! Byte-level helpers shared by the log and snapshot files: the bincode options (with limits,
//! so a corrupt length can never make us allocate), checksums, little-endian fields, file names.

use bincode::Options;

/// The largest txn record we write or accept (a client frame is at most jute.maxbuffer, and a
/// txn carries one request plus a little).
pub const MAX_RECORD: u64 = 64 * 1024 * 1024;

/// The one bincode configuration used for reading txns, bounded.
pub fn txn_options() -> impl Options {
    txn_encode_options().with_limit(MAX_RECORD)
}

/// The same encoding without the limit, for writing: bincode checks a limit with a whole
/// sizing pass first, so writers check the length they produced instead.
pub fn txn_encode_options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
}

pub fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

pub fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    let b = buf.get(at..at + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

pub fn crc(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// `name.<hex zxid>` → zxid, as ZooKeeper names its files.
pub fn zxid_of_name(name: &str, prefix: &str) -> Option<u64> {
    let hex = name.strip_prefix(prefix)?.strip_prefix('.')?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}
