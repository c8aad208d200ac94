//! ZooKeeper's quorum protocol on the quorum port (issue 17, item 3a): jute `QuorumPacket
//! {int type; long zxid; buffer data; vector<Id> authinfo}` records written back to back with
//! no length prefix (`BinaryOutputArchive.writeRecord`), the payloads the packet types carry
//! (`LearnerInfo` in FOLLOWERINFO/OBSERVERINFO, the protocol version in LEADERINFO, the current
//! epoch in ACKEPOCH, session touches in a learner's PING, the session in REVALIDATE, the
//! client request in REQUEST, TxnHeader + txn in INFORM/PROPOSAL), and a leader's SNAP, which
//! is followed outside any packet by the database (`ZKDatabase.serializeSnapshot`) and the
//! "BenWasHere" signature.
//!
//! Decoding only, checked against real ZooKeeper 3.8 traffic (`interop/migrate/
//! capture_quorum.py`; the fuzz target `quorum_packet` is seeded with it). Nothing here
//! takes part in a ZooKeeper ensemble yet: `ensemble start` never speaks this protocol.

use super::jute::{InputArchive, JuteError, OutputArchive};
use super::records::{self, TxnDigest, TxnHeader};
use super::snapshot::{self, ZkSnapshot};
use ensemble_core::ResolvedTxn;
use ensemble_proto::proto::Id;

/// `Leader`'s packet types, by their codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    Request = 1,
    Proposal = 2,
    Ack = 3,
    Commit = 4,
    Ping = 5,
    Revalidate = 6,
    Sync = 7,
    Inform = 8,
    CommitAndActivate = 9,
    NewLeader = 10,
    FollowerInfo = 11,
    UpToDate = 12,
    Diff = 13,
    Trunc = 14,
    Snap = 15,
    ObserverInfo = 16,
    LeaderInfo = 17,
    AckEpoch = 18,
    InformAndActivate = 19,
}

impl PacketType {
    pub const ALL: [PacketType; 19] = [
        PacketType::Request,
        PacketType::Proposal,
        PacketType::Ack,
        PacketType::Commit,
        PacketType::Ping,
        PacketType::Revalidate,
        PacketType::Sync,
        PacketType::Inform,
        PacketType::CommitAndActivate,
        PacketType::NewLeader,
        PacketType::FollowerInfo,
        PacketType::UpToDate,
        PacketType::Diff,
        PacketType::Trunc,
        PacketType::Snap,
        PacketType::ObserverInfo,
        PacketType::LeaderInfo,
        PacketType::AckEpoch,
        PacketType::InformAndActivate,
    ];

    pub fn from_code(code: i32) -> Option<PacketType> {
        PacketType::ALL.iter().copied().find(|t| *t as i32 == code)
    }
}

/// One jute `QuorumPacket`. `authinfo` is `None` for the null vector ZooKeeper writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumPacket {
    pub kind: PacketType,
    pub zxid: i64,
    pub data: Option<Vec<u8>>,
    pub authinfo: Option<Vec<Id>>,
}

