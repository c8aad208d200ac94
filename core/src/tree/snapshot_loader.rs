//! Loading a snapshot as its bytes arrive: a learner builds the leader's tree part by part
//! from a streamed SNAP, holding only the tree being built and the one record a part boundary
//! cuts, never the serialized image (which may be larger than the memory left beside the
//! tree). [`DataTree::from_snapshot`] is the same loader fed everything at once.
//!
//! Trusts nothing, as a snapshot read from disk: every length is bounded by the bytes at hand
//! before anything is allocated, and the structure is checked as records come (sorted valid
//! paths, every parent present, ACL slots in range, zxids not beyond the snapshot's). Nothing
//! is a tree until [`SnapshotLoader::finish`] has checked the whole.

use super::acl_cache::AclCache;
use super::snapshot::{
    FORMAT, FORMAT_CONFIG, FORMAT_NULL_DATA, Header, MAGIC, NodeRecord, ReadError, err, options,
    read_node,
};
use super::{DataTree, Node, SnapshotError, TreeOptions};
use crate::path;
use crate::zxid::Zxid;
use bincode::Options;
use ensemble_proto::proto::SessionId;
use serde::Deserialize;

/// What the loader reads next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    /// Node `i` of the header's count.
    Node(u64),
    /// The null-data paths (formats 2 and 3).
    Nulls,
    /// The committed configuration's text (format 3).
    Config,
    Done,
}

/// A record cut by the end of the bytes so far, or a real error.
enum Attempt<T> {
    Read(T, usize),
    Incomplete,
}

/// A snapshot being loaded from bytes fed in order.
pub struct SnapshotLoader {
    opts: TreeOptions,
    /// The bytes announced in all: bounds what the node vector reserves.
    total: u64,
    fed: u64,
    stage: Stage,
    format: u32,
    last_zxid: u64,
    node_count: u64,
    acl_count: usize,
    sessions: Vec<(SessionId, i32)>,
    acls: Option<AclCache>,
    nodes: Vec<(Box<str>, Box<Node>)>,
    nulls: Vec<String>,
    /// The committed configuration format 3 carries (`None` for formats 1 and 2, which take it
    /// from the node).
    config: Option<Option<String>>,
    parent_hint: usize,
    /// The start of a record the last bytes fed did not complete.
    carry: Vec<u8>,
}

impl std::fmt::Debug for SnapshotLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("SnapshotLoader")
            .field("fed", &self.fed)
            .field("total", &self.total)
            .field("stage", &self.stage)
            .field("carry", &self.carry.len())
            .finish()
    }
}

