//! One ensemble member: events in, effects out.

use crate::config::Config;
use crate::peer::{PeerMsg, ServerState};
use crate::proto::{ConnectRequest, ConnectResponse, OpCode, Reply, Request, SessionId, WatchedEvent};
use crate::tree::DataTree;
use crate::txn::{ServerId, Txn};
use crate::zxid::Zxid;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Milliseconds. The node passes wall-clock ms since the Unix epoch; the simulator its virtual
/// clock. The core only compares and subtracts them, and stamps txns with the leader's.
pub type Millis = u64;

/// A client connection, numbered by the runtime; unique for the life of one `Server`.
pub type ConnId = u64;

/// What the runtime tells the core.
#[derive(Clone, Debug)]
pub enum Event {
    /// Time passed. Deliver at least every `Server::tick_interval()` ms.
    Tick,
    Peer { from: ServerId, msg: PeerMsg },
    /// The quorum-channel connection with `peer` broke: anything in flight either way may be lost.
    PeerDisconnected { peer: ServerId },
    /// A client's handshake. `addr` is its IP address (for `ip` ACLs and maxClientCnxns).
    ClientConnected { conn: ConnId, addr: String, request: ConnectRequest },
    Client { conn: ConnId, xid: i32, request: Request },
    ClientDisconnected { conn: ConnId },
    /// Every txn appended so far with zxid <= `through` is durable.
    Persisted { through: Zxid },
}

/// What the core wants done. The runtime executes effects in order. `Append` may complete
/// later (reported by `Event::Persisted`); `PersistEpochs`, `Truncate` and a `Snapshot` with
/// `reset_log` must be durable before any later effect is executed.
#[derive(Clone, Debug)]
pub enum Effect {
    Send { to: ServerId, msg: PeerMsg },
    /// Break the quorum connection with `peer` (a learner we drop, a leader we leave).
    DisconnectPeer { peer: ServerId },
    ConnectReply { conn: ConnId, response: ConnectResponse },
    Reply { conn: ConnId, xid: i32, zxid: Zxid, opcode: OpCode, reply: Reply },
    Watch { conn: ConnId, event: WatchedEvent },
    /// Close a client connection (after sending what was queued before it).
    Close { conn: ConnId },
    /// Append to the txn log; durability is reported later with `Event::Persisted`.
    Append { txns: Vec<Txn> },
    /// Drop every logged txn with zxid > `after`.
    Truncate { after: Zxid },
    /// A snapshot of the applied state at `zxid`. With `reset_log` (a SNAP from the leader) the
    /// log restarts after `zxid`, and the runtime must make it durable before going on.
    Snapshot { zxid: Zxid, data: Arc<Vec<u8>>, reset_log: bool },
    /// acceptedEpoch / currentEpoch, durable before the next effect.
    PersistEpochs(Epochs),
    /// For logs, 4lw and the simulator's checkers.
    StateChanged { state: ServerState, epoch: u32 },
}

/// ZAB's two persisted epochs, plus the leader `accepted_epoch` was accepted from (so a
/// learner never ACKEPOCHs the same epoch to two different leaders).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epochs {
    pub accepted_epoch: u32,
    pub accepted_from: ServerId,
    pub current_epoch: u32,
}

/// What the runtime found on disk at start.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    pub epochs: Epochs,
    /// The newest valid snapshot: its zxid and bytes (as `Effect::Snapshot` gave them).
    pub snapshot: Option<(Zxid, Arc<Vec<u8>>)>,
    /// The logged txns after the snapshot, in zxid order.
    pub log: Vec<Txn>,
}

/// A snapshot the runtime handed back could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("snapshot at {zxid} is unreadable: {reason}")]
    BadSnapshot { zxid: Zxid, reason: String },
    #[error("log is not in zxid order at {zxid}")]
    LogOrder { zxid: Zxid },
}

/// A summary for four-letter words and the simulator.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub state: Option<ServerState>,
    pub standalone: bool,
    pub leader: Option<ServerId>,
    pub current_epoch: u32,
    pub accepted_epoch: u32,
    pub election_epoch: u64,
    pub last_applied: Zxid,
    pub last_logged: Zxid,
    pub node_count: usize,
    pub approximate_data_size: u64,
    pub ephemerals_count: usize,
    pub sessions: usize,
    pub connections: usize,
    pub watch_count: usize,
    pub watched_paths: usize,
    pub outstanding_requests: usize,
    /// Leader only: connected learners, voting followers synced, observers.
    pub learners: usize,
    pub synced_followers: usize,
    pub synced_observers: usize,
    pub pending_proposals: usize,
}

/// One ensemble member. SKELETON: the public API below is the contract for the simulator and
/// the node; the protocol is being written.
pub struct Server {
    config: Config,
    tree: DataTree,
}

impl Server {
    /// A member recovered from what the runtime found on disk. It starts LOOKING.
    pub fn new(config: Config, recovered: Recovered, now: Millis) -> Result<Server, RecoverError> {
        let _ = (recovered, now);
        let tree = DataTree::new(crate::tree::TreeOptions {
            extended_types: config.extended_types,
            plant: config.plant,
        });
        Ok(Server { config, tree })
    }

    /// Feed one event at time `now`; effects are appended to `out`.
    pub fn handle(&mut self, now: Millis, event: Event, out: &mut Vec<Effect>) {
        let _ = (now, event, out);
        todo!()
    }

    /// How often the runtime must deliver `Event::Tick` (ms).
    pub fn tick_interval(&self) -> Millis {
        (self.config.tick_time_ms / 4).clamp(1, 50)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn id(&self) -> ServerId {
        self.config.my_id
    }
    pub fn state(&self) -> ServerState {
        ServerState::Looking
    }
    /// The applied (committed) state.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }
    /// The epoch this server leads as an established leader (a quorum ACKed NEWLEADER).
    pub fn established_epoch(&self) -> Option<u32> {
        None
    }
    /// The session a connection is bound to, with its negotiated timeout.
    pub fn connection_session(&self, conn: ConnId) -> Option<(SessionId, i32)> {
        let _ = conn;
        None
    }
    pub fn status(&self) -> Status {
        Status::default()
    }
}
