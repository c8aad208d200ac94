//! An observer of a live Apache ZooKeeper 3.8 ensemble (issue 17, items 3b and 3c), node-side:
//! it learns the leader on the election port ([`super::election`]), registers on the leader's
//! quorum port (OBSERVERINFO → LEADERINFO → ACKEPOCH), syncs as ZooKeeper's `Learner.
//! syncWithLeader` does (SNAP with ZooKeeper's database serialisation, or DIFF with PROPOSAL/
//! COMMIT pairs, NEWLEADER answered with ACK, UPTODATE), then applies every INFORM in zxid
//! order and answers the leader's PINGs. When the leader goes, it learns the new one and
//! syncs again from the zxid it holds (a DIFF, or a SNAP). It follows the ensemble's
//! reconfigurations too: the configuration a reconfig activates (INFORMANDACTIVATE, or
//! COMMITANDACTIVATE during a sync, and the one NEWLEADER carries) becomes the voters it asks
//! and the members a cut-over makes Ensemble's.
//!
//! The txns ZooKeeper sends are already resolved (the leader decided every stat), so they are
//! applied to a [`ZkTree`], the import's replica of ZooKeeper's `DataTree`, and checked against
//! the digest ZooKeeper 3.6+ puts after each txn: a replica that differs is an error, never
//! served. The node's core serves the clients ([`super::to_core::CoreFeed`]), given the sync
//! and each txn once checked; the observer itself writes nothing to disk. This is what
//! `ensemble zk-observe` runs.

use super::election::{self, Answer};
use super::jute::OutputArchive;
use super::leader_link::LeaderStream;
use super::quorum_packet::{
    self, Frame, LearnerInfo, PROTOCOL_VERSION, PacketType, Payload, QuorumPacket,
};
use super::records::{self, TxnDigest, TxnHeader};
use super::snapshot::ZxidDigest;
use super::tree::{DIGEST_VERSION, ZkTree};
use ensemble_core::ResolvedTxn;
use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// A voter of the ZooKeeper ensemble: its sid, election and quorum addresses (`host:port`).
#[derive(Clone, Debug)]
pub struct Voter {
    pub sid: i64,
    pub election: String,
    pub quorum: String,
}

/// Who this observer is and whom it asks: its zoo.cfg's membership, then each configuration
/// the ZooKeeper ensemble activates.
#[derive(Clone, Debug)]
pub struct Settings {
    pub me: i64,
    /// This server's election address, as its `server.N` line gives it.
    pub my_election: String,
    pub voters: Vec<Voter>,
    /// Every observer of the configuration in force, this one too: the servers a cut-over
    /// makes the Ensemble ensemble's voters.
    pub observers: Vec<crate::config::ServerSpec>,
    /// The version of the configuration in force (ZooKeeper's `version=`, hex in the file).
    pub config_version: u64,
    /// `tickTime * syncLimit`: how long the leader may stay silent.
    pub read_timeout: Duration,
}

/// How a sync brought the replica up to the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    Snap,
    Diff,
}

/// What the observer did, for its report.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub syncs: Vec<(i64, SyncKind, i64)>,
    pub txns_applied: u64,
    pub digests_checked: u64,
    pub pings_answered: u64,
    /// Each configuration activated: (its version, the voters then asked).
    pub configs: Vec<(u64, Vec<i64>)>,
}

/// The replica and what it knows of the ensemble (ZooKeeper's acceptedEpoch/currentEpoch,
/// kept in memory: a restart starts from a SNAP).
#[derive(Default)]
pub struct Observer {
    pub tree: Option<ZkTree>,
    accepted_epoch: i64,
    current_epoch: i64,
    /// The snapshot's digest not yet reached, and whether a digest has agreed since the last
    /// SNAP (until then a fuzzy snapshot may hold later writes).
    pending: Option<ZxidDigest>,
    agreed: bool,
    pub progress: Progress,
    /// Who serves clients ([`Serving`]): given each txn once it is checked.
    pub served: Option<Box<dyn Serving>>,
}

