//! The client processes: waking them, running their callbacks with a context, carrying out
//! what they ask for (connections, requests, closes, actions on the lock recipe's resource),
//! delivering what their connections bring, and pausing, crashing and reviving them.

use crate::check::Violation;
use crate::client::{Client, ClientOut, Ctx};
use crate::lines::{ClientReplyLine, ClientSendLine, ConnLine, WatchLine};
use crate::scheduler::Ev;
use crate::transport::client::{C2S, CConn, S2C};
use crate::world::{Who, World};
use ensemble_core::server::ConnId;
use ensemble_core::zxid::Zxid;
use std::collections::VecDeque;

impl World {
    pub(crate) fn wake_client_at(&mut self, c: usize, at: u64) {
        let cl = &mut self.clients[c];
        cl.wake_token += 1;
        cl.wake_at = at;
        let token = cl.wake_token;
        self.schedule(at, Ev::ClientWake { client: c, token });
    }

    /// Run a client callback with its context, then carry out what it asked for.
    pub(crate) fn with_client<F>(&mut self, c: usize, f: F)
    where
        F: FnOnce(&mut Client, &mut Ctx) -> Result<Option<u64>, Violation>,
    {
        let mut out = Vec::new();
        let mut rng = self.rng.fork();
        let leader = self.leader();
        let res = {
            let mut cx = Ctx {
                now: self.sched.now,
                rng: &mut rng,
                out: &mut out,
                reference: &self.reference,
                shared: &mut self.shared,
                servers: &self.client_servers,
                params: &self.params,
                leader,
            };
            f(&mut self.clients[c], &mut cx)
        };
        self.client_outputs(c, out);
        if let Some(v) = self.shared.recipe_violation.take() {
            self.fail(v);
        }
        match res {
            Ok(Some(at)) => {
                if at != u64::MAX {
                    self.wake_client_at(c, at);
                }
            }
            Ok(None) => {}
            Err(v) => self.fail(v),
        }
    }

    pub(crate) fn client_wake(&mut self, c: usize) {
        if self.clients[c].paused_until.is_some() || self.clients[c].dead {
            return;
        }
        let draining = self.draining;
        // while draining, clients only keep their sessions alive, except those that only
        // follow changes (a monitor or config reader still re-reads after a watch fires)
        let issue = !draining || self.clients[c].role.is_reactive();
        self.with_client(c, |cl, cx| Ok(Some(cl.wake(cx, issue)?)));
    }

    pub(crate) fn client_outputs(&mut self, c: usize, out: Vec<ClientOut>) {
        let who = Who::C(c);
        for o in out {
            match o {
                ClientOut::Open {
                    conn,
                    server,
                    request,
                } => {
                    let line = ConnLine::Open {
                        server,
                        conn,
                        session: request.session_id,
                        last_zxid_seen: request.last_zxid_seen,
                    };
                    self.emit(who, "", &line);
                    let inc = self.nodes[&server].inc;
                    let up = self.nodes[&server].up();
                    self.transport.conns.insert(
                        conn,
                        CConn {
                            client: c,
                            server,
                            server_inc: inc,
                            to_server: VecDeque::new(),
                            to_client: VecDeque::new(),
                            last_ts: 0,
                            last_tc: 0,
                            server_closed: false,
                            client_closed: false,
                        },
                    );
                    if up {
                        self.c2s(conn, C2S::Connect(request));
                    } else {
                        // connection refused
                        self.send_to_client(conn, S2C::Close);
                    }
                }
                ClientOut::Send { conn, xid, request } => {
                    if xid >= 0 || xid == crate::client::SET_WATCHES_XID {
                        let line = ClientSendLine {
                            conn,
                            xid,
                            request: &request,
                        };
                        self.emit(who, "", &line);
                    }
                    self.c2s(conn, C2S::Request(xid, request));
                }
                ClientOut::SendRaw {
                    conn,
                    xid,
                    what,
                    frame,
                } => {
                    self.log(
                        who,
                        "",
                        format_args!("conn {conn} xid {xid} sends {what} (undecodable)"),
                    );
                    // What the node's runtime does with the frame (`runtime/clients.rs`).
                    use ensemble_proto::jute::{self, BadRequest};
                    let m = match jute::decode_request(&frame) {
                        Ok((xid, request)) => C2S::Request(xid, request),
                        Err(e) => match jute::triage_request(&frame, &e) {
                            BadRequest::Lenient { xid, request } => C2S::Request(xid, request),
                            BadRequest::Answer {
                                xid,
                                opcode,
                                reply,
                                close,
                            } => C2S::Refused {
                                xid,
                                opcode,
                                reply,
                                close,
                            },
                            // the runtime drops the connection: the core sees it close
                            BadRequest::Close => C2S::Close,
                        },
                    };
                    self.c2s(conn, m);
                }
                ClientOut::Authenticate { conn, id } => {
                    self.log(
                        who,
                        "",
                        format_args!("conn {conn} authenticated as {}:{}", id.scheme, id.id),
                    );
                    self.c2s(conn, C2S::Authenticated(id));
                }
                ClientOut::Close { conn } => {
                    if let Some(cc) = self.transport.conns.get_mut(&conn) {
                        cc.client_closed = true;
                        self.c2s(conn, C2S::Close);
                    }
                }
                ClientOut::Resource { token, fenced } => {
                    self.log(
                        who,
                        "",
                        format_args!("acts on the resource with token {}", Zxid(token as u64)),
                    );
                    let d = self
                        .rng
                        .range(self.params.net_delay.0, self.params.net_delay.1)
                        .max(1);
                    self.schedule(
                        self.sched.now + d,
                        Ev::Resource {
                            client: c,
                            token,
                            fenced,
                        },
                    );
                }
                ClientOut::Note(s) => self.log(who, "", format_args!("{s}")),
            }
        }
    }

