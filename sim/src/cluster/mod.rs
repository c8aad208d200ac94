//! The cluster: the servers (each the real core `Server`), their disks and clocks, and their
//! lifecycle — start, tick, the events handed to them, crash, restart, pause and stall
//! (`lifecycle`), the execution of what the core asks for (`effects`), and the client
//! processes (`clients`).

mod clients;
mod effects;
pub(crate) mod imported;
mod lifecycle;

use crate::check::{Claim, violation};
use crate::lines::EventLine;
use crate::net::Channel;
use crate::params::Params;
use crate::rng::SimRng;
use crate::scheduler::Ev;
use crate::world::{Who, World};
use ensemble_core::config::Config;
use ensemble_core::config::LearnerType;
use ensemble_core::membership::Membership;
use ensemble_core::peer::{PeerMsg, ServerState, SyncMode};
use ensemble_core::plant::Plant;
use ensemble_core::server::{Event, Recovered, Server};
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;
use ensemble_testkit::Disk;
use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};

#[derive(Default)]
pub(crate) struct Nodes(Vec<Node>);

impl Nodes {
    /// The run's servers: voters 1..=voters, then observers, each configured from the run's
    /// parameters with its own clock (offset and drift drawn from `rng`, in id order).
    pub(crate) fn for_run(params: &Params, plant: Option<Plant>, rng: &mut SimRng) -> Nodes {
        let mut members = BTreeMap::new();
        for id in 1..=params.voters {
            members.insert(id, LearnerType::Participant);
        }
        for id in params.voters + 1..=params.members() {
            members.insert(id, LearnerType::Observer);
        }
        let mut nodes = Nodes::default();
        let joiners =
            (params.members() + 1..=params.servers()).map(|id| (id, LearnerType::Participant));
        for (id, kind) in members.clone().into_iter().chain(joiners) {
            // a joiner's configuration: the first one plus itself (version 0)
            let mut members = members.clone();
            members.insert(id, kind);
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
            // and a SNAP to a learner comes in many frames (sync.partial-snap)
            c.sync_part_bytes = 128;
            c.committed_log_size = params.committed_log_size;
            c.finalize_wait_ms = (params.tick_ms).clamp(20, 200);
            c.max_notification_interval_ms = (params.tick_ms * 20).clamp(500, 5_000);
            // the reaper looks every 20 ticks (2 to 6 s), so that `liveness.reaper` judges
            // it several times in a run (ZooKeeper's default is a minute)
            c.container_check_interval_ms = if params.reaper_every_tick {
                1
            } else {
                params.tick_ms * 20
            };
            c.plant = plant;
            c.initial_zxid_counter = params.initial_zxid_counter;
            c.super_digest = Some(ensemble_core::acl::digest_id(crate::client::SUPER_AUTH));
            c.auth_providers = crate::client::PROVIDERS;
            c.sasl_super_user = Some(crate::client::SASL_SUPER.to_string());
            c.x509_super_user = Some(crate::client::X509_SUPER.to_string());
            c.enforce_quota = params.enforce_quota.for_server(id);
            c.read_only_mode = params.read_only_mode;
            c.local_sessions = params.local_sessions;
            c.local_sessions_upgrading = params.local_sessions_upgrading;
            c.reconfig_enabled = !params.reconfig_disabled;
            // `/zookeeper/config` reads as the node's does before any reconfig: the first
            // configuration's text, with the version the first leader gives it
            c.config_node = ensemble_core::membership::Membership::synthetic(&members)
                .to_text()
                .into_bytes();
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
                    stalled_heard: BTreeMap::new(),
                    quorum_stalled_until: 0,
                    quorum_held: VecDeque::new(),
                    disk: Disk::with_files(&format!("n{id}")),
                    older_disk: None,
                    lost_state: false,
                    cut_state: false,
                    heard_lost: BTreeMap::new(),
                    heard_unvouched: BTreeMap::new(),
                    clock_offset: rng.range(0, 10_000),
                    drift_ppm: rng.range(0, 2 * drift as u64) as i64 - drift,
                    state: ServerState::Looking,
                    established: None,
                    serving: false,
                    following: None,
                    snapshot_loaded: None,
                    snap_stream: Default::default(),
                    applied: Zxid::ZERO,
                    config_checked: None,
                    dynamic: None,
                    gens: BTreeMap::new(),
                    traffic: Default::default(),
                    conn_sessions: Default::default(),
                    expired_answers: Default::default(),
                    read_only: Default::default(),
                },
            );
        }
        nodes
    }

    pub(crate) fn slot(&self, id: ServerId) -> Option<usize> {
        let i = (id as usize).checked_sub(1)?;
        (i < self.0.len()).then_some(i)
    }
    /// Ids are given in order from 1.
    pub(crate) fn insert(&mut self, id: ServerId, n: Node) {
        assert_eq!(id as usize, self.0.len() + 1, "servers are numbered from 1");
        self.0.push(n);
    }
    pub(crate) fn get(&self, id: &ServerId) -> Option<&Node> {
        self.slot(*id).map(|i| &self.0[i])
    }
    pub(crate) fn get_mut(&mut self, id: &ServerId) -> Option<&mut Node> {
        self.slot(*id).map(|i| &mut self.0[i])
    }
    pub(crate) fn contains_key(&self, id: &ServerId) -> bool {
        self.slot(*id).is_some()
    }
    pub(crate) fn keys(&self) -> impl Iterator<Item = &ServerId> {
        self.0.iter().map(|n| &n.id)
    }
    pub(crate) fn values(&self) -> std::slice::Iter<'_, Node> {
        self.0.iter()
    }
}

