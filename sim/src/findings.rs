//! Reproductions of sim/FINDINGS.md that survive code changes (`scenarios/findings/`), and
//! `ensemble-sim check`, which runs them.
//!
//! A reproduction is a scenario file (fixed topology, timing, workload and fault schedule, so
//! it does not depend on the swarm's draws) with a `[finding]` table saying what it must show:
//! run with the bug (the file's `plant`, which re-creates a fixed bug; none for an open finding,
//! whose bug is in the core as it is), seed `seed` breaks `claim`; run without the plant, it
//! passes. Beside it, `NAME.trace` is the bug run's trace as recorded (`check --record`, or
//! `replay --scenario NAME.toml > NAME.trace`), so that a run that no longer shows the bug is
//! named by the first event where it left the recorded one.
//!
//! Verdicts: REPRODUCED (the bug run breaks the claim; a fixed finding's clean run passes),
//! FIXED (an open finding's run now passes: the core no longer has the bug, or no longer
//! reaches it; the file should become a plant), STALE (the bug run no longer breaks the claim:
//! the reproduction drifted with the code), REGRESSED (a fixed finding's run fails without the
//! plant: the bug, or another, is back).

use crate::check::{Claim, Violation};
use crate::params::Params;
use crate::replay::{Difference, first_difference, trace_events};
use crate::runner::{TraceMode, run_seed};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// The `[finding]` table of a reproduction file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// FINDINGS.md's entry: "4", "11.1", "ZOOKEEPER-2845".
    pub number: String,
    pub title: String,
    /// The seed the scenario runs with.
    pub seed: u64,
    /// `fixed` (the file's plant re-creates the bug) or `open` (the core still has it).
    pub status: String,
    /// The claim the run with the bug breaks.
    pub claim: String,
}

#[derive(Deserialize)]
struct Doc {
    finding: Option<Finding>,
}

/// One reproduction, read and checked for sense.
pub struct Repro {
    pub path: PathBuf,
    pub finding: Finding,
    pub open: bool,
    /// The scenario, with its plant if it has one.
    pub params: Params,
}

impl Repro {
    pub fn name(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The recorded trace of the bug run: `NAME.trace` beside the file.
    pub fn trace_path(&self) -> PathBuf {
        self.path.with_extension("trace")
    }
}

/// Read one reproduction file: the scenario (its errors name file and field) and the
/// `[finding]` table (required, every field checked).
pub fn load(path: &Path) -> Result<Repro, String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read reproduction file {shown}: {e}"))?;
    let doc: Doc = toml::from_str(&text).map_err(|e| {
        format!(
            "reproduction file {shown}: {}",
            e.to_string().trim().replace('\n', " ")
        )
    })?;
    let finding = doc.finding.ok_or_else(|| {
        format!(
            "reproduction file {shown}: no [finding] table (number, title, seed, status, claim)"
        )
    })?;
    let params = crate::scenario::parse(&text, &shown).map_err(|e| e.to_string())?;
    let field =
        |f: &str, msg: String| format!("reproduction file {shown}: field `finding.{f}`: {msg}");
    if finding.claim.parse::<Claim>().is_err() {
        return Err(field("claim", format!("unknown claim `{}`", finding.claim)));
    }
    let open = match finding.status.as_str() {
        "open" => true,
        "fixed" => false,
        other => {
            return Err(field(
                "status",
                format!("`{other}`: expected \"fixed\" or \"open\""),
            ));
        }
    };
    match (open, params.plant) {
        (false, None) => {
            return Err(field(
                "status",
                "a fixed finding needs the bug re-created as a plant (`plant = ...`)".into(),
            ));
        }
        (true, Some(p)) => {
            return Err(field(
                "status",
                format!(
                    "an open finding's bug is in the core; it names no plant (it names `{}`)",
                    p.name()
                ),
            ));
        }
        _ => {}
    }
    Ok(Repro {
        path: path.to_path_buf(),
        finding,
        open,
        params,
    })
}

