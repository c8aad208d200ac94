//! Faults in words, as the trace and `replay` show them (`partition {3} | {1,2} for 12000 ms`,
//! `crash n2 for 800 ms`, `one-way n1 -/-> {2,3}`), never as Rust's debug output.

use crate::params::{ClientTarget, FaultAction, Target};
use ensemble_core::txn::ServerId;
use std::fmt;

/// A set of servers: `{1,2,3}`.
pub(crate) fn set(ids: &[ServerId]) -> String {
    let mut v = ids.to_vec();
    v.sort_unstable();
    let items: Vec<String> = v.iter().map(|i| i.to_string()).collect();
    format!("{{{}}}", items.join(","))
}

/// A partition's sides in words: servers whose side masks share no bit cannot talk.
pub(crate) fn sides_words(sides: &[(ServerId, u8)], oneway: &[(ServerId, ServerId)]) -> String {
    let of = |m: u8| -> Vec<ServerId> {
        sides
            .iter()
            .filter(|(_, s)| *s == m)
            .map(|(i, _)| *i)
            .collect()
    };
    let (a, b, both) = (of(0b10), of(0b01), of(0b11));
    let mut w = String::new();
    if !a.is_empty() || !b.is_empty() {
        w = format!("{} | {}", set(&a), set(&b));
        if !both.is_empty() {
            w.push_str(&format!(" bridged by {}", set(&both)));
        }
    }
    for (from, to) in oneway {
        if !w.is_empty() {
            w.push_str(", ");
        }
        w.push_str(&format!("one-way n{from} -/-> n{to}"));
    }
    w
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Leader => write!(f, "the leader"),
            Target::Follower => write!(f, "a follower"),
            Target::Observer => write!(f, "an observer"),
            Target::Id(i) => write!(f, "n{i}"),
            Target::Crashed => write!(f, "the crashed servers"),
            Target::All => write!(f, "every server"),
            Target::MinorityWithLeader => write!(f, "a minority with the leader"),
            Target::MinorityWithoutLeader => write!(f, "a minority without the leader"),
            Target::MajorityWithoutLeader => write!(f, "a majority without the leader"),
        }
    }
}

impl fmt::Display for ClientTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientTarget::LockHolder => write!(f, "the lock holder"),
            ClientTarget::Master => write!(f, "the master"),
            ClientTarget::Index(i) => write!(f, "c{i}"),
            ClientTarget::Role(r) => write!(f, "the first {r} client"),
        }
    }
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultAction::Crash(t) => write!(f, "crash {t}"),
            FaultAction::Restart(t) => write!(f, "restart {t}"),
            FaultAction::Isolate(t) => write!(f, "isolate {t}"),
            FaultAction::OneWay(t) => write!(f, "one-way {t} -/-> the others"),
            FaultAction::Pause { target, ms } => write!(f, "pause {target} for {ms} ms"),
            FaultAction::Stall { target, ms } => write!(f, "stall {target} for {ms} ms"),
            FaultAction::Reset(t) => write!(f, "reset every peer connection of {t}"),
            FaultAction::Flap { ms, every } => {
                write!(f, "links flap for {ms} ms (every ~{every} ms)")
            }
            FaultAction::Heal => write!(f, "heal partitions, clogs and flapping"),
            FaultAction::PauseClient { target, ms } => {
                write!(f, "pause client {target} for {ms} ms")
            }
            FaultAction::CrashClient(t) => write!(f, "crash client {t}"),
            FaultAction::Nothing => write!(f, "nothing"),
            FaultAction::Partition {
                sides, oneway, ms, ..
            } => write!(f, "partition {} for {ms} ms", sides_words(sides, oneway)),
            FaultAction::Clog { from, to, ms } => write!(f, "clog n{from} -> n{to} for {ms} ms"),
            FaultAction::Swizzle { clogs } => {
                let mut ids: Vec<ServerId> = Vec::new();
                for (a, _, _) in clogs {
                    if !ids.contains(a) {
                        ids.push(*a);
                    }
                }
                write!(f, "swizzle-clog {} ({} links)", set(&ids), clogs.len())
            }
            FaultAction::ResetLink { a, b, election } => write!(
                f,
                "reset n{a} <-> n{b} {}",
                if *election { "election" } else { "quorum" }
            ),
            FaultAction::ResetConn { conn } => write!(f, "reset client conn {conn}"),
            FaultAction::CrashFor { id, ms } => write!(f, "crash n{id} for {ms} ms"),
            FaultAction::DiskLoss { id, older, ms } => write!(
                f,
                "disk loss on n{id}: {}, back after {ms} ms",
                if *older {
                    "an older copy of its data dir"
                } else {
                    "an empty data dir"
                }
            ),
            FaultAction::Slow { id, extra, ms } => {
                write!(f, "slow n{id}: +{extra} ms for {ms} ms")
            }
            FaultAction::CrashClientFor { client, ms } => {
                write!(f, "crash client c{client} for {ms} ms")
            }
            FaultAction::CloseSession { client } => write!(f, "c{client} closes its session"),
            FaultAction::Disk {
                fault,
                id,
                file,
                draw,
            } => write!(
                f,
                "{} n{id}'s {} (draw {draw:#x})",
                fault.name(),
                file.name()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_as_words() {
        let p = FaultAction::Partition {
            sides: vec![(3, 0b10), (1, 0b01), (2, 0b01)],
            oneway: vec![],
            ms: 12000,
            desc: String::new(),
        };
        assert_eq!(p.to_string(), "partition {3} | {1,2} for 12000 ms");
        let o = FaultAction::Partition {
            sides: vec![],
            oneway: vec![(1, 3)],
            ms: 50,
            desc: String::new(),
        };
        assert_eq!(o.to_string(), "partition one-way n1 -/-> n3 for 50 ms");
        assert_eq!(FaultAction::Crash(Target::Id(2)).to_string(), "crash n2");
        assert_eq!(
            FaultAction::Stall {
                target: Target::Leader,
                ms: 900
            }
            .to_string(),
            "stall the leader for 900 ms"
        );
    }
}
