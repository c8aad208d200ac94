//! Byte-level helpers shared by the log and snapshot files (the formats' own, in
//! `ensemble-storage`), and fsync of directories.

pub use ensemble_storage::codec::{
    MAX_RECORD, crc, txn_encode_options, txn_options, u32_at, u64_at, zxid_of_name,
};
use std::fs::File;
use std::io;
use std::path::Path;

/// Make a directory entry change (create, rename, unlink) durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
