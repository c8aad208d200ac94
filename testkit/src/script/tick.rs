//! `tick ms=N`: N ms pass in steps of 50, delivering and fsyncing as they go; connected
//! clients ping at each step, as real ones do at a third of their timeout (unless `quiet`).

use super::{World, num, stabilize::advance};
use ensemble_core::server::{ConnId, Event};
use ensemble_core::txn::ServerId;
use ensemble_proto::proto::Request;

pub fn tick(w: &mut World, args: &[&str]) {
    let mut left = num(args, "ms");
    while left > 0 {
        let step = left.min(50);
        let live: Vec<(ServerId, ConnId)> = w
            .clients
            .conn_owner
            .iter()
            .filter(|(_, name)| !w.clients.clients[name.as_str()].quiet)
            .map(|(k, _)| *k)
            .collect();
        for (server, conn) in live {
            w.step(
                server,
                Event::Client {
                    conn,
                    xid: -2,
                    request: Request::Ping,
                },
            );
        }
        advance(w, step);
        w.deliver_all();
        w.fsync_all();
        left -= step;
    }
}
