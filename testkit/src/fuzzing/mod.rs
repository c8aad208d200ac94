//! Fuzz harnesses for the core, shared by the cargo-fuzz targets in `fuzz/` and by
//! `testkit/tests/fuzz_corpus.rs`, which replays every checked-in corpus file under `cargo test`.
//!
//! Each harness takes arbitrary bytes and panics only on a real bug: a decoder that panics, a
//! value that does not survive encode → decode, or (for [`ensemble`]) a broken safety
//! invariant. The ensemble harness drives its servers through the kit's one interpreter and
//! in-memory disk (`crate::ensemble`).
//!
//! [`Source`] is a tiny stand-in for `arbitrary::Unstructured`: it turns the fuzzer's bytes
//! into choices, and yields zeros once the bytes run out, so every input is a finite, valid
//! program.

mod codec;
pub mod corpus;
mod requests;
mod run;
mod samples;
mod world;

pub use codec::{REPLY_OPCODES, jute_reply, jute_request, peer_msg_into_server, tree_snapshot};
pub use run::{EnsembleStats, MAX_STEPS, ensemble, ensemble_run, ensemble_trace};
pub use samples::{Samples, calm_program, sample_run};

/// Choices drawn from the fuzzer's bytes.
pub struct Source<'a> {
    data: &'a [u8],
}

impl<'a> Source<'a> {
    pub fn new(data: &'a [u8]) -> Source<'a> {
        Source { data }
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    pub fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }
    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }
    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        if n <= 256 {
            self.byte() as usize % n
        } else {
            self.u32() as usize % n
        }
    }
    pub fn pick<'b, T>(&mut self, items: &'b [T]) -> &'b T {
        &items[self.below(items.len())]
    }
    /// Up to `max` raw bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1).min(self.data.len());
        let (b, rest) = self.data.split_at(n);
        self.data = rest;
        b.to_vec()
    }
    /// Mostly small or edge values, sometimes anything.
    pub fn i32(&mut self) -> i32 {
        match self.byte() % 8 {
            0 => -1,
            1 => 0,
            2 => 1,
            3 => i32::MAX,
            4 => i32::MIN,
            5 => self.byte() as i32,
            _ => self.u32() as i32,
        }
    }
    pub fn i64(&mut self) -> i64 {
        match self.byte() % 8 {
            0 => -1,
            1 => 0,
            2 => 1,
            3 => i64::MAX,
            4 => i64::MIN,
            5 => i64::from(self.u16()),
            _ => self.u64() as i64,
        }
    }
}
