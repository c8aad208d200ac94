//! Snapshot files `snapshot.<hex zxid>` under `dataDir/version-2/`: the bytes the core handed
//! over in `Write::Snapshot`, behind a checksummed header. Written to a temporary name, synced,
//! then renamed, so a crash leaves either the old set of snapshots or the new one.
//!
//! Header (40 bytes): `ENSSNAP1`, format version u32, reserved u32, zxid u64, data length u64,
//! crc32 of the data u32, reserved u32.
//!
//! Compressed (`zookeeper.snapshot.compression.method`, see [`super::compression`]), the file
//! is `snapshot.<hex zxid>.<gz|snappy|zst>` and is one compressed stream of: `ENSSNAPZ`,
//! format version u32, reserved u32, zxid u64, the data, then a trailer of data length u64,
//! crc32 of the data u32, reserved u32. A stream cannot go back to fill in a header, so what
//! is known only at the end comes last; the compression's own checksums cover the stream too.

use super::StorageError;
use super::codec::{crc, fsync_dir, u32_at, u64_at};
use super::compression::{Encoder, SnapshotCompression};
use ensemble_core::Zxid;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const SNAP_MAGIC: &[u8; 8] = b"ENSSNAP1";
pub const SNAP_VERSION: u32 = 1;
pub const SNAP_HEADER: usize = 40;
/// The compressed stream's magic, header and trailer lengths.
pub const SNAPZ_MAGIC: &[u8; 8] = b"ENSSNAPZ";
pub const SNAPZ_HEADER: usize = 24;
pub const SNAPZ_TRAILER: usize = 16;

/// The uncompressed file's name, `snapshot.<hex zxid>`.
pub fn snapshot_file_name(zxid: Zxid) -> String {
    snapshot_file_name_with(zxid, SnapshotCompression::None)
}

/// `snapshot.<hex zxid>`, with the compression's extension as ZooKeeper names it.
pub fn snapshot_file_name_with(zxid: Zxid, method: SnapshotCompression) -> String {
    match method.extension() {
        None => format!("snapshot.{:x}", zxid.0),
        Some(ext) => format!("snapshot.{:x}.{ext}", zxid.0),
    }
}

/// A snapshot file's zxid and compression from its name; `None` for anything else (a
/// temporary, a stranger's file).
pub fn parse_snapshot_name(name: &str) -> Option<(Zxid, SnapshotCompression)> {
    let rest = name.strip_prefix("snapshot.")?;
    let (hex, method) = match rest.split_once('.') {
        None => (rest, SnapshotCompression::None),
        Some((hex, ext)) => (hex, SnapshotCompression::from_extension(ext)?),
    };
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((Zxid(u64::from_str_radix(hex, 16).ok()?), method))
}

/// Snapshot files in `dir`, newest first.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(Zxid, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StorageError::io(dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((z, _)) = parse_snapshot_name(name) {
            out.push((z, ent.path()));
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

/// Write a whole snapshot durably (temporary file, fsync, rename, fsync of the directory).
pub fn write_snapshot(dir: &Path, zxid: Zxid, data: &[u8]) -> Result<PathBuf, StorageError> {
    write_snapshot_with(dir, zxid, data, SnapshotCompression::None)
}

/// [`write_snapshot`], compressed with `method`.
pub fn write_snapshot_with(
    dir: &Path,
    zxid: Zxid,
    data: &[u8],
    method: SnapshotCompression,
) -> Result<PathBuf, StorageError> {
    let mut w = SnapshotFileWriter::create_with(dir, zxid, method)?;
    w.push(data)?;
    w.finish()
}

/// A snapshot file being written as the core hands over its parts, plain or compressed; to a
/// temporary name, synced and renamed by [`SnapshotFileWriter::finish`]. Dropped unfinished,
/// it removes the temporary.
pub struct SnapshotFileWriter {
    inner: Inner,
}

enum Inner {
    Plain(PlainWriter),
    Compressed(CompressedWriter),
}

impl SnapshotFileWriter {
    /// An uncompressed snapshot.
    pub fn create(dir: &Path, zxid: Zxid) -> Result<SnapshotFileWriter, StorageError> {
        SnapshotFileWriter::create_with(dir, zxid, SnapshotCompression::None)
    }

