//! Planted bugs: deliberate protocol faults that prove the simulator's checkers can fail.
//! Compiled in only with the `plants` feature (the simulator's default); the node never has it,
//! and without the feature [`active`] is the constant `false`, so the branches vanish.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Plant {
    /// The leader commits a proposal before a quorum has ACKed it.
    CommitBeforeQuorum,
    /// A follower ACKs a proposal before it is durable (like ZOOKEEPER-3911).
    AckBeforeDurable,
    /// The leader sends DIFF where TRUNC is needed (like ZOOKEEPER-1154).
    DiffInsteadOfTrunc,
    /// Votes are ordered by the zxid counter and server id only, ignoring epochs, and the
    /// leader trusts its election (no ACKEPOCH check that a follower is ahead).
    VoteIgnoresEpoch,
    /// Closing or expiring a session leaves its ephemerals behind.
    EphemeralSurvivesExpiry,
    /// `sync` is answered without the leader's quorum round, as ZooKeeper answers it
    /// (ZOOKEEPER-1675): a learner's once the proposals outstanding commit, the leader's own
    /// client's at once. Wrong only on a leader deposed without knowing it yet.
    SyncWithoutQuorum,
    /// Some watch triggers are dropped.
    LostWatch,
    /// The leader proposes a write of a session it has marked closing or no longer tracks
    /// (no checkSession): writes land after the session's closeSession.
    WriteAfterClose,
    /// Watch events go to connections that may not READ the znode (CVE-2024-23944: ZooKeeper
    /// before 3.9.2 sent persistent-watch events without the READ check).
    WatchIgnoresAcl,
    /// Deleting a child also counts as a creation in the parent's cversion (a data tree bug
    /// every server shares, so only a model of the tree written apart can see it).
    TreeCversionSkew,
    /// ZOOKEEPER-2845: a learner leaving its role keeps its in-memory database, which holds
    /// only what it applied, while its log holds more (txns logged, never committed). It tells
    /// the next leader its applied zxid, is sent a DIFF from there, and forgets the logged
    /// tail in memory without truncating it: after a restart the log replays the stale txns.
    Zk2845RetainedDbBehindLog,
    /// ZOOKEEPER-3911: the txns of the sync (and proposals before UPTODATE) are logged only
    /// at UPTODATE, but NEWLEADER is ACKed (and currentEpoch written) as soon as it comes.
    Zk3911AckNewLeaderBeforeLogged,
    /// ZOOKEEPER-4643: currentEpoch is written as NEWLEADER arrives, before the synced history
    /// is durable (the ACK still waits for it): a crash leaves a new epoch over an old log,
    /// whose vote then beats servers holding txns it lost.
    Zk4643EpochBeforeHistory,
    /// ZOOKEEPER-4646: NEWLEADER is ACKed while the sync's txns are written but not yet
    /// fsynced (the follower logs them asynchronously).
    Zk4646AckNewLeaderBeforeFsync,
    /// ZOOKEEPER-4785: NEWLEADER is ACKed once the committed part of the DIFF is durable,
    /// while the leader's uncommitted tail that came with it is still being logged.
    Zk4785AckNewLeaderBeforeTail,
    /// ZOOKEEPER-4712: a follower's sync thread is not stopped when it leaves following, and
    /// the in-memory database is fast-forwarded from the log before it stops: memory forgets
    /// the txns still queued (not yet durable) while the thread goes on writing them, so the
    /// next leader DIFFs from below what the log ends up holding.
    Zk4712SyncThreadSurvives,
    /// ZOOKEEPER-3642: a SNAP is held in memory only until NEWLEADER; a leader crash in
    /// between leaves the learner serving the leader's state over its old disk, and the next
    /// leader DIFFs from the snapshot's zxid.
    Zk3642SnapNotPersisted,
    /// The leader proposes past counter 0xffffffff instead of forcing a new epoch: the zxid
    /// wraps into the next epoch's space (ZooKeeper's `Leader.propose` throws
    /// XidRolloverException and re-elects first).
    ZxidRolloverUnguarded,
    /// `addauth digest` with the configured super digest does not make the super user.
    SuperDigestIgnored,
    /// A SASL identity the runtime established is recorded as the principal named `super`,
    /// whom ZooKeeper's SASLAuthenticationProvider lets match every `sasl` ACL.
    SaslIdentityAsSuper,
    /// A hard quota lets one more znode or byte in than its limit (`current > limit + 1`):
    /// an enforced write takes a subtree past its hard limit.
    QuotaHardLimitOffByOne,
    /// The leader sends NEWLEADER right after a streamed SNAP's first part (pipelining the
    /// handshake) and the learner takes it with the SNAP unfinished: it ACKs NEWLEADER, and is
    /// counted as synced, holding its old state; the rest of the SNAP is ignored.
    SnapNewLeaderMidStream,
    /// A read-only server serves its whole log, the uncommitted tail too (as a restarted
    /// ZooKeeper replays its log into memory before it knows what was committed).
    ReadOnlyServesUncommitted,
    /// A server takes the re-attach of a session it does not know as a local session of its
    /// own, without asking the leader: another server's local (or read-only) session, or an
    /// expired one, comes back to life here.
    LocalSessionRoams,
    /// A reconfig pending counts only the new configuration's quorum (the old one forgotten as
    /// soon as the change is logged): a change commits with the new quorum's ACKs alone.
    ReconfigNewQuorumOnly,
    /// A follower keeps following a leader it has not heard from past syncLimit, as long as
    /// the connection stays open (ZooKeeper's learner reads with a syncLimit socket timeout).
    /// A leader whose quorum side is stuck with its connections open then holds its followers
    /// for good; healed, it lets them go, so only a heal that leaves it stuck shows it.
    FollowerIgnoresSyncLimit,
    /// The ephemerals a closeSession deleted are reported without the last of them (the
    /// audit log would miss its deletion line).
    EphemeralsMisreported,
    /// The storage crate reads a txn log record without checking its CRC: a flipped bit in
    /// a durable record is decoded and served (or replayed) as if it were what was written.
    LogChecksumSkipped,
    /// The storage crate checks a txn log record's checksum but not the offset its sum names:
    /// a record that a misdirected write put on the previous record's slot reads as valid,
    /// and the log is served one txn short.
    LogRecordPlaceUnchecked,
    /// The storage crate takes a snapshot whose data fails its CRC: a flipped bit in the
    /// tree's bytes is loaded.
    SnapshotChecksumSkipped,
    /// Issue 17's bug: a re-attach is checked against Ensemble's former password derivation
    /// only, never ZooKeeper's, so a session imported from ZooKeeper's files (whose client
    /// holds the password ZooKeeper gave it) is told it expired.
    ZkPasswdRefused,
    /// `DataTree::from_persisted` (the import's way from ZooKeeper's snapshot) takes every
    /// node's cversion as 0: a converter dropping a field, so sequential names would restart.
    PersistedLosesCversion,
    /// FLE's agreement test counts every voter heard in the round, whatever it voted for (the
    /// `&&` of `has_quorum` read as `||`): a voter decides for its proposal with no quorum
    /// behind it.
    ElectionCountsAnyVote,
    /// A server whose data dir was lost (or put back older, currentEpoch removed) is counted
    /// as ZooKeeper counts it: its empty history backs an election and its forgotten
    /// acceptedEpoch chooses a new epoch, as if it were a fresh server (issue 13).
    WipedVotesAsFresh,
    /// A learner's announced vote keeps the epoch it had before UPTODATE (no
    /// updateElectionVote there, ZOOKEEPER-1732): one that had accepted the epoch from another
    /// would-be leader announces the older one, and a LOOKING server never sees a quorum agree.
    VoteEpochStale,
    /// A learner that wrote a streamed SNAP's parts to disk as they came ends the snapshot
    /// with `parts: 0`, as when a SNAP came whole: its tree in memory is the leader's, but the
    /// snapshot it made durable is only the last bytes (a restart recovers no such state).
    SnapWrittenWithoutParts,
    /// A leader streaming a SNAP from its snapshot file (older than what it applied) sends
    /// only the txns after what it applied, not those after the file's zxid: the learner
    /// misses the txns between.
    SnapFileWithoutLogTail,
    /// The first configuration takes its version (the new epoch's zxid) when the leader sends
    /// NEWLEADER, not once a quorum ACKed it (ZOOKEEPER-1783 warns against exactly this): an
    /// epoch never established names a configuration.
    FirstConfigVersionAtNewLeader,
    /// A LOOKING server keeps a FOLLOWERINFO that came early (for when it leads) after the
    /// connection it came on broke: the sender may since have crashed and lost its disk, and
    /// its stale `intact` and acceptedEpoch count in discovery (swarm seed 8742, issue 13).
    EarlyLearnerOutlivesConnection,
    /// The in-memory log window is trimmed to `commitLogCount` txns by count alone, past the
    /// newest snapshot on disk: the txns a SNAP streamed from that file needs are gone.
    LogTrimPastSnapshot,
    /// The storage crate's recovery keeps `currentEpoch` when it cuts the log's tail back
    /// below that epoch's history (a damaged last record, a lying fsync): the server still
    /// vouches, and FLE ranks its vote by that epoch above the voters holding what it lost.
    CutKeepsCurrentEpoch,
    /// `Ready::drive` goes on past a failed durable write (the error dropped, as a runtime
    /// that logs a failed fsync and carries on, PostgreSQL's "fsyncgate"): the write is not
    /// on disk, and what was ordered after it (an ACK covering it) leaves anyway.
    FailedWriteIgnored,
    /// A server restarted from a dynamic file a reconfig wrote takes the file's members at
    /// version 0 until its tree applies the reconfig (the version dropped at start): it
    /// announces, and serves in `/zookeeper/config`, a configuration no reconfig made
    /// (swarm seeds 654, 9590, issue 13).
    RestartConfigVersionDropped,
    /// A leader that a reconfig removed designates its successor among the new voters
    /// without asking whether it ACKed the reconfig (the one that ACKed least): a successor
    /// that may lack the change, and what was committed with it.
    HandOverToUnacked,
    /// A leader that a reconfig removed commits what a quorum ACKed past the reconfig before
    /// it hands over: its successor (chosen for ACKing the reconfig) may lack those txns.
    HandOverCommitsPastReconfig,
    /// The leader counts the ACK of a learner that no configuration names as a voter (a
    /// joiner syncing before the reconfig that adds it, a removed voter still following):
    /// ZooKeeper's Leader counts ACKs only per verifier, `getVotingMembers().containsKey`.
    JoinerAckCounted,
    /// The container reaper never finds a TTL node expired (its TTL test always false, as a
    /// reaper reading the TTL from the wrong field): TTL nodes stay for ever.
    TtlNeverReaped,
    /// The reaper takes a TTL node whose elapsed time equals its TTL (`>=` where ZooKeeper's
    /// `elapsed > ttl`): reaped a millisecond early, when the reaper looks exactly then.
    TtlReapedAtBoundary,
    /// The reaper takes a container that never had a child (the `cversion > 0` test
    /// dropped): a container created for a child still to come is deleted under its client.
    ContainerReapedUnused,
    /// checkWatches answers whether the connection holds any watch on the path, whatever
    /// watcher type it names.
    WatcherTypeIgnored,
    /// A setData a foreign leader resolved (an INFORM from Apache ZooKeeper, applied by
    /// `zk-observe`'s core) fires no NodeDataChanged: a client watching the node misses it.
    ResolvedSetDataUnwatched,
    /// getACL shows digest ids unmasked to a client without ADMIN on the znode (their
    /// password hashes, which ZooKeeper hides since 3.6).
    GetAclUnmasked,
    /// A would-be leader counts itself towards the quorum of its new epoch without writing
    /// that acceptedEpoch: a crash before its currentEpoch write forgets the promise.
    LeaderEpochUnpersisted,
    /// A leader removed by a reconfig names as successor only a voter that ACKed past the
    /// reconfig: when the reconfig was its last proposal there is none, and an election
    /// follows where ZooKeeper's getDesignatedLeader hands over.
    HandOverPastReconfigOnly,
    /// A request of an unknown opcode is answered Unimplemented and the connection kept open
    /// (ZooKeeper's `UnimplementedRequestProcessor` closes it after the answer).
    RefusedKeepsConnection,
    /// A reconfig a foreign leader resolved (ZooKeeper's reconfig txn, a setData of
    /// /zookeeper/config) is applied to the tree, but the core keeps the membership it had:
    /// 4lw `conf` and the members it serves under stay the old configuration's.
    ForeignConfigNotReloaded,
    /// The leader refuses some writes of a session it tracks as live (every third cxid) as
    /// SESSIONEXPIRED, as if its `checkSession` looked the session up wrong.
    ExpiredLiveSession,
    /// The leader compares a reconfig's fromConfig with the version of its first
    /// configuration, not the one in force: after a reconfig committed, every conditional
    /// change from the current version is refused BadVersion.
    ReconfigFromStaleVersion,
    /// A re-attach waiting until its server has applied what the client saw is not retried
    /// as the server applies: it stays waiting until another revalidation's sync retries it.
    RevalidateRetrySkipped,
    /// A refused request's reply carries the zxid applied when it was queued, not when it
    /// reaches the front of its queue: behind a write, the reply goes back in zxid (the
    /// behaviour before session 15's fix).
    RefusedReplyAtQueuedZxid,
    /// The leader's per-learner `requests` counter (admin `observers`) counts every packet it
    /// takes from the learner, not only its REQUESTs.
    LearnerTrafficMiscount,
    /// `Server::connection_session` names the session of a connection not bound yet (its
    /// createSession or revalidation still under way), as admin `watches` would print it.
    ConnectionSessionUnbound,
    /// A committed closeSession closes the connections of every session its creator made (the
    /// server id in the session id's top byte compared, not the whole id): live sessions'
    /// clients are cut off for another's close.
    CloseSessionClosesCreatorsSessions,
    /// An incremental reconfig's "at least 2 voters" check (standaloneEnabled) counts the
    /// voters the change's joining list names, not the resulting configuration's: a change
    /// that removes or adds one server is refused BadArguments.
    ReconfigCountsJoinersOnly,
    /// A lagging sender's counted vote is forgotten whatever the sender says of its data dir:
    /// a voter that restarted intact loses its place in the round until it votes anew.
    LaggingVoterForgotten,
    /// The configuration a server (re)loads is read from `/zookeeper/config`'s data, not kept
    /// apart (the behaviour before session 18): after the super user writes the node over a
    /// committed reconfig's text, a restarted server runs under what was written (null data
    /// or other text: the first configuration).
    ConfigFromNode,
    /// The leader's INFORMs (and observers' COMMITs) go to every synced learner, followers
    /// too, as if `observers()` took the phase alone.
    InformToFollowers,
    /// A LOOKING server starts serving read-only after half the grace period.
    ReadOnlyHalfGrace,
    /// `mntr`'s `zk_synced_followers` counts every voter's handler, synced or still syncing.
    MntrCountsSyncing,
    /// A byte quota with no byte hard limit (-1) is enforced as if -1 were a hard limit: a
    /// soft byte limit refuses every write that adds bytes (ZooKeeper only logs a soft limit).
    QuotaSoftBytesEnforced,
    /// A leader's SESSIONEXPIRED for a forwarded write refuses the connection's other
    /// forwarded writes instead of that one, which is left waiting.
    ExpiredRefusesOthers,
    /// An election decided by the server's own tally does not report the backers it
    /// counted (no `QuorumCounted`).
    ElectionBackersUnreported,
    /// A multi a foreign leader resolved whose record does not fit the observer's tree (a
    /// diverged replica) keeps the subs applied before the one that failed, as ZooKeeper's
    /// `processTxn` goes on past a failed sub: the multi is half applied, with no event.
    ResolvedMultiPartial,
    /// A create2 in a multi a foreign leader resolved is answered without its stat (as a
    /// plain create): the observer's client gets another result than the leader gave.
    ResolvedMultiCreateStatless,
    /// A learner that cannot lead in the new configuration (an observer, a removed voter
    /// staying on as a non-voting follower) takes its leader's HANDOVER as a successor that
    /// cannot lead would: it elects instead of going to the designated one.
    HandOverNonVoterElects,
    /// A LOOKING server that decides to follow another drops the FOLLOWERINFOs it kept for
    /// when it leads without breaking their connections: their senders wait on it.
    FollowerKeepsEarlyLearners,
    /// A read's path is held to `PathUtils`'s rules as a create's is (the Java client's check,
    /// not the server's): "" and other paths naming no znode answered BadArguments.
    ReadPathValidated,
    /// The server's recount of a quota's stats is written `bytes=..,count=..`: every parser
    /// reads it, only ZooKeeper's own text differs.
    StatsTextReordered,
    /// A failed multi's rollback puts back the data its subs changed but not their null
    /// marks: a quota's null stats a sub's recount rewrote read empty, not null, after it.
    RollbackForgetsNull,
}

