//! The scripts' clients: named connections, their sessions and pending requests, and the
//! output a command prints (what servers sent, to each other and to clients).

use crate::ensemble::Clients;
use crate::format::Show;
use crate::interpreter::{Seen, ToClient};
use ensemble_core::effect::Action;
use ensemble_core::peer::PeerMsg;
use ensemble_core::server::ConnId;
use ensemble_core::txn::ServerId;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub struct Client {
    pub server: ServerId,
    pub conn: ConnId,
    pub session: i64,
    pub passwd: Vec<u8>,
    pub last_zxid: i64,
    pub next_xid: i32,
    /// What each outstanding xid asked, as the script wrote it.
    pub pending: BTreeMap<i32, String>,
    /// Sends no pings while time passes (`quiet`): its session expires.
    pub quiet: bool,
}

#[derive(Default)]
pub struct ScriptClients {
    pub clients: BTreeMap<String, Client>,
    /// Which client a (server, connection) is.
    pub conn_owner: BTreeMap<(ServerId, ConnId), String>,
    pub next_conn: ConnId,
    /// What the current command printed.
    pub log: String,
    /// Print elections and pings too.
    pub verbose: bool,
}

impl ScriptClients {
    pub fn new() -> ScriptClients {
        ScriptClients {
            next_conn: 1,
            ..ScriptClients::default()
        }
    }

    fn line(&mut self, args: std::fmt::Arguments) {
        let _ = self.log.write_fmt(args);
        self.log.push('\n');
    }
}

impl Clients for ScriptClients {
    fn observe(&mut self, id: ServerId, seen: Seen<'_>) {
        match seen {
            Seen::Action(Action::Send { to, msg }) => {
                let chatter = matches!(
                    msg,
                    PeerMsg::Notification(_) | PeerMsg::Ping { .. } | PeerMsg::PingReply { .. }
                );
                if self.verbose || !chatter {
                    self.line(format_args!("{id} -> {to}: {}", Show(msg)));
                }
            }
            // the SNAP's parts come from the disk, not the core: one line for the stream
            Seen::Action(Action::SendSnapshot {
                to,
                zxid,
                txns,
                committed,
                ..
            }) => self.line(format_args!(
                "{id} -> {to}: SNAP from the snapshot file at={zxid} txns={} committed={committed}",
                txns.len()
            )),
            Seen::Action(Action::StateChanged { state, epoch }) => {
                self.line(format_args!("{id}: {state:?} epoch={epoch}"))
            }
            _ => {}
        }
    }

    fn to_client(&mut self, id: ServerId, out: ToClient) {
        match out {
            ToClient::Connected { conn, response } => {
                let Some(name) = self.conn_owner.get(&(id, conn)).cloned() else {
                    return;
                };
                if response.session_id == 0 {
                    self.line(format_args!("client {name}: session expired"));
                    return;
                }
                self.line(format_args!(
                    "client {name}: connected to {id} session={:#x} timeout={}",
                    response.session_id, response.timeout_ms
                ));
                let c = self.clients.get_mut(&name).expect("client");
                c.session = response.session_id;
                c.passwd = response.passwd;
            }
            ToClient::Reply {
                conn,
                xid,
                zxid,
                reply,
                ..
            } => {
                let Some(name) = self.conn_owner.get(&(id, conn)).cloned() else {
                    return;
                };
                let c = self.clients.get_mut(&name).expect("client");
                c.last_zxid = c.last_zxid.max(zxid.as_i64());
                if xid == -2 {
                    return; // ping replies are not news
                }
                let what = c.pending.remove(&xid).unwrap_or_default();
                self.line(format_args!(
                    "client {name}: {what} -> {} (zxid {zxid})",
                    Show(&reply)
                ));
            }
            ToClient::Watch { conn, event } => {
                if let Some(name) = self.conn_owner.get(&(id, conn)).cloned() {
                    self.line(format_args!(
                        "client {name}: WATCH {:?} {}",
                        event.kind, event.path
                    ));
                }
            }
            ToClient::Close { conn } => {
                if let Some(name) = self.conn_owner.remove(&(id, conn)) {
                    self.line(format_args!("client {name}: connection closed by {id}"));
                }
            }
        }
    }
}
