//! Liveness with part of the cluster still faulty (`liveness = core`, TigerBeetle VOPR's
//! "core"): the heal picks a random quorum of voters, the core, and heals it (its network,
//! restarts, pauses, stalls) and its clients, while every other server is left crashed,
//! partitioned, one-way deaf or stalled until the end. Clients connect only to the core from
//! then on, and must make progress (`liveness.core-progress`).
//!
//! The draws come from the fault stream, which nothing else draws from after the heal, so a
//! full heal draws nothing here and runs as before.

use crate::check::{Claim, violation};
use crate::world::{Who, World};
use ensemble_core::peer::ServerState;
use ensemble_core::server::ConnId;
use ensemble_core::txn::ServerId;
use std::collections::BTreeMap;

/// How a server outside the core stays faulty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    Crashed,
    Isolated,
    /// It cannot hear anyone; its messages still arrive.
    Deaf,
    /// Its peer side (timer, quorum and election connections) stopped for good; its client
    /// port serves. (A fault-phase stall leaves election messages flowing; held to the end
    /// that way, a stalled leader still answering notifications keeps the core joining it and
    /// timing out: FINDINGS.md, finding 10.)
    Stalled,
}

impl Held {
    const ALL: [Held; 4] = [Held::Crashed, Held::Isolated, Held::Deaf, Held::Stalled];

    fn name(self) -> &'static str {
        match self {
            Held::Crashed => "crashed",
            Held::Isolated => "partitioned",
            Held::Deaf => "one-way deaf",
            Held::Stalled => "stalled",
        }
    }
}

impl World {
    /// Draw the core and the faults the others keep; called by the heal before it heals, so
    /// that it leaves the servers held down alone.
    pub(crate) fn draw_core(&mut self) {
        // the voters of the configuration in force (a reconfig may have changed them)
        let mut voters: Vec<ServerId> = self.reference.voters().into_iter().collect();
        self.core_rng.shuffle(&mut voters);
        // voters with damaged disks last (they may refuse to start), and before them those
        // whose disks vouch for nothing (a disk lost, never synced, or whose log a TRUNC cut
        // below what its currentEpoch vouched for, seed 3164: a core of them cannot
        // elect until the rest are back); the sound ones, always a quorum, make the core (a
        // stable sort: no draw moves)
        voters.sort_by_key(|v| (self.disks.faulty.contains(v), !self.nodes[v].disk.vouches()));
        let quorum = voters.len() / 2 + 1;
        let vouching = voters
            .iter()
            .filter(|v| {
                !self.disks.faulty.contains(v)
                    && !self.nodes[v].lost_state
                    && self.nodes[v].disk.vouches()
            })
            .count();
        // Too few vouch for a quorum with them to elect (half of the voters, an even count's
        // vouching half: `contains_vouching_quorum`; an ensemble that never formed, where no
        // one vouches yet, needs every voter): the core is every voter.
        let size = if vouching * 2 >= voters.len() {
            quorum
        } else {
            ensemble_core::probe!("sim.liveness.core-every-voter");
            voters.len()
        };
        let mut core: Vec<ServerId> = voters[..size].to_vec();
        // A server that has not applied the last reconfig still counts the configuration
        // before it, and one that logged a reconfig asks a quorum of its voters too, committed
        // or not, in elections as in NEWLEADER (ZooKeeper's lastSeenQuorumVerifier): the core
        // takes in enough of each that it can decide.
        for pending in self.uncommitted_configs() {
            let mut others: Vec<ServerId> = pending
                .iter()
                .copied()
                .filter(|id| !core.contains(id))
                .collect();
            self.core_rng.shuffle(&mut others);
            let need = pending.len() / 2 + 1;
            let have = pending.iter().filter(|id| core.contains(id)).count();
            core.extend(others.into_iter().take(need.saturating_sub(have)));
        }
        core.sort_unstable();
        let mut held = BTreeMap::new();
        for id in self.servers.clone() {
            if !core.contains(&id) {
                let kind = Held::ALL[self.core_rng.below(Held::ALL.len())];
                held.insert(id, kind);
            }
        }
        let desc: Vec<String> = held
            .iter()
            .map(|(id, k)| format!("n{id} {}", k.name()))
            .collect();
        self.log(
            Who::Sim,
            "",
            format_args!(
                "LIVENESS CORE {core:?} heals; the rest stay faulty: {}",
                desc.join(", ")
            ),
        );
        ensemble_core::probe!("sim.liveness.core");
        self.core = Some(core);
        self.held = held;
    }

    /// The voters of every configuration a server may count a quorum of after the heal: the
    /// one it has in force (a crashed server: the last committed one its log reaches), the
    /// one pending in its log, and any reconfig some server has logged that the committed
    /// history does not hold.
    fn uncommitted_configs(&self) -> Vec<Vec<ServerId>> {
        let mut found: BTreeMap<u64, Vec<ServerId>> = BTreeMap::new();
        for n in self.nodes.values() {
            match n.server.as_ref() {
                Some(s) => {
                    let m = s.membership();
                    found.insert(m.version, m.voters().collect());
                    if let Some(p) = s.pending_membership() {
                        found.insert(p.version, p.voters().collect());
                    }
                }
                None => {
                    let last = n.disk.last_logged().0;
                    if let Some((v, m)) = self.reference.configs.range(..=last).next_back() {
                        found.insert(*v, m.voters().collect());
                    }
                }
            }
            for e in &n.disk.log {
                if let Some(m) = e.txn.op.new_membership()
                    && !self.reference.txns.contains_key(&e.txn.zxid)
                {
                    found.insert(e.txn.zxid.0, m.voters().collect());
                }
            }
        }
        found.into_values().collect()
    }

