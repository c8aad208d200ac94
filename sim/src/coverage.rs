//! Coverage over a sweep: which of the declared probes (`ensemble_core::probe::PROBES`) the
//! seeds reached, how often, in how many seeds and first in which. Written as
//! `{"probes": {name: {"hits": n, "seeds": n, "first_seed": s}}}` (every declared probe,
//! unreached ones with 0 hits and `first_seed` null); `--require-coverage` names each probe not
//! marked rare that no seed reached.

use ensemble_core::probe::{PROBES, ProbeDef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeCount {
    pub hits: u64,
    pub seeds: u64,
    pub first_seed: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    pub probes: BTreeMap<String, ProbeCount>,
}

impl Coverage {
    /// Every declared probe, none hit yet.
    pub fn new() -> Coverage {
        Coverage {
            probes: PROBES
                .iter()
                .map(|d| (d.name.to_string(), ProbeCount::default()))
                .collect(),
        }
    }

    /// Add one seed's hits (in `PROBES` order; empty when the build has no probes).
    pub fn add(&mut self, seed: u64, hits: &[u64]) {
        for (d, &n) in PROBES.iter().zip(hits) {
            if n == 0 {
                continue;
            }
            let c = self.probes.entry(d.name.to_string()).or_default();
            c.hits += n;
            c.seeds += 1;
            c.first_seed = Some(c.first_seed.map_or(seed, |s| s.min(seed)));
        }
    }

    /// The declared probes not marked rare that no seed reached.
    pub fn missing(&self) -> Vec<&'static ProbeDef> {
        PROBES
            .iter()
            .filter(|d| !d.rare && self.probes.get(d.name).is_none_or(|c| c.hits == 0))
            .collect()
    }

    pub fn to_json(&self) -> String {
        // serde_json's pretty form: one probe a line is easy to diff between two sweeps
        serde_json::to_string_pretty(self).unwrap_or_else(|e| unreachable!("plain data: {e}"))
    }

    /// Read a coverage file; an error names the file and what is wrong with it.
    pub fn load(path: &Path) -> Result<Coverage, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the coverage file: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not a coverage file (JSON {{\"probes\": {{name: {{\"hits\", \"seeds\", \"first_seed\"}}}}}}): {e}",
                path.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hits_seeds_and_the_first_seed() {
        let mut c = Coverage::new();
        let mut hits = vec![0; PROBES.len()];
        hits[0] = 3;
        c.add(7, &hits);
        c.add(5, &hits);
        let first = &c.probes[PROBES[0].name];
        assert_eq!((first.hits, first.seeds, first.first_seed), (6, 2, Some(5)));
        assert_eq!(c.probes.len(), PROBES.len());
        assert!(!c.missing().iter().any(|d| d.name == PROBES[0].name));
        let back: Coverage = serde_json::from_str(&c.to_json()).expect("round trip");
        assert_eq!(back, c);
    }

    #[test]
    fn a_file_that_is_not_json_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("cov-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("cov.json");
        std::fs::write(&f, "probes = 3\n").expect("write");
        let e = Coverage::load(&f).expect_err("not JSON");
        assert!(
            e.contains("cov.json") && e.contains("not a coverage file"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
