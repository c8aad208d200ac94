//! Runs every golden interaction script in `testkit/testdata/` (see `ensemble_testkit::script`
//! for the commands). `REWRITE=1` rewrites the expected output after a deliberate change.

#[test]
fn interaction_scripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata")
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no interaction scripts");
    let rewrite = std::env::var_os("REWRITE").is_some();
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| ensemble_testkit::script::run_file(f, rewrite).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
