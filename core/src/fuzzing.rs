//! Fuzz harnesses for the core, shared by the cargo-fuzz targets in `fuzz/` and by
//! `core/tests/fuzz_corpus.rs`, which replays every checked-in corpus file under `cargo test`.
//!
//! Each harness takes arbitrary bytes and panics only on a real bug: a decoder that panics, a
//! value that does not survive encode → decode, or (for [`ensemble`]) a broken safety
//! invariant. Nothing here is used by the node or the simulator.
//!
//! The core has no `arbitrary` dependency (it stays lean), so [`Source`] is a tiny stand-in for
//! `arbitrary::Unstructured`: it turns the fuzzer's bytes into choices, and yields zeros once the
//! bytes run out, so every input is a finite, valid program.

use crate::config::{Config, LearnerType};
use crate::jute;
use crate::peer::PeerMsg;
use crate::proto::{
    Acl, AddWatchMode, ConnectRequest, CreateMode, CreateOp, Id, MultiOp, OpCode, ReadOp, Request,
    WatcherType,
};
use crate::server::{ConnId, Effect, Epochs, Event, Millis, Recovered, Server};
use crate::tree::{DataTree, TreeOptions};
use crate::txn::{ServerId, Txn};
use crate::zxid::Zxid;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Choices drawn from the fuzzer's bytes.
pub struct Source<'a> {
    data: &'a [u8],
}

impl<'a> Source<'a> {
    pub fn new(data: &'a [u8]) -> Source<'a> {
        Source { data }
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    pub fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }
    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }
    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        if n <= 256 {
            self.byte() as usize % n
        } else {
            self.u32() as usize % n
        }
    }
    pub fn pick<'b, T>(&mut self, items: &'b [T]) -> &'b T {
        &items[self.below(items.len())]
    }
    /// Up to `max` raw bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1).min(self.data.len());
        let (b, rest) = self.data.split_at(n);
        self.data = rest;
        b.to_vec()
    }
    /// Mostly small or edge values, sometimes anything.
    pub fn i32(&mut self) -> i32 {
        match self.byte() % 8 {
            0 => -1,
            1 => 0,
            2 => 1,
            3 => i32::MAX,
            4 => i32::MIN,
            5 => self.byte() as i32,
            _ => self.u32() as i32,
        }
    }
    pub fn i64(&mut self) -> i64 {
        match self.byte() % 8 {
            0 => -1,
            1 => 0,
            2 => 1,
            3 => i64::MAX,
            4 => i64::MIN,
            5 => i64::from(self.u16()),
            _ => self.u64() as i64,
        }
    }
}

// ---- jute decoders ----

/// Client → server frames (without the 4-byte length): the handshake and every request.
/// Whatever decodes must re-encode to something that decodes to the same value.
pub fn jute_request(data: &[u8]) {
    let _ = jute::peek_request_header(data);
    if let Ok(c) = jute::decode_connect(data) {
        let mut out = Vec::new();
        jute::encode_connect(&c, &mut out);
        assert_eq!(jute::decode_connect(&out[4..]).as_ref(), Ok(&c), "connect");
    }
    match jute::decode_request(data) {
        Ok((xid, req)) => {
            let mut out = Vec::new();
            jute::encode_request(xid, &req, &mut out);
            assert_eq!(
                jute::decode_request(&out[4..]),
                Ok((xid, req)),
                "request roundtrip"
            );
        }
        // What the node does with a frame that does not decode: what it answers must be a
        // reply a client can read for that opcode; what it runs anyway must be a request.
        Err(e) => match jute::triage_request(data, &e) {
            jute::BadRequest::Lenient { xid, request } => {
                let mut out = Vec::new();
                jute::encode_request(xid, &request, &mut out);
                assert_eq!(
                    jute::decode_request(&out[4..]),
                    Ok((xid, request)),
                    "lenient request roundtrip"
                );
            }
            jute::BadRequest::Answer {
                xid, opcode, reply, ..
            } => {
                let mut out = Vec::new();
                jute::encode_reply(xid, 7, opcode, &reply, &mut out);
                let (x, z, err, body) = jute::decode_reply_header(&out[4..]).expect("own header");
                assert_eq!((x, z), (xid, 7));
                assert_eq!(
                    jute::decode_reply_body(opcode, err, body),
                    Ok(reply),
                    "answer to a bad {opcode:?} request"
                );
            }
            jute::BadRequest::Close => {}
        },
    }
    if data.len() >= 4 {
        let _ = jute::frame_len([data[0], data[1], data[2], data[3]]);
    }
}

