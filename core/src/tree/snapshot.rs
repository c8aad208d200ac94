//! Snapshots: the whole tree as bincode bytes, streamed node by node (no second copy of a
//! million-node tree in memory), in path order, so equal trees give equal bytes.
//!
//! Layout: a [`Header`] (magic, format version, last zxid, sessions, the ACL table sorted by
//! content, the node count), then that many [`SnapNode`]s in path order; in format 2 (written
//! only when some znode's data is null), then the sorted paths of those znodes; in format 3
//! (written only when `/zookeeper/config` does not show the committed configuration: a client
//! wrote it since), those paths (maybe none) and then the committed configuration's text, if
//! any; nothing after. Formats 1 and 2 take the configuration from the node.
//! Loading trusts nothing: a size limit bounds every allocation by the input's length, and the
//! structure is checked (sorted valid paths, every parent present, ACL slots in range, zxids
//! not beyond the snapshot's) before a tree is built; child counts, indexes and the digest are
//! recomputed, never read.

use super::{DataTree, Meta, Node, SnapshotError};
use crate::path;
use crate::zxid::Zxid;
use bincode::Options;
use ensemble_proto::proto::{Acl, SessionId};
#[cfg(test)]
use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

pub(super) const MAGIC: [u8; 4] = *b"ENST";
pub(super) const FORMAT: u32 = 1;
/// Format 1 plus the list of null-data znodes after the nodes.
pub(super) const FORMAT_NULL_DATA: u32 = 2;
/// Format 2 plus the committed configuration's text (`Option<String>`) after the list.
pub(super) const FORMAT_CONFIG: u32 = 3;

#[derive(Serialize, Deserialize)]
pub(super) struct Header {
    pub magic: [u8; 4],
    pub format: u32,
    pub last_zxid: u64,
    pub sessions: Vec<(SessionId, i32)>,
    pub acls: Vec<Vec<Acl>>,
    pub node_count: u64,
}

/// One znode as stored, as bincode reads it: the loader reads the same bytes by hand
/// ([`read_node`], held to this by the tests), and the borrowed twin [`SnapNodeRef`] writes them.
#[cfg(test)]
#[derive(Deserialize)]
struct SnapNode {
    path: String,
    data: Bytes,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
    ephemeral_owner: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    acl: u32,
}

#[cfg(test)]
#[derive(Serialize)]
struct SnapNodeRef<'a> {
    path: &'a str,
    data: BytesRef<'a>,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
    ephemeral_owner: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    acl: u32,
}

/// Byte strings go through serde's bytes hooks: one length and a copy, not one call per byte.
#[cfg(test)]
struct BytesRef<'a>(&'a [u8]);

#[cfg(test)]
impl Serialize for BytesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

#[cfg(test)]
struct Bytes(Vec<u8>);

#[cfg(test)]
impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

pub(super) fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_little_endian()
}

pub(super) fn err(what: impl fmt::Display) -> SnapshotError {
    SnapshotError(what.to_string())
}

/// A snapshot written a slice at a time while txns keep applying, so that a big tree never
/// stalls the core for the whole serialisation (ZooKeeper writes a fuzzy snapshot on another
/// thread and makes it consistent by replaying idempotent txns; ours resolve requests when
/// applied, so they are not idempotent, and the snapshot must be exact instead).
///
/// It is exact: the bytes are those [`DataTree::to_snapshot`] gave at the start. Nodes are
/// written in path order behind a cursor; before a node beyond the cursor that existed at the
/// start first changes, its state at the start is kept in `before`, and the writer takes
/// that instead of the live node. The header (sessions, ACL table) and the null-data list are
/// taken at the start, and ACL slots are renumbered with the start's table: a node unchanged
/// since then still holds its slot, and a kept one has its slot of the start.
#[derive(Clone)]
pub(crate) struct SnapshotWriter {
    zxid: Zxid,
    /// The part being filled.
    out: Vec<u8>,
    part_size: usize,
    remap: Vec<u32>,
    /// The last path written; `None` before the first.
    cursor: Option<Box<str>>,
    /// A node created since the start has a czxid beyond the snapshot's zxid: the writer skips
    /// it without an entry here (one per create would cost a map insert and a path copy).
    before: BTreeMap<Box<str>, Node>,
    /// Nodes of the start still to write.
    remaining: u64,
    nulls: Option<Vec<Box<str>>>,
    /// The committed configuration's text of the start, when format 3 carries it.
    config: Option<Option<String>>,
    /// Pieces handed out so far.
    pieces: u32,
}

