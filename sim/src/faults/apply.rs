//! Carrying out a fault action (drawn or scheduled), resolving its targets, and the heal that
//! ends the fault phase.

use crate::net::{ELECTION, QUORUM};
use crate::params::{ClientTarget, FaultAction, Target};
use crate::scheduler::Ev;
use crate::transport::chname;
use crate::world::{Who, World};
use ensemble_core::server::ConnId;
use ensemble_core::txn::ServerId;

impl World {
    pub(crate) fn clog(&mut self, a: ServerId, b: ServerId, len: u64) {
        if a != b && self.nodes.contains_key(&a) && self.nodes.contains_key(&b) {
            ensemble_core::probe!("sim.fault.clog");
        }
        self.log(Who::Net, "", format_args!("clog n{a} -> n{b} for {len} ms"));
        self.transport
            .net
            .clogs
            .insert((a, b), self.sched.now + len);
        self.schedule(self.sched.now + len, Ev::Unclog { from: a, to: b });
        self.topology_changed();
    }

    pub(crate) fn begin_partition(&mut self, desc: String, len: Option<u64>) {
        self.transport.net.partition_id += 1;
        self.transport.net.partition_since = Some(self.sched.now);
        self.transport.net.partition_desc = desc.clone();
        if self.transport.net.partitioned() {
            ensemble_core::probe!("sim.fault.partition");
        }
        self.log(
            Who::Net,
            "",
            format_args!(
                "partition {desc}{}",
                len.map(|l| format!(" for {l} ms")).unwrap_or_default()
            ),
        );
        if let Some(l) = len {
            let id = self.transport.net.partition_id;
            self.schedule(self.sched.now + l, Ev::HealPartition { id });
        }
        self.topology_changed();
    }

    pub(crate) fn flap(&mut self) {
        if self.sched.now >= self.transport.net.flap_until {
            return;
        }
        let ids = self.servers.clone();
        let a = ids[self.fault_rng.below(ids.len())];
        let b = ids[self.fault_rng.below(ids.len())];
        if a != b {
            ensemble_core::probe!("sim.fault.reset");
            let ch = self.fault_rng.chance(0.5);
            self.stats.resets += 1;
            self.log(
                Who::Net,
                "",
                format_args!("link flaps n{a}<->n{b} {}", chname(ch)),
            );
            self.break_peer_conn(a, b, ch);
            if self.fault_rng.chance(0.3) {
                let len = self.fault_rng.range(20, 500);
                self.clog(a, b, len);
            }
        }
        if self.fault_rng.chance(0.2) {
            let conns: Vec<ConnId> = self.transport.conns.keys().copied().collect();
            if let Some(&c) = self.fault_rng.pick(&conns) {
                self.reset_client_conn(c, true);
            }
        }
        let next = self.sched.now
            + self
                .fault_rng
                .exp(self.transport.net.flap_every.max(1))
                .max(1);
        self.schedule(next, Ev::Flap);
    }

    pub(crate) fn resolve(&self, t: &Target) -> Vec<ServerId> {
        let voters: Vec<ServerId> = self
            .nodes
            .values()
            .filter(|n| !n.observer)
            .map(|n| n.id)
            .collect();
        let leader = self.leader();
        let minority = (voters.len() - 1) / 2;
        match t {
            Target::Leader => leader.into_iter().collect(),
            Target::Follower => voters
                .iter()
                .copied()
                .filter(|v| Some(*v) != leader && self.nodes[v].up())
                .take(1)
                .collect(),
            Target::Observer => self
                .nodes
                .values()
                .filter(|n| n.observer)
                .map(|n| n.id)
                .take(1)
                .collect(),
            Target::Id(i) => self.nodes.get(i).map(|n| n.id).into_iter().collect(),
            Target::Crashed => self
                .nodes
                .values()
                .filter(|n| !n.up())
                .map(|n| n.id)
                .collect(),
            Target::All => self.servers.clone(),
            Target::MinorityWithLeader => {
                let mut v: Vec<ServerId> = leader.into_iter().collect();
                v.extend(voters.iter().copied().filter(|x| Some(*x) != leader));
                v.truncate(minority);
                v
            }
            Target::MinorityWithoutLeader => voters
                .iter()
                .copied()
                .filter(|x| Some(*x) != leader)
                .take(minority)
                .collect(),
            Target::MajorityWithoutLeader => voters
                .iter()
                .copied()
                .filter(|x| Some(*x) != leader)
                .take(minority + 1)
                .collect(),
        }
    }