/// Every opcode a client can see a reply for, indexed by the first byte of a reply input.
pub const REPLY_OPCODES: &[OpCode] = &[
    OpCode::Create,
    OpCode::Delete,
    OpCode::Exists,
    OpCode::GetData,
    OpCode::SetData,
    OpCode::GetAcl,
    OpCode::SetAcl,
    OpCode::GetChildren,
    OpCode::Sync,
    OpCode::Ping,
    OpCode::GetChildren2,
    OpCode::Check,
    OpCode::Multi,
    OpCode::Create2,
    OpCode::Reconfig,
    OpCode::CheckWatches,
    OpCode::RemoveWatches,
    OpCode::CreateContainer,
    OpCode::DeleteContainer,
    OpCode::CreateTtl,
    OpCode::MultiRead,
    OpCode::Auth,
    OpCode::SetWatches,
    OpCode::Sasl,
    OpCode::GetEphemerals,
    OpCode::GetAllChildrenNumber,
    OpCode::SetWatches2,
    OpCode::AddWatch,
    OpCode::WhoAmI,
    OpCode::CreateSession,
    OpCode::CloseSession,
    OpCode::Error,
    OpCode::Notification,
];

/// Server → client frames, as the client decodes them. Input: one byte choosing what the
/// client expects (a reply to `REPLY_OPCODES[b]`, a handshake answer or a notification), then
/// the frame without its length.
pub fn jute_reply(data: &[u8]) {
    let Some((sel, frame)) = data.split_first() else {
        return;
    };
    let sel = *sel as usize;
    if sel == 0xfe {
        if let Ok(c) = jute::decode_connect_response(frame) {
            let mut out = Vec::new();
            jute::encode_connect_response(&c, &mut out);
            assert_eq!(
                jute::decode_connect_response(&out[4..]).as_ref(),
                Ok(&c),
                "connect response"
            );
        }
        return;
    }
    let Ok((xid, zxid, err, body)) = jute::decode_reply_header(frame) else {
        return;
    };
    if sel == 0xff || xid == jute::NOTIFICATION_XID {
        if let Ok(ev) = jute::decode_watch_event(body) {
            let mut out = Vec::new();
            jute::encode_watch_event(&ev, &mut out);
            let (_, _, _, b2) = jute::decode_reply_header(&out[4..]).expect("own header");
            assert_eq!(jute::decode_watch_event(b2), Ok(ev), "watch event");
        }
        return;
    }
    let opcode = REPLY_OPCODES[sel % REPLY_OPCODES.len()];
    if let Ok(reply) = jute::decode_reply_body(opcode, err, body) {
        let mut out = Vec::new();
        jute::encode_reply(xid, zxid, opcode, &reply, &mut out);
        let (x2, z2, e2, b2) = jute::decode_reply_header(&out[4..]).expect("own header");
        assert_eq!((x2, z2), (xid, zxid));
        assert_eq!(
            jute::decode_reply_body(opcode, e2, b2),
            Ok(reply),
            "reply roundtrip for {opcode:?}"
        );
    }
}

/// `DataTree::from_snapshot` on arbitrary bytes: never panics; what loads is consistent and
/// survives a second snapshot → load with the same digest.
pub fn tree_snapshot(data: &[u8]) {
    for extended_types in [true, false] {
        let opts = TreeOptions {
            extended_types,
            plant: None,
        };
        let Ok(tree) = DataTree::from_snapshot(data, opts) else {
            continue;
        };
        if let Err(e) = tree.check_consistency() {
            panic!("a loaded snapshot is inconsistent: {e}");
        }
        let again = tree.to_snapshot();
        let tree2 = DataTree::from_snapshot(&again, opts).expect("own snapshot loads");
        assert_eq!(tree.digest(), tree2.digest(), "snapshot roundtrip digest");
        assert_eq!(tree2.to_snapshot(), again, "snapshot bytes are canonical");
    }
}

/// A bincode `PeerMsg` (the node's peer framing) decoded and fed to a fresh server that is
/// looking for a leader: a peer may be buggy or from another build, and the core must not panic
/// on a message it did not expect. Returns whether it decoded.
pub fn peer_msg_into_server(msg: PeerMsg, from: ServerId) {
    let mut members = BTreeMap::new();
    for id in 1..=3 {
        members.insert(id, LearnerType::Participant);
    }
    let cfg = Config::new(1, members);
    let Ok(mut s) = Server::new(cfg, Recovered::default(), 1_000_000) else {
        return;
    };
    let mut out = Vec::new();
    s.handle(1_000_000, Event::Peer { from, msg }, &mut out);
}

// ---- the core: a small ensemble under arbitrary events ----

/// What the in-memory disk of one server holds.
#[derive(Default, Clone)]
struct Disk {
    epochs: Epochs,
    snapshot: Option<(Zxid, Arc<Vec<u8>>)>,
    durable: Vec<Txn>,
    /// Appended, not yet fsynced: lost in a crash.
    volatile: Vec<Txn>,
    /// Parts of a snapshot being written: lost in a crash.
    parts: crate::tree::SnapshotAssembler,
}

struct FuzzConn {
    server: ServerId,
}

/// One peer-to-peer link direction and channel: a TCP connection, so FIFO. Election and quorum
/// messages travel on different connections, so they may overtake one another.
type Link = (ServerId, ServerId, bool);

