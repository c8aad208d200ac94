//! An in-memory directory of files as bytes, with the durable/volatile split of a real disk:
//! appended bytes are volatile until [`MemDir::sync`]; a crash keeps every file's durable bytes
//! and what the caller says of the rest (torn at any byte). Whole files written at once
//! (snapshots, epoch files: the node writes a temporary, syncs and renames) are durable at once.
//! A snapshot's data is shared ([`Arc`]), not copied per server, until a fault writes into it.

use crate::files::Files;
use crate::snapshot::{SNAP_HEADER, check_plain, plain_header};
use ensemble_core::{RecoveredSnapshot, Zxid};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Chunk {
    Own(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Own(v) => v,
            Chunk::Shared(a) => a,
        }
    }

    fn own(&mut self) -> &mut Vec<u8> {
        if let Chunk::Shared(a) = self {
            *self = Chunk::Own(a.to_vec());
        }
        match self {
            Chunk::Own(v) => v,
            Chunk::Shared(_) => unreachable!("just made owned"),
        }
    }
}

/// The size an appended-to chunk grows to before the next is started.
const APPEND_CHUNK: usize = 64 << 10;

/// One file: its bytes in chunks, durable up to `durable`.
#[derive(Clone, Debug, Default)]
pub struct MemFile {
    chunks: Vec<Chunk>,
    len: usize,
    durable: usize,
}

impl MemFile {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn durable_len(&self) -> usize {
        self.durable
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for c in &self.chunks {
            out.extend_from_slice(c.bytes());
        }
        out
    }

    fn append(&mut self, data: &[u8]) -> &mut [u8] {
        // A chunk is not grown past APPEND_CHUNK (growing copies all of it, and a txn log is
        // appended to record by record): a full one is followed by a new one.
        let new_chunk = match self.chunks.last() {
            Some(Chunk::Own(v)) => v.len() >= APPEND_CHUNK && v.len() + data.len() > v.capacity(),
            _ => true,
        };
        if new_chunk {
            let room = if self.chunks.is_empty() {
                0
            } else {
                APPEND_CHUNK
            };
            self.chunks
                .push(Chunk::Own(Vec::with_capacity(room.max(data.len()))));
        }
        let Some(Chunk::Own(v)) = self.chunks.last_mut() else {
            unreachable!("the last chunk is owned")
        };
        let from = v.len();
        v.extend_from_slice(data);
        self.len += data.len();
        &mut v[from..]
    }

    /// Cut to `len` bytes.
    fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let mut at = 0;
        let mut keep = 0;
        for c in &mut self.chunks {
            let n = c.bytes().len();
            if at + n >= len {
                c.own().truncate(len - at);
                keep += 1;
                break;
            }
            at += n;
            keep += 1;
        }
        self.chunks.truncate(keep);
        self.chunks.retain(|c| !c.bytes().is_empty());
        self.len = len;
        self.durable = self.durable.min(len);
    }

    /// The chunk holding byte `at`, made private to this file, and the offset inside it.
    fn byte_mut(&mut self, at: usize) -> Option<&mut u8> {
        let mut start = 0;
        for c in &mut self.chunks {
            let n = c.bytes().len();
            if at < start + n {
                return c.own().get_mut(at - start);
            }
            start += n;
        }
        None
    }
}

/// The unit a latent read error takes out.
pub const SECTOR: usize = 512;

/// A directory of [`MemFile`]s.
#[derive(Clone, Debug, Default)]
pub struct MemDir {
    /// Shown in messages (`n3/version-2`).
    pub name: String,
    files: BTreeMap<String, MemFile>,
    /// Sectors (file, index) a read fails on (a latent sector error), until rewritten.
    unreadable: BTreeSet<(String, usize)>,
}

impl MemDir {
    pub fn new(name: impl Into<String>) -> MemDir {
        MemDir {
            name: name.into(),
            files: BTreeMap::new(),
            unreadable: BTreeSet::new(),
        }
    }

