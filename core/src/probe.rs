//! Coverage probes: `probe!("name")` marks a rare path (a TRUNC sent, a stale leader stepping
//! down, a fault that actually fired) so that a simulator sweep can tell which of them it
//! reached. Every probe is declared once, in [`PROBES`], with a `rare` mark for the paths a
//! 300-seed sweep is not expected to reach; `ensemble-sim sweep --require-coverage` fails
//! naming each probe not marked rare that no seed hit.
//!
//! The name is resolved to its index when the crate compiles (an unknown name does not
//! compile), and a hit is one thread-local counter increment: no string work per hit. The
//! counters exist only with the `probes` feature, which only the simulator's workspace turns
//! on; elsewhere (the node) [`hit`] is an empty inline function and the mark compiles to
//! nothing.
//!
//! To add a probe: a row here (name, rare, what it means), then `crate::probe!("name")` at the
//! path (`ensemble_core::probe!` from another crate).

/// One declared probe.
#[derive(Clone, Copy, Debug)]
pub struct ProbeDef {
    pub name: &'static str,
    /// Not expected in a 300-seed swarm sweep (`--require-coverage` does not ask for it).
    pub rare: bool,
    pub what: &'static str,
}

const fn p(name: &'static str, what: &'static str) -> ProbeDef {
    ProbeDef {
        name,
        rare: false,
        what,
    }
}

const fn rare(name: &'static str, what: &'static str) -> ProbeDef {
    ProbeDef {
        name,
        rare: true,
        what,
    }
}