    pub fn create_with(
        dir: &Path,
        zxid: Zxid,
        method: SnapshotCompression,
    ) -> Result<SnapshotFileWriter, StorageError> {
        let path = dir.join(snapshot_file_name_with(zxid, method));
        SnapshotFileWriter::create_at(&path, zxid, method)
    }

    /// A snapshot file at `path`, whatever its name (a backup): written to `<path>.tmp`, then
    /// renamed to `path` by [`SnapshotFileWriter::finish`].
    pub fn create_at(
        path: &Path,
        zxid: Zxid,
        method: SnapshotCompression,
    ) -> Result<SnapshotFileWriter, StorageError> {
        let inner = match method {
            SnapshotCompression::None => Inner::Plain(PlainWriter::create(path, zxid)?),
            m => Inner::Compressed(CompressedWriter::create(path, zxid, m)?),
        };
        Ok(SnapshotFileWriter { inner })
    }

    /// Append the next bytes of the snapshot.
    pub fn push(&mut self, data: &[u8]) -> Result<(), StorageError> {
        match &mut self.inner {
            Inner::Plain(w) => w.push(data),
            Inner::Compressed(w) => w.push(data),
        }
    }

    /// Complete the file durably; returns its path.
    pub fn finish(self) -> Result<PathBuf, StorageError> {
        match self.inner {
            Inner::Plain(w) => w.finish(),
            Inner::Compressed(w) => w.finish(),
        }
    }
}

/// Bytes of the compressed writer's buffer in front of the file.
const COMPRESSED_BUFFER: usize = 1 << 20;

/// A compressed snapshot: header, data and trailer through the compressor, buffered, into the
/// temporary file (through the page cache: the compressed bytes are few, and the compressor,
/// not the copy, is what costs).
struct CompressedWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<Encoder<BufWriter<std::fs::File>>>,
    data_len: u64,
    crc: crc32fast::Hasher,
}

impl CompressedWriter {
    fn create(
        path: &Path,
        zxid: Zxid,
        method: SnapshotCompression,
    ) -> Result<CompressedWriter, StorageError> {
        let tmp = tmp_name(path);
        let io = |e| StorageError::io(&tmp, e);
        let (file, _) = open_tmp(&tmp, false).map_err(io)?;
        let mut out = method
            .encoder(BufWriter::with_capacity(COMPRESSED_BUFFER, file))
            .map_err(io)?;
        let mut header = Vec::with_capacity(SNAPZ_HEADER);
        header.extend_from_slice(SNAPZ_MAGIC);
        header.extend_from_slice(&SNAP_VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&zxid.0.to_le_bytes());
        out.write_all(&header).map_err(io)?;
        Ok(CompressedWriter {
            path: path.to_path_buf(),
            tmp,
            out: Some(out),
            data_len: 0,
            crc: crc32fast::Hasher::new(),
        })
    }

    fn push(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.data_len += data.len() as u64;
        self.crc.update(data);
        let out = self.out.as_mut().ok_or_else(closed);
        out.and_then(|o| o.write_all(data))
            .map_err(|e| StorageError::io(&self.tmp, e))
    }

    fn finish(mut self) -> Result<PathBuf, StorageError> {
        let io = |e| StorageError::io(&self.tmp, e);
        let mut out = self.out.take().ok_or_else(closed).map_err(io)?;
        let mut trailer = Vec::with_capacity(SNAPZ_TRAILER);
        trailer.extend_from_slice(&self.data_len.to_le_bytes());
        trailer.extend_from_slice(&self.crc.clone().finalize().to_le_bytes());
        trailer.extend_from_slice(&0u32.to_le_bytes());
        let file = out
            .write_all(&trailer)
            .and_then(|()| out.finish())
            .and_then(|buffered| buffered.into_inner().map_err(|e| e.into_error()));
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_file(&self.tmp);
                return Err(io(e));
            }
        };
        if let Err(e) = file.sync_all() {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(io(e));
        }
        drop(file);
        rename_durably(&self.tmp, &self.path)?;
        Ok(self.path.clone())
    }
}

impl Drop for CompressedWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Block size and alignment of direct writes (the largest logical block size in common use).
const DIRECT_ALIGN: usize = 4096;
/// Bytes per write.
const STAGING: usize = 1 << 20;