struct World {
    cfgs: BTreeMap<ServerId, Config>,
    servers: BTreeMap<ServerId, Option<Server>>,
    disks: BTreeMap<ServerId, Disk>,
    links: BTreeMap<Link, VecDeque<PeerMsg>>,
    conns: BTreeMap<ConnId, FuzzConn>,
    next_conn: ConnId,
    /// Sessions handed out, with their passwords (for re-attach attempts).
    sessions: Vec<(i64, Vec<u8>)>,
    /// Highest zxid any client saw.
    max_zxid_seen: i64,
    now: Millis,
    /// Epoch → the server established as its leader (ever).
    leaders: BTreeMap<u32, ServerId>,
    /// Applied zxid → the tree digest at it (ever, on any server).
    digests: BTreeMap<Zxid, u64>,
    ok_replies: usize,
    /// Print every event and effect to stderr (see [`ensemble_trace`]).
    trace: bool,
}

/// Paths the generator draws from: real ones (so requests hit nodes) and garbage.
const PATHS: &[&str] = &[
    "/",
    "/a",
    "/a/b",
    "/a/b/c",
    "/e",
    "/e/x",
    "/s",
    "/s/n-",
    "/c",
    "/c/k",
    "/t",
    "/zookeeper",
    "/zookeeper/quota",
    "/zookeeper/config",
    "",
    "a",
    "//",
    "/a/",
    "/.",
    "/..",
    "/a/./b",
    "/\u{0}",
    "/\u{1}",
    "/\u{fff0}",
];

impl World {
    fn new(observer: bool) -> World {
        let mut members = BTreeMap::new();
        for id in 1..=3 {
            members.insert(id, LearnerType::Participant);
        }
        if observer {
            members.insert(4, LearnerType::Observer);
        }
        let mut w = World {
            cfgs: BTreeMap::new(),
            servers: BTreeMap::new(),
            disks: BTreeMap::new(),
            links: BTreeMap::new(),
            conns: BTreeMap::new(),
            next_conn: 1,
            sessions: Vec::new(),
            max_zxid_seen: 0,
            now: 1_000_000,
            leaders: BTreeMap::new(),
            digests: BTreeMap::new(),
            ok_replies: 0,
            trace: false,
        };
        for id in members.keys() {
            let mut c = Config::new(*id, members.clone());
            c.tick_time_ms = 100;
            c.init_limit = 5;
            c.sync_limit = 2;
            c.min_session_timeout_ms = 200;
            c.max_session_timeout_ms = 2000;
            c.finalize_wait_ms = 50;
            c.max_notification_interval_ms = 400;
            // small, so DIFF falls back to SNAP and snapshots are taken often
            c.committed_log_size = 4;
            c.snap_count = 8;
            c.snapshot_part_bytes = 64;
            c.container_check_interval_ms = 300;
            w.cfgs.insert(*id, c);
            w.disks.insert(*id, Disk::default());
            w.start(*id);
        }
        w
    }

    fn ids(&self) -> Vec<ServerId> {
        self.cfgs.keys().copied().collect()
    }

    fn start(&mut self, id: ServerId) {
        let d = &self.disks[&id];
        let rec = Recovered {
            epochs: d.epochs,
            snapshot: d.snapshot.clone(),
            log: d.durable.clone(),
        };
        let s = match Server::new(self.cfgs[&id].clone(), rec, self.now) {
            Ok(s) => s,
            Err(e) => panic!("server {id} cannot recover from what it wrote itself: {e}"),
        };
        self.servers.insert(id, Some(s));
    }

    fn up(&self, id: ServerId) -> bool {
        matches!(self.servers.get(&id), Some(Some(_)))
    }

    fn step(&mut self, id: ServerId, ev: Event) {
        let mut out = Vec::new();
        let Some(Some(s)) = self.servers.get_mut(&id) else {
            return;
        };
        if self.trace {
            eprintln!("{} {id} <- {ev:?}", self.now);
        }
        s.handle(self.now, ev, &mut out);
        for e in out {
            if self.trace {
                eprintln!("    {id} -> {e:?}");
            }
            self.effect(id, e);
        }
    }