    /// After the heal: put the servers outside the core in their faults, and send the clients
    /// to the core.
    pub(crate) fn hold_the_rest(&mut self) {
        let Some(core) = self.core.clone() else {
            return;
        };
        let held = self.held.clone();
        let rest_of_run = self.end_at.saturating_sub(self.sched.now) + 1;
        let (mut isolated, mut deaf) = (Vec::new(), Vec::new());
        for (&id, &kind) in &held {
            match kind {
                // already down: the heal did not restart it
                Held::Crashed => self.crash(id),
                Held::Isolated => isolated.push(id),
                Held::Deaf => deaf.push(id),
                Held::Stalled => self.stall(id, rest_of_run),
            }
        }
        if !isolated.is_empty() || !deaf.is_empty() {
            let net = &mut self.transport.net;
            net.heal_partition();
            for id in self.servers.clone() {
                // the isolated on one side (they may hear each other: a minority), the rest
                // on the other
                net.sides
                    .insert(id, if isolated.contains(&id) { 0b10 } else { 0b01 });
            }
            for &x in &deaf {
                for i in self.servers.clone() {
                    if i != x {
                        self.transport.net.oneway.insert((i, x));
                    }
                }
            }
            self.begin_partition(
                format!("core: {isolated:?} isolated, {deaf:?} deaf, to the end"),
                None,
            );
        }
        // clients go to the core: connections elsewhere are cut, reconnects pick the core
        self.client_servers = core.clone();
        let away: Vec<ConnId> = self
            .transport
            .conns
            .iter()
            .filter(|(_, c)| !core.contains(&c.server))
            .map(|(id, _)| *id)
            .collect();
        for conn in away {
            self.reset_client_conn(conn, true);
        }
    }

    /// Are `id`'s messages on channel `ch` held at `now` (a stalled quorum side; a server
    /// stalled to the end by the core heal holds its election channel too)?
    pub(crate) fn frozen(&self, id: ServerId, ch: crate::net::Channel, now: u64) -> bool {
        self.nodes[&id].quorum_stalled(now)
            && (ch == crate::net::QUORUM || self.held(id) == Some(Held::Stalled))
    }

    /// Is `id` held faulty to the end (a crashed one is not restarted, a stalled one not
    /// unstalled by an earlier stall's end)?
    pub(crate) fn held(&self, id: ServerId) -> Option<Held> {
        self.held.get(&id).copied()
    }

    /// `liveness.core-progress`: a leader among the core, every core server following it and
    /// caught up, every live client in session, answered since the heal, nothing stuck.
    pub(crate) fn finish_core(&mut self, core: &[ServerId]) -> bool {
        let now = self.sched.now;
        let healed = self.healed_at.unwrap_or(0);
        let fail = |w: &mut World, detail: String| {
            let held: Vec<String> = w
                .held
                .iter()
                .map(|(id, k)| format!("n{id} {}", k.name()))
                .collect();
            w.fail(violation(
                Claim::LivenessCoreProgress,
                now,
                format!(
                    "{detail} ({}ms after healing the core {core:?}; left faulty: {})",
                    now - healed,
                    held.join(", ")
                ),
            ));
            false
        };
        let leader = core
            .iter()
            .filter_map(|id| self.nodes.get(id))
            .filter(|n| n.up() && n.established.is_some())
            .max_by_key(|n| n.established)
            .map(|n| n.id);
        let Some(leader) = leader else {
            let states: Vec<String> = core
                .iter()
                .map(|id| format!("n{id} {:?}", self.nodes[id].state))
                .collect();
            return fail(
                self,
                format!("no leader among the core: {}", states.join(", ")),
            );
        };
        let lz = self.nodes[&leader].applied;
        for id in core {
            let n = &self.nodes[id];
            if !n.up() || n.state == ServerState::Looking || n.applied != lz {
                let d = format!(
                    "core server n{id} ({:?}, applied {}) is not with leader n{leader} (applied {lz})",
                    n.state, n.applied
                );
                return fail(self, d);
            }
        }
        let bound = self.params.liveness_bound_ms;
        for c in &self.clients {
            if c.dead || c.paused_until.is_some() {
                continue;
            }
            if let Some(t) = c.oldest_pending()
                && now - t > bound
            {
                let d = format!("client {} has a request outstanding since t={t}ms", c.idx);
                return fail(self, d);
            }
            if !c.is_connected() {
                let d = format!("client {} has no connected session at the end", c.idx);
                return fail(self, d);
            }
            let answered = self
                .shared
                .ops
                .iter()
                .any(|o| o.client == c.idx && o.invoked >= healed && o.result.is_some());
            if !answered {
                let d = format!(
                    "client {} got no answer to a request sent since the heal",
                    c.idx
                );
                return fail(self, d);
            }
        }
        true
    }
}

/// A stalled server's earlier stall ends on its own schedule, not the core's: `Ev::Unstall`
/// fires only once its stall is due.
pub(crate) fn unstall_due(w: &World, node: ServerId) -> bool {
    w.nodes
        .get(&node)
        .is_some_and(|n| n.quorum_stalled_until <= w.sched.now)
}
