//! What the core wants done, in an order the types enforce.
//!
//! The core's handlers push [`Write`]s and [`Action`]s into a [`Ready`], in the order they
//! decide them. That order carries a contract: a write is durable, and what comes after it may
//! depend on it (a learner's ACKEPOCH on its persisted acceptedEpoch, its ACK of NEWLEADER on
//! the TRUNC or SNAP before it). A runtime that reads the output as "send everything, then
//! write" breaks ZAB. So the `Ready` keeps them sorted as it takes them, and [`Ready::drive`]
//! is the one way to consume it (etcd raft's `Ready`, "persist, then send"; openraft's command
//! conditions); [`Ready::drive_both`] is the same for a driver that is its own store and sink.
//!
//! A `Ready` is a sequence of [`Batch`]es. Each batch is some [`Write`]s, then the
//! [`Action`]s that may only happen after them (`then`). [`Ready::push`] files each piece as it
//! comes, keeping the core's order exactly: a batch is a maximal run of writes followed by a
//! maximal run of actions (a write after an action opens the next batch), so executing batch
//! by batch, writes before actions, is executing the output in the order it was pushed. Each
//! piece is moved once, into its batch.
//!
//! The writes are of two kinds (see [`Write::is_barrier`]):
//!
//! * **barriers** — `Truncate`, `PersistEpochs`, and a `Snapshot` with `reset_log` (a SNAP from
//!   the leader): durable when [`DurableStore::write`] returns `Ok`. Nothing after one is
//!   executed before that.
//! * **accepted** — `Append`, `SnapshotPart`, and a `Snapshot` without `reset_log` (the server's
//!   own periodic snapshot): taken in order and made durable later. An `Append` becomes durable
//!   when the runtime says so with `Event::Persisted`, which is what the core waits for before it
//!   ACKs a proposal or counts its own ACK; a store may group the appends of many events into one
//!   fsync (group commit). The core never waits for its own snapshot.
//!
//! Writes are executed in order. A store that queues appends hands them over before a later
//! barrier, so that the barrier does not overtake them (a TRUNC must cut what was appended
//! before it).
//!
//! A write that fails (`Err`) may or may not have happened, and the core already believes it
//! did. [`Ready::drive`] stops at the first failed write: no later write is tried and no later
//! action leaves, the rest of the `Ready` is dropped, and the error goes back to the runtime,
//! which must then stop the server (ZooKeeper stops on a failed fsync).
//!
//! [`Server::handle_ready`]: crate::Server::handle_ready

use crate::peer::{PeerMsg, ServerState};
use crate::server::{ConnId, Epochs};
use crate::txn::{ServerId, Txn};
use crate::zxid::Zxid;
use ensemble_proto::proto::{ConnectResponse, OpCode, Reply, SessionId, WatchedEvent};
use std::sync::Arc;

/// The purpose of the [`Action::QuorumCounted`] a leader reports when a quorum promised its
/// new epoch (ZAB's ACKEPOCH quorum, the leader included).
pub const EPOCH_PROMISED: &str = "epoch-promised";

/// A durable write, for a [`DurableStore`].
#[derive(Clone, Debug)]
pub enum Write {
    /// Append to the txn log (accepted: durability is reported later with `Event::Persisted`).
    Append { txns: Vec<Arc<Txn>> },
    /// Drop every logged txn with zxid > `after` (a barrier).
    Truncate { after: Zxid },
    /// Leading bytes of a snapshot at `zxid` that is still being written while the server goes
    /// on (parts of about a MiB, `index` 0, 1, ... in order): the `Snapshot` of the same zxid
    /// ends it. Until then there is no snapshot; parts of one never ended (the tree was
    /// replaced by the leader's) are dropped when another snapshot starts or ends. Accepted.
    SnapshotPart {
        zxid: Zxid,
        index: u32,
        data: Arc<Vec<u8>>,
    },
    /// A snapshot of the applied state at `zxid`: the bytes of the `parts` `SnapshotPart`s of
    /// this zxid, then `data`. With `reset_log` (a SNAP from the leader, its parts those the
    /// learner wrote as they came) the log restarts after `zxid`, and it is a barrier; without,
    /// it is accepted.
    Snapshot {
        zxid: Zxid,
        parts: u32,
        data: Arc<Vec<u8>>,
        reset_log: bool,
    },
    /// acceptedEpoch / currentEpoch (a barrier).
    PersistEpochs(Epochs),
}

