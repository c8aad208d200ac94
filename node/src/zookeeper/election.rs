//! ZooKeeper's election port as an observer speaks it (issue 17, item 3b): the initial
//! message that opens every election connection (`QuorumCnxManager`: protocol version
//! -65536, the sender's sid, its election address), then FLE notifications framed as an int
//! length and the message (`FastLeaderElection.buildMsg`).
//!
//! An observer does not vote: it sends its own (empty) vote to each voter, and a voter that
//! is not looking answers a non-voter with the vote it follows (`WorkerReceiver`: "not a
//! valid voter, reply with our current vote"). The leader is learned as ZooKeeper's observer
//! learns it out of election: a majority of the voters name it in the same epoch and it
//! says it is LEADING itself (`termPredicate` + `checkLeader`).

use super::jute::{InputArchive, JuteError};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// `QuorumCnxManager.PROTOCOL_VERSION_V1`: the initial message carries the sender's address.
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// `PROTOCOL_VERSION_V2` (3.6+): the same with several addresses joined by `|`.
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// `QuorumCnxManager.PACKETMAXSIZE`: the largest notification a voter takes.
const PACKET_MAX: usize = 512 * 1024;

/// `QuorumPeer.ServerState`, by the codes notifications carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl PeerState {
    fn from_code(c: i32) -> Option<PeerState> {
        Some(match c {
            0 => PeerState::Looking,
            1 => PeerState::Following,
            2 => PeerState::Leading,
            3 => PeerState::Observing,
            _ => return None,
        })
    }
}

/// One FLE notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub state: PeerState,
    /// The proposed (or followed) leader's sid.
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub peer_epoch: i64,
    /// 0 for the 36-byte form, 1 for the 40-byte one, 2 for 3.5+ (with the configuration).
    pub version: i32,
    /// The sender's configuration (`QuorumVerifier.toString`), for version 2.
    pub config: String,
}

/// The initial message: protocol version, sid, `host:port` of the sender's election port.
pub fn initial_message(sid: i64, election_addr: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(20 + election_addr.len());
    b.extend_from_slice(&PROTOCOL_VERSION_V1.to_be_bytes());
    b.extend_from_slice(&sid.to_be_bytes());
    b.extend_from_slice(&(election_addr.len() as i32).to_be_bytes());
    b.extend_from_slice(election_addr.as_bytes());
    b
}

/// An initial message as a ZooKeeper server reads one: the sender's sid, its election
/// addresses, and the bytes the message took.
pub type InitialMessage = (i64, Vec<String>, usize);

/// Parse an initial message. An error where the first long is not one of ZooKeeper's
/// protocol versions (a pre-3.5 sender writes its sid alone, which this does not take).
pub fn parse_initial_message(b: &[u8]) -> Result<InitialMessage, JuteError> {
    let mut i = InputArchive::new(b, 0);
    let version = i.long("protocol version")?;
    if version != PROTOCOL_VERSION_V1 && version != PROTOCOL_VERSION_V2 {
        return Err(i.error(format!("protocol version {version}, not ZooKeeper's")));
    }
    let sid = i.long("sid")?;
    let addr = i.ustring("election address")?;
    Ok((sid, addr.split('|').map(str::to_string).collect(), i.pos()))
}

