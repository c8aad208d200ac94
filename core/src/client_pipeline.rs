//! The client pipeline's state (ZooKeeper's ServerCnxn table plus what its request processors
//! hold per request): each connection with its queue of requests in order, which connection
//! waits for which write (by request number) and which sync (by sync id), re-attaches and
//! syncs waiting to have applied through a zxid, and the events setWatches fires. The logic
//! that moves requests along is in `cnxn.rs`.

use crate::server::ConnId;
use crate::txn::TxnOp;
use crate::zxid::Zxid;
use ensemble_proto::proto::{Id, OpCode, Reply, Request, SessionId, WatchedEvent};
use std::collections::{BTreeMap, VecDeque};

/// Where a connection is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ConnPhase {
    /// createSession proposed under this request number.
    Creating {
        rid: u64,
        timeout_ms: i32,
    },
    /// Re-attaching to a session this server has not seen yet (waiting for a quorum sync), or
    /// that has seen a zxid we have not applied yet (waiting for it).
    Revalidating {
        sync_id: u64,
    },
    Connected,
}

/// What a queued request waits for before it can be answered (in order, per connection).
#[derive(Clone, Debug)]
pub(crate) enum Wait {
    /// Answer by reading the tree when it reaches the front.
    Read(Request),
    /// A write: the result arrives when its txn is applied here.
    Write { rid: u64 },
    /// A request answered without running it (a write the leader refused, nothing proposed;
    /// a request the runtime could not decode): answered with this reply in its turn, at the
    /// zxid applied then (so replies' zxids never go back).
    Refused(Reply),
    /// A write not yet submitted: queued first, then submitted by `drain` at once, unless an
    /// earlier `sync` of its connection is still unanswered.
    Held {
        op: TxnOp,
        session: SessionId,
        cxid: i32,
    },
    /// A sync: the leader's reply says through which zxid we must have applied.
    Sync {
        id: u64,
        path: String,
        through: Option<Zxid>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub xid: i32,
    pub opcode: OpCode,
    /// How many of the connection's auth ids it was sent with (they are only ever added): a
    /// read is judged with those, not with ids an addAuth sent after it added.
    pub auth_len: usize,
    pub wait: Wait,
    pub result: Option<(Zxid, Reply)>,
}

pub(crate) struct Conn {
    pub phase: ConnPhase,
    pub session: SessionId,
    pub timeout_ms: i32,
    pub read_only: Option<bool>,
    /// `ip:<addr>` plus every digest id added with auth.
    pub auth: Vec<Id>,
    pub queue: VecDeque<Pending>,
    /// closeSession sent: answer it, then close.
    pub closing: bool,
}

pub(crate) struct ClientPipeline {
    pub conns: BTreeMap<ConnId, Conn>,
    /// Request numbers of writes (and session creations) awaiting their txn.
    pub rid_owner: BTreeMap<u64, ConnId>,
    next_rid: u64,
    /// Sync ids awaiting the leader's quorum round.
    pub sync_owner: BTreeMap<u64, ConnId>,
    next_sync_id: u64,
    /// Re-attaching connections waiting to have applied through a sync point.
    pub revalidate_at: Vec<(Zxid, ConnId)>,
    /// Connections whose front `sync` waits to have applied through a zxid.
    pub sync_waits: Vec<(Zxid, ConnId)>,
    /// Watch events setWatches fires, sent just before its reply.
    pub deferred_watches: Vec<(ConnId, WatchedEvent)>,
    /// The id the next new session here gets.
    next_session: i64,
}

impl ClientPipeline {
    pub(crate) fn new(next_session: i64) -> ClientPipeline {
        ClientPipeline {
            conns: BTreeMap::new(),
            rid_owner: BTreeMap::new(),
            next_rid: 1,
            sync_owner: BTreeMap::new(),
            next_sync_id: 1,
            revalidate_at: Vec::new(),
            sync_waits: Vec::new(),
            deferred_watches: Vec::new(),
            next_session,
        }
    }

    /// A fresh session id (unique across servers and restarts, see `Server::new`).
    pub(crate) fn new_session(&mut self) -> SessionId {
        let session = self.next_session;
        self.next_session += 1;
        session
    }