    pub(crate) fn resolve_client(&self, t: &ClientTarget) -> Option<usize> {
        match t {
            ClientTarget::LockHolder => self
                .clients
                .iter()
                .position(|c| c.role.is_lock_holder() && !c.dead && c.paused_until.is_none()),
            ClientTarget::Master => self
                .clients
                .iter()
                .position(|c| c.role.is_master() && !c.dead),
            ClientTarget::Index(i) => (*i < self.clients.len()).then_some(*i),
            ClientTarget::Role(name) => self.params.clients.iter().position(|r| r.name() == name),
        }
    }

    pub(crate) fn apply_fault(&mut self, action: FaultAction) {
        if !matches!(action, FaultAction::Nothing) {
            self.log(Who::Sim, "", format_args!("scheduled fault: {action}"));
        }
        self.do_fault(action);
    }

    pub(crate) fn do_fault(&mut self, action: FaultAction) {
        match action {
            FaultAction::Nothing => {}
            FaultAction::Partition {
                sides,
                oneway,
                ms,
                desc,
            } => {
                let (sides_w, oneway_w) = (sides.clone(), oneway.clone());
                self.transport.net.heal_partition();
                for (id, side) in sides {
                    self.transport.net.sides.insert(id, side);
                }
                for cut in oneway {
                    self.transport.net.oneway.insert(cut);
                }
                // the sides in words; a scenario's own description after them
                let words = super::words::sides_words(&sides_w, &oneway_w);
                let desc = if desc.is_empty() || desc == words {
                    words
                } else {
                    format!("{words} ({desc})")
                };
                self.begin_partition(desc, Some(ms));
            }
            FaultAction::Clog { from, to, ms } => self.clog(from, to, ms),
            FaultAction::Swizzle { clogs } => {
                let mut subset: Vec<ServerId> = Vec::new();
                for (a, _, _) in &clogs {
                    if !subset.contains(a) {
                        subset.push(*a);
                    }
                }
                if clogs.iter().any(|(a, b, _)| {
                    a != b && self.nodes.contains_key(a) && self.nodes.contains_key(b)
                }) {
                    ensemble_core::probe!("sim.fault.swizzle");
                }
                self.log(
                    Who::Net,
                    "",
                    format_args!(
                        "swizzle-clog {} ({} links)",
                        super::words::set(&subset),
                        clogs.len()
                    ),
                );
                for (a, b, len) in clogs {
                    self.transport
                        .net
                        .clogs
                        .insert((a, b), self.sched.now + len);
                    self.schedule(self.sched.now + len, Ev::Unclog { from: a, to: b });
                }
                self.topology_changed();
            }
            FaultAction::ResetLink { a, b, election } => {
                if !self.nodes.contains_key(&a) || !self.nodes.contains_key(&b) {
                    return;
                }
                if a != b {
                    ensemble_core::probe!("sim.fault.reset");
                }
                self.stats.resets += 1;
                self.log(
                    Who::Net,
                    "",
                    format_args!("RESET n{a}<->n{b} {}", chname(election)),
                );
                self.break_peer_conn(a, b, election);
            }
            FaultAction::ResetConn { conn } => {
                if self.transport.conns.contains_key(&conn) {
                    ensemble_core::probe!("sim.fault.client-reset");
                }
                self.log(Who::Net, "", format_args!("RESET client conn {conn}"));
                self.reset_client_conn(conn, true);
            }
            FaultAction::Disk {
                fault,
                id,
                file,
                draw,
            } => self.disk_fault(fault, id, file, draw),
            FaultAction::DiskLoss { id, older, ms } => self.disk_loss(id, older, ms),
            FaultAction::CrashFor { id, ms } => {
                self.crash(id);
                self.schedule(self.sched.now + ms, Ev::Restart { node: id });
            }
            FaultAction::Slow { id, extra, ms } => {
                if self.nodes.contains_key(&id) && extra > 0 && ms > 0 {
                    ensemble_core::probe!("sim.fault.spike");
                }
                self.log(
                    Who::Net,
                    "",
                    format_args!("latency spike on n{id}: +{extra}ms for {ms}ms"),
                );
                self.transport
                    .net
                    .slow
                    .insert(id, (self.sched.now + ms, extra));
            }
            FaultAction::CrashClientFor { client, ms } => {
                if client < self.clients.len() {
                    self.client_crash(client, Some(ms));
                }
            }
            FaultAction::CloseSession { client } => {
                if client < self.clients.len() {
                    ensemble_core::probe!("sim.fault.client-close");
                    self.log(Who::C(client), "", format_args!("closes its session"));
                    self.with_client(client, |cl, cx| {
                        cl.close_session(cx);
                        Ok(None)
                    });
                }
            }
            FaultAction::Crash(t) => {
                for x in self.resolve(&t) {
                    self.crash(x);
                }
            }
            FaultAction::Restart(t) => {
                for x in self.resolve(&t) {
                    self.restart(x);
                }
            }
            FaultAction::Isolate(t) => {
                let xs = self.resolve(&t);
                self.transport.net.heal_partition();
                for i in self.servers.clone() {
                    self.transport
                        .net
                        .sides
                        .insert(i, if xs.contains(&i) { 0b10 } else { 0b01 });
                }
                let rest: Vec<ServerId> = self
                    .servers
                    .iter()
                    .copied()
                    .filter(|i| !xs.contains(i))
                    .collect();
                let words = format!("{} | {}", super::words::set(&xs), super::words::set(&rest));
                self.begin_partition(words, None);
            }
            FaultAction::OneWay(t) => {
                let xs = self.resolve(&t);
                self.transport.net.heal_partition();
                for &x in &xs {
                    for i in self.servers.clone() {
                        if !xs.contains(&i) {
                            self.transport.net.oneway.insert((x, i));
                        }
                    }
                }
                let rest: Vec<ServerId> = self
                    .servers
                    .iter()
                    .copied()
                    .filter(|i| !xs.contains(i))
                    .collect();
                let words = format!(
                    "one-way {} -/-> {}",
                    super::words::set(&xs),
                    super::words::set(&rest)
                );
                self.begin_partition(words, None);
            }
            FaultAction::Pause { target, ms } => {
                for x in self.resolve(&target) {
                    self.pause(x, ms);
                }
            }
            FaultAction::Stall { target, ms } => {
                for x in self.resolve(&target) {
                    self.stall(x, ms);
                }
            }
            FaultAction::Reset(t) => {
                for x in self.resolve(&t) {
                    ensemble_core::probe!("sim.fault.reset");
                    for p in self.servers.clone() {
                        if p != x {
                            self.break_peer_conn(x, p, QUORUM);
                            self.break_peer_conn(x, p, ELECTION);
                        }
                    }
                }
            }
            FaultAction::Flap { ms, every } => {
                self.transport.net.flap_until = self.sched.now + ms;
                self.transport.net.flap_every = every;
                self.schedule(self.sched.now, Ev::Flap);
            }
            FaultAction::Heal => {
                self.transport.net.heal_partition();
                self.transport.net.clogs.clear();
                self.transport.net.flap_until = 0;
                self.unblocked();
            }
            FaultAction::PauseClient { target, ms } => match self.resolve_client(&target) {
                Some(c) => self.client_pause(c, ms),
                None => {
                    // nobody fits yet (e.g. no lock holder this instant): try again shortly
                    self.schedule(
                        self.sched.now + 50,
                        Ev::Scheduled(Box::new(FaultAction::PauseClient { target, ms })),
                    );
                }
            },
            FaultAction::CrashClient(t) => {
                if let Some(c) = self.resolve_client(&t) {
                    self.client_crash(c, None);
                }
            }
        }
    }

