//! The learner's cap on SNAP parts on their way to disk: bytes of `SnapPart`s read from the
//! leader and not yet written to the snapshot file (in the core loop's input queue, then in
//! the snapshot writer's). The reader of the leader's connection waits while the queue is
//! over its cap, so a disk slower than the network stops the socket (and the leader's stream,
//! which reads its file only as the connection drains) instead of growing memory; the core
//! thread never waits for it.
//!
//! One per process (a node runs one server): the connection reader counts a part in
//! ([`PartBudget::add`]), the core loop counts it out as it takes it, the storage counts it
//! in again as it queues it for the writer thread, which counts it out once written. A part
//! the core refuses is never queued, so nothing is left counted.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Bytes of SNAP parts queued beyond which the reader waits: sixteen default parts.
pub const SNAP_PARTS_CAP: u64 = 64 << 20;

#[derive(Default)]
pub struct PartBudget {
    queued: AtomicU64,
    freed: Notify,
}

pub static SNAP_PARTS: LazyLock<PartBudget> = LazyLock::new(PartBudget::default);

impl PartBudget {
    pub fn add(&self, bytes: u64) {
        self.queued.fetch_add(bytes, Ordering::AcqRel);
    }

    pub fn done(&self, bytes: u64) {
        let before = self.queued.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(before >= bytes, "SNAP part bytes counted out twice");
        self.freed.notify_waiters();
    }

    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Acquire)
    }

    /// Wait until fewer than `cap` bytes are queued (at least one part always passes, so a
    /// part larger than the cap never waits for ever).
    pub async fn wait_below(&self, cap: u64) {
        loop {
            let freed = self.freed.notified();
            if self.queued() < cap {
                return;
            }
            // A wake-up lost between the check and the wait costs at most this.
            let _ = tokio::time::timeout(Duration::from_millis(50), freed).await;
        }
    }
}

/// Bytes of SNAP parts among `msgs`.
pub fn snap_part_bytes(msgs: &[ensemble_core::PeerMsg]) -> u64 {
    msgs.iter()
        .map(|m| match m {
            ensemble_core::PeerMsg::SnapPart { data, .. } => data.len() as u64,
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reader_waits_while_the_queue_is_over_its_cap() {
        let b = std::sync::Arc::new(PartBudget::default());
        b.add(100);
        b.wait_below(101).await; // under: passes
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.wait_below(50).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits while 100 bytes are queued");
        b.done(60);
        waiter.await.unwrap();
        assert_eq!(b.queued(), 40);
    }
}
