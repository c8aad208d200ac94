//! One server driven by hand, for the core's unit tests: each event's `Ready` carried out in
//! memory (every append reported durable at once, until nothing more is written) and what it
//! did kept by kind. The drivers of whole ensembles are the test kit's (`ensemble-testkit`).

use crate::config::Config;
use crate::effect::{Action, Ready, Write};
use crate::peer::PeerMsg;
use crate::server::{ConnId, Event, Recovered, Server};
use crate::txn::Txn;
use crate::zxid::Zxid;
use ensemble_proto::proto::{ConnectRequest, ConnectResponse, Reply, Request};

/// One server and what it did, by kind.
pub(crate) struct Rig {
    pub server: Server,
    pub now: u64,
    pub replies: Vec<(ConnId, i32, Reply)>,
    pub connects: Vec<(ConnId, ConnectResponse)>,
    pub closed: Vec<ConnId>,
    pub appended: Vec<Txn>,
    pub sent: Vec<PeerMsg>,
}

impl Rig {
    pub fn new(cfg: Config, recovered: Recovered) -> Rig {
        let server = Server::new(cfg, recovered, 0).expect("a server");
        Rig {
            server,
            now: 0,
            replies: Vec::new(),
            connects: Vec::new(),
            closed: Vec::new(),
            appended: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Feed `event`, then report every append durable until nothing more is written.
    pub fn step(&mut self, event: Event) {
        let mut next = Some(event);
        while let Some(event) = next.take() {
            let mut ready = Ready::new();
            self.server.handle_ready(self.now, event, &mut ready);
            let mut through = None;
            for batch in ready.batches() {
                for w in batch.writes() {
                    if let Write::Append { txns } = w {
                        through = txns.last().map(|t| t.zxid);
                        self.appended.extend(txns.iter().map(|t| (**t).clone()));
                    }
                }
                for a in batch.then() {
                    match a {
                        Action::Reply {
                            conn, xid, reply, ..
                        } => self.replies.push((*conn, *xid, reply.clone())),
                        Action::ConnectReply { conn, response } => {
                            self.connects.push((*conn, response.clone()))
                        }
                        Action::Close { conn } => self.closed.push(*conn),
                        Action::Send { msg, .. } => self.sent.push(msg.clone()),
                        _ => {}
                    }
                }
            }
            next = through.map(|through: Zxid| Event::Persisted { through });
        }
    }

    /// Ticks every 50 ms for `ms`.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.now += 50;
            self.step(Event::Tick);
        }
    }

    /// A client's handshake on `conn`: a new session (`session_id` 0) or a re-attach with the
    /// session's own password.
    pub fn connect(&mut self, conn: ConnId, session_id: i64, read_only: Option<bool>) {
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 10_000,
            session_id,
            passwd: crate::session_passwd::generate_passwd(session_id),
            read_only,
        };
        self.step(Event::ClientConnected {
            conn,
            addr: "127.0.0.1".into(),
            request,
        });
    }

    /// Send `request` as `xid` on `conn` and take its reply.
    pub fn request(&mut self, conn: ConnId, xid: i32, request: Request) -> Reply {
        self.step(Event::Client { conn, xid, request });
        let at = self
            .replies
            .iter()
            .position(|(c, x, _)| *c == conn && *x == xid)
            .expect("answered");
        self.replies.remove(at).2
    }
}