/// The reproductions a path names: a file, or every `*.toml` of a directory, by name.
pub fn load_all(path: &Path) -> Result<Vec<Repro>, String> {
    if !path.is_dir() {
        return Ok(vec![load(path)?]);
    }
    let rd = std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "{}: no reproduction files (*.toml)",
            path.display()
        ));
    }
    files.iter().map(|f| load(f)).collect()
}

pub enum Verdict {
    /// The bug run broke the claim (and a fixed finding's clean run passed).
    Reproduced,
    /// An open finding's run passes now.
    Fixed,
    /// The bug run did not break the claim: it passed, or broke another.
    Stale(Option<Violation>),
    /// A fixed finding's run fails without its plant.
    Regressed(Violation),
}

impl Verdict {
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Reproduced => "REPRODUCED",
            Verdict::Fixed => "FIXED",
            Verdict::Stale(_) => "STALE",
            Verdict::Regressed(_) => "REGRESSED",
        }
    }

    /// Whether `check` fails on it.
    pub fn fails(&self) -> bool {
        matches!(self, Verdict::Stale(_) | Verdict::Regressed(_))
    }
}

/// How the bug run compares with the recorded one.
pub enum Against {
    /// No `NAME.trace` beside the file.
    Unrecorded,
    Same(usize),
    Differs(Difference),
}

pub struct Outcome {
    pub verdict: Verdict,
    /// What the bug run did.
    pub bug_run: Option<Violation>,
    pub against: Against,
    /// The bug run's trace, as `replay` prints it (for `--record`).
    pub lines: Vec<String>,
    pub header: String,
}

/// Run a reproduction: the bug run (recorded, compared with `NAME.trace`), and for a fixed
/// finding the same scenario without its plant.
pub fn check(r: &Repro) -> Result<Outcome, String> {
    let seed = r.finding.seed;
    let bug = run_seed(seed, Some(&r.params), None, TraceMode::Record);
    let lines: Vec<String> = bug.records.iter().map(|rec| rec.line()).collect();
    let against = match std::fs::read_to_string(r.trace_path()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Against::Unrecorded,
        Err(e) => return Err(format!("cannot read {}: {e}", r.trace_path().display())),
        Ok(text) => {
            let old = trace_events(&text);
            if old.is_empty() {
                return Err(format!(
                    "{}: holds no trace lines (expected the output of `ensemble-sim replay`)",
                    r.trace_path().display()
                ));
            }
            let new: Vec<&str> = lines.iter().map(String::as_str).collect();
            match first_difference(&old, &new) {
                None => Against::Same(new.len()),
                Some(d) => Against::Differs(d),
            }
        }
    };
    let broke = |v: &Option<Violation>| {
        v.as_ref()
            .is_some_and(|v| v.claim.to_string() == r.finding.claim)
    };
    let verdict = if broke(&bug.violation) {
        if r.open {
            Verdict::Reproduced
        } else {
            let mut clean = r.params.clone();
            clean.plant = None;
            match run_seed(seed, Some(&clean), None, TraceMode::Hash).violation {
                None => Verdict::Reproduced,
                Some(v) => Verdict::Regressed(v),
            }
        }
    } else if r.open && bug.violation.is_none() {
        Verdict::Fixed
    } else {
        Verdict::Stale(bug.violation.clone())
    };
    Ok(Outcome {
        verdict,
        bug_run: bug.violation,
        against,
        lines,
        header: format!(
            "seed={seed} {}",
            crate::runner::describe(&r.params, r.params.plant)
        ),
    })
}

impl fmt::Display for Against {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Against::Unrecorded => write!(f, "no recorded trace to compare with"),
            Against::Same(n) => write!(f, "the same {n} trace lines as the recorded run"),
            Against::Differs(d) => write!(f, "left the recorded run {d}"),
        }
    }
}
