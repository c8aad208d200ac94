//! The simulated world: a composition of the scheduler (virtual time, one event queue), the
//! cluster (servers, their disks and clocks, and the client processes), the transport (peer
//! links and client connections), the faults and the checkers watching every step. One thread,
//! one seeded RNG.

use crate::check::{Reference, Violation};
use crate::client::{Client, Shared};
use crate::cluster::Nodes;
use crate::params::{FaultStep, Params};
use crate::rng::SimRng;
use crate::scheduler::{Ev, Scheduler};
use crate::trace::{Line, Trace};
use crate::transport::Transport;
use ensemble_core::effect::Ready;
use ensemble_core::plant::Plant;
use ensemble_core::txn::ServerId;

pub use crate::cluster::install_panic_hook;

#[derive(Clone, Copy, Debug)]
pub enum Who {
    N(ServerId),
    C(usize),
    Net,
    Sim,
    Ref,
}

impl Who {
    /// The subject as a number, for the trace hash.
    fn code(self) -> u64 {
        match self {
            Who::N(id) => id,
            Who::C(c) => (1 << 32) | c as u64,
            Who::Net => 2 << 32,
            Who::Sim => 3 << 32,
            Who::Ref => 4 << 32,
        }
    }
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        // padded like a string, without allocating (this runs for every trace line)
        let mut buf = crate::trace::StackStr::default();
        let _ = match self {
            Who::N(id) => write!(buf, "n{id}"),
            Who::C(c) => write!(buf, "c{c}"),
            Who::Net => buf.write_str("net"),
            Who::Sim => buf.write_str("sim"),
            Who::Ref => buf.write_str("ref"),
        };
        f.pad(buf.as_str())
    }
}

#[derive(Default, Debug, Clone)]
pub struct Stats {
    pub events: u64,
    pub sim_ms: u64,
    pub committed: u64,
    pub elections: u64,
    pub leader_changes: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub pauses: u64,
    pub resets: u64,
    pub ok_writes: u64,
    pub ok_reads: u64,
    pub unknown: u64,
    pub errors: u64,
    pub expired_sessions: u64,
    pub max_unavailable_ms: u64,
    pub max_write_gap_ms: u64,
    pub recovered_after_heal_ms: Option<u64>,
    pub lock_acquisitions: u64,
    pub resource_rejected: u64,
    /// How the linearizability search went (segments, long ones, checked read by read).
    pub wgl: crate::check::wgl::WglStats,
}

