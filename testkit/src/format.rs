//! One text form for what servers say, used by the golden scripts and by traces: peer messages
//! in ZooKeeper's packet names (`PROPOSAL 0x100000001`, `DIFF txns=[...]`), writes and actions, and
//! client replies. Wrap a value in [`Show`] to print it.

use crate::interpreter::Seen;
use ensemble_core::effect::{Action, Write};
use ensemble_core::peer::{PeerMsg, SyncMode};
use ensemble_proto::proto::{Reply, Response};
use std::fmt;

/// `Display` for the core's messages, writes and actions, in the scripts' notation.
pub struct Show<'a, T: ?Sized>(pub &'a T);

impl fmt::Display for Show<'_, PeerMsg> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        match m {
            PeerMsg::Notification(n) => write!(
                f,
                "NOTIFICATION {:?} vote=({}, {}, e{}) round={}",
                n.state, n.vote.leader, n.vote.zxid, n.vote.peer_epoch, n.election_epoch
            ),
            PeerMsg::LearnerInfo {
                accepted_epoch,
                last_zxid,
                ..
            } => write!(f, "{} accepted={accepted_epoch} last={last_zxid}", m.name()),
            PeerMsg::LeaderInfo { new_epoch } => write!(f, "LEADERINFO epoch={new_epoch}"),
            PeerMsg::AckEpoch {
                current_epoch,
                last_zxid,
                counted,
                ..
            } => write!(
                f,
                "ACKEPOCH current={current_epoch} last={last_zxid}{}",
                if *counted { "" } else { " (not counted)" }
            ),
            PeerMsg::Sync {
                mode,
                txns,
                committed,
            } => {
                match mode {
                    SyncMode::Diff => write!(f, "DIFF")?,
                    SyncMode::Trunc { to } => write!(f, "TRUNC to={to}")?,
                    SyncMode::Snap { zxid, .. } => write!(f, "SNAP at={zxid}")?,
                }
                let z: Vec<String> = txns.iter().map(|t| t.zxid.to_string()).collect();
                write!(f, " txns=[{}] committed={committed}", z.join(" "))
            }
            PeerMsg::NewLeader { zxid } => write!(f, "NEWLEADER {zxid}"),
            PeerMsg::AckNewLeader { zxid } => write!(f, "ACK(NEWLEADER) {zxid}"),
            PeerMsg::UpToDate { committed, .. } => write!(f, "UPTODATE committed={committed}"),
            PeerMsg::Proposal(t) => write!(f, "PROPOSAL {}", t.zxid),
            PeerMsg::Ack { zxid } => write!(f, "ACK {zxid}"),
            PeerMsg::Commit { zxid } => write!(f, "COMMIT {zxid}"),
            PeerMsg::Inform(t) => write!(f, "INFORM {}", t.zxid),
            PeerMsg::SnapPart {
                zxid,
                offset,
                total,
                data,
            } => write!(
                f,
                "SNAP(part) at={zxid} bytes={offset}..{} of {total}",
                offset + data.len() as u64
            ),
            PeerMsg::SyncTxns { txns } => {
                let z: Vec<String> = txns.iter().map(|t| t.zxid.to_string()).collect();
                write!(f, "DIFF(part) txns=[{}]", z.join(" "))
            }
            other => write!(f, "{}", other.name()),
        }
    }
}

impl fmt::Display for Show<'_, Reply> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(Response::GetData { data, stat }) => write!(
                f,
                "data={:?} version={}",
                String::from_utf8_lossy(data),
                stat.version
            ),
            Ok(Response::Create { path }) => write!(f, "created {path}"),
            Ok(Response::Stat(s)) => write!(f, "stat version={} mzxid={:#x}", s.version, s.mzxid),
            Ok(Response::GetChildren { children }) => write!(f, "children={children:?}"),
            Ok(r) => write!(f, "{r:?}"),
            Err(e) => write!(f, "error {e:?}"),
        }
    }
}

impl fmt::Display for Show<'_, Action> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Action::Send { to, msg } => write!(f, "send {to}: {}", Show(msg)),
            Action::SendSnapshot {
                to,
                zxid,
                part,
                txns,
                committed,
            } => write!(
                f,
                "send {to}: SNAP from the snapshot file at {zxid} in parts of {part} \
                 (+{} txns, committed {committed})",
                txns.len()
            ),
            Action::DisconnectPeer { peer } => write!(f, "disconnect {peer}"),
            Action::ConnectReply { conn, response } => write!(
                f,
                "connect reply conn {conn} session={:#x} timeout={}",
                response.session_id, response.timeout_ms
            ),
            Action::Reply {
                conn,
                xid,
                zxid,
                reply,
                ..
            } => write!(f, "reply conn {conn} xid {xid} at {zxid}: {}", Show(reply)),
            Action::Watch { conn, event } => {
                write!(f, "watch conn {conn} {:?} {}", event.kind, event.path)
            }
            Action::Close { conn } => write!(f, "close conn {conn}"),
            Action::StateChanged { state, epoch } => write!(f, "state {state:?} epoch={epoch}"),
            Action::EphemeralsDeleted {
                session,
                zxid,
                paths,
            } => write!(f, "ephemerals deleted 0x{session:x} at {zxid}: {paths:?}"),
            Action::QuorumCounted { purpose, members } => {
                write!(f, "quorum counted ({purpose}):")?;
                for (id, intact) in members {
                    write!(
                        f,
                        " n{id}{}",
                        if *intact { "" } else { "(vouches for nothing)" }
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Show<'_, Write> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Write::Append { txns } => match (txns.first(), txns.last()) {
                (Some(a), Some(b)) => write!(f, "append {}..{} ({})", a.zxid, b.zxid, txns.len()),
                _ => write!(f, "append nothing"),
            },
            Write::Truncate { after } => write!(f, "truncate after {after}"),
            Write::SnapshotPart { zxid, index, data } => {
                write!(f, "snapshot part {index} at {zxid} ({} bytes)", data.len())
            }
            Write::Snapshot {
                zxid,
                parts,
                reset_log,
                ..
            } => write!(
                f,
                "snapshot at {zxid} ({parts} parts){}",
                if *reset_log { " (log reset)" } else { "" }
            ),
            Write::PersistEpochs(e) => write!(
                f,
                "persist epochs accepted={} (from {}) current={}",
                e.accepted_epoch, e.accepted_from, e.current_epoch
            ),
        }
    }
}

impl fmt::Display for Show<'_, Seen<'_>> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            Seen::Write(w) => Show(w).fmt(f),
            Seen::Action(a) => Show(a).fmt(f),
        }
    }
}
