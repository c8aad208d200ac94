//! Peer-to-peer framing on the quorum and election ports.
//!
//! A connection starts with a 16-byte hello from the dialling side — `ENSP`, protocol version
//! u16, channel u8, reserved u8, sender's sid u64 (all big-endian) — answered by the same shape
//! with `ENSA` and the acceptor's sid. The dialler's hello is followed by its own quorum
//! address as its configuration names it (`host:quorumPort:electionPort`: u16 length, then
//! the text), so that a server outside the acceptor's configuration (a joiner syncing before
//! the reconfig that adds it, as ZooKeeper's election handshake carries the address) can be
//! linked back. Then one-way frames from dialler to acceptor:
//! `[u32 length][bincode(PeerMsg)]`. Anything else is garbage and drops the connection.

use bincode::Options;
use ensemble_core::{PeerMsg, ServerId};

pub const HELLO_MAGIC: &[u8; 4] = b"ENSP";
pub const ACK_MAGIC: &[u8; 4] = b"ENSA";
pub const PROTOCOL_VERSION: u16 = 5; // 2: ACKEPOCH names the epoch it answers; 3: SESSIONEXPIRED; 4: notifications name the configuration version and whether the sender vouches for its data dir (`intact`, also in FOLLOWERINFO); 5: the dialler's address after its hello
pub const HELLO_LEN: usize = 16;
/// The longest address a hello may carry (a host name is at most 253 bytes, plus the ports).
pub const MAX_HELLO_ADDR: usize = 300;
/// Upper bound of one peer frame; a SNAP carries the whole tree.
pub const MAX_PEER_FRAME: u64 = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Election = 0,
    Quorum = 1,
}

impl Channel {
    pub fn of(msg: &PeerMsg) -> Channel {
        if msg.is_election() {
            Channel::Election
        } else {
            Channel::Quorum
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Channel::Election => "election",
            Channel::Quorum => "quorum",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("bad hello: {0}")]
    BadHello(&'static str),
    #[error("peer frame of {0} bytes is over the limit")]
    TooLarge(u64),
    #[error("undecodable peer frame: {0}")]
    Decode(String),
    #[error("a {msg} message on the {channel} channel")]
    WrongChannel {
        msg: &'static str,
        channel: &'static str,
    },
}

fn options() -> impl Options {
    encode_options().with_limit(MAX_PEER_FRAME)
}

/// Without the limit: bincode checks one with a whole sizing pass first, so the encoder
/// checks the length it produced instead.
fn encode_options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_big_endian()
        .reject_trailing_bytes()
}

pub fn hello(magic: &[u8; 4], channel: Channel, sid: ServerId) -> [u8; HELLO_LEN] {
    let mut b = [0u8; HELLO_LEN];
    b[..4].copy_from_slice(magic);
    b[4..6].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    b[6] = channel as u8;
    b[8..16].copy_from_slice(&sid.to_be_bytes());
    b
}

/// Parse a hello (or its answer): the channel and the sid it names.
pub fn parse_hello(magic: &[u8; 4], b: &[u8; HELLO_LEN]) -> Result<(Channel, ServerId), WireError> {
    if &b[..4] != magic {
        return Err(WireError::BadHello("wrong magic"));
    }
    if u16::from_be_bytes([b[4], b[5]]) != PROTOCOL_VERSION {
        return Err(WireError::BadHello("unsupported protocol version"));
    }
    let channel = match b[6] {
        0 => Channel::Election,
        1 => Channel::Quorum,
        _ => return Err(WireError::BadHello("unknown channel")),
    };
    let mut sid = [0u8; 8];
    sid.copy_from_slice(&b[8..16]);
    Ok((channel, u64::from_be_bytes(sid)))
}

/// The dialler's address after its hello: u16 length, then the text.
pub fn hello_addr(addr: &str) -> Vec<u8> {
    let text = &addr.as_bytes()[..addr.len().min(MAX_HELLO_ADDR)];
    let mut b = Vec::with_capacity(2 + text.len());
    b.extend_from_slice(&(text.len() as u16).to_be_bytes());
    b.extend_from_slice(text);
    b
}

/// The length of the address that follows a hello, refused past [`MAX_HELLO_ADDR`].
pub fn hello_addr_len(b: [u8; 2]) -> Result<usize, WireError> {
    let len = u16::from_be_bytes(b) as usize;
    if len > MAX_HELLO_ADDR {
        return Err(WireError::BadHello("address too long"));
    }
    Ok(len)
}

/// Append a whole frame for `msg`.
pub fn encode_frame(msg: &PeerMsg, out: &mut Vec<u8>) -> Result<(), WireError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let encoded = encode_options().serialize_into(&mut *out, msg);
    let len = (out.len() - start - 4) as u64;
    if let Err(e) = encoded {
        out.truncate(start);
        return Err(WireError::Decode(e.to_string()));
    }
    if len > MAX_PEER_FRAME {
        out.truncate(start);
        return Err(WireError::TooLarge(len));
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

pub fn check_len(len: u32) -> Result<usize, WireError> {
    if len as u64 > MAX_PEER_FRAME || len == 0 {
        return Err(WireError::TooLarge(len as u64));
    }
    Ok(len as usize)
}

pub fn decode_body(body: &[u8], channel: Channel) -> Result<PeerMsg, WireError> {
    let msg: PeerMsg = options()
        .deserialize(body)
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if Channel::of(&msg) != channel {
        return Err(WireError::WrongChannel {
            msg: msg.name(),
            channel: channel.name(),
        });
    }
    Ok(msg)
}