impl Write {
    /// Must this write be durable before anything after it happens? (Otherwise it is accepted
    /// in order and made durable later; see the module docs.)
    pub fn is_barrier(&self) -> bool {
        match self {
            Write::Truncate { .. } | Write::PersistEpochs(_) => true,
            Write::Snapshot { reset_log, .. } => *reset_log,
            Write::Append { .. } | Write::SnapshotPart { .. } => false,
        }
    }
}

/// Something that leaves the server or is reported, for an [`ActionSink`]. It may depend on
/// every write before it.
#[derive(Clone, Debug)]
pub enum Action {
    /// A message to a peer, on the election or the quorum channel (`PeerMsg` says which).
    Send { to: ServerId, msg: PeerMsg },
    /// A SNAP from this server's snapshot file at `zxid` (the newest it wrote): the runtime
    /// reads the file's data and sends `to`, in order with the other sends to it, the
    /// `SnapPart`s that [`crate::sync_stream::snap_layout`] cuts it into, then the SNAP
    /// (`PeerMsg::Sync` in `SyncMode::Snap` with the last bytes, `txns` and `committed`). The
    /// core decides what; the bytes never pass through it (nor its memory). A file the runtime
    /// cannot read whole and verified breaks the quorum connection to `to` instead, before the
    /// SNAP leaves (the core hears `PeerDisconnected` and the learner syncs again).
    SendSnapshot {
        to: ServerId,
        zxid: Zxid,
        part: usize,
        txns: Vec<Arc<Txn>>,
        committed: Zxid,
    },
    /// Break the quorum connection with `peer` (a learner we drop, a leader we leave).
    DisconnectPeer { peer: ServerId },
    /// The answer to a client's handshake.
    ConnectReply {
        conn: ConnId,
        response: ConnectResponse,
    },
    /// The answer to request `xid`, at `zxid`.
    Reply {
        conn: ConnId,
        xid: i32,
        zxid: Zxid,
        opcode: OpCode,
        reply: Reply,
    },
    /// A watch notification.
    Watch { conn: ConnId, event: WatchedEvent },
    /// Close a client connection (after sending what was queued before it).
    Close { conn: ConnId },
    /// For logs, 4lw and the simulator's checkers.
    StateChanged { state: ServerState, epoch: u32 },
    /// A quorum was counted as witnesses of what its members hold: an election's decision
    /// (its backers) or a new epoch's choice (the acceptedEpochs it took), each member with
    /// whether it vouched for its durable state. For the simulator's `zab.lost-state-counted`
    /// and the node's debug log.
    /// Also a new epoch's promises ([`EPOCH_PROMISED`]: the ACKEPOCHs that counted and the
    /// leader's own acceptedEpoch) as the leader starts syncing, for `zab.epoch-promised`.
    QuorumCounted {
        purpose: &'static str,
        members: Vec<(ServerId, bool)>,
    },
    /// A closeSession applied at `zxid` deleted the session's ephemerals `paths` (on every
    /// server, as it applies): for the audit log's
    /// `ephemeralZNodeDeletionOnSessionCloseOrExpire` lines.
    EphemeralsDeleted {
        session: SessionId,
        zxid: Zxid,
        paths: Vec<String>,
    },
}

/// What a [`Ready`] takes: a [`Write`], an [`Action`], or an [`Output`] holding either. The
/// core's handlers push `Write`s and `Action`s straight into the `Ready`, each moved once, into
/// its batch.
pub trait Push {
    fn push_onto(self, ready: &mut Ready);
}

impl Push for Write {
    #[inline]
    fn push_onto(self, ready: &mut Ready) {
        ready.push_write(self)
    }
}

impl Push for Action {
    #[inline]
    fn push_onto(self, ready: &mut Ready) {
        ready.push_action(self)
    }
}

/// One piece of output, either kind: for code that handles a mixed sequence as data (tests,
/// tools). The core's handlers do not use it.
#[derive(Clone, Debug)]
pub enum Output {
    Write(Write),
    Action(Action),
}

impl From<Write> for Output {
    fn from(write: Write) -> Output {
        Output::Write(write)
    }
}