    fn effect(&mut self, id: ServerId, e: Effect) {
        match e {
            Effect::Send { to, msg } => {
                if self.up(to) {
                    let ch = msg.is_election();
                    self.links.entry((id, to, ch)).or_default().push_back(msg);
                }
            }
            Effect::DisconnectPeer { peer } => self.break_quorum(id, peer),
            Effect::StateChanged { .. } => {}
            Effect::Append { txns } => self
                .disk(id)
                .volatile
                .extend(txns.iter().map(|t| (**t).clone())),
            Effect::Truncate { after } => {
                let d = self.disk(id);
                d.durable.retain(|t| t.zxid <= after);
                d.volatile.retain(|t| t.zxid <= after);
            }
            Effect::SnapshotPart { zxid, index, data } => {
                self.disk(id).parts.part(zxid, index, &data)
            }
            Effect::Snapshot {
                zxid,
                parts,
                data,
                reset_log,
            } => {
                let d = self.disk(id);
                let whole = d.parts.finish(zxid, parts, data);
                let whole = whole.expect("a snapshot's parts all came before it, in order");
                d.snapshot = Some((zxid, whole));
                if reset_log {
                    d.durable.clear();
                    d.volatile.clear();
                }
            }
            Effect::PersistEpochs(e) => self.disk(id).epochs = e,
            Effect::ConnectReply { response, .. } => {
                if response.session_id != 0 {
                    self.ok_replies += 1;
                    self.sessions.push((response.session_id, response.passwd));
                    if self.sessions.len() > 16 {
                        self.sessions.remove(0);
                    }
                }
            }
            Effect::Reply { zxid, reply, .. } => {
                self.max_zxid_seen = self.max_zxid_seen.max(zxid.as_i64());
                if reply.is_ok() {
                    self.ok_replies += 1;
                }
            }
            Effect::Watch { .. } => {}
            Effect::Close { conn } => {
                self.conns.remove(&conn);
            }
        }
    }

    fn disk(&mut self, id: ServerId) -> &mut Disk {
        self.disks.entry(id).or_default()
    }

    /// The quorum connection between a and b breaks: what was in flight either way is lost;
    /// b is told (and a too when `tell_a`, as when the network cuts it rather than a).
    fn break_quorum(&mut self, a: ServerId, b: ServerId) {
        self.links.remove(&(a, b, false));
        self.links.remove(&(b, a, false));
        self.step(b, Event::PeerDisconnected { peer: a });
    }

    fn crash(&mut self, id: ServerId) {
        if !self.up(id) {
            return;
        }
        self.servers.insert(id, None);
        self.disk(id).volatile.clear();
        self.disk(id).parts = Default::default();
        self.links.retain(|(f, t, _), _| *f != id && *t != id);
        self.conns.retain(|_, c| c.server != id);
        for other in self.ids() {
            if other != id {
                self.step(other, Event::PeerDisconnected { peer: id });
            }
        }
    }

    /// fsync the first `n` volatile txns of `id` (all when `n` is past the end).
    fn fsync(&mut self, id: ServerId, n: usize) {
        if !self.up(id) {
            return;
        }
        let d = self.disk(id);
        if d.volatile.is_empty() {
            return;
        }
        let n = n.clamp(1, d.volatile.len());
        let rest = d.volatile.split_off(n);
        let done = std::mem::replace(&mut d.volatile, rest);
        let through = done.last().map(|t| t.zxid).unwrap_or_default();
        d.durable.extend(done);
        self.step(id, Event::Persisted { through });
    }

    fn deliver(&mut self, link: Link) {
        let Some(msg) = self.links.get_mut(&link).and_then(|q| q.pop_front()) else {
            return;
        };
        let (from, to, _) = link;
        self.step(to, Event::Peer { from, msg });
    }