/// The one registry: the core's protocol paths, then what the simulator counts (faults that
/// fired, disk losses), in one list so that one coverage file covers both.
pub const PROBES: &[ProbeDef] = &[
    // synchronization (leader side)
    p("sync.diff", "a leader synced a learner by DIFF"),
    p(
        "sync.trunc",
        "a leader synced a learner by TRUNC (its tail not in our history)",
    ),
    p("sync.snap", "a leader synced a learner by SNAP"),
    p(
        "sync.snap-multipart",
        "a SNAP went out in more than one part",
    ),
    p(
        "sync.snap-from-file",
        "a leader's SNAP was streamed from its snapshot file, not serialised from its tree",
    ),
    p(
        "log.trim-held-by-snapshot",
        "the in-memory log window kept txns past commitLogCount because no snapshot on disk covers them yet",
    ),
    p("leader.inform", "a leader sent an INFORM to an observer"),
    // synchronization (learner side)
    p(
        "learner.trunc",
        "a learner truncated its log at the leader's TRUNC",
    ),
    p(
        "learner.snap-loaded",
        "a learner replaced its tree with the leader's SNAP",
    ),
    p(
        "learner.snap-streamed",
        "a learner built the leader's SNAP from parts written to disk as they came",
    ),
    rare(
        "learner.snap-refused",
        "a learner refused a SNAP whose parts do not add up",
    ),
    p(
        "learner.ackepoch-uncounted",
        "a learner answered an epoch it had accepted from another would-be leader with an uncounted ACKEPOCH",
    ),
    rare(
        "learner.epoch-below-accepted",
        "a learner refused a LEADERINFO below its accepted epoch",
    ),
    rare(
        "learner.leaderinfo-mid-handshake",
        "a LEADERINFO of another epoch mid-handshake restarted the learner",
    ),
    p(
        "learner.leader-silent",
        "a learner gave up a leader silent past syncLimit",
    ),
    p(
        "learner.leader-disconnected",
        "a learner lost its leader's connection",
    ),
    p("learner.inform-applied", "an observer applied an INFORM"),
    // a foreign leader's observer (zk-observe; the `ensemble-sim foreign` driver, not the swarm)
    rare(
        "foreign.synced",
        "a foreign leader's observer took the tree it synced to",
    ),
    rare(
        "foreign.forwarded-answered",
        "a foreign leader's txn answered the write forwarded to it",
    ),
    rare(
        "foreign.sync-answered",
        "a foreign leader's SYNC answered a sync",
    ),
    rare(
        "foreign.revalidate-refused",
        "a foreign leader refused a session's re-attach",
    ),
    rare(
        "foreign.config-reloaded",
        "a foreign leader's reconfig became the membership in force",
    ),
    rare(
        "foreign.leader-lost",
        "a foreign leader's observer lost its leader",
    ),
    // leader changes
    rare(
        "leader.later-accepted-epoch",
        "a leader stepped down for a learner that accepted a later epoch",
    ),
    rare(
        "leader.follower-ahead",
        "a leader stepped down for a follower ahead of it (ACKEPOCH check)",
    ),
    p(
        "leader.init-limit",
        "a would-be leader found no quorum within initLimit",
    ),
    p(
        "leader.sync-limit",
        "a stale leader stepped down: no quorum heard within syncLimit",
    ),
    p(
        "leader.learner-silent",
        "a leader dropped a learner silent past its limit",
    ),
    rare(
        "leader.zxid-exhausted",
        "a leader ended its epoch at the zxid counter's end (roll-over guard)",
    ),
    p(
        "leader.early-learner",
        "a looking server kept a FOLLOWERINFO for when it leads",
    ),
    rare(
        "leader.early-learner-dropped",
        "a looking server dropped a kept FOLLOWERINFO whose connection broke",
    ),
    p(
        "looking.stale-learner",
        "a looking server disconnected a learner of a leadership it no longer holds",
    ),
    p(
        "leader.session-expired",
        "a leader proposed closeSession for an expired session",
    ),
    p(
        "leader.container-reaped",
        "a leader proposed deleteContainer for an empty container or an expired TTL node",
    ),
    // election
    p(
        "election.newer-round",
        "a notification from a later election round reset the tally",
    ),
    p(
        "election.higher-epoch-vote",
        "a notification's vote from a higher peer epoch replaced ours",
    ),
    p(
        "election.lagging-answered",
        "a notification from an earlier round was answered",
    ),
    p(
        "election.joined-established",
        "a looking server joined an established leader from out-of-election votes",
    ),
    p(
        "election.config-sent",
        "a server sent its configuration to a peer whose notification named an older one",
    ),
    p(
        "election.config-learned",
        "a LOOKING server adopted a peer's newer configuration and restarted its election",
    ),
    // sessions and watches
    p(
        "session.revalidate-leader",
        "a learner revalidated a reconnecting session with the leader",
    ),
    p(
        "session.revalidate-ahead",
        "a reconnect waited until the server applied what the client had seen",
    ),
    p(
        "session.reconnect-closing",
        "a reconnect found its session's closeSession proposed (expired)",
    ),
    p(
        "watch.fired-on-reconnect",
        "setWatches fired a watch at once (the change happened while away)",
    ),
    rare(
        "quota.exceeded",
        "an enforced write was refused with QuotaExceeded",
    ),
    // recovery
    p(
        "recover.snapshot",
        "a server recovered its tree from a snapshot",
    ),
    p(
        "recover.log-replay",
        "a server replayed log txns past its snapshot at start",
    ),
    rare(
        "recover.bad-snapshot",
        "a server refused a snapshot that does not load",
    ),
    rare(
        "recover.log-order",
        "a server refused a log out of zxid order",
    ),
    // disk loss: who a quorum may count (quorum.rs contains_vouching_quorum)
    rare(
        "election.joiner-counted-pending",
        "a LOOKING voter joined an established leader counting itself in a pending configuration's quorum",
    ),
    rare(
        "quorum.vouching-half",
        "an even configuration counted a quorum with exactly half of its voters vouching",
    ),
    p(
        "quorum.genesis-every-voter",
        "a quorum counted servers that vouch for nothing because every voter was in it",
    ),
    rare(
        "election.lost-voter-forgotten",
        "a voter restarted from a lost disk: its vote of the round before was dropped",
    ),
    p(
        "quorum.lost-state-not-counted",
        "a quorum was there but its intact members were not one: not counted",
    ),
    // the simulator: faults that acted on something that exists
    p(
        "sim.fault.partition",
        "a partition (isolate, split, bridge, one-way) began",
    ),
    p("sim.fault.clog", "a link was clogged"),
    p("sim.fault.swizzle", "a swizzle-clog began"),
    p("sim.fault.reset", "a peer connection was broken"),
    p("sim.fault.client-reset", "a client connection was broken"),
    p("sim.fault.crash", "a running server crashed"),
    p("sim.fault.pause", "a running server paused"),
    p("sim.fault.stall", "a running server's quorum side stalled"),
    p("sim.fault.spike", "a latency spike hit a server's messages"),
    p("sim.fault.client-pause", "a client paused"),
    p("sim.fault.client-crash", "a client process died"),
    p("sim.fault.client-close", "a client closed its session"),
    p(
        "sim.fault.corrupt",
        "a bit flipped in a durable byte of a server's log, snapshot or epoch file",
    ),
    p(
        "sim.fault.misdirect",
        "a durable log write was found to have landed at the wrong offset or file",
    ),
    p(
        "sim.fault.latent-read",
        "a sector of a server's file became unreadable",
    ),
    p(
        "sim.fault.lost-fsync",
        "fsyncs acknowledged and not done lost log bytes at a crash",
    ),
    p(
        "sim.fault.write-error",
        "a durable write (append, fsync, truncation, snapshot, epoch file) failed",
    ),
    p(
        "sim.fault.fsync-error",
        "a log fsync failed: the server stopped with its unsynced tail at the crash's mercy",
    ),
    p(
        "sim.disk.refused",
        "a restarting server's recovery refused its damaged disk: it stays down",
    ),
    p(
        "sim.disk.damage-read-past",
        "a recovery met damage and still read what was written (an older snapshot, a sector not needed)",
    ),
    p(
        "sim.disk.lost-suffix",
        "a recovery through damage lost the log after some txn, which a quorum of sound voters holds",
    ),
    p(
        "sim.disk.atlas-spared",
        "the fault atlas undid damage that would have taken a txn below a quorum of sound copies",
    ),
    p(
        "storage.snapshot-fallback",
        "recovery rejected a snapshot and took an older one",
    ),
    p(
        "storage.corrupt-log-refused",
        "recovery refused a log with damage before valid records",
    ),
    p(
        "storage.misplaced-record",
        "recovery met an intact log record at an offset other than the one it was written for",
    ),
    // a misdirect onto the tail's last slot with currentEpoch written: seed 1233 of 0..2000
    rare(
        "storage.misdirect-unvouched",
        "recovery cut a log tail at a misdirected write and removed currentEpoch (no vouching)",
    ),
    // a damaged last record or a lying fsync under currentEpoch: seeds 3388, 7719 of 10,000
    rare(
        "storage.short-of-epoch-unvouched",
        "recovery read back less than currentEpoch's history and removed currentEpoch",
    ),
    p(
        "storage.no-snapshot-verifies",
        "recovery refused: snapshots exist and none passes its check",
    ),
    p(
        "storage.epoch-refused",
        "recovery refused an epoch file (checksum, or not a number)",
    ),
    p(
        "sim.fault.sync-crash",
        "a leader crashed right after a learner's SNAP or NEWLEADER",
    ),
    p(
        "sim.fault.discovery-crash",
        "a would-be leader crashed right after a learner took its NEWEPOCH (LEADERINFO)",
    ),
    // the reaper committing in the last ms of a run: 5 seeds of 10,000
    rare(
        "sim.end-settles",
        "the end waited for a txn the servers committed on their own after the drain",
    ),
    // a leader back after the drain (a roll-over's new epoch): seed 409 of 0..1000
    rare(
        "sim.end-awaits-session",
        "the end waited for clients reconnecting to a leader that came back after the drain",
    ),
    rare(
        "sim.end-awaits-new-session",
        "the end waited for clients that learned after the drain that their session had ended",
    ),
    p(
        "sim.disk.unsynced-lost",
        "a crash lost unsynced log appends",
    ),
    p(
        "sim.disk.torn-tail",
        "a crash tore the last log record (recovery dropped it)",
    ),
    p(
        "sim.fault.disk-loss",
        "a server came back with an empty data dir",
    ),
    p(
        "sim.fault.disk-rollback",
        "a server came back with an older copy of its data dir (currentEpoch removed)",
    ),
    p(
        "reconfig.new-config-no-quorum",
        "a reconfig refused (NewConfigNoQuorum): the new configuration's voters synced with the leader are no quorum (a joiner not caught up)",
    ),
    p(
        "reconfig.joiner-synced-before-add",
        "a reconfig added as a voter a server outside the configuration that was already synced with the leader as a non-voting follower",
    ),
    p(
        "reconfig.first-config-versioned",
        "the first configuration took an established epoch's zxid as its version (leader or learner)",
    ),
    p(
        "reconfig.dynamic-file-ahead-of-tree",
        "a server started with its dynamic file's configuration ahead of its tree (a reconfig it activated, not applied or not durable)",
    ),
    rare(
        "reconfig.first-config-learned",
        "a LOOKING server took a peer's versioned first configuration over its own",
    ),
    p(
        "reconfig.handover",
        "a leader a reconfig removed named a successor that ACKed it (HANDOVER, ZooKeeper's designated leader)",
    ),
    p(
        "reconfig.handover-followed",
        "a learner took its leader's HANDOVER: to the successor without an election",
    ),
    p(
        "reconfig.handover-leads",
        "the designated successor leads a new epoch without an election",
    ),
    rare(
        "reconfig.handover-elects",
        "a learner got a HANDOVER it could not take (not serving, or the reconfig not applied): it elects",
    ),
    p(
        "reconfig.handover-early-learner",
        "the successor took a FOLLOWERINFO while it still followed the leader that handed over",
    ),
    p(
        "reconfig.handover-ignored",
        "a leader that handed over ignored a learner's message",
    ),
    rare(
        "reconfig.handover-commit-stops",
        "a leader committed up to the reconfig that removed it, not the ACKed proposals after it",
    ),
    rare(
        "reconfig.handover-no-candidate",
        "a leader a reconfig removed found no connected new voter that ACKed it: the ensemble elects",
    ),
    rare(
        "reconfig.handover-sync-limit",
        "a leader that handed over still had learners past syncLimit",
    ),
    p(
        "sim.liveness.core",
        "the heal left a minority faulty (liveness core)",
    ),
    rare(
        "sim.snap.stray",
        "a server was sent SNAP parts by a server it does not follow (dropped; no stream of its)",
    ),
    p(
        "sim.watch.answer-found",
        "a checkWatches or removeWatches found the watch the client holds",
    ),
    p(
        "sim.watch.answer-none",
        "a checkWatches or removeWatches answered NoWatcher to a client holding no such watch",
    ),
    p(
        "sim.election.vote-current",
        "a serving follower answered a notification with its leader's epoch (election.vote-current judged)",
    ),
    p(
        "sim.election.epoch-vouched",
        "a server restarted with a currentEpoch whose vouched history it read back whole (election.epoch-vouched judged)",
    ),
    p(
        "sim.reaper.judged",
        "liveness.reaper had a leader established long enough to judge its reaper",
    ),
    p(
        "sim.reconfig.bad-arguments-judged",
        "a reconfig refused BadArguments from a version the reference holds (reconfig.well-formed-refused judged)",
    ),
    p(
        "sim.reconfig.from-config-judged",
        "a reconfig made or refused BadVersion with one leader since before it and the committed configuration known (reconfig.from-config judged)",
    ),
    p(
        "sim.expired-refusal.judged",
        "a write refused SESSIONEXPIRED after the heal, under the run's only leader since (session.expired-refusal judged)",
    ),
    rare(
        "sim.config.read-ahead-of-tree",
        "a read of /zookeeper/config showed a committed configuration newer than the server's tree (its dynamic file's, or a peer's)",
    ),
    rare(
        "sim.watch.withheld-before-auth",
        "a watch re-set by setWatches ahead of its connection's digests may have had its event withheld",
    ),
    rare(
        "sim.liveness.core-every-voter",
        "the liveness core took every voter: too few vouched for a quorum of them to elect",
    ),
    p(
        "sim.read.null-data",
        "a getData answered a null buffer (data written null), judged against the history",
    ),
    p(
        "sim.read.ephemerals",
        "a getEphemerals answered some of the session's ephemerals, judged against the history",
    ),
    p(
        "sim.read.all-children",
        "a getAllChildrenNumber was judged against the history",
    ),
    p(
        "sim.quota.null-stats-rewritten",
        "quota stats a client wrote null were rewritten by the server's recount (tree.model judges the null mark)",
    ),
    p(
        "sim.read.empty-path",
        "a read of the path \"\" was answered as the root's, judged against the history",
    ),
    p(
        "sim.client.refused-closed",
        "a request of an unknown opcode was answered Unimplemented and its connection closed (client.refused judged)",
    ),
    p(
        "sim.client.legacy-passwd",
        "a reconnect presenting its session's legacy (Ensemble's former) password re-attached (client.session judged)",
    ),
    p(
        "sim.reconfig.disabled-refused",
        "a reconfig was refused ReconfigDisabled in a seed with reconfigEnabled=false (client.write-result judged)",
    ),
    p(
        "sim.read.multi-read",
        "a multiRead's ops were judged each as the read it stands for (client.read-value)",
    ),
    p(
        "sim.recover.snapshot-as-tree",
        "a server restarted with its snapshot handed over as a tree already loaded (the node's streaming loader), not as bytes",
    ),
    p(
        "tree.ttl-at-boundary",
        "a TTL node was looked at (the reaper's list or its deleteContainer) exactly when its elapsed time equalled its TTL",
    ),
    p(
        "sim.admin.config-null-written",
        "the super user wrote null data into /zookeeper/config before any reconfig (a later reconfig must write its text there)",
    ),
    p(
        "sim.admin.config-null-over-reconfig",
        "the super user wrote null data into /zookeeper/config after a reconfig committed (the node changes, the configuration in force does not)",
    ),
    p(
        "sim.admin.config-text-over-reconfig",
        "the super user wrote other text into /zookeeper/config after a reconfig committed",
    ),
    p(
        "sim.reconfig.config-unreadable",
        "the reconfig operator read /zookeeper/config as no configuration after a reconfig (the super user wrote it) and took the one in force instead",
    ),
    p(
        "sim.reconfig.from-null-config",
        "a reconfig went out with fromConfig -1 because /zookeeper/config read as null data",
    ),
    p(
        "sim.reconfig.malformed-refused",
        "a malformed reconfig (bad server line, joiner without a client address) was refused BadArguments",
    ),
    p(
        "sim.path.refused",
        "a create of a path ZooKeeper's PathUtils refuses was answered BadArguments",
    ),
    p(
        "sim.path.non-ascii",
        "a create of a non-ASCII path ZooKeeper's PathUtils accepts succeeded",
    ),
    rare(
        "sim.disk.atlas-unvouched",
        "the fault atlas spared a voter: with the harmed and the never-synced, no vouching quorum would remain",
    ),
];

