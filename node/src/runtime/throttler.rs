//! ZooKeeper 3.8's `RequestThrottler`, in the core loop: with
//! `zookeeper.request_throttle_max_requests` above 0, a client request waits in the submitted
//! queue while that many requests are in process (handed to the core and not yet answered);
//! the throttler stalls `request_throttle_stall_time` ms, or until a request finishes, and
//! looks again. With `request_throttle_drop_stale` a waiting request that went stale
//! (`Request.isStale`: its connection closed, or with `request_stale_latency_check` it
//! waited past its session's timeout) is dropped rather than processed, and counted.
//!
//! Everything a connection hands the core after a request waits behind it (its refused
//! requests, the identities its SASL exchange establishes), so that the core sees one
//! connection's inputs in the order they came and answers them in that order.

use crate::limits::RequestThrottleSettings;
use ensemble_core::ConnId;
use ensemble_proto::proto::{Id, OpCode, Reply, Request};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What waits for its turn.
pub(crate) enum Held {
    Request {
        xid: i32,
        request: Request,
        size: usize,
    },
    Refused {
        xid: i32,
        opcode: OpCode,
        reply: Reply,
        close: bool,
        size: usize,
    },
    /// Not a request: it never waits for room, only for what came before it.
    Authenticated { id: Id },
}

impl Held {
    fn is_request(&self) -> bool {
        !matches!(self, Held::Authenticated { .. })
    }

    /// `Request.isStale`: a closeSession is never stale.
    fn may_go_stale(&self) -> bool {
        match self {
            Held::Request { request, .. } => request.opcode() != OpCode::CloseSession,
            Held::Refused { opcode, .. } => *opcode != OpCode::CloseSession,
            Held::Authenticated { .. } => false,
        }
    }
}

pub(crate) struct Waiting {
    pub conn: ConnId,
    /// When the connection handed it over (ZooKeeper's `requestThrottleQueueTime`).
    pub since: Instant,
    pub held: Held,
}

/// What the throttler does with the head of its queue.
pub(crate) enum Next {
    /// Hand it to the core; `stale`: it is stale but not dropped (counted in stale_requests).
    Submit {
        waiting: Waiting,
        stale: bool,
    },
    /// A stale request dropped: its connection is to be closed, if it is still open.
    Drop(Waiting),
    /// The head waits: the requests in process are at the maximum.
    Stall,
    Empty,
}

/// How the loop sees a connection, for staleness.
pub(crate) enum ConnView {
    Closed,
    /// Open, with its session's timeout (ms; 0 before the session is set up).
    Open {
        timeout_ms: u64,
    },
}

pub(crate) struct RequestThrottler {
    s: RequestThrottleSettings,
    queue: VecDeque<Waiting>,
    /// The current stall ends here; `None` while not stalled.
    stall_until: Option<Instant>,
    /// Times it stalled (ZooKeeper's request_throttle_wait_count).
    pub wait_count: u64,
}

