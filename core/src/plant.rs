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
    /// `addauth digest` with the configured super digest does not make the super user.
    SuperDigestIgnored,
}

impl Plant {
    pub const ALL: [Plant; 8] = [
        Plant::CommitBeforeQuorum,
        Plant::AckBeforeDurable,
        Plant::DiffInsteadOfTrunc,
        Plant::VoteIgnoresEpoch,
        Plant::EphemeralSurvivesExpiry,
        Plant::SyncWithoutQuorum,
        Plant::LostWatch,
        Plant::SuperDigestIgnored,
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
            Plant::SuperDigestIgnored => "super-digest-ignored",
        }
    }

    pub fn from_name(name: &str) -> Option<Plant> {
        Plant::ALL.iter().copied().find(|p| p.name() == name)
    }
}

/// Is `p` the planted bug of this run? Always false without the `plants` feature.
#[inline]
pub fn active(configured: Option<Plant>, p: Plant) -> bool {
    cfg!(feature = "plants") && configured == Some(p)
}