    /// A request number for a write of `conn`, which then waits for its txn.
    pub(crate) fn new_rid(&mut self, conn: ConnId) -> u64 {
        let rid = self.next_rid;
        self.next_rid += 1;
        let old = self.rid_owner.insert(rid, conn);
        assert!(old.is_none(), "request number {rid} reused");
        rid
    }

    /// A sync id for `conn`, which then waits for the leader's answer.
    pub(crate) fn new_sync(&mut self, conn: ConnId) -> u64 {
        let id = self.next_sync_id;
        self.next_sync_id += 1;
        let old = self.sync_owner.insert(id, conn);
        assert!(old.is_none(), "sync id {id} reused");
        id
    }

    /// Forget `conn` and everything that waits on its behalf. Whether it was there.
    pub(crate) fn remove(&mut self, conn: ConnId) -> bool {
        if self.conns.remove(&conn).is_none() {
            return false;
        }
        self.rid_owner.retain(|_, c| *c != conn);
        self.sync_owner.retain(|_, c| *c != conn);
        self.revalidate_at.retain(|(_, c)| *c != conn);
        self.sync_waits.retain(|(_, c)| *c != conn);
        true
    }

    /// Forget what waits (every connection is gone or going).
    pub(crate) fn clear_waiters(&mut self) {
        self.rid_owner.clear();
        self.sync_owner.clear();
        self.revalidate_at.clear();
        self.sync_waits.clear();
    }

    /// Every waiter names a live connection, every connection creating its session owns its
    /// request number, no answer waits at a queue's front, and setWatches' events left with
    /// their reply; nothing waits for a zxid at or below `applied`.
    pub(crate) fn check_invariants(&self, applied: Zxid) {
        // Run after every event: each map is walked once, and a bound on its keys is checked
        // against its largest key, not key by key.
        assert!(
            self.deferred_watches.is_empty(),
            "setWatches' events not sent"
        );
        if let Some((rid, _)) = self.rid_owner.last_key_value() {
            assert!(*rid < self.next_rid);
            for conn in self.rid_owner.values() {
                self.assert_live(*conn);
            }
        }
        if let Some((id, _)) = self.sync_owner.last_key_value() {
            assert!(*id < self.next_sync_id);
            for conn in self.sync_owner.values() {
                self.assert_live(*conn);
            }
        }
        // What waits for a zxid waits for one not applied yet: each apply answers the rest
        // (`after_apply`), so a sync or a re-attach is never left waiting for what is here.
        for (z, conn) in &self.sync_waits {
            self.assert_live(*conn);
            assert!(
                *z > applied,
                "connection {conn} still waits for {z}, applied {applied}"
            );
        }
        for (z, conn) in &self.revalidate_at {
            assert!(
                matches!(self.live(*conn).phase, ConnPhase::Revalidating { .. }),
                "connection {conn} re-attached twice"
            );
            assert!(
                *z > applied,
                "re-attach of connection {conn} still waits for {z}, applied {applied}"
            );
        }
        for (conn, c) in &self.conns {
            assert!(!c.auth.is_empty(), "a connection without its ip id");
            // an answer goes out as soon as it is at the front (`drain` after each change)
            assert!(
                c.queue
                    .front()
                    .is_none_or(|p| p.result.is_none()
                        && !matches!(p.wait, Wait::Read(_) | Wait::Refused(_))),
                "an answerable request left at the front of connection {conn}"
            );
            match c.phase {
                ConnPhase::Creating { rid, .. } => assert_eq!(
                    self.rid_owner.get(&rid),
                    Some(conn),
                    "a session creation unowned"
                ),
                // A re-attach waits on its sync (owned) or, once answered, on its sync point.
                ConnPhase::Revalidating { sync_id } if sync_id != u64::MAX => assert!(
                    self.sync_owner.get(&sync_id) == Some(conn)
                        || self.revalidate_at.iter().any(|(_, w)| w == conn),
                    "re-attach of connection {conn} waits for nothing"
                ),
                _ => {}
            }
        }
    }

    /// The connection a waiter names, which must be live.
    #[inline]
    fn live(&self, conn: ConnId) -> &Conn {
        match self.conns.get(&conn) {
            Some(c) => c,
            None => panic!("a waiter for a gone connection {conn}"),
        }
    }

    #[inline]
    fn assert_live(&self, conn: ConnId) {
        self.live(conn);
    }
}