impl fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("zxid", &self.zxid)
            .field("bytes", &self.out.len())
            .field("cursor", &self.cursor)
            .field("kept", &self.before.len())
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl SnapshotWriter {
    /// Keep `path`'s state before its first change, unless it is written already.
    pub(crate) fn preserve(&mut self, path: &str, nodes: &BTreeMap<Box<str>, Box<Node>>) {
        if self.cursor.as_deref().is_some_and(|c| path <= c) || self.before.contains_key(path) {
            return;
        }
        let zxid = self.zxid.0 as i64;
        if let Some(old) = nodes.get(path).filter(|n| n.meta.czxid <= zxid) {
            self.before.insert(path.into(), Node::clone(old));
        }
    }
}

/// Append `node`'s record: the bytes bincode gives for its [`SnapNodeRef`], encoded by hand
/// (bincode's generic varint path was a sixth of the core thread's time under creates; a
/// test checks the two agree on every field's edge values).
fn write_node(out: &mut Vec<u8>, path: &str, node: &Node, remap: &[u32]) {
    let m = &node.meta;
    let acl = remap[m.acl as usize];
    assert_ne!(acl, u32::MAX, "{path} refers to a dropped ACL slot");
    let start = out.len();
    out.reserve(path.len() + node.data.len() + NODE_RECORD_MAX);
    put_varint(out, path.len() as u64);
    out.extend_from_slice(path.as_bytes());
    put_varint(out, node.data.len() as u64);
    out.extend_from_slice(&node.data);
    // The fixed fields go through a stack buffer: one copy instead of a push per byte.
    let mut tail = [0u8; 6 * 9 + 3 * 5 + 5];
    let mut n = 0;
    for v in [
        m.czxid,
        m.mzxid,
        m.pzxid,
        m.ctime,
        m.mtime,
        m.ephemeral_owner,
    ] {
        n += varint_into(&mut tail[n..], zigzag(v));
    }
    for v in [m.version, m.cversion, m.aversion] {
        n += varint_into(&mut tail[n..], zigzag(i64::from(v)));
    }
    n += varint_into(&mut tail[n..], u64::from(acl));
    out.extend_from_slice(&tail[..n]);
    assert!(
        out.len() - start <= path.len() + node.data.len() + NODE_RECORD_MAX,
        "{path}: a record beyond its bound"
    );
}

/// Why [`read_node`] read no record: the input ends inside it (more bytes may complete it, as
/// a streamed snapshot's next part), or the bytes are not a record.
#[derive(Debug)]
pub(super) enum ReadError {
    Short,
    Bad(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ReadError::Short => f.write_str("the record is cut short"),
            ReadError::Bad(e) => f.write_str(e),
        }
    }
}

/// Read the next node's record from `input` by hand, accepting exactly the bytes bincode
/// accepts for a `SnapNode` and giving the same values (bincode's generic reader took about
/// 1,700 instructions a node: a byte at a time through `io::Read`, and a `String` and a `Vec`
/// allocated per node only to be copied again). The test below holds the two together.
pub(super) fn read_node<'a>(input: &mut &'a [u8]) -> Result<NodeRecord<'a>, ReadError> {
    let path = std::str::from_utf8(read_bytes(input)?)
        .map_err(|e| ReadError::Bad(format!("path: {e}")))?;
    let data = read_bytes(input)?;
    let mut i64s = [0i64; 6];
    for v in &mut i64s {
        *v = unzigzag(read_varint(input)?);
    }
    let mut i32s = [0i32; 3];
    for v in &mut i32s {
        let n = unzigzag(read_varint(input)?);
        *v = i32::try_from(n).map_err(|_| ReadError::Bad(format!("invalid i32 {n}")))?;
    }
    let acl = read_varint(input)?;
    let acl = u32::try_from(acl).map_err(|_| ReadError::Bad(format!("invalid u32 {acl}")))?;
    let [czxid, mzxid, pzxid, ctime, mtime, ephemeral_owner] = i64s;
    let [version, cversion, aversion] = i32s;
    let meta = Meta {
        czxid,
        mzxid,
        pzxid,
        ctime,
        mtime,
        ephemeral_owner,
        version,
        cversion,
        aversion,
        acl,
        // derived, never stored
        num_children: 0,
    };
    Ok((path, data, meta))
}

/// A node's record: its path and data (borrowed from the input) and its fixed fields.
pub(super) type NodeRecord<'a> = (&'a str, &'a [u8], Meta);

