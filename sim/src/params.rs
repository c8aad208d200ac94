//! Everything one run is made of: topology, timing, network and disk behaviour, the fault
//! schedule (random rates for swarm runs, explicit steps for scenarios), the clients and the
//! claims to check. A swarm run draws these from its seed; a scenario file fixes them.

use crate::faults::FaultKind;
use crate::rng::SimRng;
use ensemble_core::txn::ServerId;

/// Mean time between faults of each kind during the fault phase, in simulated ms; 0 = off.
#[derive(Clone, Debug, Default)]
pub struct FaultRates {
    pub partition_every: u64,
    pub partition_len: u64,
    pub clog_every: u64,
    pub clog_len: u64,
    pub swizzle_every: u64,
    pub reset_every: u64,
    pub client_reset_every: u64,
    pub crash_every: u64,
    pub down_len: u64,
    pub pause_every: u64,
    pub pause_len: u64,
    /// A server's quorum side (timer, quorum connections) stalls; its client port serves.
    pub stall_every: u64,
    pub stall_len: u64,
    pub spike_every: u64,
    pub spike_len: u64,
    pub client_pause_every: u64,
    pub client_pause_len: u64,
    pub client_crash_every: u64,
    pub client_close_every: u64,
    /// Storage faults (`faults/storage.rs`): mean ms between two of each kind; 0 = off.
    pub corrupt_every: u64,
    pub misdirect_every: u64,
    pub latent_read_every: u64,
    pub lost_fsync_every: u64,
    /// A server comes back with an empty data dir, or an older copy of it (faults/disk_loss.rs).
    pub disk_loss_every: u64,
    /// How long it stays down before it comes back.
    pub disk_loss_down: u64,
    /// A durable write (append, fsync, truncation, snapshot, epoch file) fails; the server
    /// stops, as ZooKeeper exits (faults/storage.rs).
    pub write_error_every: u64,
}

impl FaultRates {
    /// The kinds that are on, by name (the run header's list).
    pub fn names(&self) -> Vec<&'static str> {
        crate::faults::active_names(self)
    }
}

/// Which server(s) a scheduled fault hits, resolved when it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Leader,
    /// The lowest-numbered voter that is up and not the leader.
    Follower,
    /// The lowest-numbered observer.
    Observer,
    Id(u64),
    /// Every crashed server.
    Crashed,
    All,
    /// A minority of the voters: with the leader in it or without.
    MinorityWithLeader,
    MinorityWithoutLeader,
    /// A majority of the voters that does not include the leader.
    MajorityWithoutLeader,
}

