//! Drawing a fault of a kind from the fault stream: its targets, shape and length, as a
//! concrete action (which `shrink` can replay as a schedule).

use super::FaultKind;
use super::words::set;
use crate::params::{ClientTarget, FaultAction, Target};
use crate::world::World;
use ensemble_core::server::ConnId;
use ensemble_core::txn::ServerId;

/// Each fault kind's draw from the fault stream (targets, shapes, lengths), as a concrete
/// action; `FAULTS` names which draws which.
impl World {
    /// Isolate one, split, bridge or one-way, for a drawn while.
    pub(crate) fn draw_partition(&mut self) -> FaultAction {
        let r = self.params.random.clone();
        let ids = self.servers.clone();
        let ms = self.fault_rng.exp(r.partition_len).max(50);
        let mut shuffled = ids.clone();
        self.fault_rng.shuffle(&mut shuffled);
        let shape = self.fault_rng.below(4);
        let mut sides = Vec::new();
        let mut oneway = Vec::new();
        let desc = match shape {
            0 => {
                sides.push((shuffled[0], 0b10));
                for i in &shuffled[1..] {
                    sides.push((*i, 0b01));
                }
                format!(
                    "{} | {} (n{} isolated)",
                    set(&shuffled[..1]),
                    set(&shuffled[1..]),
                    shuffled[0]
                )
            }
            1 => {
                let k = self.fault_rng.range(1, ids.len() as u64 - 1) as usize;
                for (j, i) in shuffled.iter().enumerate() {
                    sides.push((*i, if j < k { 0b10 } else { 0b01 }));
                }
                format!("{} | {}", set(&shuffled[..k]), set(&shuffled[k..]))
            }
            2 => {
                let k = self
                    .fault_rng
                    .range(1, (ids.len() as u64).saturating_sub(2).max(1))
                    as usize;
                for (j, i) in shuffled.iter().enumerate() {
                    let side = if j == 0 {
                        0b11
                    } else if j <= k {
                        0b10
                    } else {
                        0b01
                    };
                    sides.push((*i, side));
                }
                format!(
                    "{} | {} bridged by n{}",
                    set(&shuffled[1..=k.min(shuffled.len() - 1)]),
                    set(&shuffled[(k + 1).min(shuffled.len())..]),
                    shuffled[0]
                )
            }
            _ => {
                let x = shuffled[0];
                let outbound = self.fault_rng.chance(0.5);
                for i in &ids {
                    if *i != x {
                        oneway.push(if outbound { (x, *i) } else { (*i, x) });
                    }
                }
                let others: Vec<ServerId> = ids.iter().copied().filter(|i| *i != x).collect();
                if outbound {
                    format!("one-way n{x} -/-> {}", set(&others))
                } else {
                    format!("one-way {} -/-> n{x}", set(&others))
                }
            }
        };
        FaultAction::Partition {
            sides,
            oneway,
            ms,
            desc,
        }
    }

    /// One direction of one link holds what it carries for a drawn while.
    pub(crate) fn draw_clog(&mut self) -> FaultAction {
        let r = self.params.random.clone();
        let ids = self.servers.clone();
        let a = ids[self.fault_rng.below(ids.len())];
        let b = ids[self.fault_rng.below(ids.len())];
        if a == b {
            return FaultAction::Nothing;
        }
        let ms = self.fault_rng.exp(r.clog_len).max(10);
        FaultAction::Clog { from: a, to: b, ms }
    }

    /// FoundationDB's swizzle-clog over a random subset of servers.
    pub(crate) fn draw_swizzle(&mut self) -> FaultAction {
        let ids = self.servers.clone();
        // FoundationDB's swizzle-clog: clog a random subset's links one by one, then
        // unclog them in a random order
        let mut subset = ids.clone();
        self.fault_rng.shuffle(&mut subset);
        subset.truncate(self.fault_rng.range(2, ids.len() as u64) as usize);
        let mut clogs = Vec::new();
        let mut t = 0;
        for &a in &subset {
            for &b in &subset {
                if a != b {
                    t += self.fault_rng.range(10, 200);
                    let len = self.fault_rng.range(200, 3_000) + t;
                    clogs.push((a, b, len));
                }
            }
        }
        FaultAction::Swizzle { clogs }
    }

