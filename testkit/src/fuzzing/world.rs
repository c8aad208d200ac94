//! The ensemble harness's world: 3 voters (and maybe an observer) as a kit [`Ensemble`] with
//! split election/quorum links, the clients the program opened, and the safety claims checked
//! after every step.

use super::Source;
use super::requests::Gen;
use crate::ensemble::{Clients, Ensemble, configs};
use crate::interpreter::ToClient;
use crate::links::{Link, Links};
use ensemble_core::server::{ConnId, Event};
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{ConnectRequest, Request};
use std::collections::BTreeMap;

/// What the program's clients have: their connections and what servers told them.
#[derive(Default)]
pub(super) struct FuzzClients {
    /// Open connections and the server each is on.
    pub conns: BTreeMap<ConnId, ServerId>,
    pub next_conn: ConnId,
    /// Sessions handed out, with their passwords (for re-attach attempts).
    pub sessions: Vec<(i64, Vec<u8>)>,
    /// Highest zxid any client saw.
    pub max_zxid_seen: i64,
    pub ok_replies: usize,
}

impl Clients for FuzzClients {
    fn to_client(&mut self, _server: ServerId, out: ToClient) {
        match out {
            ToClient::Connected { response, .. } => {
                if response.session_id != 0 {
                    self.ok_replies += 1;
                    self.sessions.push((response.session_id, response.passwd));
                    if self.sessions.len() > 16 {
                        self.sessions.remove(0);
                    }
                }
            }
            ToClient::Reply { zxid, reply, .. } => {
                self.max_zxid_seen = self.max_zxid_seen.max(zxid.as_i64());
                if reply.is_ok() {
                    self.ok_replies += 1;
                }
            }
            ToClient::Watch { .. } => {}
            ToClient::Close { conn } => {
                self.conns.remove(&conn);
            }
        }
    }
}

pub(super) struct World {
    pub ens: Ensemble<FuzzClients>,
    /// Epoch → the server established as its leader (ever).
    pub leaders: BTreeMap<u32, ServerId>,
    /// Applied zxid → the tree digest at it (ever, on any server).
    pub digests: BTreeMap<Zxid, u64>,
}

impl World {
    pub fn new(observer: bool) -> World {
        let cfgs = configs(3, u64::from(observer), |c| {
            c.tick_time_ms = 100;
            c.init_limit = 5;
            c.sync_limit = 2;
            c.min_session_timeout_ms = 200;
            c.max_session_timeout_ms = 2000;
            c.finalize_wait_ms = 50;
            c.max_notification_interval_ms = 400;
            // small, so DIFF falls back to SNAP and snapshots are taken often
            c.committed_log_size = 4;
            c.snap_count = 8;
            c.snapshot_part_bytes = 64;
            c.container_check_interval_ms = 300;
        });
        let clients = FuzzClients {
            next_conn: 1,
            ..FuzzClients::default()
        };
        World {
            ens: Ensemble::new(cfgs, Links::new(true), 1_000_000, clients),
            leaders: BTreeMap::new(),
            digests: BTreeMap::new(),
        }
    }

    pub fn ids(&self) -> Vec<ServerId> {
        self.ens.ids()
    }

    pub fn up(&self, id: ServerId) -> bool {
        self.ens.up(id)
    }

    pub fn start(&mut self, id: ServerId) {
        self.ens.start(id);
    }

    pub fn step(&mut self, id: ServerId, ev: Event) {
        self.ens.step(id, ev);
    }

    pub fn crash(&mut self, id: ServerId) {
        self.ens.crash(id);
        self.ens.clients.conns.retain(|_, server| *server != id);
    }

    /// fsync the first `n` volatile txns of `id` (all when `n` is past the end).
    pub fn fsync(&mut self, id: ServerId, n: usize) {
        self.ens.fsync(id, n);
    }

    pub fn deliver(&mut self, link: Link) {
        self.ens.deliver(link);
    }