/// An uncompressed snapshot file written as the core hands over its parts: to a temporary
/// name, then synced and renamed by [`PlainWriter::finish`]; dropped unfinished, it removes
/// the temporary.
///
/// The file is written with O_DIRECT where the file system takes it. Snapshots are big,
/// written once and read only at recovery: through the page cache, copying them into freshly
/// allocated cache pages took a third of the servers' CPU under write load (BENCHMARKS.md,
/// round 4). Direct I/O wants aligned memory, offsets and lengths, so the bytes go through an
/// aligned staging buffer written a MiB at a time; the tail is padded to a whole block and
/// the file cut back to its length. The header, which holds the length and checksum, is
/// written last over the first block.
struct PlainWriter {
    path: PathBuf,
    zxid: Zxid,
    tmp: PathBuf,
    file: Option<std::fs::File>,
    direct: bool,
    /// An aligned window `start..start + STAGING` of `raw`.
    raw: Vec<u8>,
    start: usize,
    filled: usize,
    /// Where the next flush goes in the file (whole staging buffers so far).
    flushed: u64,
    /// A write has gone to the file (no falling back to the page cache after that).
    wrote: bool,
    /// The file's first block as first written, to write again with the final header.
    first_block: Option<Vec<u8>>,
    data_len: u64,
    crc: crc32fast::Hasher,
}

impl PlainWriter {
    fn create(path: &Path, zxid: Zxid) -> Result<PlainWriter, StorageError> {
        let tmp = tmp_name(path);
        let (file, direct) = open_tmp(&tmp, true).map_err(|e| StorageError::io(&tmp, e))?;
        let raw = vec![0u8; STAGING + DIRECT_ALIGN];
        let start = raw.as_ptr().align_offset(DIRECT_ALIGN);
        let mut w = PlainWriter {
            path: path.to_path_buf(),
            zxid,
            tmp,
            file: Some(file),
            direct,
            raw,
            start,
            filled: 0,
            flushed: 0,
            wrote: false,
            first_block: None,
            data_len: 0,
            crc: crc32fast::Hasher::new(),
        };
        // A placeholder header: the real one is known at the end.
        w.stage(&[0u8; SNAP_HEADER])?;
        Ok(w)
    }

    /// Append the next bytes of the snapshot.
    fn push(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.data_len += data.len() as u64;
        self.crc.update(data);
        self.stage(data)
    }

