//! The formats of a server's durable state and the recovery that reads them back, shared by
//! the node (`std::fs`) and the simulator (an in-memory store): the same bytes, the same record
//! scan, torn-tail truncation, refusal of mid-log corruption, snapshot checksum verification
//! with fallback to an older snapshot.
//!
//! Everything here reads and writes through [`Files`], one directory's files as bytes.

pub mod codec;
pub mod epochs;
pub mod error;
pub mod files;
pub mod log;
pub mod mem;
pub mod plant;
pub mod recovery;
pub mod snapshot;

pub use error::StorageError;
pub use files::Files;
pub use mem::MemDir;
pub use recovery::{Recovery, recover};
