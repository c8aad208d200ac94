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
//!
//! Two versions interoperate, for a rolling upgrade: this one and the previous
//! ([`PREVIOUS_VERSION`], 4). A version 4 hello carries no address. The acceptor answers with
//! the version of the hello it took, so a link speaks the version its dialler offered; a
//! dialler offers [`PROTOCOL_VERSION`] first, and 4 again to a peer that closed on its hello
//! (a version 4 server drops any other version). Version 4's PeerMsg is this one's without
//! its last variant (`HandOver`, [`V4_VARIANTS`]): every other layout is the same, so a v4
//! frame decodes here as it is, and a v4 link only has to keep HANDOVER off it.

use bincode::Options;
use ensemble_core::{PeerMsg, ServerId};

pub const HELLO_MAGIC: &[u8; 4] = b"ENSP";
pub const ACK_MAGIC: &[u8; 4] = b"ENSA";
pub const PROTOCOL_VERSION: u16 = 5; // 2: ACKEPOCH names the epoch it answers; 3: SESSIONEXPIRED; 4: notifications name the configuration version and whether the sender vouches for its data dir (`intact`, also in FOLLOWERINFO); 5: the dialler's address after its hello
/// The previous version, still spoken with a peer that speaks only it (a rolling upgrade).
pub const PREVIOUS_VERSION: u16 = 4;
/// PeerMsg's variants in version 4 (`Notification` .. `Config`): bincode writes a variant as
/// its index, so a version 4 peer decodes a frame whose index is below this one.
pub const V4_VARIANTS: u32 = 23;
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
    #[error("unsupported peer protocol version {0} (this build speaks 4 and 5)")]
    Version(u16),
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

/// The peer-protocol versions this build speaks.
pub fn speaks(version: u16) -> bool {
    version == PROTOCOL_VERSION || version == PREVIOUS_VERSION
}

/// A hello (or its answer), parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    pub version: u16,
    pub channel: Channel,
    pub sid: ServerId,
}

impl Hello {
    /// Whether the dialler's address follows the hello (version 5 on).
    pub fn carries_addr(&self) -> bool {
        self.version >= 5
    }
}

pub fn hello(magic: &[u8; 4], version: u16, channel: Channel, sid: ServerId) -> [u8; HELLO_LEN] {
    assert!(speaks(version), "a hello in version {version}");
    let mut b = [0u8; HELLO_LEN];
    b[..4].copy_from_slice(magic);
    b[4..6].copy_from_slice(&version.to_be_bytes());
    b[6] = channel as u8;
    b[8..16].copy_from_slice(&sid.to_be_bytes());
    b
}

/// Parse a hello (or its answer): the version, the channel and the sid it names.
pub fn parse_hello(magic: &[u8; 4], b: &[u8; HELLO_LEN]) -> Result<Hello, WireError> {
    if &b[..4] != magic {
        return Err(WireError::BadHello("wrong magic"));
    }
    let version = u16::from_be_bytes([b[4], b[5]]);
    if !speaks(version) {
        return Err(WireError::Version(version));
    }
    let channel = match b[6] {
        0 => Channel::Election,
        1 => Channel::Quorum,
        _ => return Err(WireError::BadHello("unknown channel")),
    };
    let mut sid = [0u8; 8];
    sid.copy_from_slice(&b[8..16]);
    Ok(Hello {
        version,
        channel,
        sid: u64::from_be_bytes(sid),
    })
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

/// The variant index a frame's body starts with (bincode's enum tag), if it is whole.
fn frame_tag(body: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(body.get(..4)?.try_into().ok()?))
}

/// In whole frames `frames` (as [`encode_frame`] writes them), the offset of the first one a
/// peer of `version` cannot decode, if any: on a version 4 link, a HANDOVER.
pub fn first_unspeakable(frames: &[u8], version: u16) -> Option<usize> {
    if version >= PROTOCOL_VERSION {
        return None;
    }
    let mut at = 0;
    while frames.len() - at >= 4 {
        let len = u32::from_be_bytes(frames[at..at + 4].try_into().ok()?) as usize;
        let body = frames.get(at + 4..at + 4 + len)?;
        if frame_tag(body).is_some_and(|t| t >= V4_VARIANTS) {
            return Some(at);
        }
        at += 4 + len;
    }
    assert_eq!(at, frames.len(), "frames cut inside one");
    None
}

/// Whether a peer of `version` can decode `msg` (version 4 has no HANDOVER).
pub fn speakable(msg: &PeerMsg, version: u16) -> bool {
    version >= PROTOCOL_VERSION || !matches!(msg, PeerMsg::HandOver { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_core::Zxid;

    fn tag_of(msg: &PeerMsg) -> u32 {
        let mut f = Vec::new();
        encode_frame(msg, &mut f).expect("encodes");
        frame_tag(&f[4..]).expect("a tag")
    }

    #[test]
    fn version_4_variants_keep_their_indices() {
        // Version 4 ends with CONFIG; HANDOVER came after it. A variant inserted before it
        // would change what every v4 peer decodes.
        let config = PeerMsg::Config(ensemble_core::membership::Membership::default());
        assert_eq!(tag_of(&config), V4_VARIANTS - 1);
        let handover = PeerMsg::HandOver {
            zxid: Zxid(7),
            designated: 2,
        };
        assert_eq!(tag_of(&handover), V4_VARIANTS);
        assert!(!speakable(&handover, PREVIOUS_VERSION));
        assert!(speakable(&handover, PROTOCOL_VERSION));
        assert!(speakable(&PeerMsg::Ping { round: 1 }, PREVIOUS_VERSION));
    }

    #[test]
    fn hellos_of_both_versions_parse_and_others_are_refused() {
        for v in [PREVIOUS_VERSION, PROTOCOL_VERSION] {
            let h = parse_hello(HELLO_MAGIC, &hello(HELLO_MAGIC, v, Channel::Quorum, 3))
                .expect("parses");
            assert_eq!(
                h,
                Hello {
                    version: v,
                    channel: Channel::Quorum,
                    sid: 3
                }
            );
            assert_eq!(h.carries_addr(), v == PROTOCOL_VERSION);
        }
        let mut b = hello(HELLO_MAGIC, PROTOCOL_VERSION, Channel::Election, 1);
        b[4..6].copy_from_slice(&3u16.to_be_bytes());
        let e = parse_hello(HELLO_MAGIC, &b).expect_err("version 3");
        assert!(e.to_string().contains("version 3"), "{e}");
        b[4..6].copy_from_slice(&6u16.to_be_bytes());
        assert!(parse_hello(HELLO_MAGIC, &b).is_err());
        assert!(parse_hello(ACK_MAGIC, &hello(HELLO_MAGIC, 4, Channel::Election, 1)).is_err());
    }

    #[test]
    fn a_handover_among_frames_is_found_on_a_v4_link_only() {
        let mut frames = Vec::new();
        encode_frame(&PeerMsg::Ping { round: 1 }, &mut frames).expect("encodes");
        let at = frames.len();
        encode_frame(
            &PeerMsg::HandOver {
                zxid: Zxid(9),
                designated: 1,
            },
            &mut frames,
        )
        .expect("encodes");
        encode_frame(&PeerMsg::Ping { round: 1 }, &mut frames).expect("encodes");
        assert_eq!(first_unspeakable(&frames, PREVIOUS_VERSION), Some(at));
        assert_eq!(first_unspeakable(&frames, PROTOCOL_VERSION), None);
        assert_eq!(first_unspeakable(&frames[..at], PREVIOUS_VERSION), None);
    }
}
