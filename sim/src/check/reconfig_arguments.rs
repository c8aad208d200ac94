//! `reconfig.well-formed-refused`: a reconfig is refused BadArguments only for what ZooKeeper
//! refuses it on its arguments.
//!
//! ZooKeeper's leader (`PrepRequestProcessor`, reconfig) answers, in order: ReconfigDisabled
//! (reconfigEnabled off), ReconfigInProgress (a change pending), BadVersion (fromConfig is
//! neither -1 nor the version in force), BadArguments (a server line it cannot parse, a
//! ConfigException; or a result with fewer than 2 voters with standaloneEnabled, fewer than 1
//! without), NewConfigNoQuorum (the leader and the followers synced with it hold no quorum of
//! the result), NoAuth. So a BadArguments answer says the version matched: the change read
//! against the configuration of that version is either unparseable, or leaves fewer than 2
//! voters. The simulator holds every configuration committed (the reference's, by version);
//! a change it parses against the one the request names, leaving 2 or more voters, must not
//! be refused BadArguments. The parse is the membership parser the reconfig role reads
//! `/zookeeper/config` with; what is judged is the rule on the result. A change from -1 (any
//! version) is not judged: which configuration it met is not settled by the request.

use crate::check::{Claim, Violation, violation};
use crate::world::World;
use ensemble_proto::proto::{KeeperError, Reply, Request};

impl World {
    /// `reconfig.well-formed-refused` on client `client`'s reply `reply` to `request`.
    pub(crate) fn reconfig_arguments_check(
        &self,
        client: usize,
        request: &Request,
        reply: &Reply,
    ) -> Result<(), Violation> {
        let Request::Reconfig {
            joining,
            leaving,
            new_members,
            from_config,
        } = request
        else {
            return Ok(());
        };
        if !matches!(reply, Err(KeeperError::BadArguments)) || *from_config < 0 {
            return Ok(());
        }
        let from = *from_config as u64;
        // the first configuration carries an epoch's zxid (counter 0) as its version
        let base = self.reference.configs.get(&from).or_else(|| {
            (from & 0xffff_ffff == 0)
                .then(|| self.reference.configs.get(&0))
                .flatten()
        });
        let Some(base) = base else {
            return Ok(());
        };
        ensemble_core::probe!("sim.reconfig.bad-arguments-judged");
        let Ok(next) = base.reconfigure(joining, leaving, new_members) else {
            return Ok(());
        };
        let voters = next.voters().count();
        if voters < 2 {
            return Ok(());
        }
        Err(violation(
            Claim::ReconfigWellFormedRefused,
            self.sched.now,
            format!(
                "client {client}: reconfig {request:?} from version {from:x} was refused \
                 BadArguments, but against that configuration it parses and leaves {voters} \
                 voters {:?}",
                next.voters().collect::<Vec<_>>()
            ),
        ))
    }
}
