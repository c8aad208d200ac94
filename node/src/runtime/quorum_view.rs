//! The peers this server keeps links with follow the configuration: every member of the
//! configuration in force and of a pending one (a reconfig logged, not yet committed, whose
//! quorum is needed too), as ZooKeeper's QuorumPeer connects to the last seen configuration's
//! new members (`connectNewPeers`). A server that joins gets its election and quorum senders
//! and is accepted on our ports; one that leaves (or changes address) loses them, its
//! connections are closed and the core hears of the break. When a reconfig is activated, the
//! new configuration is written to the dynamic file (see [`crate::dynamic_config`]).

use super::Input;
use super::outbox::{Outbox, PeerLinks};
use super::peers::{self, PeerSecurity};
use super::wire::Channel;
use crate::config::NodeConfig;
use ensemble_core::membership::{Membership, QuorumServer};
use ensemble_core::{Event, Server, ServerId, ServerState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// The servers whose hellos the quorum and election ports take (shared with the accept loops).
pub type Accepted = Arc<RwLock<BTreeSet<ServerId>>>;

/// Each peer's links (election, quorum, the quorum one's backlog).
pub(crate) type Senders = BTreeMap<ServerId, super::Senders>;

pub(crate) struct QuorumView {
    /// The network runtime, where the sender tasks run.
    handle: tokio::runtime::Handle,
    me: ServerId,
    security: PeerSecurity,
    input: mpsc::Sender<Input>,
    accepted: Accepted,
    /// The quorum address each link was made for (`host:quorumPort:electionPort`).
    linked: BTreeMap<ServerId, String>,
    /// (version in force, version pending) when the links were last brought in line.
    seen: (u64, Option<u64>),
    /// The static file to point at the dynamic one, with reconfigEnabled; `None` otherwise.
    static_file: Option<std::path::PathBuf>,
    /// The highest configuration version on disk.
    persisted: u64,
    /// The version of the pending configuration written to `.dynamic.next`, if one is there.
    next_written: Option<u64>,
    /// No `server.N` lines: no peer ports.
    standalone: bool,
    /// The leader we follow, gone from the configuration by the reconfig whose commit it just
    /// sent: its links stay until we leave it, so that its HANDOVER (which comes after that
    /// commit) reaches us.
    lingering: Option<ServerId>,
    /// Our own `host:quorumPort:electionPort`, said after each hello we send.
    my_addr: Arc<str>,
    /// Servers outside every configuration we know that dialled in with their address (a
    /// joiner syncing before the reconfig that adds it): linked for as long as we run, unless
    /// a configuration names them (its address then wins).
    guests: BTreeMap<ServerId, String>,
    /// The plaintext client port, moved when the configuration in force moves our address.
    client_port: Option<super::client_port::ClientPort>,
}

/// At most this many guests linked at once: each costs two sender tasks.
const MAX_GUESTS: usize = 32;

/// `(host, quorum port, election port)` of a member, the host without IPv6 brackets.
fn endpoints(s: &QuorumServer) -> (String, u16, u16) {
    let (q, e) = s.ports();
    (s.host().trim_matches(['[', ']']).to_string(), q, e)
}

impl QuorumView {
    /// Links with the members of the static configuration (`zoo.cfg` or its dynamic file).
    pub(crate) fn start(
        handle: tokio::runtime::Handle,
        cfg: &NodeConfig,
        security: PeerSecurity,
        input: mpsc::Sender<Input>,
    ) -> (QuorumView, Senders) {
        let me = cfg.core.my_id;
        let mut view = QuorumView {
            handle,
            me,
            security,
            input,
            accepted: Arc::new(RwLock::new(BTreeSet::new())),
            linked: BTreeMap::new(),
            seen: (cfg.config_version, None),
            lingering: None,
            static_file: (cfg.core.reconfig_enabled && !cfg.standalone).then(|| cfg.path.clone()),
            persisted: cfg.config_version,
            // a file left by an earlier run goes at the first change with nothing pending
            next_written: crate::dynamic_config::next_path(&cfg.path)
                .exists()
                .then_some(0),
            standalone: cfg.standalone,
            my_addr: cfg
                .servers
                .get(&me)
                .map(|s| format!("{}:{}:{}", s.host, s.quorum_port, s.election_port))
                .unwrap_or_default()
                .into(),
            guests: BTreeMap::new(),
            client_port: None,
        };
        let mut senders = BTreeMap::new();
        if !cfg.standalone {
            for (sid, spec) in cfg.servers.iter().filter(|(sid, _)| **sid != me) {
                let addr = format!("{}:{}:{}", spec.host, spec.quorum_port, spec.election_port);
                let host = spec.host.trim_matches(['[', ']']).to_string();
                senders.insert(
                    *sid,
                    view.spawn(*sid, (host, spec.quorum_port, spec.election_port)),
                );
                view.linked.insert(*sid, addr);
            }
        }
        view.set_accepted();
        (view, senders)
    }

    pub(crate) fn set_client_port(&mut self, port: super::client_port::ClientPort) {
        self.client_port = Some(port);
    }

    pub(crate) fn accepted(&self) -> Accepted {
        self.accepted.clone()
    }

    fn set_accepted(&self) {
        let ids: BTreeSet<ServerId> = self.linked.keys().copied().collect();
        match self.accepted.write() {
            Ok(mut a) => *a = ids,
            Err(poisoned) => *poisoned.into_inner() = ids,
        }
    }

    fn spawn(&self, sid: ServerId, (host, q, e): (String, u16, u16)) -> super::Senders {
        let _guard = self.handle.enter();
        let (quorum, backlog) = peers::spawn_sender(
            self.me,
            self.my_addr.clone(),
            sid,
            Channel::Quorum,
            host.clone(),
            q,
            self.input.clone(),
            self.security.clone(),
        );
        let (election, _) = peers::spawn_sender(
            self.me,
            self.my_addr.clone(),
            sid,
            Channel::Election,
            host,
            e,
            self.input.clone(),
            self.security.clone(),
        );
        (election, quorum, backlog)
    }

    /// A server outside the configurations dialled in saying it listens at `addr`
    /// (`host:quorumPort:electionPort`): link back to it, as ZooKeeper's QuorumCnxManager
    /// takes a connection from a server it does not know, so that it can find the leader and
    /// sync as a non-voting follower before a reconfig adds it. Its votes and ACKs count
    /// nowhere until a configuration names it (the core's quorum verifier).
    pub(crate) fn add_guest(
        &mut self,
        server: &Server,
        sid: ServerId,
        addr: String,
        out: &mut Outbox,
    ) {
        if self.standalone || sid == self.me || self.guests.get(&sid) == Some(&addr) {
            return;
        }
        let named = std::iter::once(server.membership())
            .chain(server.pending_membership())
            .any(|m| m.servers.contains_key(&sid));
        if named {
            return; // a member's links follow its configuration's address
        }
        if !self.guests.contains_key(&sid) && self.guests.len() >= MAX_GUESTS {
            tracing::warn!(
                "server {sid} ({addr}) outside the configuration not linked: {MAX_GUESTS} others are"
            );
            return;
        }
        tracing::info!(
            peer = sid,
            "server {sid} ({addr}) is outside the configuration: linking back as a non-voter"
        );
        self.guests.insert(sid, addr);
        self.relink(server, out);
    }

    /// After the core handled an event: if the configuration in force or the pending one
    /// changed, bring the links in line (and write an activated configuration to disk).
    pub(crate) fn follow(&mut self, server: &Server, out: &mut Outbox) {
        let current = server.membership();
        let pending = server.pending_membership();
        let now = (current.version, pending.map(|m| m.version));
        let released = self
            .lingering
            .is_some_and(|sid| server.status().leader != Some(sid));
        if released {
            self.lingering = None;
        }
        if now == self.seen && !released {
            return;
        }
        self.seen = now;
        if current.version > self.persisted {
            self.persist(current);
        }
        self.persist_next(pending);
        if let Some(port) = &mut self.client_port {
            port.follow(
                current
                    .servers
                    .get(&self.me)
                    .and_then(|s| s.client.as_deref()),
            );
        }
        if self.standalone {
            // no quorum or election port: nothing to link with
            return;
        }
        self.relink(server, out);
    }

    /// Links with every member of the configuration in force and the pending one, and with
    /// the guests no configuration names; others' links closed.
    fn relink(&mut self, server: &Server, out: &mut Outbox) {
        let current = server.membership();
        let pending = server.pending_membership();
        let mut wanted: BTreeMap<ServerId, QuorumServer> = BTreeMap::new();
        for m in std::iter::once(current).chain(pending) {
            for (sid, s) in &m.servers {
                if *sid != self.me {
                    // the pending configuration's address wins: it is the one coming
                    wanted.insert(*sid, s.clone());
                }
            }
        }
        // a guest a configuration names is a member now
        self.guests.retain(|sid, _| !wanted.contains_key(sid));
        for (sid, addr) in &self.guests {
            if let Ok(s) = QuorumServer::parse(addr) {
                wanted.insert(*sid, s);
            }
        }
        let gone: Vec<ServerId> = self
            .linked
            .iter()
            .filter(|(sid, addr)| wanted.get(sid).is_none_or(|s| s.addr != **addr))
            .map(|(sid, _)| *sid)
            .collect();
        let following = match server.state() {
            ServerState::Following | ServerState::Observing => server.status().leader,
            _ => None,
        };
        for sid in gone {
            if Some(sid) == following {
                self.lingering = Some(sid);
                continue;
            }
            self.linked.remove(&sid);
            // Dropping the links ends the sender tasks and the inbound readers.
            if out.peers.remove(&sid).is_some() {
                tracing::info!(
                    peer = sid,
                    "server {sid} left the configuration: links closed"
                );
                out.events.push_back(Event::PeerDisconnected { peer: sid });
            }
        }
        for (sid, s) in wanted {
            if self.linked.contains_key(&sid) {
                continue;
            }
            let links = PeerLinks::new(self.spawn(sid, endpoints(&s)));
            tracing::info!(peer = sid, "server {sid} ({}): linking", s.addr);
            out.peers.insert(sid, links);
            self.linked.insert(sid, s.addr.clone());
        }
        self.set_accepted();
    }

    /// ZooKeeper's setLastSeenQuorumVerifier(qv, writeToDisk) and the deletion in
    /// setQuorumVerifier: a pending reconfig is written to `.dynamic.next` once, and the file
    /// goes when nothing is pending any more (committed and activated, or truncated away).
    fn persist_next(&mut self, pending: Option<&Membership>) {
        let Some(file) = &self.static_file else {
            return;
        };
        let want = pending.map(|m| m.version);
        if want == self.next_written {
            return;
        }
        let done = match pending {
            Some(m) => crate::dynamic_config::persist_next(file, m).map(|next| {
                tracing::info!(
                    "configuration {:x} proposed: written to {}",
                    m.version,
                    next.display()
                )
            }),
            None => crate::dynamic_config::remove_next(file),
        };
        match done {
            Ok(()) => self.next_written = want,
            Err(e) => tracing::error!(
                "writing the next dynamic configuration beside {} failed: {e}",
                file.display()
            ),
        }
    }

    /// ZooKeeper's setQuorumVerifier(qv, writeToDisk): the dynamic file of the configuration
    /// activated, and the static file pointed at it. A failure is logged, as ZooKeeper does:
    /// the configuration is in the replicated state either way, and a restart finds it there.
    fn persist(&mut self, m: &Membership) {
        let first_run = self.persisted == 0;
        self.persisted = m.version;
        let Some(file) = &self.static_file else {
            return;
        };
        if first_run && !m.servers.contains_key(&self.me) {
            // A joiner started with the ensemble plus itself learns the configuration in
            // force, which does not name it yet: its files keep the one that does (its own
            // ports, for a restart and for `status`) until a reconfig adds it.
            tracing::info!(
                "configuration {:x} does not name server {} yet: {} kept as it is",
                m.version,
                self.me,
                file.display()
            );
            return;
        }
        match crate::dynamic_config::persist(file, m, self.me) {
            Ok(d) => tracing::info!(
                "configuration {:x} activated: written to {}",
                m.version,
                d.display()
            ),
            Err(e) => tracing::error!(
                "configuration {:x} activated, but writing it next to {} failed: {e}",
                m.version,
                file.display()
            ),
        }
    }
}
