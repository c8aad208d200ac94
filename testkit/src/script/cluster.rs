//! `cluster voters=N [observers=M] [tick=MS] [super=USER:PW] [snapcount=N]`: a fresh
//! ensemble, ids 1.., observers after the voters; sessions may last 2 to 20 ticks. The
//! in-memory log keeps 4 txns a snapshot covers; `snapcount` (default 1000) makes snapshots
//! come often enough for a script to see a learner fall behind that window.

use super::{ScriptClients, World, arg, num};
use crate::ensemble::{Ensemble, configs};
use crate::links::Links;

pub fn cluster(args: &[&str]) -> World {
    let voters = num(args, "voters");
    let observers = arg(args, "observers")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let tick: u64 = arg(args, "tick")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let snap_count: u64 = arg(args, "snapcount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let super_digest = arg(args, "super").map(ensemble_core::acl::digest_id);
    let cfgs = configs(voters, observers, |c| {
        c.tick_time_ms = tick;
        c.init_limit = 5;
        c.sync_limit = 2;
        c.min_session_timeout_ms = 2 * tick as i32;
        c.max_session_timeout_ms = 20 * tick as i32;
        c.finalize_wait_ms = 50;
        c.max_notification_interval_ms = 400;
        c.committed_log_size = 4;
        c.snap_count = snap_count;
        c.super_digest = super_digest.clone();
    });
    // one connection per pair: election and quorum messages keep their relative order
    Ensemble::new(cfgs, Links::new(false), 1_000_000, ScriptClients::new())
}
