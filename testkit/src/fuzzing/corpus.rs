//! Replaying a checked-in corpus (`fuzz/corpus/<target>/`) through its harness under plain
//! `cargo test`, so every seed and every crash ever found is re-checked without a fuzzer.

use std::path::{Path, PathBuf};

/// The repository's `fuzz/corpus/<target>/`.
pub fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// The files of a corpus directory, in name order; an empty or missing corpus is a failure.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    files
}

/// Every input of the corpus in `dir` through `harness`; a panic names the input.
pub fn replay(dir: &Path, harness: fn(&[u8])) {
    let files = files(dir);
    for f in &files {
        let data = std::fs::read(f).expect("read corpus file");
        // Name the input on failure: the panic message alone would not say which.
        let r = std::panic::catch_unwind(|| harness(&data));
        if let Err(e) = r {
            std::panic::resume_unwind(Box::new(format!(
                "{}: {}",
                f.display(),
                e.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
                    .unwrap_or("panic")
            )));
        }
    }
    eprintln!("{}: {} inputs replayed", dir.display(), files.len());
}
