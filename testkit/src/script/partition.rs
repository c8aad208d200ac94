//! `partition A B|C...`: cut every link between the groups (what was in flight is lost, both
//! ends of each broken connection notice); `heal` restores every link.

use super::World;
use ensemble_core::txn::ServerId;

pub fn partition(w: &mut World, args: &[&str]) {
    let groups: Vec<Vec<ServerId>> = args
        .join(" ")
        .split('|')
        .map(|g| {
            g.split_whitespace()
                .map(|x| x.parse().expect("a server id"))
                .collect()
        })
        .collect();
    for (i, g) in groups.iter().enumerate() {
        for (j, h) in groups.iter().enumerate() {
            if i != j {
                for a in g {
                    for b in h {
                        w.links.cut(*a, *b);
                    }
                }
            }
        }
    }
    for (a, b) in w.links.cut_pairs() {
        w.break_link(a, b, true);
    }
}

pub fn heal(w: &mut World) {
    w.links.heal();
}
