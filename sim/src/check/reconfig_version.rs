//! `reconfig.from-config`: a conditional reconfig is refused BadVersion only if its
//! fromConfig differs from the version of the configuration committed when the leader took it,
//! and made only if it is that version.
//!
//! ZooKeeper's leader compares a reconfig's fromConfig with the version of the configuration
//! it has in force (`PrepRequestProcessor`: `fromConfig != -1 && fromConfig !=
//! lastSeenQuorumVerifier.getVersion()` is BadVersion). The simulator knows that version where
//! it is settled: the request was invoked with one leader established since before it, still
//! the only one at the answer, and the configuration committed then unchanged while the
//! request was out. The version is then
//! * the last committed reconfig's zxid, once one committed (the leader holds every
//!   committed txn, and takes the configuration of the last reconfig it applied);
//! * before any, the first configuration's version, which the first leader to establish
//!   with `reconfigEnabled` gives the zxid of its epoch (ZOOKEEPER-1783). Only the version of
//!   the answering leader's own epoch is judged: only that leader makes it, and holds it in
//!   force from then on; an older epoch's may be what it holds too, or not, so is not judged.
//!
//! A request matching that version and answered BadVersion breaks the claim, and so does one
//! not matching it and made (answered ok: its own commit is then the one configuration
//! committed while it was out; the swarm has one reconfig client). Before any reconfig, a
//! settled leader with `reconfigEnabled` holds a first configuration some epoch versioned,
//! never version 0, so a change from version 0 must be refused. Reconfigs proposed and not
//! committed do not change the version: the leader answers a change while one is pending
//! ReconfigInProgress, before it compares versions.

use crate::check::{Claim, Violation, violation};
use crate::world::World;
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{KeeperError, Reply, Request};

/// The configurations committed around a request: the last one before it went out (none
/// before the first reconfig), and how many after.
struct Committed {
    before: Option<u64>,
    since: usize,
}

impl World {
    /// `reconfig.from-config` on client `client`'s reply `reply` to `request`, invoked at
    /// `invoked`.
    pub(crate) fn reconfig_version_check(
        &self,
        client: usize,
        request: &Request,
        invoked: u64,
        reply: &Reply,
    ) -> Result<(), Violation> {
        let Request::Reconfig { from_config, .. } = request else {
            return Ok(());
        };
        let made = match reply {
            Ok(_) => true,
            Err(KeeperError::BadVersion) => false,
            Err(_) => return Ok(()),
        };
        if *from_config == -1 {
            return Ok(());
        }
        let from = *from_config as u64;
        let Some(epoch) = self.settled_leader_epoch(invoked) else {
            return Ok(());
        };
        let Some(c) = self.committed_around(invoked) else {
            return Ok(());
        };
        // a refusal: nothing committed meanwhile; a change made: only itself
        if c.since > usize::from(made) {
            return Ok(());
        }
        ensemble_core::probe!("sim.reconfig.from-config-judged");
        let wrong = match (c.before, made) {
            (Some(v), true) => from != v,
            (Some(v), false) => from == v,
            // the first configuration, versioned by some established epoch
            (None, true) => from == 0,
            (None, false) => from == Zxid::new(epoch, 0).0,
        };
        if !wrong {
            return Ok(());
        }
        let answer = if made { "made" } else { "refused BadVersion" };
        let committed = match c.before {
            Some(v) => format!("the configuration committed then was version {v:x}"),
            None => format!(
                "no reconfig had committed: the first configuration's version is an epoch's \
                 zxid (the leader's epoch {epoch:x} gives {:x})",
                Zxid::new(epoch, 0).0
            ),
        };
        Err(violation(
            Claim::ReconfigFromConfig,
            self.sched.now,
            format!(
                "client {client}: a reconfig from version {from:x} invoked at t={invoked}ms was \
                 {answer}; {committed}"
            ),
        ))
    }

    /// The epoch of the only leader, established before `since` with no other since, and
    /// `reconfigEnabled`.
    fn settled_leader_epoch(&self, since: u64) -> Option<u32> {
        let leader = self.leader()?;
        if self
            .nodes
            .values()
            .any(|n| n.id != leader && n.established.is_some())
        {
            return None;
        }
        let &(established, epoch, last) = self.zab.establishments.last()?;
        if last != leader || established > since || self.zab.deposed_at > since {
            return None;
        }
        self.nodes[&leader].config.reconfig_enabled.then_some(epoch)
    }

    /// The reconfigs committed before `at` and since; none if one's commit time is unknown
    /// (a configuration the run did not see committed).
    fn committed_around(&self, at: u64) -> Option<Committed> {
        let r = &self.reference;
        let mut c = Committed {
            before: None,
            since: 0,
        };
        for &v in r.configs.keys().filter(|v| **v != 0) {
            if r.commit_time(Zxid(v))? < at {
                c.before = Some(v);
            } else {
                c.since += 1;
            }
        }
        Some(c)
    }
}
