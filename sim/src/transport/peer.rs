//! Links between servers: per (sender, receiver, channel) FIFO and reliable until the
//! connection breaks; a break loses what is in flight, and on the quorum channel both cores
//! hear `PeerDisconnected` before anything of a later connection. A blocked path breaks its
//! connection after a TCP timeout.

use crate::net::{Channel, ELECTION, QUORUM};
use crate::scheduler::Ev;
use crate::world::{Who, World};
use ensemble_core::peer::PeerMsg;
use ensemble_core::server::Event;
use ensemble_core::txn::ServerId;

impl World {
    pub(crate) fn send_peer(&mut self, from: ServerId, to: ServerId, msg: PeerMsg) {
        if from == to || !self.nodes.contains_key(&to) {
            return;
        }
        let ch = msg.is_election();
        if ch == QUORUM {
            self.learner_answered(from, to);
        }
        let now = self.sched.now;
        let (lo, hi) = self.params.net_delay;
        let mut d = self.rng.range(lo, hi).max(1);
        // latency spikes belong to the fault phase: the liveness phase has a calm network
        if self.params.spike_prob > 0.0
            && now < self.fault_end
            && self.rng.chance(self.params.spike_prob)
        {
            d += self.rng.exp(self.params.spike_ms.max(1));
        }
        if let Some((until, extra)) = self.transport.net.slow.get(&from)
            && *until > now
        {
            d += extra;
        }
        let link = self.transport.net.links.entry((from, to, ch)).or_default();
        // a SNAP's parts take a millisecond each on the wire, so that faults can cut a stream
        // midway (sync.partial-snap)
        let spacing = u64::from(matches!(msg, PeerMsg::SnapPart { .. }));
        let at = (now + d).max(link.last_arrival + spacing);
        link.last_arrival = at;
        link.queue.push_back((at, msg));
        self.schedule(at, Ev::Pump { from, to, ch });
        if self.transport.net.blocked(from, to, now) {
            self.arm_tcp_timeout(from, to, ch);
        }
    }

    pub(crate) fn pump(&mut self, from: ServerId, to: ServerId, ch: Channel) {
        let now = self.sched.now;
        if self.transport.net.blocked(from, to, now) {
            return;
        }
        // a stalled quorum side neither reads nor writes its quorum connections (its
        // unstall pumps them again)
        if self.frozen(from, ch, now) || self.frozen(to, ch, now) {
            return;
        }
        loop {
            let Some(link) = self.transport.net.links.get_mut(&(from, to, ch)) else {
                return;
            };
            match link.queue.front() {
                Some((at, _)) if *at <= now => {}
                _ => return,
            }
            let (_, msg) = link.queue.pop_front().expect("front");
            self.deliver(to, Event::Peer { from, msg });
            if self.violation.is_some() {
                return;
            }
        }
    }

    pub(crate) fn arm_tcp_timeout(&mut self, a: ServerId, b: ServerId, ch: Channel) {
        let generation = self
            .nodes
            .get(&a)
            .and_then(|n| n.gens.get(&(b, ch)).copied())
            .unwrap_or(0);
        let at = self.sched.now + self.params.tcp_timeout_ms;
        self.schedule(
            at,
            Ev::TcpTimeout {
                a,
                b,
                ch,
                generation,
            },
        );
    }

    /// Break one channel between two servers: in-flight messages are lost; on the quorum
    /// channel both cores hear of it before anything from a later connection.
    pub(crate) fn break_peer_conn(&mut self, a: ServerId, b: ServerId, ch: Channel) {
        if std::env::var("SIMDEBUG").is_ok() {
            for k in [(a, b, ch), (b, a, ch)] {
                if let Some(l) = self.transport.net.links.get(&k) {
                    eprintln!(
                        "DEBUG t={} link {:?} front={:?} last={} blocked={}",
                        self.sched.now,
                        k,
                        l.queue.front().map(|x| x.0),
                        l.last_arrival,
                        self.transport.net.blocked(k.0, k.1, self.sched.now)
                    );
                }
            }
        }
        let lost = self.transport.net.break_conn(a, b, ch);
        for (x, y) in [(a, b), (b, a)] {
            if let Some(n) = self.nodes.get_mut(&x) {
                *n.gens.entry((y, ch)).or_default() += 1;
            }
        }
        if lost > 0 {
            self.log(
                Who::Net,
                "",
                format_args!("n{a}<->n{b} {} broken, {lost} in flight lost", chname(ch)),
            );
        }
        if ch == QUORUM {
            for (x, y) in [(a, b), (b, a)] {
                let inc = self.nodes[&x].inc;
                self.schedule(
                    self.sched.now,
                    Ev::Deliver {
                        node: x,
                        inc,
                        event: Box::new(Event::PeerDisconnected { peer: y }),
                    },
                );
            }
        }
    }

    /// Paths may have opened: deliver what waited on them, and arm timeouts for the closed.
    pub(crate) fn unblocked(&mut self) {
        let now = self.sched.now;
        let keys: Vec<(ServerId, ServerId, Channel)> = self
            .transport
            .net
            .links
            .iter()
            .filter(|(_, l)| !l.queue.is_empty())
            .map(|(k, _)| *k)
            .collect();
        for (from, to, ch) in keys {
            if !self.transport.net.blocked(from, to, now) {
                self.schedule(now, Ev::Pump { from, to, ch });
            }
        }
    }

    pub(crate) fn topology_changed(&mut self) {
        self.stats.partitions += 1;
        let ids = self.servers.clone();
        for &a in &ids {
            for &b in &ids {
                if a < b
                    && (self.transport.net.blocked(a, b, self.sched.now)
                        || self.transport.net.blocked(b, a, self.sched.now))
                {
                    self.arm_tcp_timeout(a, b, QUORUM);
                    self.arm_tcp_timeout(a, b, ELECTION);
                }
            }
        }
        self.unblocked();
    }

    /// A blocked path's TCP connection gives up, if still blocked and not broken since.
    pub(crate) fn tcp_timeout(&mut self, a: ServerId, b: ServerId, ch: Channel, generation: u64) {
        let still = self.transport.net.blocked(a, b, self.sched.now)
            || self.transport.net.blocked(b, a, self.sched.now);
        let g = self
            .nodes
            .get(&a)
            .and_then(|n| n.gens.get(&(b, ch)).copied())
            .unwrap_or(0);
        if still && g == generation {
            self.log(
                Who::Net,
                "",
                format_args!("tcp timeout n{a}<->n{b} {}", chname(ch)),
            );
            self.break_peer_conn(a, b, ch);
        }
    }

    /// A partition's time is up (unless another replaced it).
    pub(crate) fn heal_partition(&mut self, id: u64) {
        if self.transport.net.partition_id == id && self.transport.net.partitioned() {
            self.log(Who::Net, "", format_args!("partition heals"));
            self.transport.net.heal_partition();
            self.unblocked();
        }
    }

    /// A clog's time is up (unless a later one extended it).
    pub(crate) fn unclog(&mut self, from: ServerId, to: ServerId) {
        if self
            .transport
            .net
            .clogs
            .get(&(from, to))
            .is_some_and(|u| *u <= self.sched.now)
        {
            self.transport.net.clogs.remove(&(from, to));
            self.unblocked();
        }
    }
}

pub(crate) fn chname(ch: Channel) -> &'static str {
    if ch == ELECTION { "election" } else { "quorum" }
}