    /// The fault phase ends: everything heals, crashed servers restart, pauses end.
    pub(crate) fn heal(&mut self) {
        self.log(
            Who::Sim,
            "",
            format_args!("HEAL: fault phase over, liveness phase begins"),
        );
        self.healed_at = Some(self.sched.now);
        if self.params.liveness == crate::params::Liveness::Core {
            self.draw_core();
        }
        self.transport.net.heal_partition();
        self.transport.net.clogs.clear();
        self.transport.net.slow.clear();
        self.transport.net.flap_until = 0;
        self.unblocked();
        for id in self.servers.clone() {
            // a write armed to fail that has not come yet (a snapshot may be taken long after)
            // is a fault of the fault phase: it must not stop a server in the liveness phase
            // (swarm seeds 5067, 9836: an armed snapshot failure stopped a healed server 20 s
            // after the heal, and its clients had no session at the end)
            let n = self.nodes.get_mut(&id).expect("node");
            if let Some(what) = n.disk.disarm() {
                let role = n.role();
                self.log(
                    Who::N(id),
                    role,
                    format_args!(
                        "DISK write-error disarmed at the heal: its next {} goes through",
                        what.name()
                    ),
                );
            }
            let inc = self.nodes[&id].inc;
            self.unstall(id, inc);
            let n = &self.nodes[&id];
            if !n.up() {
                self.restart(id);
            } else if n.paused_until.is_some() {
                let inc = n.inc;
                self.resume(id, inc);
            }
        }
        for c in 0..self.clients.len() {
            if self.clients[c].paused_until.is_some() {
                self.client_resume(c);
            }
            if self.clients[c].dead {
                self.clients[c].reincarnate();
                self.wake_client_at(c, self.sched.now);
            }
        }
        self.hold_the_rest();
    }
}
