//! `leader.learner-traffic`: the leader's per-learner counters (ZooKeeper's LearnerHandler
//! statistics, what the node's admin `observers` command shows) against what the simulated
//! network carried on each link, counted here as packets are handed to and emitted by the
//! leader's core.
//!
//! A handler's life, as the simulator sees it: it starts at the FOLLOWERINFO/OBSERVERINFO the
//! leading core takes from that learner (the core makes a new handler for every one, unless
//! it has handed over, when it ignores them), or, for those a server kept while it was not
//! leading yet, in the step that made it leader (each then holds that one packet). The
//! counts of a learner whose handler the core has since dropped go stale; they are never
//! compared, since any new handler starts with one of those two resets. Now and then the
//! simulator also resets a leader's observer counters, as an operator's `orst` does
//! (`RESET_EVERY`).
//!
//! `leader.packets-by-role`, on the same handlers: what the leader sends a learner fits the
//! role its FOLLOWERINFO/OBSERVERINFO declared and how far its sync got (ZooKeeper's
//! Leader.sendPacket goes to `forwardingFollowers`, Leader.sendObserverPacket to
//! `observingLearners`, and a LearnerHandler joins those only in syncFollower, whose packets
//! are queued first): a PROPOSAL only to a follower, an INFORM only to an observer, and before
//! its DIFF/TRUNC/SNAP nothing but the LEADERINFO (and a stale SYNC reply, see below).

use crate::check::{Claim, Violation, violation};
use crate::world::World;
use ensemble_core::effect::Action;
use ensemble_core::peer::{PeerMsg, ServerState};
use ensemble_core::server::{Event, Server};
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;
use std::collections::BTreeMap;

/// What went each way on one leader-learner link since its handler was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Carried {
    received: u64,
    sent: u64,
    requests: u64,
    last_zxid: Option<Zxid>,
}

impl Carried {
    /// A handler just made by the learner's FOLLOWERINFO/OBSERVERINFO: that packet is its first.
    const MADE: Carried = Carried {
        received: 1,
        sent: 0,
        requests: 0,
        last_zxid: None,
    };
}

/// A learner as its handler's making declared it, and whether its sync has gone out.
#[derive(Clone, Copy, Debug)]
struct Declared {
    observer: bool,
    synced: bool,
}

/// One server's links as a leader (kept across its steps; rebuilt when it starts leading).
#[derive(Debug, Default)]
pub(crate) struct LinkTraffic {
    links: BTreeMap<ServerId, Carried>,
    /// Each handler's declared role (`leader.packets-by-role`), made and dropped with `links`.
    roles: BTreeMap<ServerId, Declared>,
    /// It leads at the end of the step under way: the core counts that step's sends only then.
    leading: bool,
    /// It sent HANDOVER in this leadership: it takes no new learner since.
    handed_over: bool,
    /// When its counters are compared next (`CHECK_EVERY_MS`).
    next_check: u64,
    /// Comparisons so far: every `RESET_EVERY`th first resets its observers' counters.
    checks: u64,
}

/// How often (in comparisons) the simulator resets a leader's observer counters first, as an
/// operator's `orst` (`observer_connection_stat_reset`) does: a counter, not a draw, so no
/// run's schedule moves, and nothing but the counters reads them.
const RESET_EVERY: u64 = 8;

/// How often (simulated ms) a leader's counters are compared after its steps: they only add
/// up, so a miscount stays until its handler goes, and comparing every step (a `Vec` of
/// handlers each time) cost 3.7% of the sweep's instructions. Also at the end of the run.
const CHECK_EVERY_MS: u64 = 100;

impl LinkTraffic {
    /// Before server `id` handles `event`: a packet from a learner reaches a leading core
    /// (the only time its handler counts it). Returns whether it leads before the step.
    pub(crate) fn delivered(&mut self, id: ServerId, server: &Server, event: &Event) -> bool {
        if server.state() != ServerState::Leading {
            return false;
        }
        if let Event::Peer { from, msg } = event
            && !msg.is_election()
            && *from != id
        {
            if let PeerMsg::LearnerInfo { observer, .. } = msg
                && !self.handed_over
            {
                self.links.insert(*from, Carried::MADE);
                self.roles.insert(
                    *from,
                    Declared {
                        observer: *observer,
                        synced: false,
                    },
                );
            } else if let Some(c) = self.links.get_mut(from) {
                c.received += 1;
                if matches!(msg, PeerMsg::Request { .. }) {
                    c.requests += 1;
                }
            }
        }
        true
    }

