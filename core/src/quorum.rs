//! ZooKeeper's QuorumVerifier: the one place a quorum question is answered. A majority of the
//! voting members of the configuration in force (`QuorumMaj`) and, while a reconfig is logged
//! and not yet committed, of the proposed one too (ZooKeeper's lastSeenQuorumVerifier: the
//! leader's proposals and NEWLEADER then need a quorum of each, and so does an election).

use crate::config::Config;
use crate::txn::ServerId;
use std::collections::BTreeSet;

/// How many servers' answers [`QuorumVerifier::agreed`] sorts without allocating.
const ON_STACK: usize = 16;

/// Which sets of servers form a quorum.
/// The default has no voters and so no quorum (an election not started yet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuorumVerifier {
    /// The voting members (participants) of the configuration in force. Observers never count.
    voters: BTreeSet<ServerId>,
    /// The voters of a proposed configuration not yet committed: a quorum of them is needed too.
    next: Option<BTreeSet<ServerId>>,
}

impl QuorumVerifier {
    /// A majority of `cfg`'s participants.
    pub fn majority(cfg: &Config) -> QuorumVerifier {
        let voters: BTreeSet<ServerId> = cfg.voters().collect();
        QuorumVerifier { voters, next: None }
    }

    /// The configuration in force, and the one proposed while a reconfig is pending.
    pub fn of(
        current: &crate::membership::Membership,
        next: Option<&crate::membership::Membership>,
    ) -> QuorumVerifier {
        QuorumVerifier {
            voters: current.voters().collect(),
            next: next.map(|m| m.voters().collect()),
        }
    }

    /// Is a quorum of a second configuration needed too (a reconfig pending)?
    pub fn is_joint(&self) -> bool {
        self.next.is_some()
    }