impl RequestThrottler {
    pub fn new(s: RequestThrottleSettings) -> RequestThrottler {
        RequestThrottler {
            s,
            queue: VecDeque::new(),
            stall_until: None,
            wait_count: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.s.enabled()
    }

    pub fn push(&mut self, conn: ConnId, since: Instant, held: Held) {
        debug_assert!(self.enabled(), "a throttler that is off holds nothing");
        self.queue.push_back(Waiting { conn, since, held });
    }

    /// Requests waiting (ZooKeeper's `getInflight`; `globalOutstandingLimit` counts them
    /// among the outstanding already).
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// When the loop should look again, if the head is stalled.
    pub fn stall_until(&self) -> Option<Instant> {
        self.stall_until
    }

    fn is_stale(&self, w: &Waiting, view: &ConnView, now: Instant) -> bool {
        if !w.held.may_go_stale() {
            return false;
        }
        match view {
            ConnView::Closed => self.s.stale_connection_check,
            ConnView::Open { timeout_ms } => {
                self.s.stale_latency_check
                    && *timeout_ms > 0
                    && now.duration_since(w.since) > Duration::from_millis(*timeout_ms)
            }
        }
    }

    /// The head's fate, `in_process` requests being in process now.
    pub fn next(
        &mut self,
        in_process: usize,
        now: Instant,
        view: impl Fn(ConnId) -> ConnView,
    ) -> Next {
        let Some(head) = self.queue.front() else {
            self.stall_until = None;
            return Next::Empty;
        };
        if !head.held.is_request() {
            let waiting = self.queue.pop_front().expect("a head");
            return Next::Submit {
                waiting,
                stale: false,
            };
        }
        let stale = self.is_stale(head, &view(head.conn), now);
        if stale && self.s.drop_stale {
            let w = self.queue.pop_front().expect("a head");
            return Next::Drop(w);
        }
        let max = self.s.max_requests.max(0) as usize;
        if in_process >= max {
            // A stall that ran its time without room is followed by another, counted again,
            // as each of ZooKeeper's throttleSleep calls is.
            if self.stall_until.is_none_or(|t| now >= t) {
                self.wait_count += 1;
                self.stall_until = Some(now + Duration::from_millis(self.s.stall_time_ms.max(1)));
            }
            return Next::Stall;
        }
        self.stall_until = None;
        let waiting = self.queue.pop_front().expect("a head");
        Next::Submit { waiting, stale }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttler(max: i32, drop_stale: bool) -> RequestThrottler {
        RequestThrottler::new(RequestThrottleSettings {
            max_requests: max,
            drop_stale,
            ..Default::default()
        })
    }

    fn read(xid: i32) -> Held {
        Held::Request {
            xid,
            request: Request::Exists {
                path: "/".into(),
                watch: false,
            },
            size: 10,
        }
    }

    fn open(_: ConnId) -> ConnView {
        ConnView::Open { timeout_ms: 10_000 }
    }

    #[test]
    fn holds_the_head_while_in_process_is_at_the_maximum() {
        let mut t = throttler(2, true);
        let t0 = Instant::now();
        for xid in 1..=3 {
            t.push(1, t0, read(xid));
        }
        assert!(matches!(t.next(0, t0, open), Next::Submit { .. }));
        assert!(matches!(t.next(1, t0, open), Next::Submit { .. }));
        assert!(matches!(t.next(2, t0, open), Next::Stall));
        assert!(matches!(t.next(2, t0, open), Next::Stall));
        assert_eq!(t.wait_count, 1, "one stall until its time runs out");
        let later = t0 + Duration::from_millis(100);
        assert!(matches!(t.next(2, later, open), Next::Stall));
        assert_eq!(
            t.wait_count, 2,
            "a stall that ran out is followed by another"
        );
        assert_eq!(t.waiting(), 1);
        let Next::Submit { waiting, stale } = t.next(1, later, open) else {
            panic!("room: the head goes");
        };
        assert!(!stale);
        assert!(matches!(waiting.held, Held::Request { xid: 3, .. }));
        assert!(t.stall_until().is_none());
        assert!(matches!(t.next(0, later, open), Next::Empty));
    }

    #[test]
    fn a_closed_connections_requests_are_dropped_or_counted_stale() {
        let t0 = Instant::now();
        let closed = |c: ConnId| {
            if c == 7 { ConnView::Closed } else { open(c) }
        };
        let mut t = throttler(1, true);
        t.push(7, t0, read(1));
        t.push(8, t0, read(1));
        // dropped even with no room: a stale request does not wait
        assert!(matches!(t.next(1, t0, closed), Next::Drop(w) if w.conn == 7));
        assert!(matches!(t.next(1, t0, closed), Next::Stall));

        let mut t = throttler(1, false);
        t.push(7, t0, read(1));
        assert!(
            matches!(t.next(1, t0, closed), Next::Stall),
            "kept: it waits"
        );
        assert!(matches!(
            t.next(0, t0, closed),
            Next::Submit { stale: true, .. }
        ));
    }

    #[test]
    fn close_session_is_never_stale_and_identities_wait_only_for_order() {
        let t0 = Instant::now();
        let mut t = throttler(1, true);
        t.push(
            7,
            t0,
            Held::Request {
                xid: 1,
                request: Request::CloseSession,
                size: 8,
            },
        );
        t.push(
            7,
            t0,
            Held::Authenticated {
                id: Id {
                    scheme: "sasl".into(),
                    id: "bob".into(),
                },
            },
        );
        let closed = |_| ConnView::Closed;
        assert!(matches!(t.next(1, t0, closed), Next::Stall));
        assert!(matches!(
            t.next(0, t0, closed),
            Next::Submit { stale: false, .. }
        ));
        assert!(matches!(
            t.next(5, t0, closed),
            Next::Submit {
                waiting: Waiting {
                    held: Held::Authenticated { .. },
                    ..
                },
                ..
            }
        ));
    }

    #[test]
    fn the_latency_check_makes_old_requests_stale() {
        let mut t = RequestThrottler::new(RequestThrottleSettings {
            max_requests: 1,
            stale_latency_check: true,
            ..Default::default()
        });
        let t0 = Instant::now();
        t.push(1, t0, read(1));
        let view = |_| ConnView::Open { timeout_ms: 50 };
        assert!(matches!(t.next(1, t0, view), Next::Stall));
        let late = t0 + Duration::from_millis(51);
        assert!(matches!(t.next(1, late, view), Next::Drop(_)));
    }
}