pub struct World {
    pub params: Params,
    pub plant: Option<Plant>,
    pub(crate) sched: Scheduler,
    pub(crate) rng: SimRng,
    pub(crate) fault_rng: SimRng,
    /// `liveness = core`: which voters the heal heals and how the rest stay faulty, a stream of
    /// its own so that a schedule replaying the drawn faults heals the same core.
    pub(crate) core_rng: SimRng,
    /// Draws of the sync-crash fault (`Params::sync_crash`), on a stream of their own; none
    /// when the fault is off, so such runs draw exactly what they drew before it existed.
    pub(crate) sync_crash_rng: Option<SimRng>,
    /// Draws of its discovery moment (`World::discovery_crash`), a stream apart from the
    /// sync moments' so that those stay what they were.
    pub(crate) discovery_crash_rng: Option<SimRng>,
    pub(crate) nodes: Nodes,
    /// Peer links and client connections.
    pub(crate) transport: Transport,
    pub(crate) clients: Vec<Client>,
    pub(crate) shared: Shared,
    pub reference: Reference,
    /// `session.no-write-after-close`, `client.no-ok-after-close`.
    pub(crate) sessions: crate::check::session::SessionClaims,
    /// Writes refused SESSIONEXPIRED (`session.expired-refusal`, judged at the end).
    pub(crate) expired: crate::check::ExpiredRefusals,
    pub trace: Trace,
    /// What the ZAB checks remember: proposals, epochs' leaders, establishments.
    pub(crate) zab: crate::check::ZabRecord,
    /// What `election.quorum` remembers: the notifications each server took.
    pub(crate) fle: crate::check::FleRecord,
    pub(crate) handover: crate::check::HandOverRecord,
    pub violation: Option<Violation>,
    /// A scenario's expected finding, once seen.
    pub expected_seen: Option<Violation>,
    pub stats: Stats,
    pub(crate) healed_at: Option<u64>,
    pub(crate) draining: bool,
    /// One server step's output, reused across steps (its buffers kept); out while a step's
    /// output is carried out, the world being the interpreter's host meanwhile.
    pub(crate) ready: Option<Ready>,
    pub(crate) servers: Vec<ServerId>,
    /// Commits during partitions (`cap.*`).
    pub(crate) cap: crate::check::PartitionRecord,
    /// Leaderless windows and quorum outages (`liveness.*`).
    pub(crate) liveness: crate::check::Availability,
    /// The lock recipe's external resource (`recipe.lock-two-holders`).
    pub(crate) resource: crate::check::Resource,
    pub(crate) end_at: u64,
    pub(crate) fault_end: u64,
    /// The schedule's lanes, by lane number.
    pub(crate) lanes: Vec<Vec<FaultStep>>,
    /// The faults this run drew (swarm rates), as a schedule that replays them.
    pub drawn: Vec<FaultStep>,
    /// `liveness = core`: the voters the heal healed, and how the others stay faulty.
    pub(crate) core: Option<Vec<ServerId>>,
    pub(crate) held: std::collections::BTreeMap<ServerId, crate::faults::Held>,
    /// The servers clients connect to: all, or the core once it is healed.
    pub(crate) client_servers: Vec<ServerId>,
    /// Storage faults: which disks they may hit, which servers refused theirs.
    pub(crate) disks: crate::faults::DiskFaults,
    /// `tree.persisted-round-trip`: the snapshots lately found to pass.
    pub(crate) round_tripped: crate::check::RoundTripped,
    /// `client.expired-closed`: connections answered expired in the step being carried out
    /// and not closed yet.
    pub(crate) expired_unclosed: Vec<ensemble_core::server::ConnId>,
    /// `client.close-reason`: handshakes naming each session, how many and on which servers
    /// (a client that asked for its session elsewhere has moved from its older connections).
    pub(crate) session_handshakes: std::collections::BTreeMap<
        ensemble_proto::proto::SessionId,
        (u64, std::collections::BTreeSet<ServerId>),
    >,
}

/// `Params::imported_sessions`: every server's dataDir holds the tree `ensemble import` made
/// of ZooKeeper's files, the history starts there, and the first clients hold its sessions
/// with ZooKeeper's passwords.
fn import_zookeeper(
    params: &Params,
    plant: Option<Plant>,
    nodes: &mut Nodes,
    reference: &mut Reference,
    clients: &mut [Client],
) -> Result<(), Violation> {
    use crate::cluster::imported;
    let n = params
        .imported_sessions
        .min(imported::MAX_SESSIONS)
        .min(clients.len());
    if n == 0 {
        return Ok(());
    }
    let (lo, hi) = (2 * params.tick_ms, 20 * params.tick_ms);
    let timeouts: Vec<i32> = clients[..n]
        .iter()
        .map(|c| c.requested_timeout.clamp(lo, hi) as i32)
        .collect();
    let opts = ensemble_core::tree::TreeOptions {
        extended_types: true,
        auth_providers: crate::client::PROVIDERS,
        plant,
    };
    let fail = |why: String| crate::check::violation(crate::check::Claim::CoreSnapshot, 0, why);
    let imp = imported::build(&timeouts, opts).map_err(fail)?;
    let ids: Vec<ServerId> = nodes.keys().copied().collect();
    for id in ids {
        imp.install(&mut nodes.get_mut(&id).expect("node").disk);
    }
    reference.import(imp.zxid, &imp.snapshot).map_err(fail)?;
    for (i, (c, &(id, timeout))) in clients.iter_mut().zip(&imp.sessions).enumerate() {
        c.session = Some(crate::client::session::Session {
            id,
            passwd: imported::zk_password(i + 1),
            timeout: timeout as u64,
            imported: true,
        });
        c.last_zxid_seen = imp.zxid.as_i64();
    }
    Ok(())
}

