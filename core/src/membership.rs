//! The ensemble's membership as data (ZooKeeper's QuorumServer and QuorumMaj with its
//! version): each server's id, quorum and election address, role and client address, and the
//! zxid of the reconfig that made it (`version`, 0 for the static config). It reads and prints
//! ZooKeeper's dynamic-config text, the text of `/zookeeper/config`:
//! `server.N=host:quorumPort:electionPort:role;clientHost:clientPort` lines, then
//! `version=<hex>`. The reconfig request's three forms (joining / leaving / new members) are
//! computed here, with ZooKeeper's refusals (PrepRequestProcessor's reconfig case).

use crate::config::LearnerType;
use crate::txn::ServerId;
use ensemble_proto::proto::KeeperError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One member (ZooKeeper's QuorumServer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumServer {
    /// `host:quorumPort:electionPort` as written (a bracketed IPv6 host kept bracketed).
    pub addr: String,
    pub role: LearnerType,
    /// `clientHost:clientPort`, when the spec names a client port.
    pub client: Option<String>,
}

/// A configuration: its members and its version (the zxid of the reconfig that made it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub version: u64,
    pub servers: BTreeMap<ServerId, QuorumServer>,
}

/// Why a config text or server spec is refused (the reconfig answers BadArguments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError(pub String);

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn role_name(role: LearnerType) -> &'static str {
    match role {
        LearnerType::Participant => "participant",
        LearnerType::Observer => "observer",
    }
}

/// Append `p` in decimal, as `format!("{p}")` writes it (without the formatter's machinery).
fn push_port(out: &mut String, mut p: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (p % 10) as u8;
        p /= 10;
        if p == 0 {
            break;
        }
    }
    for d in &digits[i..] {
        out.push(char::from(*d));
    }
}

fn port(s: &str, what: &str) -> Result<u16, SpecError> {
    s.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| SpecError(format!("{what} port {s:?} is not a port number")))
}

impl QuorumServer {
    /// `host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` (QuorumServer's
    /// constructor from a dynamic-config value).
    pub fn parse(spec: &str) -> Result<QuorumServer, SpecError> {
        // Read in place, allocating only the two strings kept: the simulator's servers parse
        // every configuration a reconfig commits, and one `format!` a field was most of it.
        let spec = spec.trim();
        let (server, client) = match spec.split_once(';') {
            Some((s, c)) => (s.trim(), Some(c.trim())),
            None => (spec, None),
        };
        // a bracketed IPv6 host keeps its colons (and its brackets: never an empty host)
        let (bracketed, host, rest) = if let Some(after) = server.strip_prefix('[') {
            let Some((h, r)) = after.split_once(']') else {
                return Err(SpecError(format!("{server:?}: unclosed '[' in the host")));
            };
            (true, h, r.strip_prefix(':').unwrap_or(r))
        } else {
            match server.split_once(':') {
                Some((h, r)) => (false, h, r),
                None => return Err(SpecError(format!("{server:?}: no ports"))),
            }
        };
        if !bracketed && host.is_empty() {
            return Err(SpecError(format!("{server:?}: no host")));
        }
        let mut parts = rest.split(':');
        let (Some(quorum), Some(election), role, None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SpecError(format!(
                "{server:?}: expected host:quorumPort:electionPort[:role]"
            )));
        };
        let q = port(quorum, "quorum")?;
        let e = port(election, "election")?;
        let role = match role.map(str::trim) {
            None => LearnerType::Participant,
            Some(r) if r.eq_ignore_ascii_case("participant") => LearnerType::Participant,
            Some(r) if r.eq_ignore_ascii_case("observer") => LearnerType::Observer,
            Some(r) => {
                let r = r.to_ascii_lowercase();
                return Err(SpecError(format!("{server:?}: unknown role {r:?}")));
            }
        };
        let client = match client {
            None | Some("") => None,
            Some(c) => {
                let (h, p) = c.rsplit_once(':').unwrap_or(("0.0.0.0", c));
                let p = port(p, "client")?;
                let h = h.trim();
                let mut text = String::with_capacity(h.len() + 6);
                text.push_str(h);
                text.push(':');
                push_port(&mut text, p);
                Some(text)
            }
        };
        assert!(q > 0 && e > 0, "ports checked above");
        let mut addr = String::with_capacity(host.len() + 14);
        if bracketed {
            addr.push('[');
            addr.push_str(host);
            addr.push(']');
        } else {
            addr.push_str(host);
        }
        addr.push(':');
        push_port(&mut addr, q);
        addr.push(':');
        push_port(&mut addr, e);
        Ok(QuorumServer { addr, role, client })
    }

    /// The host of the quorum address.
    pub fn host(&self) -> &str {
        let end = if self.addr.starts_with('[') {
            self.addr.find(']').map_or(self.addr.len(), |i| i + 1)
        } else {
            self.addr.find(':').unwrap_or(self.addr.len())
        };
        &self.addr[..end]
    }

    /// (quorum port, election port).
    pub fn ports(&self) -> (u16, u16) {
        let tail = &self.addr[self.host().len()..];
        let mut it = tail.split(':').filter(|s| !s.is_empty());
        let q = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let e = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (q, e)
    }

    /// The value of its `server.N=` line, as QuorumServer.toString prints it.
    pub fn spec(&self) -> String {
        let mut s = format!("{}:{}", self.addr, role_name(self.role));
        if let Some(c) = &self.client {
            s.push(';');
            s.push_str(c);
        }
        s
    }
}

