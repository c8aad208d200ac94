//! The run's one source of randomness. Every choice a seed makes is drawn from here, in a fixed
//! order, so the same seed and the same build make the same run.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct SimRng(ChaCha8Rng);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// The seed's second stream, for the swarm's draw of a run's parameters: the world itself
    /// runs on [`SimRng::new`], so a swarm seed and a scenario file holding the parameters it
    /// drew (what `shrink` writes) run the same world from the same seed.
    pub fn for_params(seed: u64) -> SimRng {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(1);
        SimRng(r)
    }

    /// An independent stream for a sub-purpose (so adding draws in one place does not shift
    /// every later draw elsewhere).
    pub fn fork(&mut self) -> SimRng {
        SimRng(ChaCha8Rng::seed_from_u64(self.0.next_u64()))
    }

    /// A stream of its own for one purpose, drawn from nothing: the same key, another ChaCha
    /// stream. How much this generator was used before does not move it, so a purpose drawn
    /// late in a run (the liveness core) comes out the same whatever drew before it.
    pub fn purpose(&self, stream: u64) -> SimRng {
        let mut r = self.0.clone();
        r.set_stream(stream);
        r.set_word_pos(0);
        SimRng(r)
    }

    /// Uniform in `lo..=hi` (empty ranges give `lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            self.0.gen_range(lo..=hi)
        }
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 { 0 } else { self.0.gen_range(0..n) }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (p >= 1.0 || self.0.r#gen::<f64>() < p)
    }

    pub fn unit(&mut self) -> f64 {
        self.0.r#gen::<f64>()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len())])
        }
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// An exponential-ish delay with mean `mean` ms, capped at 20 × mean.
    pub fn exp(&mut self, mean: u64) -> u64 {
        let u = self.unit().max(1e-9);
        let v = -(u.ln()) * mean as f64;
        (v as u64).min(mean.saturating_mul(20))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}
