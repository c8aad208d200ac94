//! One directory's files as bytes: what recovery reads and repairs. The node implements it on
//! `std::fs` (each call durable before it returns, as recovery needs), the simulator on an
//! in-memory store ([`crate::MemDir`]).

use ensemble_core::{RecoveredSnapshot, Zxid};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub trait Files {
    /// The path a message about `name` shows.
    fn path(&self, name: &str) -> PathBuf;
    /// The names of the regular files in the directory, in any order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// A whole file (`ErrorKind::NotFound` when it does not exist).
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;
    /// Remove a file; durable (the directory synced) before the next recovery step relies on
    /// it, which is [`Files::sync_dir`]'s to make sure of.
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Zero `name` from `from` to its end, keeping its length `len` (a preallocated log), durably.
    fn zero_from(&mut self, name: &str, from: u64, len: u64) -> io::Result<()>;
    /// Make the directory's entries (creations, removals) durable.
    fn sync_dir(&mut self) -> io::Result<()>;
    /// A snapshot file's data, verified: `Err(reason)` when it cannot be trusted (recovery
    /// then falls back to an older one). The default reads the plain format
    /// ([`crate::snapshot::decode_plain`]) whole; the node streams plain and compressed files
    /// into the tree itself, the simulator shares the data without copying it.
    fn load_snapshot(&self, name: &str) -> Result<(Zxid, RecoveredSnapshot), String> {
        let bytes = self.read(name).map_err(|e| e.to_string())?;
        crate::snapshot::decode_plain(bytes)
            .map(|(z, d)| (z, RecoveredSnapshot::Bytes(Arc::new(d))))
    }
}
