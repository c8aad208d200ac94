//! Replicated transactions. A txn carries the *request* plus everything needed to resolve it
//! deterministically when it is applied (the leader's clock, the client's auth ids), so every
//! server that applies the same txn sequence computes the same results and the same tree.
//! Snapshots are taken at a zxid (never fuzzy), so txns need not be idempotent.

use crate::zxid::Zxid;
use ensemble_proto::proto::{Id, Request, SessionId};
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