impl Plant {
    pub const ALL: [Plant; 79] = [
        Plant::CommitBeforeQuorum,
        Plant::AckBeforeDurable,
        Plant::DiffInsteadOfTrunc,
        Plant::VoteIgnoresEpoch,
        Plant::EphemeralSurvivesExpiry,
        Plant::SyncWithoutQuorum,
        Plant::LostWatch,
        Plant::WriteAfterClose,
        Plant::WatchIgnoresAcl,
        Plant::TreeCversionSkew,
        Plant::Zk2845RetainedDbBehindLog,
        Plant::Zk3911AckNewLeaderBeforeLogged,
        Plant::Zk4643EpochBeforeHistory,
        Plant::Zk4646AckNewLeaderBeforeFsync,
        Plant::Zk4785AckNewLeaderBeforeTail,
        Plant::Zk4712SyncThreadSurvives,
        Plant::Zk3642SnapNotPersisted,
        Plant::ZxidRolloverUnguarded,
        Plant::SuperDigestIgnored,
        Plant::SaslIdentityAsSuper,
        Plant::QuotaHardLimitOffByOne,
        Plant::SnapNewLeaderMidStream,
        Plant::ReadOnlyServesUncommitted,
        Plant::LocalSessionRoams,
        Plant::ReconfigNewQuorumOnly,
        Plant::FollowerIgnoresSyncLimit,
        Plant::EphemeralsMisreported,
        Plant::LogChecksumSkipped,
        Plant::LogRecordPlaceUnchecked,
        Plant::SnapshotChecksumSkipped,
        Plant::ZkPasswdRefused,
        Plant::PersistedLosesCversion,
        Plant::ElectionCountsAnyVote,
        Plant::WipedVotesAsFresh,
        Plant::VoteEpochStale,
        Plant::SnapWrittenWithoutParts,
        Plant::SnapFileWithoutLogTail,
        Plant::FirstConfigVersionAtNewLeader,
        Plant::EarlyLearnerOutlivesConnection,
        Plant::FailedWriteIgnored,
        Plant::RestartConfigVersionDropped,
        Plant::HandOverToUnacked,
        Plant::HandOverCommitsPastReconfig,
        Plant::JoinerAckCounted,
        Plant::TtlNeverReaped,
        Plant::TtlReapedAtBoundary,
        Plant::ContainerReapedUnused,
        Plant::WatcherTypeIgnored,
        Plant::ResolvedSetDataUnwatched,
        Plant::LogTrimPastSnapshot,
        Plant::CutKeepsCurrentEpoch,
        Plant::GetAclUnmasked,
        Plant::LeaderEpochUnpersisted,
        Plant::HandOverPastReconfigOnly,
        Plant::RefusedKeepsConnection,
        Plant::ForeignConfigNotReloaded,
        Plant::ExpiredLiveSession,
        Plant::ReconfigFromStaleVersion,
        Plant::RevalidateRetrySkipped,
        Plant::RefusedReplyAtQueuedZxid,
        Plant::LearnerTrafficMiscount,
        Plant::ConnectionSessionUnbound,
        Plant::CloseSessionClosesCreatorsSessions,
        Plant::ReconfigCountsJoinersOnly,
        Plant::LaggingVoterForgotten,
        Plant::ConfigFromNode,
        Plant::InformToFollowers,
        Plant::ReadOnlyHalfGrace,
        Plant::MntrCountsSyncing,
        Plant::QuotaSoftBytesEnforced,
        Plant::ExpiredRefusesOthers,
        Plant::ElectionBackersUnreported,
        Plant::ResolvedMultiPartial,
        Plant::ResolvedMultiCreateStatless,
        Plant::HandOverNonVoterElects,
        Plant::FollowerKeepsEarlyLearners,
        Plant::ReadPathValidated,
        Plant::StatsTextReordered,
        Plant::RollbackForgetsNull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Plant::CommitBeforeQuorum => "commit-before-quorum",
            Plant::AckBeforeDurable => "ack-before-durable",
            Plant::DiffInsteadOfTrunc => "diff-instead-of-trunc",
            Plant::VoteIgnoresEpoch => "vote-ignores-epoch",
            Plant::EphemeralSurvivesExpiry => "ephemeral-survives-expiry",
            Plant::SyncWithoutQuorum => "sync-without-quorum",
            Plant::LostWatch => "lost-watch",
            Plant::WriteAfterClose => "write-after-close",
            Plant::WatchIgnoresAcl => "watch-ignores-acl",
            Plant::TreeCversionSkew => "tree-cversion-skew",
            Plant::Zk2845RetainedDbBehindLog => "zk-2845-retained-db-behind-log",
            Plant::Zk3911AckNewLeaderBeforeLogged => "zk-3911-ack-newleader-before-logged",
            Plant::Zk4643EpochBeforeHistory => "zk-4643-epoch-before-history",
            Plant::Zk4646AckNewLeaderBeforeFsync => "zk-4646-ack-newleader-before-fsync",
            Plant::Zk4785AckNewLeaderBeforeTail => "zk-4785-ack-newleader-before-tail",
            Plant::Zk4712SyncThreadSurvives => "zk-4712-sync-thread-survives",
            Plant::Zk3642SnapNotPersisted => "zk-3642-snap-not-persisted",
            Plant::ZxidRolloverUnguarded => "zxid-rollover-unguarded",
            Plant::SuperDigestIgnored => "super-digest-ignored",
            Plant::SaslIdentityAsSuper => "sasl-identity-as-super",
            Plant::QuotaHardLimitOffByOne => "quota-hard-limit-off-by-one",
            Plant::SnapNewLeaderMidStream => "snap-newleader-mid-stream",
            Plant::ReadOnlyServesUncommitted => "readonly-serves-uncommitted",
            Plant::LocalSessionRoams => "local-session-roams",
            Plant::ReconfigNewQuorumOnly => "reconfig-new-quorum-only",
            Plant::FollowerIgnoresSyncLimit => "follower-ignores-synclimit",
            Plant::EphemeralsMisreported => "ephemerals-misreported",
            Plant::LogChecksumSkipped => "log-checksum-skipped",
            Plant::LogRecordPlaceUnchecked => "log-record-place-unchecked",
            Plant::SnapshotChecksumSkipped => "snapshot-checksum-skipped",
            Plant::ZkPasswdRefused => "zk-passwd-refused",
            Plant::PersistedLosesCversion => "persisted-loses-cversion",
            Plant::ElectionCountsAnyVote => "election-counts-any-vote",
            Plant::WipedVotesAsFresh => "wiped-votes-as-fresh",
            Plant::VoteEpochStale => "vote-epoch-stale",
            Plant::SnapWrittenWithoutParts => "snap-written-without-parts",
            Plant::SnapFileWithoutLogTail => "snap-file-without-log-tail",
            Plant::FirstConfigVersionAtNewLeader => "first-config-version-at-newleader",
            Plant::EarlyLearnerOutlivesConnection => "early-learner-outlives-connection",
            Plant::FailedWriteIgnored => "failed-write-ignored",
            Plant::RestartConfigVersionDropped => "restart-config-version-dropped",
            Plant::HandOverToUnacked => "handover-to-unacked",
            Plant::HandOverCommitsPastReconfig => "handover-commits-past-reconfig",
            Plant::JoinerAckCounted => "joiner-ack-counted",
            Plant::TtlNeverReaped => "ttl-never-reaped",
            Plant::TtlReapedAtBoundary => "ttl-reaped-at-boundary",
            Plant::ContainerReapedUnused => "container-reaped-unused",
            Plant::WatcherTypeIgnored => "watcher-type-ignored",
            Plant::ResolvedSetDataUnwatched => "resolved-setdata-unwatched",
            Plant::LogTrimPastSnapshot => "log-trim-past-snapshot",
            Plant::CutKeepsCurrentEpoch => "cut-keeps-current-epoch",
            Plant::GetAclUnmasked => "getacl-unmasked",
            Plant::LeaderEpochUnpersisted => "leader-epoch-unpersisted",
            Plant::HandOverPastReconfigOnly => "handover-past-reconfig-only",
            Plant::RefusedKeepsConnection => "refused-keeps-connection",
            Plant::ForeignConfigNotReloaded => "foreign-config-not-reloaded",
            Plant::ExpiredLiveSession => "expired-live-session",
            Plant::ReconfigFromStaleVersion => "reconfig-from-stale-version",
            Plant::RevalidateRetrySkipped => "revalidate-retry-skipped",
            Plant::RefusedReplyAtQueuedZxid => "refused-reply-at-queued-zxid",
            Plant::LearnerTrafficMiscount => "learner-traffic-miscount",
            Plant::ConnectionSessionUnbound => "connection-session-unbound",
            Plant::CloseSessionClosesCreatorsSessions => "close-session-closes-creators-sessions",
            Plant::ReconfigCountsJoinersOnly => "reconfig-counts-joiners-only",
            Plant::LaggingVoterForgotten => "lagging-voter-forgotten",
            Plant::ConfigFromNode => "config-from-node",
            Plant::InformToFollowers => "inform-to-followers",
            Plant::ReadOnlyHalfGrace => "read-only-half-grace",
            Plant::MntrCountsSyncing => "mntr-counts-syncing",
            Plant::QuotaSoftBytesEnforced => "quota-soft-bytes-enforced",
            Plant::ExpiredRefusesOthers => "expired-refuses-others",
            Plant::ElectionBackersUnreported => "election-backers-unreported",
            Plant::ResolvedMultiPartial => "resolved-multi-partial",
            Plant::ResolvedMultiCreateStatless => "resolved-multi-create-statless",
            Plant::HandOverNonVoterElects => "handover-non-voter-elects",
            Plant::FollowerKeepsEarlyLearners => "follower-keeps-early-learners",
            Plant::ReadPathValidated => "read-path-validated",
            Plant::StatsTextReordered => "stats-text-reordered",
            Plant::RollbackForgetsNull => "rollback-forgets-null",
        }
    }

    /// The claim(s) of the simulator meant to catch this plant, first the one it usually trips.
    pub fn claims(self) -> &'static [&'static str] {
        match self {
            Plant::CommitBeforeQuorum => &[
                "zab.commit-without-quorum",
                "cap.minority-commit",
                "zab.acked-write-lost",
            ],
            Plant::AckBeforeDurable => &[
                "zab.ack-not-durable",
                "zab.commit-without-quorum",
                "cap.minority-commit",
                "zab.acked-write-lost",
            ],
            Plant::DiffInsteadOfTrunc | Plant::VoteIgnoresEpoch => &[
                "zab.agreement",
                "zab.applied-regressed",
                "zab.acked-write-lost",
                "zab.leader-history",
                "zab.zxid-unique",
                "zab.one-leader-per-epoch",
                "core.panic",
            ],
            Plant::EphemeralSurvivesExpiry => &["client.ephemeral-lifetime"],
            Plant::SyncWithoutQuorum => &["client.sync-read", "client.linearizable-wgl"],
            Plant::LostWatch => &["client.watch-missed"],
            Plant::WriteAfterClose => &["session.no-write-after-close", "client.no-ok-after-close"],
            Plant::WatchIgnoresAcl => &["acl.no-unauthorized-access"],
            Plant::TreeCversionSkew => &["tree.model"],
            // NEWLEADER ACKed for txns not durable: a commit counts a server without them
            Plant::Zk3911AckNewLeaderBeforeLogged
            | Plant::Zk4646AckNewLeaderBeforeFsync
            | Plant::Zk4785AckNewLeaderBeforeTail => &[
                "zab.commit-without-quorum",
                "zab.acked-write-lost",
                "zab.leader-history",
            ],
            // a new epoch over a log that lost its synced tail wins an election: the leader
            // lacks committed txns, and TRUNCs a follower below what it applied
            Plant::Zk4643EpochBeforeHistory => {
                &["zab.leader-history", "zab.acked-write-lost", "core.panic"]
            }
            // the log holds txns the memory forgot: logged twice, or replayed after a restart
            Plant::Zk2845RetainedDbBehindLog | Plant::Zk4712SyncThreadSurvives => {
                &["zab.log-order", "zab.agreement", "zab.applied-unlogged"]
            }
            // the snapshot only in memory: the learner ACKs and serves what its disk lacks
            Plant::Zk3642SnapNotPersisted => &[
                "zab.ack-not-durable",
                "zab.acked-write-lost",
                "zab.agreement",
                "zab.commit-without-quorum",
            ],
            Plant::ZxidRolloverUnguarded => &[
                "scenario.zxid-rollover",
                "zab.zxid-unique",
                "zab.agreement",
                "zab.log-order",
                "core.panic",
            ],
            Plant::SuperDigestIgnored => &["client.super-user", "acl.auth-not-applied"],
            Plant::SaslIdentityAsSuper => &["acl.no-unauthorized-access"],
            Plant::QuotaHardLimitOffByOne => &["quota.hard-limit"],
            Plant::EphemeralsMisreported => &["session.ephemerals-reported"],
            Plant::ZkPasswdRefused => &["session.imported-reattach"],
            Plant::PersistedLosesCversion => &["tree.persisted-round-trip"],
            // NEWLEADER ACKed from a SNAP not whole; left alone, commits count a server
            // without the state
            Plant::SnapNewLeaderMidStream => &[
                "sync.partial-snap",
                "zab.commit-without-quorum",
                "zab.acked-write-lost",
            ],
            Plant::ReadOnlyServesUncommitted => &["readonly.committed-prefix"],
            Plant::LocalSessionRoams => &["session.local-stays-home"],
            // a change committed without a quorum of the configuration it replaces
            Plant::ReconfigNewQuorumOnly => &[
                "reconfig.commit-quorums",
                "zab.commit-without-quorum",
                "zab.acked-write-lost",
            ],
            // only a heal that leaves the stuck leader stuck (`--liveness core`) shows it
            Plant::FollowerIgnoresSyncLimit => &["liveness.core-progress"],
            // a corrupt record or snapshot recovered as if it were what was written
            Plant::LogChecksumSkipped
            | Plant::LogRecordPlaceUnchecked
            | Plant::SnapshotChecksumSkipped => &["storage.corruption-served", "core.recover"],
            // ZAB's safety does not rest on FLE: only the termination rule's own claim sees it
            Plant::ElectionCountsAnyVote => &["election.quorum"],
            // a quorum that holds a committed txn only on a lost disk elects without it
            Plant::WipedVotesAsFresh => &[
                "zab.lost-state-counted",
                "zab.acked-write-lost",
                "zab.leader-history",
                "zab.one-leader-per-epoch",
            ],
            // the stale vote itself, in every answer to a LOOKING server; what it costs (a
            // server left LOOKING) needs a rare schedule
            Plant::VoteEpochStale => &["election.vote-current", "liveness.not-converged"],
            // the durable snapshot is not the one streamed (a restart from it fails to load)
            Plant::SnapWrittenWithoutParts => &["sync.snap-persisted", "core.recover"],
            // the learner's history has a hole: it diverges from the leader's
            Plant::SnapFileWithoutLogTail => &[
                "zab.agreement",
                "zab.log-order",
                "zab.acked-write-lost",
                "core.panic",
            ],
            // a configuration version no established epoch gave
            Plant::FirstConfigVersionAtNewLeader => &["reconfig.config-committed"],
            // a discovery quorum counts a FOLLOWERINFO its sender's lost disk no longer backs
            Plant::EarlyLearnerOutlivesConnection => &["zab.lost-state-counted"],
            // the window no longer holds every txn after the snapshot on disk
            Plant::LogTrimPastSnapshot => &["sync.log-window"],
            // a server short of the history its epoch vouches for presents that epoch in the
            // vote it restarts with; left alone it wins FLE and truncates the voters holding
            // that history (the core's own TRUNC assertion, or the lost write)
            Plant::CutKeepsCurrentEpoch => &[
                "election.epoch-vouched",
                "core.panic",
                "zab.acked-write-lost",
                "zab.leader-history",
                "zab.agreement",
            ],
            // an ACK covering a txn whose append failed; left alone, a commit counts it
            Plant::FailedWriteIgnored => &[
                "zab.ack-not-durable",
                "zab.commit-without-quorum",
                "zab.acked-write-lost",
            ],
            // a configuration in force (and read) that no committed reconfig made
            Plant::RestartConfigVersionDropped => {
                &["reconfig.config-committed", "client.read-value"]
            }
            // a successor that may lack the change or what was committed after it
            Plant::HandOverToUnacked | Plant::HandOverCommitsPastReconfig => &[
                "reconfig.handover",
                "zab.leader-history",
                "zab.acked-write-lost",
            ],
            // a commit backed by a non-voter's durable copy: too few voters hold it
            Plant::JoinerAckCounted => &[
                "zab.commit-without-quorum",
                "reconfig.commit-quorums",
                "cap.minority-commit",
                "zab.acked-write-lost",
            ],
            // every tree agrees on keeping them: only the reaper's progress shows it
            Plant::TtlNeverReaped => &["liveness.reaper"],
            // every tree deletes it alike: only the independent model refuses the delete
            Plant::ContainerReapedUnused | Plant::TtlReapedAtBoundary => &["tree.model"],
            Plant::WatcherTypeIgnored => &["client.watch-answer"],
            Plant::GetAclUnmasked => &["acl.shown"],
            Plant::LeaderEpochUnpersisted => &["zab.epoch-promised"],
            Plant::HandOverPastReconfigOnly => &["reconfig.handover"],
            Plant::RefusedKeepsConnection => &["client.refused"],
            // found by the foreign-leader driver (`ensemble-sim foreign`), not the swarm
            Plant::ResolvedSetDataUnwatched => &["foreign.watch-once"],
            Plant::ForeignConfigNotReloaded => &["foreign.membership"],
            Plant::ExpiredLiveSession => &["session.expired-refusal"],
            Plant::ReconfigFromStaleVersion => &["reconfig.from-config"],
            // the core's own invariant: nothing waits for a zxid already applied
            Plant::RevalidateRetrySkipped => &["core.panic"],
            Plant::RefusedReplyAtQueuedZxid => &["client.monotonic-reads"],
            // observability only: no protocol decision reads them, so only their own claim
            Plant::LearnerTrafficMiscount => &["leader.learner-traffic"],
            Plant::ConnectionSessionUnbound => &["client.connection-session"],
            // clients reconnect and carry on: only the close's reason shows it
            Plant::CloseSessionClosesCreatorsSessions => &["client.close-reason"],
            Plant::ReconfigCountsJoinersOnly => &["reconfig.well-formed-refused"],
            // elections still end: only the forgetting's reason shows it
            Plant::LaggingVoterForgotten => &["election.vote-forgotten"],
            Plant::ConfigFromNode => &["reconfig.config-apart"],
            // followers ignore an INFORM: only the packets' own claim sees it
            Plant::InformToFollowers => &["leader.packets-by-role"],
            // it serves what it applied, as it would a second later: only the clock shows it
            Plant::ReadOnlyHalfGrace => &["readonly.grace"],
            // only an operator's mntr shows it: the claim counts the leader's listing again
            Plant::MntrCountsSyncing => &["leader.learner-traffic"],
            Plant::QuotaSoftBytesEnforced => &["quota.hard-limit"],
            Plant::ExpiredRefusesOthers => &["client.expired-answers-refused"],
            Plant::ElectionBackersUnreported => &["election.counted-reported"],
            // found by the foreign-leader driver's divergent INFORM (`ensemble-sim foreign`)
            Plant::ResolvedMultiPartial => &["foreign.divergent-refused"],
            Plant::ResolvedMultiCreateStatless => &["foreign.write-reply"],
            // it finds the successor through an election a moment later: only the path shows
            Plant::HandOverNonVoterElects => &["reconfig.handover-taken"],
            // the senders give up after initLimit: only the connections kept show it
            Plant::FollowerKeepsEarlyLearners => &["election.learner-dropped"],
            Plant::ReadPathValidated => &["client.read-value"],
            Plant::StatsTextReordered => &["quota.stats"],
            Plant::RollbackForgetsNull => &["tree.model", "tree.consistent"],
        }
    }

    pub fn from_name(name: &str) -> Option<Plant> {
        Plant::ALL.iter().copied().find(|p| p.name() == name)
    }
}