    pub(crate) fn client_receive(&mut self, c: usize, conn: ConnId, m: S2C) {
        // only the client's current connection counts
        if self.clients[c].conn.as_ref().map(|x| x.id) != Some(conn) || self.clients[c].dead {
            return;
        }
        let who = Who::C(c);
        match &m {
            S2C::Connected(r) => {
                let line = ConnLine::Connected {
                    conn,
                    session: r.session_id,
                    timeout: r.timeout_ms,
                };
                self.emit(who, "", &line)
            }
            S2C::Reply { xid, zxid, reply } => {
                if *xid != crate::client::PING_XID {
                    let line = ClientReplyLine {
                        xid: *xid,
                        zxid: *zxid,
                        reply,
                    };
                    self.emit(who, "", &line);
                }
            }
            S2C::Watch(event) => self.emit(who, "", &WatchLine { conn: None, event }),
            S2C::Close => self.emit(who, "", &ConnLine::ClosedByServer { conn }),
        }
        let now = self.sched.now;
        if let S2C::Reply { xid, zxid, reply } = &m
            && let Some((request, invoked)) = self.clients[c].pending_invoked(*xid)
        {
            let session = self.clients[c].session_id();
            let judged = self
                .sessions
                .on_reply(c, session, request, *zxid, reply, now)
                .and_then(|()| self.reconfig_version_check(c, request, invoked, reply))
                .and_then(|()| self.reconfig_arguments_check(c, request, reply));
            self.expired
                .on_reply(c, session, request, invoked, reply, now);
            if let Err(v) = judged {
                self.fail(v);
            }
        }
        self.with_client(c, |cl, cx| {
            match m {
                S2C::Connected(r) => cl.on_connected(cx, r)?,
                S2C::Reply { xid, zxid, reply } => cl.on_reply(cx, xid, zxid, reply)?,
                S2C::Watch(e) => cl.on_watch(cx, e)?,
                S2C::Close => cl.on_closed(cx)?,
            }
            Ok(None)
        });
        // the client reacts after a think time (a recipe's next step, the mix's next op),
        // unless it was due to wake sooner anyway
        let (lo, hi) = self.params.think_ms;
        let at = now + self.rng.range(lo, hi).max(1);
        if self.clients[c].wake_at > at || self.clients[c].wake_at < now {
            self.wake_client_at(c, at);
        }
    }

    pub(crate) fn client_pause(&mut self, c: usize, ms: u64) {
        let cl = &mut self.clients[c];
        if cl.dead || cl.paused_until.is_some() {
            return;
        }
        cl.paused_until = Some(self.sched.now + ms);
        ensemble_core::probe!("sim.fault.client-pause");
        self.log(Who::C(c), "", format_args!("client PAUSE for {ms}ms"));
        self.schedule(self.sched.now + ms, Ev::ClientResume { client: c });
    }

    pub(crate) fn client_resume(&mut self, c: usize) {
        if self.clients[c].paused_until.take().is_none() {
            return;
        }
        self.log(Who::C(c), "", format_args!("client resumes"));
        // a paused process first runs the timer that was due (a stale view), then reads
        // its socket
        self.client_wake(c);
        let inbox: Vec<(ConnId, S2C)> = self
            .transport
            .client_inbox
            .remove(&c)
            .unwrap_or_default()
            .into_iter()
            .collect();
        for (conn, m) in inbox {
            if self.violation.is_some() {
                return;
            }
            self.client_receive(c, conn, m);
        }
    }

    /// A client process dies; another takes its place (a new session) after `revive` ms, or
    /// after a drawn while, and by the end of the fault phase at the latest.
    pub(crate) fn client_crash(&mut self, c: usize, revive: Option<u64>) {
        if self.clients[c].dead {
            return;
        }
        self.log(
            Who::C(c),
            "",
            format_args!("client CRASH (its session will expire)"),
        );
        ensemble_core::probe!("sim.fault.client-crash");
        if let Some(conn) = self.clients[c].conn.take() {
            self.reset_client_conn(conn.id, true);
        }
        self.clients[c].dead = true;
        self.transport.client_inbox.remove(&c);
        let back = self.sched.now + revive.unwrap_or_else(|| self.fault_rng.range(2_000, 10_000));
        self.schedule(
            back.min(self.fault_end.max(self.sched.now)),
            Ev::ClientRevive { client: c },
        );
    }

    /// A crashed client's replacement process starts (a new session).
    pub(crate) fn client_revive(&mut self, client: usize) {
        if self.clients[client].dead {
            self.clients[client].reincarnate();
            self.log(
                Who::C(client),
                "",
                format_args!("client restarts (new session)"),
            );
            self.wake_client_at(client, self.sched.now);
        }
    }
}
