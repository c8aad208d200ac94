//! A small ensemble in memory: the servers, their disks, the links between them and one clock,
//! stepped by hand. The golden scripts and the fuzz harness each drive one; what they do with
//! client traffic is their [`Clients`].

use crate::disk::Disk;
use crate::format::Show;
use crate::interpreter::{self, Flow, Host, Seen, ToClient};
use crate::links::{Link, Links};
use ensemble_core::config::{Config, LearnerType};
use ensemble_core::effect::Ready;
use ensemble_core::peer::PeerMsg;
use ensemble_core::server::{Event, Millis, Server};
use ensemble_core::txn::ServerId;
use std::collections::{BTreeMap, BTreeSet};

/// The client side of an in-memory ensemble: what happens to what servers send clients.
pub trait Clients {
    fn to_client(&mut self, server: ServerId, out: ToClient);

    /// Every write and action before it is carried out (for script output).
    fn observe(&mut self, _server: ServerId, _seen: Seen<'_>) {}
}

pub struct Ensemble<C: Clients> {
    pub cfgs: BTreeMap<ServerId, Config>,
    /// `None` while crashed.
    pub servers: BTreeMap<ServerId, Option<Server>>,
    pub disks: BTreeMap<ServerId, Disk>,
    pub links: Links,
    /// Servers whose fsyncs are held (their appends stay volatile).
    pub held: BTreeSet<ServerId>,
    pub now: Millis,
    pub clients: C,
    /// Print every event and effect to stderr.
    pub trace: bool,
    /// The output buffer, reused across steps.
    ready: Ready,
}

/// `voters` participants (ids 1..) then `observers` observers, each configured by `tune`.
pub fn configs(
    voters: u64,
    observers: u64,
    tune: impl Fn(&mut Config),
) -> BTreeMap<ServerId, Config> {
    let mut members = BTreeMap::new();
    for id in 1..=voters {
        members.insert(id, LearnerType::Participant);
    }
    for id in voters + 1..=voters + observers {
        members.insert(id, LearnerType::Observer);
    }
    members
        .keys()
        .map(|id| {
            let mut c = Config::new(*id, members.clone());
            tune(&mut c);
            (*id, c)
        })
        .collect()
}

impl<C: Clients> Ensemble<C> {
    /// Every configured server started on an empty disk at `now`.
    pub fn new(
        cfgs: BTreeMap<ServerId, Config>,
        links: Links,
        now: Millis,
        clients: C,
    ) -> Ensemble<C> {
        let mut e = Ensemble {
            disks: cfgs
                .keys()
                .map(|id| (*id, Disk::with_files(&format!("n{id}"))))
                .collect(),
            servers: BTreeMap::new(),
            cfgs,
            links,
            held: BTreeSet::new(),
            now,
            clients,
            trace: false,
            ready: Ready::new(),
        };
        for id in e.ids() {
            e.start(id);
        }
        e
    }

    pub fn ids(&self) -> Vec<ServerId> {
        self.cfgs.keys().copied().collect()
    }

    pub fn up(&self, id: ServerId) -> bool {
        matches!(self.servers.get(&id), Some(Some(_)))
    }

    pub fn server(&self, id: ServerId) -> Option<&Server> {
        self.servers.get(&id).and_then(Option::as_ref)
    }

    /// (Re)start `id` from what its disk holds.
    pub fn start(&mut self, id: ServerId) {
        let rec = match self.disks.get_mut(&id).map(Disk::recover) {
            Some(Ok(rec)) => rec,
            Some(Err(e)) => panic!("server {id} cannot read back what it wrote: {e}"),
            None => panic!("server {id} has no disk"),
        };
        let s = match Server::new(self.cfgs[&id].clone(), rec, self.now) {
            Ok(s) => s,
            Err(e) => panic!("server {id} cannot recover from what it wrote itself: {e}"),
        };
        self.servers.insert(id, Some(s));
    }

    /// Hand `ev` to server `id` (nothing if it is down) and carry out what it asks for.
    pub fn step(&mut self, id: ServerId, ev: Event) {
        let Some(Some(s)) = self.servers.get_mut(&id) else {
            return;
        };
        if self.trace {
            eprintln!("{} {id} <- {ev:?}", self.now);
        }
        // taken, not borrowed: carrying it out may step another server (a broken link)
        let mut ready = std::mem::take(&mut self.ready);
        s.handle_ready(self.now, ev, &mut ready);
        interpreter::execute(self, id, &mut ready);
        self.ready = ready;
    }