/// `server.N` → N.
fn server_id(key: &str) -> Result<ServerId, SpecError> {
    key.trim()
        .strip_prefix("server.")
        .and_then(|n| n.trim().parse::<ServerId>().ok())
        .ok_or_else(|| SpecError(format!("{key:?} is not server.N")))
}

impl Membership {
    /// ZooKeeper's dynamic-config text: `server.N=` lines, `version=<hex>`; blank lines and
    /// `#` comments skipped. Any other key is refused (a misspelt line must not vanish).
    pub fn parse(text: &str) -> Result<Membership, SpecError> {
        let mut m = Membership::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(SpecError(format!("{line:?}: not key=value")));
            };
            if key.trim() == "version" {
                m.version = u64::from_str_radix(value.trim(), 16)
                    .map_err(|_| SpecError(format!("{line:?}: version is not hex")))?;
                continue;
            }
            let id = server_id(key)?;
            if m.servers.insert(id, QuorumServer::parse(value)?).is_some() {
                return Err(SpecError(format!("server.{id} given twice")));
            }
        }
        Ok(m)
    }

    /// The text of `/zookeeper/config` (QuorumMaj.toString): no final newline.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (id, s) in &self.servers {
            text.push_str(&format!("server.{id}={}\n", s.spec()));
        }
        text.push_str(&format!("version={:x}", self.version));
        text
    }

    /// The members' roles, as [`crate::config::Config::members`] holds them.
    pub fn roles(&self) -> BTreeMap<ServerId, LearnerType> {
        self.servers.iter().map(|(id, s)| (*id, s.role)).collect()
    }

    /// Are these exactly `roles`' members in their roles? ([`Membership::roles`] compared
    /// without building it: the core asserts this after every event.)
    pub fn has_roles(&self, roles: &BTreeMap<ServerId, LearnerType>) -> bool {
        self.servers.len() == roles.len()
            && self
                .servers
                .iter()
                .zip(roles)
                .all(|((id, s), (rid, role))| id == rid && s.role == *role)
    }

    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.servers
            .iter()
            .filter(|(_, s)| s.role == LearnerType::Participant)
            .map(|(id, _)| *id)
    }

    /// A membership for `roles` when no text names the addresses (the simulator's servers):
    /// `sN:2888:3888` with client port 2181, so that a reconfig can name them.
    pub fn synthetic(roles: &BTreeMap<ServerId, LearnerType>) -> Membership {
        Membership {
            version: 0,
            servers: roles
                .iter()
                .map(|(id, role)| (*id, Membership::synthetic_server(*id, *role)))
                .collect(),
        }
    }

    pub fn synthetic_server(id: ServerId, role: LearnerType) -> QuorumServer {
        QuorumServer {
            addr: format!("s{id}:2888:3888"),
            role,
            client: Some(format!("s{id}:2181")),
        }
    }

    /// The configuration a reconfig request asks for, from `self` (ZooKeeper's
    /// PrepRequestProcessor): `new_members` non-empty is a whole new list (commas or newlines);
    /// otherwise `leaving` ids go and `joining` specs (`server.N=...`, each with a client
    /// port) come or replace. The version is left for the caller (the txn's zxid).
    pub fn reconfigure(
        &self,
        joining: &str,
        leaving: &str,
        new_members: &str,
    ) -> Result<Membership, KeeperError> {
        let bad = |e: SpecError| {
            tracing::info!(error = %e, "reconfig refused: bad arguments");
            KeeperError::BadArguments
        };
        let mut next = if !new_members.trim().is_empty() {
            let text = new_members.replace(',', "\n");
            let mut m = Membership::parse(&text).map_err(bad)?;
            m.version = 0;
            m
        } else {
            let mut next = self.clone();
            for id in leaving.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let id: ServerId = id
                    .parse()
                    .map_err(|_| bad(SpecError(format!("leaving {id:?} is not a server id"))))?;
                next.servers.remove(&id);
            }
            for joiner in joining.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let Some((key, spec)) = joiner.split_once('=') else {
                    return Err(bad(SpecError(format!(
                        "{joiner:?}: wrong format of server string"
                    ))));
                };
                let id = server_id(key).map_err(bad)?;
                let qs = QuorumServer::parse(spec).map_err(bad)?;
                if qs.client.is_none() {
                    return Err(bad(SpecError(format!(
                        "{joiner:?}: each server should have 3 ports specified"
                    ))));
                }
                if let Some((other, _)) = next
                    .servers
                    .iter()
                    .find(|(o, s)| **o != id && s.addr == qs.addr)
                {
                    return Err(bad(SpecError(format!(
                        "server.{id} has the address of server.{other}"
                    ))));
                }
                next.servers.insert(id, qs);
            }
            next
        };
        next.version = 0;
        if next.voters().count() < 1 {
            return Err(bad(SpecError(
                "the new configuration must include at least 1 follower".into(),
            )));
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_written_as_format_writes_them() {
        for p in 0..=u16::MAX {
            let mut s = String::from("x:");
            push_port(&mut s, p);
            assert_eq!(s, format!("x:{p}"));
        }
    }

    #[test]
    fn a_server_spec_is_read_into_its_canonical_form() {
        let qs = |spec: &str| QuorumServer::parse(spec);
        let ok = |addr: &str, role: LearnerType, client: Option<&str>| {
            Ok(QuorumServer {
                addr: addr.into(),
                role,
                client: client.map(Into::into),
            })
        };
        use LearnerType::{Observer, Participant};
        assert_eq!(qs(" h:02888:+3888 "), ok("h:2888:3888", Participant, None));
        assert_eq!(
            qs("h:1:2:OBSERVER ; 10.0.0.1 : 2181"),
            ok("h:1:2", Observer, Some("10.0.0.1:2181"))
        );
        assert_eq!(
            qs("[::1]:1:2:participant;2181"),
            ok("[::1]:1:2", Participant, Some("0.0.0.0:2181"))
        );
        assert_eq!(qs("[]:1:2;"), ok("[]:1:2", Participant, None));
        assert_eq!(qs("h:65535:1"), ok("h:65535:1", Participant, None));
        let err = |spec: &str| qs(spec).unwrap_err().0;
        assert_eq!(err(":1:2"), "\":1:2\": no host");
        assert_eq!(err("h"), "\"h\": no ports");
        assert_eq!(err("[h:1:2"), "\"[h:1:2\": unclosed '[' in the host");
        assert_eq!(
            err("h:1"),
            "\"h:1\": expected host:quorumPort:electionPort[:role]"
        );
        assert_eq!(
            err("h:1:2:observer:x"),
            "\"h:1:2:observer:x\": expected host:quorumPort:electionPort[:role]"
        );
        assert_eq!(
            err("h:1:2:Voter"),
            "\"h:1:2:Voter\": unknown role \"voter\""
        );
        assert_eq!(err("h:0:2"), "quorum port \"0\" is not a port number");
        assert_eq!(err("h:1:x"), "election port \"x\" is not a port number");
        assert_eq!(
            err("h:1:2;h:70000"),
            "client port \"70000\" is not a port number"
        );
    }

    const THREE: &str = "server.1=localhost:12881:13881:participant;0.0.0.0:2181\n\
                         server.2=localhost:12882:13882:participant;0.0.0.0:2182\n\
                         server.3=localhost:12883:13883:observer\n\
                         version=100000003";

    #[test]
    fn zookeepers_text_reads_and_prints_back() {
        let m = Membership::parse(THREE).unwrap();
        assert_eq!(m.version, 0x1_0000_0003);
        assert_eq!(m.servers.len(), 3);
        assert_eq!(m.servers[&3].role, LearnerType::Observer);
        assert_eq!(m.servers[&1].client.as_deref(), Some("0.0.0.0:2181"));
        assert_eq!(m.servers[&2].ports(), (12882, 13882));
        assert_eq!(m.to_text(), THREE);
        assert_eq!(m.voters().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn a_spec_without_role_is_a_participant_and_a_bare_client_port_binds_all() {
        let s = QuorumServer::parse("[::1]:1:2;3").unwrap();
        assert_eq!(s.host(), "[::1]");
        assert_eq!(s.ports(), (1, 2));
        assert_eq!(s.spec(), "[::1]:1:2:participant;0.0.0.0:3");
        for bad in ["h", "h:1", "h:1:2:leader", "h:x:2", "h:1:2;h:0", ":1:2"] {
            assert!(QuorumServer::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn incremental_and_whole_reconfigs_as_zookeeper_computes_them() {
        let m = Membership::parse(THREE).unwrap();
        let n = m
            .reconfigure("server.4=h4:1:2:participant;2184", "2", "")
            .unwrap();
        assert_eq!(n.servers.keys().copied().collect::<Vec<_>>(), vec![1, 3, 4]);
        assert_eq!(n.version, 0);
        // a joiner that names an existing id replaces it (observer to voter)
        let n = m.reconfigure("server.3=localhost:12883:13883:participant;2183", "", "");
        assert_eq!(n.unwrap().voters().count(), 3);
        let e = Err(KeeperError::BadArguments);
        assert_eq!(
            m.reconfigure("server.4=h4:1:2", "", ""),
            e,
            "no client port"
        );
        assert_eq!(m.reconfigure("4=h4:1:2;5", "", ""), e);
        assert_eq!(m.reconfigure("", "x", ""), e);
        assert_eq!(m.reconfigure("", "1,2", ""), e, "no voter left");
        assert_eq!(
            m.reconfigure("server.4=localhost:12881:13881;5", "", ""),
            e,
            "an address taken"
        );
        let n = m
            .reconfigure("ignored", "", "server.7=a:1:2;3,server.8=b:1:2;4")
            .unwrap();
        assert_eq!(n.servers.keys().copied().collect::<Vec<_>>(), vec![7, 8]);
    }
}
