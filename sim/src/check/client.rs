//! Client guarantees (ZooKeeper Programmer's Guide, "ZooKeeper consistency guarantees"):
//! each reply and watch event is checked against the committed history as it arrives
//! (`impl Client` below), and at the end of a run, ephemerals of expired sessions and the
//! linearizability search over every key's history (`wgl`).

use crate::check::{Claim, Violation, violation};
use crate::world::World;

impl World {
    /// The end-of-run checks: the clients' (ephemerals, then linearizability) around the
    /// recipes'.
    pub(crate) fn end_checks(&mut self) -> Result<(), Violation> {
        self.ephemeral_end_checks()?;
        self.recipe_end_checks()?;
        self.wgl_end_check()
    }

    /// `client.ephemeral-lifetime`: sessions the clients were told expired are closed in the
    /// history, and their ephemerals gone.
    fn ephemeral_end_checks(&mut self) -> Result<(), Violation> {
        let now = self.sched.now;
        let r = &self.reference;
        for (s, at) in &self.shared.expired {
            if !r.sessions_closed.contains_key(s) && r.sessions_created.contains_key(s) {
                return Err(violation(
                    Claim::ClientEphemeralLifetime,
                    now,
                    format!(
                        "session 0x{s:x} was reported expired at t={at}ms but was never closed in the committed history"
                    ),
                ));
            }
            let left = r.tree().session_ephemerals(*s);
            if !left.is_empty() {
                return Err(violation(
                    Claim::ClientEphemeralLifetime,
                    now,
                    format!(
                        "session 0x{s:x} expired at t={at}ms but its ephemerals remain: {left:?}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `client.linearizable-wgl`: a linearizability cross-check by search on small per-key
    /// histories.
    fn wgl_end_check(&mut self) -> Result<(), Violation> {
        let now = self.sched.now;
        if let Some(v) = crate::check::wgl::check_history(
            &self.shared.ops,
            &self.reference,
            now,
            &mut self.stats.wgl,
        ) {
            return Err(v);
        }
        Ok(())
    }
}
