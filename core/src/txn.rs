//! Replicated transactions. A txn carries the *request* plus everything needed to resolve it
//! deterministically when it is applied (the leader's clock, the client's auth ids), so every
//! server that applies the same txn sequence computes the same results and the same tree.
//! Snapshots are taken at a zxid (never fuzzy), so txns need not be idempotent.

use crate::zxid::Zxid;
use ensemble_proto::proto::{Acl, Id, Request, SessionId};
use serde::{Deserialize, Serialize};

/// A server's `myid`.
pub type ServerId = u64;

/// Who is waiting for this txn's result: the server the client is connected to and that
/// server's own request number. `rid == 0` means nobody (leader-internal txns, expiries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub server: ServerId,
    pub rid: u64,
}

impl Origin {
    pub const NONE: Origin = Origin { server: 0, rid: 0 };
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// A new session with its negotiated timeout.
    CreateSession { timeout_ms: i32 },
    /// An explicit close or an expiry: deletes the session's ephemerals.
    CloseSession,
    /// A client write (create, delete, setData, setACL, check, multi), resolved when applied.
    /// `auth` is the ids the client's connection had when it sent it.
    Write { request: Request, auth: Vec<Id> },
    /// The leader's reaper removing an empty container or an expired TTL node
    /// (ZooKeeper's deleteContainer); applied only if the node is still childless.
    DeleteContainer { path: String },
    /// A client write proposed by a leader that enforces hard quotas
    /// (`zookeeper.enforceQuota=true`): applied as `Write`, except that an op that would take a
    /// quota'd subtree past its hard count or byte limit fails with QuotaExceeded. The leader
    /// decides, as ZooKeeper's PrepRequestProcessor does, so every replica applies the txn
    /// alike whatever its own setting. A variant of its own (not a field of `Write`) so that
    /// logs written before it read unchanged.
    EnforcedWrite { request: Request, auth: Vec<Id> },
    /// A reconfig (opcode 16) as the leader prepared it (ZooKeeper's PrepRequestProcessor): the
    /// new membership, whose version is this txn's zxid, activated when the txn commits; or the
    /// error code the request is answered with (an error txn, as ZooKeeper logs one). Last, so
    /// that logs written before it read unchanged.
    Reconfig {
        outcome: Result<crate::membership::Membership, i32>,
    },
    /// A txn a foreign leader (Apache ZooKeeper's, followed by `ensemble zk-observe`) resolved
    /// and INFORMed: every result is decided already, so it is applied as it says, never
    /// resolved again (`DataTree::apply`, tree/resolved.rs). Last, as `Reconfig`.
    Resolved(ResolvedTxn),
}

/// A txn as ZooKeeper's leader resolved it (its PrepRequestProcessor's output, the txn records
/// of `zookeeper.jute`): sequential names chosen, versions counted, the parent's cversion
/// decided, errors decided. The txn's header (zxid, time, session, cxid) is the [`Txn`]'s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResolvedTxn {
    /// `CreateTxn` / `CreateContainerTxn` / `CreateTTLTxn`: the owner as the record encodes it
    /// (the session for an ephemeral, the container or TTL marker); `with_stat` for every
    /// opcode but create (1), whose answer is the path only.
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
        with_stat: bool,
    },
    Delete {
        path: String,
    },
    /// `SetDataTxn`: `version` is the node's new version.
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    /// `SetACLTxn`: `version` is the node's new aversion.
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
    },
    CreateSession {
        timeout_ms: i32,
    },
    /// The ephemerals the leader listed (3.6+), besides the session's own.
    CloseSession {
        paths: Option<Vec<String>>,
    },
    /// `ErrorTxn`: the request failed with this code.
    Error {
        err: i32,
    },
    /// A multi's sub-txns; a failed multi is one whose subs are all `Error`s.
    Multi(Vec<ResolvedTxn>),
}

impl TxnOp {
    /// The membership a successful reconfig brings.
    pub fn new_membership(&self) -> Option<&crate::membership::Membership> {
        match self {
            TxnOp::Reconfig { outcome: Ok(m) } => Some(m),
            _ => None,
        }
    }

    /// A client write, enforced or not: its request and the ids it was sent with.
    pub fn client_write(&self) -> Option<(&Request, &[Id])> {
        match self {
            TxnOp::Write { request, auth } | TxnOp::EnforcedWrite { request, auth } => {
                Some((request, auth))
            }
            _ => None,
        }
    }

    /// A closeSession, Ensemble's or a foreign leader's.
    pub fn is_close_session(&self) -> bool {
        matches!(
            self,
            TxnOp::CloseSession | TxnOp::Resolved(ResolvedTxn::CloseSession { .. })
        )
    }

    /// The timeout of a createSession, Ensemble's or a foreign leader's.
    pub fn created_session(&self) -> Option<i32> {
        match self {
            TxnOp::CreateSession { timeout_ms }
            | TxnOp::Resolved(ResolvedTxn::CreateSession { timeout_ms }) => Some(*timeout_ms),
            _ => None,
        }
    }

    /// The op a leader proposes for `self` under its quota setting: a client write becomes an
    /// [`TxnOp::EnforcedWrite`] when it enforces hard quotas.
    pub fn under_quota(self, enforce: bool) -> TxnOp {
        let op = match self {
            TxnOp::Write { request, auth } if enforce => TxnOp::EnforcedWrite { request, auth },
            TxnOp::EnforcedWrite { request, auth } if !enforce => TxnOp::Write { request, auth },
            op => op,
        };
        assert!(
            !matches!(op, TxnOp::Write { .. }) || !enforce,
            "a write escaped its quota"
        );
        assert!(
            !matches!(op, TxnOp::EnforcedWrite { .. }) || enforce,
            "a quota not asked for"
        );
        op
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub zxid: Zxid,
    /// The leader's clock when it proposed this txn (ms since the epoch): ctime/mtime.
    pub time: i64,
    pub session: SessionId,
    pub cxid: i32,
    pub origin: Origin,
    pub op: TxnOp,
}
