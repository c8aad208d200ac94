//! The leader's sessions (ZooKeeper's LeaderSessionTracker): each live session's deadline,
//! the expiry queue, the sessions whose closeSession is proposed, and which server each
//! session's requests come through (its owner). Only an established leader has one; learners
//! report activity with their pings. The same tracker, without owners, holds a server's
//! local sessions (ZooKeeper's LocalSessionTracker): those of `localSessionsEnabled` and those
//! of a read-only server, which no other server knows.

use crate::server::Millis;
use crate::txn::{ServerId, TxnOp};
use ensemble_proto::proto::SessionId;
use std::collections::{BTreeMap, BTreeSet};

/// Why the leader will not propose a client's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The session is closing, closed or unknown: SESSIONEXPIRED.
    Expired,
    /// Another server owns the session now: SESSIONMOVED.
    Moved,
}

#[derive(Default)]
pub(crate) struct SessionTracker {
    /// Session -> (deadline, timeout).
    sessions: BTreeMap<SessionId, (Millis, Millis)>,
    /// (deadline, session) of every tracked session, earliest first.
    expiry: BTreeSet<(Millis, SessionId)>,
    /// closeSession proposed (by the client or by expiry), not yet applied.
    closing: BTreeSet<SessionId>,
    /// Which server a session's requests come through (ZooKeeper's session owner): set by the
    /// first request after we took over, by createSession and by a re-attach (REVALIDATE).
    owners: BTreeMap<SessionId, ServerId>,
    /// createSession proposed, not yet applied: a local session being upgraded may send its
    /// ephemeral create right behind it.
    creating: BTreeSet<SessionId>,
}

impl SessionTracker {
    /// Activity on `session`: its deadline moves to `now` + its timeout.
    pub(crate) fn touch(&mut self, session: SessionId, now: Millis) {
        if let Some((deadline, timeout)) = self.sessions.get_mut(&session) {
            let removed = self.expiry.remove(&(*deadline, session));
            assert!(removed, "session {session:#x} tracked without a deadline");
            *deadline = now + *timeout;
            let fresh = self.expiry.insert((*deadline, session));
            assert!(fresh, "session {session:#x} with two deadlines");
        }
    }

    /// A session is live (created, or live when we took over) with this timeout.
    pub(crate) fn track(&mut self, session: SessionId, timeout_ms: i32, now: Millis) {
        let timeout = timeout_ms.max(0) as Millis;
        if let Some((old, _)) = self.sessions.insert(session, (now + timeout, timeout)) {
            self.expiry.remove(&(old, session));
        }
        let fresh = self.expiry.insert((now + timeout, session));
        assert!(fresh, "session {session:#x} with two deadlines");
        self.creating.remove(&session);
        assert_eq!(self.sessions.len(), self.expiry.len());
    }

