//! A client's connection: `connect client=C server=N [session=of:C2]` (a handshake, new or
//! re-attaching C2's session from a new connection while C2's stays), `disconnect client=C`
//! (the connection drops) and `quiet client=C` (it stops pinging, so its session expires).

use super::clients::Client;
use super::{World, arg, num, stabilize::stabilize};
use ensemble_core::server::Event;
use ensemble_proto::proto::ConnectRequest;
use std::collections::BTreeMap;

pub fn connect(w: &mut World, args: &[&str]) {
    let name = arg(args, "client").expect("client=").to_string();
    let server = num(args, "server");
    let conn = w.clients.next_conn;
    w.clients.next_conn += 1;
    let of = arg(args, "session")
        .and_then(|s| s.strip_prefix("of:"))
        .map(str::to_string);
    let (session, passwd, last) = match w.clients.clients.get(of.as_ref().unwrap_or(&name)) {
        Some(c) => (c.session, c.passwd.clone(), c.last_zxid),
        None => (0, vec![0; 16], 0),
    };
    w.clients.clients.insert(
        name.clone(),
        Client {
            server,
            conn,
            session,
            passwd: passwd.clone(),
            last_zxid: last,
            next_xid: 1,
            pending: BTreeMap::new(),
            quiet: false,
        },
    );
    w.clients.conn_owner.insert((server, conn), name);
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: last,
        timeout_ms: 400,
        session_id: session,
        passwd,
        read_only: Some(false),
    };
    w.step(
        server,
        Event::ClientConnected {
            conn,
            addr: "127.0.0.1".into(),
            request,
        },
    );
    stabilize(w);
}

pub fn quiet(w: &mut World, args: &[&str]) {
    let name = arg(args, "client").expect("client=");
    w.clients.clients.get_mut(name).expect("client").quiet = true;
}

pub fn disconnect(w: &mut World, args: &[&str]) {
    let name = arg(args, "client").expect("client=");
    let c = w.clients.clients.get(name).expect("client");
    let (server, conn) = (c.server, c.conn);
    w.clients.conn_owner.remove(&(server, conn));
    w.step(server, Event::ClientDisconnected { conn });
}