/// Plant `close-session-closes-creators-sessions`: a committed closeSession of `session` also
/// marks closing the connected clients of every session its creator made (the server id in
/// the session id's top byte).
pub(crate) fn close_creators_sessions(
    clients: &mut crate::client_pipeline::ClientPipeline,
    session: i64,
) {
    let creator = |s: i64| (s as u64) >> 56;
    for c in clients.conns.values_mut() {
        if creator(c.session) == creator(session)
            && c.phase == crate::client_pipeline::ConnPhase::Connected
        {
            c.closing = true;
        }
    }
}

/// Plant `reconfig-counts-joiners-only`: the voters an incremental change's joining list
/// names (none for a member list, which the real check counts).
pub(crate) fn joining_voters(joining: &str, new_members: &str) -> usize {
    if !new_members.trim().is_empty() {
        return usize::MAX;
    }
    joining
        .split(',')
        .filter(|j| !j.trim().is_empty() && !j.contains("observer"))
        .count()
}

/// Were planted bugs compiled into this build? The node binary refuses to start if so (cargo
/// unifies features per build, so `cargo test --workspace` would give it the simulator's).
pub const COMPILED: bool = cfg!(feature = "plants");

/// Is `p` the planted bug of this run? Always false without the `plants` feature.
#[inline]
pub fn active(configured: Option<Plant>, p: Plant) -> bool {
    cfg!(feature = "plants") && configured == Some(p)
}

/// `mntr-counts-syncing`: every voter a leader has a handler for, synced or not.
pub(crate) fn voters_listed<'a>(
    ids: impl Iterator<Item = &'a crate::txn::ServerId>,
    cfg: &crate::config::Config,
) -> usize {
    ids.filter(|id| cfg.is_voter(**id)).count()
}
