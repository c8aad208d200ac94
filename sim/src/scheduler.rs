//! The scheduler: virtual time and one event queue ordered by (virtual ms, sequence number).
//! Everything that happens in a run is an [`Ev`] popped from here; ties keep insertion order,
//! so a seed replays exactly.

use crate::faults::FaultKind;
use crate::net::Channel;
use crate::params::FaultAction;
use ensemble_core::server::{ConnId, Event};
use ensemble_core::txn::ServerId;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Debug)]
pub(crate) enum Ev {
    Tick {
        node: ServerId,
        inc: u64,
    },
    Pump {
        from: ServerId,
        to: ServerId,
        ch: Channel,
    },
    ClientPump {
        conn: ConnId,
        to_server: bool,
    },
    Fsync {
        node: ServerId,
        inc: u64,
        upto: u64,
    },
    Deliver {
        node: ServerId,
        inc: u64,
        event: Box<Event>,
    },
    Restart {
        node: ServerId,
    },
    Resume {
        node: ServerId,
        inc: u64,
    },
    Unstall {
        node: ServerId,
        inc: u64,
    },
    ClientWake {
        client: usize,
        token: u64,
    },
    ClientResume {
        client: usize,
    },
    ClientRevive {
        client: usize,
    },
    /// A blocked path's TCP connection gives up, if still blocked and unbroken.
    TcpTimeout {
        a: ServerId,
        b: ServerId,
        ch: Channel,
        generation: u64,
    },
    /// Boxed: a fault action is rare and large, and every event moves as the queue reorders.
    Scheduled(Box<FaultAction>),
    Random(FaultKind),
    /// Step `idx` of a lane of the schedule (see `FaultStep::lane`).
    Lane {
        lane: usize,
        idx: usize,
    },
    HealPartition {
        id: u64,
    },
    Unclog {
        from: ServerId,
        to: ServerId,
    },
    Flap,
    Resource {
        client: usize,
        token: i64,
        fenced: bool,
    },
    Heal,
    Drain,
    End,
}

/// The event queue and the virtual clock.
// Every event is moved O(log n) times as the queue reorders: keep it small (box what is rare
// and large).
const _: () = assert!(std::mem::size_of::<Ev>() <= 32);
// ... and its queue entry one word more: (time, sequence) packed into one key (the heap's
// moves and comparisons were 5% of a sweep's instructions).
const _: () = assert!(std::mem::size_of::<Scheduled>() <= 40);

/// Bits of a queue key for the sequence number; the time takes the rest.
const SEQ_BITS: u32 = 30;
/// The latest time a key can hold (about 198 days of virtual time).
const MAX_AT: u64 = (1 << (64 - SEQ_BITS)) - 1;

#[derive(Default)]
pub(crate) struct Scheduler {
    /// Virtual milliseconds since the run began: the time of the event being handled.
    pub(crate) now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
}

impl Scheduler {
    /// Queue `ev` at virtual time `at`, after everything already queued for that time.
    pub(crate) fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        assert!(
            self.seq < 1 << SEQ_BITS,
            "a run schedules under 2^30 events"
        );
        // A run ends within seconds after its `End` (minutes of virtual time), so nothing
        // queued this late is ever popped: clamping keeps the order of everything that runs.
        let at = at.min(MAX_AT);
        self.queue.push(Scheduled {
            key: (at << SEQ_BITS) | self.seq,
            ev,
        });
    }

    /// The earliest event, with the clock moved to its time.
    pub(crate) fn pop(&mut self) -> Option<Ev> {
        let s = self.queue.pop()?;
        let at = s.key >> SEQ_BITS;
        debug_assert!(at >= self.now, "time never goes back");
        self.now = at;
        Some(s.ev)
    }
}

/// An event with its key: time in the high bits, the sequence number in the low
/// (ties in time keep insertion order).
struct Scheduled {
    key: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    // BinaryHeap is a max-heap: the earliest key must compare greatest.
    fn cmp(&self, o: &Self) -> Ordering {
        o.key.cmp(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restart_of(ev: Ev) -> ServerId {
        match ev {
            Ev::Restart { node } => node,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn events_come_in_time_order_and_ties_in_the_order_queued() {
        let mut s = Scheduler::default();
        s.schedule(30, Ev::Restart { node: 1 });
        s.schedule(10, Ev::Restart { node: 2 });
        s.schedule(30, Ev::Restart { node: 3 });
        s.schedule(10, Ev::Restart { node: 4 });
        let mut got = Vec::new();
        while let Some(ev) = s.pop() {
            got.push((s.now, restart_of(ev)));
        }
        assert_eq!(got, vec![(10, 2), (10, 4), (30, 1), (30, 3)]);
    }

    #[test]
    fn times_past_the_keys_range_come_last_in_the_order_queued() {
        let mut s = Scheduler::default();
        s.schedule(u64::MAX, Ev::Restart { node: 1 });
        s.schedule(MAX_AT + 5, Ev::Restart { node: 2 });
        s.schedule(MAX_AT - 1, Ev::Restart { node: 3 });
        let mut got = Vec::new();
        while let Some(ev) = s.pop() {
            got.push((s.now, restart_of(ev)));
        }
        assert_eq!(got, vec![(MAX_AT - 1, 3), (MAX_AT, 1), (MAX_AT, 2)]);
    }
}
