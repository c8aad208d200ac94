//! ZooKeeper's LearnerHandler, as state: the leader's view of each connected learner (where it
//! is in discovery and synchronisation, what it ACKed, when it was last heard), and the
//! questions the leader asks of them all (who gets proposals, whose ACKs count, who went
//! silent).

use crate::config::Config;
use crate::effect::Action;
use crate::peer::PeerMsg;
use crate::server::{Millis, Status};
use crate::txn::ServerId;
use crate::zxid::Zxid;
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum HandlerPhase {
    /// FOLLOWERINFO/OBSERVERINFO received; LEADERINFO sent once the epoch is decided.
    Info,
    /// ACKEPOCH received.
    EpochAcked,
    /// Sync and NEWLEADER sent: it now gets every proposal and commit.
    Synced,
    /// ACKed NEWLEADER: its ACKs count, and it has (or will get) UPTODATE.
    Active,
}

/// ZooKeeper's LearnerHandler, as state.
#[derive(Clone, Debug)]
pub(crate) struct Handler {
    pub observer: bool,
    pub phase: HandlerPhase,
    pub accepted_epoch: u32,
    /// Its FOLLOWERINFO said its durable state vouches for it (`Notification::intact`): its
    /// acceptedEpoch is every epoch it promised, not what an empty disk forgot.
    pub intact: bool,
    /// Its ACKEPOCH promised our epoch (it had not accepted the epoch from another would-be
    /// leader): only such count towards the quorum that lets us sync.
    pub epoch_counted: bool,
    pub last_zxid: Zxid,
    /// Proposals durable at the learner, as its ACKs say.
    pub acked: Zxid,
    /// The leader's last zxid when the sync was sent: durable there once NEWLEADER is ACKed.
    pub synced_through: Zxid,
    pub last_heard: Millis,
    pub pong_round: u64,
    /// When this handler was made (this connection's FOLLOWERINFO/OBSERVERINFO arrived).
    pub established: Millis,
    /// What went each way, for the `observers` command (ZooKeeper's LearnerHandler counters).
    pub traffic: Traffic,
}

/// ZooKeeper's per-LearnerHandler counters: packets each way, REQUESTs among those received,
/// and the zxid of the last packet sent that carried one. Observability only: no protocol
/// decision reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub requests: u64,
    /// ZooKeeper's `lastZxid`: none (-1 there) until a packet with a zxid went out.
    pub last_zxid: Option<Zxid>,
}

impl Traffic {
    pub(crate) fn received(&mut self, msg: &PeerMsg) {
        self.packets_received += 1;
        if matches!(msg, PeerMsg::Request { .. }) {
            self.requests += 1;
        }
        assert!(
            self.requests <= self.packets_received,
            "requests are packets"
        );
    }

    pub(crate) fn sent(&mut self, msg: &PeerMsg) {
        self.packets_sent += 1;
        if let Some(z) = msg.zxid().filter(|z| *z > Zxid::ZERO) {
            self.last_zxid = Some(z);
        }
    }

    /// ZooKeeper's resetObserverConnectionStats (`orst`).
    pub(crate) fn reset(&mut self) {
        *self = Traffic::default();
    }
}

/// One learner as the leader's `observers` command lists it (LearnerHandler's
/// getLearnerHandlerInfo, less what only the runtime knows: the socket and its queue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnerInfo {
    pub sid: ServerId,
    pub observer: bool,
    /// What its FOLLOWERINFO/OBSERVERINFO declared (ZooKeeper's LearnerHandler learnerType):
    /// whether it is sent INFORMs or PROPOSALs, whatever the configuration says.
    pub declared_observer: bool,
    /// Synced and ACKed NEWLEADER: what `synced_observers` / `synced_followers` count.
    pub synced: bool,
    pub established: Millis,
    pub traffic: Traffic,
}

/// Every learner connected to this leader, by id.
#[derive(Default)]
pub(crate) struct LearnerHandlers(BTreeMap<ServerId, Handler>);

impl Deref for LearnerHandlers {
    type Target = BTreeMap<ServerId, Handler>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for LearnerHandlers {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl LearnerHandlers {
    fn with<'a>(
        &'a self,
        f: impl Fn(&Handler) -> bool + 'a,
    ) -> impl Iterator<Item = ServerId> + 'a {
        self.0.iter().filter(move |(_, h)| f(h)).map(|(id, _)| *id)
    }

    /// Has `id` ACKed NEWLEADER (its requests, syncs and revalidations are served)?
    pub(crate) fn is_active(&self, id: ServerId) -> bool {
        self.0.get(&id).map(|h| h.phase) == Some(HandlerPhase::Active)
    }

    /// Learners whose NEWLEADER ACK is in: their ACKs and pings count.
    pub(crate) fn active(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.with(|h| h.phase == HandlerPhase::Active)
    }

    /// Learners synced (sync and NEWLEADER sent): they get pings.
    pub(crate) fn synced(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.with(|h| h.phase >= HandlerPhase::Synced)
    }

    /// Followers that get proposals and commits.
    pub(crate) fn forwarding(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.with(|h| !h.observer && h.phase >= HandlerPhase::Synced)
    }

    /// Observers that get INFORMs.
    pub(crate) fn observers(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.with(|h| h.observer && h.phase >= HandlerPhase::Synced)
    }

    /// Learners silent past their limit at `now`: `sync` once active, `init` before.
    pub(crate) fn silent(&self, now: Millis, sync: Millis, init: Millis) -> Vec<ServerId> {
        self.with(|h| {
            let limit = if h.phase == HandlerPhase::Active {
                sync
            } else {
                init
            };
            now.saturating_sub(h.last_heard) > limit
        })
        .collect()
    }

    /// Every learner connected, by id; observers as `fill_status` counts them, by the
    /// configuration in force.
    pub(crate) fn info(&self, cfg: &Config) -> Vec<LearnerInfo> {
        self.0
            .iter()
            .map(|(id, h)| LearnerInfo {
                sid: *id,
                observer: !cfg.is_voter(*id),
                declared_observer: h.observer,
                synced: h.phase == HandlerPhase::Active,
                established: h.established,
                traffic: h.traffic,
            })
            .collect()
    }

    /// Count what this leader sent in one step (`actions`) against the learners it went to.
    pub(crate) fn count_sent<'a>(&mut self, actions: impl Iterator<Item = &'a Action>) {
        for a in actions {
            if let Action::Send { to, msg } = a
                && !msg.is_election()
                && let Some(h) = self.0.get_mut(to)
            {
                h.traffic.sent(msg);
            }
        }
    }

    pub(crate) fn fill_status(&self, cfg: &Config, st: &mut Status) {
        st.learners = self.0.len();
        st.synced_followers = self
            .0
            .iter()
            .filter(|(id, h)| cfg.is_voter(**id) && h.phase == HandlerPhase::Active)
            .count();
        if crate::plant::active(cfg.plant, crate::plant::Plant::MntrCountsSyncing) {
            st.synced_followers = crate::plant::voters_listed(self.0.keys(), cfg);
        }
        // By the configuration in force, as the followers: a learner that connected as an
        // observer and was made a voter by a reconfig (or the other way) counts once.
        st.synced_observers = self
            .0
            .iter()
            .filter(|(id, h)| !cfg.is_voter(**id) && h.phase == HandlerPhase::Active)
            .count();
        assert!(st.synced_followers + st.synced_observers <= st.learners);
    }
}
