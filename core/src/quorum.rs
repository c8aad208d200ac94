//! ZooKeeper's QuorumVerifier: the one place a quorum question is answered. Today a majority of
//! the voting members (`QuorumMaj`); reconfiguration will hold the old and the new
//! configuration here (a quorum of each) and weights or groups (`QuorumHierarchical`), and no
//! caller has to change.

use crate::config::Config;
use crate::txn::ServerId;
use std::collections::BTreeSet;

/// Which sets of servers form a quorum.
/// The default has no voters and so no quorum (an election not started yet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuorumVerifier {
    /// The voting members (participants). Observers never count.
    voters: BTreeSet<ServerId>,
}

impl QuorumVerifier {
    /// A majority of `cfg`'s participants.
    pub fn majority(cfg: &Config) -> QuorumVerifier {
        let voters: BTreeSet<ServerId> = cfg.voters().collect();
        QuorumVerifier { voters }
    }

    pub fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.voters.iter().copied()
    }

    /// How many voters make a quorum.
    pub fn quorum_size(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Do `ids` (distinct servers) contain a quorum? Non-voters among them are ignored.
    pub fn contains_quorum(&self, ids: impl IntoIterator<Item = ServerId>) -> bool {
        let have = ids.into_iter().filter(|id| self.is_voter(*id)).count();
        debug_assert!(have <= self.voters.len(), "a voter counted twice");
        have * 2 > self.voters.len()
    }

    /// The highest value a quorum has reached, given each server's (ids distinct): what a
    /// leader may commit from its followers' ACKs, or `None` while too few voters answered.
    /// Non-voters are ignored.
    pub fn agreed<T: Ord + Copy>(
        &self,
        reached: impl IntoIterator<Item = (ServerId, T)>,
    ) -> Option<T> {
        let mut values: Vec<T> = reached
            .into_iter()
            .filter(|(id, _)| self.is_voter(*id))
            .map(|(_, v)| v)
            .collect();
        debug_assert!(values.len() <= self.voters.len(), "a voter counted twice");
        let needed = self.quorum_size();
        if values.len() < needed {
            return None;
        }
        values.sort_unstable_by(|a, b| b.cmp(a));
        Some(values[needed - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LearnerType;

    fn verifier(voters: u64, observers: u64) -> QuorumVerifier {
        let mut members = std::collections::BTreeMap::new();
        for id in 1..=voters {
            members.insert(id, LearnerType::Participant);
        }
        for id in voters + 1..=voters + observers {
            members.insert(id, LearnerType::Observer);
        }
        QuorumVerifier::majority(&Config::new(1, members))
    }

    #[test]
    fn a_majority_of_voters_is_a_quorum_and_observers_never_count() {
        let q = verifier(3, 2);
        assert_eq!(q.quorum_size(), 2);
        assert!(!q.contains_quorum([1]));
        assert!(!q.contains_quorum([1, 4, 5]));
        assert!(q.contains_quorum([1, 3]));
        let q = verifier(4, 0);
        assert!(!q.contains_quorum([1, 2]));
        assert!(q.contains_quorum([1, 2, 4]));
    }

    #[test]
    fn agreed_is_the_highest_value_a_quorum_reached() {
        let q = verifier(5, 1);
        assert_eq!(q.agreed([(1, 9), (2, 7)]), None);
        assert_eq!(
            q.agreed([(1, 9), (2, 7), (6, 8)]),
            None,
            "an observer's ack never counts"
        );
        assert_eq!(q.agreed([(1, 9), (2, 7), (3, 8)]), Some(7));
        assert_eq!(q.agreed([(1, 9), (2, 7), (3, 8), (4, 9)]), Some(8));
    }
}