/// Is this bincode error only the end of the bytes so far (more may complete the record)?
fn cut_short(e: &bincode::Error) -> bool {
    match &**e {
        bincode::ErrorKind::Io(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
        // the limit is the bytes at hand: a length beyond them may be completed by more
        bincode::ErrorKind::SizeLimit => true,
        _ => false,
    }
}

/// Read one `T` from the front of `buf`, bounded by `buf`'s length.
fn attempt<T: for<'de> Deserialize<'de>>(buf: &[u8]) -> Result<Attempt<T>, bincode::Error> {
    let mut r = buf;
    let limited = options().with_limit(buf.len() as u64);
    let mut de = bincode::Deserializer::with_reader(&mut r, limited);
    match T::deserialize(&mut de) {
        Ok(v) => {
            drop(de);
            Ok(Attempt::Read(v, buf.len() - r.len()))
        }
        Err(e) if cut_short(&e) => Ok(Attempt::Incomplete),
        Err(e) => Err(e),
    }
}

impl SnapshotLoader {
    /// A loader for a snapshot of `total` bytes.
    pub fn new(opts: TreeOptions, total: u64) -> SnapshotLoader {
        SnapshotLoader {
            opts,
            total,
            fed: 0,
            stage: Stage::Header,
            format: FORMAT,
            last_zxid: 0,
            node_count: 0,
            acl_count: 0,
            sessions: Vec::new(),
            acls: None,
            nodes: Vec::new(),
            nulls: Vec::new(),
            config: None,
            parent_hint: 0,
            carry: Vec::new(),
        }
    }

    /// Bytes fed so far.
    pub fn fed(&self) -> u64 {
        self.fed
    }

    /// The snapshot's zxid, once its header is read.
    pub fn zxid(&self) -> Option<Zxid> {
        (self.stage != Stage::Header).then_some(Zxid(self.last_zxid))
    }

    /// The next bytes of the snapshot: every record they complete is checked and taken.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        self.fed = self.fed.saturating_add(data.len() as u64);
        if self.fed > self.total {
            return Err(err(format_args!(
                "{} bytes fed of a {}-byte snapshot",
                self.fed, self.total
            )));
        }
        if self.carry.is_empty() {
            // Records straight from the input; only a cut one's start is kept.
            let used = self.take_records(data, false)?;
            self.carry.extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.carry);
            buf.extend_from_slice(data);
            let used = self.take_records(&buf, false)?;
            buf.drain(..used);
            self.carry = buf;
        }
        Ok(())
    }

    /// The tree, once every byte announced was fed and they make a whole snapshot.
    pub fn finish(mut self) -> Result<DataTree, SnapshotError> {
        if self.fed != self.total {
            return Err(err(format_args!(
                "{} bytes of a {}-byte snapshot",
                self.fed, self.total
            )));
        }
        let rest = std::mem::take(&mut self.carry);
        let used = self.take_records(&rest, true)?;
        debug_assert_eq!(used, rest.len(), "the last records take every byte");
        if self.stage != Stage::Done {
            return Err(err("the snapshot ends early"));
        }
        let mut t = DataTree::empty(self.opts);
        t.last_zxid = Zxid(self.last_zxid);
        t.acls = self.acls.take().expect("read with the header");
        for (_, node) in &self.nodes {
            t.acls.add_ref(node.meta.acl);
        }
        let read = self.nodes.len();
        assert_eq!(
            read as u64, self.node_count,
            "nodes read = nodes the header counts"
        );
        // Sorted already: the map is built in one pass (no per-node search, full leaves).
        t.nodes = std::mem::take(&mut self.nodes).into_iter().collect();
        assert_eq!(t.nodes.len(), read, "the paths read are distinct");
        for p in std::mem::take(&mut self.nulls) {
            match t.nodes.get(p.as_str()) {
                Some(n) if n.data.is_empty() => {
                    t.null_data.insert(p.into_boxed_str());
                }
                _ => return Err(err(format_args!("null-data {p:?} missing or has data"))),
            }
        }
        for special in [path::ROOT, path::ZOOKEEPER, path::QUOTA, path::CONFIG] {
            if !t.nodes.contains_key(special) {
                return Err(err(format_args!("{special} is missing")));
            }
        }
        t.acls.drop_unused();
        for (s, timeout) in std::mem::take(&mut self.sessions) {
            t.put_session(s, timeout);
        }
        t.rebuild_derived()?;
        let shown = t.config_in_node();
        let config = match self.config.take() {
            Some(Some(text)) => Some(
                crate::membership::Membership::parse(&text)
                    .map_err(|e| err(format_args!("the committed configuration: {e}")))?,
            ),
            Some(None) => None,
            None => shown.clone(),
        };
        // format 3 is written only for a configuration the node does not show: one bytes
        // for one tree
        if self.format == FORMAT_CONFIG && config == shown {
            return Err(err("format 3 carries the configuration its node shows"));
        }
        t.set_config(config);
        debug_assert_eq!(t.check_consistency(), Ok(()));
        Ok(t)
    }

    /// Take the whole records at the front of `buf`; returns the bytes they took. With `last`,
    /// `buf` is all that is left of the snapshot: a record it cuts is an error.
    fn take_records(&mut self, buf: &[u8], last: bool) -> Result<usize, SnapshotError> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            let read = match self.stage {
                Stage::Done if rest.is_empty() => return Ok(at),
                Stage::Done => {
                    return Err(err(format_args!(
                        "{} bytes after the last node",
                        (self.fed - self.total.min(self.fed)) + rest.len() as u64
                    )));
                }
                Stage::Header => match attempt::<Header>(rest).map_err(err)? {
                    Attempt::Read(h, n) => {
                        self.header(h)?;
                        n
                    }
                    Attempt::Incomplete => 0,
                },
                Stage::Node(i) => {
                    let mut r = rest;
                    match read_node(&mut r) {
                        Ok(node) => {
                            let n = rest.len() - r.len();
                            self.node(i, node)?;
                            n
                        }
                        Err(ReadError::Short) => 0,
                        Err(ReadError::Bad(e)) => return Err(err(format_args!("node {i}: {e}"))),
                    }
                }
                Stage::Nulls => match attempt::<Vec<String>>(rest).map_err(err)? {
                    Attempt::Read(nulls, n) => {
                        self.nulls = nulls;
                        self.stage = if self.format == FORMAT_CONFIG {
                            Stage::Config
                        } else {
                            Stage::Done
                        };
                        n
                    }
                    Attempt::Incomplete => 0,
                },
                Stage::Config => match attempt::<Option<String>>(rest).map_err(err)? {
                    Attempt::Read(config, n) => {
                        self.config = Some(config);
                        self.stage = Stage::Done;
                        n
                    }
                    Attempt::Incomplete => 0,
                },
            };
            if read == 0 {
                if last {
                    return Err(err(match self.stage {
                        Stage::Node(i) => format!("node {i}: the snapshot ends inside it"),
                        _ => "the snapshot ends early".to_string(),
                    }));
                }
                return Ok(at);
            }
            at += read;
            assert!(at <= buf.len(), "records took more bytes than given");
        }
    }

    fn header(&mut self, header: Header) -> Result<(), SnapshotError> {
        if header.magic != MAGIC {
            return Err(err("not an Ensemble snapshot"));
        }
        if ![FORMAT, FORMAT_NULL_DATA, FORMAT_CONFIG].contains(&header.format) {
            return Err(err(format_args!("format {} unknown", header.format)));
        }
        if !header.sessions.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(err("sessions not sorted"));
        }
        if !header.acls.windows(2).all(|w| w[0] < w[1]) {
            return Err(err("ACL table not sorted"));
        }
        self.format = header.format;
        self.last_zxid = header.last_zxid;
        self.node_count = header.node_count;
        self.acl_count = header.acls.len();
        self.acls = Some(AclCache::from_table(header.acls));
        self.sessions = header.sessions;
        // Every node takes at least 10 bytes, which bounds the capacity by the input.
        let cap = (header.node_count).min(self.total / 10);
        self.nodes = Vec::with_capacity(usize::try_from(cap).unwrap_or(0));
        self.stage = self.after_node(0);
        Ok(())
    }

    /// What comes once `read` nodes are in.
    fn after_node(&self, read: u64) -> Stage {
        if read < self.node_count {
            Stage::Node(read)
        } else if self.format != FORMAT {
            Stage::Nulls
        } else {
            Stage::Done
        }
    }

    fn node(&mut self, i: u64, (path, data, meta): NodeRecord) -> Result<(), SnapshotError> {
        assert_eq!(i, self.nodes.len() as u64, "node i comes after i nodes");
        assert!(i < self.node_count, "a node beyond the header's count");
        path::validate(path).map_err(|_| err(format_args!("invalid path {path:?}")))?;
        let key: Box<str> = path.into();
        match self.nodes.last() {
            None if &*key != path::ROOT => return Err(err("the first node is not the root")),
            Some((p, _)) if **p >= *key => {
                return Err(err(format_args!("{key} out of order")));
            }
            _ => {}
        }
        if meta.acl as usize >= self.acl_count {
            return Err(err(format_args!(
                "{key}: ACL slot {} out of range",
                meta.acl
            )));
        }
        for z in [meta.czxid, meta.mzxid, meta.pzxid] {
            if z < 0 || z as u64 > self.last_zxid {
                return Err(err(format_args!("{key}: zxid {z:#x} beyond the snapshot")));
            }
        }
        if i32::try_from(data.len()).is_err() {
            return Err(err(format_args!("{key}: data too long")));
        }
        if let Some(parent) = path::parent(&key) {
            // Sorted order puts a parent before its children, so it is already in: most often
            // the node before, or the parent of the node before.
            let nodes = &mut self.nodes;
            let at = if nodes
                .get(self.parent_hint)
                .is_some_and(|(k, _)| &**k == parent)
            {
                self.parent_hint
            } else if nodes.last().is_some_and(|(k, _)| &**k == parent) {
                nodes.len() - 1
            } else {
                nodes
                    .binary_search_by(|(k, _)| (**k).cmp(parent))
                    .map_err(|_| err(format_args!("{key} has no parent")))?
            };
            nodes[at].1.meta.num_children += 1;
            self.parent_hint = at;
        }
        debug_assert_eq!(meta.num_children, 0, "derived, counted as children arrive");
        let node = Node {
            data: data.into(),
            meta,
        };
        self.nodes.push((key, Box::new(node)));
        self.stage = self.after_node(i + 1);
        Ok(())
    }
}

impl DataTree {
    /// Rebuild a tree from [`DataTree::to_snapshot`] bytes. Never panics, whatever the bytes.
    pub fn from_snapshot(bytes: &[u8], opts: TreeOptions) -> Result<DataTree, SnapshotError> {
        let mut loader = SnapshotLoader::new(opts, bytes.len() as u64);
        loader.feed(bytes)?;
        loader.finish()
    }
}