impl From<Action> for Output {
    fn from(action: Action) -> Output {
        Output::Action(action)
    }
}

impl Push for Output {
    #[inline]
    fn push_onto(self, ready: &mut Ready) {
        match self {
            Output::Write(w) => ready.push_write(w),
            Output::Action(a) => ready.push_action(a),
        }
    }
}

/// Writes, then what may only happen after them.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    writes: Vec<Write>,
    then: Vec<Action>,
}

impl Batch {
    /// Executed first, in order.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }
    /// Executed once every write of the batch returned `Ok`, in order.
    pub fn then(&self) -> &[Action] {
        &self.then
    }
    fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.then.is_empty()
    }
}

/// Where the [`Write`]s go: the runtime's disk.
pub trait DurableStore {
    type Error;
    /// Execute one write. A barrier ([`Write::is_barrier`]) is durable when this returns `Ok`,
    /// and does not overtake an accepted write before it; any other write is accepted, to be
    /// made durable later. `Err`: the write may not have happened, and nothing after it will be
    /// asked for.
    fn write(&mut self, write: Write) -> Result<(), Self::Error>;
}

/// Where the [`Action`]s go: the runtime's sockets and reports.
pub trait ActionSink {
    fn act(&mut self, action: Action);
}

/// The two sides a [`Ready`] is executed against: a store and a sink apart (a runtime's disk
/// and sockets), or one object that is both (an in-memory driver, whose disks, links and
/// checkers live in one world). `execute` is written once, over this.
trait Sides {
    type Error;
    fn write(&mut self, write: Write) -> Result<(), Self::Error>;
    fn act(&mut self, action: Action);
}

struct Apart<'a, S: ?Sized, A: ?Sized>(&'a mut S, &'a mut A);

impl<S: DurableStore + ?Sized, A: ActionSink + ?Sized> Sides for Apart<'_, S, A> {
    type Error = S::Error;
    fn write(&mut self, write: Write) -> Result<(), S::Error> {
        self.0.write(write)
    }
    fn act(&mut self, action: Action) {
        self.1.act(action)
    }
}

struct Both<'a, D: ?Sized>(&'a mut D);

impl<D: DurableStore + ActionSink + ?Sized> Sides for Both<'_, D> {
    type Error = D::Error;
    fn write(&mut self, write: Write) -> Result<(), D::Error> {
        self.0.write(write)
    }
    fn act(&mut self, action: Action) {
        self.0.act(action)
    }
}

/// A place in a [`Ready`]: (batches in use, actions of the last one).
#[derive(Clone, Copy, Debug)]
pub struct ReadyMark {
    batch: usize,
    then: usize,
}

/// The output of one or more steps of a server, ordered: see the module docs.
///
/// Reused across steps: [`Ready::drive`] empties it and keeps its buffers.
#[derive(Debug, Default)]
pub struct Ready {
    batches: Vec<Batch>,
    /// Batches in use; those after them are empty, kept for their buffers.
    len: usize,
    /// The planted bug `failed-write-ignored` (set by the server each step): a failed write
    /// is dropped and the drive goes on.
    pub(crate) ignore_failed_writes: bool,
}

impl Ready {
    pub fn new() -> Ready {
        Ready::default()
    }

