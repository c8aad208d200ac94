//! ensemble-testkit: what every in-memory driver of Ensemble's core shares.
//!
//! * [`interpreter`]: the one effect interpreter — a server's effects carried out in order
//!   against an in-memory [`disk::Disk`] and a [`interpreter::Host`] (links, clients, traces);
//! * [`disk`]: the in-memory disk (durable and volatile log, epochs, snapshot parts, crashes);
//! * [`links`]: in-order per-pair links with partitions;
//! * [`ensemble`]: a small ensemble stepped by hand on top of those;
//! * [`format`]: one text form for peer messages, effects and client replies;
//! * [`script`]: the golden interaction scripts (`testkit/testdata/`), one module a command;
//! * [`fuzzing`]: the core's fuzz harnesses (cargo-fuzz targets in `fuzz/`, corpus replay in
//!   `testkit/tests/fuzz_corpus.rs`).

pub mod disk;
pub mod ensemble;
pub mod format;
pub mod fuzzing;
pub mod interpreter;
pub mod links;
pub mod script;

pub use disk::Disk;
pub use interpreter::{Flow, Host, ToClient, execute};