    /// One connection (quorum or election) between two servers breaks.
    pub(crate) fn draw_reset(&mut self) -> FaultAction {
        let ids = self.servers.clone();
        let a = ids[self.fault_rng.below(ids.len())];
        let b = ids[self.fault_rng.below(ids.len())];
        if a == b {
            return FaultAction::Nothing;
        }
        let election = self.fault_rng.chance(0.5);
        FaultAction::ResetLink { a, b, election }
    }

    /// One client connection breaks.
    pub(crate) fn draw_client_reset(&mut self) -> FaultAction {
        let conns: Vec<ConnId> = self.transport.conns.keys().copied().collect();
        match self.fault_rng.pick(&conns) {
            Some(&conn) => FaultAction::ResetConn { conn },
            None => FaultAction::Nothing,
        }
    }

    /// A running server crashes and restarts after a drawn while.
    pub(crate) fn draw_crash(&mut self) -> FaultAction {
        let r = self.params.random.clone();
        let ids = self.servers.clone();
        let up: Vec<ServerId> = ids.iter().copied().filter(|i| self.nodes[i].up()).collect();
        match self.fault_rng.pick(&up) {
            Some(&id) => {
                let ms = self.fault_rng.exp(r.down_len).max(10);
                FaultAction::CrashFor { id, ms }
            }
            None => FaultAction::Nothing,
        }
    }

    /// A pause or a stall: mostly of the leader.
    pub(crate) fn draw_pause_or_stall(&mut self, kind: FaultKind) -> FaultAction {
        let r = self.params.random.clone();
        let ids = self.servers.clone();
        let up: Vec<ServerId> = ids.iter().copied().filter(|i| self.nodes[i].up()).collect();
        // mostly the leader (it does the most work and collects the most garbage): a
        // leader that wakes with a stale view, or keeps serving while it no longer
        // leads, is where leadership checks matter most
        let leader = self.leader().filter(|_| self.fault_rng.chance(0.75));
        let Some(x) = leader.or_else(|| self.fault_rng.pick(&up).copied()) else {
            return FaultAction::Nothing;
        };
        let target = Target::Id(x);
        if kind == FaultKind::Pause {
            let ms = self.fault_rng.exp(r.pause_len).max(10);
            FaultAction::Pause { target, ms }
        } else {
            let ms = self.fault_rng.exp(r.stall_len).max(10);
            FaultAction::Stall { target, ms }
        }
    }

    /// One server's outgoing messages are slower for a while.
    pub(crate) fn draw_spike(&mut self) -> FaultAction {
        let r = self.params.random.clone();
        let ids = self.servers.clone();
        let id = ids[self.fault_rng.below(ids.len())];
        let ms = self.fault_rng.exp(r.spike_len).max(10);
        let extra = self.fault_rng.range(20, 800);
        FaultAction::Slow { id, extra, ms }
    }

    /// A client process pauses (a GC pause: its timers and sockets wait).
    pub(crate) fn draw_client_pause(&mut self) -> FaultAction {
        let r = self.params.random.clone();
        let c = self.fault_rng.below(self.clients.len());
        let ms = self.fault_rng.exp(r.client_pause_len).max(10);
        FaultAction::PauseClient {
            target: ClientTarget::Index(c),
            ms,
        }
    }

    /// A client process dies; a new one (a new session) takes its place.
    pub(crate) fn draw_client_crash(&mut self) -> FaultAction {
        let client = self.fault_rng.below(self.clients.len());
        if self.clients[client].dead {
            return FaultAction::Nothing;
        }
        let ms = self.fault_rng.range(2_000, 10_000);
        FaultAction::CrashClientFor { client, ms }
    }

    /// A client closes its session.
    pub(crate) fn draw_client_close(&mut self) -> FaultAction {
        let client = self.fault_rng.below(self.clients.len());
        FaultAction::CloseSession { client }
    }

    pub(crate) fn draw_pause(&mut self) -> FaultAction {
        self.draw_pause_or_stall(FaultKind::Pause)
    }

    pub(crate) fn draw_stall(&mut self) -> FaultAction {
        self.draw_pause_or_stall(FaultKind::Stall)
    }
}
