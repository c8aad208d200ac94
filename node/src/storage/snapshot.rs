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
    let written = match write_direct(&tmp, &header, data) {
        Ok(done) => done,
        Err(e) => return Err(io(e)),
    };
    if !written {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&header).map_err(io)?;
        f.write_all(data).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))?;
    fsync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    Ok(path)
}

/// Block size and alignment of direct writes (the largest logical block size in common use).
const DIRECT_ALIGN: usize = 4096;
/// Bytes per direct write.
const DIRECT_CHUNK: usize = 1 << 20;

/// Write `header` and `data` to a new file at `tmp` with O_DIRECT, synced. Snapshots are big,
/// written once and read only at recovery: through the page cache, copying them into freshly
/// allocated cache pages took a third of the servers' CPU under write load (BENCHMARKS.md,
/// round 4). `Ok(false)`: the file system takes no direct I/O (tmpfs, for one); write it the
/// usual way instead.
#[cfg(target_os = "linux")]
fn write_direct(tmp: &Path, header: &[u8], data: &[u8]) -> std::io::Result<bool> {
    use std::os::unix::fs::OpenOptionsExt;
    let unsupported = |e: &std::io::Error| e.raw_os_error() == Some(libc::EINVAL);
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(tmp)
    {
        Ok(f) => f,
        Err(e) if unsupported(&e) => return Ok(false),
        Err(e) => return Err(e),
    };
    // An aligned window of an ordinary buffer: O_DIRECT wants the memory aligned too.
    let mut raw = vec![0u8; DIRECT_CHUNK + DIRECT_ALIGN];
    let start = raw.as_ptr().align_offset(DIRECT_ALIGN);
    let buf = &mut raw[start..start + DIRECT_CHUNK];
    let total = header.len() + data.len();
    let mut rest = [header, data];
    let mut first = true;
    loop {
        let mut n = 0;
        for part in rest.iter_mut() {
            let k = part.len().min(DIRECT_CHUNK - n);
            buf[n..n + k].copy_from_slice(&part[..k]);
            *part = &part[k..];
            n += k;
        }
        if n == 0 {
            break;
        }
        // The tail is padded to a whole block, and the file cut back to its length below.
        let padded = n.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
        buf[n..padded].fill(0);
        if let Err(e) = f.write_all(&buf[..padded]) {
            if first && unsupported(&e) {
                drop(f);
                std::fs::remove_file(tmp)?;
                return Ok(false);
            }
            return Err(e);
        }
        first = false;
    }
    f.set_len(total as u64)?;
    f.sync_all()?;
    Ok(true)
}

#[cfg(not(target_os = "linux"))]
fn write_direct(_tmp: &Path, _header: &[u8], _data: &[u8]) -> std::io::Result<bool> {
    Ok(false)
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
