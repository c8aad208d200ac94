//! ZooKeeper's snapshot files (`FileSnap`, `SnapStream`, `SerializeUtils.deserializeSnapshot`,
//! `DataTree.serialize`), read and written.
//!
//! Layout of the (decompressed) stream: `FileHeader` (magic "ZKSN", version 2, dbid); the
//! sessions (count, then id/timeout pairs); the ACL cache (count, then index → ACL vector);
//! the nodes in preorder (path — the root's is "" — data, ACL index (-1: open), then
//! `StatPersisted`), ended by the path "/"; the seal (Adler32 of every byte so far, then the
//! string "/"); since 3.6 a `ZxidDigest` (zxid, digest version, tree digest) and a second seal.
//! Compression (`zookeeper.snapshot.compression.method`) wraps the whole stream: `.gz` is
//! gzip, `.snappy` is snappy-java's stream format; the checksum is of the uncompressed bytes.

use super::jute::{Adler32, InputArchive, JuteError, OutputArchive};
use super::records::{StatPersisted, read_acls, read_stat, write_acls, write_stat};
use ensemble_proto::proto::Acl;
use std::collections::BTreeMap;
use std::io::Read;

pub const SNAP_MAGIC: [u8; 4] = *b"ZKSN";
pub const VERSION: i32 = 2;
/// `ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID`.
pub const OPEN_ACL_INDEX: i64 = -1;
/// snappy-java's stream header (`SnappyCodec.MAGIC_HEADER`).
const SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One znode as a snapshot holds it; `path` is "/" for the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkNode {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: i64,
    pub stat: StatPersisted,
}

/// `ZxidDigest`: the tree digest as of `zxid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub version: i32,
    pub digest: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZkSnapshot {
    pub dbid: i64,
    /// Session id → timeout (ms), sorted by id.
    pub sessions: Vec<(i64, i32)>,
    pub acls: BTreeMap<i64, Vec<Acl>>,
    /// In preorder, the root first.
    pub nodes: Vec<ZkNode>,
    pub digest: Option<ZxidDigest>,
}

impl ZkSnapshot {
    /// The ACL list a node's index stands for.
    pub fn acl(&self, index: i64) -> Option<Vec<Acl>> {
        if index == OPEN_ACL_INDEX {
            return Some(Acl::open_unsafe());
        }
        self.acls.get(&index).cloned()
    }
}

/// The uncompressed stream of a snapshot file's bytes, by their magic (a file's name may
/// have lost its suffix in a copy).
pub fn decompress(file: &[u8]) -> Result<Vec<u8>, JuteError> {
    if file.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(file)
            .read_to_end(&mut out)
            .map_err(|e| JuteError {
                offset: 0,
                reason: format!("gzip: {e} (after {} bytes decompressed)", out.len()),
            })?;
        return Ok(out);
    }
    if file.starts_with(&SNAPPY_MAGIC) {
        return snappy_java_stream(file);
    }
    Ok(file.to_vec())
}

/// snappy-java's `SnappyOutputStream` format: the 8-byte magic, version and compatible
/// version (ints), then blocks of an int length and that many bytes of raw snappy.
fn snappy_java_stream(file: &[u8]) -> Result<Vec<u8>, JuteError> {
    let mut i = InputArchive::new(file, 0);
    for _ in 0..8 {
        i.byte("snappy magic")?;
    }
    i.int("snappy version")?;
    i.int("snappy compatible version")?;
    let mut out = Vec::new();
    let mut dec = snap::raw::Decoder::new();
    while i.remaining() > 0 {
        let at = i.offset();
        let block = i
            .buffer("snappy block")?
            .ok_or_else(|| i.error("null snappy block"))?;
        let n = snap::raw::decompress_len(block).map_err(|e| JuteError {
            offset: at,
            reason: format!("snappy block: {e}"),
        })?;
        // A block claims its size; snappy-java's blocks are at most 32 KiB by default and a
        // block cannot expand more than about 6 times... bounded by the claim itself, which
        // the decoder checks as it writes.
        if n > block.len().saturating_mul(64) + 64 {
            return Err(JuteError {
                offset: at,
                reason: format!("snappy block claims {n} bytes from {}", block.len()),
            });
        }
        let start = out.len();
        out.resize(start + n, 0);
        dec.decompress(block, &mut out[start..])
            .map_err(|e| JuteError {
                offset: at,
                reason: format!("snappy block: {e}"),
            })?;
    }
    Ok(out)
}

/// The checksum seal: the Adler32 of everything before it, then "/".
fn check_seal(i: &mut InputArchive, stream: &[u8], what: &str) -> Result<(), JuteError> {
    let expect = Adler32::of(&stream[..i.pos()]);
    let at = i.offset();
    let val = i.long("checksum")?;
    let slash = i.ustring("seal")?;
    if slash != "/" {
        return Err(JuteError {
            offset: at + 8,
            reason: format!("{what}: seal is {slash:?}, not \"/\""),
        });
    }
    if val != expect {
        return Err(JuteError {
            offset: at,
            reason: format!(
                "{what}: checksum {:#x} but the bytes before it sum to {:#x}",
                val, expect
            ),
        });
    }
    Ok(())
}

