//! `disk id=N`: what server N's disk holds — its epochs, its newest snapshot, and its log,
//! durable part and unsynced tail — whether the server is up or not.

use super::{World, num};
use crate::disk::Entry;
use std::fmt::Write as _;

pub fn disk(w: &World, args: &[&str]) -> String {
    let id = num(args, "id");
    let d = &w.disks[&id];
    let mut out = String::new();
    let e = d.epochs;
    let _ = writeln!(
        out,
        "epochs accepted={} (from {}) current={}",
        e.accepted_epoch, e.accepted_from, e.current_epoch
    );
    match &d.snapshot {
        Some((z, _)) => {
            let _ = writeln!(out, "snapshot at {z}");
        }
        None => {
            let _ = writeln!(out, "no snapshot");
        }
    }
    let unsynced = d.unsynced().len();
    let durable = &d.log[..d.log.len() - unsynced];
    let _ = writeln!(
        out,
        "log durable {} unsynced {}",
        span(durable),
        span(d.unsynced())
    );
    out
}

/// `[first..last] (n)`, or `[]`.
fn span(entries: &[Entry]) -> String {
    match (entries.first(), entries.last()) {
        (Some(a), Some(b)) => format!("[{}..{}] ({})", a.txn.zxid, b.txn.zxid, entries.len()),
        _ => "[]".to_string(),
    }
}
