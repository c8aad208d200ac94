//! `stabilize [verbose]`: deliver and fsync until nothing is in flight; let time pass only
//! while some server that could still reach a quorum is electing or syncing (heartbeats never
//! stop, so "nothing moves" is no test). `verbose` also prints notifications and pings.
//! `advance ms=N [verbose]`: only time passes (every up server ticks every 10 ms); nothing
//! is delivered or fsynced.

use super::World;
use ensemble_core::server::Event;
use ensemble_core::txn::ServerId;

pub fn stabilize_cmd(w: &mut World, args: &[&str]) {
    w.clients.verbose = args.contains(&"verbose");
    stabilize(w);
}

pub fn stabilize(w: &mut World) {
    for _ in 0..1000 {
        let delivered = w.deliver_all();
        let synced = w.fsync_all();
        if delivered || synced {
            continue;
        }
        if all_settled(w) {
            return;
        }
        advance(w, 10);
    }
}

fn all_settled(w: &World) -> bool {
    w.servers
        .values()
        .flatten()
        .all(|s| s.is_serving() || !reachable_majority(w, s.id()))
}

fn reachable_majority(w: &World, id: ServerId) -> bool {
    let voters: Vec<ServerId> = w.cfgs.values().next().expect("a server").voters().collect();
    let reach = voters
        .iter()
        .filter(|v| **v == id || (!w.links.is_cut(id, **v) && w.up(**v)))
        .count();
    reach * 2 > voters.len()
}

pub fn advance_cmd(w: &mut World, args: &[&str]) {
    w.clients.verbose = args.contains(&"verbose");
    advance(w, super::num(args, "ms"));
}

/// `ms` of time in ticks of 10 ms, every up server ticking at each.
pub fn advance(w: &mut World, ms: u64) {
    let mut done = 0;
    while done < ms {
        w.now += 10;
        done += 10;
        for id in w.ids() {
            w.step(id, Event::Tick);
        }
    }
}