/// Which client(s) a scheduled client fault hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientTarget {
    LockHolder,
    Master,
    Index(usize),
    /// The first client of a role, by role name.
    Role(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    Crash(Target),
    Restart(Target),
    /// Isolate the target servers (with their links in both directions) from the rest.
    Isolate(Target),
    /// The target servers cannot send to the others; they still hear them.
    OneWay(Target),
    Pause {
        target: Target,
        ms: u64,
    },
    /// The target's quorum side (timer, quorum connections) stalls for `ms`; clients served.
    Stall {
        target: Target,
        ms: u64,
    },
    /// Break every peer connection (both channels) of the target servers.
    Reset(Target),
    /// Links flap: for `ms`, connections reset at random every ~`every` ms.
    Flap {
        ms: u64,
        every: u64,
    },
    /// Heal every partition, clog and flap.
    Heal,
    PauseClient {
        target: ClientTarget,
        ms: u64,
    },
    CrashClient(ClientTarget),
    // The concrete faults a swarm seed draws (and `shrink` writes down):
    /// A drawn fault that did nothing (two ends the same, nobody to hit).
    Nothing,
    /// Each listed server's side mask (two talk if their masks share a bit; unlisted servers
    /// talk to all), one-way cuts (from, to), healed after `ms`.
    Partition {
        sides: Vec<(ServerId, u8)>,
        oneway: Vec<(ServerId, ServerId)>,
        ms: u64,
        desc: String,
    },
    Clog {
        from: ServerId,
        to: ServerId,
        ms: u64,
    },
    /// Clogs (from, to, ms), all begun at once.
    Swizzle {
        clogs: Vec<(ServerId, ServerId, u64)>,
    },
    /// Break one connection (the election channel's or the quorum channel's).
    ResetLink {
        a: ServerId,
        b: ServerId,
        election: bool,
    },
    /// Break one client connection.
    ResetConn {
        conn: u64,
    },
    /// Crash a server and lose its data dir (`older`: put back the copy its last crash left,
    /// currentEpoch removed, as the operator of a restored copy does); it restarts after `ms`.
    DiskLoss {
        id: ServerId,
        older: bool,
        ms: u64,
    },
    /// Crash a server; it restarts after `ms`.
    CrashFor {
        id: ServerId,
        ms: u64,
    },
    /// Everything `id` sends takes `extra` ms longer, for `ms`.
    Slow {
        id: ServerId,
        extra: u64,
        ms: u64,
    },
    /// A client process dies; a new one (new session) starts after `ms`.
    CrashClientFor {
        client: usize,
        ms: u64,
    },
    /// A client closes its session.
    CloseSession {
        client: usize,
    },
    /// A storage fault on server `id`'s disk, aimed at a file of kind `file`; `draw` picks
    /// the byte, record or sector (and for `lost-fsync`, how many fsyncs lie and when the
    /// server crashes), so the action replays exactly.
    Disk {
        fault: DiskFault,
        id: ServerId,
        file: ensemble_testkit::disk_faults::FileKind,
        draw: u64,
    },
}

/// The storage fault kinds (`faults/storage.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFault {
    /// Bit flips in durable bytes of a log, snapshot or epoch file.
    Corrupt,
    /// A durable log write landed at the wrong offset or in the wrong file.
    Misdirect,
    /// A read error on a sector.
    LatentRead,
    /// Fsyncs acknowledged, not done; the server crashes soon after.
    LostFsync,
    /// The next durable write of one kind fails (an I/O error): the server stops.
    WriteError,
}

impl DiskFault {
    pub const ALL: [DiskFault; 5] = [
        DiskFault::Corrupt,
        DiskFault::Misdirect,
        DiskFault::LatentRead,
        DiskFault::LostFsync,
        DiskFault::WriteError,
    ];

    /// The name in run headers, scenario files and traces.
    pub fn name(self) -> &'static str {
        match self {
            DiskFault::Corrupt => "corrupt",
            DiskFault::Misdirect => "misdirect",
            DiskFault::LatentRead => "latent-read",
            DiskFault::LostFsync => "lost-fsync",
            DiskFault::WriteError => "write-error",
        }
    }

    pub fn from_name(s: &str) -> Option<DiskFault> {
        DiskFault::ALL.into_iter().find(|k| k.name() == s)
    }
}

#[derive(Clone, Debug)]
pub struct FaultStep {
    pub at_ms: u64,
    /// Steps of one lane run as a chain, each scheduled when the one before it fires, as a
    /// swarm seed's faults of one kind are (so a recorded schedule replays them exactly).
    /// Steps without a lane are all scheduled at the start.
    pub lane: Option<usize>,
    pub action: FaultAction,
}