    /// After the server's core took a step, before its output is carried out: whether it
    /// leads now, and if it has just started to, the handlers it made from the
    /// FOLLOWERINFOs/OBSERVERINFOs it had kept.
    pub(crate) fn stepped(&mut self, server: &Server, was_leading: bool) {
        let leading = server.state() == ServerState::Leading;
        self.leading = leading;
        if leading && !was_leading {
            self.handed_over = false;
            self.links.clear();
            self.roles.clear();
            for h in server.learner_handlers() {
                self.links.insert(h.sid, Carried::MADE);
                // kept from before it led: none has been synced yet
                self.roles.insert(
                    h.sid,
                    Declared {
                        observer: h.declared_observer,
                        synced: false,
                    },
                );
            }
        }
    }
}

impl World {
    /// After server `id`'s step was carried out: the claims on its counters that are due
    /// (one look-up of the node for both, as this runs after every step).
    pub(crate) fn check_step_counters(&mut self, id: ServerId) {
        let n = &self.nodes[&id];
        let traffic_due = n.traffic.leading && self.sched.now >= n.traffic.next_check;
        let conns_due = n.conn_sessions.has_touched();
        if traffic_due {
            self.check_learner_traffic(id);
        }
        if conns_due {
            self.check_conn_sessions(id);
        }
    }

