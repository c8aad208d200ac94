//! Every claim the simulator checks, by name. A violation names exactly one of these; the
//! string of each (`zab.one-leader-per-epoch`, ...) is what runs print, what scenario files
//! name in `expect_violation`, what `Plant::claims()` lists and what FINDINGS.md cites.
//!
//! Each variant says what it asserts and where ZooKeeper or ZAB states it. The families are
//! the modules that check them: `zab`, `cap`, `client` (and `session`, `acl`, `tree`),
//! `liveness`, `recipes`, `scenario`; `core.*` is the core itself failing.

use std::fmt;
use std::str::FromStr;

macro_rules! claims {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// A claim the simulator checks (see the module documentation).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Claim {
            $($(#[$doc])* $variant,)*
        }

        impl Claim {
            /// Every claim, in the order they are defined.
            pub const ALL: &'static [Claim] = &[$(Claim::$variant,)*];

            /// The claim's name as runs print it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Claim::$variant => $name,)*
                }
            }
        }

        impl FromStr for Claim {
            type Err = UnknownClaim;
            fn from_str(s: &str) -> Result<Claim, UnknownClaim> {
                match s {
                    $($name => Ok(Claim::$variant),)*
                    _ => Err(UnknownClaim(s.to_string())),
                }
            }
        }
    };
}