/// Who serves clients from what this observer follows: the node's core (`zk-observe`,
/// [`super::to_core::CoreFeed`], its messages out through [`super::leader_link`]). It is told
/// the sync and every checked txn in zxid order, and the leader's answers to what it forwarded.
pub trait Serving: Send {
    /// Synced with `leader` in `epoch` (its LEADERINFO's) to `tree`; `stream` reaches it.
    fn synced(&mut self, tree: &ZkTree, leader: i64, epoch: i64, stream: LeaderStream);
    fn applied(&mut self, hdr: &TxnHeader, txn: &ResolvedTxn);
    fn revalidated(&mut self, session: i64, valid: bool);
    fn sync_done(&mut self);
    /// The leader's PING (with its zxid): the sessions touched to answer with, or `None`
    /// when the server answers it itself.
    fn ping(&mut self, zxid: i64) -> Option<Vec<u8>>;
    fn lost(&mut self, why: &str);
}

/// The most a frame may take (a SNAP's database is one): past it, the stream is bad.
const MAX_PENDING: usize = 1 << 30;

fn make_zxid(epoch: i64, counter: i64) -> i64 {
    (epoch << 32) | (counter & 0xffff_ffff)
}

/// A quorum-port connection: packets out, frames in.
struct Conn {
    s: TcpStream,
    /// The writing side, shared with the client port's forwarding (one writer at a time).
    w: LeaderStream,
    buf: Vec<u8>,
    frames: VecDeque<Frame>,
}

impl Conn {
    fn send(&mut self, p: &QuorumPacket) -> Result<(), String> {
        let mut o = OutputArchive::default();
        p.write(&mut o);
        let mut w = self.w.lock().unwrap_or_else(|p| p.into_inner());
        w.write_all(&o.out)
            .map_err(|e| format!("writing {:?}: {e}", p.kind))
    }

    fn next(&mut self) -> Result<Frame, String> {
        // A large SNAP arrives in many reads: decode again only when the socket has nothing
        // more at once or the bytes waiting doubled, so its database is parsed O(log n) times.
        let mut tried_at = 0usize;
        let mut drained = true;
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Ok(f);
            }
            if !self.buf.is_empty() && (drained || self.buf.len() >= 2 * tried_at) {
                tried_at = self.buf.len();
                let (frames, used) = quorum_packet::decode_stream(&self.buf, true)
                    .map_err(|e| format!("leader sent a bad packet: {e}"))?;
                self.frames.extend(frames.into_iter().map(|(_, f)| f));
                self.buf.drain(..used);
                if !self.frames.is_empty() {
                    continue;
                }
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.s.read(&mut chunk).map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    "the leader was silent past syncLimit".to_string()
                }
                _ => format!("reading from the leader: {e}"),
            })?;
            if n == 0 {
                return Err("the leader closed the connection".into());
            }
            if self.buf.len() > MAX_PENDING {
                return Err(format!(
                    "the leader sent {} bytes that make no whole packet",
                    self.buf.len()
                ));
            }
            drained = n < chunk.len();
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn packet(&mut self) -> Result<QuorumPacket, String> {
        match self.next()? {
            Frame::Packet(p) => Ok(p),
            Frame::Snapshot(_) => Err("a database outside a SNAP".into()),
        }
    }
}

/// The leader learned (sid, epoch), if any, and what each voter answered.
pub type Learned = (Option<(i64, i64)>, Vec<(i64, Answer)>);

