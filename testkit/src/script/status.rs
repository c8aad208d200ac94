//! `status`: every server's role, leader, epochs, applied and logged zxids and tree digest.

use super::World;
use std::fmt::Write as _;

pub fn status(w: &World) -> String {
    let mut s = String::new();
    for (id, srv) in &w.servers {
        let Some(srv) = srv else {
            let _ = writeln!(s, "{id}: down");
            continue;
        };
        let e = srv.epochs();
        let _ = writeln!(
            s,
            "{id}: {:?} leader={:?} accepted={} current={} applied={} logged={} digest={:016x}",
            srv.state(),
            srv.status().leader,
            e.accepted_epoch,
            e.current_epoch,
            srv.tree().last_zxid(),
            srv.last_logged(),
            srv.tree().digest()
        );
    }
    s
}
