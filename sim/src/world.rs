//! The simulated world: servers (the real core), their disks and clocks, the network, clients,
//! the fault schedule, and the checkers watching every step. One thread, virtual milliseconds,
//! one event queue ordered by (time, sequence number), one seeded RNG.

use crate::check::{Reference, Violation, violation};
use crate::client::{Client, ClientOut, Ctx, Shared};
use crate::disk::Disk;
use crate::lines::{
    AppendLine, ClientReplyLine, ClientSendLine, CommitLine, EventLine, ReplyLine, SendLine,
    short_req, txn_kind,
};
use crate::net::{Channel, ELECTION, Net, QUORUM};
use crate::params::{ClientTarget, FaultAction, FaultStep, Params, Target};
use crate::rng::SimRng;
use crate::trace::{Line, Trace};
use ensemble_core::config::{Config, LearnerType};
use ensemble_core::peer::{PeerMsg, ServerState, SyncMode};
use ensemble_core::plant::Plant;
use ensemble_core::proto::{ConnectRequest, ConnectResponse, Reply, Request, WatchedEvent};
use ensemble_core::server::{ConnId, Effect, Event, Server};
use ensemble_core::txn::{ServerId, Txn};
use ensemble_core::zxid::Zxid;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

#[derive(Debug)]
enum Ev {
    Tick {
        node: ServerId,
        inc: u64,
    },
    Pump {
        from: ServerId,
        to: ServerId,
        ch: Channel,
    },
    ClientPump {
        conn: ConnId,
        to_server: bool,
    },
    Fsync {
        node: ServerId,
        inc: u64,
        upto: u64,
    },
    Deliver {
        node: ServerId,
        inc: u64,
        event: Box<Event>,
    },
    Restart {
        node: ServerId,
    },
    Resume {
        node: ServerId,
        inc: u64,
    },
    Unstall {
        node: ServerId,
        inc: u64,
    },
    ClientWake {
        client: usize,
        token: u64,
    },
    ClientResume {
        client: usize,
    },
    ClientRevive {
        client: usize,
    },
    /// A blocked path's TCP connection gives up, if still blocked and unbroken.
    TcpTimeout {
        a: ServerId,
        b: ServerId,
        ch: Channel,
        generation: u64,
    },
    Scheduled(FaultAction),
    Random(FaultKind),
    /// Step `idx` of a lane of the schedule (see `FaultStep::lane`).
    Lane {
        lane: usize,
        idx: usize,
    },
    HealPartition {
        id: u64,
    },
    Unclog {
        from: ServerId,
        to: ServerId,
    },
    Flap,
    Resource {
        client: usize,
        token: i64,
        fenced: bool,
    },
    Heal,
    Drain,
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultKind {
    Partition,
    Clog,
    Swizzle,
    Reset,
    ClientReset,
    Crash,
    Pause,
    Stall,
    Spike,
    ClientPause,
    ClientCrash,
    ClientClose,
}

struct Scheduled {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    // BinaryHeap is a max-heap: the earliest (time, seq) must compare greatest.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// Who a trace line is about.
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

/// The servers by id (1, 2, ...): a vector, as every event looks one up.
#[derive(Default)]
struct Nodes(Vec<Node>);

impl Nodes {
    fn slot(&self, id: ServerId) -> Option<usize> {
        let i = (id as usize).checked_sub(1)?;
        (i < self.0.len()).then_some(i)
    }
    /// Ids are given in order from 1.
    fn insert(&mut self, id: ServerId, n: Node) {
        assert_eq!(id as usize, self.0.len() + 1, "servers are numbered from 1");
        self.0.push(n);
    }
    fn get(&self, id: &ServerId) -> Option<&Node> {
        self.slot(*id).map(|i| &self.0[i])
    }
    fn get_mut(&mut self, id: &ServerId) -> Option<&mut Node> {
        self.slot(*id).map(|i| &mut self.0[i])
    }
    fn contains_key(&self, id: &ServerId) -> bool {
        self.slot(*id).is_some()
    }
    fn keys(&self) -> impl Iterator<Item = &ServerId> {
        self.0.iter().map(|n| &n.id)
    }
    fn values(&self) -> std::slice::Iter<'_, Node> {
        self.0.iter()
    }
}

impl std::ops::Index<&ServerId> for Nodes {
    type Output = Node;
    fn index(&self, id: &ServerId) -> &Node {
        self.get(id).expect("a server of this run")
    }
}

struct Node {
    id: ServerId,
    observer: bool,
    config: Config,
    server: Option<Server>,
    inc: u64,
    paused_until: Option<u64>,
    stalled: VecDeque<Event>,
    /// Its quorum side (timer and quorum-channel connections) is stalled until then; its
    /// client port still serves. Peer disconnects that arrive meanwhile wait here.
    quorum_stalled_until: u64,
    quorum_held: VecDeque<Event>,
    disk: Disk,
    clock_offset: u64,
    drift_ppm: i64,
    state: ServerState,
    established: Option<u32>,
    /// Serving clients (a synced learner, an established leader), and the leader it follows.
    serving: bool,
    following: Option<ServerId>,
    /// The zxid of a snapshot it loaded whole from its leader (SNAP) in the step under way.
    snapshot_loaded: Option<Zxid>,
    applied: Zxid,
    /// Quorum-channel connection generation per peer (bumped on every break).
    gens: BTreeMap<(ServerId, Channel), u64>,
}

impl Node {
    fn local_now(&self, now: u64) -> u64 {
        let drift = (now as i128 * self.drift_ppm as i128 / 1_000_000) as i64;
        (self.clock_offset as i64 + now as i64 + drift).max(0) as u64
    }
    fn up(&self) -> bool {
        self.server.is_some()
    }
    fn quorum_stalled(&self, now: u64) -> bool {
        self.quorum_stalled_until > now
    }
    fn role(&self) -> &'static str {
        if self.server.is_none() {
            return "DOWN";
        }
        if self.paused_until.is_some() {
            return "PAUSED";
        }
        match self.state {
            ServerState::Looking => "LOOKING",
            ServerState::Following => "FOLLOWING",
            ServerState::Leading => "LEADING",
            ServerState::Observing => "OBSERVING",
        }
    }
}

#[derive(Debug)]
enum C2S {
    Connect(ConnectRequest),
    Request(i32, Request),
    Close,
}

#[derive(Debug)]
enum S2C {
    Connected(ConnectResponse),
    Reply { xid: i32, zxid: i64, reply: Reply },
    Watch(WatchedEvent),
    Close,
}

struct CConn {
    client: usize,
    server: ServerId,
    server_inc: u64,
    to_server: VecDeque<(u64, C2S)>,
    to_client: VecDeque<(u64, S2C)>,
    last_ts: u64,
    last_tc: u64,
    /// The server closed it (nothing more from it after what is queued).
    server_closed: bool,
    client_closed: bool,
}

/// Numbers a run reports.
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
    pub wgl: crate::wgl::WglStats,
}

pub struct World {
    pub params: Params,
    pub plant: Option<Plant>,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    rng: SimRng,
    fault_rng: SimRng,
    /// Draws of the sync-crash fault (`Params::sync_crash`), on a stream of their own; none
    /// when the fault is off, so such runs draw exactly what they drew before it existed.
    sync_crash_rng: Option<SimRng>,
    nodes: Nodes,
    net: Net,
    conns: BTreeMap<ConnId, CConn>,
    clients: Vec<Client>,
    client_inbox: BTreeMap<usize, VecDeque<(ConnId, S2C)>>,
    shared: Shared,
    pub reference: Reference,
    /// `session.no-write-after-close`, `client.no-ok-after-close`.
    sessions: crate::check_session::SessionClaims,
    pub trace: Trace,
    /// Every proposed txn (shared with the disks that log it), with when it was first logged.
    proposals: BTreeMap<Zxid, (Arc<Txn>, u64)>,
    epoch_leaders: BTreeMap<u32, ServerId>,
    pub violation: Option<Violation>,
    /// A scenario's expected finding, once seen.
    pub expected_seen: Option<Violation>,
    pub stats: Stats,
    healed_at: Option<u64>,
    draining: bool,
    no_leader_since: Option<u64>,
    had_leader: bool,
    resource_max: i64,
    resource_last: Option<(usize, i64)>,
    effects: Vec<Effect>,
    servers: Vec<ServerId>,
    /// Txns committed during a partition that were proposed after it began.
    partition_commits: u64,
    /// When fewer than a quorum of voters were up: [start, end).
    quorum_down: Vec<(u64, u64)>,
    establishments: Vec<(u64, u32, ServerId)>,
    end_at: u64,
    fault_end: u64,
    /// The schedule's lanes, by lane number.
    lanes: Vec<Vec<FaultStep>>,
    /// The faults this run drew (swarm rates), as a schedule that replays them.
    pub drawn: Vec<FaultStep>,
}

thread_local! {
    /// The message of the last panic on this thread (set by the hook `install_panic_hook`).
    pub static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

thread_local! {
    /// Set while the core runs under `catch_unwind`: its panics become violations.
    static IN_CORE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run core code, turning its panics into an `Err` (the message is in `LAST_PANIC`).
fn in_core<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    IN_CORE.with(|c| c.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    IN_CORE.with(|c| c.set(false));
    r
}

/// Keep core assertion failures out of stderr: the run reports them as violations. Panics
/// anywhere else are reported as usual.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_CORE.with(|c| c.get()) {
            default(info);
            return;
        }
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "panic".to_string()
        };
        let loc = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{loc}")));
    }));
}

