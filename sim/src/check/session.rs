//! Session claims: nothing of a session takes effect after the session ended.
//!
//! ZooKeeper's leader checks the session of every write it prepares (`checkSession`): a
//! session it has marked closing (its closeSession is prepared, maybe not yet committed) or no
//! longer tracks gets SESSIONEXPIRED, so no write of it is ever proposed after its
//! closeSession. Two claims hold that line:
//!
//! * `session.no-write-after-close`: in the committed history, no client write (and no
//!   createSession re-using the id) of session S has a zxid after S's closeSession;
//! * `client.no-ok-after-close`: no client is told `ok` for a write whose zxid is after its
//!   session's closeSession.
//!
//! A third, `session.ephemerals-reported`: the ephemerals a server reports deleted as it
//! applies a closeSession (`Action::EphemeralsDeleted`, the audit log's lines) are the
//! session's ephemerals in the independent model of the tree (`check/model.rs`) at that zxid.
//!
//! History that arrived as a snapshot is not replayed txn by txn, so a closeSession inside it
//! is not seen: the claims are then weaker, never wrong.

use crate::check::{Claim, Violation, violation};
use ensemble_core::txn::{Txn, TxnOp};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{Reply, Request, SessionId};
use std::collections::BTreeMap;

/// When each session's closeSession committed (the first one: a second is harmless).
#[derive(Clone, Debug, Default)]
pub struct SessionClaims {
    closed: BTreeMap<SessionId, Zxid>,
    /// Reports of ephemerals deleted, (server, session, zxid, paths), until the reference
    /// has committed their zxid.
    reports: Vec<(u64, SessionId, Zxid, Vec<String>)>,
    /// The smallest zxid in `reports`: the check after every step asks only whether the
    /// reference has reached it (none due below it), without walking the reports.
    first_due: Option<Zxid>,
}

impl SessionClaims {
    pub fn new() -> SessionClaims {
        SessionClaims::default()
    }

    /// Server `id` reports the ephemerals its closeSession at `zxid` deleted.
    pub fn reported(&mut self, id: u64, session: SessionId, zxid: Zxid, paths: &[String]) {
        self.reports.push((id, session, zxid, paths.to_vec()));
        self.first_due = Some(self.first_due.map_or(zxid, |z| z.min(zxid)));
    }

    /// Whether a report is due once the reference is at `last`: `check_reports` has
    /// something to judge only then (a report's verdict needs its zxid committed).
    #[inline]
    pub fn reports_due(&self, last: Zxid) -> bool {
        self.first_due.is_some_and(|z| z <= last)
    }