/// How many probes there are.
pub const COUNT: usize = PROBES.len();

/// The index of `name` in [`PROBES`]; an unknown name stops the compile (in a const context).
pub const fn index(name: &str) -> usize {
    let mut i = 0;
    while i < PROBES.len() {
        if eq(PROBES[i].name.as_bytes(), name.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("probe! names a probe not declared in core/src/probe.rs PROBES")
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Mark a probe hit: `probe!("sync.trunc")`. Compiles to nothing without the `probes` feature.
#[macro_export]
macro_rules! probe {
    ($name:literal) => {{
        const I: usize = $crate::probe::index($name);
        $crate::probe::hit(I);
    }};
}

#[cfg(feature = "probes")]
mod counters {
    use std::cell::Cell;

    thread_local! {
        static HITS: [Cell<u64>; super::COUNT] = const { [const { Cell::new(0) }; super::COUNT] };
    }

    #[inline]
    pub fn hit(i: usize) {
        HITS.with(|h| h[i].set(h[i].get() + 1));
    }

    pub fn take() -> Vec<u64> {
        HITS.with(|h| h.iter().map(|c| c.replace(0)).collect())
    }
}

/// Count one hit of probe `i` on this thread.
#[cfg(feature = "probes")]
#[inline]
pub fn hit(i: usize) {
    counters::hit(i);
}

#[cfg(not(feature = "probes"))]
#[inline(always)]
pub fn hit(_i: usize) {}

/// This thread's hits since the last call, per probe in [`PROBES`] order, and reset them (a
/// simulator thread runs whole seeds: one call before a seed, one after). Empty without the
/// `probes` feature.
pub fn take() -> Vec<u64> {
    #[cfg(feature = "probes")]
    {
        counters::take()
    }
    #[cfg(not(feature = "probes"))]
    {
        Vec::new()
    }
}

/// Were probes compiled into this build?
pub const COMPILED: bool = cfg!(feature = "probes");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_resolve() {
        for (i, d) in PROBES.iter().enumerate() {
            assert_eq!(index(d.name), i, "{} declared twice", d.name);
            assert!(!d.what.is_empty());
        }
        assert!(PROBES.len() >= 30);
    }
}