    /// Server `id`'s core emitted `msg` to `to` (an `Action::Send`, as it is carried out).
    pub(crate) fn traffic_sent(&mut self, id: ServerId, to: ServerId, msg: &PeerMsg) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        let t = &mut n.traffic;
        if !t.leading || msg.is_election() {
            return;
        }
        if matches!(msg, PeerMsg::HandOver { .. }) {
            t.handed_over = true;
        }
        if let Some(c) = t.links.get_mut(&to) {
            c.sent += 1;
            // the QuorumPacket's zxid; zero is none (ZooKeeper's -1 until one went out)
            if let Some(z) = msg.zxid().filter(|z| *z > Zxid::ZERO) {
                c.last_zxid = Some(z);
            }
        }
    }

    /// `leader.packets-by-role` on a packet leading server `id`'s core sends to `to` (an
    /// `Action::Send`, before it is carried out); a DIFF/TRUNC/SNAP marks the learner synced.
    pub(crate) fn check_packet_role(&mut self, id: ServerId, a: &Action) -> Result<(), Violation> {
        let now = self.sched.now;
        let (to, msg) = match a {
            Action::Send { to, msg } => (*to, Some(msg)),
            // a SNAP streamed from the snapshot file: the sync itself
            Action::SendSnapshot { to, .. } => (*to, None),
            _ => return Ok(()),
        };
        let Some(n) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        let t = &mut n.traffic;
        if !t.leading || msg.is_some_and(|m| m.is_election()) {
            return Ok(());
        }
        let Some(d) = t.roles.get_mut(&to) else {
            return Ok(());
        };
        let Some(msg) = msg else {
            d.synced = true;
            return Ok(());
        };
        let role = if d.observer { "observer" } else { "follower" };
        let wrong = match msg {
            // a SNAP's parts come first, then the SNAP itself
            PeerMsg::Sync { .. } | PeerMsg::SnapPart { .. } => {
                d.synced = true;
                None
            }
            PeerMsg::LeaderInfo { .. } => None,
            // the answer to a sync its previous connection asked for: ZooKeeper's goes to the
            // old handler's dead socket; this one reaches the new link, where the learner,
            // not serving yet, drops it
            PeerMsg::SyncReply { .. } => None,
            _ if !d.synced => Some("before its sync"),
            PeerMsg::Proposal(_) if d.observer => Some("to an observer"),
            PeerMsg::Inform(_) if !d.observer => Some("to a follower"),
            _ => None,
        };
        match wrong {
            None => Ok(()),
            Some(why) => Err(violation(
                Claim::LeaderPacketsByRole,
                now,
                format!(
                    "leader n{id} sent {} {why}: n{to} (declared {role}, {})",
                    msg.name(),
                    if d.synced { "synced" } else { "not synced" }
                ),
            )),
        }
    }

    /// After server `id`'s step was carried out: each of its handlers' counters against the
    /// links' counts, if it is time (`CHECK_EVERY_MS`).
    pub(crate) fn check_learner_traffic(&mut self, id: ServerId) {
        let now = self.sched.now;
        let t = &mut self.nodes.get_mut(&id).expect("node").traffic;
        if !t.leading || now < t.next_check {
            return;
        }
        t.next_check = now + CHECK_EVERY_MS;
        t.checks += 1;
        if t.checks.is_multiple_of(RESET_EVERY) {
            self.reset_observer_traffic(id);
        }
        self.compare_learner_traffic(id);
    }

    /// `orst` on leader `id`: the counters of its learners that are observers by the
    /// configuration in force (as `observers` lists them) start again, on both sides.
    fn reset_observer_traffic(&mut self, id: ServerId) {
        let n = self.nodes.get_mut(&id).expect("node");
        let Some(s) = n.server.as_mut() else {
            return;
        };
        for h in s.learner_handlers().iter().filter(|h| h.observer) {
            if let Some(c) = n.traffic.links.get_mut(&h.sid) {
                *c = Carried::default();
            }
        }
        s.reset_observer_connection_stats();
    }

    /// At the end of the run: every leader's handlers.
    pub(crate) fn check_learner_traffic_at_end(&mut self) {
        let leaders: Vec<ServerId> = self
            .nodes
            .values()
            .filter(|n| n.traffic.leading)
            .map(|n| n.id)
            .collect();
        for id in leaders {
            self.compare_learner_traffic(id);
        }
    }

    fn compare_learner_traffic(&mut self, id: ServerId) {
        let now = self.sched.now;
        let n = &self.nodes[&id];
        let Some(s) = n.server.as_ref() else {
            return;
        };
        if !n.traffic.leading || self.violation.is_some() {
            return;
        }
        let mut broken = None;
        let handlers = s.learner_handlers();
        for h in &handlers {
            let detail = match n.traffic.links.get(&h.sid) {
                None => format!(
                    "leader n{id} has a handler for n{} that no FOLLOWERINFO/OBSERVERINFO it \
                     took made",
                    h.sid
                ),
                Some(c) => {
                    let t = h.traffic;
                    let core = Carried {
                        received: t.packets_received,
                        sent: t.packets_sent,
                        requests: t.requests,
                        last_zxid: t.last_zxid,
                    };
                    if core == *c {
                        continue;
                    }
                    format!(
                        "leader n{id}'s handler for n{} counts {core:?}; the link carried {c:?}",
                        h.sid
                    )
                }
            };
            broken = Some(detail);
            break;
        }
        if broken.is_none() {
            broken = mntr_learners(id, &s.status(), &handlers);
        }
        if let Some(detail) = broken {
            self.fail(violation(Claim::LeaderLearnerTraffic, now, detail));
        }
    }
}

/// `mntr`'s learner counts (ZooKeeper's `zk_learners`, `zk_synced_followers`,
/// `zk_synced_observers`) are the leader's own listing counted again: every handler, and those
/// synced (NEWLEADER ACKed) by their role in the configuration in force.
fn mntr_learners(
    id: ServerId,
    st: &ensemble_core::Status,
    handlers: &[ensemble_core::LearnerInfo],
) -> Option<String> {
    let followers = handlers.iter().filter(|h| h.synced && !h.observer).count();
    let observers = handlers.iter().filter(|h| h.synced && h.observer).count();
    let listed = (handlers.len(), followers, observers);
    let counted = (st.learners, st.synced_followers, st.synced_observers);
    (listed != counted).then(|| {
        format!(
            "leader n{id}'s mntr counts (learners, synced followers, synced observers) \
             {counted:?}; its learners listed {listed:?}"
        )
    })
}
