//! `deliver [from=A] [to=B] [count=N] [verbose]`: hand over messages in flight on the links
//! from A and to B (any server when left out), one per busy link a round, until N were
//! delivered or none is left; nothing is fsynced and no time passes, so a phase can be
//! followed message by message. `fsync id=N` then reports N's appends durable.

use super::{World, arg, num};
use crate::links::Link;

pub fn deliver(w: &mut World, args: &[&str]) {
    w.clients.verbose = args.contains(&"verbose");
    let from = arg(args, "from").map(|_| num(args, "from"));
    let to = arg(args, "to").map(|_| num(args, "to"));
    let mut left = arg(args, "count").map_or(usize::MAX, |_| num(args, "count") as usize);
    let wanted = |l: &Link| from.is_none_or(|f| f == l.from) && to.is_none_or(|t| t == l.to);
    while left > 0 {
        let busy: Vec<Link> = w.links.busy().into_iter().filter(wanted).collect();
        if busy.is_empty() {
            return;
        }
        for link in busy {
            if left == 0 {
                return;
            }
            w.deliver(link);
            left -= 1;
        }
    }
}

pub fn fsync(w: &mut World, args: &[&str]) {
    let id = num(args, "id");
    assert!(
        !w.held.contains(&id),
        "fsync of held server {id}: release it"
    );
    w.fsync(id, usize::MAX);
}
