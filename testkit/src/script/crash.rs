//! `crash id=N`: the server dies, losing what was not fsynced; its clients' connections drop.

use super::{World, num};
use ensemble_core::server::ConnId;
use ensemble_core::txn::ServerId;
use std::fmt::Write as _;

pub fn crash(w: &mut World, args: &[&str]) {
    let id = num(args, "id");
    assert!(w.up(id), "crash of server {id}, which is down");
    w.crash(id);
    let owned: Vec<(ServerId, ConnId)> = w
        .clients
        .conn_owner
        .keys()
        .filter(|(s, _)| *s == id)
        .copied()
        .collect();
    for k in owned {
        if let Some(name) = w.clients.conn_owner.remove(&k) {
            let _ = writeln!(w.clients.log, "client {name}: connection lost");
        }
    }
    let _ = writeln!(w.clients.log, "{id}: crashed");
}