/// Ask every voter on its election port at once; the leader a majority names.
pub fn learn_leader(set: &Settings, timeout: Duration) -> Learned {
    let answers: Vec<(i64, Answer)> = std::thread::scope(|sc| {
        let hs: Vec<_> = set
            .voters
            .iter()
            .map(|v| {
                sc.spawn(move || {
                    (
                        v.sid,
                        election::ask(&v.election, set.me, &set.my_election, timeout),
                    )
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((0, Err("asking thread panicked".into())))
            })
            .collect()
    });
    let sids: Vec<i64> = set.voters.iter().map(|v| v.sid).collect();
    (election::leader_of(&sids, &answers), answers)
}

impl Observer {
    /// ZooKeeper's acceptedEpoch and currentEpoch as this observer last took them.
    pub fn epochs(&self) -> (i64, i64) {
        (self.accepted_epoch, self.current_epoch)
    }

    /// One session with `leader`: register, sync, follow until the connection ends (an
    /// `Err` with why) or `stop` says so (`Ok`). `on_change` sees the replica after each sync
    /// and after each batch of INFORMs.
    pub fn follow(
        &mut self,
        set: &mut Settings,
        leader: &Voter,
        stop: &dyn Fn() -> bool,
        on_change: &mut dyn FnMut(&ZkTree, &Progress),
    ) -> Result<(), String> {
        let sa: SocketAddr = leader
            .quorum
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", leader.quorum))?
            .next()
            .ok_or_else(|| format!("{}: no address", leader.quorum))?;
        let s = TcpStream::connect_timeout(&sa, set.read_timeout)
            .map_err(|e| format!("{}: {e}", leader.quorum))?;
        let _ = s.set_nodelay(true);
        s.set_read_timeout(Some(set.read_timeout))
            .map_err(|e| e.to_string())?;
        let w = s.try_clone().map_err(|e| e.to_string())?;
        let mut c = Conn {
            s,
            w: std::sync::Arc::new(std::sync::Mutex::new(w)),
            buf: Vec::new(),
            frames: VecDeque::new(),
        };
        let new_epoch = self.register(set, &mut c)?;
        self.sync(set, leader.sid, &mut c, new_epoch, on_change)?;
        // Past UPTODATE: INFORMs, PINGs.
        loop {
            if stop() {
                return Ok(());
            }
            let p = c.packet()?;
            match p.kind {
                PacketType::Ping => {
                    self.ping(&mut c, &p)?;
                    // a quiet moment: a watcher that throttles its looks gets one now
                    if let Some(t) = &self.tree {
                        on_change(t, &self.progress);
                    }
                }
                PacketType::Inform => {
                    self.inform(&p)?;
                    // the rest of what has come, then one look at the replica
                    while c.frames.front().is_some_and(
                        |f| matches!(f, Frame::Packet(q) if q.kind == PacketType::Inform),
                    ) {
                        let q = c.packet()?;
                        self.inform(&q)?;
                    }
                    if let Some(t) = &self.tree {
                        on_change(t, &self.progress);
                    }
                }
                PacketType::Revalidate => match (p.payload_of(true), &mut self.served) {
                    (Ok(Payload::RevalidateAnswer { session, valid }), Some(s)) => {
                        s.revalidated(session, valid)
                    }
                    (Ok(_), _) => {}
                    (Err(e), _) => return Err(format!("a bad REVALIDATE: {e}")),
                },
                PacketType::Sync => {
                    if let Some(s) = &mut self.served {
                        s.sync_done();
                    }
                }
                PacketType::InformAndActivate => {
                    // `Observer.processPacket`: the designated leader, then the reconfig txn
                    let data = p.data.as_deref().unwrap_or_default();
                    let Some((designated, entry)) = data.split_first_chunk::<8>() else {
                        return Err("an INFORMANDACTIVATE without its designated leader".into());
                    };
                    let (hdr, txn, digest) = records::decode_txn_entry(entry, 8)
                        .map_err(|e| format!("INFORMANDACTIVATE {:#x}: {e}", p.zxid))?;
                    self.inform_txn(&hdr, &txn, digest)?;
                    self.activate(set, &hdr, &txn)?;
                    if let Some(t) = &self.tree {
                        on_change(t, &self.progress);
                    }
                    let designated = i64::from_be_bytes(*designated);
                    if designated != leader.sid {
                        // ZooKeeper's observer leaves on such a "major change" too
                        return Err(format!(
                            "the reconfig at {:#x} hands the leadership to server.{designated}",
                            hdr.zxid
                        ));
                    }
                }
                // As ZooKeeper's Observer: a stray PROPOSAL/COMMIT/UPTODATE is ignored, and
                // this observer never asks to revalidate or sync.
                _ => tracing::debug!("ignoring {:?} from the leader", p.kind),
            }
        }
    }

    /// OBSERVERINFO, LEADERINFO, ACKEPOCH (`Learner.registerWithLeader`); the new epoch.
    fn register(&mut self, set: &Settings, c: &mut Conn) -> Result<i64, String> {
        let info = LearnerInfo {
            server_id: set.me,
            protocol_version: PROTOCOL_VERSION,
            // the configuration last activated: never ahead of the leader's, which refuses that
            config_version: set.config_version as i64,
        };
        c.send(&QuorumPacket {
            kind: PacketType::ObserverInfo,
            zxid: make_zxid(self.accepted_epoch, 0),
            data: Some(info.write()),
            authinfo: None,
        })?;
        let p = c.packet()?;
        if p.kind != PacketType::LeaderInfo {
            return Err(format!("expected LEADERINFO, the leader sent {:?}", p.kind));
        }
        let version = match p.payload_of(true) {
            Ok(Payload::LeaderInfo { protocol_version }) => protocol_version,
            _ => return Err("LEADERINFO without a protocol version".into()),
        };
        if version < PROTOCOL_VERSION {
            return Err(format!("leader speaks protocol {version:#x}, before 3.4's"));
        }
        let new_epoch = p.zxid >> 32;
        let answer: i32 = if new_epoch > self.accepted_epoch {
            let cur = self.current_epoch as i32;
            self.accepted_epoch = new_epoch;
            cur
        } else if new_epoch == self.accepted_epoch {
            -1
        } else {
            return Err(format!(
                "leader proposes epoch {new_epoch}, older than the accepted {}",
                self.accepted_epoch
            ));
        };
        let last = self.tree.as_ref().map_or(0, |t| t.last_zxid);
        c.send(&QuorumPacket {
            kind: PacketType::AckEpoch,
            zxid: last,
            data: Some(answer.to_be_bytes().to_vec()),
            authinfo: None,
        })?;
        Ok(new_epoch)
    }

    /// From DIFF/SNAP/TRUNC to UPTODATE (`Learner.syncWithLeader`), then the ACK of the
    /// new epoch.
    fn sync(
        &mut self,
        set: &mut Settings,
        leader: i64,
        c: &mut Conn,
        new_epoch: i64,
        on_change: &mut dyn FnMut(&ZkTree, &Progress),
    ) -> Result<(), String> {
        let p = c.packet()?;
        let kind = match p.kind {
            PacketType::Snap => {
                let Frame::Snapshot(db) = c.next()? else {
                    return Err("SNAP without the database after it".into());
                };
                let tree = ZkTree::from_snapshot(&db, p.zxid)
                    .map_err(|e| format!("the leader's snapshot: {e}"))?;
                self.pending = db
                    .digest
                    .filter(|d| d.zxid != 0 && d.version == DIGEST_VERSION);
                self.agreed = false;
                self.tree = Some(tree);
                self.check_pending();
                SyncKind::Snap
            }
            PacketType::Diff => {
                if self.tree.is_none() {
                    // A leader that logged no txn yet diffs from zero; ZooKeeper's initial
                    // tree is not built here.
                    return Err(
                        "the leader offered a DIFF from zxid 0 (an ensemble with no txn yet): \
                         this observer starts from a SNAP only"
                            .into(),
                    );
                }
                SyncKind::Diff
            }
            PacketType::Trunc => {
                // An in-memory replica cannot be cut back: drop it and come back for a SNAP.
                self.tree = None;
                return Err(format!(
                    "the leader asks to truncate to {:#x}: the replica is dropped, a SNAP follows",
                    p.zxid
                ));
            }
            other => return Err(format!("expected DIFF, SNAP or TRUNC, got {other:?}")),
        };
        let mut proposals: VecDeque<QuorumPacket> = VecDeque::new();
        loop {
            let p = c.packet()?;
            match p.kind {
                PacketType::Proposal => proposals.push_back(p),
                PacketType::Commit | PacketType::CommitAndActivate => {
                    let Some(prop) = proposals.pop_front() else {
                        return Err(format!("COMMIT {:#x} without its PROPOSAL", p.zxid));
                    };
                    if prop.zxid != p.zxid {
                        return Err(format!(
                            "COMMIT {:#x}, but the PROPOSAL first in line is {:#x}",
                            p.zxid, prop.zxid
                        ));
                    }
                    self.inform(&prop)?;
                    if p.kind == PacketType::CommitAndActivate {
                        // `Learner.syncWithLeader`: the committed reconfig's configuration
                        let Ok(Payload::Txn(hdr, txn, _)) = prop.payload_of(true) else {
                            return Err(format!("COMMITANDACTIVATE {:#x} of no txn", p.zxid));
                        };
                        self.activate(set, &hdr, &txn)?;
                        let designated = p
                            .data
                            .as_deref()
                            .and_then(|d| d.first_chunk::<8>())
                            .map(|d| i64::from_be_bytes(*d));
                        if designated.is_some_and(|d| d != leader) {
                            return Err(format!(
                                "the reconfig at {:#x} hands the leadership to server.{}",
                                p.zxid,
                                designated.unwrap_or_default()
                            ));
                        }
                    }
                }
                PacketType::Inform => self.inform(&p)?,
                PacketType::NewLeader => {
                    // the leader's configuration (`QuorumVerifier.toString`), newer or not
                    if let Some(text) = p.data.as_deref().filter(|d| !d.is_empty()) {
                        set.adopt(text, &format!("NEWLEADER {:#x}", p.zxid))?;
                    }
                    self.current_epoch = new_epoch;
                    c.send(&QuorumPacket {
                        kind: PacketType::Ack,
                        zxid: p.zxid,
                        data: None,
                        authinfo: None,
                    })?;
                }
                PacketType::UpToDate => break,
                PacketType::Ping => self.ping(c, &p)?,
                other => tracing::debug!("ignoring {other:?} during the sync"),
            }
        }
        if !proposals.is_empty() {
            tracing::debug!("{} proposals not committed at UPTODATE", proposals.len());
        }
        c.send(&QuorumPacket {
            kind: PacketType::Ack,
            zxid: make_zxid(new_epoch, 0),
            data: None,
            authinfo: None,
        })?;
        let tree = self.tree.as_ref().ok_or("no replica after the sync")?;
        if let Some(s) = &mut self.served {
            s.synced(tree, leader, new_epoch, c.w.clone());
        }
        self.progress.syncs.push((new_epoch, kind, tree.last_zxid));
        on_change(tree, &self.progress);
        Ok(())
    }

    /// `Learner.ping`: the PING back with the sessions this server's clients touched.
    fn ping(&mut self, c: &mut Conn, p: &QuorumPacket) -> Result<(), String> {
        self.progress.pings_answered += 1;
        let touches = match &mut self.served {
            Some(s) => match s.ping(p.zxid) {
                Some(t) => t,
                None => return Ok(()),
            },
            None => Vec::new(),
        };
        c.send(&QuorumPacket {
            kind: PacketType::Ping,
            zxid: p.zxid,
            data: Some(touches),
            authinfo: p.authinfo.clone(),
        })
    }

    /// Apply one resolved txn (INFORM, or a committed PROPOSAL of the sync) in zxid order.
    fn inform(&mut self, p: &QuorumPacket) -> Result<(), String> {
        let (hdr, txn, digest) = match p.payload_of(true) {
            Ok(Payload::Txn(h, t, d)) => (h, t, d),
            Ok(_) => return Err(format!("{:?} without a txn", p.kind)),
            Err(e) => return Err(format!("{:?} {:#x}: {e}", p.kind, p.zxid)),
        };
        self.inform_txn(&hdr, &txn, digest)
    }

    fn inform_txn(
        &mut self,
        hdr: &TxnHeader,
        txn: &ResolvedTxn,
        digest: Option<TxnDigest>,
    ) -> Result<(), String> {
        let tree = self.tree.as_mut().ok_or("a txn before any sync")?;
        let last = tree.last_zxid;
        if hdr.zxid <= last {
            // already in the replica (a SNAP taken after it)
            return Ok(());
        }
        if hdr.zxid >> 32 == last >> 32 && hdr.zxid != last + 1 {
            self.tree = None;
            return Err(format!(
                "txn {:#x} follows {last:#x}: txns missed; the replica is dropped",
                hdr.zxid
            ));
        }
        self.apply(hdr, txn, digest)
    }

    /// A committed reconfig (a SetDataTxn of /zookeeper/config) becomes the configuration
    /// this observer follows.
    fn activate(
        &mut self,
        set: &mut Settings,
        hdr: &TxnHeader,
        txn: &ResolvedTxn,
    ) -> Result<(), String> {
        match txn {
            ResolvedTxn::SetData {
                path,
                data: Some(text),
                ..
            } if hdr.kind == records::op::RECONFIG && path == ensemble_core::path::CONFIG => {
                set.adopt(text, &format!("the reconfig at {:#x}", hdr.zxid))?;
                let voters = set.voters.iter().map(|v| v.sid).collect();
                self.progress.configs.push((set.config_version, voters));
                Ok(())
            }
            _ => Err(format!(
                "txn {:#x} is activated as a reconfig, but it sets no configuration",
                hdr.zxid
            )),
        }
    }

    fn apply(
        &mut self,
        hdr: &TxnHeader,
        txn: &ResolvedTxn,
        digest: Option<TxnDigest>,
    ) -> Result<(), String> {
        let tree = self.tree.as_mut().ok_or("no replica")?;
        tree.process(hdr, txn);
        self.progress.txns_applied += 1;
        if !self.check_pending() {
            self.check_digest(digest)?;
        }
        // clients see a txn only once the replica holding it agrees with ZooKeeper's digest
        // (or no digest has yet been comparable since a SNAP, as for the replica itself)
        if let Some(s) = &mut self.served {
            s.applied(hdr, txn);
        }
        Ok(())
    }

    fn check_digest(&mut self, digest: Option<TxnDigest>) -> Result<(), String> {
        let tree = self.tree.as_ref().ok_or("no replica")?;
        if let Some(d) = digest
            && self.pending.is_none()
            && d.version == DIGEST_VERSION
        {
            if d.tree_digest == tree.digest() {
                self.agreed = true;
                self.progress.digests_checked += 1;
            } else if self.agreed {
                let at = tree.last_zxid;
                let ours = tree.digest();
                self.tree = None;
                return Err(format!(
                    "after txn {at:#x} the replica's digest is {ours:#x}, ZooKeeper's is {:#x}: \
                     the replica is dropped",
                    d.tree_digest
                ));
            }
        }
        Ok(())
    }

    /// Compare the SNAP's digest once the replica reaches its zxid (a fuzzy snapshot's digest
    /// may differ, as in the import; the txn digests after it decide).
    fn check_pending(&mut self) -> bool {
        let (Some(d), Some(t)) = (self.pending, self.tree.as_ref()) else {
            return false;
        };
        if d.zxid != t.last_zxid {
            return false;
        }
        self.pending = None;
        if d.digest == t.digest() {
            self.agreed = true;
            self.progress.digests_checked += 1;
            return true;
        }
        false
    }
}

/// The replica as JSON lines, one znode a line (path, data in hex, every stat field as a
/// client reads it, ACL), then one line with the zxid and the digest: what `zk-observe
/// --dump` writes for a test to compare with ZooKeeper's own answers. A client's stat is
/// `DataNode.copyStat`'s: cversion in changes (`2 * cversion - numChildren`), and a container's
/// or TTL node's owner 0 (`extended` as `extendedTypesEnabled`).
pub fn dump(tree: &ZkTree, extended: bool) -> String {
    use ensemble_core::tree::EphemeralType;
    let mut out = String::new();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for (path, n) in &tree.nodes {
        let s = &n.stat;
        let owner = match EphemeralType::of(s.ephemeral_owner, extended) {
            EphemeralType::Normal(id) => id,
            _ => 0,
        };
        let acl: Vec<serde_json::Value> = n
            .acl
            .iter()
            .map(|a| serde_json::json!([a.perms, a.id.scheme, a.id.id]))
            .collect();
        let line = serde_json::json!({
            "path": path,
            "data": n.data.as_deref().map(hex),
            "czxid": s.czxid, "mzxid": s.mzxid, "pzxid": s.pzxid,
            "ctime": s.ctime, "mtime": s.mtime,
            "version": s.version, "aversion": s.aversion,
            "cversion": 2 * i64::from(s.cversion) - i64::from(n.children),
            "ephemeralOwner": owner, "numChildren": n.children,
            "acl": acl,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    let sessions: BTreeMap<String, i32> = tree
        .sessions
        .iter()
        .map(|(id, t)| (format!("{id:#x}"), *t))
        .collect();
    out.push_str(
        &serde_json::json!({"zxid": tree.last_zxid, "digest": tree.digest(), "sessions": sessions})
            .to_string(),
    );
    out.push('\n');
    out
}

/// How long every voter must refuse its election port before a cut-over takes the replica
/// (a ZooKeeper ensemble restarting is not a stopped one).
const CUT_OVER_QUIET: Duration = Duration::from_secs(3);

/// Follow the ensemble until `deadline`: learn the leader, follow it, and on any end of the
/// session learn the (new) leader again. Returns the progress, or why it never synced. With
/// `cut_over`, it also ends once it has synced and then every voter has refused connections
/// for [`CUT_OVER_QUIET`]: the operator stopped the ZooKeeper ensemble to cut over.
pub fn run(
    set: &Settings,
    deadline: Instant,
    cut_over: bool,
    served: Option<Box<dyn Serving>>,
    on_change: &mut dyn FnMut(&ZkTree, &Progress),
    log: &mut dyn FnMut(&str),
) -> (Observer, Settings) {
    let mut set = set.clone();
    let mut obs = Observer {
        served,
        ..Observer::default()
    };
    let stop = || Instant::now() >= deadline;
    let mut last_report = String::new();
    let mut all_gone_since: Option<Instant> = None;
    while !stop() {
        let (leader, answers) = learn_leader(&set, Duration::from_secs(2));
        let gone = answers.iter().all(|(_, a)| {
            a.as_ref()
                .is_err_and(|e| e.contains("refused") || e.contains("Connection reset"))
        });
        if cut_over && gone && obs.tree.is_some() {
            let since = *all_gone_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= CUT_OVER_QUIET {
                log(
                    "every ZooKeeper voter refuses connections: the ensemble is stopped; \
                     cutting over",
                );
                break;
            }
        } else {
            all_gone_since = None;
        }
        let Some((sid, epoch)) = leader else {
            let why = answers
                .iter()
                .map(|(sid, a)| match a {
                    Ok(n) => format!("server.{sid} is {:?} (leader {})", n.state, n.leader),
                    Err(e) => format!("server.{sid}: {e}"),
                })
                .collect::<Vec<_>>()
                .join("; ");
            if why != last_report {
                log(&format!("no leader yet: {why}"));
                last_report = why;
            }
            std::thread::sleep(Duration::from_millis(300));
            continue;
        };
        let Some(v) = set.voters.iter().find(|v| v.sid == sid).cloned() else {
            log(&format!(
                "the voters name server.{sid}, which is not in this config"
            ));
            std::thread::sleep(Duration::from_millis(500));
            continue;
        };
        // the epoch of the voters' votes: a leader just elected proposes the next one
        log(&format!(
            "leader: server.{sid} (voted in epoch {epoch}) at {}",
            v.quorum
        ));
        last_report.clear();
        let version = set.config_version;
        let end = obs.follow(&mut set, &v, &stop, on_change);
        if set.config_version != version {
            log(&format!(
                "configuration {:#x} in force: voters {}; observers {}",
                set.config_version,
                set.voters
                    .iter()
                    .map(|v| v.sid.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                set.observers
                    .iter()
                    .map(|o| o.id.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        match end {
            Ok(()) => break,
            Err(e) => {
                if let Some(s) = &mut obs.served {
                    s.lost(&e);
                }
                log(&format!("left server.{sid}: {e}"));
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    (obs, set)
}

impl Settings {
    /// From a zoo.cfg that lists this server as an observer of ZooKeeper's voters.
    pub fn from_config(cfg: &crate::config::NodeConfig) -> Result<Settings, String> {
        use ensemble_core::LearnerType;
        let me = cfg
            .me()
            .ok_or("this server has no server.N line (myid) in its config")?;
        if me.kind != LearnerType::Observer {
            return Err(format!(
                "server.{} is a {} in the config: only an observer (server.{}=host:q:e:observer, \
                 as ZooKeeper's own zoo.cfg lists it) can follow a ZooKeeper ensemble",
                me.id,
                crate::config::kind_name(me.kind),
                me.id
            ));
        }
        let ticks = u64::from(cfg.core.sync_limit.max(1));
        let mut set = Settings {
            me: me.id as i64,
            my_election: String::new(),
            voters: Vec::new(),
            observers: Vec::new(),
            config_version: 0,
            read_timeout: Duration::from_millis(cfg.core.tick_time_ms.saturating_mul(ticks)),
        };
        set.members(&cfg.servers, cfg.config_version)?;
        Ok(set)
    }

    /// The configuration of `servers` (at `version`) in force: its voters asked, this
    /// server still an observer in it.
    fn members(
        &mut self,
        servers: &BTreeMap<ensemble_core::ServerId, crate::config::ServerSpec>,
        version: u64,
    ) -> Result<(), String> {
        use ensemble_core::LearnerType;
        let me = servers
            .values()
            .find(|s| s.id as i64 == self.me)
            .ok_or_else(|| {
                format!(
                    "configuration {version:#x} does not list server.{}: it was removed from the \
                     ZooKeeper ensemble",
                    self.me
                )
            })?;
        if me.kind != LearnerType::Observer {
            return Err(format!(
                "configuration {version:#x} makes server.{} a participant: it can only observe \
                 a ZooKeeper ensemble",
                self.me
            ));
        }
        let voters: Vec<Voter> = servers
            .values()
            .filter(|s| s.kind == LearnerType::Participant)
            .map(|s| Voter {
                sid: s.id as i64,
                election: format!("{}:{}", s.host, s.election_port),
                quorum: format!("{}:{}", s.host, s.quorum_port),
            })
            .collect();
        if voters.is_empty() {
            return Err(format!(
                "configuration {version:#x} lists no participant to follow"
            ));
        }
        self.my_election = format!("{}:{}", me.host, me.election_port);
        self.voters = voters;
        self.observers = servers
            .values()
            .filter(|s| s.kind == LearnerType::Observer)
            .cloned()
            .collect();
        self.config_version = version;
        Ok(())
    }

    /// A configuration the ensemble activated, as ZooKeeper writes it (`server.N=` lines and
    /// `version=`): taken if newer than the one in force. `origin` names it in errors.
    pub fn adopt(&mut self, text: &[u8], origin: &str) -> Result<(), String> {
        let text = std::str::from_utf8(text)
            .map_err(|_| format!("{origin}: the configuration is not UTF-8"))?;
        let c = crate::dynamic_config::parse_text(std::path::Path::new(origin), text)
            .map_err(|e| e.to_string())?;
        if c.version <= self.config_version {
            return Ok(());
        }
        self.members(&c.servers, c.version)
    }
}

/// The peers of `cfg` that answer ZooKeeper's election protocol: (sid, what it said). Asked
/// on each peer's election port at once with ZooKeeper's initial message and an observer's
/// vote, which a ZooKeeper server answers with the vote it follows and an Ensemble server
/// drops (not its hello). Waits 2 s at most. Nothing is asked over TLS (a TLS quorum port
/// answers neither).
pub fn zookeeper_peers(cfg: &crate::config::NodeConfig) -> Vec<(u64, election::Notification)> {
    let Some(me) = cfg.me() else {
        return Vec::new();
    };
    if cfg.tls.ssl_quorum {
        return Vec::new();
    }
    let my_election = format!("{}:{}", me.host, me.election_port);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut asked = 0;
    for s in cfg.servers.values().filter(|s| s.id != me.id) {
        let (tx, my_election, me) = (tx.clone(), my_election.clone(), me.id as i64);
        let (sid, addr) = (s.id, format!("{}:{}", s.host, s.election_port));
        asked += 1;
        // detached: a name that takes long to resolve must not hold the start past the wait
        std::thread::spawn(move || {
            let a = election::ask(&addr, me, &my_election, Duration::from_secs(1));
            let _ = tx.send(a.ok().map(|n| (sid, n)));
        });
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut found = Vec::new();
    for _ in 0..asked {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Some(f)) => found.push(f),
            Ok(None) => {}
            Err(_) => break,
        }
    }
    found.sort_by_key(|(sid, _)| *sid);
    found
}
