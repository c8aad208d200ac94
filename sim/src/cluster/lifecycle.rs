//! A server's process lifecycle: crash (volatile state gone, the disk keeps what it keeps),
//! restart from the simulated disk, pause (the process runs nothing, then resumes with a stale
//! view, timer or sockets first) and stall (its quorum side stops while its client port
//! serves, ZOOKEEPER-2201).

use crate::net::{Channel, ELECTION, QUORUM};
use crate::scheduler::Ev;
use crate::world::{Who, World};
use ensemble_core::peer::ServerState;
use ensemble_core::server::{ConnId, Event};
use ensemble_core::txn::ServerId;
use std::collections::{BTreeMap, VecDeque};

impl World {
    pub(crate) fn crash(&mut self, id: ServerId) {
        let now = self.sched.now;
        let (survive, torn) = (self.params.unsynced_survive, self.params.torn_tail);
        let keep_older = self.keeps_older_disks();
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if !n.up() {
            return;
        }
        n.server = None;
        n.inc += 1;
        n.paused_until = None;
        n.stalled.clear();
        n.stalled_heard.clear();
        n.quorum_stalled_until = 0;
        n.quorum_held.clear();
        if n.established.take().is_some() {
            self.zab.deposed_at = now;
        }
        n.state = ServerState::Looking;
        n.serving = false;
        n.following = None;
        n.snap_stream = Default::default();
        // what of the unsynced tail reached the platter, drawn in the order the disk asks
        let rng = &mut self.rng;
        let loss = n.disk.crash(|unsynced| {
            let mut kept = 0;
            if rng.chance(survive) {
                kept = rng.range(0, unsynced as u64) as usize;
            }
            // torn at any byte of the last record that reached the platter
            let tear = (kept > 0 && rng.chance(torn)).then(|| rng.range(0, u64::MAX));
            (kept, tear)
        });
        if keep_older {
            n.older_disk = Some(n.disk.clone());
        }
        self.stats.crashes += 1;
        ensemble_core::probe!("sim.fault.crash");
        self.reveal_lost_fsyncs(id);
        if loss.kept < loss.unsynced {
            ensemble_core::probe!("sim.disk.unsynced-lost");
        }
        if loss.torn {
            ensemble_core::probe!("sim.disk.torn-tail");
        }
        self.log(
            Who::N(id),
            "DOWN",
            format_args!(
                "CRASH: {} unsynced appends, {} survived{}",
                loss.unsynced,
                loss.kept,
                if loss.torn { ", last record torn" } else { "" }
            ),
        );
        let peers = self.servers.clone();
        for p in peers {
            if p != id {
                self.break_peer_conn(id, p, QUORUM);
                self.break_peer_conn(id, p, ELECTION);
            }
        }
        let conns: Vec<ConnId> = self
            .transport
            .conns
            .iter()
            .filter(|(_, c)| c.server == id)
            .map(|(k, _)| *k)
            .collect();
        for c in conns {
            self.reset_client_conn(c, false);
        }
        self.update_availability();
        self.update_quorum();
        let _ = now;
    }

    pub(crate) fn restart(&mut self, id: ServerId) {
        // a schedule may name a server this run does not have (a shrunk topology)
        if self.nodes.get(&id).is_none_or(|n| n.up()) {
            return;
        }
        // `liveness = core`: held down to the end; a refused disk: down for good
        if self.held(id) == Some(crate::faults::Held::Crashed) || self.refused(id) {
            return;
        }
        self.start_node(id);
    }