impl QuorumPacket {
    pub fn read(i: &mut InputArchive) -> Result<QuorumPacket, JuteError> {
        let at = i.offset();
        let code = i.int("packet type")?;
        let kind = PacketType::from_code(code).ok_or_else(|| JuteError {
            offset: at,
            reason: format!("unknown quorum packet type {code}"),
        })?;
        let zxid = i.long("packet zxid")?;
        let data = i.buffer("packet data")?.map(<[u8]>::to_vec);
        let at = i.offset();
        let n = i.int("authinfo count")?;
        let authinfo = match n {
            -1 => None,
            n if n < 0 => {
                return Err(JuteError {
                    offset: at,
                    reason: format!("authinfo: negative count {n}"),
                });
            }
            n => {
                // each Id is two strings: at least eight bytes
                let n = n as usize;
                if n.saturating_mul(8) > i.remaining() {
                    return Err(JuteError {
                        offset: at,
                        reason: format!("authinfo: {n} ids cannot fit in {} bytes", i.remaining()),
                    });
                }
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    let scheme = i.ustring("authinfo scheme")?;
                    let id = i.ustring("authinfo id")?;
                    ids.push(Id { scheme, id });
                }
                Some(ids)
            }
        };
        Ok(QuorumPacket {
            kind,
            zxid,
            data,
            authinfo,
        })
    }

    pub fn write(&self, o: &mut OutputArchive) {
        o.int(self.kind as i32);
        o.long(self.zxid);
        o.buffer(self.data.as_deref());
        match &self.authinfo {
            None => o.int(-1),
            Some(ids) => {
                o.int(ids.len() as i32);
                for id in ids {
                    o.ustring(&id.scheme);
                    o.ustring(&id.id);
                }
            }
        }
    }

    fn payload(&self) -> InputArchive<'_> {
        InputArchive::new(self.data.as_deref().unwrap_or_default(), 0)
    }
}

/// `LearnerInfo {long serverid; int protocolVersion; long configVersion}`: the data of
/// FOLLOWERINFO and OBSERVERINFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LearnerInfo {
    pub server_id: i64,
    pub protocol_version: i32,
    pub config_version: i64,
}

/// The protocol version ZooKeeper 3.4 and later speak (`0x10000`).
pub const PROTOCOL_VERSION: i32 = 0x10000;

impl LearnerInfo {
    pub fn write(&self) -> Vec<u8> {
        let mut o = OutputArchive::default();
        o.long(self.server_id);
        o.int(self.protocol_version);
        o.long(self.config_version);
        o.out
    }
}

/// A learner's PING carries the sessions its clients touched: (session id, timeout) pairs.
pub type Touches = Vec<(i64, i32)>;

/// A client request a learner forwards (`Request` in REQUEST's data): session, cxid, opcode
/// and the request record's bytes as the client sent them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedRequest {
    pub session: i64,
    pub cxid: i32,
    pub opcode: i32,
    pub body: Vec<u8>,
}

/// What a packet's data says, by its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// FOLLOWERINFO / OBSERVERINFO.
    Learner(LearnerInfo),
    /// LEADERINFO: the leader's protocol version (the zxid names the new epoch).
    LeaderInfo {
        protocol_version: i32,
    },
    /// ACKEPOCH: the learner's current epoch (the zxid is its last logged).
    AckEpoch {
        current_epoch: i32,
    },
    /// A learner's PING (a leader's carries nothing).
    Ping(Touches),
    /// REVALIDATE: from a learner (session, timeout), from the leader (session, valid).
    RevalidateAsk {
        session: i64,
        timeout: i32,
    },
    RevalidateAnswer {
        session: i64,
        valid: bool,
    },
    Request(ForwardedRequest),
    /// PROPOSAL / INFORM: a resolved txn.
    Txn(TxnHeader, ResolvedTxn, Option<TxnDigest>),
    /// NEWLEADER / COMMITANDACTIVATE / INFORMANDACTIVATE and the rest: their bytes.
    Raw,
}