impl Notification {
    /// The 40-byte form (`backCompatibility40`: state, four longs, a version of 1 and no
    /// configuration), length first. An observer's vote carries no configuration on purpose:
    /// ZooKeeper 3.8 parses a version-2 notification's configuration in its election
    /// receiver thread, and one it cannot use (an empty one) kills that thread.
    pub fn encode40(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(44);
        b.extend_from_slice(&40i32.to_be_bytes());
        b.extend_from_slice(&(self.state as i32).to_be_bytes());
        for v in [self.leader, self.zxid, self.election_epoch, self.peer_epoch] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&1i32.to_be_bytes());
        debug_assert_eq!(b.len(), 44);
        b
    }

    /// One notification's bytes (after its length).
    pub fn decode(b: &[u8]) -> Result<Notification, JuteError> {
        let mut i = InputArchive::new(b, 0);
        if b.len() < 28 {
            return Err(i.error(format!("notification of {} bytes (28 at least)", b.len())));
        }
        let code = i.int("state")?;
        let state = PeerState::from_code(code).ok_or_else(|| JuteError {
            offset: 0,
            reason: format!("unknown peer state {code}"),
        })?;
        let leader = i.long("leader")?;
        let zxid = i.long("zxid")?;
        let election_epoch = i.long("election epoch")?;
        let peer_epoch = if i.remaining() >= 8 {
            i.long("peer epoch")?
        } else {
            // 28 bytes: the epoch is the zxid's (`ZxidUtils.getEpochFromZxid`)
            zxid >> 32
        };
        let version = if i.remaining() >= 4 {
            i.int("notification version")?
        } else {
            0
        };
        // a configuration follows from version 2 on (`Notification.CURRENTVERSION`)
        let config = if version > 1 {
            let len = i.int("config length")?;
            if len < 0 || len as usize > i.remaining() {
                return Err(i.error(format!("config length {len}")));
            }
            let cfg = i.rest_take(len as usize);
            String::from_utf8_lossy(cfg).into_owned()
        } else {
            String::new()
        };
        Ok(Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version,
            config,
        })
    }
}

/// Split what one side of an election connection sent into notifications (int length, then
/// the message), each decoded or refused; the bytes of a last one cut short are left.
pub fn decode_notifications(b: &[u8]) -> (Vec<Result<Notification, JuteError>>, usize) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while b.len() - at >= 4 {
        let len = i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        if len <= 0 || len as usize > PACKET_MAX {
            out.push(Err(JuteError {
                offset: at as u64,
                reason: format!("notification length {len}"),
            }));
            return (out, b.len());
        }
        let end = at + 4 + len as usize;
        if end > b.len() {
            break;
        }
        out.push(Notification::decode(&b[at + 4..end]));
        at = end;
    }
    (out, at)
}

/// What one voter answered: its notification, or why there is none.
pub type Answer = Result<Notification, String>;

/// Open an election connection to `addr` as server `me` (whose election address is
/// `my_addr`), send an observer's vote and read the first notification back.
pub fn ask(addr: &str, me: i64, my_addr: &str, timeout: Duration) -> Answer {
    let deadline = Instant::now() + timeout;
    let sa: SocketAddr = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let mut s = TcpStream::connect_timeout(&sa, timeout).map_err(|e| format!("{addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let mut out = initial_message(me, my_addr);
    // An observer's vote (`getInitId` etc. of a non-voter): no leader, no zxid, no epoch.
    // OBSERVING, not the LOOKING ZooKeeper's own observer sends: a voter answers a non-voter
    // either way, and should this sid be a voter in ZooKeeper's config, an OBSERVING vote is
    // filed as an observer's and never counted in an election (the price: a non-looking
    // voter does not answer it, so such a peer goes unrecognised).
    let vote = Notification {
        state: PeerState::Observing,
        leader: i64::MIN,
        zxid: i64::MIN,
        election_epoch: 0,
        peer_epoch: i64::MIN,
        version: 0,
        config: String::new(),
    };
    out.extend_from_slice(&vote.encode40());
    s.write_all(&out).map_err(|e| format!("{addr}: {e}"))?;
    let mut read = |buf: &mut [u8]| -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{addr}: no notification in {timeout:?}"));
        }
        s.set_read_timeout(Some(left))
            .map_err(|e| format!("{addr}: {e}"))?;
        s.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("{addr}: no notification in {timeout:?}")
            }
            std::io::ErrorKind::UnexpectedEof => {
                format!("{addr}: closed the connection without a notification")
            }
            _ => format!("{addr}: {e}"),
        })
    };
    let mut len = [0u8; 4];
    read(&mut len)?;
    let len = i32::from_be_bytes(len);
    if len <= 0 || len as usize > PACKET_MAX {
        return Err(format!(
            "{addr}: answered a message of length {len}: not ZooKeeper's election protocol"
        ));
    }
    let mut body = vec![0u8; len as usize];
    read(&mut body)?;
    Notification::decode(&body).map_err(|e| format!("{addr}: {e}"))
}