/// What a client does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The swarm mix of reads, writes, multis, syncs and watches.
    Random,
    /// The swarm mix's reads only (gets, children, sync+read): most ZooKeeper clients mostly
    /// read, and a reader is never held up behind its own write.
    Reader,
    /// Ephemeral-sequential lock; `fenced` = the resource checks the lock node's zxid.
    Lock {
        fenced: bool,
    },
    /// Leader election by ephemeral-sequential nodes; the master writes with multi(check, set).
    Election,
    /// Registers an ephemeral under /members.
    Member,
    /// Watches /members and keeps a view of it.
    Monitor,
    ConfigWriter,
    ConfigReader,
    /// Takes unique names with persistent-sequential nodes.
    Naming,
    /// Adds digest identities (sometimes with requests in flight) and works in ACL'd subtrees
    /// with one-shot, persistent and persistent-recursive watches (see `acl.rs`).
    Acl,
    /// Authenticates as the super user (`superDigest`) on every connection and works on a node
    /// whose ACL grants nobody anything.
    Admin,
    /// Sets, changes and deletes quotas as zkCli does (the `/zookeeper/quota` nodes) on two
    /// disjoint subtrees and writes under them (see `quota.rs`).
    Quota,
    /// The super user reconfiguring the ensemble online (see `reconfig.rs`).
    Reconfig,
    /// Container and TTL znodes (the leader's reaper deletes them), and checkWatches,
    /// removeWatches and addWatch (see `containers.rs`).
    Containers,
}

/// One change of a scenario's reconfiguration plan (`[workload] reconfig`), as a runbook
/// writes it; `None` for a server means whoever leads when the change is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReconfigStep {
    /// `add N` / `add N observer`: a server joins (or changes role).
    Add { id: u64, observer: bool },
    /// `remove N` / `remove leader`.
    Remove { id: Option<u64> },
    /// `replace N by M` / `replace leader by M`: one change removes N and adds M as a voter.
    Replace { gone: Option<u64>, id: u64 },
    /// `members 1,2,3:observer,...`: a whole new member list (non-incremental).
    Members(Vec<(u64, bool)>),
}

impl ReconfigStep {
    /// `add 4`, `add 4 observer`, `remove 2`, `remove leader`, `replace 3 by 6`,
    /// `replace leader by 6`, `members 1,2,3,4:observer`.
    pub fn parse(s: &str) -> Result<ReconfigStep, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let id = |w: &str| -> Result<u64, String> {
            w.parse::<u64>()
                .ok()
                .filter(|i| *i >= 1)
                .ok_or_else(|| format!("`{w}` is not a server id"))
        };
        let who = |w: &str| -> Result<Option<u64>, String> {
            if w == "leader" {
                Ok(None)
            } else {
                id(w).map(Some)
            }
        };
        match words.as_slice() {
            ["add", n] => Ok(ReconfigStep::Add {
                id: id(n)?,
                observer: false,
            }),
            ["add", n, "participant"] => Ok(ReconfigStep::Add {
                id: id(n)?,
                observer: false,
            }),
            ["add", n, "observer"] => Ok(ReconfigStep::Add {
                id: id(n)?,
                observer: true,
            }),
            ["remove", n] => Ok(ReconfigStep::Remove { id: who(n)? }),
            ["replace", n, "by", m] => Ok(ReconfigStep::Replace {
                gone: who(n)?,
                id: id(m)?,
            }),
            ["members", list] => {
                let mut out = Vec::new();
                for item in list.split(',') {
                    let (n, observer) = match item.split_once(':') {
                        None => (item, false),
                        Some((n, "participant")) => (n, false),
                        Some((n, "observer")) => (n, true),
                        Some((_, r)) => return Err(format!("unknown role `{r}`")),
                    };
                    out.push((id(n)?, observer));
                }
                Ok(ReconfigStep::Members(out))
            }
            _ => Err(format!(
                "`{s}`: expected `add N [observer]`, `remove N|leader`, `replace N|leader by M` or `members 1,2,3:observer`"
            )),
        }
    }

    /// The servers it names.
    pub fn ids(&self) -> Vec<u64> {
        match self {
            ReconfigStep::Add { id, .. } => vec![*id],
            ReconfigStep::Remove { id } => id.iter().copied().collect(),
            ReconfigStep::Replace { gone, id } => gone.iter().copied().chain([*id]).collect(),
            ReconfigStep::Members(m) => m.iter().map(|(id, _)| *id).collect(),
        }
    }
}