/// The next `n` bytes of `input`, never beyond its end.
fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], ReadError> {
    if n > input.len() {
        return Err(ReadError::Short);
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

/// A length-prefixed byte string (bincode's `String` and bytes).
fn read_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], ReadError> {
    let n = read_varint(input)?;
    // a length beyond the input is cut short: more bytes may complete it
    let n = usize::try_from(n).map_err(|_| ReadError::Short)?;
    take(input, n)
}

/// bincode's varint as [`varint_into`] writes it (a wider form than needed is accepted, as
/// bincode accepts it; the u128 marker and the reserved ones are not).
#[inline(always)]
fn read_varint(input: &mut &[u8]) -> Result<u64, ReadError> {
    // most of a node's fields are one byte (versions, small data, the ACL slot)
    match input.split_first() {
        Some((&b, rest)) if b <= 250 => {
            *input = rest;
            Ok(u64::from(b))
        }
        _ => read_wide_varint(input),
    }
}

/// The 3-, 5- and 9-byte forms (zxids and times take them).
#[inline]
fn read_wide_varint(input: &mut &[u8]) -> Result<u64, ReadError> {
    let marker = take(input, 1)?[0];
    let mut le = [0u8; 8];
    let width = match marker {
        0..=250 => return Ok(u64::from(marker)),
        251 => 2,
        252 => 4,
        253 => 8,
        _ => return Err(ReadError::Bad(format!("varint marker {marker}"))),
    };
    le[..width].copy_from_slice(take(input, width)?);
    Ok(u64::from_le_bytes(le))
}

/// bincode's zigzag decoding, the inverse of [`zigzag`].
#[inline]
fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// bincode's varint into a buffer with room for 9 bytes: one byte up to 250, else a marker byte
/// and 2, 4 or 8 little-endian bytes. Returns the bytes written. Always inlined: a snapshot
/// writes ten per node, and as a call each cost about as much again as its work.
#[inline(always)]
fn varint_into(buf: &mut [u8], n: u64) -> usize {
    if n <= 250 {
        buf[0] = n as u8;
        1
    } else if n <= u64::from(u16::MAX) {
        buf[0] = 251;
        buf[1..3].copy_from_slice(&(n as u16).to_le_bytes());
        3
    } else if n <= u64::from(u32::MAX) {
        buf[0] = 252;
        buf[1..5].copy_from_slice(&(n as u32).to_le_bytes());
        5
    } else {
        buf[0] = 253;
        buf[1..9].copy_from_slice(&n.to_le_bytes());
        9
    }
}

/// Bytes a node's record takes at most beyond its path and data: two lengths, six i64s, three
/// i32s and a u32, each a varint.
const NODE_RECORD_MAX: usize = 2 * 9 + 6 * 9 + 3 * 5 + 5;

/// Append `n` as [`varint_into`] writes it.
#[inline(always)]
fn put_varint(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 9];
    let k = varint_into(&mut buf, n);
    out.extend_from_slice(&buf[..k]);
}

/// bincode's zigzag for signed varints.
#[inline(always)]
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// Bytes of a snapshot part: big enough that a part is one cheap write, small enough that a
/// few of them in flight cost little memory.
pub const SNAPSHOT_PART: usize = 1 << 20;
/// Part buffers kept for reuse.
const PART_POOL: usize = 8;
/// The least room a part buffer has past its part's size, for the node record that ends it.
const PART_SLACK: usize = 4 << 10;

/// Some bytes of a snapshot being written, in order: `parts` before the last piece, and the
/// last piece (`last`) once the snapshot is complete.
#[derive(Debug)]
pub struct SnapshotPiece {
    pub zxid: Zxid,
    /// Its index among the pieces of this snapshot, from 0.
    pub index: u32,
    pub data: Arc<Vec<u8>>,
    pub last: bool,
}

/// The runtime's side of the contract of `SnapshotPart` and `Snapshot` effects: which snapshot
/// the parts so far belong to, which part comes next, and what the runtime builds from them
/// (`T`: the bytes in memory, or a file being written).
#[derive(Clone, Debug)]
pub struct SnapshotParts<T> {
    pending: Option<(Zxid, u32, T)>,
}

impl<T> Default for SnapshotParts<T> {
    fn default() -> Self {
        SnapshotParts { pending: None }
    }
}

/// A `Snapshot` effect's parts did not all come before it, in order: the core broke its
/// contract.
#[derive(Debug, PartialEq, Eq)]
pub struct PartsMissing;

