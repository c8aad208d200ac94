//! The link model: one FIFO queue per direction and channel (a TCP connection), and a set of
//! cut directions (a partition). Election and quorum messages travel on different connections
//! when channels are split, so they may overtake one another; otherwise each pair has one.

use ensemble_core::peer::PeerMsg;
use ensemble_core::txn::ServerId;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One direction of one connection. Ordered by (from, to, election), the order of delivery
/// rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Link {
    pub from: ServerId,
    pub to: ServerId,
    /// The election connection (only when channels are split).
    pub election: bool,
}

#[derive(Default)]
pub struct Links {
    queues: BTreeMap<Link, VecDeque<PeerMsg>>,
    cut: BTreeSet<(ServerId, ServerId)>,
    /// Election messages on a connection of their own.
    split_channels: bool,
}

impl Links {
    pub fn new(split_channels: bool) -> Links {
        Links {
            split_channels,
            ..Links::default()
        }
    }

    /// Queue `msg` on `from` → `to`, unless that direction is cut (then it is lost).
    pub fn push(&mut self, from: ServerId, to: ServerId, msg: PeerMsg) {
        if self.is_cut(from, to) {
            return;
        }
        let election = self.split_channels && msg.is_election();
        let link = Link { from, to, election };
        self.queues.entry(link).or_default().push_back(msg);
    }

    pub fn pop(&mut self, link: Link) -> Option<PeerMsg> {
        self.queues.get_mut(&link).and_then(|q| q.pop_front())
    }

    pub fn queue(&self, link: Link) -> Option<&VecDeque<PeerMsg>> {
        self.queues.get(&link)
    }

    /// The links with something in flight, in delivery order.
    pub fn busy(&self) -> Vec<Link> {
        self.queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, _)| *k)
            .collect()
    }

    /// The quorum connection between `a` and `b` breaks: what was in flight either way on it
    /// is lost (with one channel per pair, everything between them).
    pub fn break_quorum(&mut self, a: ServerId, b: ServerId) {
        for (from, to) in [(a, b), (b, a)] {
            self.queues.remove(&Link {
                from,
                to,
                election: false,
            });
        }
    }

    /// Every connection of `id` breaks (it crashed): nothing in flight to or from it survives.
    pub fn drop_all_of(&mut self, id: ServerId) {
        self.queues.retain(|l, _| l.from != id && l.to != id);
    }

    /// Cut `from` → `to`: what is in flight on it is lost, and so is what is sent later.
    /// Returns whether it was newly cut.
    pub fn cut(&mut self, from: ServerId, to: ServerId) -> bool {
        self.queues.retain(|l, _| (l.from, l.to) != (from, to));
        self.cut.insert((from, to))
    }

    pub fn is_cut(&self, from: ServerId, to: ServerId) -> bool {
        self.cut.contains(&(from, to))
    }

    /// The cut pairs, each once (lower id first), in order.
    pub fn cut_pairs(&self) -> Vec<(ServerId, ServerId)> {
        self.cut.iter().copied().filter(|(a, b)| a < b).collect()
    }

    /// Restore every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// The model's invariants: nothing waits on a cut direction, and election connections
    /// exist only when channels are split.
    pub fn check(&self) {
        for (l, q) in &self.queues {
            assert!(
                q.is_empty() || !self.is_cut(l.from, l.to),
                "messages queued on the cut link {} -> {}",
                l.from,
                l.to
            );
            assert!(
                self.split_channels || !l.election,
                "an election link, unsplit"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_core::zxid::Zxid;

    fn ack(n: u32) -> PeerMsg {
        PeerMsg::Ack {
            zxid: Zxid::new(1, n),
        }
    }

    #[test]
    fn fifo_per_direction_and_cut_links_lose_messages() {
        let mut l = Links::new(false);
        l.push(1, 2, ack(1));
        l.push(1, 2, ack(2));
        l.push(2, 1, ack(3));
        let busy = l.busy();
        assert_eq!(busy.len(), 2);
        assert_eq!(l.pop(busy[0]), Some(ack(1)));
        assert!(l.cut(1, 2), "newly cut");
        assert!(!l.cut(1, 2));
        assert_eq!(l.pop(busy[0]), None, "in flight on a cut link is lost");
        l.push(1, 2, ack(4));
        assert_eq!(l.busy(), vec![busy[1]], "sent on a cut link is lost");
        assert_eq!(l.cut_pairs(), vec![(1, 2)]);
        l.heal();
        l.push(1, 2, ack(5));
        assert_eq!(l.busy().len(), 2);
        l.check();
        l.drop_all_of(2);
        assert!(l.busy().is_empty());
    }

    #[test]
    fn split_channels_break_separately() {
        let mut l = Links::new(true);
        let note = PeerMsg::Notification(ensemble_core::peer::Notification {
            vote: ensemble_core::peer::Vote {
                leader: 1,
                zxid: Zxid::ZERO,
                peer_epoch: 0,
            },
            state: ensemble_core::peer::ServerState::Looking,
            election_epoch: 1,
            config_version: 0,
            intact: true,
        });
        assert!(note.is_election());
        l.push(1, 2, note);
        l.push(1, 2, ack(1));
        assert_eq!(l.busy().len(), 2, "election and quorum connections");
        l.break_quorum(2, 1);
        let left = l.busy();
        assert_eq!(left.len(), 1);
        assert!(left[0].election, "only the quorum connection broke");
        l.check();
    }
}
