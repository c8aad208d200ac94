//! The network between servers, as ZooKeeper's TCP connections behave: per (sender, receiver,
//! channel) FIFO and reliable until the connection breaks; a break loses everything in flight
//! on it. Partitions, one-way cuts and clogs block a path without breaking it (TCP keeps
//! retransmitting) until the connection times out.

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
