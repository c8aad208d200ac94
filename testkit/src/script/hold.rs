//! `hold id=N` / `release id=N`: stop / resume fsyncing server N's log; its appends stay
//! volatile (a crash loses them) and it is not told they are durable.

use super::{World, num};

pub fn hold(w: &mut World, args: &[&str]) {
    w.held.insert(num(args, "id"));
}

pub fn release(w: &mut World, args: &[&str]) {
    w.held.remove(&num(args, "id"));
}