impl World {
    pub fn new(params: Params, plant: Option<Plant>, rng: &mut SimRng, trace: Trace) -> World {
        let mut rng = rng.fork();
        let fault_rng = rng.fork();
        let core_rng = fault_rng.purpose(2);
        let disks = crate::faults::DiskFaults::new(fault_rng.purpose(3));
        // the storage crate's planted bugs (a checksum skipped) read the run's plant here
        ensemble_storage::plant::set(plant);
        let nodes = Nodes::for_run(&params, plant, &mut rng);
        let servers: Vec<ServerId> = nodes.keys().copied().collect();
        let mut clients = Vec::new();
        for (i, role) in params.clients.iter().enumerate() {
            clients.push(Client::new(i, role, &mut rng, &params));
        }
        let end_at = params
            .duration_ms
            .max(params.fault_phase_ms + params.liveness_bound_ms + 5_000);
        let fault_end = params.fault_phase_ms;
        let sync_crash_rng = (params.sync_crash > 0.0).then(|| rng.fork());
        let discovery_crash_rng = (params.discovery_crash > 0.0)
            .then(|| sync_crash_rng.as_ref().unwrap_or(&rng).purpose(0xd15c));
        let mut reference = Reference::new(plant);
        let first = params.members();
        let roles = nodes
            .values()
            .filter(|n| n.id <= first)
            .map(|n| {
                let role = if n.observer {
                    ensemble_core::LearnerType::Observer
                } else {
                    ensemble_core::LearnerType::Participant
                };
                (n.id, role)
            })
            .collect();
        reference.set_membership(ensemble_core::membership::Membership::synthetic(&roles));
        let mut nodes = nodes;
        let mut violation = None;
        if let Err(v) = import_zookeeper(&params, plant, &mut nodes, &mut reference, &mut clients) {
            violation = Some(v);
        }
        World {
            reference,
            sessions: crate::check::session::SessionClaims::new(),
            expired: crate::check::ExpiredRefusals::default(),
            plant,
            sched: Scheduler::default(),
            rng,
            fault_rng,
            core_rng,
            sync_crash_rng,
            discovery_crash_rng,
            nodes,
            transport: Transport::default(),
            clients,
            shared: Shared::default(),
            trace,
            zab: crate::check::ZabRecord::default(),
            fle: crate::check::FleRecord::default(),
            handover: crate::check::HandOverRecord::default(),
            violation,
            expected_seen: None,
            stats: Stats::default(),
            healed_at: None,
            draining: false,
            liveness: crate::check::Availability::new(),
            resource: crate::check::Resource::default(),
            ready: Some(Ready::new()),
            servers: servers.clone(),
            cap: crate::check::PartitionRecord::default(),
            end_at,
            fault_end,
            lanes: Vec::new(),
            drawn: Vec::new(),
            core: None,
            held: std::collections::BTreeMap::new(),
            client_servers: servers.clone(),
            disks,
            round_tripped: Default::default(),
            expired_unclosed: Vec::new(),
            session_handshakes: Default::default(),
            params,
        }
    }

    pub(crate) fn schedule(&mut self, at: u64, ev: Ev) {
        self.sched.schedule(at, ev);
    }

    pub(crate) fn log(&mut self, who: Who, role: &str, what: std::fmt::Arguments) {
        self.trace
            .line(self.sched.now, (who.code(), who), role, what);
    }

    /// A frequent line, given as data (hashed without being formatted).
    pub(crate) fn emit(&mut self, who: Who, role: &str, line: &impl Line) {
        self.trace
            .emit(self.sched.now, (who.code(), who), role, line);
    }

    pub(crate) fn fail(&mut self, v: Violation) {
        if let Some(exp) = &self.params.expect_violation
            && exp == v.claim.as_str()
        {
            if self.expected_seen.is_none() {
                self.log(Who::Sim, "", format_args!("EXPECTED FINDING {v}"));
                self.expected_seen = Some(v);
            }
            return;
        }
        if self.violation.is_none() {
            self.log(Who::Sim, "", format_args!("VIOLATION {v}"));
            self.violation = Some(v);
        }
    }