    /// A voter of the configuration in force or of the one pending.
    pub fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id) || self.next.as_ref().is_some_and(|n| n.contains(&id))
    }

    /// May `id` lead: a voter of the configuration in force (FLE's totalOrderPredicate gives a
    /// server of weight 0 no vote). Not the pending one: servers disagree on what is pending
    /// (a deposed leader's uncommitted change), and a vote only wins if its candidate, by its
    /// own view, may lead; a leader the pending change removes commits it, then hands over.
    pub fn can_lead(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    /// The voters of either configuration (who gets election notifications).
    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        let extra = self
            .next
            .iter()
            .flatten()
            .copied()
            .filter(|id| !self.voters.contains(id));
        self.voters.iter().copied().chain(extra)
    }

    /// How many voters make a quorum.
    pub fn quorum_size(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Do `ids` (distinct servers) contain a quorum (of each configuration, while a reconfig
    /// is pending)? Non-voters among them are ignored.
    pub fn contains_quorum(&self, ids: impl IntoIterator<Item = ServerId>) -> bool {
        // one pass, both configurations counted together (asked on every ACK: no allocation)
        let (mut now, mut next) = (0, 0);
        for id in ids {
            now += usize::from(self.voters.contains(&id));
            next += usize::from(self.next.as_ref().is_some_and(|n| n.contains(&id)));
        }
        debug_assert!(now <= self.voters.len(), "a voter counted twice");
        debug_assert!(
            self.next.as_ref().is_none_or(|n| next <= n.len()),
            "a next voter counted twice"
        );
        let of = |have: usize, voters: &BTreeSet<ServerId>| have * 2 > voters.len();
        of(now, &self.voters) && self.next.as_ref().is_none_or(|n| of(next, n))
    }

    /// `contains_quorum` for a server about to join an established leader that `ids` follow:
    /// it counts itself, `joiner`, in the pending configuration's quorum only, where the
    /// leader may be waiting for its ACK to commit that very change (election.rs).
    pub fn contains_quorum_joining(
        &self,
        ids: impl IntoIterator<Item = ServerId>,
        joiner: ServerId,
    ) -> bool {
        let ids: BTreeSet<ServerId> = ids.into_iter().collect();
        let of = |voters: &BTreeSet<ServerId>, ids: &BTreeSet<ServerId>| {
            ids.iter().filter(|id| voters.contains(id)).count() * 2 > voters.len()
        };
        if !of(&self.voters, &ids) {
            return false;
        }
        let Some(next) = &self.next else {
            return true;
        };
        if of(next, &ids) {
            return true;
        }
        let mut with = ids;
        with.insert(joiner);
        let joined = of(next, &with);
        if joined {
            crate::probe!("election.joiner-counted-pending");
        }
        joined
    }

    /// Do `ids` (distinct servers, each with whether its durable state is intact) form a
    /// quorum whose members may be counted for what they hold? For the configuration in force
    /// and, while a reconfig is pending, the proposed one, each: `ids` hold a majority of its
    /// voters and their intact members meet every majority of it (at least half of its voters:
    /// a majority when the count is odd, half when even), or every one of its voters is among
    /// `ids` (a fresh ensemble's genesis, where all are empty: every holder of anything is then
    /// among them). A server with a lost or reset disk cannot tell itself from one never
    /// started, so it vouches for nothing until it syncs; counting it as a witness of its
    /// (empty) history could elect a leader that misses committed txns (sim/README.md, "Disk
    /// loss": what is committed is on a majority, which every such set of intact members meets).
    pub fn contains_vouching_quorum(
        &self,
        ids: impl IntoIterator<Item = (ServerId, bool)>,
    ) -> bool {
        let ids: Vec<(ServerId, bool)> = ids.into_iter().collect();
        let mut genesis = false;
        let mut vouched = |voters: &BTreeSet<ServerId>| {
            let intact = ids
                .iter()
                .filter(|(id, ok)| *ok && voters.contains(id))
                .count();
            let members = ids.iter().filter(|(id, _)| voters.contains(id)).count();
            if members * 2 > voters.len() && intact * 2 >= voters.len() && intact > 0 {
                if intact * 2 == voters.len() {
                    // an even configuration: half of it intact meets every majority
                    crate::probe!("quorum.vouching-half");
                }
                return true;
            }
            let every =
                !voters.is_empty() && voters.iter().all(|v| ids.iter().any(|(id, _)| id == v));
            genesis |= every;
            every
        };
        let counted = vouched(&self.voters) && self.next.as_ref().is_none_or(&mut vouched);
        // Vouching is stricter than a quorum, never looser.
        assert!(
            !counted || self.contains_quorum(ids.iter().map(|(id, _)| *id)),
            "a vouching quorum that is no quorum"
        );
        if counted && genesis {
            crate::probe!("quorum.genesis-every-voter");
        }
        if !counted && self.contains_quorum(ids.iter().map(|(id, _)| *id)) {
            // a quorum, but not one that can vouch: wait for intact voters or for all of them
            crate::probe!("quorum.lost-state-not-counted");
        }
        counted
    }

    /// A quorum of the configuration in force alone (the plant that forgets the old one asks
    /// only the new one: [`QuorumVerifier::next_only`]).
    pub fn next_only(&self) -> QuorumVerifier {
        QuorumVerifier {
            voters: self.next.clone().unwrap_or_else(|| self.voters.clone()),
            next: None,
        }
    }

    /// The plant `joiner-ack-counted`: [`QuorumVerifier::agreed`] with every server counted
    /// as if it were a voter, a non-voting learner's ACK included (only the quorum sizes come
    /// from the configurations).
    pub fn agreed_counting_non_voters<T: Ord + Copy>(
        &self,
        reached: impl IntoIterator<Item = (ServerId, T)>,
    ) -> Option<T> {
        let mut reached: Vec<T> = reached.into_iter().map(|(_, v)| v).collect();
        reached.sort_unstable_by_key(|v| std::cmp::Reverse(*v));
        let needed = self
            .next
            .as_ref()
            .map_or(0, |n| n.len() / 2 + 1)
            .max(self.quorum_size());
        reached.get(needed.checked_sub(1)?).copied()
    }

    /// The highest value a quorum has reached, given each server's (ids distinct): what a
    /// leader may commit from its followers' ACKs, or `None` while too few voters answered.
    /// Non-voters are ignored.
    /// While a reconfig is pending, the lower of the two configurations' answers.
    pub fn agreed<T: Ord + Copy>(
        &self,
        reached: impl IntoIterator<Item = (ServerId, T)>,
    ) -> Option<T> {
        // sorted once, highest first: a configuration's answer is the value at which its
        // voters among them first make a quorum. Asked on every ACK, so an ensemble's worth
        // is sorted on the stack; a larger one spills to the heap. None reached, no quorum.
        let mut reached = reached.into_iter();
        let first = reached.next()?;
        let mut stack = [first; ON_STACK];
        let mut len = 1;
        let mut spill: Vec<(ServerId, T)> = Vec::new();
        for r in reached {
            if len < ON_STACK {
                stack[len] = r;
                len += 1;
            } else {
                if spill.is_empty() {
                    spill.extend_from_slice(&stack);
                }
                spill.push(r);
            }
        }
        let reached: &mut [(ServerId, T)] = if spill.is_empty() {
            &mut stack[..len]
        } else {
            &mut spill
        };
        reached.sort_unstable_by_key(|r| std::cmp::Reverse(r.1));
        let of = |voters: &BTreeSet<ServerId>| {
            let needed = voters.len() / 2 + 1;
            let mut have = 0;
            for (id, v) in reached.iter() {
                if voters.contains(id) {
                    have += 1;
                    if have == needed {
                        return Some(*v);
                    }
                }
            }
            debug_assert!(have <= voters.len(), "a voter counted twice");
            None
        };
        let now = of(&self.voters)?;
        match &self.next {
            None => Some(now),
            Some(next) => Some(now.min(of(next)?)),
        }
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
    fn servers_that_lost_their_state_count_only_with_every_voter() {
        let q = verifier(3, 1);
        assert!(q.contains_vouching_quorum([(1, true), (2, true)]));
        assert!(
            !q.contains_vouching_quorum([(1, false), (3, false)]),
            "a wiped server and a fresh one (the third holds what they lack)"
        );
        assert!(!q.contains_vouching_quorum([(1, true), (2, false)]));
        assert!(!q.contains_vouching_quorum([(1, true), (2, false), (4, true)]));
        assert!(
            q.contains_vouching_quorum([(1, false), (2, false), (3, false)]),
            "genesis: every voter is there"
        );
        assert!(q.contains_vouching_quorum([(1, true), (2, false), (3, false)]));
    }

    #[test]
    fn an_even_configuration_needs_half_of_its_voters_intact_in_a_quorum() {
        let q = verifier(6, 1);
        assert!(
            q.contains_vouching_quorum([(1, true), (2, true), (3, true), (4, false)]),
            "three intact of six meet every majority (four) of them"
        );
        assert!(
            !q.contains_vouching_quorum([(1, true), (2, true), (3, true), (7, false)]),
            "half intact, but an observer makes no quorum"
        );
        assert!(
            !q.contains_vouching_quorum([(1, true), (2, true), (3, false), (4, false)]),
            "two intact of six miss the majority 3, 4, 5, 6"
        );
        assert!(!q.contains_vouching_quorum([(1, true), (2, true), (3, true)]));
        let q = verifier(2, 0);
        assert!(!q.contains_vouching_quorum([(1, true)]), "no majority");
        assert!(q.contains_vouching_quorum([(1, true), (2, false)]));
        let q = verifier(4, 0);
        assert!(q.contains_vouching_quorum([(1, true), (2, true), (3, false)]));
        assert!(!q.contains_vouching_quorum([(1, true), (2, false), (3, false)]));
        assert!(q.contains_vouching_quorum([(1, false), (2, false), (3, false), (4, false)]));
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
        assert_eq!(q.agreed(std::iter::empty::<(ServerId, u32)>()), None);
        // more answers than sorted on the stack (ids past the voters never count)
        let big = verifier(21, 0);
        let acks = (1..=21).map(|id| (id, id * 10));
        assert_eq!(
            big.agreed(acks.clone()),
            Some(110),
            "the 11th highest of 21"
        );
        assert_eq!(big.agreed(acks.clone().take(11)), Some(10));
        assert_eq!(big.agreed(acks.take(10)), None);
    }

    /// A reconfig from voters {1, 2, 3} to {3, 4, 5} under way, and the new configuration.
    fn joint() -> (QuorumVerifier, crate::membership::Membership) {
        use crate::membership::Membership;
        let roles = |ids: &[u64]| {
            ids.iter()
                .map(|id| (*id, LearnerType::Participant))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let old = Membership::synthetic(&roles(&[1, 2, 3]));
        let new = Membership::synthetic(&roles(&[3, 4, 5]));
        (QuorumVerifier::of(&old, Some(&new)), new)
    }

    #[test]
    fn during_a_reconfig_a_quorum_of_each_configuration_is_needed() {
        let (q, new) = joint();
        assert!(q.is_joint());
        assert!(!q.contains_quorum([1, 2]), "the old quorum alone");
        assert!(!q.contains_quorum([4, 5]), "the new quorum alone");
        assert!(q.contains_quorum([1, 2, 4, 5]));
        assert!(q.contains_quorum([2, 3, 4]));
        assert_eq!(q.agreed([(1, 9), (2, 9), (4, 5), (5, 6)]), Some(5));
        assert_eq!(q.agreed([(1, 9), (2, 9)]), None);
        assert_eq!(q.voters().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert!(q.next_only().contains_quorum([4, 5]));
        let q = QuorumVerifier::of(&new, None);
        assert!(q.contains_quorum([4, 5]) && !q.is_voter(1));
    }

    #[test]
    fn during_a_reconfig_each_configuration_needs_its_own_vouching_quorum() {
        let (q, _) = joint();
        assert!(q.contains_vouching_quorum([(1, true), (2, true), (4, true), (5, true)]));
        assert!(
            !q.contains_vouching_quorum([(1, true), (2, true), (4, true), (5, false)]),
            "the new configuration's quorum has a member that lost its state"
        );
        assert!(
            q.contains_vouching_quorum([(1, true), (2, true), (3, false), (4, false), (5, false)]),
            "an intact old quorum, and every voter of the new one"
        );
        assert!(
            !q.contains_vouching_quorum([(1, false), (3, true), (4, true), (5, true)]),
            "the old configuration: neither an intact quorum nor every voter"
        );
    }
}