/// Which servers enforce hard quotas (`zookeeper.enforceQuota`): whoever leads decides for
/// the txns it proposes, so a mixed ensemble must still agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnforceQuota {
    Off,
    On,
    /// Servers with an odd id enforce.
    Mixed,
}

impl EnforceQuota {
    pub fn name(self) -> &'static str {
        match self {
            EnforceQuota::Off => "off",
            EnforceQuota::On => "on",
            EnforceQuota::Mixed => "mixed",
        }
    }

    pub fn from_name(s: &str) -> Option<EnforceQuota> {
        [EnforceQuota::Off, EnforceQuota::On, EnforceQuota::Mixed]
            .into_iter()
            .find(|e| e.name() == s)
    }

    pub fn for_server(self, id: u64) -> bool {
        match self {
            EnforceQuota::Off => false,
            EnforceQuota::On => true,
            EnforceQuota::Mixed => id % 2 == 1,
        }
    }
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Random => "random",
            Role::Reader => "reader",
            Role::Lock { fenced: true } => "lock-fenced",
            Role::Lock { fenced: false } => "lock",
            Role::Election => "election",
            Role::Member => "member",
            Role::Monitor => "monitor",
            Role::ConfigWriter => "config-writer",
            Role::ConfigReader => "config-reader",
            Role::Naming => "naming",
            Role::Acl => "acl",
            Role::Admin => "admin",
            Role::Quota => "quota",
            Role::Reconfig => "reconfig",
            Role::Containers => "containers",
        }
    }

    pub fn from_name(s: &str) -> Option<Role> {
        Some(match s {
            "random" => Role::Random,
            "reader" => Role::Reader,
            "lock-fenced" => Role::Lock { fenced: true },
            "lock" => Role::Lock { fenced: false },
            "election" => Role::Election,
            "member" => Role::Member,
            "monitor" => Role::Monitor,
            "config-writer" => Role::ConfigWriter,
            "config-reader" => Role::ConfigReader,
            "naming" => Role::Naming,
            "acl" => Role::Acl,
            "admin" => Role::Admin,
            "quota" => Role::Quota,
            "reconfig" => Role::Reconfig,
            "containers" => Role::Containers,
            _ => return None,
        })
    }
}

/// Weights of the random client's operations.
#[derive(Clone, Debug)]
pub struct Mix {
    pub create: u32,
    pub set: u32,
    pub get: u32,
    pub delete: u32,
    pub multi: u32,
    pub sync_read: u32,
    pub children: u32,
    pub ephemeral: u32,
    pub sequential: u32,
    /// Chance a read registers a watch.
    pub watch: f64,
    /// Chance a write carries the version last seen (conditional write).
    pub versioned: f64,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix {
            create: 4,
            set: 6,
            get: 6,
            delete: 2,
            multi: 2,
            sync_read: 2,
            children: 2,
            ephemeral: 2,
            sequential: 1,
            watch: 0.5,
            versioned: 0.3,
        }
    }
}

/// What the heal at the end of the fault phase heals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Liveness {
    /// Everything: every server restarts, resumes, reconnects.
    #[default]
    Full,
    /// A random quorum of voters (the core) and its clients; the other servers stay crashed,
    /// partitioned, one-way deaf or stalled to the end (TigerBeetle VOPR's "core"). Clients
    /// connect to the core only; they must make progress (`liveness.core-progress`).
    Core,
}