impl<T> SnapshotParts<T> {
    /// Part `index` of the snapshot at `zxid`. Part 0 drops whatever an unfinished snapshot
    /// left and starts what this one builds with `start`. Returns what the part extends, or
    /// `None` when it comes out of order (and then nothing stays pending).
    pub fn part(&mut self, zxid: Zxid, index: u32, start: impl FnOnce() -> T) -> Option<&mut T> {
        if index == 0 {
            // What the unfinished one built goes first: a runtime's file for it may be the
            // very file `start` creates (a SNAP of the same zxid begun again).
            self.pending = None;
            self.pending = Some((zxid, 0, start()));
        }
        if !matches!(&self.pending, Some((z, next, _)) if *z == zxid && *next == index) {
            self.pending = None;
            return None;
        }
        let (_, next, built) = self.pending.as_mut()?;
        *next += 1;
        Some(built)
    }

    /// The `Snapshot` effect at `zxid` that ends `parts` parts: what they built (`None` when
    /// there were none: its data is the whole snapshot). Nothing stays pending either way.
    pub fn finish(&mut self, zxid: Zxid, parts: u32) -> Result<Option<T>, PartsMissing> {
        let pending = self.pending.take();
        if parts == 0 {
            return Ok(None);
        }
        match pending {
            Some((z, next, built)) if z == zxid && next == parts => Ok(Some(built)),
            _ => Err(PartsMissing),
        }
    }

    /// Drop the snapshot being built, if any (the tree it was of was replaced).
    pub fn abandon(&mut self) {
        self.pending = None;
    }
}

/// Puts a snapshot's parts back together, for runtimes that keep snapshots in memory (the
/// simulator, the fuzzers): `SnapshotPart` effects go to [`SnapshotAssembler::part`], and the
/// `Snapshot` that ends them to [`SnapshotAssembler::finish`]. A runtime that crashes drops it.
#[derive(Clone, Debug, Default)]
pub struct SnapshotAssembler {
    parts: SnapshotParts<Vec<u8>>,
    /// The size of the last snapshot put together: the next one is about as large, so its
    /// buffer starts there instead of growing (and copying) part by part.
    last_len: usize,
}

impl SnapshotAssembler {
    /// A part of the snapshot at `zxid`.
    pub fn part(&mut self, zxid: Zxid, index: u32, data: &[u8]) {
        let hint = self.last_len.saturating_add(self.last_len / 8);
        if let Some(bytes) = self
            .parts
            .part(zxid, index, || Vec::with_capacity(hint.max(data.len())))
        {
            bytes.extend_from_slice(data);
        }
    }

    /// The whole snapshot a `Snapshot` effect ends; `None` if its parts did not all come in
    /// order before it (the core broke its contract).
    pub fn finish(&mut self, zxid: Zxid, parts: u32, data: Arc<Vec<u8>>) -> Option<Arc<Vec<u8>>> {
        match self.parts.finish(zxid, parts).ok()? {
            None => Some(data),
            Some(mut bytes) => {
                bytes.extend_from_slice(&data);
                self.last_len = bytes.len();
                Some(Arc::new(bytes))
            }
        }
    }
}

/// An empty buffer for the next part: a pooled one the runtime is done with, or a new one.
fn take_part_buffer(pool: &mut Vec<Arc<Vec<u8>>>, part_size: usize) -> Vec<u8> {
    if let Some(i) = pool.iter().position(|p| Arc::strong_count(p) == 1) {
        match Arc::try_unwrap(pool.swap_remove(i)) {
            Ok(mut buf) => {
                buf.clear();
                return buf;
            }
            Err(shared) => pool.push(shared), // taken meanwhile: leave it
        }
    }
    // Room for the node that ends a part: it goes a little past `part_size` (at least a few
    // KiB past: with small parts a node record alone is larger than an eighth of one, and
    // growing the buffer copies it).
    Vec::with_capacity(
        part_size
            .saturating_add((part_size / 8).max(PART_SLACK))
            .min(2 * SNAPSHOT_PART),
    )
}

/// Append what follows the nodes: the null-data paths (formats 2 and 3), then the committed
/// configuration's text (format 3).
fn write_tail(out: &mut Vec<u8>, nulls: Option<&[Box<str>]>, config: Option<&Option<String>>) {
    if let Some(nulls) = nulls {
        let nulls: Vec<&str> = nulls.iter().map(|p| &**p).collect();
        nulls
            .serialize(&mut bincode::Serializer::new(&mut *out, options()))
            .expect("serialising to memory");
    }
    if let Some(config) = config {
        config
            .serialize(&mut bincode::Serializer::new(out, options()))
            .expect("serialising to memory");
    }
}

