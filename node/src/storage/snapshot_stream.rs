//! A snapshot file read as a stream, for a leader's SNAP (`Action::SendSnapshot`): the data in
//! pieces of a bounded size, never the whole of it in memory, with its checksum verified
//! before the last piece is handed out. The SNAP's last bytes are what makes a learner install
//! anything, so a damaged file costs the learner a new sync, never a wrong tree.
//!
//! A plain file's header gives the data length up front. A compressed one gives it only in its
//! trailer: the file is decompressed once to learn it (and thrown away), then again to stream.

use super::compression::SnapshotCompression;
use super::snapshot::{
    SNAP_HEADER, SNAP_MAGIC, SNAP_VERSION, SNAPZ_HEADER, SNAPZ_MAGIC, SNAPZ_TRAILER,
    parse_snapshot_name,
};
use ensemble_core::Zxid;
use ensemble_core::tree::{DataTree, SnapshotLoader, TreeOptions};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The snapshot file of `zxid` in `dir` (plain or compressed), if there is one.
pub fn find_snapshot(dir: &Path, zxid: Zxid) -> std::io::Result<Option<PathBuf>> {
    for ent in std::fs::read_dir(dir)? {
        let ent = ent?;
        let name = ent.file_name();
        if let Some((z, _)) = name.to_str().and_then(parse_snapshot_name)
            && z == zxid
        {
            return Ok(Some(ent.path()));
        }
    }
    Ok(None)
}

/// The data of one snapshot file, read in order.
pub struct SnapshotStream {
    input: Box<dyn Read + Send>,
    /// Data bytes in all, and still to read.
    total: u64,
    left: u64,
    /// The checksum the file promises for its data (read at the end for a compressed one).
    crc: Option<u32>,
    hasher: crc32fast::Hasher,
    method: SnapshotCompression,
    path: PathBuf,
}

impl SnapshotStream {
    /// Open `path`, which must hold the snapshot at `zxid`.
    pub fn open(path: &Path, zxid: Zxid) -> Result<SnapshotStream, String> {
        let method = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_snapshot_name)
            .map_or(SnapshotCompression::None, |(_, m)| m);
        let file = || std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()));
        let mut s = if method == SnapshotCompression::None {
            let mut input = BufReader::with_capacity(1 << 20, file()?);
            let mut h = [0u8; SNAP_HEADER];
            input
                .read_exact(&mut h)
                .map_err(|e| format!("{}: header: {e}", path.display()))?;
            if &h[..8] != SNAP_MAGIC || le32(&h[8..12]) != SNAP_VERSION {
                return Err(format!("{}: not an ensemble snapshot", path.display()));
            }
            let z = Zxid(le64(&h[16..24]));
            if z != zxid {
                return Err(format!("{}: holds {z}, not {zxid}", path.display()));
            }
            let total = le64(&h[24..32]);
            // Bytes after the data are damage too (the whole-file reader refuses them).
            let len = std::fs::metadata(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .len();
            if len.checked_sub(SNAP_HEADER as u64) != Some(total) {
                return Err(format!(
                    "{}: {} data bytes, header says {total}",
                    path.display(),
                    len.saturating_sub(SNAP_HEADER as u64)
                ));
            }
            SnapshotStream {
                input: Box::new(input),
                total,
                left: total,
                crc: Some(le32(&h[32..36])),
                hasher: crc32fast::Hasher::new(),
                method,
                path: path.to_path_buf(),
            }
        } else {
            // The length is in the trailer: one pass to learn it.
            let len = method
                .decoder(BufReader::new(file()?))
                .and_then(|mut d| std::io::copy(&mut d, &mut std::io::sink()))
                .map_err(|e| format!("{}: {method} stream: {e}", path.display()))?;
            let total = len
                .checked_sub((SNAPZ_HEADER + SNAPZ_TRAILER) as u64)
                .ok_or_else(|| format!("{}: cut short", path.display()))?;
            let mut input = method
                .decoder(BufReader::new(file()?))
                .map_err(|e| format!("{}: {method} stream: {e}", path.display()))?;
            let mut h = [0u8; SNAPZ_HEADER];
            input
                .read_exact(&mut h)
                .map_err(|e| format!("{}: header: {e}", path.display()))?;
            if &h[..8] != SNAPZ_MAGIC || le32(&h[8..12]) != SNAP_VERSION {
                return Err(format!("{}: not an ensemble snapshot", path.display()));
            }
            let z = Zxid(le64(&h[16..24]));
            if z != zxid {
                return Err(format!("{}: holds {z}, not {zxid}", path.display()));
            }
            SnapshotStream {
                input,
                total,
                left: total,
                crc: None,
                hasher: crc32fast::Hasher::new(),
                method,
                path: path.to_path_buf(),
            }
        };
        if s.total == 0 {
            s.check()?;
        }
        Ok(s)
    }

    /// The data's length.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The next `n` bytes of data (fewer only at the end). The bytes that end the data come
    /// only once the file's checksum matched all of it.
    pub fn next(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let n = (n as u64).min(self.left) as usize;
        let mut buf = vec![0u8; n];
        self.input
            .read_exact(&mut buf)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.hasher.update(&buf);
        self.left -= n as u64;
        if self.left == 0 {
            self.check()?;
        }
        Ok(buf)
    }

    /// All data read: does it match the file's checksum and length?
    fn check(&mut self) -> Result<(), String> {
        let promised = match self.crc {
            Some(c) => c,
            None => {
                let mut t = [0u8; SNAPZ_TRAILER];
                self.input
                    .read_exact(&mut t)
                    .map_err(|e| format!("{}: trailer: {e}", self.path.display()))?;
                if le64(&t[..8]) != self.total {
                    return Err(format!(
                        "{}: {} data bytes, trailer says {}",
                        self.path.display(),
                        self.total,
                        le64(&t[..8])
                    ));
                }
                le32(&t[8..12])
            }
        };
        let got = std::mem::take(&mut self.hasher).finalize();
        if got != promised {
            return Err(format!(
                "{}: checksum mismatch ({} snapshot)",
                self.path.display(),
                self.method
            ));
        }
        Ok(())
    }
}