    pub(crate) fn pause(&mut self, id: ServerId, ms: u64) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if !n.up() || n.paused_until.is_some() {
            return;
        }
        n.paused_until = Some(self.sched.now + ms);
        let inc = n.inc;
        self.stats.pauses += 1;
        ensemble_core::probe!("sim.fault.pause");
        self.log(Who::N(id), "PAUSED", format_args!("PAUSE for {ms}ms"));
        self.schedule(self.sched.now + ms, Ev::Resume { node: id, inc });
        self.update_availability();
    }

    /// The quorum side of a server stalls: its timer and its quorum-channel connections, both
    /// ways (a thread blocked with a lock held, as in ZOOKEEPER-2201), while its client port
    /// keeps serving. A stalled leader keeps answering its clients from a view that may be
    /// stale: its followers hear nothing, time out and elect another leader.
    pub(crate) fn stall(&mut self, id: ServerId, ms: u64) {
        let now = self.sched.now;
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if !n.up() || n.quorum_stalled(now) {
            return;
        }
        n.quorum_stalled_until = now + ms;
        ensemble_core::probe!("sim.fault.stall");
        let inc = n.inc;
        self.stats.pauses += 1;
        let role = n.role();
        self.log(
            Who::N(id),
            role,
            format_args!("QUORUM STALL for {ms}ms (timer and peer connections; clients served)"),
        );
        self.schedule(now + ms, Ev::Unstall { node: id, inc });
        self.update_availability();
    }

    pub(crate) fn unstall(&mut self, id: ServerId, inc: u64) {
        let now = self.sched.now;
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if n.inc != inc || n.quorum_stalled_until == 0 {
            return;
        }
        n.quorum_stalled_until = 0;
        let held: Vec<Event> = n.quorum_held.drain(..).collect();
        let role = n.role();
        self.log(
            Who::N(id),
            role,
            format_args!("quorum side resumes, {} disconnects waiting", held.len()),
        );
        // the disconnects came before anything now queued on the connections (a break
        // empties them)
        for e in held {
            if self.violation.is_some() {
                return;
            }
            self.deliver(id, e);
        }
        let keys: Vec<(ServerId, ServerId, Channel)> = self
            .transport
            .net
            .links
            .iter()
            .filter(|((a, b, ch), l)| {
                *ch == QUORUM && (*a == id || *b == id) && !l.queue.is_empty()
            })
            .map(|(k, _)| *k)
            .collect();
        for (from, to, ch) in keys {
            self.schedule(now, Ev::Pump { from, to, ch });
        }
        self.update_availability();
    }

    pub(crate) fn resume(&mut self, id: ServerId, inc: u64) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if n.inc != inc || n.paused_until.is_none() {
            return;
        }
        n.paused_until = None;
        let stalled: Vec<Event> = n.stalled.drain(..).collect();
        self.log(
            Who::N(id),
            self.nodes[&id].role(),
            format_args!("RESUME with {} events waiting", stalled.len()),
        );
        // After a long stall the process's threads race: either its timer runs first (and it
        // notices the time that passed) or it first serves what waited on its sockets with
        // the stale view it had (ZOOKEEPER-1675's window). Draw which.
        let timer_first = self.rng.chance(0.5);
        if timer_first {
            self.handle(id, Event::Tick);
        }
        // What waited is read socket by socket: each connection (and the disk) in its own
        // order, the connections in whatever order the threads get to them.
        let mut groups: BTreeMap<(u8, u64), VecDeque<Event>> = BTreeMap::new();
        for e in stalled {
            let key = match &e {
                Event::Peer { from, .. } => (0, *from),
                Event::PeerDisconnected { peer } => (0, *peer),
                Event::ClientConnected { conn, .. }
                | Event::Client { conn, .. }
                | Event::ClientRefused { conn, .. }
                | Event::ClientAuthenticated { conn, .. }
                | Event::ClientDisconnected { conn } => (1, *conn),
                Event::Persisted { .. } => (2, 0),
                Event::Tick | Event::Foreign(_) => (3, 0),
            };
            groups.entry(key).or_default().push_back(e);
        }
        let mut order = Vec::new();
        while !groups.is_empty() {
            let keys: Vec<(u8, u64)> = groups.keys().copied().collect();
            let k = keys[self.rng.below(keys.len())];
            let q = groups.get_mut(&k).expect("group");
            if let Some(e) = q.pop_front() {
                order.push(e);
            }
            if q.is_empty() {
                groups.remove(&k);
            }
        }
        for e in order {
            if self.violation.is_some() || !self.nodes[&id].up() {
                break;
            }
            if self.nodes[&id].paused_until.is_some() {
                self.nodes.get_mut(&id).expect("node").stalled.push_back(e);
                continue;
            }
            self.handle(id, e);
        }
        if !timer_first && self.violation.is_none() && self.nodes[&id].up() {
            self.handle(id, Event::Tick);
        }
        self.update_availability();
    }
}