/// Hand `data` out as the next piece, keeping a reference to reuse its buffer later.
fn hand_out(
    pool: &mut Vec<Arc<Vec<u8>>>,
    zxid: Zxid,
    pieces: &mut u32,
    data: Vec<u8>,
    last: bool,
) -> SnapshotPiece {
    let data = Arc::new(data);
    if pool.len() < PART_POOL && data.capacity() <= 2 * SNAPSHOT_PART {
        pool.push(Arc::clone(&data));
    }
    let index = *pieces;
    assert!(index < u32::MAX, "a snapshot of 2^32 pieces");
    *pieces += 1;
    SnapshotPiece {
        zxid,
        index,
        data,
        last,
    }
}

impl DataTree {
    /// The header and the ACL slot renumbering of a snapshot of the tree as it is now.
    fn snapshot_header(&self) -> (Header, Vec<u32>) {
        // Renumber ACL slots by content, so slot reuse history does not reach the bytes.
        let mut remap = vec![u32::MAX; self.acls.slots()];
        let mut table = Vec::new();
        for (acl, slot) in self.acls.sorted() {
            remap[slot as usize] = table.len() as u32;
            table.push(acl.clone());
        }
        let header = Header {
            magic: MAGIC,
            // format 1 bytes stay exactly as they were while no znode has null data and the
            // config node shows the committed configuration
            format: if !self.config_shown() {
                FORMAT_CONFIG
            } else if self.null_data.is_empty() {
                FORMAT
            } else {
                FORMAT_NULL_DATA
            },
            last_zxid: self.last_zxid.0,
            sessions: self.sessions.iter().map(|(s, t)| (*s, *t)).collect(),
            acls: table,
            node_count: self.nodes.len() as u64,
        };
        // What the loader requires of a header, met by construction (sorted maps).
        assert!(header.acls.windows(2).all(|w| w[0] < w[1]), "ACLs unsorted");
        assert!(
            header.sessions.windows(2).all(|w| w[0].0 < w[1].0),
            "sessions unsorted"
        );
        (header, remap)
    }

