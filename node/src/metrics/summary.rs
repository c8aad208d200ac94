//! The two shapes a measured value takes: ZooKeeper's summary (count, sum, min, max and
//! quantiles over the latest values, as its `AvgMinMaxPercentileCounter`) and Ensemble's own
//! histograms (cumulative buckets, as Prometheus histograms are).

use std::sync::Mutex;

/// Values a summary keeps for its quantiles: the latest ones (a sliding window, so a quantile
/// follows the current load rather than the whole uptime).
const WINDOW: usize = 1024;

#[derive(Default)]
struct Window {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    /// A ring of the latest `WINDOW` values; `next` is where the following one goes.
    latest: Vec<u64>,
    next: usize,
}

/// One summary, shared by whoever measures (the core thread, the log writer) and whoever reads.
#[derive(Default)]
pub struct Summary(Mutex<Window>);

/// What a summary says at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SummaryView {
    pub count: u64,
    pub sum: u64,
    /// 0 while nothing was measured, as ZooKeeper reports it.
    pub min: u64,
    pub max: u64,
    /// The latest values, sorted.
    sorted: Vec<u64>,
}

impl Summary {
    pub fn observe(&self, value: u64) {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if w.count == 0 || value < w.min {
            w.min = value;
        }
        w.max = w.max.max(value);
        w.count += 1;
        w.sum = w.sum.saturating_add(value);
        if w.latest.len() < WINDOW {
            w.latest.push(value);
        } else {
            let at = w.next;
            w.latest[at] = value;
        }
        w.next = (w.next + 1) % WINDOW;
    }

    pub fn view(&self) -> SummaryView {
        let w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut sorted = w.latest.clone();
        sorted.sort_unstable();
        SummaryView {
            count: w.count,
            sum: w.sum,
            min: w.min,
            max: w.max,
            sorted,
        }
    }

    pub fn reset(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Window::default();
    }
}

impl SummaryView {
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The `q` quantile (0..=1) of the latest values (nearest rank); 0 with none.
    pub fn quantile(&self, q: f64) -> u64 {
        assert!((0.0..=1.0).contains(&q), "quantile {q} out of range");
        if self.sorted.is_empty() {
            return 0;
        }
        let rank = (q * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }
}

/// A histogram with fixed upper bounds (in the unit it is observed in).
pub struct Histogram {
    bounds: &'static [f64],
    inner: Mutex<(Vec<u64>, u64, f64)>,
}

/// What a histogram says at one moment: cumulative counts per upper bound, count and sum.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramView {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds must rise");
        Histogram {
            bounds,
            inner: Mutex::new((vec![0; bounds.len()], 0, 0.0)),
        }
    }

    pub fn observe(&self, value: f64) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            g.0[i] += 1;
        }
        g.1 += 1;
        g.2 += value;
    }

    pub fn view(&self) -> HistogramView {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut acc = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&g.0)
            .map(|(b, n)| {
                acc += n;
                (*b, acc)
            })
            .collect();
        HistogramView {
            buckets,
            count: g.1,
            sum: g.2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_and_quantiles() {
        let s = Summary::default();
        assert_eq!(s.view().min, 0);
        assert_eq!(s.view().quantile(0.5), 0);
        for v in 1..=100 {
            s.observe(v);
        }
        let v = s.view();
        assert_eq!((v.count, v.sum, v.min, v.max), (100, 5050, 1, 100));
        assert_eq!(v.quantile(0.5), 50);
        assert_eq!(v.quantile(0.99), 99);
        assert_eq!(v.quantile(1.0), 100);
        assert_eq!(v.avg(), 50.5);
        s.reset();
        assert_eq!(s.view().count, 0);
    }

    #[test]
    fn summary_quantiles_follow_the_latest_values() {
        let s = Summary::default();
        for _ in 0..WINDOW {
            s.observe(1000);
        }
        for _ in 0..WINDOW {
            s.observe(1);
        }
        let v = s.view();
        assert_eq!(v.quantile(0.99), 1);
        assert_eq!(v.max, 1000);
    }

    #[test]
    fn histogram_is_cumulative() {
        static B: &[f64] = &[0.001, 0.01, 0.1];
        let h = Histogram::new(B);
        for v in [0.0005, 0.005, 0.005, 0.5] {
            h.observe(v);
        }
        let v = h.view();
        assert_eq!(v.buckets, vec![(0.001, 1), (0.01, 3), (0.1, 3)]);
        assert_eq!(v.count, 4);
    }
}
