//! Messages between ensemble members: Fast Leader Election notifications on the election
//! channel, and ZAB (discovery, synchronisation, broadcast) on the quorum channel.
//!
//! The runtime that carries them guarantees what TCP does: per (sender, receiver, channel),
//! delivery in order until the connection breaks; after a break, the receiver's core is told
//! (`Event::PeerDisconnected`) before anything sent on a later connection arrives.

use crate::txn::{ServerId, Txn};
use crate::zxid::Zxid;
use ensemble_proto::proto::SessionId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `QuorumPeer.ServerState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServerState {
    Looking,
    Following,
    Leading,
    Observing,
}

/// A vote: who should lead, and why (their last zxid and epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    pub leader: ServerId,
    pub zxid: Zxid,
    /// The proposed leader's currentEpoch.
    pub peer_epoch: u32,
}

/// FLE's notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub vote: Vote,
    pub state: ServerState,
    /// The sender's logical clock (election round).
    pub election_epoch: u64,
    /// The version of the sender's configuration in force (ZooKeeper's notification carries
    /// the config itself; here a peer that lags is sent it: [`PeerMsg::Config`]).
    pub config_version: u64,
    /// The sender's own durable state vouches for what it once acknowledged: it has completed
    /// a sync (or led) on this disk, so its currentEpoch is written (`ZooKeeperServer::intact`).
    /// A server with an empty or operator-reset data dir sends false, and no quorum counts it
    /// as a witness of its history (sim/README.md, "Disk loss").
    pub intact: bool,
}

/// How the leader brings a learner up to date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMode {
    /// Append `txns` after the learner's last zxid.
    Diff,
    /// Drop everything in the learner's log after `to`, then append `txns`.
    Trunc { to: Zxid },
    /// Replace the learner's state with this snapshot (taken at `zxid`), then append `txns`.
    /// A snapshot larger than the leader's sync part size comes as `SnapPart`s first: then
    /// `snapshot` is its last bytes, after them.
    Snap { zxid: Zxid, snapshot: SnapBytes },
}

/// Bytes of a snapshot as they travel: a range of one shared buffer, so that the leader cuts a
/// SNAP into frames without copying it (each frame encodes its range straight from the
/// buffer). Decoded, a range is a buffer of its own.
#[derive(Clone)]
pub struct SnapBytes {
    buf: Arc<Vec<u8>>,
    range: std::ops::Range<usize>,
}

impl SnapBytes {
    /// Bytes `range` of `buf`.
    pub fn slice(buf: &Arc<Vec<u8>>, range: std::ops::Range<usize>) -> SnapBytes {
        assert!(
            range.start <= range.end && range.end <= buf.len(),
            "a range outside the snapshot"
        );
        SnapBytes {
            buf: Arc::clone(buf),
            range,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }

    pub fn len(&self) -> usize {
        self.range.len()
    }

    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// The bytes in a buffer of their own: the shared one when they are all of it.
    pub fn into_arc(self) -> Arc<Vec<u8>> {
        if self.range == (0..self.buf.len()) {
            self.buf
        } else {
            Arc::new(self.as_slice().to_vec())
        }
    }
}

impl From<Arc<Vec<u8>>> for SnapBytes {
    fn from(buf: Arc<Vec<u8>>) -> SnapBytes {
        let range = 0..buf.len();
        SnapBytes { buf, range }
    }
}

impl PartialEq for SnapBytes {
    fn eq(&self, other: &SnapBytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SnapBytes {}

impl std::fmt::Debug for SnapBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SnapBytes({} bytes)", self.len())
    }
}

/// One byte string (bincode then copies it whole, not byte by byte), the encoding a `Vec<u8>`
/// had: peers of either build agree.
impl Serialize for SnapBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::serialize(self.as_slice(), s)
    }
}

impl<'de> Deserialize<'de> for SnapBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SnapBytes, D::Error> {
        serde_bytes::deserialize::<Vec<u8>, D>(d).map(|v| SnapBytes::from(Arc::new(v)))
    }
}

/// Straight into the `Arc` (serde's own impl decodes into a `Box` and then copies it over).
fn arc_txn<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<Txn>, D::Error> {
    Txn::deserialize(d).map(Arc::new)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMsg {
    // --- election channel ---
    Notification(Notification),

    // --- discovery ---
    /// learner -> leader: FOLLOWERINFO / OBSERVERINFO.
    LearnerInfo {
        accepted_epoch: u32,
        last_zxid: Zxid,
        observer: bool,
        /// As [`Notification::intact`]: whether its acceptedEpoch can be counted as a promise
        /// it kept (a wiped disk forgot the epochs it promised).
        intact: bool,
    },
    /// leader -> learner: the epoch it proposes.
    LeaderInfo {
        new_epoch: u32,
    },
    /// learner -> leader, after acceptedEpoch is durable. `epoch` is the LEADERINFO's it
    /// answers: over a quorum link that outlived a leadership (a reconnect carries what was
    /// written before the break was noticed) an answer to an older LEADERINFO can arrive.
    ///
    /// `counted` is false when the learner had already accepted this very epoch from another
    /// would-be leader (ZooKeeper's ACKEPOCH with currentEpoch -1): it may not promise the epoch
    /// twice, so the leader does not count it towards the quorum that establishes the epoch,
    /// but syncs it once that quorum is there, so the learner still joins.
    AckEpoch {
        epoch: u32,
        current_epoch: u32,
        last_zxid: Zxid,
        counted: bool,
    },

    // --- synchronisation ---
    /// leader -> learner: DIFF/TRUNC/SNAP. `committed` is the highest zxid in `txns` (or the
    /// snapshot) known committed when it was sent.
    Sync {
        mode: SyncMode,
        txns: Vec<Arc<Txn>>,
        committed: Zxid,
    },
    /// leader -> learner: everything above is the new epoch's starting history.
    NewLeader {
        zxid: Zxid,
    },
    /// learner -> leader: the sync is durable and currentEpoch is written.
    AckNewLeader {
        zxid: Zxid,
    },
    /// leader -> learner: serve clients; everything through `committed` is committed.
    /// `first_config` is the leader's first configuration once an established epoch gave it a
    /// version (its zxid: ZooKeeper's `version=100000000`), which a learner with an older one
    /// takes, as ZooKeeper's learner takes the NEWLEADER's configuration at UPTODATE.
    UpToDate {
        committed: Zxid,
        #[serde(default)]
        first_config: Option<crate::membership::Membership>,
    },

    // --- broadcast ---
    /// Shared, not copied: the same txn is in the history, the log and every follower's frame.
    Proposal(#[serde(deserialize_with = "arc_txn")] Arc<Txn>),
    /// follower -> leader: every proposal through `zxid` is durable here.
    Ack {
        zxid: Zxid,
    },
    /// leader -> follower: everything through `zxid` is committed.
    Commit {
        zxid: Zxid,
    },
    /// leader -> observer: a committed txn.
    Inform(#[serde(deserialize_with = "arc_txn")] Arc<Txn>),

    // --- liveness, sessions, sync ---
    /// leader -> learner, every tick (and at once for a quorum `sync` round).
    Ping {
        round: u64,
    },
    /// learner -> leader: still following, and these sessions had activity.
    PingReply {
        round: u64,
        touched: Vec<SessionId>,
    },
    /// learner -> leader: a client write (or createSession/closeSession) to propose. The op
    /// is boxed: it is the largest thing a peer message holds, and every message (acks and
    /// commits included) is moved at the size of the largest variant.
    Request {
        rid: u64,
        session: SessionId,
        cxid: i32,
        op: Box<crate::txn::TxnOp>,
        /// The session is local to the learner (`localSessionsEnabled`): the leader tracks
        /// nothing of it, so it checks nothing of it either.
        local: bool,
    },
    /// learner -> leader: a client asked for `sync`.
    SyncRequest {
        id: u64,
    },
    /// leader -> learner: leadership confirmed by a quorum; answer once applied through `zxid`.
    SyncReply {
        id: u64,
        zxid: Zxid,
    },
    /// learner -> leader: a client re-attached `session` here (ZooKeeper's REVALIDATE): the
    /// session's requests now come through this learner, and any other server's are refused.
    Revalidate {
        session: SessionId,
    },
    /// leader -> learner: the request `rid` came for a session owned by another server now
    /// (ZooKeeper's SessionMoved); the connection that sent it is closed.
    SessionMoved {
        rid: u64,
    },
    /// leader -> learner: the request `rid` came for a session that is closing, closed or
    /// unknown (ZooKeeper's SESSIONEXPIRED from checkSession); nothing was proposed.
    SessionExpired {
        rid: u64,
    },

    // --- synchronisation, in bounded frames (after the variants above: their indices are
    // the wire's) ---
    /// leader -> learner: bytes `offset..offset + data.len()` of the `total`-byte snapshot at
    /// `zxid`, before the SNAP that carries its last bytes. Parts come in order from offset 0.
    SnapPart {
        zxid: Zxid,
        offset: u64,
        total: u64,
        data: SnapBytes,
    },
    /// leader -> learner: more of the sync's txns, after the DIFF/TRUNC/SNAP and before
    /// NEWLEADER (a long history in frames of bounded size).
    SyncTxns {
        txns: Vec<Arc<Txn>>,
    },

    // --- election channel, after the variants above (their indices are the wire's) ---
    /// The sender's configuration in force, to a peer whose notification named an older one
    /// (ZooKeeper sends its config text in every notification; a LOOKING server that sees a
    /// newer one adopts it and restarts its election). Only a committed configuration is ever
    /// in force, so it is one a committed reconfig made.
    Config(crate::membership::Membership),

    // --- broadcast, after the variants above (their indices are the wire's) ---
    /// leader -> learner, after the COMMIT (or INFORM) of the reconfig `zxid` that removed
    /// the leader as a voter: lead or follow `designated`, a voter of the new configuration
    /// that ACKed it, without an election (the leader id ZooKeeper's COMMITANDACTIVATE and
    /// INFORMANDACTIVATE carry). The leader commits nothing after `zxid`.
    HandOver {
        zxid: Zxid,
        designated: ServerId,
    },
}

impl PeerMsg {
    /// Election notifications travel on the election port; all else on the quorum port.
    pub fn is_election(&self) -> bool {
        matches!(self, PeerMsg::Notification(_) | PeerMsg::Config(_))
    }

    /// The zxid a leader's packet carries (ZooKeeper's QuorumPacket.zxid), for the learner
    /// handler's `last_zxid`: what was proposed, committed, informed or synced through.
    pub fn zxid(&self) -> Option<Zxid> {
        match self {
            PeerMsg::Proposal(t) | PeerMsg::Inform(t) => Some(t.zxid),
            PeerMsg::Commit { zxid }
            | PeerMsg::NewLeader { zxid }
            | PeerMsg::SyncReply { zxid, .. }
            | PeerMsg::SnapPart { zxid, .. } => Some(*zxid),
            PeerMsg::Sync {
                txns, committed, ..
            } => Some(txns.last().map_or(*committed, |t| t.zxid.max(*committed))),
            PeerMsg::SyncTxns { txns } => txns.last().map(|t| t.zxid),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            PeerMsg::Notification(_) => "NOTIFICATION",
            PeerMsg::LearnerInfo {
                observer: false, ..
            } => "FOLLOWERINFO",
            PeerMsg::LearnerInfo { observer: true, .. } => "OBSERVERINFO",
            PeerMsg::LeaderInfo { .. } => "LEADERINFO",
            PeerMsg::AckEpoch { .. } => "ACKEPOCH",
            PeerMsg::Sync {
                mode: SyncMode::Diff,
                ..
            } => "DIFF",
            PeerMsg::Sync {
                mode: SyncMode::Trunc { .. },
                ..
            } => "TRUNC",
            PeerMsg::Sync {
                mode: SyncMode::Snap { .. },
                ..
            } => "SNAP",
            PeerMsg::NewLeader { .. } => "NEWLEADER",
            PeerMsg::AckNewLeader { .. } => "ACK(NEWLEADER)",
            PeerMsg::UpToDate { .. } => "UPTODATE",
            PeerMsg::Proposal(_) => "PROPOSAL",
            PeerMsg::Ack { .. } => "ACK",
            PeerMsg::Commit { .. } => "COMMIT",
            PeerMsg::Inform(_) => "INFORM",
            PeerMsg::Ping { .. } => "PING",
            PeerMsg::PingReply { .. } => "PING(reply)",
            PeerMsg::Request { .. } => "REQUEST",
            PeerMsg::SyncRequest { .. } => "SYNC",
            PeerMsg::SyncReply { .. } => "SYNC(reply)",
            PeerMsg::Revalidate { .. } => "REVALIDATE",
            PeerMsg::SessionMoved { .. } => "SESSIONMOVED",
            PeerMsg::SessionExpired { .. } => "SESSIONEXPIRED",
            PeerMsg::SnapPart { .. } => "SNAP(part)",
            PeerMsg::SyncTxns { .. } => "DIFF(part)",
            PeerMsg::Config(_) => "CONFIG",
            PeerMsg::HandOver { .. } => "HANDOVER",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bincode::Options;
    use serde::Serialize;

    /// Byte fields go through serde's bytes hooks; in bincode that is the very encoding a
    /// sequence of u8 had (a u64 length, then the bytes), so logs, snapshots and peers written
    /// before keep decoding.
    #[test]
    fn byte_fields_encode_as_sequences_did() {
        #[derive(Serialize)]
        enum Old {
            Snap { zxid: Zxid, snapshot: Vec<u8> },
        }
        let opts = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_big_endian();
        let new = SyncMode::Snap {
            zxid: Zxid(7),
            snapshot: SnapBytes::from(Arc::new(vec![1, 2, 3, 250])),
        };
        let old = Old::Snap {
            zxid: Zxid(7),
            snapshot: vec![1, 2, 3, 250],
        };
        let bytes = opts.serialize(&new).expect("encodes");
        // Variant 2 of SyncMode is Snap; Old has it at 0.
        let mut want = opts.serialize(&old).expect("encodes");
        want[..4].copy_from_slice(&2u32.to_be_bytes());
        assert_eq!(bytes, want);
        let back: SyncMode = opts.deserialize(&bytes).expect("decodes");
        assert_eq!(back, new);

        // a range of a shared buffer encodes as those bytes alone would, and decodes whole
        let buf = Arc::new((0u8..=255).collect::<Vec<u8>>());
        let part = PeerMsg::SnapPart {
            zxid: Zxid(3),
            offset: 10,
            total: 256,
            data: SnapBytes::slice(&buf, 10..74),
        };
        let bytes = opts.serialize(&part).expect("encodes");
        let mut want = 20u32.to_be_bytes().to_vec(); // SnapPart: after the 20 older variants
        want.extend(opts.serialize(&(Zxid(3), 10u64, 256u64)).expect("encodes"));
        want.extend(opts.serialize(&buf[10..74].to_vec()).expect("encodes"));
        assert_eq!(bytes, want);
        assert_eq!(opts.deserialize::<PeerMsg>(&bytes).expect("decodes"), part);

        #[derive(Serialize)]
        struct OldSetData {
            path: String,
            data: Vec<u8>,
            version: i32,
        }
        let req = ensemble_proto::proto::Request::SetData {
            path: "/a".into(),
            data: vec![9; 100],
            version: -1,
        };
        let old = OldSetData {
            path: "/a".into(),
            data: vec![9; 100],
            version: -1,
        };
        let mut want = 4u32.to_be_bytes().to_vec(); // Request::SetData is variant 4
        want.extend(opts.serialize(&old).expect("encodes"));
        assert_eq!(opts.serialize(&req).expect("encodes"), want);
    }
}