    pub fn busy_links(&self) -> Vec<Link> {
        self.ens.links.busy()
    }

    pub fn tick(&mut self, ms: u64) {
        self.ens.now += ms;
        self.ens.tick_all();
    }

    /// Let the ensemble run fault-free for a while: deliver everything, fsync everything, tick.
    pub fn calm(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.ens.deliver_rounds(64);
            for id in self.ids() {
                self.fsync(id, usize::MAX);
            }
            self.tick(20);
        }
    }

    /// The safety claims, checked after every step.
    pub fn check(&mut self) {
        self.ens.check();
        for (id, s) in &self.ens.servers {
            let Some(s) = s else { continue };
            if let Some(epoch) = s.established_epoch() {
                let first = *self.leaders.entry(epoch).or_insert(*id);
                assert_eq!(
                    first, *id,
                    "two established leaders in epoch {epoch}: {first} and {id}"
                );
            }
            if let Err(e) = s.tree().check_consistency() {
                panic!("server {id}: inconsistent tree: {e}");
            }
            let z = s.tree().last_zxid();
            let d = s.tree().digest();
            let seen = *self.digests.entry(z).or_insert(d);
            assert_eq!(
                seen, d,
                "server {id} applied a different history through {z}: digest {d:016x}, \
                 another server had {seen:016x}"
            );
        }
    }

    /// Healed: every server up and serving under an established leader, and each has applied
    /// at least `zxid`.
    pub fn settled(&self, zxid: i64) -> bool {
        let mut leader = false;
        for s in self.ens.servers.values() {
            let Some(s) = s else { return false };
            if !s.is_serving() || s.tree().last_zxid().as_i64() < zxid {
                return false;
            }
            leader |= s.established_epoch().is_some();
        }
        leader
    }

    pub fn gen_request(&self, src: &mut Source) -> Request {
        Gen {
            max_zxid_seen: self.ens.clients.max_zxid_seen,
        }
        .gen_request(src)
    }
    pub fn connect(&mut self, src: &mut Source) {
        let server = 1 + src.below(self.ens.cfgs.len()) as ServerId;
        if !self.up(server) {
            return;
        }
        let (session_id, passwd) = match src.byte() % 4 {
            0 | 1 => (0, vec![0; 16]),
            2 if !self.ens.clients.sessions.is_empty() => {
                let (s, p) = src.pick(&self.ens.clients.sessions).clone();
                if src.byte().is_multiple_of(4) {
                    (s, src.bytes(16)) // wrong password
                } else {
                    (s, p)
                }
            }
            _ => (src.i64(), src.bytes(20)),
        };
        let request = ConnectRequest {
            protocol_version: if src.byte().is_multiple_of(8) {
                src.i32()
            } else {
                0
            },
            last_zxid_seen: match src.byte() % 4 {
                0 => src.i64(),
                1 => self.ens.clients.max_zxid_seen,
                _ => 0,
            },
            timeout_ms: match src.byte() % 4 {
                0 => src.i32(),
                _ => 1000,
            },
            session_id,
            passwd,
            read_only: match src.byte() % 3 {
                0 => None,
                1 => Some(false),
                _ => Some(true),
            },
        };
        let conn = self.ens.clients.next_conn;
        self.ens.clients.next_conn += 1;
        self.ens.clients.conns.insert(conn, server);
        let addr = src.pick(&["127.0.0.1", "10.1.2.3", "::1"]).to_string();
        self.step(
            server,
            Event::ClientConnected {
                conn,
                addr,
                request,
            },
        );
    }

    pub fn pick_conn(&self, src: &mut Source) -> Option<(ConnId, ServerId)> {
        let conns = &self.ens.clients.conns;
        if conns.is_empty() {
            return None;
        }
        let i = src.below(conns.len());
        conns.iter().nth(i).map(|(c, server)| (*c, *server))
    }

    pub fn pick_server(&self, src: &mut Source) -> ServerId {
        1 + src.below(self.ens.cfgs.len()) as ServerId
    }
}