    /// The whole state as bytes; equal trees (whatever their history) give equal bytes.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let (header, remap) = self.snapshot_header();
        let mut out = Vec::with_capacity(self.data_size as usize + 64 * self.nodes.len());
        header
            .serialize(&mut bincode::Serializer::new(&mut out, options()))
            .expect("serialising to memory");
        for (path, node) in &self.nodes {
            write_node(&mut out, path, node, &remap);
        }
        let (nulls, config) = self.snapshot_tail(header.format);
        write_tail(&mut out, nulls.as_deref(), config.as_ref());
        out
    }

    /// What a snapshot of format `format` writes after its nodes, as the tree is now.
    fn snapshot_tail(&self, format: u32) -> (Option<Vec<Box<str>>>, Option<Option<String>>) {
        let nulls = (format != FORMAT).then(|| self.null_data.iter().cloned().collect());
        let config = (format == FORMAT_CONFIG).then(|| self.config.as_ref().map(|m| m.to_text()));
        (nulls, config)
    }

    /// Start a snapshot of the state as it is now (at [`DataTree::last_zxid`]), to be written
    /// by [`DataTree::continue_snapshot`] while txns keep applying, in pieces of about
    /// `part_size` bytes. One at a time.
    pub fn begin_snapshot(&mut self, part_size: usize) {
        assert!(self.snap.is_none(), "a snapshot is already being written");
        assert!(part_size > 0, "snapshot parts hold at least a byte");
        let (header, remap) = self.snapshot_header();
        let mut out = take_part_buffer(&mut self.part_pool, part_size);
        header
            .serialize(&mut bincode::Serializer::new(&mut out, options()))
            .expect("serialising to memory");
        let (nulls, config) = self.snapshot_tail(header.format);
        self.snap = Some(Box::new(SnapshotWriter {
            zxid: self.last_zxid,
            out,
            part_size,
            remap,
            cursor: None,
            before: BTreeMap::new(),
            remaining: header.node_count,
            nulls,
            config,
            pieces: 0,
        }));
        assert_eq!(
            self.snapshot_remaining(),
            self.nodes.len() as u64,
            "the writer owes every node of the start"
        );
    }

    /// Stop writing the snapshot begun, if any: it will never end (its parts already handed
    /// out are dropped by the runtime when another snapshot starts or ends).
    pub fn abandon_snapshot(&mut self) {
        self.snap = None;
    }

    /// The zxid of the snapshot being written, if one is.
    pub fn snapshot_in_progress(&self) -> Option<Zxid> {
        self.snap.as_ref().map(|w| w.zxid)
    }

    /// Nodes the snapshot being written has still to write (0 if none is).
    pub fn snapshot_remaining(&self) -> u64 {
        self.snap.as_ref().map_or(0, |w| w.remaining)
    }

    /// Write up to `budget` more nodes of the snapshot begun. Returns the pieces filled meanwhile
    /// and, once the snapshot is complete, its last piece: all of them in order make the bytes
    /// [`DataTree::to_snapshot`] gave when it began.
    pub fn continue_snapshot(&mut self, budget: usize) -> Vec<SnapshotPiece> {
        let mut pieces = Vec::new();
        let Some(w) = self.snap.as_mut() else {
            return pieces;
        };
        let lower = match &w.cursor {
            Some(c) => Bound::Excluded(&**c),
            None => Bound::Unbounded,
        };
        let mut live = self
            .nodes
            .range::<str, _>((lower, Bound::Unbounded))
            .peekable();
        let mut kept = w
            .before
            .range::<str, _>((lower, Bound::Unbounded))
            .peekable();
        let mut last: Option<&str> = None;
        let mut taken_before = 0usize;
        let mut steps = 0usize;
        let complete = loop {
            if steps >= budget {
                break false;
            }
            steps += 1;
            let from_before = match (live.peek(), kept.peek()) {
                (None, None) => break true,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((l, _)), Some((k, _))) => k <= l,
            };
            if from_before {
                let (k, old) = kept.next().expect("peeked");
                if live.peek().is_some_and(|(l, _)| *l == k) {
                    live.next(); // changed or created since the start: the kept state counts
                }
                taken_before += 1;
                last = Some(k);
                write_node(&mut w.out, k, old, &w.remap);
                assert!(w.remaining > 0, "more nodes written than the header counts");
                w.remaining -= 1;
            } else {
                let (l, node) = live.next().expect("peeked");
                last = Some(l);
                if node.meta.czxid > w.zxid.0 as i64 {
                    continue; // created since the start
                }
                write_node(&mut w.out, l, node, &w.remap);
                assert!(w.remaining > 0, "more nodes written than the header counts");
                w.remaining -= 1;
            }
            if w.out.len() >= w.part_size {
                let next = take_part_buffer(&mut self.part_pool, w.part_size);
                let full = std::mem::replace(&mut w.out, next);
                pieces.push(hand_out(
                    &mut self.part_pool,
                    w.zxid,
                    &mut w.pieces,
                    full,
                    false,
                ));
            }
        };
        assert!(taken_before <= w.before.len(), "kept nodes written twice");
        if let Some(l) = last {
            let l: Box<str> = l.into();
            // Written: drop what was kept for them.
            for _ in 0..taken_before {
                w.before.pop_first();
            }
            w.cursor = Some(l);
        }
        if !complete {
            return pieces;
        }
        let mut w = self.snap.take().expect("in progress");
        assert_eq!(
            w.remaining, 0,
            "snapshot node count and nodes written differ"
        );
        assert!(w.before.is_empty());
        write_tail(&mut w.out, w.nulls.as_deref(), w.config.as_ref());
        pieces.push(hand_out(
            &mut self.part_pool,
            w.zxid,
            &mut w.pieces,
            w.out,
            true,
        ));
        pieces
    }

    /// Write the rest of the snapshot begun at once.
    pub fn finish_snapshot(&mut self) -> Vec<SnapshotPiece> {
        self.continue_snapshot(usize::MAX)
    }

    /// Snapshot bytes from parts: `acls` sorted and distinct, `nodes` in path order with ACL
    /// slots into `acls`, `nulls` the null-data paths in order. [`DataTree::from_snapshot`]
    /// then checks them as it checks any snapshot.
    pub(super) fn snapshot_from_parts<'a>(
        last_zxid: Zxid,
        sessions: Vec<(SessionId, i32)>,
        acls: Vec<Vec<Acl>>,
        nodes: impl ExactSizeIterator<Item = (&'a str, Node)>,
        nulls: &[&str],
    ) -> Vec<u8> {
        let header = Header {
            magic: MAGIC,
            format: if nulls.is_empty() {
                FORMAT
            } else {
                FORMAT_NULL_DATA
            },
            last_zxid: last_zxid.0,
            sessions,
            acls,
            node_count: nodes.len() as u64,
        };
        let remap: Vec<u32> = (0..header.acls.len() as u32).collect();
        let mut out = Vec::new();
        header
            .serialize(&mut bincode::Serializer::new(&mut out, options()))
            .expect("serialising to memory");
        for (path, node) in nodes {
            assert!(
                (node.meta.acl as usize) < remap.len(),
                "{path}: ACL slot out of range"
            );
            write_node(&mut out, path, &node, &remap);
        }
        if !nulls.is_empty() {
            nulls
                .serialize(&mut bincode::Serializer::new(&mut out, options()))
                .expect("serialising to memory");
        }
        out
    }

    /// Indexes, data size and digest from the nodes just loaded.
    pub(super) fn rebuild_derived(&mut self) -> Result<(), SnapshotError> {
        assert!(
            self.data_size == 0 && self.nodes_digest == 0 && self.quotas.is_empty(),
            "derived state rebuilt onto a tree that has some"
        );
        let nodes = std::mem::take(&mut self.nodes);
        let mut result = Ok(());
        for (path, node) in &nodes {
            let owner = self.ephemeral_type(node.meta.ephemeral_owner);
            let ephemeral = matches!(owner, super::EphemeralType::Normal(_));
            if ephemeral && node.meta.num_children > 0 && result.is_ok() {
                result = Err(err(format_args!("ephemeral {path} has children")));
            }
            self.nodes_digest = self
                .nodes_digest
                .wrapping_add(super::node_hash(&self.acls, path, node));
            self.data_size += path::java_len(path) + node.data.len() as u64;
            self.index_owner(path, node.meta.ephemeral_owner, true);
            self.index_quota(path, true);
        }
        self.nodes = nodes;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Meta;

    /// Parts in order build one snapshot; part 0 starts afresh; a gap, a wrong zxid or a
    /// wrong count loses it; a whole snapshot drops what was pending.
    #[test]
    fn snapshot_parts_follow_the_contract() {
        let (a, b) = (Zxid(5), Zxid(9));
        let mut p = SnapshotParts::<Vec<u32>>::default();
        for i in 0..3 {
            p.part(a, i, Vec::new).expect("in order").push(i);
        }
        assert_eq!(p.finish(a, 3), Ok(Some(vec![0, 1, 2])));
        p.part(a, 0, Vec::new).expect("a start");
        p.part(b, 0, Vec::new).expect("a new start").push(7);
        assert_eq!(p.finish(b, 1), Ok(Some(vec![7])));
        p.part(a, 0, Vec::new).expect("a start");
        assert!(p.part(a, 2, Vec::new).is_none(), "a gap");
        assert!(
            p.part(a, 3, Vec::new).is_none(),
            "nothing pending after a gap"
        );
        assert_eq!(p.finish(a, 4), Err(PartsMissing));
        p.part(a, 0, Vec::new).expect("a start");
        assert!(p.part(b, 1, Vec::new).is_none(), "another zxid");
        p.part(a, 0, Vec::new).expect("a start");
        assert_eq!(p.finish(a, 2), Err(PartsMissing), "a wrong count");
        p.part(a, 0, Vec::new).expect("a start");
        assert_eq!(p.finish(b, 0), Ok(None), "a whole snapshot");
        assert_eq!(
            p.finish(a, 1),
            Err(PartsMissing),
            "it dropped the pending one"
        );
    }

    /// The hand-written record is the bytes bincode writes for `SnapNodeRef`, which
    /// `SnapNode` reads back: every varint width and sign edge in every field.
    #[test]
    fn node_records_are_bincodes_bytes() {
        let i64s = [
            0,
            1,
            -1,
            125,
            126,
            -126,
            250,
            251,
            32767,
            32768,
            65535,
            65536,
            -65536,
            i64::from(i32::MAX),
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
            0x7fff_ffff_0000_0001,
            i64::MAX,
            i64::MIN,
        ];
        let i32s = [
            0,
            1,
            -1,
            125,
            126,
            250,
            32767,
            32768,
            -32769,
            i32::MAX,
            i32::MIN,
        ];
        let u32s = [0, 250, 251, 65535, 65536, u32::MAX - 1];
        let paths = ["/", "/a", &"/p".repeat(200), &"/q".repeat(40_000)];
        let datas = [vec![], vec![7u8; 250], vec![1u8; 251], vec![2u8; 70_000]];
        for (i, &a) in i64s.iter().enumerate() {
            let b = i64s[(i * 7 + 3) % i64s.len()];
            let v = i32s[i % i32s.len()];
            let acl = u32s[i % u32s.len()];
            let path = paths[i % paths.len()];
            let data = &datas[(i / 2) % datas.len()];
            let mut remap = vec![u32::MAX; 3];
            remap[2] = acl;
            let mut meta = Meta::new(a, a, b, 2);
            meta.pzxid = b;
            meta.ctime = b;
            meta.mtime = a;
            meta.ephemeral_owner = a ^ b;
            meta.version = v;
            meta.cversion = v.wrapping_neg();
            meta.aversion = i32s[(i + 5) % i32s.len()];
            let node = Node {
                data: data.clone().into_boxed_slice(),
                meta,
            };
            let mut ours = Vec::new();
            write_node(&mut ours, path, &node, &remap);
            let theirs = bincode::Options::serialize(
                options(),
                &SnapNodeRef {
                    path,
                    data: BytesRef(&node.data),
                    czxid: meta.czxid,
                    mzxid: meta.mzxid,
                    pzxid: meta.pzxid,
                    ctime: meta.ctime,
                    mtime: meta.mtime,
                    ephemeral_owner: meta.ephemeral_owner,
                    version: meta.version,
                    cversion: meta.cversion,
                    aversion: meta.aversion,
                    acl,
                },
            )
            .expect("serialises");
            assert!(ours == theirs, "record {i} differs");
            assert!(ours.len() <= path.len() + data.len() + NODE_RECORD_MAX);
            let back: SnapNode = bincode::Options::deserialize(options(), &ours).expect("reads");
            assert_eq!((back.czxid, back.ctime, back.acl), (a, b, acl));
            // the hand reader reads what bincode reads, all of it
            let mut rest = &ours[..];
            let (path, data, m) = read_node(&mut rest).expect("reads by hand");
            assert!(rest.is_empty(), "record {i} not read to its end");
            assert_eq!((path, data), (back.path.as_str(), &back.data.0[..]));
            assert_eq!(
                [
                    m.czxid,
                    m.mzxid,
                    m.pzxid,
                    m.ctime,
                    m.mtime,
                    m.ephemeral_owner
                ],
                [
                    back.czxid,
                    back.mzxid,
                    back.pzxid,
                    back.ctime,
                    back.mtime,
                    back.ephemeral_owner
                ]
            );
            assert_eq!(
                [m.version, m.cversion, m.aversion],
                [back.version, back.cversion, back.aversion]
            );
            assert_eq!((m.acl, m.num_children), (back.acl, 0));
            // and refuses what bincode refuses: every record cut short
            for cut in 0..ours.len() {
                let short = &ours[..cut];
                let theirs: Result<SnapNode, _> = bincode::Options::deserialize(options(), short);
                assert!(theirs.is_err() && read_node(&mut &short[..]).is_err());
            }
        }
    }

    /// Varints and casts bincode refuses, the hand reader refuses; wide forms it takes, it
    /// takes with the same value.
    #[test]
    fn the_hand_reader_refuses_what_bincode_refuses() {
        let record = |tail: &[u8]| {
            let mut r = vec![1, b'/', 0];
            r.extend_from_slice(tail);
            r
        };
        let fields = |v: &[u8]| {
            let mut t = Vec::new();
            for _ in 0..10 {
                t.extend_from_slice(v);
            }
            t
        };
        let cases: Vec<Vec<u8>> = vec![
            record(&fields(&[0])),
            record(&fields(&[251, 1, 0])),
            record(&fields(&[252, 2, 0, 0, 0])),
            record(&fields(&[253, 3, 0, 0, 0, 0, 0, 0, 0])),
            record(&fields(&[
                254, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ])),
            record(&fields(&[255])),
            // an i32 beyond its range, a u32 beyond its range
            record(&fields(&[253, 0, 0, 0, 0, 1, 0, 0, 0])),
            vec![2, 0xff, 0xfe, 0],
            vec![253, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let theirs: Result<SnapNode, _> = bincode::Options::deserialize(options(), bytes);
            let mut rest = &bytes[..];
            let ours = read_node(&mut rest);
            match (&theirs, &ours) {
                (Ok(t), Ok((_, _, o))) => {
                    assert_eq!((t.czxid, t.version, t.acl), (o.czxid, o.version, o.acl));
                    assert!(rest.is_empty(), "case {i}");
                }
                (Err(_), Err(_)) => {}
                _ => panic!(
                    "case {i}: bincode {:?}, by hand {:?}",
                    theirs.is_ok(),
                    ours.is_ok()
                ),
            }
        }
    }
}
