//! ensemble-sim: Ensemble's deterministic simulator.
//!
//! One thread per seed runs a whole ensemble of real core `Server`s with clients in virtual
//! time, injects faults drawn from the seed, and checks every safety claim after every step.
//! The same seed on the same build gives the same trace (and the same trace hash).

pub mod check;
pub mod client;
mod cluster;
pub mod coverage;
pub mod explorer;
mod faults;
pub mod findings;
pub mod foreign;
pub mod lines;
/// The link model, the kit's (TCP-faithful: channels, partitions with sides, cuts, clogs).
pub use ensemble_testkit::net;
pub mod params;
pub mod replay;
pub mod rng;
pub mod runner;
pub mod scenario;
mod scheduler;
pub mod shrink;
pub mod trace;
mod transport;
pub mod world;
