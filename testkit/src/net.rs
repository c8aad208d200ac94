//! The simulator's link model, as ZooKeeper's TCP connections behave: per (sender, receiver,
//! channel) FIFO and reliable until the connection breaks; a break loses everything in flight
//! on it. Partitions (with sides), one-way cuts and clogs block a path without breaking it (TCP
//! keeps retransmitting) until the connection times out; slow senders and flapping links are
//! the simulator's to carry out (`sim/src/transport/`), with its clock and RNG.
//!
//! The golden scripts keep [`crate::links`]: there a cut loses what is in flight and what is
//! sent later, and messages carry no arrival time, so each script step shows one message moving.
//! Driving the scripts with this model would change what they print (a healed partition here
//! delivers what waited behind it), and the simulator's traces depend on this one's timing.

use ensemble_core::peer::PeerMsg;
use ensemble_core::txn::ServerId;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Election channel or quorum channel.
pub type Channel = bool;
pub const ELECTION: Channel = true;
pub const QUORUM: Channel = false;

#[derive(Default)]
pub struct Link {
    pub queue: VecDeque<(u64, PeerMsg)>,
    pub last_arrival: u64,
}

#[derive(Default)]
pub struct Net {
    pub links: BTreeMap<(ServerId, ServerId, Channel), Link>,
    /// Partition: each server's side mask; two servers talk if their masks share a bit.
    pub sides: BTreeMap<ServerId, u8>,
    pub partition_id: u64,
    pub partition_since: Option<u64>,
    pub partition_desc: String,
    /// One-way cuts: (from, to) cannot deliver.
    pub oneway: BTreeSet<(ServerId, ServerId)>,
    /// Clogged directions, with when they clear.
    pub clogs: BTreeMap<(ServerId, ServerId), u64>,
    /// Extra latency on everything a server sends, until a time.
    pub slow: BTreeMap<ServerId, (u64, u64)>,
    /// Links flap (random resets) until this time.
    pub flap_until: u64,
    pub flap_every: u64,
}

impl Net {
    pub fn blocked(&self, from: ServerId, to: ServerId, now: u64) -> bool {
        self.partitioned_from(from, to)
            || self
                .clogs
                .get(&(from, to))
                .is_some_and(|until| *until > now)
    }

    /// Does the partition (not a passing clog) keep `from` from reaching `to`?
    pub fn partitioned_from(&self, from: ServerId, to: ServerId) -> bool {
        let a = self.sides.get(&from).copied().unwrap_or(0xff);
        let b = self.sides.get(&to).copied().unwrap_or(0xff);
        a & b == 0 || self.oneway.contains(&(from, to))
    }

    pub fn partitioned(&self) -> bool {
        !self.sides.is_empty() || !self.oneway.is_empty()
    }

    pub fn heal_partition(&mut self) {
        self.sides.clear();
        self.oneway.clear();
        self.partition_since = None;
        self.partition_desc.clear();
    }

    /// Drop what is in flight both ways on one channel between two servers.
    pub fn break_conn(&mut self, a: ServerId, b: ServerId, ch: Channel) -> usize {
        let mut lost = 0;
        for k in [(a, b, ch), (b, a, ch)] {
            if let Some(l) = self.links.get_mut(&k) {
                lost += l.queue.len();
                l.queue.clear();
            }
        }
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_blocks_by_side_and_a_clog_passes() {
        let mut net = Net::default();
        assert!(!net.partitioned() && !net.blocked(1, 2, 0));
        // 1 alone on side 1, 2 and 3 on side 2; 3 also cannot send to 2 (one way)
        net.sides.extend([(1, 0b01), (2, 0b10), (3, 0b10)]);
        net.oneway.insert((3, 2));
        assert!(net.partitioned());
        assert!(net.blocked(1, 2, 0) && net.blocked(2, 1, 0));
        assert!(!net.blocked(2, 3, 0) && net.blocked(3, 2, 0));
        // a server in no side talks to every side
        assert!(!net.blocked(4, 1, 0) && !net.blocked(2, 4, 0));
        net.heal_partition();
        assert!(!net.partitioned() && !net.blocked(1, 2, 0) && !net.blocked(3, 2, 0));
        net.clogs.insert((1, 2), 100);
        assert!(net.blocked(1, 2, 99) && !net.blocked(1, 2, 100) && !net.blocked(2, 1, 0));
        assert!(!net.partitioned_from(1, 2), "a clog is no partition");
    }

    #[test]
    fn a_break_loses_one_channel_both_ways() {
        let mut net = Net::default();
        let ping = || PeerMsg::Ping { round: 0 };
        for (from, to, ch) in [(1, 2, QUORUM), (2, 1, QUORUM), (1, 2, ELECTION)] {
            net.links
                .entry((from, to, ch))
                .or_default()
                .queue
                .push_back((0, ping()));
        }
        assert_eq!(net.break_conn(2, 1, QUORUM), 2);
        assert!(net.links[&(1, 2, QUORUM)].queue.is_empty());
        assert_eq!(net.links[&(1, 2, ELECTION)].queue.len(), 1);
        assert_eq!(net.break_conn(1, 2, QUORUM), 0);
    }
}