claims! {
    // ---- ZAB safety (check/zab.rs): the properties of Junqueira, Reed and Serafini,
    // "Zab: High-performance broadcast for primary-backup systems" (DSN 2011), section 3.

    /// At most one server ever establishes a given epoch (ZAB's primary uniqueness: a
    /// prospective leader needs a quorum of ACKEPOCHs for a new epoch, and a quorum agrees
    /// on one leader per epoch).
    ZabOneLeaderPerEpoch => "zab.one-leader-per-epoch",
    /// A zxid names one txn everywhere it is logged (zxid = epoch << 32 | counter, assigned
    /// by the epoch's only leader).
    ZabZxidUnique => "zab.zxid-unique",
    /// Servers that applied through the same zxid have the same tree (digest); no server
    /// applies a zxid outside the committed history (ZAB agreement; ZooKeeper's digest check,
    /// ZOOKEEPER-3114).
    ZabAgreement => "zab.agreement",
    /// A txn is committed only once a quorum of voters holds it durably (ZAB broadcast: the
    /// leader commits after a quorum of ACKs, each sent after the follower's fsync).
    ZabCommitWithoutQuorum => "zab.commit-without-quorum",
    /// A server ACKs a proposal only when every txn of its history through it is durable on
    /// its disk (ZooKeeper's SyncRequestProcessor hands a proposal to SendAckRequestProcessor
    /// after the fsync, and exits when a log write or fsync fails): an ACK never vouches for a
    /// write that failed or was never fsynced (check/zab.rs, faults/write_error.rs).
    ZabAckNotDurable => "zab.ack-not-durable",
    /// Every server counted towards the quorum that promised a new epoch, the leader
    /// included, holds that acceptedEpoch durably when it is counted (ZooKeeper's
    /// Leader.getEpochToPropose and Learner.registerWithLeader write acceptedEpoch before
    /// the promise counts): a promise forgotten in a crash lets a second would-be leader
    /// count the same server for the same epoch (check/zab.rs).
    ZabEpochPromised => "zab.epoch-promised",
    /// A server establishing epoch e holds every write a client was told succeeded (ZAB
    /// integrity: a delivered txn survives leader changes).
    ZabAckedWriteLost => "zab.acked-write-lost",
    /// A server establishing epoch e holds every committed txn of earlier epochs (ZAB's
    /// primary order across epochs: the new leader's initial history includes them).
    ZabLeaderHistory => "zab.leader-history",
    /// A server's applied state never goes back without a restart (ZooKeeper's
    /// `lastProcessedZxid` is monotonic).
    ZabAppliedRegressed => "zab.applied-regressed",
    /// A server applies only txns its log (or a snapshot it holds) has: the committed
    /// history is what was logged.
    ZabAppliedUnlogged => "zab.applied-unlogged",
    /// What each server delivers is exactly the committed sequence, strictly increasing,
    /// none skipped, added or different (ZAB total order and agreement).
    ZabTotalOrder => "zab.total-order",
    /// Txns are logged in zxid order (ZAB's local primary order: a follower accepts
    /// proposals in the order the leader sent them).
    ZabLogOrder => "zab.log-order",
    /// A voter leaves LOOKING for a leader only with a quorum of voters behind it among the
    /// notifications it took: in its round, or already following or leading that leader
    /// (Fast Leader Election's termination, `check/election.rs`).
    ElectionQuorum => "election.quorum",
    /// A voter that leaves LOOKING by its own tally (as its finalize wait ends, in a tick:
    /// FLE's `termPredicate` over `recvset`) reports the backers it counted
    /// (`Action::QuorumCounted`, what `zab.lost-state-counted` judges), and they are a quorum
    /// of its configuration in force or pending, each itself or a sender whose notification,
    /// as it took it, named the leader it goes to (a LOOKING one of its round, or a FOLLOWING
    /// or LEADING one: FLE's `recvset` takes those of its round too). Decisions that
    /// count nothing are not judged: joining an established leader (a notification step),
    /// a HANDOVER (check/election.rs).
    ElectionCountedReported => "election.counted-reported",
    /// A follower serving its leader (UPTODATE taken) answers election notifications with a
    /// vote for that leader in the epoch it follows, so that a LOOKING server finds a quorum
    /// agreeing on the leader's epoch (ZooKeeper's `updateElectionVote` at UPTODATE,
    /// ZOOKEEPER-1732; `check/election.rs`).
    ElectionVoteCurrent => "election.vote-current",
    /// A LOOKING voter forgets a vote it counted in its round (FLE's `recvset`) when the
    /// sender answers from an older round only if the sender's data dir really vouches for
    /// nothing it acknowledged (wiped or put back older by the `disk-loss` fault, or cut short
    /// of what its currentEpoch vouched for by a recovery over injected storage damage) and it
    /// has not synced since: a vote that came from what the sender still holds stays counted
    /// (check/vote_forgotten.rs).
    ElectionVoteForgotten => "election.vote-forgotten",
    /// A server that takes up following or observing another breaks the quorum connection
    /// of every peer whose FOLLOWERINFO it kept, unanswered, while it could still lead (LOOKING,
    /// or a voter following a leader that may hand over to it): only a leader's role holds
    /// learners' connections, as only ZooKeeper's Leader accepts them
    /// (check/learner_dropped.rs).
    ElectionLearnerDropped => "election.learner-dropped",
    /// A server starts its election presenting a currentEpoch only over the history that
    /// epoch vouched for on its disk: the last zxid durable when the file was written, as the
    /// simulator saw it written. A recovery that reads back less (a corrupt last record, a
    /// lying fsync) must drop the epoch, since FLE ranks a vote by it before its zxid
    /// (check/vouched.rs; FINDINGS no. 23).
    ElectionEpochVouched => "election.epoch-vouched",
    /// A learner never ACKs NEWLEADER, serves, or votes with state built from a SNAP it did
    /// not get whole (the leader streams a SNAP in parts; a cut stream ends the sync): its
    /// NEWLEADER ACK and its serving come after the SNAP's last part made the total, and
    /// after a stream was cut its own vote names a zxid its disk holds (check/sync.rs).
    SyncPartialSnap => "sync.partial-snap",
    /// No quorum counts a server for state it lost: an election's backers and the
    /// FOLLOWERINFOs a new epoch is chosen above contain a quorum of voters that did not lose
    /// their data dir since they last synced (wiped, or put back older), or every voter
    /// (check/lost_state.rs; the argument is in sim/README.md, "Disk loss").
    ZabLostStateCounted => "zab.lost-state-counted",
    /// The snapshot a learner makes durable from the leader's SNAP (its parts written to disk
    /// as they came, ended by the SNAP's last bytes) is that SNAP, byte for byte: taken whole,
    /// never a part short or a stream cut (check/sync.rs).
    SyncSnapPersisted => "sync.snap-persisted",
    /// A server's in-memory log window (what a DIFF, a TRUNC or a SNAP streamed from its
    /// snapshot file is cut from) holds every txn after the newest snapshot on its disk that
    /// it applied, and at most `commitLogCount` txns that snapshot covers: bounded, and never
    /// short of what a file-streamed SNAP needs (check/sync.rs).
    SyncLogWindow => "sync.log-window",

    // ---- dynamic reconfiguration (check/zab.rs; ZooKeeper's "Dynamic Reconfiguration of
    // Primary/Backup Clusters", Shraer et al., USENIX ATC 2012)

    /// A reconfig txn is committed only once a quorum of the configuration it replaces AND a
    /// quorum of the one it brings hold it durably (every other txn needs a quorum of the
    /// configuration in force at its zxid: `zab.commit-without-quorum`).
    ReconfigCommitQuorums => "reconfig.commit-quorums",
    /// No server acts on a configuration it has not seen committed: the configuration a
    /// server has in force is the initial one or one a committed reconfig made, exactly; or
    /// the first one versioned (ZOOKEEPER-1783) with the zxid of an epoch already established.
    /// A server restarted from its dynamic file has the file's version (FINDINGS.md no. 18).
    ReconfigConfigCommitted => "reconfig.config-committed",
    /// A leader a committed reconfig removed hands over to a voter of the new configuration
    /// holding durably all it committed, and commits nothing after (check/handover.rs).
    ReconfigHandOver => "reconfig.handover",
    /// A learner that gets its leader's HANDOVER while serving it, with the reconfig applied,
    /// goes to the designated successor in that step without an election: leading if it is
    /// the one designated, else following or observing it (ZooKeeper's `updateServerState`
    /// with `reconfigFlag` set; check/handover_taken.rs).
    ReconfigHandOverTaken => "reconfig.handover-taken",
    /// A conditional reconfig is refused BadVersion only if its fromConfig differs from the
    /// version of the configuration committed when the leader took it, and made only if it
    /// is that version (the last committed reconfig's zxid; before any, the first
    /// configuration's, which an established epoch's zxid versions, never 0), judged with one
    /// leader since before the request and no other configuration committed meanwhile
    /// (check/reconfig_version.rs).
    ReconfigFromConfig => "reconfig.from-config",
    /// A reconfig is refused BadArguments only for what ZooKeeper refuses on its arguments
    /// (`PrepRequestProcessor`): a server line it cannot parse, or a result with fewer than 2
    /// voters (standaloneEnabled). A change that, read against the configuration its
    /// fromConfig names, parses and leaves 2 voters or more is never refused BadArguments
    /// (check/reconfig_arguments.rs, with the core's parser; and the reconfig role's own
    /// changes, judged by their construction apart from that parser: roles/reconfig.rs).
    ReconfigWellFormedRefused => "reconfig.well-formed-refused",
    /// A server's configuration is kept apart from `/zookeeper/config`'s data, as ZooKeeper
    /// keeps it in the dynamic file: whenever a server (re)loads it (a restart, a SNAP, a
    /// reconfig applied), it is at least as new as the last reconfig committed at or before
    /// the zxid its tree holds, whatever clients (the super user) wrote into the node since
    /// (check/zab.rs).
    ReconfigConfigApart => "reconfig.config-apart",

    // ---- the core itself

    /// An assertion inside the core failed (its invariants are the spec; TigerBeetle's
    /// style): every core panic is a finding.
    CorePanic => "core.panic",
    /// A restarted server could not recover its own disk (what the simulated disk keeps is
    /// what a real one may keep after a crash).
    CoreRecover => "core.recover",
    /// A snapshot a server wrote does not load (ZooKeeper's FileSnap must round-trip).
    CoreSnapshot => "core.snapshot",
    /// Storage faults (`corrupt`, `misdirect`, `latent-read`, `lost-fsync`) are seen, never
    /// served: a restarting server's recovery returns what was written, or what was written
    /// up to some txn (as a torn tail), or refuses to start; never a txn, snapshot or epoch
    /// that differs from what was written (`faults/storage.rs`, testkit `disk_faults.rs`).
    StorageCorruptionServed => "storage.corruption-served",

    // ---- CAP, as the seed states it (check/cap.rs, check/scenario.rs)

    /// During a partition, a txn proposed after it began commits only with a quorum on the
    /// committing side: a minority never commits (ZooKeeper is CP).
    CapMinorityCommit => "cap.minority-commit",
    /// Scenario `majority-commits-during-partition`: the majority side of a partition keeps
    /// committing.
    CapMajorityUnavailable => "cap.majority-unavailable",
    /// Scenario `unavailable-without-quorum`: no write is acknowledged while a majority of
    /// voters is down.
    CapAvailableWithoutQuorum => "cap.available-without-quorum",
    /// Scenario `observer-loss-keeps-quorum`: losing observers never costs the leader its
    /// quorum (observers do not vote; ZooKeeper's observer guide).
    CapObserverCostQuorum => "cap.observer-cost-quorum",

    // ---- client guarantees (check/client.rs; ZooKeeper Programmer's Guide, "ZooKeeper
    // consistency guarantees")

    /// An acknowledged write is the committed txn at its reply's zxid, with that txn's
    /// result.
    ClientWriteResult => "client.write-result",
    /// Writes are ordered by zxid consistently with real time (linearizable writes).
    ClientLinearizableWrites => "client.linearizable-writes",
    /// A Wing–Gong–Lowe search finds a linearization of each per-key history of plain
    /// writes and synced reads, without trusting zxids.
    ClientLinearizableWgl => "client.linearizable-wgl",
    /// A session's replies come in order and its writes commit in order (FIFO client order).
    ClientFifo => "client.fifo",
    /// No reply, across reconnects, goes back before a zxid the session has seen
    /// (`lastZxidSeen`; sequential consistency of reads).
    ClientMonotonicReads => "client.monotonic-reads",
    /// A read returns the committed state at its reply's zxid (`/zookeeper/config` may read
    /// as a committed configuration the server has in force ahead of its tree, as ZooKeeper's
    /// initConfigInZKDatabase writes it: `stored_config_form`).
    ClientReadValue => "client.read-value",
    /// After `sync`, reads reflect every write acknowledged before the sync began (a quorum
    /// round here; ZOOKEEPER-1675 in ZooKeeper).
    ClientSyncRead => "client.sync-read",
    /// A request is committed at most once.
    ClientDuplicateCommit => "client.duplicate-commit",
    /// Ephemerals vanish exactly when their session closes or expires.
    ClientEphemeralLifetime => "client.ephemeral-lifetime",
    /// A one-shot watch fires before its client can see a zxid past the change that fired
    /// it ("a client will see a watch event before it sees the new data").
    ClientWatchMissed => "client.watch-missed",
    /// A one-shot watch fires once.
    ClientWatchOnce => "client.watch-once",
    /// checkWatches and removeWatches answer `NoWatcher` exactly when the connection holds no
    /// watch of the named type on the path (ZooKeeper's `WatchManager.containsWatcher` /
    /// `removeWatcher`), judged against the watches the client holds.
    ClientWatchAnswer => "client.watch-answer",
    /// A client authenticated with the configured `superDigest` is never refused NoAuth
    /// (ZooKeeper's super user bypasses ACLs).
    ClientSuperUser => "client.super-user",
    /// No client is told `ok` for a write whose zxid is after its session's closeSession.
    ClientNoOkAfterClose => "client.no-ok-after-close",
    /// A reconnect with a session id and password gets that session back, or expiry, never
    /// another session.
    ClientSession => "client.session",
    /// A connection the server answers "session expired" (a connect response with timeout
    /// 0) is closed by the server in the same step (ZooKeeper closes it after that answer:
    /// a client that kept the socket open is not served on a dead session).
    ClientExpiredClosed => "client.expired-closed",
    /// A forwarded request the leader refused SESSIONEXPIRED (`checkSession`) is answered by
    /// the server that forwarded it with SESSIONEXPIRED, nothing else, and in its turn: once
    /// everything its connection sent before it is answered, its answer is out (or the
    /// connection closed) by the end of that step. Judged from the connection's requests and
    /// replies, the REQUEST the server forwarded and the leader's refusal naming it
    /// (check/expired_answers.rs).
    ClientExpiredAnswersRefused => "client.expired-answers-refused",
    /// A request the server cannot decode is answered as ZooKeeper 3.8 answers it, in its
    /// turn: an opcode it does not know with Unimplemented and then the connection closed,
    /// nothing else on it first (`UnimplementedRequestProcessor` sends the reply, then
    /// `sendCloseSession`); a client's deleteContainer or a create with unknown flags with
    /// BadArguments; a body that does not parse with MarshallingError, the connection kept.
    ClientRefused => "client.refused",
    /// In the committed history, no write of a session comes after its closeSession (the
    /// leader's `checkSession`).
    SessionNoWriteAfterClose => "session.no-write-after-close",
    /// A write refused SESSIONEXPIRED names a session the ensemble ended: judged for writes
    /// invoked after the heal with the run's last leader the only one since, each such
    /// refusal is of a session whose closeSession is in the committed history by the end, or
    /// whose createSession had not committed when the write was invoked (the leader's
    /// `checkSession` refuses only a session it marked closing or never tracked;
    /// check/expired.rs).
    SessionExpiredRefusal => "session.expired-refusal",
    /// A session no other server knows (`localSessionsEnabled` before its upgrade, or a
    /// read-only server's) is served only by the server that made it: a server that takes a
    /// re-attach holds the session in its committed state, or created it (ZooKeeper's
    /// LocalSessionTracker; the session id's top byte names its server).
    SessionLocalStaysHome => "session.local-stays-home",
    /// A session imported from ZooKeeper's files (`ensemble import`: live sessions come over
    /// with their timeouts and ephemerals) is re-attachable: its client, reconnecting with the
    /// session id and the password ZooKeeper gave it, is told the session expired only once
    /// some server has logged the session's closeSession (issue 17).
    SessionImportedReattach => "session.imported-reattach",
    /// A read-only server (`readonlymode.enabled`, cut off from the quorum) serves the
    /// committed prefix it had: while read-only it applies, logs, proposes, ACKs and commits
    /// nothing (ZooKeeper's ReadOnlyZooKeeperServer has no sync or commit processor).
    ReadOnlyCommittedPrefix => "readonly.committed-prefix",
    /// A server starts serving read-only only after it has been LOOKING for
    /// `max(2000, tickTime)` ms by its own clock, counted from when it last went LOOKING
    /// (QuorumPeer's wait before it starts its ReadOnlyZooKeeperServer)
    /// (check/read_only_grace.rs).
    ReadOnlyGrace => "readonly.grace",
    /// The ephemerals a server reports deleted by a closeSession (what its audit log writes
    /// an `ephemeralZNodeDeletionOnSessionCloseOrExpire` line for) are exactly the session's
    /// ephemerals in the independent model of the tree at that zxid (`DataTree.killSession`).
    SessionEphemeralsReported => "session.ephemerals-reported",
    /// For each connection a server bound to a session (it answered the handshake with that
    /// session and a timeout, and has neither closed it nor been told it closed),
    /// `Server::connection_session` is that session with that negotiated timeout; for one it
    /// has not bound yet (creating or revalidating its session) or has let go, nothing. What
    /// the node's admin commands `watches`/`watches_by_path` and 4lw `wchc`/`wchp` print as
    /// each watch's session (check/conn_session.rs).
    ClientConnectionSession => "client.connection-session",
    /// A server closes a client's connection bound to a session only for a reason the world
    /// can name: the connection's own request or handshake (malformed, refused, throttled,
    /// unauthorised, its client's close), a close its client asked for earlier on it, the
    /// session's closeSession applied on that server (closed or expired), the server leaving
    /// service (role change, LOOKING, read-only mode ending), a handshake naming the session
    /// since (the client moved), or the session's timeout passed since the connection was
    /// last heard (a local session's expiry) (check/close_reason.rs).
    ClientCloseReason => "client.close-reason",
    /// A leader's per-learner counters (ZooKeeper's LearnerHandler statistics, the admin
    /// `observers` command: packets received and sent, requests, last zxid) are what the
    /// simulated network carried on that link during that handler's life: the non-election
    /// packets the leader's core emitted to the learner (SNAP data streamed from the file is
    /// no packet, as in ZooKeeper), those from it the leader's core took, the REQUESTs among
    /// them, and the zxid of the last sent packet carrying one. A handler's life starts at
    /// the FOLLOWERINFO/OBSERVERINFO that made it. And `mntr`'s learner counts
    /// (`zk_learners`, `zk_synced_followers`, `zk_synced_observers`) are that listing counted
    /// again, synced learners by their role in the configuration in force
    /// (check/learner_traffic.rs).
    LeaderLearnerTraffic => "leader.learner-traffic",
    /// What a leader sends each learner fits the role its FOLLOWERINFO/OBSERVERINFO declared
    /// and its handler's phase: PROPOSALs only to followers, INFORMs only to observers
    /// (Leader.sendPacket / sendObserverPacket), nothing but LEADERINFO before its DIFF/TRUNC/
    /// SNAP (a LearnerHandler is added to those sets only as its sync is queued)
    /// (check/learner_traffic.rs).
    LeaderPacketsByRole => "leader.packets-by-role",
    /// A core observing a foreign leader (`ensemble zk-observe`; `ensemble-sim foreign`)
    /// answers each read (getData, exists, getChildren) with the leader's state at the zxid
    /// of the reply, and those zxids never go back for a client: its reads are a prefix of the
    /// history the leader resolved.
    ForeignReadPrefix => "foreign.read-prefix",
    /// On a core observing a foreign leader, a watch fires exactly once, for the first change
    /// after the read that set it, before its client reads anything at or past that change
    /// (one the client may not READ spends it silently, as ZooKeeper 3.8.4+ does).
    ForeignWatchOnce => "foreign.watch-once",
    /// On a core observing a foreign leader, no client reads a znode or hears of its change
    /// unless its ids may READ it (the core's own ACL checks over the leader's resolved txns).
    ForeignAcl => "foreign.acl",
    /// A core observing a foreign leader serves under the configuration the leader's history
    /// holds at what it applied (ZooKeeper's reconfig txn is a setData of /zookeeper/config):
    /// its membership (version and members, 4lw `conf`) is that text's.
    ForeignMembership => "foreign.membership",
    /// A core observing a foreign leader, handed a multi whose record does not fit its tree
    /// (a diverged replica: the driver's stand-in leader appends a delete of a node that
    /// never existed), applies none of it: every znode is as the leader's history holds it
    /// just before that txn. A multi is atomic to its clients (ZooKeeper's programmer's
    /// guide); the runtime then drops the replica and syncs again.
    ForeignDivergentRefused => "foreign.divergent-refused",
    /// A write a core observing a foreign leader forwarded is answered what the leader's own
    /// tree answered it (ZooKeeper's observer answers from the txn the leader resolved: the
    /// created path, the new stat, each multi result, the error code).
    ForeignWriteReply => "foreign.write-reply",
    /// An independent model of the data tree, replaying every committed txn by ZooKeeper's
    /// rules, agrees with the reference tree (a tree bug all servers share).
    TreeModel => "tree.model",
    /// Every snapshot a server loads (at a restart, from a SNAP) and every server's last one
    /// at the end of the run, taken node by node with its full stat, data and ACL
    /// (`DataTree::persisted_nodes`, what `ensemble export` writes as ZooKeeper's snapshot)
    /// and built back (`DataTree::from_persisted`, what `ensemble import` builds from
    /// ZooKeeper's), is the same snapshot byte for byte, with the same digest.
    TreePersistedRoundTrip => "tree.persisted-round-trip",
    /// At the end of a run, every running server's tree passes its own recount (child
    /// counts, ACL references, ephemeral/container/TTL indexes, data size, digests:
    /// `DataTree::check_consistency`) and its watch counters match its watches (what mntr
    /// reports: `WatchManager::check_counts`). Bookkeeping no reply shows until it is wrong.
    TreeConsistent => "tree.consistent",

    // ---- Quotas (check/quota.rs): ZooKeeper's quota upkeep (DataTree.updateQuotaStat,
    // PrepRequestProcessor.checkQuota).

    /// A quota's `zookeeper_stats` node holds the count and bytes of the znodes at and under
    /// its path, kept as they change from the moment it was created under its limits.
    QuotaStats => "quota.stats",
    /// A write the leader proposed under `enforceQuota` never takes a quota'd subtree past its
    /// `countHardLimit` or `byteHardLimit`, and a write is refused with QuotaExceeded only
    /// when enforced and only when it would.
    QuotaHardLimit => "quota.hard-limit",
    /// Every successful read or write, and every watch event a client gets, was allowed by
    /// the znode's ACL for the identities the client had added (ZooKeeper's ACL checks).
    AclNoUnauthorizedAccess => "acl.no-unauthorized-access",
    /// A request refused NoAuth was not allowed for the identities its client added before
    /// sending it (ZooKeeper applies `addAuth` on arrival).
    AclAuthNotApplied => "acl.auth-not-applied",
    /// getACL shows the znode's ACL and Stat, its digests masked (`user:x`) exactly when the
    /// client may not ADMIN it; a create's `auth` id stores the client's authenticated ids
    /// (ZooKeeper's FinalRequestProcessor and PrepRequestProcessor.fixupACL).
    AclShown => "acl.shown",

    // ---- liveness after the faults heal (check/liveness.rs)

    /// An established leader exists at the end.
    LivenessNoLeader => "liveness.no-leader",
    /// Every server is up at the end.
    LivenessDown => "liveness.down",
    /// Every server left LOOKING and applied what the leader applied.
    LivenessNotConverged => "liveness.not-converged",
    /// No request stays outstanding longer than the liveness bound.
    LivenessStuckRequest => "liveness.stuck-request",
    /// Every live client has a connected session at the end.
    LivenessNoSession => "liveness.no-session",
    /// After the faults heal, the established leader's reaper deletes what it should: no
    /// container that had a child and has none, and no childless TTL node unchanged for
    /// longer than its TTL (by the leader's clock), stays so for two container check
    /// intervals of a leader established all along (ZooKeeper's `ContainerManager`).
    LivenessReaper => "liveness.reaper",
    /// Scenario `all-synced`: every live server is synced with the leader at the end.
    LivenessAllSynced => "liveness.all-synced",
    /// `liveness = core` (a quorum core healed, the rest left crashed, partitioned, one-way
    /// deaf or stalled): a leader among the core, every core server with it and caught up,
    /// and every live client, sent to the core, in session and answered since the heal.
    /// ZooKeeper promises progress with any quorum up and connected.
    LivenessCoreProgress => "liveness.core-progress",

    // ---- recipes (check/recipes.rs; ZooKeeper's "Recipes and Solutions")

    /// Lock holders never act on the guarded resource out of order (two holders at once).
    RecipeLockTwoHolders => "recipe.lock-two-holders",
    /// Master election: only the lowest candidate writes as master.
    RecipeTwoMasters => "recipe.two-masters",
    /// Naming: a sequential name is given out once.
    RecipeDuplicateName => "recipe.duplicate-name",
    /// Naming: a name given out stays in the tree.
    RecipeNameLost => "recipe.name-lost",
    /// Group membership: a monitor ends with the current member list.
    RecipeMembershipView => "recipe.membership-view",
    /// Configuration: a config reader ends with the current configuration.
    RecipeConfigStale => "recipe.config-stale",

    // ---- scenario files (check/scenario.rs)

    /// The scenario names an `expect_violation` that the run did not show.
    ScenarioExpectedFinding => "scenario.expected-finding",
    /// The scenario's setup did not happen (e.g. a quorum was never down), so its claim
    /// says nothing.
    ScenarioSetup => "scenario.setup",
    /// Scenario `zxid-rollover`: a leader forces a new epoch at the end of the zxid
    /// counter and never proposes past it (ZOOKEEPER-1277).
    ScenarioZxidRollover => "scenario.zxid-rollover",
    /// Scenario `leader-change`: the leader changed.
    ScenarioNoLeaderChange => "scenario.no-leader-change",
}

