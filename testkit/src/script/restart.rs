//! `restart id=N`: a crashed server recovers from its durable log, snapshot and epochs.

use super::{World, num};
use std::fmt::Write as _;

pub fn restart(w: &mut World, args: &[&str]) {
    let id = num(args, "id");
    assert!(!w.up(id), "restart of server {id}, which is up");
    w.start(id);
    let _ = writeln!(w.clients.log, "{id}: restarted");
}
