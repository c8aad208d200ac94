//! A scenario file's mistakes are answered with the field and, for a name that is not known,
//! the names that are.

use ensemble_sim::runner::{TraceMode, run_seed};
use ensemble_sim::scenario::parse;

const HEAD: &str = "name = \"t\"\n[topology]\nvoters = 3\n\n";

fn err(faults: &str) -> String {
    match parse(&format!("{HEAD}{faults}"), "t.toml") {
        Ok(_) => panic!("accepted: {faults}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_target_lists_the_valid_targets() {
    let e = err("[[fault]]\nat_ms = 1000\naction = \"crash\"\ntarget = \"lead\"\n");
    assert!(e.contains("field `fault[0].target`"), "{e}");
    assert!(e.contains("unknown target `lead`"), "{e}");
    for t in [
        "leader",
        "follower",
        "crashed",
        "all",
        "minority-with-leader",
        "minority-without-leader",
        "majority-without-leader",
        "server.1 to server.3",
    ] {
        assert!(e.contains(t), "`{t}` not listed: {e}");
    }
    // only the targets this topology has (3 voters, no observer)
    assert!(!e.contains("observer"), "{e}");
}

#[test]
fn an_action_without_its_ms_names_the_field() {
    let e = err("[[fault]]\nat_ms = 1000\naction = \"pause\"\ntarget = \"leader\"\n");
    assert!(e.contains("field `fault[0].ms`: missing"), "{e}");
}

/// The README's example (sim/README.md, "The scenario format") parses, its times are the ones
/// the README explains, and it passes as the README says.
#[test]
fn the_readme_example_parses() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("```toml\nname = \"leader-cut-from-one-follower\"")
        .expect("the example in sim/README.md");
    let body = &readme[start + "```toml\n".len()..];
    let body = &body[..body.find("```").expect("end of the example")];
    let p = parse(body, "README example").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (p.duration_ms, p.fault_phase_ms, p.liveness_bound_ms),
        (30_000, 15_000, 10_000)
    );
    assert_eq!(p.schedule.len(), 1);
    for seed in 0..5 {
        let r = run_seed(seed, Some(&p), None, TraceMode::Hash);
        assert!(r.passed(), "seed {seed}: {:?}", r.violation);
    }
}

#[test]
fn an_unknown_fault_kind_is_refused_naming_the_storage_kinds() {
    let e = err("[[fault]]\nat_ms = 1000\naction = \"bit-rot\"\ntarget = \"1\"\n");
    assert!(e.contains("field `fault[0].action`"), "{e}");
    assert!(e.contains("unknown action `bit-rot`"), "{e}");
    for k in ["corrupt", "misdirect", "latent-read", "lost-fsync"] {
        assert!(e.contains(k), "`{k}` not listed: {e}");
    }
    // a rate of an unknown kind is refused too
    let e = match parse(
        &format!("{HEAD}[random_faults]\nbit_rot_every_ms = 100\n"),
        "t.toml",
    ) {
        Ok(_) => panic!("accepted an unknown rate"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("bit_rot_every_ms"), "{e}");
}

#[test]
fn a_storage_fault_needs_one_server_and_a_known_file_kind() {
    let e = err("[[fault]]\nat_ms = 1000\naction = \"corrupt\"\ntarget = \"leader\"\n");
    assert!(e.contains("field `fault[0].target`"), "{e}");
    assert!(e.contains("a server id"), "{e}");
    let e =
        err("[[fault]]\nat_ms = 1000\naction = \"corrupt\"\ntarget = \"2\"\nfile = \"journal\"\n");
    assert!(e.contains("field `fault[0].file`"), "{e}");
    assert!(e.contains("unknown file kind `journal`"), "{e}");
    let e = err("[[fault]]\nat_ms = 1000\naction = \"latent-read\"\ntarget = \"9\"\n");
    assert!(e.contains("fault[0].target"), "{e}");
}