impl std::ops::Index<&ServerId> for Nodes {
    type Output = Node;
    fn index(&self, id: &ServerId) -> &Node {
        self.get(id).expect("a server of this run")
    }
}

pub(crate) struct Node {
    pub(crate) id: ServerId,
    pub(crate) observer: bool,
    pub(crate) config: Config,
    pub(crate) server: Option<Server>,
    pub(crate) inc: u64,
    pub(crate) paused_until: Option<u64>,
    pub(crate) stalled: VecDeque<Event>,
    /// For each peer, in arrival order, whether it had lost its state when each of its
    /// notifications and FOLLOWERINFOs held in `stalled` reached this paused server:
    /// `heard_lost` takes them as they are handled.
    /// (And whether it vouched for nothing, `unvouched`, for `heard_unvouched`.)
    pub(crate) stalled_heard: BTreeMap<ServerId, VecDeque<(bool, bool)>>,
    /// Its quorum side (timer and quorum-channel connections) is stalled until then; its
    /// client port still serves. Peer disconnects that arrive meanwhile wait here.
    pub(crate) quorum_stalled_until: u64,
    pub(crate) quorum_held: VecDeque<Event>,
    pub(crate) disk: Disk,
    /// The disk as its last crash left it (kept while disk losses may put back an older
    /// copy): `disk-rollback` puts it back.
    pub(crate) older_disk: Option<Disk>,
    /// Its data dir lost what it had acknowledged or promised (wiped or put back older), and
    /// it has not written a currentEpoch since (no sync completed): the truth that
    /// `zab.lost-state-counted` holds the core's quorums to.
    pub(crate) lost_state: bool,
    /// For each peer, whether it had lost its state (`lost_state`) when it sent the last
    /// election notification or FOLLOWERINFO this server took: what a quorum it counts is
    /// judged by (a vote sent before a loss was true when sent). Taken as the message reaches
    /// this server (`deliver`), which is as good as when it was sent: in-flight messages die
    /// with the connection a crash breaks, so none outlives a loss on the wire; one that
    /// reached a paused server waits with its stamp (`stalled_heard`).
    pub(crate) heard_lost: BTreeMap<ServerId, bool>,
    /// Its recovery over storage damage the simulator injected (a misdirected write, a
    /// flipped bit, a lying fsync: `disk.damaged`), or a TRUNC made durable before the
    /// sync after it was (a crash between), cut its log short of the history its
    /// currentEpoch vouched for, and it has not written a currentEpoch since (no sync
    /// completed): it still holds what a quorum of sound voters holds (the atlas), but no
    /// longer vouches for what it acknowledged.
    pub(crate) cut_state: bool,
    /// For each peer, whether it vouched for nothing (`unvouched`) when it sent the last
    /// election notification or FOLLOWERINFO this server took, stamped as `heard_lost` is:
    /// what `election.vote-forgotten` judges a forgotten vote by.
    pub(crate) heard_unvouched: BTreeMap<ServerId, bool>,
    pub(crate) clock_offset: u64,
    pub(crate) drift_ppm: i64,
    pub(crate) state: ServerState,
    pub(crate) established: Option<u32>,
    /// Serving clients (a synced learner, an established leader), and the leader it follows.
    pub(crate) serving: bool,
    pub(crate) following: Option<ServerId>,
    /// The zxid of a snapshot it loaded whole from its leader (SNAP) in the step under way.
    pub(crate) snapshot_loaded: Option<Zxid>,
    /// What it received of its leader's streamed SNAP (sync.partial-snap).
    pub(crate) snap_stream: crate::check::SnapStream,
    pub(crate) applied: Zxid,
    /// (incarnation, `Server::membership_loads`) when its configuration in force last passed
    /// `reconfig.config-committed`: it is compared again only once either moves.
    pub(crate) config_checked: Option<(u64, u64)>,
    /// The configuration it last activated, as the node writes it (zoo.cfg.dynamic.<version>,
    /// outside the data directory): a restart starts with its members, as the node's does.
    pub(crate) dynamic: Option<Membership>,
    /// Quorum-channel connection generation per peer (bumped on every break).
    pub(crate) gens: BTreeMap<(ServerId, Channel), u64>,
    /// What each of its leader-learner links carried (`leader.learner-traffic`).
    pub(crate) traffic: crate::check::LinkTraffic,
    /// The client connections it bound to sessions (`client.connection-session`).
    pub(crate) conn_sessions: crate::check::ConnSessions,
    /// Its connections' requests and the leader's SESSIONEXPIRED refusals of those it
    /// forwarded (`client.expired-answers-refused`).
    pub(crate) expired_answers: crate::check::ExpiredAnswers,
    /// Since when it has been LOOKING by its clock (`readonly.grace`).
    pub(crate) read_only: crate::check::ReadOnlyGrace,
}

