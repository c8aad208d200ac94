//! The storage crate's planted bugs: a checksum skipped on read, so the simulator can show
//! that its claims see corruption served. The simulator names the run's plant with [`set`]
//! (one run per thread at a time); without the `plants` feature (the node's build) nothing is
//! stored and [`active`] is the constant `false`.

use ensemble_core::plant::Plant;

#[cfg(feature = "plants")]
thread_local! {
    static PLANT: std::cell::Cell<Option<Plant>> = const { std::cell::Cell::new(None) };
}

/// The planted bug of the run this thread executes (the simulator's, before a run).
pub fn set(plant: Option<Plant>) {
    #[cfg(feature = "plants")]
    PLANT.with(|p| p.set(plant));
    #[cfg(not(feature = "plants"))]
    let _ = plant;
}

/// Is `p` this thread's planted bug? Always false without the `plants` feature.
#[inline]
pub fn active(p: Plant) -> bool {
    #[cfg(feature = "plants")]
    {
        PLANT.with(|c| c.get()) == Some(p)
    }
    #[cfg(not(feature = "plants"))]
    {
        let _ = p;
        false
    }
}