    fn busy_links(&self) -> Vec<Link> {
        self.links
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, _)| *k)
            .collect()
    }

    fn tick(&mut self, ms: u64) {
        self.now += ms;
        for id in self.ids() {
            self.step(id, Event::Tick);
        }
    }

    /// Let the ensemble run fault-free for a while: deliver everything, fsync everything, tick.
    fn calm(&mut self, rounds: usize) {
        for _ in 0..rounds {
            for _ in 0..64 {
                let busy = self.busy_links();
                if busy.is_empty() {
                    break;
                }
                for l in busy {
                    self.deliver(l);
                }
            }
            for id in self.ids() {
                self.fsync(id, usize::MAX);
            }
            self.tick(20);
        }
    }

    /// The safety claims, checked after every step.
    fn check(&mut self) {
        for (id, s) in &self.servers {
            let Some(s) = s else { continue };
            if let Some(epoch) = s.established_epoch() {
                let first = *self.leaders.entry(epoch).or_insert(*id);
                assert_eq!(
                    first, *id,
                    "two established leaders in epoch {epoch}: {first} and {id}"
                );
            }
            if let Err(e) = s.tree().check_consistency() {
                panic!("server {id}: inconsistent tree: {e}");
            }
            let z = s.tree().last_zxid();
            let d = s.tree().digest();
            let seen = *self.digests.entry(z).or_insert(d);
            assert_eq!(
                seen, d,
                "server {id} applied a different history through {z}: digest {d:016x}, \
                 another server had {seen:016x}"
            );
        }
    }

    /// Healed: every server up and serving under an established leader, and each has applied
    /// at least `zxid`.
    fn settled(&self, zxid: i64) -> bool {
        let mut leader = false;
        for s in self.servers.values() {
            let Some(s) = s else { return false };
            if !s.is_serving() || s.tree().last_zxid().as_i64() < zxid {
                return false;
            }
            leader |= s.established_epoch().is_some();
        }
        leader
    }

    fn gen_path(&self, src: &mut Source) -> String {
        match src.byte() % 16 {
            0 => String::from_utf8_lossy(&src.bytes(12)).into_owned(),
            1 => {
                // deep
                let depth = 1 + src.below(40);
                "/d".repeat(depth)
            }
            _ => src.pick(PATHS).to_string(),
        }
    }

    fn gen_acl(&self, src: &mut Source) -> Vec<Acl> {
        let n = match src.byte() % 8 {
            0 => 0,
            1 => 2,
            _ => 1,
        };
        (0..n)
            .map(|_| {
                let perms = match src.byte() % 4 {
                    0 => src.i32(),
                    1 => crate::proto::perms::READ,
                    _ => crate::proto::perms::ALL,
                };
                let id = match src.byte() % 10 {
                    0 => Id::new("digest", "u:ZzbZqO1mF2ztQ0mzpMFYx2iO1yQ="),
                    1 => Id::new("ip", "127.0.0.1"),
                    2 => Id::new("ip", "10.0.0.0/8"),
                    3 => Id::new("auth", ""),
                    4 => Id::new("super", "x"),
                    5 => Id::new(
                        &String::from_utf8_lossy(&src.bytes(6)),
                        &String::from_utf8_lossy(&src.bytes(10)),
                    ),
                    6 => Id::new("ip", &String::from_utf8_lossy(&src.bytes(10))),
                    7 => Id::new("digest", &String::from_utf8_lossy(&src.bytes(10))),
                    _ => Id::anyone(),
                };
                Acl { perms, id }
            })
            .collect()
    }

    fn gen_multi_op(&self, src: &mut Source) -> MultiOp {
        let path = self.gen_path(src);
        match src.byte() % 4 {
            0 => MultiOp::Create {
                op: *src.pick(&[CreateOp::Create, CreateOp::Create2, CreateOp::Ttl]),
                path,
                data: src.bytes(8),
                acl: self.gen_acl(src),
                mode: CreateMode::from_flags(i32::from(src.byte() % 8))
                    .unwrap_or(CreateMode::Persistent),
                ttl: src.i64(),
            },
            1 => MultiOp::Delete {
                path,
                version: src.i32(),
            },
            2 => MultiOp::SetData {
                path,
                data: src.bytes(8),
                version: src.i32(),
            },
            _ => MultiOp::Check {
                path,
                version: src.i32(),
            },
        }
    }

    fn gen_paths(&self, src: &mut Source) -> Vec<String> {
        let n = src.below(3);
        (0..n).map(|_| self.gen_path(src)).collect()
    }

    fn gen_request(&self, src: &mut Source) -> Request {
        let path = self.gen_path(src);
        let watch = src.bool();
        match src.byte() % 24 {
            0..=3 => Request::Create {
                op: *src.pick(&[
                    CreateOp::Create,
                    CreateOp::Create2,
                    CreateOp::Container,
                    CreateOp::Ttl,
                ]),
                path,
                data: src.bytes(16),
                acl: self.gen_acl(src),
                mode: match CreateMode::from_flags(i32::from(src.byte() % 8)) {
                    Some(m) => m,
                    None => CreateMode::EphemeralSequential,
                },
                ttl: src.i64(),
            },
            4 => Request::Delete {
                path,
                version: src.i32(),
            },
            5 => Request::Exists { path, watch },
            6 => Request::GetData { path, watch },
            7 | 8 => Request::SetData {
                path,
                data: src.bytes(16),
                version: src.i32(),
            },
            9 => Request::GetAcl { path },
            10 => Request::SetAcl {
                path,
                acl: self.gen_acl(src),
                version: src.i32(),
            },
            11 => Request::GetChildren { path, watch },
            12 => Request::GetChildren2 { path, watch },
            13 => Request::Sync { path },
            14 => Request::Check {
                path,
                version: src.i32(),
            },
            15 => {
                let n = src.below(5);
                Request::Multi((0..n).map(|_| self.gen_multi_op(src)).collect())
            }
            16 => {
                let n = src.below(4);
                Request::MultiRead(
                    (0..n)
                        .map(|_| {
                            let p = self.gen_path(src);
                            if src.bool() {
                                ReadOp::GetData { path: p }
                            } else {
                                ReadOp::GetChildren { path: p }
                            }
                        })
                        .collect(),
                )
            }
            17 => match src.byte() % 3 {
                0 => Request::GetEphemerals { prefix: path },
                1 => Request::GetAllChildrenNumber { path },
                _ => Request::WhoAmI,
            },
            18 => Request::AddWatch {
                path,
                mode: if src.bool() {
                    AddWatchMode::Persistent
                } else {
                    AddWatchMode::PersistentRecursive
                },
            },
            19 => {
                let kind = WatcherType::from_i32(1 + i32::from(src.byte() % 5))
                    .unwrap_or(WatcherType::Any);
                if src.bool() {
                    Request::CheckWatches { path, kind }
                } else {
                    Request::RemoveWatches { path, kind }
                }
            }
            20 => Request::SetWatches {
                relative_zxid: if src.bool() {
                    self.max_zxid_seen
                } else {
                    src.i64()
                },
                data: self.gen_paths(src),
                exist: self.gen_paths(src),
                child: self.gen_paths(src),
                persistent: self.gen_paths(src),
                persistent_recursive: self.gen_paths(src),
                v2: src.bool(),
            },
            21 => Request::Auth {
                scheme: src
                    .pick(&["digest", "ip", "world", "sasl", "x509", ""])
                    .to_string(),
                auth: if src.bool() {
                    b"u:p".to_vec()
                } else {
                    src.bytes(12)
                },
            },
            22 => Request::Ping,
            _ => Request::CloseSession,
        }
    }

    fn connect(&mut self, src: &mut Source) {
        let server = 1 + src.below(self.cfgs.len()) as ServerId;
        if !self.up(server) {
            return;
        }
        let (session_id, passwd) = match src.byte() % 4 {
            0 | 1 => (0, vec![0; 16]),
            2 if !self.sessions.is_empty() => {
                let (s, p) = src.pick(&self.sessions).clone();
                if src.byte().is_multiple_of(4) {
                    (s, src.bytes(16)) // wrong password
                } else {
                    (s, p)
                }
            }
            _ => (src.i64(), src.bytes(20)),
        };
        let request = ConnectRequest {
            protocol_version: if src.byte().is_multiple_of(8) {
                src.i32()
            } else {
                0
            },
            last_zxid_seen: match src.byte() % 4 {
                0 => src.i64(),
                1 => self.max_zxid_seen,
                _ => 0,
            },
            timeout_ms: match src.byte() % 4 {
                0 => src.i32(),
                _ => 1000,
            },
            session_id,
            passwd,
            read_only: match src.byte() % 3 {
                0 => None,
                1 => Some(false),
                _ => Some(true),
            },
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(conn, FuzzConn { server });
        let addr = src.pick(&["127.0.0.1", "10.1.2.3", "::1"]).to_string();
        self.step(
            server,
            Event::ClientConnected {
                conn,
                addr,
                request,
            },
        );
    }

    fn pick_conn(&self, src: &mut Source) -> Option<(ConnId, ServerId)> {
        if self.conns.is_empty() {
            return None;
        }
        let i = src.below(self.conns.len());
        self.conns.iter().nth(i).map(|(c, fc)| (*c, fc.server))
    }

    fn pick_server(&self, src: &mut Source) -> ServerId {
        1 + src.below(self.cfgs.len()) as ServerId
    }
}

