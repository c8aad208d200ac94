//! A SNAP in parts (`sync.partial-snap`): the simulator follows what each server received of
//! its leader's streamed SNAP (parts in order from offset 0, then the SNAP with the last bytes)
//! and checks that nothing is built from a SNAP that is not whole: no NEWLEADER ACK and no
//! serving while a stream is open or was cut, and no vote, after a cut, for a zxid the server
//! does not hold (its log or snapshot). And (`sync.snap-persisted`) the snapshot a learner
//! makes durable from a SNAP is the one the leader streamed, byte for byte.

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
    /// Who sends the stream.
    from: Option<ServerId>,
    /// The hash of the open stream's bytes so far.
    hash: Fnv,
    /// The zxid of a stream that was cut or did not add up, until the server's next handshake.
    cut: Option<Zxid>,
    /// The last SNAP taken whole: its zxid, bytes and their hash.
    whole: Option<(Zxid, u64, u64)>,
}

/// FNV-1a, 64 bits: enough to tell two byte strings of a simulated SNAP apart.
#[derive(Clone, Copy, Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
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
        // the stream moves only on these events (the match below): the others, most of a
        // server's, leave it as it is and need no look at the server
        if !matches!(
            event,
            Event::Peer {
                msg: PeerMsg::SnapPart { .. } | PeerMsg::Sync { .. } | PeerMsg::LeaderInfo { .. },
                ..
            } | Event::PeerDisconnected { .. }
        ) {
            return;
        }
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        // A learner takes its stream from its leader only: what another server sends it on
        // the quorum channel (a deposed leader still streaming the SNAP a FOLLOWERINFO of
        // ours asked for, before we followed someone else) is dropped unread, so it is no
        // stream of ours (seeds 2172, 4806, 6571, 9017 of the 10,000 sweep).
        if let Event::Peer {
            from,
            msg: PeerMsg::SnapPart { .. } | PeerMsg::Sync { .. } | PeerMsg::LeaderInfo { .. },
        } = event
        {
            let leader = match n.state {
                ServerState::Following | ServerState::Observing => {
                    n.server.as_ref().and_then(|s| s.status().leader)
                }
                _ => None,
            };
            if leader != Some(*from) {
                if matches!(
                    event,
                    Event::Peer {
                        msg: PeerMsg::SnapPart { .. },
                        ..
                    }
                ) {
                    ensemble_core::probe!("sim.snap.stray");
                }
                return;
            }
        }
        let s = &mut n.snap_stream;
        match event {
            Event::Peer {
                from,
                msg:
                    PeerMsg::SnapPart {
                        zxid,
                        offset,
                        total,
                        data,
                    },
            } => {
                s.from = Some(*from);
                let len = data.len() as u64;
                match s.open {
                    _ if *offset == 0 => {
                        s.open = Some((*zxid, *total, len));
                        s.hash = Fnv::default();
                        s.hash.add(data.as_slice());
                        s.cut = None;
                    }
                    Some((z, t, got)) if z == *zxid && t == *total && got == *offset => {
                        s.open = Some((z, t, got + len));
                        s.hash.add(data.as_slice());
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
                let (whole, len) = match s.open.take() {
                    None => {
                        s.hash = Fnv::default();
                        (true, snapshot.len() as u64)
                    }
                    Some((z, t, got)) => (z == *zxid && got + snapshot.len() as u64 == t, t),
                };
                s.hash.add(snapshot.as_slice());
                s.cut = (!whole).then_some(*zxid);
                s.whole = whole.then_some((*zxid, len, s.hash.0));
            }
            // a new handshake, or a sync without a snapshot: no stream
            Event::Peer {
                msg: PeerMsg::LeaderInfo { .. } | PeerMsg::Sync { .. },
                ..
            } => *s = SnapStream::default(),
            // the stream's connection, not another peer's
            Event::PeerDisconnected { peer } if s.from == Some(*peer) => s.cut_open(),
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
        let s = &n.snap_stream;
        if n.serving && (s.open.is_some() || s.cut.is_some()) {
            return Err(violation(
                Claim::SyncPartialSnap,
                now,
                format!("n{id} serves with the SNAP stream {s:?} not whole"),
            ));
        }
        Ok(())
    }

    /// After a step of `id` (`sync.log-window`): against the newest snapshot on its disk (the
    /// simulator's, not the core's idea of it), its in-memory window starts at or below that
    /// snapshot when it applied through it (unless it starts where a SNAP or recovery put it),
    /// and holds at most `commitLogCount` txns at or
    /// below it (the core trims after applying and when a snapshot ends, so after every step).
    pub(crate) fn check_log_window(&self, id: ServerId) -> Result<(), Violation> {
        let n = &self.nodes[&id];
        let (Some(server), Some((snap, _))) = (n.server.as_ref(), n.disk.snapshot.as_ref()) else {
            return Ok(());
        };
        let applied = server.tree().last_zxid();
        let (base, floor) = server.log_window();
        let keep = server.config().committed_log_size;
        // the txns at or below both (the history is in zxid order: a binary search, not a
        // walk of the window after every step)
        let covered = server.history_through((*snap).min(applied));
        // A window given by a SNAP starts past an older snapshot on disk until the SNAP's is
        // written (at once, or at NEWLEADER under zk-3642's plant): only a trim must not.
        let detail = if *snap <= applied && base > *snap && base != floor {
            format!(
                "n{id}'s log window starts at {base}, past its snapshot on disk at {snap} (applied {applied})"
            )
        } else if covered > keep {
            format!(
                "n{id} holds {covered} txns its snapshot at {snap} covers, commitLogCount {keep}"
            )
        } else {
            return Ok(());
        };
        Err(violation(Claim::SyncLogWindow, self.sched.now, detail))
    }

    /// `id` made durable a snapshot from its leader's SNAP (a `reset_log` snapshot): it is the
    /// SNAP it took whole, byte for byte.
    pub(crate) fn check_snap_persisted(&self, id: ServerId, zxid: Zxid) -> Result<(), Violation> {
        let n = &self.nodes[&id];
        let written = match n.disk.snapshot.as_ref() {
            Some((z, bytes)) if *z == zxid => {
                let mut h = Fnv::default();
                h.add(bytes);
                Some((bytes.len() as u64, h.0))
            }
            _ => None,
        };
        let taken = n.snap_stream.whole.filter(|(z, _, _)| *z == zxid);
        match (taken, written) {
            (Some((_, len, hash)), Some(w)) if (len, hash) == w => Ok(()),
            _ => Err(violation(
                Claim::SyncSnapPersisted,
                self.sched.now,
                format!(
                    "n{id} made durable as the leader's snapshot at {zxid} {} (hash), \
                     having taken the SNAP {:?} (zxid, bytes, hash)",
                    written.map_or("nothing".to_string(), |(l, h)| format!("{l} bytes {h:#x}")),
                    n.snap_stream.whole
                ),
            )),
        }
    }

    /// An action of `id`: its NEWLEADER ACK comes after a whole SNAP, and its vote after a cut
    /// one names a zxid it holds.
    pub(crate) fn check_snap_action(&self, id: ServerId, a: &Action) -> Result<(), Violation> {
        let now = self.sched.now;
        let n = &self.nodes[&id];
        let s = &n.snap_stream;
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
