//! ensemble-testkit: what every in-memory driver of Ensemble's core shares.
//!
//! * [`interpreter`]: the one in-memory interpreter — a server's `Ready` driven (by core's
//!   `Ready::drive_both`) against an in-memory [`disk::Disk`] and a [`interpreter::Host`]
//!   (links, clients, traces);
//! * [`disk`]: the in-memory disk (durable and volatile log, epochs, snapshot parts, crashes);
//! * [`links`]: in-order per-pair links with partitions, for the scripts;
//! * [`net`]: the simulator's link model, TCP-faithful (channels, partitions with sides,
//!   one-way cuts, clogs);
//! * [`ensemble`]: a small ensemble stepped by hand on top of those;
//! * [`format`]: one text form for peer messages, effects and client replies;
//! * [`script`]: the golden interaction scripts (`testkit/testdata/`), one module a command;
//! * [`txns`]: txns built by hand (a tree loaded without a leader);
//! * [`fuzzing`]: the core's fuzz harnesses (cargo-fuzz targets in `fuzz/`, corpus replay in
//!   `testkit/tests/fuzz_corpus.rs`).

pub mod disk;
pub mod disk_faults;
pub mod ensemble;
pub mod format;
pub mod fuzzing;
pub mod interpreter;
pub mod links;
pub mod net;
pub mod script;
pub mod txns;
pub mod write_errors;

pub use disk::Disk;
pub use interpreter::{Flow, Host, Seen, ToClient, execute};

/// Helpers for the kit's own unit tests.
#[cfg(test)]
mod testing {
    use ensemble_core::txn::{Origin, Txn, TxnOp};
    use ensemble_core::zxid::Zxid;
    use std::sync::Arc;

    /// A txn of epoch 1 with the given counter (what it does does not matter here).
    pub fn txn(counter: u32) -> Arc<Txn> {
        Arc::new(Txn {
            zxid: Zxid::new(1, counter),
            time: 0,
            session: 0,
            cxid: 0,
            origin: Origin::NONE,
            op: TxnOp::CloseSession,
        })
    }
}