impl Claim {
    /// Whether the claim is judged only at the end of a run (or, for `cap.*`, needs a
    /// partition to run its course), so that a reproduction must run to its end: `shrink`
    /// then keeps the whole fault phase.
    pub fn judged_at_end(self) -> bool {
        use Claim::*;
        match self {
            LivenessNoLeader | LivenessDown | LivenessNotConverged | LivenessStuckRequest
            | LivenessNoSession | LivenessAllSynced | LivenessCoreProgress | LivenessReaper => true,
            ScenarioExpectedFinding
            | ScenarioSetup
            | ScenarioZxidRollover
            | ScenarioNoLeaderChange => true,
            RecipeNameLost | RecipeMembershipView | RecipeConfigStale => true,
            ClientLinearizableWgl => true,
            CapMinorityCommit
            | CapMajorityUnavailable
            | CapAvailableWithoutQuorum
            | CapObserverCostQuorum => true,
            ZabOneLeaderPerEpoch
            | ZabZxidUnique
            | ZabAgreement
            | ZabCommitWithoutQuorum
            | ZabAckNotDurable
            | ZabEpochPromised
            | ZabAckedWriteLost
            | ZabLeaderHistory
            | ZabAppliedRegressed
            | ZabAppliedUnlogged
            | ZabTotalOrder
            | ZabLogOrder
            | ElectionQuorum
            | ElectionCountedReported
            | ElectionVoteCurrent
            | ElectionEpochVouched
            | SyncPartialSnap
            | ZabLostStateCounted
            | SyncSnapPersisted
            | SyncLogWindow
            | ReconfigCommitQuorums
            | ReconfigConfigCommitted
            | ReconfigHandOver
            | ReconfigHandOverTaken
            | ReconfigFromConfig
            | ReconfigConfigApart
            | CorePanic
            | CoreRecover
            | CoreSnapshot
            | StorageCorruptionServed
            | ClientWriteResult
            | ClientLinearizableWrites
            | ClientFifo
            | ClientMonotonicReads
            | ClientReadValue
            | ClientSyncRead
            | ClientDuplicateCommit
            | ClientEphemeralLifetime
            | ClientWatchMissed
            | ClientWatchOnce
            | ClientWatchAnswer
            | ClientSuperUser
            | ClientNoOkAfterClose
            | ClientSession
            | ClientExpiredClosed
            | ClientExpiredAnswersRefused
            | ClientRefused
            | SessionNoWriteAfterClose
            | SessionExpiredRefusal
            | SessionLocalStaysHome
            | SessionImportedReattach
            | ReadOnlyCommittedPrefix
            | ReadOnlyGrace
            | SessionEphemeralsReported
            | ClientConnectionSession
            | ClientCloseReason
            | ReconfigWellFormedRefused
            | ElectionVoteForgotten
            | ElectionLearnerDropped
            | LeaderLearnerTraffic
            | LeaderPacketsByRole
            | ForeignReadPrefix
            | ForeignWatchOnce
            | ForeignAcl
            | ForeignMembership
            | ForeignDivergentRefused
            | ForeignWriteReply
            | TreeModel
            | TreePersistedRoundTrip
            | TreeConsistent
            | QuotaStats
            | QuotaHardLimit
            | AclNoUnauthorizedAccess
            | AclAuthNotApplied
            | AclShown
            | RecipeLockTwoHolders
            | RecipeTwoMasters
            | RecipeDuplicateName => false,
        }
    }
}

/// A name that is no claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown claim `{0}`")]
pub struct UnknownClaim(pub String);

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Claim {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Claim {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_core::plant::Plant;

    #[test]
    fn every_claim_round_trips_through_its_name() {
        for &c in Claim::ALL {
            assert_eq!(c.as_str().parse::<Claim>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        let mut names: Vec<&str> = Claim::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Claim::ALL.len(), "two claims share a name");
        assert!("zab.no-such-claim".parse::<Claim>().is_err());
    }

    #[test]
    fn every_plant_names_claims_that_exist() {
        for p in Plant::ALL {
            assert!(!p.claims().is_empty(), "plant {} names no claim", p.name());
            for name in p.claims() {
                assert!(
                    name.parse::<Claim>().is_ok(),
                    "plant {} names `{name}`, which is no claim",
                    p.name()
                );
            }
        }
    }
}