/// Most steps one input may take; keeps each execution short.
pub const MAX_STEPS: usize = 600;

/// Fault-free rounds (20 ms of virtual time each, every message delivered and fsynced) after
/// which a healed ensemble must have a leader and every server synced to it: an election and a
/// sync take a few rounds, initLimit 25.
const MAX_HEAL_ROUNDS: usize = 500;

/// A 3-voter ensemble (plus an observer, when the first byte says so) fed an arbitrary sequence
/// of events: ticks, deliveries, reorderings across channels, link breaks, crashes and restarts
/// from an in-memory disk, partial fsyncs, client handshakes and arbitrary requests (garbage
/// paths and ACLs included), disconnects. After every step: no panic, at most one established
/// leader per epoch, equal applied zxid ⇒ equal tree digest (on any server, at any time).
pub fn ensemble(data: &[u8]) {
    ensemble_run(data);
}

/// What one [`ensemble`] run reached (so tests can check the harness gets somewhere).
#[derive(Clone, Debug, Default)]
pub struct EnsembleStats {
    pub steps: usize,
    /// Epochs that had an established leader.
    pub epochs: usize,
    /// The highest applied zxid on any server.
    pub max_applied: Zxid,
    /// Successful client replies (handshakes included).
    pub ok_replies: usize,
}

/// [`ensemble`], returning what the run reached.
pub fn ensemble_run(data: &[u8]) -> EnsembleStats {
    ensemble_inner(data, false)
}

/// Runs [`ensemble`] printing every step, event and effect to stderr, for debugging a crash
/// input (`ENSEMBLE_FUZZ_TRACE=file cargo test -p ensemble-core --test fuzz_corpus trace`).
pub fn ensemble_trace(data: &[u8]) -> EnsembleStats {
    ensemble_inner(data, true)
}

