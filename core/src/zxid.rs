//! Transaction ids: `zxid = epoch << 32 | counter`, as in ZooKeeper.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A ZooKeeper transaction id. Ordered first by epoch, then by counter.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Zxid(pub u64);

impl Zxid {
    pub const ZERO: Zxid = Zxid(0);

    pub fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as u64) << 32) | counter as u64)
    }
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub fn counter(self) -> u32 {
        self.0 as u32
    }
    /// The next zxid in the same epoch. The caller must check `counter` has room:
    /// ZooKeeper forces a new election before the counter wraps, and so do we.
    pub fn next(self) -> Zxid {
        assert!(
            self.counter() < u32::MAX,
            "zxid counter exhausted in epoch {}",
            self.epoch()
        );
        Zxid(self.0 + 1)
    }
    /// As the wire and the 4lw show it (a signed long).
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }
}

impl fmt::Debug for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_counter_round_trip() {
        let z = Zxid::new(7, 42);
        assert_eq!(z.epoch(), 7);
        assert_eq!(z.counter(), 42);
        assert_eq!(z.0, (7u64 << 32) | 42);
        assert!(Zxid::new(2, 0) > Zxid::new(1, u32::MAX - 1));
        assert_eq!(format!("{}", Zxid::new(1, 255)), "0x1000000ff");
    }
}