    pub fn file(&self, name: &str) -> Option<&MemFile> {
        self.files.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Create (or replace) a file holding `data`, durable at once (written, synced, renamed).
    pub fn put(&mut self, name: &str, data: Vec<u8>) {
        self.forget_unreadable(name, 0);
        let len = data.len();
        self.files.insert(
            name.to_string(),
            MemFile {
                chunks: vec![Chunk::Own(data)],
                len,
                durable: len,
            },
        );
    }

    /// A plain snapshot file of `data` at `zxid`, durable, its data shared with the caller.
    pub fn put_snapshot(&mut self, name: &str, zxid: Zxid, data: Arc<Vec<u8>>) {
        self.forget_unreadable(name, 0);
        let header = plain_header(zxid, &data);
        let len = SNAP_HEADER + data.len();
        self.files.insert(
            name.to_string(),
            MemFile {
                chunks: vec![Chunk::Own(header.to_vec()), Chunk::Shared(data)],
                len,
                durable: len,
            },
        );
    }

    /// Append to `name` (created empty if missing); the bytes are volatile until a sync.
    /// Returns the file's new length.
    pub fn append(&mut self, name: &str, data: &[u8]) -> usize {
        // looked up by reference first: an append is the hot path, a new file is rare
        let f = match self.files.get_mut(name) {
            Some(f) => f,
            None => self.files.entry(name.to_string()).or_default(),
        };
        f.append(data);
        f.len
    }

    /// [`MemDir::append`], then `fix(bytes, offset)` on the bytes just appended, where they
    /// landed (a log record's sum names its offset: [`crate::log::place_record`]).
    pub fn append_with(
        &mut self,
        name: &str,
        data: &[u8],
        fix: impl FnOnce(&mut [u8], usize),
    ) -> usize {
        let f = match self.files.get_mut(name) {
            Some(f) => f,
            None => self.files.entry(name.to_string()).or_default(),
        };
        let at = f.len;
        fix(f.append(data), at);
        f.len
    }

    /// fsync `name` through byte `upto` (at most its length).
    pub fn sync_to(&mut self, name: &str, upto: usize) {
        if let Some(f) = self.files.get_mut(name) {
            f.durable = f.durable.max(upto.min(f.len));
        }
    }

    pub fn remove_file(&mut self, name: &str) -> Option<MemFile> {
        self.forget_unreadable(name, 0);
        self.files.remove(name)
    }

    /// Cut `name` to `len` bytes (an ftruncate, durable).
    pub fn truncate(&mut self, name: &str, len: usize) {
        if let Some(f) = self.files.get_mut(name) {
            f.truncate(len);
            // a sector cut away and written again reads fine
            self.forget_unreadable(name, len.div_ceil(SECTOR));
        }
    }

    /// Sectors of `name` from index `from` on are readable again (rewritten or cut).
    fn forget_unreadable(&mut self, name: &str, from: usize) {
        if !self.unreadable.is_empty() {
            self.unreadable.retain(|(n, s)| n != name || *s < from);
        }
    }

    /// A latent sector error under byte `at` of `name` (a fault): reads of the file fail until
    /// the sector is written again. False when there is no such byte.
    pub fn set_unreadable(&mut self, name: &str, at: usize) -> bool {
        if self.files.get(name).is_none_or(|f| at >= f.len) {
            return false;
        }
        self.unreadable.insert((name.to_string(), at / SECTOR));
        true
    }

    /// Does a read of `name` meet a latent sector error?
    fn read_fails(&self, name: &str) -> bool {
        !self.unreadable.is_empty() && self.unreadable.iter().any(|(n, _)| n == name)
    }

    /// The error a read over a latent sector gets (the caller's error names the file).
    fn latent() -> io::Error {
        io::Error::other("latent sector error (EIO)")
    }

    /// Overwrite `bytes` at `at` of `name`, inside its length (a misdirected write landing
    /// there); durable. False when the range is not all inside the file.
    pub fn write_at(&mut self, name: &str, at: usize, bytes: &[u8]) -> bool {
        let Some(f) = self.files.get_mut(name) else {
            return false;
        };
        if at + bytes.len() > f.len {
            return false;
        }
        for (i, b) in bytes.iter().enumerate() {
            if let Some(d) = f.byte_mut(at + i) {
                *d = *b;
            }
        }
        true
    }

    /// The process died: each file keeps its durable bytes and `keep(name, volatile)` of the
    /// `volatile` bytes after them (asked only for files with some); all that is durable now.
    pub fn crash(&mut self, mut keep: impl FnMut(&str, usize) -> usize) {
        for (name, f) in &mut self.files {
            let volatile = f.len - f.durable;
            if volatile > 0 {
                let k = keep(name, volatile).min(volatile);
                f.truncate(f.durable + k);
            }
            f.durable = f.len;
        }
    }

    /// Flip bit `bit` of byte `at` of `name` (a fault); false when there is no such byte.
    pub fn flip_bit(&mut self, name: &str, at: usize, bit: u8) -> bool {
        match self.files.get_mut(name).and_then(|f| f.byte_mut(at)) {
            Some(b) => {
                *b ^= 1 << (bit % 8);
                true
            }
            None => false,
        }
    }
}

impl Files for MemDir {
    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(&self.name).join(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.keys().cloned().collect())
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        if self.read_fails(name) {
            return Err(MemDir::latent());
        }
        self.files
            .get(name)
            .map(MemFile::bytes)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.forget_unreadable(name, 0);
        self.files
            .remove(name)
            .map(drop)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }

    fn zero_from(&mut self, name: &str, from: u64, _len: u64) -> io::Result<()> {
        // Zeros end a log; not keeping them saves the memory a preallocation would take.
        let f = self
            .files
            .get_mut(name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        f.truncate(from as usize);
        self.forget_unreadable(name, (from as usize).div_ceil(SECTOR));
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn load_snapshot(&self, name: &str) -> Result<(Zxid, RecoveredSnapshot), String> {
        if self.read_fails(name) {
            return Err(MemDir::latent().to_string());
        }
        let f = self.files.get(name).ok_or("no such file")?;
        // Written whole and shared: check it in place rather than copying the data out.
        if let [Chunk::Own(h), Chunk::Shared(data)] = f.chunks.as_slice()
            && h.len() == SNAP_HEADER
        {
            return check_plain(h, data).map(|z| (z, RecoveredSnapshot::Bytes(Arc::clone(data))));
        }
        crate::snapshot::decode_plain(f.bytes())
            .map(|(z, d)| (z, RecoveredSnapshot::Bytes(Arc::new(d))))
    }
}
