//! The transport: links between servers (`peer`: per (sender, receiver, channel) FIFO, as TCP,
//! until a break) and client connections (`client`).

pub(crate) mod client;
mod peer;

pub(crate) use peer::chname;

use crate::net::Net;
use client::{CConn, S2C};
use ensemble_core::server::ConnId;
use std::collections::{BTreeMap, VecDeque};

/// The network's state: the links between servers (`Net`: queues, partitions, clogs, slow
/// senders) and the client connections, with what paused clients have not read yet.
#[derive(Default)]
pub(crate) struct Transport {
    pub(crate) net: Net,
    pub(crate) conns: BTreeMap<ConnId, CConn>,
    /// What reached a paused client's socket, read when it resumes.
    pub(crate) client_inbox: BTreeMap<usize, VecDeque<(ConnId, S2C)>>,
}