fn ensemble_inner(data: &[u8], trace: bool) -> EnsembleStats {
    let mut src = Source::new(data);
    let observer = src.byte() & 1 == 1;
    let mut w = World::new(observer);
    w.trace = trace;
    let mut steps = 0;
    while !src.is_empty() && steps < MAX_STEPS {
        steps += 1;
        let op = src.byte() % 20;
        if w.trace {
            eprintln!("== step {steps}: op {op}");
        }
        match op {
            // time passes
            0 | 1 => {
                let ms = match src.byte() % 8 {
                    0 => 1 + u64::from(src.u16() % 5000),
                    _ => 1 + u64::from(src.byte() % 60),
                };
                w.tick(ms);
            }
            // deliver the head of one link
            2..=5 => {
                let busy = w.busy_links();
                if !busy.is_empty() {
                    let l = *src.pick(&busy);
                    w.deliver(l);
                }
            }
            // deliver everything in flight, a few rounds
            6 => {
                for _ in 0..4 {
                    for l in w.busy_links() {
                        w.deliver(l);
                    }
                }
            }
            // lose an election message
            7 => {
                let busy: Vec<Link> = w.busy_links().into_iter().filter(|l| l.2).collect();
                if !busy.is_empty() {
                    let l = *src.pick(&busy);
                    if let Some(q) = w.links.get_mut(&l) {
                        q.pop_front();
                    }
                }
            }
            // the network breaks a quorum connection: both ends notice
            8 => {
                let a = w.pick_server(&mut src);
                let b = w.pick_server(&mut src);
                if a != b {
                    w.break_quorum(a, b);
                    w.step(a, Event::PeerDisconnected { peer: b });
                }
            }
            9 => {
                let id = w.pick_server(&mut src);
                w.crash(id);
            }
            10 => {
                let id = w.pick_server(&mut src);
                if !w.up(id) {
                    w.start(id);
                }
            }
            // fsync some or all of a server's appended txns
            11 | 12 => {
                let id = w.pick_server(&mut src);
                let n = if src.bool() {
                    usize::MAX
                } else {
                    1 + src.below(4)
                };
                w.fsync(id, n);
            }
            13 => w.connect(&mut src),
            14..=16 => {
                if let Some((conn, server)) = w.pick_conn(&mut src) {
                    let xid = if src.byte().is_multiple_of(16) {
                        src.i32()
                    } else {
                        steps as i32
                    };
                    let request = w.gen_request(&mut src);
                    w.step(server, Event::Client { conn, xid, request });
                }
            }
            17 => {
                if let Some((conn, server)) = w.pick_conn(&mut src) {
                    w.conns.remove(&conn);
                    w.step(server, Event::ClientDisconnected { conn });
                }
            }
            // a request on a connection the server never saw (or already closed)
            18 => {
                let server = w.pick_server(&mut src);
                let conn = w.next_conn + u64::from(src.byte());
                let request = w.gen_request(&mut src);
                w.step(
                    server,
                    Event::Client {
                        conn,
                        xid: 1,
                        request,
                    },
                );
            }
            // a fault-free stretch, so elections finish and requests commit
            _ => {
                let rounds = 1 + src.below(8);
                w.calm(rounds);
            }
        }
        w.check();
    }
    // Heal: every server up, everything delivered; the invariants must still hold.
    for id in w.ids() {
        if !w.up(id) {
            w.start(id);
        }
    }
    w.calm(30);
    w.check();
    // Liveness once faults heal, and durability: every zxid a client was shown was committed,
    // so every server gets to it.
    let mut rounds = 30;
    while !w.settled(w.max_zxid_seen) {
        assert!(
            rounds < MAX_HEAL_ROUNDS,
            "no leader with every server synced to zxid {:#x} {rounds} fault-free rounds after \
             healing",
            w.max_zxid_seen
        );
        w.calm(10);
        w.check();
        rounds += 10;
    }
    EnsembleStats {
        steps,
        epochs: w.leaders.len(),
        max_applied: w.digests.keys().next_back().copied().unwrap_or_default(),
        ok_replies: w.ok_replies,
    }
}

// ---- seeds ----

/// What a short fault-free run with a scripted workload produced: real peer messages, the txns
/// servers appended, and snapshot bytes. `fuzz/src/bin/seed_corpus.rs` turns them into seeds.
#[derive(Default)]
pub struct Samples {
    pub peer_msgs: Vec<PeerMsg>,
    pub txns: Vec<Vec<Txn>>,
    pub snapshots: Vec<Vec<u8>>,
}