impl World {
    pub fn new(params: Params, plant: Option<Plant>, rng: &mut SimRng, trace: Trace) -> World {
        let mut rng = rng.fork();
        let fault_rng = rng.fork();
        let mut members = BTreeMap::new();
        for id in 1..=params.voters {
            members.insert(id, LearnerType::Participant);
        }
        for id in params.voters + 1..=params.members() {
            members.insert(id, LearnerType::Observer);
        }
        let mut nodes = Nodes::default();
        for (&id, &kind) in &members {
            let mut c = Config::new(id, members.clone());
            c.tick_time_ms = params.tick_ms;
            c.init_limit = params.init_limit;
            c.sync_limit = params.sync_limit;
            c.min_session_timeout_ms = (2 * params.tick_ms) as i32;
            c.max_session_timeout_ms = (20 * params.tick_ms) as i32;
            c.snap_count = params.snap_count;
            // Small parts, so that snapshots of the simulator's small trees come in many pieces
            // (fixed: drawing it would change what every recorded seed does).
            c.snapshot_part_bytes = 256;
            c.committed_log_size = params.committed_log_size;
            c.finalize_wait_ms = (params.tick_ms).clamp(20, 200);
            c.max_notification_interval_ms = (params.tick_ms * 20).clamp(500, 5_000);
            c.container_check_interval_ms = params.tick_ms * 50;
            c.plant = plant;
            c.initial_zxid_counter = params.initial_zxid_counter;
            c.super_digest = Some(ensemble_core::acl::digest_id(crate::client::SUPER_AUTH));
            let drift = params.drift_ppm as i64;
            nodes.insert(
                id,
                Node {
                    id,
                    observer: kind == LearnerType::Observer,
                    config: c,
                    server: None,
                    inc: 0,
                    paused_until: None,
                    stalled: VecDeque::new(),
                    quorum_stalled_until: 0,
                    quorum_held: VecDeque::new(),
                    disk: Disk::default(),
                    clock_offset: rng.range(0, 10_000),
                    drift_ppm: rng.range(0, 2 * drift as u64) as i64 - drift,
                    state: ServerState::Looking,
                    established: None,
                    serving: false,
                    following: None,
                    snapshot_loaded: None,
                    applied: Zxid::ZERO,
                    gens: BTreeMap::new(),
                },
            );
        }
        let servers: Vec<ServerId> = members.keys().copied().collect();
        let mut clients = Vec::new();
        for (i, role) in params.clients.iter().enumerate() {
            clients.push(Client::new(i, role, &mut rng, &params));
        }
        let end_at = params
            .duration_ms
            .max(params.fault_phase_ms + params.liveness_bound_ms + 5_000);
        let fault_end = params.fault_phase_ms;
        let sync_crash_rng = (params.sync_crash > 0.0).then(|| rng.fork());
        World {
            reference: Reference::new(plant),
            sessions: crate::check_session::SessionClaims::new(),
            plant,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            rng,
            fault_rng,
            sync_crash_rng,
            nodes,
            net: Net::default(),
            conns: BTreeMap::new(),
            clients,
            client_inbox: BTreeMap::new(),
            shared: Shared::default(),
            trace,
            proposals: BTreeMap::new(),
            epoch_leaders: BTreeMap::new(),
            violation: None,
            expected_seen: None,
            stats: Stats::default(),
            healed_at: None,
            draining: false,
            no_leader_since: Some(0),
            had_leader: false,
            resource_max: 0,
            resource_last: None,
            effects: Vec::new(),
            servers,
            partition_commits: 0,
            quorum_down: Vec::new(),
            establishments: Vec::new(),
            end_at,
            fault_end,
            lanes: Vec::new(),
            drawn: Vec::new(),
            params,
        }
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn log(&mut self, who: Who, role: &str, what: std::fmt::Arguments) {
        self.trace.line(self.now, who, role, what);
    }

    /// A frequent line, given as data (hashed without being formatted).
    fn emit(&mut self, who: Who, role: &str, line: &impl Line) {
        self.trace.emit(self.now, (who.code(), who), role, line);
    }

    fn fail(&mut self, v: Violation) {
        if let Some(exp) = &self.params.expect_violation
            && *exp == v.claim
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
            self.schedule(s.at_ms, Ev::Scheduled(s.action));
        }
        self.schedule(self.fault_end, Ev::Heal);
        self.schedule(self.end_at.saturating_sub(3_000), Ev::Drain);
        self.schedule(self.end_at, Ev::End);
        while let Some(s) = self.queue.pop() {
            self.now = s.at;
            self.stats.events += 1;
            let end = matches!(s.ev, Ev::End);
            self.dispatch(s.ev);
            if self.violation.is_some() || end {
                break;
            }
        }
        self.stats.sim_ms = self.now;
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
            Ev::Fsync { node, inc, upto } => {
                let n = self.nodes.get_mut(&node).expect("node");
                if n.inc != inc || !n.up() {
                    return;
                }
                n.disk.fsync_in_flight = false;
                let through = n.disk.fsync(upto);
                if n.disk.last_seq() > upto {
                    // appends arrived while this fsync ran: the next one covers them
                    n.disk.fsync_in_flight = true;
                    let next = n.disk.last_seq();
                    let (lo, hi) = self.params.fsync_ms;
                    let d = self.rng.range(lo, hi);
                    self.schedule(
                        self.now + d,
                        Ev::Fsync {
                            node,
                            inc,
                            upto: next,
                        },
                    );
                }
                if let Some(through) = through {
                    self.deliver(node, Event::Persisted { through });
                }
            }
            Ev::Deliver { node, inc, event } => {
                if self.nodes[&node].inc == inc {
                    self.deliver(node, *event);
                }
            }
            Ev::Restart { node } => self.restart(node),
            Ev::Resume { node, inc } => self.resume(node, inc),
            Ev::Unstall { node, inc } => self.unstall(node, inc),
            Ev::ClientWake { client, token } => {
                if self.clients[client].wake_token == token {
                    self.client_wake(client);
                }
            }
            Ev::ClientResume { client } => self.client_resume(client),
            Ev::ClientRevive { client } => {
                if self.clients[client].dead {
                    self.clients[client].reincarnate();
                    self.log(
                        Who::C(client),
                        "",
                        format_args!("client restarts (new session)"),
                    );
                    self.wake_client_at(client, self.now);
                }
            }
            Ev::TcpTimeout {
                a,
                b,
                ch,
                generation,
            } => {
                let still = self.net.blocked(a, b, self.now) || self.net.blocked(b, a, self.now);
                let g = self
                    .nodes
                    .get(&a)
                    .and_then(|n| n.gens.get(&(b, ch)).copied())
                    .unwrap_or(0);
                if still && g == generation {
                    self.log(
                        Who::Net,
                        "",
                        format_args!("tcp timeout n{a}<->n{b} {}", chname(ch)),
                    );
                    self.break_peer_conn(a, b, ch);
                }
            }
            Ev::Scheduled(action) => self.apply_fault(action),
            Ev::Random(kind) => self.random_fault(kind),
            Ev::Lane { lane, idx } => {
                // as a drawn fault: the next of its lane is scheduled first, then it acts
                if let Some(next) = self.lanes[lane].get(idx + 1) {
                    let at = next.at_ms.max(self.now);
                    self.schedule(at, Ev::Lane { lane, idx: idx + 1 });
                }
                let action = self.lanes[lane][idx].action.clone();
                self.do_fault(action);
            }
            Ev::HealPartition { id } => {
                if self.net.partition_id == id && self.net.partitioned() {
                    self.log(Who::Net, "", format_args!("partition heals"));
                    self.net.heal_partition();
                    self.unblocked();
                }
            }
            Ev::Unclog { from, to } => {
                if self
                    .net
                    .clogs
                    .get(&(from, to))
                    .is_some_and(|u| *u <= self.now)
                {
                    self.net.clogs.remove(&(from, to));
                    self.unblocked();
                }
            }
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
            Ev::End => self.finish(),
        }
    }

    // ---- servers ------------------------------------------------------------------------

    fn start_node(&mut self, id: ServerId) {
        let now = self.now;
        let n = self.nodes.get_mut(&id).expect("node");
        let rec = n.disk.recovered();
        let local = n.local_now(now);
        let result = in_core(|| Server::new(n.config.clone(), rec, local));
        match result {
            Ok(Ok(s)) => {
                n.applied = s.tree().last_zxid();
                n.state = s.state();
                n.established = None;
                n.server = Some(s);
                n.inc += 1;
                let inc = n.inc;
                let applied = n.applied;
                self.log(
                    Who::N(id),
                    "LOOKING",
                    format_args!("start, recovered through {applied}"),
                );
                self.schedule(now + 1, Ev::Tick { node: id, inc });
                self.update_quorum();
                self.after_step(id);
            }
            Ok(Err(e)) => self.fail(violation(
                "core.recover",
                now,
                format!("n{id} could not recover its disk: {e}"),
            )),
            Err(_) => {
                let msg = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_default();
                self.fail(violation(
                    "core.panic",
                    now,
                    format!("n{id} Server::new: {msg}"),
                ));
            }
        }
    }

    fn on_tick(&mut self, id: ServerId, inc: u64) {
        let now = self.now;
        let jitter = self.params.tick_jitter_pct;
        let Some(n) = self.nodes.get(&id) else { return };
        if n.inc != inc || !n.up() {
            return;
        }
        let interval = n
            .server
            .as_ref()
            .map(|s| s.tick_interval())
            .unwrap_or(25)
            .max(1);
        // ticks come a little late or early: the process's timer is not exact
        let spread = interval * jitter / 100;
        let next = now + interval - spread / 2 + self.rng.range(0, spread);
        self.schedule(next.max(now + 1), Ev::Tick { node: id, inc });
        let n = &self.nodes[&id];
        if n.paused_until.is_some() || n.quorum_stalled(now) {
            return;
        }
        self.handle(id, Event::Tick);
    }

    /// Hand an event to a server, or hold it while the process is paused.
    fn deliver(&mut self, id: ServerId, event: Event) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if !n.up() {
            return;
        }
        if n.paused_until.is_some() {
            n.stalled.push_back(event);
            return;
        }
        if matches!(event, Event::PeerDisconnected { .. }) && n.quorum_stalled(self.now) {
            n.quorum_held.push_back(event);
            return;
        }
        self.handle(id, event);
    }

    fn handle(&mut self, id: ServerId, event: Event) {
        let now = self.now;
        if !matches!(event, Event::Tick) {
            let role = self.nodes[&id].role();
            self.emit(Who::N(id), role, &EventLine(&event));
        }
        // a SNAP or NEWLEADER from the server's leader: the sync-crash fault's moment
        let sync_from = match &event {
            Event::Peer {
                from,
                msg: PeerMsg::NewLeader { .. },
            }
            | Event::Peer {
                from,
                msg:
                    PeerMsg::Sync {
                        mode: SyncMode::Snap { .. },
                        ..
                    },
            } if self.nodes[&id].state != ServerState::Leading => Some(*from),
            _ => None,
        };
        let mut effects = std::mem::take(&mut self.effects);
        let n = self.nodes.get_mut(&id).expect("node");
        let local = n.local_now(now);
        let Some(server) = n.server.as_mut() else {
            return;
        };
        let r = in_core(|| server.handle(local, event, &mut effects));
        if r.is_err() {
            let msg = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_default();
            self.nodes.get_mut(&id).expect("node").server = None;
            self.fail(violation("core.panic", now, format!("n{id}: {msg}")));
            self.effects = effects;
            self.effects.clear();
            return;
        }
        for e in effects.drain(..) {
            self.effect(id, e);
            if self.nodes[&id].server.is_none() {
                break;
            }
        }
        self.effects = effects;
        self.after_step(id);
        if let Some(leader) = sync_from {
            self.sync_crash(leader, id);
        }
    }

    /// The sync-crash fault: the leader dies right after a learner took its SNAP or NEWLEADER
    /// (what it sent after is lost), and half of those times the learner too, before its
    /// sync is fsynced.
    fn sync_crash(&mut self, leader: ServerId, learner: ServerId) {
        if self.now >= self.fault_end || self.violation.is_some() {
            return;
        }
        let p = self.params.sync_crash;
        let Some(rng) = self.sync_crash_rng.as_mut() else {
            return;
        };
        if !rng.chance(p) {
            return;
        }
        let both = rng.chance(0.5);
        let (down_leader, down_learner) = (rng.range(100, 3_000), rng.range(100, 3_000));
        self.log(
            Who::Net,
            "",
            format_args!(
                "SYNC-CRASH n{leader} after its sync of n{learner}{}",
                if both {
                    format!(", and n{learner}")
                } else {
                    String::new()
                }
            ),
        );
        self.crash(leader);
        self.schedule(self.now + down_leader, Ev::Restart { node: leader });
        if both {
            self.crash(learner);
            self.schedule(self.now + down_learner, Ev::Restart { node: learner });
        }
    }

    fn effect(&mut self, id: ServerId, e: Effect) {
        let now = self.now;
        let who = Who::N(id);
        let role = self.nodes[&id].role();
        match e {
            Effect::Send { to, msg } => {
                self.emit(who, role, &SendLine { to, msg: &msg });
                self.send_peer(id, to, msg);
            }
            Effect::DisconnectPeer { peer } => {
                self.log(who, role, format_args!("  disconnect n{peer}"));
                self.break_peer_conn(id, peer, QUORUM);
            }
            Effect::ConnectReply { conn, response } => {
                self.log(
                    who,
                    role,
                    format_args!(
                        "  connect reply conn {conn} session=0x{:x} timeout={}",
                        response.session_id, response.timeout_ms
                    ),
                );
                self.send_to_client(conn, S2C::Connected(response));
            }
            Effect::Reply {
                conn,
                xid,
                zxid,
                reply,
                ..
            } => {
                self.emit(
                    who,
                    role,
                    &ReplyLine {
                        conn,
                        xid,
                        zxid,
                        reply: &reply,
                    },
                );
                self.send_to_client(
                    conn,
                    S2C::Reply {
                        xid,
                        zxid: zxid.as_i64(),
                        reply,
                    },
                );
            }
            Effect::Watch { conn, event } => {
                self.log(
                    who,
                    role,
                    format_args!("  watch conn {conn} {:?} {}", event.kind, event.path),
                );
                self.send_to_client(conn, S2C::Watch(event));
            }
            Effect::Close { conn } => {
                self.log(who, role, format_args!("  close conn {conn}"));
                self.send_to_client(conn, S2C::Close);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.server_closed = true;
                }
            }
            Effect::Append { txns } => {
                if let (Some(a), Some(b)) = (txns.first(), txns.last()) {
                    let line = AppendLine {
                        first: a.zxid,
                        last: b.zxid,
                        n: txns.len(),
                    };
                    self.emit(who, role, &line);
                }
                for t in &txns {
                    match self.proposals.get(&t.zxid) {
                        // the same allocation is the same txn; else compare
                        Some((p, _)) if !Arc::ptr_eq(p, t) && **p != **t => {
                            let v = violation(
                                "zab.zxid-unique",
                                now,
                                format!(
                                    "n{id} logged txn {} as {}, but {} was proposed as {}",
                                    t.zxid,
                                    txn_kind(t),
                                    t.zxid,
                                    txn_kind(p)
                                ),
                            );
                            self.fail(v);
                            return;
                        }
                        Some(_) => {}
                        None => {
                            self.proposals.insert(t.zxid, (Arc::clone(t), now));
                        }
                    }
                }
                let n = self.nodes.get_mut(&id).expect("node");
                if let Some(last) = n.disk.log.last()
                    && let Some(first) = txns.first()
                    && first.zxid <= last.txn.zxid
                {
                    let v = violation(
                        "zab.log-order",
                        now,
                        format!("n{id} appended {} after {}", first.zxid, last.txn.zxid),
                    );
                    self.fail(v);
                    return;
                }
                let upto = n.disk.append(&txns);
                // group commit, as ZooKeeper's SyncRequestProcessor does: one fsync in flight
                // at a time; appends made meanwhile ride on the next one
                if !n.disk.fsync_in_flight {
                    n.disk.fsync_in_flight = true;
                    let inc = n.inc;
                    let (lo, hi) = self.params.fsync_ms;
                    let d = self.rng.range(lo, hi);
                    self.schedule(
                        now + d,
                        Ev::Fsync {
                            node: id,
                            inc,
                            upto,
                        },
                    );
                }
            }
            Effect::Truncate { after } => {
                self.log(who, role, format_args!("  truncate after {after}"));
                self.nodes.get_mut(&id).expect("node").disk.truncate(after);
            }
            Effect::SnapshotPart { zxid, index, data } => {
                self.nodes
                    .get_mut(&id)
                    .expect("node")
                    .disk
                    .snapshot_part(zxid, index, &data);
            }
            Effect::Snapshot {
                zxid,
                parts,
                data,
                reset_log,
            } => {
                self.log(
                    who,
                    role,
                    format_args!(
                        "  snapshot at {zxid}{}",
                        if reset_log { " (log reset)" } else { "" }
                    ),
                );
                let n = self.nodes.get_mut(&id).expect("node");
                if reset_log {
                    n.snapshot_loaded = Some(zxid);
                }
                n.disk.snapshot(zxid, parts, data, reset_log);
            }
            Effect::PersistEpochs(e) => {
                self.log(
                    who,
                    role,
                    format_args!(
                        "  persist epochs accepted=e{} (from n{}) current=e{}",
                        e.accepted_epoch, e.accepted_from, e.current_epoch
                    ),
                );
                self.nodes.get_mut(&id).expect("node").disk.epochs = e;
            }
            Effect::StateChanged { state, epoch } => {
                let n = self.nodes.get_mut(&id).expect("node");
                n.state = state;
                if state == ServerState::Looking {
                    self.stats.elections += 1;
                }
                let role = self.nodes[&id].role();
                self.log(
                    who,
                    role,
                    format_args!("  state -> {state:?} epoch e{epoch}"),
                );
            }
        }
    }

    /// The claims that hold after every step of server `id`.
    fn after_step(&mut self, id: ServerId) {
        let now = self.now;
        let (established, applied, digest, state, serving) = {
            let n = &self.nodes[&id];
            let Some(s) = n.server.as_ref() else { return };
            let applied = s.tree().last_zxid();
            let digest = if applied != n.applied {
                Some(s.tree().digest())
            } else {
                None
            };
            (
                s.established_epoch(),
                applied,
                digest,
                s.state(),
                s.is_serving(),
            )
        };
        let n = self.nodes.get_mut(&id).expect("node");
        let moved = n.state != state || n.serving != serving;
        n.state = state;
        n.serving = serving;
        if moved {
            // whom it follows changes only with its state (a learner goes LOOKING between
            // leaders), so the status is asked only then
            n.following = match state {
                ServerState::Following | ServerState::Observing => {
                    n.server.as_ref().and_then(|s| s.status().leader)
                }
                _ => None,
            };
            self.update_availability();
        }
        // one established leader per epoch
        let prev_est = self.nodes[&id].established;
        if established != prev_est {
            self.nodes.get_mut(&id).expect("node").established = established;
            if let Some(e) = established {
                match self.epoch_leaders.get(&e) {
                    Some(other) if *other != id => {
                        let other = *other;
                        self.fail(violation(
                            "zab.one-leader-per-epoch",
                            now,
                            format!("n{id} and n{other} both established as leader of epoch {e}"),
                        ));
                        return;
                    }
                    _ => {
                        self.epoch_leaders.insert(e, id);
                    }
                }
                self.stats.leader_changes += 1;
                self.establishments.push((now, e, id));
                self.log(
                    Who::N(id),
                    "LEADING",
                    format_args!("  established leader of epoch {e}"),
                );
                if let Err(v) = self.check_leader_history(id, e) {
                    self.fail(v);
                    return;
                }
            }
            self.update_availability();
        }
        let prev = self.nodes[&id].applied;
        if applied != prev {
            if applied < prev {
                self.fail(violation(
                    "zab.applied-regressed",
                    now,
                    format!(
                        "n{id} applied state went back from {prev} to {applied} without a restart"
                    ),
                ));
                return;
            }
            self.nodes.get_mut(&id).expect("node").applied = applied;
            if applied > self.reference.last
                && let Err(v) = self.extend_reference(id, applied)
            {
                self.fail(v);
                return;
            }
            if let Err(v) = self.check_delivered(id, prev, applied) {
                self.fail(v);
                return;
            }
        }
        if let Some(d) = digest {
            match self.reference.digest_at(applied) {
                None => self.fail(violation("zab.agreement", now, format!("n{id} applied through {applied}, a zxid the committed history does not have (history is at {})", self.reference.last))),
                Some(r) if r != d => self.fail(violation("zab.agreement", now, format!("n{id} state at {applied} differs from the committed history's state at {applied} (digest {d:x} vs {r:x})"))),
                _ => {}
            }
        }
    }

    /// `zab.total-order` on the txns server `id` delivered in this step: those of its history
    /// in (`prev`, `applied`] (after the snapshot it loaded, if it loaded one), which must be
    /// the committed sequence over that range.
    fn check_delivered(
        &mut self,
        id: ServerId,
        prev: Zxid,
        applied: Zxid,
    ) -> Result<(), Violation> {
        let n = self.nodes.get_mut(&id).expect("node");
        let from = n.snapshot_loaded.take().map_or(prev, |s| s.max(prev));
        let Some(s) = n.server.as_ref() else {
            return Ok(());
        };
        let mut delivered: Vec<crate::check::Delivered> = s
            .history()
            .rev()
            .skip_while(|t| t.zxid > applied)
            .take_while(|t| t.zxid > from)
            .map(|t| (t.zxid, t.session, t.cxid))
            .collect();
        delivered.reverse();
        // a history trimmed past `from` cannot show a gap at its start: compare from its first
        let after = match s.history().next() {
            Some(first) if first.zxid > from => Zxid(first.zxid.0 - 1),
            _ => from,
        };
        crate::check::check_delivery(
            id,
            after,
            &delivered,
            &self.reference.txns,
            self.reference.opaque_through,
            self.now,
        )
    }

    /// Everything committed before epoch `e` (and every acknowledged write) must be in the
    /// history of the server that establishes epoch `e`.
    fn check_leader_history(&self, id: ServerId, e: u32) -> Result<(), Violation> {
        let disk = &self.nodes[&id].disk;
        let bound = Zxid::new(e, 0);
        let has = |z: Zxid| -> bool {
            if disk.snapshot.as_ref().is_some_and(|s| s.0 >= z) {
                return true;
            }
            match (disk.find(z), self.proposals.get(&z)) {
                (Some(entry), Some((p, _))) => Arc::ptr_eq(&entry.txn, p) || entry.txn == *p,
                (Some(_), None) => true,
                _ => false,
            }
        };
        for z in &self.shared.acked {
            if *z < bound && !has(*z) {
                return Err(violation(
                    "zab.acked-write-lost",
                    self.now,
                    format!(
                        "n{id} established epoch {e} without the acknowledged write {z} (its log ends at {})",
                        disk.last_logged()
                    ),
                ));
            }
        }
        if let Some(z) = self.reference.last_below(bound)
            && z > self.reference.opaque_through
            && !has(z)
        {
            return Err(violation(
                "zab.leader-history",
                self.now,
                format!(
                    "n{id} established epoch {e} without committed txn {z} (its log ends at {})",
                    disk.last_logged()
                ),
            ));
        }
        Ok(())
    }

    fn extend_reference(&mut self, id: ServerId, to: Zxid) -> Result<(), Violation> {
        let now = self.now;
        let from = self.reference.last;
        let (txns, snap) = {
            let d = &self.nodes[&id].disk;
            let txns: Vec<Arc<Txn>> = d.range(from, to).iter().map(|e| e.txn.clone()).collect();
            (txns, d.snapshot.clone())
        };
        let contiguous = txns.last().map(|t| t.zxid) == Some(to);
        if !contiguous {
            if let Some((sz, data)) = snap.filter(|s| s.0 == to) {
                self.reference.reset_to_snapshot(sz, &data).map_err(|e| {
                    violation(
                        "core.snapshot",
                        now,
                        format!("n{id}'s snapshot at {sz} does not load: {e}"),
                    )
                })?;
                return Ok(());
            }
            return Err(violation(
                "zab.applied-unlogged",
                now,
                format!(
                    "n{id} applied through {to} but its log does not hold the txns after {from}"
                ),
            ));
        }
        let quorum_needed = self.params.voters / 2 + 1;
        for t in txns {
            // a txn is committed only once a quorum of voters has it durably
            let holders: Vec<ServerId> = self
                .nodes
                .values()
                .filter(|n| !n.observer && n.disk.holds_durably(t.zxid))
                .map(|n| n.id)
                .collect();
            if (holders.len() as u64) < quorum_needed {
                return Err(violation(
                    "zab.commit-without-quorum",
                    now,
                    format!(
                        "txn {} ({}) committed while durable only on {:?} of {} voters",
                        t.zxid,
                        txn_kind(&t),
                        holders,
                        self.params.voters
                    ),
                ));
            }
            // CAP: during a partition, a txn proposed after it began commits only with a
            // quorum on the committing server's side
            if let Some(since) = self.net.partition_since {
                let proposed = self.proposals.get(&t.zxid).map(|p| p.1).unwrap_or(0);
                if proposed >= since {
                    self.partition_commits += 1;
                    let side: Vec<ServerId> = holders
                        .iter()
                        .copied()
                        .filter(|h| *h == id || !self.net.partitioned_from(*h, id))
                        .collect();
                    if (side.len() as u64) < quorum_needed {
                        return Err(violation(
                            "cap.minority-commit",
                            now,
                            format!(
                                "during partition {}, n{id} committed {} with only {:?} on its side",
                                self.net.partition_desc, t.zxid, side
                            ),
                        ));
                    }
                }
            }
            self.emit(Who::Ref, "", &CommitLine(&t));
            self.reference.apply(&t, now)?;
            self.sessions.on_commit(&t, now)?;
        }
        Ok(())
    }

    fn update_quorum(&mut self) {
        let up = self
            .nodes
            .values()
            .filter(|n| !n.observer && n.up())
            .count() as u64;
        let down = up * 2 <= self.params.voters;
        match self.quorum_down.last_mut() {
            Some((_, end)) if *end == u64::MAX => {
                if !down {
                    *end = self.now;
                }
            }
            _ => {
                if down {
                    self.quorum_down.push((self.now, u64::MAX));
                }
            }
        }
    }

    /// The leader clients can be served by: established, running (not paused, its quorum side
    /// not stalled) and followed by a quorum of voters (itself included) that are synced with
    /// it and running. A deposed or stalled leader that still believes it leads does not count.
    fn effective_leader(&self) -> Option<ServerId> {
        let now = self.now;
        let running = |n: &Node| n.up() && n.paused_until.is_none() && !n.quorum_stalled(now);
        let quorum = self.params.voters / 2 + 1;
        self.nodes
            .values()
            .filter(|n| running(n) && n.established.is_some())
            .find(|l| {
                let followers = self
                    .nodes
                    .values()
                    .filter(|n| {
                        !n.observer
                            && n.id != l.id
                            && running(n)
                            && n.serving
                            && n.state == ServerState::Following
                            && n.following == Some(l.id)
                    })
                    .count() as u64;
                followers + u64::from(!l.observer) >= quorum
            })
            .map(|n| n.id)
    }

    /// The longest leaderless window: time without an [`World::effective_leader`].
    fn update_availability(&mut self) {
        let any = self.effective_leader().is_some();
        match (any, self.no_leader_since) {
            (true, Some(since)) => {
                if self.had_leader {
                    let gap = self.now - since;
                    self.stats.max_unavailable_ms = self.stats.max_unavailable_ms.max(gap);
                    self.log(
                        Who::Sim,
                        "",
                        format_args!("leader available again after {gap}ms"),
                    );
                }
                self.had_leader = true;
                self.no_leader_since = None;
            }
            (false, None) => self.no_leader_since = Some(self.now),
            _ => {}
        }
    }

    // ---- network --------------------------------------------------------------------------

    fn send_peer(&mut self, from: ServerId, to: ServerId, msg: PeerMsg) {
        if from == to || !self.nodes.contains_key(&to) {
            return;
        }
        let ch = msg.is_election();
        let now = self.now;
        let (lo, hi) = self.params.net_delay;
        let mut d = self.rng.range(lo, hi).max(1);
        // latency spikes belong to the fault phase: the liveness phase has a calm network
        if self.params.spike_prob > 0.0
            && now < self.fault_end
            && self.rng.chance(self.params.spike_prob)
        {
            d += self.rng.exp(self.params.spike_ms.max(1));
        }
        if let Some((until, extra)) = self.net.slow.get(&from)
            && *until > now
        {
            d += extra;
        }
        let link = self.net.links.entry((from, to, ch)).or_default();
        let at = (now + d).max(link.last_arrival);
        link.last_arrival = at;
        link.queue.push_back((at, msg));
        self.schedule(at, Ev::Pump { from, to, ch });
        if self.net.blocked(from, to, now) {
            self.arm_tcp_timeout(from, to, ch);
        }
    }

    fn pump(&mut self, from: ServerId, to: ServerId, ch: Channel) {
        let now = self.now;
        if self.net.blocked(from, to, now) {
            return;
        }
        // a stalled quorum side neither reads nor writes its quorum connections (its
        // unstall pumps them again)
        if ch == QUORUM
            && (self.nodes[&from].quorum_stalled(now) || self.nodes[&to].quorum_stalled(now))
        {
            return;
        }
        loop {
            let Some(link) = self.net.links.get_mut(&(from, to, ch)) else {
                return;
            };
            match link.queue.front() {
                Some((at, _)) if *at <= now => {}
                _ => return,
            }
            let (_, msg) = link.queue.pop_front().expect("front");
            self.deliver(to, Event::Peer { from, msg });
            if self.violation.is_some() {
                return;
            }
        }
    }

    fn arm_tcp_timeout(&mut self, a: ServerId, b: ServerId, ch: Channel) {
        let generation = self
            .nodes
            .get(&a)
            .and_then(|n| n.gens.get(&(b, ch)).copied())
            .unwrap_or(0);
        let at = self.now + self.params.tcp_timeout_ms;
        self.schedule(
            at,
            Ev::TcpTimeout {
                a,
                b,
                ch,
                generation,
            },
        );
    }

    /// Break one channel between two servers: in-flight messages are lost; on the quorum
    /// channel both cores hear of it before anything from a later connection.
    fn break_peer_conn(&mut self, a: ServerId, b: ServerId, ch: Channel) {
        if std::env::var("SIMDEBUG").is_ok() {
            for k in [(a, b, ch), (b, a, ch)] {
                if let Some(l) = self.net.links.get(&k) {
                    eprintln!(
                        "DEBUG t={} link {:?} front={:?} last={} blocked={}",
                        self.now,
                        k,
                        l.queue.front().map(|x| x.0),
                        l.last_arrival,
                        self.net.blocked(k.0, k.1, self.now)
                    );
                }
            }
        }
        let lost = self.net.break_conn(a, b, ch);
        for (x, y) in [(a, b), (b, a)] {
            if let Some(n) = self.nodes.get_mut(&x) {
                *n.gens.entry((y, ch)).or_default() += 1;
            }
        }
        if lost > 0 {
            self.log(
                Who::Net,
                "",
                format_args!("n{a}<->n{b} {} broken, {lost} in flight lost", chname(ch)),
            );
        }
        if ch == QUORUM {
            for (x, y) in [(a, b), (b, a)] {
                let inc = self.nodes[&x].inc;
                self.schedule(
                    self.now,
                    Ev::Deliver {
                        node: x,
                        inc,
                        event: Box::new(Event::PeerDisconnected { peer: y }),
                    },
                );
            }
        }
    }

    /// Paths may have opened: deliver what waited on them, and arm timeouts for the closed.
    fn unblocked(&mut self) {
        let now = self.now;
        let keys: Vec<(ServerId, ServerId, Channel)> = self
            .net
            .links
            .iter()
            .filter(|(_, l)| !l.queue.is_empty())
            .map(|(k, _)| *k)
            .collect();
        for (from, to, ch) in keys {
            if !self.net.blocked(from, to, now) {
                self.schedule(now, Ev::Pump { from, to, ch });
            }
        }
    }

    fn topology_changed(&mut self) {
        self.stats.partitions += 1;
        let ids = self.servers.clone();
        for &a in &ids {
            for &b in &ids {
                if a < b && (self.net.blocked(a, b, self.now) || self.net.blocked(b, a, self.now)) {
                    self.arm_tcp_timeout(a, b, QUORUM);
                    self.arm_tcp_timeout(a, b, ELECTION);
                }
            }
        }
        self.unblocked();
    }

    // ---- crashes, restarts, pauses -----------------------------------------------------------

    fn crash(&mut self, id: ServerId) {
        let now = self.now;
        let (survive, torn) = (self.params.unsynced_survive, self.params.torn_tail);
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
        n.quorum_stalled_until = 0;
        n.quorum_held.clear();
        n.established = None;
        n.state = ServerState::Looking;
        n.serving = false;
        n.following = None;
        let loss = n.disk.crash(&mut self.rng, survive, torn);
        self.stats.crashes += 1;
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

    fn restart(&mut self, id: ServerId) {
        // a schedule may name a server this run does not have (a shrunk topology)
        if self.nodes.get(&id).is_none_or(|n| n.up()) {
            return;
        }
        self.start_node(id);
    }

    fn pause(&mut self, id: ServerId, ms: u64) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if !n.up() || n.paused_until.is_some() {
            return;
        }
        n.paused_until = Some(self.now + ms);
        let inc = n.inc;
        self.stats.pauses += 1;
        self.log(Who::N(id), "PAUSED", format_args!("PAUSE for {ms}ms"));
        self.schedule(self.now + ms, Ev::Resume { node: id, inc });
        self.update_availability();
    }

    /// The quorum side of a server stalls: its timer and its quorum-channel connections, both
    /// ways (a thread blocked with a lock held, as in ZOOKEEPER-2201), while its client port
    /// keeps serving. A stalled leader keeps answering its clients from a view that may be
    /// stale: its followers hear nothing, time out and elect another leader.
    fn stall(&mut self, id: ServerId, ms: u64) {
        let now = self.now;
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if !n.up() || n.quorum_stalled(now) {
            return;
        }
        n.quorum_stalled_until = now + ms;
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

    fn unstall(&mut self, id: ServerId, inc: u64) {
        let now = self.now;
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

    fn resume(&mut self, id: ServerId, inc: u64) {
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
                | Event::ClientDisconnected { conn } => (1, *conn),
                Event::Persisted { .. } => (2, 0),
                Event::Tick => (3, 0),
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

    // ---- clients --------------------------------------------------------------------------

    fn wake_client_at(&mut self, c: usize, at: u64) {
        let cl = &mut self.clients[c];
        cl.wake_token += 1;
        cl.wake_at = at;
        let token = cl.wake_token;
        self.schedule(at, Ev::ClientWake { client: c, token });
    }

    /// Run a client callback with its context, then carry out what it asked for.
    fn with_client<F>(&mut self, c: usize, f: F)
    where
        F: FnOnce(&mut Client, &mut Ctx) -> Result<Option<u64>, Violation>,
    {
        let mut out = Vec::new();
        let mut rng = self.rng.fork();
        let res = {
            let mut cx = Ctx {
                now: self.now,
                rng: &mut rng,
                out: &mut out,
                reference: &self.reference,
                shared: &mut self.shared,
                servers: &self.servers,
                params: &self.params,
            };
            f(&mut self.clients[c], &mut cx)
        };
        self.client_outputs(c, out);
        if let Some(v) = self.shared.recipe_violation.take() {
            self.fail(v);
        }
        match res {
            Ok(Some(at)) => {
                if at != u64::MAX {
                    self.wake_client_at(c, at);
                }
            }
            Ok(None) => {}
            Err(v) => self.fail(v),
        }
    }

    fn client_wake(&mut self, c: usize) {
        if self.clients[c].paused_until.is_some() || self.clients[c].dead {
            return;
        }
        let draining = self.draining;
        // while draining, clients only keep their sessions alive, except those that only
        // follow changes (a monitor or config reader still re-reads after a watch fires)
        let issue = !draining || self.clients[c].role.is_reactive();
        self.with_client(c, |cl, cx| Ok(Some(cl.wake(cx, issue)?)));
    }

    fn client_outputs(&mut self, c: usize, out: Vec<ClientOut>) {
        let who = Who::C(c);
        for o in out {
            match o {
                ClientOut::Open {
                    conn,
                    server,
                    request,
                } => {
                    self.log(
                        who,
                        "",
                        format_args!(
                            "connect to n{server} conn {conn} session=0x{:x} lastZxidSeen={}",
                            request.session_id,
                            Zxid(request.last_zxid_seen as u64)
                        ),
                    );
                    let inc = self.nodes[&server].inc;
                    let up = self.nodes[&server].up();
                    self.conns.insert(
                        conn,
                        CConn {
                            client: c,
                            server,
                            server_inc: inc,
                            to_server: VecDeque::new(),
                            to_client: VecDeque::new(),
                            last_ts: 0,
                            last_tc: 0,
                            server_closed: false,
                            client_closed: false,
                        },
                    );
                    if up {
                        self.c2s(conn, C2S::Connect(request));
                    } else {
                        // connection refused
                        self.send_to_client(conn, S2C::Close);
                    }
                }
                ClientOut::Send { conn, xid, request } => {
                    if xid >= 0 || xid == crate::client::SET_WATCHES_XID {
                        let line = ClientSendLine {
                            conn,
                            xid,
                            request: &request,
                        };
                        self.emit(who, "", &line);
                    }
                    self.c2s(conn, C2S::Request(xid, request));
                }
                ClientOut::Close { conn } => {
                    if let Some(cc) = self.conns.get_mut(&conn) {
                        cc.client_closed = true;
                        self.c2s(conn, C2S::Close);
                    }
                }
                ClientOut::Resource { token, fenced } => {
                    self.log(
                        who,
                        "",
                        format_args!("acts on the resource with token {}", Zxid(token as u64)),
                    );
                    let d = self
                        .rng
                        .range(self.params.net_delay.0, self.params.net_delay.1)
                        .max(1);
                    self.schedule(
                        self.now + d,
                        Ev::Resource {
                            client: c,
                            token,
                            fenced,
                        },
                    );
                }
                ClientOut::Note(s) => self.log(who, "", format_args!("{s}")),
            }
        }
    }

    fn c2s(&mut self, conn: ConnId, m: C2S) {
        let now = self.now;
        let (lo, hi) = self.params.net_delay;
        let d = self.rng.range(lo, hi).max(1);
        let Some(cc) = self.conns.get_mut(&conn) else {
            return;
        };
        let at = (now + d).max(cc.last_ts);
        cc.last_ts = at;
        cc.to_server.push_back((at, m));
        self.schedule(
            at,
            Ev::ClientPump {
                conn,
                to_server: true,
            },
        );
    }

    fn send_to_client(&mut self, conn: ConnId, m: S2C) {
        let now = self.now;
        let (lo, hi) = self.params.net_delay;
        let d = self.rng.range(lo, hi).max(1);
        let Some(cc) = self.conns.get_mut(&conn) else {
            return;
        };
        if cc.server_closed {
            return;
        }
        let at = (now + d).max(cc.last_tc);
        cc.last_tc = at;
        cc.to_client.push_back((at, m));
        self.schedule(
            at,
            Ev::ClientPump {
                conn,
                to_server: false,
            },
        );
    }

    fn client_pump(&mut self, conn: ConnId, to_server: bool) {
        let now = self.now;
        loop {
            if self.violation.is_some() {
                return;
            }
            let Some(cc) = self.conns.get_mut(&conn) else {
                return;
            };
            let (client, server, inc) = (cc.client, cc.server, cc.server_inc);
            if to_server {
                match cc.to_server.front() {
                    Some((at, _)) if *at <= now => {}
                    _ => return,
                }
                let (_, m) = cc.to_server.pop_front().expect("front");
                if self.nodes[&server].inc != inc {
                    return;
                }
                match m {
                    C2S::Connect(request) => {
                        let addr = format!("127.0.1.{}", client + 1);
                        self.deliver(
                            server,
                            Event::ClientConnected {
                                conn,
                                addr,
                                request,
                            },
                        );
                    }
                    C2S::Request(xid, request) => {
                        self.deliver(server, Event::Client { conn, xid, request })
                    }
                    C2S::Close => {
                        let server_closed = cc_server_closed(&self.conns, conn);
                        self.conns.remove(&conn);
                        if !server_closed {
                            self.deliver(server, Event::ClientDisconnected { conn });
                        }
                        return;
                    }
                }
            } else {
                match cc.to_client.front() {
                    Some((at, _)) if *at <= now => {}
                    _ => return,
                }
                let (_, m) = cc.to_client.pop_front().expect("front");
                let closing = matches!(m, S2C::Close);
                if closing {
                    // the client side is done with it; tell the server if it did not close it
                    if let Some(cc) = self.conns.remove(&conn)
                        && !cc.server_closed
                        && !cc.client_closed
                        && self.nodes[&server].inc == inc
                    {
                        self.deliver(server, Event::ClientDisconnected { conn });
                    }
                }
                if self.clients[client].paused_until.is_some() {
                    self.client_inbox
                        .entry(client)
                        .or_default()
                        .push_back((conn, m));
                } else {
                    self.client_receive(client, conn, m);
                }
                if closing {
                    return;
                }
            }
        }
    }

    fn client_receive(&mut self, c: usize, conn: ConnId, m: S2C) {
        // only the client's current connection counts
        if self.clients[c].conn.as_ref().map(|x| x.id) != Some(conn) || self.clients[c].dead {
            return;
        }
        let who = Who::C(c);
        match &m {
            S2C::Connected(r) => self.log(
                who,
                "",
                format_args!(
                    "connected conn {conn} session=0x{:x} timeout={}",
                    r.session_id, r.timeout_ms
                ),
            ),
            S2C::Reply { xid, zxid, reply } => {
                if *xid != crate::client::PING_XID {
                    let line = ClientReplyLine {
                        xid: *xid,
                        zxid: *zxid,
                        reply,
                    };
                    self.emit(who, "", &line);
                }
            }
            S2C::Watch(e) => self.log(who, "", format_args!("watch event {:?} {}", e.kind, e.path)),
            S2C::Close => self.log(who, "", format_args!("conn {conn} closed by server")),
        }
        let now = self.now;
        if let S2C::Reply { xid, zxid, reply } = &m
            && let Some(request) = self.clients[c].pending_request(*xid)
        {
            let session = self.clients[c].session_id();
            if let Err(v) = self
                .sessions
                .on_reply(c, session, request, *zxid, reply, now)
            {
                self.fail(v);
            }
        }
        self.with_client(c, |cl, cx| {
            match m {
                S2C::Connected(r) => cl.on_connected(cx, r)?,
                S2C::Reply { xid, zxid, reply } => cl.on_reply(cx, xid, zxid, reply)?,
                S2C::Watch(e) => cl.on_watch(cx, e)?,
                S2C::Close => cl.on_closed(cx)?,
            }
            Ok(None)
        });
        // the client reacts after a think time (a recipe's next step, the mix's next op),
        // unless it was due to wake sooner anyway
        let (lo, hi) = self.params.think_ms;
        let at = now + self.rng.range(lo, hi).max(1);
        if self.clients[c].wake_at > at || self.clients[c].wake_at < now {
            self.wake_client_at(c, at);
        }
    }

    /// A client connection breaks (reset, or its server died).
    fn reset_client_conn(&mut self, conn: ConnId, tell_server: bool) {
        let Some(cc) = self.conns.get_mut(&conn) else {
            return;
        };
        cc.to_client.clear();
        cc.to_server.clear();
        let (server, inc) = (cc.server, cc.server_inc);
        if tell_server && !cc.server_closed && self.nodes[&server].inc == inc {
            let d = self.rng.range(1, 20);
            self.schedule(
                self.now + d,
                Ev::Deliver {
                    node: server,
                    inc,
                    event: Box::new(Event::ClientDisconnected { conn }),
                },
            );
        }
        if let Some(cc) = self.conns.get_mut(&conn) {
            cc.server_closed = false;
        }
        self.send_to_client(conn, S2C::Close);
        if let Some(cc) = self.conns.get_mut(&conn) {
            cc.server_closed = true;
        }
    }

    fn client_pause(&mut self, c: usize, ms: u64) {
        let cl = &mut self.clients[c];
        if cl.dead || cl.paused_until.is_some() {
            return;
        }
        cl.paused_until = Some(self.now + ms);
        self.log(Who::C(c), "", format_args!("client PAUSE for {ms}ms"));
        self.schedule(self.now + ms, Ev::ClientResume { client: c });
    }

    fn client_resume(&mut self, c: usize) {
        if self.clients[c].paused_until.take().is_none() {
            return;
        }
        self.log(Who::C(c), "", format_args!("client resumes"));
        // a paused process first runs the timer that was due (a stale view), then reads
        // its socket
        self.client_wake(c);
        let inbox: Vec<(ConnId, S2C)> = self
            .client_inbox
            .remove(&c)
            .unwrap_or_default()
            .into_iter()
            .collect();
        for (conn, m) in inbox {
            if self.violation.is_some() {
                return;
            }
            self.client_receive(c, conn, m);
        }
    }

    /// A client process dies; another takes its place (a new session) after `revive` ms, or
    /// after a drawn while, and by the end of the fault phase at the latest.
    fn client_crash(&mut self, c: usize, revive: Option<u64>) {
        if self.clients[c].dead {
            return;
        }
        self.log(
            Who::C(c),
            "",
            format_args!("client CRASH (its session will expire)"),
        );
        if let Some(conn) = self.clients[c].conn.take() {
            self.reset_client_conn(conn.id, true);
        }
        self.clients[c].dead = true;
        self.client_inbox.remove(&c);
        let back = self.now + revive.unwrap_or_else(|| self.fault_rng.range(2_000, 10_000));
        self.schedule(
            back.min(self.fault_end.max(self.now)),
            Ev::ClientRevive { client: c },
        );
    }

    fn resource(&mut self, c: usize, token: i64, fenced: bool) {
        let who = Who::C(c);
        if fenced && token < self.resource_max {
            self.stats.resource_rejected += 1;
            self.log(
                who,
                "",
                format_args!(
                    "resource REJECTS token {} (fenced: {} seen)",
                    Zxid(token as u64),
                    Zxid(self.resource_max as u64)
                ),
            );
            return;
        }
        if token < self.resource_max {
            let (holder, t) = self.resource_last.unwrap_or((usize::MAX, 0));
            self.fail(violation("recipe.lock-two-holders", self.now, format!("client {c} acted on the resource holding the lock with node zxid {}, after client {holder} had acted holding it with node zxid {}: two holders at once", Zxid(token as u64), Zxid(t as u64))));
            return;
        }
        self.resource_max = token;
        self.resource_last = Some((c, token));
        self.log(
            who,
            "",
            format_args!("resource accepts token {}", Zxid(token as u64)),
        );
    }

    // ---- faults ---------------------------------------------------------------------------

    fn schedule_random_faults(&mut self) {
        let r = self.params.random.clone();
        let kinds = [
            (r.partition_every, FaultKind::Partition),
            (r.clog_every, FaultKind::Clog),
            (r.swizzle_every, FaultKind::Swizzle),
            (r.reset_every, FaultKind::Reset),
            (r.client_reset_every, FaultKind::ClientReset),
            (r.crash_every, FaultKind::Crash),
            (r.pause_every, FaultKind::Pause),
            (r.stall_every, FaultKind::Stall),
            (r.spike_every, FaultKind::Spike),
            (r.client_pause_every, FaultKind::ClientPause),
            (r.client_crash_every, FaultKind::ClientCrash),
            (r.client_close_every, FaultKind::ClientClose),
        ];
        for (every, kind) in kinds {
            if every > 0 {
                let at = self.now + self.fault_rng.exp(every).max(1);
                self.schedule(at, Ev::Random(kind));
            }
        }
    }

    fn every(&self, k: FaultKind) -> u64 {
        let r = &self.params.random;
        match k {
            FaultKind::Partition => r.partition_every,
            FaultKind::Clog => r.clog_every,
            FaultKind::Swizzle => r.swizzle_every,
            FaultKind::Reset => r.reset_every,
            FaultKind::ClientReset => r.client_reset_every,
            FaultKind::Crash => r.crash_every,
            FaultKind::Pause => r.pause_every,
            FaultKind::Stall => r.stall_every,
            FaultKind::Spike => r.spike_every,
            FaultKind::ClientPause => r.client_pause_every,
            FaultKind::ClientCrash => r.client_crash_every,
            FaultKind::ClientClose => r.client_close_every,
        }
    }

    fn random_fault(&mut self, kind: FaultKind) {
        if self.now >= self.fault_end {
            return;
        }
        let next = self.now + self.fault_rng.exp(self.every(kind)).max(1);
        if next < self.fault_end {
            self.schedule(next, Ev::Random(kind));
        }
        let action = self.draw_fault(kind);
        // what the seed drew, exactly: `shrink` replays it as a schedule, one lane per kind
        self.drawn.push(FaultStep {
            at_ms: self.now,
            lane: Some(kind as usize),
            action: action.clone(),
        });
        self.do_fault(action);
    }

    /// A fault of this kind, drawn from the fault stream (targets, shapes, lengths), as a
    /// concrete action.
    fn draw_fault(&mut self, kind: FaultKind) -> FaultAction {
        let r = self.params.random.clone();
        let ids = self.servers.clone();
        let up: Vec<ServerId> = ids.iter().copied().filter(|i| self.nodes[i].up()).collect();
        match kind {
            FaultKind::Partition => {
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
                        format!("isolate n{}", shuffled[0])
                    }
                    1 => {
                        let k = self.fault_rng.range(1, ids.len() as u64 - 1) as usize;
                        for (j, i) in shuffled.iter().enumerate() {
                            sides.push((*i, if j < k { 0b10 } else { 0b01 }));
                        }
                        format!("split {:?} | {:?}", &shuffled[..k], &shuffled[k..])
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
                            "bridge n{} between {:?} and {:?}",
                            shuffled[0],
                            &shuffled[1..=k.min(shuffled.len() - 1)],
                            &shuffled[(k + 1).min(shuffled.len())..]
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
                        if outbound {
                            format!("one-way: n{x} cannot send")
                        } else {
                            format!("one-way: n{x} cannot hear")
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
            FaultKind::Clog => {
                let a = ids[self.fault_rng.below(ids.len())];
                let b = ids[self.fault_rng.below(ids.len())];
                if a == b {
                    return FaultAction::Nothing;
                }
                let ms = self.fault_rng.exp(r.clog_len).max(10);
                FaultAction::Clog { from: a, to: b, ms }
            }
            FaultKind::Swizzle => {
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
            FaultKind::Reset => {
                let a = ids[self.fault_rng.below(ids.len())];
                let b = ids[self.fault_rng.below(ids.len())];
                if a == b {
                    return FaultAction::Nothing;
                }
                let election = self.fault_rng.chance(0.5);
                FaultAction::ResetLink { a, b, election }
            }
            FaultKind::ClientReset => {
                let conns: Vec<ConnId> = self.conns.keys().copied().collect();
                match self.fault_rng.pick(&conns) {
                    Some(&conn) => FaultAction::ResetConn { conn },
                    None => FaultAction::Nothing,
                }
            }
            FaultKind::Crash => match self.fault_rng.pick(&up) {
                Some(&id) => {
                    let ms = self.fault_rng.exp(r.down_len).max(10);
                    FaultAction::CrashFor { id, ms }
                }
                None => FaultAction::Nothing,
            },
            FaultKind::Pause | FaultKind::Stall => {
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
            FaultKind::Spike => {
                let id = ids[self.fault_rng.below(ids.len())];
                let ms = self.fault_rng.exp(r.spike_len).max(10);
                let extra = self.fault_rng.range(20, 800);
                FaultAction::Slow { id, extra, ms }
            }
            FaultKind::ClientPause => {
                let c = self.fault_rng.below(self.clients.len());
                let ms = self.fault_rng.exp(r.client_pause_len).max(10);
                FaultAction::PauseClient {
                    target: ClientTarget::Index(c),
                    ms,
                }
            }
            FaultKind::ClientCrash => {
                let client = self.fault_rng.below(self.clients.len());
                if self.clients[client].dead {
                    return FaultAction::Nothing;
                }
                let ms = self.fault_rng.range(2_000, 10_000);
                FaultAction::CrashClientFor { client, ms }
            }
            FaultKind::ClientClose => {
                let client = self.fault_rng.below(self.clients.len());
                FaultAction::CloseSession { client }
            }
        }
    }

    fn clog(&mut self, a: ServerId, b: ServerId, len: u64) {
        self.log(Who::Net, "", format_args!("clog n{a}->n{b} for {len}ms"));
        self.net.clogs.insert((a, b), self.now + len);
        self.schedule(self.now + len, Ev::Unclog { from: a, to: b });
        self.topology_changed();
    }

    fn begin_partition(&mut self, desc: String, len: Option<u64>) {
        self.net.partition_id += 1;
        self.net.partition_since = Some(self.now);
        self.net.partition_desc = desc.clone();
        self.log(
            Who::Net,
            "",
            format_args!(
                "PARTITION {desc}{}",
                len.map(|l| format!(" for {l}ms")).unwrap_or_default()
            ),
        );
        if let Some(l) = len {
            let id = self.net.partition_id;
            self.schedule(self.now + l, Ev::HealPartition { id });
        }
        self.topology_changed();
    }

    fn flap(&mut self) {
        if self.now >= self.net.flap_until {
            return;
        }
        let ids = self.servers.clone();
        let a = ids[self.fault_rng.below(ids.len())];
        let b = ids[self.fault_rng.below(ids.len())];
        if a != b {
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
            let conns: Vec<ConnId> = self.conns.keys().copied().collect();
            if let Some(&c) = self.fault_rng.pick(&conns) {
                self.reset_client_conn(c, true);
            }
        }
        let next = self.now + self.fault_rng.exp(self.net.flap_every.max(1)).max(1);
        self.schedule(next, Ev::Flap);
    }

    fn leader(&self) -> Option<ServerId> {
        self.nodes
            .values()
            .filter(|n| n.up() && n.established.is_some())
            .max_by_key(|n| n.established)
            .map(|n| n.id)
    }

    fn resolve(&self, t: &Target) -> Vec<ServerId> {
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

    fn resolve_client(&self, t: &ClientTarget) -> Option<usize> {
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

    fn apply_fault(&mut self, action: FaultAction) {
        if !matches!(action, FaultAction::Nothing) {
            self.log(Who::Sim, "", format_args!("scheduled fault: {action:?}"));
        }
        self.do_fault(action);
    }

    fn do_fault(&mut self, action: FaultAction) {
        match action {
            FaultAction::Nothing => {}
            FaultAction::Partition {
                sides,
                oneway,
                ms,
                desc,
            } => {
                self.net.heal_partition();
                for (id, side) in sides {
                    self.net.sides.insert(id, side);
                }
                for cut in oneway {
                    self.net.oneway.insert(cut);
                }
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
                self.log(Who::Net, "", format_args!("swizzle-clog {subset:?}"));
                for (a, b, len) in clogs {
                    self.net.clogs.insert((a, b), self.now + len);
                    self.schedule(self.now + len, Ev::Unclog { from: a, to: b });
                }
                self.topology_changed();
            }
            FaultAction::ResetLink { a, b, election } => {
                if !self.nodes.contains_key(&a) || !self.nodes.contains_key(&b) {
                    return;
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
                self.log(Who::Net, "", format_args!("RESET client conn {conn}"));
                self.reset_client_conn(conn, true);
            }
            FaultAction::CrashFor { id, ms } => {
                self.crash(id);
                self.schedule(self.now + ms, Ev::Restart { node: id });
            }
            FaultAction::Slow { id, extra, ms } => {
                self.log(
                    Who::Net,
                    "",
                    format_args!("latency spike on n{id}: +{extra}ms for {ms}ms"),
                );
                self.net.slow.insert(id, (self.now + ms, extra));
            }
            FaultAction::CrashClientFor { client, ms } => {
                if client < self.clients.len() {
                    self.client_crash(client, Some(ms));
                }
            }
            FaultAction::CloseSession { client } => {
                if client < self.clients.len() {
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
                self.net.heal_partition();
                for i in self.servers.clone() {
                    self.net
                        .sides
                        .insert(i, if xs.contains(&i) { 0b10 } else { 0b01 });
                }
                self.begin_partition(format!("isolate {xs:?}"), None);
            }
            FaultAction::OneWay(t) => {
                let xs = self.resolve(&t);
                self.net.heal_partition();
                for &x in &xs {
                    for i in self.servers.clone() {
                        if !xs.contains(&i) {
                            self.net.oneway.insert((x, i));
                        }
                    }
                }
                self.begin_partition(format!("one-way: {xs:?} cannot send"), None);
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
                    for p in self.servers.clone() {
                        if p != x {
                            self.break_peer_conn(x, p, QUORUM);
                            self.break_peer_conn(x, p, ELECTION);
                        }
                    }
                }
            }
            FaultAction::Flap { ms, every } => {
                self.net.flap_until = self.now + ms;
                self.net.flap_every = every;
                self.schedule(self.now, Ev::Flap);
            }
            FaultAction::Heal => {
                self.net.heal_partition();
                self.net.clogs.clear();
                self.net.flap_until = 0;
                self.unblocked();
            }
            FaultAction::PauseClient { target, ms } => match self.resolve_client(&target) {
                Some(c) => self.client_pause(c, ms),
                None => {
                    // nobody fits yet (e.g. no lock holder this instant): try again shortly
                    self.schedule(
                        self.now + 50,
                        Ev::Scheduled(FaultAction::PauseClient { target, ms }),
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
    fn heal(&mut self) {
        self.log(
            Who::Sim,
            "",
            format_args!("HEAL: fault phase over, liveness phase begins"),
        );
        self.healed_at = Some(self.now);
        self.net.heal_partition();
        self.net.clogs.clear();
        self.net.slow.clear();
        self.net.flap_until = 0;
        self.unblocked();
        for id in self.servers.clone() {
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
                self.wake_client_at(c, self.now);
            }
        }
    }

    // ---- the end --------------------------------------------------------------------------

    fn finish(&mut self) {
        let now = self.now;
        self.log(
            Who::Sim,
            "",
            format_args!("END: liveness and end-of-run checks"),
        );
        let bound = self.params.liveness_bound_ms;
        let healed = self.healed_at.unwrap_or(0);
        // a leader, and every server in the ensemble with it, converged
        let Some(leader) = self.leader() else {
            self.fail(violation(
                "liveness.no-leader",
                now,
                format!(
                    "no established leader {}ms after the faults healed",
                    now - healed
                ),
            ));
            return;
        };
        let lz = self.nodes[&leader].applied;
        for n in self.nodes.values() {
            if !n.up() {
                self.fail(violation(
                    "liveness.down",
                    now,
                    format!("n{} is down at the end", n.id),
                ));
                return;
            }
            if n.state == ServerState::Looking {
                self.fail(violation(
                    "liveness.not-converged",
                    now,
                    format!("n{} still LOOKING {}ms after healing", n.id, now - healed),
                ));
                return;
            }
        }
        let lagging: Vec<(ServerId, Zxid)> = self
            .nodes
            .values()
            .filter(|n| n.applied != lz)
            .map(|n| (n.id, n.applied))
            .collect();
        if !lagging.is_empty() {
            self.fail(violation(
                "liveness.not-converged",
                now,
                format!("leader n{leader} applied through {lz} but {lagging:?} differ at the end"),
            ));
            return;
        }
        // every request ends; every live client has a session
        for c in &self.clients {
            if let Some(t) = c.oldest_pending()
                && now - t > bound
            {
                self.fail(violation(
                    "liveness.stuck-request",
                    now,
                    format!("client {} has a request outstanding since t={t}ms", c.idx),
                ));
                return;
            }
            if !c.dead && !c.is_connected() && c.paused_until.is_none() {
                self.fail(violation(
                    "liveness.no-session",
                    now,
                    format!("client {} has no connected session at the end", c.idx),
                ));
                return;
            }
        }
        if let Err(v) = self.end_checks() {
            self.fail(v);
        }
        if let Err(v) = self.scenario_claims() {
            self.fail(v);
        }
        if let Some(exp) = self.params.expect_violation.clone()
            && self.expected_seen.is_none()
            && self.violation.is_none()
        {
            self.fail(violation(
                "scenario.expected-finding",
                now,
                format!("the scenario expects `{exp}` to be violated, and it was not"),
            ));
        }
    }

    fn end_checks(&mut self) -> Result<(), Violation> {
        let now = self.now;
        let r = &self.reference;
        // sessions the clients were told expired: closed in the history, ephemerals gone
        for (s, at) in &self.shared.expired {
            if !r.sessions_closed.contains_key(s) && r.sessions_created.contains_key(s) {
                return Err(violation(
                    "client.ephemeral-lifetime",
                    now,
                    format!(
                        "session 0x{s:x} was reported expired at t={at}ms but was never closed in the committed history"
                    ),
                ));
            }
            let left = r.tree().session_ephemerals(*s);
            if !left.is_empty() {
                return Err(violation(
                    "client.ephemeral-lifetime",
                    now,
                    format!(
                        "session 0x{s:x} expired at t={at}ms but its ephemerals remain: {left:?}"
                    ),
                ));
            }
        }
        // recipes
        if let Some(v) = &self.shared.name_violation {
            return Err(violation("recipe.duplicate-name", now, v.clone()));
        }
        let last = r.last;
        for name in self.shared.names.keys() {
            if r.node_at(name, last).is_none() {
                return Err(violation(
                    "recipe.name-lost",
                    now,
                    format!("name {name} was given out but is gone from the final tree"),
                ));
            }
        }
        for c in &self.clients {
            use crate::client::RoleState;
            if let RoleState::Monitor(w) | RoleState::ConfigReader(w) = &c.role {
                let path = if matches!(c.role, RoleState::Monitor(_)) {
                    "/members"
                } else {
                    "/config"
                };
                let req = if matches!(c.role, RoleState::Monitor(_)) {
                    Request::GetChildren {
                        path: path.into(),
                        watch: false,
                    }
                } else {
                    Request::GetData {
                        path: path.into(),
                        watch: false,
                    }
                };
                let want = r.expected_read(&req, last);
                if want.is_some() && w.view != want {
                    let claim = if matches!(c.role, RoleState::Monitor(_)) {
                        "recipe.membership-view"
                    } else {
                        "recipe.config-stale"
                    };
                    return Err(violation(
                        claim,
                        now,
                        format!(
                            "client {} ends with view {:?} (read at {}), but {path} is {:?} at {last}",
                            c.idx,
                            w.view,
                            Zxid(w.view_zxid as u64),
                            want
                        ),
                    ));
                }
            }
            if let RoleState::Lock(l) | RoleState::Election(l) = &c.role {
                self.stats.lock_acquisitions += l.acquisitions;
            }
        }
        // linearizability cross-check by search on small per-path histories
        if let Some(v) =
            crate::wgl::check_history(&self.shared.ops, &self.reference, now, &mut self.stats.wgl)
        {
            return Err(v);
        }
        Ok(())
    }

    fn scenario_claims(&self) -> Result<(), Violation> {
        let now = self.now;
        for c in &self.params.claims {
            match c.as_str() {
                "majority-commits-during-partition" if self.partition_commits == 0 => {
                    return Err(violation("cap.majority-unavailable", now, "no txn proposed during the partition was committed: the majority side did not make progress".into()));
                }
                "unavailable-without-quorum" => {
                    if self.quorum_down.is_empty() {
                        return Err(violation(
                            "scenario.setup",
                            now,
                            "a quorum of voters was never down".into(),
                        ));
                    }
                    for o in &self.shared.ops {
                        let (Some(done), Some((_, Ok(_)))) = (o.done, &o.result) else {
                            continue;
                        };
                        if !o.request.is_write() {
                            continue;
                        }
                        if let Some((s, e)) = self
                            .quorum_down
                            .iter()
                            .find(|(s, e)| *s <= o.invoked && done < *e)
                        {
                            return Err(violation(
                                "cap.available-without-quorum",
                                now,
                                format!(
                                    "client {} write {} was acknowledged at t={done}ms while a majority of voters was down (t={s}..{}ms)",
                                    o.client,
                                    short_req(&o.request),
                                    if *e == u64::MAX {
                                        "end".to_string()
                                    } else {
                                        e.to_string()
                                    }
                                ),
                            ));
                        }
                    }
                }
                "observer-loss-keeps-quorum" => {
                    let during: Vec<&(u64, u32, ServerId)> = self
                        .establishments
                        .iter()
                        .skip(1)
                        .filter(|(t, _, _)| *t < self.fault_end)
                        .collect();
                    if let Some((t, e, id)) = during.first() {
                        return Err(violation(
                            "cap.observer-cost-quorum",
                            now,
                            format!(
                                "a new leader (n{id}, epoch {e}) had to be established at t={t}ms while only observers were faulted"
                            ),
                        ));
                    }
                }
                // every live server is synced with the leader at the end of the liveness
                // phase: none is left out, the ensemble silently running a server short
                "all-synced" => {
                    let Some(l) = self.leader() else { continue };
                    let Some(st) = self.nodes[&l].server.as_ref().map(|s| s.status()) else {
                        continue;
                    };
                    let synced = st.synced_followers + st.synced_observers;
                    let others = self.nodes.values().filter(|n| n.id != l && n.up()).count();
                    if synced < others {
                        let states: Vec<String> = self
                            .nodes
                            .values()
                            .map(|n| format!("n{} {:?}", n.id, n.state))
                            .collect();
                        return Err(violation(
                            "liveness.all-synced",
                            now,
                            format!(
                                "leader n{l} has {synced} of {others} live servers synced at the end ({})",
                                states.join(", ")
                            ),
                        ));
                    }
                }
                // the leader forced a new epoch at the end of the counter, never past it
                "zxid-rollover" => {
                    let last = |e: u32| {
                        self.proposals
                            .range(Zxid::new(e, 0)..=Zxid::new(e, u32::MAX))
                            .next_back()
                            .map(|(z, _)| z.counter())
                    };
                    let epochs: Vec<u32> = self.epoch_leaders.keys().copied().collect();
                    let ended = epochs
                        .iter()
                        .filter(|e| last(**e) == Some(u32::MAX - 2))
                        .count();
                    if let Some(z) = self.proposals.keys().find(|z| z.counter() >= u32::MAX - 1) {
                        return Err(violation(
                            "scenario.zxid-rollover",
                            now,
                            format!("txn {z} proposed at the end of the counter"),
                        ));
                    }
                    if ended == 0 {
                        return Err(violation(
                            "scenario.setup",
                            now,
                            "no epoch reached the end of the zxid counter".into(),
                        ));
                    }
                }
                "leader-change" if self.epoch_leaders.len() < 2 => {
                    return Err(violation(
                        "scenario.no-leader-change",
                        now,
                        "the scenario expected a leader change and none happened".into(),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn healed_at(&self) -> Option<u64> {
        self.healed_at
    }

    pub fn server_ids(&self) -> &[ServerId] {
        &self.servers
    }
}

fn cc_server_closed(conns: &BTreeMap<ConnId, CConn>, conn: ConnId) -> bool {
    conns.get(&conn).is_some_and(|c| c.server_closed)
}

fn chname(ch: Channel) -> &'static str {
    if ch == ELECTION { "election" } else { "quorum" }
}