impl Liveness {
    pub fn name(self) -> &'static str {
        match self {
            Liveness::Full => "full",
            Liveness::Core => "core",
        }
    }

    pub fn from_name(s: &str) -> Option<Liveness> {
        match s {
            "full" => Some(Liveness::Full),
            "core" => Some(Liveness::Core),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Params {
    pub name: String,
    pub voters: u64,
    pub observers: u64,
    pub tick_ms: u64,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub snap_count: u64,
    pub committed_log_size: usize,
    /// One-way network delay between servers, uniform in this range (ms).
    pub net_delay: (u64, u64),
    /// Chance a message meets a latency spike, and the spike's mean (ms).
    pub spike_prob: f64,
    pub spike_ms: u64,
    /// How long a connection survives a blocked path before TCP gives up on it.
    pub tcp_timeout_ms: u64,
    pub fsync_ms: (u64, u64),
    /// On a crash: chance that unsynced appends reached the disk anyway, and that the last
    /// record that did is torn.
    pub unsynced_survive: f64,
    pub torn_tail: f64,
    /// Chance, each time a learner takes a SNAP or a NEWLEADER, that its leader crashes right
    /// then (what the leader sent after it is lost), and half of those times the learner too,
    /// with its sync not yet fsynced: the windows of ZOOKEEPER-3642 and 4643.
    pub sync_crash: f64,
    /// Chance, each time a learner takes a NEWEPOCH from a would-be leader not yet
    /// established, that the would-be leader crashes right then (`World::discovery_crash`):
    /// an epoch accepted that no leader establishes. The swarm sets it with `sync_crash`;
    /// scenario files written before it have none.
    pub discovery_crash: f64,
    /// The zxid counter each new epoch starts after (the core's `initial_zxid_counter`): near
    /// 0xffffffff, a run reaches the counter's roll-over.
    pub initial_zxid_counter: u32,
    /// The leader's container reaper looks at every tick (`containerCheckIntervalMs` of
    /// 1 ms), not every 20 ticks: ticks, jittered, then land on every millisecond of a TTL's
    /// expiry now and then, the reaper looks exactly when a TTL node's elapsed time equals its
    /// TTL, and ZooKeeper's rule (`elapsed > ttl`, not `>=`) is judged on that millisecond
    /// (`tree.model`'s deleteContainer). The swarm sets it in some seeds with containers.
    pub reaper_every_tick: bool,
    /// Which servers enforce hard quotas.
    pub enforce_quota: EnforceQuota,
    /// `readonlymode.enabled` on every server; clients then ask canBeReadOnly.
    pub read_only_mode: bool,
    /// `localSessionsEnabled`, and `localSessionsUpgradingEnabled`.
    pub local_sessions: bool,
    pub local_sessions_upgrading: bool,
    /// Clock drift bound (parts per million) and tick lateness (% of the tick interval).
    pub drift_ppm: u64,
    pub tick_jitter_pct: u64,
    pub duration_ms: u64,
    pub fault_phase_ms: u64,
    /// After healing: a leader and a synced quorum within this bound; requests complete.
    pub liveness_bound_ms: u64,
    /// What the heal heals: everything, or a quorum core only.
    pub liveness: Liveness,
    pub random: FaultRates,
    pub schedule: Vec<FaultStep>,
    pub clients: Vec<Role>,
    pub session_timeout_ms: (u64, u64),
    pub mix: Mix,
    pub max_outstanding: usize,
    /// Clients (by index) that are asynchronous, like a multi-threaded application sharing
    /// one session: one new request a wake, up to `async_pipeline` outstanding, so requests
    /// pile up in a stalled server's socket as they do in life.
    pub async_clients: Vec<usize>,
    pub async_pipeline: usize,
    /// The random role also sends, by its own counter, the requests real clients send and
    /// the mix does not draw (null data, getEphemerals, getAllChildrenNumber, odd paths:
    /// `RandomRole::vary`). On in the swarm; off in a scenario file that does not ask for it,
    /// so that runs pinned before it keep their course.
    pub odd_requests: bool,
    pub think_ms: (u64, u64),
    pub keys: u32,
    /// Scenario claims beyond the ones every run checks.
    pub claims: Vec<String>,
    /// A claim the scenario expects to see violated (a demonstration), if any.
    pub expect_violation: Option<String>,
    /// The planted bug a scenario file names, if any (`--plant` may name it too).
    pub plant: Option<ensemble_core::plant::Plant>,
    /// The ensemble starts from a tree imported from ZooKeeper's files (`ensemble import`:
    /// a snapshot and the epochs in every dataDir) holding this many live sessions with
    /// ephemerals, whose clients (the first ones) re-attach with ZooKeeper's passwords; 0: an
    /// empty start.
    pub imported_sessions: usize,
    /// A scenario's reconfiguration plan: the `reconfig` client makes these changes in order
    /// (each retried until it commits) instead of random ones, then only reads the config.
    pub reconfig_plan: Vec<ReconfigStep>,
    /// Servers outside the first configuration (ids after the members), started with it
    /// plus themselves as ZooKeeper's documentation grows an ensemble: each finds the leader,
    /// syncs as a non-voting follower, and waits for the `reconfig` client to add it.
    pub joiners: u64,
    /// `reconfigEnabled=false` (zoo.cfg): every server refuses a reconfig as ZooKeeper 3.8
    /// does (PrepRequestProcessor, first of all: RECONFIGDISABLED) and no configuration
    /// changes; the `reconfig` client's answers are judged so (`client.write-result`).
    pub reconfig_disabled: bool,
}

impl Params {
    /// ZooKeeper-like defaults around a 3-server ensemble, no faults.
    pub fn base() -> Params {
        Params {
            name: "default".into(),
            voters: 3,
            observers: 0,
            tick_ms: 100,
            init_limit: 10,
            sync_limit: 5,
            snap_count: 500,
            committed_log_size: 200,
            net_delay: (1, 5),
            spike_prob: 0.0,
            spike_ms: 0,
            tcp_timeout_ms: 5_000,
            fsync_ms: (1, 8),
            unsynced_survive: 0.5,
            torn_tail: 0.3,
            sync_crash: 0.0,
            discovery_crash: 0.0,
            initial_zxid_counter: 0,
            reaper_every_tick: false,
            enforce_quota: EnforceQuota::Off,
            read_only_mode: false,
            local_sessions: false,
            local_sessions_upgrading: false,
            drift_ppm: 2_000,
            tick_jitter_pct: 20,
            duration_ms: 60_000,
            fault_phase_ms: 40_000,
            liveness_bound_ms: 20_000,
            liveness: Liveness::Full,
            random: FaultRates::default(),
            schedule: Vec::new(),
            clients: vec![Role::Random; 5],
            session_timeout_ms: (1_500, 4_000),
            mix: Mix::default(),
            max_outstanding: 2,
            async_clients: Vec::new(),
            async_pipeline: 8,
            odd_requests: true,
            think_ms: (100, 400),
            keys: 6,
            claims: Vec::new(),
            expect_violation: None,
            plant: None,
            imported_sessions: 0,
            reconfig_plan: Vec::new(),
            joiners: 0,
            reconfig_disabled: false,
        }
    }

    /// Swarm testing: each seed draws its own regime.
    pub fn swarm(rng: &mut SimRng) -> Params {
        let mut p = Params::base();
        p.name = "swarm".into();
        p.voters = rng.range(3, 7);
        p.observers = if rng.chance(0.5) { rng.range(0, 2) } else { 0 };
        p.tick_ms = *rng.pick(&[100, 150, 200, 300]).unwrap_or(&200);
        p.init_limit = rng.range(5, 10) as u32;
        p.sync_limit = rng.range(2, 5) as u32;
        p.snap_count = *rng.pick(&[20, 100, 1000]).unwrap_or(&100);
        p.committed_log_size = *rng.pick(&[10, 50, 500]).unwrap_or(&50) as usize;
        let lo = rng.range(1, 5);
        p.net_delay = (lo, lo + rng.range(0, 20));
        if rng.chance(0.4) {
            p.spike_prob = rng.unit() * 0.02;
            p.spike_ms = rng.range(50, 1_500);
        }
        p.tcp_timeout_ms = rng.range(1_000, 10_000);
        let flo = rng.range(0, 10);
        p.fsync_ms = (flo, flo + rng.range(0, 40));
        p.unsynced_survive = rng.unit();
        p.torn_tail = rng.unit() * 0.5;
        p.drift_ppm = rng.range(0, 5_000);
        p.tick_jitter_pct = rng.range(0, 40);
        p.duration_ms = 60_000;
        p.fault_phase_ms = rng.range(25_000, 40_000);
        p.liveness_bound_ms = 20_000 + 2 * p.init_limit as u64 * p.tick_ms;
        let tick = p.tick_ms;
        crate::faults::draw_rates(rng, tick, &mut p.random);
        let n_clients = rng.range(5, 9) as usize;
        let readers = rng.range(0, n_clients as u64 / 2) as usize;
        p.clients = vec![Role::Random; n_clients - readers];
        p.clients.extend(vec![Role::Reader; readers]);
        // short sessions (expiries, ephemerals) or the long ones deployments use (Kafka's 18 s
        // and Curator's 60 s against a 2 s tick: 9 to 20 ticks), which outlast an election
        let lo = if rng.chance(0.5) { 4 } else { rng.range(6, 12) };
        p.session_timeout_ms = (lo * tick, rng.range(lo * tick, 20 * tick));
        let m = &mut p.mix;
        m.create = rng.range(1, 8) as u32;
        m.set = rng.range(0, 8) as u32;
        m.get = rng.range(1, 8) as u32;
        m.delete = rng.range(0, 4) as u32;
        m.multi = rng.range(0, 4) as u32;
        m.sync_read = rng.range(0, 5) as u32;
        m.children = rng.range(0, 4) as u32;
        m.ephemeral = rng.range(0, 4) as u32;
        m.sequential = rng.range(0, 3) as u32;
        if rng.chance(0.4) {
            // the read-dominated load ZooKeeper is built for (the ZooKeeper paper's 10:1 and
            // more): writes a few times rarer than reads
            let scale = |w: u32| w / 3;
            m.create = scale(m.create).max(1);
            m.set = scale(m.set);
            m.delete = scale(m.delete);
            m.multi = scale(m.multi);
            m.ephemeral = scale(m.ephemeral);
            m.sequential = scale(m.sequential);
            m.get += 4;
            m.sync_read += 1;
        }
        m.watch = rng.unit();
        m.versioned = rng.unit() * 0.6;
        p.max_outstanding = rng.range(1, 3) as usize;
        let async_share = *rng.pick(&[0.0, 0.25, 0.5]).unwrap_or(&0.0);
        p.async_clients = (0..p.clients.len())
            .filter(|_| rng.chance(async_share))
            .collect();
        p.async_pipeline = rng.range(4, 12) as usize;
        // enough load to race with every fault, little enough to keep a seed cheap
        let think = rng.range(100, 400);
        p.think_ms = (think, think * rng.range(2, 5));
        p.keys = rng.range(2, 10) as u32;
        // clients with identities in ACL'd subtrees, in most seeds (drawn last, so that the
        // draws above stay what they were)
        if rng.chance(0.85) {
            let n = rng.range(1, 2) as usize;
            p.clients.extend(vec![Role::Acl; n]);
        }
        // drawn last, so the draws above stay what they were before it existed
        if rng.chance(0.5) {
            p.sync_crash = 0.05 + rng.unit() * 0.25;
        }
        // the sync-crash fault's discovery moment, at its rate (no draw of its own)
        p.discovery_crash = p.sync_crash;
        // Last, so that the draws before it are those of earlier builds.
        if rng.chance(0.3) {
            p.clients.push(Role::Admin);
        }
        // Last again: quota clients, and which servers enforce hard quotas.
        if rng.chance(0.4) {
            p.clients.push(Role::Quota);
            p.enforce_quota = *rng
                .pick(&[
                    EnforceQuota::Off,
                    EnforceQuota::On,
                    EnforceQuota::On,
                    EnforceQuota::Mixed,
                ])
                .unwrap_or(&EnforceQuota::On);
        }
        // Last again: read-only mode and local sessions (with or without upgrading).
        p.read_only_mode = rng.chance(0.35);
        if rng.chance(0.35) {
            p.local_sessions = true;
            p.local_sessions_upgrading = rng.chance(0.7);
        }
        // Last again: one seed in five heals only a quorum core, the rest left faulty.
        if rng.chance(0.2) {
            p.liveness = Liveness::Core;
        }
        // Last again: in one seed in eight, every epoch's zxid counter starts near its end, so
        // busy epochs reach the leader's roll-over guard (a new epoch before the counter
        // wraps) and the claims see what happens at the end of the counter.
        if rng.chance(0.125) {
            p.initial_zxid_counter = u32::MAX - rng.range(100, 1_500) as u32;
        }
        // Last again: in most seeds an operator reconfigures the ensemble online (grow,
        // shrink, replace, remove the leader, role flips, whole member lists), under whatever
        // faults the seed drew.
        if rng.chance(0.7) {
            p.clients.push(Role::Reconfig);
            // Storage damage is not yet judged against a changing configuration: the fault
            // atlas and the liveness checks' exclusion of servers that refused to start count
            // the initial voters (seed 13 of the first merged build: the voters of the
            // configuration in force were the ones left down). Until they follow the
            // configuration in force, a seed draws reconfiguration or storage damage.
            // `write-error` harms nothing durable (a crash) and is drawn with reconfiguration
            // too: seed 20, whose `--liveness core` heal could not elect when it was first
            // tried (two crashed servers whose recovered logs end before the configuration in
            // force), passes on the build where a restart keeps its dynamic file's
            // configuration and version (FINDINGS.md no. 18), and so do seeds 0..2000 (the
            // old failure was not read again on the old build).
            for kind in [
                FaultKind::Corrupt,
                FaultKind::Misdirect,
                FaultKind::LatentRead,
                FaultKind::LostFsync,
                FaultKind::DiskLoss,
            ] {
                (kind.spec().off)(&mut p.random);
            }
        }
        // Last again: one seed in five starts from a tree imported from ZooKeeper, its
        // sessions' clients among the first (plain random) ones.
        if rng.chance(0.2) {
            let plain = p.clients.iter().take_while(|r| **r == Role::Random).count();
            p.imported_sessions = (rng.range(1, 3) as usize).min(plain);
        }
        // Last again: one reconfiguring seed in three has a joiner, started with the others
        // before any reconfig names it (the grow path then adds a server already synced).
        if p.clients.contains(&Role::Reconfig) && rng.chance(0.33) {
            p.joiners = 1;
        }
        // Last again: in half the seeds, clients of container and TTL znodes (the leader's
        // reaper) and of the watch-only requests (checkWatches, removeWatches, addWatch).
        if rng.chance(0.5) {
            let n = rng.range(1, 2) as usize;
            p.clients.extend(vec![Role::Containers; n]);
        }
        // Last again: one reconfiguring seed in six without a joiner (one waits for a reconfig
        // to add it) runs with `reconfigEnabled=false`: every change is refused.
        if p.clients.contains(&Role::Reconfig) && p.joiners == 0 && rng.chance(1.0 / 6.0) {
            p.reconfig_disabled = true;
        }
        // Last again, with no draw of its own (from the think time drawn above, so no seed's
        // draws move): one seed with containers in three has its reaper look at every tick.
        p.reaper_every_tick =
            p.clients.contains(&Role::Containers) && p.think_ms.0.is_multiple_of(3);
        p
    }

    /// The members of the first configuration.
    pub fn members(&self) -> u64 {
        self.voters + self.observers
    }

    /// Every server of the run: the members, then the joiners.
    pub fn servers(&self) -> u64 {
        self.members() + self.joiners
    }
}
