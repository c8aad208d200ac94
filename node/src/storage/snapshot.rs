//! Snapshot files `snapshot.<hex zxid>` under `dataDir/version-2/`: the bytes the core handed
//! over in `Effect::Snapshot`, behind a checksummed header. Written to a temporary name, synced,
//! then renamed, so a crash leaves either the old set of snapshots or the new one.
//!
//! Header (40 bytes): `ENSSNAP1`, format version u32, reserved u32, zxid u64, data length u64,
//! crc32 of the data u32, reserved u32.

use super::StorageError;
use super::codec::{crc, fsync_dir, u32_at, u64_at, zxid_of_name};
use ensemble_core::Zxid;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const SNAP_MAGIC: &[u8; 8] = b"ENSSNAP1";
pub const SNAP_VERSION: u32 = 1;
pub const SNAP_HEADER: usize = 40;

pub fn snapshot_file_name(zxid: Zxid) -> String {
    format!("snapshot.{:x}", zxid.0)
}

/// Snapshot files in `dir`, newest first.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(Zxid, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StorageError::io(dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(z) = zxid_of_name(name, "snapshot") {
            out.push((Zxid(z), ent.path()));
        }
    }
    out.sort();
    out.reverse();
    Ok(out)
}

/// Remove leftovers of snapshots that were being written when the process died.
pub fn remove_temporaries(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut removed = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StorageError::io(dir, e))?;
        let name = ent.file_name();
        if name.to_str().is_some_and(|n| n.ends_with(".tmp")) {
            std::fs::remove_file(ent.path()).map_err(|e| StorageError::io(&ent.path(), e))?;
            removed.push(ent.path());
        }
    }
    Ok(removed)
}

/// Write a snapshot durably (temporary file, fsync, rename, fsync of the directory).
pub fn write_snapshot(dir: &Path, zxid: Zxid, data: &[u8]) -> Result<PathBuf, StorageError> {
    let path = dir.join(snapshot_file_name(zxid));
    let tmp = dir.join(format!("{}.tmp", snapshot_file_name(zxid)));
    let mut header = Vec::with_capacity(SNAP_HEADER);
    header.extend_from_slice(SNAP_MAGIC);
    header.extend_from_slice(&SNAP_VERSION.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&zxid.0.to_le_bytes());
    header.extend_from_slice(&(data.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc(data).to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    let io = |e| StorageError::io(&tmp, e);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&header).map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))?;
    fsync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    Ok(path)
}

/// Read and verify a snapshot file; `Err(reason)` when it cannot be trusted.
pub fn read_snapshot(path: &Path, zxid: Zxid) -> Result<Vec<u8>, String> {
    let mut buf = std::fs::read(path).map_err(|e| e.to_string())?;
    if buf.len() < SNAP_HEADER || &buf[..8] != SNAP_MAGIC {
        return Err("not an ensemble snapshot (bad magic or cut short)".into());
    }
    let version = u32_at(&buf, 8).unwrap_or(0);
    if version != SNAP_VERSION {
        return Err(format!(
            "snapshot format version {version}, this build reads {SNAP_VERSION}"
        ));
    }
    let z = u64_at(&buf, 16).unwrap_or(0);
    if z != zxid.0 {
        return Err(format!("header says zxid {:#x}, the file name {zxid}", z));
    }
    let len = u64_at(&buf, 24).unwrap_or(0);
    let sum = u32_at(&buf, 32).unwrap_or(0);
    if (buf.len() - SNAP_HEADER) as u64 != len {
        return Err(format!(
            "{} data bytes, header says {len}",
            buf.len() - SNAP_HEADER
        ));
    }
    if crc(&buf[SNAP_HEADER..]) != sum {
        return Err("checksum mismatch".into());
    }
    buf.drain(..SNAP_HEADER);
    Ok(buf)
}
