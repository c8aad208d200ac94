//! ensemble-core: the consensus core of Ensemble, a ZooKeeper-compatible coordination service.
//!
//! One [`Server`] is one ensemble member as a pure state machine: Fast Leader Election, ZAB
//! (discovery, synchronisation, broadcast), the data tree, sessions and watches. It does no I/O:
//! events go in with the current time, effects come out as data. The simulator (`ensemble-sim`)
//! and the node runtime (`ensemble`) are two interpreters of those effects.

pub mod acl;
mod apply;
mod client_pipeline;
mod cnxn;
pub mod config;
pub mod effect;
pub mod election;
pub mod foreign;
mod leader;
mod learner;
mod learner_handler;
pub mod membership;
pub mod path;
pub mod peer;
pub mod plant;
pub mod probe;
pub mod quorum;
mod read_only_server;
mod read_request;
mod reconfig;
mod role;
pub mod server;
pub mod session_passwd;
mod session_tracker;
mod snapshot_scheduler;
pub mod sync_stream;
#[cfg(test)]
mod test_rig;
pub mod tree;
pub mod txn;
pub mod watch;
mod zab_log;
mod zookeeper_server;
pub mod zxid;

pub use config::{Config, LearnerType};
pub use effect::{Action, ActionSink, Batch, DurableStore, Output, Push, Ready, ReadyMark, Write};
pub use learner_handler::{LearnerInfo, Traffic};
pub use peer::{PeerMsg, ServerState};
pub use server::{ConnId, Epochs, Event, Millis, Recovered, RecoveredSnapshot, Server, Status};
pub use txn::{ResolvedTxn, ServerId, Txn, TxnOp};
pub use zxid::Zxid;