/// Bytes read from a snapshot file per piece fed to the loader at recovery.
pub const LOAD_PIECE: usize = 4 << 20;

/// A snapshot file (plain or compressed) loaded at recovery: its data read in pieces of
/// [`LOAD_PIECE`] bytes and fed to a [`SnapshotLoader`] as they come, so the server holds the
/// tree being built plus one piece, never the file's data whole beside the tree (which had
/// recovery peak at twice the tree). Nothing is a tree before the whole file has matched its
/// checksum: a damaged file is `Err(reason)` and recovery falls back to an older snapshot.
pub fn load_tree(path: &Path, opts: TreeOptions) -> Result<(Zxid, DataTree), String> {
    let zxid = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_snapshot_name)
        .map(|(z, _)| z)
        .ok_or_else(|| format!("{}: not a snapshot file name", path.display()))?;
    let mut stream = SnapshotStream::open(path, zxid)?;
    let mut loader = Some(SnapshotLoader::new(opts, stream.total()));
    let mut unreadable = None;
    let mut left = stream.total();
    while left > 0 {
        let piece = stream.next(LOAD_PIECE)?;
        left -= piece.len() as u64;
        if let Some(l) = loader.as_mut()
            && let Err(e) = l.feed(&piece)
        {
            // Read on: a checksum mismatch, if that is what this is, is the better reason.
            unreadable = Some(e);
            loader = None;
        }
    }
    let tree = match (loader, unreadable) {
        (Some(l), None) => l.finish().map_err(|e| e.to_string()),
        (_, Some(e)) => Err(e.to_string()),
        (None, None) => unreachable!("the loader goes only with an error"),
    }
    .map_err(|e| {
        format!(
            "{}: passes its checksum but does not load: {e}",
            path.display()
        )
    })?;
    if tree.last_zxid() != zxid {
        return Err(format!(
            "{}: holds state at {}, not {zxid}",
            path.display(),
            tree.last_zxid()
        ));
    }
    Ok((zxid, tree))
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::snapshot::write_snapshot_with;

    fn streamed(path: &Path, zxid: Zxid, part: usize) -> Result<Vec<u8>, String> {
        let mut s = SnapshotStream::open(path, zxid)?;
        let mut out = Vec::new();
        while (out.len() as u64) < s.total() {
            out.extend(s.next(part)?);
        }
        Ok(out)
    }

    #[test]
    fn every_format_streams_its_data_and_refuses_a_damaged_file() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for method in [
            SnapshotCompression::None,
            SnapshotCompression::Gz,
            SnapshotCompression::Snappy,
            SnapshotCompression::Zstd,
        ] {
            let dir = std::env::temp_dir()
                .join(format!("ens-snap-stream-{}-{method}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let z = Zxid(0x1_0000_0005);
            let path = write_snapshot_with(&dir, z, &data, method).unwrap();
            assert_eq!(find_snapshot(&dir, z).unwrap(), Some(path.clone()));
            assert_eq!(find_snapshot(&dir, Zxid(9)).unwrap(), None);
            for part in [1000, 4096, 1 << 20] {
                assert_eq!(streamed(&path, z, part).unwrap(), data, "{method} {part}");
            }
            assert!(SnapshotStream::open(&path, Zxid(9)).is_err(), "{method}");
            if method == SnapshotCompression::None {
                // a flipped data byte: found only at the end, before the last bytes go
                let mut bytes = std::fs::read(&path).unwrap();
                bytes[SNAP_HEADER + 50_000] ^= 1;
                std::fs::write(&path, bytes).unwrap();
                let mut s = SnapshotStream::open(&path, z).unwrap();
                assert_eq!(s.next(60_000).unwrap().len(), 60_000);
                let e = s.next(60_000).unwrap_err();
                assert!(e.contains("checksum mismatch"), "{e}");
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