impl QuorumPacket {
    /// The data decoded for this packet's type; `from_leader` tells the two REVALIDATEs and
    /// PINGs apart.
    pub fn payload_of(&self, from_leader: bool) -> Result<Payload, JuteError> {
        let mut i = self.payload();
        let p = match self.kind {
            PacketType::FollowerInfo | PacketType::ObserverInfo => {
                let server_id = i.long("learner server id")?;
                // ZooKeeper before 3.4 sent the id alone
                let protocol_version = if i.remaining() >= 4 {
                    i.int("learner protocol version")?
                } else {
                    0
                };
                let config_version = if i.remaining() >= 8 {
                    i.long("learner config version")?
                } else {
                    0
                };
                Payload::Learner(LearnerInfo {
                    server_id,
                    protocol_version,
                    config_version,
                })
            }
            PacketType::LeaderInfo => Payload::LeaderInfo {
                protocol_version: i.int("leader protocol version")?,
            },
            PacketType::AckEpoch => Payload::AckEpoch {
                current_epoch: i.int("current epoch")?,
            },
            PacketType::Ping if !from_leader => {
                let mut touches = Vec::with_capacity(i.remaining() / 12);
                while i.remaining() > 0 {
                    touches.push((i.long("touched session")?, i.int("session timeout")?));
                }
                Payload::Ping(touches)
            }
            PacketType::Revalidate if from_leader => Payload::RevalidateAnswer {
                session: i.long("revalidated session")?,
                valid: i.bool("session valid")?,
            },
            PacketType::Revalidate => Payload::RevalidateAsk {
                session: i.long("revalidated session")?,
                timeout: i.int("session timeout")?,
            },
            PacketType::Request => Payload::Request(ForwardedRequest {
                session: i.long("request session")?,
                cxid: i.int("request cxid")?,
                opcode: i.int("request type")?,
                body: i.rest().to_vec(),
            }),
            PacketType::Proposal | PacketType::Inform => {
                let (h, t, d) =
                    records::decode_txn_entry(self.data.as_deref().unwrap_or_default(), 0)?;
                return Ok(Payload::Txn(h, t, d));
            }
            _ => return Ok(Payload::Raw),
        };
        Ok(p)
    }
}

/// One thing on a quorum connection: a packet, or the database a SNAP brought.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Packet(QuorumPacket),
    Snapshot(ZkSnapshot),
}

/// A frame with the bytes it came in.
pub type Located = (std::ops::Range<usize>, Frame);

/// The signature after a SNAP's database (`LearnerHandler`).
const SNAP_SIGNATURE: &str = "BenWasHere";

/// Whether a decoding error may only mean the bytes so far end inside a frame: cut short, or
/// a length or count larger than what has come (a stream, unlike a file, has more to come;
/// the reader bounds how much it waits for).
pub fn needs_more(e: &JuteError) -> bool {
    e.reason.starts_with("truncated")
        || e.reason.contains("bytes left")
        || e.reason.contains("cannot fit in")
}

/// Split what one side of a quorum connection sent into frames, with the byte range of each.
/// `from_leader`: the leader's side, where a SNAP is followed by the database. A stream cut
/// inside its last frame returns the frames before it and where the cut one starts.
pub fn decode_stream(bytes: &[u8], from_leader: bool) -> Result<(Vec<Located>, usize), JuteError> {
    let mut i = InputArchive::new(bytes, 0);
    let mut frames = Vec::new();
    while i.remaining() > 0 {
        let start = i.pos();
        let mut probe = i.clone();
        let packet = match QuorumPacket::read(&mut probe) {
            Ok(p) => p,
            Err(e) if needs_more(&e) => return Ok((frames, start)),
            Err(e) => return Err(e),
        };
        i = probe;
        let snap = from_leader && packet.kind == PacketType::Snap;
        frames.push((start..i.pos(), Frame::Packet(packet)));
        if snap {
            // a SNAP and its database come out together: a cut inside the database leaves
            // both for the next call
            let packet_start = start;
            let start = i.pos();
            let mut probe = i.clone();
            let mut db = ZkSnapshot::default();
            let body = snapshot::decode_body(&mut probe, &mut db)
                .and_then(|_| probe.ustring("snapshot signature"));
            match body {
                Ok(sig) if sig == SNAP_SIGNATURE => {}
                Ok(sig) => {
                    return Err(
                        probe.error(format!("SNAP signature {sig:?}, not {SNAP_SIGNATURE:?}"))
                    );
                }
                Err(e) if needs_more(&e) => {
                    frames.pop();
                    return Ok((frames, packet_start));
                }
                Err(e) => return Err(e),
            }
            i = probe;
            frames.push((start..i.pos(), Frame::Snapshot(db)));
        }
    }
    let end = i.pos();
    Ok((frames, end))
}
