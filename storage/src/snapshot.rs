//! Snapshot files `snapshot.<hex zxid>[.<gz|snappy|zst>]`: the bytes the core handed over in
//! `Write::Snapshot`, behind a checksummed header. The plain format is here; the node adds the
//! compressed ones.
//!
//! Header (40 bytes): `ENSSNAP1`, format version u32, reserved u32, zxid u64, data length u64,
//! crc32 of the data u32, reserved u32.

use crate::codec::{crc, u32_at, u64_at};
use ensemble_core::Zxid;

pub const SNAP_MAGIC: &[u8; 8] = b"ENSSNAP1";
pub const SNAP_VERSION: u32 = 1;
pub const SNAP_HEADER: usize = 40;
/// The extensions of compressed snapshots, as ZooKeeper names them (`zst` is ours).
pub const COMPRESSED_EXTENSIONS: [&str; 3] = ["gz", "snappy", "zst"];

/// A snapshot file's zxid and compression extension from its name; `None` for anything else
/// (a temporary, a stranger's file).
pub fn parse_snapshot_name(name: &str) -> Option<(Zxid, Option<&str>)> {
    let rest = name.strip_prefix("snapshot.")?;
    let (hex, ext) = match rest.split_once('.') {
        None => (rest, None),
        Some((hex, ext)) if COMPRESSED_EXTENSIONS.contains(&ext) => (hex, Some(ext)),
        Some(_) => return None,
    };
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((Zxid(u64::from_str_radix(hex, 16).ok()?), ext))
}

/// The uncompressed file's name.
pub fn snapshot_file_name(zxid: Zxid) -> String {
    format!("snapshot.{:x}", zxid.0)
}

/// The 40-byte header of a plain snapshot file holding `data` at `zxid`.
pub fn plain_header(zxid: Zxid, data: &[u8]) -> [u8; SNAP_HEADER] {
    let mut h = [0u8; SNAP_HEADER];
    h[..8].copy_from_slice(SNAP_MAGIC);
    h[8..12].copy_from_slice(&SNAP_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&zxid.0.to_le_bytes());
    h[24..32].copy_from_slice(&(data.len() as u64).to_le_bytes());
    h[32..36].copy_from_slice(&crc(data).to_le_bytes());
    h
}

/// Check a plain header against the data that follows it: the zxid, or why not.
pub fn check_plain(header: &[u8], data: &[u8]) -> Result<Zxid, String> {
    if header.len() < SNAP_HEADER || &header[..8] != SNAP_MAGIC {
        return Err("not an ensemble snapshot (bad magic or cut short)".into());
    }
    let version = u32_at(header, 8).unwrap_or(0);
    if version != SNAP_VERSION {
        return Err(format!(
            "snapshot format version {version}, this build reads {SNAP_VERSION}"
        ));
    }
    let z = Zxid(u64_at(header, 16).unwrap_or(0));
    let len = u64_at(header, 24).unwrap_or(0);
    let sum = u32_at(header, 32).unwrap_or(0);
    if data.len() as u64 != len {
        return Err(format!("{} data bytes, header says {len}", data.len()));
    }
    if crc(data) != sum
        && !crate::plant::active(ensemble_core::plant::Plant::SnapshotChecksumSkipped)
    {
        return Err("checksum mismatch".into());
    }
    Ok(z)
}

/// A plain snapshot file's zxid and data, verified.
pub fn decode_plain(mut buf: Vec<u8>) -> Result<(Zxid, Vec<u8>), String> {
    if buf.len() < SNAP_HEADER {
        return Err("not an ensemble snapshot (bad magic or cut short)".into());
    }
    let z = check_plain(&buf[..SNAP_HEADER], &buf[SNAP_HEADER..])?;
    buf.drain(..SNAP_HEADER);
    Ok((z, buf))
}

/// A snapshot file's data, checked against the zxid its name gives.
pub fn check_name<T>(zxid: Zxid, read: (Zxid, T)) -> Result<T, String> {
    if read.0 != zxid {
        return Err(format!("header says zxid {}, the file name {zxid}", read.0));
    }
    Ok(read.1)
}
