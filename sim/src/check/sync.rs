//! A SNAP in parts (`sync.partial-snap`): the simulator follows what each server received of
//! its leader's streamed SNAP (parts in order from offset 0, then the SNAP with the last bytes)
//! and checks that nothing is built from a SNAP that is not whole: no NEWLEADER ACK and no
//! serving while a stream is open or was cut, and no vote, after a cut, for a zxid the server
//! does not hold (its log or snapshot).

use crate::check::{Claim, Violation, violation};
use crate::world::World;
use ensemble_core::effect::Action;
use ensemble_core::peer::{PeerMsg, ServerState, SyncMode};
use ensemble_core::server::Event;
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;

/// What a server has received of its leader's SNAP stream.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SnapStream {
    /// The stream under way: its snapshot's zxid, total bytes, and bytes received so far.
    open: Option<(Zxid, u64, u64)>,
    /// The zxid of a stream that was cut or did not add up, until the server's next handshake.
    cut: Option<Zxid>,
}

impl SnapStream {
    fn cut_open(&mut self) {
        if let Some((z, _, _)) = self.open.take() {
            self.cut = Some(z);
        }
    }
}

impl World {
    /// Before server `id` handles `event`: follow the SNAP stream it is being sent.
    pub(crate) fn follow_snap_stream(&mut self, id: ServerId, event: &Event) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        let s = &mut n.snap_stream;
        match event {
            Event::Peer {
                msg:
                    PeerMsg::SnapPart {
                        zxid,
                        offset,
                        total,
                        data,
                    },
                ..
            } => {
                let len = data.len() as u64;
                match s.open {
                    _ if *offset == 0 => {
                        s.open = Some((*zxid, *total, len));
                        s.cut = None;
                    }
                    Some((z, t, got)) if z == *zxid && t == *total && got == *offset => {
                        s.open = Some((z, t, got + len));
                    }
                    _ => {
                        s.open = None;
                        s.cut = Some(*zxid);
                    }
                }
            }
            Event::Peer {
                msg:
                    PeerMsg::Sync {
                        mode: SyncMode::Snap { zxid, snapshot },
                        ..
                    },
                ..
            } => {
                let whole = match s.open.take() {
                    None => true,
                    Some((z, t, got)) => z == *zxid && got + snapshot.len() as u64 == t,
                };
                s.cut = (!whole).then_some(*zxid);
            }
            // a new handshake, or a sync without a snapshot: no stream
            Event::Peer {
                msg: PeerMsg::LeaderInfo { .. } | PeerMsg::Sync { .. },
                ..
            } => *s = SnapStream::default(),
            Event::PeerDisconnected { .. } => s.cut_open(),
            _ => {}
        }
    }

    /// After a step of `id`: a server no longer learning had its open stream cut, and one that
    /// serves has taken a whole SNAP (or none).
    pub(crate) fn check_snap_stream(&mut self, id: ServerId) -> Result<(), Violation> {
        let now = self.sched.now;
        let n = self.nodes.get_mut(&id).expect("node");
        if !matches!(n.state, ServerState::Following | ServerState::Observing) {
            n.snap_stream.cut_open();
        }
        let s = n.snap_stream;
        if n.serving && (s.open.is_some() || s.cut.is_some()) {
            return Err(violation(
                Claim::SyncPartialSnap,
                now,
                format!("n{id} serves with the SNAP stream {s:?} not whole"),
            ));
        }
        Ok(())
    }

    /// An action of `id`: its NEWLEADER ACK comes after a whole SNAP, and its vote after a cut
    /// one names a zxid it holds.
    pub(crate) fn check_snap_action(&self, id: ServerId, a: &Action) -> Result<(), Violation> {
        let now = self.sched.now;
        let n = &self.nodes[&id];
        let s = n.snap_stream;
        match a {
            Action::Send {
                msg: PeerMsg::AckNewLeader { zxid },
                ..
            } if s.open.is_some() || s.cut.is_some() => Err(violation(
                Claim::SyncPartialSnap,
                now,
                format!("n{id} ACKs NEWLEADER {zxid} with the SNAP stream {s:?} not whole"),
            )),
            Action::Send {
                msg: PeerMsg::Notification(note),
                ..
            } if note.vote.leader == id && note.state == ServerState::Looking => match s.cut {
                Some(cut)
                    if note.vote.zxid >= cut
                        && note.vote.zxid > Zxid::ZERO
                        && !n.disk.holds(note.vote.zxid) =>
                {
                    Err(violation(
                        Claim::SyncPartialSnap,
                        now,
                        format!(
                            "n{id} votes for itself at {} after a SNAP of {cut} was cut, \
                             without holding {}",
                            note.vote.zxid, note.vote.zxid
                        ),
                    ))
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}