impl Node {
    /// Its data dir vouches for nothing it acknowledged, as the simulator knows it: lost
    /// (`lost_state`: wiped or put back older by `disk-loss`) or cut short of what its
    /// currentEpoch vouched for (`cut_state`), with no sync completed since.
    pub(crate) fn unvouched(&self) -> bool {
        self.lost_state || self.cut_state
    }

    pub(crate) fn local_now(&self, now: u64) -> u64 {
        // i64 whenever the product fits (a run's whole length does), i128 past that: the
        // same value either way, without a 128-bit division on every step
        let drift = match (now as i64).checked_mul(self.drift_ppm) {
            Some(p) if now <= i64::MAX as u64 => p / 1_000_000,
            _ => (now as i128 * self.drift_ppm as i128 / 1_000_000) as i64,
        };
        (self.clock_offset as i64 + now as i64 + drift).max(0) as u64
    }
    pub(crate) fn up(&self) -> bool {
        self.server.is_some()
    }
    pub(crate) fn quorum_stalled(&self, now: u64) -> bool {
        self.quorum_stalled_until > now
    }
    pub(crate) fn role(&self) -> &'static str {
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

thread_local! {
    /// The message of the last panic on this thread (set by the hook `install_panic_hook`).
    pub static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

thread_local! {
    /// Set while the core runs under `catch_unwind`: its panics become violations.
    static IN_CORE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run core code, turning its panics into an `Err` (the message is in `LAST_PANIC`).
/// `rec` with its snapshot loaded into a tree with `opts`, as the node's loader
/// (node/src/storage/fs.rs) hands it over; left as bytes when they do not load, for the core
/// to refuse itself.
fn snapshot_as_tree(mut rec: Recovered, opts: ensemble_core::tree::TreeOptions) -> Recovered {
    use ensemble_core::server::RecoveredSnapshot;
    if let Some((z, RecoveredSnapshot::Bytes(b))) = &rec.snapshot
        && let Ok(t) = ensemble_core::tree::DataTree::from_snapshot(b, opts)
    {
        ensemble_core::probe!("sim.recover.snapshot-as-tree");
        rec.snapshot = Some((*z, RecoveredSnapshot::Tree(Box::new(t))));
    }
    rec
}

pub(crate) fn in_core<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
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
    pub(crate) fn start_node(&mut self, id: ServerId) {
        let now = self.sched.now;
        // `tree.persisted-round-trip` on the snapshot it is about to load
        if let Err(v) = self.check_persisted_round_trip(id) {
            self.fail(v);
        }
        if self.nodes[&id].disk.damaged {
            // storage faults hit it: recovery over the damaged bytes, judged
            let vouched = self.nodes[&id].disk.epochs.current_epoch > 0;
            let Some(rec) = self.recover_through_damage(id) else {
                return;
            };
            if vouched && rec.epochs.current_epoch == 0 {
                // the damage cut its log short of what its currentEpoch vouched for
                self.nodes.get_mut(&id).expect("node").cut_state = true;
            }
            return self.start_from(id, rec);
        }
        let n = self.nodes.get_mut(&id).expect("node");
        let vouched = n.disk.epochs.current_epoch > 0;
        let rec = match n.disk.recover() {
            Ok(rec) if vouched && rec.epochs.current_epoch == 0 => {
                // its log read back short of what its currentEpoch vouched for (a TRUNC made
                // durable, the sync after it not yet): the recovery removed the epoch
                n.cut_state = true;
                rec
            }
            Ok(rec) => rec,
            Err(e) => {
                return self.fail(violation(
                    Claim::CoreRecover,
                    now,
                    format!("n{id}'s disk does not read back through the node's recovery: {e}"),
                ));
            }
        };
        self.start_from(id, rec)
    }

    /// The node's QuorumView::follow: a configuration activated newer than the one written
    /// is written (ZooKeeper's setQuorumVerifier(qv, writeToDisk)).
    fn persist_dynamic(&mut self, id: ServerId) {
        let n = self.nodes.get_mut(&id).expect("node");
        let Some(s) = n.server.as_ref() else { return };
        let m = s.membership();
        if n.dynamic.is_none() && !m.servers.contains_key(&id) {
            // a joiner's files keep naming it until a reconfig adds it (QuorumView::persist)
            return;
        }
        if m.version > n.dynamic.as_ref().map_or(0, |d| d.version) {
            n.dynamic = Some(m.clone());
        }
    }

    /// Start server `id` from what its disk recovered.
    fn start_from(&mut self, id: ServerId, rec: Recovered) {
        let now = self.sched.now;
        let n = self.nodes.get_mut(&id).expect("node");
        let local = n.local_now(now);
        let mut config = n.config.clone();
        if let Some(d) = &n.dynamic {
            // the node's start (node/src/config.rs): the members of the dynamic file and its
            // version (the file's name), which the core keeps in force until its tree
            // applies that configuration or a newer one
            config.members = d.roles();
            config.config_version = d.version;
            config.config_node = d.to_text().into_bytes();
        }
        // every other restart of a server (its incarnation count, which its crash and its
        // start each move; no draw) gets its snapshot as the tree the node's streaming loader
        // builds (`RecoveredSnapshot::Tree`), so the core's check of a pre-built tree's
        // options runs too
        let as_tree = n.inc % 4 == 2;
        let result = in_core(|| {
            let rec = if as_tree {
                snapshot_as_tree(rec, config.tree_options())
            } else {
                rec
            };
            Server::new(config, rec, local)
        });
        match result {
            Ok(Ok(s)) => {
                n.applied = s.tree().last_zxid();
                n.state = s.state();
                n.established = None;
                n.server = Some(s);
                n.inc += 1;
                n.conn_sessions = Default::default();
                n.expired_answers = Default::default();
                n.read_only = crate::check::ReadOnlyGrace::started(local);
                let inc = n.inc;
                let applied = n.applied;
                let warnings = std::mem::take(&mut n.disk.recovery_warnings);
                self.log(
                    Who::N(id),
                    "LOOKING",
                    format_args!("start, recovered through {applied}"),
                );
                for w in warnings {
                    self.log(Who::N(id), "LOOKING", format_args!("recovery: {w}"));
                }
                self.schedule(now + 1, Ev::Tick { node: id, inc });
                self.update_quorum();
                self.check_epoch_vouched(id);
                self.after_step(id);
            }
            Ok(Err(e)) => self.fail(violation(
                Claim::CoreRecover,
                now,
                format!("n{id} could not recover its disk: {e}"),
            )),
            Err(_) => {
                let msg = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_default();
                self.fail(violation(
                    Claim::CorePanic,
                    now,
                    format!("n{id} Server::new: {msg}"),
                ));
            }
        }
    }

    pub(crate) fn on_tick(&mut self, id: ServerId, inc: u64) {
        let now = self.sched.now;
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
    pub(crate) fn deliver(&mut self, id: ServerId, event: Event) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if !n.up() {
            return;
        }
        if n.paused_until.is_some() {
            if let Event::Peer {
                from,
                msg: PeerMsg::Notification(_) | PeerMsg::LearnerInfo { .. },
            } = &event
            {
                let heard = self
                    .nodes
                    .get(from)
                    .map_or((false, false), |s| (s.lost_state, s.unvouched()));
                let n = self.nodes.get_mut(&id).expect("node");
                n.stalled_heard.entry(*from).or_default().push_back(heard);
            }
            self.nodes
                .get_mut(&id)
                .expect("node")
                .stalled
                .push_back(event);
            return;
        }
        if matches!(event, Event::PeerDisconnected { .. }) && n.quorum_stalled(self.sched.now) {
            n.quorum_held.push_back(event);
            return;
        }
        self.handle(id, event);
    }

    pub(crate) fn handle(&mut self, id: ServerId, event: Event) {
        let now = self.sched.now;
        if let Event::Peer {
            from,
            msg: PeerMsg::Notification(_) | PeerMsg::LearnerInfo { .. },
        } = &event
        {
            let now_heard = self
                .nodes
                .get(from)
                .map_or((false, false), |n| (n.lost_state, n.unvouched()));
            if let Some(n) = self.nodes.get_mut(&id) {
                // held while paused: as it was when it arrived
                let (lost, unvouched) = n
                    .stalled_heard
                    .get_mut(from)
                    .and_then(VecDeque::pop_front)
                    .unwrap_or(now_heard);
                n.heard_lost.insert(*from, lost);
                n.heard_unvouched.insert(*from, unvouched);
            }
        }
        if !matches!(event, Event::Tick) {
            let role = self.nodes[&id].role();
            self.emit(Who::N(id), role, &EventLine(&event));
        }
        if let Event::Peer {
            from,
            msg: PeerMsg::Notification(n),
        } = &event
        {
            self.fle_took(id, *from, n);
        }
        self.fle_handover(id, &event);
        self.handover_before(id, &event);
        self.handover_taken_before(id, &event);
        self.learner_dropped_before(id, &event);
        self.follow_snap_stream(id, &event);
        // a SNAP (its first part, or the SNAP itself) or NEWLEADER from the server's leader:
        // the sync-crash fault's moment
        let sync_from = match &event {
            Event::Peer {
                from,
                msg: PeerMsg::SnapPart { offset: 0, .. },
            } if self.nodes[&id].state != ServerState::Leading => Some(*from),
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
        // a NEWEPOCH from a would-be leader not yet established: the discovery moment
        let epoch_from = match &event {
            Event::Peer {
                from,
                msg: PeerMsg::LeaderInfo { .. },
            } if self
                .nodes
                .get(from)
                .is_some_and(|l| l.established.is_none()) =>
            {
                Some(*from)
            }
            _ => None,
        };
        self.close_reason_event(id, &event);
        let counted = self.vote_counted_before(id, &event);
        let n = self.nodes.get_mut(&id).expect("node");
        let local = n.local_now(now);
        let Some(server) = n.server.as_mut() else {
            return;
        };
        // what the leader's handlers and the connections are checked against
        let was_leading = n.traffic.delivered(id, server, &event);
        n.conn_sessions.event(&event);
        n.expired_answers.event(&event);
        // (a step inside another's execution would get a fresh one; none does today)
        let mut ready = self.ready.take().unwrap_or_default();
        let r = in_core(|| server.handle_ready(local, event, &mut ready));
        if r.is_err() {
            let msg = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_default();
            self.nodes.get_mut(&id).expect("node").server = None;
            self.fail(violation(Claim::CorePanic, now, format!("n{id}: {msg}")));
            ready.clear();
            self.ready = Some(ready);
            return;
        }
        n.traffic.stepped(server, was_leading);
        // the kit's interpreter, with this world as its host (`effects.rs`)
        self.expired_unclosed.clear();
        ensemble_testkit::execute(self, id, &mut ready);
        self.ready = Some(ready);
        self.check_step_counters(id);
        self.check_expired_answers(id);
        if let Some(c) = counted {
            self.check_vote_forgotten(id, c);
        }
        // `client.expired-closed`, unless the step was cut short (the server went down)
        if let Some(&conn) = self.expired_unclosed.first()
            && self.nodes[&id].server.is_some()
            && self.violation.is_none()
        {
            self.fail(violation(
                Claim::ClientExpiredClosed,
                now,
                format!("n{id} answered conn {conn} \"session expired\" and left it open"),
            ));
        }
        self.persist_dynamic(id);
        self.after_step(id);
        self.check_read_only_grace(id);
        if self.violation.is_none()
            && let Err(v) = self.check_successor_named(id)
        {
            self.fail(v);
        }
        if self.violation.is_none()
            && let Err(v) = self.check_handover_taken(id)
        {
            self.fail(v);
        }
        if self.violation.is_none()
            && let Err(v) = self.check_learner_dropped(id)
        {
            self.fail(v);
        }
        if self.violation.is_none()
            && self.nodes[&id].server.is_some()
            && let Err(v) = self.check_snap_stream(id)
        {
            self.fail(v);
        }
        if self.violation.is_none()
            && self.nodes[&id].server.is_some()
            && let Err(v) = self.check_log_window(id)
        {
            self.fail(v);
        }
        if let Some(leader) = sync_from {
            self.sync_crash(leader, id);
        }
        if let Some(leader) = epoch_from {
            self.discovery_crash(leader, id);
        }
    }

    pub(crate) fn leader(&self) -> Option<ServerId> {
        self.nodes
            .values()
            .filter(|n| n.up() && n.established.is_some())
            .max_by_key(|n| n.established)
            .map(|n| n.id)
    }
}