    /// Every tracked session's deadline, earliest first (for `dump`).
    pub(crate) fn deadlines(&self) -> impl Iterator<Item = (Millis, SessionId)> + '_ {
        self.expiry.iter().copied()
    }

    /// Its closeSession is applied: forget it.
    pub(crate) fn untrack(&mut self, session: SessionId) {
        if let Some((deadline, _)) = self.sessions.remove(&session) {
            let removed = self.expiry.remove(&(deadline, session));
            assert!(removed, "session {session:#x} tracked without a deadline");
        }
        self.closing.remove(&session);
        self.owners.remove(&session);
        self.creating.remove(&session);
        assert_eq!(self.sessions.len(), self.expiry.len());
    }

    /// Is `session` live here (created, not yet untracked)?
    pub(crate) fn is_tracked(&self, session: SessionId) -> bool {
        self.sessions.contains_key(&session)
    }

    /// The timeout `session` was tracked with.
    pub(crate) fn timeout(&self, session: SessionId) -> Option<i32> {
        self.sessions.get(&session).map(|(_, t)| *t as i32)
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.closing.is_empty()
            && self.owners.is_empty()
            && self.creating.is_empty()
    }

    /// Is `session`'s closeSession proposed and not yet applied?
    pub(crate) fn is_closing(&self, session: SessionId) -> bool {
        self.closing.contains(&session)
    }

    /// Mark `session` closing (its expiry's closeSession is about to be proposed).
    pub(crate) fn start_closing(&mut self, session: SessionId) {
        let fresh = self.closing.insert(session);
        assert!(fresh, "session {session:#x} closed twice");
    }

    /// Requests of `session` come through `server` from now on (a re-attach there).
    pub(crate) fn set_owner(&mut self, session: SessionId, server: ServerId) {
        self.owners.insert(session, server);
    }

    /// Sessions past their deadline at `now` and not closing yet, earliest first.
    pub(crate) fn expired(&self, now: Millis) -> Vec<SessionId> {
        self.expiry
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .map(|(_, s)| *s)
            .filter(|s| !self.closing.contains(s))
            .collect()
    }

    /// May `server` submit `op` for `session`? ZooKeeper's `PrepRequestProcessor` with
    /// `SessionTracker.checkSession`: a write of a session the leader does not track (never
    /// created, or closed) or has marked closing is refused (SESSIONEXPIRED), so nothing of a
    /// session is proposed after its closeSession; the first server to ask owns a session
    /// nobody owns yet, and another's requests are SESSIONMOVED. closeSession is never refused
    /// (ZooKeeper checks nothing for it) and marks the session closing at once, before its
    /// txn commits; a createSession of an id still in use is refused. A write of a `local`
    /// session (one its server tracks, not replicated) is checked there, not here, as
    /// ZooKeeper's LeaderSessionTracker lets another server's local session through.
    pub(crate) fn prep_check(
        &mut self,
        session: SessionId,
        server: ServerId,
        op: &TxnOp,
        skip_closing: bool,
        local: bool,
    ) -> Result<(), Refusal> {
        match op {
            TxnOp::Write { .. } | TxnOp::EnforcedWrite { .. }
                if local && !self.sessions.contains_key(&session) =>
            {
                Ok(())
            }
            TxnOp::CloseSession => {
                self.closing.insert(session);
                Ok(())
            }
            TxnOp::CreateSession { .. } => {
                if self.sessions.contains_key(&session) || self.closing.contains(&session) {
                    return Err(Refusal::Expired);
                }
                self.owners.insert(session, server);
                self.creating.insert(session);
                Ok(())
            }
            // The leader's own reaper, never a client's.
            // The leader prepares a reconfig in propose, from a client's Write.
            TxnOp::DeleteContainer { .. } | TxnOp::Reconfig { .. } => Ok(()),
            // A foreign leader's txn, resolved already: never an Ensemble learner's request.
            TxnOp::Resolved(_) => Err(Refusal::Expired),
            TxnOp::Write { .. } | TxnOp::EnforcedWrite { .. } => {
                let live = (self.sessions.contains_key(&session)
                    || self.creating.contains(&session))
                    && !self.closing.contains(&session);
                if !live && !skip_closing {
                    return Err(Refusal::Expired);
                }
                if *self.owners.entry(session).or_insert(server) != server {
                    return Err(Refusal::Moved);
                }
                Ok(())
            }
        }
    }

    /// Plant `expired-live-session`: a write `prep_check` let through, of a session tracked
    /// as live, refused as expired when its cxid is a multiple of 3.
    pub(crate) fn planted_expiry(
        &self,
        checked: Result<(), Refusal>,
        session: SessionId,
        cxid: i32,
        op: &TxnOp,
    ) -> Result<(), Refusal> {
        let write = matches!(op, TxnOp::Write { .. } | TxnOp::EnforcedWrite { .. });
        if checked.is_ok() && write && cxid % 3 == 0 && self.sessions.contains_key(&session) {
            return Err(Refusal::Expired);
        }
        checked
    }

    /// Every tracked session has exactly one deadline in the queue.
    pub(crate) fn check_invariants(&self) {
        assert_eq!(
            self.sessions.len(),
            self.expiry.len(),
            "sessions and their deadlines disagree"
        );
        debug_assert!(
            self.expiry
                .iter()
                .all(|(d, s)| self.sessions.get(s).is_some_and(|(d2, _)| d2 == d))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_touched_session_expires_later_and_a_closing_one_is_not_expired_twice() {
        let mut t = SessionTracker::default();
        t.track(7, 100, 0);
        t.track(8, 50, 0);
        assert_eq!(t.expired(60), vec![8]);
        t.touch(8, 60);
        assert_eq!(t.expired(100), vec![7]);
        t.start_closing(7);
        assert!(t.is_closing(7));
        assert_eq!(t.expired(200), vec![8]);
        t.untrack(7);
        assert!(!t.is_closing(7));
        t.check_invariants();
    }

    #[test]
    fn owners_and_closing_sessions_refuse_writes() {
        let w = TxnOp::Write {
            request: ensemble_proto::proto::Request::Ping,
            auth: Vec::new(),
        };
        let mut t = SessionTracker::default();
        assert_eq!(t.prep_check(5, 1, &w, false, false), Err(Refusal::Expired));
        assert_eq!(
            t.prep_check(5, 1, &TxnOp::CreateSession { timeout_ms: 10 }, false, false),
            Ok(())
        );
        t.track(5, 10, 0);
        assert_eq!(t.prep_check(5, 2, &w, false, false), Err(Refusal::Moved));
        assert_eq!(t.prep_check(5, 1, &w, false, false), Ok(()));
        assert_eq!(
            t.prep_check(5, 2, &TxnOp::CloseSession, false, false),
            Ok(())
        );
        assert_eq!(t.prep_check(5, 1, &w, false, false), Err(Refusal::Expired));
        assert_eq!(
            t.prep_check(5, 1, &w, true, false),
            Ok(()),
            "the planted bug lets it through"
        );
        assert_eq!(
            t.prep_check(9, 2, &w, false, true),
            Ok(()),
            "another server's local session is checked there"
        );
        assert!(t.owners.is_empty() || !t.owners.contains_key(&9));
    }
}