    /// The batches, in execution order.
    pub fn batches(&self) -> &[Batch] {
        &self.batches[..self.len]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add a write or an action after everything already in.
    #[inline]
    pub fn push(&mut self, output: impl Push) {
        output.push_onto(self)
    }

    /// Add a write after everything already in. A write after an action opens a new batch, so
    /// that the action is executed before it, as the core ordered them.
    #[inline]
    pub fn push_write(&mut self, write: Write) {
        match &write {
            Write::Append { txns } => {
                assert!(!txns.is_empty(), "an empty append");
                assert!(
                    txns.windows(2).all(|w| w[0].zxid < w[1].zxid),
                    "an append out of zxid order"
                );
            }
            Write::Truncate { .. }
            | Write::SnapshotPart { .. }
            | Write::Snapshot { .. }
            | Write::PersistEpochs(_) => {}
        }
        if self.len == 0 || !self.batches[self.len - 1].then.is_empty() {
            self.open();
        }
        self.batches[self.len - 1].writes.push(write);
    }

    /// Add an action after everything already in.
    #[inline]
    pub fn push_action(&mut self, action: Action) {
        if self.len == 0 {
            self.open();
        }
        self.batches[self.len - 1].then.push(action);
    }

    fn open(&mut self) {
        if self.len == self.batches.len() {
            self.batches.push(Batch::default());
        }
        assert!(self.batches[self.len].is_empty(), "a spare batch is empty");
        self.len += 1;
    }

    /// Where the next action will go: for [`Ready::actions_since`].
    pub fn mark(&self) -> ReadyMark {
        ReadyMark {
            batch: self.len,
            then: self
                .len
                .checked_sub(1)
                .map_or(0, |b| self.batches[b].then.len()),
        }
    }

    /// The actions pushed since `mark` was taken (nothing was driven or cleared in between).
    pub fn actions_since(&self, mark: ReadyMark) -> impl Iterator<Item = &Action> {
        assert!(mark.batch <= self.len, "a mark of a Ready since driven");
        let first = mark.batch.saturating_sub(1);
        self.batches[first..self.len]
            .iter()
            .enumerate()
            .flat_map(move |(i, b)| {
                let skip = if i == 0 && mark.batch > 0 {
                    mark.then
                } else {
                    0
                };
                b.then[skip..].iter()
            })
    }

    /// Forget everything in it, keeping the buffers.
    pub fn clear(&mut self) {
        for batch in &mut self.batches[..self.len] {
            batch.writes.clear();
            batch.then.clear();
        }
        self.len = 0;
    }

    /// After `execute`: a whole run drained every batch, a stopped one left the rest to drop.
    fn finish(&mut self, drained: bool) {
        if drained {
            debug_assert!(self.batches[..self.len].iter().all(Batch::is_empty));
            self.len = 0;
        } else {
            self.clear();
        }
    }

    /// Execute it: batch by batch, each batch's writes (to `store`) before its actions (to
    /// `sink`). At the first write that fails, stop: nothing after it is executed, the rest is
    /// dropped and the error returned. Either way the `Ready` is empty afterwards.
    pub fn drive<S, A>(&mut self, store: &mut S, sink: &mut A) -> Result<(), S::Error>
    where
        S: DurableStore + ?Sized,
        A: ActionSink + ?Sized,
    {
        let outcome = self.execute(&mut Apart(store, sink));
        self.finish(outcome.is_ok());
        outcome
    }

    /// [`Ready::drive`] for a driver that is its own store and sink (the test kit's in-memory
    /// servers): the same order, the same stop at the first failed write.
    pub fn drive_both<D>(&mut self, io: &mut D) -> Result<(), D::Error>
    where
        D: DurableStore + ActionSink + ?Sized,
    {
        let outcome = self.execute(&mut Both(io));
        self.finish(outcome.is_ok());
        outcome
    }

    fn execute<I: Sides>(&mut self, io: &mut I) -> Result<(), I::Error> {
        let ignore_failed = self.ignore_failed_writes;
        for (i, batch) in self.batches[..self.len].iter_mut().enumerate() {
            assert!(!batch.is_empty(), "batch {i} is empty");
            // Only a write after an action opens a batch: batches alternate.
            assert!(i == 0 || !batch.writes.is_empty(), "batch {i} has no write");
            assert!(
                i + 1 == self.len || !batch.then.is_empty(),
                "batch {i} is not the last and has no action"
            );
            // An empty list is not drained: most batches lack one of the two, and a drain's
            // set-up and drop cost about as much as a short list's work.
            if !batch.writes.is_empty() {
                for write in batch.writes.drain(..) {
                    if let Err(e) = io.write(write)
                        && !ignore_failed
                    {
                        return Err(e);
                    }
                }
            }
            if !batch.then.is_empty() {
                for action in batch.then.drain(..) {
                    io.act(action);
                }
            }
        }
        Ok(())
    }
}

impl<T: Push> Extend<T> for Ready {
    fn extend<I: IntoIterator<Item = T>>(&mut self, outputs: I) {
        for output in outputs {
            self.push(output);
        }
    }
}

impl<T: Push> FromIterator<T> for Ready {
    fn from_iter<I: IntoIterator<Item = T>>(outputs: I) -> Ready {
        let mut ready = Ready::new();
        ready.extend(outputs);
        ready
    }
}

#[cfg(test)]
#[path = "effect_tests.rs"]
mod tests;
