//! The checkers: every claim the simulator checks, one module per family, behind the
//! [`Claim`] enum (`claim`), each documented where it is defined.
//!
//! * `reference`: the committed history as the simulator knows it (a fresh `DataTree`
//!   replaying every committed txn) that servers and clients are checked against, and `model`,
//!   an independent model of the tree checking that reference (`tree.model`);
//! * `zab`: ZAB safety after every server step (one leader per epoch, agreement, total order,
//!   commit only with a quorum, the new leader's history), `cap` the partition claim;
//! * `client`: each reply and watch event against the history (and `session`, `acl`, `wgl`:
//!   session closing, ACLs, a linearizability search; `expired`: writes refused
//!   SESSIONEXPIRED name sessions that ended; `expired_answers`: a leader's SESSIONEXPIRED
//!   answers the request it refused, in its turn);
//! * `quota`: the quota stats nodes and hard limits against the history;
//! * `read_only`: a read-only server does no quorum work; local sessions stay home;
//! * `lost_state`: no quorum counts a server for the data dir it lost (`zab.lost-state-counted`);
//! * `vote_forgotten`: a counted vote is forgotten only for a sender that lost its data dir
//!   (`election.vote-forgotten`);
//! * `vouched`: a restarted server's vote presents its currentEpoch only over the history
//!   that epoch vouched for (`election.epoch-vouched`);
//! * `persisted`: a snapshot taken node by node and built back is the same snapshot;
//! * `sync`: a SNAP streamed in parts is whole before anything is built from it;
//! * `learner_traffic`: a leader's per-learner counters against what each link carried
//!   (`leader.learner-traffic`); `conn_session`: the session each client connection is
//!   bound to against the handshakes (`client.connection-session`); `close_reason`: a
//!   connection closed only for a reason the world can name (`client.close-reason`);
//! * `reconfig_version`: a reconfig refused BadVersion named another version than the
//!   configuration committed (`reconfig.from-config`); `reconfig_arguments`: one refused
//!   BadArguments parses and leaves two voters or more (`reconfig.well-formed-refused`);
//! * `liveness`: availability while the faults run and convergence after they heal;
//! * `recipes`: locks, master election, naming, membership and configuration;
//! * `scenario`: the claims a scenario file names.

pub mod acl;
mod cap;
mod claim;
mod client;
mod close_reason;
mod conn_session;
mod election;
mod expired;
mod expired_answers;
mod handover;
mod handover_taken;
mod learner_dropped;
mod learner_traffic;
pub(crate) mod liveness;
mod lost_state;
pub mod model;
mod persisted;
mod quota;
mod read_only;
mod read_only_grace;
mod recipes;
mod reconfig_arguments;
mod reconfig_version;
mod reference;
mod scenario;
pub mod session;
mod sync;
mod vote_forgotten;
mod vouched;
pub mod wgl;
mod zab;

pub use cap::PartitionRecord;
pub use claim::{Claim, UnknownClaim};
pub(crate) use conn_session::ConnSessions;
pub use election::FleRecord;
pub use expired::ExpiredRefusals;
pub(crate) use expired_answers::ExpiredAnswers;
pub use handover::HandOverRecord;
pub(crate) use learner_traffic::LinkTraffic;
pub use liveness::Availability;
pub(crate) use persisted::RoundTripped;
pub(crate) use read_only_grace::ReadOnlyGrace;
pub use recipes::Resource;
pub use reference::{NodeSnap, Reference, TxnInfo, normalize};
use std::fmt;
pub(crate) use sync::SnapStream;
pub use zab::{Delivered, ZabRecord, check_delivery};

/// A broken claim: which one, when, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub claim: Claim,
    pub at_ms: u64,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at t={}ms: {}", self.claim, self.at_ms, self.detail)
    }
}

pub fn violation(claim: Claim, at_ms: u64, detail: String) -> Violation {
    Violation {
        claim,
        at_ms,
        detail,
    }
}