/// The leader a majority of `voters` follow, learned from their answers: (sid, epoch).
/// `answers` pairs each voter's sid with what it said.
pub fn leader_of(voters: &[i64], answers: &[(i64, Answer)]) -> Option<(i64, i64)> {
    let told: Vec<(i64, &Notification)> = answers
        .iter()
        .filter_map(|(sid, a)| a.as_ref().ok().map(|n| (*sid, n)))
        .filter(|(sid, n)| {
            voters.contains(sid) && matches!(n.state, PeerState::Following | PeerState::Leading)
        })
        .collect();
    for (_, n) in &told {
        let agree = told
            .iter()
            .filter(|(_, m)| m.leader == n.leader && m.peer_epoch == n.peer_epoch)
            .count();
        let leads = told.iter().any(|(sid, m)| {
            *sid == n.leader && m.state == PeerState::Leading && m.peer_epoch == n.peer_epoch
        });
        if agree * 2 > voters.len() && leads {
            return Some((n.leader, n.peer_epoch));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(state: PeerState, leader: i64, epoch: i64) -> Notification {
        Notification {
            state,
            leader,
            zxid: epoch << 32,
            election_epoch: 1,
            peer_epoch: epoch,
            version: 2,
            config: String::new(),
        }
    }

    #[test]
    fn initial_message_round_trips() {
        let b = initial_message(4, "127.0.0.1:3888");
        assert_eq!(&b[..8], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
        assert_eq!(
            parse_initial_message(&b).unwrap(),
            (4, vec!["127.0.0.1:3888".to_string()], b.len())
        );
        let mut ensemble_hello = b"ENSP".to_vec();
        ensemble_hello.extend_from_slice(&[0; 20]);
        assert!(parse_initial_message(&ensemble_hello).is_err());
    }

    #[test]
    fn notification_forms_decode() {
        let n = note(PeerState::Observing, i64::MIN, 0);
        let b = n.encode40();
        assert_eq!(i32::from_be_bytes(b[..4].try_into().unwrap()), 40);
        let d = Notification::decode(&b[4..]).unwrap();
        assert_eq!(
            (d.state, d.leader, d.version),
            (PeerState::Observing, i64::MIN, 1)
        );
        assert_eq!(b.len(), 44);
        // version 2 with a configuration, as 3.8 answers
        let mut v2 = b[4..40].to_vec();
        let cfg = b"server.1=127.0.0.1:2888:3888:participant\nversion=0";
        v2.extend_from_slice(&2i32.to_be_bytes());
        v2.extend_from_slice(&(cfg.len() as i32).to_be_bytes());
        v2.extend_from_slice(cfg);
        let d = Notification::decode(&v2).unwrap();
        assert_eq!(d.version, 2);
        assert!(d.config.starts_with("server.1="));
        // a config longer than the message is refused, as are short messages and bad states
        let mut bad = v2.clone();
        bad.truncate(v2.len() - 1);
        assert!(Notification::decode(&bad).is_err());
        assert!(Notification::decode(&v2[..27]).is_err());
        let mut st = v2.clone();
        st[3] = 9;
        assert!(Notification::decode(&st).is_err());
    }

    #[test]
    fn leader_needs_a_majority_and_its_own_word() {
        let voters = [1, 2, 3];
        let f = |sid, s, l, e| (sid, Ok(note(s, l, e)));
        // two followers of 3 without 3 saying it leads: not yet
        let a = [
            f(1, PeerState::Following, 3, 5),
            f(2, PeerState::Following, 3, 5),
            (3, Err("down".to_string())),
        ];
        assert_eq!(leader_of(&voters, &a), None);
        let a = [
            f(1, PeerState::Following, 3, 5),
            f(3, PeerState::Leading, 3, 5),
            (2, Err("down".to_string())),
        ];
        assert_eq!(leader_of(&voters, &a), Some((3, 5)));
        // a stale follower of an older epoch does not count towards the majority
        let a = [
            f(1, PeerState::Following, 3, 4),
            f(3, PeerState::Leading, 3, 5),
            f(2, PeerState::Looking, 2, 5),
        ];
        assert_eq!(leader_of(&voters, &a), None);
        // an observer's answer is no voter's
        let a = [
            f(4, PeerState::Observing, 3, 5),
            f(3, PeerState::Leading, 3, 5),
        ];
        assert_eq!(leader_of(&voters, &a), None);
    }
}