    /// `session.ephemerals-reported` on the reports whose zxid the reference has committed:
    /// `closed` holds each committed closeSession's ephemerals in the model; history at or
    /// below `opaque` came in a snapshot and is not judged.
    #[inline(never)]
    pub fn check_reports(
        &mut self,
        last: Zxid,
        opaque: Zxid,
        closed: &BTreeMap<Zxid, Vec<String>>,
        now: u64,
    ) -> Result<(), Violation> {
        // called after every step: most find nothing due, and are not worth two new vectors
        if !self.reports.iter().any(|r| r.2 <= last) {
            return Ok(());
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reports)
            .into_iter()
            .partition(|r| r.2 <= last);
        self.first_due = later.iter().map(|r| r.2).min();
        self.reports = later;
        for (id, session, zxid, paths) in due {
            if zxid <= opaque {
                continue;
            }
            let expected = closed.get(&zxid);
            if expected != Some(&paths) {
                return Err(violation(
                    Claim::SessionEphemeralsReported,
                    now,
                    format!(
                        "n{id} reported the closeSession of 0x{session:x} at {zxid} deleted \
                         {paths:?}; the model had {expected:?}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The zxid of `session`'s closeSession, if one has committed.
    pub fn closed_at(&self, session: SessionId) -> Option<Zxid> {
        self.closed.get(&session).copied()
    }

    /// A txn committed (in zxid order): `session.no-write-after-close`.
    pub fn on_commit(&mut self, txn: &Txn, now: u64) -> Result<(), Violation> {
        match &txn.op {
            TxnOp::CloseSession => {
                self.closed.entry(txn.session).or_insert(txn.zxid);
                Ok(())
            }
            // a reconfig is a client's request too (opcode 16)
            TxnOp::Reconfig { .. } => match self.closed_at(txn.session) {
                Some(closed) => Err(violation(
                    Claim::SessionNoWriteAfterClose,
                    now,
                    format!(
                        "reconfig (cxid {}) of session 0x{:x} committed at {}, after the session's closeSession at {closed}",
                        txn.cxid, txn.session, txn.zxid
                    ),
                )),
                None => Ok(()),
            },
            TxnOp::Write { request, .. } | TxnOp::EnforcedWrite { request, .. } => {
                match self.closed_at(txn.session) {
                    Some(closed) => Err(violation(
                        Claim::SessionNoWriteAfterClose,
                        now,
                        format!(
                            "{:?} (cxid {}) of session 0x{:x} committed at {}, after the session's closeSession at {closed}",
                            request.opcode(),
                            txn.cxid,
                            txn.session,
                            txn.zxid
                        ),
                    )),
                    None => Ok(()),
                }
            }
            TxnOp::CreateSession { .. } => match self.closed_at(txn.session) {
                Some(closed) => Err(violation(
                    Claim::SessionNoWriteAfterClose,
                    now,
                    format!(
                        "createSession 0x{:x} committed at {}, re-using the id of a session closed at {closed}",
                        txn.session, txn.zxid
                    ),
                )),
                None => Ok(()),
            },
            // a foreign leader's txn: the swarm's ensembles never log one
            TxnOp::DeleteContainer { .. } | TxnOp::Resolved(_) => Ok(()),
        }
    }

    /// Client `client` of `session` got `reply` at `zxid` for `request`:
    /// `client.no-ok-after-close`.
    pub fn on_reply(
        &self,
        client: usize,
        session: SessionId,
        request: &Request,
        zxid: i64,
        reply: &Reply,
        now: u64,
    ) -> Result<(), Violation> {
        if !request.is_write() || matches!(request, Request::CloseSession) || reply.is_err() {
            return Ok(());
        }
        let Some(closed) = self.closed_at(session) else {
            return Ok(());
        };
        if zxid > closed.as_i64() {
            return Err(violation(
                Claim::ClientNoOkAfterClose,
                now,
                format!(
                    "client {client} session 0x{session:x}: {:?} acknowledged ok at {}, after the session's closeSession at {closed}",
                    request.opcode(),
                    Zxid(zxid as u64)
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_core::txn::Origin;
    use ensemble_proto::proto::Response;

    fn txn(zxid: u64, session: SessionId, op: TxnOp) -> Txn {
        Txn {
            zxid: Zxid(zxid),
            time: 0,
            session,
            cxid: 1,
            origin: Origin::NONE,
            op,
        }
    }

    fn set_data() -> Request {
        Request::SetData {
            path: "/a".into(),
            data: vec![],
            version: -1,
        }
    }

    #[test]
    fn a_write_after_close_breaks_both_claims() {
        let mut c = SessionClaims::new();
        let write = TxnOp::Write {
            request: set_data(),
            auth: vec![],
        };
        c.on_commit(&txn(1, 7, TxnOp::CreateSession { timeout_ms: 10 }), 0)
            .expect("create");
        c.on_commit(&txn(2, 7, write.clone()), 0)
            .expect("a write while the session lives");
        c.on_commit(&txn(3, 7, TxnOp::CloseSession), 0)
            .expect("close");
        c.on_commit(&txn(4, 8, write.clone()), 0)
            .expect("another session's write");
        let v = c.on_commit(&txn(5, 7, write), 0).expect_err("after close");
        assert_eq!(v.claim, Claim::SessionNoWriteAfterClose);
        let ok: Reply = Ok(Response::Empty);
        c.on_reply(0, 7, &set_data(), 2, &ok, 0)
            .expect("ok before the close");
        c.on_reply(
            0,
            7,
            &set_data(),
            5,
            &Err(ensemble_proto::proto::KeeperError::SessionExpired),
            0,
        )
        .expect("an error after the close");
        let v = c
            .on_reply(0, 7, &set_data(), 5, &ok, 0)
            .expect_err("ok after the close");
        assert_eq!(v.claim, Claim::ClientNoOkAfterClose);
    }
}
