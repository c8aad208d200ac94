//! `session.expired-refusal`: a write refused SESSIONEXPIRED names a session the ensemble
//! ended.
//!
//! ZooKeeper's leader refuses a write SESSIONEXPIRED (`PrepRequestProcessor.checkSession`)
//! only for a session it does not track or has marked closing: one whose closeSession it has
//! prepared (a client's close, or its own expiry of a session it heard nothing from), or one
//! no createSession made. While faults run, a refusal says little: a deposed leader may have
//! expired a session whose client moved to the other side, and a closeSession it proposed may
//! be lost in the leader change. So only refusals of the quiet end are judged: of writes
//! invoked once the faults healed, the run's last leader established and no other leader left
//! (every request since reaches that leader, and only it decides). That leader proposes every
//! closeSession it marks, and it leads to the end, which waits for in-flight txns; so each such
//! refusal must be of a session whose closeSession is in the committed history by the end, or
//! whose createSession had not committed when the write was invoked (a local session, one
//! lost in a leader change, or one the history holds in a snapshot only: the claim is then
//! weaker, never wrong).

use crate::check::{Claim, Violation, violation};
use crate::world::World;
use ensemble_proto::proto::{KeeperError, OpCode, Reply, Request, SessionId};

/// A write a client saw refused SESSIONEXPIRED.
struct Refused {
    client: usize,
    session: SessionId,
    op: OpCode,
    invoked: u64,
    at: u64,
}

/// The refusals seen, judged at the end (rare: recording costs nothing on other replies).
#[derive(Default)]
pub struct ExpiredRefusals {
    refused: Vec<Refused>,
}

impl ExpiredRefusals {
    /// Client `client` of `session` got `reply` at `now` for `request`, invoked at `invoked`.
    pub(crate) fn on_reply(
        &mut self,
        client: usize,
        session: SessionId,
        request: &Request,
        invoked: u64,
        reply: &Reply,
        now: u64,
    ) {
        if matches!(reply, Err(KeeperError::SessionExpired))
            && request.is_write()
            && !matches!(request, Request::CloseSession)
        {
            self.refused.push(Refused {
                client,
                session,
                op: request.opcode(),
                invoked,
                at: now,
            });
        }
    }
}

impl World {
    /// `session.expired-refusal`, at the end of a run whose last leader leads it.
    pub(crate) fn expired_refusal_check(&self) -> Result<(), Violation> {
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        // the only established leader: a stale one still believing it leads may refuse
        // sessions it expired on its own
        if self
            .nodes
            .values()
            .any(|n| n.id != leader && n.established.is_some())
        {
            return Ok(());
        }
        let Some(&(since, _, last)) = self.zab.establishments.last() else {
            return Ok(());
        };
        if last != leader {
            return Ok(());
        }
        let Some(healed) = self.healed_at else {
            return Ok(());
        };
        let from = since.max(healed).max(self.zab.deposed_at);
        let r = &self.reference;
        for x in self.refused_since(from) {
            ensemble_core::probe!("sim.expired-refusal.judged");
            if r.sessions_closed.contains_key(&x.session) {
                continue;
            }
            let Some(created) = r.sessions_created.get(&x.session) else {
                continue;
            };
            if r.commit_time(*created).is_none_or(|t| t > x.invoked) {
                continue;
            }
            return Err(violation(
                Claim::SessionExpiredRefusal,
                self.sched.now,
                format!(
                    "client {} session 0x{:x}: {:?} invoked at t={}ms refused SESSIONEXPIRED at \
                     t={}ms, with leader n{leader} the only one since t={from}ms; the session's \
                     createSession committed at {created} and no closeSession ever did",
                    x.client, x.session, x.op, x.invoked, x.at
                ),
            ));
        }
        Ok(())
    }

    fn refused_since(&self, from: u64) -> impl Iterator<Item = &Refused> {
        self.expired
            .refused
            .iter()
            .filter(move |x| x.invoked >= from)
    }
}