/// The database as `SerializeUtils.serializeSnapshot` writes it (sessions, the ACL cache, the
/// nodes in preorder ending with "/"): the body of a snapshot file, and what a leader streams
/// to a learner after SNAP.
pub fn decode_body(i: &mut InputArchive, snap: &mut ZkSnapshot) -> Result<(), JuteError> {
    let n = i.count("session count", 12)?;
    let mut sessions = BTreeMap::new();
    for _ in 0..n {
        let id = i.long("session id")?;
        let timeout = i.int("session timeout")?;
        sessions.insert(id, timeout);
    }
    snap.sessions = sessions.into_iter().collect();
    let n = i.count("ACL cache size", 12)?;
    for _ in 0..n {
        let at = i.offset();
        let index = i.long("ACL index")?;
        let acl = read_acls(i)?;
        if snap.acls.insert(index, acl).is_some() {
            return Err(JuteError {
                offset: at,
                reason: format!("ACL index {index} twice"),
            });
        }
    }
    let mut seen_root = false;
    loop {
        let at = i.offset();
        let path = i.ustring("path")?;
        if path == "/" {
            break;
        }
        let path = if path.is_empty() {
            if seen_root {
                return Err(JuteError {
                    offset: at,
                    reason: "a second root".into(),
                });
            }
            seen_root = true;
            "/".to_string()
        } else {
            if !seen_root {
                return Err(JuteError {
                    offset: at,
                    reason: format!("{path} before the root"),
                });
            }
            path
        };
        let data = i.buffer("data")?.map(<[u8]>::to_vec);
        let acl = i.long("acl")?;
        if acl != OPEN_ACL_INDEX && !snap.acls.contains_key(&acl) {
            return Err(JuteError {
                offset: at,
                reason: format!("{path}: ACL index {acl} not in the ACL cache"),
            });
        }
        let stat = read_stat(i)?;
        snap.nodes.push(ZkNode {
            path,
            data,
            acl,
            stat,
        });
    }
    if !seen_root {
        return Err(i.error("no root node"));
    }
    Ok(())
}

/// Decode a whole snapshot stream (decompressed: see [`decompress`]).
pub fn decode(stream: &[u8]) -> Result<ZkSnapshot, JuteError> {
    let mut i = InputArchive::new(stream, 0);
    let magic = i.int("magic")?;
    if magic.to_be_bytes() != SNAP_MAGIC {
        return Err(JuteError {
            offset: 0,
            reason: format!("not a ZooKeeper snapshot (magic {magic:#010x}, not \"ZKSN\")"),
        });
    }
    let version = i.int("version")?;
    if version != VERSION {
        return Err(JuteError {
            offset: 4,
            reason: format!("snapshot format version {version}, only {VERSION} is known"),
        });
    }
    let mut snap = ZkSnapshot {
        dbid: i.long("dbid")?,
        ..ZkSnapshot::default()
    };
    decode_body(&mut i, &mut snap)?;
    check_seal(&mut i, stream, "tree")?;
    if i.remaining() > 0 {
        let digest = ZxidDigest {
            zxid: i.long("digest zxid")?,
            version: i.int("digest version")?,
            digest: i.long("digest")?,
        };
        check_seal(&mut i, stream, "digest")?;
        snap.digest = Some(digest);
    }
    // 3.9 adds the last processed zxid with its own seal; nothing else may follow.
    if i.remaining() > 0 {
        i.long("lastProcessedZxid")?;
        check_seal(&mut i, stream, "last processed zxid")?;
    }
    if i.remaining() > 0 {
        return Err(i.error(format!("{} bytes after the snapshot", i.remaining())));
    }
    Ok(snap)
}

/// Encode as `FileSnap.serialize` writes (uncompressed, `CHECKED`), with the digest and its
/// seal when `snap.digest` is set. Nodes must be in preorder, the root first.
pub fn encode(snap: &ZkSnapshot) -> Vec<u8> {
    let mut o = OutputArchive::default();
    o.out.extend_from_slice(&SNAP_MAGIC);
    o.int(VERSION);
    o.long(snap.dbid);
    o.int(i32::try_from(snap.sessions.len()).expect("fewer than 2^31 sessions"));
    for &(id, timeout) in &snap.sessions {
        o.long(id);
        o.int(timeout);
    }
    o.int(i32::try_from(snap.acls.len()).expect("fewer than 2^31 ACL lists"));
    for (index, acl) in &snap.acls {
        o.long(*index);
        write_acls(&mut o, acl);
    }
    for n in &snap.nodes {
        o.ustring(if n.path == "/" { "" } else { &n.path });
        o.buffer(n.data.as_deref());
        o.long(n.acl);
        write_stat(&mut o, &n.stat);
    }
    o.ustring("/");
    seal(&mut o);
    if let Some(d) = snap.digest {
        o.long(d.zxid);
        o.int(d.version);
        o.long(d.digest);
        seal(&mut o);
    }
    o.out
}

fn seal(o: &mut OutputArchive) {
    let v = Adler32::of(&o.out);
    o.long(v);
    o.ustring("/");
}