    fn stage(&mut self, mut data: &[u8]) -> Result<(), StorageError> {
        while !data.is_empty() {
            let k = data.len().min(STAGING - self.filled);
            let at = self.start + self.filled;
            self.raw[at..at + k].copy_from_slice(&data[..k]);
            self.filled += k;
            data = &data[k..];
            if self.filled == STAGING {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Write the staging buffer (its used part padded to whole blocks) at the end of the file.
    fn flush(&mut self) -> Result<(), StorageError> {
        if self.filled == 0 {
            return Ok(());
        }
        if self.first_block.is_none() {
            let s = self.start;
            self.first_block = Some(self.raw[s..s + DIRECT_ALIGN].to_vec());
        }
        let padded = self.write_staged(self.flushed)?;
        self.flushed += padded as u64;
        self.filled = 0;
        Ok(())
    }

    /// Write the staging buffer's used part, padded to whole blocks, at `at`; returns the
    /// bytes written.
    fn write_staged(&mut self, at: u64) -> Result<usize, StorageError> {
        let padded = self.filled.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
        let (s, n) = (self.start, self.filled);
        self.raw[s + n..s + padded].fill(0);
        let io = |e| StorageError::io(&self.tmp, e);
        let buf = &self.raw[s..s + padded];
        let file = self.file.as_ref().ok_or_else(|| io(closed()))?;
        match file.write_all_at(buf, at) {
            Ok(()) => {}
            // Some file systems open with O_DIRECT and refuse the writes: nothing is written
            // yet, so start again through the page cache.
            Err(e) if self.direct && !self.wrote && is_einval(&e) => {
                let (file, _) = open_tmp(&self.tmp, false).map_err(io)?;
                self.direct = false;
                file.write_all_at(buf, at).map_err(io)?;
                self.file = Some(file);
            }
            Err(e) => return Err(io(e)),
        }
        self.wrote = true;
        Ok(padded)
    }

    /// Complete the file: header, sync, rename, sync of the directory.
    fn finish(mut self) -> Result<PathBuf, StorageError> {
        let mut header = Vec::with_capacity(SNAP_HEADER);
        header.extend_from_slice(SNAP_MAGIC);
        header.extend_from_slice(&SNAP_VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&self.zxid.0.to_le_bytes());
        header.extend_from_slice(&self.data_len.to_le_bytes());
        header.extend_from_slice(&self.crc.clone().finalize().to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        let total = SNAP_HEADER as u64 + self.data_len;
        let s = self.start;
        match self.first_block.take() {
            // Nothing written yet: the header is still in the staging buffer.
            None => {
                self.raw[s..s + SNAP_HEADER].copy_from_slice(&header);
                self.flush()?;
            }
            // Write the tail, then the first block again with the header in it.
            Some(mut first) => {
                self.flush()?;
                first[..SNAP_HEADER].copy_from_slice(&header);
                self.raw[s..s + DIRECT_ALIGN].copy_from_slice(&first);
                self.filled = DIRECT_ALIGN;
                self.write_staged(0)?;
            }
        }
        let io = |e| StorageError::io(&self.tmp, e);
        let file = self.file.take().ok_or_else(|| io(closed()))?;
        file.set_len(total).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        rename_durably(&self.tmp, &self.path)?;
        Ok(self.path.clone())
    }
}

impl Drop for PlainWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// `<path>.tmp`: what startup removes when a write never finished.
fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Rename a synced temporary over its final name, and make the rename durable.
fn rename_durably(tmp: &Path, path: &Path) -> Result<(), StorageError> {
    std::fs::rename(tmp, path).map_err(|e| StorageError::io(path, e))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fsync_dir(dir).map_err(|e| StorageError::io(dir, e))
}

fn closed() -> std::io::Error {
    std::io::Error::other("snapshot file already closed")
}

fn is_einval(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// Create (truncating) the temporary file, with O_DIRECT if `direct` and the file system
/// takes it; returns whether it did.
fn open_tmp(tmp: &Path, direct: bool) -> std::io::Result<(std::fs::File, bool)> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(target_os = "linux")]
    if direct {
        use std::os::unix::fs::OpenOptionsExt;
        match o.clone().custom_flags(libc::O_DIRECT).open(tmp) {
            Ok(f) => return Ok((f, true)),
            Err(e) if is_einval(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((o.open(tmp)?, false))
}

/// Read and verify a snapshot file, plain or compressed; `Err(reason)` when it cannot be
/// trusted, or when it is not of the zxid its name says.
pub fn read_snapshot(path: &Path, zxid: Zxid) -> Result<Vec<u8>, String> {
    let (z, data) = read_snapshot_file(path)?;
    if z != zxid {
        return Err(format!("header says zxid {z}, the file name {zxid}"));
    }
    Ok(data)
}

/// The compression a snapshot file is in, by its first bytes (a backup may have any name).
pub fn sniff_compression(head: &[u8]) -> Option<SnapshotCompression> {
    const SNAPPY_FRAME: &[u8] = b"\xff\x06\x00\x00sNaPpY";
    if head.starts_with(SNAP_MAGIC) {
        Some(SnapshotCompression::None)
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Some(SnapshotCompression::Gz)
    } else if head.starts_with(SNAPPY_FRAME) {
        Some(SnapshotCompression::Snappy)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(SnapshotCompression::Zstd)
    } else {
        None
    }
}

/// Read and verify any snapshot file (one of a data dir, or a backup): its zxid (from its
/// header) and data.
pub fn read_snapshot_file(path: &Path) -> Result<(Zxid, Vec<u8>), String> {
    let mut head = [0u8; 10];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]).map_err(|e| e.to_string())? {
                0 => break,
                k => n += k,
            }
        }
        n
    };
    match sniff_compression(&head[..n]) {
        Some(SnapshotCompression::None) => read_plain(path),
        Some(m) => read_compressed(path, m),
        None => Err("not an ensemble snapshot (bad magic or cut short)".into()),
    }
}

fn read_compressed(path: &Path, m: SnapshotCompression) -> Result<(Zxid, Vec<u8>), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    decode_compressed(std::io::BufReader::new(file), m)
}

/// A snapshot file's bytes, as [`read_snapshot_file`] reads them from a file: for a snapshot
/// that came some other way (an HTTP body: the AdminServer's `restore`).
pub fn decode_snapshot(bytes: &[u8]) -> Result<(Zxid, Vec<u8>), String> {
    match sniff_compression(bytes) {
        Some(SnapshotCompression::None) => decode_plain(bytes.to_vec()),
        Some(m) => decode_compressed(bytes, m),
        None => Err("not an ensemble snapshot (bad magic or cut short)".into()),
    }
}

/// The bytes of a snapshot file holding `data` at `zxid`, written to `out` as a file would
/// hold them (for streaming one out: the AdminServer's `snapshot`); [`decode_snapshot`] and
/// [`read_snapshot_file`] read them back.
pub fn encode_snapshot(
    out: &mut dyn Write,
    zxid: Zxid,
    data: &[u8],
    method: SnapshotCompression,
) -> std::io::Result<()> {
    let sum = crc(data).to_le_bytes();
    if method == SnapshotCompression::None {
        out.write_all(SNAP_MAGIC)?;
        out.write_all(&SNAP_VERSION.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&zxid.0.to_le_bytes())?;
        out.write_all(&(data.len() as u64).to_le_bytes())?;
        out.write_all(&sum)?;
        out.write_all(&0u32.to_le_bytes())?;
        return out.write_all(data);
    }
    let mut e = method.encoder(out)?;
    e.write_all(SNAPZ_MAGIC)?;
    e.write_all(&SNAP_VERSION.to_le_bytes())?;
    e.write_all(&0u32.to_le_bytes())?;
    e.write_all(&zxid.0.to_le_bytes())?;
    e.write_all(data)?;
    e.write_all(&(data.len() as u64).to_le_bytes())?;
    e.write_all(&sum)?;
    e.write_all(&0u32.to_le_bytes())?;
    e.finish().map(drop)
}

fn decode_compressed(
    input: impl std::io::Read,
    m: SnapshotCompression,
) -> Result<(Zxid, Vec<u8>), String> {
    let mut buf = m
        .decompress(input)
        .map_err(|e| format!("{m} stream does not decompress: {e}"))?;
    if buf.len() < SNAPZ_HEADER + SNAPZ_TRAILER || &buf[..8] != SNAPZ_MAGIC {
        return Err(format!(
            "not an ensemble {m} snapshot (bad magic or cut short)"
        ));
    }
    let version = u32_at(&buf, 8).unwrap_or(0);
    if version != SNAP_VERSION {
        return Err(format!(
            "snapshot format version {version}, this build reads {SNAP_VERSION}"
        ));
    }
    let z = Zxid(u64_at(&buf, 16).unwrap_or(0));
    let end = buf.len() - SNAPZ_TRAILER;
    let len = u64_at(&buf, end).unwrap_or(0);
    let sum = u32_at(&buf, end + 8).unwrap_or(0);
    if (end - SNAPZ_HEADER) as u64 != len {
        return Err(format!(
            "{} data bytes, trailer says {len}",
            end - SNAPZ_HEADER
        ));
    }
    if crc(&buf[SNAPZ_HEADER..end]) != sum {
        return Err("checksum mismatch".into());
    }
    buf.truncate(end);
    buf.drain(..SNAPZ_HEADER);
    Ok((z, buf))
}

fn read_plain(path: &Path) -> Result<(Zxid, Vec<u8>), String> {
    decode_plain(std::fs::read(path).map_err(|e| e.to_string())?)
}

fn decode_plain(mut buf: Vec<u8>) -> Result<(Zxid, Vec<u8>), String> {
    if buf.len() < SNAP_HEADER || &buf[..8] != SNAP_MAGIC {
        return Err("not an ensemble snapshot (bad magic or cut short)".into());
    }
    let version = u32_at(&buf, 8).unwrap_or(0);
    if version != SNAP_VERSION {
        return Err(format!(
            "snapshot format version {version}, this build reads {SNAP_VERSION}"
        ));
    }
    let z = Zxid(u64_at(&buf, 16).unwrap_or(0));
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
    Ok((z, buf))
}
