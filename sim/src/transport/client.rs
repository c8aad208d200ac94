//! Client connections: what a client sends (`C2S`) and what a server sends back (`S2C`), each
//! direction FIFO with its own delay, and resets that lose what is in flight, as TCP does.

use crate::scheduler::Ev;
use crate::world::World;
use ensemble_core::server::{ConnId, Event};
use ensemble_core::txn::ServerId;
use ensemble_proto::proto::{ConnectRequest, ConnectResponse, Reply, Request, WatchedEvent};
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug)]
pub(crate) enum C2S {
    Connect(ConnectRequest),
    Request(i32, Request),
    Authenticated(ensemble_proto::proto::Id),
    /// A frame the runtime could not decode, as it hands it to the core.
    Refused {
        xid: i32,
        opcode: ensemble_proto::proto::OpCode,
        reply: Reply,
        close: bool,
    },
    Close,
}

#[derive(Debug)]
pub(crate) enum S2C {
    Connected(ConnectResponse),
    Reply { xid: i32, zxid: i64, reply: Reply },
    Watch(WatchedEvent),
    Close,
}

pub(crate) struct CConn {
    pub(crate) client: usize,
    pub(crate) server: ServerId,
    pub(crate) server_inc: u64,
    pub(crate) to_server: VecDeque<(u64, C2S)>,
    pub(crate) to_client: VecDeque<(u64, S2C)>,
    pub(crate) last_ts: u64,
    pub(crate) last_tc: u64,
    /// The server closed it (nothing more from it after what is queued).
    pub(crate) server_closed: bool,
    pub(crate) client_closed: bool,
}

/// Numbers a run reports.
impl World {
    pub(crate) fn c2s(&mut self, conn: ConnId, m: C2S) {
        let now = self.sched.now;
        let (lo, hi) = self.params.net_delay;
        let d = self.rng.range(lo, hi).max(1);
        let Some(cc) = self.transport.conns.get_mut(&conn) else {
            return;
        };
        let at = (now + d).max(cc.last_ts);
        cc.last_ts = at;
        cc.to_server.push_back((at, m));
        self.schedule(
            at,
            Ev::ClientPump {
                conn,
                to_server: true,
            },
        );
    }

    pub(crate) fn send_to_client(&mut self, conn: ConnId, m: S2C) {
        let now = self.sched.now;
        let (lo, hi) = self.params.net_delay;
        let d = self.rng.range(lo, hi).max(1);
        let Some(cc) = self.transport.conns.get_mut(&conn) else {
            return;
        };
        if cc.server_closed {
            return;
        }
        let at = (now + d).max(cc.last_tc);
        cc.last_tc = at;
        cc.to_client.push_back((at, m));
        self.schedule(
            at,
            Ev::ClientPump {
                conn,
                to_server: false,
            },
        );
    }

    pub(crate) fn client_pump(&mut self, conn: ConnId, to_server: bool) {
        let now = self.sched.now;
        loop {
            if self.violation.is_some() {
                return;
            }
            let Some(cc) = self.transport.conns.get_mut(&conn) else {
                return;
            };
            let (client, server, inc) = (cc.client, cc.server, cc.server_inc);
            if to_server {
                match cc.to_server.front() {
                    Some((at, _)) if *at <= now => {}
                    _ => return,
                }
                let (_, m) = cc.to_server.pop_front().expect("front");
                if self.nodes[&server].inc != inc {
                    return;
                }
                match m {
                    C2S::Connect(request) => {
                        let addr = crate::client::client_addr(client);
                        self.deliver(
                            server,
                            Event::ClientConnected {
                                conn,
                                addr,
                                request,
                            },
                        );
                    }
                    C2S::Request(xid, request) => {
                        self.deliver(server, Event::Client { conn, xid, request })
                    }
                    C2S::Authenticated(id) => {
                        self.deliver(server, Event::ClientAuthenticated { conn, id })
                    }
                    C2S::Refused {
                        xid,
                        opcode,
                        reply,
                        close,
                    } => self.deliver(
                        server,
                        Event::ClientRefused {
                            conn,
                            xid,
                            opcode,
                            reply,
                            close,
                        },
                    ),
                    C2S::Close => {
                        let server_closed = cc_server_closed(&self.transport.conns, conn);
                        self.transport.conns.remove(&conn);
                        if !server_closed {
                            self.deliver(server, Event::ClientDisconnected { conn });
                        }
                        return;
                    }
                }
            } else {
                match cc.to_client.front() {
                    Some((at, _)) if *at <= now => {}
                    _ => return,
                }
                let (_, m) = cc.to_client.pop_front().expect("front");
                let closing = matches!(m, S2C::Close);
                if closing {
                    // the client side is done with it; tell the server if it did not close it
                    if let Some(cc) = self.transport.conns.remove(&conn)
                        && !cc.server_closed
                        && !cc.client_closed
                        && self.nodes[&server].inc == inc
                    {
                        self.deliver(server, Event::ClientDisconnected { conn });
                    }
                }
                if self.clients[client].paused_until.is_some() {
                    self.transport
                        .client_inbox
                        .entry(client)
                        .or_default()
                        .push_back((conn, m));
                } else {
                    self.client_receive(client, conn, m);
                }
                if closing {
                    return;
                }
            }
        }
    }

    /// A client connection breaks (reset, or its server died).
    pub(crate) fn reset_client_conn(&mut self, conn: ConnId, tell_server: bool) {
        let Some(cc) = self.transport.conns.get_mut(&conn) else {
            return;
        };
        cc.to_client.clear();
        cc.to_server.clear();
        let (server, inc) = (cc.server, cc.server_inc);
        if tell_server && !cc.server_closed && self.nodes[&server].inc == inc {
            let d = self.rng.range(1, 20);
            self.schedule(
                self.sched.now + d,
                Ev::Deliver {
                    node: server,
                    inc,
                    event: Box::new(Event::ClientDisconnected { conn }),
                },
            );
        }
        if let Some(cc) = self.transport.conns.get_mut(&conn) {
            cc.server_closed = false;
        }
        self.send_to_client(conn, S2C::Close);
        if let Some(cc) = self.transport.conns.get_mut(&conn) {
            cc.server_closed = true;
        }
    }
}

pub(crate) fn cc_server_closed(conns: &BTreeMap<ConnId, CConn>, conn: ConnId) -> bool {
    conns.get(&conn).is_some_and(|c| c.server_closed)
}