    /// Every up server ticks once at the current time.
    pub fn tick_all(&mut self) {
        for id in self.ids() {
            self.step(id, Event::Tick);
        }
    }

    /// Deliver the head of `link` (lost if its receiver is down).
    pub fn deliver(&mut self, link: Link) -> bool {
        let Some(msg) = self.links.pop(link) else {
            return false;
        };
        self.step(
            link.to,
            Event::Peer {
                from: link.from,
                msg,
            },
        );
        true
    }

    /// One message from every busy link, in link order, until none is left; false if
    /// nothing was in flight.
    pub fn deliver_all(&mut self) -> bool {
        self.deliver_rounds(usize::MAX)
    }

    /// Up to `rounds` rounds of one message from every busy link, in link order, stopping
    /// when none is left; false if nothing was in flight.
    pub fn deliver_rounds(&mut self, rounds: usize) -> bool {
        let mut any = false;
        for _ in 0..rounds {
            let busy = self.links.busy();
            if busy.is_empty() {
                break;
            }
            for link in busy {
                any |= self.deliver(link);
            }
        }
        any
    }

    /// The quorum connection between `a` and `b` breaks: what was in flight on it is lost and
    /// `b` is told (`a` too when `tell_a`, as when the network rather than `a` broke it).
    pub fn break_link(&mut self, a: ServerId, b: ServerId, tell_a: bool) {
        self.links.break_quorum(a, b);
        if tell_a {
            self.step(a, Event::PeerDisconnected { peer: b });
        }
        self.step(b, Event::PeerDisconnected { peer: a });
    }

    /// `id` dies: its volatile state (unsynced appends, snapshot parts) is lost, its
    /// connections break and every other server notices.
    pub fn crash(&mut self, id: ServerId) {
        if !self.up(id) {
            return;
        }
        self.servers.insert(id, None);
        self.disks
            .get_mut(&id)
            .expect("disk")
            .crash_losing_unsynced();
        self.links.drop_all_of(id);
        for other in self.ids() {
            if other != id {
                self.step(other, Event::PeerDisconnected { peer: id });
            }
        }
    }

    /// fsync the first `n` unsynced appends of `id` (all when `n` is past the end) and report
    /// them durable; false if nothing was waiting (or `id` is down or held).
    pub fn fsync(&mut self, id: ServerId, n: usize) -> bool {
        if !self.up(id) || self.held.contains(&id) {
            return false;
        }
        let Some(through) = self.disks.get_mut(&id).expect("disk").fsync_first(n) else {
            return false;
        };
        self.step(id, Event::Persisted { through });
        true
    }

    /// fsync every up, unheld server's log; false if nothing was waiting anywhere.
    pub fn fsync_all(&mut self) -> bool {
        let mut any = false;
        for id in self.ids() {
            any |= self.fsync(id, usize::MAX);
        }
        any
    }

    /// The kit's invariants over the whole ensemble: the link model's, each disk's, and no
    /// disk holding a txn its server does not know it logged.
    pub fn check(&self) {
        self.links.check();
        for (id, d) in &self.disks {
            d.check();
            if let Some(s) = self.server(*id) {
                assert!(
                    s.last_logged() >= d.log.last().map(|e| e.txn.zxid).unwrap_or_default(),
                    "server {id} has logged more than it knows"
                );
            }
        }
    }
}

impl<C: Clients> Host for Ensemble<C> {
    fn disk(&mut self, id: ServerId) -> &mut crate::disk::Disk {
        self.disks.get_mut(&id).expect("a configured server's disk")
    }

    fn observe(&mut self, id: ServerId, seen: Seen<'_>) -> Flow {
        if self.trace {
            eprintln!("    {id} -> {}", Show(&seen));
        }
        self.clients.observe(id, seen);
        Flow::Execute
    }

    fn send(&mut self, from: ServerId, to: ServerId, msg: PeerMsg) {
        // a TCP connection to a server that is down is refused
        if self.up(to) {
            self.links.push(from, to, msg);
        }
    }

    fn disconnect_peer(&mut self, id: ServerId, peer: ServerId) {
        self.break_link(id, peer, false);
    }

    fn to_client(&mut self, id: ServerId, out: ToClient) {
        self.clients.to_client(id, out);
    }
}
