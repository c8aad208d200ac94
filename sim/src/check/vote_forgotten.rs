//! `election.vote-forgotten`: a LOOKING voter forgets a vote it counted in its round only if
//! the sender's data dir no longer vouches for what it acknowledged (lost, or cut short by
//! storage damage).
//!
//! FLE keeps a sender's vote of round R in `recvset` whatever the sender says later from an
//! older round (rounds only grow within a process, so an older round means a restart). The
//! core goes one step further (issue 13): a sender that restarted from a lost disk (its
//! notification no longer vouches, `intact` false) no longer holds what its counted vote came
//! from, and that vote is dropped until it votes anew. A sender that restarted intact still
//! holds it, and its vote stays. The simulator knows which (`Node::unvouched`, no
//! currentEpoch written since either way): `Node::lost_state` (wiped or put back older by
//! the `disk-loss` fault), or `Node::cut_state` (its recovery over storage damage the
//! simulator injected, a misdirected write say, cut the log short of the history its
//! currentEpoch vouched for, so recovery removed currentEpoch: seed 1494), taken as the
//! notification reached the receiver (`heard_unvouched`). An undamaged disk that restarts
//! vouching for nothing is no excuse. The forgetting is seen through the
//! core's `recvset` (`Server::election_counted`) before and after the step that took a
//! notification: counted before, not after, in the same round and still LOOKING.

use crate::check::{Claim, violation};
use crate::world::World;
use ensemble_core::peer::{PeerMsg, ServerState};
use ensemble_core::server::Event;
use ensemble_core::txn::ServerId;

/// A notification's sender whose vote the receiver counted before the step, in that round.
pub(crate) struct Counted {
    from: ServerId,
    round: u64,
}

impl World {
    /// Before server `id` takes `event`: the sender of a notification, if its vote is counted.
    pub(crate) fn vote_counted_before(&self, id: ServerId, event: &Event) -> Option<Counted> {
        let Event::Peer {
            from,
            msg: PeerMsg::Notification(_),
        } = event
        else {
            return None;
        };
        let s = self.nodes.get(&id)?.server.as_ref()?;
        if s.state() != ServerState::Looking {
            return None;
        }
        let (round, counted) = s.election_counted(*from);
        counted.then_some(Counted { from: *from, round })
    }

    /// After server `id`'s step: a vote counted before and forgotten in the same round was
    /// its sender's only if the sender's data dir no longer vouched (lost or cut short).
    pub(crate) fn check_vote_forgotten(&mut self, id: ServerId, before: Counted) {
        let Some(s) = self.nodes.get(&id).and_then(|n| n.server.as_ref()) else {
            return;
        };
        if s.state() != ServerState::Looking
            || s.election_counted(before.from) != (before.round, false)
        {
            return;
        }
        let unvouched = self.nodes[&id]
            .heard_unvouched
            .get(&before.from)
            .copied()
            .unwrap_or(false);
        if unvouched || self.violation.is_some() {
            return;
        }
        let v = violation(
            Claim::ElectionVoteForgotten,
            self.sched.now,
            format!(
                "n{id} forgot n{}'s vote counted in round {} when it answered from an older \
                 round, but n{} had neither lost its data dir nor had it cut short by storage \
                 damage (it restarted intact)",
                before.from, before.round, before.from
            ),
        );
        self.fail(v);
    }
}
