//! Read-only mode and local sessions: a read-only server does no quorum work (it logs,
//! proposes, ACKs and commits nothing; its applied state is checked not to move in `zab`), and
//! a session only one server knows is served by that server alone.

use crate::check::{Claim, Violation, violation};
use crate::world::World;
use ensemble_core::effect::{Action, Write};
use ensemble_core::peer::PeerMsg;
use ensemble_core::txn::ServerId;

impl World {
    fn is_read_only(&self, id: ServerId) -> bool {
        self.nodes[&id]
            .server
            .as_ref()
            .is_some_and(|s| s.is_read_only())
    }

    /// `readonly.committed-prefix` on a write of server `id`: no log append while read-only.
    pub(crate) fn check_read_only_write(&self, id: ServerId, w: &Write) -> Result<(), Violation> {
        match w {
            Write::Append { txns } if self.is_read_only(id) => Err(violation(
                Claim::ReadOnlyCommittedPrefix,
                self.sched.now,
                format!(
                    "n{id} logged {} txn(s) from {:?} while read-only",
                    txns.len(),
                    txns.first().map(|t| t.zxid)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// On an action of server `id`: `readonly.committed-prefix` (no proposal, ACK or commit
    /// sent while read-only) and `session.local-stays-home` (a session taken here is in the
    /// committed state here, or was made here: ids carry their server in the top byte).
    pub(crate) fn check_read_only_action(&self, id: ServerId, a: &Action) -> Result<(), Violation> {
        let now = self.sched.now;
        match a {
            Action::Send { msg, to } if self.is_read_only(id) => match msg {
                PeerMsg::Proposal(_)
                | PeerMsg::Ack { .. }
                | PeerMsg::AckNewLeader { .. }
                | PeerMsg::Commit { .. }
                | PeerMsg::Inform(_)
                | PeerMsg::NewLeader { .. }
                | PeerMsg::UpToDate { .. } => Err(violation(
                    Claim::ReadOnlyCommittedPrefix,
                    now,
                    format!("n{id} sent {} to n{to} while read-only", msg.name()),
                )),
                _ => Ok(()),
            },
            Action::ConnectReply { conn, response } if response.session_id != 0 => {
                let Some(s) = self.nodes[&id].server.as_ref() else {
                    return Ok(());
                };
                let session = response.session_id;
                let maker = (session as u64) >> 56;
                if maker != id && !s.tree().sessions().contains_key(&session) {
                    return Err(violation(
                        Claim::SessionLocalStaysHome,
                        now,
                        format!(
                            "n{id} took session 0x{session:x} on conn {conn}: n{maker} made it and n{id} has not applied its createSession"
                        ),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