/// Run a 3-voter ensemble (with an observer) through elections, every kind of write, a crash
/// and a restart (so DIFF, TRUNC and SNAP happen), recording what went over the wire and to disk.
pub fn sample_run() -> Samples {
    let mut w = World::new(true);
    let mut samples = Samples::default();
    let record = |w: &mut World, samples: &mut Samples| {
        for _ in 0..64 {
            let busy = w.busy_links();
            if busy.is_empty() {
                break;
            }
            for l in busy {
                if let Some(q) = w.links.get(&l) {
                    samples.peer_msgs.extend(q.iter().cloned());
                }
                w.deliver(l);
            }
        }
        for d in w.disks.values() {
            if !d.volatile.is_empty() {
                samples.txns.push(d.volatile.clone());
            }
            if let Some((_, s)) = &d.snapshot {
                samples.snapshots.push(s.to_vec());
            }
        }
        for id in w.ids() {
            w.fsync(id, usize::MAX);
        }
        w.tick(20);
    };
    for _ in 0..10 {
        record(&mut w, &mut samples);
    }
    let req = |w: &mut World, server: ServerId, r: Request| {
        if let Some((&conn, _)) = w.conns.iter().find(|(_, c)| c.server == server) {
            w.step(
                server,
                Event::Client {
                    conn,
                    xid: 7,
                    request: r,
                },
            );
        }
    };
    for server in [1, 2, 4] {
        // session 0, timeout 1000, on `server`
        w.connect(&mut Source::new(&[server as u8 - 1, 0, 1, 2, 2, 0]));
    }
    for _ in 0..5 {
        record(&mut w, &mut samples);
    }
    let acl = Acl::open_unsafe();
    let create = |path: &str, mode: CreateMode, op: CreateOp| Request::Create {
        op,
        path: path.into(),
        data: b"hello".to_vec(),
        acl: acl.clone(),
        mode,
        ttl: if mode.is_ttl() { 5000 } else { 0 },
    };
    let script = vec![
        create("/a", CreateMode::Persistent, CreateOp::Create),
        create("/a/b", CreateMode::Persistent, CreateOp::Create2),
        create("/e", CreateMode::Ephemeral, CreateOp::Create),
        create("/s", CreateMode::Persistent, CreateOp::Create),
        create("/s/n-", CreateMode::PersistentSequential, CreateOp::Create),
        create("/s/n-", CreateMode::EphemeralSequential, CreateOp::Create2),
        create("/c", CreateMode::Container, CreateOp::Container),
        create("/c/k", CreateMode::Persistent, CreateOp::Create),
        create("/t", CreateMode::PersistentWithTtl, CreateOp::Ttl),
        Request::SetData {
            path: "/a".into(),
            data: b"world".to_vec(),
            version: -1,
        },
        Request::SetAcl {
            path: "/a/b".into(),
            acl: vec![Acl {
                perms: crate::proto::perms::READ,
                id: Id::anyone(),
            }],
            version: 0,
        },
        Request::Multi(vec![
            MultiOp::Create {
                op: CreateOp::Create,
                path: "/m".into(),
                data: vec![1],
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl: 0,
            },
            MultiOp::SetData {
                path: "/m".into(),
                data: vec![2],
                version: 0,
            },
            MultiOp::Check {
                path: "/a".into(),
                version: 1,
            },
        ]),
        Request::Multi(vec![MultiOp::Delete {
            path: "/nope".into(),
            version: -1,
        }]),
        Request::Delete {
            path: "/c/k".into(),
            version: -1,
        },
        Request::Sync { path: "/".into() },
    ];
    for (i, r) in script.iter().enumerate() {
        req(&mut w, [1, 2, 4][i % 3], r.clone());
        record(&mut w, &mut samples);
    }
    // a follower misses writes (DIFF); then the leader goes (TRUNC/SNAP on the way back)
    w.crash(3);
    for i in 0..12 {
        req(
            &mut w,
            1,
            Request::SetData {
                path: "/a".into(),
                data: vec![i],
                version: -1,
            },
        );
        record(&mut w, &mut samples);
    }
    w.start(3);
    for _ in 0..20 {
        record(&mut w, &mut samples);
    }
    let leader = w
        .servers
        .iter()
        .find(|(_, s)| s.as_ref().is_some_and(|s| s.established_epoch().is_some()))
        .map(|(id, _)| *id);
    if let Some(l) = leader {
        w.crash(l);
        for _ in 0..40 {
            record(&mut w, &mut samples);
        }
        w.start(l);
        for _ in 0..40 {
            record(&mut w, &mut samples);
        }
    }
    samples.peer_msgs.dedup();
    samples.snapshots.sort();
    samples.snapshots.dedup();
    samples
}

/// A well-formed [`ensemble`] program: elect, connect a client to each server, create and set a
/// few nodes, with fault-free stretches between. Written against the decoder above (one byte
/// per choice), so it keeps meaning the same as long as `ensemble_inner` does. Tests use it
/// to check the harness gets somewhere; the seed generator starts from it.
pub fn calm_program(observer: bool) -> Vec<u8> {
    let calm = [19u8, 7];
    let mut p = vec![u8::from(observer)];
    for _ in 0..4 {
        p.extend_from_slice(&calm);
    }
    for server in 0..3u8 {
        // connect: server, new session, protocol 0, lastZxidSeen 0, timeout 1000, readOnly
        // unset, from 127.0.0.1
        p.extend_from_slice(&[13, server, 1, 1, 2, 1, 0, 0]);
        p.extend_from_slice(&calm);
    }
    for (i, path) in [1u8, 2, 3, 4].into_iter().enumerate() {
        // create PATHS[path] "xyz" open-ACL persistent, on connection i % 3
        p.extend_from_slice(&[14, i as u8 % 3, 1, 2, path, 0, 0, 0]);
        p.extend_from_slice(&[3, b'x', b'y', b'z', 2, 2, 9, 0, 1]);
        p.extend_from_slice(&calm);
        // setData PATHS[path] "q" version -1
        p.extend_from_slice(&[15, i as u8 % 3, 1, 2, path, 0, 7, 1, b'q', 0]);
        p.extend_from_slice(&calm);
    }
    p
}