    /// Run to the end or the first violation.
    pub fn run(&mut self) {
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.start_node(id);
        }
        for c in 0..self.clients.len() {
            let at = self.rng.range(0, 500);
            self.wake_client_at(c, at);
        }
        self.schedule_random_faults();
        let steps = self.params.schedule.clone();
        for s in &steps {
            if let Some(lane) = s.lane {
                if self.lanes.len() <= lane {
                    self.lanes.resize(lane + 1, Vec::new());
                }
                self.lanes[lane].push(s.clone());
            }
        }
        // lanes start where the random faults of their kind would (in lane order, after them)
        for lane in 0..self.lanes.len() {
            self.lanes[lane].sort_by_key(|s| s.at_ms);
            if let Some(first) = self.lanes[lane].first() {
                let at = first.at_ms;
                self.schedule(at, Ev::Lane { lane, idx: 0 });
            }
        }
        for s in steps.into_iter().filter(|s| s.lane.is_none()) {
            self.schedule(s.at_ms, Ev::Scheduled(Box::new(s.action)));
        }
        self.schedule(self.fault_end, Ev::Heal);
        self.schedule(
            self.end_at.saturating_sub(crate::check::liveness::DRAIN_MS),
            Ev::Drain,
        );
        self.schedule(self.end_at, Ev::End);
        while let Some(ev) = self.sched.pop() {
            self.stats.events += 1;
            // the end judges the run, or waits for it (`World::end`)
            let end = if matches!(ev, Ev::End) {
                self.end()
            } else {
                self.dispatch(ev);
                false
            };
            if self.violation.is_some() || end {
                break;
            }
        }
        self.stats.sim_ms = self.sched.now;
        let sh = &self.shared;
        self.stats.ok_writes = sh.ok_writes;
        self.stats.ok_reads = sh.ok_reads;
        self.stats.unknown = sh.unknown;
        self.stats.errors = sh.errors;
        self.stats.expired_sessions = sh.expired.len() as u64;
        self.stats.max_write_gap_ms = sh.max_write_gap;
        self.stats.committed = self.reference.txns.len() as u64;
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Tick { node, inc } => self.on_tick(node, inc),
            Ev::Pump { from, to, ch } => self.pump(from, to, ch),
            Ev::ClientPump { conn, to_server } => self.client_pump(conn, to_server),
            Ev::Fsync { node, inc, upto } => self.fsync_done(node, inc, upto),
            Ev::Deliver { node, inc, event } => {
                if self.nodes[&node].inc == inc {
                    self.deliver(node, *event);
                }
            }
            Ev::ClientWake { client, token } => {
                if self.clients[client].wake_token == token {
                    self.client_wake(client);
                }
            }
            rare => self.dispatch_rare(rare),
        }
    }

    /// Faults, restarts and the run's phases: a few events a run against the hundreds of
    /// thousands above, kept out of line so that the loop every event runs stays small (the
    /// first-level instruction cache misses were the CPU gap to bb76648, BENCHMARKS.md round 17).
    #[cold]
    #[inline(never)]
    fn dispatch_rare(&mut self, ev: Ev) {
        match ev {
            Ev::Tick { .. }
            | Ev::Pump { .. }
            | Ev::ClientPump { .. }
            | Ev::Fsync { .. }
            | Ev::Deliver { .. }
            | Ev::ClientWake { .. } => unreachable!("dispatched in line"),
            Ev::Restart { node } => self.restart(node),
            Ev::Resume { node, inc } => self.resume(node, inc),
            Ev::Unstall { node, inc } => {
                if crate::faults::unstall_due(self, node) {
                    self.unstall(node, inc)
                }
            }
            Ev::ClientResume { client } => self.client_resume(client),
            Ev::ClientRevive { client } => self.client_revive(client),
            Ev::TcpTimeout {
                a,
                b,
                ch,
                generation,
            } => self.tcp_timeout(a, b, ch, generation),
            Ev::Scheduled(action) => self.apply_fault(*action),
            Ev::Random(kind) => self.random_fault(kind),
            Ev::Lane { lane, idx } => self.lane_step(lane, idx),
            Ev::HealPartition { id } => self.heal_partition(id),
            Ev::Unclog { from, to } => self.unclog(from, to),
            Ev::Flap => self.flap(),
            Ev::Resource {
                client,
                token,
                fenced,
            } => self.resource(client, token, fenced),
            Ev::Heal => self.heal(),
            Ev::Drain => {
                self.draining = true;
                self.log(
                    Who::Sim,
                    "",
                    format_args!("drain: clients stop issuing requests"),
                );
            }
            Ev::End => {
                self.end();
            }
        }
    }

    pub fn healed_at(&self) -> Option<u64> {
        self.healed_at
    }

    pub fn server_ids(&self) -> &[ServerId] {
        &self.servers
    }
}
